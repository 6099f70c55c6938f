//! The vocabulary of a GGUF file as llama.cpp reads it (`llama_vocab::impl::load`): token
//! texts and types, merges, and the tokenizer model, which must be byte-level BPE.

use std::path::Path;

use crate::error::{Error, Result};
use crate::file::gguf::{GgufFile, MetaValue};

const KEY_MODEL: &str = "tokenizer.ggml.model";
pub(super) const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
pub(super) const KEY_MERGES: &str = "tokenizer.ggml.merges";

/// `tokenizer.ggml.token_type` (llama.cpp `llama_token_type`), after llama.cpp's fix-ups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
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
    pub(super) fn is_special(self) -> bool {
        matches!(self, Kind::Control | Kind::UserDefined | Kind::Unknown)
    }
}

/// The vocabulary as llama.cpp holds it: texts by id and ids by text, kinds after its fix-ups.
pub(super) struct Vocab<'f> {
    /// The file the tokens come from, for errors.
    pub(super) path: &'f Path,
    pub(super) texts: Vec<String>,
    /// Handed to the BPE model once the special tokens are known.
    pub(super) ids: tokenizers::models::bpe::Vocab,
    pub(super) kinds: Vec<Kind>,
}

impl Vocab<'_> {
    pub(super) fn n(&self) -> u32 {
        self.texts.len() as u32 // GgufFile caps arrays far below u32::MAX
    }

    pub(super) fn bad(&self, problem: String) -> Error {
        Error::bad_file(self.path, problem)
    }

    /// The id a metadata key names, if any; BadFile naming the key when out of range.
    pub(super) fn id_at(&self, file: &GgufFile, key: &str) -> Result<Option<u32>> {
        match file.get_u32(key)? {
            Some(id) if id >= self.n() => Err(self.bad(format!(
                "{key} = {id}, but the vocabulary has {} tokens",
                self.n()
            ))),
            id => Ok(id),
        }
    }

    /// The lowest id among tokens with these texts.
    pub(super) fn find(&self, texts: &[&str]) -> Option<u32> {
        texts.iter().filter_map(|t| self.ids.get(*t)).copied().min()
    }
}

/// Reads tokens and their types; empty and duplicate texts as llama.cpp handles them.
pub(super) fn read_vocab(file: &GgufFile) -> Result<Vocab<'_>> {
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

/// `tokenizer.ggml.merges`, "left right" in rank order. llama.cpp splits each at the first
/// space after the first byte, so a left part may itself be a space in vocabularies that are
/// not byte-level; that the parts and their join are tokens is checked by the BPE model.
pub(super) fn read_merges(file: &GgufFile) -> Result<Vec<(String, String)>> {
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

/// Only byte-level BPE (`gpt2`) vocabularies. SentencePiece (`llama`) merges by token score,
/// with byte fallback and space escaping: a different algorithm, not here yet.
pub(super) fn check_model(file: &GgufFile) -> Result<()> {
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
