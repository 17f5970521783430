//! OpenAI's chat completions API over the llm-generate guest: parsing and
//! checking a request (pure), running it as one verified job, and writing
//! the response (`chat.completion`, non-streaming).
//!
//! `messages` are `{role, content}` with role `system` (or `developer`,
//! taken as system), `user` or `assistant`, and content a string or an
//! array of `{"type": "text", "text": …}` parts (joined). Honoured:
//! `max_completion_tokens` (or the older `max_tokens`), `temperature`
//! (OpenAI's default 1), `top_p`, `stop`, `seed`. Refused clearly: `n`
//! other than 1, `stream`, tools, logprobs, penalties other than 0, a
//! `response_format` other than text. `user` is accepted and ignored.
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
        refuse_unsupported(&fields)?;
        Ok(ChatRequest {
            model,
            messages,
            max_tokens,
            temperature,
            top_p,
            stop,
            seed,
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
    if fields
        .get("stream")
        .is_some_and(|v| v.as_bool() == Some(true))
    {
        return Err(Error::bad(
            "stream",
            "streaming is not supported: leave `stream` out or false",
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
        client::upload_missing(&channel, &key, &[cfg.component.clone(), cfg.model.clone()]).await?;
        Ok(ChatMarket {
            component: Component::of(&cfg.component),
            model: BlobRef {
                name: "model".into(),
                hash: Hash32::of(&cfg.model),
                size: cfg.model.len() as u64,
            },
            jobs: Jobs {
                channel,
                key: Arc::new(key),
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

/// The `chat.completion` object for `req` answered by `out`, with `assay`
/// (the job's ids) added.
pub fn response(req: &ChatRequest, out: &Completion, created: u64, assay: Value) -> Value {
    let c = &out.completion;
    let count = |key: &str| c[key].as_array().map_or(0, Vec::len) as u64;
    let (prompt, completion) = (count("prompt_ids"), count("ids"));
    json!({
        "id": format!("chatcmpl-{}", out.job.to_hex()),
        "object": "chat.completion",
        "created": created,
        "model": req.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": c["text"].as_str().unwrap_or_default(), "refusal": null },
            "finish_reason": c["finish_reason"].as_str().unwrap_or("stop"),
            "logprobs": null,
        }],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
        "system_fingerprint": format!("assay-{}", out.outputs_root.short()),
        "assay": assay,
    })
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
                json!({"model": "SmolLM2-135M-Instruct", "messages": user, "stream": true}),
                "stream",
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
}
