//! The filter's settings in OBS: the table of `backdrop_core::settings` read from and defaulted
//! into an `obs_data_t`.

pub use backdrop_core::settings::*;
use backdrop_obs::data::Data;

/// OBS's settings object as a [`Store`]: every key answers (with its default when unset).
struct ObsStore<'a, 'd>(&'a Data<'d>);

impl Store for ObsStore<'_, '_> {
    fn string(&self, key: &str) -> Option<String> {
        Some(self.0.string(key))
    }
    fn int(&self, key: &str) -> Option<i64> {
        Some(self.0.int(key))
    }
    fn double(&self, key: &str) -> Option<f64> {
        Some(self.0.double(key))
    }
    fn bool(&self, key: &str) -> Option<bool> {
        Some(self.0.bool(key))
    }
}

/// Reads and validates the settings (`create`, `update`).
pub fn read(data: &Data) -> Settings {
    Settings::read(&ObsStore(data))
}

/// Writes every row's default (`get_defaults`).
pub fn write_defaults(data: &Data) {
    for row in TABLE {
        match row.kind {
            Kind::Float { default, .. } => data.default_double(row.key, default),
            Kind::Int { default, .. } => data.default_int(row.key, default),
            Kind::Bool { default } => data.default_bool(row.key, default),
            Kind::Path { .. } => data.default_string(row.key, ""),
            Kind::Text { default } => data.default_string(row.key, default),
            Kind::Color { default } => data.default_int(row.key, default as i64),
            Kind::Choice { default, .. } => data.default_string(row.key, default),
        }
    }
}
