//! Async sources done right, inside real OBS: the same portrait given as a PNG (`image_source`, a
//! synchronous source) and as async video frames in the two formats webcams deliver — packed
//! YUYV 4:2:2 in limited range, and Motion JPEG in full range — through OBS's `ffmpeg_source`
//! (which pushes frames with `obs_source_output_video`, as `v4l2_input` does). The Backdrop filter
//! must keep the same person in each, and hand the worker only the async source's new frames.

mod common;

use common::host::{self, Rgba};
use std::path::Path;
use std::process::Command;

const KEY: [u8; 3] = [0, 255, 0];
/// The async sources play at this rate on a 30 fps canvas: two of three canvas frames repeat.
const SOURCE_FPS: u32 = 10;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pixels of a colour-mode result that are not the key colour (the kept person).
fn kept(img: &Rgba) -> Vec<bool> {
    img.px
        .chunks_exact(4)
        .map(|p| (0..3).map(|c| p[c].abs_diff(KEY[c]) as u32).sum::<u32>() >= 90)
        .collect()
}

fn iou(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    inter as f64 / union.max(1) as f64
}

fn run_video(name: &str, plugin: &Path, video: &Path) -> (Rgba, Rgba, serde_json::Value) {
    let run = host::run(
        name,
        plugin,
        &[
            "--input",
            video.to_str().unwrap(),
            "--loop",
            "--frames",
            "90",
            "--fps",
            "30",
            "--stills",
            "1",
            "--mode",
            "color",
            "--color",
            "00FF00",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    let (original, result) = Rgba::load(&run.out.join("still_0001.png")).halves();
    (original, result, run.stats().clone())
}

#[test]
fn yuyv_and_mjpeg_frames_give_the_mask_of_the_picture() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let dir = common::root().join("target/e2e/async_formats");
    std::fs::create_dir_all(&dir).unwrap();
    let portrait = testdata.join("portraits/images/102.jpg");
    let png = dir.join("portrait.png");
    let yuyv = dir.join("portrait_yuyv.avi");
    let mjpeg = dir.join("portrait_mjpeg.avi");
    let (p, y, m) = (
        png.to_str().unwrap(),
        yuyv.to_str().unwrap(),
        mjpeg.to_str().unwrap(),
    );
    let scale = "scale=320:320";
    ffmpeg(&["-i", portrait.to_str().unwrap(), "-vf", scale, p]);
    let rate = SOURCE_FPS.to_string();
    let still = ["-loop", "1", "-framerate", &rate, "-t", "2", "-i", p];
    // Limited-range 4:2:2 as a webcam's YUYV mode; full-range JPEG as its MJPEG mode.
    ffmpeg(&[&still[..], &["-c:v", "rawvideo", "-pix_fmt", "yuyv422", y]].concat());
    ffmpeg(
        &[
            &still[..],
            &["-c:v", "mjpeg", "-pix_fmt", "yuvj422p", "-q:v", "2", m],
        ]
        .concat(),
    );

    let run = host::run(
        "async_formats_png",
        &plugin,
        &["--input", p, "--mode", "color", "--color", "00FF00"],
        &[],
    );
    assert_eq!(run.code, 0, "png: {}", run.stderr);
    let picture = Rgba::load(&run.out.join("portrait.result.png"));
    let reference = kept(&picture);
    let source = Rgba::load(&png);

    for (name, video) in [("yuyv", &yuyv), ("mjpeg", &mjpeg)] {
        let (original, result, stats) = run_video(&format!("async_formats_{name}"), &plugin, video);
        // The range was read right: the async frame looks like the picture.
        let colour_diff = original.mean_abs_diff(&source);
        let overlap = iou(&kept(&result), &reference);
        let (rendered, new, staged, async_frames) = (
            stats["frames_rendered"].as_u64().unwrap_or(0),
            stats["frames_new"].as_u64().unwrap_or(0),
            stats["frames_staged"].as_u64().unwrap_or(0),
            stats["async_frames"].as_u64().unwrap_or(0),
        );
        println!(
            "{name}: mean abs colour diff vs the PNG {colour_diff:.2}, IoU of the kept person vs \
             the PNG's {overlap:.3}; frames rendered {rendered}, new {new}, staged for the \
             worker {staged}, async frames {async_frames}"
        );
        // measured here: yuyv 7.8, mjpeg 2.1 (4:2:2 chroma, matrix round trip); a range read the
        // wrong way (16..235 as 0..255) moves every pixel by far more
        assert!(
            colour_diff < 12.0,
            "{name}: colours differ by {colour_diff:.2}"
        );
        assert!(
            overlap > 0.97,
            "{name}: IoU {overlap:.3} with the PNG's mask"
        );
        // Only new frames go to the worker: a 10 fps source on a 30 fps canvas.
        assert!(async_frames > 0, "{name}: filter_video never saw a frame");
        assert!(
            staged <= async_frames + 1,
            "{name}: staged {staged} > new {async_frames}"
        );
        assert!(
            rendered as f64 >= 2.0 * new as f64,
            "{name}: {rendered} rendered frames vs {new} new ones"
        );
    }
}
