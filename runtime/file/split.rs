//! Split GGUF files, as llama.cpp's `llama-gguf-split` writes them: a model in N files
//! named `<prefix>-00001-of-0000N.gguf` … `<prefix>-0000N-of-0000N.gguf`, each a whole
//! GGUF file with its own tensor table and data. The first holds the model's metadata;
//! every part holds `split.no` (0-based), `split.count` and `split.tensors.count` (the
//! model's total; llama.cpp's `LLM_KV_SPLIT_*`).

use std::path::{Path, PathBuf};

pub const KEY_NO: &str = "split.no";
pub const KEY_COUNT: &str = "split.count";
pub const KEY_TENSORS: &str = "split.tensors.count";

/// The part names' tail: `-` five digits `-of-` five digits (`%05d`, llama_split_path).
const TAIL: usize = "-00001-of-00003".len();

/// What a part's file name says: (prefix, 1-based number, count), or None when the name
/// does not follow the pattern.
pub fn parse_name(path: &Path) -> Option<(String, u32, u32)> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".gguf")?;
    if stem.len() < TAIL || !stem.is_char_boundary(stem.len() - TAIL) {
        return None;
    }
    let (prefix, tail) = stem.split_at(stem.len() - TAIL);
    let digits = |s: &str| -> Option<u32> {
        (s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let rest = tail.strip_prefix('-')?;
    let (no, count) = rest.split_once("-of-")?;
    Some((prefix.to_string(), digits(no)?, digits(count)?))
}

/// The path of part `no` (1-based) of `count` beside `path`, with `prefix`.
pub fn part_path(path: &Path, prefix: &str, no: u32, count: u32) -> PathBuf {
    path.with_file_name(format!("{prefix}-{no:05}-of-{count:05}.gguf"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_llama_split_path() {
        let p = Path::new("/m/DeepSeek-R1-UD-IQ1_S-00002-of-00003.gguf");
        assert_eq!(
            parse_name(p),
            Some(("DeepSeek-R1-UD-IQ1_S".to_string(), 2, 3))
        );
        assert_eq!(
            part_path(p, "DeepSeek-R1-UD-IQ1_S", 1, 3),
            Path::new("/m/DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf")
        );
        for not_split in [
            "model.gguf",
            "model-1-of-3.gguf",
            "model-00001-of-00003.bin",
            "-00001-of-0003x.gguf",
            "ä-0001-of-00003.gguf",
        ] {
            assert_eq!(parse_name(Path::new(not_split)), None, "{not_split}");
        }
    }
}
