//! ABI check: `cargo run -p zendmm-abi-test` (or `make abi-test`).

// The generated all.rs casts function items to integers and uses the C names.
#![allow(
    bad_style,
    dead_code,
    unused_imports,
    unknown_lints,
    function_casts_as_integer
)]
#![allow(clippy::all)]

// Link the library so the C side's references to the exports resolve.
extern crate zendmm;

// decls.rs is laid out for ctest2's parser and for reading: keep rustfmt out.
#[rustfmt::skip]
mod decls;

use decls::*;
use libc::*;

include!(concat!(env!("OUT_DIR"), "/all.rs"));
