//! `assay-tokenizer`: text to token ids exactly as a model's
//! `tokenizer.json` says, set up as sentence-transformers uses it, and
//! fast enough to read the file once per job inside a Wasm guest.
//!
//! Two programs tokenize the same way with this crate: the minilm-embed
//! guest, which reads the job's `tokenizer` input in every run, and the
//! gateway, which tokenizes requests once, natively, and sends the guest
//! whole token sequences (its `sequences` input), so that a one-sentence
//! job no longer spends most of its time reading a 700 KB vocabulary.
//! Both get the ids `tokenizers` itself gives: the crate's tests compare
//! them with the library's on thousands of lines.
//!
//! # Example
//!
//! ```
//! use assay_tokenizer::Encoder;
//! # fn file() -> &'static [u8] {
//! #     let vocab = serde_json::json!({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5});
//! #     let special = |name: &str, id: u32| serde_json::json!({"id": name, "ids": [id], "tokens": [name]});
//! #     let file = serde_json::json!({
//! #         "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
//! #         "pre_tokenizer": {"type": "BertPreTokenizer"},
//! #         "post_processor": {"type": "TemplateProcessing",
//! #             "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
//! #             "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
//! #             "special_tokens": {"[CLS]": special("[CLS]", 2), "[SEP]": special("[SEP]", 3)}},
//! #         "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab},
//! #     });
//! #     serde_json::to_vec(&file).unwrap().leak()
//! # }
//! // The bytes of a tokenizer.json; they stay borrowed by the vocabulary.
//! let bytes: &'static [u8] = file();
//! let encoder = Encoder::read(bytes, 256)?;
//! assert_eq!(encoder.ids("Hello world")?, [2, 4, 5, 3]);
//! // Token ids a client sent, made a whole sequence the same way.
//! assert_eq!(encoder.wrap_ids(&[5, 4], 256)?, [2, 5, 4, 3]);
//! # Ok::<(), assay_tokenizer::Error>(())
//! ```

#![forbid(unsafe_code)]

mod wordpiece;

pub use wordpiece::{AsciiWords, Encoder, WordPiece};

/// What can go wrong reading a tokenizer or tokenizing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a tokenizer.json this crate (or `tokenizers`) can
    /// read, or it lacks what a request needs (`[CLS]`, `[SEP]`).
    #[error("{0}")]
    Format(String),
    /// `tokenizers` failed on a text.
    #[error("tokenizing: {0}")]
    Tokenize(String),
}

/// This crate's results.
pub type Result<T> = std::result::Result<T, Error>;
