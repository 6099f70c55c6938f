//! A reader of include/edgeseek.h just good enough for the drift tests: the header is
//! hand-written in one style (one declaration per line, `/* */` comments, structs as
//! `typedef struct Name { ... } Name;`), and these functions fail loudly if it is not.

use std::path::{Path, PathBuf};

/// The repository root (capi/ is one level down).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("capi/ has a parent")
        .to_path_buf()
}

pub fn header_path() -> PathBuf {
    repo_root().join("include/edgeseek.h")
}

/// The header's text without comments (`/* */` and `//`).
pub fn header_code() -> String {
    let text = std::fs::read_to_string(header_path())
        .unwrap_or_else(|e| panic!("{}: {e}", header_path().display()));
    strip_comments(&text)
}

pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find("*/").expect("every /* is closed") + at + 2;
        out.push(' ');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Identifiers of `code` in order (C's: letters, digits, underscores).
pub fn identifiers(code: &str) -> Vec<String> {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

/// The functions the header declares: every `es_*` name followed by `(`.
pub fn functions(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("es_") {
        let before_ok = at == 0
            || !rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if before_ok && tail[len..].trim_start().starts_with('(') {
            out.push(tail[..len].to_string());
        }
        rest = &tail[len..];
    }
    out.sort();
    out
}

/// The enum constants: every `ES_*` identifier.
pub fn constants(code: &str) -> Vec<String> {
    let mut out: Vec<String> = identifiers(code)
        .into_iter()
        .filter(|w| w.starts_with("ES_"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A struct field: its C type (spaces normalized) and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub ty: String,
    pub name: String,
}

/// Every `typedef struct Name { fields } Name;` with its fields in order.
pub fn structs(code: &str) -> Vec<(String, Vec<Field>)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("typedef struct") {
        let tail = &rest[at + "typedef struct".len()..];
        let (Some(open), Some(semi)) = (tail.find('{'), tail.find(';')) else {
            break;
        };
        if semi < open {
            // An opaque declaration: `typedef struct EsModel EsModel;`.
            rest = &tail[semi..];
            continue;
        }
        let name = tail[..open].trim().to_string();
        let close = tail.find('}').expect("struct body closed");
        let fields = tail[open + 1..close]
            .split(';')
            .map(|f| f.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|f| !f.is_empty())
            .map(|f| {
                let split = f
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or_else(|| panic!("field `{f}` of {name} has a type"));
                Field {
                    ty: f[..=split].replace(" *", "*").trim().to_string(),
                    name: f[split + 1..].to_string(),
                }
            })
            .collect();
        out.push((name, fields));
        rest = &tail[close..];
    }
    out
}
