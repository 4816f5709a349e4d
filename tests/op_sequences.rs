//! Seeded random programs of alloc / calloc / realloc / free / limit /
//! request-shutdown operations, checked against a simple model after every
//! step: contents by pattern, usage equal to the model's sum, no overlap,
//! and the heap validator (every segment, block, list and the cache).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use zendmm::heap::Heap;
use zendmm::storage::{self, Storage};
use zendmm::{Config, MemError};

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A storage that can be told to refuse, wrapping a real backend.
struct Flaky {
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

struct Live {
    len: usize,
    seed: u8,
}

/// Bytes checked per block: all of a small one, the two ends of a big one.
const EDGE: usize = 2048;

fn pattern(seed: u8, i: usize) -> u8 {
    seed.wrapping_add((i as u8).wrapping_mul(31)) ^ (i >> 8) as u8
}

fn ranges(len: usize) -> [(usize, usize); 2] {
    if len <= 2 * EDGE {
        [(0, len), (len, len)]
    } else {
        [(0, EDGE), (len - EDGE, len)]
    }
}

fn fill(p: *mut u8, len: usize, seed: u8) {
    for (a, b) in ranges(len) {
        for i in a..b {
            // SAFETY: `p` has `len` bytes.
            unsafe { *p.add(i) = pattern(seed, i) };
        }
    }
}

fn verify(p: *mut u8, len: usize, seed: u8, what: &str) {
    for (a, b) in ranges(len) {
        for i in a..b {
            // SAFETY: `p` has `len` bytes.
            let got = unsafe { *p.add(i) };
            assert_eq!(got, pattern(seed, i), "{what}: byte {i} of {len} at {p:p}");
        }
    }
}

struct Walk {
    heap: Heap,
    flaky: &'static Flaky,
    rng: Rng,
    live: BTreeMap<usize, Live>,
    /// `usage(false)` right after the last request start (the reserve).
    base: usize,
    seg: usize,
    errors: usize,
}

impl Walk {
    fn new(seed: u64) -> Walk {
        let mut rng = Rng(seed);
        let seg = [4096usize, 16384, 65536, 262144][rng.below(4) as usize];
        let inner = storage::BACKENDS[rng.below(3) as usize];
        let flaky: &'static Flaky = Box::leak(Box::new(Flaky {
            inner,
            fail: AtomicBool::new(false),
        }));
        let mut heap = Heap::with_config(Config {
            storage: flaky,
            segment_size: seg,
            compact_size: 1 << 20,
        });
        heap.start();
        let base = heap.usage(false);
        assert_eq!(base, 8192 + 16, "the reserve is the only block at start");
        Walk {
            heap,
            flaky,
            rng,
            live: BTreeMap::new(),
            base,
            seg,
            errors: 0,
        }
    }

    fn size(&mut self) -> usize {
        let r = self.rng.below(100);
        let seg = self.seg as u64;
        (match r {
            0..=59 => self.rng.below(521),
            60..=84 => 521 + self.rng.below(seg / 2),
            85..=96 => self.rng.below(2 * seg),
            _ => self.rng.below(8 * seg),
        }) as usize
    }

    fn pick(&mut self) -> Option<usize> {
        if self.live.is_empty() {
            return None;
        }
        let n = self.rng.below(self.live.len() as u64) as usize;
        self.live.keys().nth(n).copied()
    }

    fn add(&mut self, p: *mut u8, len: usize, seed: u8) {
        let addr = p as usize;
        assert_eq!(addr % 8, 0, "alignment");
        // SAFETY: `p` is live in this heap.
        let usable = unsafe { self.heap.block_size(p) };
        assert!(usable >= len, "usable {usable} < requested {len}");
        if let Some((&a, l)) = self.live.range(..addr).next_back() {
            assert!(a + l.len.max(1) <= addr, "overlap with {a:#x}");
        }
        if let Some((&a, _)) = self.live.range(addr..).next() {
            assert!(addr + usable <= a - 16, "overlap with {a:#x}");
        }
        self.live.insert(addr, Live { len, seed });
    }

    fn model_usage(&self) -> usize {
        // SAFETY: every key is a live block of this heap.
        self.base
            + self
                .live
                .keys()
                .map(|&a| unsafe { self.heap.block_size(a as *mut u8) } + 16)
                .sum::<usize>()
    }

    fn expect_error(&mut self, e: MemError) {
        self.errors += 1;
        match e {
            MemError::Limit { limit, tried } => {
                assert_eq!(limit, self.heap.limit());
                assert!(
                    self.heap.usage(true) + tried > limit,
                    "limit error without cause"
                );
                let msg = e.to_string();
                assert_eq!(msg, format!("Allowed memory size of {limit} bytes exhausted (tried to allocate {tried} bytes)"));
            }
            MemError::OutOfMemory { .. } => assert!(self.flaky.fail.load(Ordering::Relaxed)),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn step(&mut self) {
        let op = self.rng.below(1000);
        let bias_free = self.live.len() > 300;
        match op {
            0..=399 if !bias_free => {
                let n = self.size();
                let seed = self.rng.next() as u8;
                match self.heap.alloc(n) {
                    Ok(p) => {
                        fill(p.as_ptr(), n, seed);
                        self.add(p.as_ptr(), n, seed);
                    }
                    Err(e) => self.expect_error(e),
                }
            }
            400..=449 if !bias_free => {
                let n = self.size();
                match self.heap.alloc(n) {
                    Ok(p) => {
                        // SAFETY: fresh block of `n` bytes (what ecalloc does).
                        unsafe { p.as_ptr().write_bytes(0, n) };
                        let seed = self.rng.next() as u8;
                        // SAFETY: the block has `n` bytes.
                        let head = unsafe { std::slice::from_raw_parts(p.as_ptr(), n.min(64)) };
                        assert!(head.iter().all(|&b| b == 0));
                        fill(p.as_ptr(), n, seed);
                        self.add(p.as_ptr(), n, seed);
                    }
                    Err(e) => self.expect_error(e),
                }
            }
            450..=649 => {
                let Some(a) = self.pick() else { return };
                let n = self.size();
                let old = self.live.remove(&a).unwrap();
                verify(a as *mut u8, old.len, old.seed, "before realloc");
                // SAFETY: `a` is live in this heap.
                match unsafe { self.heap.realloc(a as *mut u8, n) } {
                    Ok(p) => {
                        let keep = old.len.min(n);
                        // Only the ends of a big block carry the pattern.
                        let checked = if old.len <= 2 * EDGE {
                            keep
                        } else {
                            keep.min(EDGE)
                        };
                        verify(p.as_ptr(), checked, old.seed, "after realloc");
                        let seed = self.rng.next() as u8;
                        fill(p.as_ptr(), n, seed);
                        self.add(p.as_ptr(), n, seed);
                    }
                    Err(e) => {
                        verify(a as *mut u8, old.len, old.seed, "after failed realloc");
                        self.live.insert(a, old);
                        self.expect_error(e);
                    }
                }
            }
            650..=989 => {
                let Some(a) = self.pick() else { return };
                let old = self.live.remove(&a).unwrap();
                verify(a as *mut u8, old.len, old.seed, "before free");
                // SAFETY: `a` is live in this heap.
                unsafe { self.heap.free(a as *mut u8) };
            }
            990..=993 => {
                let real = self.heap.usage(true);
                let want = real / 2 + self.rng.below((3 * real) as u64 + 1) as usize;
                match self.heap.set_limit(want) {
                    Ok(()) => assert_eq!(self.heap.limit(), want.max(self.seg)),
                    Err(_) => assert!(want.max(self.seg) < self.heap.usage(true)),
                }
            }
            994..=995 => {
                let f = !self.flaky.fail.load(Ordering::Relaxed) && self.rng.below(4) == 0;
                self.flaky.fail.store(f, Ordering::Relaxed);
            }
            996 => self.heap.reset_peak_usage(),
            997..=998 => {
                self.flaky.fail.store(false, Ordering::Relaxed);
                self.heap.shutdown(false, true);
                self.live.clear();
                self.base = self.heap.usage(false);
                assert_eq!(self.base, 8192 + 16);
            }
            _ => {
                let _ = self.heap.set_limit(usize::MAX);
            }
        }
    }

    fn check(&self, step: usize) {
        if let Err(e) = self.heap.validate() {
            panic!("step {step}: {e}");
        }
        assert_eq!(
            self.heap.usage(false),
            self.model_usage(),
            "step {step}: usage"
        );
        assert!(self.heap.peak_usage(false) >= self.heap.usage(false));
        assert!(self.heap.peak_usage(true) >= self.heap.usage(true));
        assert!(self.heap.usage(true) <= self.heap.limit());
    }
}

fn run(seed: u64, steps: usize) -> usize {
    let mut w = Walk::new(seed);
    for i in 0..steps {
        w.step();
        w.check(i);
    }
    let errors = w.errors;
    w.heap.shutdown(true, true);
    assert_eq!((w.heap.usage(true), w.heap.segment_count()), (0, 0));
    errors
}

/// 16 seeds x 65,536 steps = 1,048,576 checked operations, in four tests so
/// both cores work.
fn run_seeds(seeds: std::ops::Range<u64>) {
    let errors: usize = seeds.map(|s| run(0x5EED_0000 + s, 65_536)).sum();
    assert!(
        errors > 0,
        "the walk never reached the limit or a storage failure"
    );
}

#[test]
fn walk_seeds_0_to_3() {
    run_seeds(0..4);
}
#[test]
fn walk_seeds_4_to_7() {
    run_seeds(4..8);
}
#[test]
fn walk_seeds_8_to_11() {
    run_seeds(8..12);
}
#[test]
fn walk_seeds_12_to_15() {
    run_seeds(12..16);
}
