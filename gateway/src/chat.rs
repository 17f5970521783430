//! OpenAI's chat completions API over the llm-generate guest: parsing and
//! checking a request (pure), running it as one verified job, and writing
//! the response: a `chat.completion`, or with `stream: true` the
//! `chat.completion.chunk`s of server-sent events ([`chunks`]).
//!
//! `messages` are `{role, content}` with role `system` (or `developer`,
//! taken as system), `user` or `assistant`, and content a string or an
//! array of `{"type": "text", "text": …}` parts (joined). Honoured:
//! `max_completion_tokens` (or the older `max_tokens`), `temperature`
//! (OpenAI's default 1), `top_p`, `stop`, `seed`, `stream` and
//! `stream_options.include_usage`. Refused clearly: `n` other than 1,
//! `stream_options` without `stream`, tools, logprobs, penalties other
//! than 0, a `response_format` other than text. `user` is accepted and
//! ignored.
//!
//! A job's tokens are seen only with its receipt, so a stream cannot send
//! them as they are generated: it sends comments while the job runs (so
//! clients and proxies see the connection alive), then the whole
//! completion as chunks at once, split at word boundaries ([`pieces`]):
//! their contents joined are the non-streaming answer's, byte for byte.
//!
//! Each request is one job: its `messages` input is the conversation as
//! the guest reads it, and the model renders it with its own chat
//! template, so the job's outputs root says exactly what was asked. The
//! response's `usage` counts the job's prompt and generated tokens.

use std::sync::Arc;
use std::time::Duration;

use assay_proto::client;
use assay_protocol::market::cost;
use assay_protocol::{BlobRef, Hash32, JobSpec, NodeKey};
use serde_json::{Value, json};

use crate::Error;
use crate::jobs::{Component, Finished, Jobs};
use crate::openai::{json_object, model_field};

/// The most messages in a request.
pub const MAX_MESSAGES: usize = 1024;
/// The most bytes of all messages' content together.
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;
/// The most tokens a request may ask for (the guest's own limit).
pub const MAX_COMPLETION_TOKENS: u64 = 4096;
/// Tokens generated when the request does not say.
pub const DEFAULT_COMPLETION_TOKENS: u64 = 256;

/// Fuel (guest instructions) per job and per token: reading the GGUF
/// header and building the tokenizer, then per generated token the
/// sampling over the vocabulary.
const FUEL_PER_JOB: u64 = 4_000_000_000;
const FUEL_PER_TOKEN: u64 = 40_000_000;
/// Work units per job (the weights decoded once) and per token: a
/// forward pass reads every weight (~0.6 G bytes) and does ~0.3 G FLOPs.
const WORK_PER_JOB: u64 = 2_000_000_000;
const WORK_PER_TOKEN: u64 = 1_200_000_000;

/// The chat model this gateway serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatCard {
    /// The names a request may use; the first is the canonical one.
    pub names: Vec<String>,
    /// Who made it (`owned_by`).
    pub owned_by: String,
}

impl ChatCard {
    /// SmolLM2-135M-Instruct.
    pub fn smollm2() -> ChatCard {
        ChatCard {
            names: vec![
                "SmolLM2-135M-Instruct".into(),
                "HuggingFaceTB/SmolLM2-135M-Instruct".into(),
            ],
            owned_by: "HuggingFaceTB".into(),
        }
    }

    /// Whether `name` names this model.
    pub fn answers_to(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

/// A checked chat completions request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The model name as asked (echoed in the response).
    pub model: String,
    /// `(role, content)`, roles as the guest takes them.
    pub messages: Vec<(String, String)>,
    /// The most tokens to generate.
    pub max_tokens: u64,
    /// 0: greedy.
    pub temperature: f64,
    pub top_p: f64,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    /// Answer with server-sent events (`stream: true`).
    pub stream: bool,
    /// Streamed, end with a chunk of `usage` (`stream_options.include_usage`).
    pub include_usage: bool,
}

fn number(
    fields: &serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<Option<f64>, Error> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| Error::bad(name, format!("`{name}` must be a number"))),
    }
}

impl ChatRequest {
    /// Parses and checks a request body against `card`.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] naming the field at fault, or
    /// [`Error::ModelNotFound`].
    pub fn parse(body: &[u8], card: &ChatCard) -> Result<ChatRequest, Error> {
        let fields = json_object(body)?;
        let model = model_field(&fields, "SmolLM2-135M-Instruct")?;
        if !card.answers_to(&model) {
            return Err(Error::ModelNotFound(model));
        }
        let messages = match fields.get("messages") {
            Some(Value::Array(items)) => parse_messages(items)?,
            Some(_) => return Err(Error::bad("messages", "`messages` must be an array")),
            None => {
                return Err(Error::BadRequest {
                    message: "you must provide a messages parameter: an array of {role, content}"
                        .into(),
                    param: Some("messages"),
                    code: "missing_required_parameter",
                });
            }
        };
        let max_tokens = match (
            fields.get("max_completion_tokens"),
            fields.get("max_tokens"),
        ) {
            (Some(v), _) if !v.is_null() => Some(("max_completion_tokens", v)),
            (_, Some(v)) if !v.is_null() => Some(("max_tokens", v)),
            _ => None,
        };
        let max_tokens = match max_tokens {
            None => DEFAULT_COMPLETION_TOKENS,
            Some((name, v)) => match v.as_u64() {
                Some(n) if (1..=MAX_COMPLETION_TOKENS).contains(&n) => n,
                _ => {
                    return Err(Error::bad(
                        name,
                        format!("`{name}` must be an integer from 1 to {MAX_COMPLETION_TOKENS}"),
                    ));
                }
            },
        };
        let temperature = number(&fields, "temperature")?.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(Error::bad(
                "temperature",
                "`temperature` must be from 0 to 2",
            ));
        }
        let top_p = number(&fields, "top_p")?.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(Error::bad("top_p", "`top_p` must be above 0 and at most 1"));
        }
        let stop = match fields.get("stop") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    Error::bad("stop", "`stop` must be a string or an array of strings")
                })?,
            Some(_) => {
                return Err(Error::bad(
                    "stop",
                    "`stop` must be a string or an array of strings",
                ));
            }
        };
        if stop.len() > 4 || stop.iter().any(|s| s.is_empty() || s.len() > 256) {
            return Err(Error::bad(
                "stop",
                "`stop` takes at most 4 strings of 1 to 256 bytes",
            ));
        }
        let seed = match fields.get("seed") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .map(|s| s as u64)
                    .ok_or_else(|| Error::bad("seed", "`seed` must be an integer"))?,
            ),
        };
        let (stream, include_usage) = stream_fields(&fields)?;
        refuse_unsupported(&fields)?;
        Ok(ChatRequest {
            model,
            messages,
            max_tokens,
            temperature,
            top_p,
            stop,
            seed,
            stream,
            include_usage,
        })
    }

    /// The most tokens the prompt can be: a byte-level BPE token covers at
    /// least one byte, plus the chat template's markers and default system
    /// message.
    pub fn most_prompt_tokens(&self) -> u64 {
        let bytes: usize = self.messages.iter().map(|(r, c)| r.len() + c.len()).sum();
        bytes as u64 + 8 * self.messages.len() as u64 + 64
    }

    /// The job's spec: budgets for the prompt and the completion, and the
    /// sampling params.
    pub fn spec(&self) -> JobSpec {
        let tokens = self.most_prompt_tokens() + self.max_tokens;
        let mut spec = JobSpec {
            fuel: FUEL_PER_JOB.saturating_add(FUEL_PER_TOKEN.saturating_mul(tokens)),
            work_budget: WORK_PER_JOB.saturating_add(WORK_PER_TOKEN.saturating_mul(tokens)),
            wall_clock_ms: 300_000,
            ..JobSpec::default()
        };
        let p = &mut spec.params;
        p.insert("max_tokens".into(), self.max_tokens.to_string());
        p.insert("temperature".into(), self.temperature.to_string());
        p.insert("top_p".into(), self.top_p.to_string());
        if !self.stop.is_empty() {
            p.insert("stop".into(), json!(self.stop).to_string());
        }
        if let Some(seed) = self.seed {
            p.insert("seed".into(), seed.to_string());
        }
        spec
    }

    /// The guest's `messages` input.
    pub fn messages_input(&self) -> Vec<u8> {
        let items: Vec<Value> = self
            .messages
            .iter()
            .map(|(role, content)| json!({ "role": role, "content": content }))
            .collect();
        Value::Array(items).to_string().into_bytes()
    }
}

fn parse_messages(items: &[Value]) -> Result<Vec<(String, String)>, Error> {
    if items.is_empty() || items.len() > MAX_MESSAGES {
        return Err(Error::bad(
            "messages",
            format!("give 1 to {MAX_MESSAGES} messages (got {})", items.len()),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut bytes = 0usize;
    for (i, item) in items.iter().enumerate() {
        let bad = |m: String| Error::bad("messages", format!("messages[{i}]: {m}"));
        let role = match item.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => "system",
            Some("user") => "user",
            Some("assistant") => "assistant",
            Some(other) => {
                return Err(bad(format!(
                    "role {other:?} is not supported; use system, developer, user or assistant"
                )));
            }
            None => return Err(bad("needs a string `role`".into())),
        };
        let content = match item.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match (part.get("type").and_then(Value::as_str), part.get("text")) {
                        (Some("text"), Some(Value::String(t))) => text.push_str(t),
                        _ => {
                            return Err(bad(
                                "content parts must be {\"type\": \"text\", \"text\": …}: this model reads text only".into(),
                            ));
                        }
                    }
                }
                text
            }
            Some(Value::Null) | None if role == "assistant" => String::new(),
            _ => {
                return Err(bad(
                    "needs `content`: a string or an array of text parts".into()
                ));
            }
        };
        bytes += content.len();
        if bytes > MAX_CONTENT_BYTES {
            return Err(Error::bad(
                "messages",
                format!("the messages' content is over {MAX_CONTENT_BYTES} bytes"),
            ));
        }
        out.push((role.to_owned(), content));
    }
    Ok(out)
}

/// `stream` and `stream_options.include_usage`. As OpenAI does,
/// `stream_options` is refused unless `stream` is true;
/// `include_obfuscation` is accepted and ignored (no padding is added).
fn stream_fields(fields: &serde_json::Map<String, Value>) -> Result<(bool, bool), Error> {
    let stream = match fields.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::bad("stream", "`stream` must be true or false")),
    };
    let options = match fields.get("stream_options") {
        None | Some(Value::Null) => return Ok((stream, false)),
        Some(_) if !stream => {
            return Err(Error::bad(
                "stream_options",
                "`stream_options` is only allowed when `stream` is true",
            ));
        }
        Some(Value::Object(options)) => options,
        Some(_) => {
            return Err(Error::bad(
                "stream_options",
                "`stream_options` must be an object such as {\"include_usage\": true}",
            ));
        }
    };
    let mut include_usage = false;
    for (name, value) in options {
        match (name.as_str(), value) {
            (_, Value::Null) => {}
            ("include_usage", Value::Bool(b)) => include_usage = *b,
            ("include_obfuscation", Value::Bool(_)) => {}
            ("include_usage" | "include_obfuscation", _) => {
                return Err(Error::bad(
                    "stream_options",
                    format!("`stream_options.{name}` must be true or false"),
                ));
            }
            _ => {
                return Err(Error::bad(
                    "stream_options",
                    format!(
                        "`stream_options.{name}` is not supported: this gateway takes `include_usage`"
                    ),
                ));
            }
        }
    }
    Ok((stream, include_usage))
}

/// Fields this gateway cannot honour, refused rather than ignored.
fn refuse_unsupported(fields: &serde_json::Map<String, Value>) -> Result<(), Error> {
    let set = |name: &str| fields.get(name).is_some_and(|v| !v.is_null());
    if fields
        .get("n")
        .is_some_and(|v| !v.is_null() && v.as_u64() != Some(1))
    {
        return Err(Error::bad(
            "n",
            "this gateway makes one choice per request: leave `n` out or set it to 1",
        ));
    }
    for name in ["tools", "functions", "tool_choice", "function_call"] {
        if set(name) {
            return Err(Error::bad(
                name,
                format!("`{name}` is not supported by this model"),
            ));
        }
    }
    if fields
        .get("logprobs")
        .is_some_and(|v| v.as_bool() == Some(true))
        || set("top_logprobs")
    {
        return Err(Error::bad(
            "logprobs",
            "log probabilities are not supported",
        ));
    }
    for name in ["presence_penalty", "frequency_penalty"] {
        if fields
            .get(name)
            .is_some_and(|v| !v.is_null() && v.as_f64() != Some(0.0))
        {
            return Err(Error::bad(
                name,
                format!("`{name}` is not supported: leave it out or 0"),
            ));
        }
    }
    if set("logit_bias") {
        return Err(Error::bad("logit_bias", "`logit_bias` is not supported"));
    }
    if let Some(format) = fields.get("response_format").filter(|v| !v.is_null())
        && format.get("type").and_then(Value::as_str) != Some("text")
    {
        return Err(Error::bad(
            "response_format",
            "only {\"type\": \"text\"} is supported",
        ));
    }
    Ok(())
}

/// Where and how the chat jobs run.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// The coordinator's URL.
    pub coordinator: String,
    /// The llm-generate component.
    pub component: Arc<[u8]>,
    /// The GGUF model file.
    pub model: Arc<[u8]>,
    /// Most µIOSD per million work units.
    pub max_price: u64,
    /// The jobs' sampling rate, ppm (0: the coordinator's default).
    pub verify_rate_ppm: u32,
    /// A reserved cluster to run on.
    pub cluster: Option<Hash32>,
    /// How long a job may take, submission to receipt.
    pub timeout: Duration,
}

/// One finished chat job.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The job's `completion.json`.
    pub completion: Value,
    pub job: Hash32,
    pub shard_job: Hash32,
    pub receipt: Hash32,
    pub provider: String,
    pub outputs_root: Hash32,
    /// What it costs at most (max price × units used), µIOSD.
    pub cost: u64,
}

/// The gateway's chat jobs on the market.
#[derive(Debug)]
pub struct ChatMarket {
    jobs: Jobs,
    component: Component,
    model: BlobRef,
    /// The model's metadata (first bytes read only to name it).
    pub card: ChatCard,
}

impl ChatMarket {
    /// Connects to the coordinator and uploads the component and the model if it lacks them.
    ///
    /// # Errors
    ///
    /// [`Error::Coordinator`] if it cannot be reached or refuses an upload.
    pub async fn connect(cfg: ChatConfig, key: NodeKey) -> Result<ChatMarket, Error> {
        let channel = client::channel(&cfg.coordinator)?;
        let signer = client::signer(&channel, key).await?;
        client::upload_missing(
            &channel,
            &signer,
            &[cfg.component.clone(), cfg.model.clone()],
        )
        .await?;
        Ok(ChatMarket {
            component: Component::of(&cfg.component),
            model: BlobRef {
                name: "model".into(),
                hash: Hash32::of(&cfg.model),
                size: cfg.model.len() as u64,
            },
            jobs: Jobs {
                channel,
                signer: Arc::new(signer),
                max_price: cfg.max_price,
                verify_rate_ppm: cfg.verify_rate_ppm,
                cluster: cfg.cluster,
                timeout: cfg.timeout,
            },
            card: ChatCard::smollm2(),
        })
    }

    /// The most `req` can cost, µIOSD: its spec's budgets at the max price.
    pub fn most_cost(&self, req: &ChatRequest) -> u64 {
        let spec = req.spec();
        cost(
            self.jobs.max_price,
            spec.fuel.saturating_add(spec.work_budget),
        )
        .map_or(u64::MAX, |c| c.saturating_add(1))
    }

    /// Runs `req` as one job and returns its completion.
    ///
    /// # Errors
    ///
    /// As [`Jobs::run`], or a job whose `completion.json` is not JSON.
    pub async fn complete(&self, req: &ChatRequest) -> Result<Completion, Error> {
        let mut inline = Vec::new();
        let messages = self
            .jobs
            .input("messages", req.messages_input().into(), &mut inline)
            .await?;
        let inputs = vec![self.model.clone(), messages];
        let done: Finished = self
            .jobs
            .run(&self.component, inputs, inline, &req.spec())
            .await?;
        let bytes = self.jobs.output(&done, "completion.json").await?;
        let completion: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::JobFailed(format!(
                "job {}'s completion.json is not JSON: {e}",
                done.job
            ))
        })?;
        let body = &done.receipt.body;
        Ok(Completion {
            completion,
            job: done.job,
            shard_job: body.job_id,
            receipt: done.receipt.id(),
            provider: body.provider_id.to_hex(),
            outputs_root: body.outputs_root,
            cost: self.jobs.cost(&done),
        })
    }
}

/// The prompt's and the completion's token counts.
fn token_counts(out: &Completion) -> (u64, u64) {
    let count = |key: &str| out.completion[key].as_array().map_or(0, Vec::len) as u64;
    (count("prompt_ids"), count("ids"))
}

/// OpenAI's `usage` of `out`.
fn usage(out: &Completion) -> Value {
    let (prompt, completion) = token_counts(out);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

/// The generated text (empty if the job wrote none).
fn text(out: &Completion) -> &str {
    out.completion["text"].as_str().unwrap_or_default()
}

fn finish_reason(out: &Completion) -> &str {
    out.completion["finish_reason"].as_str().unwrap_or("stop")
}

/// The response's id: the job's.
fn completion_id(out: &Completion) -> String {
    format!("chatcmpl-{}", out.job.to_hex())
}

fn fingerprint(out: &Completion) -> String {
    format!("assay-{}", out.outputs_root.short())
}

/// The `chat.completion` object for `req` answered by `out`, with `assay`
/// (the job's ids) added.
pub fn response(req: &ChatRequest, out: &Completion, created: u64, assay: Value) -> Value {
    json!({
        "id": completion_id(out),
        "object": "chat.completion",
        "created": created,
        "model": req.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": text(out), "refusal": null },
            "finish_reason": finish_reason(out),
            "logprobs": null,
        }],
        "usage": usage(out),
        "system_fingerprint": fingerprint(out),
        "assay": assay,
    })
}

/// The most bytes of one streamed piece of content.
pub const MAX_PIECE_BYTES: usize = 48;

/// `text` in the pieces a stream sends: each a word with the whitespace
/// before it (`"Hello,"`, `" world"`, `"\n\nBye"`), a long word cut at
/// [`MAX_PIECE_BYTES`]; always at char boundaries. Joined, the pieces are
/// `text`; no piece is empty, and an empty text has none.
pub fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut after_word = false;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        let word_ended = space && after_word;
        let too_long = i - start + c.len_utf8() > MAX_PIECE_BYTES;
        if i > start
            && (word_ended || too_long)
            && let Some(piece) = text.get(start..i)
        {
            out.push(piece);
            start = i;
        }
        after_word = !space;
    }
    if let Some(rest) = text.get(start..).filter(|r| !r.is_empty()) {
        out.push(rest);
    }
    out
}

/// The `chat.completion.chunk` objects of a streamed answer, in order: the
/// assistant's role, the text in [`pieces`], the finish reason, and with
/// `include_usage` a last chunk of no choices and the usage. Every chunk
/// has the response's id, `created`, `model` and `system_fingerprint`, and
/// `assay` with the job's and the receipt's ids; the finish reason's chunk
/// has the whole `assay` (as a `chat.completion` does).
pub fn chunks(req: &ChatRequest, out: &Completion, created: u64, assay: Value) -> Vec<Value> {
    let ids = json!({ "job_id": out.job.to_hex(), "receipt_id": out.receipt.to_hex() });
    let chunk = |choices: Value, assay: &Value| {
        let mut chunk = json!({
            "id": completion_id(out),
            "object": "chat.completion.chunk",
            "created": created,
            "model": req.model,
            "system_fingerprint": fingerprint(out),
            "choices": choices,
            "assay": assay,
        });
        if req.include_usage {
            // As OpenAI's: `usage` on every chunk, null but on the last.
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let choice = |delta: Value, finish: Option<&str>| json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }]);
    let pieces = pieces(text(out));
    let mut chunks = Vec::with_capacity(pieces.len() + 3);
    chunks.push(chunk(
        choice(json!({ "role": "assistant", "content": "" }), None),
        &ids,
    ));
    for piece in pieces {
        chunks.push(chunk(choice(json!({ "content": piece }), None), &ids));
    }
    chunks.push(chunk(choice(json!({}), Some(finish_reason(out))), &assay));
    if req.include_usage {
        let mut last = chunk(json!([]), &ids);
        last["usage"] = usage(out);
        chunks.push(last);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Value) -> Result<ChatRequest, Error> {
        ChatRequest::parse(body.to_string().as_bytes(), &ChatCard::smollm2())
    }

    #[test]
    fn a_request_becomes_the_guests_messages_and_params() {
        let req = parse(json!({
            "model": "SmolLM2-135M-Instruct",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
            ],
            "max_completion_tokens": 12,
            "temperature": 0,
            "stop": "\n",
            "seed": 7,
            "n": 1,
            "stream": false,
        }))
        .expect("parses");
        assert_eq!(
            req.messages,
            [
                ("system".into(), "Be brief.".into()),
                ("user".into(), "Hi there".into())
            ]
        );
        let spec = req.spec();
        assert_eq!(spec.params["max_tokens"], "12");
        assert_eq!(spec.params["temperature"], "0");
        assert_eq!(spec.params["stop"], "[\"\\n\"]");
        assert_eq!(spec.params["seed"], "7");
        assert_eq!(
            req.messages_input(),
            br#"[{"content":"Be brief.","role":"system"},{"content":"Hi there","role":"user"}]"#
                .to_vec()
        );
        // OpenAI's defaults: temperature 1, and a completion budget.
        let plain = parse(json!({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "x"}]}))
            .expect("parses");
        assert_eq!(
            (plain.temperature, plain.max_tokens),
            (1.0, DEFAULT_COMPLETION_TOKENS)
        );
        assert!(plain.spec().work_budget > WORK_PER_JOB);
    }

    #[test]
    fn bad_requests_name_their_field() {
        let user = json!([{"role": "user", "content": "x"}]);
        let cases = [
            (json!({"messages": user}), "model"),
            (json!({"model": "SmolLM2-135M-Instruct"}), "messages"),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": []}),
                "messages",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "tool", "content": "x"}]}),
                "messages",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
                "messages",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "max_tokens": 0}),
                "max_tokens",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "max_completion_tokens": 100000}),
                "max_completion_tokens",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "temperature": 3}),
                "temperature",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "top_p": 0}),
                "top_p",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "stop": ["a", "b", "c", "d", "e"]}),
                "stop",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "n": 2}),
                "n",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "stream": "yes"}),
                "stream",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "stream_options": {"include_usage": true}}),
                "stream_options",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "stream": false, "stream_options": {"include_usage": true}}),
                "stream_options",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "stream": true, "stream_options": {"include_usage": 1}}),
                "stream_options",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "stream": true, "stream_options": {"chunk_size": 4}}),
                "stream_options",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "stream": true, "stream_options": true}),
                "stream_options",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "tools": [{}]}),
                "tools",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "logprobs": true}),
                "logprobs",
            ),
            (
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "presence_penalty": 0.5}),
                "presence_penalty",
            ),
        ];
        for (body, field) in cases {
            match parse(body.clone()) {
                Err(Error::BadRequest { param, .. }) => assert_eq!(param, Some(field), "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(matches!(
            parse(json!({"model": "gpt-4o", "messages": user})),
            Err(Error::ModelNotFound(_))
        ));
    }

    #[test]
    fn stream_and_its_options_are_accepted_only_together() {
        let user = json!([{"role": "user", "content": "x"}]);
        let m = "SmolLM2-135M-Instruct";
        let req = parse(json!({"model": m, "messages": user, "stream": true})).expect("stream");
        assert!(req.stream && !req.include_usage);
        let req = parse(json!({
            "model": m, "messages": user, "stream": true,
            "stream_options": {"include_usage": true, "include_obfuscation": false},
        }))
        .expect("stream with usage");
        assert!(req.stream && req.include_usage);
        let req =
            parse(json!({"model": m, "messages": user, "stream": true, "stream_options": null}))
                .expect("null options");
        assert!(req.stream && !req.include_usage);
        let req =
            parse(json!({"model": m, "messages": user, "stream": null, "stream_options": null}))
                .expect("nulls");
        assert!(!req.stream && !req.include_usage);
        // Streaming changes how the answer is sent, never the job.
        let plain = parse(json!({"model": m, "messages": user, "seed": 3})).expect("plain");
        let streamed = parse(json!({"model": m, "messages": user, "seed": 3, "stream": true}))
            .expect("streamed");
        assert_eq!(plain.spec(), streamed.spec());
        assert_eq!(plain.messages_input(), streamed.messages_input());
    }

    #[test]
    fn pieces_are_words_at_char_boundaries_that_join_to_the_text() {
        assert!(pieces("").is_empty());
        assert_eq!(
            pieces("Hello, world!\n\nBye"),
            ["Hello,", " world!", "\n\nBye"]
        );
        assert_eq!(pieces("  Hi  there "), ["  Hi", "  there", " "]);
        assert_eq!(pieces(" "), [" "]);
        let long = "ü".repeat(100) + " 🙂🙂 end";
        let texts = [
            "The sky is blue.",
            "Ünïcödé, emoji 🙂 and\tpunctuation!?\r\n",
            "日本語のテキストには空白がありません日本語のテキストには空白がありません",
            long.as_str(),
            "a\u{2003}b\u{00a0}c",
            "\n",
        ];
        for text in texts {
            let p = pieces(text);
            assert_eq!(p.concat(), text);
            assert!(p.iter().all(|s| !s.is_empty()), "{p:?}");
            assert!(
                p.iter()
                    .all(|s| s.len() <= MAX_PIECE_BYTES || s.chars().count() == 1),
                "{p:?}"
            );
        }
        // A long word is cut, at char boundaries (ü is 2 bytes).
        let p = pieces(&long);
        assert!(p.len() > 4 && p[0].len() == MAX_PIECE_BYTES, "{p:?}");
    }

    fn completion(text: &str) -> Completion {
        Completion {
            completion: json!({
                "prompt_ids": [1, 2, 3],
                "ids": [4, 5],
                "text": text,
                "finish_reason": "length",
            }),
            job: Hash32::of(b"job"),
            shard_job: Hash32::of(b"shard"),
            receipt: Hash32::of(b"receipt"),
            provider: "p".into(),
            outputs_root: Hash32::of(b"root"),
            cost: 9,
        }
    }

    #[test]
    fn chunks_carry_the_role_the_text_the_finish_reason_and_the_usage() {
        let m = "SmolLM2-135M-Instruct";
        let user = json!([{"role": "user", "content": "x"}]);
        let req = parse(json!({
            "model": m, "messages": user, "stream": true,
            "stream_options": {"include_usage": true},
        }))
        .expect("req");
        let out = completion("The sky is blue, ünïcödé 🙂.");
        let assay = json!({"job_id": out.job.to_hex(), "cost_micro_iosd": 9});
        let chunks = chunks(&req, &out, 7, assay.clone());
        let whole = response(&req, &out, 7, assay.clone());
        for c in &chunks {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["id"], whole["id"]);
            assert_eq!(c["created"], 7);
            assert_eq!(c["model"], m);
            assert_eq!(c["system_fingerprint"], whole["system_fingerprint"]);
            assert_eq!(c["assay"]["job_id"], out.job.to_hex());
            assert!(c.get("usage").is_some(), "{c}");
        }
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, whole["choices"][0]["message"]["content"]);
        let [.., finish, last] = &chunks[..] else {
            panic!("too few chunks: {chunks:?}");
        };
        assert_eq!(finish["choices"][0]["delta"], json!({}));
        assert_eq!(finish["choices"][0]["finish_reason"], "length");
        assert_eq!(finish["assay"], assay);
        assert_eq!(finish["usage"], Value::Null);
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"], whole["usage"]);
        assert_eq!(
            last["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
        );
        let contents = chunks[1..chunks.len() - 2]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null());
        assert!(contents);

        // Without usage: no usage chunk, no `usage` field; an empty text
        // has the role's and the finish reason's chunks only.
        let req = parse(json!({"model": m, "messages": user, "stream": true})).expect("req");
        let chunks = super::chunks(&req, &completion(""), 7, json!({}));
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "length");
    }
}
