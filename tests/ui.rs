//! What `#[rate_limited]` accepts and how it reports misuse.
//!
//! - `tests/ui/pass/*.rs`: every accepted form compiles warning-free (`#![deny(warnings)]`)
//!   and runs one call against a limiter from a fresh test registry.
//! - `tests/ui/fail/*.rs`: one misuse per file; the compiler's output is pinned in the `.stderr`
//!   next to it, so a change to a message or a span shows up in review.
//!
//! The `.stderr` snapshots are pinned to the workspace toolchain (rustc 1.95); another version
//! may word rustc's own notes differently. After an intended change, regenerate them with
//! `TRYBUILD=overwrite cargo test --test ui` and read every changed file.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
