//! The seam with the C glue for PHP 8.2.36 (csrc/glue.h): the glue
//! functions Rust calls, and the Rust functions the glue calls. It lives
//! outside `ffi` so that none of it reaches the public header.

use libc::{c_char, c_int};

/// The glue's answer: give the caller NULL.
pub(crate) const GLUE_RETURN_NULL: c_int = 0;

extern "C" {
    pub(crate) fn zendmm_glue_init() -> c_int;
    pub(crate) fn zendmm_glue_on_limit(limit: usize, tried: usize, fallible: bool) -> c_int;
    pub(crate) fn zendmm_glue_on_hard_limit(hard_limit: usize, tried: usize) -> !;
    pub(crate) fn zendmm_glue_on_error(
        kind: c_int,
        message: *const c_char,
        fallible: bool,
    ) -> c_int;
}

/// For the glue: marks the current heap as reporting a memory-limit error
/// (`zend_alloc_in_memory_limit_error_reporting`), around PHP's report.
#[no_mangle]
pub extern "C" fn zendmm_rs_set_overflow(reporting: bool) {
    // SAFETY: see `ffi::heap_of`.
    unsafe { (*crate::ffi::heap_of(crate::ffi::current_heap())).overflow = reporting }
}
