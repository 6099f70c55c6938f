//! include/edgeseek.h and the library cannot drift apart: the functions it declares are
//! the ones capi's sources export, and a C program that uses every declaration compiles
//! with -Werror, links against the library and runs; docs/c-api.md's example compiles,
//! links and answers on SmolLM2.
//! (Struct layouts: src/layout_tests.rs.)

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use common::compiler::compile;
use common::{gpu_command, header, library, scratch, smollm2};

/// Every `extern "C" fn es_*` in capi/src.
fn exported() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("extern \"C\" fn es_") {
            let tail = &rest[at + "extern \"C\" fn ".len()..];
            let end = tail.find('(').expect("a parameter list");
            names.push(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names.sort();
    names
}

#[test]
fn the_header_declares_exactly_the_exported_functions() {
    let declared = header::functions(&header::header_code());
    let exported = exported();
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|n| !b.contains(n)).cloned().collect()
    };
    assert!(
        declared.len() >= 16,
        "the header's functions were not found: {declared:?}"
    );
    assert_eq!(
        (only(&declared, &exported), only(&exported, &declared)),
        (vec![], vec![]),
        "(declared but not exported, exported but not declared)"
    );
}

#[test]
fn the_c_test_names_every_declaration_of_the_header() {
    let code = header::header_code();
    let mut declared = header::functions(&code);
    declared.extend(header::constants(&code));
    for (name, fields) in header::structs(&code) {
        declared.push(name);
        declared.extend(fields.into_iter().map(|f| f.name));
    }
    declared.extend(
        header::identifiers(&code)
            .into_iter()
            .filter(|w| w.starts_with("Es")),
    );
    let c = header::strip_comments(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/every_declaration.c"),
        )
        .unwrap(),
    );
    let used = header::identifiers(&c);
    let mut missing: Vec<&String> = declared.iter().filter(|d| !used.contains(d)).collect();
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "tests/c/every_declaration.c does not use: {missing:?}"
    );
}

/// Compiles `src` into `exe` as a C user would (the strict flags, -I include,
/// -L/-ledgeseek), with an rpath so that it finds libedgeseek.so when run.
fn build_against_the_library(src: &Path, exe: &Path) {
    let lib = library();
    let include = header::repo_root().join("include");
    let rpath = format!("-Wl,-rpath,{}", lib.dir.display());
    let link = [
        OsStr::new("-L"),
        lib.dir.as_os_str(),
        OsStr::new("-ledgeseek"),
        OsStr::new(&rpath),
    ];
    compile(&include, src, exe, &link);
}

#[test]
fn a_c_program_using_every_declaration_compiles_links_and_runs() {
    let dir = scratch("every_declaration");
    let exe = dir.join("every_declaration");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/every_declaration.c");
    build_against_the_library(&src, &exe);
    let out = Command::new(&exe).output().unwrap();
    assert!(
        out.status.success(),
        "every_declaration failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("every declaration: ok"));
}

#[test]
fn the_c_api_pages_minimal_program_answers_and_its_exit_status_says_how_it_went() {
    let page = std::fs::read_to_string(header::repo_root().join("docs/c-api.md")).unwrap();
    let start = page.find("```c\n").expect("docs/c-api.md has a ```c block") + 5;
    let end = start + page[start..].find("```").unwrap();
    let dir = scratch("c_api_page");
    let src = dir.join("minimal.c");
    std::fs::write(&src, &page[start..end]).unwrap();
    let exe = dir.join("minimal");
    build_against_the_library(&src, &exe);

    let out = gpu_command(&exe).arg(smollm2::path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Paris"),
        "{}: {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // A failure is a message and exit status 1.
    let out = gpu_command(&exe).arg("/nonexistent.gguf").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.gguf"));
}
