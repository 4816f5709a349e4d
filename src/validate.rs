//! The heap validator: walks every segment and every list and checks the
//! invariants written in `block.rs` (I1..I5) and `accounting.rs`. Tests run
//! it after every operation; `zendmm_check_heap` runs it on demand.

use crate::block::{Block, Tag, ALIGNMENT, HEADER_SIZE, MIN_SIZE};
use crate::cache::{stack_next, CACHE_BUCKETS};
use crate::free_lists::{bucket_size, is_small, ListCounts};
use crate::heap::Heap;
use crate::large_cache::{class_size, LARGE_CLASSES};

impl Heap {
    /// Every problem found, one sentence each; empty for a healthy heap.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut walked = ListCounts::default();
        let mut used_bytes = 0usize;
        let mut blocks = 0usize;
        let mut real = 0usize;
        let mut nseg = 0usize;
        let mut seg = self.segments.head();
        while !seg.is_null() {
            nseg += 1;
            if nseg > self.segments.count() {
                problems.push("segment list is longer than its count (a loop?)".into());
                break;
            }
            // SAFETY: listed segments are live; the walk stops at the first
            // tag that would leave the segment.
            unsafe {
                let size = seg.size();
                real += size;
                if size < self.segment_size || size % self.segment_size != 0 {
                    problems.push(format!("segment {:p} has size {size}", seg.as_ptr()));
                }
                let guard_at = seg.as_ptr() as usize + size - HEADER_SIZE;
                let mut b = seg.first_block();
                let mut prev = Tag::FIRST;
                loop {
                    let t = b.tag();
                    if b.addr() == guard_at {
                        if !t.is_guard() || b.prev_tag() != prev {
                            problems.push(format!("segment {:p}: bad guard", seg.as_ptr()));
                        }
                        break;
                    }
                    let bad_size = t.size() < MIN_SIZE
                        || t.size() % ALIGNMENT != 0
                        || b.addr() + t.size() > guard_at
                        || t.is_guard();
                    if bad_size {
                        problems.push(format!("block {:#x}: bad tag {:#x}", b.addr(), t.raw()));
                        break;
                    }
                    if b.prev_tag() != prev {
                        problems.push(format!(
                            "block {:#x}: prev tag {:#x} != {:#x} (I1)",
                            b.addr(),
                            b.prev_tag().raw(),
                            prev.raw()
                        ));
                    }
                    if t.is_free() && prev.is_free() {
                        problems.push(format!("block {:#x}: two free neighbours (I2)", b.addr()));
                    }
                    if t.is_free() {
                        let s = t.size();
                        if t.is_rest() {
                            walked.rest_blocks += 1;
                            walked.rest_bytes += s;
                        } else if t.is_dv() {
                            walked.dv_blocks += 1;
                            walked.dv_bytes += s;
                        } else if is_small(s) {
                            walked.small_blocks += 1;
                            walked.small_bytes += s;
                        } else {
                            walked.large_blocks += 1;
                            walked.large_bytes += s;
                        }
                    } else {
                        if t.uncached().kind() != self.used_bits {
                            problems.push(format!(
                                "block {:#x}: tag {:#x} is not of this request's epoch",
                                b.addr(),
                                t.raw()
                            ));
                        }
                        used_bytes += t.size();
                    }
                    blocks += 1;
                    prev = t.uncached();
                    b = b.next();
                }
                seg = seg.next();
            }
        }
        for (p, usable) in self.huge_blocks() {
            // SAFETY: listed huge mappings are live; the block header is theirs.
            let tag = unsafe { Block::from_data_unchecked(p).tag() };
            if tag != Tag::HUGE {
                problems.push(format!(
                    "huge block {:#x}: bad tag {:#x}",
                    p as usize,
                    tag.raw()
                ));
            }
            used_bytes += usable + HEADER_SIZE;
        }
        real += self.huge_real_size();
        if nseg != self.segments.count() {
            problems.push(format!(
                "{nseg} segments walked, {} counted",
                self.segments.count()
            ));
        }
        if real != self.acct.real_size {
            problems.push(format!(
                "segments hold {real} bytes, real_size says {}",
                self.acct.real_size
            ));
        }
        // SAFETY: list walks are bounded by the number of blocks seen.
        match unsafe { self.lists.census(blocks + 1) } {
            Ok(listed) if listed != walked => problems.push(format!(
                "free lists hold {listed:?}, segments have {walked:?} (I3)"
            )),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
        let cached_bytes = self.cache_census(blocks + 1, &mut problems);
        if cached_bytes != self.cache.cached() {
            problems.push(format!(
                "cache holds {cached_bytes} bytes, counter says {}",
                self.cache.cached()
            ));
        }
        let large_bytes = self.large_census(blocks + 1, &mut problems);
        if large_bytes != self.large.cached() {
            problems.push(format!(
                "large stacks hold {large_bytes} bytes, counter says {} (L2)",
                self.large.cached()
            ));
        }
        if used_bytes != self.acct.size {
            problems.push(format!(
                "used blocks hold {used_bytes} bytes, size says {}",
                self.acct.size
            ));
        }
        if self.acct.peak < self.acct.size || self.acct.real_peak < self.acct.real_size {
            problems.push("a peak is below its current value".into());
        }
        if self.acct.real_size > self.acct.limit {
            problems.push(format!(
                "real_size {} exceeds the limit {}",
                self.acct.real_size, self.acct.limit
            ));
        }
        problems
    }

    /// The first problem, for tests.
    pub fn validate(&self) -> Result<(), String> {
        match self.check().into_iter().next() {
            Some(p) => Err(p),
            None => Ok(()),
        }
    }

    /// Checks the tag and size of every block on the fastcache's stacks;
    /// returns their bytes.
    fn cache_census(&self, limit: usize, problems: &mut Vec<String>) -> usize {
        let heads = (0..CACHE_BUCKETS).map(|i| self.cache.head(i));
        let fits = |i, size| size == bucket_size(i);
        self.stack_census(
            "fastcache",
            heads,
            self.cache.secret(),
            fits,
            limit,
            problems,
        )
    }

    /// As `cache_census` for the large stacks (L1).
    fn large_census(&self, limit: usize, problems: &mut Vec<String>) -> usize {
        let heads = (0..LARGE_CLASSES).map(|i| self.large.head(i));
        let fits = |i, size| class_size(i) <= size && size < class_size(i + 1);
        self.stack_census("large", heads, self.large.secret(), fits, limit, problems)
    }

    /// Walks `stacks` stacks (their `heads`, links keyed with `key`),
    /// checking that each block is marked cached and that its size `fits`
    /// its stack; returns the bytes they hold.
    fn stack_census(
        &self,
        stacks: &str,
        heads: impl Iterator<Item = Block>,
        key: usize,
        fits: impl Fn(usize, usize) -> bool,
        limit: usize,
        problems: &mut Vec<String>,
    ) -> usize {
        let (mut n, mut bytes) = (0, 0);
        for (i, mut b) in heads.enumerate() {
            while !b.is_null() {
                // SAFETY: stacked blocks are live used blocks; the walk is bounded.
                unsafe {
                    let t = b.tag();
                    if !t.is_cached() || !fits(i, t.size()) {
                        problems.push(format!(
                            "block {:#x} on {stacks} stack {i} has tag {:#x}",
                            b.addr(),
                            t.raw()
                        ));
                        break;
                    }
                    n += 1;
                    bytes += t.size();
                    if n > limit {
                        problems.push(format!("{stacks} stacks loop"));
                        return bytes;
                    }
                    b = stack_next(b, key);
                }
            }
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use crate::heap::Heap;
    use crate::Config;

    #[test]
    fn a_healthy_heap_has_no_problems() {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.start();
        let ps: Vec<_> = (0..100)
            .map(|i| h.alloc(i * 37).unwrap().as_ptr())
            .collect();
        for p in ps.iter().step_by(3) {
            // SAFETY: each pointer is live and freed once.
            unsafe { h.free(*p) };
        }
        assert_eq!(h.check(), Vec::<String>::new());
    }

    #[test]
    fn a_scribbled_header_is_reported() {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.start();
        let a = h.alloc(100).unwrap().as_ptr();
        let _b = h.alloc(100).unwrap().as_ptr();
        // SAFETY: writes 4 bytes past `a`'s data, into `b`'s prev tag: exactly
        // the overflow the validator must notice.
        unsafe { a.add(h.block_size(a)).cast::<u32>().write(0x4141_4141) };
        let problems = h.check();
        assert!(!problems.is_empty());
        assert!(problems[0].contains("(I1)"), "{problems:?}");
    }

    #[test]
    fn a_wrong_counter_is_reported() {
        let mut h = Heap::with_config(Config::DEFAULT);
        h.start();
        h.acct.size += 8;
        assert!(h.check().iter().any(|p| p.contains("size says")));
    }
}
