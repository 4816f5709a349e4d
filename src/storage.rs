//! Where segments come from: PHP 5.3's storage backends (`ZEND_MM_MEM_TYPE`).
//!
//! The heap calls its storage only to create, resize and release whole
//! segments, never on the per-block paths.

use std::fs::File;
use std::sync::OnceLock;

/// A source of segments.
///
/// # Safety
/// Implementations must hand out memory that stays valid and unaliased until
/// it is freed or reallocated, aligned to at least 16 bytes, and must never
/// call back into a zendmm heap (the heap is mid-update when it calls them).
pub unsafe trait Storage: Sync {
    /// The name `ZEND_MM_MEM_TYPE` selects it by.
    fn name(&self) -> &'static str;

    /// `size` bytes, or null when the system has none.
    fn alloc(&self, size: usize) -> *mut u8;

    /// Resizes a segment from `old` to `new` bytes, moving it if need be; the
    /// first `min(old, new)` bytes are kept. Null on failure, with the old
    /// segment untouched.
    ///
    /// # Safety
    /// `p` came from `alloc`/`realloc` of this storage with size `old`.
    unsafe fn realloc(&self, p: *mut u8, old: usize, new: usize) -> *mut u8;

    /// `realloc` for a segment whose one block grows (a string appended
    /// to), which will likely grow again: the mmap backends then move it,
    /// when they must, to a mapping with room to grow where it lies
    /// (`reserve.rs`).
    ///
    /// # Safety
    /// As [`Storage::realloc`].
    unsafe fn grow(&self, p: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: caller's contract.
        unsafe { self.realloc(p, old, new) }
    }

    /// # Safety
    /// `p` came from `alloc`/`realloc` of this storage with size `size`.
    unsafe fn free(&self, p: *mut u8, size: usize);

    /// Gives cached memory back to the system (`ZEND_MM_COMPACT`).
    fn compact(&self) {}

    /// `size` bytes (a multiple of 2 MiB) that the system may back with
    /// huge pages (a big heap's segments, `heap.rs`); the default is
    /// `alloc`. Given back with `free` like any other.
    fn alloc_huge_pages(&self, size: usize) -> *mut u8 {
        self.alloc(size)
    }

    /// Moves the `len` bytes of pages at `from` to `to` without copying,
    /// replacing the pages there; resident pages stay resident. False when
    /// the storage cannot (malloc's), with nothing changed. A mapping that
    /// received pages so spans several kernel mappings; `realloc` still
    /// grows it (by moving it whole to a new mapping when `mremap` cannot).
    ///
    /// # Safety
    /// `from` is a whole mapping of `len` bytes from this storage that
    /// nothing points into (it is gone afterwards); `to..to + len` lies in
    /// a mapping of this storage, and nothing there is needed.
    unsafe fn move_pages(&self, _from: *mut u8, _len: usize, _to: *mut u8) -> bool {
        false
    }

    /// Do `free` and `realloc` take any page-aligned part of a mapping as
    /// a mapping of its own (as `munmap` and `mremap` do)? Then a spare
    /// segment's tail can become a segment without a system call.
    fn splits(&self) -> bool {
        false
    }

    /// How many of the pages of `len` bytes at `p` are resident (0 when
    /// the storage cannot tell).
    ///
    /// # Safety
    /// `p..p + len` lies in a mapping of this storage; `p` is page-aligned.
    unsafe fn resident_pages(&self, _p: *mut u8, _len: usize) -> usize {
        0
    }
}

/// libc malloc: PHP 5.3's default backend (zendmm's is `mmap_anon`).
pub struct Malloc;

// SAFETY: malloc memory is 16-aligned on the supported targets and libc never
// calls into zendmm (zendmm does not replace malloc).
unsafe impl Storage for Malloc {
    fn name(&self) -> &'static str {
        "malloc"
    }
    fn alloc(&self, size: usize) -> *mut u8 {
        // SAFETY: plain libc call.
        unsafe { libc::malloc(size) }.cast()
    }
    unsafe fn realloc(&self, p: *mut u8, _old: usize, new: usize) -> *mut u8 {
        // SAFETY: `p` is a live malloc block (caller's contract).
        unsafe { libc::realloc(p.cast(), new) }.cast()
    }
    unsafe fn free(&self, p: *mut u8, _size: usize) {
        // SAFETY: `p` is a live malloc block (caller's contract).
        unsafe { libc::free(p.cast()) }
    }
}

/// Private anonymous mappings, resized with `mremap`.
pub struct MmapAnon;

/// Private mappings of `/dev/zero` (working, unlike PHP 5.3's, whose init
/// never opened the device).
pub struct MmapZero;

fn dev_zero() -> Option<&'static File> {
    static DEV_ZERO: OnceLock<Option<File>> = OnceLock::new();
    DEV_ZERO
        .get_or_init(|| File::open("/dev/zero").ok())
        .as_ref()
}

/// Mappings up to this size are pre-faulted (`MAP_POPULATE`): a regular
/// segment is carved from the front and filled, so its pages are all
/// touched soon, and one call faulting them in costs less than a fault per
/// page (on the `phpparser` trace 16% less time for the same resident set).
/// Bigger mappings hold one big block, often not all touched.
const POPULATE_MAX: usize = crate::config::SEGMENT_SIZE;

/// The size and alignment of a transparent huge page on x86-64 and arm64.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// Takes the address out of a fresh mapping; the segment list owns it from
/// now on and `munmap` releases it.
fn leak_map(map: std::io::Result<memmap2::MmapMut>) -> *mut u8 {
    match map {
        Ok(mut m) => {
            let p = m.as_mut_ptr();
            std::mem::forget(m);
            p
        }
        Err(_) => core::ptr::null_mut(),
    }
}

/// A fresh private anonymous mapping of `len` bytes, or null.
fn map_anon(len: usize) -> *mut u8 {
    leak_map(memmap2::MmapOptions::new().len(len).map_anon())
}

/// Resizes a mapping of the mmap backends. A growth opens the mapping's
/// reserve when it fits there (`reserve.rs`), else grows where it lies or
/// moves. `reserve` marks an append (`Storage::grow`): a move is to a
/// mapping with a reserve after it, and a growth may open that reserve
/// ahead of itself (`opening`).
///
/// # Safety
/// `p` is a mapping of `old` bytes made by one of the mmap backends.
unsafe fn mremap(p: *mut u8, old: usize, new: usize, reserve: bool) -> *mut u8 {
    let extra = crate::reserve::take(p as usize + old);
    // SAFETY: caller's contract; the reserve lies right after the mapping (R1).
    unsafe {
        if new <= old {
            // The shrink and the reserve are one range: unmapped at once.
            if old + extra > new {
                munmap(p.add(new), old + extra - new);
            }
            return p;
        }
        let grow = new - old;
        // Only appends open ahead: the `bench` trace's block that doubles
        // from 768 KiB to 2.75 MiB took a whole huge page for the last
        // byte it wrote.
        let open = if reserve {
            opening(p, old, new, extra)
        } else {
            grow
        };
        if grow <= extra && open_reserve(p.add(old), open) {
            keep_reserve(p.add(new), extra - grow);
            // Once, as it crosses the size (`map_reserved` advises the
            // mappings it makes at that size or more).
            if old < HUGE_GROWTH && new >= HUGE_GROWTH {
                advise_huge(p, new + extra - grow);
            }
            return p;
        }
        if extra > 0 {
            munmap(p.add(old), extra);
        }
        if !reserve {
            return mremap_moving(p, old, new);
        }
        if libc::mremap(p.cast(), old, new, 0) != libc::MAP_FAILED {
            return p;
        }
        let Some((fresh, extra)) = map_reserved(new, new) else {
            return mremap_moving(p, old, new);
        };
        move_into(p, old, fresh);
        keep_reserve(fresh.add(new), extra);
        fresh
    }
}

/// From this size on, a mapping that grows into a reserve is laid out for
/// transparent huge pages: moved, it starts on a huge-page boundary and
/// its reserve ends on one, and it is advised `MADV_HUGEPAGE`. From
/// `OPEN_AHEAD` on, an append also opens its reserve up to the next
/// boundary, so that the first write past one (the segment's new guard)
/// finds the whole huge page inside the mapping and faults it in at once.
/// A string appended to past a few MiB (the `phpparser` trace grows one to
/// 10 MB, twice) otherwise faults in a 4 KiB page at a time, at 1.2-1.5 us
/// each on the machines measured, against 0.1-0.3 us per 4 KiB for a huge
/// page. Only what the string grows into takes huge pages (the pages moved
/// with it stay as they are), and at most the one huge page past its end
/// is resident beyond it. Below 1 MiB nothing changes: most strings stop
/// there.
const HUGE_GROWTH: usize = HUGE_PAGE / 2;

/// The size from which an append opens its reserve up to the next
/// huge-page boundary. Opened from `HUGE_GROWTH` on (sessions 23-27), a
/// string that stopped at 1.0-1.2 MB took a whole huge page whenever its
/// end crossed a boundary, which depends on where the kernel placed it:
/// the `bench` trace then added 4.2-4.5 MiB of RSS instead of 2.4 (limit
/// 3.4) in 20 of 59 runs (from 1 of 12 to 10 of 15 in a batch), and in
/// none of 35 once appends opened ahead only from here. Its growth from 1
/// to 2 MiB lies in the first huge page of its layout, where the moved
/// pages already are, so `phpparser` takes the same 9,095 faults either
/// way.
const OPEN_AHEAD: usize = HUGE_PAGE;

/// The bytes of a reserve of `extra` at `p + old` that an append growing
/// the mapping at `p` from `old` to `new` bytes opens: the growth, and from
/// `OPEN_AHEAD` on up to the next huge-page boundary when the reserve
/// reaches it.
fn opening(p: *mut u8, old: usize, new: usize, extra: usize) -> usize {
    let grow = new - old;
    if new < OPEN_AHEAD {
        return grow;
    }
    let end = p as usize + new;
    let boundary = end.next_multiple_of(HUGE_PAGE);
    (boundary - (p as usize + old)).min(extra).max(grow)
}

/// The `keep` bytes of a mapping of `keep + HUGE_PAGE` bytes at `raw` that
/// start on a huge-page boundary; the head before them and the tail after
/// them are given back.
///
/// # Safety
/// `raw` is a fresh mapping of ours of `keep + HUGE_PAGE` bytes that
/// nothing points into.
unsafe fn trim_to_huge_page(raw: *mut u8, keep: usize) -> *mut u8 {
    // Not `align_offset`, which may refuse to compute the offset.
    let head = (raw as usize).next_multiple_of(HUGE_PAGE) - raw as usize;
    // SAFETY: caller's contract; `head < HUGE_PAGE`, so both parts lie in
    // the mapping, outside the bytes kept.
    unsafe {
        if head > 0 {
            munmap(raw, head);
        }
        let p = raw.add(head);
        munmap(p.add(keep), HUGE_PAGE - head);
        p
    }
}

/// Asks for transparent huge pages in `len` bytes at `p`, where the
/// kernel allows them (`MADV_HUGEPAGE`; an error only leaves 4 KiB pages).
///
/// # Safety
/// `p..p + len` is a mapping of ours, with its reserve.
unsafe fn advise_huge(p: *mut u8, len: usize) {
    // SAFETY: caller's contract; advice changes no byte.
    unsafe { libc::madvise(p.cast(), len, libc::MADV_HUGEPAGE) };
}

/// Grows a mapping where it lies or moves it, with no reserve.
///
/// # Safety
/// As [`mremap`], with no reserve after the mapping.
unsafe fn mremap_moving(p: *mut u8, old: usize, new: usize) -> *mut u8 {
    // SAFETY: caller's contract; MAYMOVE keeps the old mapping on failure.
    let q = unsafe { libc::mremap(p.cast(), old, new, libc::MREMAP_MAYMOVE) };
    if q != libc::MAP_FAILED {
        return q.cast();
    }
    let fresh = map_anon(new);
    if !fresh.is_null() {
        // SAFETY: `fresh` is a new mapping of `new > old` bytes.
        unsafe { move_into(p, old, fresh) };
    }
    fresh
}

/// Moves a mapping of `old` bytes over the front of a bigger new one, by
/// page tables. `mremap` moves one kernel mapping only; a segment that
/// received pages (`move_pages`) spans several, which only Linux 6.17 and
/// later move in one call; else the bytes are copied.
///
/// # Safety
/// `p` is a mapping of `old` bytes, gone afterwards; `fresh` a new mapping
/// of more.
unsafe fn move_into(p: *mut u8, old: usize, fresh: *mut u8) {
    // SAFETY: caller's contract.
    unsafe {
        if !move_mapping(p, old, fresh) {
            core::ptr::copy_nonoverlapping(p, fresh, old);
            munmap(p, old);
        }
    }
}

/// A mapping of `len` bytes followed by at least `reserve` inaccessible
/// ones (laid out for huge pages from `HUGE_GROWTH` on): its address and
/// the bytes reserved, or None.
fn map_reserved(len: usize, reserve: usize) -> Option<(*mut u8, usize)> {
    let huge = len >= HUGE_GROWTH;
    let mut total = len.checked_add(reserve)?;
    if huge {
        total = total.checked_next_multiple_of(HUGE_PAGE)?;
    }
    // Room to move the start to a huge-page boundary.
    let slack = if huge { HUGE_PAGE } else { 0 };
    // SAFETY: a fresh mapping of `total + slack` bytes, nothing else in it.
    unsafe {
        let raw = libc::mmap(
            core::ptr::null_mut(),
            total.checked_add(slack)?,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if raw == libc::MAP_FAILED {
            return None;
        }
        let raw = raw.cast::<u8>();
        let (p, open) = if huge {
            let p = trim_to_huge_page(raw, total);
            advise_huge(p, total);
            (p, opening(p, 0, len, total))
        } else {
            (raw, len)
        };
        if !open_reserve(p, open) {
            munmap(p, total);
            return None;
        }
        Some((p, total - len))
    }
}

/// Makes `len` bytes of a reserve at `p` a readable and writable part of
/// the mapping before it.
///
/// # Safety
/// `p..p + len` lies in a reserve taken out of the table.
unsafe fn open_reserve(p: *mut u8, len: usize) -> bool {
    // SAFETY: caller's contract.
    unsafe { libc::mprotect(p.cast(), len, libc::PROT_READ | libc::PROT_WRITE) == 0 }
}

/// Records the `len` reserved bytes at `end` (none when 0), giving back a
/// reserve the full table let go.
///
/// # Safety
/// `end..end + len` is an inaccessible reserve right after a mapping that
/// ends at `end`, owned by the caller.
unsafe fn keep_reserve(end: *mut u8, len: usize) {
    if len == 0 {
        return;
    }
    if let Some((e, n)) = crate::reserve::put(end as usize, len) {
        // SAFETY: the table owned that reserve, and hands it over (R1).
        unsafe { munmap(e as *mut u8, n) };
    }
}

/// # Safety
/// As [`Storage::resident_pages`], for the mmap backends.
unsafe fn resident_pages(p: *mut u8, len: usize) -> usize {
    const CHUNK: usize = 256;
    let mut vec = [0u8; CHUNK];
    let (mut n, mut off) = (0, 0);
    while off < len {
        let part = (len - off).min(CHUNK * PAGE);
        // SAFETY: caller's contract; `vec` holds a byte per page of `part`.
        if unsafe { libc::mincore(p.add(off).cast(), part, vec.as_mut_ptr()) } != 0 {
            return 0;
        }
        n += vec[..part.div_ceil(PAGE)]
            .iter()
            .filter(|&&b| b & 1 != 0)
            .count();
        off += part;
    }
    n
}

/// The page size the mmap backends' segment sizes are multiples of.
pub(crate) const PAGE: usize = 4096;

/// Does the kernel move a range spanning several mappings in one
/// `mremap` (Linux 6.17 and later)? Without that, a segment that received
/// pages would be copied each time it grows, so `move_pages` declines.
/// Probed once: a page moved next to another mapping's, then both moved.
pub(crate) fn moves_whole() -> bool {
    static MOVES: OnceLock<bool> = OnceLock::new();
    *MOVES.get_or_init(|| {
        let (a, b, c) = (map_anon(2 * PAGE), map_anon(PAGE), map_anon(2 * PAGE));
        if a.is_null() || b.is_null() || c.is_null() {
            for (p, n) in [(a, 2 * PAGE), (b, PAGE), (c, 2 * PAGE)] {
                if !p.is_null() {
                    // SAFETY: a fresh mapping of ours, of `n` bytes.
                    unsafe { munmap(p, n) };
                }
            }
            return false;
        }
        // `b` moves over `a`'s second page, then `a` (two kernel mappings
        // now) over `c`; every page left mapped is unmapped.
        // SAFETY: three fresh mappings of our own, nothing else in them.
        unsafe {
            a.write(1);
            b.write(2);
            if !move_mapping(b, PAGE, a.add(PAGE)) {
                munmap(b, PAGE);
                munmap(a, 2 * PAGE);
                munmap(c, 2 * PAGE);
                return false;
            }
            let moved = move_mapping(a, 2 * PAGE, c);
            let ok = moved && (c.read(), c.add(PAGE).read()) == (1, 2);
            if !moved {
                munmap(a, 2 * PAGE);
            }
            munmap(c, 2 * PAGE);
            ok
        }
    })
}

/// # Safety
/// As [`Storage::move_pages`], for the mmap backends.
unsafe fn move_mapping(from: *mut u8, len: usize, to: *mut u8) -> bool {
    let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
    // SAFETY: caller's contract; on failure nothing has moved.
    unsafe { libc::mremap(from.cast(), len, len, flags, to) != libc::MAP_FAILED }
}

/// # Safety
/// `p` is a mapping of `size` bytes made by one of the mmap backends.
unsafe fn munmap(p: *mut u8, size: usize) {
    // SAFETY: caller's contract.
    unsafe { libc::munmap(p.cast(), size) };
}

/// Unmaps a mapping of the mmap backends and its reserve (R1).
///
/// # Safety
/// As [`munmap`].
unsafe fn unmap_segment(p: *mut u8, size: usize) {
    let extra = crate::reserve::take(p as usize + size);
    // SAFETY: caller's contract; the reserve lies right after the mapping.
    unsafe { munmap(p, size + extra) };
}

/// `move_pages` for the mmap backends: the moved mapping's reserve, now
/// after nothing of ours, goes too (R1).
///
/// # Safety
/// As [`Storage::move_pages`].
unsafe fn move_segment(from: *mut u8, len: usize, to: *mut u8) -> bool {
    // SAFETY: caller's contract.
    if !(moves_whole() && unsafe { move_mapping(from, len, to) }) {
        return false;
    }
    let extra = crate::reserve::take(from as usize + len);
    if extra > 0 {
        // SAFETY: the reserve was the table's and is ours now.
        unsafe { munmap(from.add(len), extra) };
    }
    true
}

/// What the mmap backends share: `mremap` resizes, `munmap` frees any
/// page-aligned part, pages move with `mremap(MREMAP_FIXED)`.
macro_rules! mmap_methods {
    () => {
        unsafe fn realloc(&self, p: *mut u8, old: usize, new: usize) -> *mut u8 {
            // SAFETY: caller's contract.
            unsafe { mremap(p, old, new, false) }
        }
        unsafe fn grow(&self, p: *mut u8, old: usize, new: usize) -> *mut u8 {
            // SAFETY: caller's contract.
            unsafe { mremap(p, old, new, true) }
        }
        unsafe fn free(&self, p: *mut u8, size: usize) {
            // SAFETY: caller's contract.
            unsafe { unmap_segment(p, size) }
        }
        unsafe fn move_pages(&self, from: *mut u8, len: usize, to: *mut u8) -> bool {
            // SAFETY: caller's contract.
            unsafe { move_segment(from, len, to) }
        }
        fn splits(&self) -> bool {
            true
        }
        unsafe fn resident_pages(&self, p: *mut u8, len: usize) -> usize {
            // SAFETY: caller's contract.
            unsafe { resident_pages(p, len) }
        }
    };
}

// SAFETY: mappings are page-aligned and independent of any heap.
unsafe impl Storage for MmapAnon {
    fn name(&self) -> &'static str {
        "mmap_anon"
    }
    fn alloc(&self, size: usize) -> *mut u8 {
        let mut o = memmap2::MmapOptions::new();
        o.len(size);
        if size <= POPULATE_MAX {
            o.populate();
        }
        leak_map(o.map_anon())
    }
    mmap_methods!();
    fn alloc_huge_pages(&self, size: usize) -> *mut u8 {
        // A huge page covers an aligned 2 MiB: map 2 MiB more.
        let raw = map_anon(size + HUGE_PAGE);
        if raw.is_null() {
            return raw;
        }
        // A kernel without transparent huge pages just refuses the advice.
        // SAFETY: a fresh mapping of `size + HUGE_PAGE` bytes, nothing
        // points into it; the advice is on the aligned rest.
        unsafe {
            let p = trim_to_huge_page(raw, size);
            advise_huge(p, size);
            p
        }
    }
}

// SAFETY: as MmapAnon; `map_copy` makes a private (copy-on-write) mapping, so
// a forked child never shares heap pages with its parent.
unsafe impl Storage for MmapZero {
    fn name(&self) -> &'static str {
        "mmap_zero"
    }
    fn alloc(&self, size: usize) -> *mut u8 {
        match dev_zero() {
            // SAFETY: /dev/zero cannot be truncated under the mapping.
            Some(f) => leak_map(unsafe { memmap2::MmapOptions::new().len(size).map_copy(f) }),
            None => core::ptr::null_mut(),
        }
    }
    mmap_methods!();
}

/// The backends `ZEND_MM_MEM_TYPE` can name, in PHP 5.3's order (its
/// error message lists them so); the default is `mmap_anon` (config.rs).
pub static BACKENDS: [&dyn Storage; 3] = [&Malloc, &MmapAnon, &MmapZero];

/// The backend called `name`.
pub fn by_name(name: &str) -> Option<&'static dyn Storage> {
    BACKENDS.iter().copied().find(|s| s.name() == name)
}

/// For the tests: a page mapped at an address right after a mapping, only
/// if nothing lies there (else nothing is mapped, and something else
/// boxes the mapping in already), so that `mremap` cannot grow it where
/// it lies. Unmapped when dropped.
#[cfg(test)]
pub(crate) struct PageAfter(*mut u8);

#[cfg(test)]
impl PageAfter {
    pub(crate) fn map(at: *mut u8) -> PageAfter {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
        // SAFETY: asks for one page at `at`; the kernel refuses it
        // (EEXIST) rather than replace anything there.
        let q = unsafe { libc::mmap(at.cast(), PAGE, libc::PROT_NONE, flags, -1, 0) };
        PageAfter(if q == libc::MAP_FAILED {
            core::ptr::null_mut()
        } else {
            q.cast()
        })
    }
}

#[cfg(test)]
impl Drop for PageAfter {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the page this guard mapped, nothing else in it.
            unsafe { munmap(self.0, PAGE) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_allocates_grows_and_frees() {
        for s in BACKENDS {
            let p = s.alloc(1 << 16);
            assert!(!p.is_null(), "{}", s.name());
            // SAFETY: fresh 64 KiB segment from `s`.
            unsafe {
                p.write_bytes(0xAB, 1 << 16);
                let q = s.realloc(p, 1 << 16, 1 << 20);
                assert!(!q.is_null(), "{}", s.name());
                assert_eq!(*q.add((1 << 16) - 1), 0xAB);
                s.free(q, 1 << 20);
            }
        }
    }

    #[test]
    fn moved_pages_keep_their_bytes_and_the_receiver_still_grows() {
        const N: usize = 1 << 16;
        for s in [&MmapAnon as &dyn Storage, &MmapZero] {
            let p = s.alloc(2 * N);
            let d = s.alloc(N);
            assert!(!p.is_null() && !d.is_null(), "{}", s.name());
            // SAFETY: fresh mappings; `d` is moved whole into `p`'s tail,
            // whose bytes are not needed, and is not touched afterwards.
            unsafe {
                p.write_bytes(0x11, N);
                d.write_bytes(0x22, N);
                if !moves_whole() {
                    // An older kernel: nothing moves, nothing changes.
                    assert!(!s.move_pages(d, N, p.add(N)), "{}", s.name());
                    assert_eq!(*p.add(N), 0);
                    s.free(p, 2 * N);
                    s.free(d, N);
                    continue;
                }
                assert!(s.move_pages(d, N, p.add(N)), "{}", s.name());
                assert_eq!(
                    (*p.add(N - 1), *p.add(N), *p.add(2 * N - 1)),
                    (0x11, 0x22, 0x22)
                );
                // Two kernel mappings now: growing still keeps every byte.
                let q = s.realloc(p, 2 * N, 8 * N);
                assert!(!q.is_null(), "{}", s.name());
                assert_eq!((*q, *q.add(N), *q.add(2 * N - 1)), (0x11, 0x22, 0x22));
                q.add(8 * N - 1).write(0x33);
                let r = s.realloc(q, 8 * N, N);
                assert_eq!(*r.add(N - 1), 0x11);
                s.free(r, N);
            }
        }
        let (a, b) = (Malloc.alloc(64), Malloc.alloc(64));
        // SAFETY: malloc cannot move pages: nothing changes; both freed once.
        unsafe {
            assert!(!Malloc.move_pages(a, 64, b));
            Malloc.free(a, 64);
            Malloc.free(b, 64);
        }
    }

    /// Is every page of `len` bytes at `p` mapped (accessible or not)?
    fn mapped(p: *mut u8, len: usize) -> bool {
        let mut v = vec![0u8; len.div_ceil(PAGE)];
        // SAFETY: mincore only reads the page tables.
        unsafe { libc::mincore(p.cast(), len, v.as_mut_ptr()) == 0 }
    }

    /// A mapping of `n` bytes that cannot grow where it lies, and the
    /// page that boxes it in (`PageAfter`; the tests that use it run
    /// alone, so a neighbour that boxes it in instead stays).
    fn boxed_in(s: &dyn Storage, n: usize) -> (*mut u8, PageAfter) {
        let p = s.alloc(n);
        assert!(!p.is_null(), "{}", s.name());
        // SAFETY: only the address is formed.
        (p, PageAfter::map(unsafe { p.add(n) }))
    }

    #[test]
    #[ignore = "checks that pages are unmapped: run alone (make rust-test runs it with --test-threads=1)"]
    fn a_moved_mapping_grows_into_its_reserve_and_gives_it_back() {
        const N: usize = 1 << 16;
        for s in [&MmapAnon as &dyn Storage, &MmapZero] {
            let (p, _after) = boxed_in(s, N);
            // SAFETY: `p` is a fresh mapping of N bytes; each realloc's
            // result replaces it; the reserve is checked only by address.
            unsafe {
                p.write_bytes(0x5A, N);
                let q = s.grow(p, N, 2 * N);
                assert!(!q.is_null() && q != p, "{}: it had to move", s.name());
                assert!(mapped(q.add(2 * N), 2 * N), "a reserve of its size");
                q.add(2 * N - 1).write(1);
                // Growths within the reserve stay where they are.
                assert_eq!(s.realloc(q, 2 * N, 3 * N), q, "{}", s.name());
                q.add(3 * N - 1).write(2);
                assert_eq!(s.realloc(q, 3 * N, 4 * N), q, "{}", s.name());
                q.add(4 * N - 1).write(3);
                assert_eq!((*q, *q.add(N - 1), *q.add(2 * N - 1)), (0x5A, 0x5A, 1));
                assert_eq!((*q.add(3 * N - 1), *q.add(4 * N - 1)), (2, 3));
                // Past the reserve: grown or moved, bytes kept.
                let r = s.realloc(q, 4 * N, 6 * N);
                assert!(!r.is_null());
                assert_eq!((*r, *r.add(4 * N - 1)), (0x5A, 3));
                // A shrink gives back the tail and any reserve with it.
                // Recorded, not merely mapped: the page after `r` may be
                // another mapping's.
                let end = r.add(6 * N);
                let reserved = crate::reserve::take(end as usize);
                if reserved > 0 {
                    assert_eq!(crate::reserve::put(end as usize, reserved), None);
                }
                assert_eq!(s.realloc(r, 6 * N, N), r);
                assert!(!mapped(r.add(N), PAGE));
                if reserved > 0 {
                    assert!(!mapped(end, PAGE), "{}: reserve unmapped", s.name());
                    assert_eq!(crate::reserve::take(end as usize), 0, "and forgotten");
                }
                s.free(r, N);
                assert!(!mapped(r, PAGE));
            }
        }
    }

    #[test]
    #[ignore = "checks that pages are unmapped: run alone (make rust-test runs it with --test-threads=1)"]
    fn freeing_or_moving_a_mapping_unmaps_its_reserve() {
        const N: usize = 1 << 16;
        let (p, _after) = boxed_in(&MmapAnon, N);
        // SAFETY: as in the test above; `q` is moved whole into `d`.
        unsafe {
            let q = MmapAnon.grow(p, N, 2 * N);
            assert!(mapped(q.add(2 * N), 2 * N));
            MmapAnon.free(q, 2 * N);
            assert!(!mapped(q, PAGE) && !mapped(q.add(2 * N), PAGE));
            if moves_whole() {
                let (p, _after2) = boxed_in(&MmapAnon, N);
                let q = MmapAnon.grow(p, N, 2 * N);
                let d = MmapAnon.alloc(2 * N);
                assert!(MmapAnon.move_pages(q, 2 * N, d));
                assert!(!mapped(q.add(2 * N), PAGE), "the reserve went too");
                MmapAnon.free(d, 2 * N);
            }
        }
    }

    /// The `VmFlags` of the mapping holding `p`, from `/proc/self/smaps`.
    fn vm_flags(p: *mut u8) -> String {
        mapping_flags(p).unwrap_or_else(|| panic!("no mapping holds {p:?}"))
    }

    /// As `vm_flags`, or None when no mapping holds `p`.
    fn mapping_flags(p: *mut u8) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((lo, hi)) = crate::hotpatch::map_range(line) {
                inside = (lo..hi).contains(&(p as usize));
                continue;
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return Some(flags.to_string());
                }
            }
        }
        None
    }

    /// Can `p`'s page be written (mapped, and not in a closed reserve)?
    fn writable(p: *mut u8) -> bool {
        mapping_flags(p).is_some_and(|f| f.split_whitespace().any(|f| f == "wr"))
    }

    #[test]
    #[ignore = "checks that pages are unmapped: run alone (make rust-test runs it with --test-threads=1)"]
    fn a_mapping_grown_past_a_mib_is_laid_out_for_huge_pages() {
        const N: usize = HUGE_GROWTH;
        const STEP: usize = 1 << 18;
        let (p, _after) = boxed_in(&MmapAnon, N);
        // SAFETY: `p` is a fresh mapping of N bytes, replaced by what
        // `grow` returns; only bytes inside the mapping are written.
        unsafe {
            p.write_bytes(0x5A, N);
            let q = MmapAnon.grow(p, N, N + STEP);
            assert!(!q.is_null() && q != p, "it had to move");
            assert_eq!(q as usize % HUGE_PAGE, 0, "to a huge-page boundary");
            let end = q as usize + N + STEP;
            let reserved = crate::reserve::take(end);
            assert_eq!(crate::reserve::put(end, reserved), None);
            assert!(reserved >= N + STEP, "a reserve of at least its size");
            assert_eq!((end + reserved) % HUGE_PAGE, 0, "ending on a boundary");
            if std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
                // Past the moved pages, which keep their own flags.
                let grown = vm_flags(q.add(N + STEP));
                assert!(grown.split_whitespace().any(|f| f == "hg"), "advised");
            }
            // Below `OPEN_AHEAD` a growth opens only itself.
            assert!(writable(q.add(N + STEP - 1)));
            assert!(!writable(q.add(N + STEP)), "nothing opened ahead");
            assert_eq!(MmapAnon.grow(q, N + STEP, 2 * N), q);
            assert!(!writable(q.add(2 * N)));
            // From it on, up to the next boundary: the guard the heap
            // writes past one finds the whole huge page in the mapping.
            assert_eq!(MmapAnon.grow(q, 2 * N, 2 * N + STEP), q);
            let boundary = (q as usize + 2 * N + STEP).next_multiple_of(HUGE_PAGE);
            (boundary as *mut u8).sub(1).write(7);
            assert!(!writable(boundary as *mut u8));
            // The next growth opens nothing new, bytes kept.
            assert_eq!(MmapAnon.grow(q, 2 * N + STEP, 2 * N + 2 * STEP), q);
            let last = boundary - 1 - q as usize;
            assert_eq!((*q, *q.add(N - 1), *q.add(last)), (0x5A, 0x5A, 7));
            MmapAnon.free(q, 2 * N + 2 * STEP);
            assert!(!mapped(q, PAGE) && !mapped(q.add(2 * N + 2 * STEP), PAGE));
        }
    }

    #[test]
    #[ignore = "checks that pages are unmapped: run alone (make rust-test runs it with --test-threads=1)"]
    fn a_block_that_doubles_into_a_reserve_opens_only_its_growth() {
        const N: usize = HUGE_GROWTH;
        let (p, _after) = boxed_in(&MmapAnon, N);
        // SAFETY: as above; `realloc` is the doubling's path.
        unsafe {
            let q = MmapAnon.grow(p, N, N + (1 << 18));
            assert_eq!(q as usize % HUGE_PAGE, 0);
            assert_eq!(MmapAnon.realloc(q, N + (1 << 18), 5 * N / 2), q);
            q.add(5 * N / 2 - 1).write(1);
            assert!(!writable(q.add(5 * N / 2)), "no huge page opened ahead");
            MmapAnon.free(q, 5 * N / 2);
        }
    }

    #[test]
    fn names_select_backends() {
        assert_eq!(by_name("mmap_zero").map(|s| s.name()), Some("mmap_zero"));
        assert!(by_name("win32").is_none());
    }

    #[test]
    fn huge_page_mappings_are_aligned_to_a_huge_page() {
        let p = MmapAnon.alloc_huge_pages(HUGE_PAGE);
        assert!(!p.is_null());
        assert_eq!(p as usize % HUGE_PAGE, 0);
        // SAFETY: a fresh mapping of HUGE_PAGE bytes, given back whole.
        unsafe {
            p.write_bytes(0xCD, HUGE_PAGE);
            MmapAnon.free(p, HUGE_PAGE);
        }
        // The other backends just allocate.
        for s in [&Malloc as &dyn Storage, &MmapZero] {
            let p = s.alloc_huge_pages(HUGE_PAGE);
            assert!(!p.is_null(), "{}", s.name());
            // SAFETY: as above.
            unsafe {
                p.write_bytes(0xCD, HUGE_PAGE);
                s.free(p, HUGE_PAGE);
            }
        }
    }
}
