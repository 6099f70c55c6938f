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

/// Whether a non-comment line of `text` names the module path `path` as a
/// whole (`crate::model::load` is not named by `crate::model::loader`).
fn names_module(text: &str, path: &str) -> bool {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .any(|l| {
            l.match_indices(path).any(|(at, _)| {
                !l[at + path.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            })
        })
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

#[test]
fn lower_rooms_do_not_use_higher_ones() {
    // (room, rooms it must not use)
    let rules: &[(&str, &[&str])] = &[
        (
            "file/",
            &[
                "crate::gpu",
                "crate::model",
                "crate::experts",
                "crate::session",
            ],
        ),
        (
            "gpu/",
            &["crate::model", "crate::experts", "crate::session"],
        ),
        (
            "experts/",
            &["crate::gpu", "crate::model", "crate::session"],
        ),
        ("model/", &["crate::session"]),
        (
            "tokenizer/",
            &["crate::gpu", "crate::model", "crate::experts"],
        ),
    ];
    let mut found = Vec::new();
    for (file, text) in runtime() {
        for (room, banned) in rules {
            if !file.starts_with(room) {
                continue;
            }
            for b in *banned {
                for line in uses(&text, b) {
                    found.push(format!("{file}: {line}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "a room uses one above it:\n{}",
        found.join("\n")
    );
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
                    names_module(text, &format!("crate::model::{n}"))
                        || names_module(text, &format!("super::{n}"))
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
