//! Blocks and their boundary tags: the only module that turns addresses into
//! block headers and back.
//!
//! A segment is carved into blocks laid end to end. Every block starts with
//! an 8-byte header of two 32-bit [`Tag`]s, `prev` and `size`: the block's
//! size in bytes (header included, a multiple of 16) with the block's type in
//! the low bits. `prev` is a copy of the previous block's `size` tag, so
//! both neighbours of a block are found in O(1) (PHP's `_prev`/`_size`).
//! `prev` comes first on purpose: the bytes right after a block's usable
//! bytes are the next block's copy of this block's tag, so a write past the
//! end changes it, and `efree` compares the two before trusting the block.
//!
//! Blocks start 8 bytes before a 16-byte boundary, so their data is
//! 16-aligned while the header costs 8 bytes, not 16 (PHP 5.3 spends two
//! full words): a request of 24 bytes takes a 32-byte block. Tags are 32
//! bits, so a block in a segment is below 4 GiB; bigger requests get a
//! mapping of their own (`huge.rs`).
//!
//! Free blocks use the words after the header as links (`zend_mm_free_block`):
//! `prev_free`, `next_free`, and for large blocks in the size trie `parent`,
//! `child[0]`, `child[1]`. Links are stored XORed with the heap's secret key
//! and checked before they are followed (see [`Block::check_links`]), so a forged or
//! overwritten link is reported instead of followed.
//!
//! Invariants (cited as I1..I5 in `// SAFETY:` comments):
//! - I1 `next(b).prev == b.size` for every block before a segment's guard.
//! - I2 no two neighbouring blocks are both free (free coalesces at once).
//! - I3 each free block is in exactly one of: a small bucket, the large trie,
//!   the rest list, or is the designated victim; each cached block is on
//!   exactly one fastcache or large stack and carries `CACHED_BIT`.
//! - I4 a segment's first block has `prev == Tag::FIRST`; its last header is a
//!   guard (`Tag::guard(segment size)`), which reads as used and is never merged.
//! - I5 every block size is a multiple of `ALIGNMENT`, at least `MIN_SIZE`
//!   and below 4 GiB; every block starts at 8 modulo 16.

use core::ptr;

/// Block sizes and data addresses are multiples of this (PHP's
/// `ZEND_MM_ALIGNMENT`). 16, as glibc's malloc gives: PHP code relies on it
/// (ext/hash keeps SSE state in emalloc'd contexts, which ZendMM 8's bins
/// happen to align), and so does C code using `max_align_t`.
pub const ALIGNMENT: usize = 16;
/// The boundary tag: the `prev` and `size` tags, 32 bits each.
pub const HEADER_SIZE: usize = 8;
/// Header plus two free-list links, rounded up to `ALIGNMENT`: the smallest
/// block, and the smallest remainder worth splitting off
/// (`ZEND_MM_ALIGNED_MIN_HEADER_SIZE`).
pub const MIN_SIZE: usize = 32;
/// Where blocks start modulo `ALIGNMENT`: their data is aligned.
pub const BLOCK_OFFSET: usize = ALIGNMENT - HEADER_SIZE;
/// The largest block a 32-bit tag can hold; bigger requests are huge.
pub const MAX_BLOCK_SIZE: usize = (u32::MAX as usize) & !(ALIGNMENT - 1);
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
/// On a used block: it rests in the fastcache (so `efree` of it is a double
/// free). Shares its bit with `DV_BIT`, which only free blocks carry.
pub const CACHED_BIT: usize = 0b100;
/// On a used block: the parity of the request that allocated it, so a block
/// freed after its request ended is told from a live one (`Heap::used_bits`).
pub const EPOCH_BIT: usize = 0b1000;
/// The bits `efree` compares against `Heap::used_bits`: type and epoch.
pub const KIND_MASK: usize = TYPE_MASK | EPOCH_BIT;
/// A kind no tag has: the epoch bit marks used tags only, never free ones.
pub const NO_KIND: usize = EPOCH_BIT | SECOND_BIT | DV_BIT;
/// A decoded link must be 8-aligned and a user-space address (below 2^47):
/// a forged or overwritten link fails this with near certainty once XORed
/// with a random key. (Blocks start at 8 modulo 16; null must pass too.)
const LINK_CHECK_MASK: usize = !((1usize << 47) - 1) | (HEADER_SIZE - 1);
/// As `LINK_CHECK_MASK` for `parent` words, which also hold 8-aligned slot
/// addresses and small odd root numbers.
const PARENT_CHECK_MASK: usize = !((1usize << 47) - 1);

/// A boundary tag: size with the block type in the four low bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tag(u32);

impl Tag {
    /// The `prev` tag of a segment's first block (PHP's `ZEND_MM_GUARD_BLOCK`).
    pub const FIRST: Tag = Tag((USED_BIT | SECOND_BIT) as u32);
    /// The `size` tag of a huge block (`huge.rs`): type bits no segment
    /// block carries, and no size, so every check of a segment block fails.
    pub const HUGE: Tag = Tag(TYPE_MASK as u32);

    /// The `size` tag of a segment's closing guard: it carries the segment's
    /// size, so a corruption report can name the segment from any block.
    #[inline(always)]
    pub const fn guard(segment_size: usize) -> Tag {
        Tag((segment_size | USED_BIT | SECOND_BIT) as u32)
    }
    #[inline(always)]
    pub const fn used(size: usize) -> Tag {
        Tag((size | USED_BIT) as u32)
    }
    /// A used tag stamped with the epoch bits of `used_bits` (see `EPOCH_BIT`).
    #[inline(always)]
    pub const fn used_with(size: usize, used_bits: usize) -> Tag {
        Tag((size | used_bits) as u32)
    }
    /// Type and epoch bits, compared against `Heap::used_bits` by `efree`.
    #[inline(always)]
    pub const fn kind(self) -> usize {
        self.0 as usize & KIND_MASK
    }
    /// `efree`'s one test of kind and size: with `bias` = a kind plus
    /// `MIN_SIZE`, the bucket index `(size - MIN_SIZE) / ALIGNMENT` of a
    /// block of that kind, else a number of at least 2^28. After the
    /// subtraction a matching kind leaves zero low bits, so the rotation
    /// yields the index; any other kind, or a size below `MIN_SIZE`,
    /// rotates set bits to the top. Compared with the fastcache's
    /// `CACHE_BUCKETS`, it tests the size range too.
    #[inline(always)]
    pub const fn small_index(self, bias: u32) -> usize {
        self.0
            .wrapping_sub(bias)
            .rotate_right(ALIGNMENT.trailing_zeros()) as usize
    }
    #[inline(always)]
    pub const fn free(size: usize) -> Tag {
        Tag((size) as u32)
    }
    #[inline(always)]
    pub const fn rest(size: usize) -> Tag {
        Tag((size | SECOND_BIT) as u32)
    }
    #[inline(always)]
    pub const fn dv(size: usize) -> Tag {
        Tag((size | DV_BIT) as u32)
    }
    #[inline(always)]
    pub const fn size(self) -> usize {
        self.0 as usize & SIZE_MASK
    }
    #[inline(always)]
    pub const fn is_free(self) -> bool {
        self.0 as usize & USED_BIT == 0
    }
    /// Used and not a guard: a block handed out. Cached blocks are not.
    #[inline(always)]
    pub const fn is_used(self) -> bool {
        self.0 as usize & TYPE_MASK == USED_BIT
    }
    /// A used block resting in the fastcache or on a large stack.
    #[inline(always)]
    pub const fn is_cached(self) -> bool {
        self.0 as usize & TYPE_MASK == USED_BIT | CACHED_BIT
    }
    /// The tag as its mirror in the next block's `prev` holds it: the
    /// cached bit is set in the block's own tag only.
    #[inline(always)]
    pub const fn uncached(self) -> Tag {
        // Bit 2 is the cached bit only on used tags (on free ones it is DV).
        Tag(self.0 & !((self.0 & USED_BIT as u32) << 2))
    }
    #[inline(always)]
    pub const fn is_guard(self) -> bool {
        self.0 as usize & TYPE_MASK == (USED_BIT | SECOND_BIT)
    }
    /// A free block that sits on the rest list.
    #[inline(always)]
    pub const fn is_rest(self) -> bool {
        self.0 as usize & TYPE_MASK == SECOND_BIT
    }
    /// The free block small requests are carved from (`FreeLists::dv`).
    #[inline(always)]
    pub const fn is_dv(self) -> bool {
        self.0 as usize & TYPE_MASK == DV_BIT
    }
    #[inline(always)]
    pub const fn raw(self) -> usize {
        self.0 as usize
    }
    /// The tag whose bits are `raw` (below 2^32).
    #[inline(always)]
    pub const fn from_raw(raw: usize) -> Tag {
        Tag(raw as u32)
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

/// Word offsets inside a block: word 0 is the header, the links follow.
const PREV_FREE: usize = 1;
const NEXT_FREE: usize = 2;
const PARENT: usize = 3;
const CHILD: usize = 4;
/// Half-word offsets of the two tags inside the header.
const PREV_TAG: usize = 0;
const SIZE_TAG: usize = 1;

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
        // SAFETY: word 0 is the header; later words are read only on free
        // blocks large enough to hold them (I5, LARGE_FREE_SIZE).
        unsafe { self.0.add(i).read() }
    }

    /// # Safety
    /// `self` points at a readable block header; `i` is `PREV_TAG` or `SIZE_TAG`.
    #[inline(always)]
    unsafe fn half(self, i: usize) -> Tag {
        // SAFETY: both tags lie in the header word.
        Tag(unsafe { self.0.cast::<u32>().add(i).read() })
    }

    /// # Safety
    /// As [`Block::half`], writable.
    #[inline(always)]
    unsafe fn set_half(self, i: usize, tag: Tag) {
        // SAFETY: both tags lie in the header word.
        unsafe { self.0.cast::<u32>().add(i).write(tag.0) }
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
        unsafe { self.half(SIZE_TAG) }
    }

    /// # Safety
    /// `self` points at a block header in a live segment.
    #[inline(always)]
    pub unsafe fn prev_tag(self) -> Tag {
        // SAFETY: caller's contract.
        unsafe { self.half(PREV_TAG) }
    }

    /// # Safety
    /// `self` is a block header in a live segment.
    #[inline(always)]
    pub unsafe fn set_prev_tag(self, tag: Tag) {
        // SAFETY: caller's contract.
        unsafe { self.set_half(PREV_TAG, tag) }
    }

    /// Writes both tags of the header in one store.
    ///
    /// # Safety
    /// `self` is a block header in a live segment.
    #[inline(always)]
    pub unsafe fn set_header(self, prev: Tag, tag: Tag) {
        let word = if cfg!(target_endian = "little") {
            (prev.0 as u64) | ((tag.0 as u64) << 32)
        } else {
            ((prev.0 as u64) << 32) | (tag.0 as u64)
        };
        // SAFETY: caller's contract; the header is one 8-aligned word.
        unsafe { self.0.cast::<u64>().write(word) }
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
            self.set_half(SIZE_TAG, tag);
            self.plus(tag.size()).set_half(PREV_TAG, tag);
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
        unsafe { self.set_half(SIZE_TAG, tag) }
    }

    /// Decodes a stored link. Not checked here: callers check the links they
    /// are about to follow (`check_links`), once per operation.
    #[inline(always)]
    fn decode(raw: usize, key: usize) -> usize {
        raw ^ key
    }

    /// Reports corruption unless `a` and `b`, decoded from links stored in
    /// `self`, can be block addresses (8-aligned, user space, or null).
    /// One test for both, so unlinking pays one branch.
    #[inline(always)]
    pub fn check_links(self, a: Block, b: Block) {
        let bad = (a.addr() & LINK_CHECK_MASK) | (b.addr() & LINK_CHECK_MASK);
        if bad != 0 {
            let culprit = if a.addr() & LINK_CHECK_MASK != 0 {
                a
            } else {
                b
            };
            // SAFETY: `self` is the block holding the links (caller's contract).
            unsafe { self.bad_link(culprit.addr()) }
        }
    }

    /// As [`Block::check_links`] for a trie `parent` word (a slot address,
    /// an odd root number or 0).
    #[inline(always)]
    pub fn check_parent(self, parent: usize) {
        if parent & PARENT_CHECK_MASK != 0 {
            // SAFETY: `self` is the block holding the link (caller's contract).
            unsafe { self.bad_link(parent) }
        }
    }

    #[cold]
    #[inline(never)]
    unsafe fn bad_link(self, decoded: usize) -> ! {
        // SAFETY: `self` is a block header in a live segment.
        let size = unsafe { self.tag().size() };
        let mut what = crate::report::StackBuf::new();
        let _ = core::fmt::Write::write_fmt(
            &mut what,
            format_args!("free-list link forged or overwritten (decodes to {decoded:#x})"),
        );
        crate::report::corrupted(what.as_str(), self.data(), size)
    }

    /// # Safety
    /// `self` is a free (or cached) block; `key` is the heap's link key.
    #[inline(always)]
    pub unsafe fn prev_free(self, key: usize) -> Block {
        // SAFETY: every block has room for two links (MIN_SIZE).
        unsafe { Block(Block::decode(self.word(PREV_FREE), key) as *mut usize) }
    }
    /// # Safety
    /// As [`Block::prev_free`].
    #[inline(always)]
    pub unsafe fn next_free(self, key: usize) -> Block {
        // SAFETY: every block has room for two links (MIN_SIZE).
        unsafe { Block(Block::decode(self.word(NEXT_FREE), key) as *mut usize) }
    }
    /// # Safety
    /// As [`Block::prev_free`].
    #[inline(always)]
    pub unsafe fn set_prev_free(self, b: Block, key: usize) {
        // SAFETY: every block has room for two links (MIN_SIZE).
        unsafe { self.set_word(PREV_FREE, b.0 as usize ^ key) }
    }
    /// # Safety
    /// As [`Block::prev_free`].
    #[inline(always)]
    pub unsafe fn set_next_free(self, b: Block, key: usize) {
        // SAFETY: every block has room for two links (MIN_SIZE).
        unsafe { self.set_word(NEXT_FREE, b.0 as usize ^ key) }
    }

    /// The trie slot pointing at this node (see `free_lists::Parent`).
    ///
    /// # Safety
    /// `self` is a free block of at least `LARGE_FREE_SIZE` bytes.
    #[inline(always)]
    pub unsafe fn parent(self, key: usize) -> usize {
        // SAFETY: large free blocks hold five links.
        unsafe { Block::decode(self.word(PARENT), key) }
    }
    /// # Safety
    /// As [`Block::parent`].
    #[inline(always)]
    pub unsafe fn set_parent(self, p: usize, key: usize) {
        // SAFETY: large free blocks hold five links.
        unsafe { self.set_word(PARENT, p ^ key) }
    }
    /// # Safety
    /// As [`Block::parent`]; `i` is 0 or 1.
    #[inline(always)]
    pub unsafe fn child(self, i: usize, key: usize) -> Block {
        // SAFETY: large free blocks hold five links.
        unsafe { Block(Block::decode(self.word(CHILD + (i & 1)), key) as *mut usize) }
    }
    /// # Safety
    /// As [`Block::child`].
    #[inline(always)]
    pub unsafe fn set_child(self, i: usize, b: Block, key: usize) {
        // SAFETY: large free blocks hold five links.
        unsafe { self.set_word(CHILD + (i & 1), b.0 as usize ^ key) }
    }
    /// The address of `child[i]`, stored in the child's `parent` word.
    #[inline(always)]
    pub fn child_slot(self, i: usize) -> usize {
        self.0.wrapping_add(CHILD + (i & 1)) as usize
    }
    /// The block whose `child[_]` word lives at `slot`: blocks start at 8
    /// modulo 16 (I5), so the slot's offset inside its 16 bytes tells which
    /// child it is.
    #[inline(always)]
    pub fn slot_owner(slot: usize) -> Block {
        let i = ((slot / 8) ^ (CHILD + BLOCK_OFFSET / 8)) & 1;
        Block((slot as *mut usize).wrapping_sub(CHILD + i))
    }
    /// Reads the block pointer stored at a child slot address.
    ///
    /// # Safety
    /// `slot` is the address of a `child[_]` word of a live large free block.
    #[inline(always)]
    pub unsafe fn read_slot(slot: usize, key: usize) -> Block {
        // SAFETY: caller's contract.
        let raw = unsafe { (slot as *const usize).read() };
        let p = Block((raw ^ key) as *mut usize);
        Block::slot_owner(slot).check_links(p, Block::NULL);
        p
    }
    /// # Safety
    /// As [`Block::read_slot`].
    #[inline(always)]
    pub unsafe fn write_slot(slot: usize, b: Block, key: usize) {
        // SAFETY: caller's contract.
        unsafe { (slot as *mut usize).write(b.0 as usize ^ key) }
    }

    /// XORs this free block's link words with `delta` (a key change).
    ///
    /// # Safety
    /// `self` is a free block of `size` bytes whose links are in use
    /// (all five when it sits in the large trie).
    pub unsafe fn rekey_links(self, delta: usize, large: bool) {
        let last = if large { CHILD + 1 } else { NEXT_FREE };
        for i in PREV_FREE..=last {
            // SAFETY: caller's contract.
            unsafe { self.set_word(i, self.word(i) ^ delta) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_index_accepts_exactly_cacheable_blocks_of_the_used_kind() {
        use crate::cache::{CACHE_BUCKETS, MAX_CACHED_SIZE};
        use crate::free_lists::{bucket_index, is_small, NUM_BUCKETS};
        for used_bits in [USED_BIT, USED_BIT | EPOCH_BIT] {
            for size in (0..8192)
                .step_by(ALIGNMENT)
                .chain([1 << 20, MAX_BLOCK_SIZE])
            {
                for kind in 0..=KIND_MASK {
                    let index =
                        Tag((size | kind) as u32).small_index((used_bits + MIN_SIZE) as u32);
                    let kind_ok = kind == used_bits && size >= MIN_SIZE;
                    let small = kind_ok && is_small(size);
                    let cacheable = kind_ok && size <= MAX_CACHED_SIZE;
                    assert_eq!(index < NUM_BUCKETS, small, "size {size} kind {kind:#b}");
                    assert_eq!(
                        index < CACHE_BUCKETS,
                        cacheable,
                        "size {size} kind {kind:#b}"
                    );
                    if cacheable {
                        assert_eq!(index, bucket_index(size));
                    }
                }
            }
        }
    }

    #[test]
    fn true_size_matches_php() {
        assert_eq!(true_size(0), Some(32));
        assert_eq!(true_size(15), Some(32));
        assert_eq!(true_size(24), Some(32));
        assert_eq!(true_size(25), Some(48));
        assert_eq!(true_size(40), Some(48));
        assert_eq!(true_size(1024), Some(1040));
        assert_eq!(true_size(1032), Some(1040));
        assert_eq!(true_size(usize::MAX), None);
        assert_eq!(true_size(usize::MAX - 22), None);
        assert_eq!(true_size(usize::MAX - 23), Some(usize::MAX - 15));
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
        assert!(Tag::guard(4096).is_guard() && !Tag::guard(4096).is_free());
        assert_eq!(Tag::guard(4096).size(), 4096);
        let e = Tag::used_with(48, USED_BIT | EPOCH_BIT);
        assert!(e.is_used() && e.size() == 48 && e.kind() != Tag::used(48).kind());
        assert!(Tag::FIRST.is_guard() && Tag::FIRST.size() == 0);
        let h = Tag::HUGE;
        assert!(!h.is_used() && !h.is_free() && !h.is_guard() && !h.is_cached());
        assert!(h.kind() != Tag::used(48).kind() && h.size() == 0);
    }

    #[test]
    fn neighbours_follow_the_tags() {
        let mut buf = [0usize; 32];
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: all offsets stay inside `buf` (256 bytes).
        unsafe {
            let a = Block::at(base, BLOCK_OFFSET);
            assert_eq!(a.data() as usize % ALIGNMENT, 0);
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
