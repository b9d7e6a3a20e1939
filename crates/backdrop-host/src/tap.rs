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
use backdrop_obs::gfx::{Blend, Graphics, StageSurface, TexRender};
use backdrop_obs::source::{video_frame_time, SourceRef};
use backdrop_obs::sys;
use std::os::raw::{c_char, c_void};

/// Source id of the tap filter.
pub const TAP_ID: &std::ffi::CStr = c"backdrop_render_tap";

/// Per-instance graphics resources (created and used on the graphics thread; their drops enter
/// the graphics context themselves).
struct Tap {
    source: SourceRef,
    texrender: Option<TexRender>,
    stage: Option<StageSurface>,
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
        video_get_color_space: Some(tap_color_space),
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
        // libobs keeps the filter's own source alive until after destroy.
        let Some(source) = SourceRef::from_raw(source) else {
            return std::ptr::null_mut();
        };
        Box::into_raw(Box::new(Tap {
            source,
            texrender: None,
            stage: None,
        })) as *mut c_void
    })
    .unwrap_or(std::ptr::null_mut())
}

unsafe extern "C" fn tap_destroy(data: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        if !data.is_null() {
            drop(Box::from_raw(data as *mut Tap));
        }
    });
}

/// The tap passes its target's colour space through (an HDR source stays HDR for the filter
/// above it); it draws exactly what a disabled filter draws.
unsafe extern "C" fn tap_color_space(
    data: *mut c_void,
    count: usize,
    preferred: *const sys::gs_color_space,
) -> sys::gs_color_space {
    let target = (data as *mut Tap)
        .as_ref()
        .and_then(|tap| tap.source.filter_target());
    match target {
        // libobs' own list, passed on as it is.
        Some(t) => sys::obs_source_get_color_space(t.as_ptr(), count, preferred),
        None => sys::gs_color_space::GS_CS_SRGB,
    }
}

unsafe extern "C" fn tap_render(data: *mut c_void, _effect: *mut sys::gs_effect_t) {
    let Some(tap) = (data as *mut Tap).as_mut() else {
        return;
    };
    // video_render runs inside the graphics context.
    let g = Graphics::assume_entered();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if CAPTURE.tap_wanted() {
            let frame = capture_original(tap, &g);
            CAPTURE.tap_fulfil(frame);
        }
    }));
    // The pass-through: identical to what libobs does for a disabled filter.
    tap.source.skip_video_filter(&g);
}

/// Renders the filter target into the texrender and reads it back (graphics thread).
fn capture_original(tap: &mut Tap, g: &Graphics) -> Frame {
    let timestamp = video_frame_time();
    let empty = Frame {
        timestamp,
        ..Default::default()
    };
    let Some(target) = tap.source.filter_target() else {
        return empty;
    };
    let (w, h) = target.base_size();
    if w == 0 || h == 0 {
        return empty;
    }
    if tap.texrender.is_none() {
        tap.texrender = TexRender::new(g);
    }
    let Some(texrender) = tap.texrender.as_mut() else {
        return empty;
    };
    {
        let Some(_rendering) = texrender.begin(g, w, h) else {
            return empty;
        };
        let _blend = g.blend(Blend::One, Blend::Zero);
        tap.source.skip_video_filter(g);
    }
    let Some(texture) = texrender.texture() else {
        return empty;
    };
    if tap
        .stage
        .as_ref()
        .is_none_or(|s| (s.width, s.height) != (w, h))
    {
        tap.stage = StageSurface::new(g, w, h);
    }
    let Some(stage) = tap.stage.as_mut() else {
        return empty;
    };
    stage.stage(g, texture);
    stage
        .read(g, |data, linesize| {
            Frame::from_rows(data, linesize, w, h, timestamp)
        })
        .unwrap_or(empty)
}
