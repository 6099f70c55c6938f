//! The bytes each token stands for, for decoding and streaming: GPT-2's byte-level alphabet
//! mapped back to bytes (llama.cpp `token_to_piece`), and llama.cpp's space clean-up after
//! decoding.

use super::vocab::{Kind, Vocab, KEY_TOKENS};
use crate::error::Result;

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
pub(super) struct Pieces {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Pieces {
    pub(super) fn new(vocab: &Vocab) -> Result<Pieces> {
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(vocab.texts.len());
        for (id, (text, &kind)) in vocab.texts.iter().zip(&vocab.kinds).enumerate() {
            push_piece(text, kind, &mut bytes)
                .map_err(|problem| vocab.bad(format!("{KEY_TOKENS}[{id}]: {problem}")))?;
            ends.push(bytes.len());
        }
        Ok(Pieces { bytes, ends })
    }

    pub(super) fn get(&self, id: u32) -> Option<&[u8]> {
        let id = id as usize;
        let end = *self.ends.get(id)?;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        Some(&self.bytes[start..end])
    }

    pub(super) fn n_tokens(&self) -> u32 {
        self.ends.len() as u32 // GgufFile caps arrays far below u32::MAX
    }
}

/// llama.cpp's `clean_spaces` pass of `detokenize` (HF `clean_up_tokenization_spaces`), with
/// its exact index logic: " ?", " !", " .", " ," lose the space; a lone apostrophe between
/// spaces loses both (and llama.cpp overwrites the second with NUL, which the next step then
/// sees as its previous byte); " 's", " 'm", " 're", " 've" lose the space.
pub(super) fn clean_spaces(text: &mut Vec<u8>) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
