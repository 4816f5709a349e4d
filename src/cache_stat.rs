//! PHP 5.3's `ZEND_MM_CACHE_STAT`: per-bucket fastcache counters and the
//! table printed at full shutdown (PHP wrote `zend_mm.log`; here the
//! `ZENDMM_CACHE_STAT` variable names the file).
//!
//! Counting stays off the heap's fast paths. A heap with the table switched
//! on sends `_emalloc`, `_efree` and `_erealloc` through the wrappers below
//! (the C layer routes it like a heap with custom handlers, behind the flag
//! it already tests), so a heap without it pays nothing. The wrappers watch
//! the cache from outside: a hit is a block from `alloc_cached`, a push is
//! `cached()` growing by one block, and when the byte total disagrees with
//! the counts (the cache was flushed: memory limit, `zend_mm_gc`, request
//! end) the stacks are counted again.

use crate::block::{true_size, HEADER_SIZE, MIN_SIZE};
use crate::cache::{CACHE_BUCKETS, MAX_CACHED_SIZE};
use crate::free_lists::{bucket_index, bucket_size, is_small, NUM_BUCKETS};
use crate::heap::Heap;
use crate::report::{MemError, StackBuf};
use core::fmt::Write;
use core::ptr::NonNull;

/// PHP's `zend_mm_cache_stat`, one per bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketStat {
    /// Blocks on the bucket's stack now.
    pub count: u64,
    /// The most there ever were (the table's `max_len`).
    pub max_count: u64,
    /// Allocations the stack served.
    pub hit: u64,
    /// Allocations of this size it could not serve.
    pub miss: u64,
}

/// The counters of one heap.
#[derive(Clone, Debug)]
pub struct CacheStat {
    buckets: [BucketStat; CACHE_BUCKETS],
    /// PHP's slot `[ZEND_MM_NUM_BUCKETS]`, searches past the cache. Hits:
    /// small requests a small free list or the victim served; misses:
    /// requests that went on to the large trie, the rest list or a new
    /// segment.
    past: BucketStat,
    /// Bytes the counts stand for (sum of count times bucket size).
    counted_bytes: usize,
    /// Something was counted since the table was last written.
    dirty: bool,
}

impl Default for CacheStat {
    fn default() -> CacheStat {
        CacheStat::new()
    }
}

/// The smallest and the largest request a small bucket serves.
fn request_range(index: usize) -> (usize, usize) {
    let max = bucket_size(index) - HEADER_SIZE;
    let min = if bucket_size(index) == MIN_SIZE {
        0
    } else {
        bucket_size(index - 1) - HEADER_SIZE + 1
    };
    (min, max)
}

impl CacheStat {
    pub const fn new() -> CacheStat {
        const ZERO: BucketStat = BucketStat {
            count: 0,
            max_count: 0,
            hit: 0,
            miss: 0,
        };
        CacheStat {
            buckets: [ZERO; CACHE_BUCKETS],
            past: ZERO,
            counted_bytes: 0,
            dirty: false,
        }
    }

    pub fn bucket(&self, index: usize) -> BucketStat {
        self.buckets[index]
    }

    /// The searches past the cache (see the field).
    pub fn past(&self) -> BucketStat {
        self.past
    }

    /// Counted anything since the last `reset`?
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Zeroes every counter (after the table was written).
    pub fn reset(&mut self) {
        *self = CacheStat::new();
    }

    /// `heap.alloc`, counted.
    pub fn alloc(&mut self, heap: &mut Heap, size: usize) -> Result<NonNull<u8>, MemError> {
        self.sync(heap);
        self.dirty = true;
        if let Some(p) = NonNull::new(heap.alloc_cached(size)) {
            self.popped(bucket_index(block_size_for(size)));
            return Ok(p);
        }
        let ts = block_size_for(size);
        if ts <= MAX_CACHED_SIZE {
            self.buckets[bucket_index(ts)].miss += 1;
        }
        if is_small(ts) {
            if heap.small_lists_serve(ts) {
                self.past.hit += 1;
            } else {
                self.past.miss += 1;
            }
        } else {
            self.past.miss += 1;
        }
        let r = heap.alloc_slow(size);
        self.settle(heap);
        r
    }

    /// `heap.free`, counted.
    ///
    /// # Safety
    /// As [`Heap::free`].
    pub unsafe fn free(&mut self, heap: &mut Heap, p: *mut u8) {
        self.sync(heap);
        self.dirty = true;
        // SAFETY: caller's contract.
        unsafe { heap.free(p) };
        self.settle(heap);
    }

    /// `heap.realloc2`, counted: taking a cached block for the new size is
    /// a hit, the old block going to the cache a push.
    ///
    /// # Safety
    /// As [`Heap::realloc2`].
    pub unsafe fn realloc(
        &mut self,
        heap: &mut Heap,
        p: *mut u8,
        size: usize,
        copy: usize,
    ) -> Result<NonNull<u8>, MemError> {
        self.sync(heap);
        self.dirty = true;
        let hits = heap.cache.hits;
        // SAFETY: caller's contract.
        let r = unsafe { heap.realloc2(p, size, copy) };
        // Either path that takes a cached block takes it from the bucket of
        // the new size.
        for _ in hits..heap.cache.hits {
            self.popped(bucket_index(block_size_for(size)));
        }
        self.settle(heap);
        r
    }

    fn popped(&mut self, index: usize) {
        let b = &mut self.buckets[index];
        b.hit += 1;
        if b.count > 0 {
            b.count -= 1;
            self.counted_bytes -= bucket_size(index);
        }
    }

    fn pushed(&mut self, index: usize) {
        let b = &mut self.buckets[index];
        b.count += 1;
        b.max_count = b.max_count.max(b.count);
        self.counted_bytes += bucket_size(index);
    }

    /// After an operation: the cache may have taken one block (a free, or
    /// the old block of a realloc); anything else means it was flushed.
    fn settle(&mut self, heap: &Heap) {
        let cached = heap.cache.cached();
        if cached > self.counted_bytes {
            let grew = cached - self.counted_bytes;
            if (MIN_SIZE..=MAX_CACHED_SIZE).contains(&grew)
                && bucket_size(bucket_index(grew)) == grew
            {
                self.pushed(bucket_index(grew));
            }
        }
        self.sync(heap);
    }

    /// Counts the stacks again when the byte total says the counts are off.
    fn sync(&mut self, heap: &Heap) {
        if heap.cache.cached() == self.counted_bytes {
            return;
        }
        self.counted_bytes = 0;
        for (i, b) in self.buckets.iter_mut().enumerate() {
            b.count = heap.cache.len(i) as u64;
            b.max_count = b.max_count.max(b.count);
            self.counted_bytes += b.count as usize * bucket_size(i);
        }
    }

    /// Writes PHP 5.3's table, preceded by a line naming the process and
    /// heap: `out` is called once per line.
    pub fn write_table(&self, pid: u32, heap_id: u64, out: &mut dyn FnMut(&[u8])) {
        let mut line = StackBuf::new();
        let _ = writeln!(
            line,
            "zendmm cache statistics, pid {pid}, heap {heap_id}\n\
             idx min_size max_size true_size  max_len     hits   misses"
        );
        out(line.as_bytes());
        // PHP's rows for the small sizes, then the larger ones up to the
        // last that saw any use.
        let rows = self
            .buckets
            .iter()
            .rposition(|b| *b != BucketStat::default())
            .map_or(0, |i| i + 1)
            .max(NUM_BUCKETS);
        let (mut hit, mut miss) = (0, 0);
        for (i, b) in self.buckets[..rows].iter().enumerate() {
            let (min, max) = request_range(i);
            let mut line = StackBuf::new();
            let _ = writeln!(
                line,
                "{i:2} {min:8} {max:8} {:9} {:8} {:8} {:8}",
                bucket_size(i),
                b.max_count,
                b.hit,
                b.miss
            );
            out(line.as_bytes());
            hit += b.hit;
            miss += b.miss;
        }
        let mut line = StackBuf::new();
        let _ = writeln!(
            line,
            "    {hit:8} {miss:8}\n    {:8} {:8}",
            self.past.hit, self.past.miss
        );
        out(line.as_bytes());
    }
}

/// The block size of a request, as the heap computes it (overflow: not small).
fn block_size_for(size: usize) -> usize {
    true_size(size).unwrap_or(usize::MAX)
}

impl Heap {
    /// Would the small free lists or the victim serve a block of `ts` bytes
    /// without a new segment?
    fn small_lists_serve(&self, ts: usize) -> bool {
        // SAFETY: the lists hold live free blocks (I3); the victim is a live
        // free block when not null.
        unsafe {
            if !self.lists.find_small(ts).is_null() {
                return true;
            }
            let dv = self.lists.dv();
            !dv.is_null() && dv.tag().size() >= ts
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn heap() -> Heap {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.start();
        h
    }

    #[test]
    fn request_ranges_cover_every_small_request() {
        assert_eq!(request_range(0), (0, 24));
        assert_eq!(request_range(1), (25, 40));
        assert_eq!(request_range(NUM_BUCKETS - 1).1, 1032);
        for size in 0..=1024 {
            let i = bucket_index(true_size(size).unwrap());
            let (min, max) = request_range(i);
            assert!(min <= size && size <= max, "{size} not in bucket {i}");
        }
    }

    #[test]
    fn hits_misses_and_stack_lengths_are_counted_per_bucket() {
        let mut h = heap();
        let mut s = CacheStat::new();
        let i = bucket_index(true_size(100).unwrap());
        let ps: Vec<_> = (0..5).map(|_| s.alloc(&mut h, 100).unwrap()).collect();
        assert_eq!(s.bucket(i).miss, 5);
        for p in &ps {
            // SAFETY: live blocks of `h`.
            unsafe { s.free(&mut h, p.as_ptr()) };
        }
        assert_eq!((s.bucket(i).count, s.bucket(i).max_count), (5, 5));
        for _ in 0..3 {
            s.alloc(&mut h, 100).unwrap();
        }
        let b = s.bucket(i);
        assert_eq!((b.count, b.max_count, b.hit, b.miss), (2, 5, 3, 5));
        // A large request never touches the cache: a miss past it.
        let misses_past = s.past().miss;
        s.alloc(&mut h, 5000).unwrap();
        assert_eq!(s.past().miss, misses_past + 1);
        assert!(s.is_dirty());
    }

    #[test]
    fn a_flush_is_noticed_and_the_stacks_recounted() {
        let mut h = heap();
        let mut s = CacheStat::new();
        let ps: Vec<_> = (0..4).map(|_| s.alloc(&mut h, 40).unwrap()).collect();
        for p in &ps {
            // SAFETY: live blocks of `h`.
            unsafe { s.free(&mut h, p.as_ptr()) };
        }
        let i = bucket_index(true_size(40).unwrap());
        assert_eq!(s.bucket(i).count, 4);
        h.gc();
        s.alloc(&mut h, 40).unwrap();
        let b = s.bucket(i);
        assert_eq!((b.count, b.max_count, b.hit), (0, 4, 0));
    }

    #[test]
    fn realloc_into_a_cached_block_is_a_hit_and_a_push() {
        let mut h = heap();
        let mut s = CacheStat::new();
        let a = s.alloc(&mut h, 200).unwrap();
        let b = s.alloc(&mut h, 40).unwrap();
        // SAFETY: live block of `h`.
        unsafe { s.free(&mut h, a.as_ptr()) };
        let (ia, ib) = (
            bucket_index(true_size(200).unwrap()),
            bucket_index(true_size(40).unwrap()),
        );
        // SAFETY: live block of `h`.
        let c = unsafe { s.realloc(&mut h, b.as_ptr(), 200, usize::MAX) }.unwrap();
        assert_eq!(c, a);
        assert_eq!((s.bucket(ia).hit, s.bucket(ia).count), (1, 0));
        assert_eq!(s.bucket(ib).count, 1);
    }

    /// The table `s` writes for pid 42, heap 0, a line each.
    fn table_lines(s: &CacheStat) -> Vec<String> {
        let mut text = Vec::new();
        s.write_table(42, 0, &mut |b| text.extend_from_slice(b));
        let text = String::from_utf8(text).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn the_table_is_phps() {
        let mut h = heap();
        let mut s = CacheStat::new();
        let p = s.alloc(&mut h, 10).unwrap();
        // SAFETY: live block of `h`.
        unsafe { s.free(&mut h, p.as_ptr()) };
        s.alloc(&mut h, 10).unwrap();
        let lines = table_lines(&s);
        assert_eq!(lines.len(), 2 + NUM_BUCKETS + 2);
        assert_eq!(lines[0], "zendmm cache statistics, pid 42, heap 0");
        assert_eq!(
            lines[1],
            "idx min_size max_size true_size  max_len     hits   misses"
        );
        assert_eq!(
            lines[2],
            " 0        0       24        32        1        1        1"
        );
        assert_eq!(
            lines[3],
            " 1       25       40        48        0        0        0"
        );
        assert_eq!(lines[2 + NUM_BUCKETS], "           1        1");
    }

    #[test]
    fn the_table_goes_on_to_the_last_larger_size_used() {
        let mut h = heap();
        let mut s = CacheStat::new();
        let p = s.alloc(&mut h, 3000).unwrap();
        // SAFETY: live block of `h`.
        unsafe { s.free(&mut h, p.as_ptr()) };
        assert_eq!(s.alloc(&mut h, 3000).unwrap(), p, "the cache served it");
        let i = bucket_index(true_size(3000).unwrap());
        assert!(i >= NUM_BUCKETS);
        assert_eq!(
            (s.bucket(i).hit, s.bucket(i).miss, s.bucket(i).max_count),
            (1, 1, 1)
        );
        let lines = table_lines(&s);
        assert_eq!(lines.len(), 2 + i + 1 + 2);
        assert_eq!(
            lines[2 + i],
            "186     2985     3000      3008        1        1        1"
        );
    }
}
