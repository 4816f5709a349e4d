//! Blocks and their boundary tags: the only module that turns addresses into
//! block headers and back.
//!
//! A segment is carved into blocks laid end to end. Every block starts with a
//! 16-byte header of two words, `size` and `prev`, each a [`Tag`]: the block's
//! size in bytes (header included, a multiple of 8) with the block's type in
//! the two low bits. `prev` is a copy of the previous block's `size` tag, so
//! both neighbours of a block are found in O(1) (PHP's `_size`/`_prev`).
//!
//! Free blocks use the words after the header as links (`zend_mm_free_block`):
//! `prev_free`, `next_free`, and for large blocks in the size trie `parent`,
//! `child[0]`, `child[1]`.
//!
//! Invariants (cited as I1..I5 in `// SAFETY:` comments):
//! - I1 `next(b).prev == b.size` for every block before a segment's guard.
//! - I2 no two neighbouring blocks are both free (free coalesces at once).
//! - I3 each free block is in exactly one of: a small bucket, the large trie,
//!   the rest list, or is the designated victim; each cached block is on
//!   exactly one fastcache stack.
//! - I4 a segment's first block has `prev == Tag::FIRST`; its last header is a
//!   guard (`GUARD | HEADER_SIZE`), which reads as used and is never merged.
//! - I5 every block size is a multiple of `ALIGNMENT` and at least `MIN_SIZE`.

use core::ptr;

/// Block sizes and data addresses are multiples of this (PHP's
/// `ZEND_MM_ALIGNMENT`). 16, as glibc's malloc gives: PHP code relies on it
/// (ext/hash keeps SSE state in emalloc'd contexts, which ZendMM 8's bins
/// happen to align), and so does C code using `max_align_t`.
pub const ALIGNMENT: usize = 16;
/// The boundary tag: `size` and `prev` words.
pub const HEADER_SIZE: usize = 16;
/// Header plus two free-list links: the smallest block, and the smallest
/// remainder worth splitting off (`ZEND_MM_ALIGNED_MIN_HEADER_SIZE`).
pub const MIN_SIZE: usize = 32;
/// Header plus the five links a block in the large trie needs.
pub const LARGE_FREE_SIZE: usize = HEADER_SIZE + 5 * core::mem::size_of::<usize>();

const TYPE_MASK: usize = 0b111;
/// Sizes are multiples of 16: the low four bits are never part of one.
const SIZE_MASK: usize = !(ALIGNMENT - 1);
const USED_BIT: usize = 0b01;
/// On a free block, bit 1 marks membership of the rest list; on a used block
/// it marks a guard. Bit 0 alone decides "used" (PHP's `ZEND_MM_IS_FREE_BLOCK`).
const SECOND_BIT: usize = 0b10;
/// On a free block: the designated victim (`FreeLists::dv`), in no list.
const DV_BIT: usize = 0b100;

/// A boundary-tag word: size with the block type in the two low bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tag(usize);

impl Tag {
    /// The `prev` tag of a segment's first block (PHP's `ZEND_MM_GUARD_BLOCK`).
    pub const FIRST: Tag = Tag(USED_BIT | SECOND_BIT);
    /// The `size` tag of a segment's closing guard.
    pub const GUARD: Tag = Tag(HEADER_SIZE | USED_BIT | SECOND_BIT);

    #[inline(always)]
    pub const fn used(size: usize) -> Tag {
        Tag(size | USED_BIT)
    }
    #[inline(always)]
    pub const fn free(size: usize) -> Tag {
        Tag(size)
    }
    #[inline(always)]
    pub const fn rest(size: usize) -> Tag {
        Tag(size | SECOND_BIT)
    }
    #[inline(always)]
    pub const fn dv(size: usize) -> Tag {
        Tag(size | DV_BIT)
    }
    #[inline(always)]
    pub const fn size(self) -> usize {
        self.0 & SIZE_MASK
    }
    #[inline(always)]
    pub const fn is_free(self) -> bool {
        self.0 & USED_BIT == 0
    }
    /// Used and not a guard: a block handed out (or cached).
    #[inline(always)]
    pub const fn is_used(self) -> bool {
        self.0 & TYPE_MASK == USED_BIT
    }
    #[inline(always)]
    pub const fn is_guard(self) -> bool {
        self.0 & TYPE_MASK == (USED_BIT | SECOND_BIT)
    }
    /// A free block that sits on the rest list.
    #[inline(always)]
    pub const fn is_rest(self) -> bool {
        self.0 & TYPE_MASK == SECOND_BIT
    }
    /// The free block small requests are carved from (`FreeLists::dv`).
    #[inline(always)]
    pub const fn is_dv(self) -> bool {
        self.0 & TYPE_MASK == DV_BIT
    }
    #[inline(always)]
    pub const fn raw(self) -> usize {
        self.0
    }
    #[inline(always)]
    pub const fn from_raw(raw: usize) -> Tag {
        Tag(raw)
    }
}

/// Rounds a request up to a block's true size (PHP's `ZEND_MM_TRUE_SIZE`);
/// `None` when the arithmetic overflows.
#[inline(always)]
pub const fn true_size(request: usize) -> Option<usize> {
    if request < MIN_SIZE - HEADER_SIZE {
        return Some(MIN_SIZE);
    }
    match request.checked_add(HEADER_SIZE + ALIGNMENT - 1) {
        Some(s) => Some(s & !(ALIGNMENT - 1)),
        None => None,
    }
}

/// A pointer to a block header. Copyable and unchecked: whoever makes one
/// vouches that it points at a header inside a live segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Block(*mut usize);

/// Word offsets inside a block.
const SIZE: usize = 0;
const PREV: usize = 1;
const PREV_FREE: usize = 2;
const NEXT_FREE: usize = 3;
const PARENT: usize = 4;
const CHILD: usize = 5;

impl Block {
    pub const NULL: Block = Block(ptr::null_mut());

    #[inline(always)]
    pub fn is_null(self) -> bool {
        self.0.is_null()
    }

    #[inline(always)]
    pub fn addr(self) -> usize {
        self.0 as usize
    }

    /// The block that starts at `base + offset` bytes.
    ///
    /// # Safety
    /// The result must stay inside the allocation `base` belongs to.
    #[inline(always)]
    pub unsafe fn at(base: *mut u8, offset: usize) -> Block {
        // SAFETY: the caller keeps the offset inside the segment.
        Block(unsafe { base.add(offset) }.cast())
    }

    /// The header of the block whose data starts at `data`.
    ///
    /// # Safety
    /// `data` must have been returned by [`Block::data`] of a live block.
    #[inline(always)]
    pub unsafe fn from_data(data: *mut u8) -> Block {
        // SAFETY: the header sits right before the data, in the same segment.
        Block(unsafe { data.sub(HEADER_SIZE) }.cast())
    }

    /// The header of the block whose data would start at `data`, for pointers
    /// not yet trusted: the caller validates what it reads.
    #[inline(always)]
    pub fn from_data_unchecked(data: *mut u8) -> Block {
        Block(data.wrapping_sub(HEADER_SIZE).cast())
    }

    #[inline(always)]
    pub fn data(self) -> *mut u8 {
        self.0.cast::<u8>().wrapping_add(HEADER_SIZE)
    }

    #[inline(always)]
    pub fn as_ptr(self) -> *mut u8 {
        self.0.cast()
    }

    /// # Safety
    /// `self` points at a readable block header.
    #[inline(always)]
    unsafe fn word(self, i: usize) -> usize {
        // SAFETY: words 0..=1 are the header; later words are read only on
        // free blocks large enough to hold them (I5, LARGE_FREE_SIZE).
        unsafe { self.0.add(i).read() }
    }

    /// # Safety
    /// As [`Block::word`], writable.
    #[inline(always)]
    unsafe fn set_word(self, i: usize, v: usize) {
        // SAFETY: see `word`.
        unsafe { self.0.add(i).write(v) }
    }

    /// # Safety
    /// `self` points at a block header in a live segment.
    #[inline(always)]
    pub unsafe fn tag(self) -> Tag {
        // SAFETY: caller's contract.
        Tag(unsafe { self.word(SIZE) })
    }

    /// # Safety
    /// `self` points at a block header in a live segment.
    #[inline(always)]
    pub unsafe fn prev_tag(self) -> Tag {
        // SAFETY: caller's contract.
        Tag(unsafe { self.word(PREV) })
    }

    /// # Safety
    /// `self` is a block header in a live segment.
    #[inline(always)]
    pub unsafe fn set_prev_tag(self, tag: Tag) {
        // SAFETY: caller's contract.
        unsafe { self.set_word(PREV, tag.0) }
    }

    /// The block `offset` bytes further on.
    ///
    /// # Safety
    /// The result must stay inside the same segment.
    #[inline(always)]
    pub unsafe fn plus(self, offset: usize) -> Block {
        // SAFETY: caller's contract.
        Block(unsafe { self.0.cast::<u8>().add(offset) }.cast())
    }

    /// The following block (never past the guard, I4).
    ///
    /// # Safety
    /// `self` is a non-guard block with a correct size tag.
    #[inline(always)]
    pub unsafe fn next(self) -> Block {
        // SAFETY: a non-guard block is followed by another header (I4).
        unsafe { self.plus(self.tag().size()) }
    }

    /// The preceding block.
    ///
    /// # Safety
    /// `self` is not a segment's first block and I1 holds for the previous one.
    #[inline(always)]
    pub unsafe fn prev(self) -> Block {
        // SAFETY: caller's contract.
        Block(unsafe { self.0.cast::<u8>().sub(self.prev_tag().size()) }.cast())
    }

    /// Writes the size tag and mirrors it into the next block's `prev`
    /// (PHP's `ZEND_MM_BLOCK`), keeping I1.
    ///
    /// # Safety
    /// `self` and `self + tag.size()` are headers in the same live segment.
    #[inline(always)]
    pub unsafe fn set_tag(self, tag: Tag) {
        // SAFETY: caller's contract.
        unsafe {
            self.set_word(SIZE, tag.0);
            self.plus(tag.size()).set_word(PREV, tag.0);
        }
    }

    /// Writes only the size tag, for guards and for blocks whose successor
    /// is written separately.
    ///
    /// # Safety
    /// `self` is a header in a live segment.
    #[inline(always)]
    pub unsafe fn set_tag_only(self, tag: Tag) {
        // SAFETY: caller's contract.
        unsafe { self.set_word(SIZE, tag.0) }
    }

    /// # Safety
    /// `self` is a free (or cached) block.
    #[inline(always)]
    pub unsafe fn prev_free(self) -> Block {
        // SAFETY: every block has room for two links (MIN_SIZE).
        Block(unsafe { self.word(PREV_FREE) } as *mut usize)
    }
    /// # Safety
    /// `self` is a free (or cached) block.
    #[inline(always)]
    pub unsafe fn next_free(self) -> Block {
        // SAFETY: every block has room for two links (MIN_SIZE).
        Block(unsafe { self.word(NEXT_FREE) } as *mut usize)
    }
    /// # Safety
    /// `self` is a free (or cached) block.
    #[inline(always)]
    pub unsafe fn set_prev_free(self, b: Block) {
        // SAFETY: every block has room for two links (MIN_SIZE).
        unsafe { self.set_word(PREV_FREE, b.0 as usize) }
    }
    /// # Safety
    /// `self` is a free (or cached) block.
    #[inline(always)]
    pub unsafe fn set_next_free(self, b: Block) {
        // SAFETY: every block has room for two links (MIN_SIZE).
        unsafe { self.set_word(NEXT_FREE, b.0 as usize) }
    }

    /// The trie slot pointing at this node (see `free_lists::Parent`).
    ///
    /// # Safety
    /// `self` is a free block of at least `LARGE_FREE_SIZE` bytes.
    #[inline(always)]
    pub unsafe fn parent(self) -> usize {
        // SAFETY: large free blocks hold five links.
        unsafe { self.word(PARENT) }
    }
    /// # Safety
    /// As [`Block::parent`].
    #[inline(always)]
    pub unsafe fn set_parent(self, p: usize) {
        // SAFETY: large free blocks hold five links.
        unsafe { self.set_word(PARENT, p) }
    }
    /// # Safety
    /// As [`Block::parent`]; `i` is 0 or 1.
    #[inline(always)]
    pub unsafe fn child(self, i: usize) -> Block {
        // SAFETY: large free blocks hold five links.
        Block(unsafe { self.word(CHILD + (i & 1)) } as *mut usize)
    }
    /// # Safety
    /// As [`Block::child`].
    #[inline(always)]
    pub unsafe fn set_child(self, i: usize, b: Block) {
        // SAFETY: large free blocks hold five links.
        unsafe { self.set_word(CHILD + (i & 1), b.0 as usize) }
    }
    /// The address of `child[i]`, stored in the child's `parent` word.
    #[inline(always)]
    pub fn child_slot(self, i: usize) -> usize {
        self.0.wrapping_add(CHILD + (i & 1)) as usize
    }
    /// The block whose `child[_]` word lives at `slot`.
    #[inline(always)]
    pub fn slot_target(slot: usize) -> *mut usize {
        slot as *mut usize
    }
    /// Reads the block pointer stored at a child slot address.
    ///
    /// # Safety
    /// `slot` is the address of a `child[_]` word of a live large free block.
    #[inline(always)]
    pub unsafe fn read_slot(slot: usize) -> Block {
        // SAFETY: caller's contract.
        Block(unsafe { (slot as *const usize).read() } as *mut usize)
    }
    /// # Safety
    /// As [`Block::read_slot`].
    #[inline(always)]
    pub unsafe fn write_slot(slot: usize, b: Block) {
        // SAFETY: caller's contract.
        unsafe { (slot as *mut usize).write(b.0 as usize) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_size_matches_php() {
        assert_eq!(true_size(0), Some(32));
        assert_eq!(true_size(15), Some(32));
        assert_eq!(true_size(16), Some(32));
        assert_eq!(true_size(17), Some(48));
        assert_eq!(true_size(1024), Some(1040));
        assert_eq!(true_size(usize::MAX), None);
        assert_eq!(true_size(usize::MAX - 30), None);
        assert_eq!(true_size(usize::MAX - 31), Some(usize::MAX - 15));
    }

    #[test]
    fn tags_keep_type_and_size_apart() {
        let t = Tag::used(48);
        assert!(t.is_used() && !t.is_free() && !t.is_guard() && t.size() == 48);
        let f = Tag::free(64);
        assert!(f.is_free() && !f.is_rest() && f.size() == 64);
        let r = Tag::rest(64);
        assert!(r.is_free() && r.is_rest() && r.size() == 64);
        let d = Tag::dv(64);
        assert!(d.is_free() && d.is_dv() && !d.is_rest() && d.size() == 64);
        assert!(Tag::GUARD.is_guard() && !Tag::GUARD.is_free());
        assert!(Tag::FIRST.is_guard() && Tag::FIRST.size() == 0);
    }

    #[test]
    fn neighbours_follow_the_tags() {
        let mut buf = [0usize; 32];
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: all offsets stay inside `buf` (256 bytes).
        unsafe {
            let a = Block::at(base, 0);
            a.set_prev_tag(Tag::FIRST);
            a.set_tag(Tag::used(64));
            let b = a.next();
            assert_eq!(b.addr(), a.addr() + 64);
            b.set_tag(Tag::free(96));
            assert_eq!(b.prev(), a);
            assert_eq!(b.next().prev_tag(), Tag::free(96));
            assert_eq!(Block::from_data(a.data()), a);
        }
    }
}
