//! Free blocks waiting for reuse: PHP 5.3's `free_buckets`,
//! `large_free_buckets` and `rest_buckets`.
//!
//! - Small blocks (true size < `MAX_SMALL_SIZE`) sit on 64 exact-size lists;
//!   bit *i* of `small_bitmap` is set while list *i* is non-empty, so the
//!   smallest fitting list is one `trailing_zeros` away.
//! - Large blocks sit in one bitwise trie per power of two, keyed by the size
//!   bits below the top one; blocks of equal size hang in a ring off the trie
//!   node. Search is best fit (`search_large`, PHP's
//!   `zend_mm_search_large_block`).
//! - Remainders of dedicated segments go to the rest list (tag `REST`), which
//!   is searched only near the memory limit, so big blocks can later grow in
//!   place and their segments can go back whole.
//!
//! - The designated victim (dlmalloc's `dv`) is the remainder of the last
//!   block split for a small request. It sits in no list (tag `DV`): the
//!   next small requests that no bucket serves are carved off its front, so
//!   a run of fresh allocations costs no list work and lands on consecutive
//!   addresses.
//!
//! Lists are null-terminated and their heads live in this struct; trie nodes
//! point back to their slot through `parent`, a child-slot address or, for a
//! root, an odd number naming the bucket, so the heap can be moved freely.
//! Every unlink first checks the links that lead to the block (PHP's
//! `ZEND_MM_SAFE_UNLINKING`).

use crate::block::{Block, Tag, ALIGNMENT, MIN_SIZE};
use crate::report::corrupted;

/// Buckets per family: one per bit of a machine word (`ZEND_MM_NUM_BUCKETS`).
pub const NUM_BUCKETS: usize = usize::BITS as usize;
/// True sizes below this are small (`ZEND_MM_MAX_SMALL_SIZE`): 32..=1040.
pub const MAX_SMALL_SIZE: usize = NUM_BUCKETS * ALIGNMENT + MIN_SIZE;
/// Rest blocks kept at most; older ones move to the ordinary lists.
pub const MAX_REST_BLOCKS: usize = 16;

#[inline(always)]
pub const fn is_small(true_size: usize) -> bool {
    true_size < MAX_SMALL_SIZE
}

/// The small bucket of a true size (`ZEND_MM_BUCKET_INDEX`).
#[inline(always)]
pub const fn bucket_index(true_size: usize) -> usize {
    (true_size / ALIGNMENT) - (MIN_SIZE / ALIGNMENT)
}

/// The true size served by small bucket `index`.
#[inline(always)]
pub const fn bucket_size(index: usize) -> usize {
    (index + MIN_SIZE / ALIGNMENT) * ALIGNMENT
}

/// The trie of a large size: the index of its highest set bit.
#[inline(always)]
const fn large_index(size: usize) -> usize {
    (usize::BITS - 1 - size.leading_zeros()) as usize
}

/// `parent` value of a trie root: odd, so never a slot address.
#[inline(always)]
const fn root_parent(index: usize) -> usize {
    (index << 3) | 1
}

const TOP_BIT: u32 = usize::BITS - 1;

/// Counts of what the lists hold, for statistics and the validator.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct ListCounts {
    pub small_blocks: usize,
    pub small_bytes: usize,
    pub large_blocks: usize,
    pub large_bytes: usize,
    pub rest_blocks: usize,
    pub rest_bytes: usize,
    pub dv_blocks: usize,
    pub dv_bytes: usize,
}

#[derive(Debug)]
pub struct FreeLists {
    small_bitmap: usize,
    large_bitmap: usize,
    small: [Block; NUM_BUCKETS],
    large: [Block; NUM_BUCKETS],
    rest_head: Block,
    rest_tail: Block,
    rest_count: usize,
    dv: Block,
    /// The key links are XORed with (see `block.rs`); 0 until the heap seeds it.
    secret: usize,
}

impl FreeLists {
    pub const fn new() -> FreeLists {
        FreeLists {
            secret: 0,
            small_bitmap: 0,
            large_bitmap: 0,
            small: [Block::NULL; NUM_BUCKETS],
            large: [Block::NULL; NUM_BUCKETS],
            rest_head: Block::NULL,
            rest_tail: Block::NULL,
            rest_count: 0,
            dv: Block::NULL,
        }
    }

    /// The designated victim, or null.
    pub fn dv(&self) -> Block {
        self.dv
    }

    /// Makes `b` the designated victim if it is bigger than the current one
    /// (which then goes to the lists); otherwise files `b` itself.
    ///
    /// # Safety
    /// As [`FreeLists::add`].
    pub unsafe fn offer_dv(&mut self, b: Block, size: usize) {
        // SAFETY: caller's contract; the old victim is a live free block (I3).
        unsafe {
            let old = self.dv;
            if !old.is_null() {
                let old_size = old.tag().size();
                if old_size >= size {
                    self.add(b, size);
                    return;
                }
                self.add(old, old_size);
            }
            b.set_tag(Tag::dv(size));
        }
        self.dv = b;
    }

    /// Carves `ts` bytes off the front of the designated victim. Returns the
    /// block, tagged used with `used_bits` (`Heap::used_bits`), and its size (the whole victim when the rest
    /// would be too small to be a block); null when there is no victim or
    /// it is too small.
    ///
    /// # Safety
    /// The victim, if any, is a live free block (I3).
    #[inline]
    pub unsafe fn take_from_dv(&mut self, ts: usize, used_bits: usize) -> (Block, usize) {
        let dv = self.dv;
        if dv.is_null() {
            return (Block::NULL, 0);
        }
        // SAFETY: caller's contract; the rest lies inside the victim.
        unsafe {
            let size = dv.tag().size();
            if size < ts {
                return (Block::NULL, 0);
            }
            if size - ts < MIN_SIZE {
                self.dv = Block::NULL;
                dv.set_tag(Tag::used_with(size, used_bits));
                return (dv, size);
            }
            self.split_dv(dv, size, ts, used_bits);
            (dv, ts)
        }
    }

    /// `take_listed`'s usual answer to a fastcache miss, short enough to
    /// inline: `ts` bytes off the front of the victim, when no listed block
    /// fits without a split and the rest stays a block. Null otherwise (the
    /// full search decides).
    ///
    /// # Safety
    /// As [`FreeLists::take_from_dv`]; `ts` is small.
    #[inline(always)]
    pub unsafe fn take_dv_front(&mut self, ts: usize, used_bits: usize) -> Block {
        let dv = self.dv;
        if dv.is_null() || (self.small_bitmap >> bucket_index(ts)) & 0b11 != 0 {
            return Block::NULL;
        }
        // SAFETY: caller's contract; the rest lies inside the victim.
        unsafe {
            let size = dv.tag().size();
            if size < ts + MIN_SIZE {
                return Block::NULL;
            }
            self.split_dv(dv, size, ts, used_bits);
        }
        dv
    }

    /// Hands out the victim's first `ts` bytes; the rest stays the victim.
    ///
    /// # Safety
    /// `dv` is the victim, of `size >= ts + MIN_SIZE` bytes.
    #[inline(always)]
    unsafe fn split_dv(&mut self, dv: Block, size: usize, ts: usize, used_bits: usize) {
        let (used, rest) = (Tag::used_with(ts, used_bits), Tag::dv(size - ts));
        // SAFETY: caller's contract; both headers lie inside the victim and
        // the rest's mirror is the next block's `prev`.
        unsafe {
            dv.set_tag_only(used);
            let r = dv.plus(ts);
            r.set_header(used, rest);
            r.plus(rest.size()).set_prev_tag(rest);
            self.dv = r;
        }
    }

    /// Forgets every block (their segments are being released); keeps the
    /// key.
    pub fn clear(&mut self) {
        *self = FreeLists {
            secret: self.secret,
            ..FreeLists::new()
        };
    }

    /// The link key. Changing it is only sound while no link is stored
    /// under the old one (empty lists), or after re-encoding every link.
    pub fn secret(&self) -> usize {
        self.secret
    }
    pub fn set_secret(&mut self, secret: usize) {
        self.secret = secret;
    }

    /// Tags `b` free with `size` and files it by size (`zend_mm_add_to_free_list`).
    ///
    /// # Safety
    /// `b` spans `size` bytes of a live segment, its neighbours are used (I2)
    /// and it is in no list.
    pub unsafe fn add(&mut self, b: Block, size: usize) {
        // SAFETY: caller's contract; links are written inside `b`.
        unsafe {
            b.set_tag(Tag::free(size));
            if is_small(size) {
                let i = bucket_index(size);
                let head = self.small[i];
                b.set_prev_free(Block::NULL, self.secret);
                b.set_next_free(head, self.secret);
                if !head.is_null() {
                    head.set_prev_free(b, self.secret);
                }
                self.small[i] = b;
                self.small_bitmap |= 1 << i;
            } else {
                self.add_large(b, size);
            }
        }
    }

    /// # Safety
    /// As [`FreeLists::add`], `size >= MAX_SMALL_SIZE`.
    unsafe fn add_large(&mut self, b: Block, size: usize) {
        let index = large_index(size);
        // SAFETY: `b` is a large free block (room for five links); every node
        // reached through the trie is a live large free block (I3).
        unsafe {
            b.set_child(0, Block::NULL, self.secret);
            b.set_child(1, Block::NULL, self.secret);
            let mut node = self.large[index];
            if node.is_null() {
                self.large_bitmap |= 1 << index;
                self.large[index] = b;
                b.set_parent(root_parent(index), self.secret);
                b.set_prev_free(b, self.secret);
                b.set_next_free(b, self.secret);
                return;
            }
            let mut key = size << (TOP_BIT - index as u32) << 1;
            loop {
                if node.tag().size() == size {
                    // Same size: join the node's ring, off the trie.
                    let next = node.next_free(self.secret);
                    b.set_prev_free(node, self.secret);
                    b.set_next_free(next, self.secret);
                    next.set_prev_free(b, self.secret);
                    node.set_next_free(b, self.secret);
                    b.set_parent(0, self.secret);
                    return;
                }
                let dir = key >> TOP_BIT;
                let child = node.child(dir, self.secret);
                node.check_links(child, Block::NULL);
                if child.is_null() {
                    node.set_child(dir, b, self.secret);
                    b.set_parent(node.child_slot(dir), self.secret);
                    b.set_prev_free(b, self.secret);
                    b.set_next_free(b, self.secret);
                    return;
                }
                key <<= 1;
                node = child;
            }
        }
    }

    /// Appends a remainder of a dedicated segment to the rest list.
    ///
    /// # Safety
    /// As [`FreeLists::add`].
    pub unsafe fn add_rest(&mut self, b: Block, size: usize) {
        // SAFETY: caller's contract; the old oldest rest block is live (I3).
        unsafe {
            if self.rest_count >= MAX_REST_BLOCKS {
                let oldest = self.rest_head;
                self.remove(oldest);
                self.add(oldest, oldest.tag().size());
            }
            b.set_tag(Tag::rest(size));
            b.set_next_free(Block::NULL, self.secret);
            b.set_prev_free(self.rest_tail, self.secret);
            if self.rest_tail.is_null() {
                self.rest_head = b;
            } else {
                self.rest_tail.set_next_free(b, self.secret);
            }
            self.rest_tail = b;
            self.rest_count += 1;
        }
    }

    /// Takes `b` off whichever list holds it (`zend_mm_remove_from_free_list`).
    ///
    /// # Safety
    /// `b` is a free block of a live segment (I3).
    pub unsafe fn remove(&mut self, b: Block) {
        // SAFETY: caller's contract; neighbours named by checked links are live.
        unsafe {
            let tag = b.tag();
            let size = tag.size();
            if tag.is_dv() {
                if self.dv != b {
                    corrupted(
                        "free block tagged as the designated victim is not",
                        b.data(),
                        size,
                    );
                }
                self.dv = Block::NULL;
            } else if tag.is_rest() {
                self.remove_rest(b);
            } else if is_small(size) {
                self.remove_small(b, size);
            } else {
                self.remove_large(b, size);
            }
        }
    }

    /// # Safety
    /// `b` is a small free block.
    unsafe fn remove_small(&mut self, b: Block, size: usize) {
        let i = bucket_index(size);
        // SAFETY: caller's contract; each link is checked before it is written through.
        unsafe {
            let (prev, next) = (b.prev_free(self.secret), b.next_free(self.secret));
            b.check_links(prev, next);
            let linked_from_prev = if prev.is_null() {
                self.small[i] == b
            } else {
                prev.next_free(self.secret) == b
            };
            if !linked_from_prev || (!next.is_null() && next.prev_free(self.secret) != b) {
                corrupted("free list links broken (small bucket)", b.data(), size);
            }
            if prev.is_null() {
                self.small[i] = next;
                if next.is_null() {
                    self.small_bitmap &= !(1 << i);
                }
            } else {
                prev.set_next_free(next, self.secret);
            }
            if !next.is_null() {
                next.set_prev_free(prev, self.secret);
            }
        }
    }

    /// # Safety
    /// `b` is on the rest list.
    unsafe fn remove_rest(&mut self, b: Block) {
        // SAFETY: caller's contract; links checked before use.
        unsafe {
            let (prev, next) = (b.prev_free(self.secret), b.next_free(self.secret));
            b.check_links(prev, next);
            let from_prev = if prev.is_null() {
                self.rest_head == b
            } else {
                prev.next_free(self.secret) == b
            };
            let from_next = if next.is_null() {
                self.rest_tail == b
            } else {
                next.prev_free(self.secret) == b
            };
            if !from_prev || !from_next {
                corrupted(
                    "free list links broken (rest list)",
                    b.data(),
                    b.tag().size(),
                );
            }
            if prev.is_null() {
                self.rest_head = next;
            } else {
                prev.set_next_free(next, self.secret);
            }
            if next.is_null() {
                self.rest_tail = prev;
            } else {
                next.set_prev_free(prev, self.secret);
            }
            self.rest_count -= 1;
        }
    }

    /// `link`, read from `holder`, after checking it can be a block.
    #[inline(always)]
    fn follow(&self, holder: Block, link: Block) -> Block {
        holder.check_links(link, Block::NULL);
        link
    }

    /// The block in the slot a trie `parent` value names: a root in this
    /// struct (odd values) or a child word of another node (encoded).
    ///
    /// # Safety
    /// `parent` was read from a live trie node.
    #[inline]
    unsafe fn slot_get(&self, parent: usize) -> Block {
        if parent & 1 == 1 {
            self.large[(parent >> 3) & (NUM_BUCKETS - 1)]
        } else {
            // SAFETY: caller's contract: an even parent is a child-slot address.
            unsafe { Block::read_slot(parent, self.secret) }
        }
    }

    /// # Safety
    /// As [`FreeLists::slot_get`].
    #[inline]
    unsafe fn slot_set(&mut self, parent: usize, b: Block) {
        if parent & 1 == 1 {
            self.large[(parent >> 3) & (NUM_BUCKETS - 1)] = b;
        } else {
            // SAFETY: caller's contract.
            unsafe { Block::write_slot(parent, b, self.secret) }
        }
    }

    /// # Safety
    /// `b` is a large free block in the trie (as node or ring member).
    unsafe fn remove_large(&mut self, b: Block, size: usize) {
        // SAFETY: caller's contract; every link followed was checked to point
        // back (ring) or is a trie child of a live node (I3).
        unsafe {
            let (prev, next) = (b.prev_free(self.secret), b.next_free(self.secret));
            b.check_links(prev, next);
            if prev != b {
                // A ring member, or a node with ring members: unlink from the ring.
                if prev.next_free(self.secret) != b || next.prev_free(self.secret) != b {
                    corrupted("free list links broken (large ring)", b.data(), size);
                }
                prev.set_next_free(next, self.secret);
                next.set_prev_free(prev, self.secret);
                if b.parent(self.secret) != 0 {
                    // `b` was the trie node: its ring predecessor takes its place.
                    self.substitute(b, prev);
                }
                return;
            }
            if next != b {
                corrupted("free list links broken (large node)", b.data(), size);
            }
            // A lone node: replace it with the deepest leaf of its subtree.
            let mut rp = b.child_slot(usize::from(!b.child(1, self.secret).is_null()));
            let mut leaf = Block::read_slot(rp, self.secret);
            if leaf.is_null() {
                let parent = b.parent(self.secret);
                b.check_parent(parent);
                if self.slot_get(parent) != b {
                    corrupted("free list links broken (large tree)", b.data(), size);
                }
                self.slot_set(parent, Block::NULL);
                if parent & 1 == 1 {
                    self.large_bitmap &= !(1 << large_index(size));
                }
                return;
            }
            loop {
                let cp = leaf.child_slot(usize::from(!leaf.child(1, self.secret).is_null()));
                let c = Block::read_slot(cp, self.secret);
                if c.is_null() {
                    break;
                }
                leaf = c;
                rp = cp;
            }
            Block::write_slot(rp, Block::NULL, self.secret);
            self.substitute(b, leaf);
        }
    }

    /// Puts `with` in the trie position of `node` (PHP's `subst_block`).
    ///
    /// # Safety
    /// `node` is a trie node being removed; `with` is a large free block
    /// detached from the trie (its own children are taken over from `node`).
    unsafe fn substitute(&mut self, node: Block, with: Block) {
        // SAFETY: caller's contract; children are live trie nodes (I3).
        unsafe {
            let parent = node.parent(self.secret);
            node.check_parent(parent);
            if self.slot_get(parent) != node {
                corrupted(
                    "free list links broken (large tree)",
                    node.data(),
                    node.tag().size(),
                );
            }
            with.set_parent(parent, self.secret);
            for i in 0..2 {
                let c = node.child(i, self.secret);
                with.set_child(i, c, self.secret);
                if !c.is_null() {
                    if c.parent(self.secret) != node.child_slot(i) {
                        corrupted(
                            "free list links broken (large tree)",
                            c.data(),
                            c.tag().size(),
                        );
                    }
                    c.set_parent(with.child_slot(i), self.secret);
                }
            }
            self.slot_set(parent, with);
        }
    }

    /// A listed small block of `true_size` bytes, or 16 more: one carving
    /// would not split.
    ///
    /// # Safety
    /// The lists hold only live blocks (I3).
    #[inline]
    pub unsafe fn find_small_fit(&self, true_size: usize) -> Block {
        let index = bucket_index(true_size);
        // Buckets `index` and `index + 1`: a block 16 bytes bigger is used
        // whole (the rest could not hold a block, MIN_SIZE).
        let bitmap = (self.small_bitmap >> index) & 0b11;
        if bitmap == 0 {
            return Block::NULL;
        }
        self.small[index + bitmap.trailing_zeros() as usize]
    }

    /// The smallest listed small block of at least `true_size` bytes.
    ///
    /// # Safety
    /// The lists hold only live blocks (I3).
    pub unsafe fn find_small(&self, true_size: usize) -> Block {
        let index = bucket_index(true_size);
        let bitmap = self.small_bitmap >> index;
        if bitmap == 0 {
            return Block::NULL;
        }
        self.small[index + bitmap.trailing_zeros() as usize]
    }

    /// Best fit for a large `true_size` (or a small one no small list could
    /// serve): the smallest free block at least that big, preferring ring
    /// members, which unlink in O(1).
    ///
    /// # Safety
    /// The trie holds only live blocks (I3).
    pub unsafe fn search_large(&self, true_size: usize) -> Block {
        let mut index = large_index(true_size);
        let mut bitmap = self.large_bitmap >> index;
        if bitmap == 0 {
            return Block::NULL;
        }
        // SAFETY: every node reached is a live large free block (I3).
        unsafe {
            if bitmap & 1 == 1 {
                let mut node = self.large[index];
                let mut best = Block::NULL;
                let mut best_size = usize::MAX;
                let mut rst = Block::NULL;
                let mut key = true_size << (TOP_BIT - index as u32) << 1;
                loop {
                    let size = node.tag().size();
                    if size == true_size {
                        return self.follow(node, node.next_free(self.secret));
                    }
                    if size > true_size && size < best_size {
                        best_size = size;
                        best = node;
                    }
                    if key >> TOP_BIT == 0 {
                        // Everything under child[1] is larger than `true_size`.
                        if !node.child(1, self.secret).is_null() {
                            rst = self.follow(node, node.child(1, self.secret));
                        }
                        if node.child(0, self.secret).is_null() {
                            break;
                        }
                        node = self.follow(node, node.child(0, self.secret));
                    } else {
                        if node.child(1, self.secret).is_null() {
                            break;
                        }
                        node = self.follow(node, node.child(1, self.secret));
                    }
                    key <<= 1;
                }
                let mut node = rst;
                while !node.is_null() {
                    let size = node.tag().size();
                    if size == true_size {
                        return self.follow(node, node.next_free(self.secret));
                    }
                    if size < best_size {
                        best_size = size;
                        best = node;
                    }
                    node = self.follow(
                        node,
                        node.child(
                            usize::from(node.child(0, self.secret).is_null()),
                            self.secret,
                        ),
                    );
                }
                if !best.is_null() {
                    return self.follow(best, best.next_free(self.secret));
                }
                bitmap >>= 1;
                if bitmap == 0 {
                    return Block::NULL;
                }
                index += 1;
            }
            // A larger power of two: every block there fits; take its smallest,
            // which lies on the leftmost path (PHP walks right here, a quirk
            // that only costs fit quality).
            let mut node = self.large[index + bitmap.trailing_zeros() as usize];
            let mut best = node;
            let mut best_size = node.tag().size();
            loop {
                node = self.follow(
                    node,
                    node.child(
                        usize::from(node.child(0, self.secret).is_null()),
                        self.secret,
                    ),
                );
                if node.is_null() {
                    break;
                }
                if node.tag().size() < best_size {
                    best_size = node.tag().size();
                    best = node;
                }
            }
            self.follow(best, best.next_free(self.secret))
        }
    }

    /// Best fit on the rest list, newest first.
    ///
    /// # Safety
    /// The rest list holds only live blocks (I3).
    pub unsafe fn search_rest(&self, true_size: usize) -> Block {
        let mut best = Block::NULL;
        let mut best_size = usize::MAX;
        let mut b = self.rest_tail;
        // SAFETY: rest blocks are live free blocks (I3).
        unsafe {
            while !b.is_null() {
                let size = b.tag().size();
                if size == true_size {
                    return b;
                }
                if size > true_size && size < best_size {
                    best_size = size;
                    best = b;
                }
                b = self.follow(b, b.prev_free(self.secret));
            }
        }
        best
    }

    /// Walks every list, checking links, and counts what it finds; the
    /// first broken link ends the walk with a description.
    ///
    /// # Safety
    /// Only reads; the segments the lists point into must still be mapped,
    /// which holds unless the heap is already corrupted.
    pub unsafe fn census(&self, limit: usize) -> Result<ListCounts, String> {
        let mut c = ListCounts::default();
        // SAFETY: caller's contract; walks are bounded by `limit`.
        unsafe {
            for i in 0..NUM_BUCKETS {
                let mut prev = Block::NULL;
                let mut b = self.small[i];
                if b.is_null() == (self.small_bitmap & (1 << i) != 0) {
                    return Err(format!("small bitmap bit {i} disagrees with its list"));
                }
                while !b.is_null() {
                    let t = b.tag();
                    if !t.is_free() || t.is_rest() || t.size() != bucket_size(i) {
                        return Err(format!(
                            "block {:#x} in small bucket {i} has tag {:#x}",
                            b.addr(),
                            t.raw()
                        ));
                    }
                    if b.prev_free(self.secret) != prev {
                        return Err(format!(
                            "block {:#x} in small bucket {i}: prev link broken",
                            b.addr()
                        ));
                    }
                    c.small_blocks += 1;
                    c.small_bytes += t.size();
                    if c.small_blocks > limit {
                        return Err("small lists loop".into());
                    }
                    prev = b;
                    b = b.next_free(self.secret);
                }
            }
            for i in 0..NUM_BUCKETS {
                let root = self.large[i];
                if root.is_null() == (self.large_bitmap & (1 << i) != 0) {
                    return Err(format!("large bitmap bit {i} disagrees with its trie"));
                }
                if !root.is_null() {
                    self.census_node(root, root_parent(i), i, &mut c, limit)?;
                }
            }
            let mut prev = Block::NULL;
            let mut b = self.rest_head;
            while !b.is_null() {
                let t = b.tag();
                if !t.is_rest() {
                    return Err(format!(
                        "block {:#x} on the rest list has tag {:#x}",
                        b.addr(),
                        t.raw()
                    ));
                }
                if b.prev_free(self.secret) != prev {
                    return Err(format!(
                        "block {:#x} on the rest list: prev link broken",
                        b.addr()
                    ));
                }
                c.rest_blocks += 1;
                c.rest_bytes += t.size();
                if c.rest_blocks > limit {
                    return Err("rest list loops".into());
                }
                prev = b;
                b = b.next_free(self.secret);
            }
            if prev != self.rest_tail || c.rest_blocks != self.rest_count {
                return Err("rest list tail or count is wrong".into());
            }
            if !self.dv.is_null() {
                let t = self.dv.tag();
                if !t.is_dv() {
                    return Err(format!(
                        "designated victim {:#x} has tag {:#x}",
                        self.dv.addr(),
                        t.raw()
                    ));
                }
                c.dv_blocks = 1;
                c.dv_bytes = t.size();
            }
        }
        Ok(c)
    }

    /// # Safety
    /// As [`FreeLists::census`].
    unsafe fn census_node(
        &self,
        node: Block,
        parent: usize,
        index: usize,
        c: &mut ListCounts,
        limit: usize,
    ) -> Result<(), String> {
        // SAFETY: caller's contract.
        unsafe {
            let size = node.tag().size();
            if node.parent(self.secret) != parent {
                return Err(format!("trie node {:#x}: parent link broken", node.addr()));
            }
            if !node.tag().is_free() || node.tag().is_rest() || large_index(size) != index {
                return Err(format!(
                    "trie node {:#x} has tag {:#x} in trie {index}",
                    node.addr(),
                    node.tag().raw()
                ));
            }
            let mut m = node;
            loop {
                let next = m.next_free(self.secret);
                if next.prev_free(self.secret) != m {
                    return Err(format!("ring at {:#x}: links broken", m.addr()));
                }
                if next.tag().raw() != node.tag().raw() {
                    return Err(format!("ring at {:#x} mixes sizes", node.addr()));
                }
                c.large_blocks += 1;
                c.large_bytes += size;
                if c.large_blocks > limit {
                    return Err("large rings loop".into());
                }
                if next == node {
                    break;
                }
                if next.parent(self.secret) != 0 {
                    return Err(format!("ring member {:#x} claims a trie slot", next.addr()));
                }
                m = next;
            }
            for i in 0..2 {
                let child = node.child(i, self.secret);
                if !child.is_null() {
                    self.census_node(child, node.child_slot(i), index, c, limit)?;
                }
            }
        }
        Ok(())
    }
}

impl Default for FreeLists {
    fn default() -> FreeLists {
        FreeLists::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BLOCK_OFFSET, HEADER_SIZE};

    /// A fake segment: blocks of the given sizes separated by used spacers,
    /// so no two free blocks touch (I2).
    struct Arena {
        mem: Vec<usize>,
    }

    impl Arena {
        fn new(words: usize) -> Arena {
            Arena {
                mem: vec![0; words],
            }
        }
        /// Lays out free candidates of `sizes`; returns their headers.
        fn blocks(&mut self, sizes: &[usize]) -> Vec<Block> {
            let base = self.mem.as_mut_ptr().cast::<u8>();
            let mut off = BLOCK_OFFSET;
            let mut out = Vec::new();
            // SAFETY: offsets stay inside `mem`, sized by the caller.
            unsafe {
                let first = Block::at(base, off);
                first.set_prev_tag(Tag::FIRST);
                for &s in sizes {
                    let spacer = Block::at(base, off);
                    spacer.set_tag(Tag::used(MIN_SIZE));
                    off += MIN_SIZE;
                    let b = Block::at(base, off);
                    b.set_tag(Tag::free(s));
                    out.push(b);
                    off += s;
                }
                Block::at(base, off).set_tag_only(Tag::guard(off + HEADER_SIZE));
            }
            assert!(off + HEADER_SIZE <= self.mem.len() * 8);
            out
        }
    }

    #[test]
    fn small_lists_find_the_smallest_fitting_bucket() {
        let mut arena = Arena::new(1024);
        let bs = arena.blocks(&[64, 128, 64]);
        let mut fl = FreeLists::new();
        // SAFETY: blocks live in `arena`.
        unsafe {
            for &b in &bs {
                fl.add(b, b.tag().size());
            }
            assert_eq!(fl.find_small(48), bs[2], "LIFO within a bucket");
            assert_eq!(fl.find_small(80), bs[1]);
            assert!(fl.find_small(144).is_null());
            fl.remove(bs[2]);
            fl.remove(bs[0]);
            assert_eq!(fl.find_small(64), bs[1]);
            assert_eq!(fl.census(100).unwrap().small_blocks, 1);
        }
    }

    #[test]
    fn trie_gives_best_fit_and_survives_any_removal_order() {
        let sizes: Vec<usize> = [
            1200, 2048, 8192, 2048, 4000, 6000, 1408, 2048, 10000, 1280, 4096, 4096,
        ]
        .to_vec();
        for rot in 0..sizes.len() {
            let mut arena = Arena::new(16384);
            let bs = arena.blocks(&sizes);
            let mut fl = FreeLists::new();
            // SAFETY: blocks live in `arena`.
            unsafe {
                for &b in &bs {
                    fl.add(b, b.tag().size());
                }
                assert_eq!(fl.census(100).unwrap().large_blocks, sizes.len());
                for want in [1056, 1200, 1216, 2000, 2048, 4112, 8208, 10000] {
                    let got = fl.search_large(want);
                    let best = sizes.iter().copied().filter(|&s| s >= want).min().unwrap();
                    assert_eq!(got.tag().size(), best, "search {want}");
                }
                assert!(fl.search_large(10016).is_null());
                let mut order: Vec<Block> = bs.clone();
                order.rotate_left(rot);
                for (n, b) in order.iter().enumerate() {
                    fl.remove(*b);
                    let left = fl.census(100).unwrap();
                    assert_eq!(left.large_blocks, sizes.len() - n - 1);
                }
            }
        }
    }

    #[test]
    fn rest_list_keeps_at_most_sixteen() {
        let mut arena = Arena::new(4096);
        let sizes = vec![64usize; MAX_REST_BLOCKS + 2];
        let bs = arena.blocks(&sizes);
        let mut fl = FreeLists::new();
        // SAFETY: blocks live in `arena`.
        unsafe {
            for &b in &bs {
                fl.add_rest(b, 64);
            }
            let c = fl.census(100).unwrap();
            assert_eq!((c.rest_blocks, c.small_blocks), (MAX_REST_BLOCKS, 2));
            assert_eq!(fl.search_rest(64), bs[bs.len() - 1], "newest first");
            assert!(!bs[0].tag().is_rest());
        }
    }
}
