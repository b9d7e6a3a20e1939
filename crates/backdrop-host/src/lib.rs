//! The headless OBS host behind `backdrop-render`: starts libobs under an X display, loads the
//! OBS modules it needs and the plugin (with `obs_open_module`, as OBS does), puts an image,
//! video, colour or webcam source with the filter on the output, captures the output frames,
//! and writes PNGs, an optional recording, `obs.log` and `report.json`.
//!
//! Modules: `cli` (options), `host` (libobs start/stop, modules), `logging` (libobs log
//! capture), `sources` (input source + filter chain, settings, stats), `tap` (filter that grabs
//! the unfiltered frame), `capture` (raw output frames, pairing), `record` (mp4 output),
//! `png_out` (PNG files), `virtualcam` (OBS's virtual camera), `run` (the two modes and the
//! report), `perf` (CPU, OBS counters and the bare model over a steady window), `alloc_count`
//! (per-thread allocation counts), `soak` (the long run's actions, samples and trends).

mod alloc_count;
mod capture;
pub mod cli;
mod host;
mod logging;
mod perf;
mod png_out;
mod record;
pub mod run;
pub mod soak;
mod sources;
mod tap;
mod virtualcam;
