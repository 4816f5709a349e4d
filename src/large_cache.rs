//! Stacks of freed large blocks for big heaps (`Heap::is_big`), one per
//! size class, beside the fastcache and like it: LIFO, still tagged used,
//! not coalesced, flushed with it.
//!
//! Why: in a heap of gigabytes the large-block trie indexes holes spread
//! over the whole heap, so best fit places a program's 4-64 KiB
//! temporaries in cold memory, and every insert, search and removal walks
//! trie nodes that are cache misses. On the scale benchmark's 4 GiB heap
//! these stacks took a call from 75-90 ns to 62-73 ns. A class is 1/8 of
//! a power of two wide and a big heap rounds requests up to their class,
//! so a freed block serves every request of its class: the 4 GiB heap
//! peaked 1.4% higher (2.7% with four classes per power of two, 0.7%
//! with sixteen, which was no faster). A class block that a realloc
//! shrinks a lot or grows into a class moves through the stacks too
//! (`realloc.rs`): 56 instead of 68 ns a call on that heap. Heaps below
//! `BIG_HEAP` never use them (every trace and PHP workload here), so
//! their layout and resident set are PHP 5.3's.
//!
//! A heap in debug mode (`ZEND_MM_DEBUG`) neither rounds nor stacks, as
//! its fastcache is off. A heap that shrinks below `BIG_HEAP` stops
//! taking from the stacks;
//! what they hold (at most 1/128 of the heap they were filled in) waits
//! for the next flush or the request end.
//!
//! Invariants:
//! - L1: a block on stack `i` is a used block of this request of at least
//!   `class_size(i)` and less than `class_size(i + 1)` bytes, and carries
//!   `CACHED_BIT`, like a fastcache block.
//! - L2: `cached` is the sum of the stacked blocks' sizes; the heap counts
//!   them in `Accounting::size` and subtracts them from `usage`.

use crate::block::{Block, Tag};
use crate::cache::{rekey_stacks, stack_len, stack_link, stack_next};

/// Classes per doubling of size, as a shift: 8, each 12.5% of the power
/// of two above the one below.
const CLASS_BITS: usize = 3;
/// The classes start above 2^`FIRST_SHIFT` bytes (4 KiB: the fastcache
/// holds blocks up to 4112 bytes).
const FIRST_SHIFT: usize = 12;
/// Doublings covered: the largest class is 2^(`FIRST_SHIFT` + 5), 128 KiB.
const DOUBLINGS: usize = 5;
/// Number of stacks.
pub const LARGE_CLASSES: usize = DOUBLINGS << CLASS_BITS;

/// `floor(log2(x))` for `x > 0`.
#[inline(always)]
fn log2(x: usize) -> usize {
    (usize::BITS - 1 - x.leading_zeros()) as usize
}

/// The size of class `i` (`i <= LARGE_CLASSES`: one past the last gives
/// the bound of the last).
pub const fn class_size(i: usize) -> usize {
    let k = FIRST_SHIFT + (i >> CLASS_BITS);
    let j = (i & ((1 << CLASS_BITS) - 1)) + 1;
    (1 << k) + (j << (k - CLASS_BITS))
}

/// The class a request of true size `ts` rounds up to, and its size; none
/// for sizes outside the classes.
#[inline]
pub fn class_up(ts: usize) -> Option<(usize, usize)> {
    let c = ts.checked_sub(1)?;
    if c >> FIRST_SHIFT == 0 {
        return None;
    }
    let k = log2(c);
    let j = ((c - (1 << k)) >> (k - CLASS_BITS)) + 1;
    let i = ((k - FIRST_SHIFT) << CLASS_BITS) + j - 1;
    (i < LARGE_CLASSES).then(|| (i, class_size(i)))
}

/// The class whose requests a free block of `size` bytes serves: the
/// largest class not above `size` (L1); none outside the classes.
#[inline]
pub fn class_down(size: usize) -> Option<usize> {
    if size >> FIRST_SHIFT == 0 {
        return None;
    }
    let k = log2(size);
    let j = (size - (1 << k)) >> (k - CLASS_BITS);
    let i = (((k - FIRST_SHIFT) << CLASS_BITS) + j).checked_sub(1)?;
    (i < LARGE_CLASSES).then_some(i)
}

#[derive(Debug)]
pub struct LargeCache {
    stacks: [Block; LARGE_CLASSES],
    cached: usize,
    /// The heap's link key, set with the fastcache's and the lists'.
    secret: usize,
}

impl LargeCache {
    pub const fn new() -> LargeCache {
        LargeCache {
            stacks: [Block::NULL; LARGE_CLASSES],
            cached: 0,
            secret: 0,
        }
    }

    /// Bytes held (L2).
    #[inline]
    pub fn cached(&self) -> usize {
        self.cached
    }

    /// Pushes used block `b`, tagged `tag`, onto the stack of `class`,
    /// marked cached in its tag.
    ///
    /// # Safety
    /// `b` is a used block on no stack, of a size `class_down` maps to
    /// `class`.
    pub unsafe fn push(&mut self, b: Block, class: usize, tag: Tag) {
        // SAFETY: caller's contract.
        unsafe { stack_link(b, self.stacks[class], tag, self.secret) };
        self.stacks[class] = b;
        self.cached += tag.size();
    }

    /// Pops a block of `class` (or null), tagged used with `used_bits` again.
    ///
    /// # Safety
    /// The stacked blocks are live (L1); `class < LARGE_CLASSES`.
    pub unsafe fn pop(&mut self, class: usize, used_bits: usize) -> Block {
        let b = self.stacks[class];
        if b.is_null() {
            return b;
        }
        // SAFETY: caller's contract; the link is checked as it is decoded.
        unsafe {
            let next = self.next_in_stack(b);
            let size = b.tag().size();
            b.set_tag_only(Tag::used_with(size, used_bits));
            self.stacks[class] = next;
            self.cached -= size;
        }
        b
    }

    /// The key the stacks' links are XORed with.
    pub fn secret(&self) -> usize {
        self.secret
    }

    /// The block below `b` on its stack (or null).
    ///
    /// # Safety
    /// `b` is stacked, or was just taken off with `take_all`.
    pub unsafe fn next_in_stack(&self, b: Block) -> Block {
        // SAFETY: caller's contract.
        unsafe { stack_next(b, self.secret) }
    }

    /// Blocks on all the stacks (a walk of each).
    pub fn blocks(&self) -> usize {
        let mut n = 0;
        for head in self.stacks {
            // SAFETY: stacked blocks are live (L1).
            n += unsafe { stack_len(head, self.secret) };
        }
        n
    }

    /// The stack of `class`, for the validator and statistics.
    pub fn head(&self, class: usize) -> Block {
        self.stacks[class]
    }

    /// Empties the stacks and hands them back for the caller to free.
    pub fn take_all(&mut self) -> [Block; LARGE_CLASSES] {
        let heads = self.stacks;
        self.clear();
        heads
    }

    /// Forgets everything (the segments are being released).
    pub fn clear(&mut self) {
        self.stacks = [Block::NULL; LARGE_CLASSES];
        self.cached = 0;
    }

    /// The key links are XORed with; only changed while the stacks are
    /// empty or through `rekey`.
    pub fn set_secret(&mut self, secret: usize) {
        self.secret = secret;
    }

    /// Re-encodes every link for `new` secret.
    pub fn rekey(&mut self, new: usize) {
        // SAFETY: stacked blocks are live (L1).
        unsafe { rekey_stacks(self.stacks.into_iter(), self.secret, new) };
        self.secret = new;
    }
}

impl Default for LargeCache {
    fn default() -> LargeCache {
        LargeCache::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MAX_CACHED_SIZE;

    #[test]
    fn classes_are_an_eighth_of_a_power_of_two_apart_from_4_to_128_kib() {
        assert_eq!(class_size(0), 4608);
        assert_eq!(class_size(7), 8192);
        assert_eq!(class_size(8), 9216);
        assert_eq!(class_size(LARGE_CLASSES - 1), 128 << 10);
        for i in 0..LARGE_CLASSES {
            assert_eq!(class_size(i) % 512, 0);
            assert!(class_size(i + 1) - class_size(i) <= class_size(i) / 8);
        }
    }

    #[test]
    fn a_request_rounds_up_to_the_class_its_blocks_go_back_to() {
        assert_eq!(class_up(MAX_CACHED_SIZE), Some((0, 4608)));
        assert_eq!(class_up(4096), None, "the fastcache's sizes");
        assert_eq!(class_up(0), None);
        assert_eq!(class_up((128 << 10) + 16), None, "past the last class");
        for ts in (MAX_CACHED_SIZE..=(128 << 10)).step_by(16) {
            let (i, size) = class_up(ts).unwrap();
            assert_eq!(size, class_size(i));
            assert!(size >= ts && (i == 0 || class_size(i - 1) < ts), "{ts}");
            assert_eq!(class_down(size), Some(i), "{ts}");
        }
    }

    #[test]
    fn a_free_block_goes_to_the_largest_class_it_covers() {
        assert_eq!(class_down(4592), None);
        assert_eq!(class_down(4608), Some(0));
        assert_eq!(class_down(5000), Some(0));
        assert_eq!(
            class_down(class_size(LARGE_CLASSES) - 16),
            Some(LARGE_CLASSES - 1)
        );
        assert_eq!(class_down(class_size(LARGE_CLASSES)), None);
        for size in (4096..=(200 << 10)).step_by(16) {
            if let Some(i) = class_down(size) {
                assert!(class_size(i) <= size && size < class_size(i + 1), "{size}");
            } else {
                assert!(size < class_size(0) || size >= class_size(LARGE_CLASSES));
            }
        }
    }

    #[test]
    fn stacks_are_lifo_count_bytes_and_mark_blocks_cached() {
        let mut mem = vec![0usize; 4];
        let base = mem.as_mut_ptr().cast::<u8>();
        let mut c = LargeCache::new();
        c.set_secret(0x5a5a_0000);
        // SAFETY: two headers inside `mem`, never followed to their sizes.
        unsafe {
            let (a, b) = (Block::at(base, 0), Block::at(base, 16));
            for x in [a, b] {
                x.set_tag_only(Tag::used(5008));
                c.push(x, 0, Tag::used(5008));
            }
            assert!(a.tag().is_cached());
            assert_eq!(c.cached(), 10_016);
            assert_eq!(c.head(0), b);
            assert_eq!(c.next_in_stack(b), a);
            c.rekey(0x77_0000);
            assert_eq!(c.pop(0, Tag::used(0).raw()), b);
            assert_eq!(b.tag(), Tag::used(5008));
            assert_eq!(c.cached(), 5008);
            assert_eq!(c.take_all()[0], a);
            assert_eq!(c.cached(), 0);
            assert!(c.pop(0, Tag::used(0).raw()).is_null());
        }
    }
}
