//! libobs lifetime: X display, `obs_startup`, video/audio reset, module loading, shutdown.
//!
//! Facts of headless libobs 29 this relies on (see ../shared/design.md): the X11 EGL platform is
//! required (GLX asserts), modules are loaded one by one (`obs_load_all_modules` aborts headless
//! because frontend-tools needs Qt), audio must be reset before recording works.

use crate::cli::Fps;
use anyhow::{bail, Context, Result};
use backdrop_obs::sys;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::path::Path;

/// NUL-terminated copy of `s` for a C call (interior NULs are replaced, never a panic).
pub fn cstr(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

/// Converts a C string from libobs to an owned `String` (empty for NULL).
pub fn from_c(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// An X display opened with `XOpenDisplay(NULL)`, via `dlopen("libX11.so.6")` so the binary needs
/// no X11 development files at link time.
pub struct XDisplay {
    display: *mut c_void,
    close: unsafe extern "C" fn(*mut c_void) -> i32,
}

impl XDisplay {
    /// Opens the display named by `$DISPLAY`.
    pub fn open() -> Result<Self> {
        let name = std::env::var("DISPLAY").unwrap_or_default();
        if name.is_empty() {
            bail!("DISPLAY is not set: libobs needs an X display; run under `xvfb-run -a`");
        }
        unsafe {
            let lib = libc::dlopen(c"libX11.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
            if lib.is_null() {
                bail!("cannot load libX11.so.6 (install libx11-6)");
            }
            let open = libc::dlsym(lib, c"XOpenDisplay".as_ptr());
            let close = libc::dlsym(lib, c"XCloseDisplay".as_ptr());
            if open.is_null() || close.is_null() {
                bail!("libX11.so.6 lacks XOpenDisplay/XCloseDisplay");
            }
            let open: unsafe extern "C" fn(*const c_char) -> *mut c_void =
                std::mem::transmute(open);
            let close: unsafe extern "C" fn(*mut c_void) -> i32 = std::mem::transmute(close);
            let display = open(std::ptr::null());
            if display.is_null() {
                bail!("XOpenDisplay({name:?}) failed: is the X server running?");
            }
            Ok(XDisplay { display, close })
        }
    }
}

impl Drop for XDisplay {
    fn drop(&mut self) {
        unsafe { (self.close)(self.display) };
    }
}

/// Sets the platform and starts libobs in `locale` (e.g. `en-US`: the language modules are
/// given with `obs_module_set_locale`). The display must outlive `shutdown`.
pub fn startup(display: &XDisplay, locale: &str) -> Result<()> {
    let locale = cstr(locale);
    unsafe {
        sys::obs_set_nix_platform(sys::obs_nix_platform_type::OBS_NIX_PLATFORM_X11_EGL);
        sys::obs_set_nix_platform_display(display.display);
        if !sys::obs_startup(locale.as_ptr(), std::ptr::null(), std::ptr::null_mut()) {
            bail!("obs_startup failed");
        }
    }
    Ok(())
}

/// Resets the video pipeline: OpenGL, `width` x `height` canvas and output, BGRA, sRGB, full
/// range. Fails while any output or raw video callback is active.
pub fn reset_video(width: u32, height: u32, fps: Fps) -> Result<()> {
    let mut ovi = sys::obs_video_info {
        graphics_module: c"libobs-opengl".as_ptr(),
        fps_num: fps.num,
        fps_den: fps.den,
        base_width: width,
        base_height: height,
        output_width: width,
        output_height: height,
        output_format: sys::video_format::VIDEO_FORMAT_BGRA,
        adapter: 0,
        gpu_conversion: true,
        colorspace: sys::video_colorspace::VIDEO_CS_SRGB,
        range: sys::video_range_type::VIDEO_RANGE_FULL,
        scale_type: sys::obs_scale_type::OBS_SCALE_BILINEAR,
    };
    let rc = unsafe { sys::obs_reset_video(&mut ovi) };
    let why = match rc {
        0 => return Ok(()),
        -2 => "not supported (no usable OpenGL: is the X server EGL-capable?)",
        -3 => "invalid parameters",
        -4 => "video is active (an output or raw callback is running)",
        -5 => "graphics module libobs-opengl not found",
        _ => "generic failure",
    };
    bail!(
        "obs_reset_video({width}x{height} @ {}/{}) failed: {rc} ({why})",
        fps.num,
        fps.den
    )
}

/// Resets audio to 48 kHz stereo (needed before any recording output starts).
pub fn reset_audio() -> Result<()> {
    let oai = sys::obs_audio_info {
        samples_per_sec: 48000,
        speakers: sys::speaker_layout::SPEAKERS_STEREO,
    };
    if !unsafe { sys::obs_reset_audio(&oai) } {
        bail!("obs_reset_audio(48000, stereo) failed");
    }
    Ok(())
}

/// Opens and initialises one module: `binary` is the `.so`, `data` its data folder.
pub fn load_module(binary: &Path, data: &Path) -> Result<()> {
    if !binary.is_file() {
        bail!("OBS module {} not found", binary.display());
    }
    let bin = cstr(&binary.to_string_lossy());
    let dat = cstr(&data.to_string_lossy());
    let mut module: *mut sys::obs_module_t = std::ptr::null_mut();
    let rc = unsafe { sys::obs_open_module(&mut module, bin.as_ptr(), dat.as_ptr()) };
    if rc != 0 || module.is_null() {
        let why = match rc {
            -2 => "file not found or not loadable (see obs.log for the dlopen error)",
            -3 => "missing exports (obs_module_load/obs_module_set_pointer)",
            -4 => "incompatible libobs version",
            _ => "error",
        };
        bail!("obs_open_module({}) failed: {rc} ({why})", binary.display());
    }
    if !unsafe { sys::obs_init_module(module) } {
        bail!(
            "obs_init_module({}) failed: its obs_module_load returned false (see obs.log)",
            binary.display()
        );
    }
    Ok(())
}

/// Loads a system module `name` from `bin_dir/name.so` with data `data_dir/name`.
pub fn load_system_module(name: &str, bin_dir: &Path, data_dir: &Path) -> Result<()> {
    load_module(&bin_dir.join(format!("{name}.so")), &data_dir.join(name))
        .with_context(|| format!("loading OBS module {name}"))
}

/// Whether a filter type `id` is registered (`obs_enum_filter_types`).
pub fn filter_type_registered(id: &str) -> bool {
    let mut idx = 0;
    loop {
        let mut p: *const c_char = std::ptr::null();
        if !unsafe { sys::obs_enum_filter_types(idx, &mut p) } {
            return false;
        }
        if from_c(p) == id {
            return true;
        }
        idx += 1;
    }
}

/// Whether any source type `id` is registered (inputs, filters, transitions).
pub fn source_type_registered(id: &str) -> bool {
    let c = cstr(id);
    !unsafe { sys::obs_source_get_display_name(c.as_ptr()) }.is_null()
}

/// Shuts libobs down and returns the number of leaked bmem allocations.
pub fn shutdown() -> i64 {
    unsafe {
        sys::obs_shutdown();
        sys::bnum_allocs() as i64
    }
}
