//! Valgrind and AddressSanitizer see zendmm's blocks.
//!
//! To memcheck a segment is one malloc'd or mmapped area, to ASan one heap
//! chunk: an overflow from one emalloc'd block into the next, or a read
//! after efree, stays inside memory they consider valid. This module tells
//! them where the blocks are:
//!
//! - a block handed out is accessible over exactly its usable bytes
//!   (valgrind: a malloc-like block, undefined; ASan: unpoisoned);
//! - everything else in a segment is not: block headers, free and freed
//!   blocks, cached blocks, the unused tail (valgrind: noaccess, ASan:
//!   poisoned). So one byte written past a block lands on the next block's
//!   header and is reported, and so is a read of a freed block.
//!
//! Which tool is decided once, when the library is loaded: valgrind when
//! `RUNNING_ON_VALGRIND` with memcheck as the tool (under callgrind, massif
//! and the others zendmm runs as usual), ASan when the process has
//! `__asan_poison_memory_region` (looked up with `dlsym`). With neither,
//! nothing here runs and the heaps keep their inline fast paths.
//!
//! With a tool, heaps are created with `Custom::Tool`, which sends
//! `_emalloc` & co. to `ffi/tooled.rs`: it runs the ordinary heap operation
//! and then describes its outcome with the hooks below. The heap itself is
//! not instrumented, and its own reads and writes of headers and free-list
//! links would be errors to the tool:
//! - under valgrind, heap operations run with error reporting turned off
//!   ([`quiet`]): zendmm's code is trusted, the program's is checked;
//! - ASan checks only instrumented code and the libc calls it intercepts,
//!   and zendmm is not instrumented. The one intercepted call zendmm makes
//!   on protected memory is the `memcpy` into a fresh block when realloc
//!   moves a block: the heap calls [`copy_to_fresh_block`] for it.
//!
//! Segments are wrapped by [`ToolStorage`], so a new segment starts
//! protected and a released one goes back accessible.

use crate::block::{Block, HEADER_SIZE};
use crate::segment::{Segment, SEGMENT_HEADER_SIZE, SEGMENT_LINKS_SIZE};
use crate::storage::Storage;
use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use libc::c_void;

/// No tool: the hooks are never called.
const NONE: u8 = 0;
const VALGRIND: u8 = 1;
const ASAN: u8 = 2;

static TOOL: AtomicU8 = AtomicU8::new(NONE);
/// `__asan_poison_memory_region` and `__asan_unpoison_memory_region`.
static ASAN_POISON: AtomicUsize = AtomicUsize::new(0);
static ASAN_UNPOISON: AtomicUsize = AtomicUsize::new(0);

type AsanRegionFn = unsafe extern "C" fn(*const c_void, usize);

extern "C" {
    // csrc/valgrind_shim.c; `running` means memcheck is the tool.
    fn zendmm_vg_running() -> libc::c_uint;
    fn zendmm_vg_quiet(on: libc::c_int);
    fn zendmm_vg_malloclike(p: *const c_void, n: usize);
    fn zendmm_vg_freelike(p: *const c_void);
    fn zendmm_vg_resize(p: *const c_void, old: usize, new: usize);
    fn zendmm_vg_noaccess(p: *const c_void, n: usize);
    fn zendmm_vg_undefined(p: *const c_void, n: usize);
    fn zendmm_vg_shrink_chunk(p: *const c_void, n: usize, keep: usize);
    fn zendmm_vg_grow_chunk(p: *const c_void, keep: usize, n: usize);
    fn zendmm_vg_get_vbits(p: *const c_void, bits: *mut c_void, n: usize) -> libc::c_uint;
    fn zendmm_vg_set_vbits(p: *const c_void, bits: *const c_void, n: usize) -> libc::c_uint;
}

/// Looks for valgrind, then ASan; returns whether either is there. Called
/// once, before any heap is used (the library's constructor).
pub(crate) fn detect() -> bool {
    // SAFETY: a client request; outside valgrind it answers 0.
    if unsafe { zendmm_vg_running() } != 0 {
        TOOL.store(VALGRIND, Ordering::Relaxed);
        return true;
    }
    // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the
    // process's global scope, where an ASan runtime lives if there is one.
    let (poison, unpoison) = unsafe {
        (
            libc::dlsym(libc::RTLD_DEFAULT, c"__asan_poison_memory_region".as_ptr()),
            libc::dlsym(
                libc::RTLD_DEFAULT,
                c"__asan_unpoison_memory_region".as_ptr(),
            ),
        )
    };
    if poison.is_null() || unpoison.is_null() {
        return false;
    }
    ASAN_POISON.store(poison as usize, Ordering::Relaxed);
    ASAN_UNPOISON.store(unpoison as usize, Ordering::Relaxed);
    TOOL.store(ASAN, Ordering::Relaxed);
    true
}

/// Is valgrind or ASan watching? One load of a flag set at load time.
#[inline(always)]
pub fn active() -> bool {
    TOOL.load(Ordering::Relaxed) != NONE
}

#[inline(always)]
fn tool() -> u8 {
    TOOL.load(Ordering::Relaxed)
}

fn asan_call(f: &AtomicUsize, p: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: only ever set from dlsym results of these two functions,
    // whose C signature is `void (void const volatile *, size_t)`.
    let f = unsafe { core::mem::transmute::<usize, AsanRegionFn>(f.load(Ordering::Relaxed)) };
    // SAFETY: ASan only updates its shadow for the range.
    unsafe { f(p.cast(), n) }
}

/// Makes `n` bytes at `p` inaccessible to the program.
fn protect(p: *const u8, n: usize) {
    match tool() {
        // SAFETY: a client request: valgrind only updates its shadow.
        VALGRIND => unsafe { zendmm_vg_noaccess(p.cast(), n) },
        ASAN => asan_call(&ASAN_POISON, p, n),
        _ => {}
    }
}

/// Makes `n` bytes at `p` accessible again (contents undefined).
fn unprotect(p: *const u8, n: usize) {
    match tool() {
        // SAFETY: a client request: valgrind only updates its shadow.
        VALGRIND => unsafe { zendmm_vg_undefined(p.cast(), n) },
        ASAN => asan_call(&ASAN_UNPOISON, p, n),
        _ => {}
    }
}

std::thread_local! {
    /// A [`quiet`] scope of this thread is open.
    static QUIET_OPEN: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, one heap operation, with valgrind's error reporting off for
/// this thread. Scopes never nest: one found open was left by a handler
/// that `longjmp`ed out of a corruption report, and is closed first.
pub(crate) fn quiet<R>(f: impl FnOnce() -> R) -> R {
    if tool() != VALGRIND {
        return f();
    }
    QUIET_OPEN.with(|open| {
        // SAFETY: client requests on this thread's error reporting.
        unsafe {
            if open.replace(true) {
                zendmm_vg_quiet(0);
            }
            zendmm_vg_quiet(1);
        }
    });
    let r = f();
    QUIET_OPEN.with(|open| open.set(false));
    // SAFETY: as above.
    unsafe { zendmm_vg_quiet(0) };
    r
}

/// Usable bytes of the used block whose data is `p`, or 0 when `p` is not
/// one (the heap then reports it).
///
/// # Safety
/// `p` points 8 bytes into readable memory, as `efree` requires. Under
/// valgrind, call inside [`quiet`].
pub(crate) unsafe fn usable_size(p: *mut u8) -> usize {
    let b = Block::from_data_unchecked(p);
    // SAFETY: caller's contract.
    let tag = unsafe { b.tag() };
    if tag == crate::block::Tag::HUGE {
        // SAFETY: a huge block's mapping header precedes it (huge.rs).
        return unsafe { Segment::of_first_block(b).huge_size() } - HEADER_SIZE;
    }
    if tag.is_used() && tag.size() >= HEADER_SIZE {
        tag.size() - HEADER_SIZE
    } else {
        0
    }
}

/// Block `p` of `n` usable bytes goes to the program.
pub(crate) fn handed_out(p: *mut u8, n: usize) {
    match tool() {
        // SAFETY: a client request describing a block zendmm just carved.
        VALGRIND => unsafe { zendmm_vg_malloclike(p.cast(), n) },
        ASAN => asan_call(&ASAN_UNPOISON, p, n),
        _ => {}
    }
}

/// The program is about to free `p`: valgrind checks the free itself (a
/// double or invalid free is reported with both stacks) and forgets the
/// block. Called before the heap operation.
pub(crate) fn freeing(p: *mut u8) {
    if tool() == VALGRIND {
        // SAFETY: a client request; an unknown `p` is reported, not followed.
        unsafe { zendmm_vg_freelike(p.cast()) }
    }
}

/// Block `p` of `n` usable bytes has been freed. Called after the heap
/// operation: ASan checks `memset`, which a debug fill of freed blocks uses.
pub(crate) fn freed(p: *mut u8, n: usize) {
    if tool() == ASAN {
        asan_call(&ASAN_POISON, p, n);
    }
}

/// Block `p` was resized in place from `old` to `new` usable bytes.
pub(crate) fn resized(p: *mut u8, old: usize, new: usize) {
    match tool() {
        // SAFETY: a client request on a block valgrind knows at `p`.
        VALGRIND => unsafe { zendmm_vg_resize(p.cast(), old, new) },
        ASAN if new > old => asan_call(&ASAN_UNPOISON, p.wrapping_add(old), new - old),
        ASAN => asan_call(&ASAN_POISON, p.wrapping_add(new), old - new),
        _ => {}
    }
}

/// Realloc moved block `p` (`old` usable bytes) to `q` (`new`), keeping its
/// first `kept` bytes. `p_in_heap`: `p`'s memory is still in the heap (a
/// free block now), not given back with a moved segment.
pub(crate) fn moved(p: *mut u8, old: usize, q: *mut u8, new: usize, kept: usize, p_in_heap: bool) {
    match tool() {
        VALGRIND => {
            // Forget `p` first: when its segment moved, its address range
            // went back to the system, and the buffer below may be there.
            // SAFETY: a client request on a block valgrind knows.
            unsafe { zendmm_vg_freelike(p.cast()) };
            // A new malloc-like block is all undefined: carry over the
            // definedness of the bytes realloc copied.
            let mut bits = vec![0u8; kept];
            // `q` holds the `kept` copied bytes, made addressable by
            // `copy_to_fresh_block` or moved with its segment.
            // SAFETY: client requests on those bytes; `bits` has `kept` bytes.
            unsafe {
                let got = quiet(|| zendmm_vg_get_vbits(q.cast(), bits.as_mut_ptr().cast(), kept));
                zendmm_vg_malloclike(q.cast(), new);
                if got == 1 {
                    zendmm_vg_set_vbits(q.cast(), bits.as_ptr().cast(), kept);
                }
            }
        }
        ASAN => {
            asan_call(&ASAN_UNPOISON, q, new);
            if p_in_heap {
                asan_call(&ASAN_POISON, p, old);
            }
        }
        _ => {}
    }
}

/// Request shutdown forgets every block at once: valgrind must forget them
/// too, or it reports them as leaks.
///
/// # Safety
/// `blocks` yields the data pointers of the blocks the program holds.
pub(crate) unsafe fn forget(blocks: impl Iterator<Item = *mut u8>) {
    if tool() == VALGRIND {
        for p in blocks {
            // SAFETY: a client request on a block valgrind knows.
            unsafe { zendmm_vg_freelike(p.cast()) }
        }
    }
}

/// Protects the blocks area of a segment after the heap re-formatted it.
///
/// # Safety
/// `seg` is a live segment of `size` bytes holding no block of the program.
pub(crate) unsafe fn protect_segment(seg: Segment, size: usize) {
    protect_around(seg.as_ptr(), size, None);
}

/// Copies `len` bytes into a block the heap has just allocated and not yet
/// handed out (realloc moving a block). The block is still protected:
/// ASan would report the `memcpy`, and under valgrind the copy would lose
/// the bytes' definedness.
///
/// # Safety
/// As `ptr::copy_nonoverlapping`.
#[inline]
pub unsafe fn copy_to_fresh_block(src: *const u8, dst: *mut u8, len: usize) {
    if active() {
        unprotect(dst, len);
    }
    // SAFETY: caller's contract.
    unsafe { ptr::copy_nonoverlapping(src, dst, len) }
}

/// Under valgrind, a segment the storage got from malloc stops being one
/// malloc'd block beyond its links (see `zendmm_vg_shrink_chunk`).
fn detach(seg: *mut u8, size: usize) {
    if tool() == VALGRIND {
        // SAFETY: a quiet client request; valgrind only updates its records.
        unsafe { zendmm_vg_shrink_chunk(seg.cast(), size, SEGMENT_LINKS_SIZE) };
    }
}

/// Undoes [`detach`] before the storage frees or resizes the segment.
fn attach(seg: *mut u8, size: usize) {
    if tool() == VALGRIND {
        // SAFETY: as in `detach`.
        unsafe { zendmm_vg_grow_chunk(seg.cast(), SEGMENT_LINKS_SIZE, size) };
    }
}

/// Valgrind's definedness bits of `n` bytes at `p`, or None without
/// valgrind.
fn vbits(p: *const u8, n: usize) -> Option<Vec<u8>> {
    if tool() != VALGRIND {
        return None;
    }
    let mut bits = vec![0u8; n];
    // SAFETY: a client request writing `n` bytes into `bits`.
    let got = unsafe { zendmm_vg_get_vbits(p.cast(), bits.as_mut_ptr().cast(), n) };
    (got == 1).then_some(bits)
}

/// Protects a segment of `size` bytes at `seg`, except `keep`. The
/// segment header stays readable: it links the heap's segments, and both
/// leak checkers (memcheck's, and LSan's, which ignores pointers in
/// poisoned memory) must follow that list to see the segments are in use.
fn protect_around(seg: *mut u8, size: usize, keep: Option<(usize, usize)>) {
    set_around(seg, size, keep, true)
}

fn set_around(seg: *mut u8, size: usize, keep: Option<(usize, usize)>, protected: bool) {
    let start = SEGMENT_HEADER_SIZE;
    let set = |from: usize, to: usize| {
        if to > from {
            let p = seg.wrapping_add(from);
            if protected {
                protect(p, to - from)
            } else {
                unprotect(p, to - from)
            }
        }
    };
    match keep {
        Some((off, len)) => {
            set(start, off);
            set(off + len, size);
        }
        None => set(start, size),
    }
}

/// Storage wrapper for a heap a tool watches: new segments start protected,
/// released ones are made accessible first (an address range mmap later
/// reuses must not stay poisoned, and a custom storage may reuse chunks).
pub struct ToolStorage {
    inner: &'static dyn Storage,
}

impl ToolStorage {
    pub fn new(inner: &'static dyn Storage) -> ToolStorage {
        ToolStorage { inner }
    }

    /// Offset and usable size of the first block's data: the heap resizes
    /// a segment only for its first block, the segment's one live block
    /// (`Heap::realloc_segment`), whose bytes must keep their state.
    ///
    /// # Safety
    /// `seg` is a live segment whose first block is used.
    unsafe fn first_block(seg: *mut u8) -> (usize, usize) {
        // SAFETY: caller's contract.
        let b = unsafe { Segment::from_raw(seg).first_block() };
        // SAFETY: as above; the header is inside the segment.
        let n = unsafe { usable_size(b.data()) };
        (SEGMENT_HEADER_SIZE + HEADER_SIZE, n)
    }
}

// SAFETY: forwards every call to the wrapped storage, which keeps the
// Storage contract; the wrapper only changes the tools' view of the memory.
unsafe impl Storage for ToolStorage {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn alloc(&self, size: usize) -> *mut u8 {
        let p = self.inner.alloc(size);
        if !p.is_null() {
            detach(p, size);
            protect_around(p, size, None);
        }
        p
    }

    unsafe fn realloc(&self, p: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: the heap resizes only segments whose first block is its
        // one live block.
        let keep = unsafe { ToolStorage::first_block(p) };
        // Re-attaching a malloc'd segment makes the kept block undefined.
        let bits = vbits(p.wrapping_add(keep.0), keep.1);
        attach(p, old);
        // The storage may copy the segment with memcpy (ASan checks it),
        // and under valgrind the copy keeps the state of each byte.
        set_around(p, old, Some(keep), false);
        // SAFETY: caller's contract.
        let q = unsafe { self.inner.realloc(p, old, new) };
        let (seg, size) = if q.is_null() { (p, old) } else { (q, new) };
        detach(seg, size);
        protect_around(seg, size, Some(keep));
        if let Some(bits) = bits {
            // Detaching made the kept block noaccess with the rest.
            let kept = seg.wrapping_add(keep.0);
            unprotect(kept, keep.1);
            // SAFETY: a client request on the kept block's bytes, now
            // addressable; `bits` has that many bytes.
            unsafe { zendmm_vg_set_vbits(kept.cast(), bits.as_ptr().cast(), keep.1) };
        }
        q
    }

    unsafe fn free(&self, p: *mut u8, size: usize) {
        attach(p, size);
        unprotect(p, size);
        // SAFETY: caller's contract.
        unsafe { self.inner.free(p, size) }
    }

    fn compact(&self) {
        self.inner.compact()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tool_in_plain_test_runs() {
        // cargo test runs neither under valgrind nor with ASan.
        assert!(!detect());
        assert!(!active());
    }

    #[test]
    fn copy_to_fresh_block_copies() {
        let src = [7u8; 40];
        let mut dst = [0u8; 40];
        // SAFETY: two distinct 40-byte arrays.
        unsafe { copy_to_fresh_block(src.as_ptr(), dst.as_mut_ptr(), 40) };
        assert_eq!(dst, src);
    }
}
