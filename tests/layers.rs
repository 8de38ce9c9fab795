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

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

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

// ---- Lexing and parsing: module declarations and the paths a file names ----

/// Tokens with their lines, without comments and whitespace: identifiers, `::`, single
/// punctuation, and literals (strings keep their quotes, so none looks like an identifier).
fn lex(src: &str) -> Vec<(String, usize)> {
    let c: Vec<char> = src.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let word = |k: usize| at(k).is_alphanumeric() || at(k) == '_';
    let word_end = |k: usize| (k..).find(|&k| !word(k)).unwrap();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    while i < c.len() {
        let end = match (c[i], at(i + 1)) {
            ('/', '/') => (i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len()),
            ('/', '*') => comment_end(&c, i),
            ('"', _) => string_end(&c, i, 0, true),
            ('\'', next) if next == '\\' || at(i + 2) == '\'' => char_end(&c, i),
            (':', ':') => i + 2,
            _ if word(i) => {
                let j = word_end(i);
                let hashes = (j..).take_while(|&k| at(k) == '#').count();
                match (&c[i..j], at(j)) {
                    (['r'] | ['b' | 'c', 'r'], '"' | '#') if at(j + hashes) == '"' => {
                        string_end(&c, j + hashes, hashes, false)
                    }
                    (['b' | 'c'], '"') => string_end(&c, j, 0, true),
                    (['b'], '\'') => char_end(&c, j),
                    (['r'], '#') => word_end(j + 1), // a raw identifier
                    _ => j,
                }
            }
            // Punctuation, or a lifetime's or label's quote (its name lexes as an identifier).
            _ => i + 1,
        };
        let text: String = c[i..end.min(c.len())].iter().collect();
        let (start, comment) = (line, text.starts_with("//") || text.starts_with("/*"));
        line += text.matches('\n').count();
        if !comment && !text.starts_with(char::is_whitespace) {
            out.push((text, start));
        }
        i = end;
    }
    out
}

/// The index after the (nested) block comment starting at `c[i]`.
fn comment_end(c: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i + 1 < c.len() {
        match (c[i], c[i + 1]) {
            ('/', '*') => (depth, i) = (depth + 1, i + 2),
            ('*', '/') if depth == 1 => return i + 2,
            ('*', '/') => (depth, i) = (depth - 1, i + 2),
            _ => i += 1,
        }
    }
    c.len()
}

/// The index after the string literal whose opening quote is `c[i]`.
fn string_end(c: &[char], i: usize, hashes: usize, escapes: bool) -> usize {
    let mut j = i + 1;
    while j < c.len() {
        if escapes && c[j] == '\\' {
            j += 1;
        } else if c[j] == '"' && c[j + 1..].iter().take(hashes).all(|&h| h == '#') {
            return j + 1 + hashes;
        }
        j += 1;
    }
    c.len()
}

/// The index after the char literal whose opening quote is `c[i]`.
fn char_end(c: &[char], i: usize) -> usize {
    let from = if c.get(i + 1) == Some(&'\\') {
        i + 3
    } else {
        i + 2
    };
    (from..c.len())
        .find(|&k| c[k] == '\'')
        .map_or(c.len(), |k| k + 1)
}

fn is_ident(s: &str) -> bool {
    s.starts_with(|ch: char| ch.is_alphabetic() || ch == '_')
        && s.chars()
            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '#')
}

/// The index of the delimiter closing the group opened at `toks[i]`.
fn close(toks: &[(String, usize)], i: usize) -> usize {
    let mut depth = 0;
    for (j, (t, _)) in toks.iter().enumerate().skip(i) {
        match t.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" if depth == 1 => return j,
            ")" | "]" | "}" => depth -= 1,
            _ => {}
        }
    }
    toks.len()
}

/// Macros whose bodies are code generated for the user's crate, not paths of this one.
const QUOTING: [&str; 3] = ["quote", "quote_spanned", "parse_quote"];

/// A path the file names: a `use` leaf or a path in code.
struct Ref {
    segs: Vec<String>,
    /// The inline modules (`mod tests { .. }`) it is in.
    inline: Vec<String>,
    line: usize,
    /// Part of a `pub use` (any `pub(..)`): a re-export, not a dependency.
    reexport: bool,
    /// For a `use` at the file's top level: the name it binds.
    binds: Option<String>,
}

struct Parsed {
    /// `mod name;`: its name, the inline modules it is in, its `#[path]`.
    mods: Vec<(String, Vec<String>, Option<String>)>,
    refs: Vec<Ref>,
}

fn parse(src: &str) -> Parsed {
    let toks = lex(src);
    let t = |k: usize| toks.get(k).map_or("", |(s, _)| s.as_str());
    let (mut mods, mut refs) = (Vec::new(), Vec::new());
    // The inline modules around the token, and the brace depth inside each.
    let (mut inline, mut inline_depth): (Vec<String>, Vec<usize>) = (Vec::new(), Vec::new());
    let mut push = |segs, inline, line, reexport, binds| {
        refs.push(Ref {
            segs,
            inline,
            line,
            reexport,
            binds,
        });
    };
    let (mut depth, mut path_attr, mut i) = (0, None, 0);
    while i < toks.len() {
        match (t(i), t(i + 1), t(i + 2)) {
            ("#", "[", "path") if t(i + 3) == "=" => {
                path_attr = Some(t(i + 4).trim_matches('"').to_owned());
            }
            ("mod", name, ";" | "{") if is_ident(name) => {
                if t(i + 2) == ";" {
                    mods.push((name.to_owned(), inline.clone(), path_attr.take()));
                } else {
                    depth += 1;
                    inline.push(name.to_owned());
                    inline_depth.push(depth);
                }
                i += 3;
                continue;
            }
            ("pub" | "use", next, _) => {
                let reexport = t(i) == "pub";
                // `pub(crate)`, `pub(in crate::a)`: no imports.
                i = 1 + if next == "(" { close(&toks, i + 1) } else { i };
                if reexport && t(i) == "use" {
                    i += 1;
                } else if reexport || next == "<" {
                    continue; // not a `use`, or `use<'a>` in `impl Trait + use<'a>`
                }
                let mut leaves = Vec::new();
                use_tree(&toks, &mut i, Vec::new(), &mut leaves);
                for (segs, bound, line) in leaves {
                    let binds = bound.filter(|_| depth == 0);
                    push(segs, inline.clone(), line, reexport, binds);
                }
                continue;
            }
            (name, "!", _) if QUOTING.contains(&name) => {
                i = close(&toks, i + 2) + 1;
                continue;
            }
            ("{", ..) => depth += 1,
            ("}", ..) => {
                if inline_depth.last() == Some(&depth) {
                    inline.pop();
                    inline_depth.pop();
                }
                depth -= 1;
            }
            _ => {}
        }
        if matches!(t(i), ";" | "{" | "}") {
            path_attr = None;
        }
        // A path in code: `crate::`, `$crate::`, `super::`, `self::`, or `name::` (kept if
        // `name` turns out to be a child module). Its later segments follow a `::`, and
        // start no path of their own.
        let dollar = t(i) == "$" && t(i + 1) == "crate";
        let start = i + usize::from(dollar);
        let before = if i == 0 { "" } else { t(i - 1) };
        if (dollar || !matches!(before, "::" | "." | "$")) && is_ident(t(start)) {
            let mut j = start + 1;
            let mut segs = vec![t(start).to_owned()];
            while t(j) == "::" && is_ident(t(j + 1)) {
                segs.push(t(j + 1).to_owned());
                j += 2;
            }
            if segs.len() > 1 && segs[0].starts_with(|ch: char| ch.is_lowercase() || ch == '_') {
                push(segs, inline.clone(), toks[j - 1].1, false, None);
            }
        }
        i += 1;
    }
    Parsed { mods, refs }
}

type Leaf = (Vec<String>, Option<String>, usize);

/// Flattens a use tree into its leaves: path, bound name, line. Leaves `*i` after the tree.
fn use_tree(toks: &[(String, usize)], i: &mut usize, mut segs: Vec<String>, out: &mut Vec<Leaf>) {
    let t = |k: usize| toks.get(k).map_or("", |(s, _)| s.as_str());
    loop {
        match t(*i) {
            "::" if segs.is_empty() => segs.push("::".into()), // another crate
            "::" | "$" => {}
            "*" => {
                segs.push("*".into());
                out.push((segs, None, toks[*i].1));
                *i += 1;
                return;
            }
            "{" => {
                *i += 1;
                while *i < toks.len() && t(*i) != "}" {
                    let before = *i;
                    use_tree(toks, i, segs.clone(), out);
                    *i += usize::from(t(*i) == ",");
                    if *i == before {
                        break;
                    }
                }
                *i += 1;
                return;
            }
            seg if is_ident(seg) => {
                segs.push(seg.to_owned());
                *i += 1;
                if t(*i) == "::" {
                    continue;
                }
                if segs.len() > 1 && segs.last().is_some_and(|s| s == "self") {
                    segs.pop(); // `a::{self}` is `a`
                }
                let mut bound = segs.last().cloned();
                if t(*i) == "as" {
                    bound = Some(t(*i + 1).to_owned()).filter(|b| b != "_");
                    *i += 2;
                }
                out.push((segs, bound, toks[*i - 1].1));
                return;
            }
            _ => return,
        }
        *i += 1;
    }
}

// ---- The module tree and the check ----

struct Module {
    /// The path from the crate root (empty for the root).
    path: Vec<String>,
    file: String,
    parsed: Parsed,
}

struct Tree {
    /// Declaration pre-order, the root first.
    modules: Vec<Module>,
    index: HashMap<Vec<String>, usize>,
    /// Per module: the names its top-level `use` declarations bind, with their paths.
    names: Vec<HashMap<String, Vec<String>>>,
}

/// `a/b/../c` as `a/c`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "." | "" => {}
            ".." => drop(parts.pop()),
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// Adds the module at `path` in `file` and, after it, its submodules (pre-order).
fn add_module(files: &HashMap<&str, &str>, path: Vec<String>, file: &str, out: &mut Vec<Module>) {
    let parsed = parse(files.get(file).unwrap_or_else(|| panic!("no file {file}")));
    let (dir, stem) = file.rsplit_once('/').unwrap_or(("", file));
    // Submodules of `a/b.rs` are in `a/b/`; of `lib.rs` and `a/mod.rs`, beside them.
    let stem = stem.trim_end_matches(".rs");
    let own = if out.is_empty() || stem == "mod" {
        dir.to_owned()
    } else {
        format!("{dir}/{stem}")
    };
    let decls = parsed.mods.clone();
    out.push(Module {
        path: path.clone(),
        file: file.to_owned(),
        parsed,
    });
    for (name, inline, path_attr) in decls {
        let sub = [vec![own.clone()], inline.clone()].concat().join("/");
        let candidates = match path_attr {
            Some(attr) if inline.is_empty() => vec![format!("{dir}/{attr}")],
            Some(attr) => vec![format!("{sub}/{attr}")],
            None => vec![format!("{sub}/{name}.rs"), format!("{sub}/{name}/mod.rs")],
        };
        let child = candidates
            .iter()
            .map(|c| normalize(c))
            .find(|c| files.contains_key(&**c));
        let child = child.unwrap_or_else(|| panic!("{file}: no file for `mod {name}`"));
        let path = [path.clone(), inline, vec![name]].concat();
        add_module(files, path, &child, out);
    }
}

impl Tree {
    fn new(files: &[(impl AsRef<str>, impl AsRef<str>)], lib: &str) -> Tree {
        let files: HashMap<&str, &str> = files
            .iter()
            .map(|(p, s)| (p.as_ref(), s.as_ref()))
            .collect();
        let mut modules = Vec::new();
        add_module(&files, Vec::new(), &normalize(lib), &mut modules);
        let index = modules.iter().enumerate().map(|(i, m)| (m.path.clone(), i));
        let mut tree = Tree {
            index: index.collect(),
            modules,
            names: Vec::new(),
        };
        for m in 0..tree.modules.len() {
            let refs = tree.modules[m].parsed.refs.iter();
            let binds = refs.filter_map(|r| Some((r.binds.clone()?, tree.absolute(m, r)?)));
            let binds = binds.collect();
            tree.names.push(binds);
        }
        tree
    }

    fn name(&self, m: usize) -> String {
        if m == 0 {
            "crate".to_owned()
        } else {
            self.modules[m].path.join("::")
        }
    }

    /// The path a reference in module `m` names, from the crate root; `None` for other crates.
    fn absolute(&self, m: usize, r: &Ref) -> Option<Vec<String>> {
        let (file_module, segs) = (&self.modules[m].path, &r.segs);
        let scope = [file_module.clone(), r.inline.clone()].concat();
        let (base, rest) = match segs[0].as_str() {
            "crate" => (Vec::new(), &segs[1..]),
            "self" => (scope, &segs[1..]),
            "super" => {
                let ups = segs.iter().take_while(|s| *s == "super").count();
                let base = scope[..scope.len().checked_sub(ups)?].to_vec();
                (base, &segs[ups..])
            }
            // A bare first segment names a child module (of the file's module, which an
            // inline `mod tests` sees through `use super::*`), or another crate.
            first => {
                let child = [file_module.clone(), vec![first.to_owned()]].concat();
                self.index.get(&child)?;
                (file_module.clone(), &segs[..])
            }
        };
        Some([base, rest.to_vec()].concat())
    }

    /// The module that is the longest prefix of `segs`, and that prefix's length.
    fn longest(&self, segs: &[String]) -> (usize, usize) {
        let found = (0..=segs.len())
            .rev()
            .find_map(|k| Some((*self.index.get(&segs[..k])?, k)));
        found.unwrap_or((0, 0))
    }

    /// The module an absolute path leads to. An item the root imports (`crate::Registry`)
    /// resolves through that `use`, and once more through a `use` of the module it names.
    fn resolve(&self, segs: &[String]) -> usize {
        let (m, k) = self.longest(segs);
        let target = segs.first().and_then(|first| self.names[0].get(first));
        let Some(target) = target.filter(|_| m == 0 && k < segs.len()) else {
            return m;
        };
        let full = [target.clone(), segs[1..].to_vec()].concat();
        let (t, k) = self.longest(&full);
        match full.get(k).and_then(|item| self.names[t].get(item)) {
            Some(next) if t != 0 => self.longest(&[&next[..], &full[k + 1..]].concat()).0,
            _ => t,
        }
    }
}

#[derive(Debug)]
struct Report {
    /// Modules in declaration pre-order, with their files.
    order: Vec<String>,
    /// Every `from -> to` between modules, the root as `crate`.
    edges: Vec<String>,
    violations: Vec<String>,
}

fn check(files: &[(impl AsRef<str>, impl AsRef<str>)], lib: &str) -> Report {
    let tree = Tree::new(files, lib);
    let n = tree.modules.len();
    let file = |m: usize| &tree.modules[m].file;
    // Every (from, to) with its lines, and with its first line that is not a re-export.
    let mut lines: BTreeMap<(usize, usize), BTreeSet<usize>> = BTreeMap::new();
    let mut deps: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for (m, module) in tree.modules.iter().enumerate() {
        for r in &module.parsed.refs {
            match tree.absolute(m, r).map(|segs| tree.resolve(&segs)) {
                Some(t) if t != m => {
                    lines.entry((m, t)).or_default().insert(r.line);
                    if !r.reexport {
                        deps.entry((m, t)).or_insert(r.line);
                    }
                }
                _ => {}
            }
        }
    }
    let mut upward = Vec::new();
    for (&(m, t), lines) in &lines {
        if t > m && !tree.modules[t].path.starts_with(&tree.modules[m].path) {
            let first = *lines.first().unwrap();
            let more: Vec<String> = lines.iter().skip(1).map(ToString::to_string).collect();
            let more = if more.is_empty() {
                String::new()
            } else {
                format!(" (also lines {})", more.join(", "))
            };
            let (from, to) = (tree.name(m), tree.name(t));
            let text = format!(
                "{}:{first}: {from} imports {to}, declared after it{more}",
                file(m)
            );
            upward.push((m, first, text));
        }
    }
    upward.sort();
    let mut violations: Vec<String> = upward.into_iter().map(|(.., text)| text).collect();
    // Cycles: strongly connected files over the dependencies (re-exports left out).
    let mut succ = vec![BTreeSet::new(); n];
    for &(m, t) in deps.keys() {
        succ[m].insert(t);
    }
    let reached: Vec<HashMap<usize, usize>> = (0..n).map(|m| reach(&succ, m)).collect();
    let mut done = vec![false; n];
    for m in (0..n).filter(|&m| reached[m].contains_key(&m)) {
        if done[m] {
            continue;
        }
        let both_ways = |t: &usize| reached[m].contains_key(t) && reached[*t].contains_key(&m);
        let scc: Vec<usize> = (m..n).filter(both_ways).collect();
        for &t in &scc {
            done[t] = true;
        }
        // A shortest cycle through `m`, walked back from its predecessor on it.
        let mut cycle = vec![m];
        while let Some(&prev) = reached[m].get(cycle.last().unwrap()).filter(|&&p| p != m) {
            cycle.push(prev);
        }
        cycle.push(m);
        let names: Vec<String> = cycle.iter().rev().map(|&c| tree.name(c)).collect();
        let mut text = format!("import cycle: {}", names.join(" -> "));
        if scc.len() + 1 > cycle.len() {
            let all: Vec<String> = scc.iter().map(|&c| tree.name(c)).collect();
            text += &format!(" (part of a larger one through {})", all.join(", "));
        }
        // Every import inside the component: breaking the cycles means removing some.
        for (&(from, to), line) in deps
            .iter()
            .filter(|((f, t), _)| scc.contains(f) && scc.contains(t))
        {
            text += &format!(
                "\n    {}:{line}: {} -> {}",
                file(from),
                tree.name(from),
                tree.name(to)
            );
        }
        violations.push(text);
    }
    let order = (1..n)
        .map(|m| format!("{:<32} {}", tree.name(m), file(m)))
        .collect();
    let edges = lines
        .keys()
        .map(|&(m, t)| format!("{} -> {}", tree.name(m), tree.name(t)));
    let edges = edges.collect();
    Report {
        order,
        edges,
        violations,
    }
}

/// Breadth first from `from`: every module reached, with the one it was first reached from
/// (`from` itself is reached only through a cycle, from its predecessor on a shortest one).
fn reach(succ: &[BTreeSet<usize>], from: usize) -> HashMap<usize, usize> {
    let (mut prev, mut queue) = (HashMap::new(), VecDeque::from([from]));
    while let Some(u) = queue.pop_front() {
        for &v in &succ[u] {
            if let Entry::Vacant(slot) = prev.entry(v) {
                slot.insert(u);
                queue.push_back(v);
            }
        }
    }
    prev
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
        fn f() -> crate::Other { todo!() }
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
