//! The house rules of `src/`, checked on every test run: no import circle between top-level
//! modules (each can be read and tested without the others that import it), no file over 500
//! lines, no function over 80 (rustfmt's layout: a function ends at the first `}` at its own
//! indentation). The same circle check as `../shared/tools/modcycles.py`, so `cargo test`
//! needs nothing outside the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 80;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn files() -> Vec<(PathBuf, String)> {
    let mut paths = Vec::new();
    rust_files(&src(), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable source");
            (p, text)
        })
        .collect()
}

/// The top-level module a file belongs to (`src/proxy/ctx.rs` → `proxy`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src/");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// The top-level modules a file names as `crate::x`, including inside `use crate::{x, y::z}`.
fn crate_refs(text: &str) -> BTreeSet<String> {
    refs_after(text, "crate::")
}

/// The first names after each `prefix` in a file's code (comments left out), including each
/// first name of a group: `prefix{x, y::z}` names `x` and `y`.
fn refs_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let preceded = code[..i].chars().next_back();
        if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `mycrate::` is not `crate::`
        }
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: the first identifier of each comma-separated part.
            let mut depth = 0;
            let mut part_start = true;
            for (j, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => part_start = true,
                    c if part_start && (c.is_alphanumeric() || c == '_') => {
                        let name: String = group[j..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        out.insert(name);
                        part_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

#[test]
fn no_import_circles_between_top_level_modules() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files() {
        let m = module_of(&path);
        if m == "lib" || m == "main" {
            continue;
        }
        let targets = edges.entry(m.clone()).or_default();
        for r in crate_refs(&text) {
            let exists = src().join(format!("{r}.rs")).exists() || src().join(&r).is_dir();
            if r != m && exists {
                targets.insert(r);
            }
        }
    }
    assert!(edges.len() > 10, "too few modules found: {edges:?}");
    let circles = circles(&edges);
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// Every edge `a -> b` of `edges` from which `a` can be reached again.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        false
    };
    edges
        .iter()
        .flat_map(|(a, targets)| targets.iter().map(move |b| (a, b)))
        .filter(|(a, b)| reaches(b, a))
        .map(|(a, b)| format!("{a} -> {b} -> ... -> {a}"))
        .collect()
}

/// The files of one folder of `src/` as nodes (`x.rs` and sub-folder `x/` are `x`; `mod.rs`
/// and `#[path]` test files, which belong to another file, are left out), each with the
/// siblings it names as `super::x` (or `super::{x, ..}`).
fn folder_edges(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut nodes = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            nodes.insert(name, path.join("mod.rs"));
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "mod" && stem != "tests" && !stem.ends_with("_tests") {
                nodes.insert(stem.to_string(), path);
            }
        }
    }
    let mut edges = BTreeMap::new();
    for (node, path) in &nodes {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // A sub-folder's `mod.rs` names its parent's files as `super::`, its own as `self::`.
        let targets: BTreeSet<String> = refs_after(&text, "super::")
            .into_iter()
            .filter(|r| r != node && nodes.contains_key(r))
            .collect();
        edges.insert(node.clone(), targets);
    }
    edges
}

#[test]
fn no_import_circles_inside_a_folder() {
    let mut dirs = vec![src()];
    let mut found = Vec::new();
    let mut checked = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable folder") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
        if dir == src() {
            continue; // the top level has its own check, by `crate::` paths
        }
        let edges = folder_edges(&dir);
        checked += edges.values().filter(|t| !t.is_empty()).count();
        let rel = dir.strip_prefix(src()).unwrap().display().to_string();
        found.extend(circles(&edges).into_iter().map(|c| format!("{rel}: {c}")));
    }
    assert!(
        checked > 10,
        "too few files naming their siblings: {checked}"
    );
    assert!(
        found.is_empty(),
        "import circles inside folders:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_circle_check_sees_grouped_and_plain_paths() {
    let refs = crate_refs("use crate::{a::B, c};\nlet x = crate::d::e(); // crate::f\n");
    let want: BTreeSet<String> = ["a", "c", "d"].iter().map(|s| s.to_string()).collect();
    assert_eq!(refs, want);
}

#[test]
fn no_overgrown_files() {
    let long: Vec<String> = files()
        .into_iter()
        .filter_map(|(p, text)| {
            let n = text.lines().count();
            (n > MAX_FILE_LINES).then(|| format!("{}: {n} lines", p.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// (file, function, lines) of every function longer than `max`.
fn long_functions(path: &Path, text: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let decl = trimmed
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("async ");
        let Some(name) = decl.strip_prefix("fn ") else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue; // a declaration without a body
        }
        let close = format!("{indent}}}");
        let Some(len) = lines[i..].iter().position(|l| *l == close) else {
            continue;
        };
        if len + 1 > max {
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(format!("{}: fn {name}: {} lines", path.display(), len + 1));
        }
    }
    out
}

#[test]
fn no_overgrown_functions() {
    let long: Vec<String> = files()
        .iter()
        .flat_map(|(p, text)| long_functions(p, text, MAX_FN_LINES))
        .collect();
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_function_check_measures_bodies() {
    let text =
        "fn short() {\n    1;\n}\n\n    pub async fn long() {\n        a;\n        b;\n    }\n";
    let found = long_functions(Path::new("x.rs"), text, 3);
    assert_eq!(found, vec!["x.rs: fn long: 4 lines".to_string()]);
}

/// Whether a line of documentation holds a benchmark figure: a time in µs, a count of
/// instructions, a percentage, or a before → after of numbers.
fn holds_a_figure(doc: &str) -> bool {
    let digit_before = |i: usize| doc[..i].trim_end().ends_with(|c: char| c.is_ascii_digit());
    let digit_after = |i: usize, len: usize| {
        doc[i + len..]
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit())
    };
    doc.match_indices("µs").any(|(i, _)| digit_before(i))
        || doc
            .match_indices(" instructions")
            .any(|(i, _)| digit_before(i))
        || doc.match_indices('%').any(|(i, _)| digit_before(i))
        || doc
            .match_indices('→')
            .any(|(i, m)| digit_before(i) && digit_after(i, m.len()))
}

/// Module and item docs say what and why; figures live in `bench/results/` and
/// `vendor/PATCHES.md`, linked by name, where they are dated and can be rerun.
#[test]
fn no_benchmark_figures_in_docs() {
    let mut found = Vec::new();
    for (path, text) in files() {
        for (n, line) in text.lines().enumerate() {
            let t = line.trim_start();
            let doc = t.strip_prefix("//!").or_else(|| t.strip_prefix("///"));
            if doc.is_some_and(holds_a_figure) {
                found.push(format!("{}:{}: {}", path.display(), n + 1, t));
            }
        }
    }
    assert!(found.is_empty(), "figures in docs:\n{}", found.join("\n"));
}

#[test]
fn the_figure_check_sees_figures_not_arithmetic() {
    assert!(holds_a_figure(
        " pass-through 136 600 → 108 600 instructions"
    ));
    assert!(holds_a_figure(" CPU per request −14%"));
    assert!(holds_a_figure(" 47 → 43 µs"));
    assert!(holds_a_figure(" 2.0 → 1.2 `sendto` per request"));
    assert!(!holds_a_figure(" the key → its entry; a 50 ms timer"));
    assert!(!holds_a_figure(" `v` rounded, e.g. 1.329 → \"1.329\""));
}

/// The APIs gatehouse's vendored pingora patches add (`vendor/PATCHES.md`) are called from
/// `src/pingora_ext.rs` only, so moving to a new pingora is one file's review.
#[test]
fn patched_pingora_apis_are_called_from_one_seam() {
    const PATCHED: [&str; 8] = [
        "new_with_modules",
        "request_written_by_caller",
        "preread_response",
        "write_response_head(",
        "set_server_config",
        "take_pipelined_prefix",
        "accept_downstream_sessions",
        "set_linger_zero",
    ];
    let mut found = Vec::new();
    for (path, text) in files() {
        if path.ends_with("pingora_ext.rs") {
            let missing: Vec<_> = PATCHED.iter().filter(|n| !text.contains(*n)).collect();
            assert!(
                missing.is_empty(),
                "pingora_ext.rs no longer calls {missing:?}"
            );
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in PATCHED.iter().filter(|name| code.contains(*name)) {
                found.push(format!("{}:{}: {name}", path.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "patched APIs called outside pingora_ext.rs:\n{}",
        found.join("\n")
    );
}
