//! The safe request arena, `zendmm::Heap`: one test per documented behaviour.

use std::cell::Cell;
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use zendmm::allocator_api2::boxed::Box as HeapBoxApi2;
use zendmm::allocator_api2::vec::Vec;
use zendmm::storage::{self, Storage};
use zendmm::{Bytes, Config, Heap, HeapBox, MemError};

const SEG: usize = 256 * 1024;

/// A storage that counts the segments it has out, over a real backend.
struct Counting {
    inner: &'static dyn Storage,
    live: AtomicUsize,
    bytes: AtomicUsize,
}

impl Counting {
    const fn new(inner: &'static dyn Storage) -> Counting {
        Counting {
            inner,
            live: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
        }
    }
    fn out(&self) -> (usize, usize) {
        (self.live.load(Relaxed), self.bytes.load(Relaxed))
    }
}

// SAFETY: forwards to a real backend.
unsafe impl Storage for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn alloc(&self, size: usize) -> *mut u8 {
        let p = self.inner.alloc(size);
        if !p.is_null() {
            self.live.fetch_add(1, Relaxed);
            self.bytes.fetch_add(size, Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, p: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let q = unsafe { self.inner.realloc(p, old, new) };
        if !q.is_null() {
            self.bytes.fetch_add(new, Relaxed);
            self.bytes.fetch_sub(old, Relaxed);
        }
        q
    }
    unsafe fn free(&self, p: *mut u8, size: usize) {
        self.live.fetch_sub(1, Relaxed);
        self.bytes.fetch_sub(size, Relaxed);
        // SAFETY: forwarded contract.
        unsafe { self.inner.free(p, size) }
    }
}

fn heap_on(storage: &'static dyn Storage) -> Heap {
    Heap::with_config(Config {
        storage,
        ..Config::DEFAULT
    })
}

/// Bytes a block of `n` requested bytes counts for: 8-byte header, 16-byte
/// granules, 32 at least.
fn true_size(n: usize) -> usize {
    ((n + 8 + 15) & !15).max(32)
}

#[test]
fn usage_counts_true_sizes_and_returns_to_zero_when_all_is_freed() {
    let heap = Heap::new();
    let a = heap.alloc([1u8; 100]).unwrap();
    let b = heap.alloc_str("hello").unwrap();
    let c = heap.alloc_bytes(5000).unwrap();
    assert_eq!(
        heap.usage(),
        true_size(100) + true_size(5) + true_size(5000)
    );
    assert_eq!((heap.segment_count(), heap.real_usage()), (1, SEG));
    drop((a, b, c));
    assert_eq!(heap.usage(), 0);
    heap.check().unwrap();
}

#[test]
fn peak_keeps_the_highest_usage_until_reset_peak() {
    let heap = Heap::new();
    let big = heap.alloc_bytes(50_000).unwrap();
    let small = heap.alloc(0u64).unwrap();
    let high = true_size(50_000) + true_size(8);
    drop(big);
    assert_eq!((heap.usage(), heap.peak()), (true_size(8), high));
    heap.reset_peak();
    assert_eq!(heap.peak(), true_size(8));
    assert_eq!(heap.real_peak(), heap.real_usage());
    drop(small);
}

#[test]
fn allocation_past_the_limit_returns_phps_error_and_the_heap_goes_on() {
    let heap = Heap::new();
    heap.set_limit(1 << 20).unwrap();
    assert_eq!(heap.limit(), 1 << 20);
    let kept = heap.alloc_str("still here").unwrap();
    // 2 MiB gets a dedicated segment: the block rounded up to whole segments.
    let err = heap.alloc_bytes(2 << 20).unwrap_err();
    assert_eq!(
        err,
        MemError::Limit {
            limit: 1 << 20,
            tried: (2 << 20) + SEG
        }
    );
    assert_eq!(
        err.to_string(),
        "Allowed memory size of 1048576 bytes exhausted (tried to allocate 2359296 bytes)"
    );
    // Up to the limit, three more segments fit; the fourth does not.
    let mut held = std::vec::Vec::new();
    let err = loop {
        match heap.alloc_bytes(200_000) {
            Ok(b) => held.push(b),
            Err(e) => break e,
        }
    };
    assert_eq!(
        err,
        MemError::Limit {
            limit: 1 << 20,
            tried: SEG
        }
    );
    assert_eq!(heap.real_usage(), 1 << 20);
    assert_eq!(&*kept, "still here");
    heap.check().unwrap();
    drop(held);
    let after = heap.alloc_bytes(200_000).unwrap();
    assert_eq!(after.len(), 200_000);
}

#[test]
fn a_limit_below_what_the_heap_holds_is_refused_and_the_old_one_kept() {
    let heap = Heap::new();
    let big = heap.alloc_bytes(3 << 20).unwrap();
    let before = heap.limit();
    let err = heap.set_limit(1 << 20).unwrap_err();
    assert_eq!(err.limit, 1 << 20);
    assert_eq!(err.real_usage, heap.real_usage());
    assert!(err.real_usage > 3 << 20);
    assert_eq!(heap.limit(), before);
    drop(big);
}

#[test]
fn realloc_keeps_contents_through_every_kind_of_growth() {
    static STORE: Counting = Counting::new(&storage::MmapAnon);
    let heap = heap_on(&STORE);
    let mut buf = heap.alloc_bytes(0).unwrap();
    let pattern = |i: usize| (i * 7 + i / 251) as u8;
    // Small blocks, large blocks, a dedicated segment resized by mremap.
    for len in [10, 100, 1000, 5000, 100_000, 300_000, 3 << 20, 9 << 20] {
        let old = buf.len();
        buf.resize(len).unwrap();
        assert!(buf[old..].iter().all(|&b| b == 0), "new bytes are zero");
        for i in old..len {
            buf[i] = pattern(i);
        }
        assert!(
            buf.iter().enumerate().all(|(i, &b)| b == pattern(i)),
            "contents lost growing to {len}"
        );
        assert!(buf.capacity() >= len);
        heap.check().unwrap();
    }
    buf.resize(1000).unwrap();
    buf.shrink_to_fit().unwrap();
    assert!(buf.capacity() < 2000);
    assert!(buf.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    heap.check().unwrap();
}

#[test]
fn extend_doubles_capacity_and_formats_text() {
    let heap = Heap::new();
    let mut page = heap.alloc_bytes(0).unwrap();
    let mut reallocs = 0;
    let mut cap = page.capacity();
    for i in 0..10_000 {
        write!(page, "<li>{i}</li>").unwrap(); // the inherent, MemError one
        if page.capacity() != cap {
            reallocs += 1;
            cap = page.capacity();
        }
    }
    let expected: String = (0..10_000).map(|i| format!("<li>{i}</li>")).collect();
    assert_eq!(page.as_str(), Ok(expected.as_str()));
    assert!(reallocs < 20, "{reallocs} reallocs for 10,000 appends");
    // Generic code sees `fmt::Write`.
    fn emit(out: &mut impl Write) -> std::fmt::Result {
        out.write_str("<end>")
    }
    emit(&mut page).unwrap();
    assert!(page.ends_with(b"</li><end>"));
}

#[test]
fn a_failed_resize_leaves_the_buffer_untouched() {
    let heap = Heap::new();
    heap.set_limit(1 << 20).unwrap();
    let mut buf = heap.alloc_bytes(0).unwrap();
    buf.extend_from_slice(b"keep me").unwrap();
    let err = buf.resize(8 << 20).unwrap_err();
    assert!(matches!(err, MemError::Limit { limit: 1048576, .. }));
    let err = buf.extend_from_slice(&vec![0u8; 8 << 20]).unwrap_err();
    assert!(matches!(err, MemError::Limit { .. }));
    assert_eq!(&buf[..], b"keep me");
    heap.check().unwrap();
}

#[test]
fn appends_fill_the_heap_up_to_the_limit_when_doubling_would_pass_it() {
    let heap = Heap::new();
    heap.set_limit(4 << 20).unwrap();
    let mut buf = heap.alloc_bytes(0).unwrap();
    let chunk = [b'x'; 64 * 1024];
    // Doubling from 2 MiB would ask for 4 MiB plus a segment: over the
    // limit. Growing by what is needed goes on until the limit itself.
    let err = loop {
        if let Err(e) = buf.extend_from_slice(&chunk) {
            break e;
        }
    };
    assert!(matches!(err, MemError::Limit { limit, .. } if limit == 4 << 20));
    assert!(buf.len() > 3 << 20, "stopped at {} bytes", buf.len());
    assert!(buf.iter().all(|&b| b == b'x'));
    heap.check().unwrap();
}

#[test]
fn reset_returns_usage_to_zero_and_segments_to_the_storage() {
    static STORE: Counting = Counting::new(&storage::Malloc);
    let mut heap = heap_on(&STORE);
    for _ in 0..1000 {
        HeapBox::leak(heap.alloc([0u8; 500]).unwrap());
    }
    Bytes::leak(heap.alloc_bytes(2 << 20).unwrap());
    let mut v: Vec<u64, &Heap> = Vec::new_in(&heap);
    v.extend(0..100_000);
    std::mem::forget(v);
    let (segments, bytes) = STORE.out();
    assert!(segments >= 4, "{segments} segments");
    assert_eq!((heap.segment_count(), heap.real_usage()), (segments, bytes));

    heap.reset();
    // One regular segment stays for the next request, and spares up to
    // their 2 MiB budget; the rest went back.
    let (kept, kept_bytes) = STORE.out();
    assert!(
        kept > 1 && kept < segments,
        "{kept} of {segments} segments kept"
    );
    assert!(kept_bytes <= SEG + (2 << 20), "{kept_bytes} bytes kept");
    assert_eq!((heap.usage(), heap.peak()), (0, 0));
    assert_eq!((heap.segment_count(), heap.real_usage()), (1, SEG));
    assert_eq!(heap.real_peak(), SEG);
    heap.check().unwrap();

    // The kept segment serves the next request without the storage, and
    // a spare serves the one after it.
    let s = heap.alloc_str("next request").unwrap();
    assert_eq!(STORE.out(), (kept, kept_bytes));
    let halves = [
        heap.alloc_bytes(SEG / 2).unwrap(),
        heap.alloc_bytes(SEG / 2).unwrap(),
    ];
    assert_eq!(STORE.out(), (kept, kept_bytes));
    assert_eq!(heap.segment_count(), 2);
    drop(halves);
    drop(s);
    drop(heap);
    assert_eq!(STORE.out(), (0, 0), "a dropped heap gives everything back");
}

#[test]
fn a_thousand_requests_run_in_one_segment() {
    static STORE: Counting = Counting::new(&storage::Malloc);
    let mut heap = heap_on(&STORE);
    heap.set_limit(4 << 20).unwrap();
    for request in 0..1000usize {
        let name = heap.alloc_str(&format!("request {request}")).unwrap();
        let mut rows: Vec<usize, &Heap> = Vec::new_in(&heap);
        rows.extend(0..request);
        assert_eq!(
            rows.iter().sum::<usize>(),
            request * request.saturating_sub(1) / 2
        );
        assert!(name.ends_with(&request.to_string()));
        drop((name, rows));
        heap.reset();
        assert_eq!((heap.usage(), STORE.out()), (0, (1, SEG)));
    }
    assert_eq!(heap.limit(), 4 << 20, "the limit survives resets");
}

#[test]
fn heap_box_drops_its_value_once_and_leak_and_into_inner_do_not() {
    struct Noisy<'a>(&'a Cell<u32>);
    impl Drop for Noisy<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Cell::new(0);
    let heap = Heap::new();
    drop(heap.alloc(Noisy(&drops)).unwrap());
    assert_eq!(drops.get(), 1);
    let leaked = HeapBox::leak(heap.alloc(Noisy(&drops)).unwrap());
    assert_eq!(drops.get(), 1);
    let inner = HeapBox::into_inner(heap.alloc(Noisy(&drops)).unwrap());
    assert_eq!(drops.get(), 1);
    drop(inner);
    assert_eq!(drops.get(), 2);
    assert_eq!(heap.usage(), true_size(8), "only the leaked block is left");
    let _ = leaked;
}

#[test]
fn over_aligned_values_are_aligned_and_freed() {
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    #[repr(align(64))]
    #[derive(Clone, Copy, PartialEq, Debug)]
    struct Line(u64);
    let heap = Heap::new();
    let pages: std::vec::Vec<_> = (0..5)
        .map(|_| heap.alloc(Page([7; 4096])).unwrap())
        .collect();
    for p in &pages {
        assert_eq!(&**p as *const Page as usize % 4096, 0);
        assert!(p.0.iter().all(|&b| b == 7));
    }
    let mut lines: Vec<Line, &Heap> = Vec::new_in(&heap);
    for i in 0..1000 {
        lines.push(Line(i));
        assert_eq!(lines.as_ptr() as usize % 64, 0);
    }
    assert!(lines.iter().enumerate().all(|(i, l)| l.0 == i as u64));
    heap.check().unwrap();
    drop((pages, lines));
    assert_eq!(heap.usage(), 0);
    heap.check().unwrap();
}

#[test]
fn allocator_api2_collections_live_in_the_heap_and_report_the_limit() {
    let heap = Heap::new();
    heap.set_limit(1 << 20).unwrap();
    let b = HeapBoxApi2::new_in(41u32, &heap);
    assert_eq!(*b + 1, 42);
    let mut v: Vec<u8, &Heap> = Vec::new_in(&heap);
    v.extend_from_slice(b"abc");
    let before = heap.usage();
    assert!(before >= true_size(4) + true_size(3));
    assert!(v.try_reserve(2 << 20).is_err(), "past the limit");
    assert_eq!(&v[..], b"abc");
    v.try_reserve(100_000).unwrap();
    assert!(heap.usage() >= before + 100_000);
    v.shrink_to_fit();
    assert_eq!(&v[..], b"abc");
    drop((b, v));
    assert_eq!(heap.usage(), 0);
}

#[test]
fn zero_sized_values_and_empty_slices_get_real_blocks() {
    let heap = Heap::new();
    let unit = heap.alloc(()).unwrap();
    let empty = heap.alloc_slice_copy::<u32>(&[]).unwrap();
    let bytes = heap.alloc_bytes(0).unwrap();
    assert!(empty.is_empty() && bytes.is_empty());
    assert_eq!(heap.usage(), 3 * true_size(0));
    drop((unit, empty, bytes));
    assert_eq!(heap.usage(), 0);
}

#[test]
fn a_heap_moves_to_another_thread_with_its_contents_forgotten_safely() {
    let mut heap = Heap::new();
    Bytes::leak(heap.alloc_bytes(1 << 20).unwrap());
    let heap2 = std::thread::spawn(move || {
        heap.reset();
        let s = heap.alloc_str("on another thread").unwrap();
        assert_eq!(&*s, "on another thread");
        drop(s);
        heap
    })
    .join()
    .unwrap();
    assert_eq!((heap2.usage(), heap2.segment_count()), (0, 1));
    heap2.check().unwrap();
}

#[test]
fn debug_shows_the_figures() {
    let heap = Heap::new();
    let _s = heap.alloc(1u8).unwrap();
    let text = format!("{heap:?}");
    assert_eq!(
        text,
        format!(
            "Heap {{ usage: 32, peak: 32, real_usage: {SEG}, limit: {}, segments: 1 }}",
            heap.limit()
        )
    );
}

#[test]
fn a_block_bigger_than_a_segment_freed_and_taken_again_reuses_its_segment() {
    static STORE: Counting = Counting::new(&storage::MmapAnon);
    let heap = heap_on(&STORE);
    let first = heap.alloc_bytes(300 << 10).unwrap();
    let (segments, bytes) = STORE.out();
    drop(first);
    // The emptied dedicated segment is a spare: out of every usage figure,
    // still held from the storage.
    assert_eq!(heap.segment_count(), segments - 1);
    assert_eq!(heap.real_usage(), bytes - (512 << 10));
    assert_eq!(STORE.out(), (segments, bytes));
    for _ in 0..100 {
        let b = heap.alloc_bytes(300 << 10).unwrap();
        assert_eq!(
            STORE.out(),
            (segments, bytes),
            "taken from the storage again"
        );
        assert_eq!(heap.real_usage(), bytes);
        drop(b);
    }
    heap.check().unwrap();
    drop(heap);
    assert_eq!(STORE.out(), (0, 0));
}
