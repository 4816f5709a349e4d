//! Address space kept after a growing mapping, for its next growths
//! (used by the mmap backends in `storage.rs`).
//!
//! A string that is appended to grows its segment again and again.
//! `mremap` grows a mapping where it lies only when the addresses after it
//! are free, and the kernel places new mappings just below the old ones,
//! so almost every growth moved the segment: a page-table move of all of
//! it, and for a segment that received lent pages (several kernel
//! mappings) a failed `mremap`, a new mapping and a move of each part. On
//! the `bench` trace those were 26 of its 49 `mremap` calls, 20-80K cycles
//! each.
//!
//! So when a growth has to move a mapping, the new place is mapped with as
//! many bytes again after it, inaccessible (`PROT_NONE`: no memory and no
//! commit charge behind them). That is the mapping's reserve; a later
//! growth that fits opens part of it (`mprotect`) instead of moving. From
//! 1 MiB on (`HUGE_GROWTH` in `storage.rs`) such a reserve ends on a
//! huge-page boundary, and from 2 MiB on (`OPEN_AHEAD`) an append opens it
//! up to the next boundary, ahead of the mapping's end, so the front of a
//! reserve may already be readable and writable (untouched, so not
//! resident).
//!
//! Invariant R1: a reserve is recorded here by the address its mapping ends
//! at, and lies right after that address. Whatever frees, shrinks or moves
//! the mapping ending there takes the reserve out of the table and unmaps
//! it with the mapping, so none outlives its mapping. The table is small;
//! a reserve that does not fit is not made, or the oldest is given back.

use std::sync::Mutex;

/// Reserves recorded at once: growing strings live a few at a time.
const SLOTS: usize = 8;

/// (end of a mapping, bytes reserved after it); a length of 0 is a free slot.
struct Table {
    slots: [(usize, usize); SLOTS],
    /// The slot the next reserve replaces when all are taken.
    next: usize,
}

static TABLE: Mutex<Table> = Mutex::new(Table::new());

fn table() -> std::sync::MutexGuard<'static, Table> {
    // A panic cannot happen while the lock is held; recover regardless.
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes the reserve after the mapping that ends at `end` out of the
/// table: its length, or 0 when there is none. The caller now owns it.
pub(crate) fn take(end: usize) -> usize {
    table().take(end)
}

/// Records `len` reserved bytes after the mapping ending at `end`. Returns
/// a reserve the caller must unmap: the oldest one, when the table was
/// full, as (end of its mapping, length).
pub(crate) fn put(end: usize, len: usize) -> Option<(usize, usize)> {
    table().put(end, len)
}

impl Table {
    const fn new() -> Table {
        Table {
            slots: [(0, 0); SLOTS],
            next: 0,
        }
    }

    fn take(&mut self, end: usize) -> usize {
        match self.slots.iter_mut().find(|s| s.1 != 0 && s.0 == end) {
            Some(s) => core::mem::take(s).1,
            None => 0,
        }
    }

    fn put(&mut self, end: usize, len: usize) -> Option<(usize, usize)> {
        debug_assert!(len > 0);
        if let Some(s) = self.slots.iter_mut().find(|s| s.1 == 0) {
            *s = (end, len);
            return None;
        }
        let i = self.next;
        self.next = (i + 1) % SLOTS;
        Some(core::mem::replace(&mut self.slots[i], (end, len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_is_taken_once_by_its_end() {
        let mut t = Table::new();
        assert_eq!(t.put(0x1000, 0x2000), None);
        assert_eq!(t.take(0x2000), 0, "not its end");
        assert_eq!(t.take(0x1000), 0x2000);
        assert_eq!(t.take(0x1000), 0, "taken already");
    }

    #[test]
    fn a_full_table_hands_back_the_oldest_reserve() {
        let mut t = Table::new();
        for i in 1..=SLOTS {
            assert_eq!(t.put(i << 16, i << 12), None);
        }
        assert_eq!(t.put(100 << 16, 1 << 12), Some((1 << 16, 1 << 12)));
        assert_eq!(t.put(101 << 16, 1 << 12), Some((2 << 16, 2 << 12)));
        assert_eq!((t.take(1 << 16), t.take(3 << 16)), (0, 3 << 12));
        // A freed slot is used before anything else is given back.
        assert_eq!(t.put(102 << 16, 1 << 12), None);
        assert_eq!(t.take(102 << 16), 1 << 12);
    }
}
