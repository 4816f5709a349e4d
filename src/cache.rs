//! The fastcache: recently freed blocks of up to `MAX_CACHED_SIZE` bytes
//! kept, still tagged used, on one LIFO stack per size, so the next request
//! for that size is a pop. It reaches past the small sizes (up to 1040
//! bytes) into the large ones, as ZendMM 8's bins reach 3 KiB: a program's
//! 1-4 KiB temporaries are then reused hot instead of being merged into,
//! and searched for in, the large trie.
//!
//! A cached block carries `CACHED_BIT` in its own tag (not in the mirror in
//! the next block's `prev`), so freeing it again fails `efree`'s tag check
//! and is reported as a double free, and a flush finds it by its tag
//! (`flush.rs`). Its first data word is its stack link; with protection on
//! (`Heap::protect`) the link is XORed with the heap's secret and checked
//! when decoded, so a forged or overwritten link is reported instead of
//! followed.
//!
//! The mark is set with protection off too. Session 18 measured the
//! alternative, a flush walk that first follows every stack to mark its
//! blocks: with 8-21 MiB cached that chase of dependent loads took
//! `strings.php`'s 17 walks from 115-170M cycles to 565-650M, and the
//! `phpparser` replay's 7 walks from 11-13M to 91-100M (20.7 against 14.6
//! ns/event). The mark costs `efree` and the pop a store to the header
//! line they load anyway.
//!
//! Cached blocks are not coalesced and stay counted in `Accounting::size`;
//! `usage` subtracts `cached`. Unlike PHP 5.3's cache (at most
//! `CACHE_SIZE` bytes), it has no limit of its own, as ZendMM 8's bins
//! have none: the heap flushes it into the free lists before it maps new
//! memory (a spare segment is not new memory: taking one flushes nothing)
//! while the cache holds more than `CACHE_SIZE` (so cached blocks of
//! other sizes are coalesced and reused first, and the resident set does
//! not grow for them), and when the memory limit or the storage would
//! otherwise fail (PHP's `zend_mm_free_cache`). With 256 KiB most frees of
//! a heap of tens of MiB went to the free lists at once, to be split again
//! at the next allocation of their size.

use crate::block::{Block, Tag, CACHED_BIT, MIN_SIZE, NO_KIND};
use crate::free_lists::{bucket_size, NUM_BUCKETS};

/// Stacks in the cache, one per true size from `MIN_SIZE` up in steps of
/// `ALIGNMENT`: the first `NUM_BUCKETS` are the small sizes. A power of
/// two, so that masking an index proves it in bounds.
pub const CACHE_BUCKETS: usize = 4 * NUM_BUCKETS;
/// The largest true size the cache holds (4112 bytes).
pub const MAX_CACHED_SIZE: usize = bucket_size(CACHE_BUCKETS - 1);

/// PHP 5.3's cache budget (`ZEND_MM_CACHE_SIZE`, 256 KiB on 64-bit): here
/// the most the cache keeps while new memory is mapped.
pub const CACHE_SIZE: usize = NUM_BUCKETS * 4 * 1024;

/// `FastCache::bias` for a cache `enabled` or not in a heap whose used
/// tags carry `used_bits`.
const fn bias_for(enabled: bool, used_bits: usize) -> u32 {
    let kind = if enabled { used_bits } else { NO_KIND };
    (kind + MIN_SIZE) as u32
}

#[derive(Debug)]
pub struct FastCache {
    /// The stack of bucket `i` in slot `i + 1`; slot 0 stays empty, so a
    /// request whose rounding lands there (`Heap::alloc_inline`) misses
    /// without a test of its own.
    slots: [Block; CACHE_BUCKETS + 1],
    cached: usize,
    /// Off in debug mode (`ZEND_MM_DEBUG`), which wants every free on the
    /// slow path.
    enabled: bool,
    /// What `efree` subtracts from a tag (`Tag::small_index`): the heap's
    /// used bits plus `MIN_SIZE`, or, switched off, a kind no tag has, so
    /// one test covers the block's kind, its size and the switch.
    bias: u32,
    secret: usize,
    pub hits: u64,
    /// Counted by the heap's slow path (requests of a cached size the
    /// cache missed).
    pub misses: u64,
}

impl FastCache {
    /// A cache holding blocks only when `enabled`.
    pub const fn configured(enabled: bool) -> FastCache {
        let mut c = FastCache::new();
        c.enabled = enabled;
        c.bias = bias_for(enabled, Tag::used(0).raw());
        c
    }

    pub const fn new() -> FastCache {
        FastCache {
            slots: [Block::NULL; CACHE_BUCKETS + 1],
            cached: 0,
            enabled: true,
            bias: bias_for(true, Tag::used(0).raw()),
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

    /// `efree`'s bucket for a block tagged `tag`: below `CACHE_BUCKETS` only
    /// for a block of at most `MAX_CACHED_SIZE` bytes of this request's
    /// kind while the cache is on.
    #[inline(always)]
    pub fn index_for(&self, tag: Tag) -> usize {
        tag.small_index(self.bias)
    }

    /// Switches the cache on or off; it must be empty. `used_bits` are the
    /// heap's (`Heap::used_bits`).
    pub fn set_enabled(&mut self, on: bool, used_bits: usize) {
        self.enabled = on;
        self.bias = bias_for(self.enabled, used_bits);
    }

    /// A new request epoch: blocks of the old one no longer get in.
    pub fn set_used_bits(&mut self, used_bits: usize) {
        self.bias = bias_for(self.enabled, used_bits);
    }

    /// The key the stacks' links are XORed with.
    pub fn secret(&self) -> usize {
        self.secret
    }

    /// The key links are XORed with. Only changed while the cache is empty
    /// or through `rekey`.
    pub fn set_secret(&mut self, secret: usize) {
        self.secret = secret;
    }

    /// Pops a block of bucket `index`, or null; it gets the plain used tag
    /// `used` (size and the request's used bits), which clears the cached
    /// bit. `checked` is the heap's protection: the link is checked.
    ///
    /// # Safety
    /// Cached blocks are live used blocks (I3); `index < CACHE_BUCKETS`.
    #[inline(always)]
    pub unsafe fn pop(&mut self, index: usize, used: Tag, checked: bool) -> Block {
        // SAFETY: caller's contract.
        unsafe { self.pop_slot((index & (CACHE_BUCKETS - 1)) + 1, used, checked) }
    }

    /// `pop` by slot (bucket + 1); slot 0 is always empty.
    ///
    /// # Safety
    /// Cached blocks are live used blocks (I3); `slot <= CACHE_BUCKETS`
    /// and, unless 0, `used` has the size of bucket `slot - 1`.
    #[inline(always)]
    pub unsafe fn pop_slot(&mut self, slot: usize, used: Tag, checked: bool) -> Block {
        // SAFETY: caller's contract; lets the compiler drop the bounds check.
        unsafe { core::hint::assert_unchecked(slot <= CACHE_BUCKETS) };
        let b = self.slots[slot];
        if !b.is_null() {
            // SAFETY: caller's contract; the link is checked as it is decoded.
            unsafe {
                let next = b.prev_free(self.secret);
                if checked {
                    b.check_links(next, Block::NULL);
                }
                b.set_tag_only(used);
                self.slots[slot] = next;
            }
            self.cached -= used.size();
            self.hits += 1;
        }
        b
    }

    /// Marks the block cached in its tag (`CACHED_BIT`).
    ///
    /// # Safety
    /// `b` is a used block with tag `tag` in bucket `index`, on no stack.
    #[inline(always)]
    pub unsafe fn push(&mut self, b: Block, index: usize, tag: Tag) {
        let slot = (index & (CACHE_BUCKETS - 1)) + 1;
        // SAFETY: caller's contract.
        unsafe { stack_link(b, self.slots[slot], tag, self.secret) };
        self.slots[slot] = b;
        self.cached += tag.size();
    }

    /// Re-encodes every cached block's link for `new` secret.
    pub fn rekey(&mut self, new: usize) {
        // SAFETY: cached blocks are live used blocks (I3).
        unsafe { rekey_stacks((0..CACHE_BUCKETS).map(|i| self.head(i)), self.secret, new) };
        self.secret = new;
    }

    /// Empties the cache and hands back its stacks for the caller to free.
    pub fn take_all(&mut self) -> [Block; CACHE_BUCKETS] {
        let mut heads = [Block::NULL; CACHE_BUCKETS];
        heads.copy_from_slice(&self.slots[1..]);
        self.clear();
        heads
    }

    /// Forgets everything (the segments are being released).
    pub fn clear(&mut self) {
        self.slots = [Block::NULL; CACHE_BUCKETS + 1];
        self.cached = 0;
    }

    /// The stack of bucket `index`, for the validator and statistics.
    pub fn head(&self, index: usize) -> Block {
        self.slots[index + 1]
    }
}

/// Puts used block `b`, tagged `tag`, on top of `below`: its link, keyed
/// with `secret`, and `CACHED_BIT` in its tag.
///
/// # Safety
/// `b` is a used block on no stack.
#[inline(always)]
pub unsafe fn stack_link(b: Block, below: Block, tag: Tag, secret: usize) {
    // SAFETY: caller's contract; the link lives in `b`'s data.
    unsafe {
        b.set_prev_free(below, secret);
        b.set_tag_only(Tag::from_raw(tag.raw() | CACHED_BIT));
    }
}

/// The block below `b` on a stack whose links are keyed with `secret`
/// (the fastcache's and the large stacks' alike), checked as it is decoded.
///
/// # Safety
/// `b` is a block on a stack, or one just taken off with its stack.
#[inline]
pub unsafe fn stack_next(b: Block, secret: usize) -> Block {
    // SAFETY: caller's contract; stacked blocks hold their link.
    unsafe {
        let next = b.prev_free(secret);
        b.check_links(next, Block::NULL);
        next
    }
}

/// Blocks on the stack starting at `head`, its links keyed with `secret`.
///
/// # Safety
/// The stack holds live blocks.
pub unsafe fn stack_len(head: Block, secret: usize) -> usize {
    let (mut n, mut b) = (0, head);
    while !b.is_null() {
        n += 1;
        // SAFETY: caller's contract.
        b = unsafe { stack_next(b, secret) };
    }
    n
}

/// Re-encodes the link of every block on the stacks `heads` from key `old`
/// to key `new`.
///
/// # Safety
/// The stacks hold live blocks whose links are keyed with `old`.
pub unsafe fn rekey_stacks(heads: impl Iterator<Item = Block>, old: usize, new: usize) {
    for mut b in heads {
        while !b.is_null() {
            // SAFETY: caller's contract.
            unsafe {
                let next = stack_next(b, old);
                b.set_prev_free(next, new);
                b = next;
            }
        }
    }
}

/// Read-only views for statistics, kept apart from the push/pop paths.
impl FastCache {
    /// Blocks on the stack of bucket `index` (a walk of that stack).
    pub fn len(&self, index: usize) -> usize {
        // SAFETY: cached blocks are live used blocks (I3).
        unsafe { stack_len(self.head(index), self.secret) }
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

    #[test]
    fn stacks_are_lifo_per_bucket_and_count_bytes() {
        let mut mem = vec![0usize; 64];
        let base = mem.as_mut_ptr().cast::<u8>();
        let mut c = FastCache::new();
        // SAFETY: three 32/48-byte blocks laid out inside `mem`.
        unsafe {
            let (a, b, d) = (
                Block::at(base, 0),
                Block::at(base, 64),
                Block::at(base, 128),
            );
            for x in [a, b, d] {
                x.set_tag_only(Tag::used(32));
            }
            c.push(a, 0, Tag::used(32));
            c.push(b, 0, Tag::used(32));
            c.push(d, 1, Tag::used(48));
            assert!(b.tag().is_cached() && !b.tag().is_used());
            assert_eq!(c.cached(), 112);
            assert_eq!(c.pop(0, Tag::used(32), true), b);
            assert_eq!(b.tag(), Tag::used(32));
            assert_eq!(c.pop(0, Tag::used(32), true), a);
            assert!(c.pop(0, Tag::used(32), true).is_null());
            assert_eq!((c.hits, c.cached()), (2, 48));
            let heads = c.take_all();
            assert_eq!(heads[1], d);
            assert_eq!(c.cached(), 0);
        }
    }

    #[test]
    fn a_cache_switched_on_takes_any_amount_and_one_switched_off_no_tag() {
        use crate::block::EPOCH_BIT;
        let mut c = FastCache::new();
        let mut mem = vec![0usize; 8];
        // SAFETY: one block inside `mem`, pushed with a fake size far past
        // PHP 5.3's budget.
        unsafe {
            c.push(
                Block::at(mem.as_mut_ptr().cast(), 0),
                0,
                Tag::used(64 * CACHE_SIZE),
            )
        };
        assert_eq!(c.index_for(Tag::used(48)), 1);
        assert_eq!(c.take_all()[0].as_ptr(), mem.as_mut_ptr().cast::<u8>());
        c.set_used_bits(Tag::used(0).raw() | EPOCH_BIT);
        assert!(c.index_for(Tag::used(48)) >= CACHE_BUCKETS, "old epoch");
        for used_bits in [Tag::used(0).raw(), Tag::used(0).raw() | EPOCH_BIT] {
            c.set_enabled(false, used_bits);
            for size in (0..8192).step_by(16) {
                let tags = [
                    Tag::used_with(size, used_bits),
                    Tag::used_with(size, used_bits ^ EPOCH_BIT),
                    Tag::from_raw(Tag::used_with(size, used_bits).raw() | CACHED_BIT),
                    Tag::free(size),
                    Tag::rest(size),
                    Tag::dv(size),
                    Tag::guard(size),
                    Tag::FIRST,
                    Tag::HUGE,
                ];
                for t in tags {
                    assert!(c.index_for(t) >= CACHE_BUCKETS, "{t:?} got in");
                }
            }
        }
    }
}
