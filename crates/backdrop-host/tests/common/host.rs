//! Running the headless host (`backdrop-render`) inside real libobs for end-to-end tests.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A finished host run.
pub struct Run {
    pub out: PathBuf,
    pub report: serde_json::Value,
    pub code: i32,
    pub stderr: String,
}

impl Run {
    /// The filter's last `get_stats` object (run mode) or that of input `i` (still mode).
    pub fn stats(&self) -> &serde_json::Value {
        &self.report["stats"]
    }
    pub fn status(&self) -> String {
        self.stats()["status"].as_str().unwrap_or("").to_string()
    }
    pub fn int(&self, key: &str) -> i64 {
        self.report[key].as_i64().unwrap_or(-1)
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.out.join("obs.log")).unwrap_or_default()
    }
    /// No error line in OBS's log, from the plugin or from libobs about what the plugin drew
    /// (an effect parameter of the wrong size, a sprite of size 0).
    pub fn assert_no_errors(&self) {
        let log = self.log();
        let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(self.int("backdrop_errors"), 0, "plugin errors:\n{log}");
        assert_eq!(
            self.int("obs_errors"),
            0,
            "{} error lines in OBS's log, the first: {:?}",
            errors.len(),
            &errors[..errors.len().min(5)]
        );
    }
}

/// A fresh plugin folder made from the build of the profile being tested
/// (`scripts/install-plugin.sh` into `target/e2e/<profile>`), so the tests never run a stale
/// install or another profile's `.so`. `None` when setup has not been run.
pub fn plugin_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = super::root();
        // target/<profile>/backdrop-render. Cargo builds the package's library for its
        // integration tests into target/<profile>/deps (cdylib and rlib in one compile); the
        // .so there is the plugin of this test build (target/<profile>/libobs_backdrop.so is
        // only refreshed by `cargo build`).
        let exe = Path::new(env!("CARGO_BIN_EXE_backdrop-render"));
        let profile_dir = exe.parent()?;
        let profile = profile_dir.file_name()?.to_str()?;
        let so = profile_dir.join("deps/libobs_backdrop.so");
        let dest = root.join("target/e2e").join(profile);
        let ok = Command::new("bash")
            .arg(root.join("scripts/install-plugin.sh"))
            .arg(&dest)
            .env("PLUGIN_SO", &so)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| dest.join("obs-backdrop"))
    })
    .clone()
}

/// Copies the plugin folder to a scratch folder named `name` for a fault-injection variant.
pub fn plugin_variant(name: &str) -> Option<PathBuf> {
    let src = plugin_dir()?;
    let dest = super::root()
        .join("target/e2e/variants")
        .join(name)
        .join("obs-backdrop");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let ok = Command::new("cp")
        .arg("-R")
        .arg(&src)
        .arg(&dest)
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(dest)
}

/// The X display the hosts run on: `DISPLAY` (scripts/test.sh runs the suite under
/// `xvfb-run`), else one Xvfb started for this test binary and ended with it. (One `xvfb-run -a`
/// per host run races with the others when tests run in parallel: it then exits 5 on its
/// cleanup instead of passing the host's status on.)
fn display() -> String {
    static DISPLAY: OnceLock<String> = OnceLock::new();
    DISPLAY
        .get_or_init(|| {
            if let Some(d) = std::env::var_os("DISPLAY") {
                return d.to_string_lossy().into_owned();
            }
            // PR_SET_PDEATHSIG fires when the forking *thread* ends: fork from a thread that
            // lives as long as the process.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                use std::io::BufRead;
                use std::os::unix::process::CommandExt;
                let mut cmd = Command::new("Xvfb");
                cmd.args([
                    "-displayfd",
                    "1",
                    "-screen",
                    "0",
                    "1280x720x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null());
                // SAFETY: prctl only, between fork and exec: Xvfb ends with this test binary.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                        Ok(())
                    });
                }
                let mut child = cmd.spawn().expect("Xvfb starts (apt-get install xvfb)");
                let mut line = String::new();
                std::io::BufReader::new(child.stdout.take().expect("piped"))
                    .read_line(&mut line)
                    .expect("Xvfb prints its display number");
                let _ = tx.send(line);
                // Blocks for the life of the process (Xvfb ends with it).
                let _ = child.wait();
            });
            let line = rx.recv().expect("Xvfb thread");
            format!(":{}", line.trim())
        })
        .clone()
}

/// Runs `backdrop-render` with `args` (plus `--plugin` and `--out`) on [`display`]. Never fails
/// itself: the test checks `code` and the report.
pub fn run(name: &str, plugin: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
    let out = super::root().join("target/e2e/runs").join(name);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let exe = env!("CARGO_BIN_EXE_backdrop-render");
    let mut cmd = Command::new(exe);
    cmd.env("DISPLAY", display());
    cmd.arg("--plugin")
        .arg(plugin)
        .arg("--out")
        .arg(&out)
        .args(args);
    // The plugin must find ONNX Runtime next to itself, never through a developer's variable.
    cmd.env_remove("ORT_DYLIB_PATH");
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let started = std::time::Instant::now();
    let output = cmd.output().expect("backdrop-render starts");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    eprintln!(
        "[{name}] exit {:?} in {:.1} s: {}",
        output.status.code(),
        started.elapsed().as_secs_f64(),
        stderr
            .lines()
            .rfind(|l| l.starts_with("backdrop-render:"))
            .unwrap_or("")
    );
    Run {
        out,
        report,
        code: output.status.code().unwrap_or(-1),
        stderr,
    }
}

/// Runs the host on `input` for `frames` output frames with `extra` arguments (see [`run`]).
pub fn run_frames(name: &str, plugin: &Path, input: &Path, frames: u32, extra: &[&str]) -> Run {
    let frames = frames.to_string();
    let mut args = vec!["--input", input.to_str().unwrap(), "--frames", &frames];
    args.extend_from_slice(extra);
    run(name, plugin, &args, &[])
}

/// An RGBA image as (width, height, pixels).
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub px: Vec<u8>,
}

impl Rgba {
    pub fn load(path: &Path) -> Rgba {
        let img = image::open(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .to_rgba8();
        Rgba {
            width: img.width(),
            height: img.height(),
            px: img.into_raw(),
        }
    }
    pub fn at(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.width + x) * 4) as usize;
        [self.px[i], self.px[i + 1], self.px[i + 2], self.px[i + 3]]
    }
    /// Splits a side-by-side still (original | result) into its halves.
    pub fn halves(&self) -> (Rgba, Rgba) {
        let w = self.width / 2;
        let crop = |x0: u32| Rgba {
            width: w,
            height: self.height,
            px: (0..self.height)
                .flat_map(|y| (x0..x0 + w).flat_map(move |x| (0..4).map(move |c| (x, y, c))))
                .map(|(x, y, c)| self.px[((y * self.width + x) * 4 + c) as usize])
                .collect(),
        };
        (crop(0), crop(w))
    }
    /// Mean absolute difference per channel (RGB) between two images of the same size, over the
    /// pixels with indices `pixels` (0 for none).
    pub fn mean_abs_diff_at(&self, other: &Rgba, pixels: &[usize]) -> f64 {
        assert_eq!((self.width, self.height), (other.width, other.height));
        let sum: u64 = pixels
            .iter()
            .map(|&i| {
                (0..3)
                    .map(|c| {
                        (self.px[i * 4 + c] as i32 - other.px[i * 4 + c] as i32).unsigned_abs()
                            as u64
                    })
                    .sum::<u64>()
            })
            .sum();
        sum as f64 / (pixels.len().max(1) as f64 * 3.0)
    }
    /// Mean absolute difference per channel (RGB) between two images of the same size.
    pub fn mean_abs_diff(&self, other: &Rgba) -> f64 {
        assert_eq!((self.width, self.height), (other.width, other.height));
        let sum: u64 = self
            .px
            .chunks_exact(4)
            .zip(other.px.chunks_exact(4))
            .map(|(a, b)| {
                (0..3)
                    .map(|c| (a[c] as i32 - b[c] as i32).unsigned_abs() as u64)
                    .sum::<u64>()
            })
            .sum();
        sum as f64 / (self.width as f64 * self.height as f64 * 3.0)
    }
}

/// Runs the host on a thread (see [`run`]), for a test that drives faults from outside while
/// it runs (`--timeline`, `--stop-file`).
pub fn spawn(name: &str, plugin: &Path, args: Vec<String>) -> std::thread::JoinHandle<Run> {
    let (name, plugin) = (name.to_string(), plugin.to_path_buf());
    std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&name, &plugin, &args, &[])
    })
}

/// The timeline's lines (`--timeline`) so far.
pub fn timeline(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits for the first timeline line after `from` lines that satisfies `want`; its index and
/// the line. Panics with `what` and the last line after `timeout`.
pub fn wait_for(
    path: &Path,
    from: usize,
    timeout: Duration,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> (usize, Value) {
    let started = Instant::now();
    loop {
        let lines = timeline(path);
        if let Some((i, l)) = lines.iter().enumerate().skip(from).find(|(_, l)| want(l)) {
            return (i, l.clone());
        }
        assert!(
            started.elapsed() < timeout,
            "no {what} within {} s; last: {}",
            timeout.as_secs(),
            lines.last().map(Value::to_string).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn stat(line: &Value, key: &str) -> i64 {
    line["stats"][key].as_i64().unwrap_or(-1)
}
