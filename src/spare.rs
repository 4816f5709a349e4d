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
//!   for one regular segment), except that within a request regular
//!   segments may also fill an allowance the heap gives (half the
//!   request's real peak); spares of other sizes alone stay within the
//!   budget. Mapping a segment of another size gives back as many spare
//!   bytes beyond the budget as it maps; a request end trims them to the
//!   budget; all go back to the storage at a full shutdown. Each keeps its
//!   size in its header.
//! - S4: a segment emptied now displaces spares of other sizes, the oldest
//!   first, rather than being refused: the size a program just freed is
//!   the likeliest it maps again (`bench` frees and maps a 512 KiB
//!   dedicated segment 30 times in a row while a 2.75 MiB and a 1.5 MiB
//!   spare fill the budget).
//!
//! The peak resident set is not raised by them: every spare segment was in
//! use a moment before, and is reused before any new one is taken.

use crate::segment::{Segment, SegmentList};
use crate::storage::Storage;

/// Bytes of emptied segments a heap keeps (a ZendMM 8 chunk's worth).
pub const SPARE_BYTES: usize = 2 << 20;

/// A heap's spare segments, in two lists: `REGULAR` holds spares of the
/// heap's regular segment size (taken in O(1)), `OTHER` those of other
/// sizes (dedicated segments, searched by size: few, as only the budget
/// keeps them, never the in-request allowance).
pub struct SpareSegments {
    lists: [SegmentList; 2],
    /// Bytes in each list.
    bytes: [usize; 2],
    /// Most bytes kept (S3).
    budget: usize,
}

const OTHER: usize = 0;
const REGULAR: usize = 1;

impl SpareSegments {
    pub const fn new() -> SpareSegments {
        SpareSegments {
            lists: [SegmentList::new(), SegmentList::new()],
            bytes: [0, 0],
            budget: SPARE_BYTES,
        }
    }

    #[inline]
    pub fn count(&self) -> usize {
        self.lists[OTHER].count() + self.lists[REGULAR].count()
    }

    fn total(&self) -> usize {
        self.bytes[OTHER] + self.bytes[REGULAR]
    }

    /// Keeps `seg`, an emptied segment, if that stays within the budget,
    /// or within `allowance` when that is larger; `regular` says it has the
    /// heap's regular segment size. Spares of other sizes, the oldest
    /// first, go back to `storage` to make room (S4). Returns whether it
    /// kept `seg` (else the caller gives it back to the storage).
    ///
    /// # Safety
    /// `seg` is a live segment in no list, holding no block (S1).
    pub unsafe fn keep(
        &mut self,
        storage: &dyn Storage,
        seg: Segment,
        regular: bool,
        allowance: usize,
    ) -> bool {
        // SAFETY: caller's contract.
        let size = unsafe { seg.size() };
        // The allowance is for regular segments: dedicated ones must not
        // be crowded out of the budget by them.
        let (limit, fixed) = if regular {
            (self.budget.max(allowance), self.bytes[REGULAR])
        } else {
            (self.budget, 0)
        };
        if fixed + size > limit {
            return false;
        }
        while fixed + self.bytes[OTHER] + size > limit {
            self.give_back_oldest(storage, OTHER);
        }
        // SAFETY: caller's contract.
        unsafe { self.link(regular as usize, seg, size) };
        true
    }

    /// Is a spare of `size` bytes there for `take`?
    pub fn has(&self, size: usize, regular: bool) -> bool {
        !self.find(size, regular).is_null()
    }

    /// A spare segment of exactly `size` bytes, unlinked, to be
    /// re-formatted; or None. `regular`: `size` is the regular segment size.
    pub fn take(&mut self, size: usize, regular: bool) -> Option<Segment> {
        let seg = self.find(size, regular);
        if seg.is_null() {
            return None;
        }
        // SAFETY: `seg` was found on the list `regular` names.
        unsafe { self.unlink(regular as usize, seg) };
        Some(seg)
    }

    /// Puts `seg`, of `size` bytes, on list `i` (`unlink`'s inverse).
    ///
    /// # Safety
    /// `seg` is a live segment of `size` bytes in no list, holding no
    /// block (S1).
    unsafe fn link(&mut self, i: usize, seg: Segment, size: usize) {
        // SAFETY: caller's contract; only the header's links are rewritten.
        unsafe { self.lists[i].push(seg) };
        self.bytes[i] += size;
    }

    /// Takes `seg` off list `i`; returns its size.
    ///
    /// # Safety
    /// `seg` is a spare on list `i`.
    unsafe fn unlink(&mut self, i: usize, seg: Segment) -> usize {
        // SAFETY: caller's contract; listed spares keep their size (S3).
        unsafe {
            let size = seg.size();
            self.lists[i].unlink(seg);
            self.bytes[i] -= size;
            size
        }
    }

    /// A spare of another size resized through `storage` to `size` bytes
    /// (for a dedicated segment no spare has the size of), or null. The
    /// spare chosen shares the most bytes with the new size, the smaller
    /// on a tie: its resident pages serve again instead of fresh ones
    /// faulting in (`mremap` keeps them; shrinking gives the tail back).
    pub fn take_resized(&mut self, storage: &dyn Storage, size: usize) -> *mut u8 {
        let mut best = Segment::NULL;
        let (mut best_shared, mut best_size) = (0, usize::MAX);
        let mut seg = self.lists[OTHER].head();
        // SAFETY: listed spare segments are live and keep their size (S3).
        unsafe {
            while !seg.is_null() {
                let s = seg.size();
                let shared = s.min(size);
                if shared > best_shared || (shared == best_shared && s < best_size) {
                    (best, best_shared, best_size) = (seg, shared, s);
                }
                seg = seg.next();
            }
        }
        if best.is_null() {
            return core::ptr::null_mut();
        }
        // On failure the old mapping stays, and stays a spare.
        // SAFETY: `best` was found on the list; unlinked, it is a mapping of
        // `best_size` bytes from `storage` that nothing points into (S1).
        unsafe {
            self.unlink(OTHER, best);
            let raw = storage.realloc(best.as_ptr(), best_size, size);
            if raw.is_null() {
                self.link(OTHER, best, best_size);
            }
            raw
        }
    }

    /// The first spare of `size` bytes on the list `regular` names, or null.
    fn find(&self, size: usize, regular: bool) -> Segment {
        let mut seg = self.lists[regular as usize].head();
        // SAFETY: listed spare segments are live and keep their size (S3).
        unsafe {
            while !seg.is_null() && seg.size() != size {
                seg = seg.next();
            }
        }
        seg
    }

    /// Before a segment of `size` bytes, a size no spare has, is mapped:
    /// as many bytes of spares beyond the budget (kept by the in-request
    /// allowance) go back to `storage`, so the new mapping takes the place
    /// of resident spares instead of adding to them.
    pub fn before_new_mapping(&mut self, storage: &dyn Storage, size: usize) {
        let keep = self.total().saturating_sub(size).max(self.budget);
        self.trim(storage, keep);
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
    /// are kept, those of other sizes first (least likely to be reused).
    fn trim(&mut self, storage: &dyn Storage, budget: usize) {
        while self.total() > budget {
            let i = if self.lists[OTHER].head().is_null() {
                REGULAR
            } else {
                OTHER
            };
            self.give_back_oldest(storage, i);
        }
    }

    /// Gives the oldest spare on list `i`, which is not empty, back to
    /// `storage`. The lists are short (their bytes are within the budget,
    /// and dedicated segments are big), so the walk to the tail is too.
    fn give_back_oldest(&mut self, storage: &dyn Storage, i: usize) {
        let mut seg = self.lists[i].head();
        // SAFETY: listed spares are live; the last, unlinked, goes back to
        // its storage with its size, and nothing points into it (S1).
        unsafe {
            while !seg.next().is_null() {
                seg = seg.next();
            }
            let size = self.unlink(i, seg);
            storage.free(seg.as_ptr(), size);
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
            assert!(spare.keep(&Malloc, segment(SEG), true, 0));
            assert!(spare.keep(&Malloc, segment(2 * SEG), false, 0));
            let big = segment(SPARE_BYTES + SEG);
            assert!(!spare.keep(&Malloc, big, false, 0), "over the budget");
            Malloc.free(big.as_ptr(), SPARE_BYTES + SEG);
        }
        assert_eq!(spare.count(), 2);
        assert!(spare.take(3 * SEG, false).is_none());
        let s = spare.take(2 * SEG, false).expect("the 512 KiB one");
        // SAFETY: taken from the spares: live, in no list.
        unsafe {
            assert_eq!(s.size(), 2 * SEG);
            Malloc.free(s.as_ptr(), 2 * SEG);
        }
        spare.release(&Malloc);
        assert_eq!(spare.count(), 0);
        assert!(spare.take(SEG, true).is_none());
    }

    #[test]
    fn trim_gives_back_down_to_the_budget() {
        let mut spare = SpareSegments::new();
        for _ in 0..6 {
            // SAFETY: fresh segments in no list, holding no used block.
            assert!(unsafe { spare.keep(&Malloc, segment(SEG), true, 0) });
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
            assert!(unsafe { spare.keep(&Malloc, segment(SEG), true, 0) });
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

    #[test]
    fn the_allowance_keeps_regular_segments_without_crowding_out_others() {
        let mut spare = SpareSegments::new();
        // SAFETY: fresh segments in no list, holding no used block.
        unsafe {
            for _ in 0..16 {
                assert!(
                    spare.keep(&Malloc, segment(SEG), true, 16 * SEG),
                    "within the allowance"
                );
            }
            let extra = segment(SEG);
            assert!(!spare.keep(&Malloc, extra, true, 16 * SEG), "past it");
            Malloc.free(extra.as_ptr(), SEG);
            let odd = segment(3 * SEG);
            assert!(
                spare.keep(&Malloc, odd, false, 0),
                "the budget is for others"
            );
        }
        assert_eq!(spare.count(), 17);
        let s = spare.take(SEG, true).expect("a regular spare");
        let o = spare.take(3 * SEG, false).expect("the dedicated one");
        // SAFETY: taken from the spares: live, in no list.
        unsafe {
            Malloc.free(s.as_ptr(), SEG);
            Malloc.free(o.as_ptr(), 3 * SEG);
        }
        spare.before_new_mapping(&Malloc, 4 * SEG);
        assert_eq!(
            spare.count(),
            11,
            "a new mapping takes the place of as many spare bytes"
        );
        spare.before_new_mapping(&Malloc, 64 * SEG);
        assert_eq!(
            spare.count() * SEG,
            SPARE_BYTES,
            "but never below the budget"
        );
        spare.end_request(&Malloc, 0, SEG);
        assert_eq!(spare.count() * SEG, SPARE_BYTES);
        spare.release(&Malloc);
    }

    #[test]
    fn a_segment_emptied_now_displaces_the_oldest_spares_of_other_sizes() {
        let mut spare = SpareSegments::new();
        // SAFETY: fresh segments in no list, holding no used block.
        unsafe {
            assert!(spare.keep(&Malloc, segment(4 * SEG), false, 0));
            assert!(spare.keep(&Malloc, segment(2 * SEG), false, 0));
            assert!(spare.keep(&Malloc, segment(SEG), true, 0));
            assert_eq!(spare.total(), SPARE_BYTES - SEG);
            // 768 KiB more: the 1 MiB spare, the oldest, makes room.
            assert!(spare.keep(&Malloc, segment(3 * SEG), false, 0));
            assert_eq!(spare.count(), 3);
            assert!(!spare.has(4 * SEG, false), "the oldest went back");
            assert!(spare.has(2 * SEG, false) && spare.has(3 * SEG, false));
            // Regular ones displace others too, never regular ones.
            for _ in 0..3 {
                assert!(spare.keep(&Malloc, segment(SEG), true, 0));
            }
            assert!(!spare.has(2 * SEG, false), "the oldest other went back");
            assert!(spare.has(3 * SEG, false));
            // Bigger than the budget: refused, and nothing given back.
            let big = segment(SPARE_BYTES + SEG);
            assert!(!spare.keep(&Malloc, big, false, 0));
            Malloc.free(big.as_ptr(), SPARE_BYTES + SEG);
        }
        assert_eq!((spare.count(), spare.total()), (5, 7 * SEG));
        spare.release(&Malloc);
    }

    #[test]
    fn take_resized_reuses_the_spare_sharing_the_most_bytes() {
        let mut spare = SpareSegments::new();
        assert!(spare.take_resized(&Malloc, 2 * SEG).is_null(), "none kept");
        // SAFETY: fresh segments in no list, holding no used block.
        unsafe {
            assert!(spare.keep(&Malloc, segment(2 * SEG), false, 0));
            assert!(spare.keep(&Malloc, segment(5 * SEG), false, 0));
            assert!(spare.keep(&Malloc, segment(SEG), true, 0));
        }
        // 768 KiB: the 1.25 MiB spare shares all of it, the 512 KiB one less.
        let raw = spare.take_resized(&Malloc, 3 * SEG);
        assert!(!raw.is_null());
        // SAFETY: a mapping of 768 KiB, whose header still names the size
        // it had as a spare (only formatting rewrites it).
        unsafe {
            assert_eq!(Segment::from_raw(raw).size(), 5 * SEG);
            Malloc.free(raw, 3 * SEG);
        }
        assert_eq!((spare.count(), spare.total()), (2, 3 * SEG));
        // 1 MiB: the 512 KiB spare, grown; regular spares are never taken.
        let raw = spare.take_resized(&Malloc, 4 * SEG);
        // SAFETY: as above.
        unsafe {
            assert_eq!(Segment::from_raw(raw).size(), 2 * SEG);
            Malloc.free(raw, 4 * SEG);
        }
        assert!(spare.take_resized(&Malloc, 4 * SEG).is_null());
        assert_eq!((spare.count(), spare.total()), (1, SEG));
        spare.release(&Malloc);
    }
}
