//! A borrowed `obs_source_t`: the calls a filter makes on itself, its parent and its target.

use crate::gfx::Graphics;
use crate::sys;
use std::ptr::NonNull;

/// A source the caller holds alive (libobs keeps a filter's own source, parent and target alive
/// while the filter exists); no reference is taken or released.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SourceRef(NonNull<sys::obs_source_t>);

// SAFETY: libobs sources are reference-counted objects whose functions used here lock
// internally; the pointer is only passed back to libobs.
unsafe impl Send for SourceRef {}
// SAFETY: as Send.
unsafe impl Sync for SourceRef {}

impl SourceRef {
    /// Wraps a source pointer libobs passed in; `None` for NULL.
    ///
    /// # Safety
    /// The source must stay alive for as long as the `SourceRef` (or copies) are used.
    pub unsafe fn from_raw(ptr: *mut sys::obs_source_t) -> Option<Self> {
        NonNull::new(ptr).map(Self)
    }

    /// The raw pointer, for callbacks that register with libobs.
    pub fn as_ptr(self) -> *mut sys::obs_source_t {
        self.0.as_ptr()
    }

    /// The next source down a filter chain that this filter draws (`obs_filter_get_target`).
    pub fn filter_target(self) -> Option<SourceRef> {
        // SAFETY: self is live; the target lives as long as the filter chain holds it.
        NonNull::new(unsafe { sys::obs_filter_get_target(self.as_ptr()) }).map(Self)
    }

    /// The source the filter is attached to (`obs_filter_get_parent`).
    pub fn filter_parent(self) -> Option<SourceRef> {
        // SAFETY: as filter_target.
        NonNull::new(unsafe { sys::obs_filter_get_parent(self.as_ptr()) }).map(Self)
    }

    /// (width, height) of the source's own video, px (`obs_source_get_base_width/height`).
    pub fn base_size(self) -> (u32, u32) {
        // SAFETY: self is live.
        unsafe {
            (
                sys::obs_source_get_base_width(self.as_ptr()),
                sys::obs_source_get_base_height(self.as_ptr()),
            )
        }
    }

    fn output_flags(self) -> u32 {
        // SAFETY: self is live.
        unsafe { sys::obs_source_get_output_flags(self.as_ptr()) }
    }

    /// Whether frames are pushed to the source by a thread (webcam, media file:
    /// `OBS_SOURCE_ASYNC`).
    pub fn is_async(self) -> bool {
        self.output_flags() & sys::OBS_SOURCE_ASYNC != 0
    }

    /// Whether the source draws itself without an effect (`OBS_SOURCE_CUSTOM_DRAW`).
    pub fn is_custom_draw(self) -> bool {
        self.output_flags() & sys::OBS_SOURCE_CUSTOM_DRAW != 0
    }

    /// Draws the source with its filters (`obs_source_video_render`).
    pub fn video_render(self, _g: &Graphics) {
        // SAFETY: graphics context entered (_g); self is live.
        unsafe { sys::obs_source_video_render(self.as_ptr()) }
    }

    /// Draws the source's own video with the default effect (`obs_source_default_render`), for
    /// a synchronous source without custom draw.
    pub fn default_render(self, _g: &Graphics) {
        // SAFETY: graphics context entered (_g); self is live.
        unsafe { sys::obs_source_default_render(self.as_ptr()) }
    }

    /// Tells libobs to draw the filter's target unfiltered this frame
    /// (`obs_source_skip_video_filter`).
    pub fn skip_video_filter(self, _g: &Graphics) {
        // SAFETY: graphics context entered (_g); self is a live filter.
        unsafe { sys::obs_source_skip_video_filter(self.as_ptr()) }
    }
}

/// The timestamp of the video frame being rendered, ns (`obs_get_video_frame_time`): the same
/// for every draw within one frame.
pub fn video_frame_time() -> u64 {
    // SAFETY: reads a libobs global; any thread.
    unsafe { sys::obs_get_video_frame_time() }
}
