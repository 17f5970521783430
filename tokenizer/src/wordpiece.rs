//! Reading a BERT `tokenizer.json` in a fraction of what
//! `Tokenizer::from_bytes` takes, and encoding with exactly its ids.
//!
//! Reading the tokenizer is part of every guest job that tokenizes (a fresh instance per job),
//! and in wasm it was the largest serial cost after the tensor ops:
//! `Tokenizer::from_bytes` buffers the 30k-entry vocabulary three times on
//! its way through serde's untagged and flattened model enum (measured:
//! 196M guest instructions, ~47 ms), and `tokenizers`' own `WordPiece`,
//! even fed a ready map, allocates every token twice (token → id and
//! id → token, ~4.5 ms). Here the file is read in one pass; the normaliser,
//! pre-tokenizer, post-processor and added tokens by their own `tokenizers`
//! types, and the vocabulary into [`WordPiece`], whose map borrows each
//! token from the file's bytes (the instance ends with the job, so the
//! bytes are simply kept), hashed with FxHash: 17 % fewer guest
//! instructions per job than aHash's fallback (wasm has no AES), and a
//! tokenizer.json made to collide only slows its own, fuel-metered job. A
//! file with another kind of model goes through `Tokenizer::from_bytes`.
//!
//! Encoding, too, was a third of a job's guest instructions: `tokenizers`
//! normalises and splits any Unicode text keeping an alignment per byte
//! through every step. An ASCII line under BERT's normaliser and
//! pre-tokenizer takes a shortcut instead ([`AsciiWords`]: the same rules,
//! byte by byte), then `tokenizers`' own truncation and post-processor;
//! guest instructions per MiniLM job 54.0M → 39.9M.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::{Error, Result};
use rustc_hash::FxHashMap;
use tokenizers::{
    AddedToken, DecoderWrapper, Encoding, Model, NormalizedString, Normalizer, NormalizerWrapper,
    PostProcessorWrapper, PreTokenizerWrapper, Token, Tokenizer, TokenizerImpl, Trainer,
    TruncationParams, TruncationStrategy,
};

/// Room a [`Vocab`] reserves before reading (BERT's 30,522 entries fit):
/// a map grown from empty rehashes ~15 times on the way.
const VOCAB_CAPACITY: usize = 1 << 15;

/// `tokenizers`' pipeline around [`WordPiece`].
type WordPieceTokenizer = TokenizerImpl<
    WordPiece,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encoder::WordPiece(tok, ascii) => f
                .debug_struct("Encoder::WordPiece")
                .field("vocab", &tok.get_model().get_vocab_size())
                .field("ascii", ascii)
                .finish(),
            Encoder::General(tok) => f
                .debug_struct("Encoder::General")
                .field("vocab", &tok.get_vocab_size(true))
                .finish(),
        }
    }
}

/// A tokenizer read from a `tokenizer.json`, set up as sentence-transformers
/// uses it.
pub enum Encoder {
    /// A WordPiece model (BERT's), read by this module, with the shortcut
    /// for ASCII lines when its normaliser and pre-tokenizer are BERT's.
    WordPiece(Box<WordPieceTokenizer>, Option<AsciiWords>),
    /// Any other model, read by `Tokenizer::from_bytes`.
    General(Box<Tokenizer>),
}

impl Encoder {
    /// Reads `bytes` (a tokenizer.json), which stay borrowed by the
    /// vocabulary for the rest of the job, and truncates every encoding to
    /// `max_seq_length` tokens with no padding (sentence-transformers
    /// replaces the file's own truncation and padding settings).
    ///
    /// # Errors
    /// [`Error::Format`] if `bytes` is not a tokenizer.json.
    pub fn read(bytes: &'static [u8], max_seq_length: usize) -> Result<Encoder> {
        if let Some((mut tok, ascii)) = read_wordpiece(bytes) {
            truncate_unpadded(&mut tok, max_seq_length)?;
            return Ok(Encoder::WordPiece(Box::new(tok), ascii));
        }
        let mut tok = Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Format(format!("not a tokenizer.json: {e}")))?;
        truncate_unpadded(&mut tok, max_seq_length)?;
        Ok(Encoder::General(Box::new(tok)))
    }

    /// The ids of the tokens that open and close a sequence (`[CLS]`,
    /// `[SEP]`), for sequences given as token ids.
    ///
    /// # Errors
    /// [`Error::Format`] if the vocabulary has no `[CLS]` or `[SEP]`.
    pub fn cls_sep(&self) -> Result<(u32, u32)> {
        let id = |t: &str| match self {
            Encoder::WordPiece(tok, _) => tok.token_to_id(t),
            Encoder::General(tok) => tok.token_to_id(t),
        };
        match (id("[CLS]"), id("[SEP]")) {
            (Some(cls), Some(sep)) => Ok((cls, sep)),
            _ => Err(Error::Format(
                "token-id inputs need a tokenizer with [CLS] and [SEP] tokens; send text instead"
                    .into(),
            )),
        }
    }

    /// `ids`, the tokens of a text, as a whole sequence: `[CLS]`, the first
    /// `max_seq_length - 2` of them, `[SEP]` (as [`Encoder::ids`] truncates
    /// a text). The ids are not checked against the vocabulary.
    ///
    /// # Errors
    /// [`Error::Format`] if the vocabulary has no `[CLS]` or `[SEP]`.
    pub fn wrap_ids(&self, ids: &[u32], max_seq_length: usize) -> Result<Vec<u32>> {
        let (cls, sep) = self.cls_sep()?;
        let kept = ids.len().min(max_seq_length.saturating_sub(2));
        let mut row = Vec::with_capacity(kept + 2);
        row.push(cls);
        row.extend_from_slice(&ids[..kept]);
        row.push(sep);
        Ok(row)
    }

    /// The token ids of `line`, `[CLS] … [SEP]` included.
    ///
    /// # Errors
    /// [`Error::Tokenize`] if the tokenizer fails on the line.
    pub fn ids(&self, line: &str) -> Result<Vec<u32>> {
        let encoding = match self {
            Encoder::WordPiece(tok, ascii) => {
                match ascii.as_ref().and_then(|a| a.normalize(line)) {
                    Some(text) => encode_words(tok, &text),
                    None => tok.encode(line, true),
                }
            }
            Encoder::General(tok) => tok.encode(line, true),
        }
        .map_err(|e| Error::Tokenize(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }
}

/// BERT's normaliser and pre-tokenizer for a line of ASCII text, where
/// they are a handful of byte rules (`tokenizers`' general code spent
/// ~280k guest instructions on a demo sentence). For ASCII, the
/// `BertNormalizer` steps are: `clean_text` drops control characters (NUL
/// and DEL included) but tab, newline and carriage return, which with
/// every other whitespace become a space; Chinese characters, accents and
/// their marks do not occur; lowercasing is ASCII's. `BertPreTokenizer` then splits at whitespace (dropped) and
/// makes each punctuation character (for ASCII, `is_ascii_punctuation`)
/// a word of its own. A line with any other character, or with an added
/// token's text in it (raw, or normalised for a token matched after
/// normalisation: the added vocabulary would split it there), takes the
/// general path.
#[derive(Debug)]
pub struct AsciiWords {
    clean_text: bool,
    lowercase: bool,
    /// Every added token's text, and normalised for those matched after
    /// normalisation: a line or normalised line holding one of these is
    /// left to `tokenizers`, whose added vocabulary would split it there.
    added: Vec<String>,
}

impl AsciiWords {
    /// The shortcut for a file whose normaliser is a `BertNormalizer` and
    /// pre-tokenizer a `BertPreTokenizer`; `None` for any other.
    fn of(
        normalizer: Option<&NormalizerWrapper>,
        pre_tokenizer: Option<&PreTokenizerWrapper>,
        added: &[AddedToken],
    ) -> Option<AsciiWords> {
        let Some(NormalizerWrapper::BertNormalizer(bert)) = normalizer else {
            return None;
        };
        let Some(PreTokenizerWrapper::BertPreTokenizer(_)) = pre_tokenizer else {
            return None;
        };
        // A token marked `normalized` is looked for, normalised, in the
        // normalised text; the others as they are in the raw line.
        let mut patterns = Vec::with_capacity(added.len() * 2);
        for token in added {
            patterns.push(token.content.clone());
            if token.normalized {
                let mut text = NormalizedString::from(token.content.as_str());
                bert.normalize(&mut text).ok()?;
                patterns.push(text.get().to_owned());
            }
        }
        Some(AsciiWords {
            clean_text: bert.clean_text,
            lowercase: bert.lowercase,
            added: patterns,
        })
    }

    /// `line` normalised, or `None` when the shortcut does not apply.
    fn normalize(&self, line: &str) -> Option<String> {
        if !line.is_ascii() {
            return None;
        }
        let mut text = String::with_capacity(line.len());
        for c in line.chars() {
            // The other ASCII whitespace is a space already, or VT and FF,
            // which are control characters and dropped.
            let c = match c {
                '\t' | '\n' | '\r' if self.clean_text => ' ',
                c if self.clean_text && c.is_ascii_control() => continue,
                c => c,
            };
            text.push(if self.lowercase {
                c.to_ascii_lowercase()
            } else {
                c
            });
        }
        // Raw or normalised, wherever the added vocabulary would look.
        let has_added = self
            .added
            .iter()
            .any(|t| line.contains(t.as_str()) || text.contains(t.as_str()));
        (!has_added).then_some(text)
    }
}

/// `text` (normalised by [`AsciiWords`]) split into BERT's words, each
/// through the model, then truncated and given the special tokens by
/// `tokenizers` itself (`post_process`, as `encode` ends).
fn encode_words(tok: &WordPieceTokenizer, text: &str) -> tokenizers::Result<Encoding> {
    let mut tokens = Vec::new();
    let mut word = |start: usize, end: usize| -> tokenizers::Result<()> {
        for mut token in tok.get_model().tokenize(&text[start..end])? {
            token.offsets = (token.offsets.0 + start, token.offsets.1 + start);
            tokens.push(token);
        }
        Ok(())
    };
    let mut start = 0;
    for (at, byte) in text.bytes().enumerate() {
        let punctuation = byte.is_ascii_punctuation();
        if punctuation || char::from(byte).is_whitespace() {
            if start < at {
                word(start, at)?;
            }
            if punctuation {
                word(at, at + 1)?;
            }
            start = at + 1;
        }
    }
    if start < text.len() {
        word(start, text.len())?;
    }
    tok.post_process(Encoding::from_tokens(tokens, 0), None, true)
}

/// Sets `tok` up as sentence-transformers does: no padding, truncation to
/// `max_seq_length` tokens.
fn truncate_unpadded<M: Model>(
    tok: &mut TokenizerImpl<
        M,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >,
    max_seq_length: usize,
) -> Result<()> {
    tok.with_padding(None);
    tok.with_truncation(Some(TruncationParams {
        max_length: max_seq_length,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
        ..TruncationParams::default()
    }))
    .map_err(|e| Error::Format(format!("tokenizer truncation: {e}")))?;
    Ok(())
}

/// The parts of a tokenizer.json with a WordPiece model that encoding uses.
#[derive(serde::Deserialize)]
struct WordPieceFile<'a> {
    #[serde(default)]
    normalizer: Option<NormalizerWrapper>,
    #[serde(default)]
    pre_tokenizer: Option<PreTokenizerWrapper>,
    #[serde(default)]
    post_processor: Option<PostProcessorWrapper>,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    #[serde(borrow)]
    model: WordPieceSection<'a>,
}

/// A WordPiece `model` section, with the fields `tokenizers`' own reader
/// requires.
#[derive(serde::Deserialize)]
struct WordPieceSection<'a> {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    unk_token: String,
    continuing_subword_prefix: String,
    max_input_chars_per_word: usize,
    #[serde(borrow)]
    vocab: Vocab<'a>,
}

/// `model.vocab`: token → id, each token borrowed from the file unless
/// JSON escapes made it a new string.
struct Vocab<'a>(FxHashMap<Cow<'a, str>, u32>);

/// A JSON string, borrowed where it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Visit)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Vocab<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Vocab<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map from token to id")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Vocab<'de>, A::Error> {
                let capacity = map.size_hint().unwrap_or(0).max(VOCAB_CAPACITY);
                let mut vocab = FxHashMap::with_capacity_and_hasher(capacity, Default::default());
                while let Some((Text(token), id)) = map.next_entry::<Text<'de>, u32>()? {
                    vocab.insert(token, id);
                }
                Ok(Vocab(vocab))
            }
        }
        d.deserialize_map(Entries)
    }
}

/// The tokenizer of a WordPiece file and its ASCII shortcut, or `None` for
/// anything else.
fn read_wordpiece(bytes: &'static [u8]) -> Option<(WordPieceTokenizer, Option<AsciiWords>)> {
    // As a `str` (one UTF-8 check for the whole file), serde need not check
    // each string again: 8 % fewer guest instructions per job.
    let file: WordPieceFile<'static> =
        serde_json::from_str(std::str::from_utf8(bytes).ok()?).ok()?;
    let section = file.model;
    if section.kind.as_deref().is_some_and(|k| k != "WordPiece") {
        return None;
    }
    let model = WordPiece {
        vocab: section.vocab.0,
        unk_token: section.unk_token,
        prefix: section.continuing_subword_prefix,
        max_chars: section.max_input_chars_per_word,
    };
    let ascii = AsciiWords::of(
        file.normalizer.as_ref(),
        file.pre_tokenizer.as_ref(),
        &file.added_tokens,
    );
    let mut tok = TokenizerImpl::new(model);
    tok.with_normalizer(file.normalizer)
        .with_pre_tokenizer(file.pre_tokenizer)
        .with_post_processor(file.post_processor);
    // As `Tokenizer::from_bytes` does: every added token through add_tokens
    // (each carries its own `special` flag).
    tok.add_tokens(&file.added_tokens);
    Some((tok, ascii))
}

impl std::fmt::Debug for WordPiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordPiece")
            .field("vocab", &self.vocab.len())
            .field("unk_token", &self.unk_token)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// BERT's WordPiece: each word split greedily into the longest vocabulary
/// entries from its start, pieces after the first looked up with the
/// continuation prefix (`##`); a word with a part no entry matches, or
/// longer than `max_chars` characters, is the unknown token. The ids are
/// those of `tokenizers::models::wordpiece::WordPiece`.
pub struct WordPiece {
    vocab: FxHashMap<Cow<'static, str>, u32>,
    unk_token: String,
    prefix: String,
    max_chars: usize,
}

impl WordPiece {
    /// The whole of `word` as the unknown token.
    fn unknown(&self, word: &str) -> tokenizers::Result<Vec<Token>> {
        let id = self
            .vocab
            .get(self.unk_token.as_str())
            .copied()
            .ok_or_else(|| {
                format!(
                    "tokenizer.json: the unknown token {:?} is not in the vocabulary",
                    self.unk_token
                )
            })?;
        Ok(vec![Token {
            id,
            value: self.unk_token.clone(),
            offsets: (0, word.len()),
        }])
    }
}

impl Model for WordPiece {
    type Trainer = Untrainable;

    fn tokenize(&self, word: &str) -> tokenizers::Result<Vec<Token>> {
        if word.chars().count() > self.max_chars {
            return self.unknown(word);
        }
        let mut pieces = Vec::new();
        // The lookup key: `word[start..end]`, after the prefix unless at 0.
        let mut key = String::with_capacity(self.prefix.len() + word.len());
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let id = loop {
                key.clear();
                if start > 0 {
                    key.push_str(&self.prefix);
                }
                key.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(key.as_str()) {
                    break Some(id);
                }
                // One character shorter (`start < end`, so there is one).
                end -= word[start..end]
                    .chars()
                    .next_back()
                    .map_or(1, char::len_utf8);
                if end <= start {
                    break None;
                }
            };
            let Some(id) = id else {
                return self.unknown(word);
            };
            pieces.push(Token {
                id,
                value: key.clone(),
                offsets: (start, end),
            });
            start = end;
        }
        Ok(pieces)
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// A scan of the vocabulary: only decoding asks, and a job never decodes.
    fn id_to_token(&self, id: u32) -> Option<String> {
        self.vocab
            .iter()
            .find(|&(_, &v)| v == id)
            .map(|(token, _)| token.to_string())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        self.vocab
            .iter()
            .map(|(token, &id)| (token.to_string(), id))
            .collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.vocab.len()
    }

    fn save(&self, _folder: &Path, _prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        Err("assay-tokenizer's WordPiece is read-only: it is never saved".into())
    }

    fn get_trainer(&self) -> Untrainable {
        Untrainable
    }
}

/// [`WordPiece`]'s trainer, which `Model` requires: a job only encodes, so
/// every call is refused.
#[derive(Debug)]
pub struct Untrainable;

impl Trainer for Untrainable {
    type Model = WordPiece;

    fn should_show_progress(&self) -> bool {
        false
    }

    fn train(&self, _model: &mut WordPiece) -> tokenizers::Result<Vec<AddedToken>> {
        Err("assay-tokenizer's WordPiece cannot be trained".into())
    }

    fn feed<I, S, F>(&mut self, _iterator: I, _process: F) -> tokenizers::Result<()>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
        F: Fn(&str) -> tokenizers::Result<Vec<String>> + Sync,
    {
        Err("assay-tokenizer's WordPiece cannot be trained".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small BERT tokenizer.json: the five special tokens, a few words,
    /// and added tokens of both kinds — `HeLLo` matched after
    /// normalisation (as `hello`), `wor` on the raw text.
    fn tokenizer_json() -> &'static [u8] {
        let words = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "!", "?", ",", "a",
            "b", "##s", "##b", "say", "x", "##x", "wo", "##r", "##ld", "##llo", "he", "'",
        ];
        let vocab: serde_json::Map<String, serde_json::Value> = words
            .iter()
            .enumerate()
            .map(|(id, w)| (w.to_string(), id.into()))
            .collect();
        let added = |id: usize, content: &str, special: bool, normalized: bool| {
            serde_json::json!({"id": id, "content": content, "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": normalized, "special": special})
        };
        let mut added_tokens: Vec<_> = (0..5).map(|id| added(id, words[id], true, false)).collect();
        added_tokens.push(added(words.len(), "HeLLo", false, true));
        added_tokens.push(added(words.len() + 1, "wor", false, false));
        let special =
            |name: &str, id: usize| serde_json::json!({"id": name, "ids": [id], "tokens": [name]});
        let file = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": added_tokens,
            "normalizer": {"type": "BertNormalizer", "clean_text": true,
                "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                    {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"[CLS]": special("[CLS]", 2), "[SEP]": special("[SEP]", 3)}},
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
            "model": {"type": "WordPiece", "unk_token": "[UNK]",
                "continuing_subword_prefix": "##", "max_input_chars_per_word": 12,
                "vocab": vocab},
        });
        serde_json::to_vec(&file).expect("json").leak()
    }

    #[test]
    fn ascii_lines_get_the_ids_of_the_tokenizers_library() {
        const MAX_LEN: usize = 16;
        let bytes = tokenizer_json();
        let ours = Encoder::read(bytes, MAX_LEN).expect("tokenizer");
        assert!(
            matches!(&ours, Encoder::WordPiece(_, Some(_))),
            "the file should take the WordPiece reader with the ASCII shortcut"
        );
        let mut library = Tokenizer::from_bytes(bytes).expect("tokenizers reads it");
        truncate_unpadded(&mut library, MAX_LEN).expect("truncation");
        let mut lines: Vec<String> = [
            "hello world",
            "HELLO World!",
            "say hello",
            "xhellox",
            "sayHeLLo",
            "hel lo",
            "[MASK] hello",
            "[mask]",
            "a[SEP]b",
            "wor",
            "WOR",
            "sword",
            "words",
            "",
            " \t ",
            "a\u{1}b\u{7f}c\0d\u{b}e\u{c}f\rg",
            "aaaaaaaaaaaaa bbbbbbbbbbbb",
            "x x x x x x x x x x x x x x x x x x x x",
            "don't, a b? c!",
            "café",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Random lines over the vocabulary's letters, both cases, the
        // added tokens' pieces and odd bytes.
        const PIECES: [&str; 16] = [
            "he", "LLO", "llo", "w", "o", "r", "ld", " ", "!", "x", "A", "s", "\t", "\u{7f}", "'",
            "[MASK]",
        ];
        let mut state = 0x853c_49e6_748f_ea9b_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..2000 {
            lines.push((0..next(12)).map(|_| PIECES[next(PIECES.len())]).collect());
        }
        for line in &lines {
            let want = library
                .encode(line.as_str(), true)
                .expect("library encodes");
            assert_eq!(
                ours.ids(line).expect("we encode"),
                want.get_ids(),
                "{line:?}"
            );
        }
    }
}
