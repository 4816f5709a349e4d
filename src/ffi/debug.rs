//! The debug ABI: `emalloc` & co. taking the caller's file and line, as
//! PHP's debug builds do (`ZEND_FILE_LINE_DC ZEND_FILE_LINE_ORIG_DC`).
//! `include/zendmm_alloc.h` selects these under `ZEND_DEBUG` or
//! `ZENDMM_DEBUG`, passing `__FILE__`/`__LINE__`, and for the `_rel` macros
//! the relayed location plus the macro's own place as the origin. Each
//! behaves exactly as its release twin and records where its block came from
//! for the leak report (src/leaks.rs); the release ABI does not change.
//! Each is named `zendmm` + its release twin's name + `_dbg`: zendmm's own
//! prefix keeps them apart from PHP's memory-manager symbols, and the rule
//! lets the macro layer paste the name.
//!
//! Using any of them turns the leak report on by default for this process.

use super::emalloc::{
    copy_string, ecalloc_on, efree_on, emalloc_on, erealloc_on, safe_emalloc_on, safe_erealloc_on,
};
use super::types::zend_mm_heap;
use super::{current_heap, heap_of};
use crate::leaks::{self, DEBUG_ABI_USED};
use crate::locations::Location;
use core::sync::atomic::Ordering;
use libc::{c_char, c_void};

/// Notes the debug ABI's use and records `p`'s location on `h`.
fn record(h: *mut zend_mm_heap, p: *mut c_void, size: usize, at: Location) -> *mut c_void {
    DEBUG_ABI_USED.store(true, Ordering::Relaxed);
    // SAFETY: see `heap_of`. Blocks of custom handlers are not zendmm's:
    // the report never walks them.
    unsafe {
        if !p.is_null() && (*h).custom.is_none() {
            (*heap_of(h))
                .locations
                .insert(p.cast(), Location { size, ..at });
            // Frees and reallocs now take the routed path, which keeps the
            // table in step (`custom::free`, `custom::realloc`).
            (*h).update_routing();
        }
    }
    p
}

fn at(
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> Location {
    Location {
        size: 0,
        file: filename,
        line: lineno,
        orig_file: orig_filename,
        orig_line: orig_lineno,
    }
}

/// Forgets `p`'s location, if the table holds any, before `p` is freed.
///
/// # Safety
/// See `heap_of`.
pub(crate) unsafe fn forget(h: *mut zend_mm_heap, p: *mut c_void) {
    // SAFETY: caller's contract.
    let table = unsafe { &mut (*heap_of(h)).locations };
    if !table.is_empty() {
        table.remove(p.cast());
    }
}

/// `p` was reallocated to `q` (NULL: it failed and `p` lives on) while
/// locations are recorded: the location follows the block.
///
/// # Safety
/// See `heap_of`.
pub(crate) unsafe fn moved(h: *mut zend_mm_heap, p: *mut c_void, q: *mut c_void, size: usize) {
    // SAFETY: caller's contract.
    let table = unsafe { &mut (*heap_of(h)).locations };
    if p.is_null() || q.is_null() || table.is_empty() {
        return;
    }
    if let Some(loc) = table.remove(p.cast()) {
        table.insert(q.cast(), Location { size, ..loc });
    }
}

/// `_emalloc` recording the caller's location (`emalloc` in a debug build).
/// `orig_filename` is NULL unless a `_rel` macro relayed the location.
///
/// # Safety
/// `filename` and `orig_filename` are NULL or NUL-terminated strings that
/// stay readable until the next request shutdown (string literals).
#[no_mangle]
pub unsafe extern "C" fn zendmm_emalloc_dbg(
    size: usize,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_void {
    let h = current_heap();
    let p = emalloc_on(h, size, false);
    record(h, p, size, at(filename, lineno, orig_filename, orig_lineno))
}

/// `_efree` in a debug build; the location is not used.
///
/// # Safety
/// `ptr` is NULL or a live block of the current heap.
#[no_mangle]
pub unsafe extern "C" fn zendmm_efree_dbg(
    ptr: *mut c_void,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) {
    let _ = (filename, lineno, orig_filename, orig_lineno);
    DEBUG_ABI_USED.store(true, Ordering::Relaxed);
    // SAFETY: caller's contract.
    unsafe { efree_on(current_heap(), ptr) }
}

/// `_erealloc` recording the caller's location (the realloc's place, as PHP).
///
/// # Safety
/// As `_erealloc` and `zendmm_emalloc_dbg`.
#[no_mangle]
pub unsafe extern "C" fn zendmm_erealloc_dbg(
    ptr: *mut c_void,
    size: usize,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_void {
    let h = current_heap();
    // SAFETY: caller's contract.
    let p = unsafe { erealloc_on(h, ptr, size, usize::MAX, false) };
    record(h, p, size, at(filename, lineno, orig_filename, orig_lineno))
}

/// `_erealloc2` recording the caller's location.
///
/// # Safety
/// As `_erealloc2` and `zendmm_emalloc_dbg`.
#[no_mangle]
pub unsafe extern "C" fn zendmm_erealloc2_dbg(
    ptr: *mut c_void,
    size: usize,
    copy_size: usize,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_void {
    let h = current_heap();
    // SAFETY: caller's contract.
    let p = unsafe { erealloc_on(h, ptr, size, copy_size, false) };
    record(h, p, size, at(filename, lineno, orig_filename, orig_lineno))
}

/// `_ecalloc` recording the caller's location.
///
/// # Safety
/// As `zendmm_emalloc_dbg`.
#[no_mangle]
pub unsafe extern "C" fn zendmm_ecalloc_dbg(
    nmemb: usize,
    size: usize,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_void {
    let h = current_heap();
    let p = ecalloc_on(h, nmemb, size, false);
    // A block came back, so the product did not overflow.
    let n = nmemb.wrapping_mul(size);
    record(h, p, n, at(filename, lineno, orig_filename, orig_lineno))
}

/// `_safe_emalloc` recording the caller's location.
///
/// # Safety
/// As `zendmm_emalloc_dbg`.
#[no_mangle]
pub unsafe extern "C" fn zendmm_safe_emalloc_dbg(
    nmemb: usize,
    size: usize,
    offset: usize,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_void {
    let h = current_heap();
    let p = safe_emalloc_on(h, nmemb, size, offset, false);
    let n = nmemb.wrapping_mul(size).wrapping_add(offset);
    record(h, p, n, at(filename, lineno, orig_filename, orig_lineno))
}

/// `_safe_erealloc` recording the caller's location.
///
/// # Safety
/// As `_safe_erealloc` and `zendmm_emalloc_dbg`.
#[no_mangle]
pub unsafe extern "C" fn zendmm_safe_erealloc_dbg(
    ptr: *mut c_void,
    nmemb: usize,
    size: usize,
    offset: usize,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_void {
    let h = current_heap();
    // SAFETY: caller's contract.
    let p = unsafe { safe_erealloc_on(h, ptr, nmemb, size, offset, false) };
    let n = nmemb.wrapping_mul(size).wrapping_add(offset);
    record(h, p, n, at(filename, lineno, orig_filename, orig_lineno))
}

/// `_estrdup` recording the caller's location.
///
/// # Safety
/// `s` is a NUL-terminated string; otherwise as `zendmm_emalloc_dbg`.
#[no_mangle]
pub unsafe extern "C" fn zendmm_estrdup_dbg(
    s: *const c_char,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_char {
    // SAFETY: caller's contract.
    let len = unsafe { libc::strlen(s) };
    // SAFETY: `s` has `len` readable bytes.
    let p = unsafe { copy_string(s, len) };
    let at = at(filename, lineno, orig_filename, orig_lineno);
    record(current_heap(), p.cast(), len + 1, at).cast()
}

/// `_estrndup` recording the caller's location.
///
/// # Safety
/// `s` has `length` readable bytes; otherwise as `zendmm_emalloc_dbg`.
#[no_mangle]
pub unsafe extern "C" fn zendmm_estrndup_dbg(
    s: *const c_char,
    length: usize,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_char {
    // SAFETY: caller's contract.
    let p = unsafe { copy_string(s, length) };
    let at = at(filename, lineno, orig_filename, orig_lineno);
    record(current_heap(), p.cast(), length.wrapping_add(1), at).cast()
}

/// `_zend_mm_alloc` recording the caller's location.
///
/// # Safety
/// `heap` is a live heap; otherwise as `zendmm_emalloc_dbg`.
#[no_mangle]
pub unsafe extern "C" fn zendmm_zend_mm_alloc_dbg(
    heap: *mut zend_mm_heap,
    size: usize,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_void {
    let p = emalloc_on(heap, size, false);
    record(
        heap,
        p,
        size,
        at(filename, lineno, orig_filename, orig_lineno),
    )
}

/// `_zend_mm_free` in a debug build; the location is not used.
///
/// # Safety
/// `heap` is a live heap; `p` is NULL or one of its live blocks.
#[no_mangle]
pub unsafe extern "C" fn zendmm_zend_mm_free_dbg(
    heap: *mut zend_mm_heap,
    p: *mut c_void,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) {
    let _ = (filename, lineno, orig_filename, orig_lineno);
    DEBUG_ABI_USED.store(true, Ordering::Relaxed);
    // SAFETY: caller's contract.
    unsafe { efree_on(heap, p) }
}

/// `_zend_mm_realloc` recording the caller's location.
///
/// # Safety
/// `heap` is a live heap; `p` is NULL or one of its live blocks; otherwise
/// as `zendmm_emalloc_dbg`.
#[no_mangle]
pub unsafe extern "C" fn zendmm_zend_mm_realloc_dbg(
    heap: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_void {
    // SAFETY: caller's contract.
    let q = unsafe { erealloc_on(heap, p, size, usize::MAX, false) };
    record(
        heap,
        q,
        size,
        at(filename, lineno, orig_filename, orig_lineno),
    )
}

/// `_zend_mm_realloc2` recording the caller's location.
///
/// # Safety
/// As `zendmm_zend_mm_realloc_dbg`.
#[no_mangle]
pub unsafe extern "C" fn zendmm_zend_mm_realloc2_dbg(
    heap: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
    copy_size: usize,
    filename: *const c_char,
    lineno: u32,
    orig_filename: *const c_char,
    orig_lineno: u32,
) -> *mut c_void {
    // SAFETY: caller's contract.
    let q = unsafe { erealloc_on(heap, p, size, copy_size, false) };
    record(
        heap,
        q,
        size,
        at(filename, lineno, orig_filename, orig_lineno),
    )
}

/// Sets the name the leak report prints after `script=` (PHP prints the
/// script's path there); the string is copied. NULL restores the default,
/// the program's name (`program_invocation_short_name`).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string. Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zendmm_set_script_name(name: *const c_char) {
    // SAFETY: caller's contract.
    unsafe { leaks::set_script_name(name) }
}
