//! obs-backdrop's core, without libobs: model manifests, ONNX Runtime loading and sessions,
//! tensor packing, the segmentation worker thread and mask refinement.
//!
//! Logs through the [`log`] facade; the plugin forwards it to OBS's log (`backdrop-obs`), tests
//! and tools to wherever they like. Builds and tests on a machine without OBS.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod mask;
pub mod segmentation;
pub mod settings;
