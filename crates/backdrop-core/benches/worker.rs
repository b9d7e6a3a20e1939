//! CPU cost of one inferred frame in the worker against the bare model: `Session::run` alone
//! versus the worker's whole step with the filter's default settings (tensor packing +
//! inference + activation + region tracking + refinement: temporal smoothing, blob removal,
//! coefficients), the post-processing alone and the motion measure; same model, same options, same real portrait,
//! same process.
//!
//! `cargo bench --bench worker` (needs `scripts/setup.sh` and `../shared/testdata`).

use backdrop_core::mask::refine::Refiner;
use backdrop_core::mask::roi::RegionTracker;
use backdrop_core::segmentation::block_motion::{luma_bytes, MotionField};
use backdrop_core::segmentation::manifest::Manifest;
use backdrop_core::segmentation::session::{build_session, Model, SessionOptions};
use backdrop_core::segmentation::{motion, tensor};
use backdrop_core::settings::Settings;
use criterion::{criterion_group, criterion_main, Criterion};
use ort::value::TensorRef;
use std::path::PathBuf;

/// Repository root (this crate is crates/backdrop-core).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bench(c: &mut Criterion) {
    let testdata = std::env::var_os("BACKDROP_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or(root().join("../shared/testdata"));
    let portrait = testdata.join("portraits/images/3.jpg");
    let ort_lib = root().join("build/deps/libonnxruntime.so.1.31.1");
    let models = root().join("build/models");
    if !portrait.is_file() || !ort_lib.is_file() || !models.is_dir() {
        eprintln!("SKIPPED worker bench: needs ../shared/testdata and scripts/setup.sh outputs");
        return;
    }
    // SAFETY: set before any thread reads it.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", &ort_lib) };
    let env = backdrop_core::segmentation::runtime::environment().expect("runtime");

    for id in ["selfie_general", "selfie_landscape"] {
        let manifest = Manifest::load(&models.join(format!("{id}.json"))).unwrap();
        let (w, h) = manifest.input_size();
        let rgba = image::open(&portrait)
            .unwrap()
            .resize_exact(w, h, image::imageops::FilterType::Triangle)
            .to_rgba8();
        let mut bgra = rgba.into_raw();
        bgra.chunks_exact_mut(4).for_each(|p| p.swap(0, 2));

        let mut session =
            build_session(env, &manifest.model_path(), SessionOptions::default()).unwrap();
        let packed = tensor::packed_bgra(&bgra, w, h, &manifest.input);
        let shape = manifest.input.shape.clone();
        c.bench_function(&format!("{id}/bare_session_run"), |b| {
            b.iter(|| {
                let input =
                    TensorRef::from_array_view((shape.as_slice(), packed.as_slice())).unwrap();
                let out = session
                    .run(ort::inputs![manifest.input.name.as_str() => input])
                    .unwrap();
                std::hint::black_box(&out);
            })
        });

        // the worker's step (see `segmentation::worker::run`) with the filter's defaults, on a
        // 1280x720 source whose person region is the whole small frame
        let settings = Settings::default();
        let refine = settings.refine_params();
        let source = (1280, 720);
        let mut model = Model::load(env, &manifest, settings.session_options()).unwrap();
        let mut tracker = RegionTracker::new(settings.aspect);
        let mut refiner = Refiner::default();
        let mut plane = Vec::new();
        let mut coefficients = Vec::new();
        let (mw, mh) = model.output_size();
        let mut post = |plane: &mut Vec<f32>, model_input| {
            let region = tracker.region(source, model_input);
            tracker.observe(plane, (mw, mh), region, source, model_input);
            refiner.refine(
                plane,
                mw,
                mh,
                &bgra,
                (w as usize, h as usize, w as usize * 4),
                source,
                region,
                &refine,
            );
            refiner.swap_coefficients(&mut coefficients);
            std::hint::black_box(&coefficients);
        };
        c.bench_function(&format!("{id}/worker_step"), |b| {
            b.iter(|| {
                model.infer(&bgra, w as usize * 4).unwrap();
                model.swap_probability(&mut plane);
                post(&mut plane, (w, h));
            })
        });
        // the motion measure, run on every frame the worker receives (inferred or skipped)
        let moved: Vec<u8> = bgra.iter().map(|&v| v.wrapping_add(3)).collect();
        c.bench_function(&format!("{id}/motion_check"), |b| {
            b.iter(|| {
                std::hint::black_box(motion::block_change(&bgra, &moved, w as usize, h as usize))
            })
        });
        let raw = model.infer(&bgra, w as usize * 4).unwrap().to_vec();
        // the map of the person's inner pixels made from each inferred mask (what the motion
        // check compares), at the model's input size
        let (mut above, mut pixels) = (Vec::new(), Vec::new());
        c.bench_function(&format!("{id}/person_pixels"), |b| {
            b.iter(|| {
                std::hint::black_box(motion::person_pixels(
                    &raw,
                    (mw, mh),
                    (w as usize, h as usize),
                    &mut above,
                    &mut pixels,
                ))
            })
        });
        // refinement works in place, so each iteration starts from a copy of the model's output
        // (a 4-byte-per-pixel memcpy the worker itself does not make)
        c.bench_function(&format!("{id}/postprocess"), |b| {
            b.iter(|| {
                plane.clear();
                plane.extend_from_slice(&raw);
                post(&mut plane, (w, h));
            })
        });
        plane.clear();
        plane.extend_from_slice(&raw);
        post(&mut plane, (w, h)); // `coefficients` as refined, also when the filter skips it
                                  // a warped frame (see `segmentation::cadence`): the person's block motion from this
                                  // frame to the same frame moved 3 px right and 2 px down, then the coefficient planes
                                  // (as refined: `coefficients`) warped along it
        {
            let (wu, hu) = (w as usize, h as usize);
            let mut moved = vec![0u8; bgra.len()];
            for y in 0..hu {
                for x in 0..wu {
                    let (sx, sy) = (x.saturating_sub(3), y.saturating_sub(2));
                    moved[(y * wu + x) * 4..][..4]
                        .copy_from_slice(&bgra[(sy * wu + sx) * 4..][..4]);
                }
            }
            let (mut previous, mut current) = (Vec::new(), Vec::new());
            luma_bytes(&bgra, wu, hu, &mut previous);
            luma_bytes(&moved, wu, hu, &mut current);
            let person: Vec<u8> = (0..wu * hu)
                .map(|i| {
                    let (x, y) = (i % wu * mw / wu, i / wu * mh / hu);
                    if raw[y * mw + x] > 0.5 {
                        255
                    } else {
                        0
                    }
                })
                .collect();
            let mut field = MotionField::default();
            c.bench_function(&format!("{id}/motion_search"), |b| {
                b.iter(|| {
                    std::hint::black_box(field.estimate(&previous, &current, &person, wu, hu))
                })
            });
            field.estimate(&previous, &current, &person, wu, hu);
            let mut warped = Vec::new();
            c.bench_function(&format!("{id}/warp"), |b| {
                b.iter(|| {
                    field.warp_from(&coefficients, 2, 1, (mw, mh), &mut warped); // a = 0 (defaults)
                    std::hint::black_box(&warped);
                })
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(60).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
