//! Custom handlers (`zend_mm_set_custom_handlers`, used by profilers) and
//! the tracked mode of `USE_ZEND_ALLOC=0`: libc malloc with usage counted and
//! `memory_limit` enforced, so PHP under valgrind or ASan still sees its limit.
//! Heaps counting cache statistics (`ffi::observe`) are routed here too.

use super::types::{zend_mm_free_fn, zend_mm_heap, zend_mm_malloc_fn, zend_mm_realloc_fn, Custom};
use super::{complete, current_heap, debug, heap_of, observe, php, raise, tooled};
use crate::heap::Heap;
use crate::MemError;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use libc::c_void;

/// # Safety
/// `p` is a live libc block.
unsafe fn usable(p: *mut c_void) -> usize {
    // SAFETY: caller's contract.
    unsafe { libc::malloc_usable_size(p) }
}

/// # Safety
/// `p` is NULL or a live libc block.
unsafe fn usable_or_zero(p: *mut c_void) -> usize {
    if p.is_null() {
        0
    } else {
        // SAFETY: caller's contract.
        unsafe { usable(p) }
    }
}

/// `malloc` counted against the heap's limit.
pub(crate) fn tracked_alloc(heap: &mut Heap, size: usize) -> Result<NonNull<u8>, MemError> {
    if !heap.acct.segment_fits(size) {
        return Err(MemError::Limit {
            limit: heap.acct.limit,
            tried: size,
        });
    }
    // SAFETY: plain libc calls on a block we just got.
    unsafe {
        let p = libc::malloc(size.max(1));
        let Some(nn) = NonNull::new(p.cast::<u8>()) else {
            return Err(MemError::OutOfMemory {
                allocated: heap.acct.real_size,
                tried: size,
            });
        };
        let n = usable(p);
        heap.acct.add_used(n);
        heap.acct.add_real(n);
        Ok(nn)
    }
}

/// # Safety
/// `p` came from `tracked_alloc`/`tracked_realloc`.
pub(crate) unsafe fn tracked_free(heap: &mut Heap, p: *mut c_void) {
    // SAFETY: caller's contract.
    let n = unsafe { usable(p) };
    // Blocks from an earlier request are no longer counted.
    heap.acct.size = heap.acct.size.saturating_sub(n);
    heap.acct.real_size = heap.acct.real_size.saturating_sub(n);
    // SAFETY: caller's contract.
    unsafe { libc::free(p) }
}

/// # Safety
/// `p` is NULL or came from `tracked_alloc`/`tracked_realloc`.
pub(crate) unsafe fn tracked_realloc(
    heap: &mut Heap,
    p: *mut c_void,
    size: usize,
) -> Result<NonNull<u8>, MemError> {
    // SAFETY: caller's contract.
    let old = unsafe { usable_or_zero(p) };
    if size > old && !heap.acct.segment_fits(size - old) {
        return Err(MemError::Limit {
            limit: heap.acct.limit,
            tried: size - old,
        });
    }
    // SAFETY: caller's contract; on failure `p` stays valid.
    unsafe {
        let q = libc::realloc(p, size.max(1));
        let Some(nn) = NonNull::new(q.cast::<u8>()) else {
            return Err(MemError::OutOfMemory {
                allocated: heap.acct.real_size,
                tried: size,
            });
        };
        let new = usable(q);
        heap.acct.size = heap.acct.size.saturating_sub(old);
        heap.acct.real_size = heap.acct.real_size.saturating_sub(old);
        heap.acct.add_used(new);
        heap.acct.add_real(new);
        Ok(nn)
    }
}

/// Set when a `zend_mm_set_max_allocs` countdown reaches zero.
pub(crate) static MAX_ALLOCS_HIT: AtomicBool = AtomicBool::new(false);

/// Counts one tracked allocation against `zend_mm_set_max_allocs`; on the
/// last one allowed, reports it as a memory-limit error. `false`: the caller
/// gets NULL.
fn count_alloc(h: *mut zend_mm_heap, size: usize, fallible: bool) -> bool {
    // SAFETY: see `heap_of`.
    let left = unsafe { &mut (*h).max_allocs };
    if *left == 0 {
        return true;
    }
    *left -= 1;
    if *left != 0 {
        return true;
    }
    MAX_ALLOCS_HIT.store(true, Ordering::Relaxed);
    // SAFETY: see `heap_of`.
    let limit = unsafe { (*heap_of(h)).limit() };
    // SAFETY: see `heap_of`.
    let fallible = fallible || unsafe { (*h).fallible };
    if php::in_php() {
        return php::report_limit(limit, size, fallible);
    }
    if fallible {
        return false;
    }
    raise(heap_of(h), MemError::Limit { limit, tried: size })
}

/// `_emalloc` on a routed heap: custom handlers, tracked malloc, or zendmm
/// with cache statistics counted.
#[cold]
pub(crate) fn malloc(h: *mut zend_mm_heap, size: usize, fallible: bool) -> *mut c_void {
    // SAFETY: see `heap_of`.
    match unsafe { (*h).custom } {
        Custom::Std {
            malloc: Some(m), ..
        } => {
            // SAFETY: the application's handler.
            unsafe { m(size) }
        }
        Custom::Tracked if !count_alloc(h, size, fallible) => core::ptr::null_mut(),
        Custom::Tracked => complete(h, fallible, |heap| tracked_alloc(heap, size)),
        _ if crate::tool::active() => tooled::malloc(h, size, fallible),
        Custom::None => observe::alloc(h, size, fallible),
        _ => complete(h, fallible, |heap| heap.alloc(size)),
    }
}

/// `_efree` on a routed heap.
///
/// # Safety
/// `p` came from the same heap's `malloc`/`realloc`.
#[cold]
pub(crate) unsafe fn free(h: *mut zend_mm_heap, p: *mut c_void) {
    // SAFETY: caller's contract; see `heap_of`.
    unsafe {
        debug::forget(h, p);
        match (*h).custom {
            Custom::Std { free: Some(f), .. } => f(p),
            Custom::Tracked => tracked_free(&mut *super::heap_of(h), p),
            _ if crate::tool::active() => tooled::free(h, p),
            Custom::None => observe::free(h, p),
            _ => (*super::heap_of(h)).free(p.cast()),
        }
    }
}

/// `_erealloc` on a routed heap; a recorded location follows the block.
///
/// # Safety
/// `p` is NULL or came from the same heap's `malloc`/`realloc`.
#[cold]
pub(crate) unsafe fn realloc(
    h: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
    copy: usize,
    fallible: bool,
) -> *mut c_void {
    // SAFETY: caller's contract.
    unsafe {
        let q = realloc_by(h, p, size, copy, fallible);
        debug::moved(h, p, q, size);
        q
    }
}

/// # Safety
/// As [`realloc`].
unsafe fn realloc_by(
    h: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
    copy: usize,
    fallible: bool,
) -> *mut c_void {
    // SAFETY: caller's contract; see `heap_of`.
    match unsafe { (*h).custom } {
        Custom::Std {
            realloc: Some(r), ..
        } => {
            // SAFETY: the application's handler.
            unsafe { r(p, size) }
        }
        Custom::Tracked => {
            // SAFETY: caller's contract: `p` is NULL or a tracked libc block.
            let grows = size > unsafe { usable_or_zero(p) };
            if grows && !count_alloc(h, size, fallible) {
                return core::ptr::null_mut();
            }
            complete(h, fallible, |heap| {
                // SAFETY: caller's contract.
                unsafe { tracked_realloc(heap, p, size) }
            })
        }
        // SAFETY: caller's contract.
        _ if crate::tool::active() => unsafe { tooled::realloc(h, p, size, copy, fallible) },
        // SAFETY: caller's contract.
        Custom::None => unsafe { observe::realloc(h, p, size, copy, fallible) },
        // SAFETY: caller's contract.
        _ => complete(h, fallible, |heap| unsafe {
            heap.realloc2(p.cast(), size, copy)
        }),
    }
}

/// Routes `_emalloc`, `_efree` and `_erealloc` of `heap` to the given
/// functions (profilers use this); three NULLs give the heap back to zendmm.
///
/// # Safety
/// `heap` is a live heap. Blocks allocated before the switch must be freed
/// by whoever allocated them.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_set_custom_handlers(
    heap: *mut zend_mm_heap,
    _malloc: zend_mm_malloc_fn,
    _free: zend_mm_free_fn,
    _realloc: zend_mm_realloc_fn,
) {
    if heap.is_null() {
        return;
    }
    let custom = if _malloc.is_none() && _free.is_none() && _realloc.is_none() {
        tooled::own_custom()
    } else {
        Custom::Std {
            malloc: _malloc,
            free: _free,
            realloc: _realloc,
        }
    };
    // SAFETY: caller's contract.
    unsafe { (*heap).set_custom(custom) };
}

/// Writes `heap`'s custom handlers, or NULLs when it has none.
///
/// # Safety
/// `heap` is a live heap; each out-pointer is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn zend_mm_get_custom_handlers(
    heap: *mut zend_mm_heap,
    _malloc: *mut zend_mm_malloc_fn,
    _free: *mut zend_mm_free_fn,
    _realloc: *mut zend_mm_realloc_fn,
) {
    // SAFETY: caller's contract.
    let (m, f, r) = match unsafe { heap.as_ref() }.map(|h| h.custom) {
        Some(Custom::Std {
            malloc,
            free,
            realloc,
        }) => (malloc, free, realloc),
        _ => (None, None, None),
    };
    // SAFETY: caller's contract; NULL out-pointers are skipped.
    unsafe {
        if !_malloc.is_null() {
            *_malloc = m;
        }
        if !_free.is_null() {
            *_free = f;
        }
        if !_realloc.is_null() {
            *_realloc = r;
        }
    }
}

/// Does the current heap route to custom handlers (or to tracked malloc)?
/// Like PHP 8.2, the argument is ignored: the current heap is asked.
#[no_mangle]
pub extern "C" fn zend_mm_is_custom_heap(_new_heap: *mut zend_mm_heap) -> bool {
    // SAFETY: see `heap_of`.
    unsafe { !(*current_heap()).custom.is_zendmm() }
}
