//! CPU cost of one inferred frame in the worker against the bare model: `Session::run` alone
//! versus the worker's whole step (tensor packing + inference + activation + temporal smoothing +
//! conversion to bytes), same model, same options, same real portrait, same process.
//!
//! `cargo bench --bench worker` (needs `scripts/setup.sh` and `../shared/testdata`).

use criterion::{criterion_group, criterion_main, Criterion};
use obs_backdrop::mask::{self, TemporalSmoother};
use obs_backdrop::segmentation::manifest::Manifest;
use obs_backdrop::segmentation::session::{build_session, Model, SessionOptions};
use obs_backdrop::segmentation::tensor;
use ort::value::TensorRef;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
    let env = obs_backdrop::segmentation::runtime::environment().expect("runtime");

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
        let mut packed = vec![0f32; (w * h * 3) as usize];
        tensor::pack_bgra(
            &bgra,
            w as usize,
            h as usize,
            w as usize * 4,
            &manifest.input,
            &mut packed,
        );
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

        let mut model = Model::load(env, &manifest, SessionOptions::default()).unwrap();
        let mut smoother = TemporalSmoother::default();
        let mut plane = Vec::new();
        let mut bytes = Vec::new();
        c.bench_function(&format!("{id}/worker_step"), |b| {
            b.iter(|| {
                let p = model.infer(&bgra, w as usize * 4).unwrap();
                plane.clear();
                plane.extend_from_slice(p);
                smoother.apply(&mut plane, 0.6);
                bytes.resize(plane.len(), 0);
                mask::to_u8(&plane, &mut bytes);
                std::hint::black_box(&bytes);
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(60).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
