//! Limits, statistics and lifecycle of the current heap.

use super::types::{zend_result, FAILURE, SUCCESS};
use super::{current_heap, heap_of};

/// Sets `memory_limit` in bytes (at least one segment). Returns FAILURE and
/// keeps the old limit when the heap already holds more than `memory_limit`.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zend_set_memory_limit(memory_limit: usize) -> zend_result {
    // SAFETY: see `heap_of`.
    match unsafe { (*heap_of(current_heap())).set_limit(memory_limit) } {
        Ok(()) => SUCCESS,
        Err(_) => FAILURE,
    }
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
/// `ZEND_MM_COMPACT`; a bad value prints PHP's message and exits 255) and
/// creates the 8 KiB reserve. Allocating before this call is allowed.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn start_memory_manager() {
    // SAFETY: see `heap_of`.
    unsafe { (*heap_of(current_heap())).start() }
}

/// Ends a request (`full_shutdown` false): every request block is released
/// in time proportional to the segments, counters restart, the reserve is
/// re-created. A full shutdown releases everything.
///
/// # Safety
/// No request block may be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn shutdown_memory_manager(silent: bool, full_shutdown: bool) {
    // SAFETY: see `heap_of`.
    unsafe { (*heap_of(current_heap())).shutdown(full_shutdown, silent) }
}

/// True: request memory is zendmm's.
#[no_mangle]
pub extern "C" fn is_zend_mm() -> bool {
    true
}
