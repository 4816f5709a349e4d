//! Huge blocks: requests of `HUGE_MIN` bytes or more, each in a mapping of
//! its own, outside the segments (ZendMM 8's `huge_list`).
//!
//! Boundary tags are 32 bits (`block.rs`), so no block in a segment, and no
//! segment, may reach 4 GiB. A huge block keeps the segment layout, so a
//! pointer to it looks like any other (a header 8 bytes before 16-aligned
//! data), but its size tag is [`Tag::HUGE`], which no check on segment
//! blocks accepts, and its true size lives in the mapping's header:
//!
//! ```text
//! [size, prev, next, true size, -: 40 B][prev FIRST | HUGE][data ...]
//! ```
//!
//! The mappings are linked like segments, in `Heap::huge`, and a pointer is
//! only taken for a huge block once it is found on that list, so a forged
//! tag is reported like any foreign pointer. A mapping is sized as a
//! dedicated segment would be, so "tried to allocate" figures do not
//! change at the threshold. Huge blocks never go to the fastcache or the
//! free lists: a free unmaps, a realloc remaps.

use crate::block::{Block, Tag, HEADER_SIZE};
use crate::heap::Heap;
use crate::report::MemError;
use crate::segment::Segment;
use core::ptr::NonNull;

/// A checked live block: in a segment, or huge.
#[derive(Clone, Copy)]
pub(crate) enum Live {
    Block(Block),
    Huge(Segment),
}

/// The smallest true size served by a mapping of its own. Below it a
/// dedicated segment (at most `MAX_SEGMENT_SIZE` more) stays under 4 GiB.
pub const HUGE_MIN: usize = 1 << 31;

impl Heap {
    /// A huge block of true size `ts`.
    pub(crate) fn alloc_huge(&mut self, ts: usize) -> Result<NonNull<u8>, MemError> {
        self.apply_env();
        let (size, _) = self.segment_size_for(ts);
        self.room_for(size)?;
        let raw = self.storage.alloc(size);
        if raw.is_null() {
            return Err(MemError::OutOfMemory {
                allocated: self.acct.real_size,
                tried: size,
            });
        }
        self.acct.add_real(size);
        self.acct.add_used(ts);
        // SAFETY: the storage gave `size` bytes, more than `ts` plus the
        // segment overhead.
        unsafe {
            let (seg, b) = Segment::format_huge(raw, size, ts);
            self.huge.push(seg);
            Ok(NonNull::new_unchecked(b.data()))
        }
    }

    /// The mapping of huge block `p`, if `p` is one of this heap's.
    ///
    /// # Safety
    /// `p` points into memory readable 8 bytes before it.
    #[inline]
    pub(crate) unsafe fn huge_of(&self, p: *mut u8) -> Option<Segment> {
        // SAFETY: caller's contract.
        if unsafe { Block::from_data_unchecked(p).tag() } != Tag::HUGE {
            return None;
        }
        let mut seg = self.huge.head();
        while !seg.is_null() {
            // SAFETY: listed mappings are live.
            unsafe {
                if seg.first_block().data() == p {
                    return Some(seg);
                }
                seg = seg.next();
            }
        }
        None
    }

    /// The live block whose data is `p`, huge or in a segment; anything
    /// else is reported as heap corruption (`used_block`, `op` names the
    /// caller).
    ///
    /// # Safety
    /// As [`Heap::huge_of`].
    pub(crate) unsafe fn live(&self, p: *mut u8, op: &str) -> Live {
        // SAFETY: caller's contract.
        unsafe {
            match self.huge_of(p) {
                Some(seg) => Live::Huge(seg),
                None => Live::Block(self.used_block(p, op)),
            }
        }
    }

    /// Usable bytes of a live block.
    ///
    /// # Safety
    /// `l` is a live block of this heap.
    pub(crate) unsafe fn live_usable(l: Live) -> usize {
        // SAFETY: caller's contract.
        unsafe {
            match l {
                Live::Block(b) => b.tag().size() - HEADER_SIZE,
                Live::Huge(seg) => seg.huge_size() - HEADER_SIZE,
            }
        }
    }

    /// Frees a live block, bypassing the fastcache.
    ///
    /// # Safety
    /// `l` is a live block of this heap that nothing references any more.
    pub(crate) unsafe fn free_live(&mut self, l: Live) {
        // SAFETY: caller's contract.
        unsafe {
            match l {
                Live::Block(b) => self.free_block(b),
                Live::Huge(seg) => self.free_huge(seg),
            }
        }
    }

    /// Unmaps the huge block in `seg`.
    ///
    /// # Safety
    /// `seg` is on this heap's huge list; nothing references its block.
    pub(crate) unsafe fn free_huge(&mut self, seg: Segment) {
        // SAFETY: caller's contract.
        unsafe {
            let size = seg.size();
            self.huge.unlink(seg);
            self.acct.sub_used(seg.huge_size());
            self.acct.sub_real(size);
            if crate::tool::active() {
                crate::tool::protect_segment(seg, size);
            }
            self.storage.free(seg.as_ptr(), size);
        }
    }

    /// Resizes the huge block in `seg` to hold `size` bytes: the storage
    /// remaps it while it stays huge; otherwise it moves to a segment.
    ///
    /// # Safety
    /// `seg` is on this heap's huge list.
    pub(crate) unsafe fn realloc_huge(
        &mut self,
        seg: Segment,
        size: usize,
        copy: usize,
    ) -> Result<NonNull<u8>, MemError> {
        // SAFETY: caller's contract.
        unsafe {
            let old_ts = seg.huge_size();
            let ts = self.checked_true_size(size)?;
            let (new, _) = self.segment_size_for(ts);
            let old = seg.size();
            if ts < HUGE_MIN {
                let p = seg.first_block().data();
                return self.realloc_move(p, old_ts - HEADER_SIZE, size, copy);
            }
            if new > old {
                self.room_for(new - old)?;
            }
            self.huge.unlink(seg);
            let raw = self.storage.realloc(seg.as_ptr(), old, new);
            if raw.is_null() {
                self.huge.push(seg);
                return Err(MemError::OutOfMemory {
                    allocated: self.acct.real_size,
                    tried: new - old.min(new),
                });
            }
            let (seg, b) = Segment::format_huge(raw, new, ts);
            self.huge.push(seg);
            self.acct.sub_real(old);
            self.acct.add_real(new);
            self.acct.sub_used(old_ts);
            self.acct.add_used(ts);
            Ok(NonNull::new_unchecked(b.data()))
        }
    }

    /// Unmaps every huge block (request end).
    pub(crate) fn release_huge(&mut self) {
        let mut seg = self.huge.head();
        while !seg.is_null() {
            // SAFETY: listed mappings are live and owned by this heap.
            unsafe {
                let next = seg.next();
                let size = seg.size();
                if crate::tool::active() {
                    crate::tool::protect_segment(seg, size);
                }
                self.storage.free(seg.as_ptr(), size);
                seg = next;
            }
        }
        self.huge.clear();
    }

    /// Bytes of the huge blocks' mappings.
    pub(crate) fn huge_real_size(&self) -> usize {
        let mut total = 0;
        let mut seg = self.huge.head();
        while !seg.is_null() {
            // SAFETY: listed mappings are live.
            unsafe {
                total += seg.size();
                seg = seg.next();
            }
        }
        total
    }

    /// Data pointers and usable sizes of the live huge blocks.
    pub(crate) fn huge_blocks(&self) -> impl Iterator<Item = (*mut u8, usize)> + '_ {
        let mut seg = self.huge.head();
        core::iter::from_fn(move || {
            if seg.is_null() {
                return None;
            }
            // SAFETY: listed mappings are live; the borrow keeps the list.
            unsafe {
                let item = (seg.first_block().data(), Heap::live_usable(Live::Huge(seg)));
                seg = seg.next();
                Some(item)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::true_size;
    use crate::storage::Malloc;
    use crate::Config;

    fn heap() -> Heap {
        let mut h = Heap::with_config(Config {
            storage: &Malloc,
            ..Config::DEFAULT
        });
        h.start();
        h
    }

    #[test]
    fn a_huge_block_is_counted_reused_and_given_back() {
        let mut h = heap();
        let (used, real) = (h.acct.size, h.acct.real_size);
        // `Malloc` storage: the pages are never touched, so this is cheap.
        let p = h.alloc(HUGE_MIN).unwrap().as_ptr();
        assert_eq!(p as usize % 16, 0);
        let ts = true_size(HUGE_MIN).unwrap();
        assert_eq!(h.acct.size, used + ts);
        assert!(h.acct.real_size >= real + ts);
        // SAFETY: `p` is live.
        unsafe {
            assert_eq!(h.block_size(p), ts - HEADER_SIZE);
            p.write(7);
            let q = h.realloc(p, HUGE_MIN + 100_000).unwrap().as_ptr();
            assert_eq!(q.read(), 7);
            assert_eq!(
                h.block_size(q),
                true_size(HUGE_MIN + 100_000).unwrap() - HEADER_SIZE
            );
            let r = h.realloc(q, 100).unwrap().as_ptr();
            assert_eq!(r.read(), 7);
            assert_eq!(h.acct.size, used + true_size(100).unwrap());
            assert!(h.huge.head().is_null());
            let s = h.alloc(HUGE_MIN + 1).unwrap().as_ptr();
            assert_eq!(h.huge_blocks().count(), 1);
            assert!(h.is_live_ptr(s) && h.is_live_ptr(s.add(HUGE_MIN)));
            assert!(!h.is_live_ptr(s.sub(HEADER_SIZE)));
            h.free(s);
            h.free(r);
        }
        assert_eq!(h.acct.size - h.cache.cached(), used);
        assert_eq!(h.acct.real_size, real);
        assert!(h.check().is_empty(), "{:?}", h.check());
    }

    #[test]
    fn a_block_owning_its_segment_grows_into_a_huge_mapping() {
        let mut h = heap();
        let (used, segs) = (h.acct.size, h.segment_count());
        let p = h.alloc(300_000).unwrap().as_ptr();
        assert_eq!(h.segment_count(), segs + 1);
        // SAFETY: `p` is live.
        unsafe {
            p.add(299_999).write(9);
            let q = h.realloc(p, HUGE_MIN).unwrap().as_ptr();
            assert_eq!(q.add(299_999).read(), 9);
            assert_eq!(h.segment_count(), segs);
            assert_eq!(h.huge_blocks().count(), 1);
            assert_eq!(h.acct.size, used + true_size(HUGE_MIN).unwrap());
            assert!(h.check().is_empty(), "{:?}", h.check());
            h.free(q);
        }
        assert_eq!(h.acct.size, used);
    }

    #[test]
    fn the_limit_names_the_mapping() {
        let mut h = heap();
        h.acct.limit = 1 << 30;
        let err = h.alloc(HUGE_MIN).unwrap_err();
        let (seg, _) = h.segment_size_for(true_size(HUGE_MIN).unwrap());
        assert_eq!(
            err,
            MemError::Limit {
                limit: 1 << 30,
                tried: seg
            }
        );
    }
}
