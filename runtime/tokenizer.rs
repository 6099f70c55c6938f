//! Text to token ids and back, the way llama.cpp does it for a GGUF vocabulary
//! (llama-vocab.cpp, llama-vocab `impl::load`, `tokenize` and `detokenize`).
//!
//! Encoding is llama.cpp's pipeline for `tokenizer.ggml.model = "gpt2"` (byte-level BPE):
//! ```text
//! text --(1) special tokens matched whole--> [text | token id]*
//!      --(2) pre-tokenizer regexes named by tokenizer.ggml.pre--> words
//!      --(3) GPT-2 byte-to-char mapping--> (4) BPE merges by rank--> ids
//! ```
//! Steps 2-4 are a `tokenizers::Tokenizer` (Split pre-tokenizers, ByteLevel, BPE). Step 1 is
//! ours: llama.cpp matches special tokens longest-first over the whole text (HF matches
//! leftmost-longest), and whether control tokens count is a per-call choice (`parse_special`),
//! which `tokenizers` only has as a mutable setting on the whole tokenizer.
//!
//! Decoding concatenates each token's bytes (llama.cpp `token_to_piece`, special tokens
//! rendered) from a table built at load, then applies llama.cpp's space clean-up where the
//! pre-tokenizer asks for it.
//!
//! A Hugging Face model directory gives the same `Tokenizer` (`from_hf_dir`, in hf.rs): its
//! tokenizer.json stands in for steps 2-4, and the rest is shared.

mod hf;

use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::error::{Error, Result};
use crate::file::gguf::{GgufFile, MetaValue};

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
const KEY_MERGES: &str = "tokenizer.ggml.merges";
const KEY_BOS: &str = "tokenizer.ggml.bos_token_id";
const KEY_EOS: &str = "tokenizer.ggml.eos_token_id";
const KEY_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
const KEY_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers: llama.cpp's regex list per `tokenizer.ggml.pre` (`llm_tokenizer_bpe`), each
// regex splitting every piece the previous one left, matches and gaps alike (HF `Split` with
// `Isolated`). llama.cpp runs the gpt2, llama3 and qwen2 patterns through hand-written scanners
// and the rest through std::regex; all of them implement these regexes' standard meaning, which
// fancy-regex gives us directly.

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
struct PreTokenizer {
    names: &'static [&'static str],
    regexes: &'static [&'static str],
    /// A word that is already a token is not merged (HF `ignore_merges`).
    ignore_merges: bool,
    /// Decoding removes spaces before punctuation and some contractions (HF
    /// `clean_up_tokenization_spaces`); llama.cpp's default for BPE, turned off per model.
    clean_spaces: bool,
    /// `add_bos` when the file has no `tokenizer.ggml.add_bos_token`.
    add_bos: bool,
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
fn pre_tokenizer(file: &GgufFile) -> Result<&'static PreTokenizer> {
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

// ---------------------------------------------------------------------------------------------
// Token types and the special ids llama.cpp derives from them.

/// `tokenizer.ggml.token_type` (llama.cpp `llama_token_type`), after llama.cpp's fix-ups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
    Undefined,
}

impl Kind {
    fn from_gguf(t: i64) -> Kind {
        match t {
            1 => Kind::Normal,
            2 => Kind::Unknown,
            3 => Kind::Control,
            4 => Kind::UserDefined,
            5 => Kind::Unused,
            6 => Kind::Byte,
            _ => Kind::Undefined,
        }
    }

    /// Matched whole in text before BPE (llama.cpp `cache_special_tokens`); control and
    /// unknown ones only when the caller parses special tokens.
    fn is_special(self) -> bool {
        matches!(self, Kind::Control | Kind::UserDefined | Kind::Unknown)
    }
}

/// Tokens that llama.cpp finds by their text when the file gives no id, and then treats as
/// control tokens (`impl::load`, "auto-detect special tokens by text"). Where several texts
/// exist llama.cpp takes the first its hash map yields; we take the lowest id.
struct Detected {
    /// Metadata keys that name the id; a later key overrides an earlier one.
    keys: &'static [&'static str],
    texts: &'static [&'static str],
    /// The token ends generation.
    eog: bool,
}

const DETECTED: &[Detected] = &[
    Detected {
        keys: &["tokenizer.ggml.eot_token_id"],
        texts: &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "<|end_of_text|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>",
            "<end_of_utterance>",
        ],
        eog: true,
    },
    Detected {
        keys: &["tokenizer.ggml.eom_token_id"],
        texts: &["<|eom_id|>"],
        eog: true,
    },
    Detected {
        keys: &[
            "tokenizer.ggml.fim_pre_token_id",
            "tokenizer.ggml.prefix_token_id",
        ],
        texts: &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<\u{FF5C}fim\u{2581}begin\u{FF5C}>",
            "<PRE>",
            "\u{2581}<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        ],
        eog: false,
    },
    Detected {
        keys: &[
            "tokenizer.ggml.fim_suf_token_id",
            "tokenizer.ggml.suffix_token_id",
        ],
        texts: &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<\u{FF5C}fim\u{2581}hole\u{FF5C}>",
            "<SUF>",
            "\u{2581}<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        ],
        eog: false,
    },
    Detected {
        keys: &[
            "tokenizer.ggml.fim_mid_token_id",
            "tokenizer.ggml.middle_token_id",
        ],
        texts: &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<\u{FF5C}fim\u{2581}end\u{FF5C}>",
            "<MID>",
            "\u{2581}<MID>",
            "<|code_middle|>",
            "<|middle|>",
        ],
        eog: false,
    },
    Detected {
        keys: &["tokenizer.ggml.fim_pad_token_id"],
        texts: &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
        eog: true,
    },
    Detected {
        keys: &["tokenizer.ggml.fim_rep_token_id"],
        texts: &[
            "<|fim_repo|>",
            "<|repo_name|>",
            "<fim-repo>",
            "<REPO>",
            "<reponame>",
        ],
        eog: true,
    },
    Detected {
        keys: &["tokenizer.ggml.fim_sep_token_id"],
        texts: &["<|file_sep|>"],
        eog: true,
    },
];

/// Token texts that end generation in llama.cpp whatever the file says (`special_eog_ids`).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>",
    "[e~[",
];

/// The vocabulary as llama.cpp holds it: texts by id and ids by text, kinds after its fix-ups.
struct Vocab<'f> {
    /// The file the tokens come from, for errors.
    path: &'f Path,
    texts: Vec<String>,
    /// Handed to the BPE model once the special tokens are known.
    ids: tokenizers::models::bpe::Vocab,
    kinds: Vec<Kind>,
}

impl Vocab<'_> {
    fn n(&self) -> u32 {
        self.texts.len() as u32 // GgufFile caps arrays far below u32::MAX
    }

    fn bad(&self, problem: String) -> Error {
        Error::bad_file(self.path, problem)
    }

    /// The id a metadata key names, if any; BadFile naming the key when out of range.
    fn id_at(&self, file: &GgufFile, key: &str) -> Result<Option<u32>> {
        match file.get_u32(key)? {
            Some(id) if id >= self.n() => Err(self.bad(format!(
                "{key} = {id}, but the vocabulary has {} tokens",
                self.n()
            ))),
            id => Ok(id),
        }
    }

    /// The lowest id among tokens with these texts.
    fn find(&self, texts: &[&str]) -> Option<u32> {
        texts.iter().filter_map(|t| self.ids.get(*t)).copied().min()
    }
}

/// Reads tokens and their types; empty and duplicate texts as llama.cpp handles them.
fn read_vocab(file: &GgufFile) -> Result<Vocab<'_>> {
    let bad = |problem: String| Error::bad_file(file.path(), problem);
    let tokens = file
        .get_array(KEY_TOKENS)?
        .ok_or_else(|| bad(format!("metadata key '{KEY_TOKENS}' is missing")))?;
    let mut texts = Vec::with_capacity(tokens.len());
    let mut ids = tokenizers::models::bpe::Vocab::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        let text = token.as_str().ok_or_else(|| {
            bad(format!(
                "{KEY_TOKENS}[{i}] is {}, expected a string",
                token.type_name()
            ))
        })?;
        // llama.cpp names empty tokens so that ids and texts stay one-to-one.
        let text = if text.is_empty() {
            format!("[EMPTY_{i}]")
        } else {
            text.to_string()
        };
        if let Some(first) = ids.insert(text.clone(), i as u32) {
            return Err(bad(format!(
                "{KEY_TOKENS} holds '{text}' at ids {first} and {i}"
            )));
        }
        texts.push(text);
    }
    let kinds = match file.get_array(KEY_TOKEN_TYPE)? {
        None => vec![Kind::Normal; texts.len()],
        Some(types) if types.len() != texts.len() => {
            return Err(bad(format!(
                "{KEY_TOKEN_TYPE} has {} entries for {} tokens in {KEY_TOKENS}",
                types.len(),
                texts.len()
            )))
        }
        Some(types) => types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.as_i64().map(Kind::from_gguf).ok_or_else(|| {
                    bad(format!(
                        "{KEY_TOKEN_TYPE}[{i}] is {}, expected an integer",
                        t.type_name()
                    ))
                })
            })
            .collect::<Result<_>>()?,
    };
    Ok(Vocab {
        path: file.path(),
        texts,
        ids,
        kinds,
    })
}

/// Special ids and end-of-generation tokens.
struct SpecialIds {
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    /// Sorted, no duplicates.
    eog: Vec<u32>,
}

/// Reads the special ids, finds the end-of-generation set, and changes token kinds on the way
/// as llama.cpp does.
fn read_special_ids(file: &GgufFile, vocab: &mut Vocab, pre: &PreTokenizer) -> Result<SpecialIds> {
    // llama.cpp's defaults for BPE vocabularies, when the keys are absent: id 11 for both.
    let default = (11 < vocab.n()).then_some(11);
    let bos = vocab.id_at(file, KEY_BOS)?.or(default);
    let eos = vocab.id_at(file, KEY_EOS)?.or(default);
    let add_bos = file.get_bool(KEY_ADD_BOS)?.unwrap_or(pre.add_bos);
    let add_eos = file.get_bool(KEY_ADD_EOS)?.unwrap_or(false);
    for (add, key, id, id_key) in [
        (add_bos, KEY_ADD_BOS, bos, KEY_BOS),
        (add_eos, KEY_ADD_EOS, eos, KEY_EOS),
    ] {
        if add && id.is_none() {
            return Err(vocab.bad(format!("{key} is true, but {id_key} is not set")));
        }
    }
    let eog = end_of_generation(vocab, eos, Some(file))?;
    Ok(SpecialIds {
        bos,
        eos,
        add_bos,
        add_eos,
        eog,
    })
}

/// llama.cpp's end-of-generation set: EOS, the `DETECTED` tokens that end generation (by
/// metadata id in `file`, else by text) and the `EOG_TEXTS`. Tokens found by text become
/// control tokens, as in llama.cpp. Sorted, no duplicates.
fn end_of_generation(
    vocab: &mut Vocab,
    eos: Option<u32>,
    file: Option<&GgufFile>,
) -> Result<Vec<u32>> {
    let mut eog: Vec<u32> = eos.into_iter().collect();
    for detected in DETECTED {
        let mut id = None;
        if let Some(file) = file {
            for key in detected.keys {
                id = vocab.id_at(file, key)?.or(id);
            }
        }
        if id.is_none() {
            id = vocab.find(detected.texts);
            if let Some(found) = id {
                vocab.kinds[found as usize] = Kind::Control;
            }
        }
        if detected.eog {
            eog.extend(id);
        }
    }
    for text in EOG_TEXTS {
        if let Some(&id) = vocab.ids.get(*text) {
            vocab.kinds[id as usize] = Kind::Control;
            eog.push(id);
        }
    }
    eog.sort_unstable();
    eog.dedup();
    llama_cpp_model_fixups(vocab, &mut eog);
    Ok(eog)
}

/// Per-model exceptions llama.cpp hard-codes once the end-of-generation set is built.
fn llama_cpp_model_fixups(vocab: &mut Vocab, eog: &mut Vec<u32>) {
    // gpt-oss: these markers are always rendered, so they are plain user-defined text.
    for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
        if let Some(id) = vocab.find(&[text]) {
            vocab.kinds[id as usize] = Kind::UserDefined;
        }
    }
    let eog_has = |text: &str| vocab.ids.get(text).is_some_and(|id| eog.contains(id));
    // o200k_harmony and solar-open: "<|end|>" ends a message, not generation.
    let call = eog_has("<|call|>") || eog_has("<|calls|>");
    let end_is_not_eog =
        eog_has("<|end|>") && call && (eog_has("<|return|>") || eog_has("<|flush|>"));
    // gemma4 and paddleocr: "</s>" is not the end when "<|tool_response>" is.
    let s_is_not_eog = eog_has("</s>") && eog_has("<|tool_response>");
    if end_is_not_eog {
        let id = vocab.ids["<|end|>"];
        eog.retain(|&e| e != id);
        vocab.kinds[id as usize] = Kind::UserDefined;
    }
    if s_is_not_eog {
        let id = vocab.ids["</s>"];
        eog.retain(|&e| e != id);
        vocab.kinds[id as usize] = Kind::Normal;
    }
}

/// `tokenizer.ggml.merges`, "left right" in rank order. llama.cpp splits each at the first
/// space after the first byte, so a left part may itself be a space in vocabularies that are
/// not byte-level; that the parts and their join are tokens is checked by the BPE model.
fn read_merges(file: &GgufFile) -> Result<Vec<(String, String)>> {
    let bad = |problem: String| Error::bad_file(file.path(), problem);
    let merges = file
        .get_array(KEY_MERGES)?
        .ok_or_else(|| bad(format!("metadata key '{KEY_MERGES}' is missing")))?;
    let split = |(i, merge): (usize, &MetaValue)| {
        let text = merge.as_str().ok_or_else(|| {
            bad(format!(
                "{KEY_MERGES}[{i}] is {}, expected a string",
                merge.type_name()
            ))
        })?;
        let space = text.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1);
        match space.map(|at| (&text[..at], &text[at + 1..])) {
            Some((left, right)) if !right.is_empty() => Ok((left.to_string(), right.to_string())),
            _ => Err(bad(format!(
                "{KEY_MERGES}[{i}] = '{text}' is not two tokens separated by a space"
            ))),
        }
    };
    merges.iter().enumerate().map(split).collect()
}

// ---------------------------------------------------------------------------------------------
// Bytes per token, for decoding and streaming.

/// GPT-2's byte-level alphabet: bytes that print as Latin-1 stand for themselves, the other 68
/// (controls, space, DEL, NBSP, soft hyphen) are moved to U+0100.. in byte order.
const fn prints_as_itself(b: u32) -> bool {
    matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The bytes standing for U+0100, U+0101, ... in the byte-level alphabet.
const MOVED_BYTES: [u8; 68] = {
    let mut moved = [0u8; 68];
    let (mut b, mut n) = (0u32, 0usize);
    while b < 256 {
        if !prints_as_itself(b) {
            moved[n] = b as u8;
            n += 1;
        }
        b += 1;
    }
    moved
};

fn byte_of_char(c: char) -> Option<u8> {
    let c = c as u32;
    if prints_as_itself(c) {
        return Some(c as u8);
    }
    let moved = c.checked_sub(0x100)?;
    MOVED_BYTES.get(moved as usize).copied()
}

/// Appends what a token stands for: llama.cpp `token_to_piece(id, special = true)` for BPE.
fn push_piece(text: &str, kind: Kind, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    match kind {
        Kind::Control | Kind::Unknown | Kind::UserDefined => out.extend_from_slice(text.as_bytes()),
        Kind::Normal => {
            for c in text.chars() {
                match byte_of_char(c) {
                    Some(b) => out.push(b),
                    // Not in the byte-level alphabet: llama.cpp marks it rather than drop it.
                    None => {
                        out.extend_from_slice(b"[UNK_BYTE_0x");
                        let mut utf8 = [0u8; 4];
                        for b in c.encode_utf8(&mut utf8).bytes() {
                            out.extend_from_slice(format!("{b:02x}").as_bytes());
                        }
                        out.extend_from_slice(text.as_bytes());
                        out.push(b']');
                    }
                }
            }
        }
        Kind::Byte => {
            let hex = text.strip_prefix("<0x").and_then(|t| t.strip_suffix('>'));
            let byte = hex
                .filter(|h| h.len() == 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.ok_or_else(|| format!("byte token '{text}' is not <0xXX>"))?);
        }
        // llama.cpp renders nothing for these.
        Kind::Unused | Kind::Undefined => {}
    }
    Ok(())
}

/// Every token's bytes in one buffer: token `i` is `bytes[ends[i - 1]..ends[i]]`.
struct Pieces {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Pieces {
    fn new(vocab: &Vocab) -> Result<Pieces> {
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(vocab.texts.len());
        for (id, (text, &kind)) in vocab.texts.iter().zip(&vocab.kinds).enumerate() {
            push_piece(text, kind, &mut bytes)
                .map_err(|problem| vocab.bad(format!("{KEY_TOKENS}[{id}]: {problem}")))?;
            ends.push(bytes.len());
        }
        Ok(Pieces { bytes, ends })
    }

    fn get(&self, id: u32) -> Option<&[u8]> {
        let id = id as usize;
        let end = *self.ends.get(id)?;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        Some(&self.bytes[start..end])
    }
}

/// llama.cpp's `clean_spaces` pass of `detokenize` (HF `clean_up_tokenization_spaces`), with
/// its exact index logic: " ?", " !", " .", " ," lose the space; a lone apostrophe between
/// spaces loses both (and llama.cpp overwrites the second with NUL, which the next step then
/// sees as its previous byte); " 's", " 'm", " 're", " 've" lose the space.
fn clean_spaces(text: &mut Vec<u8>) {
    let mut total = usize::from(!text.is_empty());
    for i in 1..text.len() {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);

    let n = text.len();
    let mut total = usize::from(n > 0);
    let mut i = 1;
    while i < n {
        let x = text[i];
        if x == b'\'' && i + 1 < n && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);

    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let next = (text[i + 1], text.get(i + 2).copied());
            if matches!(next, (b's' | b'm', _) | (b'r' | b'v', Some(b'e'))) {
                total -= 1;
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

// ---------------------------------------------------------------------------------------------
// Special tokens matched whole in text.

/// A token matched as a whole in text before BPE (llama.cpp `cache_special_tokens`).
struct Special {
    text: String,
    id: u32,
    /// Control and unknown tokens are matched only when the caller parses special tokens;
    /// user-defined ones always.
    control: bool,
}

/// Longest first, as llama.cpp tries them.
fn special_tokens(vocab: &Vocab) -> Vec<Special> {
    let mut specials: Vec<Special> = (0..vocab.n())
        .filter(|&id| vocab.kinds[id as usize].is_special())
        .map(|id| Special {
            text: vocab.texts[id as usize].clone(),
            id,
            control: vocab.kinds[id as usize] != Kind::UserDefined,
        })
        .collect();
    specials.sort_by_key(|s| std::cmp::Reverse(s.text.len()));
    specials
}

#[derive(Debug, PartialEq)]
enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

/// llama.cpp `tokenizer_st_partition`: each special token in turn, longest first, cuts every
/// text fragment at each of its occurrences.
fn partition<'t>(text: &'t str, specials: &[Special], parse_special: bool) -> Vec<Fragment<'t>> {
    let mut fragments = Vec::new();
    if !text.is_empty() {
        fragments.push(Fragment::Text(text));
    }
    for special in specials.iter().filter(|s| parse_special || !s.control) {
        let occurs = |f: &Fragment| matches!(f, Fragment::Text(t) if t.contains(&*special.text));
        if !fragments.iter().any(occurs) {
            continue;
        }
        let mut cut = Vec::with_capacity(fragments.len() + 2);
        for fragment in fragments {
            let Fragment::Text(mut rest) = fragment else {
                cut.push(fragment);
                continue;
            };
            while let Some(at) = rest.find(&*special.text) {
                if at > 0 {
                    cut.push(Fragment::Text(&rest[..at]));
                }
                cut.push(Fragment::Token(special.id));
                rest = &rest[at + special.text.len()..];
            }
            if !rest.is_empty() {
                cut.push(Fragment::Text(rest));
            }
        }
        fragments = cut;
    }
    fragments
}

// ---------------------------------------------------------------------------------------------
// The tokenizer.

/// Text to token ids and back for one model, as llama.cpp does it for the same file.
pub struct Tokenizer {
    /// Pre-tokenizer regexes, byte-level mapping and BPE: the text between special tokens.
    bpe: tokenizers::Tokenizer,
    /// Longest first.
    specials: Vec<Special>,
    pieces: Pieces,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    /// Sorted.
    eog: Vec<u32>,
    clean_spaces: bool,
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*`). Byte-level BPE
    /// vocabularies (`tokenizer.ggml.model = "gpt2"`) with a pre-tokenizer checked against
    /// llama.cpp are supported; anything else is `Error::Unsupported`, naming what.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer> {
        check_model(file)?;
        let pre = pre_tokenizer(file)?;
        let mut vocab = read_vocab(file)?;
        let ids = read_special_ids(file, &mut vocab, pre)?;
        let merges = read_merges(file)?;
        let pieces = Pieces::new(&vocab)?;
        let bpe = build_bpe(file, pre, std::mem::take(&mut vocab.ids), merges)?;
        Ok(Tokenizer::assemble(
            bpe,
            &vocab,
            pieces,
            ids,
            pre.clean_spaces,
        ))
    }

    /// The parts both loaders share, once `vocab`'s kinds are final.
    fn assemble(
        bpe: tokenizers::Tokenizer,
        vocab: &Vocab,
        pieces: Pieces,
        ids: SpecialIds,
        clean_spaces: bool,
    ) -> Tokenizer {
        let SpecialIds {
            bos,
            eos,
            add_bos,
            add_eos,
            eog,
        } = ids;
        Tokenizer {
            bpe,
            pieces,
            bos,
            eos,
            add_bos,
            add_eos,
            eog,
            specials: special_tokens(vocab),
            clean_spaces,
        }
    }

    /// Token ids for `text`. `add_special` adds BOS (and EOS) where the file asks for them
    /// (`tokenizer.ggml.add_bos_token`, else llama.cpp's default for the pre-tokenizer);
    /// `parse_special` lets control-token text such as "<|im_start|>" become that token,
    /// where otherwise it is tokenized as plain text. User-defined tokens are always matched.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            ids.extend(self.bos);
        }
        for fragment in partition(text, &self.specials, parse_special) {
            match fragment {
                Fragment::Token(id) => ids.push(id),
                Fragment::Text(text) => {
                    let encoding = self.bpe.encode_fast(text, false).map_err(|e| {
                        Error::Invalid(format!("tokenizing {} bytes of text: {e}", text.len()))
                    })?;
                    ids.extend_from_slice(encoding.get_ids());
                }
            }
        }
        if add_special && self.add_eos {
            ids.extend(self.eos);
        }
        Ok(ids)
    }

    /// The text of `ids`, special tokens included, as llama.cpp's `common_detokenize(ids,
    /// special = true)` gives it (with its space clean-up where the pre-tokenizer uses it).
    /// Bytes that are not UTF-8, as where `ids` ends inside a character, become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut bytes = Vec::new();
        for &id in ids {
            let piece = self.pieces.get(id).ok_or_else(|| {
                Error::Invalid(format!(
                    "token id {id} in a vocabulary of {}",
                    self.n_vocab()
                ))
            })?;
            bytes.extend_from_slice(piece);
        }
        if self.clean_spaces {
            clean_spaces(&mut bytes);
        }
        Ok(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// The bytes token `id` stands for, which need not be whole UTF-8 characters: a streaming
    /// detokenizer holds them back until a character is complete. Empty for ids out of range.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.pieces.get(id).unwrap_or_default()
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether generation stops at `id`: llama.cpp's end-of-generation set (EOS, EOT, EOM,
    /// FIM pad/repo/separator, and tokens such as "<|im_end|>" or "<|endoftext|>" by text).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    pub fn n_vocab(&self) -> u32 {
        self.pieces.ends.len() as u32
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("n_vocab", &self.n_vocab())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .field("eog", &self.eog)
            .field("special_tokens", &self.specials.len())
            .finish_non_exhaustive()
    }
}

/// Only byte-level BPE (`gpt2`) vocabularies. SentencePiece (`llama`) merges by token score,
/// with byte fallback and space escaping: a different algorithm, not here yet.
fn check_model(file: &GgufFile) -> Result<()> {
    let unsupported = |what: String| Error::unsupported(file.path(), what);
    match file.get_str(KEY_MODEL)? {
        Some("gpt2") => Ok(()),
        Some("llama") => Err(unsupported(format!(
            "SentencePiece vocabulary ({KEY_MODEL} = 'llama'); only byte-level BPE ('gpt2')"
        ))),
        Some(model) => Err(unsupported(format!(
            "{KEY_MODEL} = '{model}'; only byte-level BPE ('gpt2')"
        ))),
        None => Err(Error::bad_file(
            file.path(),
            format!("metadata key '{KEY_MODEL}' is missing"),
        )),
    }
}

/// Steps 2-4 of the module comment as a `tokenizers::Tokenizer`.
fn build_bpe(
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

    #[test]
    fn tokenizer_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Tokenizer>();
    }

    #[test]
    fn byte_level_alphabet_round_trips_every_byte() {
        // GPT-2's bytes_to_unicode, written out: printable bytes as themselves, the rest
        // shifted to U+0100 + n in byte order.
        let mut shifted = 0;
        for b in 0..=255u8 {
            let c = if prints_as_itself(b.into()) {
                char::from(b)
            } else {
                shifted += 1;
                char::from_u32(0xFF + shifted).unwrap()
            };
            assert_eq!(byte_of_char(c), Some(b), "{c:?}");
        }
        assert_eq!(shifted, 68);
        assert_eq!(byte_of_char(' '), None);
        assert_eq!(byte_of_char('\u{144}'), None);
    }

    fn cleaned(text: &str) -> String {
        let mut bytes = text.as_bytes().to_vec();
        clean_spaces(&mut bytes);
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn clean_spaces_follows_llama_cpp() {
        assert_eq!(
            cleaned("Hello , world ! Why ? Yes ."),
            "Hello, world! Why? Yes."
        );
        assert_eq!(
            cleaned("it 's I 'm we 're they 've"),
            "it's I'm we're they've"
        );
        assert_eq!(cleaned("don 't I 'd we 'll"), "don 't I 'd we 'll");
        assert_eq!(cleaned("a ' b"), "a'b");
        // llama.cpp's NUL over the dropped space hides it from the next apostrophe.
        assert_eq!(cleaned("x ' ' y"), "x'' y");
        assert_eq!(cleaned(""), "");
        assert_eq!(cleaned(" ,"), ",");
    }

    fn special(text: &str, id: u32, control: bool) -> Special {
        Special {
            text: text.to_string(),
            id,
            control,
        }
    }

    #[test]
    fn partition_tries_longer_special_tokens_first() {
        // Leftmost-longest matching would take "ab" then text "cd"; llama.cpp takes "bcd".
        let specials = [special("bcd", 1, false), special("ab", 2, false)];
        let got = partition("abcdab", &specials, false);
        use Fragment::{Text, Token};
        assert_eq!(got, [Text("a"), Token(1), Token(2)]);
    }

    #[test]
    fn partition_leaves_control_tokens_as_text_unless_parsing_them() {
        let specials = [special("<c>", 7, true), special("<u>", 8, false)];
        use Fragment::{Text, Token};
        let text = "<c>x<u>";
        assert_eq!(partition(text, &specials, false), [Text("<c>x"), Token(8)]);
        assert_eq!(
            partition(text, &specials, true),
            [Token(7), Text("x"), Token(8)]
        );
        assert_eq!(partition("", &specials, true), []);
    }

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
