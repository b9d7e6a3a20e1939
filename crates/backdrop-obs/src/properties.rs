//! A builder for a source's properties view (`obs_properties_t`). libobs copies every name and
//! label passed in, so plain `&str`s do.

use crate::data::Data;
use crate::{cstring, sys};
use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// What runs when a property's value changes in the view: it may show or hide other properties;
/// returns whether the view must be refreshed.
pub type Modified = fn(&mut PropertiesRef, &Data) -> bool;

/// A properties view being built; given to libobs with [`Properties::into_raw`].
pub struct Properties(NonNull<sys::obs_properties_t>);

/// A properties view lent by libobs to a [`Modified`] callback.
pub struct PropertiesRef<'a> {
    ptr: NonNull<sys::obs_properties_t>,
    _lent: PhantomData<&'a ()>,
}

/// A list property being filled ([`Properties::add_list`]).
pub struct List<'a> {
    ptr: NonNull<sys::obs_property_t>,
    _props: PhantomData<&'a mut Properties>,
}

impl List<'_> {
    /// Appends an item showing `label` that stores `value`.
    pub fn add(&mut self, label: &str, value: &str) -> &mut Self {
        let (l, v) = (cstring(label), cstring(value));
        // SAFETY: live list property; libobs copies both strings.
        unsafe { sys::obs_property_list_add_string(self.ptr.as_ptr(), l.as_ptr(), v.as_ptr()) };
        self
    }
}

fn property(
    props: NonNull<sys::obs_properties_t>,
    name: &str,
) -> Option<NonNull<sys::obs_property_t>> {
    let n = cstring(name);
    // SAFETY: live properties object; returns a property it owns or NULL.
    NonNull::new(unsafe { sys::obs_properties_get(props.as_ptr(), n.as_ptr()) })
}

fn set_visible(props: NonNull<sys::obs_properties_t>, name: &str, visible: bool) {
    if let Some(p) = property(props, name) {
        // SAFETY: a live property of a live properties object.
        unsafe { sys::obs_property_set_visible(p.as_ptr(), visible) };
    }
}

impl PropertiesRef<'_> {
    /// Shows or hides the property `name` (no-op when there is none).
    pub fn set_visible(&mut self, name: &str, visible: bool) {
        set_visible(self.ptr, name, visible);
    }
}

/// The C side of [`Properties::on_modified`]: `private` is the [`Modified`] function.
unsafe extern "C" fn modified_trampoline(
    private: *mut c_void,
    props: *mut sys::obs_properties_t,
    _property: *mut sys::obs_property_t,
    settings: *mut sys::obs_data_t,
) -> bool {
    // SAFETY: `private` was made from a `Modified` fn pointer in on_modified.
    let f: Modified = unsafe { std::mem::transmute::<*mut c_void, Modified>(private) };
    // SAFETY: libobs lends the settings for the duration of this call.
    let (Some(ptr), Some(data)) = (NonNull::new(props), unsafe { Data::from_raw(settings) }) else {
        return false;
    };
    let mut view = PropertiesRef {
        ptr,
        _lent: PhantomData,
    };
    // A panic must not unwind into libobs' C frames.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut view, &data))).unwrap_or_else(
        |_| {
            log::error!("internal error in a properties callback");
            false
        },
    )
}

impl Default for Properties {
    fn default() -> Self {
        Self::new()
    }
}

impl Properties {
    /// An empty view.
    ///
    /// # Panics
    /// When libobs cannot allocate it (it aborts first).
    pub fn new() -> Self {
        // SAFETY: plain allocation in libobs.
        Self(NonNull::new(unsafe { sys::obs_properties_create() }).expect("obs_properties_create"))
    }

    /// Hands the view to libobs (the return value of `get_properties`).
    pub fn into_raw(self) -> *mut sys::obs_properties_t {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// A read-only text line; `error` shows it as an error.
    pub fn add_info(&mut self, name: &str, text: &str, error: bool) {
        let (n, t) = (cstring(name), cstring(text));
        // SAFETY: live object; libobs copies the strings.
        unsafe {
            let p = sys::obs_properties_add_text(
                self.0.as_ptr(),
                n.as_ptr(),
                t.as_ptr(),
                sys::obs_text_type::OBS_TEXT_INFO,
            );
            if error && !p.is_null() {
                sys::obs_property_text_set_info_type(
                    p,
                    sys::obs_text_info_type::OBS_TEXT_INFO_ERROR,
                );
            }
        }
    }

    /// A drop-down list of strings; fill it with [`List::add`].
    ///
    /// # Panics
    /// When libobs refuses the property (a duplicate name: a programming error).
    pub fn add_list(&mut self, name: &str, label: &str) -> List<'_> {
        let (n, l) = (cstring(name), cstring(label));
        // SAFETY: live object; libobs copies the strings.
        let p = unsafe {
            sys::obs_properties_add_list(
                self.0.as_ptr(),
                n.as_ptr(),
                l.as_ptr(),
                sys::obs_combo_type::OBS_COMBO_TYPE_LIST,
                sys::obs_combo_format::OBS_COMBO_FORMAT_STRING,
            )
        };
        List {
            ptr: NonNull::new(p).unwrap_or_else(|| panic!("list property {name} refused")),
            _props: PhantomData,
        }
    }

    /// A file chooser; `filter` is the dialog's filter (e.g. `Images (*.png *.jpg)`).
    pub fn add_file_path(&mut self, name: &str, label: &str, filter: &str) {
        let (n, l, f) = (cstring(name), cstring(label), cstring(filter));
        // SAFETY: live object; libobs copies the strings; NULL default path.
        unsafe {
            sys::obs_properties_add_path(
                self.0.as_ptr(),
                n.as_ptr(),
                l.as_ptr(),
                sys::obs_path_type::OBS_PATH_FILE,
                f.as_ptr(),
                std::ptr::null(),
            )
        };
    }

    /// A one-line text field.
    pub fn add_text(&mut self, name: &str, label: &str) {
        let (n, l) = (cstring(name), cstring(label));
        // SAFETY: live object; libobs copies the strings.
        unsafe {
            sys::obs_properties_add_text(
                self.0.as_ptr(),
                n.as_ptr(),
                l.as_ptr(),
                sys::obs_text_type::OBS_TEXT_DEFAULT,
            )
        };
    }

    /// A colour picker (value 0xAABBGGRR).
    pub fn add_color(&mut self, name: &str, label: &str) {
        let (n, l) = (cstring(name), cstring(label));
        // SAFETY: live object; libobs copies the strings.
        unsafe { sys::obs_properties_add_color(self.0.as_ptr(), n.as_ptr(), l.as_ptr()) };
    }

    /// A checkbox.
    pub fn add_bool(&mut self, name: &str, label: &str) {
        let (n, l) = (cstring(name), cstring(label));
        // SAFETY: live object; libobs copies the strings.
        unsafe { sys::obs_properties_add_bool(self.0.as_ptr(), n.as_ptr(), l.as_ptr()) };
    }

    /// A floating-point slider over `min..=max` in `step`s.
    pub fn add_float_slider(&mut self, name: &str, label: &str, min: f64, max: f64, step: f64) {
        let (n, l) = (cstring(name), cstring(label));
        // SAFETY: live object; libobs copies the strings.
        unsafe {
            sys::obs_properties_add_float_slider(
                self.0.as_ptr(),
                n.as_ptr(),
                l.as_ptr(),
                min,
                max,
                step,
            )
        };
    }

    /// An integer slider over `min..=max` in `step`s.
    pub fn add_int_slider(&mut self, name: &str, label: &str, min: i64, max: i64, step: i64) {
        let (n, l) = (cstring(name), cstring(label));
        let c = |v: i64| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        // SAFETY: live object; libobs copies the strings.
        unsafe {
            sys::obs_properties_add_int_slider(
                self.0.as_ptr(),
                n.as_ptr(),
                l.as_ptr(),
                c(min),
                c(max),
                c(step),
            )
        };
    }

    /// Shows or hides the property `name` (no-op when there is none).
    pub fn set_visible(&mut self, name: &str, visible: bool) {
        set_visible(self.0, name, visible);
    }

    /// Runs `f` whenever the value of property `name` changes in the view (and once when the
    /// view opens). No-op when there is no such property.
    pub fn on_modified(&mut self, name: &str, f: Modified) {
        if let Some(p) = property(self.0, name) {
            // SAFETY: a live property; the private pointer is a fn pointer, valid forever.
            unsafe {
                sys::obs_property_set_modified_callback2(
                    p.as_ptr(),
                    Some(modified_trampoline),
                    f as *mut c_void,
                )
            };
        }
    }
}

impl Drop for Properties {
    fn drop(&mut self) {
        // SAFETY: still ours (into_raw forgets self).
        unsafe { sys::obs_properties_destroy(self.0.as_ptr()) };
    }
}
