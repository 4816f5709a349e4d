//! A snapshot of a heap's figures, for `zendmm_stats` and Rust callers.

use crate::cache::CACHE_BUCKETS;
use crate::heap::Heap;

/// What a heap holds right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `zend_memory_usage(0)`: bytes of blocks in use, headers included.
    pub usage: usize,
    /// `zend_memory_peak_usage(0)`: the highest block usage since the
    /// request began or the last peak reset (cached blocks included).
    pub peak: usize,
    /// `zend_memory_usage(1)`: bytes of segments.
    pub real_usage: usize,
    /// `zend_memory_peak_usage(1)`: the highest segment bytes likewise.
    pub real_peak: usize,
    /// The memory limit, in segment bytes.
    pub limit: usize,
    /// Segments held.
    pub segments: usize,
    /// Bytes of freed blocks resting in the fastcache (and, in a heap of
    /// 256 MiB or more, on its stacks of large blocks).
    pub cached_bytes: usize,
    /// Blocks resting in the fastcache and the large stacks.
    pub cached_blocks: usize,
    /// Bytes of free small blocks (the designated victim included).
    pub free_small_bytes: usize,
    /// Free small blocks.
    pub free_small_blocks: usize,
    /// Bytes of free large blocks (in the size trie).
    pub free_large_bytes: usize,
    /// Free large blocks.
    pub free_large_blocks: usize,
    /// Bytes of free remainders of dedicated segments (the rest list).
    pub free_rest_bytes: usize,
    /// Free blocks on the rest list.
    pub free_rest_blocks: usize,
    /// Small allocations served by the fastcache.
    pub cache_hits: u64,
    /// Small allocations the fastcache could not serve.
    pub cache_misses: u64,
}

impl Heap {
    /// Counts everything; walks the free lists and the cache, not the blocks.
    pub fn stats(&self) -> Stats {
        // SAFETY: the lists hold live blocks; the bound only guards loops.
        let mut lists = unsafe { self.lists.census(usize::MAX) }.unwrap_or_default();
        // The designated victim counts with the free blocks of its size class.
        if crate::free_lists::is_small(lists.dv_bytes) && lists.dv_blocks > 0 {
            lists.small_blocks += 1;
            lists.small_bytes += lists.dv_bytes;
        } else if lists.dv_blocks > 0 {
            lists.large_blocks += 1;
            lists.large_bytes += lists.dv_bytes;
        }
        let cached_blocks =
            (0..CACHE_BUCKETS).map(|i| self.cache.len(i)).sum::<usize>() + self.large.blocks();
        Stats {
            usage: self.usage(false),
            peak: self.peak_usage(false),
            real_usage: self.usage(true),
            real_peak: self.peak_usage(true),
            limit: self.limit(),
            segments: self.segment_count(),
            cached_bytes: self.cached(),
            cached_blocks,
            free_small_bytes: lists.small_bytes,
            free_small_blocks: lists.small_blocks,
            free_large_bytes: lists.large_bytes,
            free_large_blocks: lists.large_blocks,
            free_rest_bytes: lists.rest_bytes,
            free_rest_blocks: lists.rest_blocks,
            cache_hits: self.cache.hits,
            cache_misses: self.cache.misses,
        }
    }
}
