//! The fastcache: recently freed small blocks kept, still tagged used, on one
//! LIFO stack per size, so the next request for that size is a pop.
//!
//! A cached block's first data word is its stack link, XORed with the heap's
//! secret; its second is a check word derived from its address and the
//! secret (PHP 8.4's shadow pointer, in spirit). A pop verifies the check
//! word before following the link, so a write into a freed block is caught;
//! a free finding the check word already in place looks the block up on its
//! stack and reports a double free (glibc's tcache key works this way).
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
    /// Bytes the cache may hold: `CACHE_SIZE`, or 0 when it is switched off
    /// (debug modes and tools want every free on the slow path).
    budget: usize,
    secret: usize,
    pub hits: u64,
    /// Counted by the heap's slow path (small requests the cache missed).
    pub misses: u64,
}

impl FastCache {
    pub const fn new() -> FastCache {
        FastCache {
            heads: [Block::NULL; NUM_BUCKETS],
            cached: 0,
            budget: CACHE_SIZE,
            secret: 0,
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
        self.cached < self.budget
    }

    /// Switches the cache on or off; it must be empty.
    pub fn set_enabled(&mut self, on: bool) {
        self.budget = if on { CACHE_SIZE } else { 0 };
    }

    /// The key links are XORed with. Only changed while the cache is empty
    /// or through `rekey`.
    pub fn set_secret(&mut self, secret: usize) {
        self.secret = secret;
    }

    /// The check word a cached block `b` carries.
    #[inline(always)]
    pub fn check_word(&self, b: Block) -> usize {
        b.addr().rotate_left(29) ^ self.secret ^ 0x5a5a_0f0f_c3c3_9696
    }

    /// Pops a block of bucket `index`, or null.
    ///
    /// # Safety
    /// Cached blocks are live used blocks (I3); `index < NUM_BUCKETS`.
    #[inline(always)]
    pub unsafe fn pop(&mut self, index: usize, size: usize) -> Block {
        let b = self.heads[index & (NUM_BUCKETS - 1)];
        if !b.is_null() {
            // SAFETY: caller's contract; the link is checked as it is decoded.
            unsafe {
                if b.mark_word() != self.check_word(b) {
                    overwritten(b);
                }
                self.heads[index & (NUM_BUCKETS - 1)] = b.prev_free(self.secret);
                b.set_mark_word(0);
            }
            self.cached -= size;
            self.hits += 1;
        }
        b
    }

    /// # Safety
    /// `b` is a used block of `size` bytes in bucket `index`, on no stack.
    #[inline(always)]
    pub unsafe fn push(&mut self, b: Block, index: usize, size: usize) {
        let slot = self.heads[index & (NUM_BUCKETS - 1)];
        // SAFETY: caller's contract; link and check word live in `b`'s data.
        unsafe {
            b.set_prev_free(slot, self.secret);
            b.set_mark_word(self.check_word(b));
        }
        self.heads[index & (NUM_BUCKETS - 1)] = b;
        self.cached += size;
    }

    /// Is `b` (a used block of bucket `index`) on its stack? For the double
    /// free check, after the cheap check word matched.
    ///
    /// # Safety
    /// Cached blocks are live used blocks (I3).
    #[cold]
    pub unsafe fn holds(&self, b: Block, index: usize) -> bool {
        let mut c = self.heads[index & (NUM_BUCKETS - 1)];
        while !c.is_null() {
            if c == b {
                return true;
            }
            // SAFETY: caller's contract.
            c = unsafe { self.next_in_stack(c) };
        }
        false
    }

    /// The block below `b` on its stack (or null).
    ///
    /// # Safety
    /// `b` is a cached block, or one just taken off with `take_all`.
    #[inline]
    pub unsafe fn next_in_stack(&self, b: Block) -> Block {
        // SAFETY: caller's contract; the link is checked as it is decoded.
        unsafe { b.prev_free(self.secret) }
    }

    /// Re-encodes every cached block's link and check word for `new` secret.
    pub fn rekey(&mut self, new: usize) {
        for i in 0..NUM_BUCKETS {
            let mut b = self.heads[i];
            while !b.is_null() {
                // SAFETY: cached blocks are live used blocks (I3).
                unsafe {
                    let next = self.next_in_stack(b);
                    b.set_prev_free(next, new);
                    b.set_mark_word(b.addr().rotate_left(29) ^ new ^ 0x5a5a_0f0f_c3c3_9696);
                    b = next;
                }
            }
        }
        self.secret = new;
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

/// A cached block's check word changed: something wrote into it after it
/// was freed.
#[cold]
#[inline(never)]
fn overwritten(b: Block) -> ! {
    // SAFETY: cached blocks are used blocks with a readable tag (I3).
    let size = unsafe { b.tag().size() };
    crate::report::corrupted(
        "freed block written to while in the fastcache (use after free)",
        b.data(),
        size,
    )
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
