//! Limits, statistics and lifecycle of the current heap.

use super::types::{zend_result, Custom, FAILURE, SUCCESS};
use super::{current_heap, custom, heap_api, heap_of, observe, php};
use crate::config;
use crate::report;
use core::sync::atomic::Ordering;

/// Sets `memory_limit` in bytes (at least one segment; at most
/// `ZEND_LONG_MAX`, as PHP 8.2.36 clamps it). Returns FAILURE and keeps the
/// old limit when the heap already holds more than `memory_limit` (PHP then
/// warns "Failed to set memory limit ...").
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zend_set_memory_limit(memory_limit: usize) -> zend_result {
    let limit = memory_limit.min(i64::MAX as usize);
    match super::tooled::quietly(current_heap(), |heap| heap.set_limit(limit)) {
        Ok(()) => SUCCESS,
        Err(_) => FAILURE,
    }
}

/// Sets the hard limit as a percentage of `memory_limit` (PHP 8.2.36's
/// `memory_hard_limit_percent`): at least 100, or -1 for the default (twice
/// the limit up to 1 GiB, the limit plus 1 GiB above). Other values, or a
/// heap already over its limit: FAILURE.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zend_set_memory_hard_limit_percent(percent: i64) -> zend_result {
    let h = current_heap();
    // SAFETY: see `heap_of`.
    unsafe {
        let heap = &*heap_of(h);
        if (percent != -1 && percent < 100) || heap.limit() < heap.usage(true) {
            return FAILURE;
        }
        (*h).hard_limit_percent = percent;
    }
    SUCCESS
}

/// Bytes of request blocks in use, headers included (`real_usage` false), or
/// bytes of segments held (`real_usage` true): `memory_get_usage()`.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zend_memory_usage(real_usage: bool) -> usize {
    // SAFETY: see `heap_of`.
    unsafe { (*heap_of(current_heap())).usage(real_usage) }
}

/// The peak of `zend_memory_usage` since the request started or the last reset.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zend_memory_peak_usage(real_usage: bool) -> usize {
    // SAFETY: see `heap_of`.
    unsafe { (*heap_of(current_heap())).peak_usage(real_usage) }
}

/// Sets both peaks to the current usage (`memory_reset_peak_usage()`).
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zend_memory_reset_peak_usage() {
    // SAFETY: see `heap_of`.
    unsafe { (*heap_of(current_heap())).reset_peak_usage() }
}

/// Reads the environment (`ZEND_MM_MEM_TYPE`, `ZEND_MM_SEG_SIZE`,
/// `ZEND_MM_COMPACT`, `USE_ZEND_ALLOC`, `ZENDMM_STATS`, `ZENDMM_CACHE_STAT`,
/// `ZEND_ALLOC_PRINT_LEAKS`; a bad value prints a message and exits 255) and creates the 8 KiB reserve. Allocating before this call is
/// allowed. Inside PHP it also finds the engine for the delayed-OOM protocol.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn start_memory_manager() {
    let h = current_heap();
    php::in_php();
    observe::start(h);
    // Read again at each shutdown; checked here so a typo shows at once.
    if let Err(text) = config::print_leaks() {
        report::startup_error(&text);
    }
    match config::use_zend_alloc() {
        Ok(true) => heap_api::start(h),
        Ok(false) => {
            // SAFETY: see `heap_of`. Tracked mode holds no segment.
            unsafe { (*heap_of(h)).apply_env() };
            heap_api::shutdown(h, true, true);
            // SAFETY: see `heap_of`.
            unsafe { (*h).set_custom(Custom::Tracked) };
        }
        Err(text) => report::startup_error(&text),
    }
}

/// Ends a request (`full_shutdown` false): every request block is released
/// in time proportional to the segments, counters restart, the reserve is
/// re-created; with `ZENDMM_STATS` the request's record is appended first.
/// A full shutdown releases everything (and writes the `ZENDMM_CACHE_STAT`
/// table). Unless `silent`, the blocks still in use are first reported as
/// leaks on stderr when the report is on (`ZEND_ALLOC_PRINT_LEAKS`, by
/// default on once the debug ABI of zendmm_alloc.h was used).
///
/// # Safety
/// No request block may be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn shutdown_memory_manager(silent: bool, full_shutdown: bool) {
    let h = current_heap();
    observe::before_shutdown(h, full_shutdown);
    // SAFETY: see `heap_of`. A tracked heap keeps no segment or reserve.
    let tracked = matches!(unsafe { (*h).custom }, Custom::Tracked);
    heap_api::shutdown(h, full_shutdown || tracked, silent);
}

/// True when request memory is zendmm's (false with custom handlers or
/// `USE_ZEND_ALLOC=0`, in which case PHP frees every block itself).
#[no_mangle]
pub extern "C" fn is_zend_mm() -> bool {
    php::is_zendmm(current_heap())
}

/// Lets the current heap make `max_allocs` more allocations before the next
/// one is treated as a memory-limit error (PHP 8.2.36's `ZEND_MM_MAX_ALLOCS`,
/// a testing aid; PHP then exits with status 121). As in PHP, only
/// `USE_ZEND_ALLOC=0` counts. 0 removes the cap; the "hit" flag is cleared.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_set_max_allocs(max_allocs: u64) {
    // SAFETY: see `heap_of`.
    unsafe { (*current_heap()).max_allocs = max_allocs };
    custom::MAX_ALLOCS_HIT.store(false, Ordering::Relaxed);
}

/// Has the allocation cap of `zend_mm_set_max_allocs` been reached?
#[no_mangle]
pub extern "C" fn zend_mm_max_allocs_hit() -> bool {
    custom::MAX_ALLOCS_HIT.load(Ordering::Relaxed)
}

/// Is a memory-limit error being reported right now? PHP then discards its
/// output buffers.
#[no_mangle]
pub extern "C" fn zend_alloc_in_memory_limit_error_reporting() -> bool {
    // SAFETY: see `heap_of`.
    unsafe { (*heap_of(current_heap())).overflow }
}
