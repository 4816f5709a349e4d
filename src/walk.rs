//! A walk over every used block of a heap: segments in list order, blocks in
//! address order, through `Block`'s and `Segment`'s methods only. Blocks
//! resting in the fastcache count as used here (they are tagged used); callers
//! that must skip them flush the cache first.
//!
//! Each step checks the size tag it follows against the segment's end, so a
//! damaged heap is reported as `zend_mm_heap corrupted` instead of sending the
//! walk outside its segment (PHP's leak check panics the same way).

use crate::block::{Block, ALIGNMENT, MIN_SIZE};
use crate::heap::Heap;
use crate::report::corrupted;
use crate::segment::Segment;
use core::marker::PhantomData;

pub struct UsedBlocks<'a> {
    next_segment: Segment,
    /// Segments still to enter: a looping list ends the walk.
    segments_left: usize,
    /// The next block to look at; null between segments.
    at: Block,
    /// Address of the current segment's guard header.
    guard: usize,
    heap: PhantomData<&'a Heap>,
}

impl Heap {
    /// Every used block, cached ones included. The heap cannot change while
    /// the walk borrows it.
    pub(crate) fn used_blocks(&self) -> UsedBlocks<'_> {
        UsedBlocks {
            next_segment: self.segments.head(),
            segments_left: self.segments.count(),
            at: Block::NULL,
            guard: 0,
            heap: PhantomData,
        }
    }
}

impl Iterator for UsedBlocks<'_> {
    type Item = Block;

    fn next(&mut self) -> Option<Block> {
        loop {
            if self.at.is_null() {
                if self.next_segment.is_null() || self.segments_left == 0 {
                    return None;
                }
                self.segments_left -= 1;
                let seg = self.next_segment;
                // SAFETY: listed segments are live and owned by the borrowed heap.
                unsafe {
                    self.guard = seg.guard().addr();
                    self.at = seg.first_block();
                    self.next_segment = seg.next();
                }
            }
            let b = self.at;
            if b.addr() >= self.guard {
                self.at = Block::NULL;
                continue;
            }
            // SAFETY: `b` starts before the guard of a live segment: it is the
            // first block or was reached by a size checked below (I1, I4).
            let tag = unsafe { b.tag() };
            let size = tag.size();
            if size < MIN_SIZE
                || size % ALIGNMENT != 0
                || size > self.guard - b.addr()
                || tag.is_guard()
            {
                corrupted(
                    "heap walk: a block's size tag leaves its segment",
                    b.data(),
                    size,
                );
            }
            // SAFETY: checked just above: `b + size` is at most the guard.
            self.at = unsafe { b.plus(size) };
            if tag.is_used() {
                return Some(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::heap::Heap;
    use crate::Config;

    #[test]
    fn the_walk_finds_exactly_the_live_blocks() {
        let mut h = Heap::with_config(Config {
            segment_size: 8192,
            ..Config::DEFAULT
        });
        let mut live: Vec<usize> = (0..300)
            .map(|i| h.alloc(i * 13 % 3000).unwrap().as_ptr() as usize)
            .collect();
        for p in live.iter().skip(1).step_by(3) {
            // SAFETY: each pointer is live and freed once.
            unsafe { h.free(*p as *mut u8) };
        }
        h.gc();
        live = live
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 1)
            .map(|(_, p)| *p)
            .collect();
        assert!(h.segment_count() > 1, "the walk must cross segments");
        let mut walked: Vec<usize> = h.used_blocks().map(|b| b.data() as usize).collect();
        walked.sort_unstable();
        live.sort_unstable();
        assert_eq!(walked, live);
    }
}
