//! Request memory: `_emalloc` & co., on the current heap.

use super::{current_heap, heap_of, raise, safe_address};
use crate::heap::Heap;
use crate::MemError;
use core::ptr;
use libc::{c_char, c_void};

#[inline(always)]
fn alloc_or_raise(heap: *mut Heap, size: usize) -> *mut c_void {
    // SAFETY: see `heap_of`.
    match unsafe { (*heap).alloc(size) } {
        Ok(p) => p.as_ptr().cast(),
        Err(e) => raise(heap, e),
    }
}

#[inline(always)]
fn checked_or_raise(heap: *mut Heap, r: Result<usize, MemError>) -> usize {
    match r {
        Ok(n) => n,
        Err(e) => raise(heap, e),
    }
}

/// # Safety
/// `ptr` is null or a live block of `heap`.
#[inline(always)]
pub(crate) unsafe fn realloc_or_raise(heap: *mut Heap, ptr: *mut c_void, size: usize, copy: usize) -> *mut c_void {
    // SAFETY: caller's contract; see `heap_of`.
    match unsafe { (*heap).realloc2(ptr.cast(), size, copy) } {
        Ok(p) => p.as_ptr().cast(),
        Err(e) => raise(heap, e),
    }
}

/// Allocates `size` bytes of request memory (`emalloc`). Never returns NULL:
/// failures are fatal errors. `size == 0` gives a real block.
///
/// # Safety
/// Not thread-safe (see the module docs of `ffi`).
#[no_mangle]
pub unsafe extern "C" fn _emalloc(size: usize) -> *mut c_void {
    alloc_or_raise(heap_of(current_heap()), size)
}

/// Frees request memory (`efree`); NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _efree(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: caller's contract; see `heap_of`.
    unsafe { (*heap_of(current_heap())).free(ptr.cast()) }
}

/// Resizes request memory, keeping its contents (`erealloc`); NULL allocates.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _erealloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { realloc_or_raise(heap_of(current_heap()), ptr, size, usize::MAX) }
}

/// As `_erealloc`, copying only the first `copy_size` bytes if the block moves.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _erealloc2(ptr: *mut c_void, size: usize, copy_size: usize) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe { realloc_or_raise(heap_of(current_heap()), ptr, size, copy_size) }
}

/// Allocates `nmemb * size` zeroed bytes (`ecalloc`); an overflowing product
/// is a fatal error.
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn _ecalloc(nmemb: usize, size: usize) -> *mut c_void {
    let heap = heap_of(current_heap());
    let n = checked_or_raise(heap, safe_address(nmemb, size, 0));
    let p = alloc_or_raise(heap, n);
    // SAFETY: `p` holds at least `n` bytes.
    unsafe { ptr::write_bytes(p.cast::<u8>(), 0, n) };
    p
}

/// Allocates `nmemb * size + offset` bytes (`safe_emalloc`).
///
/// # Safety
/// Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn _safe_emalloc(nmemb: usize, size: usize, offset: usize) -> *mut c_void {
    let heap = heap_of(current_heap());
    alloc_or_raise(heap, checked_or_raise(heap, safe_address(nmemb, size, offset)))
}

/// Resizes to `nmemb * size + offset` bytes (`safe_erealloc`).
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _safe_erealloc(ptr: *mut c_void, nmemb: usize, size: usize, offset: usize) -> *mut c_void {
    let heap = heap_of(current_heap());
    let n = checked_or_raise(heap, safe_address(nmemb, size, offset));
    // SAFETY: caller's contract.
    unsafe { realloc_or_raise(heap, ptr, n, usize::MAX) }
}

/// Copies a NUL-terminated string into request memory (`estrdup`).
///
/// # Safety
/// `s` is a valid NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn _estrdup(s: *const c_char) -> *mut c_char {
    // SAFETY: caller's contract.
    let len = unsafe { libc::strlen(s) };
    let heap = heap_of(current_heap());
    let n = checked_or_raise(heap, safe_address(1, len, 1));
    let p = alloc_or_raise(heap, n).cast::<c_char>();
    // SAFETY: `p` holds `len + 1` bytes; `s` has `len + 1` readable bytes.
    unsafe { ptr::copy_nonoverlapping(s, p, n) };
    p
}

/// Copies `length` bytes of `s` into request memory and adds a NUL (`estrndup`).
///
/// # Safety
/// `s` has `length` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn _estrndup(s: *const c_char, length: usize) -> *mut c_char {
    let heap = heap_of(current_heap());
    let n = checked_or_raise(heap, safe_address(1, length, 1));
    let p = alloc_or_raise(heap, n).cast::<c_char>();
    // SAFETY: `p` holds `length + 1` bytes; `s` has `length` readable bytes.
    unsafe {
        ptr::copy_nonoverlapping(s, p, length);
        *p.add(length) = 0;
    }
    p
}

/// Usable bytes of a request block (`zend_mem_block_size`): at least what was
/// asked for. 0 for NULL.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn _zend_mem_block_size(ptr: *mut c_void) -> usize {
    if ptr.is_null() {
        return 0;
    }
    // SAFETY: caller's contract; see `heap_of`.
    unsafe { (*heap_of(current_heap())).block_size(ptr.cast()) }
}
