//! The C ABI: PHP 8.2's release-build names and signatures, plus `zendmm_*`
//! additions. Each export is a short shim: check its arguments, route to
//! custom handlers if the heap has them, call the core, and settle errors
//! through `complete`.
//!
//! Threading: like PHP's NTS build, the current heap is process-wide and not
//! locked; use one heap per thread through the heap-object functions
//! (`zend_mm_startup`, `_zend_mm_alloc`, ...) when threads allocate.

pub mod bins;
pub mod custom;
pub mod debug;
pub mod emalloc;
pub mod fallible;
pub mod heap_api;
pub mod observe;
pub mod persistent;
pub mod php;
pub mod storage_ex;
pub mod tooled;
pub mod types;
pub mod usage;

use crate::heap::Heap;
use crate::report::{self, MemError};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use libc::c_void;
use types::zend_mm_heap;

struct ProcessHeap(UnsafeCell<zend_mm_heap>);

// SAFETY: access is serialised by the caller (NTS contract, module docs).
unsafe impl Sync for ProcessHeap {}

/// The heap every process starts with; it reads the environment on first use.
static PROCESS_HEAP: ProcessHeap =
    ProcessHeap(UnsafeCell::new(zend_mm_heap::new(Heap::lazy_from_env())));

/// The heap `_emalloc` & co. use (`AG(mm_heap)`); `zend_mm_set_heap` swaps it.
static CURRENT: AtomicPtr<zend_mm_heap> = AtomicPtr::new(PROCESS_HEAP.0.get());

pub(crate) fn process_heap() -> *mut zend_mm_heap {
    PROCESS_HEAP.0.get()
}

#[inline(always)]
pub(crate) fn current_heap() -> *mut zend_mm_heap {
    CURRENT.load(Ordering::Relaxed)
}

pub(crate) fn set_current_heap(h: *mut zend_mm_heap) -> *mut zend_mm_heap {
    CURRENT.swap(h, Ordering::Relaxed)
}

/// A forked child must not share its parent's link key (PHP 8.4 re-seeds it
/// the same way): re-key the process heap and the current heap.
extern "C" fn refresh_keys_in_child() {
    let (p, c) = (process_heap(), current_heap());
    // The child runs only the forking thread, so no other user of these
    // heaps exists; both are live (see `heap_of`). `quietly`: a watching
    // tool must not see the walk over free blocks as the program's access.
    tooled::quietly(p, |h| h.refresh_secret());
    if c != p {
        tooled::quietly(c, |h| h.refresh_secret());
    }
}

extern "C" fn register_fork_handler() {
    // SAFETY: registers a plain function; nothing runs now.
    unsafe { libc::pthread_atfork(None, None, Some(refresh_keys_in_child)) };
}

/// Runs at load time (ELF `.init_array`), before any heap can be used.
#[used]
#[link_section = ".init_array"]
static REGISTER_FORK_HANDLER: extern "C" fn() = register_fork_handler;

/// The core heap inside a C heap handle.
///
/// Safety argument for every `(*heap_of(h))` and `(*h)` in this module: `h`
/// is the process heap or came from `zend_mm_startup[_ex]` and was not shut
/// down with `full`; callers serialise access (NTS); the core never calls
/// back into the FFI while a reference is live (storage backends do not
/// allocate from zendmm), and every error is settled after the reference is
/// dropped.
#[inline(always)]
pub(crate) fn heap_of(h: *mut zend_mm_heap) -> *mut Heap {
    // SAFETY: projecting a field address does not read through `h`.
    unsafe { &raw mut (*h).heap }
}

/// A heap operation that `complete` may run twice (again past the limit).
pub(crate) type Op<'a> = &'a mut dyn FnMut(&mut Heap) -> Result<NonNull<u8>, MemError>;

/// Runs `op` on `h`'s core heap; on failure, settles the error the way the
/// process expects (see `settle`).
#[inline(always)]
pub(crate) fn complete(
    h: *mut zend_mm_heap,
    fallible: bool,
    mut op: impl FnMut(&mut Heap) -> Result<NonNull<u8>, MemError>,
) -> *mut c_void {
    // SAFETY: see `heap_of`; the borrow ends with the call.
    match op(unsafe { &mut *heap_of(h) }) {
        Ok(p) => p.as_ptr().cast(),
        Err(e) => settle(h, e, fallible, &mut op),
    }
}

/// A failed allocation. Outside PHP: NULL for a fallible call that hit the
/// limit or the storage, else a fatal error (issue-3 behaviour). Inside
/// PHP 8.2.36: its delayed-OOM protocol, through the C glue.
#[cold]
#[inline(never)]
pub(crate) fn settle(h: *mut zend_mm_heap, e: MemError, fallible: bool, op: Op<'_>) -> *mut c_void {
    // SAFETY: see `heap_of`.
    let fallible = fallible || unsafe { (*h).fallible };
    if !php::in_php() {
        if fallible && matches!(e, MemError::Limit { .. } | MemError::OutOfMemory { .. }) {
            return ptr::null_mut();
        }
        raise(heap_of(h), e)
    }
    php::settle(h, e, fallible, op)
}

/// Raises a fatal allocation error of `heap` outside PHP: frees the reserve
/// for headroom and reports. Never returns; a handler may `longjmp` out.
#[cold]
#[inline(never)]
pub(crate) fn raise(heap: *mut Heap, err: MemError) -> ! {
    // SAFETY: see `heap_of`; the borrow ends before the report. Freeing
    // the reserve reads headers a tool must not see the heap read.
    let nested = crate::tool::quiet(|| unsafe { (*heap).begin_error() });
    report::fatal(err, nested)
}

/// PHP's `zend_safe_address`: `nmemb * size + offset` or an overflow error.
#[inline]
pub(crate) fn safe_address(nmemb: usize, size: usize, offset: usize) -> Result<usize, MemError> {
    nmemb
        .checked_mul(size)
        .and_then(|n| n.checked_add(offset))
        .ok_or(MemError::Overflow {
            nmemb,
            size,
            offset,
        })
}
