//! Inference on a model server: a client of the KServe v2 / Open Inference Protocol over
//! HTTP/1.1 (NVIDIA Triton, OpenVINO Model Server, Seldon MLServer, KServe), blocking, on the
//! worker thread.
//!
//! Requests use the protocol's binary tensor data extension: a JSON header of
//! `Inference-Header-Content-Length` bytes followed by the raw tensor. What is sent depends on
//! the server model's one input, read from its metadata (`GET /v2/models/NAME`) at connect time:
//!
//! - `UINT8 [1, H, W, 3]`: the pixels in the manifest's channel order, 0..255 (196,608 bytes at
//!   256x256). The server model does the normalisation and layout: the variant that
//!   `models/convert.py --triton-repository` writes.
//! - `FP32` in the manifest's own input shape: the packed tensor exactly as the local model gets
//!   it (786,432 bytes at 256x256), so any server serving the plain `.onnx` works too.
//!
//! The response's output named in the manifest is read like the local model's (same shapes, same
//! [`tensor::person_probability`]): FP32, or UINT16 `round(p * 65535)` for a probability output
//! (the server variant's answer, half the bytes, within 7.7e-6 of the float). Protocol: <https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/>,
//! binary extension: Triton's `docs/protocol/extension_binary_data.md`.

use super::manifest::{ChannelOrder, Manifest, OutputKind};
use super::session::output_geometry;
use super::tensor;
use serde::Deserialize;
use std::io::Read;
use std::time::{Duration, Instant};

/// Where the model server is and which model it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Base URL, `http://host:port` (the v2 paths are appended). HTTPS is not built in.
    pub url: String,
    /// Model name on the server.
    pub model: String,
    /// Model version; empty for the server's choice (its latest).
    pub version: String,
    /// Deadline of one inference request, ms: a slower answer counts as a miss.
    pub timeout_ms: u32,
}

impl ServerConfig {
    /// `url` without trailing slashes.
    fn base(&self) -> &str {
        self.url.trim().trim_end_matches('/')
    }

    /// `/v2/models/NAME[/versions/V]/ready`: answers 200 once the model is loaded and ready
    /// (what the health check waits for).
    pub fn ready_url(&self) -> String {
        self.model_url() + "/ready"
    }

    /// `/v2/models/NAME[/versions/V]` on the server.
    fn model_url(&self) -> String {
        let mut u = format!("{}/v2/models/{}", self.base(), self.model.trim());
        if !self.version.trim().is_empty() {
            u.push_str("/versions/");
            u.push_str(self.version.trim());
        }
        u
    }
}

/// How long connecting (health and metadata requests) may take, ms: longer than a frame's
/// deadline, since it happens once per connection and not on a frame.
pub const CONNECT_TIMEOUT_MS: u64 = 2000;

/// Largest response body read, bytes (a 4096x4096 two-channel FP32 mask is 128 MiB; the
/// default models answer 256 KiB): more is refused rather than allocated.
pub const MAX_RESPONSE_BYTES: u64 = 160 << 20;

/// Why a request to the server failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    /// What the failure means for the caller (retry, give up, count a miss).
    pub kind: RemoteErrorKind,
    /// A readable sentence naming the server or model.
    pub message: String,
}

/// What a [`RemoteError`] means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteErrorKind {
    /// No answer in time, no connection, or the server or model is not ready: may pass.
    Unreachable,
    /// The server answered, but its model does not fit the manifest (shapes, data types,
    /// names): will not pass until the settings or the server change.
    Mismatch,
    /// The server answered an inference with an error or a malformed response.
    Failed,
}

impl RemoteError {
    fn new(kind: RemoteErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// The tensor the server model takes (from its metadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// `UINT8 [1, H, W, 3]`, pixels in the manifest's channel order.
    Uint8,
    /// `FP32` in the manifest's input shape, normalised by the plugin.
    Fp32,
}

impl Payload {
    /// The protocol's name of the data type.
    pub fn datatype(self) -> &'static str {
        match self {
            Payload::Uint8 => "UINT8",
            Payload::Fp32 => "FP32",
        }
    }
}

#[derive(Deserialize)]
struct TensorMetadata {
    name: String,
    datatype: String,
    shape: Vec<i64>,
}

#[derive(Deserialize)]
struct ModelMetadata {
    #[serde(default)]
    inputs: Vec<TensorMetadata>,
    #[serde(default)]
    outputs: Vec<TensorMetadata>,
}

#[derive(Deserialize)]
struct ResponseOutput {
    name: String,
    datatype: String,
    shape: Vec<i64>,
    #[serde(default)]
    parameters: Option<serde_json::Map<String, serde_json::Value>>,
    /// Present when the server answered without the binary extension.
    #[serde(default)]
    data: Option<Vec<f32>>,
}

#[derive(Deserialize)]
struct InferResponse {
    #[serde(default)]
    outputs: Vec<ResponseOutput>,
    #[serde(default)]
    error: Option<String>,
}

/// A model on a KServe v2 server, checked against a manifest and ready to infer.
///
/// Every buffer is kept between frames: the request body (its JSON header is made once), the
/// response body, the FP32 values and the probability plane.
pub struct RemoteModel {
    pub config: ServerConfig,
    pub manifest: Manifest,
    /// What the server model takes.
    pub payload: Payload,
    agent: ureq::Agent,
    infer_url: String,
    /// Request body: the JSON header (`header_len` bytes), then the tensor.
    body: Vec<u8>,
    header_len: usize,
    response: Vec<u8>,
    values: Vec<f32>,
    /// FP32 payload scratch (the packed tensor before it becomes bytes).
    packed: Vec<f32>,
    /// Mask (width, height) in px and the person probability plane of the last answer.
    size: (usize, usize),
    probability: Vec<f32>,
    /// Bytes of the last request body and response body.
    pub bytes_sent: usize,
    pub bytes_received: usize,
}

/// Whether `GET url` answers 200 within `timeout` (a readiness endpoint: the server's
/// `/v2/health/ready`, a model's [`ServerConfig::ready_url`]).
pub fn answers_ready(url: &str, timeout: Duration) -> bool {
    matches!(agent(timeout).get(url).call(), Ok(r) if r.status() == 200)
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_idle_connections(2)
        .max_idle_connections_per_host(2)
        .build()
        .into()
}

fn unreachable(config: &ServerConfig, e: &ureq::Error) -> RemoteError {
    let what = match e {
        ureq::Error::Timeout(_) => "no answer in time".to_string(),
        ureq::Error::ConnectionFailed | ureq::Error::Io(_) => format!("cannot connect ({e})"),
        ureq::Error::HostNotFound => "host not found".to_string(),
        other => other.to_string(),
    };
    RemoteError::new(
        RemoteErrorKind::Unreachable,
        format!("inference server {}: {what}", config.base()),
    )
}

impl RemoteModel {
    /// Connects to the server and checks its model against `manifest`: one input, `UINT8 [1, H,
    /// W, 3]` or `FP32` in the manifest's shape (see [`Payload`]), and the manifest's output as
    /// FP32 in a shape the local model could have (see [`output_geometry`]).
    ///
    /// # Errors
    /// [`RemoteErrorKind::Unreachable`] when the server does not answer within
    /// [`CONNECT_TIMEOUT_MS`] or the model is not there (yet); [`RemoteErrorKind::Mismatch`]
    /// when the model does not fit, saying what it takes and what Backdrop sends.
    pub fn connect(config: &ServerConfig, manifest: &Manifest) -> Result<Self, RemoteError> {
        if !config.base().starts_with("http://") {
            return Err(RemoteError::new(
                RemoteErrorKind::Mismatch,
                format!(
                    "inference server URL '{}' must start with http:// (HTTPS is not supported)",
                    config.url.trim()
                ),
            ));
        }
        if config.model.trim().is_empty() {
            return Err(RemoteError::new(
                RemoteErrorKind::Mismatch,
                "no model name given for the inference server",
            ));
        }
        let meta_agent = agent(Duration::from_millis(CONNECT_TIMEOUT_MS));
        let url = config.model_url();
        let mut response = meta_agent
            .get(&url)
            .call()
            .map_err(|e| unreachable(config, &e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| unreachable(config, &e))?;
        if status != 200 {
            let why = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(RemoteError::new(
                RemoteErrorKind::Unreachable,
                format!(
                    "inference server {}: model '{}' is not available ({why})",
                    config.base(),
                    config.model.trim()
                ),
            ));
        }
        let meta: ModelMetadata = serde_json::from_str(&text).map_err(|e| {
            RemoteError::new(
                RemoteErrorKind::Mismatch,
                format!(
                    "inference server {}: unreadable model metadata ({e})",
                    config.base()
                ),
            )
        })?;
        let payload = check_metadata(&meta, manifest).map_err(|why| {
            RemoteError::new(
                RemoteErrorKind::Mismatch,
                format!(
                    "model '{}' on {} does not fit {}: {why}",
                    config.model.trim(),
                    config.base(),
                    manifest.id
                ),
            )
        })?;
        let input_name = &meta.inputs[0].name;
        let (w, h) = manifest.input_size();
        let (shape, bytes) = match payload {
            Payload::Uint8 => (vec![1, h as i64, w as i64, 3], (w * h * 3) as usize),
            Payload::Fp32 => (manifest.input.shape.clone(), (w * h * 3 * 4) as usize),
        };
        let header = serde_json::json!({
            "inputs": [{
                "name": input_name,
                "shape": shape,
                "datatype": payload.datatype(),
                "parameters": { "binary_data_size": bytes },
            }],
            "outputs": [{ "name": manifest.output.name, "parameters": { "binary_data": true } }],
        })
        .to_string();
        let mut body = header.into_bytes();
        let header_len = body.len();
        body.resize(header_len + bytes, 0);
        let mut infer_url = config.model_url();
        infer_url.push_str("/infer");
        Ok(Self {
            config: config.clone(),
            manifest: manifest.clone(),
            payload,
            agent: agent(Duration::from_millis(u64::from(config.timeout_ms.max(1)))),
            infer_url,
            body,
            header_len,
            response: Vec::new(),
            values: Vec::new(),
            packed: Vec::new(),
            size: (0, 0),
            probability: Vec::new(),
            bytes_sent: 0,
            bytes_received: 0,
        })
    }

    /// Model input (width, height) in px.
    pub fn input_size(&self) -> (u32, u32) {
        self.manifest.input_size()
    }

    /// Mask (width, height) in px of the last answer ((0, 0) before the first).
    pub fn output_size(&self) -> (usize, usize) {
        self.size
    }

    /// Sends a BGRA image of exactly the model's input size (`stride` bytes per row) and
    /// returns the person probability plane of the answer (`output_size` w x h values in 0..1).
    ///
    /// # Errors
    /// [`RemoteErrorKind::Unreachable`] for no answer within the deadline or no connection,
    /// [`RemoteErrorKind::Failed`] for an error answer or a malformed one (readable sentences).
    ///
    /// # Panics
    /// When `bgra` is smaller than the input size with `stride`.
    pub fn infer(&mut self, bgra: &[u8], stride: usize) -> Result<&[f32], RemoteError> {
        self.pack(bgra, stride);
        let config = &self.config;
        let mut response = self
            .agent
            .post(&self.infer_url)
            .header("Inference-Header-Content-Length", self.header_len)
            .header("Content-Type", "application/octet-stream")
            .send(&self.body[..])
            .map_err(|e| unreachable(config, &e))?;
        self.bytes_sent = self.body.len();
        let status = response.status().as_u16();
        let header_len = response
            .headers()
            .get("Inference-Header-Content-Length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        self.response.clear();
        response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .reader()
            .read_to_end(&mut self.response)
            .map_err(|e| {
                RemoteError::new(
                    RemoteErrorKind::Unreachable,
                    format!(
                        "inference server {}: reading the answer: {e}",
                        config.base()
                    ),
                )
            })?;
        self.bytes_received = self.response.len();
        let (w, h) = self.input_size();
        self.size = read_answer(
            &self.manifest,
            (w as usize, h as usize),
            (status, header_len, &self.response),
            &mut self.values,
            &mut self.probability,
        )
        .map_err(|why| {
            RemoteError::new(
                RemoteErrorKind::Failed,
                format!("inference server {}: {why}", config.base()),
            )
        })?;
        Ok(&self.probability)
    }

    /// Moves the probability plane of the last [`RemoteModel::infer`] into `other` without a
    /// copy (as [`Model::swap_probability`](super::session::Model::swap_probability)).
    pub fn swap_probability(&mut self, other: &mut Vec<f32>) {
        other.resize(self.probability.len(), 0.0);
        std::mem::swap(&mut self.probability, other);
    }

    /// Writes the tensor of `bgra` into the request body after its header.
    fn pack(&mut self, bgra: &[u8], stride: usize) {
        let (w, h) = self.input_size();
        let (w, h) = (w as usize, h as usize);
        let tail = &mut self.body[self.header_len..];
        match self.payload {
            Payload::Uint8 => {
                let (r, b) = match self.manifest.input.channel_order {
                    ChannelOrder::Rgb => (2, 0),
                    ChannelOrder::Bgr => (0, 2),
                };
                for y in 0..h {
                    let row = &bgra[y * stride..y * stride + w * 4];
                    let out = &mut tail[y * w * 3..(y + 1) * w * 3];
                    for (px, o) in row.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
                        o[0] = px[r];
                        o[1] = px[1];
                        o[2] = px[b];
                    }
                }
            }
            Payload::Fp32 => {
                self.packed.resize(w * h * 3, 0.0);
                tensor::pack_bgra(bgra, w, h, stride, &self.manifest.input, &mut self.packed);
                for (v, o) in self.packed.iter().zip(tail.chunks_exact_mut(4)) {
                    o.copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}

/// Reads an inference answer: HTTP `status`, the `Inference-Header-Content-Length` value (none:
/// all JSON) and the body. The manifest's output (FP32, or UINT16 `round(p * 65535)`; binary or
/// JSON `data`) becomes the person probability plane in `probability`; `values` is scratch.
/// Returns the mask (width, height) in px; `input` is the model's input size.
///
/// # Errors
/// An error answer, a malformed one, or an output that does not make a mask, as a readable
/// sentence. Never panics, whatever the bytes (`tests/hostile_input.rs`).
pub fn read_answer(
    manifest: &Manifest,
    input: (usize, usize),
    (status, header_len, body): (u16, Option<usize>, &[u8]),
    values: &mut Vec<f32>,
    probability: &mut Vec<f32>,
) -> Result<(usize, usize), String> {
    let json_len = header_len.unwrap_or(body.len());
    if json_len > body.len() {
        return Err(format!(
            "answer header of {json_len} bytes in a {}-byte answer",
            body.len()
        ));
    }
    let parsed: InferResponse = serde_json::from_slice(&body[..json_len])
        .map_err(|e| format!("unreadable answer (HTTP {status}): {e}"))?;
    if status != 200 || parsed.error.is_some() {
        let why = parsed.error.unwrap_or_default();
        return Err(format!("inference refused (HTTP {status}): {why}"));
    }
    let spec = &manifest.output;
    let (shape, source) = find_output(&parsed, &spec.name, json_len, body)?;
    let uint16 = parsed
        .outputs
        .iter()
        .any(|o| o.name == spec.name && o.datatype == "UINT16");
    values.clear();
    match source {
        OutputData::Binary(range) if uint16 => values.extend(
            body[range]
                .chunks_exact(2)
                .map(|b| f32::from(u16::from_le_bytes([b[0], b[1]])) / 65535.0),
        ),
        OutputData::Binary(range) => values.extend(
            body[range]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ),
        OutputData::Json(i) => {
            let scale = if uint16 { 1.0 / 65535.0 } else { 1.0 };
            if let Some(d) = &parsed.outputs[i].data {
                values.extend(d.iter().map(|v| v * scale));
            }
        }
    }
    let ((mw, mh), channels, layout) = output_geometry(&shape, input, spec.blocksize)?;
    // a depth-packed output holds b*b channels of (w/b) x (h/b) values: w x h in all
    let expected = if spec.blocksize > 1 {
        mw * mh
    } else {
        mw * mh * channels
    };
    if values.len() != expected {
        return Err(format!(
            "output '{}' has {} values for its shape {shape:?}",
            spec.name,
            values.len()
        ));
    }
    probability.resize(mw * mh, 0.0);
    tensor::person_probability(values, channels, layout, spec, mw, probability)?;
    Ok((mw, mh))
}

/// Where an output's values are in a response.
#[derive(Debug)]
enum OutputData {
    /// Byte range of the binary section.
    Binary(std::ops::Range<usize>),
    /// Index of the output whose `data` holds them.
    Json(usize),
}

/// The shape and data of output `name`: binary outputs follow the JSON header in the order of
/// `outputs` (each `binary_data_size` bytes).
fn find_output(
    r: &InferResponse,
    name: &str,
    json_len: usize,
    body: &[u8],
) -> Result<(Vec<i64>, OutputData), String> {
    let mut offset = json_len;
    for (i, o) in r.outputs.iter().enumerate() {
        let size = o
            .parameters
            .as_ref()
            .and_then(|p| p.get("binary_data_size"))
            .and_then(|v| v.as_u64())
            .map(|v| v as usize);
        if o.name == name {
            if o.datatype != "FP32" && o.datatype != "UINT16" {
                return Err(format!(
                    "output '{name}' is {}, not FP32 or UINT16",
                    o.datatype
                ));
            }
            return match size {
                Some(n) if offset.checked_add(n).is_some_and(|end| end <= body.len()) => {
                    Ok((o.shape.clone(), OutputData::Binary(offset..offset + n)))
                }
                Some(n) => Err(format!(
                    "output '{name}' says {n} bytes, the answer has {}",
                    body.len().saturating_sub(offset)
                )),
                None if o.data.is_some() => Ok((o.shape.clone(), OutputData::Json(i))),
                None => Err(format!("output '{name}' carries no data")),
            };
        }
        offset = offset.saturating_add(size.unwrap_or(0));
    }
    Err(format!("the answer has no output '{name}'"))
}

/// Checks a server model's metadata against the manifest; the payload it takes, or why not.
fn check_metadata(meta: &ModelMetadata, manifest: &Manifest) -> Result<Payload, String> {
    let (w, h) = manifest.input_size();
    let (w, h) = (i64::from(w), i64::from(h));
    let fits = |shape: &[i64], want: &[i64]| {
        shape.len() == want.len()
            && shape
                .iter()
                .zip(want)
                .enumerate()
                .all(|(i, (a, b))| a == b || (i == 0 && *a == -1))
    };
    let describe = |t: &TensorMetadata| format!("'{}' {} {:?}", t.name, t.datatype, t.shape);
    let [input] = meta.inputs.as_slice() else {
        return Err(format!(
            "it has {} inputs, Backdrop sends one",
            meta.inputs.len()
        ));
    };
    let payload = match input.datatype.as_str() {
        "UINT8" if fits(&input.shape, &[1, h, w, 3]) => Payload::Uint8,
        "FP32" if fits(&input.shape, &manifest.input.shape) => Payload::Fp32,
        _ => {
            return Err(format!(
                "its input is {}; Backdrop sends UINT8 [1, {h}, {w}, 3] (the variant made by \
                 models/convert.py --triton-repository) or FP32 {:?}",
                describe(input),
                manifest.input.shape
            ))
        }
    };
    let want = &manifest.output.name;
    let Some(output) = meta.outputs.iter().find(|o| &o.name == want) else {
        let names: Vec<&str> = meta.outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(format!("it has no output '{want}' (it has {names:?})"));
    };
    let probability = manifest.output.kind == OutputKind::Probability;
    match output.datatype.as_str() {
        "FP32" => {}
        "UINT16" if probability => {}
        _ => {
            return Err(format!(
                "its output is {}, not FP32{}",
                describe(output),
                if probability { " or UINT16" } else { "" }
            ))
        }
    }
    let mut shape = output.shape.clone();
    if let Some(first) = shape.first_mut() {
        if *first == -1 {
            *first = 1; // the batch dimension of a dynamic-batch model
        }
    }
    output_geometry(&shape, (w as usize, h as usize), manifest.output.blocksize)
        .map_err(|e| format!("its output {}: {e}", describe(output)))?;
    Ok(payload)
}

/// A background readiness check with backoff while inference runs on this computer: the
/// model's `/v2/models/NAME/ready` (the server's health and the model's presence at once);
/// [`HealthCheck::ready`] turns true once it answers 200. The thread stops on
/// drop (within one request's [`CONNECT_TIMEOUT_MS`]).
pub struct HealthCheck {
    shared: std::sync::Arc<HealthShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct HealthShared {
    ready: std::sync::atomic::AtomicBool,
    stop: std::sync::Mutex<bool>,
    wake: std::sync::Condvar,
}

/// First wait between health checks, ms; it doubles after each failed check up to
/// [`HEALTH_BACKOFF_MAX_MS`].
pub const HEALTH_BACKOFF_FIRST_MS: u64 = 250;
/// Longest wait between health checks, ms.
pub const HEALTH_BACKOFF_MAX_MS: u64 = 8000;

impl HealthCheck {
    /// Starts checking `url` (a readiness endpoint, see [`answers_ready`]) on a thread named
    /// `backdrop-health`, the first check after `first_wait_ms`.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(url: &str, first_wait_ms: u64) -> std::io::Result<Self> {
        let shared = std::sync::Arc::new(HealthShared {
            ready: std::sync::atomic::AtomicBool::new(false),
            stop: std::sync::Mutex::new(false),
            wake: std::sync::Condvar::new(),
        });
        let s = shared.clone();
        let url = url.to_string();
        let thread = std::thread::Builder::new()
            .name("backdrop-health".into())
            .spawn(move || {
                let mut wait = first_wait_ms.max(1);
                loop {
                    let deadline = Instant::now() + Duration::from_millis(wait);
                    let mut stop = super::worker::lock(&s.stop);
                    while !*stop && Instant::now() < deadline {
                        let left = deadline.saturating_duration_since(Instant::now());
                        stop = s
                            .wake
                            .wait_timeout(stop, left)
                            .map(|(g, _)| g)
                            .unwrap_or_else(|e| e.into_inner().0);
                    }
                    if *stop {
                        return;
                    }
                    drop(stop);
                    if answers_ready(&url, Duration::from_millis(CONNECT_TIMEOUT_MS)) {
                        s.ready.store(true, std::sync::atomic::Ordering::Release);
                        return;
                    }
                    wait = (wait * 2).min(HEALTH_BACKOFF_MAX_MS);
                }
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Whether the server answered ready (the check then ends).
    pub fn ready(&self) -> bool {
        self.shared.ready.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for HealthCheck {
    fn drop(&mut self) {
        *super::worker::lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"{ "id": "m", "name": "m", "file": "m.onnx", "licence": "test",
                 "input": { "name": "input_1", "shape": [1, 3, 256, 256], "layout": "NCHW",
                            "channel_order": "RGB", "mean": [0,0,0], "std": [255,255,255] },
                 "output": { "name": "out", "kind": "probability", "person_channel": 0,
                             "blocksize": 2 } }"#,
        )
        .expect("manifest")
    }

    fn meta(input: (&str, &[i64]), output: (&str, &str, &[i64])) -> ModelMetadata {
        ModelMetadata {
            inputs: vec![TensorMetadata {
                name: "x".into(),
                datatype: input.0.into(),
                shape: input.1.to_vec(),
            }],
            outputs: vec![TensorMetadata {
                name: output.0.into(),
                datatype: output.1.into(),
                shape: output.2.to_vec(),
            }],
        }
    }

    #[test]
    fn metadata_picks_the_payload_and_refuses_what_does_not_fit() {
        let m = manifest();
        let out = ("out", "FP32", &[1i64, 4, 128, 128][..]);
        assert_eq!(
            check_metadata(&meta(("UINT8", &[1, 256, 256, 3]), out), &m),
            Ok(Payload::Uint8)
        );
        assert_eq!(
            check_metadata(&meta(("UINT8", &[-1, 256, 256, 3]), out), &m),
            Ok(Payload::Uint8)
        );
        assert_eq!(
            check_metadata(&meta(("FP32", &[1, 3, 256, 256]), out), &m),
            Ok(Payload::Fp32)
        );
        let wrong_size = check_metadata(&meta(("UINT8", &[1, 144, 256, 3]), out), &m);
        assert!(wrong_size.unwrap_err().contains("UINT8 [1, 256, 256, 3]"));
        let wrong_name = check_metadata(
            &meta(
                ("UINT8", &[1, 256, 256, 3]),
                ("seg", "FP32", &[1, 4, 128, 128]),
            ),
            &m,
        );
        assert!(wrong_name.unwrap_err().contains("no output 'out'"));
        let wrong_type = check_metadata(
            &meta(
                ("UINT8", &[1, 256, 256, 3]),
                ("out", "FP16", &[1, 4, 128, 128]),
            ),
            &m,
        );
        assert!(wrong_type.unwrap_err().contains("not FP32 or UINT16"));
        assert_eq!(
            check_metadata(
                &meta(
                    ("UINT8", &[1, 256, 256, 3]),
                    ("out", "UINT16", &[1, 4, 128, 128])
                ),
                &m
            ),
            Ok(Payload::Uint8)
        );
        let wrong_shape = check_metadata(
            &meta(
                ("UINT8", &[1, 256, 256, 3]),
                ("out", "FP32", &[1, 1, 256, 256]),
            ),
            &m,
        );
        assert!(wrong_shape
            .unwrap_err()
            .contains("unsupported output shape"));
    }

    #[test]
    fn binary_outputs_are_found_after_the_header_in_order() {
        let r: InferResponse = serde_json::from_str(
            r#"{ "outputs": [
                 { "name": "a", "datatype": "FP32", "shape": [1], "parameters": { "binary_data_size": 4 } },
                 { "name": "out", "datatype": "FP32", "shape": [1, 2], "parameters": { "binary_data_size": 8 } } ] }"#,
        )
        .unwrap();
        let body = vec![0u8; 10 + 12];
        let (shape, data) = find_output(&r, "out", 10, &body).unwrap();
        assert_eq!(shape, vec![1, 2]);
        assert!(matches!(data, OutputData::Binary(r) if r == (14..22)));
        assert!(find_output(&r, "out", 11, &body)
            .unwrap_err()
            .contains("says 8 bytes"));
        assert!(find_output(&r, "missing", 10, &body).is_err());
    }

    #[test]
    fn a_server_that_is_not_there_is_unreachable_at_once() {
        // a port nobody listens on: bind one, then close it
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = ServerConfig {
            url: format!("http://127.0.0.1:{port}"),
            model: "m".into(),
            version: String::new(),
            timeout_ms: 100,
        };
        let started = Instant::now();
        let e = RemoteModel::connect(&config, &manifest())
            .err()
            .expect("error");
        assert_eq!(e.kind, RemoteErrorKind::Unreachable);
        assert!(e.message.contains(&config.url), "{}", e.message);
        assert!(started.elapsed() < Duration::from_millis(CONNECT_TIMEOUT_MS));
        assert!(!answers_ready(
            &config.ready_url(),
            Duration::from_millis(200)
        ));
        let https = ServerConfig {
            url: "https://example.invalid".into(),
            ..config
        };
        let e = RemoteModel::connect(&https, &manifest())
            .err()
            .expect("error");
        assert_eq!(e.kind, RemoteErrorKind::Mismatch);
    }
}
