//! The request heap: allocation, free and realloc over segments
//! (PHP 5.3's `_zend_mm_alloc_int`, `_zend_mm_free_int`, `_zend_mm_realloc_int`).
//!
//! An allocation tries, in order: the fastcache, the small free lists (bitmap
//! search), the large trie (best fit), the rest list (only near the limit),
//! and finally a new segment, after the limit check. A free goes to the cache
//! when the block is small and the cache has room; otherwise it coalesces
//! with free neighbours and either gives back an emptied segment or files the
//! block in the free lists.
//!
//! Errors come back as `MemError` with the heap consistent; the caller
//! decides how to raise them (`ffi` hands them to the fatal-error path).

use crate::accounting::Accounting;
use crate::block::{true_size, Block, Tag, ALIGNMENT, HEADER_SIZE, MIN_SIZE};
use crate::cache::FastCache;
use crate::config::{Config, RESERVE_SIZE};
use crate::free_lists::{bucket_index, is_small, FreeLists, MAX_SMALL_SIZE};
use crate::locations::Locations;
use crate::report::{corrupted, MemError};
use crate::segment::{Segment, SegmentList, SEGMENT_OVERHEAD};
use crate::storage::Storage;
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

/// Largest request served by the small fast path.
const MAX_SMALL_REQUEST: usize = MAX_SMALL_SIZE - ALIGNMENT - HEADER_SIZE;

/// `set_limit` refused: the heap already holds more segment bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitBelowUsage {
    pub limit: usize,
    pub real_usage: usize,
}

pub struct Heap {
    pub(crate) cache: FastCache,
    pub(crate) acct: Accounting,
    pub(crate) lists: FreeLists,
    pub(crate) segments: SegmentList,
    pub(crate) storage: &'static dyn Storage,
    pub(crate) segment_size: usize,
    pub(crate) compact_size: usize,
    /// Data pointer of the 8 KiB reserve block, or null.
    pub(crate) reserve: *mut u8,
    /// A fatal error is being reported (PHP's `overflow`); cleared at request end.
    pub(crate) overflow: bool,
    /// Settings still to be read from the environment (the process heap
    /// reads them on first use, so `_emalloc` before `start_memory_manager` works).
    pub(crate) env_pending: bool,
    /// Callers' locations of blocks from the debug ABI, for the leak report
    /// (src/locations.rs); empty for release-ABI callers.
    pub(crate) locations: Locations,
}

// SAFETY: a Heap owns its segments outright; moving it to another thread
// moves that ownership. It is not Sync: callers serialise access.
unsafe impl Send for Heap {}

impl Heap {
    /// A heap with `config`, holding no segment yet.
    pub const fn with_config(config: Config) -> Heap {
        Heap {
            cache: FastCache::new(),
            acct: Accounting::new(),
            lists: FreeLists::new(),
            segments: SegmentList::new(),
            storage: config.storage,
            segment_size: config.segment_size,
            compact_size: config.compact_size,
            reserve: ptr::null_mut(),
            overflow: false,
            env_pending: false,
            locations: Locations::new(),
        }
    }

    /// The process heap: defaults now, the environment on first use.
    pub(crate) const fn lazy_from_env() -> Heap {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.env_pending = true;
        h
    }

    /// Reads the environment if that is still pending; a bad value is fatal.
    pub(crate) fn apply_env(&mut self) {
        if !self.env_pending {
            return;
        }
        self.env_pending = false;
        match Config::from_env() {
            Ok(c) => {
                self.storage = c.storage;
                self.segment_size = c.segment_size;
                self.compact_size = c.compact_size;
            }
            Err(text) => crate::report::startup_error(&text),
        }
    }

    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    pub fn storage_name(&self) -> &'static str {
        self.storage.name()
    }

    // ------------------------------------------------------------------
    // Allocation

    /// Allocates `size` bytes, 16-byte aligned; `size == 0` gets a real block.
    #[inline]
    pub fn alloc(&mut self, size: usize) -> Result<NonNull<u8>, MemError> {
        match NonNull::new(self.alloc_cached(size)) {
            Some(p) => Ok(p),
            None => self.alloc_slow(size),
        }
    }

    /// The fast path: a block from the fastcache, or null (then call
    /// `alloc_slow`). A few instructions and one load of the block's link.
    #[inline(always)]
    pub fn alloc_cached(&mut self, size: usize) -> *mut u8 {
        if size > MAX_SMALL_REQUEST {
            return ptr::null_mut();
        }
        let ts = if size < MIN_SIZE - HEADER_SIZE {
            MIN_SIZE
        } else {
            (size + HEADER_SIZE + ALIGNMENT - 1) & !(ALIGNMENT - 1)
        };
        // SAFETY: cached blocks are live used blocks (I3).
        let b = unsafe { self.cache.pop(bucket_index(ts), ts) };
        if b.is_null() {
            ptr::null_mut()
        } else {
            b.data()
        }
    }

    /// Everything but the fastcache: lists, victim, new segments, errors.
    #[cold]
    #[inline(never)]
    pub fn alloc_slow(&mut self, size: usize) -> Result<NonNull<u8>, MemError> {
        let ts = self.checked_true_size(size)?;
        if is_small(ts) {
            self.cache.misses += 1;
        }
        let mut flushed = false;
        loop {
            // SAFETY: the lists hold live free blocks (I3); a found block is
            // unlinked before it is carved.
            unsafe {
                let mut b = Block::NULL;
                if is_small(ts) {
                    b = self.lists.find_small(ts);
                    if b.is_null() {
                        let (v, n) = self.lists.take_from_dv(ts);
                        if !v.is_null() {
                            self.acct.add_used(n);
                            return Ok(NonNull::new_unchecked(v.data()));
                        }
                    }
                }
                if b.is_null() {
                    b = self.lists.search_large(ts);
                }
                if b.is_null() {
                    let (v, n) = self.lists.take_from_dv(ts);
                    if !v.is_null() {
                        self.acct.add_used(n);
                        return Ok(NonNull::new_unchecked(v.data()));
                    }
                }
                if b.is_null() && !self.acct.segment_fits(self.segment_size) {
                    b = self.lists.search_rest(ts);
                }
                if !b.is_null() {
                    self.lists.remove(b);
                    return Ok(self.carve(b, ts, false));
                }
                match self.new_segment(ts) {
                    Ok((first, keep_rest)) => return Ok(self.carve(first, ts, keep_rest)),
                    // Cached blocks may free whole segments: flush, then retry once.
                    Err(_) if !flushed && self.cache.cached() > 0 => {
                        self.flush_cache();
                        flushed = true;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// The true size of a request, refusing sizes whose segment size would
    /// overflow.
    #[inline]
    fn checked_true_size(&self, size: usize) -> Result<usize, MemError> {
        match size.checked_add(HEADER_SIZE + SEGMENT_OVERHEAD + self.segment_size) {
            Some(_) => Ok(true_size(size).unwrap_or(usize::MAX)),
            None => Err(MemError::OverflowAdd {
                size,
                overhead: self.segment_size,
            }),
        }
    }

    /// The segment size that holds a block of `ts` bytes; `true` when it is
    /// a dedicated segment, whose remainder goes to the rest list.
    fn segment_size_for(&self, ts: usize) -> (usize, bool) {
        if ts > self.segment_size - SEGMENT_OVERHEAD {
            let s = self.segment_size;
            ((ts + SEGMENT_OVERHEAD + s - 1) & !(s - 1), true)
        } else {
            (self.segment_size, false)
        }
    }

    /// Makes room for `extra` more segment bytes under the limit, flushing
    /// the cache if that could help.
    fn room_for(&mut self, extra: usize) -> bool {
        if self.acct.segment_fits(extra) {
            return true;
        }
        if self.cache.cached() > 0 {
            self.flush_cache();
            return self.acct.segment_fits(extra);
        }
        false
    }

    /// Takes a segment from storage for a block of `ts` bytes; returns its
    /// first block (free, in no list).
    fn new_segment(&mut self, ts: usize) -> Result<(Block, bool), MemError> {
        self.apply_env();
        let (seg_size, keep_rest) = self.segment_size_for(ts);
        if !self.room_for(seg_size) {
            return Err(MemError::Limit {
                limit: self.acct.limit,
                tried: seg_size,
            });
        }
        let raw = self.storage.alloc(seg_size);
        if raw.is_null() {
            return Err(MemError::OutOfMemory {
                allocated: self.acct.real_size,
                tried: seg_size,
            });
        }
        self.acct.add_real(seg_size);
        // SAFETY: the storage gave `seg_size` bytes, a multiple of the
        // segment size and larger than the overhead.
        unsafe {
            let (seg, first) = Segment::format(raw, seg_size);
            self.segments.push(seg);
            Ok((first, keep_rest))
        }
    }

    /// Hands out the front `ts` bytes of free block `b` (unlinked), filing
    /// the remainder when it is big enough to be a block.
    ///
    /// # Safety
    /// `b` is a free block of at least `ts` bytes in no list.
    unsafe fn carve(&mut self, b: Block, ts: usize, keep_rest: bool) -> NonNull<u8> {
        // SAFETY: caller's contract; the remainder lies inside `b`.
        unsafe {
            let size = b.tag().size();
            let rest = size - ts;
            if rest < MIN_SIZE {
                b.set_tag(Tag::used(size));
                self.acct.add_used(size);
            } else {
                b.set_tag(Tag::used(ts));
                if keep_rest {
                    self.lists.add_rest(b.plus(ts), rest);
                } else if is_small(ts) {
                    self.lists.offer_dv(b.plus(ts), rest);
                } else {
                    self.lists.add(b.plus(ts), rest);
                }
                self.acct.add_used(ts);
            }
            NonNull::new_unchecked(b.data())
        }
    }

    // ------------------------------------------------------------------
    // Free

    /// Checks that `p` is the data pointer of a used block whose boundary tag
    /// agrees with its neighbour, and returns that block.
    ///
    /// # Safety
    /// `p` must point into memory readable 16 bytes before it; the size read
    /// there is only followed when it is plausible.
    #[inline]
    unsafe fn used_block(&self, p: *mut u8, what: &str) -> Block {
        let b = Block::from_data_unchecked(p);
        // SAFETY: caller's contract for the header; `next` is read only for a
        // used tag of sane size.
        unsafe {
            let tag = b.tag();
            if !tag.is_used() || tag.size() < MIN_SIZE || b.next().prev_tag() != tag {
                corrupted(what, p, tag.size());
            }
        }
        b
    }

    /// Frees a block (`efree`).
    ///
    /// # Safety
    /// `p` was returned by this heap and not freed since, and the heap has
    /// not been shut down since.
    #[inline]
    pub unsafe fn free(&mut self, p: *mut u8) {
        // SAFETY: caller's contract.
        unsafe {
            // Fast path: a used small block goes on its fastcache stack. Only
            // its own tag is read: the neighbour's header is another cache
            // line, checked when the block is coalesced (`release`).
            let b = Block::from_data_unchecked(p);
            let tag = b.tag();
            let size = tag.size();
            if tag.is_used() && size >= MIN_SIZE && is_small(size) && self.cache.has_room() {
                self.cache.push(b, bucket_index(size), size);
                return;
            }
            self.free_slow(p);
        }
    }

    /// # Safety
    /// As [`Heap::free`].
    #[cold]
    #[inline(never)]
    unsafe fn free_slow(&mut self, p: *mut u8) {
        // SAFETY: caller's contract.
        unsafe {
            let b = self.used_block(p, "efree of a pointer that is not a live block");
            let size = b.tag().size();
            self.acct.sub_used(size);
            self.release(b, size);
        }
    }

    /// Coalesces a no-longer-used block with its free neighbours, then gives
    /// its segment back if it is now empty, or files it as free.
    ///
    /// # Safety
    /// `b` is a block of `size` bytes that nothing references any more.
    unsafe fn release(&mut self, mut b: Block, mut size: usize) {
        // SAFETY: caller's contract; neighbours exist by I1/I4.
        unsafe {
            let next = b.next();
            let nt = next.tag();
            if nt.is_free() {
                self.lists.remove(next);
                size += nt.size();
            }
            let pt = b.prev_tag();
            if pt.is_free() {
                let prev = b.prev();
                if prev.tag() != pt {
                    corrupted(
                        "boundary tags of neighbouring blocks disagree",
                        b.data(),
                        size,
                    );
                }
                self.lists.remove(prev);
                size += pt.size();
                b = prev;
            }
            if b.prev_tag() == Tag::FIRST && b.plus(size).tag().is_guard() {
                self.delete_segment(Segment::of_first_block(b));
            } else {
                self.lists.add(b, size);
            }
        }
    }

    /// # Safety
    /// `seg` is in this heap's list and holds no live block.
    unsafe fn delete_segment(&mut self, seg: Segment) {
        // SAFETY: caller's contract.
        unsafe {
            let size = seg.size();
            self.segments.unlink(seg);
            self.acct.sub_real(size);
            self.storage.free(seg.as_ptr(), size);
        }
    }

    /// Empties the fastcache into the free lists, giving back segments that
    /// become empty (`zend_mm_free_cache`). Unlike PHP 5.3 it also takes the
    /// flushed bytes off `size`, so usage stays the sum of live blocks.
    pub(crate) fn flush_cache(&mut self) {
        let heads = self.cache.take_all();
        for mut b in heads {
            while !b.is_null() {
                // SAFETY: cached blocks are live used blocks owned by the cache (I3).
                unsafe {
                    let next = b.prev_free();
                    let size = b.tag().size();
                    self.acct.sub_used(size);
                    self.release(b, size);
                    b = next;
                }
            }
        }
    }

    // ------------------------------------------------------------------
    // Realloc

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
    pub unsafe fn realloc2(
        &mut self,
        p: *mut u8,
        size: usize,
        copy: usize,
    ) -> Result<NonNull<u8>, MemError> {
        if p.is_null() {
            return self.alloc(size);
        }
        // SAFETY: caller's contract; every block touched is reached through
        // boundary tags of the checked block (I1, I4).
        unsafe {
            // Only the block's own tag here; the neighbour's boundary tag is
            // checked where the neighbour is read (growth, shrink merge).
            let b = Block::from_data_unchecked(p);
            let tag = b.tag();
            if !tag.is_used() || tag.size() < MIN_SIZE {
                self.used_block(p, "erealloc of a pointer that is not a live block");
            }
            let orig = tag.size();
            let ts = self.checked_true_size(size)?;
            if ts <= orig {
                self.shrink(b, orig, ts);
                return Ok(NonNull::new_unchecked(p));
            }
            if is_small(ts) {
                let nb = self.cache.pop(bucket_index(ts), ts);
                if !nb.is_null() {
                    ptr::copy_nonoverlapping(p, nb.data(), (orig - HEADER_SIZE).min(copy));
                    self.cache.push(b, bucket_index(orig), orig);
                    return Ok(NonNull::new_unchecked(nb.data()));
                }
            }
            let next = b.next();
            if next.prev_tag() != tag {
                corrupted("erealloc of a block whose boundary tags disagree", p, orig);
            }
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
            self.realloc_move(b, size, copy)
        }
    }

    /// Splits the tail off a block that got smaller, merging it with a free
    /// successor.
    ///
    /// # Safety
    /// `b` is a live used block of `orig >= ts` bytes.
    unsafe fn shrink(&mut self, b: Block, orig: usize, ts: usize) {
        let mut rest = orig - ts;
        // A large block keeps up to a page of slack, like ZendMM 8's
        // page-granular runs: a string growing a few bytes at a time then
        // reallocs in place without touching the free lists.
        let slack = if is_small(ts) { MIN_SIZE } else { GROW_QUANTUM };
        if rest < slack {
            return;
        }
        // SAFETY: caller's contract; the tail lies inside `b`.
        unsafe {
            let next = b.next();
            if next.prev_tag() != Tag::used(orig) {
                corrupted(
                    "erealloc of a block whose boundary tags disagree",
                    b.data(),
                    orig,
                );
            }
            let nt = next.tag();
            if nt.is_free() {
                self.lists.remove(next);
                rest += nt.size();
            }
            b.set_tag(Tag::used(ts));
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
                b.set_tag(Tag::used(total));
                self.acct.add_used(total - orig);
                return;
            }
            b.set_tag(Tag::used(ts));
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
    /// through the storage (`mremap` for the mmap backends).
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
            if !self.room_for(new - old) {
                return Err(MemError::Limit {
                    limit: self.acct.limit,
                    tried: new - old,
                });
            }
            if let Some(n) = next {
                self.lists.remove(n);
            }
            let raw = self.storage.realloc(seg.as_ptr(), old, new);
            if raw.is_null() {
                if let Some(n) = next {
                    self.lists.add(n, n.tag().size());
                }
                return Err(MemError::OutOfMemory {
                    allocated: self.acct.real_size,
                    tried: new - old,
                });
            }
            self.acct.add_real(new - old);
            let seg = Segment::from_raw(raw);
            self.segments.relink(seg);
            seg.resize(new);
            let b = seg.first_block();
            let usable = new - SEGMENT_OVERHEAD;
            if usable - ts < MIN_SIZE {
                b.set_tag(Tag::used(usable));
                self.acct.add_used(usable - orig);
            } else {
                b.set_tag(Tag::used(ts));
                self.lists.add_rest(b.plus(ts), usable - ts);
                self.acct.add_used(ts - orig);
            }
            Ok(NonNull::new_unchecked(b.data()))
        }
    }

    /// Allocates anew, copies and frees. The peak ignores the moment both
    /// copies were live (as PHP 8 does).
    ///
    /// # Safety
    /// `b` is a live used block.
    unsafe fn realloc_move(
        &mut self,
        b: Block,
        size: usize,
        copy: usize,
    ) -> Result<NonNull<u8>, MemError> {
        let peak = self.acct.peak;
        let q = self.alloc(size)?;
        // SAFETY: caller's contract; `q` is a fresh block of at least `size`
        // bytes, larger than `b`'s data.
        unsafe {
            let len = (b.tag().size() - HEADER_SIZE).min(copy);
            ptr::copy_nonoverlapping(b.data(), q.as_ptr(), len);
            self.free(b.data());
        }
        self.acct.peak = peak.max(self.acct.size);
        Ok(q)
    }

    /// Usable bytes of a live block (`_zend_mm_block_size`).
    ///
    /// # Safety
    /// `p` is a live block of this heap.
    pub unsafe fn block_size(&self, p: *mut u8) -> usize {
        // SAFETY: caller's contract.
        unsafe {
            self.used_block(p, "block size of a pointer that is not a live block")
                .tag()
                .size()
                - HEADER_SIZE
        }
    }

    // ------------------------------------------------------------------
    // Limit, reserve and statistics

    /// `zend_memory_usage`: block bytes in use (cached ones excluded), or
    /// segment bytes when `real`.
    pub fn usage(&self, real: bool) -> usize {
        if real {
            self.acct.real_size
        } else {
            self.acct.size - self.cache.cached()
        }
    }

    /// `zend_memory_peak_usage`.
    pub fn peak_usage(&self, real: bool) -> usize {
        if real {
            self.acct.real_peak
        } else {
            self.acct.peak
        }
    }

    pub fn reset_peak_usage(&mut self) {
        self.acct.reset_peaks();
    }

    pub fn limit(&self) -> usize {
        self.acct.limit
    }

    /// Sets `memory_limit` (at least one segment). Refused, leaving the old
    /// limit, when segments already held exceed it even after a cache flush.
    pub fn set_limit(&mut self, limit: usize) -> Result<(), LimitBelowUsage> {
        let limit = limit.max(self.segment_size);
        if limit < self.acct.real_size {
            self.flush_cache();
            if limit < self.acct.real_size {
                return Err(LimitBelowUsage {
                    limit,
                    real_usage: self.acct.real_size,
                });
            }
        }
        self.acct.limit = limit;
        Ok(())
    }

    /// Sets the limit without the checks of `set_limit`: the PHP glue lets an
    /// allocation pass `memory_limit` up to the hard limit.
    pub(crate) fn replace_limit(&mut self, limit: usize) -> usize {
        core::mem::replace(&mut self.acct.limit, limit)
    }

    /// Empties the fastcache (`zend_mm_gc`); returns the bytes it held.
    pub fn gc(&mut self) -> usize {
        let cached = self.cache.cached();
        self.flush_cache();
        cached
    }

    /// Is `p` inside the data of a live block of this heap (not free, not
    /// resting in the fastcache)? Walks the segment holding `p`: for
    /// `is_zend_ptr`, not for hot paths.
    pub fn is_live_ptr(&self, p: *const u8) -> bool {
        let addr = p as usize;
        let mut seg = self.segments.head();
        while !seg.is_null() {
            // SAFETY: listed segments are live; their blocks are walked by tags (I1, I4).
            unsafe {
                if seg.contains(addr) {
                    let mut b = seg.first_block();
                    loop {
                        let t = b.tag();
                        if t.is_guard() || t.size() == 0 {
                            return false;
                        }
                        if addr < b.addr() + t.size() {
                            return t.is_used() && addr >= b.data() as usize && !self.is_cached(b);
                        }
                        b = b.next();
                    }
                }
                seg = seg.next();
            }
        }
        false
    }

    fn is_cached(&self, b: Block) -> bool {
        // SAFETY: cached blocks are live used blocks (I3).
        let size = unsafe { b.tag().size() };
        if !is_small(size) {
            return false;
        }
        let mut c = self.cache.head(bucket_index(size));
        while !c.is_null() {
            if c == b {
                return true;
            }
            // SAFETY: as above.
            c = unsafe { c.prev_free() };
        }
        false
    }

    /// Allocates the emergency reserve if it is missing.
    pub(crate) fn create_reserve(&mut self) {
        if self.reserve.is_null() {
            if let Ok(p) = self.alloc(RESERVE_SIZE) {
                self.reserve = p.as_ptr();
            }
        }
    }

    /// Starts reporting a fatal error: frees the reserve for headroom.
    /// Returns `true` when an error is already being reported.
    pub(crate) fn begin_error(&mut self) -> bool {
        if self.overflow {
            return true;
        }
        self.overflow = true;
        let r = core::mem::replace(&mut self.reserve, ptr::null_mut());
        if !r.is_null() {
            // SAFETY: the reserve is a live block of this heap.
            unsafe { self.free(r) };
        }
        false
    }
}

impl Default for Heap {
    fn default() -> Heap {
        Heap::with_config(Config::DEFAULT)
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        self.release_all_segments(false);
    }
}
