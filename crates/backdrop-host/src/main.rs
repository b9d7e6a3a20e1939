//! `backdrop-render`: a headless OBS host that runs a source through the Backdrop filter.
//!
//! It is the project's demo and the driver of its end-to-end tests: it starts libobs under an X
//! display (`xvfb-run -a`), loads the few OBS modules it needs and the plugin, puts an image,
//! video or colour source with the filter on output channel 0, captures the output frames, and
//! writes PNGs, an optional recording, `obs.log` and `report.json`. See `--help`.
//!
//! The host itself is the `backdrop_host` library (see its crate documentation).

use backdrop_host::{cli, run};
use std::process::ExitCode;

fn main() -> ExitCode {
    // clap prints --help and its own errors (exit 2).
    let args = <cli::Args as clap::Parser>::parse();
    let opts = match cli::Options::try_from(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("backdrop-render: {e:#}\n(see --help)");
            return ExitCode::from(2);
        }
    };
    match run::run(&opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("backdrop-render: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
