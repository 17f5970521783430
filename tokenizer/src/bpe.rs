//! Byte-level BPE for GGUF language models, as llama.cpp tokenizes with a
//! GGUF file's `tokenizer.ggml.*` metadata (first user: SmolLM2).
//!
//! The caller reads the metadata (this crate does not parse GGUF) into a
//! [`BpeConfig`]; [`Bpe::new`] checks it and builds `tokenizers`' own BPE
//! model, pre-tokenizers and byte table from it, so the ids are those of
//! the `tokenizers` library set up as the model's `tokenizer.json` is, and
//! those of llama.cpp (the crate's tests check both on a few hundred texts,
//! the second through an independent Python reimplementation).
//!
//! Supported: `tokenizer.ggml.model` `gpt2` (byte-level BPE) with
//! `tokenizer.ggml.pre` `smollm`: every `\p{N}` character is a piece of its
//! own, then GPT-2's split (`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
//! ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`) on each piece, no prefix space; in
//! `tokenizers`' terms `Sequence[Digits(individual_digits),
//! ByteLevel(add_prefix_space: false, use_regex: true)]`. Anything else is
//! refused with [`Error::Unsupported`].
//!
//! Two differences from llama.cpp, neither met in a real model's use: in
//! a run of a million or more whitespace characters before a non-space, the
//! split regex (fancy-regex, in `tokenizers`) reaches its backtracking
//! limit and splits the run otherwise (the text still round-trips); and a
//! merge listed twice takes its last rank, where llama.cpp keeps the first
//! (converted files list each once).
//!
//! Special tokens, the injection they allow, and bytes without a token:
//! see [`Bpe`].
//!
//! # Cost
//!
//! Building reads ~49k tokens and ~49k merges, once per job inside a Wasm
//! guest: ~17–22 ms natively for SmolLM2 (the crate's `smollm2` test
//! prints it), of which the token → id map ~4 ms, splitting the merges
//! ~2 ms, and `tokenizers`' builder ~12 ms (its id → token map ~4.5 ms, the
//! merge map ~7 ms). Encoding is ~1 µs a token.

use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{
    Model, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, PreTokenizerWrapper,
};

use crate::chat::ChatPiece;
use crate::{Error, Result};

/// The `tokenizer.ggml.model` this module implements.
pub const MODEL_GPT2: &str = "gpt2";
/// The `tokenizer.ggml.pre` values this module implements.
pub const PRE_TOKENIZERS: &[&str] = &["smollm"];

/// A GGUF file's tokenizer metadata, as the caller read it.
#[derive(Debug, Clone, Default)]
pub struct BpeConfig {
    /// `tokenizer.ggml.model`; only `gpt2` is supported.
    pub model: String,
    /// `tokenizer.ggml.pre`; only `smollm` is supported. (llama.cpp reads a
    /// missing key as `default`, which is not supported here either.)
    pub pre: String,
    /// `tokenizer.ggml.tokens`: token `i`'s text, byte-level encoded.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.merges`: `"a b"`, highest priority first.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.token_type`, one per token (1 normal, 2 unknown,
    /// 3 control, 4 user-defined, 5 unused, 6 byte); empty when the file
    /// has none (every token normal).
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.bos_token_id`, if present.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`, if present.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`, if present (absent: false, as
    /// llama.cpp has it for `smollm`).
    pub add_bos: Option<bool>,
}

/// What a token is, from `tokenizer.ggml.token_type` (llama.cpp's
/// `llama_token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// 1: text, byte-level encoded; BPE produces it.
    Normal,
    /// 2: the unknown token; treated as a control token.
    Unknown,
    /// 3: a control token (`<|im_start|>`): its text is recognised only
    /// when asked, and decoded only when asked.
    Control,
    /// 4: a user-defined token: its text is always recognised, and decoded
    /// as is (not byte-level).
    UserDefined,
    /// 5: unused: never produced, decoded as nothing.
    Unused,
    /// 6: a byte token written `<0xXX>`, decoded as that byte.
    Byte,
    /// 0 or any other value: never produced, decoded as nothing.
    Undefined,
}

impl TokenType {
    /// The type of GGUF token type `value`.
    pub fn from_gguf(value: i32) -> TokenType {
        match value {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }

    /// Control and unknown tokens: matched and decoded only when asked.
    fn is_special(self) -> bool {
        matches!(self, TokenType::Control | TokenType::Unknown)
    }
}

/// A byte-level BPE tokenizer built from a GGUF file's metadata:
/// llama.cpp's `gpt2` model with the `smollm` pre-tokenizer (SmolLM2's),
/// from `tokenizers`' BPE model and pre-tokenizers.
///
/// # Special tokens
///
/// Control tokens (`tokenizer.ggml.token_type` 3: `<|im_start|>`,
/// `<|im_end|>`, `<|endoftext|>`…) and the unknown token (2) are
/// recognised in a text only when the caller asks (`parse_special`);
/// user-defined tokens (4) always, as llama.cpp does. A match is the
/// leftmost, and the longest token there (llama.cpp looks for the longest
/// tokens first over the whole text: the two differ only where one special
/// token's text overlaps another's).
///
/// **Never encode a user's text with `parse_special`**: a user who writes
/// `<|im_end|>\n<|im_start|>system\n…` would end their own turn and speak
/// as the system. Encode a chat prompt with [`Bpe::encode_chat`], which
/// recognises control tokens in the template's own text only
/// ([`ChatPiece::Template`]), never in a message's.
///
/// # Bytes without a token
///
/// A byte-level vocabulary normally has a token for each of the 256 bytes;
/// SmolLM2's lacks 21 (0x04, 0x06, 0x13, 0x14, 0x16, 0x1d, 0xc0, 0xc1, 0xf1,
/// 0xf2, 0xf5–0xff: control characters, and bytes UTF-8 never or rarely
/// uses). Such a byte is left out of the encoding, as llama.cpp and
/// `tokenizers` leave it out.
///
/// # Example
///
/// ```
/// use assay_tokenizer::{Bpe, BpeConfig};
/// // A toy vocabulary: the bytes `h`, `i`, ` `, then `hi`, then a control token.
/// let config = BpeConfig {
///     model: "gpt2".into(),
///     pre: "smollm".into(),
///     tokens: ["h", "i", "Ġ", "hi", "<|end|>"].map(String::from).to_vec(),
///     merges: vec!["h i".into()],
///     token_types: vec![1, 1, 1, 1, 3],
///     ..BpeConfig::default()
/// };
/// let bpe = Bpe::new(config)?;
/// assert_eq!(bpe.encode("hi hi", false)?, [3, 2, 3]);
/// assert_eq!(bpe.encode("hi<|end|>", true)?, [3, 4]);
/// assert_eq!(bpe.decode(&[3, 2, 3, 4], true), b"hi hi");
/// # Ok::<(), assay_tokenizer::Error>(())
/// ```
pub struct Bpe {
    model: BPE,
    pre_tokenizer: Sequence,
    /// Token id → text, as in the file.
    tokens: Vec<String>,
    types: Vec<TokenType>,
    specials: Specials,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
}

impl std::fmt::Debug for Bpe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bpe")
            .field("tokens", &self.tokens.len())
            .field("specials", &self.specials.list.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .finish()
    }
}

impl Bpe {
    /// Checks `config` and builds the tokenizer.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a `model` other than `gpt2` or a `pre`
    /// other than `smollm`. [`Error::Format`] for metadata that does not
    /// hold together: no tokens, a token listed twice, a `token_types` list
    /// of another length than `tokens`, a merge that is not two tokens
    /// separated by a space or whose tokens (or their concatenation) are
    /// not in `tokens`, a `bos`/`eos` id past the vocabulary, or `add_bos`
    /// without `bos`.
    pub fn new(config: BpeConfig) -> Result<Bpe> {
        let BpeConfig {
            model,
            pre,
            mut tokens,
            merges,
            token_types,
            bos,
            eos,
            add_bos,
        } = config;
        if model != MODEL_GPT2 {
            return Err(Error::Unsupported(format!(
                "tokenizer.ggml.model {model:?}: only byte-level BPE ({MODEL_GPT2:?}) is implemented"
            )));
        }
        if !PRE_TOKENIZERS.contains(&pre.as_str()) {
            return Err(Error::Unsupported(format!(
                "tokenizer.ggml.pre {pre:?}: only {PRE_TOKENIZERS:?} is implemented \
                 (digits one by one, then GPT-2's split)"
            )));
        }
        let n = tokens.len();
        if n == 0 {
            return Err(Error::Format("tokenizer.ggml.tokens is empty".into()));
        }
        if u32::try_from(n).is_err() {
            return Err(Error::Format(format!(
                "tokenizer.ggml.tokens has {n} tokens; ids are 32-bit"
            )));
        }
        let types: Vec<TokenType> = if token_types.is_empty() {
            vec![TokenType::Normal; n]
        } else if token_types.len() == n {
            token_types.into_iter().map(TokenType::from_gguf).collect()
        } else {
            return Err(Error::Format(format!(
                "tokenizer.ggml.token_type has {} entries for {n} tokens",
                token_types.len()
            )));
        };
        let check_id = |key: &str, id: Option<u32>| match id {
            Some(id) if id as usize >= n => Err(Error::Format(format!(
                "{key} is {id}, past the vocabulary's {n} tokens"
            ))),
            _ => Ok(()),
        };
        check_id("tokenizer.ggml.bos_token_id", bos)?;
        check_id("tokenizer.ggml.eos_token_id", eos)?;
        let add_bos = add_bos.unwrap_or(false);
        if add_bos && bos.is_none() {
            return Err(Error::Format(
                "tokenizer.ggml.add_bos_token is true but there is no tokenizer.ggml.bos_token_id"
                    .into(),
            ));
        }

        let mut vocab = Vocab::with_capacity(n);
        for (id, token) in (0u32..).zip(tokens.iter_mut()) {
            if token.is_empty() {
                // As llama.cpp names an empty token (it can never match).
                *token = format!("[EMPTY_{id}]");
            }
            if let Some(first) = vocab.insert(token.clone(), id) {
                return Err(Error::Format(format!(
                    "tokenizer.ggml.tokens lists {token:?} twice (ids {first} and {id})"
                )));
            }
        }
        let mut pairs = Vec::with_capacity(merges.len());
        for (i, mut merge) in merges.into_iter().enumerate() {
            // As llama.cpp splits: at the first space after the first byte.
            let Some(at) = merge.bytes().skip(1).position(|b| b == b' ') else {
                return Err(Error::Format(format!(
                    "tokenizer.ggml.merges[{i}] is {merge:?}, not two tokens separated by a space"
                )));
            };
            let second = merge.split_off(at + 2);
            merge.truncate(at + 1);
            pairs.push((merge, second));
        }
        let model = BPE::builder()
            .vocab_and_merges(vocab, pairs)
            .build()
            .map_err(|e| {
                Error::Format(format!(
                    "tokenizer.ggml.merges do not fit tokenizer.ggml.tokens: {e}"
                ))
            })?;
        let pre_tokenizer = Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, true)),
        ]);
        let specials = Specials::new(&tokens, &types);
        Ok(Bpe {
            model,
            pre_tokenizer,
            tokens,
            types,
            specials,
            bos,
            eos,
            add_bos,
        })
    }

    /// The ids of `text`, with no BOS added. Control tokens' texts become
    /// their ids only if `parse_special`: never set it for text a user
    /// wrote (see [`Bpe`]).
    ///
    /// # Errors
    /// [`Error::Tokenize`] if `tokenizers` fails on the text.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_into(text, parse_special, &mut ids)?;
        Ok(ids)
    }

    /// The ids of a chat prompt given as pieces
    /// ([`ChatTemplate::pieces`](crate::ChatTemplate::pieces)): BOS first if
    /// the model adds one (`tokenizer.ggml.add_bos_token`, as llama.cpp
    /// does), control tokens recognised in the template's pieces only, and
    /// the text between them encoded whole, across piece boundaries. For a
    /// prompt whose messages hold no control token's text, these are the
    /// ids of the rendered prompt encoded with `parse_special = true`; a
    /// message that does hold one is encoded as the plain text it is.
    ///
    /// # Errors
    /// [`Error::Tokenize`] if `tokenizers` fails on the text.
    pub fn encode_chat(&self, pieces: &[ChatPiece<'_>]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.add_bos {
            ids.extend(self.bos);
        }
        // Text since the last control token, encoded when the next one
        // (or the end) comes: the pre-tokenizer sees it whole.
        let mut pending = String::new();
        for piece in pieces {
            match piece {
                ChatPiece::Content(text) => pending.push_str(text),
                ChatPiece::Template(text) => {
                    let mut rest = text.as_str();
                    while let Some((start, end, id)) = self.specials.find(rest, true) {
                        pending.push_str(&rest[..start]);
                        self.encode_into(&pending, false, &mut ids)?;
                        pending.clear();
                        ids.push(id);
                        rest = &rest[end..];
                    }
                    pending.push_str(rest);
                }
            }
        }
        self.encode_into(&pending, false, &mut ids)?;
        Ok(ids)
    }

    /// The bytes of `ids` (byte-level decoded: any bytes, not necessarily
    /// UTF-8). Control tokens give their text as is, or nothing if
    /// `skip_special`; user-defined tokens their text; ids past the
    /// vocabulary, and unused tokens, nothing (as llama.cpp).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            self.push_bytes(id, !skip_special, &mut out);
        }
        out
    }

    /// The bytes token `id` decodes to (a control token's text as is), or
    /// `None` past the vocabulary. A token may end inside a UTF-8
    /// character: accumulate a stream's bytes and cut text at character
    /// boundaries ([`Utf8Stream`] does).
    pub fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.push_bytes(id, true, &mut out).then_some(out)
    }

    /// The id of the token whose text (as in `tokenizer.ggml.tokens`) is
    /// `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.model.token_to_id(text)
    }

    /// Token `id`'s text as in `tokenizer.ggml.tokens` (byte-level encoded
    /// for a normal token: a space is `Ġ`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Token `id`'s type.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// The number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// `tokenizer.ggml.bos_token_id`.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// `tokenizer.ggml.eos_token_id`.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether a prompt starts with BOS ([`Bpe::encode_chat`] adds it).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// `text` into `ids`: special tokens (control ones if `control`) split
    /// out, the text between them through the pre-tokenizer and BPE.
    fn encode_into(&self, text: &str, control: bool, ids: &mut Vec<u32>) -> Result<()> {
        let mut rest = text;
        while let Some((start, end, id)) = self.specials.find(rest, control) {
            self.encode_plain(&rest[..start], ids)?;
            ids.push(id);
            rest = &rest[end..];
        }
        self.encode_plain(rest, ids)
    }

    /// `text`, holding no special token, through the pre-tokenizer and BPE.
    fn encode_plain(&self, text: &str, ids: &mut Vec<u32>) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let tokenize = |e: tokenizers::Error| Error::Tokenize(e.to_string());
        let mut words = PreTokenizedString::from(text);
        self.pre_tokenizer
            .pre_tokenize(&mut words)
            .map_err(tokenize)?;
        for (word, _, _) in words.get_splits(OffsetReferential::Original, OffsetType::Byte) {
            ids.extend(
                self.model
                    .tokenize(word)
                    .map_err(tokenize)?
                    .iter()
                    .map(|t| t.id),
            );
        }
        Ok(())
    }

    /// Appends token `id`'s bytes; false if there is no such token.
    fn push_bytes(&self, id: u32, special: bool, out: &mut Vec<u8>) -> bool {
        let (Some(text), Some(kind)) = (self.tokens.get(id as usize), self.types.get(id as usize))
        else {
            return false;
        };
        match kind {
            TokenType::Normal => {
                for c in text.chars() {
                    match char_byte(c) {
                        Some(b) => out.push(b),
                        // Not a byte-level character: its own UTF-8 (what
                        // `tokenizers` does with the whole token).
                        None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    }
                }
            }
            TokenType::Control | TokenType::Unknown if special => {
                out.extend_from_slice(text.as_bytes());
            }
            TokenType::UserDefined => out.extend_from_slice(text.as_bytes()),
            TokenType::Byte => out.extend(byte_token(text)),
            // Control tokens skipped; unused and undefined ones.
            _ => {}
        }
        true
    }
}

/// The byte of a `<0xXX>` token.
fn byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// The special tokens, recognised in text before BPE.
struct Specials {
    /// Longest first (by bytes).
    list: Vec<Special>,
    /// For each first byte, the indices into `list` of the tokens starting
    /// with it (longest first).
    by_first_byte: Vec<Vec<usize>>,
    /// Whether any is user-defined (recognised without `parse_special`).
    any_user_defined: bool,
}

struct Special {
    text: String,
    id: u32,
    /// Control (or unknown): recognised only when asked.
    control: bool,
}

impl Specials {
    fn new(tokens: &[String], types: &[TokenType]) -> Specials {
        let mut list: Vec<Special> = (0u32..)
            .zip(tokens.iter().zip(types))
            .filter(|(_, (_, t))| t.is_special() || **t == TokenType::UserDefined)
            .map(|(id, (text, t))| Special {
                text: text.clone(),
                id,
                control: t.is_special(),
            })
            .collect();
        list.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.id.cmp(&b.id)));
        let mut by_first_byte = vec![Vec::new(); 256];
        for (i, special) in list.iter().enumerate() {
            if let Some(&b) = special.text.as_bytes().first() {
                by_first_byte[usize::from(b)].push(i);
            }
        }
        let any_user_defined = list.iter().any(|s| !s.control);
        Specials {
            list,
            by_first_byte,
            any_user_defined,
        }
    }

    /// The first special token in `text` (the longest at its position):
    /// its byte range and id. Control tokens only if `control`.
    fn find(&self, text: &str, control: bool) -> Option<(usize, usize, u32)> {
        if !control && !self.any_user_defined {
            return None;
        }
        let bytes = text.as_bytes();
        for (at, &b) in bytes.iter().enumerate() {
            // A token's first byte starts a character, so `at` is on a
            // character boundary when one matches.
            for &i in &self.by_first_byte[usize::from(b)] {
                let special = &self.list[i];
                if (control || !special.control) && bytes[at..].starts_with(special.text.as_bytes())
                {
                    return Some((at, at + special.text.len(), special.id));
                }
            }
        }
        None
    }
}

/// GPT-2's byte → character table (`bytes_to_unicode` in openai/gpt-2's
/// encoder.py): printable Latin-1 bytes are themselves, the 68 others
/// U+0100 onwards in byte order. (`tokenizers` encodes with its own copy;
/// this one checks [`char_byte`].)
#[cfg(test)]
const BYTE_CHARS: [char; 256] = byte_chars();

/// The number of bytes GPT-2 maps past U+00FF.
const UNPRINTABLE: usize = 68;

/// The inverse of [`BYTE_CHARS`] for U+0100 onwards.
const HIGH_CHAR_BYTES: [u8; UNPRINTABLE] = high_char_bytes();

const fn printable(b: usize) -> bool {
    matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff)
}

#[cfg(test)]
const fn byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 0x100;
    let mut b = 0;
    while b < 256 {
        table[b] = if printable(b) {
            b as u8 as char
        } else {
            let c = match char::from_u32(next) {
                Some(c) => c,
                None => '\0',
            };
            next += 1;
            c
        };
        b += 1;
    }
    table
}

const fn high_char_bytes() -> [u8; UNPRINTABLE] {
    let mut table = [0; UNPRINTABLE];
    let mut n = 0;
    let mut b = 0;
    while b < 256 {
        if !printable(b) {
            table[n] = b as u8;
            n += 1;
        }
        b += 1;
    }
    table
}

/// The byte a byte-level character stands for.
fn char_byte(c: char) -> Option<u8> {
    let code = c as usize;
    if code < 0x100 {
        printable(code).then_some(code as u8)
    } else {
        HIGH_CHAR_BYTES.get(code - 0x100).copied()
    }
}

/// Text from a stream of token bytes ([`Bpe::token_bytes`]), cut only at
/// UTF-8 character boundaries: a character split across tokens comes out
/// whole once its last byte arrives; bytes that cannot become UTF-8 come
/// out as U+FFFD (as `String::from_utf8_lossy` has them).
///
/// ```
/// use assay_tokenizer::Utf8Stream;
/// let mut stream = Utf8Stream::default();
/// assert_eq!(stream.push(&[b'h', 0xf0, 0x9f]), "h"); // half of 😀
/// assert_eq!(stream.push(&[0x98, 0x80, b'!']), "😀!");
/// assert_eq!(stream.finish(), "");
/// ```
#[derive(Debug, Default)]
pub struct Utf8Stream {
    /// Bytes of a character not yet complete (at most 3).
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// The text `bytes` complete: every whole character so far, keeping
    /// the bytes of one that may still be completed.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut rest = self.pending.as_slice();
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        // Invalid bytes: one replacement, then go on.
                        Some(len) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[len..];
                        }
                        // A character cut short: wait for its next bytes.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }

    /// The end of the stream: a character left incomplete becomes U+FFFD.
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-level text of `s` (each byte through GPT-2's table).
    fn bl(s: &str) -> String {
        s.bytes().map(|b| BYTE_CHARS[usize::from(b)]).collect()
    }

    /// A toy vocabulary: every byte that `words` use, then the merges'
    /// results in order, then `<|im_start|>`, `<|im_end|>` (control) and
    /// `<tool>` (user-defined).
    fn toy(merges: &[(&str, &str)], words: &str) -> Bpe {
        let mut tokens: Vec<String> = Vec::new();
        for b in words.bytes() {
            let t = BYTE_CHARS[usize::from(b)].to_string();
            if !tokens.contains(&t) {
                tokens.push(t);
            }
        }
        let mut merge_lines = Vec::new();
        for (a, b) in merges {
            let (a, b) = (bl(a), bl(b));
            let joined = format!("{a}{b}");
            if !tokens.contains(&joined) {
                tokens.push(joined);
            }
            merge_lines.push(format!("{a} {b}"));
        }
        let mut types = vec![1; tokens.len()];
        for (t, ty) in [("<|im_start|>", 3), ("<|im_end|>", 3), ("<tool>", 4)] {
            tokens.push(t.into());
            types.push(ty);
        }
        Bpe::new(BpeConfig {
            model: "gpt2".into(),
            pre: "smollm".into(),
            tokens,
            merges: merge_lines,
            token_types: types,
            bos: None,
            eos: None,
            add_bos: None,
        })
        .expect("toy vocabulary")
    }

    fn texts(bpe: &Bpe, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&id| bpe.token_text(id).unwrap_or("?").to_owned())
            .collect()
    }

    #[test]
    fn bpe_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Bpe>();
        shared::<crate::ChatTemplate>();
    }

    #[test]
    fn byte_table_is_gpt2s() {
        assert_eq!(BYTE_CHARS[usize::from(b' ')], 'Ġ');
        assert_eq!(BYTE_CHARS[usize::from(b'\n')], 'Ċ');
        assert_eq!(BYTE_CHARS[usize::from(b'\t')], 'ĉ');
        assert_eq!(BYTE_CHARS[0], 'Ā');
        assert_eq!(BYTE_CHARS[0xad], 'Ń');
        assert_eq!(BYTE_CHARS[b'A' as usize], 'A');
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = BYTE_CHARS[usize::from(b)];
            assert!(seen.insert(c), "{c:?} twice");
            assert_eq!(char_byte(c), Some(b), "{c:?}");
        }
        assert_eq!(char_byte('€'), None);
        assert_eq!(char_byte('\u{144}'), None);
    }

    #[test]
    fn merges_apply_in_rank_order() {
        // "abc": (b, c) outranks (a, b), so b+c first, then a+bc.
        let bpe = toy(&[("b", "c"), ("a", "b"), ("a", "bc")], "abc");
        assert_eq!(
            texts(&bpe, &bpe.encode("abc", false).expect("ids")),
            ["abc"]
        );
        // Ranked the other way: a+b first, and no merge makes abc from ab+c.
        let bpe = toy(&[("a", "b"), ("b", "c")], "abc");
        assert_eq!(
            texts(&bpe, &bpe.encode("abc", false).expect("ids")),
            ["ab", "c"]
        );
        // Repeated pairs merge left to right: "aaa" → "aa" + "a".
        let bpe = toy(&[("a", "a")], "a");
        assert_eq!(
            texts(&bpe, &bpe.encode("aaa", false).expect("ids")),
            ["aa", "a"]
        );
    }

    #[test]
    fn pre_tokenizer_splits_digits_and_words() {
        let bpe = toy(&[("1", "2"), (" ", "a"), ("'", "s")], "12 a's\n");
        // Digits one by one, so "12" never forms; " a" and "'s" do.
        assert_eq!(
            texts(&bpe, &bpe.encode("12 a's", false).expect("ids")),
            ["1", "2", "Ġa", "'s"]
        );
        assert_eq!(
            texts(&bpe, &bpe.encode("a\n\n a", false).expect("ids")),
            ["a", "Ċ", "Ċ", "Ġa"]
        );
    }

    #[test]
    fn bytes_without_a_token_are_dropped() {
        let bpe = toy(&[], "ab");
        assert_eq!(
            texts(&bpe, &bpe.encode("axb\u{1}", false).expect("ids")),
            ["a", "b"]
        );
        assert_eq!(bpe.encode("é", false).expect("ids"), Vec::<u32>::new());
    }

    #[test]
    fn special_tokens_only_when_asked() {
        let bpe = toy(&[], "<|>_imstartend abcdol");
        let start = bpe.token_id("<|im_start|>").expect("start");
        let end = bpe.token_id("<|im_end|>").expect("end");
        let tool = bpe.token_id("<tool>").expect("tool");
        let text = "<|im_start|>a<tool>b<|im_end|>";
        let parsed = bpe.encode(text, true).expect("ids");
        assert_eq!(parsed.first(), Some(&start));
        assert_eq!(parsed.last(), Some(&end));
        assert!(parsed.contains(&tool));
        let plain = bpe.encode(text, false).expect("ids");
        assert!(
            !plain.contains(&start) && !plain.contains(&end),
            "{plain:?}"
        );
        // User-defined tokens are recognised either way.
        assert!(plain.contains(&tool));
        // Both decode to the same text.
        assert_eq!(bpe.decode(&parsed, false), text.as_bytes());
        assert_eq!(bpe.decode(&plain, false), text.as_bytes());
        // Skipping special tokens drops the control ones only.
        assert_eq!(bpe.decode(&parsed, true), b"a<tool>b");
        assert_eq!(
            bpe.token_bytes(start).as_deref(),
            Some(&b"<|im_start|>"[..])
        );
        assert_eq!(bpe.token_bytes(9999), None);
    }

    #[test]
    fn decode_round_trips_any_bytes() {
        // Every byte has a token: any text round-trips, byte for byte.
        let all: String = (0..=255u8).map(|b| BYTE_CHARS[usize::from(b)]).collect();
        let tokens: Vec<String> = all.chars().map(String::from).collect();
        let bpe = Bpe::new(BpeConfig {
            model: "gpt2".into(),
            pre: "smollm".into(),
            tokens,
            ..BpeConfig::default()
        })
        .expect("byte vocabulary");
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let ids = bpe.encode(&text, false).expect("ids");
            assert_eq!(bpe.decode(&ids, false), text.as_bytes());
            // Byte by byte, as a stream.
            let mut stream = Utf8Stream::default();
            let mut streamed = String::new();
            for &id in &ids {
                streamed.push_str(&stream.push(&bpe.token_bytes(id).expect("token")));
            }
            streamed.push_str(&stream.finish());
            assert_eq!(streamed, text);
        }
        // Raw bytes that are not UTF-8 decode as they are.
        let ids: Vec<u32> = [0xffu8, 0xfe, b'a'].iter().map(|&b| u32::from(b)).collect();
        assert_eq!(bpe.decode(&ids, false), [0xff, 0xfe, b'a']);
    }

    #[test]
    fn utf8_stream_cuts_at_character_boundaries() {
        let mut stream = Utf8Stream::default();
        assert_eq!(stream.push(&[0xe4]), "");
        assert_eq!(stream.push(&[0xb8]), "");
        assert_eq!(stream.push(&[0xad, b'x']), "中x");
        // Invalid bytes become U+FFFD at once; a cut-off character at the end.
        assert_eq!(stream.push(&[0xff, b'y', 0xc3]), "\u{fffd}y");
        assert_eq!(stream.finish(), "\u{fffd}");
    }

    #[test]
    fn refuses_what_it_does_not_implement() {
        let config = |model: &str, pre: &str| BpeConfig {
            model: model.into(),
            pre: pre.into(),
            tokens: vec!["a".into()],
            ..BpeConfig::default()
        };
        let err = Bpe::new(config("llama", "smollm")).expect_err("spm");
        assert!(
            matches!(&err, Error::Unsupported(m) if m.contains("\"llama\"")),
            "{err}"
        );
        let err = Bpe::new(config("gpt2", "llama-bpe")).expect_err("llama3");
        assert!(
            matches!(&err, Error::Unsupported(m) if m.contains("\"llama-bpe\"")),
            "{err}"
        );
        let err = Bpe::new(config("gpt2", "")).expect_err("no pre");
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
    }

    #[test]
    fn rejects_metadata_that_does_not_hold_together() {
        let base = || BpeConfig {
            model: "gpt2".into(),
            pre: "smollm".into(),
            tokens: ["a", "b", "ab"].map(String::from).to_vec(),
            merges: vec!["a b".into()],
            ..BpeConfig::default()
        };
        let cases: Vec<(BpeConfig, &str)> = vec![
            (
                BpeConfig {
                    tokens: vec![],
                    ..base()
                },
                "empty",
            ),
            (
                BpeConfig {
                    tokens: ["a", "b", "a"].map(String::from).to_vec(),
                    merges: vec![],
                    ..base()
                },
                "twice",
            ),
            (
                BpeConfig {
                    merges: vec!["ab".into()],
                    ..base()
                },
                "separated by a space",
            ),
            (
                BpeConfig {
                    merges: vec!["a c".into()],
                    ..base()
                },
                "do not fit",
            ),
            (
                BpeConfig {
                    merges: vec!["b a".into()],
                    ..base()
                },
                "do not fit",
            ),
            (
                BpeConfig {
                    token_types: vec![1, 1],
                    ..base()
                },
                "2 entries for 3 tokens",
            ),
            (
                BpeConfig {
                    eos: Some(3),
                    ..base()
                },
                "eos_token_id is 3",
            ),
            (
                BpeConfig {
                    add_bos: Some(true),
                    ..base()
                },
                "add_bos_token",
            ),
        ];
        for (config, want) in cases {
            match Bpe::new(config) {
                Err(Error::Format(m)) => assert!(m.contains(want), "{m:?} lacks {want:?}"),
                other => panic!("{want}: {other:?}"),
            }
        }
    }

    #[test]
    fn bos_starts_a_chat_prompt_when_the_model_adds_it() {
        let config = BpeConfig {
            model: "gpt2".into(),
            pre: "smollm".into(),
            tokens: ["<s>", "h", "i"].map(String::from).to_vec(),
            token_types: vec![3, 1, 1],
            bos: Some(0),
            add_bos: Some(true),
            ..BpeConfig::default()
        };
        let bpe = Bpe::new(config).expect("bpe");
        let pieces = [ChatPiece::Template("h".into()), ChatPiece::Content("i")];
        assert_eq!(bpe.encode_chat(&pieces).expect("ids"), [0, 1, 2]);
        // `encode` adds nothing.
        assert_eq!(bpe.encode("hi", false).expect("ids"), [1, 2]);
    }
}
