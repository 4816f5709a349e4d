//! zendmm: the Zend Memory Manager (PHP 5.3's request allocator) in Rust,
//! exported with PHP 8.2's C ABI.
//!
//! A [`Heap`] takes segments from a [`storage::Storage`], carves them into
//! boundary-tagged blocks, serves small sizes from a fastcache and bitmap
//! indexed free lists and larger ones from a best-fit size trie, coalesces
//! on free, gives empty segments back, enforces a memory limit, and forgets
//! everything at request end in time proportional to its segments.
//!
//! Module map, following `zend_alloc.c`'s sections:
//! `block` (boundary tags), `segment`, `storage`, `free_lists`, `cache`
//! (fastcache), `accounting` (usage, peaks, limit), `heap` (alloc, free,
//! realloc), `request` (startup, shutdown), `validate` (heap checker),
//! `walk` (used blocks), `locations` and `leaks` (the debug ABI's leak
//! report), `report` (PHP's messages, fatal errors), `ffi` (the C ABI).

pub mod accounting;
pub mod block;
pub mod cache;
pub mod config;
pub mod ffi;
pub mod free_lists;
mod glue;
pub mod heap;
pub mod hotpatch;
pub mod leaks;
pub mod locations;
pub mod report;
pub mod request;
pub mod segment;
pub mod stats;
pub mod storage;
mod validate;
mod walk;

pub use config::Config;
pub use heap::Heap;
pub use report::MemError;
pub use stats::Stats;
