//! libFuzzer drives the walk of `tests/walk` (the grammar and the model of
//! `tests/op_sequences.rs`) from its input bytes: the first choices pick
//! the segment size and the storage backend, the rest decode into
//! operations until the bytes run out. Every operation is checked against
//! the model and the heap validator runs after each one; any mismatch
//! panics, which libFuzzer reports as a crash.
//!
//! Run with nightly: `cargo +nightly fuzz run ops` (from the repository root).
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

// The seeded PRNG in there serves the tests, not the fuzzer.
#[allow(dead_code)]
#[path = "../../tests/walk/mod.rs"]
mod walk;

/// The fuzzer's bytes as the walk's source of choices.
struct Bytes<'a>(Unstructured<'a>);

impl walk::Choose for Bytes<'_> {
    fn below(&mut self, n: u64) -> u64 {
        // Out of bytes, `int_in_range` gives the low end; the loop below
        // stops there anyway.
        self.0.int_in_range(0..=n - 1).unwrap_or(0)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(Unstructured::new(data));
    let mut w = walk::Walk::new(&mut bytes);
    while !bytes.0.is_empty() {
        let op = walk::Op::choose(&mut bytes, w.segment_size(), w.live_count());
        w.apply(op);
        w.check(true);
    }
    w.finish();
});
