//! Realloc (PHP 5.3's `_zend_mm_realloc_int`): a block shrinks in place,
//! grows in place over a free successor or by growing its segment, and
//! otherwise moves. A small block growing to another small size moves to a
//! cached block of that size first (`realloc_cached`). In a big heap a
//! block of a large class moves through the stacks (`large_cache.rs`)
//! rather than through the trie: it moves when it shrinks to a cached size
//! or to half its size or less (`shrinks_by_moving`), and grows into a
//! class block from its stack rather than into room the trie finds.

use crate::block::{true_size, Block, Tag, ALIGNMENT, HEADER_SIZE, MIN_SIZE};
use crate::cache::MAX_CACHED_SIZE;
use crate::free_lists::{bucket_size, is_small, NUM_BUCKETS};
use crate::heap::{small_bucket, Heap};
use crate::huge::{Live, HUGE_MIN};
use crate::large_cache;
use crate::report::MemError;
use crate::segment::{Segment, SEGMENT_OVERHEAD};
use core::ptr::{self, NonNull};

/// Large blocks grow in place by whole multiples of this (a page).
const GROW_QUANTUM: usize = 4096;

/// How much of `total` free bytes an in-place growth to `ts` takes: exactly
/// `ts` for a small block, `ts` rounded up to a page for a large one.
#[inline]
fn grow_target(ts: usize, total: usize) -> usize {
    if is_small(ts) {
        ts
    } else {
        ((ts + GROW_QUANTUM - 1) & !(GROW_QUANTUM - 1)).min(total)
    }
}

/// Bytes a block shrunk to `ts` keeps rather than split off. A large block
/// keeps up to a page, like ZendMM 8's page-granular runs: a string growing
/// a few bytes at a time then reallocs in place without touching the lists.
#[inline(always)]
fn shrink_slack(ts: usize) -> usize {
    if is_small(ts) {
        MIN_SIZE
    } else {
        GROW_QUANTUM
    }
}

impl Heap {
    /// Resizes a block, in place when it can (`erealloc`).
    ///
    /// # Safety
    /// `p` is null or a live block of this heap.
    pub unsafe fn realloc(&mut self, p: *mut u8, size: usize) -> Result<NonNull<u8>, MemError> {
        // SAFETY: caller's contract.
        unsafe { self.realloc2(p, size, usize::MAX) }
    }

    /// As `realloc`, copying at most `copy` bytes when the block moves
    /// (`erealloc2`).
    ///
    /// # Safety
    /// `p` is null or a live block of this heap.
    #[inline]
    pub unsafe fn realloc2(
        &mut self,
        p: *mut u8,
        size: usize,
        copy: usize,
    ) -> Result<NonNull<u8>, MemError> {
        // SAFETY: caller's contract.
        if unsafe { self.fits_in_place(p, size) } {
            // SAFETY: `p` is a live block (checked just above).
            return Ok(unsafe { NonNull::new_unchecked(p) });
        }
        // SAFETY: caller's contract.
        unsafe {
            match NonNull::new(self.realloc_cached(p, size, copy)) {
                Some(q) => Ok(q),
                None => self.realloc_slow(p, size, copy),
            }
        }
    }

    /// `realloc2`'s fast path: `p` is a valid block that already holds
    /// `size` bytes, with too little to give back for a split (`shrink`
    /// would keep it as it is).
    ///
    /// # Safety
    /// `p` is null or a live block of this heap.
    #[inline(always)]
    pub unsafe fn fits_in_place(&self, p: *mut u8, size: usize) -> bool {
        if p.is_null() || self.debug.on {
            return false;
        }
        let b = Block::from_data_unchecked(p);
        // SAFETY: caller's contract.
        unsafe {
            let tag = b.tag();
            let orig = tag.size();
            // `size + HEADER_SIZE <= orig` without overflow, then the true
            // size (below MIN_SIZE for the tiniest sizes, which only makes
            // the slack look bigger: they take the slow path).
            if self.is_live(b, tag) && size <= orig - HEADER_SIZE {
                let ts = (size + HEADER_SIZE + ALIGNMENT - 1) & !(ALIGNMENT - 1);
                return orig - ts < shrink_slack(ts);
            }
        }
        false
    }

    /// `erealloc`'s next stop after `fits_in_place`: a small block of this
    /// request that grows to another small size moves to a cached block of
    /// that size (PHP 5.3's cache move; `realloc_slow` no longer makes it).
    /// Null when that is not the case (then call `realloc_slow`).
    ///
    /// # Safety
    /// `p` is null or a live block of this heap.
    #[inline(always)]
    pub unsafe fn realloc_cached(&mut self, p: *mut u8, size: usize, copy: usize) -> *mut u8 {
        if p.is_null() {
            return ptr::null_mut();
        }
        let b = Block::from_data_unchecked(p);
        // SAFETY: caller's contract; the tags are checked as `efree` checks
        // them before the block is pushed.
        unsafe {
            let tag = b.tag();
            let (old, new) = (self.cache.index_for(tag), small_bucket(size));
            if old >= NUM_BUCKETS
                || new >= NUM_BUCKETS
                || new <= old
                || (self.protect && b.plus(tag.size()).prev_tag() != tag)
            {
                return ptr::null_mut();
            }
            let ts = bucket_size(new);
            let nb = self
                .cache
                .pop(new, Tag::used_with(ts, self.used_bits), self.protect);
            if nb.is_null() {
                return ptr::null_mut();
            }
            // tool hook (tool.rs): the fresh block is still protected.
            crate::tool::copy_to_fresh_block(p, nb.data(), (tag.size() - HEADER_SIZE).min(copy));
            self.cache.push(b, old, tag);
            nb.data()
        }
    }

    /// Everything `realloc2` does not do inline.
    ///
    /// # Safety
    /// As [`Heap::realloc2`].
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn realloc_slow(
        &mut self,
        p: *mut u8,
        size: usize,
        copy: usize,
    ) -> Result<NonNull<u8>, MemError> {
        if p.is_null() {
            return self.alloc(size);
        }
        if self.debug.on {
            // SAFETY: caller's contract.
            return unsafe { self.debug_realloc(p, size, copy) };
        }
        // SAFETY: caller's contract; every block touched is reached through
        // boundary tags of the checked block (I1, I4).
        unsafe {
            // Reports and does not return unless the block is live.
            let b = match self.live(p, "erealloc") {
                Live::Block(b) => b,
                Live::Huge(seg) => return self.realloc_huge(seg, size, copy),
            };
            let tag = b.tag();
            let orig = tag.size();
            let ts = self.checked_true_size(size)?;
            if ts <= orig {
                // A move that finds no room (the limit) shrinks in place.
                if self.shrinks_by_moving(orig, ts) {
                    if let Ok(q) = self.realloc_move(p, orig - HEADER_SIZE, size, copy) {
                        return Ok(q);
                    }
                }
                self.shrink(b, orig, ts);
                return Ok(NonNull::new_unchecked(p));
            }
            // A small block moving to a cached block was `realloc_cached`'s
            // (every caller tries it first).
            let next = b.next();
            let nt = next.tag();
            let first = b.prev_tag() == Tag::FIRST;
            if nt.is_free() {
                let total = orig + nt.size();
                if total >= ts {
                    self.lists.remove(next);
                    self.grow_into_next(b, total, orig, grow_target(ts, total));
                    return Ok(NonNull::new_unchecked(p));
                }
                if first && next.next().tag().is_guard() {
                    return self.realloc_segment(b, orig, ts, Some(next));
                }
            } else if first && nt.is_guard() {
                return self.realloc_segment(b, orig, ts, None);
            }
            self.realloc_move(p, orig - HEADER_SIZE, size, copy)
        }
    }

    /// Does a block of `orig` bytes shrunk to `ts` move rather than split?
    /// In a big heap, a block of a large class shrunk to a cached size or
    /// to half its size or less moves, and the whole block goes on its
    /// class's stack: a split would file its tail in the trie, whose nodes
    /// lie anywhere in gigabytes. On the scale benchmark's 4 GiB heap the
    /// splits' inserts and removals took 7-9% of the time. The copy is at
    /// most half the block, under 72 KiB.
    #[inline]
    fn shrinks_by_moving(&self, orig: usize, ts: usize) -> bool {
        self.uses_large_stacks()
            && large_cache::class_down(orig).is_some()
            && (ts <= MAX_CACHED_SIZE || ts <= orig / 2)
    }

    /// Splits the tail off a block that got smaller, merging it with a free
    /// successor.
    ///
    /// # Safety
    /// `b` is a live used block of `orig >= ts` bytes.
    unsafe fn shrink(&mut self, b: Block, orig: usize, ts: usize) {
        let mut rest = orig - ts;
        if rest < shrink_slack(ts) {
            return;
        }
        // SAFETY: caller's contract; the tail lies inside `b`.
        unsafe {
            let next = b.next();
            if next.prev_tag() != b.tag() {
                self.used_block(b.data(), "erealloc");
            }
            let nt = next.tag();
            if nt.is_free() {
                self.lists.remove(next);
                rest += nt.size();
            }
            b.set_tag(Tag::used_with(ts, self.used_bits));
            self.lists.add(b.plus(ts), rest);
        }
        self.acct.sub_used(orig - ts);
    }

    /// Extends `b` over its (unlinked) free successor, `total` bytes in all.
    ///
    /// # Safety
    /// `b` and its successor span `total >= ts` bytes; the successor is in no list.
    unsafe fn grow_into_next(&mut self, b: Block, total: usize, orig: usize, ts: usize) {
        let rest = total - ts;
        // SAFETY: caller's contract.
        unsafe {
            if rest < MIN_SIZE {
                b.set_tag(Tag::used_with(total, self.used_bits));
                self.acct.add_used(total - orig);
                return;
            }
            b.set_tag(Tag::used_with(ts, self.used_bits));
            let tail = b.plus(ts);
            if b.prev_tag() == Tag::FIRST && tail.plus(rest).tag().is_guard() {
                // The block owns its segment: keep the tail for its growth.
                self.lists.add_rest(tail, rest);
            } else {
                self.lists.add(tail, rest);
            }
            self.acct.add_used(ts - orig);
        }
    }

    /// Grows a block that fills its segment by resizing the whole segment
    /// through the storage (`mremap` for the mmap backends); at `HUGE_MIN`
    /// the mapping becomes a huge block's.
    ///
    /// # Safety
    /// `b` is its segment's first block and only live block; `next`, if
    /// given, is the free block after it, still in its list.
    unsafe fn realloc_segment(
        &mut self,
        b: Block,
        orig: usize,
        ts: usize,
        next: Option<Block>,
    ) -> Result<NonNull<u8>, MemError> {
        // SAFETY: caller's contract; the segment header precedes `b`.
        unsafe {
            let seg = Segment::of_first_block(b);
            let old = seg.size();
            let (new, _) = self.segment_size_for(ts);
            self.room_for(new - old)?;
            if let Some(n) = next {
                self.lists.remove(n);
            }
            let huge = ts >= HUGE_MIN;
            if huge {
                // Too big for a segment: the mapping leaves the list and
                // comes back as a huge block's (huge.rs).
                self.segments.unlink(seg);
            }
            // A block grown by a little (appends to a string) will grow
            // again soon: its segment moves, if it must, to where it can
            // (`Storage::grow`). One that doubles (a hash table) may not.
            let appends = ts - orig < self.segment_size / 4;
            self.spare.forget_counts(seg.as_ptr(), old);
            let raw = if appends {
                self.storage.grow(seg.as_ptr(), old, new)
            } else {
                self.storage.realloc(seg.as_ptr(), old, new)
            };
            if raw.is_null() {
                if huge {
                    self.segments.push(seg);
                }
                if let Some(n) = next {
                    self.lists.add(n, n.tag().size());
                }
                return Err(MemError::OutOfMemory {
                    allocated: self.acct.real_size,
                    tried: new - old,
                });
            }
            self.acct.add_real(new - old);
            // An appended-to block will fill the part `mremap` added:
            // resident pages of regular spares take its place.
            if !huge && appends && self.pages_move() {
                let size = self.segment_size;
                self.spare
                    .lend_regular(self.storage, raw.add(old), new - old, size);
            }
            if huge {
                let (seg, b) = Segment::format_huge(raw, new, ts);
                self.huge.push(seg);
                self.acct.add_used(ts - orig);
                return Ok(NonNull::new_unchecked(b.data()));
            }
            self.max_segment = self.max_segment.max(new);
            let seg = Segment::from_raw(raw);
            self.segments.relink(seg);
            seg.resize(new);
            let b = seg.first_block();
            let usable = new - SEGMENT_OVERHEAD;
            if usable - ts < MIN_SIZE {
                b.set_tag(Tag::used_with(usable, self.used_bits));
                self.acct.add_used(usable - orig);
            } else {
                b.set_tag(Tag::used_with(ts, self.used_bits));
                self.lists.add_rest(b.plus(ts), usable - ts);
                self.acct.add_used(ts - orig);
            }
            Ok(NonNull::new_unchecked(b.data()))
        }
    }

    /// Moves live block `p` (`usable` bytes, a segment's or a huge one) to
    /// a fresh block of `size` bytes, copying at most `copy`, and frees it.
    /// The peak ignores the moment both copies were live (as PHP 8 does).
    ///
    /// # Safety
    /// `p` is a live block of this heap with `usable` bytes.
    pub(crate) unsafe fn realloc_move(
        &mut self,
        p: *mut u8,
        usable: usize,
        size: usize,
        copy: usize,
    ) -> Result<NonNull<u8>, MemError> {
        let peak = self.acct.peak;
        let room = if size > usable {
            self.alloc_with_room(size)
        } else {
            None
        };
        let q = match room {
            Some(q) => q,
            None => self.alloc(size)?,
        };
        // SAFETY: caller's contract; `q` is a fresh block of at least `size`
        // bytes.
        unsafe {
            // tool hook (tool.rs): the fresh block is still protected.
            crate::tool::copy_to_fresh_block(p, q.as_ptr(), usable.min(size).min(copy));
            self.free(p);
        }
        self.acct.peak = peak.max(self.acct.size);
        Ok(q)
    }

    /// A large block that has to move to grow is placed at the front of a
    /// free block at least twice its size, so that the rest follows it and
    /// its next growth is in place: a string grown by appends then moves
    /// a logarithmic number of times, not once per `GROW_QUANTUM`. `None`
    /// when no such block is listed (a new segment has room after it too).
    fn alloc_with_room(&mut self, size: usize) -> Option<NonNull<u8>> {
        let ts = true_size(size)?;
        if is_small(ts) || ts >= HUGE_MIN / 2 || self.debug.on {
            return None;
        }
        // A big heap serves a size of a large class from its stack; the
        // trie's search for twice the size finds a hole anywhere in it.
        if self.uses_large_stacks() && large_cache::class_up(ts).is_some() {
            return None;
        }
        // SAFETY: the trie holds live free blocks (I3); the one found is
        // unlinked before it is carved.
        unsafe {
            let b = self.lists.search_large(ts * 2);
            if b.is_null() {
                return None;
            }
            self.lists.remove(b);
            Some(self.carve(b, ts, false))
        }
    }
}
