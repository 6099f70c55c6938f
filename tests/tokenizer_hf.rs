//! The tokenizer of a Hugging Face model directory (`Tokenizer::from_hf_dir`) against the GGUF
//! path on the same vocabulary: tests/fixtures/hf/deepseek-r1-distill-qwen is
//! tests/fixtures/vocab/deepseek-r1-distill-qwen.vocab.gguf written as tokenizer.json and
//! tokenizer_config.json (tests/fixtures/make_hf_tokenizer.py). Then unsupported and broken
//! directories.

mod common;

use std::path::{Path, PathBuf};

use edgeseek::GgufFile;
use edgeseek::{Error, Tokenizer};

fn r1_gguf_path() -> PathBuf {
    common::repo().join("tests/fixtures/vocab/deepseek-r1-distill-qwen.vocab.gguf")
}

fn r1_gguf() -> Tokenizer {
    let file = GgufFile::open(&r1_gguf_path()).unwrap_or_else(|e| panic!("{e}"));
    Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn r1_hf() -> Tokenizer {
    let dir = common::repo().join("tests/fixtures/hf/deepseek-r1-distill-qwen");
    Tokenizer::from_hf_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
}

const R1_BOS: u32 = 151646; // <｜begin▁of▁sentence｜>
const R1_EOS: u32 = 151643; // <｜end▁of▁sentence｜>

#[test]
fn r1_vectors_match_llama_cpp() {
    let tokenizer = r1_hf();
    let vectors = common::read_vectors(&r1_gguf_path());
    let mut failures = Vec::new();
    for (text, want) in &vectors {
        // As test-tokenizer-0: no BOS, special-token text not parsed.
        let got = tokenizer.encode(text, false, false).unwrap();
        if &got != want {
            failures.push(format!(
                "{text:?}\n  llama.cpp {want:?}\n  ours      {got:?}"
            ));
        }
        assert_eq!(&tokenizer.decode(&got).unwrap(), text, "round trip");
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors differ from llama.cpp:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}

#[test]
fn r1_hf_and_gguf_agree_on_every_token() {
    let (hf, gguf) = (r1_hf(), r1_gguf());
    assert_eq!((hf.bos(), hf.eos()), (Some(R1_BOS), Some(R1_EOS)));
    assert_eq!((hf.bos(), hf.eos()), (gguf.bos(), gguf.eos()));
    // The GGUF pads its vocabulary with 399 unused "[PAD…]" tokens up to the model's 152064
    // embedding rows (convert_hf_to_gguf.py); tokenizer.json stops at its last added token.
    // Both render those ids as no bytes and neither ends generation there.
    assert_eq!((hf.n_vocab(), gguf.n_vocab()), (151665, 152064));
    for id in 0..gguf.n_vocab() + 1 {
        assert_eq!(
            hf.token_bytes(id),
            gguf.token_bytes(id),
            "token_bytes({id})"
        );
        assert_eq!(hf.is_eog(id), gguf.is_eog(id), "is_eog({id})");
    }
    let eog: Vec<u32> = (0..hf.n_vocab()).filter(|&id| hf.is_eog(id)).collect();
    assert!(eog.contains(&R1_EOS), "{eog:?}");
}

#[test]
fn r1_hf_and_gguf_agree_on_special_tokens_in_text() {
    let (hf, gguf) = (r1_hf(), r1_gguf());
    let text = "<｜User｜>What is 2+2?<｜Assistant｜><think>\nFour.</think>\
                <｜end▁of▁sentence｜><|fim_prefix|>x<tool_call>";
    for add_special in [false, true] {
        for parse_special in [false, true] {
            let ids = hf.encode(text, add_special, parse_special).unwrap();
            let want = gguf.encode(text, add_special, parse_special).unwrap();
            assert_eq!(
                ids, want,
                "add_special {add_special}, parse {parse_special}"
            );
            assert_eq!(ids.first() == Some(&R1_BOS), add_special);
            assert_eq!(ids.contains(&R1_EOS), parse_special);
            assert_eq!(hf.decode(&ids).unwrap(), gguf.decode(&ids).unwrap());
        }
    }
}

// ---- Unsupported and broken directories ----

/// A scratch model directory holding `files`, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str, files: &[(&str, &str)]) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("edgeseek-tok-hf-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in files {
            std::fs::write(dir.join(file), text).unwrap();
        }
        Dir(dir)
    }

    fn load(&self) -> Result<Tokenizer, Error> {
        Tokenizer::from_hf_dir(&self.0)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// "a", "b", their merge "ab", and "<s>" as a special added token; byte-level.
const TINY_JSON: &str = r#"{
  "version": "1.0",
  "added_tokens": [{"id": 3, "content": "<s>", "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
                    "use_regex": true},
  "post_processor": null,
  "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
              "use_regex": true},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
}"#;

const TINY_CONFIG: &str = r#"{"bos_token": "<s>", "eos_token": {"content": "<s>"},
                              "add_bos_token": true}"#;

/// `err` is `kind` with a message naming `file` and containing `needle`.
fn assert_error(err: Error, kind: &str, file: &Path, needle: &str) {
    let msg = err.to_string();
    let kind_ok = match err {
        Error::Unsupported { .. } => kind == "Unsupported",
        Error::BadFile { .. } => kind == "BadFile",
        Error::Io { .. } => kind == "Io",
        _ => false,
    };
    assert!(kind_ok, "expected {kind}: {msg}");
    assert!(
        msg.contains(&*file.to_string_lossy()) && msg.contains(needle),
        "expected {} and {needle:?} in: {msg}",
        file.display()
    );
}

#[test]
fn tiny_directory_loads() {
    let dir = Dir::new(
        "tiny",
        &[
            ("tokenizer.json", TINY_JSON),
            ("tokenizer_config.json", TINY_CONFIG),
        ],
    );
    let tokenizer = dir.load().unwrap();
    assert_eq!((tokenizer.bos(), tokenizer.eos()), (Some(3), Some(3)));
    assert_eq!(tokenizer.encode("abab", true, false).unwrap(), [3, 2, 2]);
    assert_eq!(tokenizer.encode("ba<s>", false, true).unwrap(), [1, 0, 3]);
    assert_eq!(tokenizer.decode(&[2, 3]).unwrap(), "ab<s>");
    assert!(tokenizer.is_eog(3));
}

#[test]
fn llama3_style_template_adds_bos_without_add_bos_token() {
    let template = r#""post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [3], "tokens": ["<s>"]}}}"#;
    let json = TINY_JSON.replace(r#""post_processor": null"#, template);
    let config = r#"{"bos_token": "<s>", "eos_token": null}"#;
    let dir = Dir::new(
        "template",
        &[("tokenizer.json", &json), ("tokenizer_config.json", config)],
    );
    let tokenizer = dir.load().unwrap();
    assert_eq!((tokenizer.bos(), tokenizer.eos()), (Some(3), None));
    assert_eq!(tokenizer.encode("ab", true, false).unwrap(), [3, 2]);
}

#[test]
fn sentencepiece_tokenizer_json_is_unsupported_and_named() {
    let metaspace = r#"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                       "split": true}"#;
    let json = TINY_JSON
        .replace(
            r#"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
                    "use_regex": true}"#,
            metaspace,
        )
        .replace(
            r#"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
              "use_regex": true}"#,
            metaspace,
        );
    assert_eq!(json.matches("Metaspace").count(), 2);
    let dir = Dir::new(
        "metaspace",
        &[
            ("tokenizer.json", &json),
            ("tokenizer_config.json", TINY_CONFIG),
        ],
    );
    let err = dir.load().unwrap_err();
    let file = dir.0.join("tokenizer.json");
    assert_error(err, "Unsupported", &file, "pre_tokenizer is Metaspace");
}

#[test]
fn broken_json_is_bad_file_and_named() {
    let broken = &TINY_JSON[..TINY_JSON.len() / 2];
    let dir = Dir::new(
        "broken",
        &[
            ("tokenizer.json", broken),
            ("tokenizer_config.json", TINY_CONFIG),
        ],
    );
    let file = dir.0.join("tokenizer.json");
    assert_error(dir.load().unwrap_err(), "BadFile", &file, "not JSON");

    let dir = Dir::new(
        "broken-config",
        &[
            ("tokenizer.json", TINY_JSON),
            ("tokenizer_config.json", "{\"bos_token\": "),
        ],
    );
    let file = dir.0.join("tokenizer_config.json");
    assert_error(dir.load().unwrap_err(), "BadFile", &file, "not JSON");
}

#[test]
fn special_tokens_must_be_in_the_vocabulary() {
    let config = r#"{"bos_token": "<bos>", "eos_token": "<s>"}"#;
    let dir = Dir::new(
        "bos",
        &[
            ("tokenizer.json", TINY_JSON),
            ("tokenizer_config.json", config),
        ],
    );
    let file = dir.0.join("tokenizer_config.json");
    assert_error(
        dir.load().unwrap_err(),
        "BadFile",
        &file,
        "bos_token '<bos>'",
    );
}

#[test]
fn missing_files_are_io_errors_and_named() {
    let dir = Dir::new("no-config", &[("tokenizer.json", TINY_JSON)]);
    let file = dir.0.join("tokenizer_config.json");
    assert_error(dir.load().unwrap_err(), "Io", &file, "");
    let dir = Dir::new("empty", &[]);
    let file = dir.0.join("tokenizer.json");
    assert_error(dir.load().unwrap_err(), "Io", &file, "");
}
