//! `llm-generate`: a chat completion with a GGUF Llama-family model
//! (first of all SmolLM2-135M-Instruct), on the host's tensor ops, so every
//! backend gives the same tokens and a verifier's re-run the same bytes.
//!
//! # Inputs
//! | name | what |
//! | --- | --- |
//! | `model` | the GGUF file (llama architecture; F32, Q4_0, Q4_1 or Q8_0 tensors; a `gpt2` byte-level BPE tokenizer and a ChatML chat template in its metadata) |
//! | `messages` | a JSON array of `{"role": "system" \| "user" \| "assistant", "content": "…"}`, at least one |
//! | `prompt_ids` | instead of `messages`: the prompt as a JSON array of token ids, used as it is (what a client that tokenized the conversation itself sends) |
//!
//! # Params
//! - `max_tokens` (default 64): the most tokens to generate.
//! - `temperature` (default 0): 0 takes the most likely token at each
//!   step (greedy); above 0, the logits are divided by it and a token is
//!   drawn from the top-p nucleus.
//! - `top_p` (default 1): the nucleus: the most likely tokens whose
//!   probabilities add up to at least this.
//! - `seed` (optional): the draws' seed; without it, the job's own random
//!   stream (the same on every node that runs the job) seeds them.
//! - `stop` (optional): a string, or a JSON array of up to 4 strings, that
//!   ends the completion where it first appears (it is not included).
//! - `prefill_batch` (default: the whole prompt): the prompt runs in
//!   passes of this many tokens (a provider short of memory may prefer
//!   small passes). Every row of every op is defined on its own, so any
//!   batch gives the same bits: the same tokens and the same outputs.
//! - `prompt_logits` (default false): also write `prompt_logits.f32`, the
//!   logits after the prompt (little-endian f32, one per vocabulary entry),
//!   to compare the model with another implementation.
//!
//! # Output
//! `completion.json`: `{"prompt_ids": […], "ids": […], "text": "…",
//! "finish_reason": "stop" | "length"}` — the prompt's token ids, the
//! generated ones (without the end-of-turn token), their text (invalid
//! UTF-8 replaced by U+FFFD; cut before a stop string), and why it
//! ended: an end-of-turn token or a stop string (`stop`), or `max_tokens`
//! or the model's context (`length`).
//!
//! # What it computes
//! The messages are rendered with the model's chat template and tokenized
//! with its byte-level BPE (`assay-tokenizer`), in the guest. The prompt
//! runs in one forward pass (prefill); each generated token then runs
//! alone over the key/value cache, which grows by one block per pass
//! (`causal_attention`: nothing is copied). Per layer: RMSNorm, Q/K/V
//! projections, RoPE (GGML's adjacent pairs; the angles computed here, in
//! Wasm), causal grouped-query attention, the output projection and
//! residual, RMSNorm, the SwiGLU feed-forward block and residual; then the
//! final RMSNorm and the output projection (tied to the embeddings when
//! the file has no `output.weight`). The weight matrices and embeddings
//! stay GGML blocks on the device (SEMANTICS.md, "Tensors of blocks": the
//! products read them as their decoded values), the norms' vectors are
//! decoded; all are loaded once and kept resident by the provider for the
//! next job on the same file.
//! Choosing tokens (argmax, or the top-p draw from a seeded xoshiro256**)
//! runs in the guest, where every float operation gives the same bits on
//! every node.

#![forbid(unsafe_code)]

mod chat;
mod model;
mod sampling;

use assay_guest::prelude::*;
use assay_guest::{Gguf, param_str};
use serde_json::json;

use crate::chat::{Chat, Stops};
use crate::model::{Angles, Model};
use crate::sampling::{Rng, Sampling, choose};

/// Most tokens a job may ask for.
const MAX_TOKENS_LIMIT: usize = 4096;

fn run() -> Result<()> {
    let file = Gguf::open("model")?;
    let chat = Chat::read(&file)?;
    let prompt_ids = if inputs().iter().any(|i| i.name == "prompt_ids") {
        chat.checked_ids(&read_input_to_string("prompt_ids")?)?
    } else {
        chat.prompt(&read_input_to_string("messages")?)?
    };
    let max_tokens: usize = param_or("max_tokens", 64)?;
    if max_tokens > MAX_TOKENS_LIMIT {
        return Err(Error::Param {
            name: "max_tokens".into(),
            message: format!("{max_tokens} is above the limit of {MAX_TOKENS_LIMIT}"),
        });
    }
    let sampling = Sampling {
        temperature: param_or("temperature", 0.0f32)?,
        top_p: param_or("top_p", 1.0f32)?,
    };
    if !(sampling.temperature >= 0.0 && sampling.temperature.is_finite()) {
        return Err(Error::Param {
            name: "temperature".into(),
            message: "must be a finite number ≥ 0 (0: greedy)".into(),
        });
    }
    if !(sampling.top_p > 0.0 && sampling.top_p <= 1.0) {
        return Err(Error::Param {
            name: "top_p".into(),
            message: "must be in (0, 1]".into(),
        });
    }
    let prefill_batch: usize = param_or("prefill_batch", usize::MAX)?;
    if prefill_batch == 0 {
        return Err(Error::Param {
            name: "prefill_batch".into(),
            message: "must be at least 1 (tokens per prefill pass)".into(),
        });
    }
    let stops = Stops::parse(param_str("stop").as_deref())?;
    let seed = match param_opt::<u64>("seed")? {
        Some(seed) => seed,
        None => job_seed()?,
    };
    let mut rng = Rng::new(seed);

    let model = Model::load(&file)?;
    let context = model.config.context;
    if prompt_ids.len() >= context {
        return Err(Error::InvalidArgument(format!(
            "the prompt is {} tokens; the model's context is {context}: shorten the messages",
            prompt_ids.len()
        )));
    }
    let budget = max_tokens.min(context - prompt_ids.len());
    let angles = Angles::new(&model.config, prompt_ids.len() + budget)?;
    let mut cache = model.cache();
    log!("llm-generate: prefill of {} tokens", prompt_ids.len());
    let mut logits = Vec::new();
    for pass in prompt_ids.chunks(prefill_batch) {
        logits = model.forward(pass, &mut cache, &angles)?;
    }
    if param_or("prompt_logits", false)? {
        let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
        write_output("prompt_logits.f32", bytes)?;
    }
    let mut ids: Vec<u32> = Vec::new();
    let mut finish = "length";
    let mut text = String::new();
    for step in 0..budget {
        let next = u32::try_from(choose(&logits, sampling, &mut rng))
            .map_err(|_| Error::Other("a token id above u32".into()))?;
        if chat.ends_turn(next) {
            finish = "stop";
            break;
        }
        ids.push(next);
        text = chat.text(&ids);
        if let Some(cut) = stops.first_in(&text) {
            text.truncate(cut);
            finish = "stop";
            break;
        }
        if (step + 1) % 16 == 0 {
            log!("llm-generate: {} tokens", step + 1);
        }
        if step + 1 < budget {
            logits = model.forward(&[next], &mut cache, &angles)?;
        }
    }
    let completion = json!({
        "prompt_ids": prompt_ids,
        "ids": ids,
        "text": text,
        "finish_reason": finish,
    });
    write_output("completion.json", completion.to_string())?;
    log!("llm-generate: {} tokens, {finish}", ids.len());
    Ok(())
}

/// Eight bytes of the job's random stream (seeded from the job id, so the
/// same on every node that runs the job).
fn job_seed() -> Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Other(format!("the job's random stream: {e}")))?;
    Ok(u64::from_le_bytes(bytes))
}

assay_guest::job!(run);
