//! Seeded random programs over the operation grammar of `walk` (alloc,
//! calloc, realloc, free, limit changes above and below usage, storage
//! failures, peak resets, gc, request and full shutdowns, heap checks),
//! each operation checked against the model as it runs. The model checks
//! (usage equal to the model's sum, peaks, limit) run after every
//! operation; the full heap validator every `check_every` operations and
//! whenever the program says `Check`. The fuzz target in `fuzz/` drives the
//! same grammar from the fuzzer's bytes.

mod walk;

use walk::{Op, Rng, Tally, Walk};

fn run(seed: u64, ops: usize, check_every: usize) -> Tally {
    let mut rng = Rng(seed);
    let mut w = Walk::new(&mut rng);
    for i in 1..=ops {
        let op = Op::choose(&mut rng, w.segment_size(), w.live_count());
        w.apply(op);
        w.check(i % check_every == 0);
    }
    w.finish()
}

/// Runs the seeds and insists the walk met every kind of event: a test
/// whose programs never reach the limit could not fail there.
fn run_seeds(seeds: std::ops::Range<u64>, ops: usize, check_every: usize) {
    let mut t = Tally::default();
    for s in seeds {
        t += run(0x5EED_0000 + s, ops, check_every);
    }
    assert!(t.limit_errors > 0, "never reached the limit: {t:?}");
    assert!(t.storage_errors > 0, "never saw the storage fail: {t:?}");
    assert!(t.limits_refused > 0, "never set a limit below usage: {t:?}");
    assert!(t.limits_set > 0, "never set a limit: {t:?}");
    assert!(t.shutdowns > 0, "never ended a request: {t:?}");
    assert!(t.checks >= t.ops / check_every, "validator skipped: {t:?}");
}

// 16 seeds x 65,536 operations with the validator after every one, and 16
// more x 262,144 with the validator every 64 operations (and at each
// `Check`): 5,242,880 operations, in four tests so both cores work.

#[test]
fn walk_seeds_0_to_7_validated_every_op() {
    run_seeds(0..8, 65_536, 1);
}

#[test]
fn walk_seeds_8_to_15_validated_every_op() {
    run_seeds(8..16, 65_536, 1);
}

#[test]
fn walk_seeds_16_to_23_validated_every_64() {
    run_seeds(16..24, 262_144, 64);
}

#[test]
fn walk_seeds_24_to_31_validated_every_64() {
    run_seeds(24..32, 262_144, 64);
}

/// The grammar reaches every operation with the seeded PRNG.
#[test]
fn grammar_draws_every_operation() {
    let mut rng = Rng(1);
    let mut seen = [false; 12];
    for i in 0..100_000 {
        let op = Op::choose(&mut rng, 65536, i % 400);
        let k = match op {
            Op::Alloc { .. } => 0,
            Op::Calloc { .. } => 1,
            Op::Realloc { .. } => 2,
            Op::Free { .. } => 3,
            Op::SetLimit { .. } => 4,
            Op::Unlimit => 5,
            Op::StorageFails(_) => 6,
            Op::ResetPeak => 7,
            Op::Gc => 8,
            Op::Shutdown => 9,
            Op::Restart => 10,
            Op::Check => 11,
        };
        seen[k] = true;
    }
    assert_eq!(seen, [true; 12]);
}
