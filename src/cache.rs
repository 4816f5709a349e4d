//! The fastcache: recently freed small blocks kept, still tagged used, on one
//! LIFO stack per size, so the next request for that size is a pop.
//!
//! Cached blocks are not coalesced and stay counted in `Accounting::size`;
//! `usage` subtracts `cached`. The cache holds at most `CACHE_SIZE` bytes and
//! is flushed into the free lists when the memory limit or the storage would
//! otherwise fail (PHP's `zend_mm_free_cache`).

use crate::block::Block;
use crate::free_lists::NUM_BUCKETS;

/// Bytes the cache may hold (`ZEND_MM_CACHE_SIZE`, 256 KiB on 64-bit).
pub const CACHE_SIZE: usize = NUM_BUCKETS * 4 * 1024;

#[derive(Debug)]
pub struct FastCache {
    heads: [Block; NUM_BUCKETS],
    cached: usize,
    pub hits: u64,
    /// Counted by the heap's slow path (small requests the cache missed).
    pub misses: u64,
}

impl FastCache {
    pub const fn new() -> FastCache {
        FastCache {
            heads: [Block::NULL; NUM_BUCKETS],
            cached: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// Bytes held.
    #[inline(always)]
    pub fn cached(&self) -> usize {
        self.cached
    }

    #[inline(always)]
    pub fn has_room(&self) -> bool {
        self.cached < CACHE_SIZE
    }

    /// Pops a block of bucket `index`, or null.
    ///
    /// # Safety
    /// Cached blocks are live used blocks (I3); `index < NUM_BUCKETS`.
    #[inline(always)]
    pub unsafe fn pop(&mut self, index: usize, size: usize) -> Block {
        let slot = &mut self.heads[index & (NUM_BUCKETS - 1)];
        let b = *slot;
        if !b.is_null() {
            // SAFETY: caller's contract.
            *slot = unsafe { b.prev_free() };
            self.cached -= size;
            self.hits += 1;
        }
        b
    }

    /// # Safety
    /// `b` is a used block of `size` bytes in bucket `index`, on no stack.
    #[inline(always)]
    pub unsafe fn push(&mut self, b: Block, index: usize, size: usize) {
        let slot = &mut self.heads[index & (NUM_BUCKETS - 1)];
        // SAFETY: caller's contract; the link lives in `b`'s data.
        unsafe { b.set_prev_free(*slot) };
        *slot = b;
        self.cached += size;
    }

    /// Empties the cache and hands back its stacks for the caller to free.
    pub fn take_all(&mut self) -> [Block; NUM_BUCKETS] {
        let heads = self.heads;
        self.heads = [Block::NULL; NUM_BUCKETS];
        self.cached = 0;
        heads
    }

    /// Forgets everything (the segments are being released).
    pub fn clear(&mut self) {
        self.heads = [Block::NULL; NUM_BUCKETS];
        self.cached = 0;
    }

    /// The stack of bucket `index`, for the validator and statistics.
    pub fn head(&self, index: usize) -> Block {
        self.heads[index]
    }
}

/// Read-only views for statistics, kept apart from the push/pop paths.
impl FastCache {
    /// Blocks on the stack of bucket `index` (a walk of that stack).
    pub fn len(&self, index: usize) -> usize {
        let mut n = 0;
        let mut b = self.heads[index];
        while !b.is_null() {
            n += 1;
            // SAFETY: cached blocks are live used blocks (I3).
            b = unsafe { b.prev_free() };
        }
        n
    }
}

impl Default for FastCache {
    fn default() -> FastCache {
        FastCache::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Tag;

    #[test]
    fn stacks_are_lifo_per_bucket_and_count_bytes() {
        let mut mem = vec![0usize; 64];
        let base = mem.as_mut_ptr().cast::<u8>();
        let mut c = FastCache::new();
        // SAFETY: three 32/40-byte blocks laid out inside `mem`.
        unsafe {
            let (a, b, d) = (
                Block::at(base, 0),
                Block::at(base, 64),
                Block::at(base, 128),
            );
            for x in [a, b, d] {
                x.set_tag_only(Tag::used(32));
            }
            c.push(a, 0, 32);
            c.push(b, 0, 32);
            c.push(d, 1, 40);
            assert_eq!(c.cached(), 104);
            assert_eq!(c.pop(0, 32), b);
            assert_eq!(c.pop(0, 32), a);
            assert!(c.pop(0, 32).is_null());
            assert_eq!((c.hits, c.cached()), (2, 40));
            let heads = c.take_all();
            assert_eq!(heads[1], d);
            assert_eq!(c.cached(), 0);
        }
    }

    #[test]
    fn room_ends_at_the_budget() {
        let mut c = FastCache::new();
        let mut mem = vec![0usize; 8];
        // SAFETY: one block inside `mem`, pushed with a fake size to reach the budget.
        unsafe { c.push(Block::at(mem.as_mut_ptr().cast(), 0), 0, CACHE_SIZE) };
        assert!(!c.has_room());
    }
}
