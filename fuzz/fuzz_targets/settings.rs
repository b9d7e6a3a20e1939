//! Any bytes as the filter's settings (OBS keeps them as JSON): when they are a JSON object, they
//! read into settings within their ranges, the same way twice; never a panic.
#![no_main]

use backdrop_core::settings::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(store) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(data)
    else {
        return;
    };
    let s = Settings::read(&store);
    assert!((0.01..=0.99).contains(&s.threshold), "{}", s.threshold);
    assert!((0.0..=1.0).contains(&s.edge_softness));
    assert!((0.0..=20.0).contains(&s.motion_threshold));
    assert!((1..=10).contains(&s.inference_interval));
    assert!((0.0..=0.95).contains(&s.temporal_smoothing));
    assert!((1..=8).contains(&s.intra_threads));
    assert_eq!(format!("{:?}", Settings::read(&store)), format!("{s:?}"));
});
