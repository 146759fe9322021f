//! Generates bindings from the prebuilt sherpa-onnx C API header and links the library. Never
//! downloads or compiles anything: the files come from scripts/setup.sh.

use std::env;
use std::path::{Path, PathBuf};

const LIB_NAME: &str = "sherpa-onnx-c-api";

fn main() {
    println!("cargo:rerun-if-env-changed=SHERPA_LIB_PATH");
    println!("cargo:rerun-if-changed=build.rs");

    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let lib_dir = match env::var_os("SHERPA_LIB_PATH") {
        Some(dir) => PathBuf::from(dir),
        // patches/sherpa-rs-sys -> <repo>/models/lib/sherpa
        None => manifest_dir.join("../../models/lib/sherpa"),
    };
    let lib_dir = lib_dir.canonicalize().unwrap_or(lib_dir);

    let header = lib_dir.join("c-api.h");
    let library = lib_dir.join(format!("lib{LIB_NAME}.so"));
    for file in [&header, &library] {
        require(file, &lib_dir);
        println!("cargo:rerun-if-changed={}", file.display());
    }

    if cfg!(feature = "download-binaries") {
        println!(
            "cargo:warning=sherpa-rs-sys (patched): feature download-binaries is ignored; \
             using the prebuilt library in {}",
            lib_dir.display()
        );
    }

    let bindings = bindgen::Builder::default()
        .header(header.display().to_string())
        .allowlist_function("SherpaOnnx.*|SherpaOffline.*")
        .allowlist_type("SherpaOnnx.*|SherpaOffline.*")
        .allowlist_var("SHERPA_ONNX.*")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "bindgen failed on {}: {e} (is libclang-dev installed?)",
                header.display()
            )
        });
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    bindings
        .write_to_file(&out)
        .unwrap_or_else(|e| panic!("could not write {}: {e}", out.display()));

    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=dylib={LIB_NAME}");
    // Exposed to dependents' build scripts as DEP_SHERPA_ONNX_C_API_LIB_DIR.
    println!("cargo:lib_dir={}", lib_dir.display());
}

fn require(file: &Path, lib_dir: &Path) {
    if !file.is_file() {
        panic!(
            "\n\nsherpa-onnx C library not found: {} is missing.\n\
             Run scripts/setup.sh to unpack it (from the PyPI wheel sherpa-onnx-core) into \
             models/lib/sherpa, or set SHERPA_LIB_PATH to a folder holding c-api.h and \
             lib{LIB_NAME}.so (looked in {}).\n\n",
            file.display(),
            lib_dir.display()
        );
    }
}
