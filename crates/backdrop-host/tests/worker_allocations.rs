//! The segmentation worker allocates nothing per frame in steady state: the real worker thread
//! (`Worker`), with the filter's default settings (person region of interest, temporal
//! smoothing, blob removal, motion skip), the real general model in the real ONNX Runtime, fed
//! the frames of a real video of a person, each cropped to the region the worker asks for, as
//! the graphics thread does.
//!
//! A counting global allocator sees every allocation made through Rust (our code, `ort`, std) on
//! every thread but this test's own (which decodes and crops the frames). ONNX Runtime's own C++
//! allocations do not go through it; `backdrop-bench perf` counts those (`malloc` interposed).

use backdrop_core::mask::roi::Region;
use backdrop_core::segmentation::manifest::Manifest;
use backdrop_core::segmentation::worker::{lock, Worker};
use backdrop_core::settings::Settings;
use fast_image_resize as fr;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the test's own thread: its allocations are not counted.
    static NOT_COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if !NOT_COUNTED.with(|c| c.get()) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Crops `region` (frame uv) of an RGBA image and resizes it to `w` x `h` BGRA.
fn crop_bgra(src: &fr::images::Image, region: Region, (w, h): (u32, u32)) -> Vec<u8> {
    let [cx, cy, cw, ch] = region.pixel_rect(src.width() as f64, src.height() as f64);
    let mut dst = fr::images::Image::new(w, h, fr::PixelType::U8x4);
    let options = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear))
        .crop(cx, cy, cw, ch);
    fr::Resizer::new()
        .resize(src, &mut dst, &options)
        .expect("resize");
    let mut px = dst.into_vec();
    px.chunks_exact_mut(4).for_each(|p| p.swap(0, 2));
    px
}

#[test]
fn worker_steady_state_allocates_nothing() {
    NOT_COUNTED.with(|c| c.set(true));
    let Some(testdata) = common::testdata() else {
        skip!("../shared/testdata is absent");
    };
    let Some(models) = common::models_dir() else {
        skip!("build/models is absent (run scripts/setup.sh)");
    };
    if common::ort_environment().is_none() {
        skip!("the ONNX Runtime library is absent (run scripts/setup.sh)");
    }
    let video = testdata.join("video/talking_head_a.mp4");
    if !video.is_file() {
        skip!("{} is absent", video.display());
    }
    // the clip's first 150 frames (6 s), decoded by the ffmpeg CLI to RGBA and padded to 16:9
    // like a webcam's frame (the person then fills a third of it, so the crop is in use)
    let (vw, vh) = (640u32, 360u32);
    let decoded = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&video)
        .args([
            "-frames:v",
            "150",
            "-vf",
            &format!("scale={vh}:{vh},pad={vw}:{vh}:(ow-iw)/2:0:color=0x808080"),
        ])
        .args(["-f", "rawvideo", "-pix_fmt", "rgba", "-"])
        .output();
    let Ok(decoded) = decoded.map(|o| o.stdout) else {
        skip!("the ffmpeg CLI is not installed");
    };
    let frame_len = (vw * vh * 4) as usize;
    let sources: Vec<fr::images::Image> = decoded
        .chunks_exact(frame_len)
        .map(|f| fr::images::Image::from_vec_u8(vw, vh, f.to_vec(), fr::PixelType::U8x4).unwrap())
        .collect();
    assert_eq!(sources.len(), 150, "ffmpeg decoded the clip");

    let settings = Settings::default();
    let manifest = Manifest::load(&models.join(format!("{}.json", settings.model))).unwrap();
    let worker = Worker::start().expect("worker thread");
    let shared = worker.shared.clone();
    shared.set_request(settings.request(Ok(manifest)));

    // One frame through the worker: crop the region it asks for, hand it over, wait until it
    // has dealt with it (published, skipped or a detection pass).
    let mut frame_no = 0u64;
    let mut step = |source: &fr::images::Image| {
        let deadline = Instant::now() + Duration::from_secs(60);
        let input = loop {
            if let Some(size) = shared.model_input_size() {
                break size;
            }
            assert!(Instant::now() < deadline, "the model did not load");
            std::thread::sleep(Duration::from_millis(5));
        };
        let (region, done_before) = {
            let out = lock(&shared.output);
            (out.next_region, out.confirmed + out.detections)
        };
        let bgra = crop_bgra(source, region, input);
        frame_no += 1;
        let size = (source.width(), source.height());
        shared.submit(
            &bgra,
            (input.0, input.1, input.0 as usize * 4),
            frame_no,
            size,
            region,
        );
        loop {
            let out = lock(&shared.output);
            if out.confirmed + out.detections > done_before {
                return (out.region, out.inferred, out.detections);
            }
            drop(out);
            assert!(Instant::now() < deadline, "the worker did not answer");
            std::thread::sleep(Duration::from_millis(1));
        }
    };

    // Warm-up: the crop settles, buffers reach their size, a detection pass happens.
    for source in &sources[..50] {
        step(source);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let (mut crops, mut first) = (0, None);
    for source in &sources[50..] {
        let (region, inferred, detections) = step(source);
        first.get_or_insert((inferred, detections));
        crops += usize::from(region != Region::FULL);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let (inferred0, detections0) = first.unwrap();
    let out = lock(&shared.output);
    let (inferred, detections) = (out.inferred - inferred0, out.detections - detections0);
    drop(out);
    eprintln!(
        "worker: {allocations} allocations over 100 frames ({inferred} inferred, {detections} \
         detection passes, {crops} masks from a crop)"
    );
    assert!(inferred >= 30, "frames were inferred: {inferred}");
    assert!(detections >= 1, "a detection pass ran");
    assert!(crops >= 90, "the region of interest was in use: {crops}");
    assert_eq!(
        allocations, 0,
        "allocations through Rust on the worker in steady state"
    );
}
