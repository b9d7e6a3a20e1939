//! Quality on real people, inside real OBS: the 96 shared portraits go through an `image_source`
//! with the Backdrop filter in colour mode (BGRA output), and the replaced region is compared
//! with the ground-truth person masks.

mod common;

use common::host::{self, Rgba};
use common::portraits::{ground_truth, portrait_paths, settled_results, transparent_alphas};

/// Pixels whose original colour is this close to the key colour cannot be classified (squared
/// RGB distance); they count for neither side.
const AMBIGUOUS_DIST2: f64 = 30.0 * 30.0;

/// Person pixels of a colour-mode result: the estimated alpha of `result` between the key colour
/// and the original, > 0.5.
fn person_pixels(original: &Rgba, result: &Rgba, key: [u8; 3]) -> Vec<Option<bool>> {
    (0..original.height)
        .flat_map(|y| (0..original.width).map(move |x| (x, y)))
        .map(|(x, y)| {
            let (o, r) = (original.at(x, y), result.at(x, y));
            let oc: [f64; 3] = [0, 1, 2].map(|c| o[c] as f64 - key[c] as f64);
            let rc: [f64; 3] = [0, 1, 2].map(|c| r[c] as f64 - key[c] as f64);
            let d2: f64 = oc.iter().map(|v| v * v).sum();
            (d2 >= AMBIGUOUS_DIST2).then(|| (0..3).map(|c| oc[c] * rc[c]).sum::<f64>() / d2 > 0.5)
        })
        .collect()
}

/// Runs `ids` through OBS in colour mode with the extra host `args`; returns per portrait the
/// IoU of the replaced region with the ground truth and the filter's stats when it settled.
fn colour_mode_ious(
    testdata: &std::path::Path,
    plugin: &std::path::Path,
    name: &str,
    ids: &[u32],
    args: &[&str],
) -> Vec<(f64, serde_json::Value)> {
    let list = common::root().join(format!("target/e2e/{name}.txt"));
    std::fs::create_dir_all(list.parent().unwrap()).unwrap();
    let lines = portrait_paths(testdata, ids);
    std::fs::write(&list, lines.join("\n")).unwrap();

    let key = [0u8, 255, 0];
    let mut all_args = vec![
        "--input-list",
        list.to_str().unwrap(),
        "--mode",
        "color",
        "--color",
        "00FF00",
        "--settle",
        "6",
    ];
    all_args.extend_from_slice(args);
    let run = host::run(name, plugin, &all_args, &[]);
    assert_eq!(run.code, 0, "host failed: {}", run.stderr);
    assert!(
        run.log().contains("[backdrop] loaded version"),
        "plugin did not load"
    );
    run.assert_no_errors();

    let inputs = run.report["inputs"].as_array().expect("inputs in report");
    assert_eq!(inputs.len(), ids.len());
    let mut out = Vec::new();
    for (id, input) in ids.iter().zip(inputs) {
        assert_eq!(
            input["settled"], true,
            "portrait {id} never got a mask: {input}"
        );
        let still = Rgba::load(std::path::Path::new(
            input["side_by_side_png"].as_str().unwrap(),
        ));
        let (original, result) = still.halves();
        let predicted = person_pixels(&original, &result, key);
        let truth = ground_truth(
            &testdata.join(format!("portraits/masks/{id}.png")),
            original.width,
            original.height,
        );
        let (mut inter, mut union) = (0u64, 0u64);
        for (p, t) in predicted.iter().zip(&truth) {
            let Some(p) = p else { continue };
            inter += (*p && *t) as u64;
            union += (*p || *t) as u64;
        }
        let iou = if union == 0 {
            1.0
        } else {
            inter as f64 / union as f64
        };
        out.push((iou, input["stats"].clone()));
    }
    out
}

/// `[x, y, w, h]` of the region the filter's newest mask covers, from its stats.
fn mask_region(stats: &serde_json::Value) -> [f64; 4] {
    let r = stats["mask_region"]
        .as_array()
        .expect("mask_region in stats");
    [0, 1, 2, 3].map(|i| r[i].as_f64().unwrap())
}

fn mean(v: &[(f64, serde_json::Value)]) -> f64 {
    v.iter().map(|(iou, _)| iou).sum::<f64>() / v.len() as f64
}

#[test]
fn portraits_in_colour_mode_match_ground_truth() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let ids = common::portrait_ids(&testdata);
    assert!(
        ids.len() >= 90,
        "expected 96 portraits, found {}",
        ids.len()
    );
    // default settings: person region of interest
    let results = colour_mode_ious(&testdata, &plugin, "portraits", &ids, &[]);
    let mean = mean(&results);
    let worst = results.iter().map(|r| r.0).fold(1.0, f64::min);
    let cropped = results
        .iter()
        .filter(|(_, stats)| {
            let [_, _, w, h] = mask_region(stats);
            w < 0.999 || h < 0.999
        })
        .count();
    println!(
        "portraits: mean IoU {mean:.4} over {} images (worst {worst:.3}); {cropped} shown \
         through a person crop; bare model outside OBS: 0.866",
        results.len()
    );
    // The bar (0.88); stretching the whole frame gives about 0.868 here.
    assert!(mean >= 0.88, "mean IoU {mean:.4} < 0.88");
    assert!(
        cropped * 2 >= results.len(),
        "only {cropped} of {} masks came from a person crop",
        results.len()
    );
}

#[test]
fn aspect_handling_stretch_and_letterbox_run_in_obs() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    // every sixth portrait: landscape and portrait frames of many sizes
    let ids: Vec<u32> = common::portrait_ids(&testdata)
        .into_iter()
        .step_by(6)
        .collect();
    let mut means = Vec::new();
    for aspect in ["stretch", "letterbox", "roi"] {
        let set = format!("aspect={aspect}");
        let name = format!("portraits_{aspect}");
        let results = colour_mode_ious(&testdata, &plugin, &name, &ids, &["--set", &set]);
        for (_, stats) in &results {
            let [x, y, w, h] = mask_region(stats);
            match aspect {
                "stretch" => assert_eq!([x, y, w, h], [0.0, 0.0, 1.0, 1.0], "{stats}"),
                // the whole frame, padded on one axis: a region larger than the frame
                "letterbox" => assert!(
                    (w > 1.0 && x < 0.0) || (h > 1.0 && y < 0.0) || (w == 1.0 && h == 1.0),
                    "{stats}"
                ),
                _ => assert!(x >= 0.0 && y >= 0.0 && x + w <= 1.0001 && y + h <= 1.0001),
            }
        }
        let m = mean(&results);
        println!(
            "aspect {aspect}: mean IoU {m:.4} over {} portraits",
            results.len()
        );
        means.push(m);
    }
    // Letterbox and stretch see the whole frame; both find the people (bare stretch: 0.866).
    assert!(means[0] >= 0.83 && means[1] >= 0.80, "{means:?}");
    // The person crop beats stretching on the same portraits (docs/quality.md: +0.025).
    assert!(
        means[2] > means[0],
        "person ROI {means:?} not above stretch"
    );
}

#[test]
fn transparent_mode_alpha_is_the_person() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    // Every third portrait keeps this run short; the colour-mode test covers all of them.
    let ids: Vec<u32> = common::portrait_ids(&testdata)
        .into_iter()
        .step_by(3)
        .collect();
    let mut args = vec![
        "--mode".to_string(),
        "transparent".into(),
        "--settle".into(),
        "6".into(),
    ];
    for id in &ids {
        args.push("--input".into());
        args.push(
            testdata
                .join(format!("portraits/images/{id}.jpg"))
                .display()
                .to_string(),
        );
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = host::run("portraits_transparent", &plugin, &args, &[]);
    assert_eq!(run.code, 0, "host failed: {}", run.stderr);
    let inputs = run.report["inputs"].as_array().expect("inputs in report");
    let mut ious = Vec::new();
    for (id, input) in ids.iter().zip(inputs) {
        let result = Rgba::load(std::path::Path::new(input["result_png"].as_str().unwrap()));
        let truth = ground_truth(
            &testdata.join(format!("portraits/masks/{id}.png")),
            result.width,
            result.height,
        );
        let (mut inter, mut union) = (0u64, 0u64);
        for (px, t) in result.px.chunks_exact(4).zip(&truth) {
            let p = px[3] > 127;
            inter += (p && *t) as u64;
            union += (p || *t) as u64;
        }
        ious.push(if union == 0 {
            1.0
        } else {
            inter as f64 / union as f64
        });
    }
    let mean = ious.iter().sum::<f64>() / ious.len() as f64;
    println!(
        "transparent mode: mean alpha IoU {mean:.4} over {} portraits",
        ious.len()
    );
    assert!(mean >= 0.82, "mean alpha IoU {mean:.4} < 0.82");
}

#[test]
fn outward_feathering_keeps_the_whole_person() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let ids: Vec<u32> = common::portrait_ids(&testdata)
        .into_iter()
        .step_by(8)
        .collect();
    // The person of a hard cut (softness 0) against the default soft edge in each direction.
    let hard = transparent_alphas(
        &testdata,
        &plugin,
        "feather_hard",
        &ids,
        &["--set", "edge_softness=0"],
    );
    let mut kept = Vec::new();
    for feather in ["outward", "centered", "inward"] {
        let set = format!("feather={feather}");
        let soft = transparent_alphas(
            &testdata,
            &plugin,
            &format!("feather_{feather}"),
            &ids,
            &["--set", &set],
        );
        // Of the hard cut's person pixels, the share this edge keeps at (nearly) full alpha; and
        // the share of the hard cut's background it makes partly opaque.
        let (mut person, mut person_kept, mut background, mut background_soft) =
            (0u64, 0u64, 0u64, 0u64);
        for (h, s) in hard.iter().zip(&soft) {
            for (&h, &s) in h.iter().zip(s) {
                if h == 255 {
                    person += 1;
                    person_kept += (s >= 250) as u64;
                } else if h == 0 {
                    background += 1;
                    background_soft += (s > 5) as u64;
                }
            }
        }
        let kept_share = person_kept as f64 / person.max(1) as f64;
        let soft_share = background_soft as f64 / background.max(1) as f64;
        println!(
            "feather {feather}: {:.2} % of the person kept at full alpha, {:.2} % of the background softened ({} portraits)",
            100.0 * kept_share,
            100.0 * soft_share,
            ids.len()
        );
        kept.push((kept_share, soft_share));
    }
    let (outward, centered, inward) = (kept[0], kept[1], kept[2]);
    // Outward: the person stays whole and the softening goes into the background. The runs'
    // masks have settled but still differ a little at the threshold (seen: 99.92-100.00 % kept
    // by outward when this binary runs alone, 99.37-99.39 % in three full-suite runs, whose
    // cause is not found; centred 96.9-97.5 %, inward 93.8 %).
    assert!(
        outward.0 >= 0.99,
        "outward kept {:.4} of the person",
        outward.0
    );
    assert!(outward.1 > centered.1, "{outward:?} vs {centered:?}");
    // Centred and inward soften into the person, inward the most; inward leaves the background.
    assert!(centered.0 < outward.0 && inward.0 < centered.0, "{kept:?}");
    assert!(
        inward.1 < 0.005,
        "inward softened {:.4} of the background",
        inward.1
    );
}

#[test]
fn pixelate_makes_background_blocks_and_leaves_the_person_sharp() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    const BLOCK: u32 = 16;
    let ids: Vec<u32> = common::portrait_ids(&testdata)
        .into_iter()
        .step_by(12)
        .collect();
    let alphas = transparent_alphas(&testdata, &plugin, "pixelate_mask", &ids, &[]);
    let block = format!("pixel_size={BLOCK}");
    let results = settled_results(
        &testdata,
        &plugin,
        "pixelate",
        &ids,
        &["--mode", "pixelate", "--set", &block],
    );
    // Blocks of the grid from (0, 0) wholly in the background (alpha 0 in transparent mode) or
    // wholly in the person (alpha 255): the spread of their pixel values in the result.
    let (mut flat_background, mut background, mut detailed_person, mut person) = (0, 0, 0, 0);
    let mut judged = 0;
    for (alpha, result) in alphas.iter().zip(&results) {
        let (w, h) = (result.width, result.height);
        if w % 2 == 1 || h % 2 == 1 {
            // For an odd-sized canvas the frame OBS's video output hands back is resampled by
            // about a pixel (seen: each block's last row and column take the next block's
            // colour), which blends neighbouring blocks; judged on even sizes only.
            continue;
        }
        judged += 1;
        for by in 0..h / BLOCK {
            for bx in 0..w / BLOCK {
                let pixels: Vec<(u8, [u8; 4])> = (0..BLOCK * BLOCK)
                    .map(|i| (bx * BLOCK + i % BLOCK, by * BLOCK + i / BLOCK))
                    .map(|(x, y)| (alpha[(y * w + x) as usize], result.at(x, y)))
                    .collect();
                let spread = (0..3)
                    .map(|c| {
                        let v = pixels.iter().map(|p| p.1[c]);
                        v.clone().max().unwrap_or(0) - v.min().unwrap_or(0)
                    })
                    .max()
                    .unwrap_or(0);
                if pixels.iter().all(|p| p.0 == 0) {
                    background += 1;
                    flat_background += (spread <= 2) as u32;
                } else if pixels.iter().all(|p| p.0 == 255) {
                    person += 1;
                    detailed_person += (spread > 8) as u32;
                }
            }
        }
    }
    println!(
        "pixelate {BLOCK} px, {judged} even-sized portraits of {}: {flat_background} of \
         {background} background blocks flat, {detailed_person} of {person} person blocks with \
         detail",
        ids.len()
    );
    assert!(
        background >= 100 && person >= 100,
        "{background} / {person} blocks"
    );
    assert_eq!(flat_background, background, "background blocks not flat");
    // The person keeps its texture (blocks of flat skin or clothing can be flat in the photo).
    assert!(
        detailed_person * 2 > person,
        "{detailed_person} of {person} person blocks have detail"
    );
}

/// The "mirror average" setting (the model also run on the mirrored frame, the two masks
/// averaged) inside OBS, on every second portrait: every inferred frame gets its mirrored pass
/// (`frames_mirrored`), and the masks match the ground truth better than one pass
/// (`backdrop-bench quality --flip-average`: +0.007 mean IoU on all 96).
#[test]
fn mirror_average_matches_the_ground_truth_better_than_one_pass() {
    let testdata = require!(testdata);
    let plugin = require!(plugin);
    let ids: Vec<u32> = common::portrait_ids(&testdata)
        .into_iter()
        .step_by(2)
        .collect();
    let one = colour_mode_ious(&testdata, &plugin, "mirror_off", &ids, &[]);
    let two = colour_mode_ious(
        &testdata,
        &plugin,
        "mirror_on",
        &ids,
        &["--set", "mirror_average=true"],
    );
    let (a, b) = (mean(&one), mean(&two));
    let count =
        |v: &[(f64, serde_json::Value)], key: &str| v.last().unwrap().1[key].as_i64().unwrap_or(-1);
    println!(
        "{} portraits: mean IoU {a:.4} with one pass, {b:.4} with the mirrored pass averaged; \
         frames inferred / mirrored: {} / {} and {} / {}",
        ids.len(),
        count(&one, "frames_inferred"),
        count(&one, "frames_mirrored"),
        count(&two, "frames_inferred"),
        count(&two, "frames_mirrored"),
    );
    // every inferred frame of the second run had its mirrored pass, none of the first
    assert_eq!(count(&one, "frames_mirrored"), 0);
    assert!(count(&two, "frames_inferred") > 0);
    assert_eq!(
        count(&two, "frames_mirrored"),
        count(&two, "frames_inferred")
    );
    assert!(
        b > a,
        "mirror average {b:.4} is not better than one pass {a:.4}"
    );
}
