//! Backgrounds and effects inside real OBS, on real people: another OBS source (a colour source,
//! a media source playing a real video) or a video file behind the person, the source removed
//! while shown, the hologram effect, focal blur, and the halo measure of the blur. Pixel
//! assertions against ground-truth person masks and the background video's own decoded frames.

mod common;

use common::host::{self, Rgba};
use common::portraits::{distance_to, ground_truth, settled_results, transparent_alphas};
use std::path::{Path, PathBuf};

/// The portrait used where one person is enough: 612x408 (even: the clip's 4:2:0 chroma fits),
/// a woman in a straw hat with raised arms against a blue wall.
const PORTRAIT: u32 = 102;

/// Pixels at least this far (px) outside / inside the ground-truth silhouette are judged as
/// background / person: the model's edge is within it.
const MARGIN: f32 = 12.0;

/// The portrait's file, its ground-truth mask, and for each pixel the distance to the person
/// and to the background.
struct Portrait {
    path: PathBuf,
    width: u32,
    height: u32,
    to_person: Vec<f32>,
    to_background: Vec<f32>,
}

impl Portrait {
    fn load(testdata: &Path, id: u32) -> Portrait {
        let path = testdata.join(format!("portraits/images/{id}.jpg"));
        let (width, height) = image::image_dimensions(&path).unwrap();
        let truth = ground_truth(
            &testdata.join(format!("portraits/masks/{id}.png")),
            width,
            height,
        );
        let outside: Vec<bool> = truth.iter().map(|t| !t).collect();
        Portrait {
            path,
            width,
            height,
            to_person: distance_to(&truth, width, height),
            to_background: distance_to(&outside, width, height),
        }
    }

    /// Runs the host on this portrait for `frames` output frames with `extra` arguments.
    fn run(&self, name: &str, plugin: &Path, frames: u32, extra: &[&str]) -> host::Run {
        let frames = frames.to_string();
        let mut args = vec!["--input", self.path.to_str().unwrap(), "--frames", &frames];
        args.extend_from_slice(extra);
        host::run(name, plugin, &args, &[])
    }

    /// Indices of pixels at least [`MARGIN`] outside the person.
    fn background(&self) -> Vec<usize> {
        (0..self.to_person.len())
            .filter(|&i| self.to_person[i] >= MARGIN)
            .collect()
    }

    /// Indices of pixels at least [`MARGIN`] inside the person.
    fn person(&self) -> Vec<usize> {
        (0..self.to_background.len())
            .filter(|&i| self.to_background[i] >= MARGIN)
            .collect()
    }
}

/// The first `seconds` of the busy-background talking head at `width` x `height`, H.264 at
/// near-lossless quality (made once per build in `target/e2e/clips`).
fn background_clip(testdata: &Path, (width, height): (u32, u32), seconds: u32) -> PathBuf {
    let dir = common::root().join("target/e2e/clips");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("talking_head_b_{width}x{height}_{seconds}s.mp4"));
    if out.is_file() {
        return out;
    }
    let tmp = out.with_extension("tmp.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-i"])
        .arg(testdata.join("video/talking_head_b.mp4"))
        .args(["-t", &seconds.to_string(), "-an"])
        .args(["-vf", &format!("scale={width}:{height}")])
        .args(["-c:v", "libx264", "-crf", "4", "-pix_fmt", "yuv420p"])
        .arg(&tmp)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not make {}", out.display());
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// Mean absolute RGB difference between `result` and the RGB24 `frame` over `pixels`.
fn diff_rgb(result: &Rgba, frame: &[u8], pixels: &[usize]) -> f64 {
    let sum: u64 = pixels
        .iter()
        .map(|&i| {
            (0..3)
                .map(|c| (result.px[i * 4 + c] as i32 - frame[i * 3 + c] as i32).unsigned_abs())
                .sum::<u32>() as u64
        })
        .sum();
    sum as f64 / (pixels.len() as f64 * 3.0)
}

/// Share of `pixels` of `result` within `tolerance` levels of `rgb` in every channel.
fn share_equal(result: &Rgba, rgb: [u8; 3], pixels: &[usize], tolerance: u8) -> f64 {
    let n = pixels
        .iter()
        .filter(|&&i| (0..3).all(|c| result.px[i * 4 + c].abs_diff(rgb[c]) <= tolerance))
        .count();
    n as f64 / pixels.len() as f64
}

/// The result halves of a run's stills, in order.
fn still_results(run: &host::Run) -> Vec<Rgba> {
    run.report["stills"]
        .as_array()
        .expect("stills in report")
        .iter()
        .map(|p| Rgba::load(Path::new(p.as_str().unwrap())).halves().1)
        .collect()
}

/// For each still: the clip frame its background matches best, that frame's mean difference,
/// and the median difference over all clip frames (what an unrelated frame gives).
fn match_clip_frames(
    stills: &[Rgba],
    clip: &[Vec<u8>],
    pixels: &[usize],
) -> Vec<(usize, f64, f64)> {
    // Every 3rd background pixel is plenty and keeps this fast.
    let sample: Vec<usize> = pixels.iter().copied().step_by(3).collect();
    stills
        .iter()
        .map(|still| {
            let mut diffs: Vec<(f64, usize)> = clip
                .iter()
                .enumerate()
                .map(|(i, f)| (diff_rgb(still, f, &sample), i))
                .collect();
            diffs.sort_by(|a, b| a.0.total_cmp(&b.0));
            (diffs[0].1, diffs[0].0, diffs[diffs.len() / 2].0)
        })
        .collect()
}

/// Pixels outside the person are the background video's pixels of one of its frames (within
/// codec and colour-conversion tolerance), far closer to it than to the clip's other frames.
fn assert_background_is_clip(matches: &[(usize, f64, f64)], what: &str) {
    for (i, &(frame, best, median)) in matches.iter().enumerate() {
        println!("{what} still {i}: clip frame {frame}, mean difference {best:.2} (median over frames {median:.2})");
        assert!(
            best < 4.0,
            "{what} still {i}: background differs from every clip frame by >= {best:.2}"
        );
        assert!(
            best * 2.0 < median,
            "{what} still {i}: frame {frame} ({best:.2}) not distinct from others ({median:.2})"
        );
    }
}

#[test]
fn a_colour_source_fills_the_background_follows_a_rename_and_its_removal_falls_back_to_blur() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let portrait = Portrait::load(&testdata, PORTRAIT);
    let colour = [0x20u8, 0x40, 0xC0];
    // Counted from the first frame showing the colour: frames 25, 75 and 125 are stilled; the
    // source is renamed at frame 50 and removed at 100.
    let run = portrait.run(
        "source_colour",
        &plugin,
        150,
        &[
            "--stills",
            "3",
            "--schedule-when-shown",
            "--mode",
            "source",
            "--add-source",
            "Backdrop test colour=color:64x48:FF2040C0",
            "--background-source",
            "Backdrop test colour",
            "--rename-added-sources-after-frames",
            "50",
            "--remove-added-sources-after-frames",
            "100",
        ],
    );
    assert_eq!(run.code, 0, "host failed: {}", run.stderr);
    run.assert_no_errors();
    let after = run.int("frames_after_sources_removed");
    assert!(after >= 30, "{after} frames after the source was removed");
    let stills = still_results(&run);
    let (background, person) = (portrait.background(), portrait.person());
    let before = share_equal(&stills[0], colour, &background, 3);
    let kept = stills[0].mean_abs_diff_at(&Rgba::load(&portrait.path), &person);
    let renamed = share_equal(&stills[1], colour, &background, 3);
    let later = share_equal(&stills[2], colour, &background, 30);
    let stats = &run.report["stats"];
    println!(
        "colour source: {:.2} % of the background is the source's colour (person differs from \
         the original by {kept:.2}), {:.2} % after the rename; after removal {:.2} % near the \
         colour, {after} frames, status {}",
        100.0 * before,
        100.0 * renamed,
        100.0 * later,
        stats["status"]
    );
    assert!(
        before > 0.995,
        "{before:.4} of the background is the colour"
    );
    assert!(kept < 8.0, "the person changed by {kept:.2}");
    // A rename keeps the source shown and is saved in the filter's settings.
    assert!(
        renamed > 0.995,
        "{renamed:.4} of the background after the rename"
    );
    assert_eq!(
        run.report["filter_settings"]["background_source"],
        "Backdrop test colour (renamed)"
    );
    assert!(run
        .log()
        .contains("'Backdrop test colour' was renamed to 'Backdrop test colour (renamed)'"));
    // Removed: the filter blurs the frame's own (blue-wall) background and says why.
    assert!(later < 0.01, "{later:.4} still the colour after removal");
    assert_eq!(stats["warning_kind"], "background_source", "{stats}");
    assert!(
        stats["status"].as_str().unwrap().contains("was removed"),
        "{stats}"
    );
    assert!(run
        .log()
        .contains("background source 'Backdrop test colour (renamed)' is gone"));
}

#[test]
fn a_scene_holding_the_filtered_source_is_refused_as_its_background() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let portrait = Portrait::load(&testdata, PORTRAIT);
    // Drawing it would draw the filtered source inside itself, forever.
    let run = portrait.run(
        "source_recursive",
        &plugin,
        60,
        &[
            "--mode",
            "source",
            "--add-scene-with-input",
            "Scene with me",
            "--background-source",
            "Scene with me",
        ],
    );
    assert_eq!(run.code, 0, "host failed: {}", run.stderr);
    assert!(run.int("frames_captured") >= 60);
    let stats = &run.report["stats"];
    assert_eq!(stats["warning_kind"], "background_source", "{stats}");
    assert!(
        stats["status"]
            .as_str()
            .unwrap()
            .contains("'Scene with me' shows this filter's own source"),
        "{stats}"
    );
    assert_eq!(stats["state"], "running", "{stats}");
}

#[test]
fn a_media_source_plays_behind_the_person() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let portrait = Portrait::load(&testdata, PORTRAIT);
    let size = (portrait.width, portrait.height);
    let clip = background_clip(&testdata, size, 2);
    let add = format!("Backdrop test video={}", clip.display());
    let run = portrait.run(
        "source_media",
        &plugin,
        120,
        &[
            // 0.8 s apart on a 2 s clip, counted from the first frame the clip shows in:
            // five different places in it.
            "--stills",
            "5",
            "--schedule-when-shown",
            "--mode",
            "source",
            "--add-source",
            &add,
            "--background-source",
            "Backdrop test video",
        ],
    );
    assert_eq!(run.code, 0, "host failed: {}", run.stderr);
    run.assert_no_errors();
    assert_eq!(run.report["stats"]["warning_kind"], serde_json::Value::Null);
    // The filter shows it, so it is active and showing (it is in no scene of its own, and a
    // media source set to restart on activation plays only while active).
    assert_eq!(
        run.report["added_sources"],
        serde_json::json!([{ "name": "Backdrop test video", "active": true, "showing": true }])
    );
    let (_, _, frames) = common::decode_rgb(&clip, Some(size));
    let matches = match_clip_frames(&still_results(&run), &frames, &portrait.background());
    assert_background_is_clip(&matches, "media source");
    let distinct: std::collections::BTreeSet<usize> = matches.iter().map(|m| m.0).collect();
    assert!(
        distinct.len() >= 4,
        "the video did not play: frames {matches:?}"
    );
}

#[test]
fn a_video_file_background_plays_and_loops() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let portrait = Portrait::load(&testdata, PORTRAIT);
    let size = (portrait.width, portrait.height);
    let clip = background_clip(&testdata, size, 2);
    // 5 s of output over a 2 s clip (from the first frame it shows in): six stills 0.83 s
    // apart see it start over.
    let run = portrait.run(
        "video_file",
        &plugin,
        150,
        &[
            "--stills",
            "6",
            "--schedule-when-shown",
            "--mode",
            "video",
            "--background-video",
            clip.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "host failed: {}", run.stderr);
    run.assert_no_errors();
    assert_eq!(run.report["stats"]["warning_kind"], serde_json::Value::Null);
    let (_, _, frames) = common::decode_rgb(&clip, Some(size));
    let matches = match_clip_frames(&still_results(&run), &frames, &portrait.background());
    assert_background_is_clip(&matches, "video file");
    let order: Vec<usize> = matches.iter().map(|m| m.0).collect();
    let forward = order.windows(2).filter(|w| w[1] > w[0]).count();
    let wraps = order.windows(2).filter(|w| w[1] < w[0]).count();
    println!("video file: clip frames {order:?} of {}", frames.len());
    assert!(forward >= 2, "the video did not play forward: {order:?}");
    assert!(wraps >= 1, "the video did not loop: {order:?}");
}

#[test]
fn a_missing_background_video_blurs_and_says_why() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let portrait = Portrait::load(&testdata, PORTRAIT);
    let run = portrait.run(
        "video_missing",
        &plugin,
        30,
        &[
            "--mode",
            "video",
            "--background-video",
            "/nonexistent/background.mp4",
        ],
    );
    assert_eq!(run.code, 0, "host failed: {}", run.stderr);
    let stats = &run.report["stats"];
    assert_eq!(stats["warning_kind"], "background_video", "{stats}");
    assert!(
        stats["status"]
            .as_str()
            .unwrap()
            .contains("file not found: /nonexistent/background.mp4"),
        "{stats}"
    );
    assert_eq!(stats["error_kind"], serde_json::Value::Null, "{stats}");
    assert!(run.int("frames_captured") >= 30);
}

/// Mean BT.601 luma of `pixels` of `img` (RGBA).
fn mean_luma(img: &Rgba, pixels: &[usize]) -> f64 {
    pixels
        .iter()
        .map(|&i| {
            0.299 * img.px[i * 4] as f64
                + 0.587 * img.px[i * 4 + 1] as f64
                + 0.114 * img.px[i * 4 + 2] as f64
        })
        .sum::<f64>()
        / pixels.len().max(1) as f64
}

#[test]
fn hologram_turns_the_person_blue_cyan_with_dark_scan_bands_over_an_untouched_background() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let ids: Vec<u32> = common::portrait_ids(&testdata)
        .into_iter()
        .step_by(12)
        .collect();
    let alphas = transparent_alphas(&testdata, &plugin, "hologram_mask", &ids, &[]);
    let key = [0u8, 255, 0];
    let results = settled_results(
        &testdata,
        &plugin,
        "hologram",
        &ids,
        &[
            "--mode", "color", "--color", "00FF00", "--effect", "hologram",
        ],
    );
    let (mut band, mut other, mut shift, mut bluer, mut person, mut untouched, mut bg) =
        (0.0, 0.0, 0.0, 0usize, 0usize, 0.0, 0usize);
    for ((id, alpha), result) in ids.iter().zip(&alphas).zip(&results) {
        let original = Rgba::load(&testdata.join(format!("portraits/images/{id}.jpg")));
        let w = result.width as usize;
        let inside: Vec<usize> = (0..alpha.len()).filter(|&i| alpha[i] == 255).collect();
        let (dark, light): (Vec<usize>, Vec<usize>) =
            inside.iter().partition(|&&i| (i / w) % 5 < 2);
        band += mean_luma(result, &dark) * dark.len() as f64;
        other += mean_luma(result, &light) * light.len() as f64 * dark.len() as f64
            / light.len().max(1) as f64;
        for &i in &light {
            let (r, b) = (result.px[i * 4] as f64, result.px[i * 4 + 2] as f64);
            let (r0, b0) = (original.px[i * 4] as f64, original.px[i * 4 + 2] as f64);
            shift += (b - r) - (b0 - r0);
            bluer += (b > r) as usize;
        }
        person += light.len();
        let outside: Vec<usize> = (0..alpha.len()).filter(|&i| alpha[i] == 0).collect();
        untouched += share_equal(result, key, &outside, 2) * outside.len() as f64;
        bg += outside.len();
    }
    let band_ratio = band / other;
    let shift = shift / person as f64;
    let bluer = bluer as f64 / person as f64;
    let untouched = untouched / bg as f64;
    println!(
        "hologram over {} portraits: scan-band rows at {:.2} of the other rows' luma; (blue - \
         red) up by {shift:.1} levels, blue above red in {:.1} % of the person; {:.3} % of the \
         background is the key colour",
        ids.len(),
        band_ratio,
        100.0 * bluer,
        100.0 * untouched
    );
    assert!(
        band_ratio < 0.8,
        "scan bands at {band_ratio:.3} of the other rows"
    );
    assert!(shift > 40.0, "blue - red rose by {shift:.1} only");
    assert!(bluer > 0.9, "{bluer:.3} of the person bluer than red");
    assert!(
        untouched > 0.99,
        "{untouched:.4} of the background untouched"
    );
}

#[test]
fn focal_blur_is_sharp_at_the_silhouette_and_full_far_from_it() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let ids: Vec<u32> = common::portrait_ids(&testdata)
        .into_iter()
        .step_by(8)
        .collect();
    let alphas = transparent_alphas(&testdata, &plugin, "focal_mask", &ids, &[]);
    let focal = settled_results(
        &testdata,
        &plugin,
        "focal",
        &ids,
        &["--mode", "focal", "--set", "focal_distance=60"],
    );
    let blur = settled_results(&testdata, &plugin, "focal_blur", &ids, &["--mode", "blur"]);
    // Per band of distance from the filter's own silhouette: how far focal blur is from the
    // sharp frame and from the full blur, relative to the full blur's distance from the frame.
    let bands = [
        (2.0f32, 8.0f32),
        (8.0, 20.0),
        (20.0, 40.0),
        (40.0, 80.0),
        (80.0, 1e9),
    ];
    let mut sums = vec![(0.0f64, 0.0f64, 0.0f64); bands.len()];
    for (((id, alpha), f), b) in ids.iter().zip(&alphas).zip(&focal).zip(&blur) {
        let original = Rgba::load(&testdata.join(format!("portraits/images/{id}.jpg")));
        let person: Vec<bool> = alpha.iter().map(|&a| a > 0).collect();
        let d = distance_to(&person, f.width, f.height);
        for (k, &(lo, hi)) in bands.iter().enumerate() {
            let px: Vec<usize> = (0..d.len()).filter(|&i| d[i] >= lo && d[i] < hi).collect();
            let diff = |a: &Rgba, b: &Rgba| a.mean_abs_diff_at(b, &px) * px.len() as f64;
            sums[k].0 += diff(f, &original);
            sums[k].1 += diff(f, b);
            sums[k].2 += diff(b, &original);
        }
    }
    let mut sharpness = Vec::new();
    for (k, &(lo, hi)) in bands.iter().enumerate() {
        let (to_sharp, to_blur, blur_to_sharp) = sums[k];
        // 0: the sharp frame, 1: the full blur.
        let blurred = to_sharp / blur_to_sharp;
        let left = to_blur / blur_to_sharp;
        println!(
            "focal blur {lo}-{hi} px from the person: {:.2} of the full blur's change \
             (distance to the full blur {left:.2})",
            blurred
        );
        sharpness.push((blurred, left));
    }
    assert!(
        sharpness[0].0 < 0.3,
        "near the silhouette: {:?}",
        sharpness[0]
    );
    assert!(sharpness[4].1 < 0.15, "far from it: {:?}", sharpness[4]);
    for k in 1..bands.len() {
        assert!(
            sharpness[k].0 > sharpness[k - 1].0,
            "the blur does not grow with distance: {sharpness:?}"
        );
    }
}

/// A Gaussian blur (sigma px, kernel to 3 sigma, clamped edges) of RGB planes weighted by
/// `weight`, normalised by the blurred weight (normalised convolution): with weight 1 - person it
/// is the blur of a frame without the person; with weight 1 everywhere a plain blur.
fn weighted_gaussian(img: &Rgba, weight: &[f32], sigma: f32) -> Vec<[f32; 3]> {
    let (w, h) = (img.width as usize, img.height as usize);
    let r = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    // Planes: r*w, g*w, b*w, w.
    let mut planes: Vec<[f32; 4]> = (0..w * h)
        .map(|i| {
            let q = weight[i];
            [
                img.px[i * 4] as f32 * q,
                img.px[i * 4 + 1] as f32 * q,
                img.px[i * 4 + 2] as f32 * q,
                q,
            ]
        })
        .collect();
    for horizontal in [true, false] {
        let mut out = vec![[0.0f32; 4]; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0.0f32; 4];
                for (k, kv) in kernel.iter().enumerate() {
                    let o = k as isize - r;
                    let (sx, sy) = if horizontal {
                        ((x as isize + o).clamp(0, w as isize - 1) as usize, y)
                    } else {
                        (x, (y as isize + o).clamp(0, h as isize - 1) as usize)
                    };
                    let p = planes[sy * w + sx];
                    for c in 0..4 {
                        acc[c] += p[c] * kv;
                    }
                }
                out[y * w + x] = acc;
            }
        }
        planes = out;
    }
    planes
        .iter()
        .map(|p| {
            let q = p[3].max(1e-6);
            [p[0] / q, p[1] / q, p[2] / q]
        })
        .collect()
}

#[test]
fn the_blurred_background_carries_no_halo_of_the_person() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let ids: Vec<u32> = common::portrait_ids(&testdata)
        .into_iter()
        .step_by(6)
        .collect();
    // blur_strength 24 (the default): sigma ~ 12 px (see render::blur_passes).
    const SIGMA: f32 = 12.0;
    let alphas = transparent_alphas(&testdata, &plugin, "halo_mask", &ids, &[]);
    let blurred = settled_results(&testdata, &plugin, "halo_blur", &ids, &["--mode", "blur"]);
    let (mut ours, mut plain, mut n) = (0.0f64, 0.0f64, 0usize);
    for ((id, alpha), result) in ids.iter().zip(&alphas).zip(&blurred) {
        let original = Rgba::load(&testdata.join(format!("portraits/images/{id}.jpg")));
        let (w, h) = (original.width, original.height);
        let truth = ground_truth(&testdata.join(format!("portraits/masks/{id}.png")), w, h);
        let to_person = distance_to(&truth, w, h);
        let background_only: Vec<f32> = truth.iter().map(|&t| if t { 0.0 } else { 1.0 }).collect();
        let everything = vec![1.0f32; truth.len()];
        let reference = weighted_gaussian(&original, &background_only, SIGMA);
        let gaussian = weighted_gaussian(&original, &everything, SIGMA);
        // The background within 10 px of the silhouette that the filter shows as background
        // (its alpha 0): where a halo would be.
        for i in 0..truth.len() {
            if to_person[i] > 0.0 && to_person[i] <= 10.0 && alpha[i] == 0 {
                for c in 0..3 {
                    ours += (result.px[i * 4 + c] as f64 - reference[i][c] as f64).abs();
                    plain += (gaussian[i][c] as f64 - reference[i][c] as f64).abs();
                }
                n += 3;
            }
        }
    }
    let (ours, plain) = (ours / n as f64, plain / n as f64);
    println!(
        "halo within 10 px of the silhouette, {} portraits, {} px: Backdrop's blur differs from \
         the blur of the person-free background by {ours:.2} levels, a plain Gaussian blur of \
         the whole frame by {plain:.2}",
        ids.len(),
        n / 3
    );
    assert!(n > 10_000, "{n} values judged");
    assert!(
        ours * 2.0 < plain,
        "Backdrop {ours:.2} vs plain Gaussian {plain:.2}"
    );
}
