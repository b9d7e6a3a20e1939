//! The configurations the quality benchmark compares (one table row each): threshold, edge
//! softness and the refinement parameters of `backdrop_core::mask::refine`.

use anyhow::{bail, Context, Result};
use backdrop_core::mask::refine::RefineParams;
use backdrop_core::mask::roi::AspectMode;
use backdrop_core::segmentation::cadence::CadenceParams;
use backdrop_core::settings::Settings;

/// One pipeline configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Row label.
    pub name: String,
    /// Soft-threshold centre, 0..1.
    pub threshold: f32,
    /// Soft-threshold width, 0..1 (0 = hard cut).
    pub softness: f32,
    pub params: RefineParams,
    /// Which part of the frame the model sees (see `backdrop_core::mask::roi`).
    pub aspect: AspectMode,
    /// Which frames are inferred (see `backdrop_core::segmentation::cadence`); `None`: every
    /// frame.
    pub cadence: Option<CadenceParams>,
}

impl Config {
    /// Short description of every setting, for the table.
    pub fn describe(&self) -> String {
        let p = &self.params;
        let mut s = format!("thr {} soft {}", self.threshold, self.softness);
        if p.temporal_smoothing > 0.0 {
            s += &format!(", temporal {}", p.temporal_smoothing);
        }
        if p.expand_px != 0.0 {
            s += &format!(", expand {:+} px", p.expand_px);
        }
        if p.min_blob_fraction > 0.0 {
            s += &format!(", blobs < {}", p.min_blob_fraction);
        }
        if p.guided_radius > 0 {
            s += &format!(", guided r {} eps {}", p.guided_radius, p.guided_eps);
        }
        match self.aspect {
            AspectMode::Stretch => {}
            AspectMode::Letterbox => s += ", letterbox",
            AspectMode::RegionOfInterest => s += ", person ROI",
        }
        if let Some(c) = self.cadence {
            s += &format!(
                ", motion threshold {}{}",
                c.motion_threshold,
                if c.warp { " + warp" } else { "" }
            );
        }
        s
    }

    /// A file-name-friendly form of the row label.
    pub fn slug(&self) -> String {
        let mut out = String::new();
        for c in self.name.chars() {
            match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' => out.push(c.to_ascii_lowercase()),
                '+' if out.is_empty() => out.push_str("plus_"),
                '-' | '+' => out.push(if c == '-' { 'm' } else { 'p' }),
                '.' => out.push('_'),
                _ => {
                    if !out.ends_with('_') && !out.is_empty() {
                        out.push('_')
                    }
                }
            }
        }
        out.trim_end_matches('_').to_string()
    }

    /// Applies one `key=value` override. Keys: `threshold`, `softness`, `temporal_smoothing`,
    /// `expand_px`, `min_blob_fraction`, `guided_radius` (0 = off), `guided_eps`; the filter's
    /// setting keys `edge_softness`, `mask_expand`, `min_blob_percent` (%) and `edge_radius`
    /// are accepted too.
    pub fn set(&mut self, assignment: &str) -> Result<()> {
        let (key, value) = assignment
            .split_once('=')
            .with_context(|| format!("--set expects key=value, got '{assignment}'"))?;
        let float = || -> Result<f32> {
            let v: f32 = value
                .trim()
                .parse()
                .with_context(|| format!("--set {key}: '{value}' is not a number"))?;
            if !v.is_finite() {
                bail!("--set {key}: '{value}' is not finite");
            }
            Ok(v)
        };
        let p = &mut self.params;
        match key.trim() {
            "threshold" => self.threshold = float()?,
            "softness" | "edge_softness" => self.softness = float()?,
            "temporal_smoothing" => p.temporal_smoothing = float()?,
            "expand_px" | "mask_expand" => p.expand_px = float()?,
            "min_blob_fraction" => p.min_blob_fraction = float()?,
            "min_blob_percent" => p.min_blob_fraction = float()? / 100.0,
            "guided_radius" | "edge_radius" => {
                p.guided_radius = value.trim().parse().with_context(|| {
                    format!("--set guided_radius: '{value}' is not a whole number")
                })?
            }
            "guided_eps" => p.guided_eps = float()?,
            "aspect" => {
                self.aspect = match value.trim() {
                    "roi" => AspectMode::RegionOfInterest,
                    "stretch" => AspectMode::Stretch,
                    "letterbox" => AspectMode::Letterbox,
                    v => bail!("--set aspect: '{v}' is not roi, stretch or letterbox"),
                }
            }
            other => bail!(
                "--set: unknown key '{other}' (threshold, softness, temporal_smoothing, expand_px, \
                 min_blob_fraction, guided_radius, guided_eps, aspect; or the filter's \
                 edge_softness, mask_expand, min_blob_percent, edge_radius)"
            ),
        }
        Ok(())
    }
}

/// The defaults row: (threshold, softness, refinement) exactly as the filter uses them, read
/// from the filter's own defaults (`backdrop_core::settings::Settings::default()` and
/// `Settings::refine_params`), so the table cannot drift from the plugin.
pub fn default_refinement() -> (f32, f32, RefineParams, AspectMode) {
    let s = Settings::default();
    (s.threshold, s.edge_softness, s.refine_params(), s.aspect)
}

fn row(name: &str, threshold: f32, softness: f32, params: RefineParams) -> Config {
    Config {
        name: name.into(),
        threshold,
        softness,
        params,
        aspect: AspectMode::Stretch,
        cadence: None,
    }
}

/// The standard rows, each step added to the one before it (the pipeline's order: temporal
/// smoothing, expansion, blob removal, guided upsampling; threshold and softness act last, on
/// the GPU), all on the whole frame stretched to the model; then the aspect handling, on
/// `+blobs`: letterbox, and the person region of interest. The expansion rows, `+guided` and
/// `+letterbox` are side branches and are not carried on.
pub fn standard_rows(defaults: Config) -> Vec<Config> {
    let bare = RefineParams::default();
    let temporal = RefineParams {
        temporal_smoothing: 0.6,
        ..bare
    };
    let blobs = RefineParams {
        min_blob_fraction: 0.002,
        ..temporal
    };
    vec![
        row("bare", 0.5, 0.0, bare),
        row("+soft threshold", 0.5, 0.3, bare),
        row("+temporal", 0.5, 0.3, temporal),
        row(
            "+expand -2 px",
            0.5,
            0.3,
            RefineParams {
                expand_px: -2.0,
                ..temporal
            },
        ),
        row(
            "+expand +2 px",
            0.5,
            0.3,
            RefineParams {
                expand_px: 2.0,
                ..temporal
            },
        ),
        row("+blobs", 0.5, 0.3, blobs),
        row(
            "+guided",
            0.5,
            0.3,
            RefineParams {
                guided_radius: 4,
                guided_eps: 0.01,
                ..blobs
            },
        ),
        Config {
            aspect: AspectMode::Letterbox,
            ..row("+letterbox", 0.5, 0.3, blobs)
        },
        Config {
            aspect: AspectMode::RegionOfInterest,
            ..row("+person ROI", 0.5, 0.3, blobs)
        },
        defaults,
    ]
}

/// The `defaults` row with `--set` overrides applied.
pub fn defaults_row(overrides: &[String]) -> Result<Config> {
    let (threshold, softness, params, aspect) = default_refinement();
    let mut c = Config {
        aspect,
        ..row("defaults", threshold, softness, params)
    };
    for o in overrides {
        c.set(o)?;
    }
    Ok(c)
}

/// The defaults row run on the frames the filter's default cadence chooses (the others kept or
/// warped), without and with warping: each compared with the defaults row, which infers every
/// frame. Threshold and warping from `Settings::default()`.
pub fn cadence_rows(defaults: &Config) -> Vec<Config> {
    let s = Settings::default();
    [
        (false, "defaults, motion-gated"),
        (true, "defaults, gated + warped"),
    ]
    .into_iter()
    .map(|(warp, name)| Config {
        name: name.into(),
        cadence: Some(CadenceParams {
            motion_threshold: s.motion_threshold,
            warp,
        }),
        ..defaults.clone()
    })
    .collect()
}

/// `--sweep`: the `+guided` row with radius 2/4/8 mask px x eps 1e-3/1e-2/1e-1.
pub fn sweep_rows() -> Vec<Config> {
    let mut out = Vec::new();
    for radius in [2usize, 4, 8] {
        for eps in [1e-3f32, 1e-2, 1e-1] {
            out.push(row(
                &format!("guided r{radius} eps {eps}"),
                0.5,
                0.3,
                RefineParams {
                    temporal_smoothing: 0.6,
                    min_blob_fraction: 0.002,
                    guided_radius: radius,
                    guided_eps: eps,
                    ..RefineParams::default()
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_row_is_the_plain_model() {
        let rows = standard_rows(defaults_row(&[]).unwrap());
        assert_eq!(rows[0].name, "bare");
        assert_eq!(rows[0].params, RefineParams::default());
        assert_eq!((rows[0].threshold, rows[0].softness), (0.5, 0.0));
        assert_eq!(rows.last().unwrap().name, "defaults");
        // +guided carries the steps before it, not the expansion branches
        let guided = rows.iter().find(|r| r.name == "+guided").unwrap();
        assert_eq!(guided.params.expand_px, 0.0);
        assert_eq!(guided.params.temporal_smoothing, 0.6);
        assert_eq!(guided.params.min_blob_fraction, 0.002);
        assert_eq!(guided.params.guided_radius, 4);
    }

    #[test]
    fn set_overrides_the_defaults_row() {
        let c = defaults_row(&[
            "guided_radius=8".into(),
            "guided_eps=0.1".into(),
            "softness=0.2".into(),
            "expand_px=-1.5".into(),
            "aspect=letterbox".into(),
        ])
        .unwrap();
        assert_eq!(c.aspect, AspectMode::Letterbox);
        assert!(defaults_row(&["aspect=square".into()]).is_err());
        assert_eq!(c.params.guided_radius, 8);
        assert_eq!(c.params.guided_eps, 0.1);
        assert_eq!(c.softness, 0.2);
        assert_eq!(c.params.expand_px, -1.5);
        let f = defaults_row(&["min_blob_percent=0.5".into(), "edge_radius=0".into()]).unwrap();
        assert!((f.params.min_blob_fraction - 0.005).abs() < 1e-9);
        assert_eq!(f.params.guided_radius, 0);
        assert!(defaults_row(&["nope=1".into()]).is_err());
        assert!(defaults_row(&["threshold".into()]).is_err());
        assert!(defaults_row(&["guided_radius=2.5".into()]).is_err());
        assert!(defaults_row(&["threshold=NaN".into()]).is_err());
    }

    #[test]
    fn sweep_is_a_three_by_three_grid_and_slugs_are_file_names() {
        let s = sweep_rows();
        assert_eq!(s.len(), 9);
        assert!(s.iter().all(|c| c.params.guided_radius > 0));
        let names: Vec<String> = standard_rows(defaults_row(&[]).unwrap())
            .iter()
            .map(Config::slug)
            .collect();
        assert_eq!(names[0], "bare");
        assert_eq!(names[1], "plus_soft_threshold");
        assert_eq!(names[3], "plus_expand_m2_px");
        assert_eq!(names[4], "plus_expand_p2_px");
        assert!(s[0]
            .slug()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
