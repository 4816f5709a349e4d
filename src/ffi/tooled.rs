//! `_emalloc` & co. on a heap that valgrind or ASan watches (`Custom::Tool`,
//! see `crate::tool`): the ordinary heap operation, run `tool::quiet` (quietly),
//! then the tool is told what it did to the program's blocks.
//!
//! The fastcache stays on: a cached block is protected like a free one, so
//! the tools see the same allocator, with the same addresses, usage figures
//! and errors, as a run without them.

use super::types::{zend_mm_heap, Custom};
use super::{complete, heap_of, process_heap};
use crate::block::Tag;
use crate::heap::Heap;
use crate::tool::{self, ToolStorage};
use core::ptr;
use libc::c_void;

/// Detects the tools when the library is loaded and, when one is there,
/// sends the process heap through this module.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static DETECT: extern "C" fn() = detect;

#[cfg(target_os = "linux")]
extern "C" fn detect() {
    if tool::detect() {
        // SAFETY: runs before main, before any allocation; see `heap_of`.
        unsafe { (*process_heap()).set_custom(Custom::Tool) };
    }
}

/// Runs `f` on `h`'s core heap with the tool told nothing: for operations
/// that only read the heap's structures or give whole segments back.
pub(crate) fn quietly<R>(h: *mut zend_mm_heap, f: impl FnOnce(&mut Heap) -> R) -> R {
    // SAFETY: see `heap_of`; the borrow ends with the call.
    let heap = unsafe { &mut *heap_of(h) };
    if !tool::active() {
        return f(heap);
    }
    tool::quiet(|| f(heap))
}

/// The `Custom` a heap with no handlers gets.
pub(crate) fn own_custom() -> Custom {
    if tool::active() {
        Custom::Tool
    } else {
        Custom::None
    }
}

/// Puts a new heap on the tooled path when a tool is active.
pub(crate) fn adopt_new(h: &mut zend_mm_heap) {
    if tool::active() {
        h.set_custom(Custom::Tool);
        adopt(h);
    }
}

/// Reads the heap's pending settings and wraps its storage (once), so that
/// every segment it takes from now on starts protected.
fn adopt(h: *mut zend_mm_heap) {
    // SAFETY: see `heap_of`.
    unsafe {
        if (*h).tool_storage.is_some() {
            return;
        }
        let heap = &mut *heap_of(h);
        heap.apply_env();
        let wrapper = Box::new(ToolStorage::new(heap.storage));
        // SAFETY: the box lives in the heap object, declared after `heap`,
        // so it outlives every use of this reference (dropped after the heap).
        heap.storage = &*(wrapper.as_ref() as *const ToolStorage);
        (*h).tool_storage = Some(wrapper);
    }
}

/// `_emalloc` on a tooled heap.
pub(crate) fn malloc(h: *mut zend_mm_heap, size: usize, fallible: bool) -> *mut c_void {
    adopt(h);
    let p = complete(h, fallible, |heap| tool::quiet(|| heap.alloc(size)));
    if !p.is_null() {
        // SAFETY: `p` is a block the heap just handed out.
        let n = tool::quiet(|| unsafe { tool::usable_size(p.cast()) });
        tool::handed_out(p.cast(), n);
    }
    p
}

/// `_efree` on a tooled heap.
///
/// # Safety
/// As `_efree`: `p` is a live block of `h` (the heap checks it).
pub(crate) unsafe fn free(h: *mut zend_mm_heap, p: *mut c_void) {
    let p = p.cast::<u8>();
    // SAFETY: caller's contract.
    let n = tool::quiet(|| unsafe { tool::usable_size(p) });
    tool::freeing(p);
    // SAFETY: caller's contract; see `heap_of`.
    tool::quiet(|| unsafe { (*heap_of(h)).free(p) });
    tool::freed(p, n);
}

/// `_erealloc2` on a tooled heap.
///
/// # Safety
/// As `_erealloc2`: `p` is NULL or a live block of `h`.
pub(crate) unsafe fn realloc(
    h: *mut zend_mm_heap,
    p: *mut c_void,
    size: usize,
    copy: usize,
    fallible: bool,
) -> *mut c_void {
    if p.is_null() {
        return malloc(h, size, fallible);
    }
    adopt(h);
    let p = p.cast::<u8>();
    // SAFETY: caller's contract.
    let old = tool::quiet(|| unsafe { tool::usable_size(p) });
    let q = complete(h, fallible, |heap| {
        // SAFETY: caller's contract.
        tool::quiet(|| unsafe { heap.realloc2(p, size, copy) })
    })
    .cast::<u8>();
    if q.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `q` is a block the heap just handed out; see `heap_of`.
    let (new, p_in_heap) =
        tool::quiet(|| unsafe { (tool::usable_size(q), q != p && (*heap_of(h)).owns(p)) });
    if q == p {
        tool::resized(p, old, new);
    } else {
        tool::moved(p, old, q, new, old.min(copy).min(new), p_in_heap);
    }
    q.cast()
}

/// `zend_mm_startup`'s and `start_memory_manager`'s part on a tooled heap.
pub(crate) fn start(h: *mut zend_mm_heap) {
    adopt(h);
    quietly(h, |heap| heap.start());
}

/// Ends a request (or with `full` everything) on a tooled heap: valgrind
/// forgets the program's blocks first, and the segment kept for the next
/// request is protected again.
pub(crate) fn shutdown(h: *mut zend_mm_heap, full: bool, silent: bool) {
    adopt(h);
    quietly(h, |heap| {
        // Cached blocks were freed by the program already.
        heap.gc();
        // SAFETY: the segments are live and walked by their tags (I1, I4).
        unsafe { tool::forget(live_blocks(heap)) };
        heap.shutdown(full, silent);
        let mut seg = heap.segments.head();
        while !seg.is_null() {
            // SAFETY: listed segments are live; after shutdown they hold no
            // block of the program.
            unsafe {
                tool::protect_segment(seg, seg.size());
                seg = seg.next();
            }
        }
    });
}

/// The data pointers of the blocks the program holds: every used block but
/// the reserve. The cache must be empty.
fn live_blocks(heap: &Heap) -> impl Iterator<Item = *mut u8> + '_ {
    segment_blocks(heap).chain(heap.huge_blocks().map(|(p, _)| p))
}

fn segment_blocks(heap: &Heap) -> impl Iterator<Item = *mut u8> + '_ {
    let mut seg = heap.segments.head();
    // SAFETY: listed segments are live.
    let mut b = (!seg.is_null()).then(|| unsafe { seg.first_block() });
    core::iter::from_fn(move || loop {
        let cur = b?;
        // SAFETY: blocks are walked by their tags up to the guard (I1, I4);
        // then the next segment.
        unsafe {
            let t: Tag = cur.tag();
            if t.is_guard() || t.size() == 0 {
                seg = seg.next();
                b = (!seg.is_null()).then(|| seg.first_block());
                continue;
            }
            b = Some(cur.next());
            if t.is_used() && cur.data() != heap.reserve {
                return Some(cur.data());
            }
        }
    })
}
