//! The house rules of `src/`, checked on every test run: no import circle between top-level
//! modules (each can be read and tested without the others that import it), no file over 500
//! lines, no function over 80 (rustfmt's layout: a function ends at the first `}` at its own
//! indentation). The same circle check as `../shared/tools/modcycles.py`, so `cargo test`
//! needs nothing outside the repository. And the README's layout cannot drift from `src/`:
//! every path it names exists, and it names every folder and every top-level file.

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
    const PATCHED: [&str; 9] = [
        "new_with_modules",
        "request_written_by_caller",
        "preread_response",
        "write_response_head(",
        "set_server_config",
        "take_pipelined_prefix",
        "accept_downstream_sessions",
        "set_linger_zero",
        "pre_handshake(",
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

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The README's layout: the fenced block under `## Layout`.
fn layout_block(readme: &str) -> &str {
    let section = readme
        .split_once("\n## Layout\n")
        .expect("README has a ## Layout section")
        .1;
    let block = section
        .split_once("```\n")
        .expect("the layout is a fenced block")
        .1;
    block.split_once("```").expect("the fenced block ends").0
}

/// The layout's entries, (path, description): a line starting in the first column opens one,
/// the indented lines after it continue its description.
fn layout_entries(block: &str) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with(' ') {
            if let Some((_, text)) = entries.last_mut() {
                text.push(' ');
                text.push_str(line.trim());
            }
        } else if let Some((path, text)) = line.split_once(' ') {
            entries.push((path.to_string(), text.trim().to_string()));
        } else if !line.is_empty() {
            entries.push((line.to_string(), String::new()));
        }
    }
    entries
}

/// The words of `text` that look like paths: runs of `[A-Za-z0-9_./]`, without a sentence's
/// final `.`, each segment a lower-case identifier, ending in `.rs` (a file) or `/` (a
/// folder). `validate/` and `src/proxy/own.rs` are paths; `HTTP/1`, `/metrics` and
/// `404/502` are not.
fn path_words(text: &str) -> Vec<&str> {
    let path_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '/';
    text.split(|c: char| !path_char(c))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| {
            let stem = match (w.strip_suffix(".rs"), w.strip_suffix('/')) {
                (Some(stem), _) | (None, Some(stem)) => stem,
                (None, None) => return false,
            };
            stem.split('/').all(|seg| {
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
        })
        .collect()
}

/// What the layout names: each entry's own path, and for an entry that is a folder of `src/`,
/// the files and folders its description names, relative to it (`record.rs` in the entry
/// `src/accesslog/` is `src/accesslog/record.rs`) unless written out from `src/`.
fn layout_paths(block: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, text) in layout_entries(block) {
        let folder = path.starts_with("src/") && path.ends_with('/');
        for word in path_words(&text) {
            if word.starts_with("src/") {
                out.insert(word.to_string());
            } else if folder {
                out.insert(format!("{path}{word}"));
            }
        }
        out.insert(path);
    }
    out
}

/// Every `src/…` path written out anywhere in `readme`.
fn written_src_paths(readme: &str) -> BTreeSet<String> {
    path_words(readme)
        .into_iter()
        .filter(|w| w.starts_with("src/"))
        .map(str::to_string)
        .collect()
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("README.md is readable")
}

#[test]
fn every_path_the_readme_names_exists() {
    let readme = readme();
    let mut named = layout_paths(layout_block(&readme));
    named.extend(written_src_paths(&readme));
    assert!(named.len() > 30, "too few paths found: {named:?}");
    let missing: Vec<&String> = named
        .iter()
        .filter(|p| {
            let path = repo().join(p);
            if p.ends_with('/') {
                !path.is_dir()
            } else {
                !path.is_file()
            }
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the README names paths that do not exist (update its Layout section):\n{}",
        missing
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every folder under `src/` (at any depth, as `src/a/b/`) and every file directly in it.
fn src_folders_and_top_files() -> Vec<String> {
    fn folders(dir: &Path, rel: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let rel = format!("{rel}{name}/");
                out.push(rel.clone());
                folders(&path, &rel, out);
            } else if rel == "src/" {
                out.push(format!("{rel}{name}"));
            }
        }
    }
    let mut out = Vec::new();
    folders(&src(), "src/", &mut out);
    out.sort();
    out
}

#[test]
fn the_readme_layout_names_every_folder_and_top_level_file_of_src() {
    let readme = readme();
    let named = layout_paths(layout_block(&readme));
    let all = src_folders_and_top_files();
    assert!(all.len() > 20, "too few found under src/: {all:?}");
    let unnamed: Vec<&String> = all.iter().filter(|p| !named.contains(*p)).collect();
    assert!(
        unnamed.is_empty(),
        "the README's Layout section does not name:\n{}",
        unnamed
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_readme_check_reads_entries_relative_and_written_out_paths() {
    let readme = "intro `src/a/b.rs`.\n\n## Layout\n\n```\nsrc/x.rs      one file\n\
                  src/d/        mod.rs (HTTP/1, /metrics, 404/502) · e/ (e/f.rs)\n\
                  \x20             g.rs · src/h.rs\nother/        k.rs\n```\nafter src/z/\n";
    let block = layout_block(readme);
    let got = layout_paths(block);
    let want: BTreeSet<String> = [
        "src/x.rs",
        "src/d/",
        "src/d/mod.rs",
        "src/d/e/",
        "src/d/e/f.rs",
        "src/d/g.rs",
        "src/h.rs",
        "other/",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want);
    let written: Vec<String> = written_src_paths(readme).into_iter().collect();
    assert_eq!(
        written,
        ["src/a/b.rs", "src/d/", "src/h.rs", "src/x.rs", "src/z/"]
    );
}
