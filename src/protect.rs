//! Heap protection: the checks that name a bad pointer before anything is
//! written through it, the key that free-list and fastcache links are
//! XORed with (random with `ZENDMM_PROTECT=1`, as PHP 8.4 keys its free
//! lists; 0 without), and the request epoch that keeps blocks of an ended
//! request out.
//!
//! Which check runs in which mode is the README's "Heap protection and
//! corruption reports": the keyed links and `efree`'s overflow check
//! before the fastcache only with protection on; `used_block`'s full check
//! (every slow path), safe unlinking and the epoch always.

use crate::block::{Block, Tag, EPOCH_BIT, MIN_SIZE};
use crate::free_lists::is_small;
use crate::heap::Heap;
use crate::report::{corrupted, StackBuf};
use core::fmt::Write;

impl Heap {
    /// Checks that `p` is the data pointer of a live block of this heap and
    /// returns that block; anything else is reported as heap corruption,
    /// naming the failed check (`op` names the caller: `efree`, ...).
    ///
    /// # Safety
    /// `p` must point into memory readable 8 bytes before it; the size read
    /// there is only followed when it is plausible.
    #[inline]
    pub(crate) unsafe fn used_block(&self, p: *mut u8, op: &str) -> Block {
        let b = Block::from_data_unchecked(p);
        // SAFETY: caller's contract.
        unsafe {
            if self.is_live(b, b.tag()) {
                return b;
            }
            self.diagnose(b, p, op)
        }
    }

    /// `tag`, read from `b`, is a used tag of this request whose mirror
    /// after the block agrees: the block is live and nothing wrote past it.
    ///
    /// # Safety
    /// As [`Heap::used_block`]; the neighbour is read only for a size some
    /// segment can hold.
    #[inline(always)]
    pub(crate) unsafe fn is_live(&self, b: Block, tag: Tag) -> bool {
        let size = tag.size();
        tag.kind() == self.used_bits
            && size >= MIN_SIZE
            && size <= self.max_segment
            // SAFETY: caller's contract; `size` fits a segment (checked above).
            && unsafe { b.plus(size).prev_tag() } == tag
    }

    /// Names the check a block failed in `used_block`.
    ///
    /// # Safety
    /// As [`Heap::used_block`].
    #[cold]
    #[inline(never)]
    unsafe fn diagnose(&self, b: Block, p: *mut u8, op: &str) -> ! {
        // SAFETY: as in `used_block`.
        unsafe {
            let tag = b.tag();
            let size = tag.size();
            let sane = size >= MIN_SIZE && size <= self.max_segment;
            if tag.is_cached() && sane && b.plus(size).prev_tag() == tag.uncached() {
                self.bad_block(op, p, size, "is already in the fastcache (double free)", 0);
            }
            if !tag.is_used() || !sane {
                let why = if tag.is_free() && sane {
                    "points at a free block (freed twice?)"
                } else {
                    "has no block header before it (a pointer zendmm did not hand out?)"
                };
                self.bad_block(op, p, size, why, 0);
            }
            let after = b.plus(size).prev_tag();
            if after != tag {
                self.bad_block(
                    op,
                    p,
                    size,
                    "the boundary tag after the block is overwritten (a write past its end?)",
                    after.raw() ^ tag.raw(),
                );
            }
            self.bad_block(op, p, size, "belongs to a request that has ended", 0)
        }
    }

    /// Reports a block that failed `used_block`; `diff` (when non-zero) is
    /// how the overwritten tag differs from the true one.
    #[cold]
    #[inline(never)]
    fn bad_block(&self, op: &str, p: *mut u8, size: usize, why: &str, diff: usize) -> ! {
        let mut msg = StackBuf::new();
        let _ = write!(msg, "{op}: block {why}");
        if diff != 0 {
            let _ = write!(msg, "; bits changed {diff:#x}");
        }
        corrupted(msg.as_str(), p, size)
    }

    /// Switches protection; only while the heap holds no segment.
    pub(crate) fn set_protect(&mut self, on: bool) {
        self.protect = on;
        self.renew_secret();
    }

    /// A new key for free-list and fastcache links (kept by `FreeLists` and
    /// `FastCache`): random when protection is on, else 0 (links in the
    /// clear).
    fn new_secret(&self) -> usize {
        if self.protect {
            crate::debug_mode::random_word()
        } else {
            0
        }
    }

    /// Draws a new link key. Only sound while no link is encoded: no segment
    /// is held, or every link is re-encoded afterwards (`refresh_secret`).
    /// Renewed whenever the heap holds no segment and at every request end.
    pub(crate) fn renew_secret(&mut self) {
        let secret = self.new_secret();
        self.lists.set_secret(secret);
        self.cache.set_secret(secret);
        self.large.set_secret(secret);
    }

    /// A forked child's heap: draws a new key and re-encodes every link and
    /// cache check word, so the parent's key tells nothing about the
    /// child's heap (PHP 8.4's `zend_mm_refresh_key_child`).
    pub fn refresh_secret(&mut self) {
        let new = self.new_secret();
        let delta = self.lists.secret() ^ new;
        let mut seg = self.segments.head();
        while !seg.is_null() {
            // SAFETY: listed segments are live; blocks are walked by tags (I1, I4).
            unsafe {
                let mut b = seg.first_block();
                loop {
                    let t = b.tag();
                    if t.is_guard() {
                        break;
                    }
                    if t.is_free() && !t.is_dv() {
                        let large = !t.is_rest() && !is_small(t.size());
                        b.rekey_links(delta, large);
                    }
                    b = b.next();
                }
                seg = seg.next();
            }
        }
        self.cache.rekey(new);
        self.large.rekey(new);
        self.lists.set_secret(new);
    }

    /// Starts a new request epoch: blocks of the previous request no longer
    /// pass `efree`'s tag check.
    pub(crate) fn next_epoch(&mut self) {
        self.used_bits ^= EPOCH_BIT;
        self.cache.set_used_bits(self.used_bits);
    }
}
