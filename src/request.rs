//! Request lifecycle: startup and shutdown (PHP's `zend_mm_startup` and
//! `zend_mm_shutdown`).
//!
//! A request shutdown forgets every block by releasing whole segments: it
//! walks the segment list, never the blocks, so its cost grows with the
//! number of segments only. One regular segment is kept and re-formatted
//! instead of being returned and taken again, which saves a storage round
//! trip per request; what PHP 5.3 reports afterwards (one segment holding
//! the reserve) is unchanged. The optional leak report before it does walk
//! the blocks (src/leaks.rs).

use crate::block::HEADER_SIZE;
use crate::config::RESERVE_SIZE;
use crate::heap::Heap;
use crate::segment::{Segment, SEGMENT_OVERHEAD};
use core::ptr;

impl Heap {
    /// Reads pending settings and creates the reserve
    /// (`start_memory_manager`, `zend_mm_startup`).
    pub fn start(&mut self) {
        self.apply_env();
        self.create_reserve();
    }

    /// Ends a request (`full == false`): every block is released, counters and
    /// peaks restart, the reserve is re-created. A full shutdown also drops
    /// the reserve and holds no segment afterwards. Unless `silent`, the
    /// blocks still in use are first reported as leaks when the report is on
    /// (src/leaks.rs), for a full shutdown too, as PHP does.
    pub fn shutdown(&mut self, full: bool, silent: bool) {
        if !silent {
            self.report_leaks();
        }
        self.locations.clear();
        let real_peak = self.acct.real_peak;
        // Keep a segment only if the reserve will live in it; a tiny segment
        // size gives the reserve a dedicated segment instead.
        let reserve_fits = self.segment_size - SEGMENT_OVERHEAD >= RESERVE_SIZE + HEADER_SIZE;
        if self.debug.on && self.debug.check_on_shutdown {
            self.debug_check_on_shutdown();
        }
        if !full {
            // Before the segments are given back, so they meet the new budget.
            self.spare
                .end_request(self.storage, real_peak, self.segment_size);
        }
        self.forget_all(!full && reserve_fits);
        if full {
            self.spare.release(self.storage);
            return;
        }
        if self.compact_size != 0 && real_peak > self.compact_size {
            self.storage.compact();
        }
        self.create_reserve();
    }

    /// Forgets every block by releasing whole segments, so the cost grows
    /// with the number of segments only; counters and peaks restart, the
    /// limit stays. With `keep_one`, one regular segment is kept, empty, for
    /// the next request. The safe `zendmm::Heap::reset` is this without the
    /// reserve.
    pub(crate) fn forget_all(&mut self, keep_one: bool) {
        let keep = self.release_all_segments(keep_one);
        self.lists.clear();
        self.clear_stacks();
        // Nothing is linked now: a new key costs nothing, and a new epoch
        // makes the old blocks fail `efree` from now on.
        self.renew_secret();
        self.next_epoch();
        self.acct.reset();
        self.reserve = ptr::null_mut();
        self.overflow = false;
        self.flush_floor = crate::cache::CACHE_SIZE;
        if !keep.is_null() {
            let size = self.segment_size;
            // SAFETY: `keep` is a segment of `size` bytes this heap still owns
            // and that no block references any more.
            unsafe {
                let (seg, first) = Segment::format(keep.as_ptr(), size);
                self.segments.push(seg);
                self.acct.add_real(size);
                self.lists.add(first, size - SEGMENT_OVERHEAD);
            }
        }
    }

    /// Gives every segment back (to the spares first, src/spare.rs), except
    /// one of the regular size when `keep_one`; returns that one (unlinked)
    /// or null.
    pub(crate) fn release_all_segments(&mut self, keep_one: bool) -> Segment {
        let mut keep = Segment::NULL;
        let mut seg = self.segments.head();
        while !seg.is_null() {
            // SAFETY: segments in the list are live and owned by this heap.
            unsafe {
                let next = seg.next();
                let size = seg.size();
                if keep_one && keep.is_null() && size == self.segment_size {
                    keep = seg;
                } else {
                    self.give_back(seg, size);
                }
                seg = next;
            }
        }
        self.segments.clear();
        self.release_huge();
        keep
    }

    /// Number of segments held.
    pub fn segment_count(&self) -> usize {
        self.segments.count()
    }

    /// Is `p` inside one of this heap's segments? (A walk over segments.)
    pub fn owns(&self, p: *const u8) -> bool {
        let addr = p as usize;
        let mut seg = self.segments.head();
        while !seg.is_null() {
            // SAFETY: segments in the list are live.
            unsafe {
                if seg.contains(addr.wrapping_sub(HEADER_SIZE)) {
                    return true;
                }
                seg = seg.next();
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::heap::Heap;
    use crate::spare::SPARE_BYTES;

    #[test]
    fn a_request_end_keeps_its_segments_within_the_budget_its_peak_sets() {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.start();
        let seg = h.segment_size();
        // One 200 KiB block per regular segment: about 10 MiB in 40.
        for _ in 0..40 {
            h.alloc(200 << 10).unwrap();
        }
        let peak = h.acct.real_peak;
        h.shutdown(false, true);
        // The budget became (2 MiB + peak) / 2 before the segments were
        // given back, so they were kept up to it, not up to the old 2 MiB.
        let kept = h.spare.count() * seg;
        assert!(kept > SPARE_BYTES, "{kept} bytes kept");
        assert!(kept <= SPARE_BYTES / 2 + peak / 2, "{kept} bytes kept");
        h.shutdown(true, true);
        assert_eq!(h.spare.count(), 0, "a full shutdown gives every spare back");
    }
}
