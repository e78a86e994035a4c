//! The map in ARCHITECTURE.md, kept true: the modules of `host/` and of
//! `functions/` import each other without cycles, at every level of the
//! tree (siblings inside a folder form no cycle), and a few edges are
//! forbidden outright (the adapters `cli` and `handler` never import each
//! other; `kafka` knows nothing of the configuration files).
//!
//! Imports are read from the source text: every `crate::…` and `super::…`
//! path outside comments and test modules, `use` trees with braces
//! included. That is what a reader of the code follows too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module, as its path from the crate root (`["export", "delta", "log"]`).
type Module = Vec<String>;

/// Every module of the crate whose `src` folder is `src`, with the text
/// of its file, test modules and comments left out.
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap();
            let mut module: Module = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|last| last == "mod") {
                module.pop();
            }
            if module
                .first()
                .is_some_and(|first| first == "lib" || first == "main")
            {
                module.clear();
            }
            // Tests of a module (`tests.rs`, `tests/…`) are not part of it.
            if module.iter().any(|part| part == "tests") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            found.insert(module, without_tests_and_comments(&text));
        }
    }
    found
}

/// `text` without `#[cfg(test)]` items and comment lines.
fn without_tests_and_comments(text: &str) -> String {
    let mut kept = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            // Skip the item: to the end of its braces, or its `;`.
            let mut depth = 0i32;
            let mut opened = false;
            for line in lines.by_ref() {
                depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
                opened |= line.contains('{');
                if (opened && depth <= 0) || (!opened && line.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// The module paths `text` (the file of `module`) refers to.
fn references(module: &Module, text: &str) -> Vec<Module> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let (start, base) = match (rest.find("crate::"), rest.find("super::")) {
            (Some(c), Some(s)) if c < s => (c, Base::Crate),
            (Some(c), None) => (c, Base::Crate),
            (_, Some(s)) => (s, Base::Super),
            (None, None) => break,
        };
        let begin = at + start;
        // Part of a longer identifier (`my_crate::`)? Not a path start.
        let preceded = begin > 0 && {
            let b = bytes[begin - 1];
            b.is_ascii_alphanumeric() || b == b'_' || b == b':'
        };
        at = begin + 7;
        if preceded {
            continue;
        }
        let root: Module = match base {
            Base::Crate => Vec::new(),
            // `super` of `a/b.rs` and of `a/b/mod.rs` alike is `a`; inside
            // an inline `mod m { … }` of that file, it is the file's module.
            Base::Super => {
                let mut here = module.clone();
                here.extend(enclosing_inline_modules(text, begin));
                here.pop();
                here
            }
        };
        let mut paths = Vec::new();
        let (_, end) = parse_tree(text, at, root, &mut paths);
        at = end.max(at);
        found.extend(paths);
    }
    found
}

/// The names of the inline modules (`mod m { … }`) around position `at`
/// of `text`, outermost first.
fn enclosing_inline_modules(text: &str, at: usize) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut open: Vec<(Option<String>, i32)> = Vec::new(); // (module, depth at its brace)
    let mut depth = 0i32;
    let mut pending: Option<String> = None;
    let mut i = 0;
    while i < at.min(text.len()) {
        let rest = &text[i..];
        if (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'_')
            && rest.starts_with("mod ")
        {
            let name: String = rest[4..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            pending = Some(name);
            i += 4;
            continue;
        }
        match bytes[i] {
            b'{' => {
                depth += 1;
                if let Some(name) = pending.take() {
                    open.push((Some(name), depth));
                }
            }
            b'}' => {
                if open.last().is_some_and(|(_, d)| *d == depth) {
                    open.pop();
                }
                depth -= 1;
            }
            b';' => pending = None,
            _ => {}
        }
        i += 1;
    }
    open.into_iter().filter_map(|(name, _)| name).collect()
}

enum Base {
    Crate,
    Super,
}

/// Parses a `use` tree at `at` (`a::b`, `a::{b, c::d}`, `self`), each
/// leaf's full path appended to `out`; returns the position after it.
fn parse_tree(text: &str, at: usize, prefix: Module, out: &mut Vec<Module>) -> ((), usize) {
    let bytes = text.as_bytes();
    let mut at = at;
    let mut path = prefix;
    loop {
        if bytes.get(at) == Some(&b'{') {
            at += 1;
            loop {
                while bytes
                    .get(at)
                    .is_some_and(|b| b.is_ascii_whitespace() || *b == b',')
                {
                    at += 1;
                }
                if bytes.get(at).is_none_or(|b| *b == b'}') {
                    return ((), at + 1);
                }
                let ((), next) = parse_tree(text, at, path.clone(), out);
                if next <= at {
                    return ((), at + 1);
                }
                at = next;
            }
        }
        let start = at;
        while bytes
            .get(at)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            at += 1;
        }
        if at == start {
            out.push(path);
            return ((), at);
        }
        let ident = &text[start..at];
        if ident == "super" {
            path.pop();
        } else if ident != "self" {
            path.push(ident.to_owned());
        }
        if text[at..].starts_with("::") {
            at += 2;
            continue;
        }
        out.push(path);
        return ((), at);
    }
}

/// The edges between sibling modules: `(parent, from child, to child)`.
fn sibling_edges(crate_src: &Path) -> BTreeSet<(Module, String, String)> {
    let modules = modules(crate_src);
    let known: BTreeSet<&Module> = modules.keys().collect();
    let mut edges = BTreeSet::new();
    for (module, text) in &modules {
        for target in references(module, text) {
            // The deepest module the path names (the rest is an item).
            let mut target = target;
            while !target.is_empty() && !known.contains(&target) {
                target.pop();
            }
            // Where the two paths part: siblings under a common parent.
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            let (Some(from), Some(to)) = (module.get(common), target.get(common)) else {
                continue; // a module and its own ancestor or descendant
            };
            edges.insert((module[..common].to_vec(), from.clone(), to.clone()));
        }
    }
    edges
}

/// A cycle among the siblings of one parent, if there is one.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges {
        graph.entry(from).or_default().push(to);
    }
    // Depth-first search with the path kept: a node on the path seen
    // again closes a cycle.
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

fn cycles(crate_src: &Path) -> Vec<String> {
    let mut by_parent: BTreeMap<Module, BTreeSet<(String, String)>> = BTreeMap::new();
    for (parent, from, to) in sibling_edges(crate_src) {
        by_parent.entry(parent).or_default().insert((from, to));
    }
    by_parent
        .iter()
        .filter_map(|(parent, edges)| {
            let cycle = find_cycle(edges)?;
            let at = if parent.is_empty() {
                "the crate root".to_owned()
            } else {
                parent.join("::")
            };
            Some(format!("in {at}: {}", cycle.join(" -> ")))
        })
        .collect()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_host_library_has_no_import_cycles() {
    let found = cycles(&root().join("host/src"));
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_adapters_have_no_import_cycles() {
    let found = cycles(&root().join("functions/src"));
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn forbidden_edges_are_absent() {
    let forbidden = [
        ("functions/src", "cli", "handler"),
        ("functions/src", "handler", "cli"),
        ("host/src", "kafka", "config"),
    ];
    let mut found = Vec::new();
    for (src, from, to) in forbidden {
        let edges = sibling_edges(&root().join(src));
        if edges.contains(&(Vec::new(), from.to_owned(), to.to_owned())) {
            found.push(format!("{src}: {from} imports {to}"));
        }
    }
    assert!(found.is_empty(), "forbidden imports:\n{}", found.join("\n"));
}

#[test]
fn the_reader_of_imports_finds_trees_super_and_leaves_comments_out() {
    let text = "use crate::{kafka::{reader, Start}, config::X};\n\
                // use crate::ignored;\n\
                fn f() { super::sibling::g(); my_crate::not_ours(); }\n\
                mod inner { use super::own_item; }\n\
                #[cfg(test)]\nmod tests {\n    use crate::test_only;\n}\n";
    let text = without_tests_and_comments(text);
    let module: Module = vec!["export".into(), "topic".into()];
    let mut found = references(&module, &text);
    found.sort();
    let expected: Vec<Module> = vec![
        vec!["config".into(), "X".into()],
        vec!["export".into(), "sibling".into(), "g".into()],
        vec!["export".into(), "topic".into(), "own_item".into()],
        vec!["kafka".into(), "Start".into()],
        vec!["kafka".into(), "reader".into()],
    ];
    assert_eq!(found, expected);
    let cycle: BTreeSet<(String, String)> = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(find_cycle(&cycle).map(|c| c.len()), Some(4));
}
