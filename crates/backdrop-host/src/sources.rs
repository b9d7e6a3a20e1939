//! Input sources, the filter chain on them, filter settings and the filter's statistics.

use crate::cli::{FilterChoice, InputSpec, Options, SetValue, WebcamFormat};
use crate::host::{cstr, from_c, source_type_registered};
use crate::tap;
use anyhow::{bail, Result};
use backdrop_obs::sys;
use std::os::raw::c_char;
use std::path::Path;

/// Filter type id the plugin registers.
pub const BACKDROP_ID: &str = "backdrop_filter";

pub use backdrop_obs::data::OwnedData as Data;

/// Sets a `--set` value with the matching `obs_data_set_*`.
pub fn set_value<'d>(d: &'d Data, key: &str, v: &SetValue) -> &'d Data {
    match v {
        SetValue::Int(i) => d.set_int(key, *i),
        SetValue::Float(f) => d.set_double(key, *f),
        SetValue::Bool(b) => d.set_bool(key, *b),
        SetValue::Str(s) => d.set_string(key, s),
    }
}

/// 0xRRGGBB plus alpha 0xFF as an OBS colour int (0xAABBGGRR).
pub fn obs_color_from_rgb(rgb: u32) -> i64 {
    obs_color_from_argb(0xFF00_0000 | rgb)
}

/// 0xAARRGGBB as an OBS colour int (0xAABBGGRR).
pub fn obs_color_from_argb(argb: u32) -> i64 {
    let a = argb >> 24;
    let r = (argb >> 16) & 0xFF;
    let g = (argb >> 8) & 0xFF;
    let b = argb & 0xFF;
    ((a << 24) | (b << 16) | (g << 8) | r) as i64
}

/// The first registered id of a colour source (libobs 29 registers color_source_v3).
fn color_source_id() -> Result<&'static str> {
    ["color_source_v3", "color_source_v2", "color_source"]
        .into_iter()
        .find(|id| source_type_registered(id))
        .ok_or_else(|| anyhow::anyhow!("no color source type registered (image-source module)"))
}

/// A new Backdrop filter with the run's filter settings (not added to any source); null when
/// libobs refuses.
pub fn make_backdrop_filter(o: &Options, name: &str) -> *mut sys::obs_source_t {
    let (id, n) = (cstr(BACKDROP_ID), cstr(name));
    let settings = filter_settings(o);
    unsafe {
        sys::obs_source_create(
            id.as_ptr(),
            n.as_ptr(),
            settings.as_ptr(),
            std::ptr::null_mut(),
        )
    }
}

/// A new private colour source of `width` x `height` px.
pub fn make_color_source(name: &str, width: u32, height: u32) -> Result<*mut sys::obs_source_t> {
    let d = Data::new();
    d.set_int("width", width as i64)
        .set_int("height", height as i64)
        .set_int("color", obs_color_from_argb(0xFF80_6040));
    let (id, n) = (cstr(color_source_id()?), cstr(name));
    let s = unsafe { sys::obs_source_create_private(id.as_ptr(), n.as_ptr(), d.as_ptr()) };
    if s.is_null() {
        bail!("cannot create a colour source");
    }
    Ok(s)
}

/// V4L2 fourcc codes (`v4l2_fourcc(a, b, c, d)`) as `v4l2_input` stores them.
const FOURCC_YUYV: i64 = 0x5659_5559;
const FOURCC_MJPG: i64 = 0x4750_4A4D;
/// `v4l2_input`'s `color_range` value for full range (`VIDEO_RANGE_FULL`).
const V4L2_COLOR_RANGE_FULL: i64 = 2;

/// Packs two values as `v4l2_input` stores resolution and frame interval in OBS 29
/// (`v4l2_pack_tuple`: `a << 16 | b`); OBS 30 and later read this form too.
fn v4l2_pack(a: u32, b: u32) -> i64 {
    ((a as i64) << 16) | (b as i64 & 0xFFFF)
}

/// Source id and settings for an input (`--source-set` values applied last).
fn input_settings(input: &InputSpec, o: &Options, looping: bool) -> Result<(&'static str, Data)> {
    let (id, d) = base_input_settings(input, o, looping)?;
    for (k, v) in &o.source_sets {
        set_value(&d, k, v);
    }
    Ok((id, d))
}

fn base_input_settings(
    input: &InputSpec,
    o: &Options,
    looping: bool,
) -> Result<(&'static str, Data)> {
    let d = Data::new();
    let id = match input {
        InputSpec::Image(p) => {
            d.set_string("file", &absolute(p));
            "image_source"
        }
        InputSpec::Video(p) => {
            d.set_string("local_file", &absolute(p))
                .set_bool("is_local_file", true)
                .set_bool("looping", looping)
                .set_bool("hw_decode", false)
                .set_bool("restart_on_activate", true)
                .set_bool("close_when_inactive", false)
                // Keep the last frame at the end, so late stills still show the video.
                .set_bool("clear_on_media_end", false);
            "ffmpeg_source"
        }
        InputSpec::Color {
            width,
            height,
            argb,
        } => {
            d.set_int("width", *width as i64)
                .set_int("height", *height as i64)
                .set_int("color", obs_color_from_argb(*argb));
            color_source_id()?
        }
        InputSpec::Webcam(device) => {
            d.set_string("device_id", &device.to_string_lossy());
            match o.webcam_format {
                Some(WebcamFormat::Yuyv) => {
                    d.set_int("pixelformat", FOURCC_YUYV);
                }
                Some(WebcamFormat::Mjpeg) => {
                    // libavcodec decodes MJPEG to full-range YUV; v4l2_input assumes limited
                    // range unless told, which crushes blacks and clips whites.
                    d.set_int("pixelformat", FOURCC_MJPG)
                        .set_int("color_range", V4L2_COLOR_RANGE_FULL);
                }
                None => {}
            }
            if let Some((w, h)) = o.webcam_size {
                d.set_int("resolution", v4l2_pack(w, h));
            }
            if let Some(fps) = o.webcam_fps {
                // timeperframe = 1 / fps
                d.set_int("framerate", v4l2_pack(1, fps));
            }
            "v4l2_input"
        }
    };
    Ok((id, d))
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// Builds the backdrop filter's settings from the options.
pub fn filter_settings(o: &Options) -> Data {
    let d = Data::new();
    if let Some(m) = &o.mode {
        d.set_string("mode", m);
    }
    if let Some(p) = &o.background_image {
        d.set_string("image_path", &absolute(p));
    }
    if let Some(n) = &o.background_source {
        d.set_string("background_source", n);
    }
    if let Some(p) = &o.background_video {
        d.set_string("background_video", &absolute(p));
    }
    if let Some(e) = &o.effect {
        d.set_string("effect", e);
    }
    if let Some(c) = o.color {
        d.set_int("color", obs_color_from_rgb(c));
    }
    if let Some(m) = &o.model {
        d.set_string("model", m);
    }
    for (k, v) in &o.sets {
        set_value(&d, k, v);
    }
    d
}

/// The public sources of `--add-source`, alive until [`remove_added_sources`].
static ADDED: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Creates the `--add-source` sources: public (listed, found by name), videos looping.
///
/// # Errors
/// A file is missing or a source cannot be created.
pub fn add_sources(o: &Options) -> Result<()> {
    for (name, spec) in &o.added_sources {
        if let InputSpec::Image(p) | InputSpec::Video(p) = spec {
            if !p.is_file() {
                bail!("--add-source {name}: {} not found", p.display());
            }
        }
        let (id, settings) = base_input_settings(spec, o, true)?;
        let (idc, namec) = (cstr(id), cstr(name));
        let source = unsafe {
            sys::obs_source_create(
                idc.as_ptr(),
                namec.as_ptr(),
                settings.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        if source.is_null() {
            bail!("--add-source {name}: obs_source_create({id}) failed");
        }
        ADDED.lock().unwrap().push(source as usize);
        if o.filter_added_sources {
            let filter = make_backdrop_filter(o, &format!("Backdrop on {name}"));
            if filter.is_null() {
                bail!("--add-source {name}: cannot create its Backdrop filter");
            }
            let mut added = ADDED_FILTERS.lock().unwrap();
            let channel = o.views + added.len() as u32;
            unsafe {
                sys::obs_source_filter_add(source, filter);
                sys::obs_set_output_source(channel, source);
            }
            added.push((source as usize, filter as usize, channel));
        }
    }
    Ok(())
}

/// The filters of `--filter-added-sources`: (source, filter, output channel).
static ADDED_FILTERS: std::sync::Mutex<Vec<(usize, usize, u32)>> =
    std::sync::Mutex::new(Vec::new());

/// The stats of each `--filter-added-sources` filter, in order.
pub fn added_filter_stats() -> Vec<serde_json::Value> {
    ADDED_FILTERS
        .lock()
        .unwrap()
        .iter()
        .map(|&(_, f, _)| get_stats(f as *mut sys::obs_source_t).unwrap_or_default())
        .collect()
}

/// Creates the public scene `name` holding `source` (`--add-scene-with-input`), released with the
/// `--add-source` sources.
///
/// # Errors
/// The scene cannot be created.
pub fn add_scene_with(name: &str, source: *mut sys::obs_source_t) -> Result<()> {
    let namec = cstr(name);
    unsafe {
        let scene = sys::obs_scene_create(namec.as_ptr());
        if scene.is_null() {
            bail!("obs_scene_create({name}) failed");
        }
        sys::obs_scene_add(scene, source);
        ADDED
            .lock()
            .unwrap()
            .push(sys::obs_scene_get_source(scene) as usize);
    }
    Ok(())
}

/// Name, `obs_source_active` and `obs_source_showing` of each `--add-source` source.
pub fn added_sources_state() -> serde_json::Value {
    let sources = ADDED.lock().unwrap().clone();
    sources
        .iter()
        .map(|&s| {
            let s = s as *mut sys::obs_source_t;
            unsafe {
                serde_json::json!({
                    "name": from_c(sys::obs_source_get_name(s)),
                    "active": sys::obs_source_active(s),
                    "showing": sys::obs_source_showing(s),
                })
            }
        })
        .collect()
}

/// Renames each `--add-source` source to "NAME (renamed)" (`obs_source_set_name`, as the user
/// renaming it). Returns how many there were.
pub fn rename_added_sources() -> usize {
    let sources = ADDED.lock().unwrap().clone();
    for &s in &sources {
        let s = s as *mut sys::obs_source_t;
        let name = from_c(unsafe { sys::obs_source_get_name(s) });
        let new = cstr(&format!("{name} (renamed)"));
        unsafe { sys::obs_source_set_name(s, new.as_ptr()) };
    }
    sources.len()
}

/// Removes the `--add-source` sources from the scene collection (`obs_source_remove`, as the
/// user deleting them) and releases them. Returns how many there were.
pub fn remove_added_sources() -> usize {
    for (s, f, channel) in std::mem::take(&mut *ADDED_FILTERS.lock().unwrap()) {
        unsafe {
            sys::obs_set_output_source(channel, std::ptr::null_mut());
            sys::obs_source_filter_remove(s as *mut sys::obs_source_t, f as *mut sys::obs_source_t);
            sys::obs_source_release(f as *mut sys::obs_source_t);
        }
    }
    let sources = std::mem::take(&mut *ADDED.lock().unwrap());
    for &s in &sources {
        let s = s as *mut sys::obs_source_t;
        unsafe {
            sys::obs_source_remove(s);
            sys::obs_source_release(s);
        }
    }
    sources.len()
}

/// An input source with its filter chain: `source <- tap? <- filter?`.
pub struct Chain {
    pub source: *mut sys::obs_source_t,
    pub tap: *mut sys::obs_source_t,
    pub filter: *mut sys::obs_source_t,
    pub filter_kind: FilterChoice,
}

impl Chain {
    /// Creates the input source (no filters yet). `index` makes names unique.
    pub fn create_source(
        input: &InputSpec,
        o: &Options,
        looping: bool,
        index: usize,
    ) -> Result<Chain> {
        if let InputSpec::Image(p) | InputSpec::Video(p) = input {
            if !p.is_file() {
                bail!("input {} not found", p.display());
            }
        }
        if let InputSpec::Webcam(p) = input {
            if !p.exists() {
                bail!("webcam {} not found", p.display());
            }
        }
        let (id, settings) = input_settings(input, o, looping)?;
        if !source_type_registered(id) {
            bail!("source type {id} is not registered (module not loaded?)");
        }
        let name = cstr(&format!("input-{index}"));
        let idc = cstr(id);
        let source = unsafe {
            sys::obs_source_create_private(idc.as_ptr(), name.as_ptr(), settings.as_ptr())
        };
        if source.is_null() {
            bail!("obs_source_create({id}) failed");
        }
        Ok(Chain {
            source,
            tap: std::ptr::null_mut(),
            filter: std::ptr::null_mut(),
            filter_kind: FilterChoice::None,
        })
    }

    /// Adds the tap (innermost) and then the chosen filter on top of it.
    pub fn add_filters(&mut self, o: &Options, with_tap: bool) -> Result<()> {
        if with_tap {
            self.tap = tap::create();
            if self.tap.is_null() {
                bail!("cannot create the render tap filter");
            }
            unsafe { sys::obs_source_filter_add(self.source, self.tap) };
        }
        self.filter_kind = o.filter;
        let (id, settings) = match o.filter {
            FilterChoice::None => return Ok(()),
            FilterChoice::Backdrop => (BACKDROP_ID, filter_settings(o)),
            FilterChoice::Passthrough => (passthrough_id()?, Data::new()),
        };
        let idc = cstr(id);
        let name = if o.filter == FilterChoice::Backdrop {
            c"Backdrop"
        } else {
            c"Passthrough"
        };
        self.filter = unsafe {
            sys::obs_source_create(
                idc.as_ptr(),
                name.as_ptr(),
                settings.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        if self.filter.is_null() {
            bail!("obs_source_create({id}) failed");
        }
        unsafe { sys::obs_source_filter_add(self.source, self.filter) };
        Ok(())
    }

    /// Applies `settings` to the filter with `obs_source_update` (no-op without a filter).
    pub fn update_filter(&self, settings: &Data) {
        if !self.filter.is_null() {
            unsafe { sys::obs_source_update(self.filter, settings.as_ptr()) };
        }
    }

    /// The filter's current user settings as JSON (None without a filter).
    pub fn filter_settings_json(&self) -> Option<String> {
        if self.filter.is_null() {
            return None;
        }
        let live = unsafe { Data::from_owned_raw(sys::obs_source_get_settings(self.filter)) }
            .unwrap_or_default();
        Some(live.json())
    }

    /// Restores the filter's settings to `json` (from [`Chain::filter_settings_json`]): the
    /// `keys` the caller changed are erased from the live settings (back to their defaults),
    /// then `json` is applied with `obs_source_update`.
    pub fn restore_filter_settings(&self, json: &str, keys: &[&str]) {
        if self.filter.is_null() {
            return;
        }
        let live = unsafe { Data::from_owned_raw(sys::obs_source_get_settings(self.filter)) }
            .unwrap_or_default();
        for k in keys {
            live.erase(k);
        }
        self.update_filter(&Data::from_json(json));
    }

    /// Updates the input source's own settings.
    pub fn update_source(&self, settings: &Data) {
        unsafe { sys::obs_source_update(self.source, settings.as_ptr()) };
    }

    /// Removes and releases the filter (fault injection); the tap and source stay.
    pub fn remove_filter(&mut self) {
        if !self.filter.is_null() {
            unsafe {
                sys::obs_source_filter_remove(self.source, self.filter);
                sys::obs_source_release(self.filter);
            }
            self.filter = std::ptr::null_mut();
        }
    }

    /// Current base size of the source.
    pub fn size(&self) -> (u32, u32) {
        unsafe {
            (
                sys::obs_source_get_base_width(self.source),
                sys::obs_source_get_base_height(self.source),
            )
        }
    }

    /// The filter's stats from its `get_stats` proc (None without a filter or that proc).
    pub fn stats(&self) -> Option<serde_json::Value> {
        if self.filter.is_null() || self.filter_kind != FilterChoice::Backdrop {
            return None;
        }
        get_stats(self.filter)
    }

    /// The filter's properties view as libobs builds it (`obs_source_properties`): for each
    /// property its name, localised description, type, visibility and, for lists, the items.
    pub fn properties(&self) -> Option<serde_json::Value> {
        if self.filter.is_null() || self.filter_kind != FilterChoice::Backdrop {
            return None;
        }
        let text = |p: *const std::os::raw::c_char| unsafe { backdrop_obs::from_cstr(p) };
        let mut out = Vec::new();
        unsafe {
            let props = sys::obs_source_properties(self.filter);
            if props.is_null() {
                return None;
            }
            let mut p = sys::obs_properties_first(props);
            while !p.is_null() {
                let kind = sys::obs_property_get_type(p);
                let mut entry = serde_json::json!({
                    "name": text(sys::obs_property_name(p)),
                    "description": text(sys::obs_property_description(p)),
                    "type": format!("{kind:?}"),
                    "visible": sys::obs_property_visible(p),
                });
                if kind == sys::obs_property_type::OBS_PROPERTY_LIST {
                    let items: Vec<_> = (0..sys::obs_property_list_item_count(p))
                        .map(|i| {
                            serde_json::json!({
                                "name": text(sys::obs_property_list_item_name(p, i)),
                                "value": text(sys::obs_property_list_item_string(p, i)),
                            })
                        })
                        .collect();
                    entry["items"] = serde_json::Value::Array(items);
                }
                out.push(entry);
                if !sys::obs_property_next(&mut p) {
                    break;
                }
            }
            sys::obs_properties_destroy(props);
        }
        Some(serde_json::Value::Array(out))
    }

    /// Media state of a video input.
    pub fn media_state(&self) -> sys::obs_media_state {
        unsafe { sys::obs_source_media_get_state(self.source) }
    }

    /// Media duration in ms (0 or less when unknown).
    pub fn media_duration_ms(&self) -> i64 {
        unsafe { sys::obs_source_media_get_duration(self.source) }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        unsafe {
            self.remove_filter();
            if !self.tap.is_null() {
                sys::obs_source_filter_remove(self.source, self.tap);
                sys::obs_source_release(self.tap);
            }
            sys::obs_source_release(self.source);
        }
    }
}

/// Id of the pass-through comparison filter: `color_filter_v2` (Color Correction) at defaults
/// is an identity colour matrix, a real render pass that leaves pixels unchanged.
fn passthrough_id() -> Result<&'static str> {
    ["color_filter_v2", "color_filter"]
        .into_iter()
        .find(|id| source_type_registered(id))
        .ok_or_else(|| {
            anyhow::anyhow!("color_filter_v2 not registered: obs-filters module not loaded")
        })
}

/// Calls the filter's `void get_stats(out string json)` proc and parses the JSON.
pub fn get_stats(filter: *mut sys::obs_source_t) -> Option<serde_json::Value> {
    unsafe {
        let ph = sys::obs_source_get_proc_handler(filter);
        if ph.is_null() {
            return None;
        }
        // calldata_init is inline in the headers: a zeroed struct is an empty calldata.
        let mut cd = sys::calldata_t::default();
        let ok = sys::proc_handler_call(ph, c"get_stats".as_ptr(), &mut cd);
        let mut text = None;
        if ok {
            let mut p: *const c_char = std::ptr::null();
            if sys::calldata_get_string(&cd, c"json".as_ptr(), &mut p) && !p.is_null() {
                text = Some(from_c(p));
            }
        }
        // calldata_free (inline): frees the stack unless it is caller-owned ("fixed").
        if !cd.fixed && !cd.stack.is_null() {
            sys::bfree(cd.stack as *mut _);
        }
        serde_json::from_str(&text?).ok()
    }
}

/// `mask_frames` from a stats object.
pub fn mask_frames(stats: &serde_json::Value) -> Option<u64> {
    stats.get("mask_frames").and_then(|v| v.as_u64())
}
