//! The committed include/zendmm.h must be exactly what build.rs generates from
//! the current sources, so C users never see a header that lies about the ABI.

use std::path::Path;

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/zendmm.h"));

#[test]
fn committed_header_matches_generated() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/zendmm.h");
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "include/zendmm.h is stale: run `make header` (cannot read {}: {e})",
            path.display()
        )
    });
    if committed == GENERATED {
        return;
    }
    let first_diff = committed
        .lines()
        .zip(GENERATED.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(GENERATED.lines().count()));
    panic!(
        "include/zendmm.h is stale: run `make header`\n\
         first difference at line {}:\n  committed: {:?}\n  generated: {:?}",
        first_diff + 1,
        committed.lines().nth(first_diff).unwrap_or("<end of file>"),
        GENERATED.lines().nth(first_diff).unwrap_or("<end of file>"),
    );
}
