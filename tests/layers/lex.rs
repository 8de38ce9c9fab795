//! Lexing and parsing: module declarations and the paths a file names.

/// Tokens with their lines, without comments and whitespace: identifiers, `::`, single
/// punctuation, and literals (strings keep their quotes, so none looks like an identifier).
pub(crate) fn lex(src: &str) -> Vec<(String, usize)> {
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
pub(crate) fn comment_end(c: &[char], mut i: usize) -> usize {
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
pub(crate) fn string_end(c: &[char], i: usize, hashes: usize, escapes: bool) -> usize {
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
pub(crate) fn char_end(c: &[char], i: usize) -> usize {
    let from = if c.get(i + 1) == Some(&'\\') {
        i + 3
    } else {
        i + 2
    };
    (from..c.len())
        .find(|&k| c[k] == '\'')
        .map_or(c.len(), |k| k + 1)
}

pub(crate) fn is_ident(s: &str) -> bool {
    s.starts_with(|ch: char| ch.is_alphabetic() || ch == '_')
        && s.chars()
            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '#')
}

/// The index of the delimiter closing the group opened at `toks[i]`.
pub(crate) fn close(toks: &[(String, usize)], i: usize) -> usize {
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
pub(crate) const QUOTING: [&str; 3] = ["quote", "quote_spanned", "parse_quote"];

/// A path the file names: a `use` leaf or a path in code.
pub(crate) struct Ref {
    pub(crate) segs: Vec<String>,
    /// The inline modules (`mod tests { .. }`) it is in.
    pub(crate) inline: Vec<String>,
    pub(crate) line: usize,
    /// Part of a `pub use` (any `pub(..)`): a re-export, not a dependency.
    pub(crate) reexport: bool,
    /// For a `use` at the file's top level: the name it binds.
    pub(crate) binds: Option<String>,
}

pub(crate) struct Parsed {
    /// `mod name;`: its name, the inline modules it is in, its `#[path]`.
    pub(crate) mods: Vec<(String, Vec<String>, Option<String>)>,
    pub(crate) refs: Vec<Ref>,
}

pub(crate) fn parse(src: &str) -> Parsed {
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

pub(crate) type Leaf = (Vec<String>, Option<String>, usize);

/// Flattens a use tree into its leaves: path, bound name, line. Leaves `*i` after the tree.
pub(crate) fn use_tree(
    toks: &[(String, usize)],
    i: &mut usize,
    mut segs: Vec<String>,
    out: &mut Vec<Leaf>,
) {
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
