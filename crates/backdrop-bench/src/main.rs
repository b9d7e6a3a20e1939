//! `backdrop-bench`: measurements of the obs-backdrop pipeline outside OBS.
//!
//! `backdrop-bench quality` runs the plugin's own mask pipeline (the same library calls the
//! filter's worker and effect make, with CPU twins of the two GPU steps) on the shared test
//! data and prints a markdown table of mask quality per configuration. See `--help` and
//! `docs/quality.md`.
//!
//! `backdrop-bench perf` runs the filter inside real headless OBS (one `backdrop-render` process
//! per scenario) and prints the performance figures and comparisons made from them. See
//! `docs/performance.md`.
//!
//! `backdrop-bench remote` measures the inference-server client against a real Triton.
//!
//! Layout: `cli` (options), `config` (the rows), `downscale` (frame -> model input, twin of the
//! effect's `PSDownscale`), `media` (ffmpeg decoding, PNG in/out), `metrics` (IoU, boundary
//! F-score, flicker), `synthetic` (videos with exact ground truth), `quality` (the run and the
//! tables), `perf` (the performance scenarios, their tables and comparisons), `remote` (the
//! inference-server client's figures).

mod cli;
mod config;
mod downscale;
mod media;
mod metrics;
mod perf;
mod quality;
mod remote;
mod synthetic;

use anyhow::{Context, Result};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    // clap prints --help and its own errors (exit 2).
    let cli = <cli::Cli as clap::Parser>::parse();
    let result = match cli::parsed(cli) {
        Ok(cli::Parsed::Quality(o)) => quality::run(&o),
        Ok(cli::Parsed::Perf(o)) => perf::run(&o),
        Ok(cli::Parsed::Remote(o)) => remote::run(&o),
        Err(e) => {
            eprintln!("backdrop-bench: {e:#}\n(see --help)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backdrop-bench: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The library's log lines (`log` records of backdrop-core) go to stderr, so that stdout holds
/// only the report.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let _ = writeln!(std::io::stderr(), "{}: [backdrop] {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

/// Loads ONNX Runtime the way the tests do: `ORT_DYLIB_PATH` if set, else the library that
/// `scripts/setup.sh` put in `build/deps/`, through the plugin's own loader.
pub fn init_runtime() -> Result<&'static ort::environment::Environment> {
    static LOGGER: StderrLog = StderrLog;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let lib = backdrop_testdata::runtime_library();
    // SAFETY: set once at start-up, before any other thread reads the environment.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", &lib) };
    backdrop_core::segmentation::runtime::environment()
        .map_err(anyhow::Error::msg)
        .context("ONNX Runtime (run scripts/setup.sh, or set ORT_DYLIB_PATH)")
}

/// The command line as typed (arguments with spaces quoted).
pub fn command_line() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let a = if i == 0 {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or(a)
            } else {
                a
            };
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `YYYY-MM-DD HH:MM UTC` of a time in seconds since the epoch.
pub fn utc(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let tod = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        tod / 3600,
        tod % 3600 / 60
    )
}

/// Date (UTC), CPU, core count and git commit, for the report header.
pub fn machine_line() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(quality::root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    format!(
        "date {}; machine: {cpu}, {cores} cores; commit {commit}{}",
        utc(secs),
        if dirty { " + uncommitted changes" } else { "" }
    )
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(19_723 * 86_400 + 3_660), "2024-01-01 01:01 UTC");
    }
}
