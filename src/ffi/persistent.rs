//! Persistent memory: plain libc, outside every heap, surviving requests
//! (PHP's `__zend_malloc` & co., and `pemalloc` as functions). Failure is
//! fatal (`Out of memory`, exit 1), never NULL, as in PHP.

use super::emalloc::{_ecalloc, _efree, _emalloc, _erealloc, _estrdup};
use super::{current_heap, php, safe_address};
use crate::report;
use libc::{c_char, c_void};

/// The size, or the overflow settled: fatal outside PHP; inside, PHP's
/// rule (abort, or NULL for a fallible heap).
#[inline]
fn checked(r: Result<usize, crate::MemError>) -> Option<usize> {
    match r {
        Ok(n) => Some(n),
        Err(e) if php::in_php() => {
            // SAFETY: see `heap_of`.
            php::on_error(e, unsafe { (*current_heap()).fallible });
            None
        }
        Err(e) => report::fatal(e, false),
    }
}

#[inline]
fn non_null<T>(p: *mut T, len: usize) -> *mut T {
    if p.is_null() && len != 0 {
        report::persistent_out_of_memory();
    }
    p
}

/// `malloc` that never fails quietly; `len == 0` may return NULL.
///
/// # Safety
/// Plain libc semantics.
#[no_mangle]
pub unsafe extern "C" fn __zend_malloc(len: usize) -> *mut c_void {
    // SAFETY: plain libc call.
    non_null(unsafe { libc::malloc(len) }, len)
}

/// Zeroed `nmemb * len` bytes; an overflowing product is a fatal error.
///
/// # Safety
/// Plain libc semantics.
#[no_mangle]
pub unsafe extern "C" fn __zend_calloc(nmemb: usize, len: usize) -> *mut c_void {
    let Some(n) = checked(safe_address(nmemb, len, 0)) else {
        return core::ptr::null_mut();
    };
    // SAFETY: plain libc call.
    non_null(unsafe { libc::calloc(1, n) }, n)
}

/// `realloc` that never fails quietly.
///
/// # Safety
/// `p` is NULL or came from libc's allocator.
#[no_mangle]
pub unsafe extern "C" fn __zend_realloc(p: *mut c_void, len: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    non_null(unsafe { libc::realloc(p, len) }, len)
}

/// `strdup` that never fails quietly.
///
/// # Safety
/// `s` is a valid NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn __zend_strdup(s: *const c_char) -> *mut c_char {
    // SAFETY: caller's contract.
    non_null(unsafe { libc::strdup(s) }, 1)
}

/// `nmemb * size + offset` bytes of persistent memory.
///
/// # Safety
/// Plain libc semantics.
#[no_mangle]
pub unsafe extern "C" fn _safe_malloc(nmemb: usize, size: usize, offset: usize) -> *mut c_void {
    let Some(n) = checked(safe_address(nmemb, size, offset)) else {
        return core::ptr::null_mut();
    };
    // SAFETY: plain libc call.
    unsafe { __zend_malloc(n) }
}

/// Resizes persistent memory to `nmemb * size + offset` bytes.
///
/// # Safety
/// `ptr` is NULL or came from libc's allocator.
#[no_mangle]
pub unsafe extern "C" fn _safe_realloc(
    ptr: *mut c_void,
    nmemb: usize,
    size: usize,
    offset: usize,
) -> *mut c_void {
    let Some(n) = checked(safe_address(nmemb, size, offset)) else {
        return core::ptr::null_mut();
    };
    // SAFETY: caller's contract.
    unsafe { __zend_realloc(ptr, n) }
}

/// Copies `length` bytes of `s` into persistent memory and adds a NUL.
///
/// # Safety
/// `s` has `length` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn zend_strndup(s: *const c_char, length: usize) -> *mut c_char {
    let Some(n) = checked(safe_address(1, length, 1)) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `p` holds `n` bytes; `s` has `length` readable bytes.
    unsafe {
        let p = __zend_malloc(n).cast::<c_char>();
        core::ptr::copy_nonoverlapping(s, p, length);
        *p.add(length) = 0;
        p
    }
}

/// `pemalloc(size, persistent)`: libc when `persistent`, else `emalloc`.
///
/// # Safety
/// As `__zend_malloc` / `_emalloc`.
#[no_mangle]
pub unsafe extern "C" fn pemalloc(size: usize, persistent: bool) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe {
        if persistent {
            __zend_malloc(size)
        } else {
            _emalloc(size)
        }
    }
}

/// `pefree(ptr, persistent)`: `free` when `persistent`, else `efree`.
///
/// # Safety
/// `ptr` came from the matching allocator.
#[no_mangle]
pub unsafe extern "C" fn pefree(ptr: *mut c_void, persistent: bool) {
    // SAFETY: caller's contract.
    unsafe {
        if persistent {
            libc::free(ptr)
        } else {
            _efree(ptr)
        }
    }
}

/// `pecalloc(nmemb, size, persistent)`.
///
/// # Safety
/// As `__zend_calloc` / `_ecalloc`.
#[no_mangle]
pub unsafe extern "C" fn pecalloc(nmemb: usize, size: usize, persistent: bool) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe {
        if persistent {
            __zend_calloc(nmemb, size)
        } else {
            _ecalloc(nmemb, size)
        }
    }
}

/// `perealloc(ptr, size, persistent)`.
///
/// # Safety
/// `ptr` is NULL or came from the matching allocator.
#[no_mangle]
pub unsafe extern "C" fn perealloc(ptr: *mut c_void, size: usize, persistent: bool) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe {
        if persistent {
            __zend_realloc(ptr, size)
        } else {
            _erealloc(ptr, size)
        }
    }
}

/// `pestrdup(s, persistent)`.
///
/// # Safety
/// `s` is a valid NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn pestrdup(s: *const c_char, persistent: bool) -> *mut c_char {
    // SAFETY: caller's contract.
    unsafe {
        if persistent {
            __zend_strdup(s)
        } else {
            _estrdup(s)
        }
    }
}
