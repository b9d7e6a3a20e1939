//! The soak, CI version: five minutes of the talking head at 720p30 through the filter in real
//! OBS, its settings changed every 10 s, the filter disabled every 20 s and the source hidden
//! every 40 s (`--soak-period 10`), sampled every 10 s. The hour-long version is the same host
//! mode with `--duration 3600 --soak-period 30` (docs/performance.md).

mod common;

use common::host;
use std::path::PathBuf;

/// The talking head scaled to 1280x720 at 30 fps (made once with ffmpeg).
fn clip_720p(video: &std::path::Path) -> PathBuf {
    let out = common::root().join("target/e2e/soak_talking_720p.mp4");
    if !out.is_file() {
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let tmp = out.with_extension("tmp.mp4");
        let ok = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(video)
            .args([
                "-vf",
                "scale=-2:720,pad=1280:720:(ow-iw)/2:0",
                "-r",
                "30",
                "-c:v",
                "libx264",
                "-crf",
                "18",
            ])
            .arg(&tmp)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ffmpeg makes the 720p clip");
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

#[test]
fn five_minutes_of_changes_leave_memory_threads_fds_and_gpu_objects_flat() {
    let video = require!(video);
    let plugin = require!(plugin);
    let clip = clip_720p(&video);
    let run = host::run(
        "soak_5min",
        &plugin,
        &[
            "--input",
            clip.to_str().unwrap(),
            "--loop",
            "--duration",
            "300",
            "--soak-period",
            "10",
            "--soak-warmup",
            "60",
            "--timeout-s",
            "120",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let soak = &run.report["soak"];
    let mut shown = soak.clone();
    if let Some(o) = shown.as_object_mut() {
        o.remove("samples");
    }
    println!("soak, 5 minutes: {shown:#}");
    for s in soak["samples"].as_array().into_iter().flatten() {
        println!("  {s}");
    }
    run.assert_no_errors();
    assert!(soak["actions"].as_u64().unwrap_or(0) >= 25, "{shown}");
    let flat = |k: &str| {
        let r = &soak[k];
        assert_eq!(r[0], r[1], "{k} changed after the warmup: {r}");
        assert!(r[0].as_f64().is_some_and(|v| v > 0.0), "{k}: {r}");
    };
    flat("threads");
    flat("fds");
    flat("gpu_objects");
    // Like with like: the resident memory at the start of each cycle of the schedule (same
    // model, same mode) grows by less than 24 MB over the four judged minutes. In its first
    // minutes the process's memory still climbs in steps as models load and unload (measured:
    // +1.3 MB on a loaded machine, +10.7 MB on an idle one; the hour-long soak climbs to a
    // plateau by minute 40, docs/performance.md), so five minutes can only catch a leak of about
    // 1 MB per action (30 actions) and more. The hour measures the slope.
    let growth = soak["rss_cycle_growth_mb"].as_f64().unwrap_or(f64::NAN);
    assert!(growth < 24.0, "RSS grew {growth} MB: {shown}");
    // The heap in use (glibc's mallinfo2), like with like, is the finer measure: it does not
    // move with what glibc keeps free. The hour: +0.8 MB over 55 minutes, swinging 10-20 MB with
    // the model loaded; two clean-clone CI runs measured +2.4 and +5.2 MB here (a sample can
    // land while a model loads). 12 MB over the four judged minutes catches a leak of ~0.4 MB
    // per action.
    let heap = soak["heap_in_use_cycle_growth_mb"]
        .as_f64()
        .unwrap_or(f64::NAN);
    assert!(heap < 12.0, "heap in use grew {heap} MB: {shown}");
    // The filter never stops making masks for long: off for 5 s and hidden for 5 s at most,
    // seen at 10 s sampling.
    let stuck = soak["longest_without_new_mask_s"]
        .as_f64()
        .unwrap_or(f64::NAN);
    assert!(stuck <= 20.5, "no new mask for {stuck} s");
    assert_ne!(run.stats()["state"], "error", "{}", run.status());
    // The schedule switches between two models every second action: each is built once, then
    // the worker takes up the one kept since the switch before (no session built, no memory
    // churn).
    assert_eq!(
        run.stats()["model_loads"],
        2,
        "ONNX Runtime sessions built over {} model switches",
        soak["actions"].as_u64().unwrap_or(0) / 2
    );
    // No lag trend: the second half lags no more than the first half plus one frame in 30
    // (OBS's own count; the machine is shared, so only a trend this large is a finding).
    let (first, second) = (
        soak["lagged_per_min_first_half"].as_f64().unwrap_or(0.0),
        soak["lagged_per_min_second_half"].as_f64().unwrap_or(0.0),
    );
    assert!(
        second <= first.max(1.0) * 2.0 + 60.0,
        "lagged frames per minute {first} -> {second}"
    );
}
