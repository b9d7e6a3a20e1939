//! Bad input inside real OBS: a missing runtime, model or image, a corrupt model, sizes 0 and
//! changing, the filter removed while inference runs, a storm of settings updates. In every case
//! OBS keeps running, video keeps flowing and the filter's status says what is wrong.

mod common;

use common::host::{self, Rgba, Run};
use std::path::PathBuf;

/// Frames kept flowing: at least `min` output frames and a clean exit.
fn assert_flowing(run: &Run, min: i64) {
    assert_eq!(run.code, 0, "host failed:\n{}", run.stderr);
    let frames = run.int("frames_captured");
    assert!(
        frames >= min,
        "only {frames} frames came out (expected >= {min})"
    );
}

/// The last still's result equals its original (pass-through).
fn assert_passthrough(run: &Run) {
    let still = Rgba::load(&run.out.join("still_0002.png"));
    let (original, result) = still.halves();
    let diff = original.mean_abs_diff(&result);
    assert!(
        diff < 1.0,
        "expected unchanged video, mean difference {diff:.2}"
    );
}

/// The filter's machine-readable state: `error` of `kind`, video passing through.
fn assert_error(run: &Run, kind: &str) {
    assert_eq!(run.stats()["state"], "error", "{}", run.stats());
    assert_eq!(run.stats()["error_kind"], kind, "{}", run.stats());
    assert_eq!(run.stats()["error"], true);
}

/// The property named `name` in the report's properties view.
fn property<'a>(run: &'a Run, name: &str) -> &'a serde_json::Value {
    run.report["properties"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no property {name:?} in {}", run.report["properties"]))
}

/// Exactly one warning line from the plugin that contains `needle`, and no error line.
fn assert_logged_once(run: &Run, needle: &str) {
    let log = run.log();
    let hits = log
        .lines()
        .filter(|l| l.contains("[backdrop]") && l.contains(needle))
        .count();
    assert_eq!(
        hits, 1,
        "expected one log line containing {needle:?}, got {hits}:\n{log}"
    );
    assert_eq!(run.int("backdrop_errors"), 0, "error lines:\n{log}");
}

#[test]
fn missing_runtime_library_passes_video_through_with_a_readable_status() {
    let video = require!(video);
    let Some(plugin) = host::plugin_variant("no_runtime") else {
        skip!("plugin folder cannot be made")
    };
    std::fs::remove_file(plugin.join("bin/64bit/libonnxruntime.so.1.31.1")).unwrap();
    let run = host::run_frames("no_runtime", &plugin, &video, 40, &["--stills", "2"]);
    assert_flowing(&run, 40);
    let status = run.status();
    println!("status: {status}");
    assert_error(&run, "runtime");
    // The status names the library and carries the loader's own reason (dlerror).
    let dlerror = "cannot open shared object file";
    assert!(
        status.contains("libonnxruntime.so.1.31.1") && status.contains(dlerror),
        "{status}"
    );
    assert_logged_once(&run, dlerror);
    assert_passthrough(&run);
    // The user sees the same reason at the top of the filter's properties.
    let shown = property(&run, "status")["description"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(shown, status, "properties status");
}

#[test]
fn properties_are_localised_and_list_the_installed_models() {
    let video = require!(video);
    let plugin = require!(plugin);
    let run = host::run_frames(
        "properties",
        &plugin,
        &video,
        30,
        &[
            "--mode",
            "color",
            "--add-source",
            "Studio wall=color:64x64:FF808080",
        ],
    );
    assert_flowing(&run, 30);
    // Labels come from data/locale/en-US.ini, not the raw keys.
    assert_eq!(property(&run, "mode")["description"], "Background");
    assert_eq!(
        property(&run, "edge_softness")["description"],
        "Edge softness"
    );
    let modes: Vec<&str> = property(&run, "mode")["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(
        modes,
        [
            "Blur",
            "Image",
            "Colour",
            "Transparent",
            "Pixelate",
            "Focal blur (sharp near you)",
            "OBS source",
            "Video file"
        ]
    );
    // The background source list: "none", then the scene collection's sources with video.
    let sources: Vec<&str> = property(&run, "background_source")["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["value"].as_str())
        .collect();
    assert_eq!(sources, ["", "Studio wall"]);
    let effects: Vec<&str> = property(&run, "effect")["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(effects, ["None", "Hologram"]);
    // The model list is read from the installed manifests.
    let models: Vec<&str> = property(&run, "model")["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["value"].as_str())
        .collect();
    assert_eq!(models, ["selfie_general", "selfie_landscape", "custom"]);
    // The status line reports the running model and its measured inference time.
    assert_eq!(run.stats()["state"], "running");
    assert_eq!(run.stats()["execution_provider"], "cpu");
    let status = property(&run, "status")["description"]
        .as_str()
        .unwrap_or("");
    let median = run.stats()["inference_ms_median"].as_f64().unwrap_or(-1.0);
    assert!(
        status.starts_with("selfie_general") && status.contains(&format!("{median:.1}")),
        "status: {status}, median {median:.1}"
    );
    // Only the controls of the chosen mode are shown.
    assert_eq!(property(&run, "color")["visible"], true);
    assert_eq!(property(&run, "image_path")["visible"], false);
    assert_eq!(property(&run, "pixel_size")["visible"], false);
    assert_eq!(property(&run, "feather")["visible"], true);
    assert_eq!(property(&run, "effect")["visible"], true);
    for hidden in ["background_source", "background_video", "focal_distance"] {
        assert_eq!(property(&run, hidden)["visible"], false, "{hidden}");
    }
}

#[test]
fn missing_model_file_and_unknown_model_id_pass_through() {
    let video = require!(video);
    let Some(plugin) = host::plugin_variant("no_model") else {
        skip!("plugin folder cannot be made")
    };
    std::fs::remove_file(plugin.join("data/models/selfie_segmentation.onnx")).unwrap();
    let run = host::run_frames("no_model", &plugin, &video, 30, &["--stills", "2"]);
    assert_flowing(&run, 30);
    let status = run.status();
    println!("status: {status}");
    assert_error(&run, "model");
    assert!(status.contains("selfie_segmentation.onnx"), "{status}");
    assert_logged_once(&run, "selfie_segmentation.onnx");
    assert_passthrough(&run);

    let plugin = host::plugin_dir().unwrap();
    let run = host::run_frames(
        "unknown_model",
        &plugin,
        &video,
        30,
        &["--stills", "2", "--model", "no_such_model"],
    );
    assert_flowing(&run, 30);
    assert_error(&run, "model");
    assert!(run.status().contains("no_such_model"), "{}", run.status());
    assert_passthrough(&run);
}

#[test]
fn corrupt_model_file_passes_through_with_the_runtime_error() {
    let video = require!(video);
    let Some(plugin) = host::plugin_variant("corrupt_model") else {
        skip!("plugin folder cannot be made")
    };
    let model = plugin.join("data/models/selfie_segmentation.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes.truncate(bytes.len() / 3); // a download cut short
    std::fs::write(&model, bytes).unwrap();
    let run = host::run_frames("corrupt_model", &plugin, &video, 30, &["--stills", "2"]);
    assert_flowing(&run, 30);
    let status = run.status();
    println!("status: {status}");
    assert_error(&run, "model");
    // The runtime's own reason, with the file it could not read.
    assert!(
        status.contains("Protobuf parsing failed") && status.contains("selfie_segmentation.onnx"),
        "{status}"
    );
    assert_logged_once(&run, "Protobuf parsing failed");
    assert_passthrough(&run);
}

#[test]
fn missing_background_image_blurs_instead_and_says_so() {
    let video = require!(video);
    let plugin = require!(plugin);
    let run = host::run_frames(
        "missing_image",
        &plugin,
        &video,
        40,
        &[
            "--stills",
            "2",
            "--mode",
            "image",
            "--background-image",
            "/nonexistent/beach.jpg",
        ],
    );
    assert_flowing(&run, 40);
    let status = run.status();
    println!("status: {status}");
    assert_eq!(run.stats()["warning_kind"], "background_image");
    assert_eq!(run.stats()["state"], "running");
    assert!(status.contains("/nonexistent/beach.jpg"), "{status}");
    assert_logged_once(&run, "/nonexistent/beach.jpg");
    // The person is still separated from a (blurred) background: the result is not the original.
    let (original, result) = Rgba::load(&run.out.join("still_0002.png")).halves();
    assert!(
        original.mean_abs_diff(&result) > 2.0,
        "background was not replaced"
    );
}

#[test]
fn zero_sized_source_does_not_stall_or_log_errors() {
    let plugin = require!(plugin);
    let run = host::run(
        "zero_size",
        &plugin,
        &[
            "--input",
            "color:0x0",
            "--canvas",
            "64x64",
            "--frames",
            "30",
        ],
        &[],
    );
    assert_flowing(&run, 30);
    assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
}

#[test]
fn source_changing_size_mid_stream_keeps_masks_coming() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let (a, b) = (
        testdata.join("portraits/images/3.jpg"),
        testdata.join("portraits/images/261.jpg"),
    );
    let run = host::run_frames(
        "resize",
        &plugin,
        &a,
        60,
        &[
            "--resize-at-frame",
            "20:480x240",
            "--resize-image",
            b.to_str().unwrap(),
            "--canvas",
            "480x300",
        ],
    );
    assert_flowing(&run, 60);
    assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
    let masks = run.stats()["mask_frames"].as_i64().unwrap_or(0);
    assert!(
        masks >= 30,
        "only {masks} masks over 60 frames across the size change"
    );
    assert_eq!(run.stats()["error"], false, "{}", run.status());
}

#[test]
fn filter_removed_while_inference_runs_keeps_video_flowing() {
    let video = require!(video);
    let plugin = require!(plugin);
    let run = host::run_frames(
        "remove_filter",
        &plugin,
        &video,
        60,
        &["--remove-filter-after-frames", "15"],
    );
    assert_flowing(&run, 60);
    assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
    assert!(
        run.log().contains("'Backdrop' destroyed")
            || run.log().contains("private source 'Backdrop' destroyed"),
        "filter was not destroyed:\n{}",
        run.log()
    );
}

#[test]
fn settings_changed_every_frame_for_a_hundred_frames() {
    let video = require!(video);
    let plugin = require!(plugin);
    let testdata = require!(testdata);
    // Every mode in turn, so the background feed (a scene-collection media source, a video
    // file's own media source) is made and dropped every few frames.
    let other = testdata.join("video/talking_head_b.mp4");
    let carphone = format!(
        "Storm source={}",
        testdata.join("video/carphone_qcif.mp4").display()
    );
    let run = host::run_frames(
        "settings_storm",
        &plugin,
        &video,
        150,
        &[
            "--settings-storm",
            "100",
            "--stills",
            "2",
            "--background-video",
            other.to_str().unwrap(),
            "--add-source",
            &carphone,
            "--background-source",
            "Storm source",
            "--min-masks",
            "20",
        ],
    );
    assert_flowing(&run, 150);
    // 100 updates and the restore, one per output frame: spread over at least 100 frames.
    let (updates, frames) = (
        run.int("settings_storm_updates"),
        run.int("settings_storm_frames"),
    );
    println!("settings storm: {updates} updates over {frames} frames");
    assert_eq!(updates, 101);
    assert!((101..150).contains(&frames), "{frames} frames");
    assert_eq!(run.report["settings_storm_restored"], true);
    assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
    assert_eq!(run.stats()["error"], false, "{}", run.status());
    let masks = run.stats()["mask_frames"].as_i64().unwrap_or(0);
    assert!(
        masks >= 20,
        "only {masks} masks: the storm stalled the worker"
    );
    // The restored settings (mode blur) no longer show the added source: the filter gave back
    // its active and showing references.
    assert_eq!(
        run.report["added_sources"],
        serde_json::json!([{ "name": "Storm source", "active": false, "showing": false }])
    );
    // Every source made for a video background, and every reference, was given back.
    assert_eq!(
        run.int("bmem_leaks"),
        0,
        "memory still allocated after obs_shutdown"
    );
    assert_eq!(run.int("backdrop_warnings"), 0, "{}", run.log());
}

/// Writes a manifest for a third-party test model with an absolute "file" path and returns it.
fn thirdparty_manifest(name: &str, json: serde_json::Value) -> PathBuf {
    let dir = common::root().join("target/e2e/manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    path
}

fn sinet_manifest(testdata: &std::path::Path, input_name: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "sinet", "name": "SINet (test)",
        "file": testdata.join("models/thirdparty/sinet_softmax_320x320.onnx"),
        "input": { "name": input_name, "shape": [1, 3, 320, 320], "layout": "NCHW", "channel_order": "RGB",
                   "mean": [102.890434, 111.25247, 126.91212],
                   "std": [62.93292 * 255.0, 62.82138 * 255.0, 66.355705 * 255.0] },
        "output": { "name": "Softmax/1", "kind": "probabilities", "person_channel": 1 },
        "licence": "MIT"
    })
}

#[test]
fn users_own_models_run_from_a_manifest_alone() {
    let testdata = require!(testdata);
    let video = require!(video);
    let plugin = require!(plugin);
    let sinet = thirdparty_manifest("sinet", sinet_manifest(&testdata, "data"));
    let meet = thirdparty_manifest(
        "meet",
        serde_json::json!({
            "id": "meet", "name": "Meet (test)",
            "file": testdata.join("models/thirdparty/meet_segmentation_144x256.onnx"),
            "input": { "name": "input_1:0", "shape": [1, 144, 256, 3], "layout": "NHWC", "channel_order": "RGB",
                       "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0] },
            "output": { "name": "segment:0", "kind": "logits_softmax", "person_channel": 1 },
            "licence": "test only"
        }),
    );
    for (name, manifest, mask_size) in [("sinet", &sinet, (320, 320)), ("meet", &meet, (256, 144))]
    {
        let set = format!("custom_model_path={}", manifest.display());
        let args = [
            "--input",
            video.to_str().unwrap(),
            "--frames",
            "40",
            "--model",
            "custom",
            "--set",
            &set,
            "--stills",
            "2",
            // SINet takes 40-95 ms a frame here: on a busy machine 40 frames hold fewer masks.
            "--min-masks",
            "10",
        ];
        let run = host::run(&format!("custom_{name}"), &plugin, &args, &[]);
        assert_flowing(&run, 40);
        assert_eq!(run.stats()["error"], false, "{name}: {}", run.status());
        assert!(
            run.stats()["mask_frames"].as_i64().unwrap_or(0) >= 10,
            "{name}: no masks: {}",
            run.status()
        );
        assert_eq!(
            (
                run.stats()["mask_width"].as_i64(),
                run.stats()["mask_height"].as_i64()
            ),
            (Some(mask_size.0), Some(mask_size.1)),
            "{name}: mask size"
        );
        let (original, result) = Rgba::load(&run.out.join("still_0002.png")).halves();
        assert!(
            original.mean_abs_diff(&result) > 2.0,
            "{name}: background not replaced"
        );
        println!("{name}: {}", run.status());
    }
}

#[test]
fn a_wrong_manifest_gives_a_readable_error_and_passes_video_through() {
    let testdata = require!(testdata);
    let video = require!(video);
    let plugin = require!(plugin);
    let wrong = thirdparty_manifest("sinet_wrong_input", sinet_manifest(&testdata, "image"));
    let set = format!("custom_model_path={}", wrong.display());
    let run = host::run_frames(
        "custom_wrong",
        &plugin,
        &video,
        30,
        &["--model", "custom", "--set", &set, "--stills", "2"],
    );
    assert_flowing(&run, 30);
    let status = run.status();
    println!("status: {status}");
    assert_error(&run, "model");
    // Names the input the manifest asked for and the ones the model has.
    assert!(
        status.contains("'image'") && status.contains("\"data\""),
        "{status}"
    );
    assert_passthrough(&run);
}

/// Whether OBS's linux-v4l2 module will register its virtual camera here: `modinfo v4l2loopback`
/// finds the module for the running kernel.
fn loopback_installed() -> bool {
    std::process::Command::new("modinfo")
        .arg("v4l2loopback")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn virtual_camera_without_v4l2loopback_is_one_clear_error_and_the_filter_runs_on() {
    let video = require!(video);
    let plugin = require!(plugin);
    if loopback_installed() {
        // The kernel module works here: e2e_virtualcam.rs covers the camera itself.
        println!("skipped: v4l2loopback is installed for this kernel");
        return;
    }
    let run = host::run_frames(
        "no_loopback",
        &plugin,
        &video,
        40,
        &["--stills", "2", "--virtualcam"],
    );
    // The host reports the failure in its exit status after running the frames it was asked for.
    assert_eq!(run.code, 3, "exit status; stderr:\n{}", run.stderr);
    let message = run.report["virtualcam_error"].as_str().unwrap_or("");
    println!("virtual camera error: {message}");
    assert!(
        message.contains("v4l2loopback") && message.contains("modprobe"),
        "{message}"
    );
    assert_eq!(run.report["virtualcam_started"], false);
    let said = run
        .stderr
        .lines()
        .filter(|l| l.contains("virtual camera is not available"))
        .count();
    assert_eq!(said, 1, "said once on stderr:\n{}", run.stderr);
    // The filter is unaffected: all frames came out, masks settled, no error from the plugin.
    assert!(run.int("frames_captured") >= 40, "{}", run.report);
    assert!(
        run.stats()["mask_frames"].as_i64().unwrap_or(0) > 0,
        "{}",
        run.stats()
    );
    assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
    let (original, result) = Rgba::load(&run.out.join("still_0002.png")).halves();
    assert!(original.mean_abs_diff(&result) > 2.0, "background blurred");
}

#[test]
fn a_model_whose_output_is_nan_gives_a_readable_status_not_a_broken_picture() {
    let video = require!(video);
    let plugin = require!(plugin);
    let python = common::root().join(".venv/bin/python");
    if !python.is_file() {
        skip!(".venv is absent: run scripts/setup.sh");
    }
    // A valid ONNX model whose every output is NaN: sqrt(-1 - mean over the channels).
    let dir = common::root().join("target/e2e/manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let onnx_path = dir.join("nan_model.onnx");
    let script = format!(
        r#"
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])
y = helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 64, 64])
one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[1], keepdims=1),
         helper.make_node("Neg", ["m"], ["n"]), helper.make_node("Sub", ["n", "one"], ["k"]),
         helper.make_node("Sqrt", ["k"], ["mask"])]
model = helper.make_model(helper.make_graph(nodes, "nan", [x], [y], [one]),
                          opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, {path:?})
"#,
        path = onnx_path.to_str().unwrap()
    );
    let ok = std::process::Command::new(&python)
        .args(["-c", &script])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "python writes the NaN model");
    let manifest = thirdparty_manifest(
        "nan_model",
        serde_json::json!({
            "id": "nan_model", "name": "NaN (test)", "file": onnx_path,
            "input": { "name": "input", "shape": [1, 3, 64, 64], "layout": "NCHW",
                       "channel_order": "RGB", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0] },
            "output": { "name": "mask", "kind": "probability", "person_channel": 0 },
            "licence": "test only"
        }),
    );
    let set = format!("custom_model_path={}", manifest.display());
    let run = host::run_frames(
        "nan_model",
        &plugin,
        &video,
        90,
        &["--model", "custom", "--set", &set, "--min-masks", "40"],
    );
    assert_flowing(&run, 90);
    let status = run.status();
    println!("status: {status}");
    assert_eq!(run.stats()["state"], "running", "{}", run.stats());
    assert_eq!(run.stats()["warning_kind"], "model_output", "{status}");
    assert!(status.contains("NaN"), "{status}");
    assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
    assert_eq!(
        run.log().matches("cannot be a mask").count(),
        1,
        "one log line:\n{}",
        run.log()
    );
}
