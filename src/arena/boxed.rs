//! `HeapBox`: one value owned in a request heap, like `Box`.

use super::Heap;
use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};

/// A value in a [`Heap`], owned like a `Box`: dropping it drops the value
/// and frees its block. It borrows the heap, so the heap cannot be
/// [reset](Heap::reset) or dropped while the box lives.
///
/// Made by [`Heap::alloc`], [`Heap::alloc_str`] and
/// [`Heap::alloc_slice_copy`].
///
/// ```
/// let heap = zendmm::Heap::new();
/// let mut hits = heap.alloc([0u32; 8])?;
/// hits[3] += 1;
/// assert_eq!(hits.iter().sum::<u32>(), 1);
/// assert_eq!(heap.usage(), 48); // 32 bytes and an 8-byte header, rounded to 16
/// # Ok::<(), zendmm::MemError>(())
/// ```
///
/// A box cannot outlive its heap:
///
/// ```compile_fail,E0505
/// let heap = zendmm::Heap::new();
/// let n = heap.alloc(42).unwrap();
/// drop(heap); // error: cannot move out of `heap` because it is borrowed
/// assert_eq!(*n, 42);
/// ```
pub struct HeapBox<'h, T: ?Sized> {
    ptr: NonNull<T>,
    heap: &'h Heap,
    _owns: PhantomData<T>,
}

impl<'h, T: ?Sized> HeapBox<'h, T> {
    /// # Safety
    /// `ptr` holds a valid T in a block `heap.alloc_layout(Layout::for_value(&*ptr))`
    /// returned, which nothing else owns.
    pub(crate) unsafe fn from_raw(ptr: NonNull<T>, heap: &'h Heap) -> HeapBox<'h, T> {
        HeapBox {
            ptr,
            heap,
            _owns: PhantomData,
        }
    }

    /// Takes the pointer out; the block is no longer freed on drop.
    pub(crate) fn into_raw(b: HeapBox<'h, T>) -> NonNull<T> {
        let p = b.ptr;
        core::mem::forget(b);
        p
    }

    /// Gives up ownership: the value is never dropped and its block stays
    /// allocated until the heap is [reset](Heap::reset) or dropped, which
    /// the returned borrow forbids while it lives. An associated function,
    /// like `Box::leak`, so that it never hides a method of `T`.
    ///
    /// ```
    /// use zendmm::{Heap, HeapBox};
    ///
    /// let heap = Heap::new();
    /// let counter: &mut u32 = HeapBox::leak(heap.alloc(0)?);
    /// *counter += 1;
    /// assert_eq!(*counter, 1);
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn leak(b: HeapBox<'h, T>) -> &'h mut T {
        // SAFETY: the block stays allocated and unaliased until the heap is
        // reset, which needs `&mut Heap` and so waits for the end of `'h`.
        unsafe { &mut *HeapBox::into_raw(b).as_ptr() }
    }

    /// The heap the value lives in.
    pub fn heap(b: &HeapBox<'h, T>) -> &'h Heap {
        b.heap
    }
}

impl<T> HeapBox<'_, T> {
    /// Moves the value out and frees its block.
    ///
    /// ```
    /// let heap = zendmm::Heap::new();
    /// let b = heap.alloc(String::from("out"))?;
    /// let s: String = zendmm::HeapBox::into_inner(b);
    /// assert_eq!((s.as_str(), heap.usage()), ("out", 0));
    /// # Ok::<(), zendmm::MemError>(())
    /// ```
    pub fn into_inner(b: HeapBox<'_, T>) -> T {
        let heap = b.heap;
        let p = HeapBox::into_raw(b);
        // SAFETY: the box owned a valid T in a block of `Layout::new::<T>()`;
        // the value is read once and the block freed without dropping it.
        unsafe {
            let value = p.as_ptr().read();
            heap.free_layout(p.cast(), Layout::new::<T>());
            value
        }
    }
}

impl<T: ?Sized> Drop for HeapBox<'_, T> {
    fn drop(&mut self) {
        // The value is dropped first, then its block freed; its layout is
        // read before the value is dropped.
        // SAFETY: the box owns a valid T in a block of its layout (`from_raw`).
        unsafe {
            let layout = Layout::for_value(self.ptr.as_ref());
            ptr::drop_in_place(self.ptr.as_ptr());
            self.heap.free_layout(self.ptr.cast(), layout);
        }
    }
}

impl<T: ?Sized> Deref for HeapBox<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the box owns a valid T (see `from_raw`).
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for HeapBox<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the box owns a valid T, and `&mut self` is unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: ?Sized> AsRef<T> for HeapBox<'_, T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ?Sized> AsMut<T> for HeapBox<'_, T> {
    fn as_mut(&mut self) -> &mut T {
        self
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for HeapBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for HeapBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + PartialEq> PartialEq for HeapBox<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: ?Sized + Eq> Eq for HeapBox<'_, T> {}
