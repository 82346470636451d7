//! The layers `src/lib.rs` describes, enforced: every `crate::` and `super::` path in `src/` is
//! read, each file's imports are resolved to the files they name, and the test fails on an
//! import that runs up the order of the top-level modules or on any circle among files (a
//! module's `mod.rs` and its own children aside: they share the module's types both ways). Unit
//! test modules are left out (a test may reach across files). It reads the sources as text
//! (comments and string literals removed), so it needs nothing built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module may import (besides itself): the order of `src/lib.rs`'s map.
/// `model` and `platform` at the bottom; `cli` beside `http`, never importing it, `credentials`
/// or `daemon`; `daemon` the composition root, which sees everything.
const MAY_IMPORT: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("platform", &[]),
    ("api", &["model"]),
    ("config", &["model", "api"]),
    ("ec2", &["model", "api", "config"]),
    ("sso", &["model", "platform", "config"]),
    (
        "credentials",
        &["model", "platform", "api", "config", "ec2", "sso"],
    ),
    (
        "http",
        &[
            "model",
            "platform",
            "api",
            "config",
            "ec2",
            "sso",
            "credentials",
        ],
    ),
    ("cli", &["model", "platform", "api", "config", "ec2", "sso"]),
    (
        "daemon",
        &[
            "model",
            "platform",
            "api",
            "config",
            "ec2",
            "sso",
            "credentials",
            "http",
            "cli",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/http/owner.rs` is `["http", "owner"]`, `src/http/mod.rs`
/// `["http"]`, `src/lib.rs` `[]`.
fn module_of(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The file that holds module `path`, if it is a file of its own.
fn file_of(path: &[String]) -> Option<PathBuf> {
    if path.is_empty() {
        return Some(src().join("lib.rs"));
    }
    let base = src().join(path.join("/"));
    [base.with_extension("rs"), base.join("mod.rs")]
        .into_iter()
        .find(|f| f.exists())
}

/// `text` without comments and without the contents of string and char literals, so that a
/// path in a doc comment or a brace in a format string counts for nothing.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'r' if b.get(i + 1).is_some_and(|c| *c == b'"' || *c == b'#')
                && !b[..i]
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
            {
                let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                i += 2 + hashes;
                while i < b.len() && !b[i..].starts_with(&close) {
                    i += 1;
                }
                i += close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            // A char literal ('{', '\''), not a lifetime ('a).
            b'\'' if b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\') => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("' '");
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// The paths a file names through `crate::`, `super::` and `self::`, each as the module path it
/// starts from (inline `mod x { ... }` blocks taken into account for `super`) followed by its
/// segments, with `use` groups (`a::{b, c::D}`) expanded.
fn paths_in(file: &Path) -> Vec<Vec<String>> {
    let module = module_of(file);
    let is_mod_file = matches!(
        file.file_stem().and_then(|s| s.to_str()),
        Some("mod" | "lib")
    );
    let code = code_only(&std::fs::read_to_string(file).unwrap());
    let mut found = Vec::new();
    // Inline modules open at each brace depth, to resolve `super::` inside them; a test module
    // (`#[cfg(test)]`, `#[cfg(all(test, ...))]`) is read past: tests may reach across files.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut test_attribute = false;
    let mut in_tests: Option<usize> = None;
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            depth += 1;
        } else if c == '}' {
            depth = depth.saturating_sub(1);
            while inline.last().is_some_and(|d| *d > depth) {
                inline.pop();
            }
            if in_tests.is_some_and(|d| d > depth) {
                in_tests = None;
            }
        }
        if starts_with(&chars[i..], "#[cfg(") {
            let attribute: String = chars[i..].iter().take_while(|c| **c != ']').collect();
            test_attribute = !attribute.contains("not(")
                && attribute
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|word| word == "test");
        }
        // The attribute belongs to the next item only: a `;` or a `{` of anything but a
        // `mod` ends it (a `mod x {` is seen at its keyword, before its brace).
        if c == ';' || (c == '{' && inline.last() != Some(&depth)) {
            test_attribute = false;
        }
        let at_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if at_word && starts_with(&chars[i..], "mod ") {
            let rest: String = chars[i + 4..].iter().take(80).collect();
            let name_len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(0);
            if rest[name_len..].trim_start().starts_with('{') {
                inline.push(depth + 1);
                if test_attribute && in_tests.is_none() {
                    in_tests = Some(depth + 1);
                }
            }
            test_attribute = false;
        }
        if in_tests.is_some() {
            i += 1;
            continue;
        }
        for root in ["crate::", "super::", "self::"] {
            if at_word && starts_with(&chars[i..], root) {
                let base: Vec<String> = match root {
                    "crate::" => Vec::new(),
                    // In a file's own inline module, `super` is the file's module.
                    "super::" if !inline.is_empty() => module.clone(),
                    "super::" if is_mod_file => module[..module.len().saturating_sub(1)].to_vec(),
                    "super::" => module[..module.len().saturating_sub(1)].to_vec(),
                    _ => module.clone(),
                };
                let (tails, used) = parse_tree(&chars[i + root.len()..]);
                for tail in tails {
                    let mut path = base.clone();
                    // `super::super::x`: each further `super` goes one module up.
                    let mut rest = tail.as_slice();
                    while rest.first().is_some_and(|s| s == "super") {
                        path.pop();
                        rest = &rest[1..];
                    }
                    path.extend(rest.iter().cloned());
                    found.push(path);
                }
                i += root.len() + used;
                break;
            }
        }
        i += 1;
    }
    found
}

fn starts_with(chars: &[char], s: &str) -> bool {
    s.chars().enumerate().all(|(k, c)| chars.get(k) == Some(&c))
}

/// `a::b::{c, d::E}` as `[[a,b,c], [a,b,d,E]]`, and how many chars that took.
fn parse_tree(chars: &[char]) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        if i > start {
            prefix.push(chars[start..i].iter().collect::<String>());
        }
        if starts_with(&chars[i..], "::{") {
            i += 3;
            let mut all = Vec::new();
            loop {
                while chars.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                    i += 1;
                }
                if chars.get(i) == Some(&'}') || i >= chars.len() {
                    i += 1;
                    break;
                }
                let (tails, used) = parse_tree(&chars[i..]);
                for tail in tails {
                    let mut path = prefix.clone();
                    path.extend(tail);
                    all.push(path);
                }
                i += used.max(1);
                // Skip ` as name` and the like up to the next separator.
                while i < chars.len() && !matches!(chars[i], ',' | '}') {
                    i += 1;
                }
            }
            return (all, i);
        }
        if starts_with(&chars[i..], "::") {
            i += 2;
            continue;
        }
        return (vec![prefix], i);
    }
}

/// The file a path leads to: its longest prefix that is a file of its own.
fn target_file(path: &[String]) -> Option<PathBuf> {
    (0..=path.len()).rev().find_map(|n| file_of(&path[..n]))
}

/// Edges file -> file; an edge to an ancestor's `mod.rs`/`lib.rs` (which only declares and
/// re-exports) is not counted.
fn graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in files {
        if file.ends_with("main.rs") {
            continue;
        }
        let own = module_of(&file);
        let targets = edges.entry(file.clone()).or_default();
        for path in paths_in(&file) {
            let Some(target) = target_file(&path) else {
                continue;
            };
            let target_module = module_of(&target);
            let ancestor = own.starts_with(&target_module) && target_module.len() < own.len();
            if target != file && !ancestor {
                targets.insert(target);
            }
        }
    }
    edges
}

/// `src/http/owner.rs`, as a person reads it.
fn shown(file: &Path) -> String {
    file.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or(file)
        .display()
        .to_string()
}

fn top(file: &Path) -> String {
    module_of(file).first().cloned().unwrap_or_default()
}

#[test]
fn no_import_runs_up_the_layers() {
    let allowed: BTreeMap<&str, &[&str]> = MAY_IMPORT.iter().copied().collect();
    let mut wrong = Vec::new();
    for (file, targets) in graph() {
        let from = top(&file);
        if from.is_empty() {
            continue;
        }
        let may = allowed
            .get(from.as_str())
            .unwrap_or_else(|| panic!("{from} is not in MAY_IMPORT: place it in the layers"));
        for target in targets {
            let to = top(&target);
            if to != from && !to.is_empty() && !may.contains(&to.as_str()) {
                wrong.push(format!("{} imports {}", shown(&file), shown(&target)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports up the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let edges = graph();
    // Tarjan-free: a depth-first search that reports the first back edge's cycle.
    fn visit(
        node: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        stack: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            return Some(stack[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            let names: Vec<String> = cycle.iter().map(|f| shown(f)).collect();
            panic!("import circle: {} -> back", names.join(" -> "));
        }
    }
}

/// The test's own reading, checked on the shapes it must understand.
#[test]
fn the_reader_expands_use_groups_and_resolves_super_in_inline_modules() {
    let (paths, _) = parse_tree(&"a::{b, c::D, e::{f, g}}".chars().collect::<Vec<_>>());
    let flat: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(flat, ["a::b", "a::c::D", "a::e::f", "a::e::g"]);
    assert_eq!(
        code_only("let s = \"crate::x\"; // crate::y\nlet c = '{';"),
        "let s = \"\"; \nlet c = ' ';"
    );
    // A file whose inline module says `use super::...` depends on nothing new by it.
    let owner = src().join("http/owner.rs");
    let platform = src().join("platform/sockets/mod.rs");
    assert!(
        graph()[&owner].contains(&platform),
        "owner uses platform::sockets"
    );
}

/// The string constants of `file` (`pub const NAME: &str = "VALUE";`), by value.
fn constants(file: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (name, rest) = rest.split_once(": &str = \"")?;
            let value = rest.strip_suffix("\";")?;
            Some((value.to_owned(), name.to_owned()))
        })
        .collect()
}

/// Whether `code` names the constant `name` as a whole word (`ROLE`, not `ROLES`).
fn names(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(at, _)| {
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(code[..at].chars().next_back()) && !word(code[at + name.len()..].chars().next())
    })
}

/// ARCHITECTURE.md's route table is the map a newcomer follows: each route must be handled in
/// the file it names (the file routes the path, literally or through its constant).
#[test]
fn every_route_in_architecture_md_is_handled_in_the_file_it_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut known = constants(&src().join("api.rs"));
    known.extend(constants(&src().join("ec2/mod.rs")));
    let mut checked = 0;
    let routes = map
        .split("\n## Routes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Routes section");
    for row in routes.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (route, handler) = (cells[1], cells[3]);
        let file = handler.split('`').nth(1).expect("a handler file");
        let code = std::fs::read_to_string(src().join("http").join(file))
            .unwrap_or_else(|_| panic!("{row}: no src/http/{file}"));
        for path in route.split('`').skip(1).step_by(2) {
            let path = path.split_once(' ').map_or(path, |(_, p)| p);
            let bare = path.split('[').next().unwrap().trim_end_matches('/');
            let by_constant = known.get(bare).is_some_and(|name| names(&code, name));
            assert!(
                code.contains(&format!("\"{bare}")) || by_constant,
                "ARCHITECTURE.md says {path} is handled in src/http/{file}, which does not route it"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} routes read: is the table still there?"
    );
}
