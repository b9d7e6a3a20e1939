//! A borrowed `obs_source_t`: the calls a filter makes on itself, its parent and its target.

use crate::gfx::{ColorSpace, Graphics};
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

    /// The colour space the source draws in when asked for one of `preferred`, in order of
    /// preference (`obs_source_get_color_space`, OBS 28 and later): an HDR media file answers
    /// [`ColorSpace::Extended709`] where that is offered, an SDR source [`ColorSpace::Srgb`].
    pub fn color_space(self, preferred: &[ColorSpace]) -> ColorSpace {
        let raw: Vec<sys::gs_color_space> = preferred.iter().map(|s| s.raw()).collect();
        // SAFETY: self is live; `raw` holds `raw.len()` values for the call's duration.
        ColorSpace::from_raw(unsafe {
            sys::obs_source_get_color_space(self.as_ptr(), raw.len(), raw.as_ptr())
        })
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
    /// (`obs_source_skip_video_filter`). Draws nothing while the filter has no parent or target:
    /// a filter removed from its source on another thread while it renders (libobs clears
    /// both, and `obs_source_skip_video_filter` reads the parent without checking it; found by
    /// the host's `--churn-filters`, a segmentation fault after ~100 removals).
    pub fn skip_video_filter(self, _g: &Graphics) {
        if self.filter_parent().is_none() || self.filter_target().is_none() {
            return;
        }
        // SAFETY: graphics context entered (_g); self is a live filter with a parent and a
        // target (checked just above).
        unsafe { sys::obs_source_skip_video_filter(self.as_ptr()) }
    }
}

/// The timestamp of the video frame being rendered, ns (`obs_get_video_frame_time`): the same
/// for every draw within one frame.
pub fn video_frame_time() -> u64 {
    // SAFETY: reads a libobs global; any thread.
    unsafe { sys::obs_get_video_frame_time() }
}

impl SourceRef {
    /// The source's name (`obs_source_get_name`); "" when it has none.
    pub fn name(self) -> String {
        // SAFETY: self is live; the name is copied before the call returns.
        unsafe { crate::from_cstr(sys::obs_source_get_name(self.as_ptr())) }
    }

    /// The source's settings object, shared with libobs (`obs_source_get_settings`): what is set
    /// in it is what the scene collection saves.
    pub fn settings(self) -> Option<crate::data::OwnedData> {
        // SAFETY: self is live; obs_source_get_settings returns a new reference we own.
        unsafe {
            crate::data::OwnedData::from_owned_raw(sys::obs_source_get_settings(self.as_ptr()))
        }
    }

    /// Whether the source was removed from the scene collection (`obs_source_removed`): its
    /// users are to let go of it.
    pub fn removed(self) -> bool {
        // SAFETY: self is live.
        unsafe { sys::obs_source_removed(self.as_ptr()) }
    }

    /// Whether the source is shown in any view (`obs_source_showing`).
    pub fn showing(self) -> bool {
        // SAFETY: self is live.
        unsafe { sys::obs_source_showing(self.as_ptr()) }
    }

    /// Whether the source is live in the main output (`obs_source_active`).
    pub fn active(self) -> bool {
        // SAFETY: self is live.
        unsafe { sys::obs_source_active(self.as_ptr()) }
    }

    /// Whether a filter is enabled (`obs_source_enabled`).
    pub fn enabled(self) -> bool {
        // SAFETY: self is live.
        unsafe { sys::obs_source_enabled(self.as_ptr()) }
    }

    /// Whether the source has video (`OBS_SOURCE_VIDEO`).
    pub fn has_video(self) -> bool {
        self.output_flags() & sys::OBS_SOURCE_VIDEO != 0
    }

    /// Adds (`true`) or takes back (`false`) one "showing" reference
    /// (`obs_source_inc_showing` / `obs_source_dec_showing`), as a view that draws the source
    /// does. Every increment must be matched by one decrement.
    pub fn set_showing(self, on: bool) {
        // SAFETY: self is live; the calls only count references.
        unsafe {
            if on {
                sys::obs_source_inc_showing(self.as_ptr())
            } else {
                sys::obs_source_dec_showing(self.as_ptr())
            }
        }
    }

    /// Adds (`true`) or takes back (`false`) one "active" reference (`obs_source_inc_active` /
    /// `obs_source_dec_active`), as the main output does for what it shows: a media source plays
    /// while active. Every increment must be matched by one decrement.
    pub fn set_active(self, on: bool) {
        // SAFETY: self is live; the calls only count references.
        unsafe {
            if on {
                sys::obs_source_inc_active(self.as_ptr())
            } else {
                sys::obs_source_dec_active(self.as_ptr())
            }
        }
    }

    /// Mutes or unmutes the source's audio (`obs_source_set_muted`).
    pub fn set_muted(self, muted: bool) {
        // SAFETY: self is live.
        unsafe { sys::obs_source_set_muted(self.as_ptr(), muted) }
    }

    /// Whether `other` is drawn when this source is: `other` is this source or in its active
    /// tree (`obs_source_enum_active_tree`: scene items, nested scenes, transitions).
    pub fn draws(self, other: SourceRef) -> bool {
        if self == other {
            return true;
        }
        unsafe extern "C" fn visit(
            _parent: *mut sys::obs_source_t,
            child: *mut sys::obs_source_t,
            param: *mut std::ffi::c_void,
        ) {
            // SAFETY: `param` is the (target, found) pair below, alive during the enumeration.
            let (target, found) = unsafe { &mut *(param as *mut (*mut sys::obs_source_t, bool)) };
            *found |= child == *target;
        }
        let mut state = (other.as_ptr(), false);
        // SAFETY: self is live; the callback only compares pointers and writes `state`, which
        // outlives the call.
        unsafe {
            sys::obs_source_enum_active_tree(
                self.as_ptr(),
                Some(visit),
                &mut state as *mut _ as *mut std::ffi::c_void,
            )
        };
        state.1
    }
}

/// A strong reference to a source, released on drop (`obs_source_release`).
pub struct Source(NonNull<sys::obs_source_t>);

// SAFETY: as SourceRef; the reference count is atomic in libobs.
unsafe impl Send for Source {}
// SAFETY: as SourceRef.
unsafe impl Sync for Source {}

impl Source {
    /// The public source (input or scene) named `name` (`obs_get_source_by_name`).
    pub fn by_name(name: &str) -> Option<Source> {
        let name = crate::cstring(name);
        // SAFETY: returns a new reference or NULL.
        NonNull::new(unsafe { sys::obs_get_source_by_name(name.as_ptr()) }).map(Source)
    }

    /// Creates a private source (`obs_source_create_private`: not saved in the scene collection,
    /// not listed to users) of type `id` with `settings`.
    pub fn create_private(
        id: &str,
        name: &str,
        settings: &crate::data::OwnedData,
    ) -> Option<Source> {
        let (id, name) = (crate::cstring(id), crate::cstring(name));
        // SAFETY: the strings and settings are valid for the call; returns a new reference or
        // NULL (unknown type).
        NonNull::new(unsafe {
            sys::obs_source_create_private(id.as_ptr(), name.as_ptr(), settings.as_ptr())
        })
        .map(Source)
    }

    /// A new strong reference to `source` (`obs_source_get_ref`); `None` when it is being
    /// destroyed.
    pub fn from_ref(source: SourceRef) -> Option<Source> {
        // SAFETY: source is live; returns a new reference or NULL.
        NonNull::new(unsafe { sys::obs_source_get_ref(source.as_ptr()) }).map(Source)
    }

    /// The source, borrowed for as long as this reference is held.
    pub fn get(&self) -> SourceRef {
        SourceRef(self.0)
    }

    /// A weak reference to the source (`obs_source_get_weak_source`).
    pub fn downgrade(&self) -> WeakSource {
        // SAFETY: self holds a reference; returns a new weak reference.
        WeakSource(
            NonNull::new(unsafe { sys::obs_source_get_weak_source(self.0.as_ptr()) })
                .expect("libobs returns a weak reference for a live source"),
        )
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        // SAFETY: releases the reference this value holds, once.
        unsafe { sys::obs_source_release(self.0.as_ptr()) }
    }
}

/// A weak reference to a source: does not keep it alive (`obs_weak_source_t`).
pub struct WeakSource(NonNull<sys::obs_weak_source_t>);

// SAFETY: weak references are reference-counted atomically in libobs.
unsafe impl Send for WeakSource {}
// SAFETY: as Send.
unsafe impl Sync for WeakSource {}

impl WeakSource {
    /// The source, if it still exists (`obs_weak_source_get_source`).
    pub fn upgrade(&self) -> Option<Source> {
        // SAFETY: self holds a weak reference; returns a new strong reference or NULL.
        NonNull::new(unsafe { sys::obs_weak_source_get_source(self.0.as_ptr()) }).map(Source)
    }
}

impl Drop for WeakSource {
    fn drop(&mut self) {
        // SAFETY: releases the weak reference this value holds, once.
        unsafe { sys::obs_weak_source_release(self.0.as_ptr()) }
    }
}

/// Names of the public sources with video, inputs then scenes (`obs_enum_sources`,
/// `obs_enum_scenes`), each list in libobs' order.
pub fn video_source_names() -> Vec<String> {
    unsafe extern "C" fn collect(
        param: *mut std::ffi::c_void,
        source: *mut sys::obs_source_t,
    ) -> bool {
        // SAFETY: `param` is the Vec below; libobs holds `source` during the callback.
        let names = unsafe { &mut *(param as *mut Vec<String>) };
        // SAFETY: as above.
        if let Some(s) = unsafe { SourceRef::from_raw(source) } {
            if s.has_video() {
                names.push(s.name());
            }
        }
        true
    }
    let mut names: Vec<String> = Vec::new();
    let param = &mut names as *mut Vec<String> as *mut std::ffi::c_void;
    // SAFETY: the callback only reads the source and pushes to `names`, which outlives the calls.
    unsafe {
        sys::obs_enum_sources(Some(collect), param);
        sys::obs_enum_scenes(Some(collect), param);
    }
    names
}
