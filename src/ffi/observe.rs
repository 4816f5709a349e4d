//! Statistics the environment switches on for a heap: a record per request
//! end (`ZENDMM_STATS`) and PHP 5.3's cache table at full shutdown
//! (`ZENDMM_CACHE_STAT`). Both are read when the heap starts
//! (`start_memory_manager` for the process heap, `zend_mm_startup`).
//!
//! The cache table needs every fastcache hit and push counted, so a heap
//! with it is *routed* (`zend_mm_heap::routed`, the flag `_emalloc` already
//! tests for custom handlers) through the counting wrappers here; a heap
//! without it keeps its fast path unchanged.

use super::types::zend_mm_heap;
use super::{complete, heap_of, process_heap};
use crate::cache_stat::CacheStat;
use crate::report::{self, StackBuf};
use crate::stat_log::{LogFd, RequestRecord};
use core::sync::atomic::{AtomicU64, Ordering};
use libc::c_void;

/// The statistics state of one heap.
pub(crate) struct Observe {
    /// 0 for the process heap; others are numbered as they start.
    id: u64,
    /// Requests ended so far.
    pub(crate) requests: u64,
    /// The environment was read.
    started: bool,
    stats_log: Option<LogFd>,
    cache: Option<Box<CacheLog>>,
    /// Fastcache counters at the last request end, for per-request figures.
    last_hits: u64,
    last_misses: u64,
}

struct CacheLog {
    fd: LogFd,
    table: CacheStat,
}

static NEXT_HEAP_ID: AtomicU64 = AtomicU64::new(1);

impl Observe {
    pub(crate) const fn new() -> Observe {
        Observe {
            id: 0,
            requests: 0,
            started: false,
            stats_log: None,
            cache: None,
            last_hits: 0,
            last_misses: 0,
        }
    }

    pub(crate) fn counts_cache(&self) -> bool {
        self.cache.is_some()
    }
}

/// Reads `ZENDMM_STATS` and `ZENDMM_CACHE_STAT` for `h`, once per heap; a
/// bad value prints its message and exits 255.
pub(crate) fn start(h: *mut zend_mm_heap) {
    // SAFETY: see `heap_of`.
    let heap = unsafe { &mut *h };
    if heap.observe.started {
        return;
    }
    heap.observe.started = true;
    if h != process_heap() {
        heap.observe.id = NEXT_HEAP_ID.fetch_add(1, Ordering::Relaxed);
    }
    let var = |name| LogFd::from_var(name, std::env::var(name).ok());
    let stats_log = var("ZENDMM_STATS").unwrap_or_else(|e| report::startup_error(&e));
    let cache_log = var("ZENDMM_CACHE_STAT").unwrap_or_else(|e| report::startup_error(&e));
    heap.observe.stats_log = stats_log;
    heap.observe.cache = cache_log.map(|fd| {
        Box::new(CacheLog {
            fd,
            table: CacheStat::new(),
        })
    });
    heap.update_routing();
}

/// Called before `h` shuts down: a request end appends its record, a full
/// shutdown writes the cache table.
pub(crate) fn before_shutdown(h: *mut zend_mm_heap, full: bool) {
    // SAFETY: see `heap_of`.
    let heap = unsafe { &mut *h };
    let obs = &mut heap.observe;
    if full {
        if let Some(c) = obs.cache.as_mut() {
            write_table(obs.id, c);
        }
        return;
    }
    obs.requests += 1;
    let core = &heap.heap;
    let (hits, misses) = (core.cache.hits, core.cache.misses);
    if let Some(fd) = &obs.stats_log {
        let mut line = StackBuf::new();
        RequestRecord {
            request: obs.requests,
            // SAFETY: plain libc call.
            pid: unsafe { libc::getpid() } as u32,
            heap: obs.id,
            usage: core.usage(false),
            peak: core.peak_usage(false),
            real_usage: core.usage(true),
            real_peak: core.peak_usage(true),
            segments: core.segment_count(),
            cached: core.cached(),
            hits: hits.wrapping_sub(obs.last_hits),
            misses: misses.wrapping_sub(obs.last_misses),
        }
        .format(&mut line);
        fd.write(line.as_bytes());
    }
    obs.last_hits = hits;
    obs.last_misses = misses;
}

fn write_table(id: u64, c: &mut CacheLog) {
    // SAFETY: plain libc call.
    let pid = unsafe { libc::getpid() } as u32;
    let fd = &c.fd;
    c.table.write_table(pid, id, &mut |line| fd.write(line));
    c.table.reset();
}

/// The cache table of `h`, when it counts one.
///
/// The table and the core heap are distinct fields of `*h`, so the
/// reference may live while `complete` borrows the core heap.
fn table<'a>(h: *mut zend_mm_heap) -> Option<&'a mut CacheStat> {
    // SAFETY: see `heap_of`; only the `observe` field is borrowed.
    unsafe { (*h).observe.cache.as_mut().map(|c| &mut c.table) }
}

/// `_emalloc` on a heap counting cache statistics.
pub(crate) fn alloc(h: *mut zend_mm_heap, size: usize, fallible: bool) -> *mut c_void {
    match table(h) {
        Some(t) => complete(h, fallible, |heap| t.alloc(heap, size)),
        None => complete(h, fallible, |heap| heap.alloc(size)),
    }
}

/// `_efree` on a heap counting cache statistics.
///
/// # Safety
/// `p` is a live block of `h`.
pub(crate) unsafe fn free(h: *mut zend_mm_heap, p: *mut c_void) {
    // SAFETY: caller's contract; see `heap_of`.
    unsafe {
        let heap = &mut *heap_of(h);
        match table(h) {
            Some(t) => t.free(heap, p.cast()),
            None => heap.free(p.cast()),
        }
    }
}

/// `_erealloc` on a heap counting cache statistics.
///
/// # Safety
/// `p` is NULL or a live block of `h`.
pub(crate) unsafe fn realloc(
    h: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
    copy: usize,
    fallible: bool,
) -> *mut c_void {
    match table(h) {
        // SAFETY: caller's contract.
        Some(t) => complete(h, fallible, |heap| unsafe {
            t.realloc(heap, p.cast(), size, copy)
        }),
        // SAFETY: caller's contract.
        None => complete(h, fallible, |heap| unsafe {
            heap.realloc2(p.cast(), size, copy)
        }),
    }
}

/// At exit, the process heap's table if no full shutdown wrote it (PHP's
/// CLI does shut down fully; a C program may just return from `main`).
extern "C" fn write_table_at_exit() {
    let h = process_heap();
    // SAFETY: see `heap_of`; the process is exiting, nothing else runs.
    let obs = unsafe { &mut (*h).observe };
    if let Some(c) = obs.cache.as_mut() {
        if c.table.is_dirty() {
            write_table(obs.id, c);
        }
    }
}

/// Runs at exit (and at `dlclose`), after `main` returned or `exit` was called.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".fini_array"]
static AT_EXIT: extern "C" fn() = write_table_at_exit;
