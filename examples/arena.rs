//! A request loop on a zendmm `Heap`: each request builds strings, a page
//! and a table in the heap, prints what the heap holds, and ends with
//! `reset()`, which forgets all of it at once.
//!
//! Run it with `cargo run --release --example arena`.

use zendmm::allocator_api2::vec::Vec;
use zendmm::{Bytes, Heap, MemError, Persistent};

#[global_allocator]
static GLOBAL: Persistent = Persistent;

/// One request: a title, a table of rows and an HTML page built from them.
/// Returns the page's length.
fn serve(heap: &Heap, uri: &str, rows: usize) -> Result<usize, MemError> {
    let title = heap.alloc_str(uri)?;
    let mut table: Vec<(u32, Bytes<'_>), &Heap> = Vec::new_in(heap);
    for id in 0..rows as u32 {
        let mut name = heap.alloc_bytes(0)?;
        write!(name, "item-{id:05}")?;
        table.push((id, name));
    }
    let mut page = heap.alloc_bytes(0)?;
    page.extend_from_slice(b"<h1>")?;
    page.extend_from_slice(title.as_bytes())?;
    page.extend_from_slice(b"</h1><ul>")?;
    for (id, name) in table.iter() {
        page.extend_from_slice(b"<li>")?;
        page.extend_from_slice(name)?;
        write!(page, " #{id}</li>")?;
    }
    page.extend_from_slice(b"</ul>")?;
    println!(
        "{uri:<12} {rows:>6} rows, page {:>8} bytes | usage {:>8}  real {:>8}  peak {:>8}  segments {}",
        page.len(),
        heap.usage(),
        heap.real_usage(),
        heap.peak(),
        heap.segment_count()
    );
    // Nothing is freed one by one: the reset after the request takes it all.
    let len = page.len();
    Bytes::leak(page);
    Ok(len)
}

fn main() {
    let mut heap = Heap::new();
    heap.set_limit(8 << 20)
        .expect("an empty heap takes any limit");
    let requests = [
        ("/", 10),
        ("/products", 1_000),
        ("/catalogue", 20_000),
        ("/", 10),
        ("/everything", 500_000),
        ("/", 10),
    ];
    for (uri, rows) in requests {
        if let Err(e) = serve(&heap, uri, rows) {
            println!("{uri:<12} {rows:>6} rows: {e}");
        }
        heap.reset();
        println!(
            "{:<12} after reset: usage {}  real {}  peak {}  segments {}",
            "",
            heap.usage(),
            heap.real_usage(),
            heap.peak(),
            heap.segment_count()
        );
    }
    let p = GLOBAL.stats();
    println!(
        "persistent memory (the global allocator): {} bytes in {} live allocations, {} made in all",
        p.live_bytes, p.live_allocations, p.total_allocations
    );
}
