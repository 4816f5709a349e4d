// The C ABI of libzendmm, restated as plain `extern "C"` declarations so that
// ctest2 can compile each one against include/zendmm.h and compare sizes,
// offsets, constants and function signatures. Keep it in 2015-era syntax:
// ctest2's parser is an old libsyntax fork.

use libc::{c_char, c_int, c_void, size_t};

pub type zend_result = c_int;

pub enum zend_mm_heap {}

#[repr(C)]
#[derive(Copy, Clone)]
pub enum zendmm_error_kind {
    ZENDMM_ERROR_MEMORY_LIMIT = 1,
    ZENDMM_ERROR_OUT_OF_MEMORY = 2,
    ZENDMM_ERROR_SIZE_OVERFLOW = 3,
    ZENDMM_ERROR_HEAP_CORRUPTED = 4,
    ZENDMM_ERROR_PERSISTENT_OUT_OF_MEMORY = 5,
}

pub type zendmm_error_handler =
    Option<unsafe extern "C" fn(kind: zendmm_error_kind, message: *const c_char)>;

pub type zend_mm_malloc_fn = Option<unsafe extern "C" fn(size: size_t) -> *mut c_void>;
pub type zend_mm_free_fn = Option<unsafe extern "C" fn(ptr: *mut c_void)>;
pub type zend_mm_realloc_fn = Option<unsafe extern "C" fn(ptr: *mut c_void, size: size_t) -> *mut c_void>;

pub type zend_mm_chunk_alloc_t =
    Option<unsafe extern "C" fn(storage: *mut zend_mm_storage, size: size_t, alignment: size_t) -> *mut c_void>;
pub type zend_mm_chunk_free_t = Option<unsafe extern "C" fn(storage: *mut zend_mm_storage, chunk: *mut c_void, size: size_t)>;
pub type zend_mm_chunk_truncate_t =
    Option<unsafe extern "C" fn(storage: *mut zend_mm_storage, chunk: *mut c_void, old_size: size_t, new_size: size_t) -> bool>;
pub type zend_mm_chunk_extend_t =
    Option<unsafe extern "C" fn(storage: *mut zend_mm_storage, chunk: *mut c_void, old_size: size_t, new_size: size_t) -> bool>;

#[repr(C)]
#[derive(Copy, Clone)]
pub struct zend_mm_handlers {
    pub chunk_alloc: zend_mm_chunk_alloc_t,
    pub chunk_free: zend_mm_chunk_free_t,
    pub chunk_truncate: zend_mm_chunk_truncate_t,
    pub chunk_extend: zend_mm_chunk_extend_t,
}

#[repr(C)]
pub struct zend_mm_storage {
    pub handlers: zend_mm_handlers,
    pub data: *mut c_void,
}

pub const ZENDMM_STATS_VERSION: u32 = 2;

#[repr(C)]
#[derive(Copy, Clone)]
pub struct zendmm_heap_stats {
    pub size: size_t,
    pub version: u32,
    pub usage: size_t,
    pub peak: size_t,
    pub real_usage: size_t,
    pub real_peak: size_t,
    pub limit: size_t,
    pub segments: size_t,
    pub cached_bytes: size_t,
    pub cached_blocks: size_t,
    pub free_small_bytes: size_t,
    pub free_small_blocks: size_t,
    pub free_large_bytes: size_t,
    pub free_large_blocks: size_t,
    pub free_rest_bytes: size_t,
    pub free_rest_blocks: size_t,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub requests: u64,
}

extern "C" {
    // request memory (PHP 8.2 release ABI)
    pub fn _emalloc(size: size_t) -> *mut c_void;
    pub fn _efree(ptr: *mut c_void);
    pub fn _erealloc(ptr: *mut c_void, size: size_t) -> *mut c_void;
    pub fn _erealloc2(ptr: *mut c_void, size: size_t, copy_size: size_t) -> *mut c_void;
    pub fn _ecalloc(nmemb: size_t, size: size_t) -> *mut c_void;
    pub fn _safe_emalloc(nmemb: size_t, size: size_t, offset: size_t) -> *mut c_void;
    pub fn _safe_erealloc(ptr: *mut c_void, nmemb: size_t, size: size_t, offset: size_t) -> *mut c_void;
    pub fn _estrdup(s: *const c_char) -> *mut c_char;
    pub fn _estrndup(s: *const c_char, length: size_t) -> *mut c_char;
    pub fn _zend_mem_block_size(ptr: *mut c_void) -> size_t;

    // persistent memory (libc)
    pub fn _safe_malloc(nmemb: size_t, size: size_t, offset: size_t) -> *mut c_void;
    pub fn _safe_realloc(ptr: *mut c_void, nmemb: size_t, size: size_t, offset: size_t) -> *mut c_void;
    pub fn zend_strndup(s: *const c_char, length: size_t) -> *mut c_char;
    pub fn __zend_malloc(len: size_t) -> *mut c_void;
    pub fn __zend_calloc(nmemb: size_t, len: size_t) -> *mut c_void;
    pub fn __zend_realloc(p: *mut c_void, len: size_t) -> *mut c_void;
    pub fn __zend_strdup(s: *const c_char) -> *mut c_char;

    // pemalloc & co. as functions (the macros in zendmm_alloc.h do the same)
    pub fn pemalloc(size: size_t, persistent: bool) -> *mut c_void;
    pub fn pefree(ptr: *mut c_void, persistent: bool);
    pub fn pecalloc(nmemb: size_t, size: size_t, persistent: bool) -> *mut c_void;
    pub fn perealloc(ptr: *mut c_void, size: size_t, persistent: bool) -> *mut c_void;
    pub fn pestrdup(s: *const c_char, persistent: bool) -> *mut c_char;

    // limits and statistics
    pub fn zend_set_memory_limit(memory_limit: size_t) -> zend_result;
    pub fn zend_memory_usage(real_usage: bool) -> size_t;
    pub fn zend_memory_peak_usage(real_usage: bool) -> size_t;
    pub fn zend_memory_reset_peak_usage();

    // lifecycle
    pub fn start_memory_manager();
    pub fn shutdown_memory_manager(silent: bool, full_shutdown: bool);
    pub fn is_zend_mm() -> bool;

    // heap objects
    pub fn zend_mm_startup() -> *mut zend_mm_heap;
    pub fn zend_mm_shutdown(heap: *mut zend_mm_heap, full_shutdown: bool, silent: bool);
    pub fn _zend_mm_alloc(heap: *mut zend_mm_heap, size: size_t) -> *mut c_void;
    pub fn _zend_mm_free(heap: *mut zend_mm_heap, p: *mut c_void);
    pub fn _zend_mm_realloc(heap: *mut zend_mm_heap, p: *mut c_void, size: size_t) -> *mut c_void;
    pub fn _zend_mm_realloc2(heap: *mut zend_mm_heap, p: *mut c_void, size: size_t, copy_size: size_t) -> *mut c_void;
    pub fn _zend_mm_block_size(heap: *mut zend_mm_heap, p: *mut c_void) -> size_t;
    pub fn zend_mm_set_heap(new_heap: *mut zend_mm_heap) -> *mut zend_mm_heap;
    pub fn zend_mm_get_heap() -> *mut zend_mm_heap;

    // PHP 8.2.36's fallible allocations
    pub fn _femalloc(size: size_t) -> *mut c_void;
    pub fn _fecalloc(nmemb: size_t, size: size_t) -> *mut c_void;
    pub fn _ferealloc(ptr: *mut c_void, size: size_t) -> *mut c_void;
    pub fn _ferealloc2(ptr: *mut c_void, size: size_t, copy_size: size_t) -> *mut c_void;
    pub fn _safe_femalloc(nmemb: size_t, size: size_t, offset: size_t) -> *mut c_void;
    pub fn _safe_ferealloc(ptr: *mut c_void, nmemb: size_t, size: size_t, offset: size_t) -> *mut c_void;
    pub fn zend_mm_is_fallible() -> bool;
    pub fn zend_mm_set_fallible(fallible: bool);

    // custom handlers, storage, ownership
    pub fn zend_mm_set_custom_handlers(heap: *mut zend_mm_heap, _malloc: zend_mm_malloc_fn, _free: zend_mm_free_fn, _realloc: zend_mm_realloc_fn);
    pub fn zend_mm_get_custom_handlers(heap: *mut zend_mm_heap, _malloc: *mut zend_mm_malloc_fn, _free: *mut zend_mm_free_fn, _realloc: *mut zend_mm_realloc_fn);
    pub fn zend_mm_is_custom_heap(_new_heap: *mut zend_mm_heap) -> bool;
    pub fn zend_mm_startup_ex(handlers: *const zend_mm_handlers, data: *mut c_void, data_size: size_t) -> *mut zend_mm_heap;
    pub fn zend_mm_get_storage(heap: *mut zend_mm_heap) -> *mut zend_mm_storage;
    pub fn zend_mm_gc(heap: *mut zend_mm_heap) -> size_t;
    pub fn is_zend_ptr(ptr: *const c_void) -> bool;

    // PHP 8.2.36's limits and testing aids
    pub fn zend_set_memory_hard_limit_percent(percent: i64) -> zend_result;
    pub fn zend_mm_set_max_allocs(max_allocs: u64);
    pub fn zend_mm_max_allocs_hit() -> bool;
    pub fn zend_alloc_in_memory_limit_error_reporting() -> bool;

    // zendmm's own additions
    pub fn zendmm_set_error_handler(handler: zendmm_error_handler) -> zendmm_error_handler;
    pub fn zendmm_stats(heap: *const zend_mm_heap, out: *mut zendmm_heap_stats) -> bool;
    pub fn zendmm_check_heap(heap: *const zend_mm_heap) -> size_t;
    pub fn zendmm_refresh_key(heap: *mut zend_mm_heap);

    // the debug ABI (zendmm_alloc.h under ZEND_DEBUG or ZENDMM_DEBUG) and the leak report
    pub fn zendmm_emalloc_dbg(size: size_t, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_void;
    pub fn zendmm_efree_dbg(ptr: *mut c_void, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32);
    pub fn zendmm_erealloc_dbg(ptr: *mut c_void, size: size_t, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_void;
    pub fn zendmm_erealloc2_dbg(ptr: *mut c_void, size: size_t, copy_size: size_t, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_void;
    pub fn zendmm_ecalloc_dbg(nmemb: size_t, size: size_t, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_void;
    pub fn zendmm_safe_emalloc_dbg(nmemb: size_t, size: size_t, offset: size_t, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_void;
    pub fn zendmm_safe_erealloc_dbg(ptr: *mut c_void, nmemb: size_t, size: size_t, offset: size_t, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_void;
    pub fn zendmm_estrdup_dbg(s: *const c_char, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_char;
    pub fn zendmm_estrndup_dbg(s: *const c_char, length: size_t, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_char;
    pub fn zendmm_zend_mm_alloc_dbg(heap: *mut zend_mm_heap, size: size_t, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_void;
    pub fn zendmm_zend_mm_free_dbg(heap: *mut zend_mm_heap, p: *mut c_void, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32);
    pub fn zendmm_zend_mm_realloc_dbg(heap: *mut zend_mm_heap, p: *mut c_void, size: size_t, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_void;
    pub fn zendmm_zend_mm_realloc2_dbg(heap: *mut zend_mm_heap, p: *mut c_void, size: size_t, copy_size: size_t, filename: *const c_char, lineno: u32, orig_filename: *const c_char, orig_lineno: u32) -> *mut c_void;
    pub fn zendmm_set_script_name(name: *const c_char);
}
