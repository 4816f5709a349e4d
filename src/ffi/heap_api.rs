//! Heap objects (`zend_mm_startup` & co.) and zendmm's own additions.

use super::emalloc::{efree_on, emalloc_on, erealloc_on};
use super::storage_ex::ExtStorage;
use super::tooled;
use super::types::{
    zend_mm_handlers, zend_mm_heap, zend_mm_storage, zendmm_error_handler, zendmm_heap_stats,
    Custom, ZENDMM_STATS_VERSION,
};
use super::{current_heap, heap_of, observe, process_heap, set_current_heap};
use crate::config::Config;
use crate::heap::Heap;
use crate::report;
use crate::storage::Storage;
use core::mem::{offset_of, size_of};
use libc::c_void;

/// A new, independent heap configured from the environment (statistics
/// logs included), holding its reserve. Free it with `zend_mm_shutdown(heap, 1, 1)`.
#[no_mangle]
pub extern "C" fn zend_mm_startup() -> *mut zend_mm_heap {
    let mut h = Box::new(zend_mm_heap::new(Heap::lazy_from_env()));
    tooled::adopt_new(&mut h);
    let h = Box::into_raw(h);
    start(h);
    observe::start(h);
    h
}

/// A new heap taking its segments from `handlers` (PHP 8.2's signature):
/// `chunk_alloc(storage, size, alignment)` is asked for whole segments
/// (256 KiB multiples, alignment 256 KiB), `chunk_free` gets them back, and
/// `chunk_truncate`/`chunk_extend` (either may be NULL) resize one in place.
/// `data_size` bytes at `data` are copied into the heap and reachable as
/// `storage->data`. The callbacks must not allocate from this heap. Returns
/// NULL when `handlers` is NULL.
///
/// # Safety
/// `handlers` is NULL or valid; `data` has `data_size` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_startup_ex(
    handlers: *const zend_mm_handlers,
    data: *mut c_void,
    data_size: usize,
) -> *mut zend_mm_heap {
    // SAFETY: caller's contract.
    let Some(handlers) = (unsafe { handlers.as_ref() }) else {
        return core::ptr::null_mut();
    };
    let segment_size = Config::DEFAULT.segment_size;
    // SAFETY: caller's contract.
    let ext = unsafe { ExtStorage::new(*handlers, data, data_size, segment_size) };
    // SAFETY: the box lives in the heap object, declared after `heap`, so it
    // outlives every use of this reference (dropped after the heap).
    let storage: &'static dyn Storage = unsafe { &*(ext.as_ref() as *const ExtStorage) };
    let mut h = Box::new(zend_mm_heap::new(Heap::with_config(Config {
        storage,
        ..Config::DEFAULT
    })));
    h.ext_storage = Some(ext);
    tooled::adopt_new(&mut h);
    let h = Box::into_raw(h);
    start(h);
    h
}

/// The storage of a heap made by `zend_mm_startup_ex`, else NULL.
///
/// # Safety
/// `heap` is NULL or a live heap.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_get_storage(heap: *mut zend_mm_heap) -> *mut zend_mm_storage {
    // SAFETY: caller's contract.
    match unsafe { heap.as_ref() }.and_then(|h| h.ext_storage.as_ref()) {
        Some(e) => e.storage_ptr(),
        None => core::ptr::null_mut(),
    }
}

/// Empties `heap`'s fastcache into its free lists, giving back segments
/// that become empty (`gc_mem_caches()`); returns the bytes the cache held.
/// 0 for heaps with custom handlers.
///
/// # Safety
/// `heap` is NULL or a live heap.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_gc(heap: *mut zend_mm_heap) -> usize {
    // SAFETY: caller's contract.
    match unsafe { heap.as_ref() } {
        Some(h) if h.custom.is_zendmm() => tooled::quietly(heap, |heap| heap.gc()),
        _ => 0,
    }
}

/// Does `ptr` point into a live block of the current heap? Any address
/// inside a block's data counts; free and cached blocks, segment headers and
/// foreign memory do not. Walks the segment holding `ptr`.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn is_zend_ptr(ptr: *const c_void) -> bool {
    let h = current_heap();
    // SAFETY: see `heap_of`.
    let own = unsafe { (*h).custom.is_zendmm() };
    own && tooled::quietly(h, |heap| heap.is_live_ptr(ptr.cast()))
}

/// Ends a request on `heap`, or with `full_shutdown` releases it entirely
/// (the process heap stays usable; another heap is freed, and if it was the
/// current heap the process heap becomes current). Unless `silent`, leaks
/// are reported first, as by `shutdown_memory_manager`.
///
/// # Safety
/// `heap` is NULL or a live heap; its blocks are not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_shutdown(
    heap: *mut zend_mm_heap,
    full_shutdown: bool,
    silent: bool,
) {
    if heap.is_null() {
        return;
    }
    observe::before_shutdown(heap, full_shutdown);
    shutdown(heap, full_shutdown, silent);
    if full_shutdown && heap != process_heap() {
        if current_heap() == heap {
            set_current_heap(process_heap());
        }
        // SAFETY: `heap` came from `zend_mm_startup` (Box::into_raw).
        drop(unsafe { Box::from_raw(heap) });
    }
}

/// `emalloc` on a given heap.
///
/// # Safety
/// `heap` is a live heap.
#[no_mangle]
pub unsafe extern "C" fn _zend_mm_alloc(heap: *mut zend_mm_heap, size: usize) -> *mut c_void {
    emalloc_on(heap, size, false)
}

/// `efree` on a given heap; NULL is ignored.
///
/// # Safety
/// `heap` is a live heap; `p` is NULL or one of its live blocks.
#[no_mangle]
pub unsafe extern "C" fn _zend_mm_free(heap: *mut zend_mm_heap, p: *mut c_void) {
    // SAFETY: caller's contract.
    unsafe { efree_on(heap, p) }
}

/// `erealloc` on a given heap.
///
/// # Safety
/// `heap` is a live heap; `p` is NULL or one of its live blocks.
#[no_mangle]
pub unsafe extern "C" fn _zend_mm_realloc(
    heap: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { erealloc_on(heap, p, size, usize::MAX, false) }
}

/// `erealloc2` on a given heap.
///
/// # Safety
/// `heap` is a live heap; `p` is NULL or one of its live blocks.
#[no_mangle]
pub unsafe extern "C" fn _zend_mm_realloc2(
    heap: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
    copy_size: usize,
) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { erealloc_on(heap, p, size, copy_size, false) }
}

/// Usable bytes of a block of `heap`; 0 for NULL.
///
/// # Safety
/// `heap` is a live heap; `p` is NULL or one of its live blocks.
#[no_mangle]
pub unsafe extern "C" fn _zend_mm_block_size(heap: *mut zend_mm_heap, p: *mut c_void) -> usize {
    // SAFETY: caller's contract; see `heap_of`.
    unsafe {
        if p.is_null() || !(*heap).custom.is_zendmm() {
            return 0;
        }
        tooled::quietly(heap, |h| h.block_size(p.cast()))
    }
}

/// Makes `new_heap` the heap of `_emalloc` & co. and returns the previous
/// one; NULL selects the process heap.
///
/// # Safety
/// `new_heap` is NULL or a live heap.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_set_heap(new_heap: *mut zend_mm_heap) -> *mut zend_mm_heap {
    set_current_heap(if new_heap.is_null() {
        process_heap()
    } else {
        new_heap
    })
}

/// The heap `_emalloc` & co. use now.
#[no_mangle]
pub extern "C" fn zend_mm_get_heap() -> *mut zend_mm_heap {
    current_heap()
}

/// Installs a fatal-error handler (NULL restores the default) and returns
/// the previous one. See `zendmm_error_handler`.
#[no_mangle]
pub extern "C" fn zendmm_set_error_handler(handler: zendmm_error_handler) -> zendmm_error_handler {
    report::set_handler(handler)
}

/// Fills `*out` with the figures of `heap` (NULL: the current heap). The
/// caller sets `out->size = sizeof(zendmm_heap_stats)`. Every field that
/// fits whole in `out->size` bytes is filled, so a program built against an
/// older, smaller struct keeps working; `out->size` is then set to the bytes
/// filled and `out->version` to `ZENDMM_STATS_VERSION`. Returns false,
/// writing nothing, when `out` is NULL or `out->size` does not reach past
/// `version`.
///
/// # Safety
/// `heap` is NULL or a live heap; `out` is NULL or points to `out->size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn zendmm_stats(
    heap: *const zend_mm_heap,
    out: *mut zendmm_heap_stats,
) -> bool {
    if out.is_null() {
        return false;
    }
    // SAFETY: caller's contract: `size` is readable.
    let room = unsafe { (*out).size };
    // Every field after `version` is 8 bytes wide: fill whole ones only.
    let filled = room.min(size_of::<zendmm_heap_stats>()) & !7;
    if filled < offset_of!(zendmm_heap_stats, usage) {
        return false;
    }
    let heap = if heap.is_null() {
        current_heap()
    } else {
        heap.cast_mut()
    };
    let s = tooled::quietly(heap, |h| h.stats());
    // SAFETY: caller's contract; see `heap_of` (shared use only).
    let requests = unsafe { (*heap).observe.requests };
    let st = zendmm_heap_stats {
        size: filled,
        version: ZENDMM_STATS_VERSION,
        usage: s.usage,
        peak: s.peak,
        real_usage: s.real_usage,
        real_peak: s.real_peak,
        limit: s.limit,
        segments: s.segments,
        cached_bytes: s.cached_bytes,
        cached_blocks: s.cached_blocks,
        free_small_bytes: s.free_small_bytes,
        free_small_blocks: s.free_small_blocks,
        free_large_bytes: s.free_large_bytes,
        free_large_blocks: s.free_large_blocks,
        free_rest_bytes: s.free_rest_bytes,
        free_rest_blocks: s.free_rest_blocks,
        cache_hits: s.cache_hits,
        cache_misses: s.cache_misses,
        requests,
    };
    // SAFETY: `out` has `room >= filled` writable bytes (caller's contract).
    unsafe {
        core::ptr::copy_nonoverlapping((&raw const st).cast::<u8>(), out.cast::<u8>(), filled)
    };
    true
}

/// Walks every segment, block, free list and the fastcache of `heap` (NULL:
/// the current heap), printing each problem to stderr as
/// `zendmm_check_heap: <problem>`; returns how many it found.
///
/// # Safety
/// `heap` is NULL or a live heap.
#[no_mangle]
pub unsafe extern "C" fn zendmm_check_heap(heap: *const zend_mm_heap) -> usize {
    let heap = if heap.is_null() {
        current_heap()
    } else {
        heap.cast_mut()
    };
    let problems = tooled::quietly(heap, |h| h.check());
    for p in &problems {
        report::write_stderr(format!("zendmm_check_heap: {p}\n").as_bytes());
    }
    problems.len()
}

/// Gives `heap` (NULL: the current heap) a new secret key and re-encodes
/// its free-list links with it (PHP 8.4 calls this `zend_mm_refresh_key_child`;
/// 8.2 has no such symbol, so ours has a `zendmm_` name). zendmm already calls it for
/// the process heap and the current heap in every forked child; call it for
/// other heaps a child keeps using.
///
/// # Safety
/// `heap` is NULL or a live heap, not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn zendmm_refresh_key(heap: *mut zend_mm_heap) {
    let heap = if heap.is_null() { current_heap() } else { heap };
    tooled::quietly(heap, |h| h.refresh_secret());
}

/// Starts a heap's request (`Heap::start`), through the tool when one watches.
pub(crate) fn start(h: *mut zend_mm_heap) {
    // SAFETY: see `heap_of`.
    if matches!(unsafe { (*h).custom }, Custom::Tool) {
        tooled::start(h);
    } else {
        // SAFETY: see `heap_of`.
        unsafe { (*heap_of(h)).start() }
    }
}

/// Ends a heap's request (`Heap::shutdown`), through the tool when one watches.
pub(crate) fn shutdown(h: *mut zend_mm_heap, full: bool, silent: bool) {
    // SAFETY: see `heap_of`.
    if matches!(unsafe { (*h).custom }, Custom::Tool) {
        tooled::shutdown(h, full, silent);
    } else {
        // SAFETY: see `heap_of`.
        unsafe { (*heap_of(h)).shutdown(full, silent) }
    }
    // The shutdown forgot every recorded location.
    // SAFETY: see `heap_of`.
    unsafe { (*h).update_routing() };
}
