//! The operation grammar and the model behind the seeded walk
//! (`tests/op_sequences.rs`) and the fuzz target (`fuzz/fuzz_targets/ops.rs`),
//! shared so that both drive the heap the same way.
//!
//! A walk owns a `Heap` on a storage that can be told to refuse, and a model
//! of what must be live: every block's address, length and contents. Each
//! operation is checked as it runs (contents by pattern, alignment, no
//! overlap, zeroed calloc memory, every error's exact values); `check`
//! compares usage with the model's sum, the peaks and the limit, and runs
//! the full heap validator.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use zendmm::block::{true_size, HEADER_SIZE};
use zendmm::heap::{Heap, LimitBelowUsage};
use zendmm::segment::SEGMENT_OVERHEAD;
use zendmm::storage::{self, Storage};
use zendmm::{Config, MemError};

/// Where the walk's choices come from: a seeded PRNG in the tests, the
/// fuzzer's bytes in the fuzz target.
pub trait Choose {
    /// A number in `0..n`; `n > 0`.
    fn below(&mut self, n: u64) -> u64;
}

/// splitmix64: small, fast and the same everywhere.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Choose for Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One operation. Blocks are named by `pick`, taken modulo the number of
/// live blocks when the operation runs, so every sequence is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Alloc {
        size: usize,
        seed: u8,
    },
    /// `ecalloc(nmemb, size)`: the block must read as zeros until freed.
    Calloc {
        nmemb: usize,
        size: usize,
    },
    Realloc {
        pick: usize,
        size: usize,
        seed: u8,
    },
    Free {
        pick: usize,
    },
    /// `memory_limit` = real usage x `scale` / 256: below the usage it must
    /// be refused with the exact figures, above it must hold.
    SetLimit {
        scale: u16,
    },
    /// No limit to speak of.
    Unlimit,
    /// The storage refuses (or stops refusing) every segment.
    StorageFails(bool),
    ResetPeak,
    /// `zend_mm_gc`: the fastcache is flushed, usage is unchanged.
    Gc,
    /// End of request: every block is forgotten, only the reserve is left.
    Shutdown,
    /// Full shutdown (nothing left), then a new start.
    Restart,
    /// The heap validator and the model checks, now.
    Check,
}

impl Op {
    /// Draws an operation. Sizes come in bands scaled to the segment size;
    /// with many blocks live, frees win over allocations.
    pub fn choose(c: &mut impl Choose, seg: usize, live: usize) -> Op {
        let pick = c.below(1 << 20) as usize;
        match c.below(1000) {
            0..=389 if live <= 300 => Op::Alloc {
                size: size(c, seg),
                seed: c.below(256) as u8,
            },
            390..=439 if live <= 300 => {
                let n = size(c, seg);
                let factor = 1 << c.below(4);
                let (nmemb, size) = if c.below(2) == 0 {
                    (factor, n / factor)
                } else {
                    (n / factor, factor)
                };
                Op::Calloc { nmemb, size }
            }
            440..=639 => Op::Realloc {
                pick,
                size: size(c, seg),
                seed: c.below(256) as u8,
            },
            640..=979 | 0..=439 => Op::Free { pick },
            980..=983 => Op::SetLimit {
                scale: c.below(3 * 256) as u16,
            },
            984..=985 => Op::StorageFails(c.below(4) == 0),
            986 => Op::ResetPeak,
            987..=988 => Op::Gc,
            989..=990 => Op::Shutdown,
            991 => Op::Restart,
            992..=996 => Op::Check,
            _ => Op::Unlimit,
        }
    }
}

fn size(c: &mut impl Choose, seg: usize) -> usize {
    let seg = seg as u64;
    (match c.below(100) {
        0..=59 => c.below(521),
        60..=84 => 521 + c.below(seg / 2),
        85..=96 => c.below(2 * seg),
        _ => c.below(8 * seg),
    }) as usize
}

/// A storage that can be told to refuse, wrapping a real backend.
pub struct Flaky {
    inner: &'static dyn Storage,
    fail: AtomicBool,
}

// SAFETY: forwards to a real backend, or refuses.
unsafe impl Storage for Flaky {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn alloc(&self, size: usize) -> *mut u8 {
        if self.fail.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        self.inner.alloc(size)
    }
    unsafe fn realloc(&self, p: *mut u8, old: usize, new: usize) -> *mut u8 {
        if self.fail.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded contract.
        unsafe { self.inner.realloc(p, old, new) }
    }
    unsafe fn free(&self, p: *mut u8, size: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.inner.free(p, size) }
    }
}

thread_local! {
    /// One switchable wrapper per backend and thread: walks on other threads
    /// (the test harness runs several) never share a switch, and nothing is
    /// leaked per walk (the fuzzer runs millions).
    static FLAKY: [&'static Flaky; 3] = storage::BACKENDS.map(|inner| {
        &*Box::leak(Box::new(Flaky { inner, fail: AtomicBool::new(false) }))
    });
}

/// What a live block must contain.
#[derive(Clone, Copy, Debug)]
enum Fill {
    Pattern(u8),
    Zero,
}

struct Live {
    len: usize,
    fill: Fill,
}

/// Bytes checked per block: all of a small one, the two ends of a big one.
const EDGE: usize = 2048;
/// The reserve every request starts with (8 KiB and its header).
const RESERVE: usize = 8192;

fn byte(fill: Fill, i: usize) -> u8 {
    match fill {
        Fill::Pattern(seed) => seed.wrapping_add((i as u8).wrapping_mul(31)) ^ (i >> 8) as u8,
        Fill::Zero => 0,
    }
}

fn ranges(len: usize) -> [(usize, usize); 2] {
    if len <= 2 * EDGE {
        [(0, len), (len, len)]
    } else {
        [(0, EDGE), (len - EDGE, len)]
    }
}

fn fill(p: *mut u8, len: usize, fill: Fill) {
    for (a, b) in ranges(len) {
        for i in a..b {
            // SAFETY: `p` has `len` bytes.
            unsafe { *p.add(i) = byte(fill, i) };
        }
    }
}

/// Checks the bytes `fill` put in the first `upto` of `len` bytes.
fn verify(p: *mut u8, len: usize, upto: usize, f: Fill, what: &str) {
    for (a, b) in ranges(len) {
        for i in a..b.min(upto) {
            // SAFETY: `p` has at least `upto` bytes.
            let got = unsafe { *p.add(i) };
            assert_eq!(got, byte(f, i), "{what}: byte {i} of {len} at {p:p}");
        }
    }
}

/// What a walk met, so the tests can insist it met everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub ops: usize,
    pub limit_errors: usize,
    pub storage_errors: usize,
    pub limits_refused: usize,
    pub limits_set: usize,
    pub shutdowns: usize,
    pub checks: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.ops += o.ops;
        self.limit_errors += o.limit_errors;
        self.storage_errors += o.storage_errors;
        self.limits_refused += o.limits_refused;
        self.limits_set += o.limits_set;
        self.shutdowns += o.shutdowns;
        self.checks += o.checks;
    }
}

pub struct Walk {
    heap: Heap,
    flaky: &'static Flaky,
    live: BTreeMap<usize, Live>,
    /// `usage(false)` right after the last request start (the reserve).
    base: usize,
    seg: usize,
    pub tally: Tally,
}

impl Walk {
    /// A started heap with a segment size and a backend drawn from `c`.
    pub fn new(c: &mut impl Choose) -> Walk {
        let seg = [4096usize, 16384, 65536, 262144][c.below(4) as usize];
        let flaky = FLAKY.with(|f| f[c.below(3) as usize]);
        flaky.fail.store(false, Ordering::Relaxed);
        // Half the walks run with heap protection off (ZENDMM_PROTECT=0).
        let protect = c.below(2) == 0;
        let mut heap = Heap::with_config(Config {
            storage: flaky,
            segment_size: seg,
            compact_size: 1 << 20,
            protect,
            ..Config::DEFAULT
        });
        heap.start();
        let mut w = Walk {
            heap,
            flaky,
            live: BTreeMap::new(),
            base: 0,
            seg,
            tally: Tally::default(),
        };
        w.started();
        w
    }

    pub fn segment_size(&self) -> usize {
        self.seg
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Segment bytes a fresh block of `n` bytes needs.
    fn segment_for(&self, n: usize) -> usize {
        let ts = true_size(n).expect("walk sizes are small");
        if ts > self.seg - SEGMENT_OVERHEAD {
            (ts + SEGMENT_OVERHEAD).div_ceil(self.seg) * self.seg
        } else {
            self.seg
        }
    }

    /// A request has just started: only the reserve is live, in one segment.
    fn started(&mut self) {
        self.live.clear();
        self.base = self.heap.usage(false);
        assert_eq!(
            Some(self.base),
            true_size(RESERVE),
            "the reserve is the only block"
        );
        assert_eq!(self.heap.peak_usage(false), self.base, "peak restarts");
        assert_eq!(self.heap.usage(true), self.segment_for(RESERVE));
        assert_eq!(self.heap.segment_count(), 1);
    }

    fn pick(&self, pick: usize) -> Option<usize> {
        if self.live.is_empty() {
            return None;
        }
        self.live.keys().nth(pick % self.live.len()).copied()
    }

    fn add(&mut self, p: *mut u8, len: usize, f: Fill) {
        let addr = p as usize;
        assert_eq!(addr % 16, 0, "alignment");
        // SAFETY: `p` is live in this heap.
        let usable = unsafe { self.heap.block_size(p) };
        assert!(usable >= len, "usable {usable} < requested {len}");
        if let Some((&a, l)) = self.live.range(..addr).next_back() {
            assert!(a + l.len.max(1) <= addr, "overlap with {a:#x}");
        }
        if let Some((&a, _)) = self.live.range(addr..).next() {
            assert!(addr + usable <= a - HEADER_SIZE, "overlap with {a:#x}");
        }
        self.live.insert(addr, Live { len, fill: f });
    }

    fn model_usage(&self) -> usize {
        // SAFETY: every key is a live block of this heap.
        self.base
            + self
                .live
                .keys()
                .map(|&a| unsafe { self.heap.block_size(a as *mut u8) } + HEADER_SIZE)
                .sum::<usize>()
    }

    /// An allocation of `n` bytes failed: the figures must be the ones the
    /// heap's state explains, exactly. `grown` is true for a realloc, which
    /// may have tried to grow the block's own segment instead.
    fn expect_error(&mut self, e: MemError, n: usize, grown: bool) {
        let fresh = self.segment_for(n);
        let real = self.heap.usage(true);
        let tried = match e {
            MemError::Limit { limit, tried } => {
                self.tally.limit_errors += 1;
                assert_eq!(limit, self.heap.limit());
                assert!(real + tried > limit, "limit error without cause: {e}");
                assert_eq!(e.to_string(), format!("Allowed memory size of {limit} bytes exhausted (tried to allocate {tried} bytes)"));
                tried
            }
            MemError::OutOfMemory { allocated, tried } => {
                self.tally.storage_errors += 1;
                assert!(
                    self.flaky.fail.load(Ordering::Relaxed),
                    "{e} with a working storage"
                );
                assert_eq!(allocated, real);
                assert!(
                    real + tried <= self.heap.limit(),
                    "{e}: the limit comes first"
                );
                tried
            }
            other => panic!("unexpected {other:?} for {n} bytes"),
        };
        if grown {
            assert!(
                tried > 0 && tried <= fresh && tried % self.seg == 0,
                "{e} for {n} bytes"
            );
        } else {
            assert_eq!(tried, fresh, "{e} for {n} bytes");
        }
    }

    pub fn apply(&mut self, op: Op) {
        self.tally.ops += 1;
        match op {
            Op::Alloc { size, seed } => match self.heap.alloc(size) {
                Ok(p) => {
                    fill(p.as_ptr(), size, Fill::Pattern(seed));
                    self.add(p.as_ptr(), size, Fill::Pattern(seed));
                }
                Err(e) => self.expect_error(e, size, false),
            },
            Op::Calloc { nmemb, size } => {
                let n = nmemb.checked_mul(size).expect("walk products fit");
                match self.heap.alloc(n) {
                    Ok(p) => {
                        // What `_ecalloc` does after allocating.
                        // SAFETY: a fresh block of at least `n` bytes.
                        unsafe { p.as_ptr().write_bytes(0, n) };
                        self.add(p.as_ptr(), n, Fill::Zero);
                    }
                    Err(e) => self.expect_error(e, n, false),
                }
            }
            Op::Realloc { pick, size, seed } => {
                let Some(a) = self.pick(pick) else { return };
                let old = self.live.remove(&a).expect("picked block is live");
                verify(a as *mut u8, old.len, old.len, old.fill, "before realloc");
                // SAFETY: `a` is live in this heap.
                match unsafe { self.heap.realloc(a as *mut u8, size) } {
                    Ok(p) => {
                        let keep = old.len.min(size);
                        // Only the ends of a big block carry the pattern.
                        let upto = if old.len <= 2 * EDGE {
                            keep
                        } else {
                            keep.min(EDGE)
                        };
                        verify(p.as_ptr(), old.len, upto, old.fill, "after realloc");
                        fill(p.as_ptr(), size, Fill::Pattern(seed));
                        self.add(p.as_ptr(), size, Fill::Pattern(seed));
                    }
                    Err(e) => {
                        verify(
                            a as *mut u8,
                            old.len,
                            old.len,
                            old.fill,
                            "after failed realloc",
                        );
                        self.live.insert(a, old);
                        self.expect_error(e, size, true);
                    }
                }
            }
            Op::Free { pick } => {
                let Some(a) = self.pick(pick) else { return };
                let old = self.live.remove(&a).expect("picked block is live");
                verify(a as *mut u8, old.len, old.len, old.fill, "before free");
                // SAFETY: `a` is live in this heap.
                unsafe { self.heap.free(a as *mut u8) };
            }
            Op::SetLimit { scale } => {
                let want = self.heap.usage(true) * scale as usize / 256;
                let old = self.heap.limit();
                let effective = want.max(self.seg);
                match self.heap.set_limit(want) {
                    Ok(()) => {
                        self.tally.limits_set += 1;
                        assert_eq!(self.heap.limit(), effective);
                        assert!(self.heap.usage(true) <= effective);
                    }
                    Err(e) => {
                        self.tally.limits_refused += 1;
                        // The cache was flushed first: the figures are the ones after it.
                        let real_usage = self.heap.usage(true);
                        assert_eq!(
                            e,
                            LimitBelowUsage {
                                limit: effective,
                                real_usage
                            }
                        );
                        assert!(effective < real_usage);
                        assert_eq!(self.heap.limit(), old, "a refused limit changes nothing");
                    }
                }
            }
            Op::Unlimit => {
                self.heap
                    .set_limit(usize::MAX)
                    .expect("no limit is below usage");
                assert_eq!(self.heap.limit(), usize::MAX);
            }
            Op::StorageFails(f) => self.flaky.fail.store(f, Ordering::Relaxed),
            Op::ResetPeak => {
                self.heap.reset_peak_usage();
                // The peak counts blocks resting in the fastcache (keeping it
                // exact would cost the cache's fast path a compare).
                let cached = self.heap.stats().cached_bytes;
                assert_eq!(self.heap.peak_usage(false), self.heap.usage(false) + cached);
                assert_eq!(self.heap.peak_usage(true), self.heap.usage(true));
            }
            Op::Gc => {
                let usage = self.heap.usage(false);
                let cached = self.heap.stats().cached_bytes;
                assert_eq!(self.heap.gc(), cached);
                assert_eq!(self.heap.stats().cached_bytes, 0);
                assert_eq!(self.heap.usage(false), usage, "gc changes no usage");
            }
            Op::Shutdown => {
                self.tally.shutdowns += 1;
                self.flaky.fail.store(false, Ordering::Relaxed);
                let limit = self.heap.limit();
                self.heap.shutdown(false, true);
                assert_eq!(self.heap.limit(), limit, "the limit outlives the request");
                self.started();
            }
            Op::Restart => {
                self.tally.shutdowns += 1;
                self.flaky.fail.store(false, Ordering::Relaxed);
                self.heap.shutdown(true, true);
                assert_eq!(self.heap.usage(true), 0);
                assert_eq!(self.heap.usage(false), 0);
                assert_eq!(self.heap.segment_count(), 0);
                self.heap.start();
                self.started();
            }
            Op::Check => self.check(true),
        }
    }

    /// The model checks; with `validate`, the full heap walk as well.
    pub fn check(&mut self, validate: bool) {
        let ops = self.tally.ops;
        if validate {
            self.tally.checks += 1;
            if let Err(e) = self.heap.validate() {
                panic!("after {ops} operations: {e}");
            }
        }
        assert_eq!(
            self.heap.usage(false),
            self.model_usage(),
            "after {ops} operations: usage"
        );
        assert!(self.heap.peak_usage(false) >= self.heap.usage(false));
        assert!(self.heap.peak_usage(true) >= self.heap.usage(true));
        assert!(self.heap.usage(true) <= self.heap.limit());
    }

    /// Full shutdown: every segment goes back.
    pub fn finish(mut self) -> Tally {
        self.heap.shutdown(true, true);
        assert_eq!((self.heap.usage(true), self.heap.segment_count()), (0, 0));
        self.flaky.fail.store(false, Ordering::Relaxed);
        self.tally
    }
}
