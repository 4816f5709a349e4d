//! The C ABI: PHP 8.2's release-build names and signatures, plus `zendmm_*`
//! additions. Each export is a short shim: check its arguments, call the
//! core, raise errors through `report`.
//!
//! Threading: like PHP's NTS build, the current heap is process-wide and not
//! locked; use one heap per thread through the heap-object functions
//! (`zend_mm_startup`, `_zend_mm_alloc`, ...) when threads allocate.

pub mod emalloc;
pub mod heap_api;
pub mod persistent;
pub mod types;
pub mod usage;

use crate::heap::Heap;
use crate::report::{self, MemError};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicPtr, Ordering};
use types::zend_mm_heap;

struct ProcessHeap(UnsafeCell<zend_mm_heap>);

// SAFETY: access is serialised by the caller (NTS contract, module docs).
unsafe impl Sync for ProcessHeap {}

/// The heap every process starts with; it reads the environment on first use.
static PROCESS_HEAP: ProcessHeap = ProcessHeap(UnsafeCell::new(zend_mm_heap { heap: Heap::lazy_from_env() }));

/// The heap `_emalloc` & co. use (`AG(mm_heap)`); `zend_mm_set_heap` swaps it.
static CURRENT: AtomicPtr<zend_mm_heap> = AtomicPtr::new(PROCESS_HEAP.0.get());

pub(crate) fn process_heap() -> *mut zend_mm_heap {
    PROCESS_HEAP.0.get()
}

pub(crate) fn current_heap() -> *mut zend_mm_heap {
    CURRENT.load(Ordering::Relaxed)
}

pub(crate) fn set_current_heap(h: *mut zend_mm_heap) -> *mut zend_mm_heap {
    CURRENT.swap(h, Ordering::Relaxed)
}

/// The core heap inside a C heap handle.
///
/// Safety argument for every `unsafe { &mut *heap_of(h) }` in this module:
/// `h` is the process heap or came from `zend_mm_startup` and was not
/// shut down with `full`; callers serialise access (NTS); the core never
/// calls back into the FFI while it holds the reference (storage backends
/// do not allocate from zendmm), and every fatal error is raised after the
/// reference is dropped.
#[inline(always)]
pub(crate) fn heap_of(h: *mut zend_mm_heap) -> *mut Heap {
    // SAFETY: projecting a field address does not read through `h`.
    unsafe { &raw mut (*h).heap }
}

/// Raises an allocation error of `heap`: frees the reserve for headroom and
/// reports. Never returns; a handler may `longjmp` out of it.
#[cold]
#[inline(never)]
pub(crate) fn raise(heap: *mut Heap, err: MemError) -> ! {
    // SAFETY: see `heap_of`; the borrow ends before the report.
    let nested = unsafe { (*heap).begin_error() };
    report::fatal(err, nested)
}

/// PHP's `zend_safe_address`: `nmemb * size + offset` or an overflow error.
#[inline]
pub(crate) fn safe_address(nmemb: usize, size: usize, offset: usize) -> Result<usize, MemError> {
    nmemb
        .checked_mul(size)
        .and_then(|n| n.checked_add(offset))
        .ok_or(MemError::Overflow { nmemb, size, offset })
}
