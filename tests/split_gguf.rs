//! Split GGUF models (`<prefix>-00001-of-00003.gguf` …), as llama.cpp's `llama-gguf-split
//! --split --split-max-tensors N` writes them (tests/fixtures/models/split/, made by
//! tests/fixtures/README.md's recipe): opened from any part, they run bitwise as their
//! unsplit file does — dense weights resident or streamed from the parts, MoE experts
//! streamed from whichever part holds them — and broken sets are refused by name.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_bitwise, fixture, greedy_logits, load};
use edgeseek::{Error, ExpertBudget, GgufFile, LoadOptions};

const PROMPT: [u32; 6] = [1, 17, 305, 42, 9, 230];

fn split_part(name: &str, no: u32, count: u32) -> PathBuf {
    fixture(&format!("split/{name}-{no:05}-of-{count:05}.gguf"))
}

fn opts() -> LoadOptions {
    LoadOptions {
        n_ctx: Some(64),
        max_batch: 8,
        ..Default::default()
    }
}

/// The split model against its unsplit file: same tensors, bitwise the same logits.
fn same_as_unsplit(name: &str, count: u32, options: &LoadOptions) {
    let whole = fixture(&format!("{name}.gguf"));
    let want = greedy_logits(&mut load(&whole, options), &PROMPT, 6);
    for no in [1, count] {
        let part = split_part(name, no, count);
        let file = GgufFile::open(&part).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.part_paths().count() as u32, count, "{name}");
        assert_eq!(
            file.path(),
            split_part(name, 1, count),
            "{name}: named by its first part"
        );
        let unsplit = GgufFile::open(&whole).unwrap();
        assert_eq!(file.tensors().len(), unsplit.tensors().len(), "{name}");
        for t in unsplit.tensors() {
            assert_eq!(
                file.tensor_bytes(&t.name),
                unsplit.tensor_bytes(&t.name),
                "{name}: tensor {}",
                t.name
            );
        }
        let got = greedy_logits(&mut load(&part, options), &PROMPT, 6);
        assert_bitwise(
            &want,
            &got,
            &format!("{name}: opened from part {no} of {count}"),
        );
    }
}

#[test]
fn a_dense_split_runs_as_its_unsplit_file() {
    same_as_unsplit("qwen2-Q8_0", 3, &opts());
}

#[test]
fn a_dense_split_streams_its_layers_from_every_part() {
    let size = std::fs::metadata(fixture("qwen2-Q8_0.gguf")).unwrap().len();
    let small = LoadOptions {
        max_resident_bytes: Some(size * 4 / 10),
        ..opts()
    };
    let first = split_part("qwen2-Q8_0", 1, 3);
    let model = load(&first, &small);
    let streamed = model.plan().streamed_layers.clone();
    drop(model);
    // Some streamed layer's matrices live past the first part.
    let file = GgufFile::open(&first).unwrap();
    let later = file.tensors().iter().any(|t| {
        t.part > 0
            && streamed
                .iter()
                .any(|l| t.name.starts_with(&format!("blk.{l}.")))
    });
    assert!(later, "no streamed layer in parts 2-3: {streamed:?}");
    same_as_unsplit("qwen2-Q8_0", 3, &small);
}

#[test]
fn a_moe_split_streams_experts_from_every_part() {
    let min = LoadOptions {
        expert_cache_bytes: ExpertBudget::Min,
        ..opts()
    };
    same_as_unsplit("deepseek2-v3-Q4_K_M", 3, &min);
    same_as_unsplit("deepseek2-v3-Q4_K_M", 3, &opts());
}

// ---- Broken sets, made from the fixture's parts in a scratch directory ----

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("edgeseek-split-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    /// Copies `from` into the scratch directory as `name`.
    fn put(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.0.join(name);
        std::fs::copy(from, &to).unwrap();
        to
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_err(path: &Path) -> Error {
    GgufFile::open(path).expect_err("a broken split must be refused")
}

#[test]
fn a_missing_part_is_named() {
    let s = Scratch::new("missing");
    let first = s.put(&split_part("qwen2-Q8_0", 1, 3), "m-00001-of-00003.gguf");
    s.put(&split_part("qwen2-Q8_0", 3, 3), "m-00003-of-00003.gguf");
    let err = open_err(&first);
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Io { .. })
            && msg.contains("m-00002-of-00003.gguf")
            && msg.contains("part 2 of the 3-part model"),
        "{msg}"
    );
}

#[test]
fn a_part_of_another_split_is_refused() {
    // Part 2 of a 2-part split of the same model, where part 2 of 3 belongs.
    let s = Scratch::new("other");
    let first = s.put(&split_part("qwen2-Q8_0", 1, 3), "m-00001-of-00003.gguf");
    s.put(&split_part("qwen2-Q8_0-2", 2, 2), "m-00002-of-00003.gguf");
    s.put(&split_part("qwen2-Q8_0", 3, 3), "m-00003-of-00003.gguf");
    let msg = open_err(&first).to_string();
    assert!(
        msg.contains("m-00002-of-00003.gguf") && msg.contains("a part of another split"),
        "{msg}"
    );
}

#[test]
fn a_tensor_in_two_parts_is_refused() {
    // The same part twice: its split.no is wrong for the second place, so patch it.
    let s = Scratch::new("twice");
    let first = s.put(&split_part("qwen2-Q8_0", 1, 3), "m-00001-of-00003.gguf");
    s.put(&split_part("qwen2-Q8_0", 2, 3), "m-00002-of-00003.gguf");
    let third = s.put(&split_part("qwen2-Q8_0", 2, 3), "m-00003-of-00003.gguf");
    patch_u16_value(&third, "split.no", 2);
    let msg = open_err(&first).to_string();
    assert!(
        msg.contains("m-00003-of-00003.gguf") && msg.contains("is also in part 2"),
        "{msg}"
    );
}

#[test]
fn a_tensor_count_that_disagrees_is_refused() {
    let s = Scratch::new("count");
    let first = s.put(&split_part("qwen2-Q8_0", 1, 3), "m-00001-of-00003.gguf");
    s.put(&split_part("qwen2-Q8_0", 2, 3), "m-00002-of-00003.gguf");
    s.put(&split_part("qwen2-Q8_0", 3, 3), "m-00003-of-00003.gguf");
    let n = GgufFile::open(&split_part("qwen2-Q8_0", 1, 3))
        .unwrap()
        .tensors()
        .len();
    patch_i32_value(&first, "split.tensors.count", n as i32 + 1);
    let msg = open_err(&first).to_string();
    assert!(
        msg.contains(&format!("hold {n} tensors")) && msg.contains("split.tensors.count"),
        "{msg}"
    );
}

#[test]
fn a_name_that_disagrees_with_the_split_is_refused() {
    let s = Scratch::new("misnamed");
    // Named as part 7 of 3, and as part 1 of 4, while it holds split.count 3.
    let beyond = s.put(&split_part("qwen2-Q8_0", 1, 3), "m-00007-of-00003.gguf");
    let msg = open_err(&beyond).to_string();
    assert!(
        msg.contains("m-00007-of-00003.gguf") && msg.contains("part 7 of 3"),
        "{msg}"
    );
    let of_four = s.put(&split_part("qwen2-Q8_0", 1, 3), "m-00001-of-00004.gguf");
    let msg = open_err(&of_four).to_string();
    assert!(
        msg.contains("one of 4 parts") && msg.contains("split.count 3"),
        "{msg}"
    );
}

#[test]
fn a_part_without_its_name_cannot_find_the_others() {
    let s = Scratch::new("renamed");
    let renamed = s.put(&split_part("qwen2-Q8_0", 1, 3), "model.gguf");
    let msg = open_err(&renamed).to_string();
    assert!(
        msg.contains("model.gguf") && msg.contains("-of-00003.gguf"),
        "{msg}"
    );
}

#[test]
fn the_examples_take_the_first_part_unchanged() {
    let run = |model: &Path| {
        common::generate_json(&[
            "--model",
            model.to_str().unwrap(),
            "--prompt-ids",
            "1,17,305,42",
            "--max-tokens",
            "6",
        ])
    };
    let split = run(&split_part("qwen2-Q8_0", 1, 3));
    let whole = run(&fixture("qwen2-Q8_0.gguf"));
    assert_eq!(common::ids(&split["ids"]), common::ids(&whole["ids"]));
    // The file size reported is the model's: every part's bytes.
    let parts: u64 = (1..=3)
        .map(|no| {
            std::fs::metadata(split_part("qwen2-Q8_0", no, 3))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(split["model_file_bytes"].as_u64(), Some(parts));
    let size = std::fs::metadata(fixture("qwen2-Q8_0.gguf")).unwrap().len();
    assert_eq!(whole["model_file_bytes"].as_u64(), Some(size));
}

/// Sets the value of the metadata key `key`, which holds a u16 (type 2), in a copy.
fn patch_u16_value(path: &Path, key: &str, v: u16) {
    patch(path, key, 2, &v.to_le_bytes());
}

/// Sets the value of the metadata key `key`, which holds an i32 (type 5), in a copy.
fn patch_i32_value(path: &Path, key: &str, v: i32) {
    patch(path, key, 5, &v.to_le_bytes());
}

fn patch(path: &Path, key: &str, type_id: u32, value: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    // A key is written as u64 length + bytes, then the u32 value type, then the value.
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{}: no key {key}", path.display()));
    let ty = at + needle.len();
    assert_eq!(
        u32::from_le_bytes(bytes[ty..ty + 4].try_into().unwrap()),
        type_id,
        "{key}'s type"
    );
    bytes[ty + 4..ty + 4 + value.len()].copy_from_slice(value);
    std::fs::write(path, bytes).unwrap();
}
