//! `ZEND_MM_DEBUG` (PHP 8.5's variable and option names): poisoning, a
//! canary after every block's requested bytes, and a heap check at request
//! end. Also the random words behind the link key.
//!
//! In debug mode every block carries a trailer: its last usable word holds
//! the size the caller asked for, and the bytes between that size and the
//! trailer (the rounding slack plus `padding`) hold `CANARY`. A free, a
//! realloc and the shutdown check count how far the canary was overwritten.
//! The fastcache is off in this mode, so every free takes the checked path.

use crate::block::HEADER_SIZE;
use crate::heap::Heap;
use crate::huge::Live;
use crate::report::{corrupted, MemError, StackBuf};
use core::fmt::Write;
use core::ptr::{self, NonNull};

/// The byte written after a block's requested size.
pub const CANARY: u8 = 0xDE;
/// Largest `padding` accepted.
pub const MAX_PADDING: usize = 4096;
const TRAILER: usize = core::mem::size_of::<usize>();

/// Parsed `ZEND_MM_DEBUG`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugConfig {
    /// Set whenever the variable is; the trailer and canary come with it.
    pub on: bool,
    pub poison_alloc: Option<u8>,
    pub poison_free: Option<u8>,
    pub padding: usize,
    pub check_on_shutdown: bool,
}

impl DebugConfig {
    pub const OFF: DebugConfig = DebugConfig {
        on: false,
        poison_alloc: None,
        poison_free: None,
        padding: 0,
        check_on_shutdown: false,
    };

    /// `poison_alloc=BYTE,poison_free=BYTE,padding=N,check_freelists_on_shutdown=0|1`,
    /// any subset, comma separated; numbers in decimal or `0x` hex.
    pub fn parse(value: &str) -> Result<DebugConfig, String> {
        let bad = |why: &str| format!("ZEND_MM_DEBUG: {why}, got '{value}'\n");
        let mut cfg = DebugConfig {
            on: true,
            ..DebugConfig::OFF
        };
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, v) = item
                .split_once('=')
                .ok_or_else(|| bad(&format!("'{item}' is not name=value")))?;
            let n = parse_number(v.trim())
                .ok_or_else(|| bad(&format!("{key} needs a number, not '{v}'")))?;
            match key.trim() {
                "poison_alloc" | "poison_free" if n > 255 => {
                    return Err(bad(&format!("{key} must be a byte (0..255), not {n}")))
                }
                "poison_alloc" => cfg.poison_alloc = Some(n as u8),
                "poison_free" => cfg.poison_free = Some(n as u8),
                "padding" if n > MAX_PADDING => {
                    return Err(bad(&format!("padding must be 0..{MAX_PADDING}, not {n}")))
                }
                "padding" => cfg.padding = n,
                "check_freelists_on_shutdown" if n > 1 => {
                    return Err(bad("check_freelists_on_shutdown must be 0 or 1"))
                }
                "check_freelists_on_shutdown" => cfg.check_on_shutdown = n == 1,
                other => {
                    return Err(bad(&format!(
                        "unknown option '{other}' (poison_alloc, poison_free, padding, check_freelists_on_shutdown)"
                    )))
                }
            }
        }
        Ok(cfg)
    }
}

fn parse_number(s: &str) -> Option<usize> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => usize::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A random non-zero word: `getrandom(2)`, or time, pid and an address mixed
/// when the kernel has none to give.
pub fn random_word() -> usize {
    let mut w = 0usize;
    // SAFETY: the kernel writes at most `size_of::<usize>()` bytes into `w`.
    let n = unsafe {
        libc::getrandom(
            (&mut w as *mut usize).cast(),
            core::mem::size_of::<usize>(),
            libc::GRND_NONBLOCK,
        )
    };
    if n != core::mem::size_of::<usize>() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as usize);
        // SAFETY: plain libc call.
        let pid = unsafe { libc::getpid() } as usize;
        w = t.rotate_left(17) ^ pid.rotate_left(43) ^ (&w as *const usize as usize);
    }
    // A key of 0 would store links in the clear.
    w | 0x10
}

impl Heap {
    /// Switches debug mode; only while the heap holds no block.
    pub(crate) fn set_debug(&mut self, cfg: DebugConfig) {
        self.debug = cfg;
        self.cache.set_enabled(!cfg.on, self.used_bits);
    }

    /// Allocates `size` bytes plus trailer and padding, writes the canary.
    pub(crate) fn debug_alloc(&mut self, size: usize) -> Result<NonNull<u8>, MemError> {
        let overhead = self.debug.padding + TRAILER;
        let inner = size.checked_add(overhead).ok_or(MemError::OverflowAdd {
            size,
            overhead: self.segment_size,
        })?;
        let p = self.alloc_block(inner)?;
        // SAFETY: `p` is a fresh block of at least `inner` usable bytes.
        unsafe {
            let usable = Heap::live_usable(self.live(p.as_ptr(), "emalloc"));
            let trailer = p.as_ptr().add(usable - TRAILER);
            trailer.cast::<usize>().write_unaligned(size);
            ptr::write_bytes(p.as_ptr().add(size), CANARY, usable - TRAILER - size);
            if let Some(byte) = self.debug.poison_alloc {
                ptr::write_bytes(p.as_ptr(), byte, size);
            }
        }
        Ok(p)
    }

    /// Live block `p` (huge ones included), its usable bytes and the size
    /// the caller asked for, after checking the block and its canary.
    ///
    /// # Safety
    /// `p` points into readable memory 8 bytes before it.
    unsafe fn debug_checked(&self, p: *mut u8, op: &str) -> (Live, usize, usize) {
        // SAFETY: `live` validates the header before trusting it.
        unsafe {
            let l = self.live(p, op);
            let usable = Heap::live_usable(l);
            let block = usable + HEADER_SIZE;
            let size = p.add(usable - TRAILER).cast::<usize>().read_unaligned();
            if size > usable - TRAILER {
                let mut m = StackBuf::new();
                let _ = write!(
                    m,
                    "{op}: block trailer overwritten (records {size} bytes in a {usable}-byte block)"
                );
                corrupted(m.as_str(), p, block);
            }
            let tail = core::slice::from_raw_parts(p.add(size), usable - TRAILER - size);
            if let Some(last) = tail.iter().rposition(|&c| c != CANARY) {
                let mut m = StackBuf::new();
                let _ = write!(
                    m,
                    "{op}: {} byte(s) overflown past the end of a {size}-byte block (canary check)",
                    last + 1
                );
                corrupted(m.as_str(), p, block);
            }
            (l, usable, size)
        }
    }

    /// # Safety
    /// As [`Heap::free`].
    pub(crate) unsafe fn debug_free(&mut self, p: *mut u8) {
        // SAFETY: caller's contract; the block is checked first.
        unsafe {
            let (l, usable, _) = self.debug_checked(p, "efree");
            if let Some(byte) = self.debug.poison_free {
                ptr::write_bytes(p, byte, usable);
            }
            self.free_live(l);
        }
    }

    /// Debug realloc always moves the block, so the canary moves with it.
    ///
    /// # Safety
    /// As [`Heap::realloc2`], `p` not null.
    pub(crate) unsafe fn debug_realloc(
        &mut self,
        p: *mut u8,
        size: usize,
        copy: usize,
    ) -> Result<NonNull<u8>, MemError> {
        // SAFETY: caller's contract; the old block is checked before use.
        unsafe {
            let (_, _, old) = self.debug_checked(p, "erealloc");
            let q = self.debug_alloc(size)?;
            crate::tool::copy_to_fresh_block(p, q.as_ptr(), old.min(size).min(copy));
            self.debug_free(p);
            Ok(q)
        }
    }

    /// # Safety
    /// `p` is a live block of this heap.
    pub(crate) unsafe fn debug_block_size(&self, p: *mut u8) -> usize {
        // SAFETY: caller's contract.
        unsafe { self.debug_checked(p, "block size").2 }
    }

    /// `check_freelists_on_shutdown=1`: the whole-heap check, then every
    /// live block's canary. Problems end in the corruption report.
    pub(crate) fn debug_check_on_shutdown(&self) {
        let problems = self.check();
        if let Some(first) = problems.first() {
            for p in &problems {
                crate::report::write_stderr(format!("zendmm_check_heap: {p}\n").as_bytes());
            }
            let mut m = StackBuf::new();
            let _ = write!(
                m,
                "request shutdown: heap check found {} problem(s), the first: {first}",
                problems.len()
            );
            corrupted(m.as_str(), ptr::null_mut(), 0);
        }
        let mut seg = self.segments.head();
        while !seg.is_null() {
            // SAFETY: the heap check above passed, so tags are sound.
            unsafe {
                let mut b = seg.first_block();
                while !b.tag().is_guard() {
                    if b.tag().is_used() {
                        self.debug_checked(b.data(), "request shutdown");
                    }
                    b = b.next();
                }
                seg = seg.next();
            }
        }
        for (p, _) in self.huge_blocks() {
            // SAFETY: listed huge blocks are live.
            unsafe { self.debug_checked(p, "request shutdown") };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_php_names_and_rejects_bad_values() {
        let c = DebugConfig::parse(
            "poison_alloc=0xaa,poison_free=85,padding=16,check_freelists_on_shutdown=1",
        )
        .unwrap();
        assert_eq!(
            c,
            DebugConfig {
                on: true,
                poison_alloc: Some(0xaa),
                poison_free: Some(85),
                padding: 16,
                check_on_shutdown: true
            }
        );
        assert_eq!(
            DebugConfig::parse("").unwrap(),
            DebugConfig {
                on: true,
                ..DebugConfig::OFF
            }
        );
        assert_eq!(
            DebugConfig::parse("poison_alloc=300").unwrap_err(),
            "ZEND_MM_DEBUG: poison_alloc must be a byte (0..255), not 300, got 'poison_alloc=300'\n"
        );
        assert_eq!(
            DebugConfig::parse("padding=lots").unwrap_err(),
            "ZEND_MM_DEBUG: padding needs a number, not 'lots', got 'padding=lots'\n"
        );
        assert!(DebugConfig::parse("colour=1")
            .unwrap_err()
            .contains("unknown option 'colour'"));
        assert!(DebugConfig::parse("padding")
            .unwrap_err()
            .contains("is not name=value"));
        assert!(DebugConfig::parse("padding=5000").is_err());
    }

    #[test]
    fn canary_catches_a_one_byte_overflow_in_the_slack() {
        let mut h = Heap::default();
        h.set_debug(DebugConfig::parse("padding=0").unwrap());
        let p = h.alloc(10).unwrap().as_ptr();
        // SAFETY: `p` is live with 10 requested bytes.
        unsafe {
            assert_eq!(h.block_size(p), 10);
            assert_eq!(*p.add(10), CANARY);
            let q = h.realloc(p, 100).unwrap().as_ptr();
            assert_eq!(h.block_size(q), 100);
            h.free(q);
        }
        assert!(h.check().is_empty());
    }
}
