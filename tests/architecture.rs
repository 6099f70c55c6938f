//! The layering docs/architecture.md describes, checked on the source so that it cannot
//! drift: only `runtime/gpu/` talks to wgpu, and the lower rooms do not reach up.
//!
//! file/ (GGUF, quant formats) <- gpu/ <- experts/ (no GPU) <- model/ <- lib.rs, session
//! The arrows say who may use whom; nothing uses a room to its right.

use std::path::{Path, PathBuf};

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

/// Every runtime source file, relative to runtime/, with its text.
fn runtime() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Lines of `text` containing `needle`, outside comments.
fn uses(text: &str, needle: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| l.contains(needle))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn only_gpu_names_wgpu() {
    let mut found = Vec::new();
    for (file, text) in runtime() {
        // lib.rs: Model::load_on_device takes the host's wgpu device and queue.
        if file.starts_with("gpu/") || file == "lib.rs" {
            continue;
        }
        for needle in [
            "wgpu::",
            ".queue.",
            ".device.",
            "map_async",
            "create_buffer",
        ] {
            for line in uses(&text, needle) {
                found.push(format!("{file}: {line}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "wgpu outside runtime/gpu/:\n{}",
        found.join("\n")
    );
}

/// The top-level items of the crate a source file names, with the line that names each:
/// `crate::gpu::buffers` and `crate::{gpu::Buffer, error::Result}` name `gpu` (and
/// `error`), and `super::super::x` names `x` when it climbs to the crate root from
/// `file` (a path relative to runtime/). Comments are skipped.
/// The items a path names right after one of its segments: `gpu` for `gpu::buffers`,
/// `gpu` and `error` for `{gpu::{Buffer, Encoder}, error::Result}` (nested braces skipped).
fn items(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let mut out = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && !c.is_whitespace() => {
                out.push(ident(&group[i..]));
                item_start = false;
            }
            _ => {}
        }
    }
    out
}

/// What a source file names below the module `ups` levels above it (`super::` chains
/// of exactly that length) and below `prefix` (`crate::model::`), with the line.
/// Comments are skipped.
fn named_under(text: &str, ups: usize, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut found: Vec<String> = Vec::new();
        for (at, _) in line.match_indices(prefix) {
            found.extend(items(&line[at + prefix.len()..]));
        }
        let mut rest = line;
        while let Some(at) = rest.find("super::") {
            let mut tail = &rest[at..];
            let mut n = 0;
            while let Some(t) = tail.strip_prefix("super::") {
                n += 1;
                tail = t;
            }
            if n == ups {
                found.extend(items(tail));
            }
            rest = tail;
        }
        out.extend(
            found
                .into_iter()
                .filter(|n| !n.is_empty())
                .map(|n| (n, line.trim().to_string())),
        );
    }
    out
}

/// The module path of a file relative to runtime/: gpu/kernels/mat.rs is
/// [gpu, kernels, mat]; a mod.rs or lib.rs is its directory's module.
fn module_path(file: &str) -> Vec<&str> {
    let mut module: Vec<&str> = file.trim_end_matches(".rs").split('/').collect();
    if matches!(module.last(), Some(&"mod") | Some(&"lib")) {
        module.pop();
    }
    module
}

/// The crate's top-level items a source file names, with the line: `crate::gpu::x`,
/// `crate::{gpu::Buffer, error::Result}`, or a `super::` chain that climbs to the root.
fn crate_roots(file: &str, text: &str) -> Vec<(String, String)> {
    named_under(text, module_path(file).len(), "crate::")
}

#[test]
fn rooms_use_only_the_rooms_below_them() {
    // (room, the crate's top-level items it may name). A room not listed (lib.rs,
    // session.rs) may use everything.
    let rules: &[(&str, &[&str])] = &[
        ("file/", &["error", "file"]),
        ("gpu/", &["error", "file", "gpu"]),
        ("experts/", &["error", "file", "experts"]),
        (
            "model/",
            &["error", "file", "gpu", "experts", "model", "process"],
        ),
        ("tokenizer/", &["error", "file", "tokenizer"]),
        ("chat.rs", &["error", "file", "tokenizer", "chat"]),
        ("sampler.rs", &["error", "sampler"]),
        ("catalog.rs", &["error", "catalog"]),
        ("process.rs", &["error", "process"]),
        ("error.rs", &["error"]),
    ];
    let mut found = Vec::new();
    for (file, text) in runtime() {
        for (room, allowed) in rules {
            if !file.starts_with(room) {
                continue;
            }
            for (root, line) in crate_roots(&file, &text) {
                if !allowed.contains(&root.as_str()) {
                    found.push(format!("{file} uses crate::{root}: {line}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "a room reaches up (docs/architecture.md, Rules):\n{}",
        found.join("\n")
    );
}

#[test]
fn crate_roots_sees_grouped_and_relative_paths() {
    let text = "use crate::{gpu::{Buffer, Encoder}, error::Result};\n\
                use super::super::model::plan;\n\
                // use crate::session::Session;\n\
                let x = crate::Model::load(p);\n";
    let roots: Vec<String> = crate_roots("gpu/kernels/mod.rs", text)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(roots, ["gpu", "error", "model", "Model"]);
}

#[test]
fn model_files_do_not_import_each_other_in_cycles() {
    // Which model/ files each model/ file imports.
    let files: Vec<(String, String)> = runtime()
        .into_iter()
        .filter(|(f, _)| f.starts_with("model/") && f != "model/mod.rs")
        .collect();
    let name = |f: &str| {
        f.trim_start_matches("model/")
            .trim_end_matches(".rs")
            .to_string()
    };
    let names: Vec<String> = files.iter().map(|(f, _)| name(f)).collect();
    let deps: Vec<Vec<usize>> = files
        .iter()
        .map(|(_, text)| {
            names
                .iter()
                .enumerate()
                .filter(|(_, n)| {
                    // From model/x.rs, `super::` is model/.
                    named_under(text, 1, "crate::model::")
                        .iter()
                        .any(|(m, _)| m == *n)
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    // Depth-first search for a back edge; the path from its target is the cycle.
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[i] = 1;
        path.push(i);
        for &j in &deps[i] {
            if j == i {
                continue;
            }
            if state[j] == 1 {
                let from = path.iter().position(|&k| k == j).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(j);
                return Some(cycle);
            }
            if state[j] == 0 {
                if let Some(cycle) = visit(j, deps, state, path) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; names.len()];
    for i in 0..names.len() {
        if state[i] != 0 {
            continue;
        }
        if let Some(cycle) = visit(i, &deps, &mut state, &mut Vec::new()) {
            let cycle: Vec<&str> = cycle.iter().map(|&k| names[k].as_str()).collect();
            panic!(
                "model files import each other in a cycle: {}",
                cycle.join(" -> ")
            );
        }
    }
}
