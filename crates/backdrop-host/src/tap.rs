//! The "tap": a tiny video filter this host registers itself and puts *first* in the source's
//! filter chain (closest to the source, below the backdrop filter). It is how stills get their
//! original half: the exact input of the backdrop filter, from the same rendered frame as the
//! output it is paired with.
//!
//! Why a filter: libobs has no API to render a source without its filters from outside
//! (`obs_source_video_render` always runs the chain from `filters.array[0]`), a second source
//! instance of a video is not frame-synchronous, and toggling the filter would change the output.
//! A filter first in the chain sees the parent's unfiltered render.
//!
//! Every render it forwards with `obs_source_skip_video_filter` (exactly what a disabled filter
//! does, so the output is unchanged). Only when a capture is requested it *additionally* renders
//! its target into a BGRA `gs_texrender` (blend ONE/ZERO over transparent black, as
//! `obs_source_process_filter_begin` does), stages and maps it, and hands the pixels with the
//! frame's video time to [`crate::capture::CAPTURE`].

use crate::capture::{Frame, CAPTURE};
use backdrop_obs::sys;
use std::os::raw::{c_char, c_void};

/// Source id of the tap filter.
pub const TAP_ID: &std::ffi::CStr = c"backdrop_render_tap";

/// Per-instance graphics resources (created and used on the graphics thread).
struct Tap {
    source: *mut sys::obs_source_t,
    texrender: *mut sys::gs_texrender_t,
    stage: *mut sys::gs_stagesurf_t,
    stage_size: (u32, u32),
}

/// Registers the tap filter type. Call once after `obs_startup`.
pub fn register() {
    let info = sys::obs_source_info {
        id: TAP_ID.as_ptr(),
        type_: sys::obs_source_type::OBS_SOURCE_TYPE_FILTER,
        output_flags: sys::OBS_SOURCE_VIDEO,
        get_name: Some(tap_name),
        create: Some(tap_create),
        destroy: Some(tap_destroy),
        video_render: Some(tap_render),
        ..Default::default()
    };
    unsafe { sys::obs_register_source_s(&info, std::mem::size_of::<sys::obs_source_info>()) };
}

/// Creates a tap filter instance (to be added with `obs_source_filter_add`).
pub fn create() -> *mut sys::obs_source_t {
    unsafe {
        sys::obs_source_create_private(
            TAP_ID.as_ptr(),
            c"Render tap".as_ptr(),
            std::ptr::null_mut(),
        )
    }
}

unsafe extern "C" fn tap_name(_type_data: *mut c_void) -> *const c_char {
    c"Backdrop render tap".as_ptr()
}

unsafe extern "C" fn tap_create(
    _settings: *mut sys::obs_data_t,
    source: *mut sys::obs_source_t,
) -> *mut c_void {
    std::panic::catch_unwind(|| {
        Box::into_raw(Box::new(Tap {
            source,
            texrender: std::ptr::null_mut(),
            stage: std::ptr::null_mut(),
            stage_size: (0, 0),
        })) as *mut c_void
    })
    .unwrap_or(std::ptr::null_mut())
}

unsafe extern "C" fn tap_destroy(data: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        if data.is_null() {
            return;
        }
        let tap = Box::from_raw(data as *mut Tap);
        if !tap.texrender.is_null() || !tap.stage.is_null() {
            sys::obs_enter_graphics();
            if !tap.texrender.is_null() {
                sys::gs_texrender_destroy(tap.texrender);
            }
            if !tap.stage.is_null() {
                sys::gs_stagesurface_destroy(tap.stage);
            }
            sys::obs_leave_graphics();
        }
    });
}

unsafe extern "C" fn tap_render(data: *mut c_void, _effect: *mut sys::gs_effect_t) {
    let tap = data as *mut Tap;
    if tap.is_null() {
        return;
    }
    let source = (*tap).source;
    let _ = std::panic::catch_unwind(|| {
        if CAPTURE.tap_wanted() {
            let frame = capture_original(&mut *tap);
            CAPTURE.tap_fulfil(frame);
        }
    });
    // The pass-through: identical to what libobs does for a disabled filter.
    sys::obs_source_skip_video_filter(source);
}

/// Renders the filter target into the texrender and reads it back (graphics thread).
unsafe fn capture_original(tap: &mut Tap) -> Frame {
    let timestamp = sys::obs_get_video_frame_time();
    let empty = Frame {
        timestamp,
        ..Default::default()
    };
    let target = sys::obs_filter_get_target(tap.source);
    if target.is_null() {
        return empty;
    }
    let (w, h) = (
        sys::obs_source_get_base_width(target),
        sys::obs_source_get_base_height(target),
    );
    if w == 0 || h == 0 {
        return empty;
    }
    if tap.texrender.is_null() {
        tap.texrender = sys::gs_texrender_create(
            sys::gs_color_format::GS_BGRA,
            sys::gs_zstencil_format::GS_ZS_NONE,
        );
        if tap.texrender.is_null() {
            return empty;
        }
    }
    sys::gs_texrender_reset(tap.texrender);
    if !sys::gs_texrender_begin(tap.texrender, w, h) {
        return empty;
    }
    let clear = sys::vec4::default();
    sys::gs_clear(sys::GS_CLEAR_COLOR, &clear, 0.0, 0);
    sys::gs_ortho(0.0, w as f32, 0.0, h as f32, -100.0, 100.0);
    sys::gs_blend_state_push();
    sys::gs_blend_function(
        sys::gs_blend_type::GS_BLEND_ONE,
        sys::gs_blend_type::GS_BLEND_ZERO,
    );
    sys::obs_source_skip_video_filter(tap.source);
    sys::gs_blend_state_pop();
    sys::gs_texrender_end(tap.texrender);

    let tex = sys::gs_texrender_get_texture(tap.texrender);
    if tex.is_null() {
        return empty;
    }
    if tap.stage.is_null() || tap.stage_size != (w, h) {
        if !tap.stage.is_null() {
            sys::gs_stagesurface_destroy(tap.stage);
        }
        tap.stage = sys::gs_stagesurface_create(w, h, sys::gs_color_format::GS_BGRA);
        tap.stage_size = (w, h);
        if tap.stage.is_null() {
            return empty;
        }
    }
    sys::gs_stage_texture(tap.stage, tex);
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut linesize: u32 = 0;
    if !sys::gs_stagesurface_map(tap.stage, &mut data, &mut linesize) {
        return empty;
    }
    let frame = Frame::copy_from(data, linesize as usize, w, h, timestamp);
    sys::gs_stagesurface_unmap(tap.stage);
    frame
}
