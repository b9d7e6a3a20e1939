//! Any bytes as a model manifest: parsed into a model the plugin can use (input 8..4096 px,
//! finite normalisation with no zero divisor) or refused with a message; never a panic.
#![no_main]

use backdrop_core::segmentation::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Manifest::parse(&text) {
        Ok(m) => {
            let (w, h) = m.input_size();
            assert!(
                (8..=4096).contains(&w) && (8..=4096).contains(&h),
                "{w}x{h}"
            );
            assert!(m.input.mean.iter().all(|v| v.is_finite()));
            assert!(m.input.std.iter().all(|v| v.is_finite() && *v != 0.0));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
