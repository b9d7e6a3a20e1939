//! A loaded segmentation model: ONNX Runtime session + manifest + reusable buffers.

use super::manifest::{Layout, Manifest};
use super::tensor;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{Tensor, TensorRef};
use ort::AsPointer;
use std::ffi::CString;

/// Options for creating a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Intra-op threads (1 by default: for these small models more threads barely help and
    /// spinning burns a core). Spinning is always off.
    pub intra_threads: usize,
    /// Execution provider asked for; CPU when it cannot be had (see [`Model::provider_note`]).
    pub provider: super::runtime::Provider,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            intra_threads: 1,
            provider: super::runtime::Provider::Cpu,
        }
    }
}

/// A model ready to run.
///
/// Its input and output tensors are created once, at load, and every [`Model::run`] hands the
/// same two values to ONNX Runtime's `Run` (the output pre-allocated, so the runtime writes into
/// it): nothing is allocated per frame on our side of the call.
pub struct Model {
    pub manifest: Manifest,
    session: Session,
    input_shape: Vec<i64>,
    /// The input tensor (`manifest.input.shape`, f32), written by [`Model::preprocess`].
    input: Tensor<f32>,
    /// The pre-allocated output tensor (the output's shape with dynamic dimensions resolved).
    output: Tensor<f32>,
    input_name: CString,
    output_name: CString,
    /// Passed to every run: [`Model::stopper`] ends a run in progress from another thread.
    run_options: std::sync::Arc<ort::session::RunOptions>,
    /// Set by [`RunStopper::stop`]: a failed run was ended on purpose, not refused.
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Set when the runtime refused the pre-allocated output (a model whose output shape is not
    /// what its declared shape says, e.g. dynamic dimensions that are not the input size): runs
    /// then go through `Session::run`, which allocates, and follow the real output shape.
    allocating_run: bool,
    /// The output's geometry and the probability plane read from it.
    plane: Plane,
    /// Why the requested execution provider is not used (`None`: it is).
    pub provider_note: Option<String>,
    /// The execution provider the session runs on: the requested one, or CPU after a fallback.
    pub provider: super::runtime::Provider,
    /// The options the model was loaded with (as requested, before any fallback).
    pub options: SessionOptions,
}

/// Ends a [`Model`]'s run in progress, and every later one, from another thread (see
/// [`Model::stopper`]).
pub struct RunStopper {
    options: std::sync::Arc<ort::session::RunOptions>,
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl RunStopper {
    /// Sets ONNX Runtime's terminate flag: the run returns an error at its next node.
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        let _ = self.options.terminate();
    }
}

impl Model {
    /// Loads the ONNX file of `manifest` with `env`, checking that the tensor names and shapes in
    /// the graph match the manifest. Errors are readable sentences for the filter's status line.
    pub fn load(
        env: &ort::environment::Environment,
        manifest: &Manifest,
        options: SessionOptions,
    ) -> Result<Self, String> {
        let path = manifest.model_path();
        if !path.is_file() {
            return Err(format!("model file not found: {}", path.display()));
        }
        let (session, provider_note, provider) = match build_session(env, &path, options) {
            Ok(s) => (s, None, options.provider),
            Err(e) if options.provider != super::runtime::Provider::Cpu => {
                let cpu = SessionOptions {
                    provider: super::runtime::Provider::Cpu,
                    ..options
                };
                let note = format!(
                    "{} unavailable ({e}); running on CPU",
                    options.provider.display_name()
                );
                (
                    build_session(env, &path, cpu)?,
                    Some(note),
                    super::runtime::Provider::Cpu,
                )
            }
            Err(e) => return Err(e),
        };

        let input = session
            .inputs()
            .iter()
            .find(|i| i.name() == manifest.input.name)
            .ok_or_else(|| {
                let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
                format!(
                    "model has no input named '{}' (it has {names:?})",
                    manifest.input.name
                )
            })?;
        if let Some(shape) = input.dtype().tensor_shape() {
            let dims: &[i64] = shape;
            let fits = dims.len() == 4
                && dims
                    .iter()
                    .zip(&manifest.input.shape)
                    .all(|(a, b)| *a < 0 || a == b);
            if !fits {
                return Err(format!(
                    "model input shape {dims:?} does not match the manifest's {:?}",
                    manifest.input.shape
                ));
            }
        }
        let output = session
            .outputs()
            .iter()
            .find(|o| o.name() == manifest.output.name)
            .ok_or_else(|| {
                let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
                format!(
                    "model has no output named '{}' (it has {names:?})",
                    manifest.output.name
                )
            })?;
        let out_dims: Vec<i64> = output
            .dtype()
            .tensor_shape()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let (w, h) = manifest.input_size();
        let block = manifest.output.blocksize;
        let (output_size, output_channels, output_layout) =
            output_geometry(&out_dims, (w as usize, h as usize), block)?;

        let plane = output_size.0 * output_size.1;
        let input_len = manifest.input.shape.iter().product::<i64>().max(0) as usize;
        let input = Tensor::from_array((manifest.input.shape.clone(), vec![0f32; input_len]))
            .map_err(|e| format!("input tensor: {e}"))?;
        // the tensor's own spatial size (the mask's, divided by the block size)
        let (ow, oh) = (
            (output_size.0 / block) as i64,
            (output_size.1 / block) as i64,
        );
        let c = output_channels as i64;
        let output_shape = match (out_dims.len(), output_layout) {
            (3, _) => vec![1, oh, ow],
            (_, Layout::Nhwc) => vec![1, oh, ow, c],
            (_, Layout::Nchw) => vec![1, c, oh, ow],
        };
        let output_len = output_shape.iter().product::<i64>() as usize;
        let output = Tensor::from_array((output_shape, vec![0f32; output_len]))
            .map_err(|e| format!("output tensor: {e}"))?;
        let name = |n: &str| CString::new(n).map_err(|_| format!("tensor name {n:?} has a NUL"));
        Ok(Self {
            manifest: manifest.clone(),
            session,
            input_shape: manifest.input.shape.clone(),
            input,
            output,
            input_name: name(&manifest.input.name)?,
            output_name: name(&manifest.output.name)?,
            allocating_run: false,
            stopped: Default::default(),
            run_options: std::sync::Arc::new(
                ort::session::RunOptions::new().map_err(|e| format!("run options: {e}"))?,
            ),
            plane: Plane {
                size: output_size,
                channels: output_channels,
                layout: output_layout,
                probability: vec![0.0; plane],
                nonfinite: 0,
            },
            provider_note,
            provider,
            options,
        })
    }

    /// Model input (width, height) in px.
    pub fn input_size(&self) -> (u32, u32) {
        self.manifest.input_size()
    }

    /// Mask (width, height) in px: the output's spatial size (from the declared shape; after a
    /// [`Model::run`] that had to follow the real output, the real one).
    pub fn output_size(&self) -> (usize, usize) {
        self.plane.size
    }

    /// Packs a BGRA image of exactly the model's input size (`stride` bytes per row) into the
    /// input tensor. Timed separately from [`Model::run`].
    pub fn preprocess(&mut self, bgra: &[u8], stride: usize) {
        let (w, h) = self.input_size();
        let (_, data) = self.input.extract_tensor_mut();
        tensor::pack_bgra(
            bgra,
            w as usize,
            h as usize,
            stride,
            &self.manifest.input,
            data,
        );
    }

    /// What ends this model's run in progress, and every later one, from another thread
    /// (`RunOptions::terminate`; the run then fails): a filter being destroyed does not wait
    /// for an inference of a slow model to finish.
    pub fn stopper(&self) -> RunStopper {
        RunStopper {
            options: self.run_options.clone(),
            stopped: self.stopped.clone(),
        }
    }

    /// Runs the session on the packed tensor and converts the output to person probability,
    /// returning the plane (`output_size` w x h values in 0..1). Errors are readable sentences.
    pub fn run(&mut self) -> Result<&[f32], String> {
        if !self.allocating_run {
            match self.run_preallocated() {
                Ok(()) => {}
                Err(e) if self.stopped.load(std::sync::atomic::Ordering::Acquire) => {
                    return Err(e); // ended by the stopper: nothing was refused
                }
                Err(e) => {
                    // e.g. an output whose real shape differs from the declared one: the runtime
                    // cannot write into our tensor; let it allocate the output from now on
                    log::warn!("pre-allocated output refused ({e}); using Session::run");
                    self.allocating_run = true;
                }
            }
        }
        if self.allocating_run {
            return self.run_allocating();
        }
        let (_, data) = self.output.extract_tensor();
        self.plane.read(data, &self.manifest.output)
    }

    /// ONNX Runtime's `Run` on the input and output values made at load, through the `ort`
    /// crate's API table (`ort::api()`): the safe `Session::run` builds its name, value and
    /// output lists on the heap on every call.
    fn run_preallocated(&mut self) -> Result<(), String> {
        let api = ort::api();
        let input_names = [self.input_name.as_ptr()];
        let inputs = [self.input.ptr()];
        let output_names = [self.output_name.as_ptr()];
        let mut outputs = [self.output.ptr_mut()];
        // SAFETY: the session, the names and both values live in `self` for the whole call, the
        // arrays hold one valid pointer each, and `&mut self` keeps the session from running
        // on another thread meanwhile (ONNX Runtime's `Run` is not thread safe per session).
        let status = unsafe {
            (api.Run)(
                self.session.ptr_mut(),
                ort::AsPointer::ptr(&*self.run_options),
                input_names.as_ptr(),
                inputs.as_ptr(),
                1,
                output_names.as_ptr(),
                1,
                outputs.as_mut_ptr(),
            )
        };
        if status.0.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null status is an error the caller owns and must release.
        let message = unsafe {
            let text = std::ffi::CStr::from_ptr((api.GetErrorMessage)(status.0))
                .to_string_lossy()
                .into_owned();
            (api.ReleaseStatus)(status.0);
            text
        };
        Err(format!("inference failed: {message}"))
    }

    /// `Session::run`, letting the runtime allocate the output (the fallback of
    /// [`Model::run`]). When the output's real shape gives another mask size, channel count or
    /// layout than the declared one, the model follows it from then on (the plane is
    /// reallocated once per change).
    fn run_allocating(&mut self) -> Result<&[f32], String> {
        let input_size = self.input_size();
        let (_, data) = self.input.extract_tensor();
        let input = TensorRef::from_array_view((self.input_shape.as_slice(), data))
            .map_err(|e| format!("input tensor: {e}"))?;
        let outputs = self
            .session
            .run_with_options(
                ort::inputs![self.manifest.input.name.as_str() => input],
                &*self.run_options,
            )
            .map_err(|e| format!("inference failed: {e}"))?;
        let value = outputs
            .get(self.manifest.output.name.as_str())
            .ok_or_else(|| format!("no output '{}'", self.manifest.output.name))?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("output tensor: {e}"))?;
        let geometry = output_geometry(
            shape,
            (input_size.0 as usize, input_size.1 as usize),
            self.manifest.output.blocksize,
        )?;
        let p = &mut self.plane;
        if geometry != (p.size, p.channels, p.layout) {
            let ((w, h), channels, layout) = geometry;
            log::info!(
                "model output is {shape:?}: a {w}x{h} mask instead of {}x{}",
                p.size.0,
                p.size.1
            );
            (p.size, p.channels, p.layout) = ((w, h), channels, layout);
            p.probability.resize(w * h, 0.0);
        }
        p.read(data, &self.manifest.output)
    }

    /// Moves the probability plane of the last [`Model::run`] into `other` without copying it,
    /// by exchanging the two buffers (`other` is first resized to the plane's size, which
    /// allocates only the first time): the next run overwrites the buffer `other` held.
    pub fn swap_probability(&mut self, other: &mut Vec<f32>) {
        other.resize(self.plane.probability.len(), 0.0);
        std::mem::swap(&mut self.plane.probability, other);
    }

    /// Test-time augmentation by mirroring: after a [`Model::run`] on `bgra` (the model's input
    /// size, `stride` bytes per row), runs the model again on the horizontally mirrored frame
    /// and leaves in the plane the mean of the two masks (the second mirrored back). Twice the
    /// inference; measured better on every quality figure of `backdrop-bench quality
    /// --flip-average` (docs/performance.md). `mirrored` and `first` are scratch buffers,
    /// reused: no allocation once they have the frame's size.
    ///
    /// # Errors
    /// The second run's error (a readable sentence); the plane then holds no usable mask.
    pub fn add_mirrored_pass(
        &mut self,
        bgra: &[u8],
        stride: usize,
        mirrored: &mut Vec<u8>,
        first: &mut Vec<f32>,
    ) -> Result<(), String> {
        let (w, h) = self.input_size();
        let row = w as usize * 4;
        mirrored.clear();
        for y in 0..h as usize {
            let pixels = &bgra[y * stride..y * stride + row];
            mirrored.extend(pixels.chunks_exact(4).rev().flatten().copied());
        }
        self.swap_probability(first); // the first pass, kept
        self.preprocess(mirrored, row);
        self.run()?;
        let (mw, _) = self.output_size();
        let second = &self.plane.probability;
        if first.len() == second.len() && mw > 0 {
            for (a, b) in first.chunks_exact_mut(mw).zip(second.chunks_exact(mw)) {
                for (x, m) in a.iter_mut().zip(b.iter().rev()) {
                    *x = 0.5 * (*x + *m);
                }
            }
            self.swap_probability(first);
        }
        Ok(())
    }

    /// NaN or infinite values in the last run's raw output (a broken model; they read as 0).
    pub fn nonfinite_outputs(&self) -> usize {
        self.plane.nonfinite
    }

    /// The probability plane of the last run (`output_size` w x h values in 0..1).
    pub fn probability(&self) -> &[f32] {
        &self.plane.probability
    }

    /// [`Model::preprocess`] then [`Model::run`].
    pub fn infer(&mut self, bgra: &[u8], stride: usize) -> Result<&[f32], String> {
        self.preprocess(bgra, stride);
        self.run()
    }
}

/// The output tensor's geometry and the person-probability plane read from it.
struct Plane {
    /// Mask (width, height) in px.
    size: (usize, usize),
    /// Channels of the output tensor (see [`tensor::person_probability`]).
    channels: usize,
    layout: Layout,
    /// `size.0 * size.1` values in 0..1.
    probability: Vec<f32>,
    /// NaN or infinite values in the last raw output (read as 0: no person).
    nonfinite: usize,
}

impl Plane {
    /// Converts the raw output `data` into the probability plane and returns it.
    fn read(&mut self, data: &[f32], spec: &super::manifest::OutputSpec) -> Result<&[f32], String> {
        self.nonfinite = data.iter().filter(|v| !v.is_finite()).count();
        tensor::person_probability(
            data,
            self.channels,
            self.layout,
            spec,
            self.size.0,
            &mut self.probability,
        )?;
        Ok(&self.probability)
    }
}

/// Creates an ONNX Runtime session for the file at `path` with the plugin's options: graph
/// optimisation "all", `intra_threads` intra-op threads, 1 inter-op thread, spinning off, and
/// the requested execution provider (an error when the runtime does not offer it or it fails
/// to register). Benchmarks use it to time the bare `Session::run` with exactly the filter's
/// options.
pub fn build_session(
    env: &ort::environment::Environment,
    path: &std::path::Path,
    options: SessionOptions,
) -> Result<Session, String> {
    use super::runtime::Provider;
    use ort::ep;
    let threads = options.intra_threads.max(1);
    if options.provider != Provider::Cpu {
        let name = options.provider.runtime_name();
        if !super::runtime::available_providers()
            .iter()
            .any(|p| p == name)
        {
            return Err(format!("this ONNX Runtime build does not offer {name}"));
        }
    }
    let providers: Vec<ep::ExecutionProviderDispatch> = match options.provider {
        Provider::Cpu => vec![],
        Provider::Cuda => vec![ep::CUDA::default().build().error_on_failure()],
        Provider::TensorRt => vec![ep::TensorRT::default().build().error_on_failure()],
        Provider::Rocm => vec![ep::ROCm::default().build().error_on_failure()],
        Provider::MiGraphX => vec![ep::MIGraphX::default().build().error_on_failure()],
        Provider::OpenVino => vec![ep::OpenVINO::default().build().error_on_failure()],
    };
    Session::builder(env)
        .and_then(|b| b.with_execution_providers(&providers).map_err(Into::into))
        .and_then(|b| {
            b.with_optimization_level(GraphOptimizationLevel::All)
                .map_err(Into::into)
        })
        .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
        .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
        .and_then(|b| b.with_intra_op_spinning(false).map_err(Into::into))
        .and_then(|mut b| b.commit_from_file(path))
        .map_err(|e| format!("cannot load model {}: {e}", path.display()))
}

/// Mask size (width, height) in px, channel count and layout of an output tensor shape.
/// Accepts `[1,H,W,C]`, `[1,C,H,W]` (C = 1 or 2) and `[1,H,W]`; with `blocksize` b > 1 (see
/// [`OutputSpec::blocksize`](super::manifest::OutputSpec::blocksize)) only
/// `[1, b*b, H/b, W/b]`, whose mask is `W` x `H`. Dynamic dimensions fall back to the input
/// size.
///
/// # Errors
/// Another shape, or a mask side outside 1..[`MAX_OUTPUT_SIDE`], as a readable sentence.
pub fn output_geometry(
    dims: &[i64],
    input: (usize, usize),
    blocksize: usize,
) -> Result<((usize, usize), usize, Layout), String> {
    let geometry = output_geometry_unbounded(dims, input, blocksize)?;
    let ((w, h), _, _) = geometry;
    if w == 0 || h == 0 || w > MAX_OUTPUT_SIDE || h > MAX_OUTPUT_SIDE {
        return Err(format!(
            "unsupported output shape {dims:?}: a {w}x{h} mask (each side 1..{MAX_OUTPUT_SIDE})"
        ));
    }
    Ok(geometry)
}

/// Largest side of a model's output mask, px: the largest model input a manifest may declare
/// (`Manifest::validate`). A shape beyond it (a corrupt or hostile model) is refused instead of
/// allocated.
pub const MAX_OUTPUT_SIDE: usize = 4096;

fn output_geometry_unbounded(
    dims: &[i64],
    input: (usize, usize),
    blocksize: usize,
) -> Result<((usize, usize), usize, Layout), String> {
    let d = |i: usize, fallback: usize| {
        if dims[i] > 0 {
            dims[i] as usize
        } else {
            fallback
        }
    };
    if blocksize > 1 {
        let b = blocksize;
        if dims.len() != 4 || dims[1] != (b * b) as i64 {
            return Err(format!(
                "unsupported output shape {dims:?} for blocksize {b}: expected [1,{},H/{b},W/{b}]",
                b * b
            ));
        }
        // saturating: a huge declared side must be refused, not wrap around
        return Ok((
            (
                d(3, input.0 / b).saturating_mul(b),
                d(2, input.1 / b).saturating_mul(b),
            ),
            b * b,
            Layout::Nchw,
        ));
    }
    match dims.len() {
        3 => Ok(((d(2, input.0), d(1, input.1)), 1, Layout::Nhwc)),
        4 if (1..=2).contains(&dims[3]) => Ok(((d(2, input.0), d(1, input.1)), dims[3] as usize, Layout::Nhwc)),
        4 if (1..=2).contains(&dims[1]) => Ok(((d(3, input.0), d(2, input.1)), dims[1] as usize, Layout::Nchw)),
        _ => Err(format!("unsupported output shape {dims:?}: expected [1,H,W,C], [1,C,H,W] or [1,H,W] with C = 1 or 2")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_geometry_of_common_shapes() {
        assert_eq!(
            output_geometry(&[1, 256, 256, 1], (256, 256), 1).unwrap(),
            ((256, 256), 1, Layout::Nhwc)
        );
        assert_eq!(
            output_geometry(&[1, 144, 256, 2], (256, 144), 1).unwrap(),
            ((256, 144), 2, Layout::Nhwc)
        );
        assert_eq!(
            output_geometry(&[1, 2, 320, 320], (320, 320), 1).unwrap(),
            ((320, 320), 2, Layout::Nchw)
        );
        assert_eq!(
            output_geometry(&[1, -1, -1, 1], (64, 32), 1).unwrap(),
            ((64, 32), 1, Layout::Nhwc)
        );
        assert!(output_geometry(&[1, 5, 5, 5], (5, 5), 1).is_err());
        assert!(output_geometry(&[256], (5, 5), 1).is_err());
        // depth-packed: [1, 4, H/2, W/2] is a W x H mask
        assert_eq!(
            output_geometry(&[1, 4, 72, 128], (256, 144), 2).unwrap(),
            ((256, 144), 4, Layout::Nchw)
        );
        assert_eq!(
            output_geometry(&[1, 4, -1, -1], (256, 144), 2).unwrap(),
            ((256, 144), 4, Layout::Nchw)
        );
        assert!(output_geometry(&[1, 256, 256, 1], (256, 256), 2).is_err());
    }
}
