//! `backdrop-render`: a headless OBS host that runs a source through the Backdrop filter.
//!
//! It is the project's demo and the driver of its end-to-end tests: it starts libobs under an X
//! display (`xvfb-run -a`), loads the few OBS modules it needs and the plugin, puts an image,
//! video or colour source with the filter on output channel 0, captures the output frames, and
//! writes PNGs, an optional recording, `obs.log` and `report.json`. See `--help`.
//!
//! Layout: `cli` (options), `host` (libobs start/stop, modules), `logging` (libobs log capture),
//! `sources` (input source + filter chain, settings, stats), `tap` (filter that grabs the
//! unfiltered frame), `capture` (raw output frames, pairing), `record` (mp4 output),
//! `png_out` (PNG files), `virtualcam` (OBS's virtual camera), `run` (the two modes and the report), `perf` (CPU, OBS counters and
//! the bare model over a steady window), `alloc_count` (per-thread allocation counts).

#[path = "backdrop_render/alloc_count.rs"]
mod alloc_count;
#[path = "backdrop_render/capture.rs"]
mod capture;
#[path = "backdrop_render/cli.rs"]
mod cli;
#[path = "backdrop_render/host.rs"]
mod host;
#[path = "backdrop_render/logging.rs"]
mod logging;
#[path = "backdrop_render/perf.rs"]
mod perf;
#[path = "backdrop_render/png_out.rs"]
mod png_out;
#[path = "backdrop_render/record.rs"]
mod record;
#[path = "backdrop_render/run.rs"]
mod run;
#[path = "backdrop_render/sources.rs"]
mod sources;
#[path = "backdrop_render/tap.rs"]
mod tap;
#[path = "backdrop_render/virtualcam.rs"]
mod virtualcam;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = match cli::parse_args(std::env::args().skip(1)) {
        Ok(cli::Parsed::Help) => {
            // Ignore a closed pipe (`--help | head`).
            let _ = writeln!(std::io::stdout(), "{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Run(o)) => o,
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
