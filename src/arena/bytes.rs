//! `Bytes`: a growable byte buffer in a request heap, grown with the heap's
//! realloc (PHP's `smart_str` over `erealloc`).

use super::Heap;
use crate::report::MemError;
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};

/// A byte buffer in a [`Heap`] that grows and shrinks through the heap's
/// realloc, in place when the next block is free. Errors, such as the
/// memory limit, come back as [`MemError`] with the contents untouched.
///
/// It borrows the heap, like [`HeapBox`](crate::HeapBox). Its capacity is
/// the usable size of its block, so small growth often needs no realloc.
///
/// ```
/// let heap = zendmm::Heap::new();
/// let mut page = heap.alloc_bytes(0)?;
/// page.extend_from_slice(b"<h1>")?;
/// write!(page, "{} items", 3)?;
/// page.extend_from_slice(b"</h1>")?;
/// assert_eq!(page.as_str(), Ok("<h1>3 items</h1>"));
/// # Ok::<(), zendmm::MemError>(())
/// ```
pub struct Bytes<'h> {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
    heap: &'h Heap,
}

impl<'h> Bytes<'h> {
    /// `len` zero bytes in `heap` (see [`Heap::alloc_bytes`]).
    pub(crate) fn zeroed_in(len: usize, heap: &'h Heap) -> Result<Bytes<'h>, MemError> {
        let ptr = heap.alloc_block(len)?;
        // SAFETY: `ptr` is a fresh block of at least `len` bytes.
        unsafe {
            ptr.as_ptr().write_bytes(0, len);
            let cap = heap.usable_size(ptr);
            Ok(Bytes {
                ptr,
                len,
                cap,
                heap,
            })
        }
    }

    /// Bytes the buffer holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Holds no byte?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes it can hold without a realloc: the usable size of its block,
    /// at least [`len`](Bytes::len).
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The contents as a string, if they are UTF-8.
    pub fn as_str(&self) -> Result<&str, core::str::Utf8Error> {
        core::str::from_utf8(self)
    }

    /// Makes the block `new_cap` bytes (at least `len`) through the heap's
    /// realloc.
    fn realloc(&mut self, new_cap: usize) -> Result<(), MemError> {
        // SAFETY: `ptr` is this buffer's live block; on success it is replaced.
        unsafe {
            let p = self.heap.realloc_block(self.ptr, new_cap)?;
            self.ptr = p;
            self.cap = self.heap.usable_size(p);
        }
        Ok(())
    }

    /// Makes the buffer `new_len` bytes long: new bytes are zero, a shorter
    /// buffer keeps its block (see [`shrink_to_fit`](Bytes::shrink_to_fit)).
    /// Growing past the capacity reallocates, keeping the contents.
    ///
    /// ```
    /// use zendmm::{Heap, MemError};
    ///
    /// let heap = Heap::new();
    /// heap.set_limit(1 << 20).unwrap();
    /// let mut buf = heap.alloc_bytes(3)?;
    /// buf.copy_from_slice(b"abc");
    /// buf.resize(100_000)?;
    /// assert_eq!((&buf[..3], buf[99_999]), (&b"abc"[..], 0));
    /// let err = buf.resize(4 << 20).unwrap_err(); // past the limit
    /// assert!(matches!(err, MemError::Limit { .. }));
    /// assert_eq!((buf.len(), &buf[..3]), (100_000, &b"abc"[..])); // untouched
    /// # Ok::<(), MemError>(())
    /// ```
    pub fn resize(&mut self, new_len: usize) -> Result<(), MemError> {
        if new_len > self.cap {
            self.realloc(new_len)?;
        }
        if new_len > self.len {
            // SAFETY: `len..new_len` lies inside the block (`new_len <= cap`).
            unsafe {
                self.ptr
                    .as_ptr()
                    .add(self.len)
                    .write_bytes(0, new_len - self.len)
            };
        }
        self.len = new_len;
        Ok(())
    }

    /// Appends `src`, doubling the capacity when it must grow (so a loop of
    /// appends costs amortised constant time), or growing by just what is
    /// needed when doubling would fail (near the memory limit).
    pub fn extend_from_slice(&mut self, src: &[u8]) -> Result<(), MemError> {
        let need = self
            .len
            .checked_add(src.len())
            .ok_or(MemError::OverflowAdd {
                size: self.len,
                overhead: src.len(),
            })?;
        if need > self.cap {
            let doubled = need.max(self.cap.saturating_mul(2));
            // Near the limit, the exact size may still fit where double does not.
            if self.realloc(doubled).is_err() {
                self.realloc(need)?;
            }
        }
        // SAFETY: `len..need` lies inside the block, which `src` (a shared
        // borrow, while `self` is borrowed mutably) cannot overlap.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(self.len), src.len())
        };
        self.len = need;
        Ok(())
    }

    /// Appends formatted text, so that `write!(bytes, ...)` returns
    /// `Result<(), MemError>` (this inherent method comes before
    /// [`fmt::Write`]'s, which `Bytes` also implements for generic code).
    ///
    /// ```
    /// use zendmm::{Heap, MemError};
    ///
    /// let heap = Heap::new();
    /// heap.set_limit(1 << 20).unwrap();
    /// let mut log = heap.alloc_bytes(0)?;
    /// write!(log, "GET {} {}", "/", 200)?;
    /// assert_eq!(log.as_str(), Ok("GET / 200"));
    /// let huge = "x".repeat(2 << 20);
    /// assert!(matches!(write!(log, "{huge}"), Err(MemError::Limit { .. })));
    /// # Ok::<(), MemError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// When a `Display` or `Debug` implementation fails on its own, as
    /// `format!` does.
    pub fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), MemError> {
        struct Sink<'a, 'h> {
            bytes: &'a mut Bytes<'h>,
            error: Option<MemError>,
        }
        impl fmt::Write for Sink<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.bytes.extend_from_slice(s.as_bytes()).map_err(|e| {
                    self.error = Some(e);
                    fmt::Error
                })
            }
        }
        let mut sink = Sink {
            bytes: self,
            error: None,
        };
        match (fmt::write(&mut sink, args), sink.error) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(e)) => Err(e),
            (Err(_), None) => {
                panic!("a formatting trait implementation returned an error when the underlying stream did not")
            }
        }
    }

    /// Gives the block's unused tail back to the heap, when it is large
    /// enough to be a block of its own.
    pub fn shrink_to_fit(&mut self) -> Result<(), MemError> {
        self.realloc(self.len)
    }

    /// Gives up ownership: the bytes stay allocated until the heap is
    /// [reset](Heap::reset) or dropped, which the returned borrow forbids
    /// while it lives.
    pub fn leak(b: Bytes<'h>) -> &'h mut [u8] {
        let (p, len) = (b.ptr, b.len);
        core::mem::forget(b);
        // SAFETY: the block stays allocated and unaliased until the heap is
        // reset, which needs `&mut Heap` and so waits for the end of `'h`.
        unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) }
    }

    /// The heap the bytes live in.
    pub fn heap(&self) -> &'h Heap {
        self.heap
    }
}

impl Drop for Bytes<'_> {
    fn drop(&mut self) {
        // SAFETY: `ptr` is this buffer's live block, used by nothing else.
        unsafe { self.heap.free_block(self.ptr) }
    }
}

impl Deref for Bytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of the block are initialised.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Bytes<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `deref`; `&mut self` is unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for Bytes<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for Bytes<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Appends formatted text; a [`MemError`] becomes `fmt::Error` (use
/// [`extend_from_slice`](Bytes::extend_from_slice) to see which).
impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.extend_from_slice(s.as_bytes()).map_err(|_| fmt::Error)
    }
}
