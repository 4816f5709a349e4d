//! The C types of the ABI (cbindgen copies these into `include/zendmm.h`).

#![allow(non_camel_case_types)]

use crate::heap::Heap;
use libc::{c_char, c_int};

/// PHP's result code: 0 (`SUCCESS`) or -1 (`FAILURE`).
pub type zend_result = c_int;
pub(crate) const SUCCESS: zend_result = 0;
pub(crate) const FAILURE: zend_result = -1;

/// A heap, opaque to C (PHP's `zend_mm_heap`).
pub struct zend_mm_heap {
    pub(crate) heap: Heap,
}

/// What kind of fatal error a handler is told about.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zendmm_error_kind {
    /// `Allowed memory size of N bytes exhausted (tried to allocate M bytes)`.
    ZENDMM_ERROR_MEMORY_LIMIT = 1,
    /// `Out of memory (allocated N bytes) (tried to allocate M bytes)`: storage failed.
    ZENDMM_ERROR_OUT_OF_MEMORY = 2,
    /// `Possible integer overflow in memory allocation (...)`.
    ZENDMM_ERROR_SIZE_OVERFLOW = 3,
    /// `zend_mm_heap corrupted`, then a line naming the failed check. The heap
    /// must not be used again.
    ZENDMM_ERROR_HEAP_CORRUPTED = 4,
    /// `Out of memory` from a persistent (libc) allocation.
    ZENDMM_ERROR_PERSISTENT_OUT_OF_MEMORY = 5,
}

/// A fatal-error handler, called with the kind and PHP's message (no
/// `PHP Fatal error:  ` prefix). It may `longjmp` out, as PHP's bailout does:
/// the heap is consistent when it is called. After such a jump the
/// application must end the request with `shutdown_memory_manager(1, 0)`
/// (or `zend_mm_shutdown(heap, 0, 1)`); a second error before that is
/// printed and exits at once. If the handler returns, zendmm goes on with
/// its default action: print `PHP Fatal error:  <message>` to stderr and
/// exit with status 255 (abort for heap corruption, exit 1 for persistent
/// out-of-memory, as PHP does).
pub type zendmm_error_handler = Option<unsafe extern "C" fn(kind: zendmm_error_kind, message: *const c_char)>;

/// The version of `zendmm_heap_stats` this library fills.
pub const ZENDMM_STATS_VERSION: u32 = 1;

/// Heap figures. Set `size` to `sizeof(zendmm_heap_stats)` before calling
/// `zendmm_stats`; it sets `version`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct zendmm_heap_stats {
    pub size: usize,
    pub version: u32,
    /// `zend_memory_usage(0)`: bytes of blocks in use, 16-byte headers included.
    pub usage: usize,
    pub peak: usize,
    /// `zend_memory_usage(1)`: bytes of segments taken from storage.
    pub real_usage: usize,
    pub real_peak: usize,
    /// `memory_limit` in bytes.
    pub limit: usize,
    pub segments: usize,
    /// Bytes and blocks held by the fastcache (freed, kept for reuse).
    pub cached_bytes: usize,
    pub cached_blocks: usize,
    /// Free blocks in the 64 small buckets (true size < 544).
    pub free_small_bytes: usize,
    pub free_small_blocks: usize,
    /// Free blocks in the large-size trie.
    pub free_large_bytes: usize,
    pub free_large_blocks: usize,
    /// Free remainders of dedicated segments (the rest list).
    pub free_rest_bytes: usize,
    pub free_rest_blocks: usize,
    /// Allocations served from, and missed by, the fastcache.
    pub cache_hits: u64,
    pub cache_misses: u64,
}
