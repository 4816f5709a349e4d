//! Request memory: `_emalloc` & co., on the current heap.

use super::types::zend_mm_heap;
use super::{complete, current_heap, custom, heap_of, safe_address, settle};
use crate::MemError;
use core::ptr;
use libc::{c_char, c_void};

/// Allocation on `h`, with custom handlers honoured. `fallible`: NULL
/// instead of a fatal error when the limit or the storage says no.
#[inline(always)]
pub(crate) fn emalloc_on(h: *mut zend_mm_heap, size: usize, fallible: bool) -> *mut c_void {
    // A routed heap's inline pop always misses (`Heap::set_inline`), so
    // the routing test waits for the miss: one test fewer on every hit.
    // SAFETY: see `heap_of`.
    let p = unsafe { (*heap_of(h)).alloc_inline(size) };
    if !p.is_null() {
        return p.cast();
    }
    emalloc_missed(h, size, fallible)
}

/// A fastcache miss: out of line, but not cold, as the victim serves most.
#[inline(never)]
fn emalloc_missed(h: *mut zend_mm_heap, size: usize, fallible: bool) -> *mut c_void {
    // SAFETY: see `heap_of`.
    if unsafe { (*h).routed } {
        return custom::malloc(h, size, fallible);
    }
    // SAFETY: see `heap_of`; not routed.
    let p = unsafe { (*heap_of(h)).alloc_missed(size) };
    if !p.is_null() {
        return p.cast();
    }
    emalloc_slow(h, size, fallible)
}

#[cold]
#[inline(never)]
fn emalloc_slow(h: *mut zend_mm_heap, size: usize, fallible: bool) -> *mut c_void {
    complete(h, fallible, |heap| heap.alloc_slow(size))
}

/// # Safety
/// `p` is NULL or a live block of `h`.
#[inline(always)]
pub(crate) unsafe fn efree_on(h: *mut zend_mm_heap, p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: caller's contract; see `heap_of`.
    unsafe {
        if (*h).routed {
            return custom::free(h, p);
        }
        (*heap_of(h)).free(p.cast())
    }
}

/// # Safety
/// `p` is NULL or a live block of `h`.
#[inline(always)]
pub(crate) unsafe fn erealloc_on(
    h: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
    copy: usize,
    fallible: bool,
) -> *mut c_void {
    // SAFETY: caller's contract; see `heap_of`.
    unsafe {
        if (*h).routed {
            return erealloc_slow(h, p, size, copy, fallible);
        }
        if (*heap_of(h)).fits_in_place(p.cast(), size) {
            return p;
        }
        erealloc_missed(h, p, size, copy, fallible)
    }
}

/// A block that does not fit in place: out of line, but not cold, as a
/// cached block of the new size serves most small ones.
///
/// # Safety
/// As [`erealloc_on`], and `h` is not routed.
#[inline(never)]
unsafe fn erealloc_missed(
    h: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
    copy: usize,
    fallible: bool,
) -> *mut c_void {
    // SAFETY: caller's contract; see `heap_of`.
    unsafe {
        let q = (*heap_of(h)).realloc_cached(p.cast(), size, copy);
        if !q.is_null() {
            return q.cast();
        }
        erealloc_slow(h, p, size, copy, fallible)
    }
}

/// # Safety
/// As [`erealloc_on`].
#[cold]
#[inline(never)]
unsafe fn erealloc_slow(
    h: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
    copy: usize,
    fallible: bool,
) -> *mut c_void {
    // SAFETY: caller's contract; see `heap_of`.
    unsafe {
        if (*h).routed {
            return custom::realloc(h, p, size, copy, fallible);
        }
        // The in-place check already failed: straight to the slow path.
        complete(h, fallible, |heap| heap.realloc_slow(p.cast(), size, copy))
    }
}

/// `nmemb * size + offset`, or the settled overflow error (NULL when it returns).
#[inline(always)]
pub(crate) fn checked_size(
    h: *mut zend_mm_heap,
    r: Result<usize, MemError>,
    fallible: bool,
) -> Option<usize> {
    match r {
        Ok(n) => Some(n),
        Err(e) => {
            settle(h, e, fallible, &mut |_| Err(e));
            None
        }
    }
}

/// `ecalloc` on `h`.
pub(crate) fn ecalloc_on(
    h: *mut zend_mm_heap,
    nmemb: usize,
    size: usize,
    fallible: bool,
) -> *mut c_void {
    let Some(n) = checked_size(h, safe_address(nmemb, size, 0), fallible) else {
        return ptr::null_mut();
    };
    let p = emalloc_on(h, n, fallible);
    if !p.is_null() {
        // SAFETY: `p` holds at least `n` bytes.
        unsafe { ptr::write_bytes(p.cast::<u8>(), 0, n) };
    }
    p
}

/// Allocates `size` bytes of request memory (`emalloc`). Never returns NULL:
/// failures are fatal errors. `size == 0` gives a real block.
///
/// # Safety
/// Not thread-safe (see the module docs of `ffi`).
#[no_mangle]
pub unsafe extern "C" fn _emalloc(size: usize) -> *mut c_void {
    emalloc_on(current_heap(), size, false)
}

/// Frees request memory (`efree`); NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _efree(ptr: *mut c_void) {
    // SAFETY: caller's contract.
    unsafe { efree_on(current_heap(), ptr) }
}

/// Resizes request memory, keeping its contents (`erealloc`); NULL allocates.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _erealloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { erealloc_on(current_heap(), ptr, size, usize::MAX, false) }
}

/// As `_erealloc`, copying only the first `copy_size` bytes if the block moves.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _erealloc2(
    ptr: *mut c_void,
    size: usize,
    copy_size: usize,
) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { erealloc_on(current_heap(), ptr, size, copy_size, false) }
}

/// Allocates `nmemb * size` zeroed bytes (`ecalloc`); an overflowing product
/// is a fatal error.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn _ecalloc(nmemb: usize, size: usize) -> *mut c_void {
    ecalloc_on(current_heap(), nmemb, size, false)
}

/// Allocates `nmemb * size + offset` bytes (`safe_emalloc`).
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn _safe_emalloc(nmemb: usize, size: usize, offset: usize) -> *mut c_void {
    safe_emalloc_on(current_heap(), nmemb, size, offset, false)
}

/// `safe_emalloc` on `h`.
pub(crate) fn safe_emalloc_on(
    h: *mut zend_mm_heap,
    nmemb: usize,
    size: usize,
    offset: usize,
    fallible: bool,
) -> *mut c_void {
    match checked_size(h, safe_address(nmemb, size, offset), fallible) {
        Some(n) => emalloc_on(h, n, fallible),
        None => ptr::null_mut(),
    }
}

/// `safe_erealloc` on `h`.
///
/// # Safety
/// `ptr` is NULL or a live block of `h`.
pub(crate) unsafe fn safe_erealloc_on(
    h: *mut zend_mm_heap,
    ptr: *mut c_void,
    nmemb: usize,
    size: usize,
    offset: usize,
    fallible: bool,
) -> *mut c_void {
    match checked_size(h, safe_address(nmemb, size, offset), fallible) {
        // SAFETY: caller's contract.
        Some(n) => unsafe { erealloc_on(h, ptr, n, usize::MAX, fallible) },
        None => ptr::null_mut(),
    }
}

/// Resizes to `nmemb * size + offset` bytes (`safe_erealloc`).
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _safe_erealloc(
    ptr: *mut c_void,
    nmemb: usize,
    size: usize,
    offset: usize,
) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { safe_erealloc_on(current_heap(), ptr, nmemb, size, offset, false) }
}

/// Copies `len` bytes of `s` into request memory and adds a NUL.
///
/// # Safety
/// `s` has `len` readable bytes.
pub(crate) unsafe fn copy_string(s: *const c_char, len: usize) -> *mut c_char {
    let h = current_heap();
    let Some(n) = checked_size(h, safe_address(1, len, 1), false) else {
        return ptr::null_mut();
    };
    let p = emalloc_on(h, n, false).cast::<c_char>();
    if !p.is_null() {
        // SAFETY: `p` holds `len + 1` bytes; `s` has `len` readable bytes.
        unsafe {
            ptr::copy_nonoverlapping(s, p, len);
            *p.add(len) = 0;
        }
    }
    p
}

/// Copies a NUL-terminated string into request memory (`estrdup`).
///
/// # Safety
/// `s` is a valid NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn _estrdup(s: *const c_char) -> *mut c_char {
    // SAFETY: caller's contract.
    unsafe { copy_string(s, libc::strlen(s)) }
}

/// Copies `length` bytes of `s` into request memory and adds a NUL (`estrndup`).
///
/// # Safety
/// `s` has `length` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn _estrndup(s: *const c_char, length: usize) -> *mut c_char {
    // SAFETY: caller's contract.
    unsafe { copy_string(s, length) }
}

/// Usable bytes of a request block (`zend_mem_block_size`): at least what was
/// asked for. 0 for NULL and on heaps with custom handlers (as in PHP).
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _zend_mem_block_size(ptr: *mut c_void) -> usize {
    let h = current_heap();
    // SAFETY: caller's contract; see `heap_of`.
    unsafe {
        if ptr.is_null() || !(*h).custom.is_zendmm() {
            return 0;
        }
        super::tooled::quietly(h, |heap| heap.block_size(ptr.cast()))
    }
}
