//! OBS's own virtual camera (`virtualcam_output`, module linux-v4l2) fed by the canvas.
//!
//! Facts of linux-v4l2 in OBS 29 this relies on: the output type is registered only when
//! `modinfo v4l2loopback` succeeds or the module is loaded; `start` loads a missing module with
//! `pkexec modprobe` (which would block a headless host on a password prompt, so the host checks
//! `/proc/modules` first), then takes the first `/dev/video*` in version order that accepts an
//! output format, sets YUYV at the canvas size and asks libobs to convert the canvas to YUY2.

use crate::host::{cstr, from_c};
use crate::logging;
use anyhow::{bail, Result};
use backdrop_obs::sys;
use std::time::{Duration, Instant};

/// Output type id registered by OBS's linux-v4l2 module.
pub const OUTPUT_ID: &str = "virtualcam_output";

/// What to run to make the virtual camera available, for error messages.
const MODPROBE_HINT: &str = "sudo modprobe v4l2loopback exclusive_caps=1 \
                             card_label='OBS Virtual Camera'";

/// A started virtual camera; stopped and released on drop.
pub struct VirtualCam {
    output: *mut sys::obs_output_t,
}

/// Whether the v4l2loopback kernel module is loaded (`/proc/modules`).
fn loopback_loaded() -> bool {
    std::fs::read_to_string("/proc/modules")
        .is_ok_and(|m| m.lines().any(|l| l.starts_with("v4l2loopback ")))
}

/// Whether an output type `id` is registered.
fn output_type_registered(id: &str) -> bool {
    let c = cstr(id);
    !unsafe { sys::obs_output_get_display_name(c.as_ptr()) }.is_null()
}

impl VirtualCam {
    /// Creates and starts the virtual camera on the current canvas (channel 0).
    ///
    /// # Errors
    /// The linux-v4l2 module did not register the output (v4l2loopback not installed), the
    /// kernel module is not loaded, or no loopback device could be opened for output (all in
    /// use); each error says what to do.
    pub fn start() -> Result<VirtualCam> {
        if !output_type_registered(OUTPUT_ID) {
            bail!(
                "OBS's virtual camera is not available: its linux-v4l2 module registers it only \
                 when the v4l2loopback kernel module is installed (Debian/Ubuntu package \
                 v4l2loopback-dkms); install it, then run: {MODPROBE_HINT}"
            );
        }
        if !loopback_loaded() {
            bail!(
                "the v4l2loopback kernel module is installed but not loaded; run: {MODPROBE_HINT}"
            );
        }
        let id = cstr(OUTPUT_ID);
        let output = unsafe {
            sys::obs_output_create(
                id.as_ptr(),
                c"backdrop-virtualcam".as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if output.is_null() {
            bail!("obs_output_create({OUTPUT_ID}) failed");
        }
        let cam = VirtualCam { output };
        if !unsafe { sys::obs_output_start(output) } {
            let last = from_c(unsafe { sys::obs_output_get_last_error(output) });
            bail!(
                "the virtual camera could not start: no free v4l2loopback device (each \
                 /dev/video* loopback device is in use or refused the YUYV output format){}; \
                 load the module with a free device: {MODPROBE_HINT}",
                if last.is_empty() {
                    String::new()
                } else {
                    format!(" ({last})")
                }
            );
        }
        logging::host("virtual camera started");
        Ok(cam)
    }

    /// Stops the output, waits (up to `timeout`) until libobs reports it inactive, releases it.
    fn stop_and_release(&mut self, timeout: Duration) {
        if self.output.is_null() {
            return;
        }
        unsafe {
            if sys::obs_output_active(self.output) {
                sys::obs_output_stop(self.output);
                let t0 = Instant::now();
                while sys::obs_output_active(self.output) && t0.elapsed() < timeout {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            sys::obs_output_release(self.output);
        }
        self.output = std::ptr::null_mut();
        logging::host("virtual camera stopped");
    }
}

impl Drop for VirtualCam {
    fn drop(&mut self) {
        self.stop_and_release(Duration::from_secs(10));
    }
}
