//! Portraits through the host: their files, ground truth, and settled results in a mode.

use super::host::{self, Rgba};
use std::path::Path;

/// The image files of portraits `ids`, as text for the host's arguments.
pub fn portrait_paths(testdata: &Path, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            let path = testdata.join(format!("portraits/images/{id}.jpg"));
            path.display().to_string()
        })
        .collect()
}

/// The ground-truth person mask at `path`, resized (nearest) to `width` x `height`.
pub fn ground_truth(path: &Path, width: u32, height: u32) -> Vec<bool> {
    let mask = image::open(path).unwrap().to_luma8();
    let mask = image::imageops::resize(&mask, width, height, image::imageops::FilterType::Nearest);
    mask.pixels().map(|p| p.0[0] > 127).collect()
}

/// The result (alone, RGBA) of each portrait of `ids`, run in still mode with `extra` arguments
/// after every frame inferred (no motion skip) and 12 masks: the temporal smoothing has settled,
/// so runs differ only by what `extra` sets.
pub fn settled_results(
    testdata: &Path,
    plugin: &Path,
    name: &str,
    ids: &[u32],
    extra: &[&str],
) -> Vec<Rgba> {
    let images = portrait_paths(testdata, ids);
    let mut args = vec!["--settle", "12", "--set", "motion_threshold=0"];
    args.extend_from_slice(extra);
    for image in &images {
        args.extend(["--input", image]);
    }
    let run = host::run(name, plugin, &args, &[]);
    assert_eq!(run.code, 0, "host failed: {}", run.stderr);
    run.report["inputs"]
        .as_array()
        .expect("inputs in report")
        .iter()
        .map(|input| Rgba::load(Path::new(input["result_png"].as_str().unwrap())))
        .collect()
}

/// The alpha (0..255) of each transparent-mode result of `ids` (see [`settled_results`]).
pub fn transparent_alphas(
    testdata: &Path,
    plugin: &Path,
    name: &str,
    ids: &[u32],
    extra: &[&str],
) -> Vec<Vec<u8>> {
    let mut args = vec!["--mode", "transparent"];
    args.extend_from_slice(extra);
    settled_results(testdata, plugin, name, ids, &args)
        .iter()
        .map(|r| r.px.chunks_exact(4).map(|p| p[3]).collect())
        .collect()
}

/// For each pixel of a `width` x `height` image, the distance in px to the nearest pixel where
/// `from` is true (0 there): a two-pass chamfer transform with steps 1 and sqrt 2, within 8 % of
/// the Euclidean distance. `f32::INFINITY` everywhere when `from` has no true pixel.
pub fn distance_to(from: &[bool], width: u32, height: u32) -> Vec<f32> {
    let (w, h) = (width as usize, height as usize);
    assert_eq!(from.len(), w * h);
    let mut d: Vec<f32> = from
        .iter()
        .map(|&t| if t { 0.0 } else { f32::INFINITY })
        .collect();
    let diag = std::f32::consts::SQRT_2;
    for y in 0..h {
        for x in 0..w {
            let mut v = d[y * w + x];
            if x > 0 {
                v = v.min(d[y * w + x - 1] + 1.0);
            }
            if y > 0 {
                v = v.min(d[(y - 1) * w + x] + 1.0);
                if x > 0 {
                    v = v.min(d[(y - 1) * w + x - 1] + diag);
                }
                if x + 1 < w {
                    v = v.min(d[(y - 1) * w + x + 1] + diag);
                }
            }
            d[y * w + x] = v;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let mut v = d[y * w + x];
            if x + 1 < w {
                v = v.min(d[y * w + x + 1] + 1.0);
            }
            if y + 1 < h {
                v = v.min(d[(y + 1) * w + x] + 1.0);
                if x + 1 < w {
                    v = v.min(d[(y + 1) * w + x + 1] + diag);
                }
                if x > 0 {
                    v = v.min(d[(y + 1) * w + x - 1] + diag);
                }
            }
            d[y * w + x] = v;
        }
    }
    d
}
