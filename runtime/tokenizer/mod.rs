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
//!
//! One concern per file: `vocab` reads a GGUF vocabulary (texts, kinds, merges),
//! `special_ids` finds BOS/EOS and the end-of-generation set, `pretokenize` builds steps 2-4
//! from `tokenizer.ggml.pre`, `partition` is step 1, `bytes` maps tokens back to bytes for
//! decoding, and `hf` loads a Hugging Face directory into the same parts. This file is the
//! `Tokenizer` type and its API.

mod bytes;
mod hf;
mod partition;
mod pretokenize;
mod special_ids;
mod vocab;

use bytes::{clean_spaces, Pieces};
use partition::{partition, special_tokens, Fragment, Special};
use pretokenize::{build_bpe, pre_tokenizer};
use special_ids::{read_special_ids, SpecialIds};
use vocab::{check_model, read_merges, read_vocab, Vocab};

use crate::error::{Error, Result};
use crate::file::gguf::GgufFile;

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
        self.pieces.n_tokens()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Tokenizer>();
    }
}
