//! The documents a user reads hold together: README stays short, every link in README
//! and docs/ points at a file (and heading) in this repository, and README's embedding
//! snippet is the code of examples/hello.rs, which the build compiles.

use std::path::{Component, Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The markdown pages users read: README, docs/, and the READMEs beside models and fixtures.
fn pages() -> Vec<String> {
    let mut pages = vec![
        "README.md".to_string(),
        "models/README.md".to_string(),
        "tests/fixtures/README.md".to_string(),
    ];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// `(target)` of every `[text](target)` outside code blocks and code spans.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop code spans, which may hold `](` legitimately.
        let plain: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// `base/rel` with `.` and `..` resolved, or None when it climbs above the repository.
fn inside_repo(base: &Path, rel: &str) -> Option<PathBuf> {
    let joined = base.join(rel);
    let mut parts: Vec<Component<'_>> = Vec::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.iter().collect())
}

#[test]
fn readme_is_short() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= 150,
        "README.md has {lines} lines: it is the five-minute page; detail goes to docs/"
    );
}

#[test]
fn every_link_points_into_the_repository() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = read(&page);
        let dir = Path::new(&page).parent().unwrap_or(Path::new(""));
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, fragment) = match link.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() {
                Some(PathBuf::from(&page))
            } else {
                inside_repo(dir, file)
            };
            let Some(target) = target else {
                broken.push(format!("{page}: {link} leaves the repository"));
                continue;
            };
            let full = root().join(&target);
            if !full.exists() {
                broken.push(format!("{page}: {link} (no {})", target.display()));
                continue;
            }
            if let Some(fragment) = fragment {
                let is_md = target.extension().is_some_and(|e| e == "md");
                if is_md && !anchors(&read(&target.to_string_lossy())).contains(&fragment.into()) {
                    broken.push(format!("{page}: {link} (no such heading)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn readme_embedding_snippet_is_hello_rs() {
    let readme = read("README.md");
    let hello = read("examples/hello.rs");
    let start = readme
        .find("```rust\n")
        .expect("README.md has its embedding snippet in a ```rust block");
    let body = &readme[start + 8..];
    let snippet = &body[..body.find("```").expect("the rust block is closed")];
    // Each snippet line, without its trailing comment, is a line of hello.rs, in order.
    let code = |l: &str| l.split(" //").next().unwrap().trim().to_string();
    let hello_lines: Vec<String> = hello.lines().map(code).collect();
    let mut from = 0;
    for line in snippet.lines().map(code).filter(|l| !l.is_empty()) {
        match hello_lines[from..].iter().position(|h| *h == line) {
            Some(i) => from += i + 1,
            None => panic!(
                "README.md's snippet line `{line}` is not in examples/hello.rs (in order): \
                 the snippet must be code that compiles"
            ),
        }
    }
}
