//! Borrowed access to an `obs_data_t` settings object.

use crate::{cstring, from_cstr, sys};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// An `obs_data_t*` lent by libobs for the duration of a callback (`'a`); no reference is taken
/// or released.
#[derive(Clone, Copy)]
pub struct Data<'a> {
    ptr: NonNull<sys::obs_data_t>,
    _lent: PhantomData<&'a sys::obs_data_t>,
}

impl Data<'_> {
    /// Wraps a settings pointer libobs passed to a callback; `None` for NULL.
    ///
    /// # Safety
    /// The object must stay alive for `'a` (the callback's duration).
    pub unsafe fn from_raw<'a>(ptr: *mut sys::obs_data_t) -> Option<Data<'a>> {
        NonNull::new(ptr).map(|ptr| Data {
            ptr,
            _lent: PhantomData,
        })
    }

    fn raw(&self) -> *mut sys::obs_data_t {
        self.ptr.as_ptr()
    }

    /// String value of `key` ("" when unset).
    pub fn string(&self, key: &str) -> String {
        let k = cstring(key);
        // SAFETY: live object (from_raw's contract); libobs returns a string it owns or NULL.
        unsafe { from_cstr(sys::obs_data_get_string(self.raw(), k.as_ptr())) }
    }
    /// Integer value of `key` (0 when unset and no default).
    pub fn int(&self, key: &str) -> i64 {
        let k = cstring(key);
        // SAFETY: live object.
        unsafe { sys::obs_data_get_int(self.raw(), k.as_ptr()) }
    }
    /// Floating-point value of `key`.
    pub fn double(&self, key: &str) -> f64 {
        let k = cstring(key);
        // SAFETY: live object.
        unsafe { sys::obs_data_get_double(self.raw(), k.as_ptr()) }
    }
    /// Boolean value of `key`.
    pub fn bool(&self, key: &str) -> bool {
        let k = cstring(key);
        // SAFETY: live object.
        unsafe { sys::obs_data_get_bool(self.raw(), k.as_ptr()) }
    }
    /// Sets the default string of `key`.
    pub fn default_string(&self, key: &str, value: &str) {
        let (k, v) = (cstring(key), cstring(value));
        // SAFETY: live object; libobs copies both strings.
        unsafe { sys::obs_data_set_default_string(self.raw(), k.as_ptr(), v.as_ptr()) }
    }
    /// Sets the default integer of `key`.
    pub fn default_int(&self, key: &str, value: i64) {
        let k = cstring(key);
        // SAFETY: live object.
        unsafe { sys::obs_data_set_default_int(self.raw(), k.as_ptr(), value) }
    }
    /// Sets the default floating-point value of `key`.
    pub fn default_double(&self, key: &str, value: f64) {
        let k = cstring(key);
        // SAFETY: live object.
        unsafe { sys::obs_data_set_default_double(self.raw(), k.as_ptr(), value) }
    }
    /// Sets the default boolean of `key`.
    pub fn default_bool(&self, key: &str, value: bool) {
        let k = cstring(key);
        // SAFETY: live object.
        unsafe { sys::obs_data_set_default_bool(self.raw(), k.as_ptr(), value) }
    }
}

/// An owned `obs_data_t` (one reference, released on drop): settings made by the caller, e.g. to
/// create a source or an output, or to update one.
pub struct OwnedData(NonNull<sys::obs_data_t>);

// SAFETY: obs_data_t is reference-counted and its functions lock internally.
unsafe impl Send for OwnedData {}

impl Default for OwnedData {
    fn default() -> Self {
        Self::new()
    }
}

impl OwnedData {
    /// An empty settings object.
    ///
    /// # Panics
    /// When libobs cannot allocate it (it aborts first).
    pub fn new() -> Self {
        // SAFETY: plain allocation in libobs; we own the one reference.
        Self(NonNull::new(unsafe { sys::obs_data_create() }).expect("obs_data_create"))
    }

    /// Takes ownership of one reference libobs returned (e.g. `obs_source_get_settings`);
    /// `None` for NULL.
    ///
    /// # Safety
    /// `ptr` must carry a reference the caller owns and hands over.
    pub unsafe fn from_owned_raw(ptr: *mut sys::obs_data_t) -> Option<Self> {
        NonNull::new(ptr).map(Self)
    }

    /// Parses JSON text (as [`OwnedData::json`] writes it); invalid JSON gives an empty object.
    pub fn from_json(json: &str) -> Self {
        let j = cstring(json);
        // SAFETY: returns a new object with one reference, or NULL on invalid JSON.
        let d = unsafe { sys::obs_data_create_from_json(j.as_ptr()) };
        NonNull::new(d).map_or_else(Self::new, Self)
    }

    /// The raw pointer, for libobs calls that take settings (they add their own reference).
    pub fn as_ptr(&self) -> *mut sys::obs_data_t {
        self.0.as_ptr()
    }

    /// A borrowed view for reading.
    pub fn data(&self) -> Data<'_> {
        Data {
            ptr: self.0,
            _lent: PhantomData,
        }
    }

    /// Sets a string value.
    pub fn set_string(&self, key: &str, value: &str) -> &Self {
        let (k, v) = (cstring(key), cstring(value));
        // SAFETY: live object; libobs copies both strings.
        unsafe { sys::obs_data_set_string(self.as_ptr(), k.as_ptr(), v.as_ptr()) };
        self
    }
    /// Sets an integer value.
    pub fn set_int(&self, key: &str, value: i64) -> &Self {
        let k = cstring(key);
        // SAFETY: live object.
        unsafe { sys::obs_data_set_int(self.as_ptr(), k.as_ptr(), value) };
        self
    }
    /// Sets a floating-point value.
    pub fn set_double(&self, key: &str, value: f64) -> &Self {
        let k = cstring(key);
        // SAFETY: live object.
        unsafe { sys::obs_data_set_double(self.as_ptr(), k.as_ptr(), value) };
        self
    }
    /// Sets a boolean value.
    pub fn set_bool(&self, key: &str, value: bool) -> &Self {
        let k = cstring(key);
        // SAFETY: live object.
        unsafe { sys::obs_data_set_bool(self.as_ptr(), k.as_ptr(), value) };
        self
    }
    /// Removes `key`'s user value (its default, if any, applies again).
    pub fn erase(&self, key: &str) -> &Self {
        let k = cstring(key);
        // SAFETY: live object.
        unsafe { sys::obs_data_erase(self.as_ptr(), k.as_ptr()) };
        self
    }
    /// The user-set values as JSON text (defaults are not included).
    pub fn json(&self) -> String {
        // SAFETY: live object; the string belongs to it and is copied at once.
        unsafe { from_cstr(sys::obs_data_get_json(self.as_ptr())) }
    }
}

impl Drop for OwnedData {
    fn drop(&mut self) {
        // SAFETY: the one reference this value owns.
        unsafe { sys::obs_data_release(self.as_ptr()) };
    }
}
