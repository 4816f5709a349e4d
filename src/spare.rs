//! Spare segments: emptied regular segments kept for reuse.
//!
//! With mmap storage (the default) a segment given back is unmapped, and
//! taking one again costs a `mmap` and a page fault per page touched. A
//! program that frees its way out of a segment and back in (a loop that
//! builds and drops a string, an array that grows and shrinks) would pay
//! that over and over; so does one that allocates and frees a block bigger
//! than a segment in a loop (a dedicated segment each time: the `bench`
//! trace did that 1,097 times). So an emptied segment goes here instead, up
//! to [`SPARE_BYTES`] in all, and `new_segment` takes one of the exact size
//! it needs from here first; beyond that budget the storage gets segments
//! back at once as before. PHP 8's ZendMM keeps emptied chunks the same way
//! (`cached_chunks`).
//!
//! Invariants:
//! - S1: a spare segment is in no heap list and holds no block: nothing
//!   points into it; its first block is re-formatted when it is reused.
//! - S2: spare segments are not counted in `real_size`, so they never count
//!   against `memory_limit` (nor does ZendMM 8's chunk cache).
//! - S3: they total at most `max(SPARE_BYTES, segment_size)` bytes; all go
//!   back to the storage at a full shutdown and whenever the storage is
//!   compacted (`ZEND_MM_COMPACT`). Each keeps its size in its header.
//!
//! The peak resident set is not raised by them: every spare segment was in
//! use a moment before, and is reused before any new one is taken.

use crate::segment::{Segment, SegmentList};
use crate::storage::Storage;

/// Bytes of emptied segments a heap keeps (a ZendMM 8 chunk's worth).
pub const SPARE_BYTES: usize = 2 << 20;

/// A heap's spare segments.
pub struct SpareSegments {
    list: SegmentList,
    bytes: usize,
}

impl SpareSegments {
    pub const fn new() -> SpareSegments {
        SpareSegments {
            list: SegmentList::new(),
            bytes: 0,
        }
    }

    #[inline]
    pub fn count(&self) -> usize {
        self.list.count()
    }

    /// Keeps `seg`, an emptied segment, if that stays within `budget`
    /// bytes; returns whether it did (else the caller gives it back to the
    /// storage).
    ///
    /// # Safety
    /// `seg` is a live segment in no list, holding no block (S1).
    pub unsafe fn keep(&mut self, seg: Segment, budget: usize) -> bool {
        // SAFETY: caller's contract.
        let size = unsafe { seg.size() };
        if self.bytes + size > budget {
            return false;
        }
        // SAFETY: caller's contract; only the header's links are rewritten.
        unsafe { self.list.push(seg) };
        self.bytes += size;
        true
    }

    /// A spare segment of exactly `size` bytes, unlinked, to be
    /// re-formatted; or None.
    pub fn take(&mut self, size: usize) -> Option<Segment> {
        let mut seg = self.list.head();
        // SAFETY: listed spare segments are live and keep their size (S3).
        unsafe {
            while !seg.is_null() && seg.size() != size {
                seg = seg.next();
            }
            if seg.is_null() {
                return None;
            }
            self.list.unlink(seg);
        }
        self.bytes -= size;
        Some(seg)
    }

    /// Gives every spare segment back to `storage`, which made them.
    pub fn release(&mut self, storage: &dyn Storage) {
        loop {
            let seg = self.list.head();
            if seg.is_null() {
                break;
            }
            // SAFETY: a live spare segment: unlinked, then given back to the
            // storage it came from with its size; nothing points into it (S1).
            unsafe {
                let size = seg.size();
                self.list.unlink(seg);
                storage.free(seg.as_ptr(), size);
            }
        }
        self.bytes = 0;
    }
}

impl Default for SpareSegments {
    fn default() -> SpareSegments {
        SpareSegments::new()
    }
}
