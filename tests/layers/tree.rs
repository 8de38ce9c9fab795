//! The module tree and the check: declaration order, upward imports, cycles.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::lex::*;

pub(crate) struct Module {
    /// The path from the crate root (empty for the root).
    pub(crate) path: Vec<String>,
    pub(crate) file: String,
    pub(crate) parsed: Parsed,
}

pub(crate) struct Tree {
    /// Declaration pre-order, the root first.
    pub(crate) modules: Vec<Module>,
    pub(crate) index: HashMap<Vec<String>, usize>,
    /// Per module: the names its top-level `use` declarations bind, with their paths.
    pub(crate) names: Vec<HashMap<String, Vec<String>>>,
}

/// `a/b/../c` as `a/c`.
pub(crate) fn normalize(path: &str) -> String {
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
pub(crate) fn add_module(
    files: &HashMap<&str, &str>,
    path: Vec<String>,
    file: &str,
    out: &mut Vec<Module>,
) {
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
    pub(crate) fn new(files: &[(impl AsRef<str>, impl AsRef<str>)], lib: &str) -> Tree {
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

    pub(crate) fn name(&self, m: usize) -> String {
        if m == 0 {
            "crate".to_owned()
        } else {
            self.modules[m].path.join("::")
        }
    }

    /// The path a reference in module `m` names, from the crate root; `None` for other crates.
    pub(crate) fn absolute(&self, m: usize, r: &Ref) -> Option<Vec<String>> {
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
    pub(crate) fn longest(&self, segs: &[String]) -> (usize, usize) {
        let found = (0..=segs.len())
            .rev()
            .find_map(|k| Some((*self.index.get(&segs[..k])?, k)));
        found.unwrap_or((0, 0))
    }

    /// The module an absolute path leads to. An item the root imports (`crate::Registry`)
    /// resolves through that `use`, and once more through a `use` of the module it names.
    pub(crate) fn resolve(&self, segs: &[String]) -> usize {
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
pub(crate) struct Report {
    /// Modules in declaration pre-order, with their files.
    pub(crate) order: Vec<String>,
    /// Every `from -> to` between modules, the root as `crate`.
    pub(crate) edges: Vec<String>,
    pub(crate) violations: Vec<String>,
}

pub(crate) fn check(files: &[(impl AsRef<str>, impl AsRef<str>)], lib: &str) -> Report {
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
pub(crate) fn reach(succ: &[BTreeSet<usize>], from: usize) -> HashMap<usize, usize> {
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
