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
//! - S5: with a storage whose mappings split at any page (mmap's), a
//!   spare is any page-aligned part of a mapping: resident pages move
//!   between segments instead of fresh ones faulting in (a fault costs
//!   1.6-2.1 us a page here, moving a page about 0.11 us). A segment that
//!   `mremap` grows for a block grown by a little (appends to a string)
//!   receives regular spares whole (`lend_regular`); a spare resized
//!   smaller keeps its tail as a spare instead of unmapping it
//!   (`take_resized`), filed as regular only when most of its pages are
//!   resident; a regular segment with no regular spare left is cut from
//!   the place of another spare that has most of its pages resident
//!   (`carve_regular`); of two spares of the size a dedicated segment
//!   needs, the one with more resident pages is taken. On `bench` this
//!   took the minor faults from 1,222 to 738 (ZendMM 8: 794) and the RSS
//!   added from 3.2 to 2.4-2.6 MiB.
//! - S6: a listed spare's pages stay as they are while it rests (nothing
//!   writes to it or moves pages in or out without unlinking it first),
//!   so a resident count measured on it holds until it is unlinked: the
//!   counts are kept (`Resident`). A spare taken whole keeps its counts
//!   too: in use, its pages are written, never moved out, so when it
//!   comes back they are a lower bound, which is all the choice of the
//!   more resident spare needs. Counts are forgotten when a spare is cut,
//!   lent, resized or given back to the storage, or a segment is resized
//!   (`forget_counts`). `mincore` asks again only about spares that are
//!   new to the lists.
//!
//! The peak resident set is not raised by them: every spare segment was in
//! use a moment before, and is reused before any new one is taken.

use crate::segment::{Segment, SegmentList};
use crate::storage::{Storage, PAGE};

/// Are `resident` pages at least half of `len` bytes? The one rule for a
/// part of a spare to serve as a regular segment (S5).
fn mostly_resident(resident: usize, len: usize) -> bool {
    2 * resident >= len / PAGE
}

/// Pages of a spare resident at the least: its header's.
const HEADER_PAGES: usize = 1;

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
    /// Resident counts measured on listed spares (S6).
    known: Resident,
}

/// Resident page counts of parts of listed spares, by address and length
/// (S6): a few, replaced round-robin, as few spares are listed.
struct Resident {
    parts: [(usize, usize, usize); 8],
    next: usize,
    /// Counts asked of the storage, for the tests.
    #[cfg(test)]
    asked: usize,
}

impl Resident {
    const fn new() -> Resident {
        Resident {
            parts: [(0, 0, 0); 8],
            next: 0,
            #[cfg(test)]
            asked: 0,
        }
    }

    /// The resident pages of `len` bytes at `p`, a part of a listed spare.
    ///
    /// # Safety
    /// As [`Storage::resident_pages`].
    unsafe fn count(&mut self, storage: &dyn Storage, p: *mut u8, len: usize) -> usize {
        let key = p as usize;
        if let Some(&(_, _, n)) = self.parts.iter().find(|e| e.0 == key && e.1 == len) {
            return n;
        }
        #[cfg(test)]
        {
            self.asked += 1;
        }
        // SAFETY: caller's contract.
        let n = unsafe { storage.resident_pages(p, len) };
        self.parts[self.next] = (key, len, n);
        self.next = (self.next + 1) % self.parts.len();
        n
    }

    /// Forgets every count inside the `len` bytes at `p` (a spare leaving
    /// the lists, S6).
    fn forget(&mut self, p: *mut u8, len: usize) {
        self.forget_where(p, len, |_| true);
    }

    /// Forgets the counts of parts of the `len` bytes at `p`, keeping
    /// that of the whole.
    fn forget_parts(&mut self, p: *mut u8, len: usize) {
        self.forget_where(p, len, |e| (e.0, e.1) != (p as usize, len));
    }

    fn forget_where(
        &mut self,
        p: *mut u8,
        len: usize,
        also: impl Fn(&(usize, usize, usize)) -> bool,
    ) {
        let (start, end) = (p as usize, p as usize + len);
        for e in &mut self.parts {
            if e.0 >= start && e.0 < end && also(e) {
                *e = (0, 0, 0);
            }
        }
    }
}

const OTHER: usize = 0;
const REGULAR: usize = 1;

impl SpareSegments {
    pub const fn new() -> SpareSegments {
        SpareSegments {
            lists: [SegmentList::new(), SegmentList::new()],
            bytes: [0, 0],
            budget: SPARE_BYTES,
            known: Resident::new(),
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
            // The caller gives it back to the storage (S6).
            self.known.forget(seg.as_ptr(), size);
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
    /// With `resident` (a storage that splits), of the first few spares of
    /// another size that fit, the one with the most resident pages: parts
    /// of split spares leave spares of one size with few.
    pub fn take(
        &mut self,
        size: usize,
        regular: bool,
        resident: Option<&dyn Storage>,
    ) -> Option<Segment> {
        let mut seg = self.find(size, regular);
        if seg.is_null() {
            return None;
        }
        if let (Some(storage), false) = (resident, regular) {
            seg = self.most_resident(storage, seg, size);
        }
        // Taken whole: its own count stays, as a lower bound (S6); those
        // of its parts (`carve_regular`'s) decide a cut by a threshold,
        // and go.
        // SAFETY: `seg` was found on the list `regular` names.
        unsafe { self.detach(regular as usize, seg) };
        self.known.forget_parts(seg.as_ptr(), size);
        Some(seg)
    }

    /// Forgets the resident counts inside the `len` bytes at `p`, a
    /// segment about to be resized (S6).
    pub fn forget_counts(&mut self, p: *mut u8, len: usize) {
        self.known.forget(p, len);
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

    /// Takes `seg` off list `i`, forgetting its resident counts (it is to
    /// be cut, lent, resized or given back); returns its size.
    ///
    /// # Safety
    /// `seg` is a spare on list `i`.
    unsafe fn unlink(&mut self, i: usize, seg: Segment) -> usize {
        // SAFETY: caller's contract.
        let size = unsafe { self.detach(i, seg) };
        self.known.forget(seg.as_ptr(), size);
        size
    }

    /// Takes `seg` off list `i`; returns its size.
    ///
    /// # Safety
    /// `seg` is a spare on list `i`.
    unsafe fn detach(&mut self, i: usize, seg: Segment) -> usize {
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
    /// faulting in (`mremap` keeps them; shrinking gives the tail back,
    /// unless `split` keeps it as a spare).
    pub fn take_resized(
        &mut self,
        storage: &dyn Storage,
        size: usize,
        regular_size: usize,
        split: bool,
    ) -> *mut u8 {
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
        // With `split`, a bigger spare keeps its tail as a spare of its own
        // instead of unmapping it: its resident pages may serve regular
        // segments (`carve_regular`).
        if best_size > size && split {
            // SAFETY: `best` was found on the list; unlinked, it is a
            // mapping of `best_size` bytes that nothing points into (S1).
            unsafe {
                self.unlink(OTHER, best);
                self.file_part(
                    storage,
                    best.as_ptr().add(size),
                    best_size - size,
                    regular_size,
                );
            }
            return best.as_ptr();
        }
        // On failure the old mapping stays, and stays a spare.
        // SAFETY: as above, and the storage made it.
        unsafe {
            self.unlink(OTHER, best);
            let raw = storage.realloc(best.as_ptr(), best_size, size);
            if raw.is_null() {
                self.link(OTHER, best, best_size);
            }
            raw
        }
    }

    /// Moves regular spares (`size` bytes each, the heap's regular segment
    /// size) whole into the `len` bytes at `dst`, the part `mremap` just
    /// added to a growing segment, the latest kept first, while they fit.
    /// Their pages were populated when mapped (unless cut from another
    /// spare) and are still resident, so the growth takes them instead of
    /// faulting fresh ones in: moving a page costs about a tenth of
    /// faulting one. Returns the bytes moved.
    ///
    /// # Safety
    /// `dst..dst + len` lies in a mapping of `storage` that nothing there
    /// is needed from.
    pub unsafe fn lend_regular(
        &mut self,
        storage: &dyn Storage,
        dst: *mut u8,
        len: usize,
        size: usize,
    ) -> usize {
        let mut done = 0;
        while len - done >= size {
            let seg = self.lists[REGULAR].head();
            if seg.is_null() {
                break;
            }
            // SAFETY: a listed regular spare, unlinked: a whole mapping of
            // `size` bytes nothing points into (S1); `dst` is the caller's.
            unsafe {
                self.unlink(REGULAR, seg);
                if !storage.move_pages(seg.as_ptr(), size, dst.add(done)) {
                    self.link(REGULAR, seg, size);
                    break;
                }
            }
            done += size;
        }
        done
    }

    /// A regular segment of `size` bytes cut from a bigger spare of another
    /// size, at the `size`-aligned place of any such spare that has the
    /// most resident pages (at least half); or null. Regular spares may
    /// have been lent to a growing segment (`lend_regular`), which came
    /// back as a spare of another size, or a spare may have been split
    /// (`take_resized`): their pages serve regular segments again without
    /// a system call instead of faulting in fresh ones. What is left on
    /// either side stays a spare. Only for a storage that `splits`.
    pub fn carve_regular(&mut self, storage: &dyn Storage, size: usize) -> *mut u8 {
        let (mut best, mut at, mut most) = (Segment::NULL, 0, 0);
        let mut seg = self.lists[OTHER].head();
        // SAFETY: listed spares are live mappings of their size (S3).
        unsafe {
            while !seg.is_null() {
                let s = seg.size();
                if s >= size {
                    for off in (0..=s - size).step_by(size) {
                        let r = self.known.count(storage, seg.as_ptr().add(off), size);
                        if r > most && mostly_resident(r, size) {
                            (best, at, most) = (seg, off, r);
                        }
                    }
                }
                seg = seg.next();
            }
        }
        if best.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: `best` is listed; unlinked, nothing points into it (S1),
        // and the storage takes each page-aligned part as a mapping.
        unsafe {
            let s = self.unlink(OTHER, best);
            let raw = best.as_ptr();
            if at > 0 {
                self.file_part(storage, raw, at, size);
            }
            if at + size < s {
                self.file_part(storage, raw.add(at + size), s - at - size, size);
            }
            raw.add(at)
        }
    }

    /// Keeps `len` bytes at `raw`, a part of a spare that was split, as a
    /// spare of its own: a regular one when `len` is `regular_size` and at
    /// least half its pages are resident (the regular list is taken from
    /// first and lends its spares as resident), else one of another size.
    ///
    /// # Safety
    /// `raw..raw + len` is a page-aligned part of a mapping of `storage`,
    /// which splits, in no list, that nothing points into.
    unsafe fn file_part(
        &mut self,
        storage: &dyn Storage,
        raw: *mut u8,
        len: usize,
        regular_size: usize,
    ) {
        // SAFETY: caller's contract; the header is written afresh.
        unsafe {
            let regular =
                len == regular_size && mostly_resident(storage.resident_pages(raw, len), len);
            let (seg, _) = Segment::format(raw, len);
            self.link(regular as usize, seg, len);
        }
    }

    /// Of the spares of `size` bytes from `first` on, the one with the most
    /// resident pages; `first` itself, with no system call, when it is the
    /// only one (a loop that maps and frees one size finds just one). Every
    /// spare has its header page resident: another with no more than that
    /// cannot beat `first`, whose count is then not asked for.
    fn most_resident(&mut self, storage: &dyn Storage, first: Segment, size: usize) -> Segment {
        let (mut best, mut most) = (first, None);
        // SAFETY: listed spares are live mappings of their size (S3).
        unsafe {
            let mut seg = first.next();
            while !seg.is_null() {
                if seg.size() == size {
                    let r = self.known.count(storage, seg.as_ptr(), size);
                    if r > HEADER_PAGES
                        && r > *most
                            .get_or_insert_with(|| self.known.count(storage, first.as_ptr(), size))
                    {
                        (best, most) = (seg, Some(r));
                    }
                }
                seg = seg.next();
            }
        }
        best
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
        assert!(spare.take(3 * SEG, false, None).is_none());
        let s = spare.take(2 * SEG, false, None).expect("the 512 KiB one");
        // SAFETY: taken from the spares: live, in no list.
        unsafe {
            assert_eq!(s.size(), 2 * SEG);
            Malloc.free(s.as_ptr(), 2 * SEG);
        }
        spare.release(&Malloc);
        assert_eq!(spare.count(), 0);
        assert!(spare.take(SEG, true, None).is_none());
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
        let s = spare.take(SEG, true, None).expect("a regular spare");
        let o = spare.take(3 * SEG, false, None).expect("the dedicated one");
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
    fn regular_spares_lend_their_pages_whole_while_they_fit() {
        use crate::storage::MmapAnon;
        let mut spare = SpareSegments::new();
        let fresh = |n| {
            let raw = MmapAnon.alloc(n);
            assert!(!raw.is_null());
            // SAFETY: `n` fresh bytes from the storage.
            unsafe { Segment::format(raw, n).0 }
        };
        // SAFETY: fresh segments in no list, holding no used block.
        unsafe {
            assert!(spare.keep(&MmapAnon, fresh(SEG), true, 0));
            assert!(spare.keep(&MmapAnon, fresh(SEG), true, 0));
            assert!(spare.keep(&MmapAnon, fresh(2 * SEG), false, 0));
        }
        let dst = MmapAnon.alloc(4 * SEG);
        // SAFETY: `dst` is a fresh mapping of 4 segments; only its last
        // 2.5 are lent to, and the first byte of each lent page stays.
        unsafe {
            let got = spare.lend_regular(&MmapAnon, dst.add(SEG), 2 * SEG + SEG / 2, SEG);
            if !crate::storage::moves_whole() {
                // An older kernel: `move_pages` declines, nothing is lent.
                assert_eq!((got, spare.count()), (0, 3));
                MmapAnon.free(dst, 4 * SEG);
                spare.release(&MmapAnon);
                return;
            }
            assert_eq!(got, 2 * SEG, "whole spares only, while they fit");
            assert_eq!((spare.count(), spare.total()), (1, 2 * SEG));
            assert!(!spare.has(SEG, true), "no regular spare is left");
            // A lent spare's header came along: its size is still there.
            assert_eq!(Segment::from_raw(dst.add(SEG)).size(), SEG);
            dst.add(4 * SEG - 1).write(1);
            MmapAnon.free(dst, 4 * SEG);
        }
        spare.release(&MmapAnon);
        // Malloc cannot move pages: the spare stays where it was.
        let mut spare = SpareSegments::new();
        // SAFETY: a fresh segment in no list, holding no used block.
        unsafe { assert!(spare.keep(&Malloc, segment(SEG), true, 0)) };
        let mut buf = vec![0u8; 2 * SEG];
        // SAFETY: `buf` is ours, and malloc moves nothing.
        let lent = unsafe { spare.lend_regular(&Malloc, buf.as_mut_ptr(), 2 * SEG, SEG) };
        assert_eq!(lent, 0);
        assert_eq!(spare.count(), 1);
        spare.release(&Malloc);
    }

    #[test]
    fn a_regular_segment_is_cut_from_the_resident_end_of_another_spare() {
        use crate::storage::MmapAnon;
        let mut spare = SpareSegments::new();
        // Bigger than `POPULATE_MAX`: only the pages written are resident.
        let raw = MmapAnon.alloc(4 * SEG);
        assert!(!raw.is_null());
        // SAFETY: a fresh mapping of 4 segments, formatted as one spare; its
        // last segment's pages are all written, the middle ones never.
        let tail = unsafe {
            let seg = Segment::format(raw, 4 * SEG).0;
            raw.add(3 * SEG).write_bytes(7, SEG);
            assert!(spare.keep(&MmapAnon, seg, false, 0));
            raw.add(3 * SEG)
        };
        assert_eq!(spare.carve_regular(&MmapAnon, SEG), tail, "the tail");
        assert_eq!((spare.count(), spare.total()), (1, 3 * SEG));
        // SAFETY: the spare left keeps the head, re-formatted to its size.
        unsafe { assert_eq!(Segment::from_raw(raw).size(), 3 * SEG) };
        // The head has its header page resident, the tail nothing: too few.
        assert!(spare.carve_regular(&MmapAnon, SEG).is_null());
        // SAFETY: the head, taken, written past its header page in its
        // first segment and kept again (S6): now it is cut from the head.
        unsafe {
            let head = spare.take(3 * SEG, false, None).unwrap();
            raw.add(PAGE).write_bytes(9, SEG - PAGE);
            assert!(spare.keep(&MmapAnon, head, false, 0));
        }
        assert_eq!(spare.carve_regular(&MmapAnon, SEG), raw, "the head");
        assert_eq!((spare.count(), spare.total()), (1, 2 * SEG));
        // SAFETY: the parts cut are the caller's to give back.
        unsafe {
            assert_eq!(Segment::from_raw(raw.add(SEG)).size(), 2 * SEG);
            MmapAnon.free(raw, SEG);
            MmapAnon.free(tail, SEG);
        }
        // Exactly one regular size left over goes to the regular list.
        let raw = MmapAnon.alloc(2 * SEG);
        // SAFETY: a fresh mapping of 2 segments, written whole before its
        // header is.
        unsafe {
            raw.write_bytes(1, 2 * SEG);
            spare.release(&MmapAnon);
            assert!(spare.keep(&MmapAnon, Segment::format(raw, 2 * SEG).0, false, 0));
        }
        assert_eq!(
            spare.carve_regular(&MmapAnon, SEG),
            raw,
            "ties take the head"
        );
        assert!(spare.has(SEG, true));
        // SAFETY: the part cut is the caller's.
        unsafe { MmapAnon.free(raw, SEG) };
        spare.release(&MmapAnon);
    }

    #[test]
    fn resident_counts_hold_until_their_spare_leaves_the_lists() {
        use crate::storage::MmapAnon;
        let mut known = Resident::new();
        let raw = MmapAnon.alloc(4 * SEG);
        assert!(!raw.is_null());
        // SAFETY: a fresh mapping of ours, counted in parts, then given back.
        unsafe {
            raw.write(1);
            assert_eq!(known.count(&MmapAnon, raw, SEG), 1);
            // A count is not asked for again (a listed spare does not
            // change, S6)...
            raw.write_bytes(2, SEG);
            assert_eq!(known.count(&MmapAnon, raw, SEG), 1);
            // ...until its spare leaves the lists; other parts stay counted.
            assert_eq!(known.count(&MmapAnon, raw.add(3 * SEG), SEG), 0);
            raw.add(3 * SEG).write(3);
            known.forget(raw, SEG);
            assert_eq!(known.count(&MmapAnon, raw, SEG), SEG / PAGE);
            assert_eq!(known.count(&MmapAnon, raw.add(3 * SEG), SEG), 0);
            MmapAnon.free(raw, 4 * SEG);
        }
    }

    #[test]
    fn a_spare_taken_whole_keeps_its_counts_and_one_cut_or_refused_does_not() {
        use crate::storage::MmapAnon;
        let mut spare = SpareSegments::new();
        let (a, b) = (MmapAnon.alloc(2 * SEG), MmapAnon.alloc(2 * SEG));
        // SAFETY: fresh mappings formatted as spares; `a` more resident.
        unsafe {
            a.write_bytes(1, SEG);
            assert!(spare.keep(&MmapAnon, Segment::format(a, 2 * SEG).0, false, 0));
            assert!(spare.keep(&MmapAnon, Segment::format(b, 2 * SEG).0, false, 0));
        }
        let s = spare.take(2 * SEG, false, Some(&MmapAnon)).expect("a");
        assert_eq!((s.as_ptr(), spare.known.asked), (a, 2));
        // In use and back: its count is a lower bound, not asked again.
        // SAFETY: `a` is ours again; written, then a spare once more.
        unsafe {
            a.write_bytes(2, 2 * SEG);
            assert!(spare.keep(&MmapAnon, Segment::format(a, 2 * SEG).0, false, 0));
        }
        let s = spare.take(2 * SEG, false, Some(&MmapAnon)).expect("a");
        assert_eq!((s.as_ptr(), spare.known.asked), (a, 2));
        // Refused (over the budget), it goes to the storage: forgotten.
        spare.budget = SEG;
        // SAFETY: as above; refused, it is the caller's to give back.
        unsafe {
            assert!(!spare.keep(&MmapAnon, Segment::format(a, 2 * SEG).0, false, 0));
        }
        assert!(spare.known.parts.iter().all(|e| e.0 != a as usize));
        // Resized, `b` leaves the lists: forgotten too.
        let r = spare.take_resized(&MmapAnon, 2 * SEG + PAGE, SEG, false);
        assert!(!r.is_null() && spare.count() == 0);
        assert!(spare.known.parts.iter().all(|e| e.0 != b as usize));
        // SAFETY: both mappings are ours, with these sizes.
        unsafe {
            MmapAnon.free(a, 2 * SEG);
            MmapAnon.free(r, 2 * SEG + PAGE);
        }
    }

    #[test]
    fn a_spare_resized_smaller_keeps_its_tail_when_the_storage_splits() {
        use crate::storage::MmapAnon;
        let mut spare = SpareSegments::new();
        // Two spares of 3 segments (within the budget); the first one's last
        // segment written.
        let (a, b) = (MmapAnon.alloc(3 * SEG), MmapAnon.alloc(3 * SEG));
        // SAFETY: fresh mappings formatted as spares; `b` is the head.
        unsafe {
            a.add(2 * SEG).write_bytes(3, SEG);
            assert!(spare.keep(&MmapAnon, Segment::format(a, 3 * SEG).0, false, 0));
            assert!(spare.keep(&MmapAnon, Segment::format(b, 3 * SEG).0, false, 0));
        }
        // Of two that fit, the one with the most resident pages is taken
        // whole; then the other one is resized, and its tail stays.
        let s = spare.take(3 * SEG, false, Some(&MmapAnon)).expect("a");
        assert_eq!(s.as_ptr(), a, "the resident one");
        assert_eq!(spare.take_resized(&MmapAnon, 2 * SEG, SEG, true), b);
        assert!(!spare.has(SEG, true), "a tail with no resident page");
        assert_eq!((spare.count(), spare.total()), (1, SEG));
        // `a` again, its tail resident: a regular spare.
        // SAFETY: taken above: in no list, nothing points into it.
        unsafe { assert!(spare.keep(&MmapAnon, Segment::format(a, 3 * SEG).0, false, 0)) };
        assert_eq!(spare.take_resized(&MmapAnon, 2 * SEG, SEG, true), a);
        assert!(spare.has(SEG, true), "a resident tail is a regular spare");
        assert_eq!((spare.count(), spare.total()), (2, 2 * SEG));
        // SAFETY: the front two segments of each are the caller's.
        unsafe {
            MmapAnon.free(a, 2 * SEG);
            MmapAnon.free(b, 2 * SEG);
        }
        spare.release(&MmapAnon);
    }

    #[test]
    fn take_resized_reuses_the_spare_sharing_the_most_bytes() {
        let mut spare = SpareSegments::new();
        assert!(
            spare.take_resized(&Malloc, 2 * SEG, SEG, false).is_null(),
            "none kept"
        );
        // SAFETY: fresh segments in no list, holding no used block.
        unsafe {
            assert!(spare.keep(&Malloc, segment(2 * SEG), false, 0));
            assert!(spare.keep(&Malloc, segment(5 * SEG), false, 0));
            assert!(spare.keep(&Malloc, segment(SEG), true, 0));
        }
        // 768 KiB: the 1.25 MiB spare shares all of it, the 512 KiB one less.
        let raw = spare.take_resized(&Malloc, 3 * SEG, SEG, false);
        assert!(!raw.is_null());
        // SAFETY: a mapping of 768 KiB, whose header still names the size
        // it had as a spare (only formatting rewrites it).
        unsafe {
            assert_eq!(Segment::from_raw(raw).size(), 5 * SEG);
            Malloc.free(raw, 3 * SEG);
        }
        assert_eq!((spare.count(), spare.total()), (2, 3 * SEG));
        // 1 MiB: the 512 KiB spare, grown; regular spares are never taken.
        let raw = spare.take_resized(&Malloc, 4 * SEG, SEG, false);
        // SAFETY: as above.
        unsafe {
            assert_eq!(Segment::from_raw(raw).size(), 2 * SEG);
            Malloc.free(raw, 4 * SEG);
        }
        assert!(spare.take_resized(&Malloc, 4 * SEG, SEG, false).is_null());
        assert_eq!((spare.count(), spare.total()), (1, SEG));
        spare.release(&Malloc);
    }
}
