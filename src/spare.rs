//! Spare segments: emptied segments kept for reuse.
//!
//! With mmap storage (the default) a segment given back is unmapped, and
//! taking one again costs a `mmap` and a page fault per page touched. A
//! program that frees its way out of a segment and back in (a loop that
//! builds and drops a string, an array that grows and shrinks) would pay
//! that over and over; so does one that allocates and frees a block bigger
//! than a segment in a loop (a dedicated segment each time: the `bench`
//! trace did that 1,097 times). So an emptied segment goes here instead, up
//! to a budget in all, and `new_segment` takes one of the exact size it
//! needs from here first; beyond that budget the storage gets segments back
//! at once as before. The budget is [`SPARE_BYTES`], or more after requests
//! that peaked higher: each request end sets it to the mean of the old
//! budget and the request's real peak, so the segments of a request that
//! ends wait for the next one instead of being unmapped and mapped again.
//! PHP 8's ZendMM keeps emptied chunks the same way (`cached_chunks`, with
//! its average of peaks).
//!
//! Invariants:
//! - S1: a spare segment is in no heap list and holds no block: nothing
//!   points into it; its first block is re-formatted when it is reused.
//! - S2: spare segments are not counted in `real_size`, so they never count
//!   against `memory_limit` (nor does ZendMM 8's chunk cache).
//! - S3: they total at most the budget (at least `SPARE_BYTES`, and room
//!   for one regular segment); all go back to the storage at a full
//!   shutdown. Each keeps its size in its header.
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
    /// Most bytes kept (S3).
    budget: usize,
}

impl SpareSegments {
    pub const fn new() -> SpareSegments {
        SpareSegments {
            list: SegmentList::new(),
            bytes: 0,
            budget: SPARE_BYTES,
        }
    }

    #[inline]
    pub fn count(&self) -> usize {
        self.list.count()
    }

    /// Keeps `seg`, an emptied segment, if that stays within the budget,
    /// or within `allowance` when that is larger; returns whether it did
    /// (else the caller gives it back to the storage).
    ///
    /// # Safety
    /// `seg` is a live segment in no list, holding no block (S1).
    pub unsafe fn keep(&mut self, seg: Segment, allowance: usize) -> bool {
        // SAFETY: caller's contract.
        let size = unsafe { seg.size() };
        if self.bytes + size > self.budget.max(allowance) {
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
        self.trim(storage, 0);
    }

    /// A request that peaked at `real_peak` bytes ended: the budget becomes
    /// the mean of the old one and that peak (at least `SPARE_BYTES` and
    /// one `segment_size`), and spares beyond it go back to `storage`.
    pub fn end_request(&mut self, storage: &dyn Storage, real_peak: usize, segment_size: usize) {
        self.budget = (self.budget / 2 + real_peak / 2)
            .max(SPARE_BYTES)
            .max(segment_size);
        self.trim(storage, self.budget);
    }

    /// Gives spare segments back to `storage` until at most `budget` bytes
    /// are kept.
    fn trim(&mut self, storage: &dyn Storage, budget: usize) {
        while self.bytes > budget {
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
                self.bytes -= size;
            }
        }
    }
}

impl Default for SpareSegments {
    fn default() -> SpareSegments {
        SpareSegments::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Malloc;

    const SEG: usize = 256 << 10;

    fn segment(size: usize) -> Segment {
        let raw = Malloc.alloc(size);
        assert!(!raw.is_null());
        // SAFETY: `size` fresh bytes from the storage.
        unsafe { Segment::format(raw, size).0 }
    }

    #[test]
    fn keeps_within_the_budget_and_takes_by_exact_size() {
        let mut spare = SpareSegments::new();
        // SAFETY: fresh segments in no list, holding no used block.
        unsafe {
            assert!(spare.keep(segment(SEG), 0));
            assert!(spare.keep(segment(2 * SEG), 0));
            let big = segment(SPARE_BYTES);
            assert!(!spare.keep(big, 0), "over the budget");
            Malloc.free(big.as_ptr(), SPARE_BYTES);
        }
        assert_eq!(spare.count(), 2);
        assert!(spare.take(3 * SEG).is_none());
        let s = spare.take(2 * SEG).expect("the 512 KiB one");
        // SAFETY: taken from the spares: live, in no list.
        unsafe {
            assert_eq!(s.size(), 2 * SEG);
            Malloc.free(s.as_ptr(), 2 * SEG);
        }
        spare.release(&Malloc);
        assert_eq!(spare.count(), 0);
        assert!(spare.take(SEG).is_none());
    }

    #[test]
    fn trim_gives_back_down_to_the_budget() {
        let mut spare = SpareSegments::new();
        for _ in 0..6 {
            // SAFETY: fresh segments in no list, holding no used block.
            assert!(unsafe { spare.keep(segment(SEG), 0) });
        }
        spare.trim(&Malloc, 2 * SEG + 1);
        assert_eq!(spare.count(), 2);
        spare.trim(&Malloc, 0);
        assert_eq!(spare.count(), 0);
    }

    #[test]
    fn the_budget_follows_the_mean_of_peaks_and_never_drops_below_the_floor() {
        let mut spare = SpareSegments::new();
        spare.end_request(&Malloc, 0, SEG);
        assert_eq!(spare.budget, SPARE_BYTES);
        spare.end_request(&Malloc, 30 << 20, SEG);
        assert_eq!(spare.budget, 16 << 20);
        for _ in 0..40 {
            // SAFETY: fresh segments in no list, holding no used block.
            assert!(unsafe { spare.keep(segment(SEG), 0) });
        }
        spare.end_request(&Malloc, 0, SEG);
        assert_eq!(spare.budget, 8 << 20);
        assert_eq!(spare.count(), 32, "trimmed to the new budget");
        spare.end_request(&Malloc, 0, SEG);
        assert_eq!(spare.budget, SPARE_BYTES.max(4 << 20));
        spare.end_request(&Malloc, 0, 8 << 20);
        assert_eq!(spare.budget, 8 << 20, "room for one regular segment");
        spare.release(&Malloc);
    }
}
