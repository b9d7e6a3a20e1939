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

/// A plugin folder of its own for test `name` (`host::plugin_variant`), the Python of `.venv`
/// that writes derived models ([`derived_model`]) and the path of the folder's shipped general
/// model; `Err` says which is missing.
fn variant_and_python(
    name: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf), String> {
    let plugin = host::plugin_variant(name).ok_or("plugin folder cannot be made")?;
    let python = common::root().join(".venv/bin/python");
    if !python.is_file() {
        return Err(".venv is absent: run scripts/setup.sh".into());
    }
    let model = plugin.join("data/models/selfie_segmentation.onnx");
    Ok((plugin, python, model))
}

/// Writes `dst`: the model `src` with `body` (Python) appended to its graph. The body gets
/// `np`, `helper`, `nodes` (to append to), `add_initializer(name, array)`, `inp` (the input's
/// name), `fast` (the original output, renamed) and must make `out` (the output's name).
fn derived_model(
    python: &std::path::Path,
    src: &std::path::Path,
    dst: &std::path::Path,
    body: &str,
) -> std::path::PathBuf {
    let script = format!(
        r#"
import numpy as np, onnx
from onnx import helper, numpy_helper
m = onnx.load({src:?})
inp, out = m.graph.input[0].name, m.graph.output[0].name
fast = out + "_fast"
for n in m.graph.node:
    n.output[:] = [fast if o == out else o for o in n.output]
nodes = []
def add_initializer(name, array):
    m.graph.initializer.append(numpy_helper.from_array(array, name))
{body}
m.graph.node.extend(nodes)
onnx.checker.check_model(m)
onnx.save(m, {dst:?})
"#,
        src = src.to_str().unwrap(),
        dst = dst.to_str().unwrap()
    );
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let ok = std::process::Command::new(python)
        .args(["-c", &script])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "python writes {}", dst.display());
    dst.to_path_buf()
}

/// Python for [`derived_model`]: `n` chained 384x512 by 512x512 MatMuls (and Tanh) on the input,
/// multiplied by 0 and added to the output: the same masks, ~1.1 ms more per MatMul on one core
/// of this machine.
fn slow_body(n: usize) -> String {
    format!(
        r#"
rng = np.random.default_rng(0)
add_initializer("slow_w", (rng.standard_normal((512, 512)) / np.sqrt(512)).astype(np.float32))
add_initializer("slow_shape", np.array([384, 512], np.int64))
add_initializer("slow_zero", np.array(0.0, np.float32))
nodes.append(helper.make_node("Reshape", [inp, "slow_shape"], ["slow_0"]))
for i in range({n}):
    nodes.append(helper.make_node("MatMul", [f"slow_{{i}}", "slow_w"], [f"slow_m{{i}}"]))
    nodes.append(helper.make_node("Tanh", [f"slow_m{{i}}"], [f"slow_{{i + 1}}"]))
nodes += [helper.make_node("ReduceMean", [f"slow_{n}"], ["slow_mean"], keepdims=0),
          helper.make_node("Mul", ["slow_mean", "slow_zero"], ["slow_nothing"]),
          helper.make_node("Add", [fast, "slow_nothing"], [out])]
"#
    )
}

/// Ends a spawned host when the test ends, also when an assertion failed (`--stop-file`).
struct StopOnDrop(std::path::PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, b"");
    }
}

/// Writes `bytes` over `path` as an installer or editor does: beside it, then renamed over it.
fn put(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn the_model_file_replaced_by_another_model_then_by_garbage_while_running() {
    let video = require!(video);
    let (plugin, python, model) = match variant_and_python("model_swap") {
        Ok(v) => v,
        Err(why) => skip!("{why}"),
    };
    let original = std::fs::read(&model).unwrap();
    let dir = common::root().join("target/e2e/runs/fault_model_driver");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Another valid model with the same inputs and outputs: the general model, its person
    // probability inverted (1 - p), so which one runs shows in the masks.
    let inverted = derived_model(
        &python,
        &model,
        &dir.join("inverted.onnx"),
        r#"
add_initializer("one_inv", np.array(1.0, np.float32))
nodes.append(helper.make_node("Sub", ["one_inv", fast], [out]))
"#,
    );
    let (tl, stop, settings) = (
        dir.join("timeline.jsonl"),
        dir.join("stop"),
        dir.join("settings.txt"),
    );
    let args: Vec<String> = [
        "--input",
        video.to_str().unwrap(),
        "--loop",
        "--duration",
        "600",
        "--timeout-s",
        "120",
        // the whole frame: the share of person in the mask tells the two models apart
        "--set",
        "aspect=stretch",
        "--timeline",
        tl.to_str().unwrap(),
        "--stop-file",
        stop.to_str().unwrap(),
        "--settings-file",
        settings.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let host = host::spawn("fault_model", &plugin, args);
    let _stop = StopOnDrop(stop.clone());
    let long = Duration::from_secs(180);
    // A settings change from outside, waited for until the host has taken it.
    let change = |line: &str| {
        put(&settings, line.as_bytes());
        let started = std::time::Instant::now();
        while settings.exists() {
            assert!(started.elapsed() < long, "the host never read {line}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let share = |l: &Value| l["stats"]["mask_person_share"].as_f64().unwrap_or(-1.0);
    let warned = |l: &Value| l["stats"]["warning_kind"] == "model_file";

    let (i, first) = wait_for(&tl, 0, long, "20 masks", |l| {
        stat(l, "masks_published") >= 20
    });
    let s0 = share(&first);
    assert!((0.55..0.95).contains(&s0), "person share {s0}");
    // 1. Another valid model written over the file: it runs from the next settings change.
    put(&model, &std::fs::read(&inverted).unwrap());
    let masks = stat(&first, "masks_published");
    let (i, before_change) = wait_for(&tl, i, long, "20 more masks", |l| {
        stat(l, "masks_published") >= masks + 20
    });
    assert!(share(&before_change) > 0.55, "reloaded without a change");
    change("threshold=0.45");
    let (i, swapped) = wait_for(&tl, i, long, "the replaced model running", |l| {
        share(l) < 0.45
    });
    // 2. Garbage written over it: the model read before keeps running, the status says why,
    // however often the settings change.
    put(&model, b"this is not an ONNX model");
    change("threshold=0.5");
    let (i, garbage) = wait_for(&tl, i, long, "the garbage reported", warned);
    for t in ["0.55", "0.6", "0.4", "0.5", "0.45"] {
        change(&format!("threshold={t}"));
    }
    let masks = stat(&garbage, "masks_published");
    let (i, during) = wait_for(&tl, i, long, "masks after the garbage", |l| {
        stat(l, "masks_published") >= masks + 20
    });
    // 3. The first model back: read at the next change, the warning gone.
    put(&model, &original);
    change("threshold=0.5");
    let (_, restored) = wait_for(&tl, i, long, "the original model again", |l| {
        !warned(l) && share(l) > 0.55 && stat(l, "masks_published") > masks + 20
    });
    std::fs::write(&stop, b"").unwrap();
    let run = host.join().expect("host thread");
    let status = |l: &Value| l["stats"]["status"].as_str().unwrap_or("").to_string();
    println!(
        "person share: {s0:.3} first, {:.3} before the change, {:.3} replaced, {:.3} with garbage on disk, {:.3} restored",
        share(&before_change),
        share(&swapped),
        share(&during),
        share(&restored)
    );
    println!("garbage: {}", status(&garbage));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
    assert!(warned(&during) && share(&during) < 0.45, "{during}");
    assert!(
        status(&garbage).contains("still running the model read before")
            && status(&garbage).contains("selfie_segmentation.onnx"),
        "{}",
        status(&garbage)
    );
    assert_eq!(run.stats()["state"], "running", "{}", run.status());
    assert_video_flowed(&timeline(&tl));
    let log = run.log();
    assert_eq!(log.matches("changed: reloaded").count(), 2, "{log}");
    // Six settings changes with the garbage on disk, one parse of it.
    assert_eq!(
        log.matches("Protobuf parsing failed").count(),
        1,
        "parsed once:\n{log}"
    );
    assert_eq!(
        log.matches("still running the model read before").count(),
        1,
        "{log}"
    );
}

/// The milliseconds in the log's "segmentation worker stopped in N ms" lines.
fn worker_stop_ms(log: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|l| l.split("segmentation worker stopped in ").nth(1))
        .filter_map(|rest| rest.trim_end_matches(" ms").parse().ok())
        .collect()
}

#[test]
fn a_500_ms_model_never_stalls_the_video_and_shutdown_ends_its_inference() {
    let video = require!(video);
    let plugin = require!(plugin);
    let (slow_plugin, python, model) = match variant_and_python("slow_model") {
        Ok(v) => v,
        Err(why) => skip!("{why}"),
    };
    let slow = derived_model(
        &python,
        &model,
        &common::root().join("target/e2e/manifests/slow_500ms.onnx"),
        &slow_body(440),
    );
    std::fs::copy(&slow, &model).unwrap();
    // The same 15 s of video, the model as shipped and the slow one; each run ends (and OBS
    // shuts down) while its worker is busy.
    let args = |name| {
        let run = host::run(
            name,
            if name == "slow_model" {
                &slow_plugin
            } else {
                &plugin
            },
            &[
                "--input",
                video.to_str().unwrap(),
                "--loop",
                "--duration",
                "15",
                "--min-masks",
                "10",
                "--timeout-s",
                "120",
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.assert_no_errors();
        run
    };
    let (fast, slow) = (args("slow_model_baseline"), args("slow_model"));
    let f = |run: &host::Run, k: &str| run.report["perf"][k].as_f64().unwrap_or(f64::NAN);
    let st = |run: &host::Run, k: &str| run.stats()[k].as_f64().unwrap_or(f64::NAN);
    for (name, run) in [("shipped", &fast), ("slow", &slow)] {
        println!(
            "{name}: inference {:.0} ms median; output {:.1} fps, lagged {}; OBS frame time {:.1} ms median; filter render {:.2} ms median, {:.2} p95; mask age {} median, {} max; status {:?}; worker stopped in {:?} ms; obs_shutdown {:.0} ms",
            st(run, "inference_ms_median"),
            f(run, "output_fps"),
            run.report["perf"]["lagged_frames"],
            f(run, "obs_frame_time_ms_median"),
            st(run, "render_ms_median"),
            st(run, "render_ms_p95"),
            run.stats()["mask_age_median"],
            run.stats()["mask_age_max"],
            run.status(),
            worker_stop_ms(&run.log()),
            run.report["shutdown_ms"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let inference = st(&slow, "inference_ms_median");
    assert!(inference >= 300.0, "the slow model took {inference} ms");
    // The video keeps its frame rate and the graphics thread never waits for the worker.
    assert!(
        f(&slow, "output_fps") >= 0.85 * f(&fast, "output_fps"),
        "output fps {} against {}",
        f(&slow, "output_fps"),
        f(&fast, "output_fps")
    );
    let render_p95 = st(&slow, "render_ms_p95");
    assert!(
        render_p95 < inference / 5.0 && render_p95 < 2.0 * st(&fast, "render_ms_p95") + 5.0,
        "filter render p95 {render_p95} ms (shipped model {})",
        st(&fast, "render_ms_p95")
    );
    // The mask's age grows with the inference time and the status says it.
    let age = st(&slow, "mask_age_median");
    assert!(age >= 5.0, "mask age {age} frames");
    assert!(
        slow.status()
            .contains(&format!("mask {age:.0} frames behind")),
        "{}",
        slow.status()
    );
    // Shutdown came while an inference ran: the run was ended (RunOptions::terminate), not
    // waited for.
    let stops = worker_stop_ms(&slow.log());
    assert_eq!(stops.len(), 1, "{}", slow.log());
    // An ended run is not a refused output: nothing is logged about it.
    assert!(!slow.log().contains("refused"), "{}", slow.log());
    assert!(
        stops[0] < inference / 2.0,
        "stopped in {} ms; an inference takes {inference} ms",
        stops[0]
    );
}

#[test]
fn obs_shuts_down_while_a_model_loads() {
    let video = require!(video);
    let (plugin, python, model) = match variant_and_python("slow_load") {
        Ok(v) => v,
        Err(why) => skip!("{why}"),
    };
    // The general model with a constant that ONNX Runtime folds while it loads the session:
    // 200 Tanh over 4 million values, ~1-2 s of loading, the same masks after.
    let slow = derived_model(
        &python,
        &model,
        &common::root().join("target/e2e/manifests/slow_load.onnx"),
        r#"
add_initializer("load_c", np.random.default_rng(0).standard_normal(4_000_000).astype(np.float32))
add_initializer("load_zero", np.array(0.0, np.float32))
prev = "load_c"
for i in range(200):
    nodes.append(helper.make_node("Tanh", [prev], [f"load_{i}"]))
    prev = f"load_{i}"
nodes += [helper.make_node("ReduceMean", [prev], ["load_mean"], keepdims=0),
          helper.make_node("Mul", ["load_mean", "load_zero"], ["load_nothing"]),
          helper.make_node("Add", [fast, "load_nothing"], [out])]
"#,
    );
    std::fs::copy(&slow, &model).unwrap();
    let run = host::run_frames("slow_load", &plugin, &video, 3, &[]);
    let stops = worker_stop_ms(&run.log());
    println!(
        "state at shutdown: {}; worker stopped in {stops:?} ms; obs_shutdown {:.0} ms",
        run.stats()["state"],
        run.report["shutdown_ms"].as_f64().unwrap_or(f64::NAN)
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.int("frames_captured") >= 3, "{}", run.report);
    assert_eq!(run.stats()["state"], "loading", "{}", run.stats());
    run.assert_no_errors();
    assert_eq!(stops.len(), 1, "{}", run.log());
    // The load cannot be interrupted; the worker ends with it and runs no inference after.
    assert!(stops[0] < 30_000.0, "{stops:?}");
    assert!(
        run.log().contains("model 'selfie_general' loaded"),
        "{}",
        run.log()
    );
}

fn stat_of(stats: &Value, key: &str) -> i64 {
    stats[key].as_i64().unwrap_or(-1)
}
