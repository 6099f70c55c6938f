//! BOS, EOS and the end-of-generation set, with the token kinds llama.cpp changes on the way
//! (`llama_vocab::impl::load`): ids named by metadata, tokens found by their text, and the
//! per-model exceptions it hard-codes. The Hugging Face loader (hf.rs) shares the
//! end-of-generation rules.

use super::pretokenize::PreTokenizer;
use super::vocab::{Kind, Vocab};
use crate::error::Result;
use crate::file::gguf::GgufFile;

const KEY_BOS: &str = "tokenizer.ggml.bos_token_id";
const KEY_EOS: &str = "tokenizer.ggml.eos_token_id";
const KEY_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
const KEY_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";

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

/// Special ids and end-of-generation tokens.
pub(super) struct SpecialIds {
    pub(super) bos: Option<u32>,
    pub(super) eos: Option<u32>,
    pub(super) add_bos: bool,
    pub(super) add_eos: bool,
    /// Sorted, no duplicates.
    pub(super) eog: Vec<u32>,
}

/// Reads the special ids, finds the end-of-generation set, and changes token kinds on the way
/// as llama.cpp does.
pub(super) fn read_special_ids(
    file: &GgufFile,
    vocab: &mut Vocab,
    pre: &PreTokenizer,
) -> Result<SpecialIds> {
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
pub(super) fn end_of_generation(
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
