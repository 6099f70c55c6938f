//! `Tokenizer::from_hf_dir`: the tokenizer of a Hugging Face model directory (tokenizer.json,
//! tokenizer_config.json), for models whose weights come as safetensors.
//!
//! tokenizer.json's normalizer, pre-tokenizer and BPE model replace what `tokenizer.ggml.pre`
//! selects for a GGUF file (steps 2-4 of the parent module). Everything else is the GGUF path's,
//! so that both give what llama.cpp gives for the GGUF that convert_hf_to_gguf.py makes from the
//! same directory: added tokens are matched by `partition` (special ones as control tokens,
//! the others as user-defined), end-of-generation tokens are found by the same texts, and
//! token bytes come from the same byte-level table.

use std::path::Path;
use std::str::FromStr;

use serde_json::Value;
use tokenizers::models::ModelWrapper;
use tokenizers::Model as _;

use super::bytes::Pieces;
use super::special_ids::{end_of_generation, SpecialIds};
use super::vocab::{Kind, Vocab};
use super::Tokenizer;
use crate::error::{Error, Result};

const TOKENIZER_JSON: &str = "tokenizer.json";
const TOKENIZER_CONFIG: &str = "tokenizer_config.json";

impl Tokenizer {
    /// Builds the tokenizer of a Hugging Face model directory: `tokenizer.json` for the
    /// vocabulary, merges and text splitting, `tokenizer_config.json` for `bos_token`,
    /// `eos_token`, `add_bos_token`, `add_eos_token` and `clean_up_tokenization_spaces`.
    /// Byte-level BPE (pre-tokenizer and decoder `ByteLevel`: Qwen, Llama 3, SmolLM2 and the
    /// DeepSeek-R1 distills) is supported; anything else is `Error::Unsupported`, naming what
    /// the file has.
    pub fn from_hf_dir(dir: &Path) -> Result<Tokenizer> {
        let json_path = dir.join(TOKENIZER_JSON);
        let json_text = read(&json_path)?;
        let json = parse(&json_path, &json_text)?;
        check_byte_level(&json_path, &json)?;
        let config_path = dir.join(TOKENIZER_CONFIG);
        let config = parse(&config_path, &read(&config_path)?)?;

        let hf = tokenizers::Tokenizer::from_str(&json_text)
            .map_err(|e| Error::bad_file(&json_path, e.to_string()))?;
        let ModelWrapper::BPE(_) = hf.get_model() else {
            let model = json["model"]["type"].as_str().unwrap_or("not BPE");
            return Err(Error::unsupported(
                &json_path,
                format!("model is {model}; only byte-level BPE"),
            ));
        };
        let mut vocab = read_vocab(&json_path, &hf)?;
        let ids = read_special_ids(&config_path, &config, &json, &mut vocab)?;
        let pieces = Pieces::new(&vocab)?;
        // Added tokens are left to `partition`, so the inner tokenizer has none: with
        // `parse_special` off, control-token text must reach BPE as plain text.
        let mut bpe = tokenizers::Tokenizer::new(hf.get_model().clone());
        bpe.with_normalizer(hf.get_normalizer().cloned())
            .map_err(|e| Error::bad_file(&json_path, format!("normalizer: {e}")))?;
        bpe.with_pre_tokenizer(hf.get_pre_tokenizer().cloned());
        // transformers' default since 4.45 where the config does not say.
        let clean_spaces = get_bool(&config_path, &config, "clean_up_tokenization_spaces")?;
        Ok(Tokenizer::assemble(
            bpe,
            &vocab,
            pieces,
            ids,
            clean_spaces.unwrap_or(false),
        ))
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

fn parse(path: &Path, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::bad_file(path, format!("not JSON: {e}")))
}

/// The component types of a tokenizer.json step, looking into a `Sequence`:
/// "Metaspace", "Sequence[Split, ByteLevel]", or "none".
fn describe(step: &Value, list: &str) -> (String, bool) {
    let kind = |v: &Value| v["type"].as_str().unwrap_or("?").to_string();
    match step {
        Value::Null => ("none".to_string(), false),
        _ if step["type"] == "Sequence" => {
            let parts: Vec<String> = step[list]
                .as_array()
                .map(|a| a.iter().map(kind).collect())
                .unwrap_or_default();
            let byte_level = parts.iter().any(|p| p == "ByteLevel");
            (format!("Sequence[{}]", parts.join(", ")), byte_level)
        }
        _ => (kind(step), step["type"] == "ByteLevel"),
    }
}

/// Byte-level BPE only: its pre-tokenizer maps bytes to GPT-2's alphabet and its decoder maps
/// them back, which `Pieces` relies on. SentencePiece-style files (Metaspace, ByteFallback)
/// are a different algorithm, not here yet.
fn check_byte_level(path: &Path, json: &Value) -> Result<()> {
    let (pre, pre_ok) = describe(&json["pre_tokenizer"], "pretokenizers");
    let (decoder, decoder_ok) = describe(&json["decoder"], "decoders");
    if pre_ok && decoder_ok {
        return Ok(());
    }
    Err(Error::unsupported(
        path,
        format!(
            "pre_tokenizer is {pre} and decoder is {decoder}; only byte-level BPE \
             (ByteLevel pre-tokenizer and decoder)"
        ),
    ))
}

/// Texts by id from the model's vocabulary and the added tokens; ids no token uses become
/// unused "[PAD<id>]" tokens, as convert_hf_to_gguf.py names them.
fn read_vocab<'p>(path: &'p Path, hf: &tokenizers::Tokenizer) -> Result<Vocab<'p>> {
    let bad = |problem: String| Error::bad_file(path, problem);
    let model = hf.get_model().get_vocab();
    let added = hf.get_added_tokens_decoder();
    let entries = model.iter().map(|(text, &id)| (id, text, Kind::Normal));
    let entries = entries.chain(added.iter().map(|(&id, token)| {
        let kind = if token.special {
            Kind::Control
        } else {
            Kind::UserDefined
        };
        (id, &token.content, kind)
    }));
    let n = entries.clone().map(|(id, _, _)| id as usize + 1).max();
    let mut texts: Vec<Option<String>> = vec![None; n.unwrap_or(0)];
    let mut kinds = vec![Kind::Unused; texts.len()];
    let mut ids = tokenizers::models::bpe::Vocab::with_capacity(texts.len());
    for (id, text, kind) in entries {
        let i = id as usize;
        // An added token may repeat a model token at the same id (SmolLM2's "<|endoftext|>").
        match (&texts[i], ids.insert(text.clone(), id)) {
            (Some(other), _) if other != text => {
                return Err(bad(format!("id {id} is both '{other}' and '{text}'")))
            }
            (_, Some(first)) if first != id => {
                return Err(bad(format!("'{text}' has ids {first} and {id}")))
            }
            _ => {}
        }
        texts[i] = Some(text.clone());
        kinds[i] = kind;
    }
    let texts = texts.into_iter().enumerate();
    let texts = texts.map(|(id, text)| text.unwrap_or_else(|| format!("[PAD{id}]")));
    let texts: Vec<String> = texts.collect();
    for (id, text) in texts.iter().enumerate() {
        if kinds[id] == Kind::Unused && ids.insert(text.clone(), id as u32).is_some() {
            return Err(bad(format!("'{text}' is a token and names unused id {id}")));
        }
    }
    Ok(Vocab {
        path,
        texts,
        ids,
        kinds,
    })
}

/// `bos_token` / `eos_token` and whether to add them, then llama.cpp's end-of-generation set.
fn read_special_ids(
    config_path: &Path,
    config: &Value,
    json: &Value,
    vocab: &mut Vocab,
) -> Result<SpecialIds> {
    let bos_text = token_text(config_path, config, "bos_token")?;
    let eos_text = token_text(config_path, config, "eos_token")?;
    let id = |key: &str, text: Option<&str>| -> Result<Option<u32>> {
        let Some(text) = text else { return Ok(None) };
        let id = vocab.ids.get(text).copied();
        let missing = || {
            Error::bad_file(
                config_path,
                format!("{key} '{text}' is not a token of {TOKENIZER_JSON}"),
            )
        };
        id.ok_or_else(missing).map(Some)
    };
    let bos = id("bos_token", bos_text)?;
    let eos = id("eos_token", eos_text)?;
    let add_bos = match get_bool(config_path, config, "add_bos_token")? {
        Some(add) => add,
        None => bos_text.is_some_and(|t| template_adds(json, t, End::First)),
    };
    let add_eos = match get_bool(config_path, config, "add_eos_token")? {
        Some(add) => add,
        None => eos_text.is_some_and(|t| template_adds(json, t, End::Last)),
    };
    for (add, key, id, id_key) in [
        (add_bos, "add_bos_token", bos, "bos_token"),
        (add_eos, "add_eos_token", eos, "eos_token"),
    ] {
        if add && id.is_none() {
            let problem = format!("{key} is true, but {id_key} is not set");
            return Err(Error::bad_file(config_path, problem));
        }
    }
    let eog = end_of_generation(vocab, eos, None)?;
    Ok(SpecialIds {
        bos,
        eos,
        add_bos,
        add_eos,
        eog,
    })
}

/// A special token in tokenizer_config.json: a string, an object with "content" (an
/// `AddedToken`), or null / absent for none.
fn token_text<'c>(path: &Path, config: &'c Value, key: &str) -> Result<Option<&'c str>> {
    match &config[key] {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        value => match value["content"].as_str() {
            Some(text) => Ok(Some(text)),
            None => Err(Error::bad_file(
                path,
                format!("{key} is {value}, expected a string or an object with \"content\""),
            )),
        },
    }
}

fn get_bool(path: &Path, config: &Value, key: &str) -> Result<Option<bool>> {
    match &config[key] {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        value => Err(Error::bad_file(
            path,
            format!("{key} is {value}, expected true or false"),
        )),
    }
}

#[derive(Clone, Copy)]
enum End {
    First,
    Last,
}

/// Whether tokenizer.json's post-processor template puts `token` at this end of a single
/// sequence: how Llama 3 adds its BOS, with no `add_bos_token` in its config. gguf-py's
/// `SpecialVocab` reads it the same way when converting.
fn template_adds(json: &Value, token: &str, end: End) -> bool {
    let post = &json["post_processor"];
    let steps = match post["processors"].as_array() {
        Some(steps) => steps.iter().collect(),
        None => vec![post],
    };
    let template = steps
        .into_iter()
        .find(|s| s["type"] == "TemplateProcessing");
    let Some(single) = template.and_then(|t| t["single"].as_array()) else {
        return false;
    };
    let piece = match end {
        End::First => single.first(),
        End::Last => single.last(),
    };
    piece.is_some_and(|p| p["SpecialToken"]["id"] == token)
}
