//! Where each request block was allocated, for the leak report: a side table
//! from a block's data pointer to the caller's file and line, filled by the
//! debug entry points (`zendmm_emalloc_dbg` & co.).
//!
//! Block headers have no room for a location (PHP's debug builds make every
//! header bigger instead), so the table is an open-addressing hash map beside
//! the heap: linear probing, backward-shift deletion (no tombstones), at most
//! half full. Its slots come from libc, never from the request heap, so it
//! never shows up in the usage figures or in the leak report itself.
//!
//! A heap whose callers all use the release ABI keeps the table empty; the
//! only cost for them is the `is_empty` test on free and realloc.

use crate::report;
use core::ffi::{c_char, CStr};
use core::{mem, ptr, slice};

/// A caller's location, as PHP's `ZEND_FILE_LINE_DC ZEND_FILE_LINE_ORIG_DC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The size the caller asked for (reported instead of the block size).
    pub size: usize,
    /// NUL-terminated file name, or null.
    pub file: *const c_char,
    pub line: u32,
    /// Where a `_rel` macro was called when the location was relayed, or null.
    pub orig_file: *const c_char,
    pub orig_line: u32,
}

impl Location {
    /// The file name's bytes; `None` for a null pointer.
    ///
    /// # Safety
    /// `file` is null or a NUL-terminated string that is still readable.
    pub unsafe fn file_bytes<'a>(&self) -> Option<&'a [u8]> {
        // SAFETY: caller's contract.
        unsafe { c_bytes(self.file) }
    }

    /// The relayed origin's file name; `None` when not relayed.
    ///
    /// # Safety
    /// As [`Location::file_bytes`], for `orig_file`.
    pub unsafe fn orig_file_bytes<'a>(&self) -> Option<&'a [u8]> {
        // SAFETY: caller's contract.
        unsafe { c_bytes(self.orig_file) }
    }
}

/// # Safety
/// `p` is null or a readable NUL-terminated string.
unsafe fn c_bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        // SAFETY: caller's contract.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }
}

#[derive(Clone, Copy)]
struct Slot {
    /// The block's data address; 0 marks an empty slot.
    key: usize,
    loc: Location,
}

/// Slots of a table that has grown at least once.
const MIN_CAPACITY: usize = 1024;

/// Data pointer -> [`Location`], in libc memory.
pub struct Locations {
    slots: *mut Slot,
    /// Number of slots, a power of two; 0 before the first insert.
    capacity: usize,
    len: usize,
}

impl Locations {
    pub const fn new() -> Locations {
        Locations {
            slots: ptr::null_mut(),
            capacity: 0,
            len: 0,
        }
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn slots(&self) -> &[Slot] {
        if self.capacity == 0 {
            return &[];
        }
        // SAFETY: `slots` holds `capacity` initialised slots (zeroed by
        // calloc or written since), owned by `self`.
        unsafe { slice::from_raw_parts(self.slots, self.capacity) }
    }

    fn slots_mut(&mut self) -> &mut [Slot] {
        if self.capacity == 0 {
            return &mut [];
        }
        // SAFETY: as `slots`, borrowed mutably through `&mut self`.
        unsafe { slice::from_raw_parts_mut(self.slots, self.capacity) }
    }

    /// The slot a key starts probing from (Fibonacci hashing: blocks are
    /// 16-byte aligned, so the low bits carry nothing).
    #[inline]
    fn home(&self, key: usize) -> usize {
        let h = ((key >> 4) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let bits = self.capacity.trailing_zeros();
        (h >> (64 - bits)) as usize
    }

    /// The slot holding `key`, if any.
    fn find(&self, key: usize) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let slots = self.slots();
        let mask = self.capacity - 1;
        let mut i = self.home(key);
        loop {
            match slots[i].key {
                0 => return None,
                k if k == key => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Records (or replaces) the location of the block at `p`. Ends the
    /// process with "Out of memory" if libc refuses to grow the table.
    pub fn insert(&mut self, p: *const u8, loc: Location) {
        let key = p as usize;
        if key == 0 {
            return;
        }
        if (self.len + 1) * 2 > self.capacity {
            self.grow();
        }
        let mask = self.capacity - 1;
        let mut i = self.home(key);
        let slots = self.slots_mut();
        while slots[i].key != key && slots[i].key != 0 {
            i = (i + 1) & mask;
        }
        let added = slots[i].key == 0;
        slots[i] = Slot { key, loc };
        self.len += usize::from(added);
    }

    pub fn get(&self, p: *const u8) -> Option<Location> {
        self.find(p as usize).map(|i| self.slots()[i].loc)
    }

    /// Forgets the block at `p`; returns what was recorded.
    pub fn remove(&mut self, p: *const u8) -> Option<Location> {
        let mut hole = self.find(p as usize)?;
        let mask = self.capacity - 1;
        let loc = self.slots()[hole].loc;
        // Backward shift: pull later entries of the probe run into the hole
        // unless that would move one before its home slot.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let key = self.slots()[j].key;
            if key == 0 {
                break;
            }
            let home = self.home(key);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                let slots = self.slots_mut();
                slots[hole] = slots[j];
                hole = j;
            }
        }
        self.slots_mut()[hole].key = 0;
        self.len -= 1;
        Some(loc)
    }

    /// Forgets everything and gives the slots back to libc.
    pub fn clear(&mut self) {
        if !self.slots.is_null() {
            // SAFETY: `slots` came from calloc and nothing refers to it any more.
            unsafe { libc::free(self.slots.cast()) };
        }
        self.slots = ptr::null_mut();
        self.capacity = 0;
        self.len = 0;
    }

    /// Doubles the slots (or makes the first ones) and re-files every entry.
    #[cold]
    fn grow(&mut self) {
        let capacity = (self.capacity * 2).max(MIN_CAPACITY);
        // SAFETY: plain libc call; an all-zero Slot is an empty slot.
        let fresh = unsafe { libc::calloc(capacity, mem::size_of::<Slot>()) }.cast::<Slot>();
        if fresh.is_null() {
            report::persistent_out_of_memory();
        }
        let old = mem::replace(
            self,
            Locations {
                slots: fresh,
                capacity,
                len: 0,
            },
        );
        for s in old.slots() {
            if s.key != 0 {
                self.insert(s.key as *const u8, s.loc);
            }
        }
        drop(old);
    }
}

impl Default for Locations {
    fn default() -> Locations {
        Locations::new()
    }
}

impl Drop for Locations {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32) -> Location {
        Location {
            size: line as usize,
            file: c"a.c".as_ptr(),
            line,
            orig_file: ptr::null(),
            orig_line: 0,
        }
    }

    fn key(i: usize) -> *const u8 {
        (0x7f00_0000_0000 + i * 16) as *const u8
    }

    #[test]
    fn insert_get_remove_follow_a_model() {
        let mut t = Locations::new();
        let mut model = std::collections::HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = key((x % 5000) as usize);
            if x & 0x300 == 0 {
                assert_eq!(t.remove(k), model.remove(&(k as usize)), "step {step}");
            } else {
                t.insert(k, at(step));
                model.insert(k as usize, at(step));
            }
            assert_eq!(t.len(), model.len());
        }
        for i in 0..5000 {
            assert_eq!(t.get(key(i)), model.get(&(key(i) as usize)).copied());
        }
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.get(key(1)), None);
    }

    #[test]
    fn removal_keeps_colliding_entries_reachable() {
        let mut t = Locations::new();
        // Keys 64 KiB apart share their low bits: many collide in a small table.
        let keys: Vec<*const u8> = (1..400).map(|i| (i << 16) as *const u8).collect();
        for (i, k) in keys.iter().enumerate() {
            t.insert(*k, at(i as u32));
        }
        for (i, k) in keys.iter().enumerate().step_by(2) {
            assert_eq!(t.remove(*k), Some(at(i as u32)));
        }
        for (i, k) in keys.iter().enumerate() {
            let want = if i % 2 == 0 { None } else { Some(at(i as u32)) };
            assert_eq!(t.get(*k), want, "key {i}");
        }
        assert_eq!(t.len(), keys.len() / 2);
    }
}
