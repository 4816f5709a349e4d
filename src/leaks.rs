//! The leak report of a non-silent shutdown: PHP's `zend_mm_check_leaks`,
//! printed with the lines PHP's `php_message_handler_for_zend` writes for it,
//! byte for byte:
//!
//! ```text
//! [Thu Jan  1 12:00:00 2026]  Script:  'NAME'
//! FILE(LINE) :  Freeing 0x%.8lX (N bytes), script=NAME
//! ORIG_FILE(ORIG_LINE) : Actual location (location was relayed)
//! Last leak repeated N time[s]
//! === Total N memory leaks detected ===
//! ```
//!
//! Every used block is a leak, except the reserve and blocks resting in the
//! fastcache. As in PHP, the first block from a place (file and line) gets
//! the Script and Freeing lines (plus the relay line when a `_rel` macro
//! passed the location on); every later block from the same place, wherever
//! it lies, only adds to that group's "Last leak repeated" count. Blocks from
//! the release ABI have no place: each is reported on its own, as
//! `Unknown(0)` with its usable size. The total line only appears when there
//! is a leak.

use crate::heap::Heap;
use crate::locations::Location;
use crate::report::{write_stderr, StackBuf};
use crate::{config, report};
use core::ffi::{c_char, CStr};
use core::fmt::{self, Write};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::collections::HashMap;

/// Set by every debug entry point: the report is then on by default.
pub(crate) static DEBUG_ABI_USED: AtomicBool = AtomicBool::new(false);

/// `zendmm_set_script_name`'s copy (libc memory), or null for the program's name.
static SCRIPT_NAME: AtomicPtr<c_char> = AtomicPtr::new(ptr::null_mut());

/// What a leak without a location prints as its file (PHP's word for an
/// unknown file).
const UNKNOWN_FILE: &[u8] = b"Unknown";

/// Is the report on at this shutdown? `ZEND_ALLOC_PRINT_LEAKS` (read each
/// time, so it can be switched at run time) decides, else whether the debug
/// ABI was used. A malformed value prints its message and exits 255.
pub fn enabled() -> bool {
    match config::print_leaks() {
        Ok(Some(on)) => on,
        Ok(None) => DEBUG_ABI_USED.load(Ordering::Relaxed),
        Err(text) => report::startup_error(&text),
    }
}

/// Sets the name printed after `script=` (a copy is kept); NULL restores
/// the program's name.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string. Not thread-safe.
pub unsafe fn set_script_name(name: *const c_char) {
    let copy = if name.is_null() {
        ptr::null_mut()
    } else {
        // SAFETY: caller's contract.
        let c = unsafe { libc::strdup(name) };
        if c.is_null() {
            report::persistent_out_of_memory();
        }
        c
    };
    let old = SCRIPT_NAME.swap(copy, Ordering::AcqRel);
    if !old.is_null() {
        // SAFETY: `old` came from strdup above and is no longer reachable.
        unsafe { libc::free(old.cast()) };
    }
}

/// The name printed after `script=`.
pub fn script_name() -> &'static [u8] {
    let p = SCRIPT_NAME.load(Ordering::Acquire);
    if p.is_null() {
        return program_name();
    }
    // SAFETY: a strdup'd copy, freed only when replaced (NTS contract).
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn program_name() -> &'static [u8] {
    extern "C" {
        static program_invocation_short_name: *const c_char;
    }
    // SAFETY: glibc sets it before main from argv[0] and never frees it.
    let p = unsafe { program_invocation_short_name };
    if p.is_null() {
        return b"-";
    }
    // SAFETY: as above; a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn program_name() -> &'static [u8] {
    b"-"
}

/// The local time as C's `asctime` writes it, without its newline, or
/// `null` (PHP prints `[null]` when the time cannot be had).
pub fn time_stamp() -> StackBuf {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut s = StackBuf::new();
    // SAFETY: plain libc calls filling a local `tm`.
    let tm = unsafe {
        let now = libc::time(ptr::null_mut());
        let mut tm: libc::tm = core::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            None
        } else {
            Some(tm)
        }
    };
    let named = tm.and_then(|tm| {
        let day = DAYS.get(usize::try_from(tm.tm_wday).ok()?)?;
        let month = MONTHS.get(usize::try_from(tm.tm_mon).ok()?)?;
        Some((tm, day, month))
    });
    let _ = match named {
        Some((tm, day, month)) => write!(
            s,
            "{day} {month}{:3} {:02}:{:02}:{:02} {}",
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec,
            1900 + tm.tm_year
        ),
        None => s.write_str("null"),
    };
    s
}

/// A leaked block, in walk order.
struct Leak {
    addr: usize,
    size: usize,
    loc: Option<Location>,
}

/// Groups leaks by place: file name (by content) and line.
type Place<'a> = (Option<&'a [u8]>, u32);

impl Leak {
    /// Where the block was allocated; `None` for the release ABI, whose
    /// blocks are each reported on their own.
    fn place<'a>(&self) -> Option<Place<'a>> {
        // SAFETY: file names are string literals of the calling program,
        // readable while its code is loaded.
        self.loc.map(|l| (unsafe { l.file_bytes() }, l.line))
    }
}

impl Heap {
    /// At a non-silent shutdown, before the blocks are released: prints the
    /// report to stderr when it is on.
    pub(crate) fn report_leaks(&mut self) {
        if !enabled() {
            return;
        }
        let stamp = time_stamp();
        self.write_leak_report(script_name(), stamp.as_bytes(), &mut write_stderr);
    }

    /// Writes the leak report of this heap to `sink` and returns how many
    /// leaks it found. Flushes the fastcache first: cached blocks are free
    /// as far as the caller is concerned. Allocates only from libc.
    pub fn write_leak_report(
        &mut self,
        script: &[u8],
        stamp: &[u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> usize {
        self.flush_cache();
        let reserve = self.reserve as usize;
        let leaks: Vec<Leak> = self
            .used_blocks()
            .filter(|b| b.data() as usize != reserve)
            .map(|b| b.data())
            .chain(self.huge_blocks().map(|(p, _)| p))
            .map(|p| {
                // SAFETY: the walks yield live used blocks.
                let usable = unsafe { self.block_size(p) };
                let loc = self.locations.get(p);
                Leak {
                    addr: p as usize,
                    size: loc.map_or(usable, |l| l.size),
                    loc,
                }
            })
            .collect();
        // Per place: how many blocks, and whether its first one is printed.
        let mut groups: HashMap<Place<'_>, (usize, bool)> = HashMap::new();
        for place in leaks.iter().filter_map(Leak::place) {
            groups.entry(place).or_insert((0, false)).0 += 1;
        }
        let mut out = Out::new(sink);
        for l in &leaks {
            let mut repeated = 0;
            if let Some(place) = l.place() {
                let Some(group) = groups.get_mut(&place) else {
                    continue;
                };
                if group.1 {
                    continue;
                }
                group.1 = true;
                repeated = group.0 - 1;
            }
            let (file, line) = l.place().unwrap_or((None, 0));
            out.bytes(b"[");
            out.bytes(stamp);
            out.bytes(b"]  Script:  '");
            out.bytes(script);
            out.bytes(b"'\n");
            out.bytes(file.unwrap_or(UNKNOWN_FILE));
            let _ = write!(
                out,
                "({line}) :  Freeing 0x{:08X} ({} bytes), script=",
                l.addr, l.size
            );
            out.bytes(script);
            out.bytes(b"\n");
            if let Some(loc) = l.loc {
                // SAFETY: as in `Leak::place`.
                if let Some(orig) = unsafe { loc.orig_file_bytes() } {
                    out.bytes(orig);
                    let _ = writeln!(
                        out,
                        "({}) : Actual location (location was relayed)",
                        loc.orig_line
                    );
                }
            }
            if repeated > 0 {
                let s = if repeated > 1 { "s" } else { "" };
                let _ = writeln!(out, "Last leak repeated {repeated} time{s}");
            }
        }
        if !leaks.is_empty() {
            let _ = writeln!(out, "=== Total {} memory leaks detected ===", leaks.len());
        }
        out.flush();
        leaks.len()
    }
}

/// Report text gathered into few write(2) calls.
struct Out<'a> {
    buf: [u8; 4096],
    len: usize,
    sink: &'a mut dyn FnMut(&[u8]),
}

impl<'a> Out<'a> {
    fn new(sink: &'a mut dyn FnMut(&[u8])) -> Out<'a> {
        Out {
            buf: [0; 4096],
            len: 0,
            sink,
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        if self.len + b.len() > self.buf.len() {
            self.flush();
            if b.len() > self.buf.len() {
                (self.sink)(b);
                return;
            }
        }
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    fn flush(&mut self) {
        if self.len > 0 {
            (self.sink)(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn report(h: &mut Heap) -> (usize, String) {
        let mut text = Vec::new();
        let n = h.write_leak_report(b"t.php", b"STAMP", &mut |b| text.extend_from_slice(b));
        (n, String::from_utf8(text).unwrap())
    }

    fn at(size: usize, file: &'static CStr, line: u32) -> Location {
        Location {
            size,
            file: file.as_ptr(),
            line,
            orig_file: ptr::null(),
            orig_line: 0,
        }
    }

    #[test]
    fn a_heap_without_leaks_prints_nothing() {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.start();
        let p = h.alloc(100).unwrap().as_ptr();
        // SAFETY: `p` is live and freed once; it stays in the fastcache.
        unsafe { h.free(p) };
        assert_eq!(report(&mut h), (0, String::new()));
    }

    #[test]
    fn leaks_are_grouped_by_place_in_walk_order() {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.start();
        let a = h.alloc(10).unwrap().as_ptr();
        let b = h.alloc(20).unwrap().as_ptr();
        let c = h.alloc(30).unwrap().as_ptr();
        let d = h.alloc(40).unwrap().as_ptr();
        let e = h.alloc(50).unwrap().as_ptr();
        let cached = h.alloc(60).unwrap().as_ptr();
        assert!(a < b && b < c && c < d && d < e, "carved in address order");
        // A copy of the name at another address: places compare by content.
        let other_copy = std::ffi::CString::new("x.c").unwrap();
        h.locations.insert(a, at(10, c"x.c", 7));
        h.locations.insert(c, at(30, c"y.c", 9));
        h.locations.insert(
            d,
            Location {
                file: other_copy.as_ptr(),
                ..at(40, c"x.c", 7)
            },
        );
        h.locations.insert(
            e,
            Location {
                orig_file: c"z.c".as_ptr(),
                orig_line: 3,
                ..at(50, c"w.c", 1)
            },
        );
        // SAFETY: `cached` is live and freed once: it rests in the fastcache.
        unsafe { h.free(cached) };
        let (n, text) = report(&mut h);
        assert_eq!(n, 5);
        // SAFETY: `b` is live.
        let b_size = unsafe { h.block_size(b) };
        let expected = format!(
            "[STAMP]  Script:  't.php'\n\
             x.c(7) :  Freeing 0x{a:08X} (10 bytes), script=t.php\n\
             Last leak repeated 1 time\n\
             [STAMP]  Script:  't.php'\n\
             Unknown(0) :  Freeing 0x{b:08X} ({b_size} bytes), script=t.php\n\
             [STAMP]  Script:  't.php'\n\
             y.c(9) :  Freeing 0x{c:08X} (30 bytes), script=t.php\n\
             [STAMP]  Script:  't.php'\n\
             w.c(1) :  Freeing 0x{e:08X} (50 bytes), script=t.php\n\
             z.c(3) : Actual location (location was relayed)\n\
             === Total 5 memory leaks detected ===\n",
            a = a as usize,
            b = b as usize,
            c = c as usize,
            e = e as usize,
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn repeats_say_times_in_the_plural() {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.start();
        let first = h.alloc(1).unwrap().as_ptr();
        h.locations.insert(first, at(1, c"r.c", 5));
        for _ in 0..3 {
            let p = h.alloc(1).unwrap().as_ptr();
            h.locations.insert(p, at(1, c"r.c", 5));
        }
        let (n, text) = report(&mut h);
        assert_eq!(n, 4);
        assert!(text.contains(&format!(
            "r.c(5) :  Freeing 0x{:08X} (1 bytes), script=t.php\nLast leak repeated 3 times\n",
            first as usize
        )));
        assert!(text.ends_with("=== Total 4 memory leaks detected ===\n"));
    }

    #[test]
    fn release_abi_blocks_are_reported_one_by_one() {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.start();
        let p = h.alloc(1).unwrap().as_ptr();
        let q = h.alloc(100).unwrap().as_ptr();
        let (n, text) = report(&mut h);
        assert_eq!(n, 2);
        let expected = format!(
            "[STAMP]  Script:  't.php'\n\
             Unknown(0) :  Freeing 0x{:08X} (24 bytes), script=t.php\n\
             [STAMP]  Script:  't.php'\n\
             Unknown(0) :  Freeing 0x{:08X} (104 bytes), script=t.php\n\
             === Total 2 memory leaks detected ===\n",
            p as usize, q as usize
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn the_time_stamp_has_asctimes_shape() {
        let s = time_stamp();
        let s = core::str::from_utf8(s.as_bytes()).unwrap();
        // "Thu Jan  1 12:00:00 2026"
        assert_eq!(s.len(), 24, "{s:?}");
        assert_eq!(&s[3..4], " ");
        assert_eq!(&s[13..14], ":");
    }
}
