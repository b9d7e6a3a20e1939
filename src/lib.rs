//! obs-backdrop: an OBS Studio filter that finds the person in a video source with a neural
//! segmentation model (ONNX Runtime) and replaces the background (blur, image, colour,
//! transparency).
//!
//! Crates: `backdrop-core` (models, worker, mask refinement; no libobs), `backdrop-obs`
//! (bindings and safe wrappers), this one (the filter). [`ffi`](crate) holds every `extern "C"`
//! entry point; [`filter`] is safe Rust. See docs/architecture.md.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
// the filter's statistics are one `serde_json::json!` object of more keys than the default allows
#![recursion_limit = "256"]

mod ffi;
#[forbid(unsafe_code)]
pub mod filter;

pub use ffi::{FILTER_ID, LIBOBS_API_VER};
