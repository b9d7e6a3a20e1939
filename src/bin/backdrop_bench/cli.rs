//! Command-line options of `backdrop-bench`, parsed by hand (no CLI crate). Every option takes
//! `--name value` or `--name=value`.

use super::downscale::Resample;
use super::synthetic;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

pub const USAGE: &str = "\
backdrop-bench: measurements of the obs-backdrop pipeline outside OBS.

USAGE:
    backdrop-bench quality [OPTIONS]

`quality` runs the plugin's own mask pipeline (GPU-downscale twin -> Model::infer ->
mask::refine::Refiner -> mask::refine::composite_alpha) on the shared test data and prints one
markdown table, a row per configuration: mean IoU and boundary F-score on the 96 portraits,
IoU and temporal flicker on synthetic videos with exact ground truth, flicker on real videos,
and the refinement's median time per frame.

OPTIONS:
    --model ID            model by manifest id, looked up in build/models/ (BACKDROP_MODELS
                          overrides) and models/thirdparty/ (repeatable; default selfie_general)
    --manifest PATH       model by manifest file; a relative \"file\" is looked up next to the
                          manifest, then in <testdata>/models/thirdparty/ (repeatable)
    --sections LIST       comma-separated: portraits,synthetic,video (default: all three)
    --sweep               also run the guided-filter grid (radius 2/4/8 x eps 1e-3/1e-2/1e-1)
    --write-masks DIR     write alpha PNGs (grey) of the first portraits and a few frames of
                          each video, per configuration, plus inputs and ground truth
    --set KEY=VALUE       override a field of the `defaults` row (the filter's own defaults;
                          repeatable): threshold, softness, temporal_smoothing, expand_px,
                          min_blob_fraction, guided_radius (0 = off), guided_eps; the filter's
                          keys edge_softness, mask_expand, min_blob_percent, edge_radius too
    --resample MODE       frame -> model input: gpu (default; CPU twin of the effect's
                          PSDownscale) | fir-bilinear (fast_image_resize bilinear convolution)
    --noise SIGMA         Gaussian noise on the synthetic videos, 8-bit levels (default 3)
    --limit N             at most N portraits and N frames per video (quick smoke runs; the
                          figures are then not comparable)
    --testdata DIR        test data folder (default: BACKDROP_TESTDATA, else ../shared/testdata)
    -h, --help            this text
";

#[derive(Clone, Debug, PartialEq)]
pub enum ModelRef {
    Id(String),
    Manifest(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    pub portraits: bool,
    pub synthetic: bool,
    pub video: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QualityOptions {
    pub models: Vec<ModelRef>,
    pub sections: Sections,
    pub sweep: bool,
    pub write_masks: Option<PathBuf>,
    pub set: Vec<String>,
    pub resample: Resample,
    pub noise: f32,
    pub limit: Option<usize>,
    pub testdata: Option<PathBuf>,
}

#[derive(Debug, PartialEq)]
pub enum Parsed {
    Help,
    Quality(QualityOptions),
}

fn parse_sections(list: &str) -> Result<Sections> {
    let mut s = Sections {
        portraits: false,
        synthetic: false,
        video: false,
    };
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "portraits" => s.portraits = true,
            "synthetic" => s.synthetic = true,
            "video" => s.video = true,
            other => bail!("unknown section '{other}' (portraits, synthetic, video)"),
        }
    }
    if !(s.portraits || s.synthetic || s.video) {
        bail!("--sections names no section");
    }
    Ok(s)
}

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        None | Some("-h") | Some("--help") | Some("help") => return Ok(Parsed::Help),
        Some("quality") => {}
        Some(other) => bail!("unknown command '{other}' (only `quality` exists)"),
    }
    let mut o = QualityOptions {
        models: Vec::new(),
        sections: Sections {
            portraits: true,
            synthetic: true,
            video: true,
        },
        sweep: false,
        write_masks: None,
        set: Vec::new(),
        resample: Resample::Gpu,
        noise: synthetic::DEFAULT_NOISE,
        limit: None,
        testdata: None,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .with_context(|| format!("{name} needs a value ({what})")),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--model" => o.models.push(ModelRef::Id(value("a manifest id")?)),
            "--manifest" => o.models.push(ModelRef::Manifest(value("a path")?.into())),
            "--sections" => o.sections = parse_sections(&value("a list")?)?,
            "--sweep" => o.sweep = true,
            "--write-masks" => o.write_masks = Some(value("a folder")?.into()),
            "--set" => o.set.push(value("key=value")?),
            "--resample" => o.resample = Resample::parse(&value("gpu | fir-bilinear")?)?,
            "--noise" => {
                let v = value("levels")?;
                o.noise = v
                    .parse()
                    .ok()
                    .filter(|n: &f32| n.is_finite() && *n >= 0.0)
                    .with_context(|| format!("--noise: '{v}' is not a level >= 0"))?;
            }
            "--limit" => {
                let v = value("a count")?;
                o.limit = Some(
                    v.parse()
                        .ok()
                        .filter(|n: &usize| *n > 0)
                        .with_context(|| format!("--limit: '{v}' is not a count > 0"))?,
                );
            }
            "--testdata" => o.testdata = Some(value("a folder")?.into()),
            other => bail!("unknown option '{other}'"),
        }
    }
    if o.models.is_empty() {
        o.models.push(ModelRef::Id("selfie_general".into()));
    }
    Ok(Parsed::Quality(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_help() {
        assert_eq!(parse(&[]).unwrap(), Parsed::Help);
        assert_eq!(parse(&["quality", "--help"]).unwrap(), Parsed::Help);
        let Parsed::Quality(o) = parse(&["quality"]).unwrap() else {
            panic!()
        };
        assert_eq!(o.models, vec![ModelRef::Id("selfie_general".into())]);
        assert!(o.sections.portraits && o.sections.synthetic && o.sections.video);
        assert_eq!(o.resample, Resample::Gpu);
        assert!(!o.sweep);
    }

    #[test]
    fn options_in_both_forms() {
        let Parsed::Quality(o) = parse(&[
            "quality",
            "--model=meet",
            "--manifest",
            "models/thirdparty/sinet.json",
            "--sections",
            "portraits,video",
            "--sweep",
            "--set",
            "guided_radius=8",
            "--set=softness=0.2",
            "--write-masks",
            "out/m",
            "--resample=fir-bilinear",
            "--noise",
            "0",
            "--limit",
            "5",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            o.models,
            vec![
                ModelRef::Id("meet".into()),
                ModelRef::Manifest("models/thirdparty/sinet.json".into())
            ]
        );
        assert!(o.sections.portraits && !o.sections.synthetic && o.sections.video);
        assert!(o.sweep);
        assert_eq!(o.set, vec!["guided_radius=8", "softness=0.2"]);
        assert_eq!(o.write_masks, Some(PathBuf::from("out/m")));
        assert_eq!(o.resample, Resample::FirBilinear);
        assert_eq!((o.noise, o.limit), (0.0, Some(5)));
    }

    #[test]
    fn errors_are_reported() {
        assert!(parse(&["speed"]).is_err());
        assert!(parse(&["quality", "--sections", "faces"]).is_err());
        assert!(parse(&["quality", "--model"]).is_err());
        assert!(parse(&["quality", "--limit", "0"]).is_err());
        assert!(parse(&["quality", "--noise", "-1"]).is_err());
        assert!(parse(&["quality", "--bogus"]).is_err());
    }
}
