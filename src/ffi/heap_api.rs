//! Heap objects (`zend_mm_startup` & co.) and zendmm's own additions.

use super::emalloc::realloc_or_raise;
use super::types::{zend_mm_heap, zendmm_error_handler, zendmm_heap_stats, ZENDMM_STATS_VERSION};
use super::{current_heap, heap_of, process_heap, raise, set_current_heap};
use crate::heap::Heap;
use crate::report;
use libc::c_void;

/// A new, independent heap configured from the environment, holding its
/// reserve. Free it with `zend_mm_shutdown(heap, 1, 1)`.
#[no_mangle]
pub extern "C" fn zend_mm_startup() -> *mut zend_mm_heap {
    let mut h = Box::new(zend_mm_heap { heap: Heap::lazy_from_env() });
    h.heap.start();
    Box::into_raw(h)
}

/// Ends a request on `heap`, or with `full_shutdown` releases it entirely
/// (the process heap stays usable; another heap is freed, and if it was the
/// current heap the process heap becomes current).
///
/// # Safety
/// `heap` is NULL or a live heap; its blocks are not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_shutdown(heap: *mut zend_mm_heap, full_shutdown: bool, silent: bool) {
    if heap.is_null() {
        return;
    }
    // SAFETY: caller's contract; see `heap_of`.
    unsafe { (*heap_of(heap)).shutdown(full_shutdown, silent) };
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
    let h = heap_of(heap);
    // SAFETY: caller's contract; see `heap_of`.
    match unsafe { (*h).alloc(size) } {
        Ok(p) => p.as_ptr().cast(),
        Err(e) => raise(h, e),
    }
}

/// `efree` on a given heap; NULL is ignored.
///
/// # Safety
/// `heap` is a live heap; `p` is NULL or one of its live blocks.
#[no_mangle]
pub unsafe extern "C" fn _zend_mm_free(heap: *mut zend_mm_heap, p: *mut c_void) {
    if !p.is_null() {
        // SAFETY: caller's contract; see `heap_of`.
        unsafe { (*heap_of(heap)).free(p.cast()) }
    }
}

/// `erealloc` on a given heap.
///
/// # Safety
/// `heap` is a live heap; `p` is NULL or one of its live blocks.
#[no_mangle]
pub unsafe extern "C" fn _zend_mm_realloc(heap: *mut zend_mm_heap, p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { realloc_or_raise(heap_of(heap), p, size, usize::MAX) }
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
    unsafe { realloc_or_raise(heap_of(heap), p, size, copy_size) }
}

/// Usable bytes of a block of `heap`; 0 for NULL.
///
/// # Safety
/// `heap` is a live heap; `p` is NULL or one of its live blocks.
#[no_mangle]
pub unsafe extern "C" fn _zend_mm_block_size(heap: *mut zend_mm_heap, p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    // SAFETY: caller's contract; see `heap_of`.
    unsafe { (*heap_of(heap)).block_size(p.cast()) }
}

/// Makes `new_heap` the heap of `_emalloc` & co. and returns the previous
/// one; NULL selects the process heap.
///
/// # Safety
/// `new_heap` is NULL or a live heap.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_set_heap(new_heap: *mut zend_mm_heap) -> *mut zend_mm_heap {
    set_current_heap(if new_heap.is_null() { process_heap() } else { new_heap })
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
/// caller sets `out->size = sizeof(zendmm_heap_stats)`; returns false, writing
/// nothing, when `out` is NULL or its size is too small.
///
/// # Safety
/// `heap` is NULL or a live heap; `out` is NULL or points to `out->size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn zendmm_stats(heap: *const zend_mm_heap, out: *mut zendmm_heap_stats) -> bool {
    // SAFETY: caller's contract.
    if out.is_null() || unsafe { (*out).size } < core::mem::size_of::<zendmm_heap_stats>() {
        return false;
    }
    let heap = if heap.is_null() { current_heap() } else { heap.cast_mut() };
    // SAFETY: caller's contract; see `heap_of` (shared use only).
    let s = unsafe { (*heap_of(heap)).stats() };
    let st = zendmm_heap_stats {
        size: core::mem::size_of::<zendmm_heap_stats>(),
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
    };
    // SAFETY: checked non-null and large enough above.
    unsafe { out.write(st) };
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
    let heap = if heap.is_null() { current_heap() } else { heap.cast_mut() };
    // SAFETY: caller's contract; see `heap_of` (shared use only).
    let problems = unsafe { (*heap_of(heap)).check() };
    for p in &problems {
        report::write_stderr(format!("zendmm_check_heap: {p}\n").as_bytes());
    }
    problems.len()
}
