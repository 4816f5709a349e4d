//! The request heap: allocation and free over segments (PHP 5.3's
//! `_zend_mm_alloc_int`, `_zend_mm_free_int`); realloc is `realloc.rs`.
//!
//! An allocation tries, in order: the fastcache, the small free lists (bitmap
//! search), the large trie (best fit), the rest list (only near the limit),
//! and finally a new segment, after the limit check. A big heap tries its
//! stacks of large blocks first for sizes past the fastcache's
//! (`large_cache.rs`). A free goes to the cache when the block is small
//! (or, in a big heap, to a large stack while they hold under 1/128 of the
//! heap); otherwise it coalesces
//! with free neighbours and either gives back an emptied segment or files the
//! block in the free lists.
//!
//! Errors come back as `MemError` with the heap consistent; the caller
//! decides how to raise them (`ffi` hands them to the fatal-error path).

use crate::accounting::Accounting;
use crate::block::{true_size, Block, Tag, ALIGNMENT, HEADER_SIZE, MIN_SIZE};
use crate::cache::{FastCache, CACHE_BUCKETS, MAX_CACHED_SIZE};
use crate::config::{Config, RESERVE_SIZE};
use crate::debug_mode::DebugConfig;
use crate::free_lists::{bucket_size, is_small, FreeLists, NUM_BUCKETS};
use crate::huge::HUGE_MIN;
use crate::large_cache::{self, LargeCache};
use crate::locations::Locations;
use crate::report::{corrupted, MemError};
#[cfg(test)]
use crate::segment::SEGMENT_HEADER_SIZE;
use crate::segment::{Segment, SegmentList, SEGMENT_OVERHEAD};
use crate::spare::SpareSegments;
use crate::storage::Storage;
use core::ptr::{self, NonNull};

/// From this real size on, a heap maps `BIG_SEGMENT`s instead of regular
/// segments, and instead of dedicated ones for blocks smaller than a big
/// segment. A big heap's blocks are spread over more pages than the TLB
/// maps: on the scale benchmark's 4 GiB heap a call took 87-97 ns instead
/// of 110-115, and 71-75 ns instead of 78-86 once the blocks of 256 KiB
/// to 1 MiB (61% of its bytes) no longer took 4 KiB pages. Below it the
/// coarser grain costs more than it saves: a huge page is resident as a
/// whole, holes and all. With 128 MiB here the scale benchmark's 64 MiB
/// heap (which maps 159-165 MB of segments while it churns) peaked at
/// 142 MB resident; with 256 MiB, 97.5 MB, at the same speed (and
/// `strings.php`, 75 MB, ran 2% slower and 6% bigger with 64 MiB).
pub(crate) const BIG_HEAP: usize = 256 << 20;
/// The segment of a big heap: one huge page (`Storage::alloc_huge_pages`).
pub(crate) const BIG_SEGMENT: usize = crate::storage::HUGE_PAGE;

/// A big heap's large stacks hold at most 1/`LARGE_SHARE` of its segment
/// bytes; past that a freed large block is coalesced as in any heap. The
/// scale benchmark's 4 GiB heap ran alike with 1/32 and 1/512.
const LARGE_SHARE: usize = 128;

/// The fastcache bucket of a request of `size` bytes: below `NUM_BUCKETS`
/// for a small one, at least `CACHE_BUCKETS` for one the cache does not
/// hold. `bucket_index(true_size(size))` is
/// `(size + HEADER_SIZE + ALIGNMENT - 1 - MIN_SIZE) / ALIGNMENT`; the
/// subtraction saturates for the sizes that get `MIN_SIZE` anyway.
#[inline(always)]
pub(crate) fn small_bucket(size: usize) -> usize {
    size.saturating_sub(MIN_SIZE - HEADER_SIZE - (ALIGNMENT - 1)) / ALIGNMENT
}

/// Requests of at most this many bytes round to fastcache slot 0 (`small_slot`).
const SLOT0_SIZES: usize = MIN_SIZE - HEADER_SIZE - ALIGNMENT;

/// The fastcache slot (`FastCache::pop_slot`) of a request of `size`
/// bytes: `small_bucket(size) + 1`, except 0 for the few sizes up to
/// `SLOT0_SIZES` and for the last few below `usize::MAX`, where the
/// addition wraps. Slot 0 is always empty, so they miss. Three
/// instructions where `small_bucket` takes six.
#[inline(always)]
fn small_slot(size: usize) -> usize {
    size.wrapping_add(ALIGNMENT - 1 - SLOT0_SIZES) / ALIGNMENT
}

/// `set_limit` refused: the heap already holds more segment bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitBelowUsage {
    /// The limit asked for (raised to one segment if it was smaller).
    pub limit: usize,
    /// Bytes of segments the heap holds.
    pub real_usage: usize,
}

pub struct Heap {
    pub(crate) cache: FastCache,
    /// A big heap's stacks of large blocks (`large_cache.rs`).
    pub(crate) large: LargeCache,
    pub(crate) acct: Accounting,
    pub(crate) lists: FreeLists,
    pub(crate) segments: SegmentList,
    /// Mappings of huge blocks (`huge.rs`), not segments.
    pub(crate) huge: SegmentList,
    /// Emptied regular segments kept for reuse (src/spare.rs).
    pub(crate) spare: SpareSegments,
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
    /// Fastcache checks and keyed links on (`ZENDMM_PROTECT`, default on).
    pub(crate) protect: bool,
    /// The buckets `alloc_inline` pops: all, or none on a routed heap.
    inline_reach: usize,
    /// Tag bits of a block handed out in this request: `used` plus the
    /// request's epoch parity (see `block::EPOCH_BIT`).
    pub(crate) used_bits: usize,
    /// The largest segment held so far: no block is bigger, so a larger size
    /// tag is corrupt and is not followed.
    pub(crate) max_segment: usize,
    /// `ZEND_MM_DEBUG`: poisoning, padding and canaries (see `debug_mode.rs`).
    pub(crate) debug: DebugConfig,
    /// Callers' locations of blocks from the debug ABI, for the leak report
    /// (src/locations.rs); empty for release-ABI callers.
    pub(crate) locations: Locations,
    /// Cached bytes above which the heap flushes before it grows
    /// (`flush.rs`).
    pub(crate) flush_floor: usize,
}

// SAFETY: a Heap owns its segments outright; moving it to another thread
// moves that ownership. It is not Sync: callers serialise access.
unsafe impl Send for Heap {}

impl Heap {
    /// A heap with `config`, holding no segment yet.
    pub const fn with_config(config: Config) -> Heap {
        Heap {
            cache: FastCache::configured(!config.debug.on),
            large: LargeCache::new(),
            acct: Accounting::new(),
            lists: FreeLists::new(),
            segments: SegmentList::new(),
            huge: SegmentList::new(),
            spare: SpareSegments::new(),
            storage: config.storage,
            segment_size: config.segment_size,
            compact_size: config.compact_size,
            reserve: ptr::null_mut(),
            overflow: false,
            env_pending: false,
            protect: config.protect,
            inline_reach: CACHE_BUCKETS + 1,
            used_bits: Tag::used(0).raw(),
            max_segment: 0,
            debug: config.debug,
            locations: Locations::new(),
            flush_floor: crate::cache::CACHE_SIZE,
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
                // Spares belong to the old storage and size (S3).
                self.spare.release(self.storage);
                self.storage = c.storage;
                self.segment_size = c.segment_size;
                self.compact_size = c.compact_size;
                self.set_protect(c.protect);
                self.set_debug(c.debug);
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
        if let Some(p) = NonNull::new(self.alloc_cached(size)) {
            return Ok(p);
        }
        match NonNull::new(self.alloc_missed(size)) {
            Some(p) => Ok(p),
            None => self.alloc_slow(size),
        }
    }

    /// The fast path: a block from the fastcache, or null (then call
    /// `alloc_slow`). A few instructions and one load of the block's link.
    #[inline(always)]
    pub fn alloc_cached(&mut self, size: usize) -> *mut u8 {
        // SAFETY: the bound is the last slot's.
        unsafe { self.alloc_cached_below(size, CACHE_BUCKETS + 1) }
    }

    /// `alloc_cached` for `_emalloc`'s inline path, which misses at once
    /// on a heap the FFI layer routes elsewhere ([`Heap::set_inline`]):
    /// the bound it compares the bucket with is then 0, so the fast path
    /// needs no test of its own for routing.
    #[inline(always)]
    pub fn alloc_inline(&mut self, size: usize) -> *mut u8 {
        // SAFETY: `set_inline` keeps `inline_reach` at most CACHE_BUCKETS + 1.
        unsafe { self.alloc_cached_below(size, self.inline_reach) }
    }

    /// Lets `alloc_inline` pop the fastcache (`on`), or makes it miss.
    pub fn set_inline(&mut self, on: bool) {
        self.inline_reach = if on { CACHE_BUCKETS + 1 } else { 0 };
    }

    /// # Safety
    /// `reach <= CACHE_BUCKETS + 1` (slots, not buckets).
    #[inline(always)]
    unsafe fn alloc_cached_below(&mut self, size: usize, reach: usize) -> *mut u8 {
        let slot = small_slot(size);
        if slot >= reach {
            return ptr::null_mut();
        }
        // Bucket `slot - 1`'s size (16 for slot 0, whose stack is empty).
        let ts = bucket_size(slot) - ALIGNMENT;
        // SAFETY: caller's contract: `slot <= CACHE_BUCKETS`; cached blocks
        // are live used blocks (I3) and `ts` is bucket `slot - 1`'s size.
        let b = unsafe {
            self.cache
                .pop_slot(slot, Tag::used_with(ts, self.used_bits), self.protect)
        };
        if b.is_null() {
            ptr::null_mut()
        } else {
            b.data()
        }
    }

    /// The next stop after a fastcache miss: the front of the victim, when
    /// that is where `alloc_block` would look first; else null (then call
    /// `alloc_slow`). Most misses end here, in a few dozen instructions.
    #[inline(always)]
    pub fn alloc_missed(&mut self, size: usize) -> *mut u8 {
        let index = small_bucket(size);
        if index >= NUM_BUCKETS || self.debug.on {
            return ptr::null_mut();
        }
        let ts = bucket_size(index);
        if size <= SLOT0_SIZES {
            // Slot 0 missed: bucket 0 itself, as any other size gets.
            // SAFETY: cached blocks are live used blocks (I3).
            let b = unsafe {
                self.cache
                    .pop(0, Tag::used_with(ts, self.used_bits), self.protect)
            };
            if !b.is_null() {
                return b.data();
            }
        }
        // SAFETY: the victim is a live free block (I3).
        let b = unsafe { self.lists.take_dv_front(ts, self.used_bits) };
        if b.is_null() {
            return ptr::null_mut();
        }
        self.cache.misses += 1;
        self.acct.add_used(ts);
        b.data()
    }

    /// Everything but the fastcache: lists, victim, new segments, errors.
    #[cold]
    #[inline(never)]
    pub fn alloc_slow(&mut self, size: usize) -> Result<NonNull<u8>, MemError> {
        if self.debug.on {
            return self.debug_alloc(size);
        }
        self.alloc_block(size)
    }

    /// A block of at least `size` usable bytes, from anywhere but the
    /// fastcache: in a big heap a large request is rounded up to its class
    /// and takes a block from that class's stack first.
    #[inline(always)]
    pub(crate) fn alloc_block(&mut self, size: usize) -> Result<NonNull<u8>, MemError> {
        let mut ts = self.checked_true_size(size)?;
        if ts <= MAX_CACHED_SIZE {
            self.cache.misses += 1;
        } else if ts >= HUGE_MIN {
            return self.alloc_huge(ts);
        } else if self.uses_large_stacks() {
            if let Some((class, class_ts)) = large_cache::class_up(ts) {
                ts = class_ts;
                // SAFETY: stacked blocks are live used blocks (L1).
                let b = unsafe { self.large.pop(class, self.used_bits) };
                if !b.is_null() {
                    // SAFETY: a block's data pointer is never null.
                    return Ok(unsafe { NonNull::new_unchecked(b.data()) });
                }
            }
        }
        self.alloc_sized(ts)
    }

    /// A block of true size `ts` (past the cache, not huge) from the free
    /// lists, or else from a new segment.
    #[inline(always)]
    fn alloc_sized(&mut self, ts: usize) -> Result<NonNull<u8>, MemError> {
        let mut flushed = false;
        loop {
            if let Some(p) = self.take_listed(ts) {
                if flushed {
                    self.flush_paid_off();
                }
                return Ok(p);
            }
            if !flushed && self.flushes_before_growth(ts) {
                self.flush_before_growth();
                flushed = true;
                continue;
            }
            match self.new_segment(ts) {
                // SAFETY: `first` is the new segment's free block, in no list.
                Ok((first, keep_rest)) => return Ok(unsafe { self.carve(first, ts, keep_rest) }),
                // Cached blocks may free whole segments: flush, then retry once.
                Err(_) if !flushed && self.cached() > 0 => {
                    self.flush_cache();
                    flushed = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Has the heap `BIG_HEAP` bytes of segments or more?
    #[inline]
    pub(crate) fn is_big(&self) -> bool {
        self.acct.real_size >= BIG_HEAP
    }

    /// Does the heap round large requests to classes and stack their
    /// blocks (`large_cache.rs`)? A big heap does, unless in debug mode,
    /// whose frees all take the slow path.
    #[inline]
    pub(crate) fn uses_large_stacks(&self) -> bool {
        self.is_big() && !self.debug.on
    }

    /// Bytes resting in the fastcache and the large stacks: counted in
    /// `Accounting::size`, not in `usage`.
    #[inline]
    pub(crate) fn cached(&self) -> usize {
        self.cache.cached() + self.large.cached()
    }

    /// Empties the fastcache and the large stacks without touching their
    /// blocks (a flush walk finds them by their tags; a request end
    /// releases their segments).
    pub(crate) fn clear_stacks(&mut self) {
        self.cache.clear();
        self.large.clear();
    }

    /// Would `new_segment` take a spare segment of exactly the size it
    /// needs for `ts`? Such a spare is resident already; one resized for a
    /// dedicated segment may bring fresh pages, so it does not count.
    pub(crate) fn spare_for(&self, ts: usize) -> bool {
        let (size, _) = self.new_segment_size(ts);
        self.spare.has(size, size == self.segment_size)
    }

    /// The size of the segment `new_segment` maps for `ts`: as
    /// `segment_size_for`, except that a heap of `BIG_HEAP` bytes or more
    /// takes a `BIG_SEGMENT` instead of any smaller one (regular or
    /// dedicated), while one fits under the limit; its rest goes to the
    /// lists, not the rest list.
    fn new_segment_size(&self, ts: usize) -> (usize, bool) {
        let (size, dedicated) = self.segment_size_for(ts);
        if size < BIG_SEGMENT && self.is_big() && self.acct.segment_fits(BIG_SEGMENT) {
            (BIG_SEGMENT, false)
        } else {
            (size, dedicated)
        }
    }

    /// A block of true size `ts` from the free lists or the victim, in
    /// dlmalloc's order. Small: a block that fits without a split, the
    /// victim, a bigger small block, a large one. Large: the best fit, then
    /// the victim. The rest list only when a new segment would pass the
    /// limit.
    #[inline(always)]
    fn take_listed(&mut self, ts: usize) -> Option<NonNull<u8>> {
        // SAFETY: the lists hold live free blocks (I3); a found block is
        // unlinked before it is carved.
        unsafe {
            let small = is_small(ts);
            let mut b = if small {
                self.lists.find_small_fit(ts)
            } else {
                self.lists.search_large(ts)
            };
            if b.is_null() {
                let (v, n) = self.lists.take_from_dv(ts, self.used_bits);
                if !v.is_null() {
                    self.acct.add_used(n);
                    return Some(NonNull::new_unchecked(v.data()));
                }
                if small {
                    b = self.lists.find_small(ts);
                    if b.is_null() {
                        b = self.lists.search_large(ts);
                    }
                }
            }
            if b.is_null() && !self.acct.segment_fits(self.segment_size) {
                b = self.lists.search_rest(ts);
            }
            if b.is_null() {
                return None;
            }
            self.lists.remove(b);
            Some(self.carve(b, ts, false))
        }
    }

    /// The true size of a request, refusing sizes whose segment size would
    /// overflow. The message names the whole overhead that was added, so
    /// the sum it shows really does overflow.
    #[inline]
    pub(crate) fn checked_true_size(&self, size: usize) -> Result<usize, MemError> {
        let overhead = HEADER_SIZE + SEGMENT_OVERHEAD + self.segment_size;
        match size.checked_add(overhead) {
            Some(_) => Ok(true_size(size).unwrap_or(usize::MAX)),
            None => Err(MemError::OverflowAdd { size, overhead }),
        }
    }

    /// The segment size that holds a block of `ts` bytes; `true` when it is
    /// a dedicated segment, whose remainder goes to the rest list.
    pub(crate) fn segment_size_for(&self, ts: usize) -> (usize, bool) {
        if ts > self.segment_size - SEGMENT_OVERHEAD {
            let s = self.segment_size;
            // `s - 1` first: for the largest size `checked_true_size` lets
            // through, `ts + SEGMENT_OVERHEAD + s` is exactly 2^64.
            ((ts + SEGMENT_OVERHEAD + (s - 1)) & !(s - 1), true)
        } else {
            (self.segment_size, false)
        }
    }

    /// Makes room for `extra` more segment bytes under the limit, flushing
    /// the cache if that could help; else the limit error, naming `extra`.
    pub(crate) fn room_for(&mut self, extra: usize) -> Result<(), MemError> {
        if self.acct.segment_fits(extra) {
            return Ok(());
        }
        if self.cached() > 0 {
            self.flush_cache();
            if self.acct.segment_fits(extra) {
                return Ok(());
            }
        }
        Err(MemError::Limit {
            limit: self.acct.limit,
            tried: extra,
        })
    }

    /// Takes a segment from storage for a block of `ts` bytes; returns its
    /// first block (free, in no list).
    fn new_segment(&mut self, ts: usize) -> Result<(Block, bool), MemError> {
        self.apply_env();
        if self.segments.count() == 0 {
            // No block exists, so no link is encoded under the old key.
            self.renew_secret();
        }
        let (seg_size, keep_rest) = self.new_segment_size(ts);
        self.room_for(seg_size)?;
        let regular = seg_size == self.segment_size;
        let moves = self.pages_move();
        let raw = match self
            .spare
            .take(seg_size, regular, moves.then_some(self.storage))
        {
            Some(seg) => seg.as_ptr(),
            None if regular => self.map_regular(seg_size, moves),
            None => self.map_other(seg_size, keep_rest, moves),
        };
        if raw.is_null() {
            return Err(MemError::OutOfMemory {
                allocated: self.acct.real_size,
                tried: seg_size,
            });
        }
        self.acct.add_real(seg_size);
        self.max_segment = self.max_segment.max(seg_size);
        // SAFETY: the storage gave `seg_size` bytes, a multiple of the
        // segment size and larger than the overhead.
        unsafe {
            let (seg, first) = Segment::format(raw, seg_size);
            self.segments.push(seg);
            Ok((first, keep_rest))
        }
    }

    /// A mapping for a regular segment of `size` bytes when no regular
    /// spare is left: with `moves` (`pages_move`), a part of a bigger spare
    /// (`carve_regular`), else a new one.
    fn map_regular(&mut self, size: usize, moves: bool) -> *mut u8 {
        if moves {
            let raw = self.spare.carve_regular(self.storage, size);
            if !raw.is_null() {
                return raw;
            }
        }
        self.storage.alloc(size)
    }

    /// May pages of spare segments serve other segments (`spare.rs`: lent,
    /// split, carved)? Where the storage takes any page-aligned part of a
    /// mapping as one (mmap's); not under valgrind or ASan, which keep
    /// spares protected; not in a big heap, whose huge pages they would
    /// split.
    pub(crate) fn pages_move(&self) -> bool {
        self.storage.splits() && !crate::tool::active() && self.acct.real_size < BIG_HEAP
    }

    /// A mapping of `size` bytes for a segment of other than the regular
    /// size: a dedicated one resizes a spare of another size when there is
    /// one (`SpareSegments::take_resized`; not under valgrind or ASan,
    /// which keep spare segments protected), a big one asks for huge pages;
    /// a new mapping takes the place of spares beyond the budget. With
    /// `moves` (`pages_move`) a spare resized smaller keeps its tail.
    fn map_other(&mut self, size: usize, dedicated: bool, moves: bool) -> *mut u8 {
        if dedicated && !crate::tool::active() {
            let raw = self
                .spare
                .take_resized(self.storage, size, self.segment_size, moves);
            if !raw.is_null() {
                return raw;
            }
        }
        self.spare.before_new_mapping(self.storage, size);
        if dedicated {
            self.storage.alloc(size)
        } else {
            self.storage.alloc_huge_pages(size)
        }
    }

    /// Hands out the front `ts` bytes of free block `b` (unlinked), filing
    /// the remainder when it is big enough to be a block.
    ///
    /// # Safety
    /// `b` is a free block of at least `ts` bytes in no list.
    pub(crate) unsafe fn carve(&mut self, b: Block, ts: usize, keep_rest: bool) -> NonNull<u8> {
        // SAFETY: caller's contract; the remainder lies inside `b`.
        unsafe {
            let size = b.tag().size();
            let rest = size - ts;
            if rest < MIN_SIZE {
                b.set_tag(Tag::used_with(size, self.used_bits));
                self.acct.add_used(size);
            } else {
                b.set_tag(Tag::used_with(ts, self.used_bits));
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

    /// Frees a block (`efree`).
    ///
    /// # Safety
    /// `p` was returned by this heap and not freed since, and the heap has
    /// not been shut down since.
    #[inline]
    pub unsafe fn free(&mut self, p: *mut u8) {
        // SAFETY: caller's contract.
        unsafe {
            // Fast path: a used block of this request of at most
            // `MAX_CACHED_SIZE` bytes goes on its fastcache stack. A cached
            // block (double free) or one of an ended request fails the kind
            // check; with protection on, the tag after the block must still
            // mirror its own (an overflow changes it first). Failures go to
            // the slow path to be named.
            let b = Block::from_data_unchecked(p);
            let tag = b.tag();
            let index = self.cache.index_for(tag);
            if index < CACHE_BUCKETS && (!self.protect || b.plus(tag.size()).prev_tag() == tag) {
                self.cache.push(b, index, tag);
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
            if self.debug.on {
                return self.debug_free(p);
            }
            let l = self.live(p, "efree");
            self.free_live(l);
        }
    }

    /// Frees a block already checked by `used_block`, bypassing the
    /// fastcache; in a big heap a large block may rest on its class's stack.
    ///
    /// # Safety
    /// `b` is a live used block of this heap.
    pub(crate) unsafe fn free_block(&mut self, b: Block) {
        // SAFETY: caller's contract.
        unsafe {
            let tag = b.tag();
            let size = tag.size();
            let stacks = self.uses_large_stacks()
                && self.large.cached() + size <= self.acct.real_size / LARGE_SHARE;
            // The class only when the heap stacks: most heaps never do.
            if let Some(class) = stacks.then(|| large_cache::class_down(size)).flatten() {
                self.large.push(b, class, tag);
                return;
            }
            self.acct.sub_used(size);
            self.release(b, size);
        }
    }

    /// Coalesces a no-longer-used block with its free neighbours, then gives
    /// its segment back if it is now empty, or files it as free.
    ///
    /// # Safety
    /// `b` is a block of `size` bytes that nothing references any more.
    #[inline(always)]
    pub(crate) unsafe fn release(&mut self, mut b: Block, mut size: usize) {
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
    pub(crate) unsafe fn delete_segment(&mut self, seg: Segment) {
        // SAFETY: caller's contract.
        unsafe {
            let size = seg.size();
            self.segments.unlink(seg);
            self.acct.sub_real(size);
            self.give_back(seg, size);
        }
    }

    /// Keeps emptied segment `seg` as a spare, or gives it to the storage.
    ///
    /// # Safety
    /// `seg` is a live segment of `size` bytes in no list, holding no block.
    pub(crate) unsafe fn give_back(&mut self, seg: Segment, size: usize) {
        if crate::tool::active() {
            // Stale pointers into a spare segment must still be caught.
            // SAFETY: caller's contract.
            unsafe { crate::tool::protect_segment(seg, size) };
        }
        // Within a request, regular segments are kept up to half its real
        // peak: a request that frees its way out of many segments and
        // builds them again (strings.php) then maps and faults nothing
        // twice. They were in use a moment before, so the peak resident
        // set does not grow; the request end trims them to the budget.
        let regular = size == self.segment_size;
        let allowance = if regular { self.acct.real_peak / 2 } else { 0 };
        // SAFETY: caller's contract.
        if unsafe { self.spare.keep(self.storage, seg, regular, allowance) } {
            return;
        }
        // SAFETY: caller's contract; the segment came from this storage.
        unsafe { self.storage.free(seg.as_ptr(), size) };
    }

    /// Usable bytes of a live block (`_zend_mm_block_size`).
    ///
    /// # Safety
    /// `p` is a live block of this heap.
    pub unsafe fn block_size(&self, p: *mut u8) -> usize {
        // SAFETY: caller's contract.
        unsafe {
            if self.debug.on {
                return self.debug_block_size(p);
            }
            Heap::live_usable(self.live(p, "block size"))
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
            self.acct.size - self.cached()
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
        let cached = self.cached();
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
                            return t.is_used() && addr >= b.data() as usize;
                        }
                        b = b.next();
                    }
                }
                seg = seg.next();
            }
        }
        self.huge_blocks()
            .any(|(d, usable)| addr >= d as usize && addr < d as usize + usable)
    }

    /// Allocates the emergency reserve if it is missing.
    pub(crate) fn create_reserve(&mut self) {
        if self.reserve.is_null() {
            // Not rounded to a large class in a big heap: usage at a
            // request's start stays the same whatever the heap held before.
            let p = if self.debug.on {
                self.alloc(RESERVE_SIZE)
            } else {
                self.checked_true_size(RESERVE_SIZE)
                    .and_then(|ts| self.alloc_sized(ts))
            };
            if let Ok(p) = p {
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
        self.spare.release(self.storage);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::free_lists::bucket_index;

    /// A started heap with the default configuration (`mmap_anon`).
    fn started() -> Heap {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.start();
        h
    }

    #[test]
    fn small_bucket_is_the_bucket_of_the_true_size_up_to_the_largest_cached() {
        for size in 0..8192 {
            let ts = true_size(size).unwrap();
            let index = small_bucket(size);
            assert_eq!(index < NUM_BUCKETS, is_small(ts), "{size}");
            assert_eq!(index < CACHE_BUCKETS, ts <= MAX_CACHED_SIZE, "{size}");
            if ts <= MAX_CACHED_SIZE {
                assert_eq!(
                    (index, bucket_size(index)),
                    (bucket_index(ts), ts),
                    "{size}"
                );
            }
        }
        assert!(small_bucket(usize::MAX) >= CACHE_BUCKETS);
    }

    #[test]
    fn the_slot_is_the_bucket_plus_one_but_0_for_the_smallest_and_wrapping_sizes() {
        for size in 0..8192 {
            let want = if size <= SLOT0_SIZES {
                0
            } else {
                small_bucket(size) + 1
            };
            assert_eq!(small_slot(size), want, "{size}");
        }
        for size in usize::MAX - 16..=usize::MAX {
            let slot = small_slot(size);
            assert!(slot == 0 || slot > CACHE_BUCKETS, "{size}: {slot}");
        }
    }

    #[test]
    fn requests_of_slot_0_still_reuse_cached_blocks_of_bucket_0() {
        let mut h = started();
        let a = h.alloc(24).unwrap().as_ptr();
        // SAFETY: live, freed once: it goes on bucket 0's stack.
        unsafe { h.free(a) };
        let (hits, cached) = (h.cache.hits, h.cache.cached());
        assert_eq!(h.alloc_cached(8), ptr::null_mut(), "slot 0 is empty");
        assert_eq!(h.alloc(8).unwrap().as_ptr(), a, "the miss pops bucket 0");
        assert_eq!(
            (h.cache.hits, h.cache.cached()),
            (hits + 1, cached - MIN_SIZE)
        );
        let b = h.alloc(1).unwrap().as_ptr();
        assert_ne!(b, a);
        // SAFETY: both live, freed once.
        unsafe {
            h.free(b);
            h.free(a);
        }
        assert_eq!(h.alloc(0).unwrap().as_ptr(), a, "LIFO");
        assert_eq!(h.alloc(9).unwrap().as_ptr(), b, "the fast path, slot 1");
    }

    #[test]
    fn the_inline_pop_misses_while_switched_off_and_the_cache_keeps_its_blocks() {
        let mut h = started();
        let a = h.alloc(40).unwrap().as_ptr();
        // SAFETY: live, freed once; it goes on its cache stack.
        unsafe { h.free(a) };
        h.set_inline(false);
        assert!(h.alloc_inline(40).is_null(), "a routed heap's pop misses");
        assert_eq!(h.alloc_cached(40), a, "the block stayed cached");
        // SAFETY: live, freed once.
        unsafe { h.free(a) };
        h.set_inline(true);
        assert_eq!(h.alloc_inline(40), a);
        assert!(
            h.alloc_inline(4000).is_null(),
            "a cached size with an empty stack"
        );
        // SAFETY: live, freed once.
        unsafe { h.free(a) };
        h.shutdown(true, false);
    }

    #[test]
    fn a_dedicated_segment_resizes_a_spare_and_counts_its_own_size() {
        let mut h = started();
        let seg = h.segment_size();
        let base = h.usage(true);
        let a = h.alloc(2 * seg + 1000).unwrap().as_ptr();
        assert_eq!(h.usage(true), base + 3 * seg);
        // SAFETY: live, freed once.
        unsafe { h.free(a) };
        assert_eq!((h.usage(true), h.spare.count()), (base, 1));
        let b = h.alloc(4 * seg + 1000).unwrap().as_ptr();
        assert_eq!(h.spare.count(), 0, "the spare was resized");
        assert_eq!(h.usage(true), base + 5 * seg, "its new size, no more");
        // SAFETY: `b` has 4 * seg + 1000 usable bytes.
        unsafe {
            b.write_bytes(0x5A, 4 * seg + 1000);
            h.free(b);
        }
        let c = h.alloc(seg + 1000).unwrap().as_ptr();
        assert_eq!(h.usage(true), base + 2 * seg, "shrunk to the new size");
        // SAFETY: live, freed once.
        unsafe { h.free(c) };
        assert!(h.check().is_empty(), "{:?}", h.check());
        h.shutdown(true, false);
    }

    #[test]
    fn a_string_grown_by_appends_takes_regular_spares_and_gives_them_back() {
        let mut h = started();
        let seg = h.segment_size();
        // Two blocks filling a regular segment each; one freed: a spare.
        let n = seg - 4096;
        let a = h.alloc(n).unwrap().as_ptr();
        let b = h.alloc(n).unwrap().as_ptr();
        let base = h.usage(true);
        // SAFETY: `a` has `n` bytes; `b` is live, freed once.
        unsafe {
            a.write_bytes(0x61, n);
            h.free(b);
        }
        assert!(h.spare.has(seg, true), "a regular spare");
        // An append past the segment's end: `mremap` adds a segment, and
        // the spare's pages take its place.
        // SAFETY: `a` is live; each result has the size asked for.
        let a = unsafe { h.realloc(a, n + 6000).unwrap().as_ptr() };
        // Before Linux 6.17 the storage declines (`moves_whole`).
        let lent = crate::storage::moves_whole();
        assert_eq!(h.spare.count(), !lent as usize, "the spare was lent");
        assert_eq!(h.usage(true), base, "the segment grew by the spare's size");
        // The segment now spans two kernel mappings; it still grows (moved
        // whole, or copied), keeping every byte.
        // SAFETY: as above.
        let a = unsafe {
            a.add(n).write_bytes(0x62, 6000);
            let a = h.realloc(a, 3 * seg).unwrap().as_ptr();
            let got = (*a, *a.add(n - 1), *a.add(n), *a.add(n + 5999));
            assert_eq!(got, (0x61, 0x61, 0x62, 0x62));
            a.write_bytes(0x63, 3 * seg);
            h.free(a);
            a
        };
        // Freed, it is a spare of another size, all resident: a regular
        // segment is cut from it rather than mapped.
        let c = h.alloc(n).unwrap().as_ptr();
        let cut = c as usize;
        let old = (a as usize - 4096)..(a as usize + 4 * seg);
        assert!(
            !lent || old.contains(&cut),
            "the new segment lies in the old one"
        );
        // SAFETY: live, freed once.
        unsafe { h.free(c) };
        assert!(h.check().is_empty(), "{:?}", h.check());
        h.shutdown(true, false);
    }

    /// The end of the segment whose first block `p` is.
    fn segment_end(p: *mut u8) -> usize {
        let seg = Segment::of_first_block(Block::from_data_unchecked(p));
        // SAFETY: a live segment.
        seg.as_ptr() as usize + unsafe { seg.size() }
    }

    #[test]
    #[ignore = "boxes a segment in with the page after it: run alone (make rust-test runs it with --test-threads=1)"]
    fn a_segment_moved_for_appends_keeps_room_to_grow_and_one_that_doubles_does_not() {
        let mut h = started();
        let seg = h.segment_size();
        for (grow, room) in [(6000, true), (2 * seg, false)] {
            // A block that nearly fills a dedicated segment of 3 regular
            // ones: either growth passes the segment's end.
            let n = 3 * seg - 4096;
            let a = h.alloc(n).unwrap().as_ptr();
            let _after = crate::storage::PageAfter::map(segment_end(a) as *mut u8);
            // SAFETY: `a` is live with `n` bytes; the result has `n + grow`.
            let b = unsafe {
                a.write_bytes(0x41, n);
                h.realloc(a, n + grow).unwrap().as_ptr()
            };
            assert_ne!(a, b, "boxed in, it moved");
            let new_end = segment_end(b);
            let reserved = crate::reserve::take(new_end);
            assert_eq!(reserved > 0, room, "growth by {grow}");
            if room {
                // Put back, so the segment's free unmaps it (R1).
                assert_eq!(crate::reserve::put(new_end, reserved), None);
                // SAFETY: `b` is live with `n + grow` bytes.
                let c = unsafe { h.realloc(b, n + 2 * grow).unwrap().as_ptr() };
                assert_eq!(c, b, "the next append grows in place");
                // SAFETY: as above.
                assert_eq!(unsafe { (*c, *c.add(n - 1)) }, (0x41, 0x41));
            }
        }
        assert!(h.check().is_empty(), "{:?}", h.check());
        h.shutdown(true, false);
    }

    #[test]
    fn a_big_heap_maps_huge_page_segments_while_one_fits_under_the_limit() {
        let mut h = started();
        let seg = h.segment_size();
        // One 200 KB block per regular segment, up to the big heap's size.
        let mut grown = 0;
        while h.usage(true) < BIG_HEAP {
            let real = h.usage(true);
            h.alloc(200_000).unwrap();
            if h.usage(true) != real {
                assert_eq!(h.usage(true), real + seg, "a regular segment");
                grown += 1;
            }
        }
        let real = h.usage(true);
        let p = h.alloc(200_000).unwrap().as_ptr();
        assert_eq!(h.usage(true), real + BIG_SEGMENT, "a big segment");
        assert_eq!(
            p as usize & (BIG_SEGMENT - 1),
            SEGMENT_HEADER_SIZE + HEADER_SIZE
        );
        // Its other nine 200 KB blocks fit in it.
        for _ in 0..9 {
            h.alloc(200_000).unwrap();
        }
        assert_eq!(h.usage(true), real + BIG_SEGMENT);
        // A block too big for a regular segment takes a big one too, and
        // leaves its rest to the other blocks.
        let real = h.usage(true);
        let big = h.alloc(3 * seg).unwrap().as_ptr();
        assert_eq!(
            big as usize & (BIG_SEGMENT - 1),
            SEGMENT_HEADER_SIZE + HEADER_SIZE
        );
        let after = h.alloc(200_000).unwrap().as_ptr();
        assert_eq!(
            h.usage(true),
            real + BIG_SEGMENT,
            "one big segment for both"
        );
        assert_eq!(
            after as usize & !(BIG_SEGMENT - 1),
            big as usize & !(BIG_SEGMENT - 1)
        );
        // A big segment no longer fits under the limit: a regular one does.
        let real = h.usage(true);
        h.set_limit(real + BIG_SEGMENT - 1).unwrap();
        while h.usage(true) == real {
            h.alloc(200_000).unwrap();
        }
        assert_eq!(h.usage(true), real + seg);
        assert!(grown >= BIG_HEAP / seg - 1);
        assert!(h.check().is_empty(), "{:?}", h.check());
        h.shutdown(true, false);
    }

    /// A heap of `BIG_HEAP` bytes: one 200 KB block per regular segment.
    fn big(protect: bool) -> Heap {
        let mut h = Heap::with_config(Config {
            protect,
            ..Config::DEFAULT
        });
        h.start();
        // Below the threshold a freed large block is coalesced.
        let p = h.alloc(5000).unwrap().as_ptr();
        // SAFETY: live, freed once.
        unsafe { h.free(p) };
        assert_eq!(h.large.cached(), 0);
        while !h.is_big() {
            h.alloc(200_000).unwrap();
        }
        h
    }

    fn a_big_heap_stacks_large_blocks_by_class(protect: bool) {
        use crate::large_cache::class_size;
        let mut h = big(protect);
        // 5000 bytes round up to the second class, 5120 bytes.
        let p = h.alloc(5000).unwrap().as_ptr();
        // SAFETY: `p` is live.
        assert_eq!(unsafe { h.block_size(p) }, class_size(1) - HEADER_SIZE);
        let used = h.usage(false);
        // SAFETY: live, freed once.
        unsafe { h.free(p) };
        assert_eq!(h.large.cached(), class_size(1));
        assert_eq!(h.usage(false), used - class_size(1));
        assert!(
            // SAFETY: `p` rests on a stack, in a live segment.
            unsafe { Block::from_data_unchecked(p).tag() }.is_cached(),
            "a double free is named"
        );
        assert_eq!(h.stats().cached_bytes, class_size(1));
        assert_eq!(h.stats().cached_blocks, 1);
        assert!(h.check().is_empty(), "{:?}", h.check());
        // The validator checks that a stacked block's size is its class's (L1).
        let b = Block::from_data_unchecked(p);
        // SAFETY: `b` rests on a stack; its tag is put back below.
        let tag = unsafe { b.tag() };
        // SAFETY: as above.
        unsafe { b.set_tag_only(Tag::from_raw(tag.raw() + class_size(1))) };
        assert!(
            h.check().iter().any(|e| e.contains("on large stack 1")),
            "{:?}",
            h.check()
        );
        // SAFETY: as above.
        unsafe { b.set_tag_only(tag) };
        assert!(h.check().is_empty(), "{:?}", h.check());
        // Another class does not take it; any request of its class does.
        let other = h.alloc(9000).unwrap().as_ptr();
        assert_ne!(other, p);
        assert_eq!(h.alloc(4700).unwrap().as_ptr(), p);
        assert_eq!((h.large.cached(), h.usage(false)), (0, used + 9216));
        // The stacks hold at most 1/LARGE_SHARE of the heap; the blocks
        // freed past that are coalesced into the trie.
        let ps: Vec<*mut u8> = (0..40)
            .map(|_| h.alloc(100_000).unwrap().as_ptr())
            .collect();
        let free_large = h.stats().free_large_bytes;
        for q in ps {
            // SAFETY: live, freed once.
            unsafe { h.free(q) };
        }
        let cap = h.usage(true) / LARGE_SHARE;
        assert!(h.large.cached() <= cap && h.large.cached() + class_size(34) > cap);
        assert!(h.stats().free_large_bytes > free_large);
        assert!(h.check().is_empty(), "{:?}", h.check());
        // A flush empties them with the fastcache.
        let cached = h.cached();
        assert_eq!(h.gc(), cached);
        assert_eq!(h.large.cached(), 0);
        assert!(h.check().is_empty(), "{:?}", h.check());
        h.shutdown(true, false);
    }

    #[test]
    fn a_big_heap_stacks_large_blocks_by_class_with_protection() {
        a_big_heap_stacks_large_blocks_by_class(true);
    }

    #[test]
    fn a_big_heap_stacks_large_blocks_by_class_without_protection() {
        a_big_heap_stacks_large_blocks_by_class(false);
    }

    #[test]
    fn a_big_heap_reallocs_class_blocks_through_their_stacks() {
        use crate::large_cache::class_up;
        let mut h = big(true);
        let (_, class_ts) = class_up(crate::block::true_size(40_000).unwrap()).unwrap();
        let p = h.alloc(40_000).unwrap().as_ptr();
        // SAFETY: `p` is live with 40,000 bytes.
        unsafe { (0..100).for_each(|i| *p.add(i) = i as u8) };
        let (stacked, free_large) = (h.large.cached(), h.stats().free_large_bytes);
        // SAFETY: `p` is live.
        let q = unsafe { h.realloc(p, 100) }.unwrap().as_ptr();
        assert_ne!(q, p, "moved, not split");
        // SAFETY: `q` is live with 100 bytes.
        assert!((0..100).all(|i| unsafe { *q.add(i) } == i as u8));
        assert_eq!(h.large.cached(), stacked + class_ts, "on its class's stack");
        assert!(h.stats().free_large_bytes <= free_large, "no tail filed");
        assert!(h.check().is_empty(), "{:?}", h.check());
        // `q`'s successor is used: growing back to the class pops the stack
        // instead of searching the trie for room.
        let _next = h.alloc(100).unwrap();
        // A free block with room to grow twice over, which the trie finds.
        let room = h.alloc(200_000).unwrap().as_ptr();
        let _keep = h.alloc(200_000).unwrap();
        // SAFETY: live, freed once: past the classes, it is filed as free.
        unsafe { h.free(room) };
        assert!(h.stats().free_large_bytes >= 200_000);
        // SAFETY: `q` is live.
        let r = unsafe { h.realloc(q, 40_000) }.unwrap().as_ptr();
        assert_eq!((r, h.large.cached()), (p, stacked));
        // SAFETY: `r` is live with 40,000 bytes.
        assert!((0..100).all(|i| unsafe { *r.add(i) } == i as u8));
        // A shrink to more than half of it (and past the cache) splits.
        // SAFETY: `r` is live.
        assert_eq!(unsafe { h.realloc(r, 30_000) }.unwrap().as_ptr(), r);
        // With no room left under the limit, the move fails and the block
        // shrinks in place.
        h.set_limit(h.usage(true)).unwrap();
        while h.alloc(100).is_ok() {}
        let used = h.usage(false);
        // SAFETY: `r` is live.
        assert_eq!(unsafe { h.realloc(r, 100) }.unwrap().as_ptr(), r);
        assert!(h.usage(false) < used);
        assert!(h.check().is_empty(), "{:?}", h.check());
        h.shutdown(true, false);
    }

    #[test]
    fn blocks_up_to_the_largest_cached_size_are_cached_and_reused() {
        let mut h = started();
        let a = h.alloc(3000).unwrap().as_ptr();
        let b = h.alloc(MAX_CACHED_SIZE - HEADER_SIZE + 1).unwrap().as_ptr();
        let used = h.usage(false);
        // SAFETY: live blocks, each freed once.
        unsafe {
            h.free(a);
            assert_eq!(h.cache.cached(), 3008, "cached, still tagged used");
            assert_eq!(h.usage(false), used - 3008);
            h.free(b);
        }
        assert_eq!(h.cache.cached(), 3008, "one size past the cache: merged");
        assert_eq!(h.alloc(3000).unwrap().as_ptr(), a, "a pop");
        assert_eq!(h.cache.cached(), 0);
        // Its tag, which names a double free, says so.
        // SAFETY: `a` is live again.
        unsafe { h.free(a) };
        // SAFETY: `a` rests in the fastcache, in a live segment.
        assert!(unsafe { Block::from_data_unchecked(a).tag() }.is_cached());
        h.flush_cache();
        assert_eq!(h.cache.cached(), 0);
        assert!(h.check().is_empty(), "{:?}", h.check());
        h.shutdown(true, false);
    }
}
