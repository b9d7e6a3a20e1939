//! Model switches in the real worker thread with the shipped models in the real ONNX Runtime:
//! switching back to the model that ran before takes up the kept one (no session is built),
//! other session options (intra-op threads) build a new session, a kept model unused past its
//! time is dropped, and every model switched to produces masks from real frames of a person.

use backdrop_core::mask::roi::Region;
use backdrop_core::segmentation::manifest::Manifest;
use backdrop_core::segmentation::worker::{lock, Shared, Worker};
use backdrop_core::settings::Settings;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod common;

/// Waits (generously) until the worker runs a model of input `size` after `loads` session
/// builds, then hands it one frame and waits for its mask. Returns the mask's mean person
/// probability.
fn settle_and_infer(
    shared: &Shared,
    size: (u32, u32),
    loads: u64,
    frame: &image::RgbaImage,
) -> f32 {
    let deadline = Instant::now() + Duration::from_secs(120);
    while shared.model_input_size() != Some(size)
        || shared.model_loads.load(Ordering::Relaxed) != loads
    {
        assert!(
            Instant::now() < deadline,
            "the worker did not reach a {size:?} model after {loads} loads (input {:?}, loads {})",
            shared.model_input_size(),
            shared.model_loads.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let small =
        image::imageops::resize(frame, size.0, size.1, image::imageops::FilterType::Triangle);
    let mut bgra = small.into_raw();
    bgra.chunks_exact_mut(4).for_each(|p| p.swap(0, 2));
    let inferred_before = lock(&shared.output).inferred;
    shared.submit(
        &bgra,
        (size.0, size.1, size.0 as usize * 4),
        1,
        (frame.width(), frame.height()),
        Region::FULL,
    );
    loop {
        let out = lock(&shared.output);
        if out.inferred > inferred_before {
            return out.person_share;
        }
        drop(out);
        assert!(
            Instant::now() < deadline,
            "the worker did not infer the frame"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn switching_back_takes_up_the_kept_model_and_new_options_load_again() {
    let testdata = require!(testdata);
    let Some(models) = common::models_dir() else {
        skip!("build/models is absent (run scripts/setup.sh)");
    };
    if common::ort_environment().is_none() {
        skip!("the ONNX Runtime library is absent (run scripts/setup.sh)");
    }
    let portrait = testdata.join("portraits/images/102.jpg");
    let Ok(frame) = image::open(&portrait).map(|i| i.to_rgba8()) else {
        skip!("{} is absent", portrait.display());
    };
    let manifest = |id: &str| Manifest::load(&models.join(format!("{id}.json"))).unwrap();
    let request = |id: &str, threads: u32| {
        let mut s = Settings {
            model: id.into(),
            ..Settings::default()
        };
        s.intra_threads = threads;
        s.request(Ok(manifest(id)))
    };
    let general = manifest("selfie_general").input_size();
    let landscape = manifest("selfie_landscape").input_size();
    assert_ne!(
        general, landscape,
        "the two models tell apart by input size"
    );

    let worker = Worker::start().expect("worker thread");
    let shared = worker.shared.clone();
    // (model, intra-op threads, input size, session builds after the switch)
    let steps = [
        ("selfie_general", 1, general, 1),
        ("selfie_landscape", 1, landscape, 2),
        ("selfie_general", 1, general, 2), // the kept model: no build
        ("selfie_landscape", 1, landscape, 2), // and back again: no build
        ("selfie_landscape", 2, landscape, 3), // other options: built again
        ("selfie_general", 2, general, 4), // the kept one has 1 thread: built
        ("selfie_landscape", 2, landscape, 4), // kept, with 2 threads: no build
    ];
    let mut shares = Vec::new();
    for (id, threads, size, loads) in steps {
        shared.set_request(request(id, threads));
        let share = settle_and_infer(&shared, size, loads, &frame);
        eprintln!("{id}, {threads} thread(s): {loads} session builds, person share {share:.3}");
        assert!(
            (0.05..0.95).contains(&share),
            "{id} finds a person in {}: share {share}",
            portrait.display()
        );
        shares.push(share);
    }
    // A spare kept unused past its time is dropped when the next frame comes: switching back
    // to it builds a session again. (The spare is now selfie_general with 2 threads.)
    shared.spare_kept_for_ms.store(0, Ordering::Relaxed);
    // the same request again (the filter sends one on every settings update): the same
    // model runs on, and the next frame is inferred, not kept by the motion gate
    shared.set_request(request("selfie_landscape", 2));
    settle_and_infer(&shared, landscape, 4, &frame);
    shared.set_request(request("selfie_general", 2));
    let share = settle_and_infer(&shared, general, 5, &frame);
    eprintln!("selfie_general, 2 thread(s), its spare dropped: 5 session builds, share {share:.3}");
    assert!(
        (share - shares[5]).abs() < 0.01,
        "{share} against {shares:?}"
    );
    // the kept model gives the masks it gave before
    assert!((shares[0] - shares[2]).abs() < 0.01, "{shares:?}");
    assert!((shares[1] - shares[3]).abs() < 0.01, "{shares:?}");
    let state = lock(&shared.state).clone();
    assert!(
        matches!(
            state,
            backdrop_core::segmentation::worker::State::Running(..)
        ),
        "{state:?}"
    );
}
