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
//!
//! It also compiles the C glue for running inside PHP 8.2.36
//! (csrc/php_glue.c, see `build_php_glue`) and the valgrind client-request
//! shim (csrc/valgrind_shim.c, see `build_valgrind_shim`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

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

    build_php_glue(&crate_dir);
    build_valgrind_shim(&crate_dir);

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

/// Compiles csrc/php_glue.c into the library, with PHP 8.2's headers so that
/// every PHP struct layout comes from them (the glue still never links
/// against libphp: it looks PHP up with dlsym at run time). Without usable
/// headers the glue is built as a stub (`ZENDMM_NO_PHP_HEADERS`): the library
/// then works as a plain C allocator only. Exports the glue's PHP functions through csrc/exports.map.
fn build_php_glue(crate_dir: &Path) {
    let csrc = crate_dir.join("csrc");
    for f in ["php_glue.c", "glue.h", "exports.map"] {
        println!("cargo:rerun-if-changed={}", csrc.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=ZENDMM_PHP_CONFIG");
    println!("cargo:rerun-if-env-changed=ZENDMM_NO_PHP");

    let mut build = cc::Build::new();
    build
        .file(csrc.join("php_glue.c"))
        .include(&csrc)
        .flag_if_supported("-std=gnu11")
        .flag_if_supported("-fno-strict-aliasing")
        .warnings(true)
        .extra_warnings(true);
    // PHP's headers trip -Wextra in places we do not control.
    build.flag_if_supported("-Wno-unused-parameter");
    build.flag_if_supported("-Wno-missing-field-initializers");

    match php_include_dirs() {
        Ok(dirs) => {
            for d in &dirs {
                build.include(d);
            }
        }
        Err(why) => {
            println!(
                "cargo:warning=zendmm: PHP 8.2 headers not usable ({why}); the PHP glue is a stub \
                 and libzendmm cannot run inside PHP (install php8.2-dev to fix)"
            );
            build.define("ZENDMM_NO_PHP_HEADERS", None);
        }
    }
    build.compile("zendmm_php_glue");

    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        csrc.join("exports.map").display()
    );
}

/// Compiles csrc/valgrind_shim.c, the client requests src/tool.rs sends
/// when the library runs under valgrind. Without valgrind's headers
/// (`valgrind/memcheck.h`, Debian's `valgrind` package) the shim says "not
/// under valgrind" and the library still builds; ASan support does not need
/// it.
fn build_valgrind_shim(crate_dir: &Path) {
    let shim = crate_dir.join("csrc").join("valgrind_shim.c");
    println!("cargo:rerun-if-changed={}", shim.display());
    let mut build = cc::Build::new();
    build
        .file(&shim)
        .flag_if_supported("-std=gnu11")
        .warnings(true)
        .extra_warnings(true);
    if !Path::new("/usr/include/valgrind/memcheck.h").is_file() {
        println!(
            "cargo:warning=zendmm: /usr/include/valgrind/memcheck.h not found; valgrind will not \
             see zendmm's blocks (install valgrind to fix)"
        );
        build.define("ZENDMM_NO_VALGRIND", None);
    }
    build.compile("zendmm_valgrind_shim");
}

/// The include directories of PHP 8.2 headers that have 8.2.35+'s
/// delayed-OOM protocol: from `$ZENDMM_PHP_CONFIG`, `php-config8.2` or
/// `php-config` (`--includes`), else /usr/include/php/20220829.
/// `ZENDMM_NO_PHP=1` forces the stub.
fn php_include_dirs() -> Result<Vec<PathBuf>, String> {
    if env::var("ZENDMM_NO_PHP").as_deref() == Ok("1") {
        return Err("ZENDMM_NO_PHP=1".into());
    }
    let mut candidates: Vec<Vec<PathBuf>> = Vec::new();
    let configs: Vec<String> = match env::var("ZENDMM_PHP_CONFIG") {
        Ok(c) => vec![c],
        Err(_) => vec!["php-config8.2".into(), "php-config".into()],
    };
    for cfg in &configs {
        let vernum = Command::new(cfg).arg("--vernum").output();
        let includes = Command::new(cfg).arg("--includes").output();
        if let (Ok(v), Ok(i)) = (vernum, includes) {
            let v = String::from_utf8_lossy(&v.stdout).trim().to_string();
            if !(v.len() == 5 && v.starts_with("802")) {
                continue; // another PHP version's headers
            }
            let dirs: Vec<PathBuf> = String::from_utf8_lossy(&i.stdout)
                .split_whitespace()
                .filter_map(|f| f.strip_prefix("-I"))
                .map(PathBuf::from)
                .collect();
            if !dirs.is_empty() {
                candidates.push(dirs);
            }
        }
    }
    let root = PathBuf::from("/usr/include/php/20220829");
    candidates.push(
        ["", "main", "Zend", "TSRM"]
            .iter()
            .map(|d| {
                if d.is_empty() {
                    root.clone()
                } else {
                    root.join(d)
                }
            })
            .collect(),
    );

    let mut why = String::from("no php-config8.2 and no /usr/include/php/20220829");
    for dirs in candidates {
        let Some(zend) = dirs
            .iter()
            .map(|d| d.join("Zend"))
            .find(|z| z.join("zend_alloc.h").is_file())
        else {
            continue;
        };
        match std::fs::read_to_string(zend.join("zend_alloc.h")) {
            Ok(text)
                if text.contains("zend_oom_info") && text.contains("zend_handle_delayed_oom") =>
            {
                return Ok(dirs)
            }
            Ok(_) => {
                why = format!(
                    "{} has no delayed-OOM protocol (PHP older than 8.2.35)",
                    zend.display()
                )
            }
            Err(e) => why = format!("{}: {e}", zend.display()),
        }
    }
    Err(why)
}
