//! From the job's messages to prompt token ids, and from generated ids
//! back to text: the model's chat template and byte-level BPE tokenizer
//! (`assay-tokenizer`), read from the GGUF metadata.

use assay_guest::Gguf;
use assay_guest::prelude::*;
use assay_tokenizer::{Bpe, BpeConfig, ChatTemplate};
use serde::Deserialize;

/// Most messages in a job.
const MAX_MESSAGES: usize = 1024;
/// Most stop strings, as OpenAI allows.
const MAX_STOPS: usize = 4;
/// Longest stop string, in bytes.
const MAX_STOP_BYTES: usize = 256;

/// One message of the conversation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    role: String,
    content: String,
}

/// The model's tokenizer and chat template.
pub struct Chat {
    bpe: Bpe,
    template: ChatTemplate,
    /// Tokens that end the assistant's turn.
    end_of_turn: Vec<u32>,
}

impl Chat {
    /// Reads the tokenizer and chat template from the model's metadata.
    ///
    /// # Errors
    /// A tokenizer or template this guest does not support, or missing metadata.
    pub fn read(file: &Gguf) -> Result<Chat> {
        let strings = |key: &str| -> Result<Vec<String>> {
            let items = file
                .get(key)
                .and_then(|v| v.as_array())
                .ok_or_else(|| Error::Format(format!("the model has no {key} array")))?;
            items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        Error::Format(format!("{key} holds a value that is not a string"))
                    })
                })
                .collect()
        };
        let token_types: Vec<i32> = match file
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.as_array())
        {
            Some(items) => items
                .iter()
                .map(|v| {
                    v.as_u64()
                        .and_then(|t| i32::try_from(t).ok())
                        .ok_or_else(|| {
                            Error::Format(
                                "tokenizer.ggml.token_type holds a value that is not a type".into(),
                            )
                        })
                })
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let id = |key: &str| -> Result<Option<u32>> {
            match file.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .map(Some)
                    .ok_or_else(|| Error::Format(format!("{key} is not a token id"))),
            }
        };
        let (bos, eos) = (
            id("tokenizer.ggml.bos_token_id")?,
            id("tokenizer.ggml.eos_token_id")?,
        );
        let add_bos = match file.get("tokenizer.ggml.add_bos_token") {
            None => None,
            Some(assay_guest::gguf::Value::Bool(b)) => Some(*b),
            Some(_) => {
                return Err(Error::Format(
                    "tokenizer.ggml.add_bos_token is not a bool".into(),
                ));
            }
        };
        let config = BpeConfig {
            model: file.string("tokenizer.ggml.model")?.to_owned(),
            pre: file.string("tokenizer.ggml.pre")?.to_owned(),
            tokens: strings("tokenizer.ggml.tokens")?,
            merges: strings("tokenizer.ggml.merges")?,
            token_types,
            bos,
            eos,
            add_bos,
        };
        let bpe = Bpe::new(config)
            .map_err(|e| Error::Unsupported(format!("the model's tokenizer: {e}")))?;
        let eot = id("tokenizer.ggml.eot_token_id")?;
        let mut end_of_turn: Vec<u32> = eos.into_iter().chain(eot).collect();
        end_of_turn.extend(bpe.token_id("<|endoftext|>"));
        let template = ChatTemplate::new(file.string("tokenizer.chat_template")?)
            .map_err(|e| Error::Unsupported(format!("the model's chat template: {e}")))?;
        Ok(Chat {
            bpe,
            template,
            end_of_turn,
        })
    }

    /// The prompt's token ids for the job's `messages` (a JSON array of
    /// `{role, content}`), rendered with the chat template and a
    /// generation prompt for the assistant's turn.
    ///
    /// # Errors
    /// Messages that are not such an array, or a template this guest cannot render.
    pub fn prompt(&self, messages: &str) -> Result<Vec<u32>> {
        let messages: Vec<Message> = serde_json::from_str(messages).map_err(|e| {
            Error::Format(format!(
                "messages must be a JSON array of {{\"role\", \"content\"}} objects: {e}"
            ))
        })?;
        if messages.is_empty() || messages.len() > MAX_MESSAGES {
            return Err(Error::InvalidArgument(format!(
                "messages holds {} messages; give 1 to {MAX_MESSAGES}",
                messages.len()
            )));
        }
        for (i, m) in messages.iter().enumerate() {
            if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
                return Err(Error::InvalidArgument(format!(
                    "message {i} has role {:?}; use system, user or assistant",
                    m.role
                )));
            }
        }
        let pairs: Vec<(&str, &str)> = messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        let pieces = self.template.pieces(&pairs, true);
        self.bpe
            .encode_chat(&pieces)
            .map_err(|e| Error::Other(format!("tokenizing the prompt: {e}")))
    }

    /// A prompt given as token ids (a JSON array), each checked against the vocabulary.
    ///
    /// # Errors
    /// Not such an array, no ids, or an id outside the vocabulary.
    pub fn checked_ids(&self, json: &str) -> Result<Vec<u32>> {
        let ids: Vec<u32> = serde_json::from_str(json).map_err(|e| {
            Error::Format(format!("prompt_ids must be a JSON array of token ids: {e}"))
        })?;
        if ids.is_empty() {
            return Err(Error::InvalidArgument("prompt_ids holds no ids".into()));
        }
        let vocab = self.bpe.vocab_size();
        if let Some((at, id)) = ids
            .iter()
            .enumerate()
            .find(|(_, id)| (**id as usize) >= vocab)
        {
            return Err(Error::InvalidArgument(format!(
                "prompt_ids[{at}] = {id} is outside the vocabulary of {vocab} tokens"
            )));
        }
        Ok(ids)
    }

    /// Whether `id` ends the assistant's turn.
    pub fn ends_turn(&self, id: u32) -> bool {
        self.end_of_turn.contains(&id)
    }

    /// The text of generated `ids` (invalid UTF-8 replaced by U+FFFD).
    pub fn text(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.bpe.decode(ids, true)).into_owned()
    }
}

/// The strings that end a completion.
#[derive(Debug, Default)]
pub struct Stops(Vec<String>);

impl Stops {
    /// The `stop` param: a JSON array of strings, or one plain string.
    ///
    /// # Errors
    /// More than 4 strings, an empty or over-long one, or a malformed array.
    pub fn parse(param: Option<&str>) -> Result<Stops> {
        let bad = |message: String| Error::Param {
            name: "stop".into(),
            message,
        };
        let stops: Vec<String> = match param {
            None => Vec::new(),
            Some(p) if p.trim_start().starts_with('[') => serde_json::from_str(p)
                .map_err(|e| bad(format!("a JSON array of strings, or one string: {e}")))?,
            Some(p) => vec![p.to_owned()],
        };
        if stops.len() > MAX_STOPS {
            return Err(bad(format!(
                "{} strings; give at most {MAX_STOPS}",
                stops.len()
            )));
        }
        if let Some(s) = stops
            .iter()
            .find(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
        {
            return Err(bad(format!(
                "{s:?}: each string must have 1 to {MAX_STOP_BYTES} bytes"
            )));
        }
        Ok(Stops(stops))
    }

    /// Where the first stop string starts in `text`, if one appears.
    pub fn first_in(&self, text: &str) -> Option<usize> {
        self.0.iter().filter_map(|s| text.find(s.as_str())).min()
    }
}
