//! `Persistent`: the crate's `#[global_allocator]`, libc's malloc with
//! counters (PHP's persistent memory, `pemalloc(size, 1)`).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The largest alignment `malloc` guarantees for every size: 16 bytes with
/// glibc on 64-bit targets, 8 assumed elsewhere (as Rust's `System` does).
const MALLOC_ALIGN: usize = if cfg!(target_pointer_width = "64") {
    16
} else {
    8
};

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static TOTAL_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// Persistent memory for a whole Rust program: a [`GlobalAlloc`] that
/// forwards to libc (`malloc`, `calloc`, `realloc`, `free`, and
/// `posix_memalign` for alignments above 16) and counts what it hands out.
///
/// This is PHP's persistent memory, the one `pemalloc(size, 1)` and
/// `__zend_malloc` take from libc, and the one a program embedding zendmm
/// should install:
///
/// ```
/// use zendmm::Persistent;
///
/// #[global_allocator]
/// static GLOBAL: Persistent = Persistent;
///
/// fn main() {
///     let before = GLOBAL.stats();
///     let v = vec![0u8; 4096];
///     let during = GLOBAL.stats();
///     assert!(during.live_bytes >= before.live_bytes + 4096);
///     assert!(during.total_allocations > before.total_allocations);
///     drop(v);
/// }
/// ```
///
/// # Why the request heap is not a global allocator
///
/// [`Heap`](crate::Heap) is PHP's request heap, and three of its properties
/// rule it out as `#[global_allocator]`:
///
/// - **Reset frees memory Rust still references.** A request ends by
///   forgetting every block at once. A global allocator's blocks must stay
///   valid until they are deallocated, and the program's long-lived data
///   (statics, thread-locals, the standard library's own buffers such as
///   stdout's, a `OnceLock` filled on first use) would be freed under it: a
///   use after free. The safe `Heap` prevents this with lifetimes, which a
///   global allocator cannot carry.
/// - **The memory limit.** Over `memory_limit` the C ABI raises PHP's fatal
///   error and exits; a global allocator could only return null, and Rust
///   then aborts the process (`handle_alloc_error`). Either way a limit meant
///   for a script's data would kill the program for its own bookkeeping.
/// - **Threads.** A global allocator is called from every thread at once.
///   The heap is single-threaded (`!Sync`), like PHP's non-thread-safe build;
///   a lock would serialise every allocation in the program and still solve
///   neither point above. It could also deadlock: the heap's storage backends
///   themselves allocate (opening `/dev/zero` builds a path string).
///
/// So request data goes in a `Heap` (through [`HeapBox`](crate::HeapBox),
/// [`Bytes`](crate::Bytes) or `allocator_api2` collections over `&Heap`),
/// and everything else in `Persistent`. Its counters show what the program
/// holds outside the request heap; they are relaxed atomics, exact once the
/// threads that allocate have synchronised with the reader.
#[derive(Clone, Copy, Debug, Default)]
pub struct Persistent;

/// What [`Persistent`] has handed out, from [`Persistent::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistentStats {
    /// Bytes of the allocations alive now (their requested sizes).
    pub live_bytes: usize,
    /// Allocations alive now.
    pub live_allocations: usize,
    /// Allocations made since the program started (reallocations excluded).
    pub total_allocations: usize,
}

impl Persistent {
    /// The counters, summed over all threads.
    ///
    /// They count only what went through `Persistent`: they stay 0 in a
    /// program that does not install it as `#[global_allocator]`.
    pub fn stats(&self) -> PersistentStats {
        PersistentStats {
            live_bytes: LIVE_BYTES.load(Relaxed),
            live_allocations: LIVE_ALLOCATIONS.load(Relaxed),
            total_allocations: TOTAL_ALLOCATIONS.load(Relaxed),
        }
    }
}

/// Can plain `malloc`/`realloc` serve this alignment for this size?
#[inline]
fn malloc_aligns(align: usize, size: usize) -> bool {
    align <= MALLOC_ALIGN && align <= size
}

/// Counts a new allocation of `size` bytes, if there is one.
#[inline]
fn counted(p: *mut u8, size: usize) -> *mut u8 {
    if !p.is_null() {
        LIVE_BYTES.fetch_add(size, Relaxed);
        LIVE_ALLOCATIONS.fetch_add(1, Relaxed);
        TOTAL_ALLOCATIONS.fetch_add(1, Relaxed);
    }
    p
}

/// `posix_memalign`, or null.
///
/// # Safety
/// `align` is a power of two.
unsafe fn aligned_malloc(align: usize, size: usize) -> *mut u8 {
    let mut out = ptr::null_mut();
    // posix_memalign wants a multiple of the pointer size.
    let align = align.max(core::mem::size_of::<usize>());
    // SAFETY: plain libc call with a valid out pointer and a power-of-two
    // alignment (caller's contract) that is a multiple of the pointer size.
    if unsafe { libc::posix_memalign(&mut out, align, size) } == 0 {
        out.cast()
    } else {
        ptr::null_mut()
    }
}

// SAFETY: every block comes from libc with at least the layout's size and
// alignment (malloc's guarantee up to `MALLOC_ALIGN`, posix_memalign above)
// and stays valid until `dealloc`; libc's allocator is thread-safe and never
// calls back into Rust's global allocator.
unsafe impl GlobalAlloc for Persistent {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = if malloc_aligns(layout.align(), layout.size()) {
            // SAFETY: plain libc call.
            unsafe { libc::malloc(layout.size()) }.cast()
        } else {
            // SAFETY: a layout's alignment is a power of two.
            unsafe { aligned_malloc(layout.align(), layout.size()) }
        };
        counted(p, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if malloc_aligns(layout.align(), layout.size()) {
            // SAFETY: plain libc call.
            counted(
                unsafe { libc::calloc(1, layout.size()) }.cast(),
                layout.size(),
            )
        } else {
            // SAFETY: the trait's contract is passed on; a non-null block
            // has `layout.size()` writable bytes.
            unsafe {
                let p = self.alloc(layout);
                if !p.is_null() {
                    p.write_bytes(0, layout.size());
                }
                p
            }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: the trait's contract: `p` came from this allocator, so from libc.
        unsafe { libc::free(p.cast()) };
        LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
        LIVE_ALLOCATIONS.fetch_sub(1, Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !malloc_aligns(layout.align(), new_size) {
            // SAFETY: the trait's contract: `p` is live with `layout`, and
            // `new_size` with its alignment is a valid layout.
            unsafe {
                let new = Layout::from_size_align_unchecked(new_size, layout.align());
                let q = self.alloc(new);
                if !q.is_null() {
                    ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                    self.dealloc(p, layout);
                    // A move, not a new allocation.
                    TOTAL_ALLOCATIONS.fetch_sub(1, Relaxed);
                }
                return q;
            }
        }
        // SAFETY: the trait's contract: `p` came from libc; libc keeps it
        // on failure.
        let q: *mut u8 = unsafe { libc::realloc(p.cast(), new_size) }.cast();
        if !q.is_null() {
            LIVE_BYTES.fetch_add(new_size, Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
        }
        q
    }
}
