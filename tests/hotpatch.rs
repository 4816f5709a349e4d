//! The hot-patching constructor (src/hotpatch.rs), end to end: small C
//! programs that define PHP's 118 allocator entry points themselves (as
//! Debian's php8.2 does) run with libzendmm.so preloaded, and either every
//! entry point is redirected or none is, with one line on stderr saying why.
//! When /usr/bin/php8.2 is installed it is checked too.
//!
//! Needs a C compiler (`$CC`, else `cc`) and `nm`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use zendmm::hotpatch::SYMBOLS;

/// The fake PHP: the functions `main` calls have their real signatures and
/// answer with markers; the others only have to exist. `noipa` keeps GCC
/// from inlining them into `main` or folding identical ones together.
/// `heap_running`: whether the fake `zend_mm_get_heap()` says PHP's
/// allocator has started (as when zendmm is dlopen'ed into a running PHP).
fn fake_php_source(heap_running: bool) -> String {
    let mut src = format!("#define HEAP_RUNNING {}\n", u8::from(heap_running));
    src.push_str(
        r#"#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define FAKE __attribute__((noipa))

static char fake_block[64];
FAKE void fake_called(const char *name) { fprintf(stderr, "fake %s called\n", name); }
FAKE void *_emalloc(size_t size) { (void)size; return fake_block; }
FAKE void _efree(void *ptr) { (void)ptr; }
FAKE size_t zend_memory_usage(bool real) { (void)real; return 777; }
FAKE void start_memory_manager(void) { }
FAKE void *zend_mm_get_heap(void) { return HEAP_RUNNING ? fake_block : NULL; }
"#,
    );
    for name in SYMBOLS {
        let name = name.to_str().unwrap();
        if ![
            "_emalloc",
            "_efree",
            "zend_memory_usage",
            "start_memory_manager",
            "zend_mm_get_heap",
        ]
        .contains(&name)
        {
            src.push_str(&format!(
                "FAKE void {name}(void) {{ fake_called(__func__); }}\n"
            ));
        }
    }
    src.push_str(
        r#"
/* Keeps the last entry point above from being the end of .text, where the
   next section (.fini) follows without padding and the check rightly refuses. */
FAKE void fake_tail(void) { fake_called(__func__); }

int main(void)
{
    start_memory_manager();
    void *p = _emalloc(100);
    printf("%s %zu\n", p == fake_block ? "fake" : "zendmm", zend_memory_usage(false));
    _efree(p);
    return 0;
}
"#,
    );
    src
}

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hotpatch")
}

fn compile(name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let dir = tmp();
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&c, source).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(&cc)
        .args(["-std=gnu11", "-O2", "-fPIE", "-pie", "-rdynamic"])
        .args(flags)
        .arg(&c)
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
    assert!(
        out.status.success(),
        "{cc} failed on {}:\n{}",
        c.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// 16-byte aligned functions, as GCC's -O2 and Debian's php8.2 have them.
fn fake_php() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        compile(
            "fake_php",
            &fake_php_source(false),
            &["-falign-functions=16"],
        )
    })
}

/// Functions packed back to back: the short ones have no padding to use.
fn packed_fake_php() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        compile(
            "packed_fake_php",
            &fake_php_source(false),
            &["-falign-functions=1"],
        )
    })
}

/// A fake whose allocator is already running.
fn running_fake_php() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        compile(
            "running_fake_php",
            &fake_php_source(true),
            &["-falign-functions=16"],
        )
    })
}

fn plain_program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        compile(
            "plain",
            "#include <stdio.h>\n#include <stdlib.h>\nint main(void) { void *p = malloc(10); \
             free(p); puts(\"plain\"); return 0; }\n",
            &[],
        )
    })
}

/// The cdylib cargo built alongside this test (target/<profile>/deps).
fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("libzendmm.so");
    assert!(lib.exists(), "{} is missing", lib.display());
    lib
}

/// Whether the library exports all 118 names (the lead's work in progress
/// may not yet): then patching must succeed, else it must refuse.
fn exports_all() -> bool {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(library())
        .output()
        .expect("cannot run nm");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    SYMBOLS.iter().all(|s| names.contains(&s.to_str().unwrap()))
}

fn run(exe: &Path, preload: Option<&str>, patch: Option<&str>) -> (String, String, Output) {
    let mut cmd = Command::new(exe);
    cmd.env_remove("LD_PRELOAD").env_remove("ZENDMM_PATCH");
    if let Some(preload) = preload {
        cmd.env("LD_PRELOAD", preload);
    }
    if let Some(patch) = patch {
        cmd.env("ZENDMM_PATCH", patch);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{} failed: {out:?}", exe.display());
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out,
    )
}

fn preload() -> String {
    library().to_str().unwrap().to_owned()
}

fn assert_refusal(stderr: &str, because: &str) {
    assert_eq!(
        stderr.lines().count(),
        1,
        "exactly one line expected: {stderr:?}"
    );
    assert!(
        stderr.starts_with("zendmm: not patching ") && stderr.contains(because),
        "expected a refusal mentioning {because:?}, got {stderr:?}"
    );
    assert!(
        stderr.ends_with("PHP keeps its own allocator\n"),
        "{stderr:?}"
    );
}

#[test]
fn fake_php_runs_on_its_own_without_the_preload() {
    let (stdout, stderr, _) = run(fake_php(), None, None);
    assert_eq!(stdout, "fake 777\n");
    assert_eq!(stderr, "");
}

#[test]
fn a_plain_program_is_left_alone_and_silent() {
    for patch in [None, Some("0"), Some("1"), Some("bogus")] {
        let (stdout, stderr, _) = run(plain_program(), Some(&preload()), patch);
        assert_eq!(stdout, "plain\n");
        assert_eq!(stderr, "", "ZENDMM_PATCH={patch:?}");
    }
}

#[test]
fn every_entry_point_is_redirected_or_none_is() {
    for patch in [None, Some(""), Some("1")] {
        let (stdout, stderr, _) = run(fake_php(), Some(&preload()), patch);
        if exports_all() {
            assert_eq!(stderr, "", "ZENDMM_PATCH={patch:?}");
            let usage: usize = stdout
                .strip_prefix("zendmm ")
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("not redirected: {stdout:?}"));
            assert!(usage >= 100 && usage != 777, "usage {usage}");
        } else {
            assert_refusal(&stderr, "does not export");
            assert_eq!(stdout, "fake 777\n", "nothing may be patched");
        }
    }
}

#[test]
fn zendmm_patch_0_turns_it_off_silently() {
    let (stdout, stderr, _) = run(fake_php(), Some(&preload()), Some("0"));
    assert_eq!(stdout, "fake 777\n");
    assert_eq!(stderr, "");
}

#[test]
fn a_bad_zendmm_patch_value_is_reported_and_nothing_patched() {
    let (stdout, stderr, _) = run(fake_php(), Some(&preload()), Some("yes"));
    assert_eq!(stdout, "fake 777\n");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.starts_with("zendmm: ZENDMM_PATCH=\"yes\" is not valid"),
        "{stderr:?}"
    );
}

#[test]
fn entry_points_without_room_refuse_the_whole_patch() {
    // Checked before zendmm's own exports: the answer does not depend on them.
    let (stdout, stderr, _) = run(packed_fake_php(), Some(&preload()), None);
    assert_refusal(&stderr, "too short for the 14-byte jump");
    assert_eq!(stdout, "fake 777\n", "nothing may be patched");
}

#[test]
fn a_running_php_allocator_is_not_taken_over() {
    if !exports_all() {
        return; // the missing exports are reported first
    }
    let (stdout, stderr, _) = run(running_fake_php(), Some(&preload()), None);
    assert_refusal(&stderr, "PHP's memory manager is already running");
    assert_eq!(stdout, "fake 777\n", "nothing may be patched");
}

#[test]
fn a_second_zendmm_finds_the_entry_points_taken() {
    if !exports_all() {
        return;
    }
    let copy = tmp().join("second").join("libzendmm.so");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(library(), &copy).unwrap();
    let both = format!("{}:{}", preload(), copy.display());
    let (stdout, stderr, _) = run(fake_php(), Some(&both), None);
    assert!(stdout.starts_with("zendmm "), "{stdout:?}");
    assert_refusal(&stderr, "is already redirected");
}

const PHP: &str = "/usr/bin/php8.2";

fn php(preload: Option<&str>, patch: Option<&str>, code: &str) -> Option<(String, String)> {
    if !Path::new(PHP).exists() {
        return None;
    }
    let mut cmd = Command::new(PHP);
    cmd.args(["-n", "-r", code])
        .env_remove("LD_PRELOAD")
        .env_remove("ZENDMM_PATCH");
    if let Some(preload) = preload {
        cmd.env("LD_PRELOAD", preload);
    }
    if let Some(patch) = patch {
        cmd.env("ZENDMM_PATCH", patch);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn debian_php_with_zendmm_patch_0_is_stock() {
    let code = "echo 1, ' ', memory_get_usage(true), \"\\n\";";
    let Some(stock) = php(None, None, code) else {
        return;
    };
    assert_eq!(php(Some(&preload()), Some("0"), code), Some(stock));
}

#[test]
fn debian_php_runs_on_zendmm_or_says_why_not() {
    let code = "echo memory_get_usage(true), \"\\n\";";
    let Some((stdout, stderr)) = php(Some(&preload()), None, code) else {
        return;
    };
    if exports_all() {
        assert_eq!(stderr, "");
        let real: usize = stdout.trim().parse().unwrap();
        // zendmm takes 256 KiB segments; PHP's own allocator 2 MiB chunks.
        assert!(
            real % 262_144 == 0 && real != 2_097_152,
            "not zendmm's figure: {real}"
        );
    } else {
        assert_refusal(&stderr, "does not export");
        assert_eq!(stdout, "2097152\n");
    }
}

fn zendmm_run() -> Command {
    let mut cmd = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/zendmm-run"));
    cmd.env_remove("LD_PRELOAD").env_remove("ZENDMM_PATCH");
    cmd
}

#[test]
fn zendmm_run_prepends_the_library_to_ld_preload() {
    let help = zendmm_run().arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("Usage: zendmm-run COMMAND"));

    let out = zendmm_run()
        .env("ZENDMM_LIB", library())
        .env("LD_PRELOAD", "/other.so")
        .args(["sh", "-c", "echo \"$LD_PRELOAD\""])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}:/other.so\n", preload())
    );

    let out = zendmm_run().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = zendmm_run()
        .env("ZENDMM_LIB", "/nonexistent/libzendmm.so")
        .arg("true")
        .output();
    assert_eq!(out.unwrap().status.code(), Some(127));
}

#[test]
fn zendmm_run_runs_a_fake_php_on_zendmm() {
    let out = zendmm_run()
        .env("ZENDMM_LIB", library())
        .arg(fake_php())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if exports_all() {
        assert!(stdout.starts_with("zendmm "), "{stdout:?}");
    } else {
        assert_eq!(stdout, "fake 777\n");
    }
}
