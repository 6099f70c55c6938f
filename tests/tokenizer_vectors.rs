//! The tokenizer against llama.cpp: its test-tokenizer-0 vectors for every vocabulary in
//! tests/fixtures/vocab, ids llama.cpp gives for SmolLM2's real vocabulary, special tokens,
//! decoding, and broken vocabularies.

mod common;

use std::path::{Path, PathBuf};

use edgeseek::GgufFile;
use edgeseek::{Error, Tokenizer};

fn vocab_dir() -> PathBuf {
    common::repo().join("tests/fixtures/vocab")
}

fn load(path: &Path) -> Tokenizer {
    let file = GgufFile::open(path).unwrap_or_else(|e| panic!("{e}"));
    Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn load_fixture(name: &str) -> Tokenizer {
    load(&vocab_dir().join(name))
}

/// Encodes every vector as test-tokenizer-0 does (no BOS, special-token text not parsed) and
/// checks that decoding gives the text back. `clean_spaces` vocabularies decode " ," to ","
/// and the like, as llama.cpp does, so their round trip is checked where that cannot apply.
fn check_vectors(name: &str, clean_spaces: bool) {
    let path = vocab_dir().join(name);
    let tokenizer = load(&path);
    let vectors = common::read_vectors(&path);
    let mut failures = Vec::new();
    for (text, want) in &vectors {
        let got = tokenizer.encode(text, false, false).unwrap();
        if &got != want {
            failures.push(format!(
                "{text:?}\n  llama.cpp {want:?}\n  ours      {got:?}"
            ));
        }
        let cleanable = [" ?", " !", " .", " ,", " '"]
            .iter()
            .any(|p| text.contains(p));
        if !(clean_spaces && cleanable) {
            assert_eq!(&tokenizer.decode(&got).unwrap(), text, "{name}: round trip");
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} vectors differ from llama.cpp:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
    eprintln!("{name}: {} vectors as llama.cpp", vectors.len());
}

#[test]
fn qwen2_vectors_match_llama_cpp() {
    check_vectors("ggml-vocab-qwen2.gguf", false);
}

#[test]
fn deepseek_r1_distill_qwen_vectors_match_llama_cpp() {
    check_vectors("deepseek-r1-distill-qwen.vocab.gguf", false);
}

#[test]
fn llama_bpe_vectors_match_llama_cpp() {
    check_vectors("ggml-vocab-llama-bpe.gguf", true);
}

#[test]
fn deepseek_llm_vectors_match_llama_cpp() {
    check_vectors("ggml-vocab-deepseek-llm.gguf", false);
}

#[test]
fn gpt2_vectors_match_llama_cpp() {
    check_vectors("ggml-vocab-gpt-2.gguf", true);
}

#[test]
fn every_vocab_fixture_has_a_vectors_test() {
    let tested = [
        "ggml-vocab-qwen2.gguf",
        "deepseek-r1-distill-qwen.vocab.gguf",
        "ggml-vocab-llama-bpe.gguf",
        "ggml-vocab-deepseek-llm.gguf",
        "ggml-vocab-gpt-2.gguf",
    ];
    for entry in std::fs::read_dir(vocab_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".gguf") {
            assert!(tested.contains(&name.as_str()), "{name} has no test here");
        }
    }
}

// ---- SmolLM2-135M-Instruct, the real model (pre-tokenizer "smollm") ----

#[test]
fn smollm2_encodes_as_llama_cpp() {
    let tokenizer = load(&common::smollm2());
    let plain = tokenizer
        .encode("The capital of France is", true, false)
        .unwrap();
    assert_eq!(
        plain,
        [504, 3575, 282, 4649, 314],
        "no BOS: the file says add_bos_token = false"
    );
    let chat = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(
        tokenizer.encode(chat, true, true).unwrap(),
        [1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198]
    );
    assert_eq!(
        tokenizer
            .decode(&tokenizer.encode(chat, false, true).unwrap())
            .unwrap(),
        chat
    );
}

#[test]
fn smollm2_special_ids() {
    let tokenizer = load(&common::smollm2());
    assert_eq!(tokenizer.n_vocab(), 49152);
    assert_eq!((tokenizer.bos(), tokenizer.eos()), (Some(1), Some(2)));
    // <|endoftext|>, <|im_end|> (EOS), and <reponame> as llama.cpp's FIM repo token.
    let eog: Vec<u32> = (0..tokenizer.n_vocab())
        .filter(|&id| tokenizer.is_eog(id))
        .collect();
    assert_eq!(eog, [0, 2, 4]);
}

// ---- Special tokens, on the DeepSeek-R1-Distill-Qwen vocabulary ----

const R1: &str = "deepseek-r1-distill-qwen.vocab.gguf";
const R1_BOS: u32 = 151646; // <｜begin▁of▁sentence｜>
const R1_EOS: u32 = 151643; // <｜end▁of▁sentence｜>
const R1_THINK: u32 = 151648; // <think>, user-defined

#[test]
fn r1_adds_bos_as_the_file_says() {
    let tokenizer = load_fixture(R1);
    assert_eq!(
        (tokenizer.bos(), tokenizer.eos()),
        (Some(R1_BOS), Some(R1_EOS))
    );
    let with = tokenizer.encode("Hi", true, false).unwrap();
    let without = tokenizer.encode("Hi", false, false).unwrap();
    assert_eq!(with[0], R1_BOS);
    assert_eq!(with[1..], without[..]);
    assert_eq!(tokenizer.encode("", true, false).unwrap(), [R1_BOS]);
}

#[test]
fn control_tokens_are_matched_only_when_parsing_special_tokens() {
    let tokenizer = load_fixture(R1);
    let eos_text = "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>";
    let text = format!("a{eos_text}b");
    let parsed = tokenizer.encode(&text, false, true).unwrap();
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[1], R1_EOS);
    let plain = tokenizer.encode(&text, false, false).unwrap();
    assert!(plain.len() > 3 && !plain.contains(&R1_EOS), "{plain:?}");
    assert_eq!(tokenizer.decode(&plain).unwrap(), text);
}

#[test]
fn user_defined_tokens_are_always_matched() {
    let tokenizer = load_fixture(R1);
    for parse_special in [false, true] {
        let ids = tokenizer
            .encode("<think>\nok", false, parse_special)
            .unwrap();
        assert_eq!(ids[0], R1_THINK);
    }
    assert_eq!(tokenizer.decode(&[R1_THINK]).unwrap(), "<think>");
}

#[test]
fn r1_ends_generation_at_its_end_tokens_only() {
    let tokenizer = load_fixture(R1);
    assert!(tokenizer.is_eog(R1_EOS));
    assert!(!tokenizer.is_eog(R1_BOS));
    assert!(!tokenizer.is_eog(R1_THINK));
    assert!(!tokenizer.is_eog(tokenizer.n_vocab()));
}

#[test]
fn token_bytes_may_split_characters() {
    let tokenizer = load_fixture(R1);
    let text = "កាន់តែពិសេស 🦙";
    let ids = tokenizer.encode(text, false, false).unwrap();
    let bytes: Vec<u8> = ids
        .iter()
        .flat_map(|&id| tokenizer.token_bytes(id))
        .copied()
        .collect();
    assert_eq!(bytes, text.as_bytes());
    assert!(
        ids.iter()
            .any(|&id| std::str::from_utf8(tokenizer.token_bytes(id)).is_err()),
        "Khmer takes byte tokens: {ids:?}"
    );
    assert_eq!(tokenizer.token_bytes(u32::MAX), b"");
}

#[test]
fn decode_rejects_ids_outside_the_vocabulary() {
    let tokenizer = load_fixture(R1);
    let err = tokenizer.decode(&[1, tokenizer.n_vocab()]).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[test]
fn gpt2_decode_cleans_spaces_as_llama_cpp() {
    let tokenizer = load_fixture("ggml-vocab-gpt-2.gguf");
    let text = "Hello , world ! it 's a ' b";
    let ids = tokenizer.encode(text, false, false).unwrap();
    assert_eq!(tokenizer.decode(&ids).unwrap(), "Hello, world! it's a'b");
}

// ---- Broken and unsupported vocabularies ----

/// A metadata-only GGUF v3 file.
fn gguf(kvs: &[(&str, Value)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    let str = |b: &mut Vec<u8>, s: &str| {
        b.extend_from_slice(&(s.len() as u64).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
    };
    for (key, value) in kvs {
        str(&mut b, key);
        match value {
            Value::U32(v) => b.extend(4u32.to_le_bytes().into_iter().chain(v.to_le_bytes())),
            Value::Bool(v) => b.extend(7u32.to_le_bytes().into_iter().chain([*v as u8])),
            Value::Str(s) => {
                b.extend_from_slice(&8u32.to_le_bytes());
                str(&mut b, s);
            }
            Value::Strs(items) => {
                b.extend(9u32.to_le_bytes().into_iter().chain(8u32.to_le_bytes()));
                b.extend_from_slice(&(items.len() as u64).to_le_bytes());
                items.iter().for_each(|s| str(&mut b, s));
            }
            Value::I32s(items) => {
                b.extend(9u32.to_le_bytes().into_iter().chain(5u32.to_le_bytes()));
                b.extend_from_slice(&(items.len() as u64).to_le_bytes());
                items
                    .iter()
                    .for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
            }
        }
    }
    b
}

#[derive(Clone)]
enum Value {
    U32(u32),
    Bool(bool),
    Str(&'static str),
    Strs(Vec<&'static str>),
    I32s(Vec<i32>),
}

/// A tiny valid vocabulary: "a", "b", their merge "ab", and a control token.
fn tiny() -> Vec<(&'static str, Value)> {
    vec![
        ("tokenizer.ggml.model", Value::Str("gpt2")),
        ("tokenizer.ggml.pre", Value::Str("qwen2")),
        (
            "tokenizer.ggml.tokens",
            Value::Strs(vec!["a", "b", "ab", "<s>"]),
        ),
        ("tokenizer.ggml.token_type", Value::I32s(vec![1, 1, 1, 3])),
        ("tokenizer.ggml.merges", Value::Strs(vec!["a b"])),
        ("tokenizer.ggml.bos_token_id", Value::U32(3)),
    ]
}

fn with(key: &'static str, value: Value) -> Vec<(&'static str, Value)> {
    let mut kvs: Vec<_> = tiny().into_iter().filter(|(k, _)| *k != key).collect();
    kvs.push((key, value));
    kvs
}

/// Writes `kvs` to a scratch file and loads it as a tokenizer.
fn from_metadata(name: &str, kvs: &[(&str, Value)]) -> (PathBuf, Result<Tokenizer, Error>) {
    let path =
        std::env::temp_dir().join(format!("edgeseek-tok-{}-{name}.gguf", std::process::id()));
    std::fs::write(&path, gguf(kvs)).unwrap();
    let result = GgufFile::open(&path).and_then(|file| Tokenizer::from_gguf(&file));
    std::fs::remove_file(&path).unwrap();
    (path, result)
}

/// The load fails with `BadFile` (or `Unsupported`) and a message naming the file and `needle`.
fn expect_error(name: &str, kvs: &[(&str, Value)], unsupported: bool, needle: &str) {
    let (path, result) = from_metadata(name, kvs);
    let err = result.err().unwrap_or_else(|| panic!("{name}: loaded"));
    let kind_ok = match err {
        Error::Unsupported { .. } => unsupported,
        Error::BadFile { .. } => !unsupported,
        _ => false,
    };
    let msg = err.to_string();
    assert!(kind_ok, "{name}: wrong kind of error: {msg}");
    assert!(
        msg.contains(&*path.to_string_lossy()) && msg.contains(needle),
        "{name}: {msg}"
    );
}

#[test]
fn tiny_vocabulary_merges() {
    let (_, tokenizer) = from_metadata("tiny", &tiny());
    let tokenizer = tokenizer.unwrap();
    assert_eq!(tokenizer.encode("abab", false, false).unwrap(), [2, 2]);
    assert_eq!(tokenizer.encode("ba<s>", false, true).unwrap(), [1, 0, 3]);
    assert_eq!(tokenizer.decode(&[2, 3]).unwrap(), "ab<s>");
}

#[test]
fn unknown_pre_tokenizer_is_unsupported_and_named() {
    let kvs = with("tokenizer.ggml.pre", Value::Str("martian"));
    expect_error("pre", &kvs, true, "tokenizer.ggml.pre = 'martian'");
}

#[test]
fn sentencepiece_vocabulary_is_unsupported_and_named() {
    let kvs = with("tokenizer.ggml.model", Value::Str("llama"));
    expect_error("spm", &kvs, true, "tokenizer.ggml.model = 'llama'");
}

#[test]
fn token_type_count_must_match_tokens() {
    let kvs = with("tokenizer.ggml.token_type", Value::I32s(vec![1, 1, 1]));
    expect_error(
        "types",
        &kvs,
        false,
        "tokenizer.ggml.token_type has 3 entries for 4 tokens",
    );
}

#[test]
fn special_ids_must_be_in_the_vocabulary() {
    let kvs = with("tokenizer.ggml.bos_token_id", Value::U32(4));
    expect_error("bos", &kvs, false, "tokenizer.ggml.bos_token_id = 4");
    let kvs = with("tokenizer.ggml.eot_token_id", Value::U32(99));
    expect_error("eot", &kvs, false, "tokenizer.ggml.eot_token_id = 99");
}

#[test]
fn adding_bos_needs_a_bos_id() {
    let mut kvs = with("tokenizer.ggml.add_bos_token", Value::Bool(true));
    kvs.retain(|(k, _)| *k != "tokenizer.ggml.bos_token_id");
    expect_error(
        "add_bos",
        &kvs,
        false,
        "tokenizer.ggml.add_bos_token is true",
    );
}

#[test]
fn merges_must_be_pairs_of_tokens() {
    let kvs = with("tokenizer.ggml.merges", Value::Strs(vec!["ab"]));
    expect_error("merge_pair", &kvs, false, "tokenizer.ggml.merges[0] = 'ab'");
    let kvs = with("tokenizer.ggml.merges", Value::Strs(vec!["a c"]));
    expect_error("merge_vocab", &kvs, false, "tokenizer.ggml.merges");
}

#[test]
fn duplicate_tokens_are_bad_file() {
    let kvs = with(
        "tokenizer.ggml.tokens",
        Value::Strs(vec!["a", "b", "ab", "a"]),
    );
    expect_error("dup", &kvs, false, "'a' at ids 0 and 3");
}
