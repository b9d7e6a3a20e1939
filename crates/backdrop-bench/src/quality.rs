//! `backdrop-bench quality`: runs the plugin's mask pipeline on the shared test data, one lane per
//! configuration, and prints the table.
//!
//! Per frame (full-resolution RGB frame F, `fw` x `fh`), exactly what the filter does:
//! 1. downscale the region of F that `RegionTracker` chose (whole frame, letterbox or person
//!    region of interest) to the model's input size with the twin of the GPU downscale -> BGRA
//!    ([`super::downscale`]);
//! 2. `Model::infer` -> person probability at `model.output_size()`; `RegionTracker::observe`
//!    chooses the next region (a detection pass is inferred but not shown: lanes keep their mask);
//! 3. per configuration: `Refiner::refine` (one refiner per stream and configuration, so temporal
//!    smoothing carries over within a video; a fresh one per portrait) -> `(a, b)` coefficients;
//! 4. `composite_alpha` at F's resolution with F's luma -> alpha (0..1), the CPU twin of the
//!    effect's final step. Predicted person = alpha > 0.5.
//!
//! Inference runs once per frame and aspect handling; its probability plane is shared by all
//! configurations with that aspect handling.

use super::cli::{ModelRef, QualityOptions};
use super::config::{self, Config};
use super::downscale::{self, GpuDownscale, Resample};
use super::media::{self, RgbImage};
use super::metrics::{self, Flicker};
use super::synthetic::{self, Scene};
use anyhow::{bail, Context, Result};
use backdrop_core::mask::edge_window;
use backdrop_core::mask::refine::{composite_alpha, luma, Refiner};
use backdrop_core::mask::roi::{AspectMode, Region, RegionTracker};
use backdrop_core::segmentation::cadence::{Cadence, Step};
use backdrop_core::segmentation::manifest::{self, Manifest};
use backdrop_core::segmentation::session::{Model, SessionOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Boundary match tolerance, px at image resolution (Euclidean).
pub const BOUNDARY_TOLERANCE_PX: f64 = 2.0;
/// Frames each portrait is shown for (a still picture in OBS is inferred again and again): the
/// person region of interest needs the mask of an earlier frame, and temporal smoothing then
/// weighs the first, whole-frame mask by 0.6^7 < 3 %. Stretch lanes see identical masks.
const PORTRAIT_FRAMES: usize = 8;
/// How many portraits `--write-masks` writes.
const WRITE_PORTRAITS: usize = 4;
/// Synthetic frames `--write-masks` writes (first, mid-motion, start and end of the still part).
const WRITE_SYNTHETIC_FRAMES: [usize; 4] = [0, 75, 151, 299];
/// Real-video frames `--write-masks` writes.
const WRITE_VIDEO_FRAMES: [usize; 2] = [0, 60];

/// Mean IoU of bare models on the 96 portraits, from `../shared/testdata/PROVENANCE.md`
/// (image stretched to the model input, threshold 0.5, mask upscaled to the image size).
pub fn reference_iou(model_id: &str) -> Option<f64> {
    match model_id {
        "selfie_general" => Some(0.866),
        "selfie_landscape" => Some(0.863),
        "meet" => Some(0.877),
        "sinet" => Some(0.645),
        _ => None,
    }
}

pub use backdrop_testdata::{portrait_ids, root};

/// Per-video statistics of the synthetic section.
#[derive(Clone, Debug, Default)]
struct SyntheticStats {
    ious: Vec<f64>,
    still: Flicker,
    moving: Flicker,
}

/// One configuration and its per-stream state and results.
struct Lane {
    config: Config,
    refiner: Refiner,
    prob: Vec<f32>,
    alpha: Vec<f32>,
    prev: Vec<f32>,
    has_prev: bool,
    refine_ms: Vec<f64>,
    /// The coefficients shown now and the region they cover (kept over a detection pass).
    coefficients: Vec<f32>,
    region: Region,
    portrait_iou: Vec<f64>,
    portrait_f: Vec<f64>,
    synthetic: Vec<SyntheticStats>,
    real: Vec<Flicker>,
    /// Chooses the frames this lane infers (every frame without `config.cadence`).
    cadence: Cadence,
    /// This frame's step, and per video (synthetic, then real) the frames inferred, kept and
    /// warped and the IoU of each frame's alpha against the every-frame `defaults` lane's.
    step: Step,
    streams: Vec<CadenceStats>,
    warp_ms: Vec<f64>,
    /// A copy of the small frame for `Cadence::inferred` (which takes it).
    frame: Vec<u8>,
}

/// Per-video figures of a lane with a cadence.
#[derive(Clone, Debug, Default)]
struct CadenceStats {
    steps: [usize; 3],
    iou_vs_every: Vec<f64>,
    /// The same IoUs by step (infer, keep, warp).
    by_step: [Vec<f64>; 3],
}

impl Lane {
    fn new(config: Config) -> Self {
        let mut cadence = Cadence::default();
        cadence.set_params(config.cadence.unwrap_or_default());
        Self {
            cadence,
            step: Step::Infer,
            streams: Vec::new(),
            warp_ms: Vec::new(),
            frame: Vec::new(),
            config,
            refiner: Refiner::default(),
            prob: Vec::new(),
            alpha: Vec::new(),
            prev: Vec::new(),
            has_prev: false,
            refine_ms: Vec::new(),
            coefficients: Vec::new(),
            region: Region::FULL,
            portrait_iou: Vec::new(),
            portrait_f: Vec::new(),
            synthetic: Vec::new(),
            real: Vec::new(),
        }
    }

    /// A new stream (portrait or video): fresh refiner, no previous alpha.
    fn start_stream(&mut self) {
        self.refiner = Refiner::default();
        self.has_prev = false;
        self.coefficients.clear();
        self.cadence.reset();
    }

    /// Counts this frame's step and its agreement with the every-frame lane's alpha
    /// (`reference`), for the current video.
    fn compare_with_every_frame(&mut self, reference: &[bool]) {
        if self.config.cadence.is_none() {
            return;
        }
        let iou = metrics::iou(&self.predicted(), reference);
        let stats = self.streams.last_mut().expect("pushed per video");
        stats.steps[self.step as usize] += 1;
        stats.iou_vs_every.push(iou);
        stats.by_step[self.step as usize].push(iou);
    }

    /// Keeps this frame's alpha as the previous one.
    fn end_frame(&mut self) {
        std::mem::swap(&mut self.prev, &mut self.alpha);
        self.has_prev = true;
    }

    fn predicted(&self) -> Vec<bool> {
        self.alpha.iter().map(|a| *a > 0.5).collect()
    }
}

/// Downscale and inference of one aspect handling: shared by the lanes that use it.
struct Front {
    tracker: RegionTracker,
    downscale: Option<GpuDownscale>,
    bgra: Vec<u8>,
    prob: Vec<f32>,
    /// The region the last frame was inferred on, and whether its mask is shown.
    region: Region,
    show: bool,
}

/// The shared front of the pipeline: downscale and inference, once per frame and aspect
/// handling (stretch, letterbox, person region of interest), exactly as the filter's worker
/// does it (`RegionTracker` chooses the region from the previous mask).
struct Engine {
    model: Model,
    resample: Resample,
    /// Also infer the mirrored input and average (`--flip-average`).
    flip_average: bool,
    flipped: Vec<u8>,
    first: Vec<f32>,
    fronts: Vec<(AspectMode, Front)>,
    luma: Vec<f32>,
    downscale_ms: Vec<f64>,
    infer_ms: Vec<f64>,
    composite_ms: Vec<f64>,
}

impl Engine {
    fn new(model: Model, resample: Resample) -> Self {
        Self {
            model,
            resample,
            flip_average: false,
            flipped: Vec::new(),
            first: Vec::new(),
            fronts: Vec::new(),
            luma: Vec::new(),
            downscale_ms: Vec::new(),
            infer_ms: Vec::new(),
            composite_ms: Vec::new(),
        }
    }

    /// A new stream: every front looks at the whole frame again.
    fn start_stream(&mut self, lanes: &mut [Lane]) {
        for (_, front) in &mut self.fronts {
            front.tracker.reset();
        }
        for lane in lanes {
            lane.start_stream();
        }
    }

    /// Runs one frame through every lane; afterwards each lane's `alpha` holds the frame's alpha
    /// (when `composite`; otherwise only the lanes' state moves on).
    fn process(&mut self, frame: &RgbImage, lanes: &mut [Lane], composite: bool) -> Result<()> {
        let (fw, fh) = (frame.width, frame.height);
        let (iw, ih) = self.model.input_size();
        let (w, h) = self.model.output_size();
        for lane in lanes.iter() {
            if !self.fronts.iter().any(|(a, _)| *a == lane.config.aspect) {
                let front = Front {
                    tracker: RegionTracker::new(lane.config.aspect),
                    downscale: None,
                    bgra: Vec::new(),
                    prob: Vec::new(),
                    region: Region::FULL,
                    show: true,
                };
                self.fronts.push((lane.config.aspect, front));
            }
        }
        let source = (fw as u32, fh as u32);
        let input = (iw, ih);
        let (iw, ih) = (iw as usize, ih as usize);
        for (aspect, front) in &mut self.fronts {
            if !lanes.iter().any(|l| l.config.aspect == *aspect) {
                continue;
            }
            let region = front.tracker.region(source, input);
            let t = Instant::now();
            match self.resample {
                Resample::Gpu => {
                    if !front
                        .downscale
                        .as_ref()
                        .is_some_and(|d| d.is_for((fw, fh), (iw, ih), region))
                    {
                        front.downscale = Some(GpuDownscale::new((fw, fh), (iw, ih), region));
                    }
                    let d = front.downscale.as_mut().expect("set above");
                    d.run(&frame.data, &mut front.bgra);
                }
                Resample::FirBilinear => downscale::fir_bilinear(
                    &frame.data,
                    (fw, fh),
                    (iw, ih),
                    region,
                    &mut front.bgra,
                )?,
            }
            self.downscale_ms.push(ms(t));
            let t = Instant::now();
            let prob = self
                .model
                .infer(&front.bgra, iw * 4)
                .map_err(anyhow::Error::msg)?;
            front.prob.clear();
            front.prob.extend_from_slice(prob);
            if self.flip_average {
                // the plugin's own mirrored pass (setting `mirror_average`)
                self.model
                    .add_mirrored_pass(&front.bgra, iw * 4, &mut self.flipped, &mut self.first)
                    .map_err(anyhow::Error::msg)?;
                front.prob.clear();
                front.prob.extend_from_slice(self.model.probability());
            }
            self.infer_ms.push(ms(t));
            front.show = front
                .tracker
                .observe(&front.prob, (w, h), region, source, input);
            front.region = region;
        }

        self.luma.clear();
        self.luma
            .extend(frame.data.chunks_exact(3).map(|p| luma(p[0], p[1], p[2])));
        for lane in lanes.iter_mut() {
            let (_, front) = self
                .fronts
                .iter()
                .find(|(a, _)| *a == lane.config.aspect)
                .expect("added above");
            lane.alpha.resize(fw * fh, 0.0);
            let t = Instant::now();
            lane.step = if lane.coefficients.is_empty() || lane.config.cadence.is_none() {
                Step::Infer
            } else {
                lane.cadence.decide(&front.bgra, (iw, ih), front.region)
            };
            if lane.step == Step::Warp {
                lane.cadence.warp(&mut lane.coefficients);
                lane.warp_ms.push(ms(t));
            }
            if lane.step == Step::Infer && (front.show || lane.coefficients.is_empty()) {
                lane.prob.clear();
                lane.prob.extend_from_slice(&front.prob);
                let t = Instant::now();
                let coefficients = lane.refiner.refine(
                    &mut lane.prob,
                    w,
                    h,
                    &front.bgra,
                    (iw, ih, iw * 4),
                    source,
                    front.region,
                    &lane.config.params,
                );
                lane.refine_ms.push(ms(t));
                lane.coefficients.clear();
                lane.coefficients.extend_from_slice(coefficients);
                lane.region = front.region;
                if lane.config.cadence.is_some() {
                    lane.frame.clear();
                    lane.frame.extend_from_slice(&front.bgra);
                    lane.cadence.inferred(
                        &mut lane.frame,
                        (iw, ih),
                        front.region,
                        &lane.prob,
                        (w, h),
                        &lane.coefficients,
                    );
                }
            }
            if !composite {
                continue;
            }
            let t = Instant::now();
            composite_alpha(
                &lane.coefficients,
                w,
                h,
                lane.region,
                &self.luma,
                fw,
                fh,
                // centred, the filter's default `feather`
                edge_window(lane.config.threshold, lane.config.softness, 0.0),
                &mut lane.alpha,
            );
            self.composite_ms.push(ms(t));
        }
        Ok(())
    }
}

/// Compares each lane with a cadence against the every-frame `defaults` lane, this frame.
fn compare_with_every_frame(lanes: &mut [Lane]) {
    let Some(every) = lanes.iter().position(|l| l.config.name == "defaults") else {
        return;
    };
    let reference = lanes[every].predicted();
    for lane in lanes.iter_mut() {
        lane.compare_with_every_frame(&reference);
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn load_portrait(testdata: &Path, id: u32) -> Result<(RgbImage, Vec<bool>)> {
    let image = media::decode_image(&testdata.join(format!("portraits/images/{id}.jpg")))?;
    let truth = media::load_mask(
        &testdata.join(format!("portraits/masks/{id}.png")),
        image.width,
        image.height,
    )?;
    Ok((image, truth))
}

/// Where `--write-masks` puts things for this model.
struct Writer {
    dir: Option<PathBuf>,
}

impl Writer {
    fn lane(&self, lane: &Lane, name: &str, w: usize, h: usize) -> Result<()> {
        if let Some(dir) = &self.dir {
            let path = dir.join(lane.config.slug()).join(format!("{name}.png"));
            media::write_alpha_png(&path, w, h, &lane.alpha)?;
        }
        Ok(())
    }

    fn input(&self, name: &str, image: &RgbImage, truth: Option<&[bool]>) -> Result<()> {
        if let Some(dir) = &self.dir {
            media::write_rgb_png(&dir.join("input").join(format!("{name}.png")), image)?;
            if let Some(t) = truth {
                let path = dir.join("truth").join(format!("{name}.png"));
                media::write_mask_png(&path, image.width, image.height, t)?;
            }
        }
        Ok(())
    }
}

fn run_portraits(
    engine: &mut Engine,
    lanes: &mut [Lane],
    testdata: &Path,
    limit: Option<usize>,
    writer: &Writer,
) -> Result<usize> {
    let mut ids = portrait_ids(testdata);
    if ids.is_empty() {
        bail!("no portraits in {}", testdata.join("portraits").display());
    }
    if let Some(n) = limit {
        ids.truncate(n);
    }
    let started = Instant::now();
    for (n, id) in ids.iter().enumerate() {
        let (image, truth) = load_portrait(testdata, *id)?;
        let (w, h) = (image.width, image.height);
        let truth_boundary = metrics::boundary(&truth, w, h);
        engine.start_stream(lanes);
        // A still picture shown for a few frames, as an image source in OBS: the region of
        // interest needs the mask of the frame before it. Stretch lanes see the same frame
        // again (temporal smoothing of identical masks changes nothing).
        for k in 0..PORTRAIT_FRAMES {
            engine.process(&image, lanes, k + 1 == PORTRAIT_FRAMES)?;
        }
        for lane in lanes.iter_mut() {
            let predicted = lane.predicted();
            lane.portrait_iou.push(metrics::iou(&predicted, &truth));
            lane.portrait_f.push(metrics::boundary_f_score(
                &predicted,
                &truth_boundary,
                w,
                h,
                BOUNDARY_TOLERANCE_PX,
            ));
        }
        if n < WRITE_PORTRAITS {
            let name = format!("portrait_{id}");
            writer.input(&name, &image, Some(&truth))?;
            for lane in lanes.iter() {
                writer.lane(lane, &name, w, h)?;
            }
        }
        if (n + 1) % 24 == 0 || n + 1 == ids.len() {
            eprintln!(
                "  portraits: {}/{} ({:.0} s)",
                n + 1,
                ids.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(ids.len())
}

fn run_synthetic(
    engine: &mut Engine,
    lanes: &mut [Lane],
    testdata: &Path,
    noise: f32,
    limit: Option<usize>,
    writer: &Writer,
) -> Result<Vec<String>> {
    let frames = limit.unwrap_or(synthetic::FRAMES).min(synthetic::FRAMES);
    let mut names = Vec::new();
    for (vi, pair) in synthetic::PAIRS.iter().enumerate() {
        let started = Instant::now();
        let (fg, fg_mask) = load_portrait(testdata, pair.foreground)?;
        let (bg, bg_mask) = load_portrait(testdata, pair.background)?;
        let scene = Scene::new(&fg, &fg_mask, &bg, &bg_mask).with_context(|| {
            format!(
                "synthetic video {} over {}",
                pair.foreground, pair.background
            )
        })?;
        let name = format!("{} over {}", pair.foreground, pair.background);
        engine.start_stream(lanes);
        for lane in lanes.iter_mut() {
            lane.synthetic.push(SyntheticStats::default());
            lane.streams.push(CadenceStats::default());
        }
        let mut frame = RgbImage {
            width: 0,
            height: 0,
            data: Vec::new(),
        };
        let (mut truth, mut prev_truth) = (Vec::new(), Vec::new());
        let mut stable = Vec::new();
        for t in 0..frames {
            scene.render(t, noise, vi as u64 + 1, &mut frame, &mut truth);
            engine.process(&frame, lanes, true)?;
            compare_with_every_frame(lanes);
            if t > 0 {
                stable.clear();
                stable.extend(truth.iter().zip(&prev_truth).map(|(a, b)| a == b));
            }
            for lane in lanes.iter_mut() {
                let predicted = lane.predicted();
                let stats = lane.synthetic.last_mut().expect("pushed above");
                stats.ious.push(metrics::iou(&predicted, &truth));
                if lane.has_prev {
                    let target = if synthetic::pair_is_moving(t) {
                        &mut stats.moving
                    } else {
                        &mut stats.still
                    };
                    target.add(&lane.prev, &lane.alpha, Some(&stable));
                }
            }
            if WRITE_SYNTHETIC_FRAMES.contains(&t) {
                let fname = format!("synthetic_{}_{}_f{t:03}", pair.foreground, pair.background);
                writer.input(&fname, &frame, Some(&truth))?;
                for lane in lanes.iter() {
                    writer.lane(lane, &fname, frame.width, frame.height)?;
                }
            }
            for lane in lanes.iter_mut() {
                lane.end_frame();
            }
            std::mem::swap(&mut truth, &mut prev_truth);
        }
        eprintln!(
            "  synthetic: {name} (background crop {:?}), {frames} frames ({:.0} s)",
            scene.crop,
            started.elapsed().as_secs_f64()
        );
        names.push(name);
    }
    Ok(names)
}

fn run_videos(
    engine: &mut Engine,
    lanes: &mut [Lane],
    testdata: &Path,
    limit: Option<usize>,
    writer: &Writer,
) -> Result<Vec<String>> {
    let dir = testdata.join("video");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no .mp4 videos in {}", dir.display());
    }
    let mut names = Vec::new();
    for path in files {
        let started = Instant::now();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        engine.start_stream(lanes);
        for lane in lanes.iter_mut() {
            lane.real.push(Flicker::default());
            lane.streams.push(CadenceStats::default());
        }
        let mut video = media::VideoFrames::open(&path)?;
        let mut n = 0;
        while let Some(frame) = video.next_frame()? {
            if limit.is_some_and(|l| n >= l) {
                break;
            }
            engine.process(&frame, lanes, true)?;
            compare_with_every_frame(lanes);
            for lane in lanes.iter_mut() {
                if lane.has_prev {
                    let Lane {
                        prev, alpha, real, ..
                    } = lane;
                    real.last_mut()
                        .expect("pushed above")
                        .add(prev, alpha, None);
                }
            }
            if WRITE_VIDEO_FRAMES.contains(&n) {
                let fname = format!("video_{name}_f{n:03}");
                writer.input(&fname, &frame, None)?;
                for lane in lanes.iter() {
                    writer.lane(lane, &fname, frame.width, frame.height)?;
                }
            }
            for lane in lanes.iter_mut() {
                lane.end_frame();
            }
            n += 1;
        }
        if n < 2 {
            bail!("{}: fewer than 2 frames decoded", path.display());
        }
        eprintln!(
            "  video: {name}, {n} frames ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
        names.push(name);
    }
    Ok(names)
}

/// Finds the manifest for `reference` and points it at an existing ONNX file.
fn resolve_manifest(reference: &ModelRef, testdata: &Path) -> Result<Manifest> {
    let mut m = match reference {
        ModelRef::Manifest(path) => Manifest::load(path)?,
        ModelRef::Id(id) => {
            let dirs = [
                backdrop_testdata::models_dir(),
                root().join("models/thirdparty"),
            ];
            let mut found = None;
            for dir in &dirs {
                let (good, _) = manifest::scan(dir);
                if let Some(m) = good.into_iter().find(|m| &m.id == id) {
                    found = Some(m);
                    break;
                }
            }
            found.with_context(|| {
                format!(
                    "no manifest with id '{id}' in {} or {} (run scripts/setup.sh for the default models)",
                    dirs[0].display(),
                    dirs[1].display()
                )
            })?
        }
    };
    if !m.model_path().is_file() && Path::new(&m.file).is_relative() {
        let dir = testdata.join("models/thirdparty");
        if dir.join(&m.file).is_file() {
            m.dir = dir;
        }
    }
    if !m.model_path().is_file() {
        bail!(
            "model file of '{}' not found: {} (nor in <testdata>/models/thirdparty/)",
            m.id,
            m.model_path().display()
        );
    }
    Ok(m)
}

/// Results of one model, for the closing summary.
struct ModelSummary {
    id: String,
    bare_iou: Option<f64>,
    portraits: usize,
}

/// Runs the benchmark and prints the report to stdout (progress goes to stderr).
pub fn run(opts: &QualityOptions) -> Result<()> {
    let wall = Instant::now();
    let testdata = opts
        .testdata
        .clone()
        .unwrap_or_else(backdrop_testdata::testdata_dir);
    let testdata = testdata.is_dir().then_some(testdata);

    println!("# backdrop-bench quality\n");
    println!("- command: `{}`", super::command_line());
    println!("- {}", super::machine_line());
    println!("- frame -> model input: {}", opts.resample.name());
    if opts.flip_average {
        println!("- **--flip-average**: each frame inferred twice, as is and mirrored; the masks averaged");
    }
    println!(
        "- synthetic videos: {} x {} px, {} frames at {} fps, noise sigma {} levels; pairs (foreground over background portrait): {}",
        synthetic::WIDTH,
        synthetic::HEIGHT,
        synthetic::FRAMES,
        synthetic::FPS,
        opts.noise,
        synthetic::PAIRS
            .iter()
            .map(|p| format!("{} over {}", p.foreground, p.background))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(n) = opts.limit {
        println!("- **--limit {n}: partial run, figures not comparable**");
    }
    let Some(testdata) = testdata else {
        println!(
            "- SKIPPED every section: test data folder not found (../shared/testdata; set \
             BACKDROP_TESTDATA or --testdata)"
        );
        return Ok(());
    };
    println!("- test data: {}", testdata.display());
    let env = super::init_runtime()?;

    let defaults = config::defaults_row(&opts.set)?;
    let mut summaries = Vec::new();
    for reference in &opts.models {
        let manifest = resolve_manifest(reference, &testdata)?;
        let model =
            Model::load(env, &manifest, SessionOptions::default()).map_err(anyhow::Error::msg)?;
        let (iw, ih) = model.input_size();
        let (ow, oh) = model.output_size();
        println!(
            "\n## Model `{}`: {} (input {iw}x{ih}, mask {ow}x{oh}, file {})\n",
            manifest.id,
            manifest.name,
            manifest.model_path().display()
        );
        let mut configs = config::standard_rows(defaults.clone());
        configs.extend(config::cadence_rows(&defaults));
        let standard = configs.len();
        if opts.sweep {
            configs.extend(config::sweep_rows());
        }
        let mut lanes: Vec<Lane> = configs.into_iter().map(Lane::new).collect();
        let mut engine = Engine::new(model, opts.resample);
        engine.flip_average = opts.flip_average;
        let writer = Writer {
            dir: opts.write_masks.as_ref().map(|d| d.join(&manifest.id)),
        };
        let (mut portraits, mut synth_names, mut video_names) = (0, Vec::new(), Vec::new());
        let td = testdata.as_path();
        let have_portraits = td.join("portraits/images").is_dir();
        if (opts.sections.portraits || opts.sections.synthetic) && !have_portraits {
            println!(
                "- SKIPPED portraits and synthetic videos: {} is absent",
                td.join("portraits/images").display()
            );
        }
        if opts.sections.portraits && have_portraits {
            eprintln!("{}: portraits", manifest.id);
            portraits = run_portraits(&mut engine, &mut lanes, td, opts.limit, &writer)?;
        }
        if opts.sections.synthetic && have_portraits {
            eprintln!("{}: synthetic videos", manifest.id);
            synth_names =
                run_synthetic(&mut engine, &mut lanes, td, opts.noise, opts.limit, &writer)?;
        }
        if opts.sections.video {
            if td.join("video").is_dir() {
                eprintln!("{}: real videos", manifest.id);
                video_names = run_videos(&mut engine, &mut lanes, td, opts.limit, &writer)?;
            } else {
                println!(
                    "- SKIPPED real videos: {} is absent",
                    td.join("video").display()
                );
            }
        }
        println!();
        print_table(&lanes[..standard]);
        println!();
        println!(
            "Portraits: {portraits} images. Synthetic: {} videos. Real videos: {}. Flicker = mean |alpha(t) - alpha(t-1)| per pixel and frame pair, x 1e-3.",
            synth_names.len(),
            if video_names.is_empty() {
                "none".to_string()
            } else {
                video_names.join(", ")
            }
        );
        println!(
            "Shared stages, median ms per frame (CPU twins of GPU work are not plugin costs): downscale twin {}, Model::infer {}, composite_alpha twin {}.",
            fmt_opt(metrics::median(&engine.downscale_ms), 2),
            fmt_opt(metrics::median(&engine.infer_ms), 2),
            fmt_opt(metrics::median(&engine.composite_ms), 2)
        );
        if !synth_names.is_empty() {
            print_synthetic_detail(&lanes[..standard], &synth_names);
        }
        if !video_names.is_empty() {
            print_video_detail(&lanes[..standard], &video_names);
        }
        if !synth_names.is_empty() || !video_names.is_empty() {
            let names: Vec<String> = synth_names.iter().chain(&video_names).cloned().collect();
            print_cadence_detail(&lanes[..standard], &names);
        }
        if opts.sweep {
            println!("\n### Sweep: guided filter on top of `+blobs` (radius in mask px)\n");
            print_table(&lanes[standard..]);
        }
        let bare_iou = metrics::mean(&lanes[0].portrait_iou);
        if let (Some(iou), Some(reference)) = (bare_iou, reference_iou(&manifest.id)) {
            println!(
                "\nBare portrait mean IoU {iou:.4}; reference figure (PROVENANCE.md) {reference:.3}; difference {:+.4}.",
                iou - reference
            );
        }
        summaries.push(ModelSummary {
            id: manifest.id.clone(),
            bare_iou,
            portraits,
        });
    }
    if summaries.len() > 1 {
        println!("\n## Bare models on the portraits vs reference figures\n");
        println!("| model | portraits | bare mean IoU | reference (PROVENANCE.md) | difference |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        for s in &summaries {
            let reference = reference_iou(&s.id);
            let diff = match (s.bare_iou, reference) {
                (Some(a), Some(b)) => format!("{:+.4}", a - b),
                _ => "-".into(),
            };
            println!(
                "| {} | {} | {} | {} | {diff} |",
                s.id,
                s.portraits,
                fmt_opt(s.bare_iou, 4),
                fmt_opt(reference, 3),
            );
        }
    }
    println!("\nTotal wall time {:.0} s.", wall.elapsed().as_secs_f64());
    Ok(())
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

/// Mean over videos of a per-video figure.
fn mean_of<T>(items: &[T], f: impl Fn(&T) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = items.iter().filter_map(f).collect();
    if values.len() < items.len() {
        return None;
    }
    metrics::mean(&values)
}

fn milli(v: Option<f64>) -> String {
    fmt_opt(v.map(|v| v * 1e3), 3)
}

fn print_table(lanes: &[Lane]) {
    println!("| configuration | settings | portraits IoU | boundary F (2 px) | synthetic IoU | synthetic flicker still | synthetic flicker moving | real-video flicker | refine ms (median) |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for lane in lanes {
        let synth_iou = mean_of(&lane.synthetic, |s| metrics::mean(&s.ious));
        let still = mean_of(&lane.synthetic, |s| s.still.mean());
        let moving = mean_of(&lane.synthetic, |s| s.moving.mean());
        let real = mean_of(&lane.real, Flicker::mean);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            lane.config.name,
            lane.config.describe(),
            fmt_opt(metrics::mean(&lane.portrait_iou), 4),
            fmt_opt(metrics::mean(&lane.portrait_f), 4),
            fmt_opt(synth_iou, 4),
            milli(still),
            milli(moving),
            milli(real),
            fmt_opt(metrics::median(&lane.refine_ms), 3),
        );
    }
}

/// Prints a markdown table under `title`: a row per configuration, a column per name, the
/// cells `cells(lane)` gives (one per name).
fn print_detail(
    title: &str,
    lanes: &[Lane],
    names: &[String],
    cells: impl Fn(&Lane) -> Vec<String>,
) {
    println!("\n### {title}\n");
    let head: String = names.iter().map(|n| format!(" {n} |")).collect();
    let rule: String = names.iter().map(|_| " ---: |").collect();
    println!("| configuration |{head}\n| --- |{rule}");
    for lane in lanes {
        let row: String = cells(lane).iter().map(|c| format!(" {c} |")).collect();
        println!("| {} |{row}", lane.config.name);
    }
}

fn print_synthetic_detail(lanes: &[Lane], names: &[String]) {
    print_detail(
        "Synthetic videos, per video: IoU / flicker still / flicker moving (x 1e-3)",
        lanes,
        names,
        |lane| {
            lane.synthetic
                .iter()
                .map(|s| {
                    format!(
                        "{} / {} / {}",
                        fmt_opt(metrics::mean(&s.ious), 4),
                        milli(s.still.mean()),
                        milli(s.moving.mean())
                    )
                })
                .collect()
        },
    );
}

/// The lanes with a cadence: per video (synthetic, then real) the share of frames inferred and
/// the mean IoU of their alpha against inferring every frame, then the means over the videos.
fn print_cadence_detail(lanes: &[Lane], names: &[String]) {
    let lanes: Vec<&Lane> = lanes
        .iter()
        .filter(|l| l.config.cadence.is_some())
        .collect();
    if lanes.is_empty() {
        return;
    }
    println!(
        "\n### Cadence: frames inferred (share) / mean IoU against inferring every frame (`defaults`), per video\n"
    );
    let head: String = names.iter().map(|n| format!(" {n} |")).collect();
    let rule: String = names.iter().map(|_| " ---: |").collect();
    println!(
        "| configuration |{head} mean inferred | mean IoU loss | IoU loss on inferred / kept / warped frames | worst frame IoU | warp ms (median) |\n| --- |{rule} ---: | ---: | ---: | ---: | ---: |"
    );
    for lane in lanes {
        let share = |s: &CadenceStats| {
            let all: usize = s.steps.iter().sum();
            (all > 0).then(|| s.steps[Step::Infer as usize] as f64 / all as f64)
        };
        let cells: String = lane
            .streams
            .iter()
            .map(|s| {
                format!(
                    " {} / {} |",
                    fmt_opt(share(s), 2),
                    fmt_opt(metrics::mean(&s.iou_vs_every), 4)
                )
            })
            .collect();
        let worst = lane
            .streams
            .iter()
            .flat_map(|s| s.iou_vs_every.iter().copied())
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
        let loss_by_step = (0..3)
            .map(|k| {
                let all: Vec<f64> = lane
                    .streams
                    .iter()
                    .flat_map(|s| s.by_step[k].iter().copied())
                    .collect();
                fmt_opt(metrics::mean(&all).map(|m| 1.0 - m), 4)
            })
            .collect::<Vec<_>>()
            .join(" / ");
        println!(
            "| {} |{cells} {} | {} | {loss_by_step} | {} | {} |",
            lane.config.name,
            fmt_opt(mean_of(&lane.streams, share), 3),
            fmt_opt(
                mean_of(&lane.streams, |s| metrics::mean(&s.iou_vs_every)).map(|m| 1.0 - m),
                4
            ),
            fmt_opt(worst, 4),
            fmt_opt(metrics::median(&lane.warp_ms), 3),
        );
    }
}

fn print_video_detail(lanes: &[Lane], names: &[String]) {
    print_detail(
        "Real videos, per video: flicker over all pixels (x 1e-3; includes real motion)",
        lanes,
        names,
        |lane| lane.real.iter().map(|f| milli(f.mean())).collect(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter's default cadence on a real talking head, with the real model: about half
    /// the frames inferred, the rest kept or warped, and the masks shown lose little IoU
    /// against inferring every frame (docs/performance.md has the figures of all videos).
    #[test]
    fn warping_between_inferences_keeps_close_to_inferring_every_frame() {
        let testdata = backdrop_testdata::testdata_dir();
        let video = testdata.join("video/talking_head_a.mp4");
        let manifest = backdrop_testdata::models_dir().join("selfie_general.json");
        if !video.is_file() || !manifest.is_file() {
            assert!(
                std::env::var_os("BACKDROP_REQUIRE_DATA").is_none(),
                "missing {} or {} (BACKDROP_REQUIRE_DATA is set)",
                video.display(),
                manifest.display()
            );
            eprintln!("SKIPPED: needs ../shared/testdata and scripts/setup.sh's models");
            return;
        }
        let env = crate::init_runtime().unwrap();
        let manifest = Manifest::load(&manifest).unwrap();
        let model = Model::load(env, &manifest, SessionOptions::default()).unwrap();
        let defaults = config::defaults_row(&[]).unwrap();
        let mut configs = vec![defaults.clone()];
        configs.extend(config::cadence_rows(&defaults));
        let mut lanes: Vec<Lane> = configs.into_iter().map(Lane::new).collect();
        let mut engine = Engine::new(model, Resample::FirBilinear);
        engine.start_stream(&mut lanes);
        for lane in lanes.iter_mut() {
            lane.streams.push(CadenceStats::default());
        }
        let mut frames = media::VideoFrames::open(&video).unwrap();
        while let Some(frame) = frames.next_frame().unwrap() {
            engine.process(&frame, &mut lanes, true).unwrap();
            compare_with_every_frame(&mut lanes);
            for lane in lanes.iter_mut() {
                lane.end_frame();
            }
        }
        let warped = &lanes[2];
        let s = &warped.streams[0];
        let all: usize = s.steps.iter().sum();
        let loss = 1.0 - metrics::mean(&s.iou_vs_every).unwrap();
        println!(
            "talking_head_a: {all} frames, inferred / kept / warped {:?}, IoU loss {loss:.4}",
            s.steps
        );
        assert!(all > 100);
        let inferred = s.steps[Step::Infer as usize] as f64 / all as f64;
        assert!(
            s.steps[Step::Warp as usize] > all / 5 && inferred < 0.75,
            "{:?}",
            s.steps
        );
        // a talking head moves every frame: the gate alone infers nearly all of them
        let gated = &lanes[1].streams[0];
        assert!(gated.steps[Step::Infer as usize] as f64 > 0.9 * all as f64);
        assert!(
            loss < 0.01,
            "the warped masks drift from the model's: {loss}"
        );
    }

    #[test]
    fn third_party_manifests_parse_and_match_the_provenance() {
        let dir = root().join("models/thirdparty");
        let sinet = Manifest::load(&dir.join("sinet.json")).unwrap();
        assert_eq!(sinet.id, "sinet");
        assert_eq!(sinet.input_size(), (320, 320));
        assert_eq!(sinet.file, "sinet_softmax_320x320.onnx");
        let meet = Manifest::load(&dir.join("meet.json")).unwrap();
        assert_eq!(meet.id, "meet");
        assert_eq!(meet.input_size(), (256, 144));
        assert_eq!(meet.file, "meet_segmentation_144x256.onnx");
    }

    #[test]
    fn mean_of_needs_every_item() {
        let v = [Some(1.0), Some(3.0)];
        assert_eq!(mean_of(&v, |x| *x), Some(2.0));
        assert_eq!(mean_of(&[Some(1.0), None], |x| *x), None);
        assert_eq!(milli(Some(0.00125)), "1.250");
    }
}
