//! The environment table in `src/config.rs` and the one in README.md list
//! the same variables, so neither can drift from the other.

use std::collections::BTreeSet;
use zendmm::config::ENV_VARS;

/// Rows of README's environment table that the library does not read.
const README_ONLY: &[&str] = &["ZENDMM_LIB"];

#[test]
fn readme_and_code_list_the_same_variables() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### Environment variables")
        .nth(1)
        .expect("README has an environment section");
    let table: BTreeSet<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with("| variable"))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('`').nth(1))
        .filter(|name| !README_ONLY.contains(name))
        .collect();
    let code: BTreeSet<&str> = ENV_VARS.iter().map(|v| v.name).collect();
    assert_eq!(table, code, "README table vs config::ENV_VARS");
    for v in ENV_VARS {
        assert!(
            !v.default.is_empty() && !v.accepts.is_empty() && !v.on_error.is_empty(),
            "{}",
            v.name
        );
    }
}
