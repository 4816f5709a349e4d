//! zendmm: the Zend Memory Manager (PHP 5.3's request allocator) in Rust,
//! exported with PHP 8.2's C ABI and usable from Rust without any C.
//!
//! A request heap takes segments from a [`storage::Storage`], carves them
//! into boundary-tagged blocks, serves small sizes from a fastcache and
//! bitmap indexed free lists and larger ones from a best-fit size trie,
//! coalesces on free, gives empty segments back, enforces a memory limit,
//! and forgets everything at request end in time proportional to its
//! segments.
//!
//! # From Rust
//!
//! - [`Heap`]: a request arena. Allocations ([`HeapBox`], [`Bytes`],
//!   `allocator_api2` collections over `&Heap`) borrow it, and
//!   [`Heap::reset`] needs `&mut Heap`, so the borrow checker rejects any
//!   use after a reset. Errors, the memory limit included, come back as
//!   [`MemError`].
//! - [`Persistent`]: the `#[global_allocator]` to use next to it, libc with
//!   counters; its documentation says why the request heap cannot be one.
//!
//! ```
//! use zendmm::allocator_api2::vec::Vec;
//! use zendmm::Heap;
//!
//! let mut heap = Heap::new();
//! heap.set_limit(8 << 20).unwrap();
//! for request in 0..3 {
//!     let title = heap.alloc_str("orders")?;
//!     let mut rows: Vec<u32, &Heap> = Vec::new_in(&heap);
//!     rows.extend(0..100 * request);
//!     println!("{title}: {} rows, {} bytes in use", rows.len(), heap.usage());
//!     drop((title, rows));
//!     heap.reset();
//! }
//! # Ok::<(), zendmm::MemError>(())
//! ```
//!
//! # From C
//!
//! The same heap behind PHP's C ABI (`_emalloc`, `zend_mm_*`, ...) is in
//! `libzendmm.so` and `libzendmm.a`, declared in `include/zendmm.h`; see the
//! README. The modules behind it are public for the C layer and the tests
//! but hidden from this documentation: they are not a stable Rust API.
//!
//! Module map, following `zend_alloc.c`'s sections:
//! `block` (boundary tags), `segment`, `storage` (and `reserve`, room kept
//! after a growing mapping), `free_lists`, `cache`
//! (fastcache), `accounting` (usage, peaks, limit), `heap` (alloc, free,
//! realloc), `request` (startup, shutdown), `validate` (heap checker),
//! `walk` (used blocks), `locations` and `leaks` (the debug ABI's leak
//! report), `report` (PHP's messages, fatal errors), `stats`, `cache_stat`
//! and `stat_log` (statistics and their logs), `ffi` (the C ABI); `arena`
//! is the safe [`Heap`], `persistent` the global allocator.

#![warn(missing_docs)]

#[doc(hidden)]
pub mod accounting;
mod arena;
#[doc(hidden)]
pub mod block;
#[doc(hidden)]
pub mod cache;
#[doc(hidden)]
pub mod cache_stat;
#[doc(hidden)]
pub mod config;
#[doc(hidden)]
pub mod debug_mode;
mod elf_symbols;
#[doc(hidden)]
pub mod ffi;
mod flush;
#[doc(hidden)]
pub mod free_lists;
mod glue;
#[doc(hidden)]
pub mod heap;
#[doc(hidden)]
pub mod hotpatch;
mod huge;
mod large_cache;
#[doc(hidden)]
pub mod leaks;
#[doc(hidden)]
pub mod locations;
mod persistent;
mod protect;
mod realloc;
#[doc(hidden)]
pub mod report;
#[doc(hidden)]
pub mod request;
mod reserve;
#[doc(hidden)]
pub mod segment;
#[doc(hidden)]
pub mod spare;
#[doc(hidden)]
pub mod stat_log;
#[doc(hidden)]
pub mod stats;
pub mod storage;
mod tool;
mod validate;
mod walk;

pub use allocator_api2;
pub use arena::{Bytes, Heap, HeapBox};
pub use config::Config;
pub use heap::LimitBelowUsage;
pub use persistent::{Persistent, PersistentStats};
pub use report::MemError;
pub use stats::Stats;
