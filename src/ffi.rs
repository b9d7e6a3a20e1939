//! Everything libobs calls: the module entry points it looks up with `dlsym`, the filter's
//! `obs_source_info` and its `extern "C"` callbacks. Each callback turns libobs' raw pointers
//! into the safe types of `backdrop-obs`, then calls the filter's safe code inside [`guard`], so
//! a panic never unwinds into libobs. This is the only file of the plugin with `unsafe`.

use crate::filter::{self, Filter};
use backdrop_obs::data::Data;
use backdrop_obs::gfx::Graphics;
use backdrop_obs::source::SourceRef;
use backdrop_obs::{cstring, module, sys};
use std::ffi::c_void;
use std::os::raw::c_char;

/// The filter's id, as stored in scene collections.
pub const FILTER_ID: &std::ffi::CStr = c"backdrop_filter";

/// `(MAJOR << 24) | (MINOR << 16) | PATCH` of the libobs headers this plugin was built against.
pub const LIBOBS_API_VER: u32 = (sys::LIBOBS_API_MAJOR_VER << 24)
    | (sys::LIBOBS_API_MINOR_VER << 16)
    | sys::LIBOBS_API_PATCH_VER;

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `f`, turning a panic into one error line in the OBS log and `fallback`: a bug in the
/// filter must never take OBS down.
fn guard<R>(what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            log::error!("internal error in {what}: {}", panic_message(&*payload));
            fallback
        }
    }
}

#[no_mangle]
pub extern "C" fn obs_module_set_pointer(module: *mut sys::obs_module_t) {
    module::set_pointer(module);
}

#[no_mangle]
pub extern "C" fn obs_current_module() -> *mut sys::obs_module_t {
    module::pointer()
}

#[no_mangle]
pub extern "C" fn obs_module_ver() -> u32 {
    LIBOBS_API_VER
}

/// Called by libobs with the UI locale (e.g. `en-US`).
///
/// # Safety
/// `locale` is a NUL-terminated string from libobs.
#[no_mangle]
pub unsafe extern "C" fn obs_module_set_locale(locale: *const c_char) {
    // SAFETY: libobs passes a NUL-terminated locale name.
    guard("obs_module_set_locale", (), || unsafe {
        module::set_locale(locale)
    });
}

#[no_mangle]
pub extern "C" fn obs_module_free_locale() {
    guard("obs_module_free_locale", (), module::free_locale);
}

#[no_mangle]
pub extern "C" fn obs_module_name() -> *const c_char {
    c"obs-backdrop".as_ptr()
}

#[no_mangle]
pub extern "C" fn obs_module_description() -> *const c_char {
    c"Background removal, blur and replacement with real-time person segmentation".as_ptr()
}

#[no_mangle]
pub extern "C" fn obs_module_load() -> bool {
    guard("obs_module_load", false, || {
        backdrop_obs::log::install();
        register();
        log::info!(
            "loaded version {} ({}, built against libobs {}.{}.{}), locale {}",
            env!("CARGO_PKG_VERSION"),
            env!("BACKDROP_COMMIT"),
            sys::LIBOBS_API_MAJOR_VER,
            sys::LIBOBS_API_MINOR_VER,
            sys::LIBOBS_API_PATCH_VER,
            module::locale()
        );
        true
    })
}

#[no_mangle]
pub extern "C" fn obs_module_unload() {
    guard("obs_module_unload", (), || log::info!("unloaded"));
}

/// Registers `backdrop_filter` with libobs.
fn register() {
    let info = sys::obs_source_info {
        id: FILTER_ID.as_ptr(),
        type_: sys::obs_source_type::OBS_SOURCE_TYPE_FILTER,
        // OBS_SOURCE_SRGB: the filter handles linear and sRGB-encoded targets itself (libobs
        // then draws it with linear sRGB on and without the legacy conversion).
        output_flags: sys::OBS_SOURCE_VIDEO | sys::OBS_SOURCE_SRGB,
        get_name: Some(get_name),
        create: Some(create),
        destroy: Some(destroy),
        get_defaults: Some(get_defaults),
        get_properties: Some(get_properties),
        update: Some(update),
        video_render: Some(video_render),
        video_tick: Some(video_tick),
        // Called on the graphics thread's tick once per new frame of an async parent (webcam,
        // media source): the render path hands only new frames to the worker.
        filter_video: Some(filter_video),
        video_get_color_space: Some(video_get_color_space),
        ..Default::default()
    };
    // SAFETY: libobs copies the struct; the id and callbacks are 'static.
    unsafe { sys::obs_register_source_s(&info, std::mem::size_of::<sys::obs_source_info>()) };
}

/// The filter behind a callback's `data` pointer (made by `create`, freed by `destroy`).
///
/// # Safety
/// `data` is NULL or the pointer `create` returned, not yet destroyed.
unsafe fn filter<'a>(data: *mut c_void) -> Option<&'a Filter> {
    // SAFETY: the caller's contract; libobs never calls another callback during destroy.
    unsafe { (data as *const Filter).as_ref() }
}

unsafe extern "C" fn get_name(_type_data: *mut c_void) -> *const c_char {
    guard("get_name", c"Backdrop".as_ptr(), || {
        module::text("Backdrop")
    })
}

unsafe extern "C" fn create(
    settings: *mut sys::obs_data_t,
    source: *mut sys::obs_source_t,
) -> *mut c_void {
    guard("create", std::ptr::null_mut(), || {
        // SAFETY: libobs keeps the filter's own source alive until after destroy.
        let Some(source) = (unsafe { SourceRef::from_raw(source) }) else {
            return std::ptr::null_mut();
        };
        match Filter::new(source) {
            Ok(f) => {
                // SAFETY: the settings are lent for this call.
                if let Some(data) = unsafe { Data::from_raw(settings) } {
                    f.update(filter::settings::read(&data));
                }
                let raw = Box::into_raw(Box::new(f));
                // SAFETY: `raw` lives until destroy, which runs after the proc handler is gone.
                unsafe { register_procs(source, raw) };
                raw as *mut c_void
            }
            Err(e) => {
                log::error!("{e}");
                std::ptr::null_mut()
            }
        }
    })
}

unsafe extern "C" fn destroy(data: *mut c_void) {
    guard("destroy", (), || {
        if !data.is_null() {
            // Joins the worker (it finishes the frame in flight, a few ms) and frees GPU objects.
            // SAFETY: made by Box::into_raw in create; libobs calls destroy once.
            drop(unsafe { Box::from_raw(data as *mut Filter) });
        }
    })
}

unsafe extern "C" fn get_defaults(settings: *mut sys::obs_data_t) {
    guard("get_defaults", (), || {
        // SAFETY: the settings are lent for this call.
        if let Some(data) = unsafe { Data::from_raw(settings) } {
            filter::settings::write_defaults(&data);
        }
    })
}

unsafe extern "C" fn get_properties(data: *mut c_void) -> *mut sys::obs_properties_t {
    guard("get_properties", std::ptr::null_mut(), || {
        // SAFETY: `data` is this filter's (or NULL when OBS asks without an instance).
        filter::properties::build(unsafe { filter(data) }).into_raw()
    })
}

unsafe extern "C" fn update(data: *mut c_void, settings: *mut sys::obs_data_t) {
    guard("update", (), || {
        // SAFETY: `data` is this filter's; the settings are lent for this call.
        if let (Some(f), Some(s)) = unsafe { (filter(data), Data::from_raw(settings)) } {
            f.update(filter::settings::read(&s));
        }
    })
}

/// `video_render`, on the graphics thread with the graphics context entered. A panic latches the
/// filter into pass-through: it is logged once and shown in the status, never repeated per frame.
unsafe extern "C" fn video_render(data: *mut c_void, _effect: *mut sys::gs_effect_t) {
    // SAFETY: `data` is this filter's.
    let Some(f) = (unsafe { filter(data) }) else {
        return;
    };
    // SAFETY: libobs calls video_render inside the graphics context.
    let g = unsafe { Graphics::assume_entered() };
    let drawn = !f.panicked()
        && match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.render(&g))) {
            Ok(drawn) => drawn,
            Err(payload) => {
                // The render path's guards (texrender, blend state) were dropped while unwinding.
                f.latch_panic(&panic_message(&*payload));
                false
            }
        };
    if !drawn {
        // Not ready, or a bug: the video never stops because of us.
        f.source().skip_video_filter(&g);
    }
}

/// `video_tick`, once per frame on the graphics thread.
unsafe extern "C" fn video_tick(data: *mut c_void, _seconds: f32) {
    guard("video_tick", (), || {
        // SAFETY: `data` is this filter's.
        if let Some(f) = unsafe { filter(data) } {
            f.tick();
        }
    })
}

/// `video_get_color_space`: the filter draws in its target's colour space, so HDR and 16-bit
/// canvases keep their range through it; libobs converts where the caller prefers another.
unsafe extern "C" fn video_get_color_space(
    data: *mut c_void,
    _count: usize,
    _preferred: *const sys::gs_color_space,
) -> sys::gs_color_space {
    guard(
        "video_get_color_space",
        sys::gs_color_space::GS_CS_SRGB,
        || {
            // SAFETY: `data` is this filter's.
            unsafe { filter(data) }
                .map_or(sys::gs_color_space::GS_CS_SRGB, |f| f.color_space().raw())
        },
    )
}

/// `filter_video`: an async parent chose a new frame for display this tick. Counts it and passes
/// the frame on unchanged (libobs holds a reference around the call).
unsafe extern "C" fn filter_video(
    data: *mut c_void,
    frame: *mut sys::obs_source_frame,
) -> *mut sys::obs_source_frame {
    // SAFETY: `data` is this filter's.
    if let Some(f) = unsafe { filter(data) } {
        f.new_async_frame();
    }
    frame
}

/// Registers `void get_stats(out string json)` on the filter's procedure handler.
///
/// # Safety
/// `filter` must stay valid while the source (and so its procedure handler) lives.
unsafe fn register_procs(source: SourceRef, filter: *mut Filter) {
    // SAFETY: the source is live; its handler lives as long as it does.
    let ph = unsafe { sys::obs_source_get_proc_handler(source.as_ptr()) };
    if ph.is_null() {
        return;
    }
    let decl = cstring("void get_stats(out string json)");
    // SAFETY: libobs parses and copies the declaration; `filter` outlives the handler (contract).
    unsafe {
        sys::proc_handler_add(
            ph,
            decl.as_ptr(),
            Some(get_stats_proc),
            filter as *mut c_void,
        )
    };
}

unsafe extern "C" fn get_stats_proc(data: *mut c_void, cd: *mut sys::calldata_t) {
    guard("get_stats", (), || {
        // SAFETY: `data` is the filter registered in register_procs.
        if let Some(f) = unsafe { filter(data) } {
            let json = cstring(&f.stats_json());
            let bytes = json.as_bytes_with_nul();
            // SAFETY: libobs copies `bytes` into the call data.
            unsafe {
                sys::calldata_set_data(
                    cd,
                    c"json".as_ptr(),
                    bytes.as_ptr() as *const c_void,
                    bytes.len(),
                )
            };
        }
    })
}
