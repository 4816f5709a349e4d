//! Tunables and the environment variables that set them, in one table.

use crate::debug_mode::DebugConfig;
use crate::segment::SEGMENT_OVERHEAD;
use crate::storage::{self, Storage};
use std::fmt::Write;

/// Default segment size (`ZEND_MM_SEG_SIZE`).
pub const SEGMENT_SIZE: usize = 256 * 1024;
/// Smallest segment accepted: one page, so every backend can map it.
pub const MIN_SEGMENT_SIZE: usize = 4096;
/// Largest segment accepted from the environment.
pub const MAX_SEGMENT_SIZE: usize = 1 << 30;
/// Emergency block freed when a fatal error is raised (`ZEND_MM_RESERVE_SIZE`).
pub const RESERVE_SIZE: usize = 8 * 1024;
/// Default `ZEND_MM_COMPACT`: compact storage after requests peaking above this.
pub const COMPACT_SIZE: usize = 2 * 1024 * 1024;

/// One environment variable the library reads.
pub struct EnvVar {
    pub name: &'static str,
    pub default: &'static str,
    pub accepts: &'static str,
    pub meaning: &'static str,
    /// What a bad value prints (before exiting 255, except where it says).
    pub on_error: &'static str,
}

/// Every environment variable zendmm reads (README.md has the same table).
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "ZEND_MM_MEM_TYPE",
        default: "mmap_anon",
        accepts: "malloc, mmap_anon, mmap_zero",
        meaning: "where segments come from",
        on_error: "Wrong or unsupported zend_mm storage type 'NAME', then the supported types",
    },
    EnvVar {
        name: "ZEND_MM_SEG_SIZE",
        default: "256K",
        accepts: "a power of two from 4K to 1G (k/m/g suffixes, 0x hex)",
        meaning: "segment size",
        on_error: "ZEND_MM_SEG_SIZE must be a power of two / is too small / is too large, with the value; or ZEND_MM_SEG_SIZE must be a number of bytes with an optional k, m or g suffix, got 'VALUE'",
    },
    EnvVar {
        name: "ZEND_MM_COMPACT",
        default: "2M",
        accepts: "a size (k/m/g suffixes, 0x hex); 0 never compacts",
        meaning: "compact storage after a request whose real peak exceeded it",
        on_error: "ZEND_MM_COMPACT must be a number of bytes with an optional k, m or g suffix, got 'VALUE'",
    },
    EnvVar {
        name: "USE_ZEND_ALLOC",
        default: "1",
        accepts: "an integer; 0 hands request memory to libc malloc (still counted and limited)",
        meaning: "use zendmm's heap for request memory",
        on_error: "USE_ZEND_ALLOC must be an integer (0 disables zendmm's heap), got 'VALUE'",
    },
    EnvVar {
        name: "ZENDMM_PROTECT",
        default: "1",
        accepts: "0 or 1",
        meaning: "keyed free-list links and fastcache checks (double free, write after free, overflow at free)",
        on_error: "ZENDMM_PROTECT must be 0 or 1 (heap protection off or on), got 'VALUE'",
    },
    EnvVar {
        name: "ZEND_MM_DEBUG",
        default: "unset (off)",
        accepts: "comma-separated poison_alloc=BYTE, poison_free=BYTE, padding=N (0..4096), check_freelists_on_shutdown=0|1",
        meaning: "PHP 8.5's debug mode: poisoning, canaries past every block, heap check at shutdown",
        on_error: "ZEND_MM_DEBUG: <what is wrong>, got 'VALUE'",
    },
    EnvVar {
        name: "ZENDMM_STATS",
        default: "unset (no records)",
        accepts: "a file path (created, appended to) or stderr",
        meaning: "append one record line per request end (src/stat_log.rs)",
        on_error: "ZENDMM_STATS must be a file path or 'stderr', got ''; ZENDMM_STATS: cannot open 'PATH' for appending: REASON",
    },
    EnvVar {
        name: "ZENDMM_CACHE_STAT",
        default: "unset (no counters)",
        accepts: "a file path (created, appended to) or stderr",
        meaning: "count fastcache hits and misses per bucket; write PHP 5.3's table at full shutdown or exit",
        on_error: "ZENDMM_CACHE_STAT must be a file path or 'stderr', got ''; ZENDMM_CACHE_STAT: cannot open 'PATH' for appending: REASON",
    },
    EnvVar {
        name: "ZEND_ALLOC_PRINT_LEAKS",
        default: "1 if the debug ABI (zendmm_emalloc_dbg & co.) was used, else 0",
        accepts: "0, 1, or empty for the default; read again at every non-silent shutdown",
        meaning: "print PHP's leak report at a non-silent shutdown",
        on_error: "ZEND_ALLOC_PRINT_LEAKS must be 0 or 1 (or empty for the default), got 'VALUE'",
    },
    EnvVar {
        name: "ZENDMM_PATCH",
        default: "1",
        accepts: "0 (leave a PHP executable's own allocator alone), 1 or empty",
        meaning: "read by the preload constructor: redirect the PHP executable's allocator to zendmm",
        on_error: "zendmm: ZENDMM_PATCH=\"VALUE\" is not valid (...); not patching EXE (a warning; nothing is patched)",
    },
];

/// `USE_ZEND_ALLOC`: `Ok(false)` for 0, `Ok(true)` when unset or any other
/// integer; `Err` with the message for anything else.
pub fn use_zend_alloc() -> Result<bool, String> {
    match std::env::var("USE_ZEND_ALLOC") {
        Err(_) => Ok(true),
        Ok(v) => match v.trim().parse::<i64>() {
            Ok(n) => Ok(n != 0),
            Err(_) => Err(format!(
                "USE_ZEND_ALLOC must be an integer (0 disables zendmm's heap), got '{v}'\n"
            )),
        },
    }
}

/// `ZEND_ALLOC_PRINT_LEAKS`: `Ok(None)` when unset or empty (the default
/// applies), `Ok(Some(on))` for 1 or 0, `Err` with the message otherwise.
pub fn print_leaks() -> Result<Option<bool>, String> {
    let value = std::env::var_os("ZEND_ALLOC_PRINT_LEAKS");
    print_leaks_from(value.as_ref().map(|v| v.to_string_lossy()).as_deref())
}

/// As `print_leaks`, for a given value (for tests).
pub fn print_leaks_from(value: Option<&str>) -> Result<Option<bool>, String> {
    match value {
        None | Some("") => Ok(None),
        Some("1") => Ok(Some(true)),
        Some("0") => Ok(Some(false)),
        Some(v) => Err(format!(
            "ZEND_ALLOC_PRINT_LEAKS must be 0 or 1 (or empty for the default), got '{v}'\n"
        )),
    }
}

/// How a heap is set up.
#[derive(Clone, Copy)]
pub struct Config {
    /// Where segments come from (`ZEND_MM_MEM_TYPE`).
    pub storage: &'static dyn Storage,
    /// Bytes of a regular segment, a power of two (`ZEND_MM_SEG_SIZE`).
    pub segment_size: usize,
    /// A request whose real peak passed this compacts the storage at its
    /// end; 0 never does (`ZEND_MM_COMPACT`).
    pub compact_size: usize,
    /// Keyed links and fastcache checks (`ZENDMM_PROTECT`).
    pub protect: bool,
    /// `ZEND_MM_DEBUG`.
    pub debug: DebugConfig,
}

impl Config {
    /// `mmap_anon` storage (PHP 5.3: `malloc`; see README), 256 KiB
    /// segments, compaction above 2 MiB.
    pub const DEFAULT: Config = Config {
        storage: &storage::MmapAnon,
        segment_size: SEGMENT_SIZE,
        compact_size: COMPACT_SIZE,
        protect: true,
        debug: DebugConfig::OFF,
    };

    /// Reads the `ENV_VARS`; `Err` carries the message to print before exiting 255.
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// As `from_env`, with the variables coming from `get` (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let mut cfg = Config::DEFAULT;
        if let Some(name) = get("ZEND_MM_MEM_TYPE") {
            cfg.storage = storage::by_name(&name).ok_or_else(|| unknown_storage(&name))?;
        }
        if let Some(v) = get("ZEND_MM_SEG_SIZE") {
            cfg.segment_size = segment_size(&v)?;
        }
        if let Some(v) = get("ZEND_MM_COMPACT") {
            cfg.compact_size = parse_size(&v).ok_or_else(|| not_a_size("ZEND_MM_COMPACT", &v))?;
        }
        if let Some(v) = get("ZENDMM_PROTECT") {
            cfg.protect = match v.as_str() {
                "1" => true,
                "0" => false,
                _ => {
                    return Err(format!(
                        "ZENDMM_PROTECT must be 0 or 1 (heap protection off or on), got '{v}'\n"
                    ))
                }
            };
        }
        if let Some(v) = get("ZEND_MM_DEBUG") {
            cfg.debug = DebugConfig::parse(&v)?;
        }
        Ok(cfg)
    }
}

fn unknown_storage(name: &str) -> String {
    let mut s = format!("Wrong or unsupported zend_mm storage type '{name}'\n  supported types:\n");
    for b in storage::BACKENDS {
        let _ = writeln!(s, "    '{}'", b.name());
    }
    s
}

fn not_a_size(var: &str, value: &str) -> String {
    format!("{var} must be a number of bytes with an optional k, m or g suffix, got '{value}'\n")
}

fn segment_size(v: &str) -> Result<usize, String> {
    let n = parse_size(v).ok_or_else(|| not_a_size("ZEND_MM_SEG_SIZE", v))?;
    let detail = |why: &str, rule: String| {
        format!("{why}\n  got ZEND_MM_SEG_SIZE={v} ({n} bytes); {rule}\n")
    };
    if !n.is_power_of_two() {
        return Err(detail(
            "ZEND_MM_SEG_SIZE must be a power of two",
            "try 262144 (256K)".into(),
        ));
    }
    if n < MIN_SEGMENT_SIZE || n < SEGMENT_OVERHEAD * 2 {
        return Err(detail(
            "ZEND_MM_SEG_SIZE is too small",
            format!("the smallest is {MIN_SEGMENT_SIZE}"),
        ));
    }
    if n > MAX_SEGMENT_SIZE {
        return Err(detail(
            "ZEND_MM_SEG_SIZE is too large",
            format!("the largest is {MAX_SEGMENT_SIZE}"),
        ));
    }
    Ok(n)
}

/// PHP's `zend_atoi` for sizes, made strict: a number in base 10, 16 (`0x`)
/// or 8 (leading `0`), then at most one of `k`, `m`, `g` (any case); nothing
/// else, no sign, no overflow.
pub fn parse_size(s: &str) -> Option<usize> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        usize::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        usize::from_str_radix(&digits[1..], 8).ok()?
    } else {
        if digits.starts_with('+') {
            return None;
        }
        digits.parse::<usize>().ok()?
    };
    n.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn sizes_parse_like_zend_atoi() {
        assert_eq!(parse_size("256K"), Some(262144));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("0x100000"), Some(1 << 20));
        assert_eq!(parse_size("0400"), Some(256));
        assert_eq!(parse_size("0"), Some(0));
        for bad in [
            "",
            "k",
            "abc",
            "-1",
            "+5",
            "1kk",
            "99999999999999999999",
            "0x",
            "1 k",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn good_environment_is_applied() {
        let c = Config::from_lookup(env(&[
            ("ZEND_MM_MEM_TYPE", "mmap_anon"),
            ("ZEND_MM_SEG_SIZE", "1M"),
            ("ZEND_MM_COMPACT", "0"),
        ]))
        .unwrap();
        assert_eq!(
            (c.storage.name(), c.segment_size, c.compact_size),
            ("mmap_anon", 1 << 20, 0)
        );
    }

    #[test]
    fn bad_environment_names_variable_and_value() {
        let e = Config::from_lookup(env(&[("ZEND_MM_MEM_TYPE", "win32")]))
            .err()
            .unwrap();
        assert!(e.starts_with(
            "Wrong or unsupported zend_mm storage type 'win32'\n  supported types:\n    'malloc'\n"
        ));
        let e = Config::from_lookup(env(&[("ZEND_MM_SEG_SIZE", "3000")]))
            .err()
            .unwrap();
        assert!(
            e.starts_with("ZEND_MM_SEG_SIZE must be a power of two\n  got ZEND_MM_SEG_SIZE=3000")
        );
        let e = Config::from_lookup(env(&[("ZEND_MM_SEG_SIZE", "1k")]))
            .err()
            .unwrap();
        assert!(e.starts_with("ZEND_MM_SEG_SIZE is too small\n"));
        let e = Config::from_lookup(env(&[("ZEND_MM_SEG_SIZE", "2G")]))
            .err()
            .unwrap();
        assert!(e.starts_with("ZEND_MM_SEG_SIZE is too large\n"));
        let e = Config::from_lookup(env(&[("ZEND_MM_COMPACT", "lots")]))
            .err()
            .unwrap();
        assert_eq!(e, "ZEND_MM_COMPACT must be a number of bytes with an optional k, m or g suffix, got 'lots'\n");
    }

    #[test]
    fn print_leaks_takes_0_1_or_empty() {
        assert_eq!(print_leaks_from(None), Ok(None));
        assert_eq!(print_leaks_from(Some("")), Ok(None));
        assert_eq!(print_leaks_from(Some("1")), Ok(Some(true)));
        assert_eq!(print_leaks_from(Some("0")), Ok(Some(false)));
        assert_eq!(
            print_leaks_from(Some("yes")),
            Err(
                "ZEND_ALLOC_PRINT_LEAKS must be 0 or 1 (or empty for the default), got 'yes'\n"
                    .into()
            )
        );
    }
}
