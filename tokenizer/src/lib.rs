//! `assay-tokenizer`: text to token ids exactly as a model's tokenizer
//! does, fast enough to build once per job inside a Wasm guest: BERT's
//! WordPiece from a `tokenizer.json` ([`Encoder`]), and byte-level BPE from
//! a GGUF language model's metadata ([`Bpe`]) with its ChatML chat template
//! ([`ChatTemplate`]).
//!
//! # Sentence embeddings: `tokenizer.json`
//!
//! Two programs tokenize the same way with this crate: the minilm-embed
//! guest, which reads the job's `tokenizer` input in every run, and the
//! gateway, which tokenizes requests once, natively, and sends the guest
//! whole token sequences (its `sequences` input), so that a one-sentence
//! job no longer spends most of its time reading a 700 KB vocabulary.
//! Both get the ids `tokenizers` itself gives: the crate's tests compare
//! them with the library's on thousands of lines.
//!
//! ## Example
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
//!
//! # Language models: GGUF metadata
//!
//! [`Bpe`] is llama.cpp's byte-level BPE (`tokenizer.ggml.model` `gpt2`,
//! `tokenizer.ggml.pre` `smollm`: SmolLM2), built with `tokenizers`' BPE
//! model and pre-tokenizers from the metadata values the caller read from
//! the file (this crate does not parse GGUF); [`ChatTemplate`] renders the
//! file's `tokenizer.chat_template` when it is a ChatML one
//! ([`render_chat`] for the text alone). Generated ids decode to bytes
//! ([`Bpe::decode`]), or token by token ([`Bpe::token_bytes`]) into a
//! [`Utf8Stream`], which cuts text at character boundaries. A prompt is
//! encoded so that a message cannot write control tokens:
//!
//! ```
//! use assay_tokenizer::{Bpe, BpeConfig, ChatTemplate};
//! # fn metadata() -> (BpeConfig, String) {
//! #     let mut tokens: Vec<String> = "abcdefghijklmnopqrstuvwxyz!<>|_".chars().map(String::from).collect();
//! #     tokens.extend(["Ċ", "Ġ", "<|im_start|>", "<|im_end|>"].map(String::from));
//! #     let mut token_types = vec![1; tokens.len()];
//! #     token_types[tokens.len() - 2..].fill(3);
//! #     let template = r"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
//! #     let config = BpeConfig { model: "gpt2".into(), pre: "smollm".into(), tokens, token_types, ..BpeConfig::default() };
//! #     (config, template.into())
//! # }
//! // tokenizer.ggml.* and tokenizer.chat_template, read from the file.
//! let (config, template): (BpeConfig, String) = metadata();
//! let bpe = Bpe::new(config)?;
//! let chat = ChatTemplate::new(&template)?;
//! let messages = [("user", "hi <|im_end|>")];
//! assert_eq!(
//!     chat.render(&messages, true),
//!     "<|im_start|>user\nhi <|im_end|><|im_end|>\n<|im_start|>assistant\n"
//! );
//! let ids = bpe.encode_chat(&chat.pieces(&messages, true))?;
//! let im_end = bpe.token_id("<|im_end|>");
//! // One <|im_end|>: the template's; the message's is text.
//! assert_eq!(ids.iter().filter(|&&id| Some(id) == im_end).count(), 1);
//! assert_eq!(bpe.decode(&ids, false), chat.render(&messages, true).as_bytes());
//! # Ok::<(), assay_tokenizer::Error>(())
//! ```

#![forbid(unsafe_code)]

mod bpe;
mod chat;
mod wordpiece;

pub use bpe::{Bpe, BpeConfig, MODEL_GPT2, PRE_TOKENIZERS, TokenType, Utf8Stream};
pub use chat::{ChatPiece, ChatTemplate, render_chat};
pub use wordpiece::{AsciiWords, Encoder, WordPiece};

/// What can go wrong reading a tokenizer or tokenizing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a tokenizer.json this crate (or `tokenizers`) can
    /// read, or it lacks what a request needs (`[CLS]`, `[SEP]`); or GGUF
    /// tokenizer metadata that does not hold together.
    #[error("{0}")]
    Format(String),
    /// `tokenizers` failed on a text.
    #[error("tokenizing: {0}")]
    Tokenize(String),
    /// A tokenizer, pre-tokenizer or chat template this crate does not
    /// implement (the message names it).
    #[error("{0}")]
    Unsupported(String),
}

/// This crate's results.
pub type Result<T> = std::result::Result<T, Error>;
