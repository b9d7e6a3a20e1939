//! Segmentation: model manifests, ONNX Runtime loading, sessions, tensor packing and the worker
//! thread that turns small frames into person masks.

pub mod block_motion;
pub mod cadence;
pub mod manifest;
pub mod motion;
pub mod remote;
pub mod runtime;
pub mod session;
pub mod stats;
pub mod tensor;
pub mod worker;
