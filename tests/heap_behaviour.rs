//! One test per documented behaviour of the heap, through the Rust API.

use zendmm::heap::Heap;
use zendmm::storage::{MmapAnon, Storage};
use zendmm::{Config, MemError};

const SEG: usize = 256 * 1024;

fn heap_on(storage: &'static dyn Storage) -> Heap {
    let mut h = Heap::with_config(Config {
        storage,
        segment_size: SEG,
        compact_size: 2 << 20,
        ..Config::DEFAULT
    });
    h.start();
    h
}

fn heap() -> Heap {
    heap_on(&zendmm::storage::Malloc)
}

fn alloc(h: &mut Heap, n: usize) -> *mut u8 {
    h.alloc(n).expect("alloc").as_ptr()
}

#[test]
fn a_fresh_request_holds_one_segment_and_the_reserve() {
    let h = heap();
    assert_eq!(
        (h.usage(true), h.usage(false), h.segment_count()),
        (SEG, 8208, 1)
    );
    h.validate().unwrap();
}

#[test]
fn usage_counts_true_sizes_and_not_cached_blocks() {
    let mut h = heap();
    let p = alloc(&mut h, 100);
    assert_eq!(
        h.usage(false),
        8208 + 112,
        "100 bytes + 8-byte header, 16-aligned"
    );
    // SAFETY: `p` is live.
    unsafe { h.free(p) };
    assert_eq!(h.usage(false), 8208, "a cached block is not in use");
    assert_eq!(h.stats().cached_bytes, 112);
    assert_eq!(alloc(&mut h, 100), p, "the cache hands the block back");
    assert_eq!(h.stats().cache_hits, 1);
    h.validate().unwrap();
}

#[test]
fn zero_size_gets_a_real_distinct_block() {
    let mut h = heap();
    let a = alloc(&mut h, 0);
    let b = alloc(&mut h, 0);
    assert_ne!(a, b);
    // SAFETY: both live.
    assert_eq!(unsafe { h.block_size(a) }, 24);
}

#[test]
fn realloc_grows_into_the_next_free_block_in_place() {
    let mut h = heap();
    let p = alloc(&mut h, 2000);
    let q = alloc(&mut h, 5000);
    let _guard = alloc(&mut h, 64);
    // SAFETY: all pointers live.
    unsafe {
        h.free(q);
        p.write_bytes(7, 2000);
        let r = h.realloc(p, 6000).unwrap().as_ptr();
        assert_eq!(r, p, "grew over the freed neighbour");
        assert!((0..2000).all(|i| *r.add(i) == 7));
        let s = h.realloc(r, 1000).unwrap().as_ptr();
        assert_eq!(s, p, "shrinks in place");
        assert_eq!(
            h.block_size(s),
            1000,
            "1000 and the 8-byte header fill a 16-aligned block"
        );
    }
    h.validate().unwrap();
}

#[test]
fn a_big_block_gets_a_dedicated_segment_given_back_on_free() {
    let mut h = heap();
    let p = alloc(&mut h, 1 << 20);
    // round_up(1 MiB + 16 + 48, 256 KiB)
    assert_eq!(h.usage(true), SEG + 1310720);
    assert_eq!(h.segment_count(), 2);
    // SAFETY: `p` is live.
    unsafe { h.free(p) };
    assert_eq!(h.usage(true), SEG);
    h.validate().unwrap();
}

#[test]
fn a_dedicated_block_grows_and_shrinks_with_its_segment() {
    for storage in [
        &zendmm::storage::Malloc as &'static dyn Storage,
        &MmapAnon,
        &zendmm::storage::MmapZero,
    ] {
        let mut h = heap_on(storage);
        let p = alloc(&mut h, 600_000);
        // SAFETY: pointers are live; sizes match what was allocated.
        unsafe {
            for i in (0..600_000).step_by(4096) {
                *p.add(i) = (i / 4096) as u8;
            }
            let q = h.realloc(p, 5_000_000).unwrap().as_ptr();
            assert!(
                (0..600_000)
                    .step_by(4096)
                    .all(|i| *q.add(i) == (i / 4096) as u8),
                "{}",
                storage.name()
            );
            assert_eq!(h.usage(true), SEG + 5_242_880, "{}", storage.name());
            assert_eq!(h.stats().free_rest_blocks, 1, "the tail is kept for growth");
            let r = h.realloc(q, 5_100_000).unwrap().as_ptr();
            assert_eq!(r, q, "grew into its own rest block");
            h.free(r);
        }
        assert_eq!(h.usage(true), SEG);
        h.validate().unwrap();
    }
}

#[test]
fn the_limit_applies_to_segments_and_names_the_segment_size() {
    let mut h = heap();
    h.set_limit(1 << 20).unwrap();
    let mut n = 0;
    let err = loop {
        match h.alloc(60_000) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(n >= 12, "about 1 MiB of blocks fit, got {n}");
    assert_eq!(
        err,
        MemError::Limit {
            limit: 1 << 20,
            tried: SEG
        }
    );
    h.validate().unwrap();
    let err = h.alloc(16 << 20).unwrap_err();
    assert_eq!(
        err,
        MemError::Limit {
            limit: 1 << 20,
            tried: 17039360
        }
    );
    assert_eq!(
        err.to_string(),
        "Allowed memory size of 1048576 bytes exhausted (tried to allocate 17039360 bytes)"
    );
}

#[test]
fn a_limit_below_current_usage_is_refused() {
    let mut h = heap();
    let _p = alloc(&mut h, 3 << 20);
    assert!(h.set_limit(1 << 20).is_err());
    assert_eq!(h.limit(), zendmm::accounting::NO_LIMIT);
    assert!(h.set_limit(100).is_err());
    h.set_limit(8 << 20).unwrap();
    assert_eq!(h.limit(), 8 << 20);
}

#[test]
fn the_cache_is_flushed_before_the_limit_fails() {
    // 64 KiB segments: the 256 KiB cache can hold four segments' worth.
    let seg = 64 * 1024;
    let mut h = Heap::with_config(Config {
        storage: &zendmm::storage::Malloc,
        segment_size: seg,
        compact_size: 0,
        ..Config::DEFAULT
    });
    h.start();
    h.set_limit(4 * seg).unwrap();
    let mut ps = Vec::new();
    while let Ok(p) = h.alloc(500) {
        ps.push(p.as_ptr());
    }
    assert_eq!(h.usage(true), 4 * seg);
    for &p in &ps {
        // SAFETY: each is live once.
        unsafe { h.free(p) };
    }
    assert_eq!(h.usage(false), 8208, "everything freed went to the cache");
    // A block of 60,000 bytes needs a fresh segment: only a flush makes room.
    assert!(!alloc(&mut h, 60_000).is_null());
    assert_eq!(h.stats().cached_bytes, 0);
    h.validate().unwrap();
}

#[test]
fn the_cache_has_no_limit_but_is_flushed_before_new_memory_is_mapped() {
    let mut h = heap();
    // 4 MiB of 64-byte requests: far more than PHP 5.3's 256 KiB cache.
    let blocks: Vec<*mut u8> = (0..(4 << 20) / 80).map(|_| alloc(&mut h, 64)).collect();
    let real = h.usage(true);
    for &p in &blocks {
        // SAFETY: each block is live and freed once.
        unsafe { h.free(p) };
    }
    // (A block at a segment's end may have taken the few bytes after it.)
    let cached = h.stats().cached_bytes;
    assert!(
        cached >= blocks.len() * 80 && cached < blocks.len() * 80 + 4096,
        "every free went to the cache: {cached}"
    );
    // A size the cache has no block of: the cached blocks are coalesced
    // (segments they emptied become spares) and reused instead of the heap
    // growing.
    let big: Vec<*mut u8> = (0..(3 << 20) / 2064).map(|_| alloc(&mut h, 2048)).collect();
    assert_eq!(h.stats().cached_bytes, 0, "flushed");
    assert!(
        h.usage(true) <= real,
        "the heap did not grow: {} > {real}",
        h.usage(true)
    );
    for p in big {
        // SAFETY: live, freed once.
        unsafe { h.free(p) };
    }
    h.validate().unwrap();
}

#[test]
fn overflowing_sizes_are_refused_before_any_work() {
    let mut h = heap();
    for n in [
        usize::MAX,
        usize::MAX - 15,
        usize::MAX / 2 + 1,
        usize::MAX - SEG,
        usize::MAX - SEG - 55,
    ] {
        match h.alloc(n) {
            Err(MemError::OverflowAdd { size, overhead }) => {
                assert_eq!((size, overhead), (n, SEG + 56));
                assert!(
                    size.checked_add(overhead).is_none(),
                    "{size} + {overhead} fits"
                );
            }
            Err(MemError::Limit { .. }) | Err(MemError::OutOfMemory { .. }) => {}
            other => panic!("{n}: {other:?}"),
        }
    }
    // The largest size that is tried at all goes as far as the limit check.
    assert!(matches!(
        h.alloc(usize::MAX - SEG - 64),
        Err(MemError::Limit { .. })
    ));
    assert_eq!(h.usage(true), SEG);
    h.validate().unwrap();
}

#[test]
fn request_shutdown_forgets_everything_and_keeps_one_segment() {
    let mut h = heap();
    for i in 0..10_000 {
        alloc(&mut h, i % 3000);
    }
    assert!(h.segment_count() > 10);
    h.shutdown(false, true);
    assert_eq!(
        (h.usage(true), h.usage(false), h.segment_count()),
        (SEG, 8208, 1)
    );
    assert_eq!((h.peak_usage(true), h.peak_usage(false)), (SEG, 8208));
    h.validate().unwrap();
    h.shutdown(true, true);
    assert_eq!((h.usage(true), h.segment_count()), (0, 0));
}

#[test]
fn peaks_reset_to_current_usage() {
    let mut h = heap();
    let p = alloc(&mut h, 100_000);
    // SAFETY: live.
    unsafe { h.free(p) };
    assert!(h.peak_usage(false) > h.usage(false));
    h.reset_peak_usage();
    assert_eq!(h.peak_usage(false), h.usage(false));
    assert_eq!(h.peak_usage(true), h.usage(true));
}

#[test]
fn the_rest_list_serves_requests_near_the_limit() {
    let mut h = heap();
    let _filler = alloc(&mut h, 250_000);
    let big = alloc(&mut h, 300_000);
    // The dedicated segment's tail is on the rest list, unused so far.
    let rest = h.stats().free_rest_bytes;
    assert!(rest > 100_000);
    let real = h.usage(true);
    h.set_limit(real).unwrap();
    // A new segment would pass the limit: the rest list serves instead.
    let p = alloc(&mut h, 150_000);
    assert!(p > big && (p as usize) < big as usize + 600_000);
    assert_eq!(h.usage(true), real);
    h.validate().unwrap();
}

#[test]
fn fresh_small_blocks_are_carved_back_to_back() {
    let mut h = heap();
    let a = alloc(&mut h, 40);
    let b = alloc(&mut h, 40);
    let c = alloc(&mut h, 100);
    // 40 bytes + 8-byte header = 48-byte blocks, taken off the same victim.
    assert_eq!(b as usize - a as usize, 48);
    assert_eq!(c as usize - b as usize, 48);
    h.validate().unwrap();
}

#[test]
fn a_cache_miss_takes_a_listed_exact_fit_before_the_victim() {
    let mut h = heap();
    let a = alloc(&mut h, 40);
    let b = alloc(&mut h, 40);
    let _c = alloc(&mut h, 40);
    // SAFETY: live; `gc` moves it from the cache to the free lists.
    unsafe { h.free(b) };
    h.gc();
    let used = h.usage(false);
    // A miss of the same size, and one 16 bytes smaller (the rest could
    // not be a block, so the hole is taken whole): both prefer the hole.
    assert_eq!(alloc(&mut h, 40), b);
    // SAFETY: live again.
    unsafe { h.free(b) };
    h.gc();
    assert_eq!(alloc(&mut h, 20), b);
    // Nothing listed: the victim's front, right after `c`.
    assert_eq!(alloc(&mut h, 40) as usize - a as usize, 3 * 48);
    assert_eq!(h.usage(false), used + 48 + 48);
    h.validate().unwrap();
}

#[test]
fn a_small_block_growing_to_another_small_size_moves_to_a_cached_block() {
    let mut h = heap();
    let x = alloc(&mut h, 40);
    let _blocker = alloc(&mut h, 40);
    let y = alloc(&mut h, 100);
    // SAFETY: pointers are live until freed; 40 bytes written to `x`.
    unsafe {
        core::ptr::write_bytes(x, 0x5a, 40);
        h.free(y);
        let used = h.usage(false);
        let r = h.realloc(x, 90).unwrap().as_ptr();
        assert_eq!(r, y, "the cached 112-byte block");
        assert!((0..40).all(|i| *r.add(i) == 0x5a));
        assert_eq!(h.usage(false), used + 112 - 48);
        assert_eq!(alloc(&mut h, 40), x, "the old block went to the cache");
        // Shrinking, or no cached block of the new size: the slow path.
        assert_eq!(h.realloc(r, 60).unwrap().as_ptr(), r);
        let s = h.realloc(r, 200).unwrap().as_ptr();
        assert!((0..40).all(|i| *s.add(i) == 0x5a));
    }
    h.validate().unwrap();
}

#[test]
fn a_large_request_uses_the_designated_victim_before_a_new_segment() {
    let mut h = heap();
    let _small = alloc(&mut h, 40); // leaves the segment's rest as the victim
    let big = alloc(&mut h, 200_000);
    assert_eq!(h.usage(true), SEG, "served from the victim, no new segment");
    // SAFETY: live.
    unsafe { h.free(big) };
    h.validate().unwrap();
}

#[test]
fn a_growing_large_block_reallocs_in_place_by_pages() {
    let mut h = heap();
    let mut p = alloc(&mut h, 5000);
    let first = p;
    for n in (5001..40_000).step_by(7) {
        // SAFETY: `p` is live.
        p = unsafe { h.realloc(p, n) }.unwrap().as_ptr();
    }
    assert_eq!(p, first, "grew in place all along");
    // SAFETY: live.
    let usable = unsafe { h.block_size(p) };
    assert!(
        (39_995..39_995 + 4096 + 16).contains(&usable),
        "at most a page of slack: {usable}"
    );
    h.validate().unwrap();
}

#[test]
fn a_large_block_that_moves_to_grow_gets_room_to_grow_in_place() {
    let mut h = heap();
    // A 9 KB hole, the best fit for the grown block, and a 100 KB hole.
    let fit = alloc(&mut h, 9000);
    let _sep1 = alloc(&mut h, 64);
    let roomy = alloc(&mut h, 100_000);
    let _sep2 = alloc(&mut h, 64);
    let a = alloc(&mut h, 8000);
    let _b = alloc(&mut h, 8000);
    // SAFETY: all pointers live; each is freed once.
    unsafe {
        h.free(fit);
        h.free(roomy);
        a.write(7);
        // `a` is followed by the used `_b`: it must move.
        let q = h.realloc(a, 8500).unwrap().as_ptr();
        assert_ne!(q, a);
        assert_eq!(q, roomy, "placed where it has room, not in the 9 KB hole");
        assert_eq!(q.read(), 7);
        // ... so growing on is done in place.
        let r = h.realloc(q, 30_000).unwrap().as_ptr();
        assert_eq!(r, q);
    }
    h.validate().unwrap();
}
