//! Recording the filtered output to a file: `obs_x264` + `ffmpeg_aac` into `ffmpeg_muxer`.
//!
//! The canvas is BGRA; obs_x264 asks for NV12 in its `get_video_info`, and libobs converts the
//! BGRA output for the encoder on the CPU (video-io scaler) — no extra setup needed. The muxer runs
//! OBS's `obs-ffmpeg-mux` helper process (path compiled into obs-ffmpeg.so); the file is only
//! finalised (moov atom written) after the output's "stop" signal, so `stop` waits for it.

use crate::host::from_c;
use crate::sources::Data;
use anyhow::{bail, Result};
use backdrop_obs::sys;
use std::os::raw::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// What the "stop" signal reported.
struct StopFlag {
    stopped: AtomicBool,
    code: AtomicI64,
}

/// A running recording.
pub struct Recorder {
    output: *mut sys::obs_output_t,
    venc: *mut sys::obs_encoder_t,
    aenc: *mut sys::obs_encoder_t,
    flag: Box<StopFlag>,
}

/// Totals of a finished recording.
pub struct RecordStats {
    pub frames: i64,
    pub dropped: i64,
    pub stop_code: i64,
}

/// "stop" signal handler of the output (output's thread).
unsafe extern "C" fn on_stop(param: *mut c_void, cd: *mut sys::calldata_t) {
    let _ = std::panic::catch_unwind(|| {
        let flag = &*(param as *const StopFlag);
        let mut code: i64 = 0;
        if !cd.is_null() {
            sys::calldata_get_data(
                cd,
                c"code".as_ptr(),
                &mut code as *mut i64 as *mut c_void,
                std::mem::size_of::<i64>(),
            );
        }
        flag.code.store(code, Ordering::SeqCst);
        flag.stopped.store(true, Ordering::SeqCst);
    });
}

impl Recorder {
    /// Creates encoders and the muxer output for `path` and starts recording.
    pub fn start(path: &Path) -> Result<Recorder> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        unsafe {
            let vs = Data::new();
            vs.set_string("rate_control", "CRF")
                .set_int("crf", 18)
                .set_string("preset", "veryfast")
                .set_int("keyint_sec", 2);
            let venc = sys::obs_video_encoder_create(
                c"obs_x264".as_ptr(),
                c"record-video".as_ptr(),
                vs.as_ptr(),
                std::ptr::null_mut(),
            );
            let as_ = Data::new();
            as_.set_int("bitrate", 128);
            let aenc = sys::obs_audio_encoder_create(
                c"ffmpeg_aac".as_ptr(),
                c"record-audio".as_ptr(),
                as_.as_ptr(),
                0,
                std::ptr::null_mut(),
            );
            let os = Data::new();
            os.set_string("path", &abs.to_string_lossy());
            let output = sys::obs_output_create(
                c"ffmpeg_muxer".as_ptr(),
                c"record".as_ptr(),
                os.as_ptr(),
                std::ptr::null_mut(),
            );
            let flag = Box::new(StopFlag {
                stopped: AtomicBool::new(false),
                code: AtomicI64::new(0),
            });
            let rec = Recorder {
                output,
                venc,
                aenc,
                flag,
            };
            if venc.is_null() || aenc.is_null() || output.is_null() {
                bail!("cannot create obs_x264 / ffmpeg_aac / ffmpeg_muxer (modules obs-x264, obs-ffmpeg loaded?)");
            }
            sys::obs_encoder_set_video(venc, sys::obs_get_video());
            sys::obs_encoder_set_audio(aenc, sys::obs_get_audio());
            sys::obs_output_set_video_encoder(output, venc);
            sys::obs_output_set_audio_encoder(output, aenc, 0);
            let sh = sys::obs_output_get_signal_handler(output);
            sys::signal_handler_connect(
                sh,
                c"stop".as_ptr(),
                Some(on_stop),
                &*rec.flag as *const StopFlag as *mut c_void,
            );
            if !sys::obs_output_start(output) {
                let err = from_c(sys::obs_output_get_last_error(output));
                bail!(
                    "obs_output_start(ffmpeg_muxer, {}) failed: {err}",
                    abs.display()
                );
            }
            Ok(rec)
        }
    }

    /// Stops the output and waits (at most `timeout`) for its "stop" signal, so the file is
    /// complete. Forces the stop after the timeout and reports it as an error.
    pub fn stop(self, timeout: Duration) -> Result<RecordStats> {
        unsafe {
            sys::obs_output_stop(self.output);
            let t0 = Instant::now();
            while !self.flag.stopped.load(Ordering::SeqCst) && t0.elapsed() < timeout {
                std::thread::sleep(Duration::from_millis(10));
            }
            let stopped = self.flag.stopped.load(Ordering::SeqCst);
            if !stopped {
                sys::obs_output_force_stop(self.output);
            }
            // The muxer may still flush after the signal; wait until it is inactive.
            let t1 = Instant::now();
            while sys::obs_output_active(self.output) && t1.elapsed() < timeout {
                std::thread::sleep(Duration::from_millis(10));
            }
            let stats = RecordStats {
                frames: sys::obs_output_get_total_frames(self.output) as i64,
                dropped: sys::obs_output_get_frames_dropped(self.output) as i64,
                stop_code: self.flag.code.load(Ordering::SeqCst),
            };
            drop(self);
            if !stopped {
                bail!(
                    "recording did not stop within {:.0} s (forced)",
                    timeout.as_secs_f64()
                );
            }
            Ok(stats)
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        unsafe {
            if !self.output.is_null() {
                let sh = sys::obs_output_get_signal_handler(self.output);
                sys::signal_handler_disconnect(
                    sh,
                    c"stop".as_ptr(),
                    Some(on_stop),
                    &*self.flag as *const StopFlag as *mut c_void,
                );
                if sys::obs_output_active(self.output) {
                    sys::obs_output_force_stop(self.output);
                }
                sys::obs_output_release(self.output);
            }
            if !self.venc.is_null() {
                sys::obs_encoder_release(self.venc);
            }
            if !self.aenc.is_null() {
                sys::obs_encoder_release(self.aenc);
            }
        }
    }
}
