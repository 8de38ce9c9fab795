//! Layering: `runtime/src/lib.rs` and `macros/src/lib.rs` declare their modules bottom up, and a
//! module may import only from modules declared above it (its ancestors included) or from its
//! own submodules; files must not import each other in a cycle either (`pub use` re-exports are
//! not dependencies and do not count for cycles).
//!
//! The check reads the sources as text: it follows `mod name;` from `lib.rs` into a module tree
//! (declaration pre-order, one node per file), lexes each file without comments and literals,
//! and collects the paths it names: `use` trees, and `crate::`, `super::`, `self::` and
//! child-module paths in code. `crate::Item` resolves through the root's `use` declarations to
//! the module that defines the item.

use std::path::Path;

mod lex;
mod tree;

use tree::*;

#[test]
fn runtime_imports_only_from_layers_below() {
    check_crate("runtime");
}

#[test]
fn macros_imports_only_from_layers_below() {
    check_crate("macros");
}

fn check_crate(name: &str) {
    let mut files = Vec::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(name).join("src");
    read_dir(&src, &format!("{name}/src"), &mut files);
    let report = check(&files, &format!("{name}/src/lib.rs"));
    if report.violations.is_empty() {
        return;
    }
    println!("Module order of {name}/src/lib.rs, bottom layer first:");
    for (i, line) in report.order.iter().enumerate() {
        println!("{:>4}  {line}", i + 1);
    }
    println!("\nViolations:\n{}", report.violations.join("\n"));
    panic!(
        "{} layering violation(s) in {name}: a module may import only from modules declared \
         above it in lib.rs (or from its own submodules), and not in a cycle",
        report.violations.len()
    );
}

fn read_dir(dir: &Path, rel: &str, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let rel = format!("{rel}/{}", path.file_name().unwrap().to_string_lossy());
        if path.is_dir() {
            read_dir(&path, &rel, out);
        } else if rel.ends_with(".rs") {
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

// ---- The checker's own tests, on virtual file systems ----

/// Checks a crate written as `== path` lines, each followed by the file's lines (indentation
/// trimmed); the first file is the root.
fn fixture(text: &str) -> Report {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(str::trim) {
        match (line.strip_prefix("== "), files.last_mut()) {
            (Some(path), _) => files.push((path.to_owned(), String::new())),
            (None, Some((_, src))) => *src += &format!("{line}\n"),
            (None, None) => {}
        }
    }
    check(&files, &files[0].0.clone())
}

#[test]
fn use_trees_with_nested_braces_self_globs_and_renames() {
    let report = fixture(
        "== lib.rs
        mod a;
        mod b;
        pub mod c;
        == a.rs
        == b/mod.rs
        pub mod y;
        == b/y.rs
        == c.rs
        use crate::{a::{self, X}, b::{y::*, Z as W}};
        use std::{fmt, io};",
    );
    assert_eq!(report.edges, ["c -> a", "c -> b", "c -> b::y"]);
    assert!(report.violations.is_empty(), "{report:?}");
}

#[test]
fn strings_chars_raw_strings_comments_and_quotes_are_not_paths() {
    let report = fixture(
        r###"== lib.rs
        mod a;
        mod b;
        == b.rs
        == a.rs
        //! See crate::b::X.
        /// Uses [`crate::b`] and `super::b`.
        /* crate::b /* nested: crate::b */ crate::b */
        const S: &str = "crate::b::X \" crate::b";
        const R: &str = r##"use crate::b; "# crate::b"##;
        const B: &[u8] = br"crate::b";
        fn f<'a>(x: &'a str, r#type: char) -> char { let _ = (x, r#type, '"', b'\''); 'c' }
        fn g() -> TokenStream { quote::quote! { use crate::b::X; self::b::y() } }"###,
    );
    assert!(report.edges.is_empty(), "{report:?}");
}

#[test]
fn root_reexports_resolve_to_the_defining_module() {
    let report = fixture(
        "== lib.rs
        mod a;
        mod b;
        pub use b::{Thing as Renamed, Other};
        == a.rs
        use crate::Renamed;
        fn f() -> crate::Other { panic!() }
        == b/mod.rs
        mod inner;
        pub use inner::Thing;
        pub struct Other;
        == b/inner.rs",
    );
    let edges = ["crate -> b", "a -> b", "a -> b::inner", "b -> b::inner"];
    assert_eq!(report.edges, edges);
    let violations = [
        "a.rs:1: a imports b::inner, declared after it",
        "a.rs:2: a imports b, declared after it",
    ];
    assert_eq!(report.violations, violations);
}

#[test]
fn super_from_a_child_and_inline_modules() {
    let report = fixture(
        r#"== src/lib.rs
        pub(crate) mod a;
        #[cfg(feature = "x")]
        #[doc(hidden)]
        mod b;
        == src/a.rs
        == src/b/mod.rs
        mod x;
        #[path = "why.rs"]
        mod y;
        fn f() { y::g() }
        == src/b/x.rs
        #[cfg(test)]
        mod tests {
            use super::super::y::G;
        }
        == src/b/why.rs
        use super::x::F;
        fn g() { super::super::a::h(); self::F; }"#,
    );
    assert!(report.order[3].starts_with("b::y  ") && report.order[3].ends_with(" src/b/why.rs"));
    let edges = ["b -> b::y", "b::x -> b::y", "b::y -> a", "b::y -> b::x"];
    assert_eq!(report.edges, edges);
    let upward = "src/b/x.rs:3: b::x imports b::y, declared after it";
    assert_eq!(report.violations[0], upward);
    assert!(report.violations[1].starts_with("import cycle: b::x -> b::y -> b::x\n"));
    assert_eq!(report.violations.len(), 2, "{report:?}");
}

#[test]
fn cycles_are_found_and_reexports_are_not_dependencies() {
    let report = fixture(
        "== lib.rs
        mod a;
        mod b;
        mod c;
        == a.rs
        mod x;
        pub use x::F;
        pub(crate) struct Y;
        == a/x.rs
        use super::Y;
        == b.rs
        use crate::a::F;
        pub fn g() {}
        fn k() { crate::c::h() }
        == c.rs
        use crate::b::g;",
    );
    let upward = "b.rs:3: b imports c, declared after it";
    let cycle = "import cycle: b -> c -> b\n    b.rs:3: b -> c\n    c.rs:1: c -> b";
    assert_eq!(report.violations, [upward, cycle]);
}
