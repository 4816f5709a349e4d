//! The C types of the ABI (cbindgen copies these into `include/zendmm.h`).

#![allow(non_camel_case_types)]

use crate::heap::Heap;
use libc::{c_char, c_int, c_void};

/// PHP's result code: 0 (`SUCCESS`) or -1 (`FAILURE`).
pub type zend_result = c_int;
pub(crate) const SUCCESS: zend_result = 0;
pub(crate) const FAILURE: zend_result = -1;

/// A heap, opaque to C (PHP's `zend_mm_heap`): the core heap plus the state
/// PHP's API attaches to it.
pub struct zend_mm_heap {
    /// Declared first so it is dropped before `ext_storage`, which its
    /// segments may come from.
    pub(crate) heap: Heap,
    pub(crate) custom: Custom,
    /// `zend_mm_set_fallible`: a failed allocation returns NULL.
    pub(crate) fallible: bool,
    /// `zend_set_memory_hard_limit_percent`; -1 is PHP's default rule.
    pub(crate) hard_limit_percent: i64,
    /// `zend_mm_set_max_allocs`: allocations left before the cap trips; 0: no cap.
    pub(crate) max_allocs: u64,
    /// The storage of a heap made by `zend_mm_startup_ex`.
    pub(crate) ext_storage: Option<Box<crate::ffi::storage_ex::ExtStorage>>,
    /// `_emalloc` & co. leave the fast path: custom handlers, tracked
    /// malloc, counted cache statistics or recorded debug-ABI locations. One
    /// flag, so the fast path tests one byte whatever is switched on.
    pub(crate) routed: bool,
    /// `ZENDMM_STATS` and `ZENDMM_CACHE_STAT` (see `ffi::observe`).
    pub(crate) observe: crate::ffi::observe::Observe,
    /// The storage wrapper of a heap valgrind or ASan watches (`tooled.rs`).
    pub(crate) tool_storage: Option<Box<crate::tool::ToolStorage>>,
}

impl zend_mm_heap {
    pub(crate) const fn new(heap: Heap) -> zend_mm_heap {
        zend_mm_heap {
            heap,
            custom: Custom::None,
            fallible: false,
            hard_limit_percent: -1,
            max_allocs: 0,
            ext_storage: None,
            routed: false,
            observe: crate::ffi::observe::Observe::new(),
            tool_storage: None,
        }
    }

    /// Sets who serves `_emalloc` & co., keeping `routed` in step.
    pub(crate) fn set_custom(&mut self, custom: Custom) {
        self.custom = custom;
        self.update_routing();
    }

    /// `routed`: custom handlers, tracked malloc, counted cache statistics,
    /// or debug-ABI locations to keep in step with the blocks.
    pub(crate) fn update_routing(&mut self) {
        self.routed = !self.custom.is_none()
            || self.observe.counts_cache()
            || !self.heap.locations.is_empty();
        self.heap.set_inline(!self.routed);
    }
}

/// Who serves `_emalloc` & co. on a heap (PHP's `use_custom_heap`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Custom {
    /// zendmm itself.
    None,
    /// The application's handlers (`zend_mm_set_custom_handlers`).
    Std {
        malloc: zend_mm_malloc_fn,
        free: zend_mm_free_fn,
        realloc: zend_mm_realloc_fn,
    },
    /// `USE_ZEND_ALLOC=0`: libc malloc, counted and limited.
    Tracked,
    /// zendmm itself, under valgrind or ASan: every operation goes through
    /// `tooled.rs`, which tells the tool about the blocks.
    Tool,
}

impl Custom {
    #[inline(always)]
    pub(crate) fn is_none(self) -> bool {
        matches!(self, Custom::None)
    }

    /// Request memory is zendmm's own (with or without a tool watching).
    #[inline(always)]
    pub(crate) fn is_zendmm(self) -> bool {
        matches!(self, Custom::None | Custom::Tool)
    }
}

/// Custom handler types (`zend_mm_set_custom_handlers`).
pub type zend_mm_malloc_fn = Option<unsafe extern "C" fn(size: usize) -> *mut c_void>;
pub type zend_mm_free_fn = Option<unsafe extern "C" fn(ptr: *mut c_void)>;
pub type zend_mm_realloc_fn =
    Option<unsafe extern "C" fn(ptr: *mut c_void, size: usize) -> *mut c_void>;

/// PHP 8.2's storage callbacks (`zend_mm_startup_ex`).
pub type zend_mm_chunk_alloc_t = Option<
    unsafe extern "C" fn(
        storage: *mut zend_mm_storage,
        size: usize,
        alignment: usize,
    ) -> *mut c_void,
>;
pub type zend_mm_chunk_free_t =
    Option<unsafe extern "C" fn(storage: *mut zend_mm_storage, chunk: *mut c_void, size: usize)>;
pub type zend_mm_chunk_truncate_t = Option<
    unsafe extern "C" fn(
        storage: *mut zend_mm_storage,
        chunk: *mut c_void,
        old_size: usize,
        new_size: usize,
    ) -> bool,
>;
pub type zend_mm_chunk_extend_t = Option<
    unsafe extern "C" fn(
        storage: *mut zend_mm_storage,
        chunk: *mut c_void,
        old_size: usize,
        new_size: usize,
    ) -> bool,
>;

/// Where a heap made by `zend_mm_startup_ex` takes its segments. A NULL
/// `chunk_truncate` or `chunk_extend` means "cannot resize in place".
#[repr(C)]
#[derive(Clone, Copy)]
pub struct zend_mm_handlers {
    pub chunk_alloc: zend_mm_chunk_alloc_t,
    pub chunk_free: zend_mm_chunk_free_t,
    pub chunk_truncate: zend_mm_chunk_truncate_t,
    pub chunk_extend: zend_mm_chunk_extend_t,
}

/// The storage handed to each callback: the handlers and the heap's copy
/// of the `data` given to `zend_mm_startup_ex`.
#[repr(C)]
pub struct zend_mm_storage {
    pub handlers: zend_mm_handlers,
    pub data: *mut c_void,
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
pub type zendmm_error_handler =
    Option<unsafe extern "C" fn(kind: zendmm_error_kind, message: *const c_char)>;

/// The version of `zendmm_heap_stats` this library fills. Version 2 added
/// `requests`.
pub const ZENDMM_STATS_VERSION: u32 = 2;

/// Heap figures, versioned: `size` and `version` come first and later
/// versions only add fields at the end. Set `size` to
/// `sizeof(zendmm_heap_stats)` before calling `zendmm_stats`; it fills the
/// fields that fit in `size` bytes (a program built against an older, smaller
/// struct gets those), sets `size` to the bytes it filled and `version` to
/// `ZENDMM_STATS_VERSION`.
///
/// Free blocks are counted per bucket class, the three places a free block
/// can wait: *small* (the 64 exact-size buckets), *large* (the size trie)
/// and *rest* (the remainders of dedicated segments).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct zendmm_heap_stats {
    pub size: usize,
    pub version: u32,
    /// `zend_memory_usage(0)`: bytes of blocks in use, 8-byte headers included.
    pub usage: usize,
    pub peak: usize,
    /// `zend_memory_usage(1)`: bytes of segments taken from storage.
    pub real_usage: usize,
    pub real_peak: usize,
    /// `memory_limit` in bytes.
    pub limit: usize,
    pub segments: usize,
    /// Bytes and blocks held by the fastcache and, in a heap of 256 MiB or
    /// more, its stacks of large blocks (freed, kept for reuse).
    pub cached_bytes: usize,
    pub cached_blocks: usize,
    /// Free blocks of the small class: the 64 exact-size buckets (true
    /// size < 1056), the designated victim included when it is that small.
    pub free_small_bytes: usize,
    pub free_small_blocks: usize,
    /// Free blocks of the large class: the size trie.
    pub free_large_bytes: usize,
    pub free_large_blocks: usize,
    /// Free blocks of the rest class: remainders of dedicated segments.
    pub free_rest_bytes: usize,
    pub free_rest_blocks: usize,
    /// Allocations served from, and missed by, the fastcache, since the
    /// heap started.
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Version 2: requests this heap has ended (`shutdown_memory_manager`
    /// or `zend_mm_shutdown` without `full_shutdown`).
    pub requests: u64,
}
