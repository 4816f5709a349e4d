//! Generates the C header from the `#[no_mangle]` exports in src/ffi and sets
//! the shared library's SONAME.
//!
//! cbindgen reads src/ffi/mod.rs and its submodules only: over the whole crate
//! it would turn every internal `pub const` (ALIGNMENT, SEGMENT_SIZE, ...) into
//! a #define in the public header. Everything C sees must therefore be
//! declared under src/ffi.
//!
//! The header always goes to `$OUT_DIR/zendmm.h`. Only `make header`
//! (ZENDMM_WRITE_HEADER=1) refreshes the committed `include/zendmm.h`, so a
//! plain build never writes outside OUT_DIR; tests/header_fresh.rs catches a
//! committed header that has fallen behind.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=ZENDMM_WRITE_HEADER");

    // cargo sets no SONAME on a cdylib (rust-lang/cargo#5045); without one the
    // linker records the unversioned name in every program linked against us.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libzendmm.so.0");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cannot read cbindgen.toml: {e}"));
    let ffi_root = crate_dir.join("src/ffi/mod.rs");
    assert!(
        ffi_root.exists(),
        "{} is missing: the C API lives there",
        ffi_root.display()
    );
    let bindings = cbindgen::Builder::new()
        .with_src(&ffi_root)
        .with_config(config)
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen failed to generate zendmm.h: {e}"));

    bindings.write_to_file(out_dir.join("zendmm.h"));

    if env::var("ZENDMM_WRITE_HEADER").as_deref() == Ok("1") {
        let committed = crate_dir.join("include").join("zendmm.h");
        bindings.write_to_file(&committed);
        println!("cargo:warning=wrote {}", committed.display());
    }
}
