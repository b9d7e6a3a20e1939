//! Borrowed access to an `obs_data_t` settings object.

use super::{cstring, from_cstr, sys};

/// A borrowed `obs_data_t*` (the caller keeps ownership; no reference is taken or released).
#[derive(Clone, Copy)]
pub struct Data(pub *mut sys::obs_data_t);

impl Data {
    /// String value of `key` ("" when unset).
    pub fn string(&self, key: &str) -> String {
        let k = cstring(key);
        // SAFETY: self.0 is a live obs_data_t for the duration of the callback that lent it.
        unsafe { from_cstr(sys::obs_data_get_string(self.0, k.as_ptr())) }
    }
    /// Integer value of `key` (0 when unset and no default).
    pub fn int(&self, key: &str) -> i64 {
        let k = cstring(key);
        unsafe { sys::obs_data_get_int(self.0, k.as_ptr()) }
    }
    /// Floating-point value of `key`.
    pub fn double(&self, key: &str) -> f64 {
        let k = cstring(key);
        unsafe { sys::obs_data_get_double(self.0, k.as_ptr()) }
    }
    /// Boolean value of `key`.
    pub fn bool(&self, key: &str) -> bool {
        let k = cstring(key);
        unsafe { sys::obs_data_get_bool(self.0, k.as_ptr()) }
    }
    /// Sets the default string of `key`.
    pub fn default_string(&self, key: &str, value: &str) {
        let (k, v) = (cstring(key), cstring(value));
        unsafe { sys::obs_data_set_default_string(self.0, k.as_ptr(), v.as_ptr()) }
    }
    /// Sets the default integer of `key`.
    pub fn default_int(&self, key: &str, value: i64) {
        let k = cstring(key);
        unsafe { sys::obs_data_set_default_int(self.0, k.as_ptr(), value) }
    }
    /// Sets the default floating-point value of `key`.
    pub fn default_double(&self, key: &str, value: f64) {
        let k = cstring(key);
        unsafe { sys::obs_data_set_default_double(self.0, k.as_ptr(), value) }
    }
    /// Sets the default boolean of `key`.
    pub fn default_bool(&self, key: &str, value: bool) {
        let k = cstring(key);
        unsafe { sys::obs_data_set_default_bool(self.0, k.as_ptr(), value) }
    }
}
