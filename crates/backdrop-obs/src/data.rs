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
