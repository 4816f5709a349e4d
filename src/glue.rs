//! The seam with the C glue for PHP 8.2.36 (csrc/glue.h): the glue
//! functions Rust calls, and the Rust functions the glue calls. It lives
//! outside `ffi` so that none of it reaches the public header.

use libc::{c_char, c_int};

/// The glue's answer: give the caller NULL.
pub(crate) const GLUE_RETURN_NULL: c_int = 0;

#[cfg(zendmm_glue)]
extern "C" {
    pub(crate) fn zendmm_glue_init() -> c_int;
    pub(crate) fn zendmm_glue_on_limit(limit: usize, tried: usize, fallible: bool) -> c_int;
    pub(crate) fn zendmm_glue_on_hard_limit(hard_limit: usize, tried: usize) -> !;
    pub(crate) fn zendmm_glue_on_error(kind: c_int, message: *const c_char, fallible: bool) -> c_int;
}

// Until the glue is compiled in, the library behaves as outside PHP.
#[cfg(not(zendmm_glue))]
pub(crate) unsafe fn zendmm_glue_init() -> c_int {
    0
}
#[cfg(not(zendmm_glue))]
pub(crate) unsafe fn zendmm_glue_on_limit(_: usize, _: usize, _: bool) -> c_int {
    GLUE_RETURN_NULL
}
#[cfg(not(zendmm_glue))]
pub(crate) unsafe fn zendmm_glue_on_hard_limit(_: usize, _: usize) -> ! {
    // SAFETY: plain libc call.
    unsafe { libc::abort() }
}
#[cfg(not(zendmm_glue))]
pub(crate) unsafe fn zendmm_glue_on_error(_: c_int, _: *const c_char, _: bool) -> c_int {
    GLUE_RETURN_NULL
}

/// For the glue: marks the current heap as reporting a memory-limit error
/// (`zend_alloc_in_memory_limit_error_reporting`), around PHP's report.
#[no_mangle]
pub extern "C" fn zendmm_rs_set_overflow(reporting: bool) {
    // SAFETY: see `ffi::heap_of`.
    unsafe { (*crate::ffi::heap_of(crate::ffi::current_heap())).overflow = reporting }
}

/// For the glue: is the current heap in fallible mode?
#[no_mangle]
pub extern "C" fn zendmm_rs_is_fallible() -> bool {
    // SAFETY: see `ffi::heap_of`.
    unsafe { (*crate::ffi::current_heap()).fallible }
}

/// For the glue: the current heap's `memory_limit`.
#[no_mangle]
pub extern "C" fn zendmm_rs_memory_limit() -> usize {
    // SAFETY: see `ffi::heap_of`.
    unsafe { (*crate::ffi::heap_of(crate::ffi::current_heap())).limit() }
}

