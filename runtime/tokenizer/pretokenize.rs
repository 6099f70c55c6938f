//! Steps 2-4 of the parent module for a GGUF file: llama.cpp's pre-tokenizer regexes, chosen
//! by `tokenizer.ggml.pre` (`llm_tokenizer_bpe`), then the GPT-2 byte mapping and BPE.
//!
//! Each regex splits every piece the previous one left, matches and gaps alike (HF `Split` with
//! `Isolated`). llama.cpp runs the gpt2, llama3 and qwen2 patterns through hand-written scanners
//! and the rest through std::regex; all of them implement these regexes' standard meaning, which
//! fancy-regex gives us directly.

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

use super::vocab::KEY_MERGES;
use crate::error::{Error, Result};
use crate::file::gguf::GgufFile;

const KEY_PRE: &str = "tokenizer.ggml.pre";

/// GPT-2's pattern (llama.cpp `unicode_regex_split_custom_gpt2`).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's pattern with `(?i:'s|...)` spelled out as llama.cpp does, so that only ASCII case
/// folds (Unicode `(?i)` would also let `'ſ` and `'K` through).
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's pattern: Llama 3's with single digits.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// DeepSeek LLM (and V2): newlines alone, then words of cased letters, then ASCII and CJK
/// punctuation runs, trailing spaces, CJK/Hangul runs, digit runs. The classes are llama.cpp's,
/// code point for code point (escaped, because several are singletons that Unicode
/// normalization would turn into other letters: U+2126 OHM, U+212A KELVIN, U+1FBE).
///
/// One change: llama.cpp turns every non-ASCII whitespace character into U+000B before these
/// (std::wregex) patterns run, so the white space inside the literal ranges (U+3000 in the
/// punctuation class; U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F and U+3000 in
/// U+0800..U+4E00) never matches them there. `&&\S` removes it here too.
const DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\
     \u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\
     \u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\
     \u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\
     \u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\
     \u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\
     \u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\
     \u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\
     \u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\
     \u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\
     \u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\
     \u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\
     \u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\
     \u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\
     \u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\
     \u{1E900}-\u{1E943}]+",
    "\\s?[[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]&&\\S]+",
    "\\s+$",
    "[[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]&&\\S]+",
    "\\p{N}+",
];

/// One `tokenizer.ggml.pre` value: its regexes and the flags llama.cpp sets with it.
pub(super) struct PreTokenizer {
    names: &'static [&'static str],
    regexes: &'static [&'static str],
    /// A word that is already a token is not merged (HF `ignore_merges`).
    ignore_merges: bool,
    /// Decoding removes spaces before punctuation and some contractions (HF
    /// `clean_up_tokenization_spaces`); llama.cpp's default for BPE, turned off per model.
    pub(super) clean_spaces: bool,
    /// `add_bos` when the file has no `tokenizer.ggml.add_bos_token`.
    pub(super) add_bos: bool,
}

/// The pre-tokenizers checked against llama.cpp's test vectors (tests/tokenizer_vectors.rs);
/// names on one row are aliases in llama.cpp. Others are refused rather than guessed: a wrong
/// split gives valid-looking but different token ids.
const PRE_TOKENIZERS: &[PreTokenizer] = &[
    PreTokenizer {
        names: &["default"],
        regexes: &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
        ignore_merges: false,
        clean_spaces: true,
        add_bos: false,
    },
    PreTokenizer {
        names: &["gpt-2"],
        regexes: &[GPT2],
        ignore_merges: false,
        clean_spaces: true,
        add_bos: false,
    },
    PreTokenizer {
        names: &["llama-bpe", "llama3", "llama-v3"],
        regexes: &[LLAMA3],
        ignore_merges: true,
        clean_spaces: true,
        add_bos: true,
    },
    PreTokenizer {
        names: &["qwen2", "deepseek-r1-qwen"],
        regexes: &[QWEN2],
        ignore_merges: false,
        clean_spaces: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["smollm"],
        regexes: &[r"\p{N}", GPT2],
        ignore_merges: false,
        clean_spaces: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["deepseek-llm"],
        regexes: DEEPSEEK_LLM,
        ignore_merges: false,
        clean_spaces: false,
        add_bos: false,
    },
];

/// The pre-tokenizer for a file; a missing name means "default", as in llama.cpp (which warns
/// that generation quality will suffer; so do we).
pub(super) fn pre_tokenizer(file: &GgufFile) -> Result<&'static PreTokenizer> {
    let name = file.get_str(KEY_PRE)?.unwrap_or_else(|| {
        log::warn!(
            "{}: no {KEY_PRE}; using llama.cpp's 'default' pre-tokenizer, which likely \
             splits text differently from the model's own tokenizer",
            file.path().display()
        );
        "default"
    });
    let found = PRE_TOKENIZERS.iter().find(|p| p.names.contains(&name));
    found.ok_or_else(|| {
        let known: Vec<&str> = PRE_TOKENIZERS
            .iter()
            .flat_map(|p| p.names)
            .copied()
            .collect();
        let known = known.join(", ");
        Error::unsupported(
            file.path(),
            format!("{KEY_PRE} = '{name}' (known: {known})"),
        )
    })
}

/// Steps 2-4 of the parent module as a `tokenizers::Tokenizer`.
pub(super) fn build_bpe(
    file: &GgufFile,
    pre: &PreTokenizer,
    ids: tokenizers::models::bpe::Vocab,
    merges: Vec<(String, String)>,
) -> Result<tokenizers::Tokenizer> {
    let model = BPE::builder()
        .vocab_and_merges(ids, merges)
        .ignore_merges(pre.ignore_merges)
        .build()
        .map_err(|e| Error::bad_file(file.path(), format!("{KEY_MERGES}: {e}")))?;
    let mut steps = Vec::with_capacity(pre.regexes.len() + 1);
    for regex in pre.regexes {
        let split = Split::new(
            SplitPattern::Regex(regex.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| Error::unsupported(file.path(), format!("pre-tokenizer regex: {e}")))?;
        steps.push(PreTokenizerWrapper::from(split));
    }
    // Bytes become GPT-2's visible characters after splitting, as in llama.cpp.
    steps.push(ByteLevel::new(false, false, false).into());
    let mut bpe = tokenizers::Tokenizer::new(model);
    bpe.with_pre_tokenizer(Some(Sequence::new(steps)));
    Ok(bpe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer as _};

    fn split(regex: &str, text: &str) -> Vec<String> {
        let split = Split::new(
            SplitPattern::Regex(regex.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .unwrap();
        let mut pre = PreTokenizedString::from(text);
        split.pre_tokenize(&mut pre).unwrap();
        let splits = pre.get_splits(OffsetReferential::Original, OffsetType::Byte);
        splits.into_iter().map(|(s, _, _)| s.to_string()).collect()
    }

    #[test]
    fn deepseek_llm_classes_exclude_white_space_as_llama_cpp() {
        // llama.cpp sees U+3000 as \x0B here: not punctuation, so the match starts after it.
        let punctuation = DEEPSEEK_LLM[2];
        assert_eq!(
            split(punctuation, "\u{3000}\u{3000}\u{3001}"),
            ["\u{3000}", "\u{3000}\u{3001}"]
        );
        // ... and not CJK either, so an ideographic space parts Chinese words.
        let cjk = DEEPSEEK_LLM[4];
        assert_eq!(split(cjk, "中\u{3000}文"), ["中", "\u{3000}", "文"]);
    }
}
