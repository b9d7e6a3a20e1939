//! `backdrop-bench remote`: the filter's inference-server client (`segmentation::remote`)
//! against a real Triton, frame by frame on a real video, next to the local model: round trip
//! (median, p95), the client thread's CPU per frame, bytes each way and the bandwidth of a
//! 30 fps stream, for the UINT8 payload (the server variant) and the FP32 one (the plain
//! model), and how far the server's masks are from the local model's.

use super::cli::RemoteOptions;
use super::downscale::GpuDownscale;
use super::media::VideoFrames;
use anyhow::{bail, Context, Result};
use backdrop_core::mask::roi::Region;
use backdrop_core::segmentation::manifest::Manifest;
use backdrop_core::segmentation::remote::{RemoteModel, ServerConfig};
use backdrop_core::segmentation::session::{Model, SessionOptions};
use backdrop_core::segmentation::worker::thread_cpu_ms;
use backdrop_testdata::triton::Triton;
use std::time::Instant;

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// One way of getting masks, measured.
struct Lane {
    name: String,
    wall_ms: Vec<f64>,
    cpu_ms: Vec<f64>,
    sent: usize,
    received: usize,
    max_diff: f32,
}

impl Lane {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            wall_ms: Vec::new(),
            cpu_ms: Vec::new(),
            sent: 0,
            received: 0,
            max_diff: 0.0,
        }
    }
}

pub fn run(o: &RemoteOptions) -> Result<()> {
    let env = super::init_runtime()?;
    let manifest =
        Manifest::load(&backdrop_testdata::models_dir().join(format!("{}.json", o.model)))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let log_dir = super::quality::root().join("target/bench-remote");
    std::fs::create_dir_all(&log_dir)?;
    let mut started = None;
    let url = match &o.url {
        Some(u) => u.clone(),
        None => {
            eprintln!("backdrop-bench remote: starting Triton (scripts/triton.sh)");
            let t = Triton::start(&log_dir.join("triton.log")).map_err(anyhow::Error::msg)?;
            let url = t.url.clone();
            started = Some(t);
            url
        }
    };
    let config = |model: String| ServerConfig {
        url: url.clone(),
        model,
        version: String::new(),
        timeout_ms: o.timeout_ms,
    };
    let mut local =
        Model::load(env, &manifest, SessionOptions::default()).map_err(anyhow::Error::msg)?;
    let mut uint8 = RemoteModel::connect(&config(manifest.id.clone()), &manifest)
        .context("the UINT8 server model")?;
    let fp32_name = format!("{}_fp32", manifest.id);
    let fp32 = RemoteModel::connect(&config(fp32_name.clone()), &manifest);
    let (w, h) = local.input_size();
    let (w, h) = (w as usize, h as usize);
    let clip = small_frames(&o.video, (w, h), o.frames)?;
    if o.streams > 1 {
        return streams(
            o,
            &clip,
            (w, h),
            &config(manifest.id.clone()),
            &manifest,
            &url,
        );
    }
    let mut fp32 = match fp32 {
        Ok(m) => Some(m),
        Err(e) => {
            eprintln!("backdrop-bench remote: no FP32 lane ({e})");
            None
        }
    };
    let mut lanes = [
        Lane::new("this computer (ONNX Runtime, 1 thread)"),
        Lane::new(&format!("server, UINT8 in, UINT16 out ({})", manifest.id)),
        Lane::new(&format!("server, FP32 in and out ({fp32_name})")),
    ];
    for bgra in &clip {
        let (t, c) = (Instant::now(), thread_cpu_ms());
        let want = local
            .infer(bgra, w * 4)
            .map_err(anyhow::Error::msg)?
            .to_vec();
        lanes[0].wall_ms.push(t.elapsed().as_secs_f64() * 1e3);
        lanes[0].cpu_ms.push(thread_cpu_ms() - c);
        let remotes = std::iter::once(&mut uint8).chain(fp32.as_mut());
        for (lane, remote) in lanes[1..].iter_mut().zip(remotes) {
            let (t, c) = (Instant::now(), thread_cpu_ms());
            let got = remote.infer(bgra, w * 4)?;
            lane.wall_ms.push(t.elapsed().as_secs_f64() * 1e3);
            lane.cpu_ms.push(thread_cpu_ms() - c);
            if got.len() != want.len() {
                bail!(
                    "{}: a mask of {} values, the local one has {}",
                    lane.name,
                    got.len(),
                    want.len()
                );
            }
            let diff = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            lane.max_diff = lane.max_diff.max(diff);
            lane.sent = remote.bytes_sent;
            lane.received = remote.bytes_received;
        }
    }
    drop(started);
    println!(
        "## Inference on a server: {} frames of {}\n",
        o.frames,
        o.video.display()
    );
    println!("{}; server {url} (Triton 2.51.0, python backend, ONNX Runtime 1.31.1 on this machine's CPU, loopback)\n", super::machine_line());
    println!("Command: `{}`\n", super::command_line());
    println!("| path | round trip ms, median (p95) | client CPU ms/frame, median | request bytes | answer bytes | at 30 fps: up / down Mbit/s | max abs diff vs this computer |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for l in lanes.iter().filter(|l| !l.wall_ms.is_empty()) {
        let mbit = |bytes: usize| bytes as f64 * 8.0 * 30.0 / 1e6;
        println!(
            "| {} | {:.2} ({:.2}) | {:.3} | {} | {} | {} | {} |",
            l.name,
            quantile(&l.wall_ms, 0.5),
            quantile(&l.wall_ms, 0.95),
            quantile(&l.cpu_ms, 0.5),
            if l.sent > 0 {
                l.sent.to_string()
            } else {
                "-".into()
            },
            if l.received > 0 {
                l.received.to_string()
            } else {
                "-".into()
            },
            if l.sent > 0 {
                format!("{:.1} / {:.1}", mbit(l.sent), mbit(l.received))
            } else {
                "-".into()
            },
            if l.sent > 0 {
                format!("{:.1e}", l.max_diff)
            } else {
                "-".into()
            },
        );
    }
    Ok(())
}

/// `o.frames` frames of `video` (looped as needed), each downscaled like the filter does to the
/// model's input `(w, h)`, as BGRA.
fn small_frames(video: &std::path::Path, (w, h): (usize, usize), n: usize) -> Result<Vec<Vec<u8>>> {
    let mut frames = VideoFrames::open(video)?;
    let mut down: Option<GpuDownscale> = None;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let Some(frame) = frames.next_frame()? else {
            if out.is_empty() {
                bail!("{} has no frames", video.display());
            }
            frames = VideoFrames::open(video)?; // loop the clip
            continue;
        };
        let src = (frame.width, frame.height);
        let d = match &mut down {
            Some(d) if d.is_for(src, (w, h), Region::FULL) => d,
            _ => down.insert(GpuDownscale::new(src, (w, h), Region::FULL)),
        };
        let mut bgra = Vec::new();
        d.run(&frame.data, &mut bgra);
        out.push(bgra);
    }
    Ok(out)
}

/// `o.streams` clients at once, each sending the clip at `o.fps` frames a second (or back to
/// back with 0): per-stream round trip and the frames answered per second in all.
fn streams(
    o: &RemoteOptions,
    clip: &[Vec<u8>],
    (w, _): (usize, usize),
    config: &ServerConfig,
    manifest: &Manifest,
    url: &str,
) -> Result<()> {
    let began = Instant::now();
    let results: Vec<Result<(Vec<f64>, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..o.streams)
            .map(|_| {
                scope.spawn(|| -> Result<(Vec<f64>, usize)> {
                    let mut m = RemoteModel::connect(config, manifest)?;
                    let mut times = Vec::with_capacity(clip.len());
                    let mut misses = 0;
                    let period =
                        (o.fps > 0).then(|| std::time::Duration::from_secs_f64(1.0 / o.fps as f64));
                    let start = Instant::now();
                    for (i, bgra) in clip.iter().enumerate() {
                        if let Some(p) = period {
                            let due = start + p * i as u32;
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                        let t = Instant::now();
                        match m.infer(bgra, w * 4) {
                            Ok(_) => times.push(t.elapsed().as_secs_f64() * 1e3),
                            Err(_) => misses += 1,
                        }
                    }
                    Ok((times, misses))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("stream thread"))
            .collect()
    });
    let wall = began.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut misses = 0;
    for r in results {
        let (t, m) = r?;
        all.extend(t);
        misses += m;
    }
    println!(
        "## {} streams at once, {} frames each{}, model '{}' on {url}\n",
        o.streams,
        clip.len(),
        if o.fps > 0 {
            format!(" at {} fps", o.fps)
        } else {
            ", back to back".into()
        },
        config.model
    );
    println!("{}\n", super::machine_line());
    println!("Command: `{}`\n", super::command_line());
    println!("| streams | round trip ms, median (p95) | answered frames/s in all | misses (deadline {} ms) |", o.timeout_ms);
    println!("| --- | --- | --- | --- |");
    println!(
        "| {} | {:.2} ({:.2}) | {:.1} | {} |",
        o.streams,
        quantile(&all, 0.5),
        quantile(&all, 0.95),
        all.len() as f64 / wall,
        misses
    );
    Ok(())
}
