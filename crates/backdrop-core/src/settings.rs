//! The filter's settings, each declared once in [`settings!`]'s table: its key (the field name,
//! stable snake_case as OBS stores it in scene collections), the locale key of its label, its kind
//! with range and default, when it is shown, and whether the worker needs it. Defaults, reading
//! with validation, the properties view (the plugin walks [`TABLE`]), and the split between what
//! the worker and what the renderer need all come from that table.
//!
//! Reading goes through [`Store`], so the same code reads OBS's `obs_data_t` (the plugin), a JSON
//! object (tools, tests) or anything else.

use crate::mask::refine::RefineParams;
use crate::mask::roi::AspectMode;
use crate::segmentation::cadence::CadenceParams;
use crate::segmentation::manifest::Manifest;
use crate::segmentation::remote::ServerConfig;
use crate::segmentation::runtime::Provider;
use crate::segmentation::session::SessionOptions;
use crate::segmentation::worker::Request;

/// The `model` value that selects the user's own manifest (`custom_model_path`).
pub const CUSTOM_MODEL: &str = "custom";

/// The default model id (MediaPipe selfie segmentation, general 256x256).
pub const DEFAULT_MODEL: &str = "selfie_general";

/// Guided filter regularisation used by the filter (luma in 0..1). See `mask::refine`.
pub const EDGE_EPS: f32 = 0.01;

/// The kind of a setting: its control, value type, range and default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A slider over `min..=max` in `step`s; values outside are clamped, non-finite ones give
    /// the default.
    Float {
        min: f64,
        max: f64,
        step: f64,
        default: f64,
    },
    /// An integer slider over `min..=max`; values outside are clamped.
    Int {
        min: i64,
        max: i64,
        step: i64,
        default: i64,
    },
    /// A checkbox.
    Bool { default: bool },
    /// A file path, "" by default; `filter` is the locale key of the file dialog's filter.
    Path { filter: &'static str },
    /// A line of text; blank gives `default`.
    Text { default: &'static str },
    /// A colour as OBS stores it, 0xAABBGGRR.
    Color { default: u32 },
    /// One value of a list of `(value, label locale key)`; unknown or blank values give the
    /// default. An empty `choices` means the list is made when the properties are shown (the
    /// installed models, the execution providers the loaded runtime offers).
    Choice {
        default: &'static str,
        choices: &'static [(&'static str, &'static str)],
    },
}

/// Which side of the filter uses a setting: a change of a `Worker` setting sends the worker a new
/// [`Request`]; `Render` settings are read by the graphics thread every frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Worker,
    Render,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The key in the settings object; also the field name of [`Settings`].
    pub key: &'static str,
    /// Locale key of the label (`data/locale/*.ini`).
    pub label: &'static str,
    pub kind: Kind,
    /// Shown only while the setting `.0` has one of the values `.1`.
    pub shown_when: Option<(&'static str, &'static [&'static str])>,
    pub needs: Needs,
}

/// Where settings are read from; `None` for a key that is not set (the row's default applies).
/// OBS's settings object always answers: it holds the defaults `get_defaults` wrote.
pub trait Store {
    fn string(&self, key: &str) -> Option<String>;
    fn int(&self, key: &str) -> Option<i64>;
    fn double(&self, key: &str) -> Option<f64>;
    fn bool(&self, key: &str) -> Option<bool>;
}

/// A JSON object as a settings store (the tools' `--set`, tests); numbers convert between
/// integer and floating point as OBS's do.
impl Store for serde_json::Map<String, serde_json::Value> {
    fn string(&self, key: &str) -> Option<String> {
        self.get(key)?.as_str().map(str::to_string)
    }
    fn int(&self, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    }
    fn double(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }
    fn bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }
}

/// A value type of [`Settings`]: how it comes from a store and from its row's default.
pub trait Value: Sized {
    /// The row's default.
    fn default_of(kind: &Kind) -> Self;
    /// The stored value, validated against the row (see [`Kind`]).
    fn read(store: &dyn Store, setting: &Setting) -> Self;
}

impl Value for f32 {
    fn default_of(kind: &Kind) -> Self {
        match *kind {
            Kind::Float { default, .. } => default as f32,
            _ => 0.0,
        }
    }
    fn read(store: &dyn Store, s: &Setting) -> Self {
        let Some(v) = store.double(s.key) else {
            return Self::default_of(&s.kind);
        };
        match s.kind {
            Kind::Float { min, max, .. } if v.is_finite() => v.clamp(min, max) as f32,
            Kind::Float { default, .. } => default as f32,
            _ => v as f32,
        }
    }
}

impl Value for u32 {
    fn default_of(kind: &Kind) -> Self {
        match *kind {
            Kind::Int { default, .. } => default as u32,
            Kind::Color { default } => default,
            _ => 0,
        }
    }
    fn read(store: &dyn Store, s: &Setting) -> Self {
        let Some(v) = store.int(s.key) else {
            return Self::default_of(&s.kind);
        };
        match s.kind {
            Kind::Int { min, max, .. } => v.clamp(min, max) as u32,
            // OBS stores 0xAABBGGRR in an int64; only the low 32 bits mean anything.
            Kind::Color { .. } => v as u32,
            _ => v.clamp(0, u32::MAX as i64) as u32,
        }
    }
}

impl Value for bool {
    fn default_of(kind: &Kind) -> Self {
        matches!(kind, Kind::Bool { default: true })
    }
    fn read(store: &dyn Store, s: &Setting) -> Self {
        store
            .bool(s.key)
            .unwrap_or_else(|| Self::default_of(&s.kind))
    }
}

impl Value for String {
    fn default_of(kind: &Kind) -> Self {
        match *kind {
            Kind::Choice { default, .. } | Kind::Text { default } => default.to_string(),
            _ => String::new(),
        }
    }
    fn read(store: &dyn Store, s: &Setting) -> Self {
        match store.string(s.key) {
            Some(v) if !v.trim().is_empty() => v,
            _ => Self::default_of(&s.kind),
        }
    }
}

/// An enum chosen from a [`Kind::Choice`] list by its value string; declared with [`choice!`].
pub trait Choice: Sized + Copy + PartialEq + 'static {
    /// The variants, in list order.
    const ALL: &'static [Self];
    /// `(value, label locale key)` of each variant, in the same order: the [`Kind::Choice`] list.
    const CHOICES: &'static [(&'static str, &'static str)];
    /// The variant whose value is `value`.
    fn from_value(value: &str) -> Option<Self> {
        let i = Self::CHOICES.iter().position(|(v, _)| *v == value)?;
        Self::ALL.get(i).copied()
    }
    /// The value string of this variant.
    fn value(self) -> &'static str {
        let i = Self::ALL.iter().position(|m| *m == self).unwrap_or(0);
        Self::CHOICES[i].0
    }
}

/// Declares an enum whose variants each have a setting value and a label locale key, with its
/// [`Choice`] and [`Value`] impls; one variant carries `#[default]`.
#[macro_export]
macro_rules! choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = ($value:literal, $label:literal),)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $crate::settings::Choice for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),*];
            const CHOICES: &'static [(&'static str, &'static str)] = &[$(($value, $label)),*];
        }

        impl $crate::settings::Value for $name {
            fn default_of(kind: &$crate::settings::Kind) -> Self {
                use $crate::settings::Choice;
                match *kind {
                    $crate::settings::Kind::Choice { default, .. } => Self::from_value(default),
                    _ => None,
                }
                .unwrap_or(Self::ALL[0])
            }
            fn read(store: &dyn $crate::settings::Store, s: &$crate::settings::Setting) -> Self {
                use $crate::settings::Choice;
                store
                    .string(s.key)
                    .and_then(|v| Self::from_value(&v))
                    .unwrap_or_else(|| Self::default_of(&s.kind))
            }
        }
    };
}

choice! {
    /// Where the soft edge lies relative to the threshold (see `mask::edge_window`).
    pub enum Feather {
        /// Softens into the person.
        Inward = ("inward", "Feather.Inward"),
        /// Centred on the threshold.
        #[default]
        Centered = ("centered", "Feather.Centered"),
        /// Softens into the background: every pixel of the person keeps full alpha.
        Outward = ("outward", "Feather.Outward"),
    }
}

impl Feather {
    /// The shift of the edge window in half-widths (`mask::edge_window`): +1, 0, -1.
    pub fn shift(self) -> f32 {
        match self {
            Feather::Inward => 1.0,
            Feather::Centered => 0.0,
            Feather::Outward => -1.0,
        }
    }
}

choice! {
    /// What replaces the background.
    pub enum Mode {
        #[default]
        Blur = ("blur", "Mode.Blur"),
        Image = ("image", "Mode.Image"),
        Color = ("color", "Mode.Color"),
        Transparent = ("transparent", "Mode.Transparent"),
        /// The background as a mosaic of `pixel_size` blocks.
        Pixelate = ("pixelate", "Mode.Pixelate"),
        /// Blur that grows with the distance from the person: sharp at the silhouette, full
        /// `blur_strength` at `focal_distance`.
        Focal = ("focal", "Mode.Focal"),
        /// Another OBS source (`background_source`) behind the person.
        Source = ("source", "Mode.Source"),
        /// A video file (`background_video`) played behind the person.
        Video = ("video", "Mode.Video"),
    }
}

impl Mode {
    /// Whether the background is another source's video: a user's source or the private
    /// media source of a video file.
    pub fn shows_source(self) -> bool {
        matches!(self, Mode::Source | Mode::Video)
    }
}

choice! {
    /// An effect applied to the person.
    pub enum Effect {
        #[default]
        None = ("none", "Effect.None"),
        /// The hologram of the 2020 virtual-background "fakecam": a blue-cyan colour map, dark
        /// scan bands and ghosting (see `data/effects/backdrop.effect`).
        Hologram = ("hologram", "Effect.Hologram"),
    }
}

choice! {
    /// Where the segmentation model runs.
    pub enum Inference {
        /// On this computer (ONNX Runtime in OBS).
        #[default]
        Local = ("local", "Inference.Local"),
        /// On a KServe v2 inference server, this computer being the fallback.
        Remote = ("remote", "Inference.Remote"),
    }
}

/// Declares [`Settings`] (one field per row), [`TABLE`] (the rows, in the order the properties
/// view shows them), `Default`, [`Settings::read`] and [`Settings::worker_differs`].
macro_rules! settings {
    ($(
        $(#[$doc:meta])*
        $field:ident: $ty:ty = $kind:expr, label $label:literal, $needs:ident
            $(, shown when $when:literal in [$($v:literal),*])?;
    )*) => {
        /// Validated settings, one field per row of [`TABLE`].
        #[derive(Clone, Debug, PartialEq)]
        pub struct Settings {
            $($(#[$doc])* pub $field: $ty,)*
        }

        /// Every setting, in the order the properties view shows them.
        pub const TABLE: &[Setting] = &[$(
            Setting {
                key: stringify!($field),
                label: $label,
                kind: $kind,
                shown_when: settings!(@when $($when, [$($v),*])?),
                needs: Needs::$needs,
            },
        )*];

        impl Default for Settings {
            fn default() -> Self {
                let mut rows = TABLE.iter();
                Self { $($field: <$ty as Value>::default_of(&rows.next().expect("row").kind),)* }
            }
        }

        impl Settings {
            /// Reads and validates every setting from `store` (OBS's `update`).
            pub fn read(store: &dyn Store) -> Self {
                let mut rows = TABLE.iter();
                Self { $($field: <$ty as Value>::read(store, rows.next().expect("row")),)* }
            }

            /// Whether the worker must get a new [`Request`]: a setting it needs differs.
            pub fn worker_differs(&self, other: &Settings) -> bool {
                false $(|| (Needs::$needs == Needs::Worker && self.$field != other.$field))*
            }
        }
    };
    (@when) => { None };
    (@when $when:literal, [$($v:literal),*]) => { Some(($when, &[$($v),*])) };
}

settings! {
    /// Model id from the installed manifests, or [`CUSTOM_MODEL`].
    model: String = Kind::Choice { default: DEFAULT_MODEL, choices: &[] }, label "Model", Worker;
    /// Manifest (.json) or model (.onnx with a .json beside it) of the user's own model.
    custom_model_path: String = Kind::Path { filter: "ModelFilter" }, label "CustomModelPath",
        Worker, shown when "model" in ["custom"];
    /// Which part of the frame the model sees: person region of interest, stretch or letterbox
    /// (see `mask::roi`). Region of interest by default: portraits IoU 0.8696 -> 0.8946,
    /// boundary F 0.640 -> 0.686 in `backdrop-bench quality` (docs/quality.md).
    aspect: AspectMode = Kind::Choice { default: "roi", choices: AspectMode::CHOICES },
        label "Aspect", Worker;
    /// What replaces the background.
    mode: Mode = Kind::Choice { default: "blur", choices: Mode::CHOICES }, label "Mode", Render;
    /// Blur radius in px at the source's resolution, 1..100 (also the fallback blur while a
    /// chosen image, source or video cannot be shown).
    blur_strength: f32 = Kind::Float { min: 1.0, max: 100.0, step: 1.0, default: 24.0 },
        label "BlurStrength", Render,
        shown when "mode" in ["blur", "image", "focal", "source", "video"];
    /// Focal blur: distance from the silhouette at which the blur is full, px of the source
    /// frame, 4..400 (about 95 % of `blur_strength` there, none at the silhouette).
    focal_distance: f32 = Kind::Float { min: 4.0, max: 400.0, step: 1.0, default: 60.0 },
        label "FocalDistance", Render, shown when "mode" in ["focal"];
    /// Block size of the pixelated background, px of the source frame, 2..128.
    pixel_size: u32 = Kind::Int { min: 2, max: 128, step: 1, default: 16 }, label "PixelSize",
        Render, shown when "mode" in ["pixelate"];
    /// Background image file.
    image_path: String = Kind::Path { filter: "ImageFilter" }, label "ImagePath", Render,
        shown when "mode" in ["image"];
    /// Name of the OBS source (input or scene) shown behind the person; the list is made when
    /// the properties are shown.
    background_source: String = Kind::Choice { default: "", choices: &[] },
        label "BackgroundSource", Render, shown when "mode" in ["source"];
    /// Video file played (looping, muted) behind the person.
    background_video: String = Kind::Path { filter: "VideoFilter" }, label "BackgroundVideo",
        Render, shown when "mode" in ["video"];
    /// Background colour as OBS stores it, 0xAABBGGRR; a chroma green, opaque, by default.
    color: u32 = Kind::Color { default: 0xFF00_B140 }, label "Color", Render,
        shown when "mode" in ["color"];
    /// Effect applied to the person, over any background.
    effect: Effect = Kind::Choice { default: "none", choices: Effect::CHOICES }, label "Effect",
        Render;
    /// Probability above which a pixel is the person, 0.01..0.99.
    threshold: f32 = Kind::Float { min: 0.01, max: 0.99, step: 0.01, default: 0.5 },
        label "Threshold", Render;
    /// Width of the soft edge around the threshold, 0..1 (0 = hard cut).
    edge_softness: f32 = Kind::Float { min: 0.0, max: 1.0, step: 0.01, default: 0.3 },
        label "EdgeSoftness", Render;
    /// Where the soft edge lies: into the person, centred, or into the background (outward keeps
    /// every pixel of the person at full alpha).
    feather: Feather = Kind::Choice { default: "centered", choices: Feather::CHOICES },
        label "Feather", Render;
    /// Temporal smoothing strength of successive masks, 0..0.95 (see `mask::TemporalSmoother`).
    temporal_smoothing: f32 = Kind::Float { min: 0.0, max: 0.95, step: 0.01, default: 0.6 },
        label "TemporalSmoothing", Worker;
    /// Grow (> 0) or shrink (< 0) the person, px of the source frame, -20..20.
    mask_expand: f32 = Kind::Float { min: -20.0, max: 20.0, step: 0.5, default: 0.0 },
        label "MaskExpand", Worker;
    /// Remove detached blobs smaller than this % of the frame, 0..5.
    min_blob_percent: f32 = Kind::Float { min: 0.0, max: 5.0, step: 0.05, default: 0.2 },
        label "MinBlob", Worker;
    /// Edge-aware (guided) upsampling. Off by default: in `backdrop-bench quality` the guided
    /// step lowers portrait IoU, boundary F and raises still flicker at every radius/eps tried
    /// (docs/quality.md).
    edge_aware: bool = Kind::Bool { default: false }, label "EdgeAware", Worker;
    /// Guided filter radius in mask px, 1..16.
    edge_radius: u32 = Kind::Int { min: 1, max: 16, step: 1, default: 4 }, label "EdgeRadius",
        Worker;
    /// Skip inference while no 16x16 block of the model's input changed by more than this many
    /// levels (0..255) since the last inferred frame; 0 = never skip. 0..20.
    motion_threshold: f32 = Kind::Float { min: 0.0, max: 20.0, step: 0.5, default: 3.0 },
        label "MotionThreshold", Worker;
    /// Between inferences, move the last mask with the person's measured motion instead of
    /// inferring every frame they move (see `segmentation::cadence`); needs `motion_threshold`.
    /// Off by default: it keeps the IoU loss under 0.005 and takes a third off the worker's CPU
    /// on a talking head, but flickers 8 % more on the real videos (docs/performance.md).
    motion_warp: bool = Kind::Bool { default: false }, label "MotionWarp", Worker;
    /// Also run the model on the mirrored frame and average the two masks: better on every
    /// quality figure (portraits IoU +0.007, boundary F +1.2 points, flicker -7 to -37 %), at
    /// twice the inference (3.5 ms with the general model here; docs/performance.md).
    mirror_average: bool = Kind::Bool { default: false }, label "MirrorAverage", Worker;
    /// Run the model on every Nth frame only, 1..10.
    inference_interval: u32 = Kind::Int { min: 1, max: 10, step: 1, default: 1 },
        label "InferenceInterval", Render;
    /// ONNX Runtime execution provider: `cpu`, or one the loaded runtime offers (see
    /// `segmentation::runtime::PROVIDERS`).
    execution_provider: String = Kind::Choice { default: "cpu", choices: &[] },
        label "ExecutionProvider", Worker;
    /// Intra-op threads, 1..8 (1 by default: measured barely slower than 2 for these models
    /// while using far less CPU).
    intra_threads: u32 = Kind::Int { min: 1, max: 8, step: 1, default: 1 }, label "IntraThreads",
        Worker;
    /// Where the model runs: this computer, or a KServe v2 inference server (Triton, OpenVINO
    /// Model Server, ...) with this computer as the fallback (see `segmentation::remote`).
    inference: Inference = Kind::Choice { default: "local", choices: Inference::CHOICES },
        label "Inference", Worker;
    /// The inference server's base URL (HTTP).
    server_url: String = Kind::Text { default: "http://127.0.0.1:8000" }, label "ServerUrl",
        Worker, shown when "inference" in ["remote"];
    /// The model's name on the server; blank: the model's id (the name
    /// `models/convert.py --triton-repository` gives it).
    server_model: String = Kind::Text { default: "" }, label "ServerModel", Worker,
        shown when "inference" in ["remote"];
    /// The model's version on the server; blank: the server's choice.
    server_model_version: String = Kind::Text { default: "" }, label "ServerModelVersion",
        Worker, shown when "inference" in ["remote"];
    /// Deadline of one request, ms, 10..2000: a later answer is a miss (the previous mask
    /// stays); after `MISSES_BEFORE_FALLBACK` in a row the model runs on this computer.
    server_timeout_ms: u32 = Kind::Int { min: 10, max: 2000, step: 10, default: 100 },
        label "ServerTimeout", Worker, shown when "inference" in ["remote"];
}

/// The row of `key`.
///
/// # Panics
/// When no row has that key (a programming error: keys are the field names).
pub fn setting(key: &str) -> &'static Setting {
    TABLE
        .iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("no setting {key:?}"))
}

impl Settings {
    /// The refinement the worker applies (see `mask::refine`).
    pub fn refine_params(&self) -> RefineParams {
        RefineParams {
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
    pub fn session_options(&self) -> SessionOptions {
        SessionOptions {
            intra_threads: self.intra_threads as usize,
            provider: Provider::parse(&self.execution_provider),
        }
    }

    /// The worker's request for these settings and the model they select (or why there is
    /// none).
    pub fn request(&self, manifest: Result<Manifest, String>) -> Request {
        let manifest_id = manifest.as_ref().ok().map(|m| m.id.clone());
        let manifest_id = manifest_id.as_deref();
        Request {
            manifest,
            refine: self.refine_params(),
            cadence: CadenceParams {
                motion_threshold: self.motion_threshold,
                warp: self.motion_warp,
            },
            mirror_average: self.mirror_average,
            session: self.session_options(),
            aspect: self.aspect,
            server: self.server_config(manifest_id),
        }
    }

    /// The inference server to use, `None` for this computer. `model_id`: the chosen model's
    /// id, the server model's name when `server_model` is blank.
    pub fn server_config(&self, model_id: Option<&str>) -> Option<ServerConfig> {
        (self.inference == Inference::Remote).then(|| ServerConfig {
            url: self.server_url.trim().to_string(),
            model: match self.server_model.trim() {
                "" => model_id.unwrap_or_default().to_string(),
                name => name.to_string(),
            },
            version: self.server_model_version.trim().to_string(),
            timeout_ms: self.server_timeout_ms,
        })
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
    use serde_json::json;

    fn read(v: serde_json::Value) -> Settings {
        Settings::read(v.as_object().expect("object"))
    }

    #[test]
    fn reading_clamps_into_range_and_replaces_nonsense_with_defaults() {
        let d = Settings::default();
        let s = read(json!({
            "threshold": 7.0, "edge_softness": -1.0, "blur_strength": 0.0, "model": " ",
            "edge_radius": 400, "inference_interval": 0, "mode": "sepia", "aspect": 3,
        }));
        assert_eq!(s.threshold, 0.99);
        assert_eq!(s.edge_softness, 0.0);
        assert_eq!(s.blur_strength, 1.0);
        assert_eq!(s.model, DEFAULT_MODEL);
        assert_eq!(s.edge_radius, 16);
        assert_eq!(s.inference_interval, 1);
        assert_eq!(s.mode, Mode::Blur);
        assert_eq!(s.aspect, d.aspect);
        // A non-finite number (OBS can store one) falls back to the default.
        let mut store = serde_json::Map::new();
        store.insert("temporal_smoothing".into(), json!(0.2));
        assert_eq!(Settings::read(&store).temporal_smoothing, 0.2);
        struct Nan;
        impl Store for Nan {
            fn string(&self, _: &str) -> Option<String> {
                None
            }
            fn int(&self, _: &str) -> Option<i64> {
                None
            }
            fn double(&self, _: &str) -> Option<f64> {
                Some(f64::NAN)
            }
            fn bool(&self, _: &str) -> Option<bool> {
                None
            }
        }
        assert_eq!(
            Settings::read(&Nan).temporal_smoothing,
            d.temporal_smoothing
        );
    }

    #[test]
    fn an_empty_store_reads_as_the_defaults() {
        assert_eq!(read(json!({})), Settings::default());
        assert_eq!(Settings::default().mode.value(), "blur");
    }

    #[test]
    fn stored_values_in_range_are_read_unchanged() {
        let s = read(json!({
            "model": "selfie_landscape", "mode": "transparent", "aspect": "letterbox",
            "threshold": 0.3, "color": 0x80FF_0010u32, "edge_aware": true, "edge_radius": 7,
            "intra_threads": 2, "execution_provider": "cuda", "image_path": "/a.png",
        }));
        assert_eq!(s.model, "selfie_landscape");
        assert_eq!(s.mode, Mode::Transparent);
        assert_eq!(s.aspect, AspectMode::Letterbox);
        assert_eq!(s.threshold, 0.3);
        assert_eq!(s.color, 0x80FF_0010);
        assert!(s.edge_aware);
        assert_eq!((s.edge_radius, s.intra_threads), (7, 2));
        assert_eq!(s.execution_provider, "cuda");
        assert_eq!(s.image_path, "/a.png");
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

    /// Each row changed to a value other than its default: only worker rows reach the worker.
    #[test]
    fn a_change_reaches_the_worker_exactly_when_its_row_says_so() {
        let d = Settings::default();
        for row in TABLE {
            let other = match row.kind {
                Kind::Float { min, max, .. } => json!((min + max) / 2.0 + 0.123),
                Kind::Int { max, .. } => json!(max),
                Kind::Bool { default } => json!(!default),
                Kind::Path { .. } => json!("/elsewhere"),
                Kind::Text { .. } => json!("elsewhere"),
                Kind::Color { default } => json!(default ^ 0xFF),
                Kind::Choice { choices, .. } if !choices.is_empty() => {
                    json!(choices.last().expect("choices").0)
                }
                Kind::Choice { .. } => json!("something_else"),
            };
            // The other rows, absent from the store, read as their defaults.
            let changed = read(json!({ row.key: other }));
            assert_ne!(changed, d, "{} did not change", row.key);
            assert_eq!(
                changed.worker_differs(&d),
                row.needs == Needs::Worker,
                "{}",
                row.key
            );
        }
    }
}
