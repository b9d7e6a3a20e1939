//! The filter's properties view: localised controls, the model list from the installed
//! manifests, and a status line with the runtime/model state and measured inference time.

use super::settings::*;
use super::Filter;
use crate::mask::roi::AspectMode;
use crate::obs::{cstring, module, sys};
use std::ffi::CString;

fn t(key: &str) -> *const std::os::raw::c_char {
    module::text(key)
}

fn k(key: &str) -> CString {
    cstring(key)
}

/// Builds the properties; `filter` is `None` when OBS asks without an instance.
pub(super) unsafe fn build(filter: Option<&Filter>) -> *mut sys::obs_properties_t {
    let props = sys::obs_properties_create();

    if let Some(f) = filter {
        let (status, is_error) = f.status();
        let s = cstring(&status);
        let p = sys::obs_properties_add_text(
            props,
            c"status".as_ptr(),
            s.as_ptr(),
            sys::obs_text_type::OBS_TEXT_INFO,
        );
        if is_error {
            sys::obs_property_text_set_info_type(p, sys::obs_text_info_type::OBS_TEXT_INFO_ERROR);
        }
    }

    let list = sys::obs_properties_add_list(
        props,
        k(KEY_MODEL).as_ptr(),
        t("Model"),
        sys::obs_combo_type::OBS_COMBO_TYPE_LIST,
        sys::obs_combo_format::OBS_COMBO_FORMAT_STRING,
    );
    let models = super::available_models();
    if models.is_empty() {
        let none = cstring(&module::text_string("Status.NoModels"));
        sys::obs_property_list_add_string(list, none.as_ptr(), c"".as_ptr());
    }
    for m in &models {
        let (name, id) = (cstring(&m.name), cstring(&m.id));
        sys::obs_property_list_add_string(list, name.as_ptr(), id.as_ptr());
    }
    let custom = cstring(CUSTOM_MODEL);
    sys::obs_property_list_add_string(list, t("Model.Custom"), custom.as_ptr());
    sys::obs_property_set_modified_callback(list, Some(model_modified));
    let manifest_filter = cstring(&module::text_string("ModelFilter"));
    sys::obs_properties_add_path(
        props,
        k(KEY_CUSTOM_MODEL).as_ptr(),
        t("CustomModelPath"),
        sys::obs_path_type::OBS_PATH_FILE,
        manifest_filter.as_ptr(),
        std::ptr::null(),
    );
    let aspect = sys::obs_properties_add_list(
        props,
        k(KEY_ASPECT).as_ptr(),
        t("Aspect"),
        sys::obs_combo_type::OBS_COMBO_TYPE_LIST,
        sys::obs_combo_format::OBS_COMBO_FORMAT_STRING,
    );
    for (mode, label) in [
        (AspectMode::RegionOfInterest, "Aspect.Roi"),
        (AspectMode::Stretch, "Aspect.Stretch"),
        (AspectMode::Letterbox, "Aspect.Letterbox"),
    ] {
        let v = cstring(mode.key());
        sys::obs_property_list_add_string(aspect, t(label), v.as_ptr());
    }

    let mode = sys::obs_properties_add_list(
        props,
        k(KEY_MODE).as_ptr(),
        t("Mode"),
        sys::obs_combo_type::OBS_COMBO_TYPE_LIST,
        sys::obs_combo_format::OBS_COMBO_FORMAT_STRING,
    );
    for (_, value, label) in Mode::ALL {
        let v = cstring(value);
        sys::obs_property_list_add_string(mode, t(label), v.as_ptr());
    }
    sys::obs_property_set_modified_callback(mode, Some(mode_modified));

    sys::obs_properties_add_float_slider(
        props,
        k(KEY_BLUR_STRENGTH).as_ptr(),
        t("BlurStrength"),
        1.0,
        100.0,
        1.0,
    );
    let filter_text = cstring(&module::text_string("ImageFilter"));
    sys::obs_properties_add_path(
        props,
        k(KEY_IMAGE_PATH).as_ptr(),
        t("ImagePath"),
        sys::obs_path_type::OBS_PATH_FILE,
        filter_text.as_ptr(),
        std::ptr::null(),
    );
    sys::obs_properties_add_color(props, k(KEY_COLOR).as_ptr(), t("Color"));
    sys::obs_properties_add_float_slider(
        props,
        k(KEY_THRESHOLD).as_ptr(),
        t("Threshold"),
        0.01,
        0.99,
        0.01,
    );
    sys::obs_properties_add_float_slider(
        props,
        k(KEY_EDGE_SOFTNESS).as_ptr(),
        t("EdgeSoftness"),
        0.0,
        1.0,
        0.01,
    );
    sys::obs_properties_add_float_slider(
        props,
        k(KEY_TEMPORAL_SMOOTHING).as_ptr(),
        t("TemporalSmoothing"),
        0.0,
        0.95,
        0.01,
    );
    sys::obs_properties_add_float_slider(
        props,
        k(KEY_MASK_EXPAND).as_ptr(),
        t("MaskExpand"),
        -20.0,
        20.0,
        0.5,
    );
    sys::obs_properties_add_float_slider(
        props,
        k(KEY_MIN_BLOB).as_ptr(),
        t("MinBlob"),
        0.0,
        5.0,
        0.05,
    );
    sys::obs_properties_add_bool(props, k(KEY_EDGE_AWARE).as_ptr(), t("EdgeAware"));
    sys::obs_properties_add_int_slider(
        props,
        k(KEY_EDGE_RADIUS).as_ptr(),
        t("EdgeRadius"),
        1,
        16,
        1,
    );
    add_performance(props);
    props
}

/// Performance controls: motion skip, inference cadence, execution provider, threads.
unsafe fn add_performance(props: *mut sys::obs_properties_t) {
    use crate::segmentation::runtime::{available_providers, PROVIDERS};
    sys::obs_properties_add_float_slider(
        props,
        k(KEY_MOTION_THRESHOLD).as_ptr(),
        t("MotionThreshold"),
        0.0,
        20.0,
        0.5,
    );
    sys::obs_properties_add_int_slider(
        props,
        k(KEY_INFERENCE_INTERVAL).as_ptr(),
        t("InferenceInterval"),
        1,
        10,
        1,
    );
    let list = sys::obs_properties_add_list(
        props,
        k(KEY_PROVIDER).as_ptr(),
        t("ExecutionProvider"),
        sys::obs_combo_type::OBS_COMBO_TYPE_LIST,
        sys::obs_combo_format::OBS_COMBO_FORMAT_STRING,
    );
    // CPU always; the others only when the loaded runtime offers them.
    let offered = available_providers();
    for (provider, key, runtime_name, display) in PROVIDERS {
        if provider == crate::segmentation::runtime::Provider::Cpu
            || offered.iter().any(|o| o == runtime_name)
        {
            let (name, value) = (cstring(display), cstring(key));
            sys::obs_property_list_add_string(list, name.as_ptr(), value.as_ptr());
        }
    }
    sys::obs_properties_add_int_slider(props, k(KEY_THREADS).as_ptr(), t("IntraThreads"), 1, 8, 1);
}

/// Shows the custom model path only when "Custom model" is selected.
unsafe extern "C" fn model_modified(
    props: *mut sys::obs_properties_t,
    _p: *mut sys::obs_property_t,
    settings: *mut sys::obs_data_t,
) -> bool {
    crate::guard("model_modified", false, || {
        let custom = crate::obs::data::Data(settings).string(KEY_MODEL) == CUSTOM_MODEL;
        let p = sys::obs_properties_get(props, k(KEY_CUSTOM_MODEL).as_ptr());
        if !p.is_null() {
            sys::obs_property_set_visible(p, custom);
        }
        true
    })
}

/// Shows only the controls that matter for the chosen background mode.
unsafe extern "C" fn mode_modified(
    props: *mut sys::obs_properties_t,
    _p: *mut sys::obs_property_t,
    settings: *mut sys::obs_data_t,
) -> bool {
    crate::guard("mode_modified", false, || {
        let mode = Mode::parse(&crate::obs::data::Data(settings).string(KEY_MODE));
        let show = |key: &str, visible: bool| {
            let p = sys::obs_properties_get(props, k(key).as_ptr());
            if !p.is_null() {
                sys::obs_property_set_visible(p, visible);
            }
        };
        show(KEY_BLUR_STRENGTH, mode == Mode::Blur || mode == Mode::Image);
        show(KEY_IMAGE_PATH, mode == Mode::Image);
        show(KEY_COLOR, mode == Mode::Color);
        true
    })
}
