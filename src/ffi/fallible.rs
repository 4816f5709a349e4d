//! PHP 8.2.36's fallible allocations: NULL instead of a fatal error when the
//! memory limit (or the storage) says no.

use super::current_heap;
use super::emalloc::{ecalloc_on, emalloc_on, erealloc_on, safe_emalloc_on, safe_erealloc_on};
use libc::c_void;

/// `emalloc`, or NULL past the memory limit.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn _femalloc(size: usize) -> *mut c_void {
    emalloc_on(current_heap(), size, true)
}

/// `ecalloc`, or NULL past the memory limit.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn _fecalloc(nmemb: usize, size: usize) -> *mut c_void {
    ecalloc_on(current_heap(), nmemb, size, true)
}

/// `erealloc`, or NULL (the block untouched) past the memory limit.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _ferealloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { erealloc_on(current_heap(), ptr, size, usize::MAX, true) }
}

/// `erealloc2`, or NULL past the memory limit.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _ferealloc2(
    ptr: *mut c_void,
    size: usize,
    copy_size: usize,
) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { erealloc_on(current_heap(), ptr, size, copy_size, true) }
}

/// `safe_emalloc`, or NULL past the memory limit.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn _safe_femalloc(nmemb: usize, size: usize, offset: usize) -> *mut c_void {
    safe_emalloc_on(current_heap(), nmemb, size, offset, true)
}

/// `safe_erealloc`, or NULL past the memory limit.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _safe_ferealloc(
    ptr: *mut c_void,
    nmemb: usize,
    size: usize,
    offset: usize,
) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { safe_erealloc_on(current_heap(), ptr, nmemb, size, offset, true) }
}

/// Is the current heap in fallible mode (every allocation may return NULL)?
#[no_mangle]
pub extern "C" fn zend_mm_is_fallible() -> bool {
    // SAFETY: see `heap_of`.
    unsafe { (*current_heap()).fallible }
}

/// Puts the current heap in or out of fallible mode.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_set_fallible(fallible: bool) {
    // SAFETY: see `heap_of`.
    unsafe { (*current_heap()).fallible = fallible }
}
