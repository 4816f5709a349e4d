//! Running inside PHP 8.2.36: its delayed-OOM protocol, through the C glue
//! (csrc/php_glue.c, seam csrc/glue.h), and the hard limit.
//!
//! Over `memory_limit`, this PHP does not bail out from the allocator: it
//! records the error in `EG(delayed_oom)`, lets the allocation pass the limit
//! (up to the hard limit) and raises the fatal error at the VM's next safe
//! point (`zend_handle_delayed_oom`). Fallible calls get NULL instead. The
//! glue does every step that touches PHP's globals or can `longjmp`; Rust
//! only decides and retries.

use super::types::zend_mm_heap;
use super::{heap_of, Op};
use crate::report::{MemError, StackBuf};
use core::fmt::Write;
use core::sync::atomic::{AtomicU8, Ordering};
use libc::{c_int, c_void};

use crate::glue::{
    zendmm_glue_init, zendmm_glue_on_error, zendmm_glue_on_hard_limit, zendmm_glue_on_limit,
    GLUE_RETURN_NULL,
};

/// 0: not asked yet, 1: a plain program, 2: a PHP engine.
static MODE: AtomicU8 = AtomicU8::new(0);

/// Is this process a PHP engine the glue can talk to? Asked once.
pub(crate) fn in_php() -> bool {
    match MODE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: the glue's init only looks symbols up.
            let php = unsafe { zendmm_glue_init() } == 1;
            MODE.store(if php { 2 } else { 1 }, Ordering::Relaxed);
            php
        }
        m => m == 2,
    }
}

/// The hard limit for `limit` (PHP 8.2.36's rule): `limit * percent / 100`,
/// or by default twice the limit up to 1 GiB and the limit plus 1 GiB above.
pub(crate) fn hard_limit(limit: usize, percent: i64) -> usize {
    const GIB: u128 = 1 << 30;
    const LONG_MAX: u128 = i64::MAX as u128;
    let l = limit as u128;
    let h = match percent {
        p if p < 0 && l > GIB => l + GIB,
        p if p < 0 => l * 2,
        p => l * p as u128 / 100,
    };
    h.min(LONG_MAX) as usize
}

/// Records a memory-limit error with PHP (delayed); `false` when the caller
/// must get NULL (a fallible call).
pub(crate) fn report_limit(limit: usize, tried: usize, fallible: bool) -> bool {
    // SAFETY: the glue records PHP state and returns; it never longjmps.
    unsafe { zendmm_glue_on_limit(limit, tried, fallible) != GLUE_RETURN_NULL }
}

/// Settles a failed allocation inside PHP (see the module docs).
pub(crate) fn settle(h: *mut zend_mm_heap, e: MemError, fallible: bool, op: Op<'_>) -> *mut c_void {
    let MemError::Limit { limit, tried } = e else {
        return on_error(e, fallible);
    };
    if !report_limit(limit, tried, fallible) {
        return core::ptr::null_mut();
    }
    // SAFETY: see `heap_of`; each borrow below ends before the glue is called.
    let percent = unsafe { (*h).hard_limit_percent };
    let hard = hard_limit(limit, percent).max(limit);
    let heap = heap_of(h);
    // SAFETY: as above.
    let saved = unsafe { (*heap).replace_limit(hard) };
    // SAFETY: as above.
    let r = op(unsafe { &mut *heap });
    // SAFETY: as above.
    unsafe { (*heap).replace_limit(saved) };
    match r {
        Ok(p) => p.as_ptr().cast(),
        // SAFETY: prints and exits.
        Err(MemError::Limit { tried, .. }) => unsafe { zendmm_glue_on_hard_limit(hard, tried) },
        Err(e) => on_error(e, fallible),
    }
}

pub(crate) fn on_error(e: MemError, fallible: bool) -> *mut c_void {
    let mut msg = StackBuf::new();
    let _ = write!(msg, "{e}");
    // SAFETY: the message is NUL-terminated; the glue either returns or ends
    // the process (never a longjmp through this frame).
    unsafe { zendmm_glue_on_error(e.kind() as c_int, msg.as_c_ptr(), fallible) };
    core::ptr::null_mut()
}

/// Is `h` served by zendmm itself (not custom handlers or tracked malloc)?
pub(crate) fn is_zendmm(h: *mut zend_mm_heap) -> bool {
    // SAFETY: see `heap_of`.
    unsafe { (*h).custom.is_zendmm() }
}

#[cfg(test)]
mod tests {
    use super::hard_limit;

    #[test]
    fn hard_limit_follows_php_8_2_36() {
        assert_eq!(hard_limit(2 << 20, -1), 4 << 20);
        assert_eq!(hard_limit(1 << 30, -1), 2 << 30);
        assert_eq!(hard_limit(3 << 30, -1), 4 << 30);
        assert_eq!(hard_limit(100, 150), 150);
        assert_eq!(hard_limit(usize::MAX / 2, 400), i64::MAX as usize);
        assert_eq!(hard_limit(i64::MAX as usize, -1), i64::MAX as usize);
    }
}
