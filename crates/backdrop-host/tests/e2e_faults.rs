//! Faults while the filter runs in real OBS with video flowing, driven from outside the host
//! (`--timeline`, `--stop-file`): what the user sees before, during and after each fault.

mod common;

use common::host::{self, stat, timeline, wait_for};
use serde_json::Value;
use std::time::Duration;

/// Every second of the run (four timeline lines) has new output frames.
fn assert_video_flowed(lines: &[Value]) {
    for (a, b) in lines.iter().zip(lines.iter().skip(4)) {
        assert!(
            b["frames"].as_i64() > a["frames"].as_i64(),
            "no output frame between {} s and {} s",
            a["t"],
            b["t"]
        );
    }
}

#[test]
fn the_background_image_changed_replaced_by_garbage_deleted_and_restored_while_shown() {
    let video = require!(video);
    let plugin = require!(plugin);
    let testdata = require!(testdata);
    let ids = common::portrait_ids(&testdata);
    let image = |i: usize| testdata.join(format!("portraits/images/{}.jpg", ids[i]));
    let dir = common::root().join("target/e2e/runs/fault_image_driver");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bg = dir.join("background.jpg");
    // Whole files only, as an editor saves: written beside it, then renamed over it.
    let put = |bytes: &[u8]| {
        let tmp = dir.join("background.tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &bg).unwrap();
    };
    let read = |i: usize| std::fs::read(image(i)).unwrap();
    put(&read(0));
    let (tl, stop) = (dir.join("timeline.jsonl"), dir.join("stop"));
    let args: Vec<String> = [
        "--input",
        video.to_str().unwrap(),
        "--loop",
        "--duration",
        "600",
        "--timeout-s",
        "120",
        "--mode",
        "image",
        "--background-image",
        bg.to_str().unwrap(),
        "--timeline",
        tl.to_str().unwrap(),
        "--stop-file",
        stop.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let host = host::spawn("fault_image", &plugin, args);
    let long = Duration::from_secs(180);
    let status = |l: &Value| l["stats"]["status"].as_str().unwrap_or("").to_string();
    let warned = |l: &Value| l["stats"]["warning_kind"] == "background_image";

    let (i, _) = wait_for(&tl, 0, long, "20 masks over the image", |l| {
        stat(l, "masks_published") >= 20 && stat(l, "background_image_loads") == 1
    });
    // 1. Another picture written over the file: shown within a second or two.
    put(&read(1));
    let (i, _) = wait_for(&tl, i, long, "the changed image reloaded", |l| {
        stat(l, "background_image_loads") == 2 && !warned(l)
    });
    // 2. Garbage written over it: the last image stays, the status says why.
    put(b"this is not an image");
    let (i, garbage) = wait_for(&tl, i, long, "the garbage reported", warned);
    // 3. The file deleted: the same, with the new reason.
    std::fs::remove_file(&bg).unwrap();
    let (i, deleted) = wait_for(&tl, i, long, "the deletion reported", |l| {
        warned(l) && status(l).contains("cannot read")
    });
    // 4. A picture again: shown, the warning gone.
    put(&read(2));
    let (_, restored) = wait_for(&tl, i, long, "the restored image reloaded", |l| {
        stat(l, "background_image_loads") == 3 && !warned(l)
    });
    std::fs::write(&stop, b"").unwrap();
    let run = host.join().expect("host thread");
    println!("garbage: {}", status(&garbage));
    println!("deleted: {}", status(&deleted));
    println!("restored: {}", status(&restored));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
    assert!(status(&garbage).contains("showing the last image read"));
    assert!(status(&deleted).contains("showing the last image read"));
    assert_eq!(run.stats()["warning_kind"], Value::Null, "{}", run.status());
    let lines = timeline(&tl);
    assert_video_flowed(&lines);
    // Masks kept coming through every fault.
    assert!(stat(&restored, "masks_published") > stat(&garbage, "masks_published"));
    let log = run.log();
    assert_eq!(log.matches("changed: reloaded").count(), 2, "{log}");
    assert_eq!(
        log.matches("showing the last image read").count(),
        2,
        "one line per fault:\n{log}"
    );
}

#[test]
fn adding_and_removing_the_filter_hundreds_of_times_leaves_nothing_behind() {
    let video = require!(video);
    let plugin = require!(plugin);
    // 200 filters added to the live source and removed a frame later, then 50 sources made
    // with a filter, shown for a frame and released (--churn-*): each filter starts its
    // worker and loads its model.
    let run = host::run(
        "fault_churn",
        &plugin,
        &[
            "--input",
            video.to_str().unwrap(),
            "--loop",
            "--frames",
            "60",
            "--churn-filters",
            "200",
            "--churn-sources",
            "50",
            "--timeout-s",
            "180",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let c = &run.report["churn"];
    println!("churn: {c}");
    assert_eq!(c["filters_added_and_removed"], 200);
    assert_eq!(c["sources_made_and_released"], 50);
    let (before, after) = (&c["before"], &c["after"]);
    for k in ["threads", "fds", "gpu_objects"] {
        assert_eq!(before[k], after[k], "{k}: {c}");
    }
    let kb = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN) / 1024.0;
    let in_use = kb(after, "heap_in_use_kb") - kb(before, "heap_in_use_kb");
    let rss = kb(after, "rss_kb") - kb(before, "rss_kb");
    println!("churn: heap in use {in_use:+.1} MB, resident {rss:+.1} MB");
    // 250 filter lifetimes: a leak of a mask buffer each would be 16 MB and more
    assert!(in_use < 4.0, "heap in use grew {in_use} MB");
    assert!(rss < 32.0, "resident memory grew {rss} MB");
    assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
    assert_eq!(run.stats()["state"], "running", "{}", run.status());
}

#[test]
fn two_and_eight_filters_on_different_sources_each_make_masks() {
    let video = require!(video);
    let plugin = require!(plugin);
    let v = video.to_str().unwrap();
    let mut cost = Vec::new();
    for filters in [2usize, 8] {
        // the input's filter, and one on each of filters - 1 more copies of the video
        let added: Vec<String> = (1..filters).map(|i| format!("cam{i}={v}")).collect();
        let mut args = vec!["--input", v, "--loop", "--duration", "12"];
        args.extend(["--filter-added-sources", "--min-masks", "10"]);
        for a in &added {
            args.extend(["--add-source", a.as_str()]);
        }
        let run = host::run(&format!("filters_{filters}"), &plugin, &args, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
        let others = run.report["added_filters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(others.len(), filters - 1);
        let mut masks = vec![stat_of(run.stats(), "masks_published")];
        masks.extend(others.iter().map(|s| stat_of(s, "masks_published")));
        let perf = &run.report["perf"];
        println!(
            "{filters} filters: masks {masks:?}; workers {} threads, {:.3} cores in all; process {:.2} cores; rendered {} fps",
            perf["worker_threads"],
            perf["worker_cores"].as_f64().unwrap_or(f64::NAN),
            perf["process_cores"].as_f64().unwrap_or(f64::NAN),
            perf["output_fps"]
        );
        // every filter has its own worker and makes masks (they share the CPU: OBS first)
        assert!(perf["worker_threads"].as_u64().unwrap_or(0) >= filters as u64);
        assert!(masks.iter().all(|&m| m >= 10), "masks per filter {masks:?}");
        cost.push(perf["worker_cores"].as_f64().unwrap_or(f64::NAN));
    }
    println!(
        "worker cores in all: 2 filters {:.3}, 8 filters {:.3}",
        cost[0], cost[1]
    );
}

fn stat_of(stats: &Value, key: &str) -> i64 {
    stats[key].as_i64().unwrap_or(-1)
}
