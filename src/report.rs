//! Fatal errors: PHP's messages, the application's handler, and output that
//! never allocates.
//!
//! Every error is raised after the heap is consistent again, from frames that
//! own nothing to drop, so a handler may `longjmp` out the way PHP's bailout
//! does.

use crate::ffi::types::{zendmm_error_handler, zendmm_error_kind};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

/// An allocation that cannot be served. Each variant prints as PHP's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemError {
    /// Taking `tried` more segment bytes would pass `memory_limit`.
    Limit {
        /// The memory limit.
        limit: usize,
        /// Segment bytes the allocation needed.
        tried: usize,
    },
    /// The storage refused `tried` bytes with `allocated` already held.
    OutOfMemory {
        /// Segment bytes held.
        allocated: usize,
        /// Segment bytes asked for.
        tried: usize,
    },
    /// `nmemb * size + offset` does not fit a `size_t`.
    Overflow {
        /// Number of elements.
        nmemb: usize,
        /// Bytes per element.
        size: usize,
        /// Bytes added.
        offset: usize,
    },
    /// `size + overhead` does not fit a `size_t`.
    OverflowAdd {
        /// Bytes asked for.
        size: usize,
        /// Bytes added to them.
        overhead: usize,
    },
}

impl MemError {
    /// The C ABI's error kind for this error (what a handler receives).
    pub fn kind(&self) -> zendmm_error_kind {
        match self {
            MemError::Limit { .. } => zendmm_error_kind::ZENDMM_ERROR_MEMORY_LIMIT,
            MemError::OutOfMemory { .. } => zendmm_error_kind::ZENDMM_ERROR_OUT_OF_MEMORY,
            MemError::Overflow { .. } | MemError::OverflowAdd { .. } => {
                zendmm_error_kind::ZENDMM_ERROR_SIZE_OVERFLOW
            }
        }
    }
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MemError::Limit { limit, tried } => {
                write!(f, "Allowed memory size of {limit} bytes exhausted (tried to allocate {tried} bytes)")
            }
            MemError::OutOfMemory { allocated, tried } => {
                write!(
                    f,
                    "Out of memory (allocated {allocated} bytes) (tried to allocate {tried} bytes)"
                )
            }
            MemError::Overflow {
                nmemb,
                size,
                offset,
            } => {
                write!(
                    f,
                    "Possible integer overflow in memory allocation ({nmemb} * {size} + {offset})"
                )
            }
            MemError::OverflowAdd { size, overhead } => {
                write!(
                    f,
                    "Possible integer overflow in memory allocation ({size} + {overhead})"
                )
            }
        }
    }
}

/// A message built on the stack: error paths must not allocate.
pub struct StackBuf {
    buf: [u8; 1024],
    len: usize,
}

impl StackBuf {
    pub const fn new() -> StackBuf {
        StackBuf {
            buf: [0; 1024],
            len: 0,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    /// The text so far (only whole `str`s are ever written, but a truncated
    /// one may end mid-character: that tail is dropped).
    pub fn as_str(&self) -> &str {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or(""),
        }
    }
    /// The text with a NUL after it, for C.
    pub fn as_c_ptr(&mut self) -> *const libc::c_char {
        let end = self.len.min(self.buf.len() - 1);
        self.buf[end] = 0;
        self.buf.as_ptr().cast()
    }
}

impl Default for StackBuf {
    fn default() -> StackBuf {
        StackBuf::new()
    }
}

impl Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep one byte for the NUL; truncate rather than fail.
        let room = self.buf.len() - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes all of `bytes` to stderr with write(2), bypassing stdio buffers.
pub fn write_stderr(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: the pointer and length describe `rest`.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

static HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Installs the application's handler; returns the previous one.
pub fn set_handler(h: zendmm_error_handler) -> zendmm_error_handler {
    let new = h.map_or(0, |f| f as usize);
    let old = HANDLER.swap(new, Ordering::AcqRel);
    if old == 0 {
        None
    } else {
        // SAFETY: only values made from a handler of this type are stored.
        Some(unsafe {
            core::mem::transmute::<
                usize,
                unsafe extern "C" fn(zendmm_error_kind, *const libc::c_char),
            >(old)
        })
    }
}

/// Offers the error to the application's handler, which may not return
/// (a `longjmp`).
fn call_handler(kind: zendmm_error_kind, msg: &mut StackBuf) {
    let h = HANDLER.load(Ordering::Acquire);
    if h != 0 {
        // SAFETY: only values made from a handler of this type are stored.
        let f = unsafe {
            core::mem::transmute::<
                usize,
                unsafe extern "C" fn(zendmm_error_kind, *const libc::c_char),
            >(h)
        };
        // SAFETY: the message is NUL-terminated and lives until the call ends.
        unsafe { f(kind, msg.as_c_ptr()) };
    }
}

/// Raises a request-memory error: the handler first, then PHP CLI's
/// behaviour, `PHP Fatal error:  <message>` on stderr and exit status 255.
/// `nested` errors (raised while one is being reported) skip the handler.
#[cold]
#[inline(never)]
pub fn fatal(err: MemError, nested: bool) -> ! {
    let mut msg = StackBuf::new();
    let _ = write!(msg, "{err}");
    if !nested {
        call_handler(err.kind(), &mut msg);
    }
    let mut line = StackBuf::new();
    let _ = write!(line, "PHP Fatal error:  ");
    let _ = line.write_str(core::str::from_utf8(msg.as_bytes()).unwrap_or(""));
    let _ = line.write_str("\n");
    write_stderr(line.as_bytes());
    // SAFETY: plain libc call; runs atexit handlers and flushes stdio, as PHP's exit does.
    unsafe { libc::exit(255) }
}

/// The heap's own structures are damaged: PHP's `zend_mm_heap corrupted`,
/// a second line saying which check failed and where, then abort.
#[cold]
#[inline(never)]
pub fn corrupted(check: &str, ptr: *mut u8, block_size: usize) -> ! {
    let mut msg = StackBuf::new();
    let _ = write!(
        msg,
        "zend_mm_heap corrupted\n{check} (pointer {ptr:p}, block size {block_size}, "
    );
    match crate::segment::locate(crate::block::Block::from_data_unchecked(ptr)) {
        Some((start, size)) => {
            let _ = write!(msg, "segment {start:#x} of {size} bytes)");
        }
        None => {
            let _ = msg.write_str("in no segment reachable from it)");
        }
    }
    call_handler(zendmm_error_kind::ZENDMM_ERROR_HEAP_CORRUPTED, &mut msg);
    let _ = msg.write_str("\n");
    write_stderr(msg.as_bytes());
    // SAFETY: plain libc call.
    unsafe { libc::abort() }
}

/// libc refused persistent memory: PHP's `zend_out_of_memory`.
#[cold]
#[inline(never)]
pub fn persistent_out_of_memory() -> ! {
    let mut msg = StackBuf::new();
    let _ = msg.write_str("Out of memory");
    call_handler(
        zendmm_error_kind::ZENDMM_ERROR_PERSISTENT_OUT_OF_MEMORY,
        &mut msg,
    );
    write_stderr(b"Out of memory\n");
    // SAFETY: plain libc call.
    unsafe { libc::exit(1) }
}

/// A bad environment variable at startup: print PHP's text and exit 255.
#[cold]
pub fn startup_error(text: &str) -> ! {
    write_stderr(text.as_bytes());
    // SAFETY: plain libc call.
    unsafe { libc::exit(255) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_phps_byte_for_byte() {
        let s = MemError::Limit {
            limit: 8388608,
            tried: 262144,
        }
        .to_string();
        assert_eq!(
            s,
            "Allowed memory size of 8388608 bytes exhausted (tried to allocate 262144 bytes)"
        );
        let s = MemError::OutOfMemory {
            allocated: 1,
            tried: 2,
        }
        .to_string();
        assert_eq!(
            s,
            "Out of memory (allocated 1 bytes) (tried to allocate 2 bytes)"
        );
        let s = MemError::Overflow {
            nmemb: 3,
            size: 4,
            offset: 5,
        }
        .to_string();
        assert_eq!(
            s,
            "Possible integer overflow in memory allocation (3 * 4 + 5)"
        );
        let s = MemError::OverflowAdd {
            size: 3,
            overhead: 4,
        }
        .to_string();
        assert_eq!(s, "Possible integer overflow in memory allocation (3 + 4)");
    }

    #[test]
    fn stack_buffer_truncates_and_terminates() {
        let mut b = StackBuf::new();
        for _ in 0..300 {
            let _ = b.write_str("abcd");
        }
        assert_eq!(b.as_bytes().len(), 1023);
        let p = b.as_c_ptr();
        // SAFETY: as_c_ptr wrote a NUL inside the buffer.
        assert_eq!(unsafe { *p.add(1023) }, 0);
    }
}
