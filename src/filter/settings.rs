//! The filter's settings: stable snake_case keys, defaults, and a validated plain struct.

use crate::mask::roi::AspectMode;
use crate::obs::data::Data;

pub const KEY_MODEL: &str = "model";
pub const KEY_MODE: &str = "mode";
pub const KEY_THRESHOLD: &str = "threshold";
pub const KEY_EDGE_SOFTNESS: &str = "edge_softness";
pub const KEY_TEMPORAL_SMOOTHING: &str = "temporal_smoothing";
pub const KEY_BLUR_STRENGTH: &str = "blur_strength";
pub const KEY_IMAGE_PATH: &str = "image_path";
pub const KEY_COLOR: &str = "color";
pub const KEY_MASK_EXPAND: &str = "mask_expand";
pub const KEY_MIN_BLOB: &str = "min_blob_percent";
pub const KEY_EDGE_AWARE: &str = "edge_aware";
pub const KEY_EDGE_RADIUS: &str = "edge_radius";
pub const KEY_CUSTOM_MODEL: &str = "custom_model_path";
pub const KEY_MOTION_THRESHOLD: &str = "motion_threshold";
pub const KEY_INFERENCE_INTERVAL: &str = "inference_interval";
pub const KEY_PROVIDER: &str = "execution_provider";
pub const KEY_THREADS: &str = "intra_threads";
pub const KEY_ASPECT: &str = "aspect";

/// The `model` value that selects the user's own manifest (`custom_model_path`).
pub const CUSTOM_MODEL: &str = "custom";

/// Guided filter regularisation used by the filter (luma in 0..1). See `mask::refine`.
pub const EDGE_EPS: f32 = 0.01;

/// The default model id (MediaPipe selfie segmentation, general 256x256).
pub const DEFAULT_MODEL: &str = "selfie_general";

/// What replaces the background.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Blur,
    Image,
    Color,
    Transparent,
}

impl Mode {
    /// All modes with their setting value and locale key, in list order.
    pub const ALL: [(Mode, &'static str, &'static str); 4] = [
        (Mode::Blur, "blur", "Mode.Blur"),
        (Mode::Image, "image", "Mode.Image"),
        (Mode::Color, "color", "Mode.Color"),
        (Mode::Transparent, "transparent", "Mode.Transparent"),
    ];

    /// Parses a setting value; unknown values give blur (the mode that never shows the room).
    pub fn parse(value: &str) -> Mode {
        Self::ALL
            .iter()
            .find(|(_, v, _)| *v == value)
            .map_or(Mode::Blur, |(m, _, _)| *m)
    }
}

/// Validated settings. Ranges: threshold, softness, smoothing 0..1; blur strength 1..100 px.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub model: String,
    pub mode: Mode,
    pub threshold: f32,
    pub edge_softness: f32,
    pub temporal_smoothing: f32,
    /// Blur radius in px at the source's resolution.
    pub blur_strength: f32,
    pub image_path: String,
    /// Background colour as OBS stores it: 0xAABBGGRR.
    pub color: u32,
    /// Grow (> 0) or shrink (< 0) the person, px of the source frame, -20..20.
    pub mask_expand: f32,
    /// Remove detached blobs smaller than this % of the frame, 0..5.
    pub min_blob_percent: f32,
    /// Edge-aware (guided) upsampling on/off.
    pub edge_aware: bool,
    /// Guided filter radius in mask px, 1..16.
    pub edge_radius: u32,
    /// Manifest (.json) or model (.onnx with a .json beside it) of the user's own model.
    pub custom_model_path: String,
    /// Skip inference while no 16x16 block of the model's input changed by more than this many
    /// levels (0..255) since the last inferred frame; 0 = never skip. 0..20.
    pub motion_threshold: f32,
    /// Run the model on every Nth frame only, 1..10.
    pub inference_interval: u32,
    /// ONNX Runtime execution provider: `cpu`, or one the loaded runtime offers (see
    /// `segmentation::runtime::PROVIDERS`).
    pub execution_provider: String,
    /// Intra-op threads, 1..8 (1 by default: measured barely slower than 2 for these models
    /// while using far less CPU).
    pub intra_threads: u32,
    /// Which part of the frame the model sees: person region of interest, stretch or
    /// letterbox (see `mask::roi`).
    pub aspect: AspectMode,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.into(),
            mode: Mode::Blur,
            threshold: 0.5,
            edge_softness: 0.3,
            temporal_smoothing: 0.6,
            blur_strength: 24.0,
            image_path: String::new(),
            color: 0xFF00_B140, // a chroma green, opaque
            mask_expand: 0.0,
            min_blob_percent: 0.2,
            // Off by default: in `backdrop-bench quality` the guided step lowers portrait IoU,
            // boundary F and raises still flicker at every radius/eps tried (docs/quality.md).
            edge_aware: false,
            edge_radius: 4,
            custom_model_path: String::new(),
            motion_threshold: 3.0,
            inference_interval: 1,
            execution_provider: "cpu".into(),
            intra_threads: 1,
            // Person region of interest: portraits IoU 0.8696 -> 0.8946, boundary F 0.640 -> 0.686
            // in backdrop-bench quality (docs/quality.md).
            aspect: AspectMode::RegionOfInterest,
        }
    }
}

impl Settings {
    /// Writes the defaults into an OBS settings object (`get_defaults`).
    pub fn write_defaults(data: Data) {
        let d = Settings::default();
        data.default_string(KEY_MODEL, &d.model);
        data.default_string(KEY_MODE, "blur");
        data.default_double(KEY_THRESHOLD, d.threshold as f64);
        data.default_double(KEY_EDGE_SOFTNESS, d.edge_softness as f64);
        data.default_double(KEY_TEMPORAL_SMOOTHING, d.temporal_smoothing as f64);
        data.default_double(KEY_BLUR_STRENGTH, d.blur_strength as f64);
        data.default_string(KEY_IMAGE_PATH, "");
        data.default_int(KEY_COLOR, d.color as i64);
        data.default_double(KEY_MASK_EXPAND, d.mask_expand as f64);
        data.default_double(KEY_MIN_BLOB, d.min_blob_percent as f64);
        data.default_bool(KEY_EDGE_AWARE, d.edge_aware);
        data.default_int(KEY_EDGE_RADIUS, d.edge_radius as i64);
        data.default_string(KEY_CUSTOM_MODEL, "");
        data.default_double(KEY_MOTION_THRESHOLD, d.motion_threshold as f64);
        data.default_int(KEY_INFERENCE_INTERVAL, d.inference_interval as i64);
        data.default_string(KEY_PROVIDER, &d.execution_provider);
        data.default_int(KEY_THREADS, d.intra_threads as i64);
        data.default_string(KEY_ASPECT, d.aspect.key());
    }

    /// Reads and validates settings from OBS (`update`).
    pub fn read(data: Data) -> Self {
        Self::validated(Settings {
            model: data.string(KEY_MODEL),
            mode: Mode::parse(&data.string(KEY_MODE)),
            threshold: data.double(KEY_THRESHOLD) as f32,
            edge_softness: data.double(KEY_EDGE_SOFTNESS) as f32,
            temporal_smoothing: data.double(KEY_TEMPORAL_SMOOTHING) as f32,
            blur_strength: data.double(KEY_BLUR_STRENGTH) as f32,
            image_path: data.string(KEY_IMAGE_PATH),
            color: data.int(KEY_COLOR) as u32,
            mask_expand: data.double(KEY_MASK_EXPAND) as f32,
            min_blob_percent: data.double(KEY_MIN_BLOB) as f32,
            edge_aware: data.bool(KEY_EDGE_AWARE),
            edge_radius: data.int(KEY_EDGE_RADIUS).clamp(0, 64) as u32,
            custom_model_path: data.string(KEY_CUSTOM_MODEL),
            motion_threshold: data.double(KEY_MOTION_THRESHOLD) as f32,
            inference_interval: data.int(KEY_INFERENCE_INTERVAL).clamp(0, 1000) as u32,
            execution_provider: data.string(KEY_PROVIDER),
            intra_threads: data.int(KEY_THREADS).clamp(0, 1000) as u32,
            aspect: AspectMode::from_key(&data.string(KEY_ASPECT)),
        })
    }

    /// Clamps every value into its range; non-finite numbers fall back to the default.
    pub fn validated(mut self) -> Self {
        let d = Settings::default();
        let fix =
            |v: f32, lo: f32, hi: f32, def: f32| if v.is_finite() { v.clamp(lo, hi) } else { def };
        self.threshold = fix(self.threshold, 0.01, 0.99, d.threshold);
        self.edge_softness = fix(self.edge_softness, 0.0, 1.0, d.edge_softness);
        self.temporal_smoothing = fix(self.temporal_smoothing, 0.0, 0.95, d.temporal_smoothing);
        self.blur_strength = fix(self.blur_strength, 1.0, 100.0, d.blur_strength);
        self.mask_expand = fix(self.mask_expand, -20.0, 20.0, d.mask_expand);
        self.min_blob_percent = fix(self.min_blob_percent, 0.0, 5.0, d.min_blob_percent);
        self.edge_radius = self.edge_radius.clamp(1, 16);
        self.motion_threshold = fix(self.motion_threshold, 0.0, 20.0, d.motion_threshold);
        self.inference_interval = self.inference_interval.clamp(1, 10);
        self.intra_threads = self.intra_threads.clamp(1, 8);
        if self.execution_provider.trim().is_empty() {
            self.execution_provider = d.execution_provider;
        }
        if self.model.trim().is_empty() {
            self.model = d.model;
        }
        self
    }

    /// Whether the worker must get a new request: anything it uses differs (the model, its
    /// session, refinement, motion skip, aspect handling). Render-only settings do not count.
    pub fn worker_differs(&self, other: &Settings) -> bool {
        self.model != other.model
            || self.custom_model_path != other.custom_model_path
            || self.refine_params() != other.refine_params()
            || self.motion_threshold != other.motion_threshold
            || self.session_options() != other.session_options()
            || self.aspect != other.aspect
    }

    /// The refinement the worker applies (see `mask::refine`).
    pub fn refine_params(&self) -> crate::mask::refine::RefineParams {
        crate::mask::refine::RefineParams {
            temporal_smoothing: self.temporal_smoothing,
            expand_px: self.mask_expand,
            min_blob_fraction: self.min_blob_percent / 100.0,
            guided_radius: if self.edge_aware {
                self.edge_radius as usize
            } else {
                0
            },
            guided_eps: EDGE_EPS,
        }
    }

    /// ONNX Runtime session options.
    pub fn session_options(&self) -> crate::segmentation::session::SessionOptions {
        crate::segmentation::session::SessionOptions {
            intra_threads: self.intra_threads as usize,
            provider: crate::segmentation::runtime::Provider::parse(&self.execution_provider),
        }
    }

    /// The background colour as straight-alpha RGBA floats in 0..1.
    pub fn color_rgba(&self) -> [f32; 4] {
        let c = self.color;
        [
            c & 0xFF,
            (c >> 8) & 0xFF,
            (c >> 16) & 0xFF,
            (c >> 24) & 0xFF,
        ]
        .map(|v| v as f32 / 255.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_clamps_and_replaces_nonsense() {
        let s = Settings {
            threshold: 7.0,
            edge_softness: -1.0,
            temporal_smoothing: f32::NAN,
            blur_strength: 0.0,
            model: " ".into(),
            ..Settings::default()
        }
        .validated();
        assert_eq!(s.threshold, 0.99);
        assert_eq!(s.edge_softness, 0.0);
        assert_eq!(s.temporal_smoothing, Settings::default().temporal_smoothing);
        assert_eq!(s.blur_strength, 1.0);
        assert_eq!(s.model, DEFAULT_MODEL);
    }

    #[test]
    fn obs_colour_is_abgr() {
        let s = Settings {
            color: 0x80FF_0010,
            ..Settings::default()
        };
        let [r, g, b, a] = s.color_rgba();
        assert_eq!((r * 255.0, g * 255.0, b * 255.0), (16.0, 0.0, 255.0));
        assert!((a - 128.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn every_worker_setting_reaches_the_worker_and_render_settings_do_not() {
        let d = Settings::default();
        let worker_changes = [
            Settings {
                model: "selfie_landscape".into(),
                ..d.clone()
            },
            Settings {
                custom_model_path: "/x.json".into(),
                ..d.clone()
            },
            Settings {
                temporal_smoothing: 0.1,
                ..d.clone()
            },
            Settings {
                mask_expand: 2.0,
                ..d.clone()
            },
            Settings {
                min_blob_percent: 1.0,
                ..d.clone()
            },
            Settings {
                edge_aware: true,
                ..d.clone()
            },
            Settings {
                motion_threshold: 0.0,
                ..d.clone()
            },
            Settings {
                execution_provider: "cuda".into(),
                ..d.clone()
            },
            Settings {
                intra_threads: 2,
                ..d.clone()
            },
            Settings {
                aspect: AspectMode::Letterbox,
                ..d.clone()
            },
        ];
        for s in &worker_changes {
            assert!(s.worker_differs(&d), "{s:?}");
        }
        let render_only = Settings {
            mode: Mode::Color,
            threshold: 0.3,
            edge_softness: 0.1,
            blur_strength: 50.0,
            color: 0,
            inference_interval: 3,
            ..d.clone()
        };
        assert!(!render_only.worker_differs(&d));
    }

    #[test]
    fn unknown_mode_is_blur() {
        assert_eq!(Mode::parse("image"), Mode::Image);
        assert_eq!(Mode::parse("nonsense"), Mode::Blur);
    }
}
