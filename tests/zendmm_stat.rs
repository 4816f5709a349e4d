//! `zendmm-stat` for real: a C program doing several requests through the
//! preloaded library (found with dlsym, so nothing links zendmm but the
//! preload), and Debian's php8.2; the table is read back, and the SVG
//! parsed as XML by Python's ElementTree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const STAT: &str = env!("CARGO_BIN_EXE_zendmm-stat");

fn tmp() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("zendmm_stat");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The cdylib cargo built alongside this test (target/<profile>/deps).
fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("libzendmm.so");
    assert!(lib.exists(), "{} is missing", lib.display());
    lib
}

/// Request k (1..=REQUESTS) keeps k blocks of 100000 bytes until it ends,
/// and frees then allocates 64-byte blocks 10 times; exits with status 3.
const REQUESTS: usize = 6;
const PROGRAM: &str = r#"
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#define FN(ret, name, args) ret (*name) args = (ret (*) args)dlsym(RTLD_DEFAULT, #name)
int main(void)
{
    FN(void, start_memory_manager, (void));
    FN(void, shutdown_memory_manager, (bool, bool));
    FN(void *, _emalloc, (size_t));
    FN(void, _efree, (void *));
    if (!start_memory_manager || !shutdown_memory_manager || !_emalloc || !_efree) {
        fprintf(stderr, "zendmm is not preloaded\n");
        return 99;
    }
    start_memory_manager();
    for (int k = 1; k <= 6; k++) {
        for (int i = 0; i < k; i++)
            memset(_emalloc(100000), k, 100000);
        for (int i = 0; i < 10; i++)
            _efree(_emalloc(64));
        shutdown_memory_manager(true, false);
    }
    shutdown_memory_manager(true, true);
    puts("program output");
    return 3;
}
"#;

fn program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let c = tmp().join("requests.c");
        let exe = tmp().join("requests");
        std::fs::write(&c, PROGRAM).unwrap();
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
        let out = Command::new(&cc)
            .args(["-std=gnu11", "-O2"])
            .arg(&c)
            .arg("-o")
            .arg(&exe)
            .arg("-ldl")
            .output()
            .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        exe
    })
}

fn stat(svg: &Path, command: &[&str]) -> Output {
    Command::new(STAT)
        .arg("-o")
        .arg(svg)
        .arg("--lib")
        .arg(library())
        .arg("--")
        .args(command)
        .output()
        .expect("cannot run zendmm-stat")
}

/// The table rows: the lines after the header whose first word is a number.
fn rows(stderr: &str) -> Vec<Vec<u64>> {
    stderr
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("req "))
        .skip(1)
        .map_while(|l| {
            l.split_whitespace()
                .map(|w| w.parse().ok())
                .collect::<Option<Vec<u64>>>()
        })
        .collect()
}

/// Polylines in the SVG, counted by a real XML parser.
fn polylines(svg: &Path) -> usize {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as E\n\
             root = E.parse(sys.argv[1]).getroot()\n\
             assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag\n\
             print(len(root.findall('.//{http://www.w3.org/2000/svg}polyline')))",
        )
        .arg(svg)
        .output()
        .expect("cannot run python3");
    assert!(
        out.status.success(),
        "{} is not well-formed SVG: {}",
        svg.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn true_size(n: u64) -> u64 {
    (n + 16 + 15) & !15
}

#[test]
fn a_c_program_gets_one_row_per_request_and_a_chart() {
    let svg = tmp().join("c.svg");
    let _ = std::fs::remove_file(&svg);
    let out = stat(&svg, &[program().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "program output\n");
    assert!(
        stderr.starts_with(&format!("zendmm-stat: {REQUESTS} requests of '")),
        "{stderr}"
    );
    let rows = rows(&stderr);
    assert_eq!(rows.len(), REQUESTS, "{stderr}");
    for (k, r) in rows.iter().enumerate() {
        let k = k as u64 + 1;
        let [req, pid, heap, usage, peak, real, real_peak, segs, cached, hits, misses] = r[..]
        else {
            panic!("row of {} columns: {r:?}", r.len());
        };
        assert_eq!((req, heap), (k, 0));
        assert_eq!(pid, rows[0][1]);
        assert_eq!(usage, 8208 + k * true_size(100000), "request {k}");
        assert_eq!(peak, usage + true_size(64), "request {k}");
        assert!(real >= usage && real_peak >= real, "request {k}");
        assert!(segs >= 1 && cached == true_size(64), "request {k}");
        assert_eq!((hits, misses), (9, 1), "request {k}");
    }
    assert!(
        stderr.contains(&format!("chart: {}", svg.display())),
        "{stderr}"
    );
    assert_eq!(polylines(&svg), 4);
}

#[test]
fn php_runs_under_it_with_its_exit_status() {
    let svg = tmp().join("php.svg");
    let _ = std::fs::remove_file(&svg);
    let script = "$a = []; for ($i = 0; $i < 200000; $i++) $a[] = str_repeat('x', $i % 100); \
                  echo count($a), \"\\n\"; exit(4);";
    let out = stat(&svg, &["php8.2", "-n", "-r", script]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(127),
        "php8.2 is missing (apt-get install php8.2-cli): {stderr}"
    );
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200000\n");
    // PHP's CLI ends a request after module startup, then the script's.
    let rows = rows(&stderr);
    assert_eq!(rows.len(), 2, "{stderr}");
    let script_peak = rows[1][4];
    assert!(script_peak > 200000 * 32, "{stderr}");
    assert!(rows[1][6] >= script_peak, "{stderr}");
    assert_eq!(polylines(&svg), 4);
}

#[test]
fn usage_errors_are_reported() {
    let out = Command::new(STAT).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "zendmm-stat: no command given\n\
         usage: zendmm-stat [-o out.svg] [--lib path/to/libzendmm.so] -- command args...\n"
    );
    let out = Command::new(STAT)
        .args(["--lib", "/nonexistent/libzendmm.so", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "zendmm-stat: --lib /nonexistent/libzendmm.so: no such file\n"
    );
}

#[test]
fn a_command_that_ends_no_request_says_so() {
    let svg = tmp().join("none.svg");
    let _ = std::fs::remove_file(&svg);
    let out = stat(&svg, &["true"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("zendmm-stat: no request ended under zendmm in 'true'"),
        "{stderr}"
    );
    assert!(!svg.exists());
}
