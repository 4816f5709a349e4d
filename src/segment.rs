//! Segments: the big areas taken from storage and carved into blocks.
//!
//! Layout of a segment of `size` bytes (`size` a multiple of the heap's
//! segment size, itself a power of two):
//!
//! ```text
//! [segment header: 40 B][first block ...][... blocks ...][guard header: 8 B]
//! ```
//!
//! The header holds the segment's size and its links in the heap's
//! doubly-linked segment list, so a segment that empties out is unlinked in
//! O(1) (PHP 5.3 walks a singly-linked list here).

use crate::block::{Block, Tag, HEADER_SIZE};
use core::ptr;

/// Bytes before the first block (PHP's `ZEND_MM_ALIGNED_SEGMENT_SIZE`):
/// 8 modulo 16, so that blocks start there too (see `block.rs`, I5).
pub const SEGMENT_HEADER_SIZE: usize = 32 + crate::block::BLOCK_OFFSET;
/// Header plus guard: what a segment costs beyond its blocks.
pub const SEGMENT_OVERHEAD: usize = SEGMENT_HEADER_SIZE + HEADER_SIZE;

const SIZE: usize = 0;
const PREV: usize = 1;
const NEXT: usize = 2;
/// A huge block's true size (`huge.rs`); unused in segments.
const HUGE_SIZE: usize = 3;
/// The header bytes that hold the size and the links (`tool.rs` keeps
/// only these inside memcheck's view of a malloc'd segment).
pub const SEGMENT_LINKS_SIZE: usize = (NEXT + 1) * core::mem::size_of::<usize>();

/// A pointer to a segment header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Segment(*mut usize);

impl Segment {
    pub const NULL: Segment = Segment(ptr::null_mut());

    #[inline]
    pub fn from_raw(p: *mut u8) -> Segment {
        Segment(p.cast())
    }
    #[inline]
    pub fn as_ptr(self) -> *mut u8 {
        self.0.cast()
    }
    #[inline]
    pub fn is_null(self) -> bool {
        self.0.is_null()
    }

    /// The segment whose first block is `b`.
    #[inline]
    pub fn of_first_block(b: Block) -> Segment {
        Segment(b.as_ptr().wrapping_sub(SEGMENT_HEADER_SIZE).cast())
    }

    /// # Safety
    /// `self` is a live segment.
    #[inline]
    pub unsafe fn size(self) -> usize {
        // SAFETY: the header is the segment's first 40 bytes.
        unsafe { self.0.add(SIZE).read() }
    }
    /// # Safety
    /// `self` is a live segment.
    #[inline]
    pub unsafe fn next(self) -> Segment {
        // SAFETY: as `size`.
        Segment(unsafe { self.0.add(NEXT).read() } as *mut usize)
    }
    /// # Safety
    /// `self` is a live segment.
    #[inline]
    pub unsafe fn prev(self) -> Segment {
        // SAFETY: as `size`.
        Segment(unsafe { self.0.add(PREV).read() } as *mut usize)
    }
    /// # Safety
    /// `self` is a live segment.
    unsafe fn set_next(self, s: Segment) {
        // SAFETY: as `size`.
        unsafe { self.0.add(NEXT).write(s.0 as usize) }
    }
    /// # Safety
    /// `self` is a live segment.
    unsafe fn set_prev(self, s: Segment) {
        // SAFETY: as `size`.
        unsafe { self.0.add(PREV).write(s.0 as usize) }
    }

    /// # Safety
    /// `self` is a live segment.
    #[inline]
    pub unsafe fn first_block(self) -> Block {
        // SAFETY: the first block follows the header inside the segment.
        unsafe { Block::at(self.as_ptr(), SEGMENT_HEADER_SIZE) }
    }

    /// # Safety
    /// `self` is a live segment with a correct size.
    #[inline]
    pub unsafe fn guard(self) -> Block {
        // SAFETY: the guard is the segment's last header.
        unsafe { Block::at(self.as_ptr(), self.size() - HEADER_SIZE) }
    }

    /// Does `addr` fall inside this segment's blocks?
    ///
    /// # Safety
    /// `self` is a live segment.
    #[inline]
    pub unsafe fn contains(self, addr: usize) -> bool {
        let start = self.as_ptr() as usize;
        // SAFETY: caller's contract.
        addr >= start + SEGMENT_HEADER_SIZE && addr < start + unsafe { self.size() }
    }

    /// Writes a fresh layout into `size` bytes at `raw`: the header, one
    /// first block spanning everything, and the guard. Returns the first block,
    /// tagged free but in no list.
    ///
    /// # Safety
    /// `raw` points to `size` writable bytes, `size >= SEGMENT_OVERHEAD + MIN_SIZE`
    /// and a multiple of `ALIGNMENT`.
    pub unsafe fn format(raw: *mut u8, size: usize) -> (Segment, Block) {
        let seg = Segment::from_raw(raw);
        // SAFETY: all writes stay inside the `size` bytes (caller's contract).
        unsafe {
            seg.0.add(SIZE).write(size);
            let first = seg.first_block();
            first.set_prev_tag(Tag::FIRST);
            first.set_tag(Tag::free(size - SEGMENT_OVERHEAD));
            seg.guard().set_tag_only(Tag::guard(size));
            (seg, first)
        }
    }

    /// Writes the layout of a huge block's mapping (`huge.rs`): the header
    /// with the block's true size `ts`, and the block, tagged `Tag::HUGE`.
    ///
    /// # Safety
    /// `raw` points to `size` writable bytes, `size >= ts + SEGMENT_OVERHEAD`.
    pub unsafe fn format_huge(raw: *mut u8, size: usize, ts: usize) -> (Segment, Block) {
        let seg = Segment::from_raw(raw);
        // SAFETY: all writes stay inside the header (caller's contract).
        unsafe {
            seg.0.add(SIZE).write(size);
            seg.0.add(HUGE_SIZE).write(ts);
            let b = seg.first_block();
            b.set_prev_tag(Tag::FIRST);
            b.set_tag_only(Tag::HUGE);
            (seg, b)
        }
    }

    /// The true size of the huge block in this mapping.
    ///
    /// # Safety
    /// `self` was formatted by [`Segment::format_huge`].
    #[inline]
    pub unsafe fn huge_size(self) -> usize {
        // SAFETY: as `size`.
        unsafe { self.0.add(HUGE_SIZE).read() }
    }

    /// Rewrites the size and guard after the storage resized the segment;
    /// returns the guard. The caller re-tags the blocks before it (I1).
    ///
    /// # Safety
    /// `self` now spans `size` bytes.
    pub unsafe fn resize(self, size: usize) -> Block {
        // SAFETY: caller's contract.
        unsafe {
            self.0.add(SIZE).write(size);
            let guard = self.guard();
            guard.set_tag_only(Tag::guard(size));
            guard
        }
    }
}

/// Reads a word that may not be mapped, without faulting: corruption
/// reports follow tags that cannot be trusted.
fn read_word_checked(addr: usize) -> Option<usize> {
    let mut word = 0usize;
    let local = libc::iovec {
        iov_base: (&mut word as *mut usize).cast(),
        iov_len: core::mem::size_of::<usize>(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: core::mem::size_of::<usize>(),
    };
    // SAFETY: the kernel writes at most one word into `word` and reports a
    // bad remote address as an error instead of faulting.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    (n == core::mem::size_of::<usize>() as isize).then_some(word)
}

/// The tag at byte `half` (0: prev, 4: size) of the header at `addr`,
/// read without faulting.
fn read_tag_checked(addr: usize, half: usize) -> Option<Tag> {
    let word = read_word_checked(addr)?;
    let shift = if cfg!(target_endian = "little") {
        half * 8
    } else {
        32 - half * 8
    };
    Some(Tag::from_raw((word >> shift) & 0xffff_ffff))
}

/// The segment holding `b`, found by following size tags forward to the
/// guard, which carries the segment's size, or else `prev` tags back to
/// the first block (a write past a block's end can wipe the next
/// header's size tag too); `(start, size)`. For error reports only: every
/// read is checked, and `None` means the tags led nowhere sane.
pub fn locate(b: Block) -> Option<(usize, usize)> {
    locate_forward(b.addr()).or_else(|| locate_backward(b.addr()))
}

const MAX_STEPS: usize = 1 << 16;

fn locate_forward(mut addr: usize) -> Option<(usize, usize)> {
    for _ in 0..MAX_STEPS {
        let tag = read_tag_checked(addr, 4)?;
        if tag.is_guard() {
            let size = tag.size();
            let start = (addr + HEADER_SIZE).checked_sub(size)?;
            return (read_word_checked(start)? == size).then_some((start, size));
        }
        if tag.size() < crate::block::MIN_SIZE {
            return None;
        }
        addr = addr.checked_add(tag.size())?;
    }
    None
}

fn locate_backward(mut addr: usize) -> Option<(usize, usize)> {
    for _ in 0..MAX_STEPS {
        let prev = read_tag_checked(addr, 0)?;
        if prev == Tag::FIRST {
            let start = addr.checked_sub(SEGMENT_HEADER_SIZE)?;
            let size = read_word_checked(start)?;
            let guard = (start + size).checked_sub(HEADER_SIZE)?;
            return (read_tag_checked(guard, 4)? == Tag::guard(size)).then_some((start, size));
        }
        if prev.size() < crate::block::MIN_SIZE || prev.is_guard() {
            return None;
        }
        addr = addr.checked_sub(prev.size())?;
    }
    None
}

/// The heap's segments, newest first, doubly linked through their headers.
#[derive(Debug)]
pub struct SegmentList {
    head: Segment,
    count: usize,
}

impl SegmentList {
    pub const fn new() -> SegmentList {
        SegmentList {
            head: Segment::NULL,
            count: 0,
        }
    }
    #[inline]
    pub fn head(&self) -> Segment {
        self.head
    }
    #[inline]
    pub fn count(&self) -> usize {
        self.count
    }

    /// # Safety
    /// `seg` is a formatted segment in no list.
    pub unsafe fn push(&mut self, seg: Segment) {
        // SAFETY: `seg` and the old head are live segments.
        unsafe {
            seg.set_prev(Segment::NULL);
            seg.set_next(self.head);
            if !self.head.is_null() {
                self.head.set_prev(seg);
            }
        }
        self.head = seg;
        self.count += 1;
    }

    /// # Safety
    /// `seg` is in this list.
    pub unsafe fn unlink(&mut self, seg: Segment) {
        // SAFETY: `seg` and its neighbours are live segments of this list.
        unsafe {
            let (prev, next) = (seg.prev(), seg.next());
            if prev.is_null() {
                self.head = next;
            } else {
                prev.set_next(next);
            }
            if !next.is_null() {
                next.set_prev(prev);
            }
        }
        self.count -= 1;
    }

    /// Points the list at `moved`, the new address of a segment the storage
    /// reallocated; its header still holds the old links.
    ///
    /// # Safety
    /// `moved` is a segment of this list that may have changed address.
    pub unsafe fn relink(&mut self, moved: Segment) {
        // SAFETY: the links copied with the header name live segments.
        unsafe {
            let (prev, next) = (moved.prev(), moved.next());
            if prev.is_null() {
                self.head = moved;
            } else {
                prev.set_next(moved);
            }
            if !next.is_null() {
                next.set_prev(moved);
            }
        }
    }

    /// Forgets every segment; the caller has released or will reuse them.
    pub fn clear(&mut self) {
        self.head = Segment::NULL;
        self.count = 0;
    }
}

impl Default for SegmentList {
    fn default() -> SegmentList {
        SegmentList::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formatted_segment_is_one_free_block_and_a_guard() {
        let mut mem = vec![0usize; 512];
        // SAFETY: 4096 bytes of `mem`.
        unsafe {
            let (seg, first) = Segment::format(mem.as_mut_ptr().cast(), 4096);
            assert_eq!(seg.size(), 4096);
            assert_eq!(first, seg.first_block());
            assert_eq!(first.tag(), Tag::free(4096 - SEGMENT_OVERHEAD));
            assert_eq!(first.prev_tag(), Tag::FIRST);
            assert_eq!(first.next(), seg.guard());
            assert!(seg.guard().tag().is_guard());
            assert_eq!(seg.guard().prev_tag(), first.tag());
            assert_eq!(Segment::of_first_block(first), seg);
            assert!(
                seg.contains(first.data() as usize) && !seg.contains(seg.as_ptr() as usize + 4096)
            );
        }
    }

    #[test]
    fn the_list_links_both_ways() {
        let mut mems: Vec<Vec<usize>> = (0..3).map(|_| vec![0usize; 16]).collect();
        let mut list = SegmentList::new();
        let segs: Vec<Segment> = mems
            .iter_mut()
            .map(|m| Segment::from_raw(m.as_mut_ptr().cast()))
            .collect();
        // SAFETY: each fake segment has room for its header.
        unsafe {
            for &s in &segs {
                list.push(s);
            }
            assert_eq!((list.head(), list.count()), (segs[2], 3));
            list.unlink(segs[1]);
            assert_eq!(segs[2].next(), segs[0]);
            assert_eq!(segs[0].prev(), segs[2]);
            list.unlink(segs[2]);
            assert_eq!((list.head(), list.count()), (segs[0], 1));
            assert!(segs[0].prev().is_null());
        }
    }
}
