//! `allocator_api2::alloc::Allocator` for `&Heap`: `allocator_api2`'s
//! `Vec`, `Box` and friends in a request heap, on stable Rust.
//!
//! Implemented for `&Heap`, not `Heap`: a collection then borrows the heap,
//! which keeps [`Heap::reset`] away from its memory, and never owns (so never
//! moves or drops) the heap itself.

use super::Heap;
use allocator_api2::alloc::{AllocError, Allocator, Layout};
use core::ptr::NonNull;

// SAFETY: blocks stay valid until deallocated or the heap is reset or
// dropped, both of which need every `&Heap` gone; `&Heap` copies all refer to
// the same heap, so a block may be freed through any of them; `grow` and
// `shrink` keep the contents (`realloc_layout`).
unsafe impl Allocator for &Heap {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        match self.alloc_layout(layout) {
            Ok(p) => Ok(NonNull::slice_from_raw_parts(p, layout.size())),
            Err(_) => Err(AllocError),
        }
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the trait's contract: `ptr` was allocated here with `layout`.
        unsafe { self.free_layout(ptr, layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the trait's contract: `ptr` was allocated here with
        // `old_layout`; on success the caller uses the new block only.
        match unsafe { self.realloc_layout(ptr, old_layout, new_layout) } {
            Ok(p) => Ok(NonNull::slice_from_raw_parts(p, new_layout.size())),
            Err(_) => Err(AllocError),
        }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: as `grow`.
        unsafe { self.grow(ptr, old_layout, new_layout) }
    }
}
