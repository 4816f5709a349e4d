//! Storage through PHP 8.2's `zend_mm_handlers` (`zend_mm_startup_ex`).

use super::types::{zend_mm_handlers, zend_mm_storage};
use crate::storage::Storage;
use libc::c_void;

/// The storage struct handed to the callbacks, and the heap's copy of the
/// caller's `data`, which `storage.data` points at.
pub struct ExtStorage {
    storage: core::cell::UnsafeCell<zend_mm_storage>,
    _data: Box<[u8]>,
    alignment: usize,
}

impl ExtStorage {
    /// # Safety
    /// `data` has `data_size` readable bytes (or `data_size` is 0).
    pub unsafe fn new(
        handlers: zend_mm_handlers,
        data: *const c_void,
        data_size: usize,
        alignment: usize,
    ) -> Box<ExtStorage> {
        let mut copy = vec![0u8; data_size].into_boxed_slice();
        if data_size > 0 {
            // SAFETY: caller's contract; `copy` has `data_size` bytes.
            unsafe {
                core::ptr::copy_nonoverlapping(data.cast::<u8>(), copy.as_mut_ptr(), data_size)
            };
        }
        let data_ptr = if data_size > 0 {
            copy.as_mut_ptr().cast()
        } else {
            data.cast_mut()
        };
        Box::new(ExtStorage {
            storage: core::cell::UnsafeCell::new(zend_mm_storage {
                handlers,
                data: data_ptr,
            }),
            _data: copy,
            alignment,
        })
    }

    pub fn storage_ptr(&self) -> *mut zend_mm_storage {
        self.storage.get()
    }

    fn handlers(&self) -> zend_mm_handlers {
        // SAFETY: the handlers are written once, at construction.
        unsafe { (*self.storage.get()).handlers }
    }
}

// SAFETY: the callbacks are the application's; a heap and its storage are
// used by one thread at a time (the heap is Send, not Sync).
unsafe impl Sync for ExtStorage {}

// SAFETY: forwards to the application's callbacks, which take on the
// Storage contract (documented at `zend_mm_startup_ex`).
unsafe impl Storage for ExtStorage {
    fn name(&self) -> &'static str {
        "zend_mm_handlers"
    }
    fn alloc(&self, size: usize) -> *mut u8 {
        match self.handlers().chunk_alloc {
            // SAFETY: the storage pointer is the one PHP's API promises the callback.
            Some(f) => unsafe { f(self.storage_ptr(), size, self.alignment) }.cast(),
            None => core::ptr::null_mut(),
        }
    }
    unsafe fn realloc(&self, p: *mut u8, old: usize, new: usize) -> *mut u8 {
        let h = self.handlers();
        let in_place = if new < old {
            h.chunk_truncate
        } else {
            h.chunk_extend
        };
        if let Some(f) = in_place {
            // SAFETY: `p` is a chunk of `old` bytes from this storage.
            if unsafe { f(self.storage_ptr(), p.cast(), old, new) } {
                return p;
            }
        }
        let q = self.alloc(new);
        if !q.is_null() {
            // SAFETY: both chunks hold at least `min(old, new)` bytes.
            unsafe {
                core::ptr::copy_nonoverlapping(p, q, old.min(new));
                self.free(p, old);
            }
        }
        q
    }
    unsafe fn free(&self, p: *mut u8, size: usize) {
        if let Some(f) = self.handlers().chunk_free {
            // SAFETY: `p` is a chunk of `size` bytes from this storage.
            unsafe { f(self.storage_ptr(), p.cast(), size) }
        }
    }
}
