//! Special tokens matched whole in the text before BPE (step 1 of the parent module; llama.cpp
//! `cache_special_tokens` and `tokenizer_st_partition`).

use super::vocab::{Kind, Vocab};

/// A token matched as a whole in text before BPE (llama.cpp `cache_special_tokens`).
pub(super) struct Special {
    text: String,
    id: u32,
    /// Control and unknown tokens are matched only when the caller parses special tokens;
    /// user-defined ones always.
    control: bool,
}

/// Longest first, as llama.cpp tries them.
pub(super) fn special_tokens(vocab: &Vocab) -> Vec<Special> {
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
pub(super) enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

/// llama.cpp `tokenizer_st_partition`: each special token in turn, longest first, cuts every
/// text fragment at each of its occurrences.
pub(super) fn partition<'t>(
    text: &'t str,
    specials: &[Special],
    parse_special: bool,
) -> Vec<Fragment<'t>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
