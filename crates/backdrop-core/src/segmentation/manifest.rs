//! Model manifests: one JSON file per model, describing its tensors completely so that no model
//! needs code of its own. See `models/README.md` for the schema.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Memory layout of the 4-D image tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Layout {
    /// `[1, H, W, C]`
    #[serde(rename = "NHWC")]
    Nhwc,
    /// `[1, C, H, W]`
    #[serde(rename = "NCHW")]
    Nchw,
}

/// Order of the three colour channels in the tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ChannelOrder {
    #[serde(rename = "RGB")]
    Rgb,
    #[serde(rename = "BGR")]
    Bgr,
}

/// What the output tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// One channel, person probability already in 0..1.
    Probability,
    /// Two channels of logits; softmax across channels gives the person probability.
    LogitsSoftmax,
    /// Two channels of probabilities that already sum to 1.
    Probabilities,
}

/// How the frame is fitted to the model's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Aspect {
    /// Stretch the whole frame to the input size (what the MediaPipe models are trained for).
    #[default]
    Stretch,
}

/// The model's input tensor.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct InputSpec {
    /// Tensor name in the ONNX graph.
    pub name: String,
    /// Shape, 4 dimensions: `[1, H, W, 3]` for NHWC, `[1, 3, H, W]` for NCHW.
    pub shape: Vec<i64>,
    pub layout: Layout,
    pub channel_order: ChannelOrder,
    /// Per-channel mean subtracted from 0..255 pixel values (in tensor channel order).
    pub mean: [f32; 3],
    /// Per-channel divisor applied after the mean: value = (x - mean) / std.
    pub std: [f32; 3],
}

/// The model's output tensor.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct OutputSpec {
    /// Tensor name in the ONNX graph.
    pub name: String,
    pub kind: OutputKind,
    /// Index of the person channel (0 for single-channel outputs).
    pub person_channel: usize,
    /// The `blocksize` of the ONNX `DepthToSpace` that turns the output into the mask (1, the
    /// default: the output is the mask). With `b` > 1 the output is NCHW
    /// `[1, b * b, H / b, W / b]` and channel `dy * b + dx` holds mask pixel
    /// `(b * y + dy, b * x + dx)` (only for kind `probability`). `models/convert.py` writes the
    /// MediaPipe models this way (`b` = 2): their last layer, a 2x2 stride-2 transposed
    /// convolution to one channel, is then a plain 1x1 convolution, which ONNX Runtime runs
    /// faster, and the plugin rearranges the values while it reads them.
    #[serde(default = "one")]
    pub blocksize: usize,
}

fn one() -> usize {
    1
}

/// Largest accepted [`OutputSpec::blocksize`].
pub const MAX_BLOCKSIZE: usize = 8;

/// A model described by its manifest file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Manifest {
    /// Stable identifier, stored in the filter's `model` setting.
    pub id: String,
    /// Human-readable name shown in the model list.
    pub name: String,
    /// ONNX file, relative to the manifest's folder (or absolute).
    pub file: String,
    pub input: InputSpec,
    pub output: OutputSpec,
    #[serde(default)]
    pub aspect: Aspect,
    pub licence: String,
    #[serde(default)]
    pub licence_file: Option<String>,
    #[serde(default)]
    pub source: String,
    /// Folder the manifest was read from (set by [`Manifest::load`]).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// Largest manifest file read, bytes (the shipped ones are under 1 KB).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Errors from reading or validating a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read model manifest {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid model manifest {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("model manifest {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    ///
    /// # Errors
    /// A file that cannot be read (missing, a symlink loop, not UTF-8, larger than
    /// [`MAX_MANIFEST_BYTES`]), invalid JSON, or a manifest that fails validation; each names
    /// the path.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let io = |source| ManifestError::Io {
            path: path.into(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // at most one byte past the limit: a huge file is refused, not read into memory
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(file, MAX_MANIFEST_BYTES + 1),
            &mut text,
        )
        .map_err(io)?;
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(io(std::io::Error::other(format!(
                "larger than {MAX_MANIFEST_BYTES} bytes: not a model manifest"
            ))));
        }
        let mut manifest = Self::parse(&text).map_err(|e| match e {
            ManifestError::Json { source, .. } => ManifestError::Json {
                path: path.into(),
                source,
            },
            ManifestError::Invalid { message, .. } => ManifestError::Invalid {
                path: path.into(),
                message,
            },
            other => other,
        })?;
        manifest.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(manifest)
    }

    /// Parses and validates manifest JSON (the folder is left empty).
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|source| ManifestError::Json {
                path: PathBuf::new(),
                source,
            })?;
        manifest
            .validate()
            .map_err(|message| ManifestError::Invalid {
                path: PathBuf::new(),
                message,
            })?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), String> {
        let s = &self.input.shape;
        if s.len() != 4 {
            return Err(format!(
                "input shape must have 4 dimensions, got {}",
                s.len()
            ));
        }
        let channels = match self.input.layout {
            Layout::Nhwc => s[3],
            Layout::Nchw => s[1],
        };
        if s[0] != 1 || channels != 3 {
            return Err(format!(
                "input shape {s:?} is not a single 3-channel image for {:?}",
                self.input.layout
            ));
        }
        let (w, h) = self.input_size();
        if !(8..=4096).contains(&w) || !(8..=4096).contains(&h) {
            return Err(format!("input size {w}x{h} is out of range 8..4096"));
        }
        if self.input.std.iter().any(|v| *v == 0.0 || !v.is_finite()) {
            return Err("input std must be non-zero".into());
        }
        if self.input.mean.iter().any(|v| !v.is_finite()) {
            return Err("input mean must be finite".into());
        }
        let max_channel = match self.output.kind {
            OutputKind::Probability => 0,
            _ => 1,
        };
        if self.output.person_channel > max_channel {
            return Err(format!(
                "person_channel {} does not exist for output kind {:?}",
                self.output.person_channel, self.output.kind
            ));
        }
        let b = self.output.blocksize;
        if !(1..=MAX_BLOCKSIZE).contains(&b) {
            return Err(format!(
                "output blocksize {b} is not between 1 and {MAX_BLOCKSIZE}"
            ));
        }
        if b > 1 && self.output.kind != OutputKind::Probability {
            return Err(format!(
                "output blocksize {b} needs output kind probability, not {:?}",
                self.output.kind
            ));
        }
        Ok(())
    }

    /// Model input (width, height) in px.
    pub fn input_size(&self) -> (u32, u32) {
        let s = &self.input.shape;
        match self.input.layout {
            Layout::Nhwc => (s[2].max(0) as u32, s[1].max(0) as u32),
            Layout::Nchw => (s[3].max(0) as u32, s[2].max(0) as u32),
        }
    }

    /// Absolute path of the ONNX file.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join(&self.file)
    }
}

/// Reads every `*.json` manifest in `dir`, sorted by file name; unreadable ones are returned as
/// errors alongside the good ones.
pub fn scan(dir: &Path) -> (Vec<Manifest>, Vec<ManifestError>) {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| it.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for p in paths {
        match Manifest::load(&p) {
            Ok(m) => good.push(m),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERAL: &str = r#"{
      "id": "selfie_general", "name": "MediaPipe", "file": "selfie_segmentation.onnx",
      "input": { "name": "input_1", "shape": [1, 256, 256, 3], "layout": "NHWC", "channel_order": "RGB",
                 "mean": [0, 0, 0], "std": [255, 255, 255] },
      "output": { "name": "activation_10", "kind": "probability", "person_channel": 0 },
      "aspect": "stretch", "licence": "Apache-2.0" }"#;

    #[test]
    fn unreadable_files_are_readable_errors() {
        let dir = std::env::temp_dir().join(format!("backdrop-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // not UTF-8
        let bad = dir.join("latin1.json");
        std::fs::write(&bad, b"{\"id\": \"caf\xe9\"}").unwrap();
        // larger than the limit: refused without being read whole
        let huge = dir.join("huge.json");
        let f = std::fs::File::create(&huge).unwrap();
        f.set_len(10 * MAX_MANIFEST_BYTES).unwrap();
        // a symlink loop
        let (a, b) = (dir.join("a.json"), dir.join("b.json"));
        let _ = std::fs::remove_file(&a);
        let _ = std::fs::remove_file(&b);
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        for path in [&bad, &huge, &a] {
            let e = Manifest::load(path).unwrap_err().to_string();
            assert!(e.contains(path.to_str().unwrap()), "{e}");
        }
        assert!(Manifest::load(&huge)
            .unwrap_err()
            .to_string()
            .contains("larger than"));
        // the scan lists each as an error next to the good ones
        let (good, bad_ones) = scan(&dir);
        assert!(good.is_empty());
        assert_eq!(bad_ones.len(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parses_nhwc_manifest() {
        let m = Manifest::parse(GENERAL).unwrap();
        assert_eq!(m.input_size(), (256, 256));
        assert_eq!(m.input.layout, Layout::Nhwc);
        assert_eq!(m.output.kind, OutputKind::Probability);
        assert_eq!(m.output.blocksize, 1, "blocksize defaults to 1");
    }

    #[test]
    fn blocksize_is_read_and_checked() {
        let with = |b: &str, kind: &str| {
            GENERAL.replace(
                "\"probability\", \"person_channel\": 0",
                &format!("\"{kind}\", \"person_channel\": 0, \"blocksize\": {b}"),
            )
        };
        assert_eq!(
            Manifest::parse(&with("2", "probability"))
                .unwrap()
                .output
                .blocksize,
            2
        );
        for (b, kind, what) in [
            ("0", "probability", "not between"),
            ("9", "probability", "not between"),
            ("2", "logits_softmax", "needs output kind probability"),
        ] {
            let err = Manifest::parse(&with(b, kind)).unwrap_err().to_string();
            assert!(err.contains(what), "{b} {kind}: {err}");
        }
    }

    #[test]
    fn nchw_size_and_softmax() {
        let text = GENERAL
            .replace("[1, 256, 256, 3]", "[1, 3, 320, 240]")
            .replace("NHWC", "NCHW")
            .replace(
                "\"probability\", \"person_channel\": 0",
                "\"logits_softmax\", \"person_channel\": 1",
            );
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.input_size(), (240, 320));
        assert_eq!(m.output.kind, OutputKind::LogitsSoftmax);
    }

    #[test]
    fn rejects_bad_rank_channel_and_std() {
        let rank = GENERAL.replace("[1, 256, 256, 3]", "[256, 256, 3]");
        assert!(Manifest::parse(&rank)
            .unwrap_err()
            .to_string()
            .contains("4 dimensions"));
        let ch = GENERAL.replace("\"person_channel\": 0", "\"person_channel\": 1");
        assert!(Manifest::parse(&ch)
            .unwrap_err()
            .to_string()
            .contains("person_channel"));
        let std = GENERAL.replace("[255, 255, 255]", "[255, 0, 255]");
        assert!(Manifest::parse(&std)
            .unwrap_err()
            .to_string()
            .contains("std"));
        assert!(matches!(
            Manifest::parse("{"),
            Err(ManifestError::Json { .. })
        ));
    }
}
