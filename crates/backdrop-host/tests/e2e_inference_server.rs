//! Inference on a real NVIDIA Triton (build/triton, started by scripts/triton.sh on free loopback
//! ports): the server's masks against the local model's, and the filter in real OBS while the
//! server dies and comes back, or does not fit.

mod common;

use backdrop_core::segmentation::manifest::Manifest;
use backdrop_core::segmentation::remote::{RemoteModel, ServerConfig};
use backdrop_core::segmentation::session::{Model, SessionOptions};
use backdrop_core::segmentation::worker::MISSES_BEFORE_FALLBACK;
use backdrop_testdata::triton::Triton;
use common::host::{self, stat, timeline, wait_for};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn run_dir(name: &str) -> PathBuf {
    let d = common::root().join("target/e2e/runs").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn server(name: &str, dir: &Path) -> Triton {
    Triton::start(&dir.join(format!("{name}.triton.log"))).unwrap_or_else(|e| panic!("{e}"))
}

fn config(triton: &Triton, model: &str) -> ServerConfig {
    ServerConfig {
        url: triton.url.clone(),
        model: model.into(),
        version: String::new(),
        // generous: the server shares this machine's two cores with the test
        timeout_ms: 5000,
    }
}

#[test]
fn the_servers_masks_equal_the_local_models() {
    let video = require!(video);
    let models = require!(models);
    let env = require!(runtime);
    require!(triton);
    let dir = run_dir("inference_server_masks");
    let triton = server("masks", &dir);
    for (manifest_file, id) in [
        ("selfie_general.json", "selfie_general"),
        ("selfie_landscape.json", "selfie_landscape"),
    ] {
        let manifest = Manifest::load(&models.join(manifest_file)).expect("manifest");
        let mut local = Model::load(env, &manifest, SessionOptions::default()).expect("model");
        let (w, h) = local.input_size();
        let (_, _, frames) = common::decode_rgb(&video, Some((w, h)));
        let mut uint8 = RemoteModel::connect(&config(&triton, id), &manifest).expect("UINT8");
        let fp32_name = format!("{id}_fp32");
        let mut fp32 = RemoteModel::connect(&config(&triton, &fp32_name), &manifest).expect("FP32");
        assert_eq!(uint8.payload.datatype(), "UINT8");
        assert_eq!(fp32.payload.datatype(), "FP32");
        let mut worst = [0f32; 2];
        let mut sum = 0f64;
        let step = (frames.len() / 20).max(1);
        for rgb in frames.iter().step_by(step) {
            let bgra: Vec<u8> = rgb
                .chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0], 255])
                .collect();
            let stride = w as usize * 4;
            let want = local.infer(&bgra, stride).expect("local").to_vec();
            sum += want.iter().map(|&v| f64::from(v)).sum::<f64>();
            for (i, remote) in [&mut uint8, &mut fp32].into_iter().enumerate() {
                let got = remote.infer(&bgra, stride).expect("remote");
                assert_eq!(got.len(), want.len());
                let diff = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                worst[i] = worst[i].max(diff);
            }
        }
        println!(
            "{id}: max |server - local| UINT8 {:.2e}, FP32 {:.2e}; request {} / {} bytes, answer {} bytes",
            worst[0], worst[1], uint8.bytes_sent, fp32.bytes_sent, uint8.bytes_received
        );
        assert!(sum > 1000.0, "{id}: the frames hold a person");
        assert!(
            worst[0] < 1e-4,
            "{id}: UINT8 payload differs by {}",
            worst[0]
        );
        assert!(
            worst[1] < 1e-4,
            "{id}: FP32 payload differs by {}",
            worst[1]
        );
        // UINT8 sends a quarter of the FP32 tensor's bytes
        assert!(uint8.bytes_sent * 3 < fp32.bytes_sent);
    }
}

#[test]
fn in_obs_the_server_gives_the_same_picture_as_this_computer() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    require!(triton);
    let dir = run_dir("inference_server_pictures");
    let triton = server("pictures", &dir);
    let ids = common::portrait_ids(&testdata);
    let inputs: Vec<String> = ids
        .iter()
        .take(4)
        .map(|id| {
            testdata
                .join(format!("portraits/images/{id}.jpg"))
                .display()
                .to_string()
        })
        .collect();
    let url = format!("server_url={}", triton.url);
    let mut args: Vec<&str> = vec!["--mode", "color", "--settle", "4"];
    // no temporal smoothing and the whole frame stretched (no person region that moves from
    // mask to mask): each picture depends on its last mask only, not on how many came before
    args.extend(["--set", "temporal_smoothing=0", "--set", "aspect=stretch"]);
    for i in &inputs {
        args.extend(["--input", i.as_str()]);
    }
    let local = host::run("inference_server_pictures_local", &plugin, &args, &[]);
    args.extend(["--set", "inference=remote", "--set", &url]);
    let remote = host::run("inference_server_pictures_remote", &plugin, &args, &[]);
    assert_eq!((local.code, remote.code), (0, 0), "{}", remote.stderr);
    assert_eq!(remote.stats()["inference"], "remote", "{}", remote.status());
    for (i, id) in ids.iter().take(4).enumerate() {
        let name = format!("{id}.result.png");
        let (a, b) = (
            host::Rgba::load(&local.out.join(&name)),
            host::Rgba::load(&remote.out.join(&name)),
        );
        let worst =
            a.px.iter()
                .zip(&b.px)
                .map(|(x, y)| x.abs_diff(*y))
                .max()
                .unwrap_or(0);
        let mean = a.mean_abs_diff(&b);
        println!("portrait {id} (input {i}): server vs local picture: max {worst}, mean {mean:.4} levels");
        assert!(
            worst <= 2 && mean < 0.05,
            "portrait {id}: max {worst}, mean {mean}"
        );
    }
}

#[test]
fn the_dynamic_batch_variant_gives_each_frame_of_a_batch_its_own_mask() {
    let video = require!(video);
    let models = require!(models);
    let env = require!(runtime);
    let python = common::root().join(".venv/bin/python");
    if !python.is_file() {
        skip!(".venv is absent: run scripts/setup.sh");
    }
    let repo = run_dir("inference_server_batch_variant").join("repository");
    let status = std::process::Command::new(&python)
        .arg(common::root().join("models/convert.py"))
        .arg("--triton-repository")
        .arg(&repo)
        .arg("--models-dir")
        .arg(&models)
        .arg("--manifest")
        .arg(common::root().join("models/selfie_general.json"))
        .args(["--max-batch-size", "8"])
        .status()
        .expect("python runs");
    assert!(status.success());
    let config = std::fs::read_to_string(repo.join("selfie_general/config.pbtxt")).unwrap();
    assert!(config.contains("max_batch_size: 8") && config.contains("dynamic_batching"));
    let manifest = Manifest::load(&models.join("selfie_general.json")).expect("manifest");
    let mut local = Model::load(env, &manifest, SessionOptions::default()).expect("model");
    let mut session = backdrop_core::segmentation::session::build_session(
        env,
        &repo.join("selfie_general/1/model.onnx"),
        SessionOptions::default(),
    )
    .expect("the batch variant loads");
    let (_, _, frames) = common::decode_rgb(&video, Some((256, 256)));
    let picked: Vec<&Vec<u8>> = frames.iter().step_by(frames.len() / 3).take(3).collect();
    let batch: Vec<u8> = picked.iter().flat_map(|f| f.iter().copied()).collect();
    let input = ort::value::Tensor::from_array(([3usize, 256, 256, 3], batch)).unwrap();
    let outputs = session
        .run(ort::inputs!["input_1" => input])
        .expect("a batch of 3 runs");
    let (shape, data) = outputs["activation_10"]
        .try_extract_tensor::<u16>()
        .expect("UINT16 answer");
    assert_eq!(shape.to_vec(), vec![3, 4, 128, 128]);
    let per_frame = 4 * 128 * 128;
    let mut worst = 0f32;
    for (i, rgb) in picked.iter().enumerate() {
        let bgra: Vec<u8> = rgb
            .chunks_exact(3)
            .flat_map(|p| [p[2], p[1], p[0], 255])
            .collect();
        local.infer(&bgra, 256 * 4).expect("local");
        // the batch's answer read the way the client reads it (UINT16 / 65535, depth to space)
        let mut raw = vec![0f32; 256 * 256];
        let spec = manifest.output.clone();
        let values: Vec<f32> = data[i * per_frame..(i + 1) * per_frame]
            .iter()
            .map(|&v| f32::from(v) / 65535.0)
            .collect();
        backdrop_core::segmentation::tensor::person_probability(
            &values,
            4,
            backdrop_core::segmentation::manifest::Layout::Nchw,
            &spec,
            256,
            &mut raw,
        )
        .unwrap();
        let diff = raw
            .iter()
            .zip(local.probability())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        worst = worst.max(diff);
    }
    println!("dynamic-batch variant, a batch of 3 frames: max |batch - local| {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
}

#[test]
fn the_shipped_triton_configs_are_what_the_converter_writes() {
    require!(triton);
    let root = common::root();
    for id in ["selfie_general", "selfie_landscape"] {
        let shipped = root.join(format!("models/triton/{id}/config.pbtxt"));
        let written = root.join(format!("build/triton/models/{id}/config.pbtxt"));
        let (a, b) = (
            std::fs::read_to_string(&shipped).expect("shipped config"),
            std::fs::read_to_string(&written).expect("written config"),
        );
        assert_eq!(
            a,
            b,
            "{} differs from {}",
            shipped.display(),
            written.display()
        );
    }
}

#[test]
fn the_server_dies_mid_stream_and_comes_back_while_video_flows() {
    let video = require!(video);
    let plugin = require!(plugin);
    require!(triton);
    let dir = run_dir("inference_server_outage_driver");
    let mut triton = server("outage", &dir);
    let tl = dir.join("timeline.jsonl");
    let stop = dir.join("stop");
    let args: Vec<String> = [
        "--input",
        video.to_str().unwrap(),
        "--loop",
        "--duration",
        "900",
        "--timeout-s",
        "120",
        "--set",
        "inference=remote",
        "--set",
        &format!("server_url={}", triton.url),
        "--timeline",
        tl.to_str().unwrap(),
        "--stop-file",
        stop.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let host = host::spawn("inference_server_outage", &plugin, args);
    let long = Duration::from_secs(240);
    let remote = |l: &Value| l["stats"]["inference"] == "remote";

    // 1. Masks from the server.
    let (i, before) = wait_for(&tl, 0, long, "30 masks from the server", |l| {
        remote(l) && stat(l, "remote_frames") >= 30
    });
    // 2. The server dies: the filter falls back to this computer.
    triton.kill();
    let killed_at = before["t"].as_f64().unwrap();
    let (j, fell) = wait_for(&tl, i + 1, long, "the fallback", |l| {
        l["stats"]["inference"] == "fallback"
    });
    let (k, local) = wait_for(&tl, j, long, "30 local masks after the fallback", |l| {
        stat(l, "frames_inferred") >= stat(&fell, "frames_inferred") + 30
    });
    assert_eq!(fell["stats"]["warning_kind"], "inference_server");
    let reason = fell["stats"]["remote_reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(reason.contains(&triton.url), "{reason}");
    println!(
        "outage: fallback seen {:.2} s after the kill, {} misses; status: {}",
        fell["t"].as_f64().unwrap() - killed_at,
        stat(&fell, "remote_misses"),
        fell["stats"]["status"]
    );
    // 3. The server comes back: so does the filter, through the health check.
    triton.restart().unwrap_or_else(|e| panic!("{e}"));
    let restarted = timeline(&tl).len();
    let (_, back) = wait_for(
        &tl,
        restarted,
        long,
        "30 masks from the server again",
        |l| remote(l) && stat(l, "remote_frames") >= stat(&local, "remote_frames") + 30,
    );
    std::fs::write(&stop, b"").unwrap();
    let run = host.join().expect("host thread");
    let lines = timeline(&tl);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
    // Video flowed throughout: every second of the run has new output frames.
    for (a, b) in lines.iter().zip(lines.iter().skip(4)) {
        assert!(
            b["frames"].as_i64() > a["frames"].as_i64(),
            "no output frame between {} s and {} s",
            a["t"],
            b["t"]
        );
    }
    // A miss costs a frame's mask, and the outage spends only MISSES_BEFORE_FALLBACK of them
    // (an answer later than the deadline before the kill is a miss too, on a busy machine: the
    // count is taken from the kill).
    println!(
        "misses: {} before the kill, {} at the fallback, {} at the end",
        stat(&before, "remote_misses"),
        stat(&fell, "remote_misses"),
        stat(&back, "remote_misses")
    );
    assert_eq!(
        stat(&fell, "remote_misses") - stat(&before, "remote_misses"),
        i64::from(MISSES_BEFORE_FALLBACK),
        "{}",
        fell["stats"]
    );
    assert_eq!(stat(&back, "remote_fallbacks"), 1);
    assert_eq!(stat(&back, "remote_recoveries"), 1);
    assert!(
        stat(&local, "frames_inferred") > stat(&fell, "frames_inferred"),
        "local inference ran during the outage"
    );
    let log = run.log();
    let fallbacks = log.matches("inferring on this computer").count();
    let recoveries = log.matches("is back: inferring there again").count();
    assert_eq!((fallbacks, recoveries), (1, 1), "one log line each:\n{log}");
    println!(
        "outage: {} lines, remote frames {} before / {} after, local masks during {}",
        lines.len(),
        stat(&before, "remote_frames"),
        stat(&back, "remote_frames"),
        stat(&local, "frames_inferred") - stat(&fell, "frames_inferred") + 30
    );
    let _ = k;
}

#[test]
fn a_missing_or_unfitting_server_model_is_a_readable_status_and_video_goes_on() {
    let video = require!(video);
    let plugin = require!(plugin);
    require!(triton);
    let dir = run_dir("inference_server_wrong_model");
    let triton = server("wrong_model", &dir);
    let url = format!("server_url={}", triton.url);
    for (name, server_model, expect) in [
        (
            "inference_server_unknown_model",
            "no_such_model",
            "model 'no_such_model' is not available",
        ),
        // the landscape model's variant takes 144x256 frames; the general model sends 256x256
        (
            "inference_server_unfitting_model",
            "selfie_landscape",
            "does not fit selfie_general",
        ),
    ] {
        let model = format!("server_model={server_model}");
        let run = host::run_frames(
            name,
            &plugin,
            &video,
            60,
            &[
                "--model",
                "selfie_general",
                "--set",
                "inference=remote",
                "--set",
                &url,
                "--set",
                &model,
                "--min-masks",
                "20",
            ],
        );
        let s = run.stats();
        println!("{name}: {}", s["status"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(s["inference"], "fallback");
        assert_eq!(s["warning_kind"], "inference_server");
        assert_eq!(s["remote_frames"], 0);
        assert!(s["mask_frames"].as_i64().unwrap_or(0) >= 20, "{s}");
        let status = run.status();
        assert!(status.contains(expect), "{status}");
        assert!(status.contains(&triton.url), "{status}");
        assert_eq!(run.int("backdrop_errors"), 0, "{}", run.log());
        assert_eq!(
            run.log().matches("inferring on this computer").count(),
            1,
            "{}",
            run.log()
        );
    }
}
