//! The safe request arena, `zendmm::Heap`: the request heap of `heap.rs`
//! behind an API the borrow checker can police.
//!
//! Allocation goes through `&self` and hands out values that borrow the
//! heap ([`HeapBox`], [`Bytes`], `allocator_api2` collections over `&Heap`);
//! [`Heap::reset`] takes `&mut self`, so it cannot run while any of them is
//! alive. The inner heap sits in an `UnsafeCell`, which also makes the arena
//! `!Sync`: one thread at a time, like PHP's request heap.

use crate::block::ALIGNMENT;
use crate::config::Config;
use crate::heap::{self, LimitBelowUsage};
use crate::report::MemError;
use crate::stats::Stats;
use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::{self, NonNull};

mod allocator;
mod boxed;
mod bytes;

pub use boxed::HeapBox;
pub use bytes::Bytes;

/// A request heap: an arena that hands out memory until [`reset`](Heap::reset)
/// forgets all of it at once, in time proportional to its segments.
///
/// This is the allocator PHP uses for everything a request creates (the
/// Zend Memory Manager), usable from Rust without any C:
///
/// - **allocate** with [`alloc`](Heap::alloc), [`alloc_str`](Heap::alloc_str),
///   [`alloc_slice_copy`](Heap::alloc_slice_copy) (a [`HeapBox`]),
///   [`alloc_bytes`](Heap::alloc_bytes) (a growable [`Bytes`] buffer), or any
///   `allocator_api2` collection through `&Heap` (see below);
/// - **free** by dropping what was allocated; **realloc** with
///   [`Bytes::resize`] and `Vec` growth, in place when the block's
///   neighbour is free;
/// - **measure** with [`usage`](Heap::usage), [`peak`](Heap::peak),
///   [`real_usage`](Heap::real_usage), [`stats`](Heap::stats);
/// - **limit** with [`set_limit`](Heap::set_limit): an allocation that would
///   pass it returns [`MemError::Limit`] (PHP's "Allowed memory size of ...
///   exhausted" message as its `Display`), never a fatal error;
/// - **reset** with [`reset`](Heap::reset) at the end of a request.
///
/// Everything allocated borrows the heap, and `reset` needs `&mut self`:
/// the borrow checker rejects any use of an allocation after a reset, and a
/// heap that is dropped gives every segment back to its storage.
///
/// ```
/// use zendmm::Heap;
///
/// let mut heap = Heap::new();
/// for request in 0..3 {
///     let greeting = heap.alloc_str("hello")?;
///     let mut page = heap.alloc_bytes(0)?;
///     page.extend_from_slice(greeting.as_bytes())?;
///     page.extend_from_slice(format!(", request {request}").as_bytes())?;
///     assert_eq!(&page[..], format!("hello, request {request}").as_bytes());
///     assert!(heap.usage() > 0);
///     drop((greeting, page));
///     heap.reset(); // everything forgotten, usage back to 0
///     assert_eq!(heap.usage(), 0);
/// }
/// # Ok::<(), zendmm::MemError>(())
/// ```
///
/// Use after reset does not compile:
///
/// ```compile_fail,E0502
/// let mut heap = zendmm::Heap::new();
/// let s = heap.alloc_str("request data").unwrap();
/// heap.reset(); // error: cannot borrow `heap` as mutable: `s` borrows it
/// println!("{}", &*s);
/// ```
///
/// # Collections in the heap (`allocator_api2`)
///
/// `&Heap` implements [`allocator_api2::alloc::Allocator`], so the
/// `allocator_api2` collections live in a request heap on stable Rust (the
/// crate re-exports [`allocator_api2`] so that the versions match):
///
/// ```
/// use zendmm::allocator_api2::vec::Vec;
/// use zendmm::Heap;
///
/// let mut heap = Heap::new();
/// {
///     let mut ids: Vec<u64, &Heap> = Vec::new_in(&heap);
///     ids.extend(0..1000);
///     assert_eq!(ids.iter().sum::<u64>(), 499_500);
///     assert!(heap.usage() >= 8000);
/// }
/// heap.reset();
/// assert_eq!(heap.usage(), 0);
/// ```
///
/// Fallible growth (`try_reserve`) reports the limit instead of aborting.
///
/// # Threads
///
/// A `Heap` can move to another thread (`Send`) but not be shared (`!Sync`),
/// so `&Heap`, and everything allocated from it, stays on one thread:
///
/// ```compile_fail,E0277
/// let heap = zendmm::Heap::new();
/// std::thread::scope(|s| {
///     s.spawn(|| heap.alloc(1u8).map(drop)); // error: `Heap` is not `Sync`
/// });
/// ```
///
/// It is not a global allocator: see [`Persistent`](crate::Persistent) for
/// why, and for the one this crate offers.
pub struct Heap {
    /// Boxed so that the inner heap never moves, whatever it points at itself.
    inner: Box<UnsafeCell<heap::Heap>>,
}

impl Heap {
    /// A heap with the default settings: segments of 256 KiB from libc's
    /// `malloc`, no limit to speak of. It takes no segment until the first
    /// allocation.
    ///
    /// ```
    /// let heap = zendmm::Heap::new();
    /// assert_eq!((heap.usage(), heap.real_usage(), heap.segment_count()), (0, 0, 0));
    /// ```
    pub fn new() -> Heap {
        Heap::with_config(Config::DEFAULT)
    }

    /// A heap with other settings: another [`Storage`](crate::storage::Storage)
    /// backend or segment size. Environment variables are not read.
    ///
    /// ```
    /// use zendmm::{storage, Config, Heap};
    ///
    /// let heap = Heap::with_config(Config {
    ///     storage: &storage::MmapAnon,
    ///     segment_size: 64 * 1024,
    ///     ..Config::DEFAULT
    /// });
    /// let _b = heap.alloc([0u8; 100])?;
    /// assert_eq!(heap.real_usage(), 64 * 1024);
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn with_config(config: Config) -> Heap {
        Heap {
            inner: Box::new(UnsafeCell::new(heap::Heap::with_config(config))),
        }
    }

    /// Runs `f` on the inner heap. Every `&self` method goes through here.
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut heap::Heap) -> R) -> R {
        // `Heap` is !Sync, so only this thread can be here; the closures
        // passed in this module only call the inner heap and never code of
        // the caller's (no drop, no callback), so no second `with` can start
        // inside one; and the inner heap never calls back into a heap (the
        // `Storage` contract). `&mut self` methods and drop exclude `&self`
        // ones by the borrow rules.
        // SAFETY: so no other reference to the inner heap is live while `f` runs.
        f(unsafe { &mut *self.inner.get() })
    }

    /// Moves `value` into the heap.
    ///
    /// Types aligned to more than 16 bytes cost up to their alignment in
    /// extra bytes.
    ///
    /// ```
    /// let heap = zendmm::Heap::new();
    /// let mut point = heap.alloc((3, 4))?;
    /// point.0 += 1;
    /// assert_eq!(*point, (4, 4));
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn alloc<T>(&self, value: T) -> Result<HeapBox<'_, T>, MemError> {
        let p = self.alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: `p` is a fresh block with room and alignment for a T,
        // owned from now on by the box.
        unsafe {
            p.as_ptr().write(value);
            Ok(HeapBox::from_raw(p, self))
        }
    }

    /// Copies `s` into the heap.
    ///
    /// ```
    /// let heap = zendmm::Heap::new();
    /// let name = heap.alloc_str("zendmm")?;
    /// assert_eq!(&*name, "zendmm");
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn alloc_str(&self, s: &str) -> Result<HeapBox<'_, str>, MemError> {
        let bytes = HeapBox::into_raw(self.alloc_slice_copy(s.as_bytes())?);
        // SAFETY: the bytes were copied from a `str`, so they are UTF-8;
        // `[u8]` and `str` have the same layout and metadata.
        unsafe {
            let p = NonNull::new_unchecked(bytes.as_ptr() as *mut str);
            Ok(HeapBox::from_raw(p, self))
        }
    }

    /// Copies a slice into the heap.
    ///
    /// ```
    /// let heap = zendmm::Heap::new();
    /// let primes = heap.alloc_slice_copy(&[2, 3, 5, 7])?;
    /// assert_eq!(primes.iter().sum::<i32>(), 17);
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<HeapBox<'_, [T]>, MemError> {
        let p = self.alloc_layout(Layout::for_value(src))?.cast::<T>();
        // SAFETY: `p` is a fresh block with room and alignment for
        // `src.len()` Ts; `T: Copy`, so a bitwise copy is a valid copy.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
            Ok(HeapBox::from_raw(
                NonNull::slice_from_raw_parts(p, src.len()),
                self,
            ))
        }
    }

    /// A buffer of `len` zero bytes that can grow and shrink ([`Bytes`]).
    ///
    /// ```
    /// let heap = zendmm::Heap::new();
    /// let mut buf = heap.alloc_bytes(4)?;
    /// buf.copy_from_slice(b"PHP!");
    /// buf.resize(8)?;
    /// assert_eq!(&buf[..], b"PHP!\0\0\0\0");
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn alloc_bytes(&self, len: usize) -> Result<Bytes<'_>, MemError> {
        Bytes::zeroed_in(len, self)
    }

    /// Bytes of the blocks in use, their 8-byte headers included (PHP's
    /// `memory_get_usage()`). Freed blocks resting in the small-block cache
    /// are not counted.
    ///
    /// ```
    /// let heap = zendmm::Heap::new();
    /// let b = heap.alloc([0u8; 100])?;
    /// assert_eq!(heap.usage(), 112); // 100 bytes and the 8-byte header, rounded up to 16
    /// drop(b);
    /// assert_eq!(heap.usage(), 0);
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn usage(&self) -> usize {
        self.with(|h| h.usage(false))
    }

    /// The highest block usage since the heap was made, reset, or
    /// [`reset_peak`](Heap::reset_peak) (PHP's `memory_get_peak_usage()`).
    /// Blocks resting in the small-block cache count here while they rest,
    /// as in PHP.
    ///
    /// ```
    /// let heap = zendmm::Heap::new();
    /// drop(heap.alloc([0u8; 10_000])?);
    /// assert_eq!((heap.usage(), heap.peak()), (0, 10_016));
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn peak(&self) -> usize {
        self.with(|h| h.peak_usage(false))
    }

    /// Bytes of the segments held from storage (PHP's
    /// `memory_get_usage(true)`); the limit applies to this figure.
    pub fn real_usage(&self) -> usize {
        self.with(|h| h.usage(true))
    }

    /// The highest [`real_usage`](Heap::real_usage) since the heap was made,
    /// reset, or [`reset_peak`](Heap::reset_peak).
    pub fn real_peak(&self) -> usize {
        self.with(|h| h.peak_usage(true))
    }

    /// Sets both peaks to the current usage (PHP's `memory_reset_peak_usage()`).
    ///
    /// ```
    /// let heap = zendmm::Heap::new();
    /// drop(heap.alloc([0u8; 10_000])?);
    /// heap.reset_peak();
    /// assert_eq!(heap.peak(), heap.usage());
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn reset_peak(&self) {
        self.with(|h| h.reset_peak_usage())
    }

    /// The memory limit, in bytes of segments.
    pub fn limit(&self) -> usize {
        self.with(|h| h.limit())
    }

    /// Sets the memory limit (PHP's `memory_limit`): an allocation needing
    /// a segment that would take [`real_usage`](Heap::real_usage) past it
    /// fails with [`MemError::Limit`]. The limit is at least one segment;
    /// a smaller value is raised to that. Refused, with the old limit kept,
    /// when the heap already holds more than `limit` bytes of segments; the
    /// limit survives [`reset`](Heap::reset).
    ///
    /// ```
    /// use zendmm::{Heap, MemError};
    ///
    /// let heap = Heap::new();
    /// heap.set_limit(1 << 20).expect("the heap holds nothing yet");
    /// let err = heap.alloc_bytes(2 << 20).unwrap_err();
    /// assert!(matches!(err, MemError::Limit { limit: 1048576, .. }));
    /// assert!(err.to_string().starts_with("Allowed memory size of 1048576 bytes exhausted"));
    /// ```
    pub fn set_limit(&self, limit: usize) -> Result<(), LimitBelowUsage> {
        self.with(|h| h.set_limit(limit))
    }

    /// Segments held from storage.
    pub fn segment_count(&self) -> usize {
        self.with(|h| h.segment_count())
    }

    /// The size of a regular segment; larger blocks get a segment of their own.
    pub fn segment_size(&self) -> usize {
        self.with(|h| h.segment_size())
    }

    /// Every figure of the heap at once: usage, peaks, free lists, cache.
    ///
    /// ```
    /// let heap = zendmm::Heap::new();
    /// let _b = heap.alloc(0u64)?;
    /// let s = heap.stats();
    /// assert_eq!((s.usage, s.segments, s.real_usage), (32, 1, 256 * 1024));
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.with(|h| h.stats())
    }

    /// Walks every segment and block and checks the heap's invariants
    /// (boundary tags, free lists, cache, accounting); `Err` names the
    /// first problem found. For tests and debugging: it costs time
    /// proportional to the blocks.
    pub fn check(&self) -> Result<(), String> {
        self.with(|h| h.validate())
    }

    /// Forgets every allocation at once, the end of a request: whole
    /// segments go back to storage, except one of the regular size, kept
    /// empty for the next request, and spare segments within their budget
    /// (2 MiB here), which the next request takes before asking the
    /// storage (they count in no usage figure; dropping the heap gives
    /// them back). The cost grows with the number of segments, never with
    /// the number of blocks. Usage and peaks restart from 0 (the real ones from the kept segment); the limit stays.
    ///
    /// Nothing allocated from the heap can be alive here: `&mut self`
    /// proves it. Values that were [leaked](HeapBox::leak) or
    /// [forgotten](core::mem::forget) are not dropped, only their memory
    /// is reclaimed.
    ///
    /// ```
    /// use zendmm::{Bytes, Heap, HeapBox};
    ///
    /// let mut heap = Heap::new();
    /// for _ in 0..100 {
    ///     HeapBox::leak(heap.alloc([0u8; 1000])?); // never freed one by one
    /// }
    /// Bytes::leak(heap.alloc_bytes(1 << 20)?); // a segment of its own
    /// assert_eq!(heap.segment_count(), 2);
    /// heap.reset();
    /// assert_eq!((heap.usage(), heap.peak(), heap.segment_count()), (0, 0, 1));
    /// assert_eq!(heap.real_usage(), heap.segment_size());
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    ///
    /// A leaked value, or a collection over `&Heap`, cannot be used after
    /// a reset either:
    ///
    /// ```compile_fail,E0502
    /// let mut heap = zendmm::Heap::new();
    /// let n: &mut u64 = zendmm::HeapBox::leak(heap.alloc(1).unwrap());
    /// heap.reset(); // error: `heap` is still borrowed by `n`
    /// *n += 1;
    /// ```
    ///
    /// ```compile_fail,E0502
    /// use zendmm::allocator_api2::vec::Vec;
    ///
    /// let mut heap = zendmm::Heap::new();
    /// let mut v: Vec<u8, &zendmm::Heap> = Vec::new_in(&heap);
    /// v.push(1);
    /// heap.reset(); // error: `heap` is still borrowed by `v`
    /// v.push(2);
    /// ```
    pub fn reset(&mut self) {
        self.inner.get_mut().forget_all(true);
    }

    /// A 16-aligned block of at least `size` bytes.
    pub(crate) fn alloc_block(&self, size: usize) -> Result<NonNull<u8>, MemError> {
        self.with(|h| h.alloc(size))
    }

    /// Resizes a block from [`alloc_block`](Heap::alloc_block), keeping
    /// `min(old, new)` bytes of its contents; in place when the heap can. On
    /// error the block is untouched.
    ///
    /// # Safety
    /// `p` is a live block of this heap (from `alloc_block` or
    /// `realloc_block`, since the last reset); on success the result
    /// replaces it.
    pub(crate) unsafe fn realloc_block(
        &self,
        p: NonNull<u8>,
        size: usize,
    ) -> Result<NonNull<u8>, MemError> {
        // SAFETY: caller's contract.
        self.with(|h| unsafe { h.realloc(p.as_ptr(), size) })
    }

    /// # Safety
    /// As [`realloc_block`](Heap::realloc_block); `p` is not used again.
    pub(crate) unsafe fn free_block(&self, p: NonNull<u8>) {
        // SAFETY: caller's contract.
        self.with(|h| unsafe { h.free(p.as_ptr()) })
    }

    /// Usable bytes of a block (at least what was asked).
    ///
    /// # Safety
    /// As [`realloc_block`](Heap::realloc_block).
    pub(crate) unsafe fn usable_size(&self, p: NonNull<u8>) -> usize {
        // SAFETY: caller's contract.
        self.with(|h| unsafe { h.block_size(p.as_ptr()) })
    }

    /// `layout.size()` bytes aligned to `layout.align()`.
    ///
    /// Blocks are 16-aligned. A larger alignment takes `align` extra bytes:
    /// the data starts at the first aligned address at least 16 bytes into
    /// the block, and the block's address is kept in the word before it.
    pub(crate) fn alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, MemError> {
        let align = layout.align();
        if align <= ALIGNMENT {
            return self.alloc_block(layout.size());
        }
        let total = layout
            .size()
            .checked_add(align)
            .ok_or(MemError::OverflowAdd {
                size: layout.size(),
                overhead: align,
            })?;
        let raw = self.alloc_block(total)?;
        // `raw` is 16-aligned and `align` a larger power of two, so the
        // offset is between 16 and `align`.
        let offset = align - (raw.as_ptr() as usize & (align - 1));
        // The word before the aligned address is at least 8 bytes into the
        // block and pointer-aligned.
        // SAFETY: `offset + size <= total`, inside the block (see above).
        unsafe {
            let data = raw.as_ptr().add(offset);
            data.cast::<*mut u8>().sub(1).write(raw.as_ptr());
            Ok(NonNull::new_unchecked(data))
        }
    }

    /// The block an allocation of `layout` at `p` lives in.
    ///
    /// # Safety
    /// `p` came from `alloc_layout(layout)` on this heap and is live.
    unsafe fn block_of(p: NonNull<u8>, layout: Layout) -> NonNull<u8> {
        if layout.align() <= ALIGNMENT {
            p
        } else {
            // SAFETY: `alloc_layout` stored the block's address, non-null,
            // in the word before `p`.
            unsafe { NonNull::new_unchecked(p.as_ptr().cast::<*mut u8>().sub(1).read()) }
        }
    }

    /// Frees what [`alloc_layout`](Heap::alloc_layout) returned.
    ///
    /// # Safety
    /// `p` came from `alloc_layout(layout)` (or `realloc_layout` with
    /// `layout` as the new layout) on this heap, since its last reset, and
    /// is not used again.
    pub(crate) unsafe fn free_layout(&self, p: NonNull<u8>, layout: Layout) {
        // SAFETY: caller's contract.
        unsafe { self.free_block(Heap::block_of(p, layout)) }
    }

    /// Resizes an allocation, keeping `min(old, new)` bytes of its contents;
    /// in place when the heap can. On error the allocation is untouched.
    ///
    /// # Safety
    /// As [`free_layout`](Heap::free_layout) with `old`; on success `p` is
    /// no longer used, the result replaces it.
    pub(crate) unsafe fn realloc_layout(
        &self,
        p: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, MemError> {
        if old.align() <= ALIGNMENT && new.align() <= ALIGNMENT {
            // SAFETY: `p` is a live block of this heap (caller's contract).
            return unsafe { self.realloc_block(p, new.size()) };
        }
        let q = self.alloc_layout(new)?;
        // SAFETY: both are live and distinct; each holds at least the bytes copied.
        unsafe {
            ptr::copy_nonoverlapping(p.as_ptr(), q.as_ptr(), old.size().min(new.size()));
            self.free_layout(p, old);
        }
        Ok(q)
    }
}

impl Default for Heap {
    fn default() -> Heap {
        Heap::new()
    }
}

impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heap")
            .field("usage", &self.usage())
            .field("peak", &self.peak())
            .field("real_usage", &self.real_usage())
            .field("limit", &self.limit())
            .field("segments", &self.segment_count())
            .finish()
    }
}
