//! `zendmm::Persistent` as the program's `#[global_allocator]`: every
//! allocation of this process goes through it, and its counters follow them
//! exactly. `harness = false` (Cargo.toml): one thread, so that nothing else
//! allocates between two readings.

use std::alloc::{GlobalAlloc, Layout};
use zendmm::{Persistent, PersistentStats};

#[global_allocator]
static GLOBAL: Persistent = Persistent;

fn stats() -> PersistentStats {
    GLOBAL.stats()
}

fn the_global_allocator_is_in_use() {
    let s = stats();
    assert!(
        s.total_allocations > 0,
        "the runtime allocated through it: {s:?}"
    );
    assert!(s.live_allocations > 0);
}

fn a_vec_counts_its_bytes_while_alive() {
    let before = stats();
    let v: Vec<u8> = Vec::with_capacity(100_000);
    let during = stats();
    assert_eq!(during.live_bytes, before.live_bytes + 100_000);
    assert_eq!(during.live_allocations, before.live_allocations + 1);
    assert_eq!(during.total_allocations, before.total_allocations + 1);
    drop(v);
    let after = stats();
    assert_eq!(after.live_bytes, before.live_bytes);
    assert_eq!(after.live_allocations, before.live_allocations);
    assert_eq!(after.total_allocations, before.total_allocations + 1);
}

fn realloc_keeps_contents_and_moves_the_byte_count() {
    let mut v: Vec<u32> = Vec::with_capacity(10);
    v.extend(0..10);
    let before = stats();
    v.reserve_exact(1_000_000 - 10);
    let after = stats();
    assert_eq!(v.capacity(), 1_000_000);
    assert_eq!(after.live_bytes, before.live_bytes + 4 * (1_000_000 - 10));
    assert_eq!(after.live_allocations, before.live_allocations);
    assert_eq!(
        after.total_allocations, before.total_allocations,
        "a realloc is no new allocation"
    );
    assert!(v.iter().copied().eq(0..10));
}

fn zeroed_memory_is_zero() {
    let before = stats();
    let v = vec![0u64; 50_000];
    assert!(v.iter().all(|&x| x == 0));
    assert_eq!(stats().live_bytes, before.live_bytes + 400_000);
}

fn over_aligned_blocks_are_aligned_zeroed_and_moved() {
    for align in [32usize, 64, 4096, 1 << 16] {
        let layout = Layout::from_size_align(1000, align).unwrap();
        let before = stats();
        // SAFETY: a non-zero size; the block is freed with its layout.
        unsafe {
            let p = GLOBAL.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            assert!(std::slice::from_raw_parts(p, 1000).iter().all(|&b| b == 0));
            p.write_bytes(0xA5, 1000);
            let q = GLOBAL.realloc(p, layout, 5000);
            assert!(!q.is_null());
            assert_eq!(q as usize % align, 0, "realloc keeps the alignment");
            assert!(std::slice::from_raw_parts(q, 1000)
                .iter()
                .all(|&b| b == 0xA5));
            assert_eq!(stats().live_bytes, before.live_bytes + 5000);
            assert_eq!(stats().total_allocations, before.total_allocations + 1);
            GLOBAL.dealloc(q, Layout::from_size_align(5000, align).unwrap());
        }
        assert_eq!(stats().live_bytes, before.live_bytes);
        assert_eq!(stats().live_allocations, before.live_allocations);
    }
}

fn small_sizes_with_large_alignment_are_aligned() {
    // malloc only promises its alignment for blocks at least that large.
    let layout = Layout::from_size_align(4, 8).unwrap();
    // SAFETY: a non-zero size; freed with its layout.
    unsafe {
        let p = GLOBAL.alloc(layout);
        assert_eq!(p as usize % 8, 0);
        GLOBAL.dealloc(p, layout);
    }
}

fn the_request_heap_works_beside_it() {
    let before = stats();
    let mut heap = zendmm::Heap::new();
    let s = heap.alloc_str("request data").unwrap();
    assert_eq!(&*s, "request data");
    let with_heap = stats();
    // The arena's handle is one persistent allocation; segments come from
    // its storage (libc directly), not from the global allocator.
    assert_eq!(with_heap.live_allocations, before.live_allocations + 1);
    drop(s);
    heap.reset();
    drop(heap);
    assert_eq!(stats().live_bytes, before.live_bytes);
}

fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "the_global_allocator_is_in_use",
            the_global_allocator_is_in_use,
        ),
        (
            "a_vec_counts_its_bytes_while_alive",
            a_vec_counts_its_bytes_while_alive,
        ),
        (
            "realloc_keeps_contents_and_moves_the_byte_count",
            realloc_keeps_contents_and_moves_the_byte_count,
        ),
        ("zeroed_memory_is_zero", zeroed_memory_is_zero),
        (
            "over_aligned_blocks_are_aligned_zeroed_and_moved",
            over_aligned_blocks_are_aligned_zeroed_and_moved,
        ),
        (
            "small_sizes_with_large_alignment_are_aligned",
            small_sizes_with_large_alignment_are_aligned,
        ),
        (
            "the_request_heap_works_beside_it",
            the_request_heap_works_beside_it,
        ),
    ];
    for (name, test) in tests {
        test();
        println!("test {name} ... ok");
    }
    println!("\npersistent_global: {} passed, 0 failed", tests.len());
}
