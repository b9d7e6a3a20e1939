//! The filter's properties view, made from the settings table: localised controls in table
//! order, the model list from the installed manifests, the execution providers the loaded
//! runtime offers, a status line, and each row shown only when its `shown_when` holds.

use super::settings::{Kind, CUSTOM_MODEL, TABLE};
use super::Filter;
use backdrop_core::segmentation::runtime::{available_providers, Provider, PROVIDERS};
use backdrop_obs::data::Data;
use backdrop_obs::module::text_string as text;
use backdrop_obs::properties::{List, Properties, PropertiesRef};
use backdrop_obs::source::video_source_names;

/// Builds the properties; `filter` is `None` when OBS asks without an instance.
pub fn build(filter: Option<&Filter>) -> Properties {
    let mut props = Properties::new();
    if let Some(f) = filter {
        let (status, is_error) = f.status();
        props.add_info("status", &status, is_error);
    }
    for row in TABLE {
        let label = text(row.label);
        match row.kind {
            Kind::Float { min, max, step, .. } => {
                props.add_float_slider(row.key, &label, min, max, step)
            }
            Kind::Int { min, max, step, .. } => {
                props.add_int_slider(row.key, &label, min, max, step)
            }
            Kind::Bool { .. } => props.add_bool(row.key, &label),
            Kind::Path { filter } => props.add_file_path(row.key, &label, &text(filter)),
            Kind::Text { .. } => props.add_text(row.key, &label),
            Kind::Color { .. } => props.add_color(row.key, &label),
            Kind::Choice { choices, .. } => {
                let mut list = props.add_list(row.key, &label);
                if choices.is_empty() {
                    runtime_choices(row.key, &mut list, filter);
                }
                for (value, label) in choices {
                    list.add(&text(label), value);
                }
            }
        }
    }
    for row in TABLE {
        if let Some((when, _)) = row.shown_when {
            props.on_modified(when, update_visibility);
        }
    }
    props
}

/// The items of the lists made when the view opens.
fn runtime_choices(key: &str, list: &mut List, filter: Option<&Filter>) {
    match key {
        "background_source" => {
            list.add(&text("BackgroundSource.None"), "");
            // Not the filter's own source: it cannot be drawn behind itself.
            let own = filter
                .and_then(|f| f.source().filter_parent())
                .map(|p| p.name());
            for name in video_source_names() {
                if Some(&name) != own.as_ref() {
                    list.add(&name, &name);
                }
            }
        }
        "model" => {
            let models = super::available_models();
            if models.is_empty() {
                list.add(&text("Status.NoModels"), "");
            }
            for m in &models {
                list.add(&m.name, &m.id);
            }
            list.add(&text("Model.Custom"), CUSTOM_MODEL);
        }
        "execution_provider" => {
            // CPU always; the others only when the loaded runtime offers them.
            let offered = available_providers();
            for (provider, value, runtime_name, display) in PROVIDERS {
                if provider == Provider::Cpu || offered.iter().any(|o| o == runtime_name) {
                    list.add(display, value);
                }
            }
        }
        _ => {}
    }
}

/// Shows each row whose `shown_when` holds for the current settings, hides the others.
fn update_visibility(view: &mut PropertiesRef, settings: &Data) -> bool {
    for row in TABLE {
        if let Some((when, values)) = row.shown_when {
            let current = settings.string(when);
            view.set_visible(row.key, values.contains(&current.as_str()));
        }
    }
    true
}
