//! Emptying the fastcache into the free lists (`zend_mm_free_cache`).
//!
//! Two ways to the same heap. Block by block, each cached block is released
//! as `efree` would release it: coalesced with its free neighbours, filed,
//! its segment given back when it empties. That costs a few list operations
//! per cached block, at addresses in stack order.
//!
//! When the cache holds a large share of the heap (a request that just
//! freed a whole parse tree holds most of its heap there), the segments are
//! walked in address order instead: each run of neighbouring cached and free
//! blocks is merged and filed once, and a free block is unlinked only when
//! something merges into it. That costs a read of every block header, in
//! address order, which the prefetcher streams. On the `phpparser` trace a
//! flush of 22 MiB of cached blocks out of a 27 MiB heap is the case. A
//! heap bigger than the processor's caches is walked only for a cache of
//! several MiB (`walks`): reading all of it from memory costs more than
//! releasing a few MiB of blocks one by one.
//!
//! A big heap's large stacks (`large_cache.rs`) are emptied with the
//! fastcache, the same two ways.
//!
//! The walk finds cached blocks by `CACHED_BIT` in their tags, which the
//! stacks set with or without protection (`cache.rs`).

use crate::block::{Block, MIN_SIZE};
use crate::cache::{stack_next, CACHE_SIZE};
use crate::heap::Heap;
use crate::report::corrupted;
use crate::segment::Segment;

/// The walk is chosen when cached bytes are at least this fraction
/// (1/`WALK_SHARE`) of the segment bytes, and the heap is small enough to
/// stay in the processor's caches (`WALK_RESIDENT`) or the cache holds
/// `WALK_MIN` bytes or more (`walks`).
const WALK_SHARE: usize = 16;
/// A heap of up to this many segment bytes is walked from the processor's
/// caches (32 MiB of L3 here).
const WALK_RESIDENT: usize = 16 << 20;
/// Past `WALK_RESIDENT`, a walk streams every header from memory, while
/// block by block touches only the cached blocks and their neighbours:
/// cheaper until the cache itself holds this much.
const WALK_MIN: usize = 8 << 20;

/// Does a flush of `cached` bytes from a heap of `real` segment bytes walk?
/// On the `parsedown` replay the flush of 2.7 MB from a 20 MB heap took
/// 2.1-2.8 ms of its large allocations as a walk, 0.6-1.0 ms block by
/// block (fenced), and the replay 0.96x of its time. The `bench` replay
/// (a heap under 8 MB) ran 1.10x slower without its walks, `strings.php`
/// (8-22 MB cached in 60-76 MB) the same either way.
fn walks(cached: usize, real: usize) -> bool {
    cached >= real / WALK_SHARE && (real <= WALK_RESIDENT || cached >= WALK_MIN)
}

/// The flush floor rises to at most 1/`FLOOR_SHARE` of the segment bytes.
/// With a quarter, a heap that churns (the scale benchmark's 64 MiB heap)
/// kept up to 31 MB of blocks in the cache, between live ones, while it
/// mapped new segments: 162 MB resident against 142 MB with a sixteenth.
/// The traces never raise it that far.
const FLOOR_SHARE: usize = 16;

/// How far ahead of the walk its lines are fetched. On `strings.php` (17
/// walks of 58-74 MiB heaps per run, `rdtsc` around each, four
/// interleaved runs per distance) the walks took 115-135M cycles in all
/// with 256 bytes, 117-124M with 128, 124-160M with 512, 134-164M with
/// 1024 or 2048 and 152-166M with no prefetch: with 256 a walk reads
/// its heap about as fast as a plain loop reads as many bytes.
const WALK_AHEAD: usize = 256;

/// Up to this real size, a heap keeps its cache when it maps a dedicated
/// segment (`flushes_before_growth`). The `bench` trace's three
/// reallocations of a 135 KB block to 262,152 bytes each walked 1.9 MB of
/// cached blocks out of a 2.9 MB heap and gave back 1 MiB: without those
/// walks it replays at 7.22 instead of 7.39 ns/event (medians of 11
/// interleaved runs; ZendMM 8 7.26) with 661 faults instead of 738 and
/// 2.26 MiB of RSS added instead of 2.41. In bigger heaps those flushes are
/// the ones that give segments back: without them (sessions 19 and 22) the
/// scale benchmark's 64 MiB heap peaked at 148.5 MB resident instead of
/// 96.8, and `strings.php` ran 1.33 s instead of 1.27, as its later
/// flushes had more to merge. `strings.php` and `graph.php` never skip a
/// flush here; `cpu.php` skips 15, at the same time and resident set.
const KEEP_CACHE_HEAP: usize = 16 << 20;

/// A run of neighbouring cached and free blocks met by the walk.
struct Run {
    start: Block,
    size: usize,
    /// The run's first block, when it is free and nothing merged into it
    /// yet: still in its list, and left there if the run ends alone.
    lone_free: Block,
}

impl Heap {
    /// Empties the fastcache into the free lists, giving back segments that
    /// become empty. Unlike PHP 5.3 it also takes the flushed bytes off
    /// `size`, so usage stays the sum of live blocks.
    pub(crate) fn flush_cache(&mut self) {
        let cached = self.cached();
        if cached == 0 {
            return;
        }
        if walks(cached, self.acct.real_size) {
            // SAFETY: cached blocks are live used blocks of listed segments (I3).
            unsafe { self.flush_by_walk() }
        } else {
            self.flush_by_blocks();
        }
    }

    /// Does the heap flush its cache before it maps a segment for a block
    /// of true size `ts`? While the cache holds more than PHP 5.3's budget
    /// (or the floor an unproductive flush raised), its blocks are
    /// coalesced back first, except:
    /// - when a spare segment can serve: it is resident already, and
    ///   taking it leaves the cache as it is;
    /// - in a heap of up to `KEEP_CACHE_HEAP` bytes, for a block that needs
    ///   a dedicated segment. No merged block can hold it, so the flush
    ///   would only give segments back, to be faulted in again while the
    ///   cached blocks would have served the small requests that follow.
    pub(crate) fn flushes_before_growth(&self, ts: usize) -> bool {
        self.cache.cached() > self.flush_floor
            && !self.spare_for(ts)
            && !(self.acct.real_size <= KEEP_CACHE_HEAP && self.segment_size_for(ts).1)
    }

    /// The flush `alloc_block` makes before the heap grows, while the
    /// cache holds more than `flush_floor`. The floor starts at PHP 5.3's
    /// budget (`CACHE_SIZE`). A flush that gives no segment back may still
    /// pay off, when the request then fits in a merged block
    /// (`flush_paid_off`); if not, the cached blocks sat among live ones,
    /// and the floor doubles (up to 1/`FLOOR_SHARE` of the segment bytes)
    /// so the next such walk waits for the cache to grow. On the
    /// `phpparser` trace this takes the allocator from 362M to 353M
    /// instructions; the resident set stays within 0.1 MiB.
    pub(crate) fn flush_before_growth(&mut self) {
        let real = self.acct.real_size;
        self.flush_cache();
        self.flush_floor = if self.acct.real_size < real {
            CACHE_SIZE
        } else {
            (self.flush_floor * 2)
                .min(real / FLOOR_SHARE)
                .max(CACHE_SIZE)
        };
    }

    /// After a flush before growth, the request was served from the lists.
    pub(crate) fn flush_paid_off(&mut self) {
        self.flush_floor = CACHE_SIZE;
    }

    /// Empties the fastcache and the large stacks; each stack's head with
    /// the key its links are XORed with.
    fn take_stacks(&mut self) -> impl Iterator<Item = (Block, usize)> {
        let (small_key, large_key) = (self.cache.secret(), self.large.secret());
        let small = self
            .cache
            .take_all()
            .into_iter()
            .map(move |b| (b, small_key));
        small.chain(
            self.large
                .take_all()
                .into_iter()
                .map(move |b| (b, large_key)),
        )
    }

    fn flush_by_blocks(&mut self) {
        for (mut b, key) in self.take_stacks() {
            while !b.is_null() {
                // SAFETY: cached blocks are live used blocks owned by the cache (I3).
                unsafe {
                    let next = stack_next(b, key);
                    let size = b.tag().size();
                    self.acct.sub_used(size);
                    self.release(b, size);
                    b = next;
                }
            }
        }
    }

    /// # Safety
    /// The cache's blocks are live used blocks of this heap's segments.
    unsafe fn flush_by_walk(&mut self) {
        // Cached blocks carry `CACHED_BIT`: the walk finds them by their tags.
        self.clear_stacks();
        let mut seg = self.segments.head();
        let mut left = self.segments.count();
        let mut flushed = 0;
        while !seg.is_null() && left > 0 {
            left -= 1;
            // SAFETY: listed segments are live; `next` is read before the
            // segment may be given back.
            unsafe {
                let next = seg.next();
                flushed += self.merge_runs(seg);
                seg = next;
            }
        }
        self.acct.sub_used(flushed);
    }

    /// Merges and files every run of `seg` that holds a cached block;
    /// returns the cached bytes freed.
    ///
    /// # Safety
    /// `seg` is a live segment of this heap whose cached blocks carry
    /// `CACHED_BIT` and are on no stack any more.
    unsafe fn merge_runs(&mut self, seg: Segment) -> usize {
        // SAFETY: caller's contract; each step is checked to stay before the
        // guard and to agree with the next header's mirror (I1, I4).
        unsafe {
            let first = seg.first_block();
            let guard = seg.guard();
            let mut run: Option<Run> = None;
            let mut flushed = 0;
            let mut b = first;
            while b != guard {
                // Each step's address comes from the header before: a chain
                // of loads, which waits less for lines fetched ahead.
                #[cfg(target_arch = "x86_64")]
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    b.as_ptr().wrapping_add(WALK_AHEAD).cast(),
                );
                let tag = b.tag();
                let size = tag.size();
                if size < MIN_SIZE || size > guard.addr() - b.addr() {
                    corrupted(
                        "heap walk: a block's size tag leaves its segment",
                        b.data(),
                        size,
                    );
                }
                let next = b.plus(size);
                let joins = tag.is_cached() || tag.is_free();
                if joins && next.prev_tag() != tag.uncached() {
                    corrupted(
                        "boundary tags of neighbouring blocks disagree",
                        b.data(),
                        size,
                    );
                }
                if tag.is_cached() {
                    flushed += size;
                }
                run = match (run, joins) {
                    (None, true) if tag.is_free() => Some(Run {
                        start: b,
                        size,
                        lone_free: b,
                    }),
                    (None, true) => Some(Run {
                        start: b,
                        size,
                        lone_free: Block::NULL,
                    }),
                    (Some(mut r), true) => {
                        if !r.lone_free.is_null() {
                            self.lists.remove(r.lone_free);
                            r.lone_free = Block::NULL;
                        }
                        if tag.is_free() {
                            self.lists.remove(b);
                        }
                        r.size += size;
                        Some(r)
                    }
                    (Some(r), false) => {
                        self.file_run(seg, r, first, guard);
                        None
                    }
                    (None, false) => None,
                };
                b = next;
            }
            if let Some(r) = run {
                self.file_run(seg, r, first, guard);
            }
            flushed
        }
    }

    /// Files a merged run, or gives the segment back when the run is all of it.
    ///
    /// # Safety
    /// `r` lies in `seg` between `first` and `guard`, its blocks in no list.
    unsafe fn file_run(&mut self, seg: Segment, r: Run, first: Block, guard: Block) {
        if !r.lone_free.is_null() {
            return;
        }
        // SAFETY: caller's contract.
        unsafe {
            if r.start == first && r.start.plus(r.size) == guard {
                self.delete_segment(seg);
            } else {
                self.lists.add(r.start, r.size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::block::{true_size, Block};
    use crate::config::RESERVE_SIZE;
    use crate::heap::Heap;
    use crate::Config;

    /// Each segment's blocks as (offset, size, free), in list order.
    fn layout(h: &Heap) -> Vec<Vec<(usize, usize, bool)>> {
        let mut out = Vec::new();
        let mut seg = h.segments.head();
        for _ in 0..h.segments.count() {
            let mut blocks = Vec::new();
            // SAFETY: listed segments are live; sizes were checked by `validate`.
            unsafe {
                let base = seg.as_ptr() as usize;
                let guard = seg.guard();
                let mut b: Block = seg.first_block();
                while b != guard {
                    let t = b.tag();
                    blocks.push((b.addr() - base, t.size(), t.is_free()));
                    b = b.plus(t.size());
                }
                seg = seg.next();
            }
            out.push(blocks);
        }
        out
    }

    /// The same heap, built by the same seeded steps: live, cached and free
    /// blocks of many sizes side by side over several segments, one emptied.
    fn build(protect: bool) -> (Heap, Vec<*mut u8>) {
        let mut h = Heap::with_config(Config {
            storage: &crate::storage::Malloc,
            segment_size: 64 << 10,
            protect,
            ..Config::DEFAULT
        });
        h.start();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as usize
        };
        let mut ps: Vec<*mut u8> = (0..6000)
            .map(|i| {
                let n = if i % 50 == 0 {
                    900 + rnd() % 3000
                } else {
                    rnd() % 700
                };
                h.alloc(n).unwrap().as_ptr()
            })
            .collect();
        // Frees both to the cache (small) and to the lists (large); a run
        // of 2,000 in a row empties whole segments.
        let mut live = Vec::new();
        for (i, p) in ps.drain(..).enumerate() {
            if (2000..4000).contains(&i) || rnd() % 3 != 0 {
                // SAFETY: live, freed once.
                unsafe { h.free(p) };
            } else {
                live.push(p);
            }
        }
        (h, live)
    }

    fn walk_and_blocks_agree(protect: bool) {
        let (mut a, live_a) = build(protect);
        let (mut b, live_b) = build(protect);
        assert!(a.cache.cached() > 100_000, "{}", a.cache.cached());
        assert_eq!(layout(&a), layout(&b));
        let segments = a.segment_count();
        // SAFETY: the cache holds live used blocks of `a` (I3).
        unsafe { a.flush_by_walk() };
        b.flush_by_blocks();
        for h in [&a, &b] {
            h.validate().unwrap();
            assert_eq!(h.cache.cached(), 0);
        }
        assert_eq!(layout(&a), layout(&b));
        assert_eq!(a.usage(false), b.usage(false));
        assert_eq!(a.usage(true), b.usage(true));
        assert!(
            a.segment_count() < segments,
            "emptied segments were given back"
        );
        for (h, live) in [(&mut a, live_a), (&mut b, live_b)] {
            for p in live {
                // SAFETY: live, freed once.
                unsafe { h.free(p) };
            }
            h.flush_cache();
            h.validate().unwrap();
            assert_eq!(
                h.usage(false),
                true_size(RESERVE_SIZE).unwrap(),
                "only the reserve"
            );
        }
    }

    #[test]
    fn a_big_heap_walks_only_for_a_big_cache() {
        use super::walks;
        const MIB: usize = 1 << 20;
        assert!(walks(MIB, 16 * MIB), "a sixteenth of a heap in the caches");
        assert!(!walks(MIB - 16, 16 * MIB), "less than a sixteenth");
        assert!(!walks(2 * MIB, 20 * MIB), "parsedown's second flush");
        assert!(!walks(8 * MIB - 16, 20 * MIB));
        assert!(walks(8 * MIB, 20 * MIB));
        assert!(walks(22 * MIB, 27 * MIB), "phpparser's flush");
        assert!(!walks(8 * MIB, 200 * MIB), "less than a sixteenth");
    }

    #[test]
    fn the_walk_leaves_the_heap_the_block_by_block_flush_leaves() {
        walk_and_blocks_agree(true);
    }

    #[test]
    fn walk_and_blocks_agree_without_protection() {
        walk_and_blocks_agree(false);
    }

    /// Every other block freed: the cache holds 4.5 MB in holes of 112
    /// bytes between live blocks of a 9 MB heap, and no free block takes
    /// 250 KB (the last segment has 205 KB left). All the blocks are
    /// returned; the odd ones are live.
    fn cache_between_live_blocks() -> (Heap, Vec<*mut u8>) {
        let mut h = Heap::with_config(Config {
            storage: &crate::storage::Malloc,
            ..Config::DEFAULT
        });
        h.start();
        let ps: Vec<*mut u8> = (0..80_000)
            .map(|_| h.alloc(100).unwrap().as_ptr())
            .collect();
        for p in ps.iter().step_by(2) {
            // SAFETY: each pointer is live and freed once.
            unsafe { h.free(*p) };
        }
        (h, ps)
    }

    #[test]
    fn a_flush_that_frees_nothing_usable_raises_the_floor_until_one_does() {
        use crate::cache::CACHE_SIZE;
        let (mut h, ps) = cache_between_live_blocks();
        assert!(h.cache.cached() > CACHE_SIZE);
        let big = h.alloc(250_000).unwrap().as_ptr();
        assert_eq!(h.cache.cached(), 0, "flushed before growing");
        assert_eq!(h.flush_floor, 2 * CACHE_SIZE, "but it paid off nowhere");
        // 336 KB cached again: under the raised floor, no flush.
        for p in ps.iter().skip(1).step_by(2).take(3000) {
            // SAFETY: as above.
            unsafe { h.free(*p) };
        }
        h.alloc(250_000).unwrap();
        assert!(h.cache.cached() > CACHE_SIZE);
        // Freeing the rest empties whole segments: the next flush gives
        // them back, which resets the floor.
        for p in ps.iter().skip(1).step_by(2).skip(3000) {
            // SAFETY: as above.
            unsafe { h.free(*p) };
        }
        // SAFETY: live.
        unsafe { h.free(big) };
        // `big`'s emptied segment is a spare: taking it flushes nothing.
        h.alloc(250_000).unwrap();
        assert!(h.cache.cached() > CACHE_SIZE);
        h.alloc(250_000).unwrap();
        assert_eq!(h.cache.cached(), 0);
        assert_eq!(h.flush_floor, CACHE_SIZE);
        assert!(h.check().is_empty(), "{:?}", h.check());
    }

    #[test]
    fn the_floor_rises_to_a_sixteenth_of_the_segments_at_most() {
        let (mut h, _) = cache_between_live_blocks();
        // A floor already high, then a flush that frees no segment.
        h.flush_floor = usize::MAX / 4;
        let real = h.acct.real_size;
        h.flush_before_growth();
        assert_eq!(h.acct.real_size, real, "no segment was emptied");
        assert!(real / 16 > crate::cache::CACHE_SIZE);
        assert_eq!(h.flush_floor, real / 16);
    }

    #[test]
    fn no_flush_before_growth_while_a_spare_segment_can_serve() {
        use crate::cache::CACHE_SIZE;
        let mut h = Heap::with_config(Config {
            storage: &crate::storage::Malloc,
            ..Config::DEFAULT
        });
        h.start();
        // Three segments' worth of 200-byte blocks; freeing from the end,
        // 100 at a time, until one segment empties into a spare.
        let mut ps: Vec<*mut u8> = (0..3_800).map(|_| h.alloc(200).unwrap().as_ptr()).collect();
        let segments = h.segment_count();
        while h.segment_count() == segments {
            for p in ps.split_off(ps.len() - 100) {
                // SAFETY: each pointer is live and freed once.
                unsafe { h.free(p) };
            }
            h.gc();
        }
        assert_eq!(h.spare.count(), 1);
        // 291 KB cached among live blocks, over PHP 5.3's budget.
        for p in ps.iter().take(1_400) {
            // SAFETY: as above.
            unsafe { h.free(*p) };
        }
        assert!(h.cache.cached() > CACHE_SIZE);
        let cached = h.cache.cached();
        let real = h.usage(true);
        h.alloc(200_000).unwrap();
        assert_eq!(h.cache.cached(), cached, "the spare served, no flush");
        assert_eq!(h.spare.count(), 0);
        assert_eq!(h.usage(true), real + h.segment_size());
        // No spare left: the next growth flushes first.
        h.alloc(200_000).unwrap();
        assert_eq!(h.cache.cached(), 0);
        assert!(h.check().is_empty(), "{:?}", h.check());
    }

    #[test]
    fn a_heap_of_up_to_16_mib_keeps_its_cache_for_a_dedicated_segment() {
        use crate::cache::CACHE_SIZE;
        for (blocks, keeps) in [(3_000, true), (90_000, false)] {
            let mut h = Heap::with_config(Config {
                storage: &crate::storage::Malloc,
                ..Config::DEFAULT
            });
            h.start();
            let ps: Vec<*mut u8> = (0..blocks)
                .map(|_| h.alloc(200).unwrap().as_ptr())
                .collect();
            for p in ps.iter().step_by(2) {
                // SAFETY: each pointer is live and freed once.
                unsafe { h.free(*p) };
            }
            let cached = h.cache.cached();
            assert!(cached > CACHE_SIZE);
            assert_eq!(h.usage(true) > super::KEEP_CACHE_HEAP, !keeps);
            // Too big for a regular segment: no merged block could hold it.
            h.alloc(300_000).unwrap();
            if keeps {
                assert_eq!(h.cache.cached(), cached, "{blocks} blocks: no flush");
                // A block a regular segment holds may come from a merge.
                h.alloc(200_000).unwrap();
            }
            assert_eq!(h.cache.cached(), 0, "{blocks} blocks: flushed");
            assert!(h.check().is_empty(), "{:?}", h.check());
        }
    }
}
