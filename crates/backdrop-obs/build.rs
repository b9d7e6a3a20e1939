//! Generates Rust bindings for the installed libobs (found with `pkg-config libobs >= 29`) and links it.
use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    let lib = pkg_config::Config::new()
        .atleast_version("29")
        .probe("libobs")
        .expect("libobs >= 29 development files not found (install libobs-dev)");

    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .allowlist_function("(obs|gs|bfree|bmalloc|bzalloc|blog|base|os|vec[234]|matrix4|calloc_|video|audio|calldata|signal|proc|dstr|config|astrcmp|text)_.*")
        .allowlist_function("b(free|malloc|zalloc|strdup|realloc|log|num_allocs)")
        .allowlist_type("(obs|gs|video|audio|calldata|signal|config).*")
        .allowlist_var("(OBS|GS|LOG|LIBOBS|VIDEO|AUDIO|MAX|CALL|S_).*")
        .default_enum_style(bindgen::EnumVariation::Rust { non_exhaustive: false })
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for path in &lib.include_paths {
        builder = builder.clang_arg(format!("-I{}", path.display()));
    }
    let bindings = builder
        .generate()
        .expect("bindgen failed on libobs headers");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("obs_bindings.rs");
    bindings.write_to_file(out).expect("cannot write bindings");
}
