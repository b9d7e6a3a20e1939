//! A real NVIDIA Triton Inference Server for the inference-server tests and benchmark: the one
//! `scripts/setup.sh` installs (build/triton), started by `scripts/triton.sh` on free loopback
//! ports, in its own process group, and killed with it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take before it counts as failed: the python backend starts one stub
/// process per model, each importing numpy and onnxruntime (3-5 s on an idle 2-core machine).
pub const START_TIMEOUT: Duration = Duration::from_secs(180);

/// Whether `scripts/setup.sh` installed Triton and wrote its model repository.
pub fn installed() -> bool {
    let root = super::root();
    root.join("build/triton/venv/bin/python").is_file()
        && root
            .join("build/triton/models/selfie_general/config.pbtxt")
            .is_file()
}

/// A running server; killed (with its python-backend stubs) on drop.
pub struct Triton {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    ports: [u16; 3],
    log: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether `GET path` on `127.0.0.1:port` answers 200 within a second.
pub fn answers_200(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    // "HTTP/1.0 200" or "HTTP/1.1 200" (servers answer a 1.0 request either way)
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[8..12] == b" 200"
}

impl Triton {
    /// Starts the server on three free loopback ports, its output in `log`, and waits until it
    /// is ready (at most [`START_TIMEOUT`]).
    ///
    /// # Errors
    /// It exits or is not ready in time (the message ends with its log's tail).
    pub fn start(log: &Path) -> Result<Self, String> {
        let ports = [free_port(), free_port(), free_port()];
        let mut t = Self {
            child: None,
            url: format!("http://127.0.0.1:{}", ports[0]),
            ports,
            log: log.to_path_buf(),
        };
        t.launch()?;
        Ok(t)
    }

    fn launch(&mut self) -> Result<(), String> {
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let [http, grpc, metrics] = self.ports.map(|p| p.to_string());
        let mut cmd = Command::new("bash");
        cmd.arg(super::root().join("scripts/triton.sh"))
            .args(["--http-port", &http, "--grpc-port", &grpc])
            .args(["--metrics-port", &metrics])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0);
        // SAFETY: prctl only, between fork and exec: the server ends with the thread that
        // started it (no server outlives a test binary killed without unwinding).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("scripts/triton.sh does not start: {e}"))?;
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if answers_200(self.ports[0], "/v2/health/ready") {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("Triton exited ({status}): {}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
        self.kill();
        Err(format!(
            "Triton not ready within {} s: {}",
            START_TIMEOUT.as_secs(),
            self.log_tail()
        ))
    }

    /// The HTTP port.
    pub fn http_port(&self) -> u16 {
        self.ports[0]
    }

    /// Kills the server and its stubs at once (SIGKILL to the process group): a server that
    /// dies, not one that shuts down politely.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signals the process group this struct started (its pid is the group id).
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports (after [`Triton::kill`]).
    ///
    /// # Errors
    /// As [`Triton::start`].
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.launch()
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Triton {
    fn drop(&mut self) {
        self.kill();
    }
}
