//! `minilm-embed`: sentence embeddings with all-MiniLM-L6-v2 (or any BERT
//! sentence-transformers model of the same shape), exactly as
//! `SentenceTransformer.encode` computes them, on the host's tensor ops.
//!
//! # Inputs
//! | name | what | needed |
//! | --- | --- | --- |
//! | `text` | UTF-8, one sentence per line | one of `text`, `texts`, `sequences` |
//! | `texts` | a JSON array of sequences: each a string, or an array of token ids | instead of `text` |
//! | `sequences` | a JSON array of whole token-id sequences, used as they are | instead of `text` |
//! | `tokenizer` | the model's `tokenizer.json` | with `text` or `texts` |
//! | `model` | the model's `model.safetensors` (f32/f16/bf16) | yes |
//! | `config` | the model's `config.json` (sizes, LayerNorm eps, activation) | yes |
//! | `sentence_bert_config` | `sentence_bert_config.json` (`max_seq_length`) | no: then `max_position_embeddings` |
//! | `pooling_config` | `1_Pooling/config.json` (mean or CLS pooling) | no: then mean pooling |
//! | `modules` | `modules.json` (a `Normalize` module turns on L2 normalisation) | no: then no normalisation |
//!
//! Lines: the text is split at `\n` (a `\r` before it is dropped); a final
//! newline ends the last line, it does not start an empty one. Every other
//! line is a sentence, an empty one included (it embeds the empty string,
//! `[CLS] [SEP]`), so row `i` of the output is always line `i`. An empty
//! `text` gives zero rows.
//!
//! `texts` (what an API gateway sends: any string, newlines included, is
//! one row): row `i` of the output is item `i`. A string is tokenized like a
//! line of `text`; an array of token ids is taken as the tokens of a text,
//! so `[CLS]` and `[SEP]` are put around it and it is truncated to
//! `max_seq_length` like a tokenized text. An id outside the vocabulary, or
//! an item of any other type, fails the job with a message naming the item.
//!
//! `sequences` (what the gateway sends, having tokenized with the same
//! code, `assay-tokenizer`): row `i` of the output is the embedding of
//! sequence `i`, taken as it is — special tokens included, as `tokens.json`
//! lists them, so a text job's `tokens.json` given back as `sequences`
//! gives the same embeddings bit for bit. Each must have 1 to
//! `max_seq_length` ids, each inside the vocabulary. The tokenizer is not
//! read: a one-sentence job is then the forward pass and little else.
//!
//! # Params
//! - `batch_size` (default 32): sentences per forward pass. Sentences are
//!   sorted by token count (longest first, ties in input order) before
//!   batching so that little padding is computed; results do not depend on
//!   either (see *Batch invariance*).
//!
//! # Outputs
//! - `embeddings`: little-endian f32, row-major, one `hidden_size`-wide row
//!   (384 for MiniLM) per input line, in input order.
//! - `tokens.json`: the token ids of each line (after truncation), a JSON
//!   array of arrays.
//! - `info.json`: the number of rows, their width, and the settings followed
//!   (not the batch size: outputs do not depend on it).
//!
//! # What it computes
//! Tokenization (in the guest, `assay-tokenizer` over `tokenizers`): the tokenizer file's
//! normaliser and pre-tokenizer, `[CLS] … [SEP]`, truncation to
//! `max_seq_length` tokens (the tokenizer file's own truncation and padding
//! settings are replaced, as sentence-transformers does). Then BERT on the
//! host, on each batch's tokens packed back to back without padding:
//! embeddings (word + token type 0, then + position), LayerNorm; per layer:
//! Q/K/V (`x · Wᵀ + b`, one host `linear` op on the weight as stored, which
//! the host packs once and keeps), attention within each sentence (one host
//! `attention` op: `softmax(Q·Kᵀ · 1/√d_head) · V` per sentence and head),
//! output projection + residual + LayerNorm, intermediate (`linear` with
//! its GELU, exact erf, in the same op) + output projection + residual +
//! LayerNorm; then masked mean pooling over the real tokens (the rows
//! spread to a padded batch, see [`Packing`]) and L2 normalisation
//! (`x / max(‖x‖, 1e-12)`).
//!
//! # Weights
//! Every weight goes from the `model` input to the device with
//! `tensor-from-input` (only the safetensors header passes through guest
//! memory). Of the word-embedding table only the rows of the tokens the job
//! uses are loaded (one range per row, then a concat) unless they are more
//! than 1/8 of the vocabulary; the rows hold the same values either way.
//!
//! # Batch invariance
//! A sentence's embedding does not depend on its batch-mates, bit for bit:
//! every op is defined per output element, so a row's values do not depend
//! on how many rows a matmul, LayerNorm or GELU has; attention runs over
//! each sentence's own rows (no padding, no mask); mean pooling skips the
//! padded positions. Sorting, batching and packing change which rows sit
//! together, never a value.
//!
//! `cli/tests/all/minilm.rs` checks it: batch sizes 1, 7 and 32 give the same bytes.

#![forbid(unsafe_code)]

use assay_guest::UnaryOp;
use assay_guest::prelude::*;
use serde_json::Value;

use assay_tokenizer::Encoder;

/// The `eps` of sentence-transformers' `Normalize` (`F.normalize`).
const NORMALIZE_EPS: f32 = 1e-12;

/// Default sentences per forward pass.
const DEFAULT_BATCH: usize = 32;

/// What `config.json` says about the encoder.
#[derive(Debug, Clone)]
struct BertConfig {
    hidden: usize,
    layers: usize,
    heads: usize,
    intermediate: usize,
    eps: f32,
    max_positions: usize,
    vocab: usize,
}

fn json_input(name: &str) -> Result<Option<Value>> {
    if !inputs().iter().any(|i| i.name == name) {
        return Ok(None);
    }
    let text = read_input_to_string(name)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Format(format!("input `{name}` is not valid JSON: {e}")))
}

fn get_usize(v: &Value, input: &str, key: &str) -> Result<usize> {
    v.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            Error::Format(format!(
                "input `{input}`: `{key}` is missing or not a non-negative integer"
            ))
        })
}

impl BertConfig {
    fn read() -> Result<BertConfig> {
        let v = json_input("config")?.ok_or_else(|| {
            Error::NotFound("no input `config`: pass the model's config.json as `config`".into())
        })?;
        let act = v
            .get("hidden_act")
            .and_then(Value::as_str)
            .unwrap_or("gelu");
        if act != "gelu" {
            return Err(Error::Unsupported(format!(
                "config.json: hidden_act {act:?}; this job implements BERT's exact-erf \"gelu\" only"
            )));
        }
        let pos = v
            .get("position_embedding_type")
            .and_then(Value::as_str)
            .unwrap_or("absolute");
        if pos != "absolute" {
            return Err(Error::Unsupported(format!(
                "config.json: position_embedding_type {pos:?}; only \"absolute\" is implemented"
            )));
        }
        let eps = v
            .get("layer_norm_eps")
            .and_then(Value::as_f64)
            .ok_or_else(|| Error::Format("config.json: `layer_norm_eps` is missing".into()))?;
        let cfg = BertConfig {
            hidden: get_usize(&v, "config", "hidden_size")?,
            layers: get_usize(&v, "config", "num_hidden_layers")?,
            heads: get_usize(&v, "config", "num_attention_heads")?,
            intermediate: get_usize(&v, "config", "intermediate_size")?,
            eps: eps as f32,
            max_positions: get_usize(&v, "config", "max_position_embeddings")?,
            vocab: get_usize(&v, "config", "vocab_size")?,
        };
        if cfg.heads == 0 || cfg.hidden == 0 || !cfg.hidden.is_multiple_of(cfg.heads) {
            return Err(Error::Format(format!(
                "config.json: hidden_size {} is not a multiple of num_attention_heads {}",
                cfg.hidden, cfg.heads
            )));
        }
        Ok(cfg)
    }

    fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    Mean,
    Cls,
}

/// What the sentence-transformers files say (each optional).
#[derive(Debug, Clone)]
struct Pipeline {
    max_seq_length: usize,
    pooling: Pooling,
    normalize: bool,
}

impl Pipeline {
    fn read(cfg: &BertConfig) -> Result<Pipeline> {
        let max_seq_length = match json_input("sentence_bert_config")? {
            Some(v) => get_usize(&v, "sentence_bert_config", "max_seq_length")?,
            None => cfg.max_positions,
        };
        if max_seq_length < 2 || max_seq_length > cfg.max_positions {
            return Err(Error::Format(format!(
                "max_seq_length {max_seq_length} must be in 2..={} (max_position_embeddings)",
                cfg.max_positions
            )));
        }
        let pooling = match json_input("pooling_config")? {
            None => Pooling::Mean,
            Some(v) => {
                let on = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
                let modes: Vec<&str> = [
                    "pooling_mode_cls_token",
                    "pooling_mode_mean_tokens",
                    "pooling_mode_max_tokens",
                    "pooling_mode_mean_sqrt_len_tokens",
                    "pooling_mode_weightedmean_tokens",
                    "pooling_mode_lasttoken",
                ]
                .into_iter()
                .filter(|k| on(k))
                .collect();
                match modes.as_slice() {
                    ["pooling_mode_mean_tokens"] => Pooling::Mean,
                    ["pooling_mode_cls_token"] => Pooling::Cls,
                    other => {
                        return Err(Error::Unsupported(format!(
                            "pooling config turns on {other:?}; this job implements exactly one of \
                             pooling_mode_mean_tokens or pooling_mode_cls_token"
                        )));
                    }
                }
            }
        };
        let normalize = match json_input("modules")? {
            None => false,
            Some(Value::Array(modules)) => {
                let mut normalize = false;
                for m in &modules {
                    let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
                    match ty.rsplit('.').next() {
                        Some("Transformer" | "Pooling") => {}
                        Some("Normalize") => normalize = true,
                        _ => {
                            return Err(Error::Unsupported(format!(
                                "modules.json lists {ty:?}; this job implements Transformer, \
                                 Pooling and Normalize"
                            )));
                        }
                    }
                }
                normalize
            }
            Some(_) => return Err(Error::Format("modules.json is not a JSON array".into())),
        };
        Ok(Pipeline {
            max_seq_length,
            pooling,
            normalize,
        })
    }
}

/// One encoder layer's weights (Linear weights as stored, `[out, in]`).
struct Layer {
    wq: Tensor,
    bq: Tensor,
    wk: Tensor,
    bk: Tensor,
    wv: Tensor,
    bv: Tensor,
    wo: Tensor,
    bo: Tensor,
    ln1_g: Tensor,
    ln1_b: Tensor,
    wi: Tensor,
    bi: Tensor,
    wo2: Tensor,
    bo2: Tensor,
    ln2_g: Tensor,
    ln2_b: Tensor,
}

struct Bert {
    cfg: BertConfig,
    /// The word embeddings: the whole table, or only the rows of `vocab_rows`.
    word: Tensor,
    /// When only some rows are loaded: the token ids they hold, ascending
    /// (row `r` of `word` is token `vocab_rows[r]`).
    vocab_rows: Option<Vec<i32>>,
    /// Token type 0's row, `[hidden]`.
    type0: Tensor,
    pos: Tensor,
    ln_g: Tensor,
    ln_b: Tensor,
    layers: Vec<Layer>,
}

/// Loads a tensor and checks its shape against the config.
fn load(st: &SafeTensors, name: &str, shape: &[usize]) -> Result<Tensor> {
    let info = st.info(name)?;
    let want: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    if info.shape != want {
        return Err(Error::Format(format!(
            "model tensor `{name}` has shape {:?}; config.json implies {want:?}",
            info.shape
        )));
    }
    st.load(name).context(format_args!("loading `{name}`"))
}

/// Below this many distinct tokens per vocabulary entry the job loads only
/// the word-embedding rows it uses (one `tensor-from-input` per row, then a
/// concat) instead of the whole table: for MiniLM that skips most of 47 MB.
/// Either way the rows hold the same values, so the outputs are the same.
const ROWS_PER_VOCAB: usize = 8;

/// Loads rows `ids` (ascending, in range) of a `[vocab, h]` table.
fn load_rows(st: &SafeTensors, name: &str, ids: &[i32], h: usize) -> Result<Tensor> {
    let info = st.info(name)?;
    let (Some(encoding), Some(size)) = (info.dtype.encoding(), info.dtype.size()) else {
        return Err(Error::Unsupported(format!(
            "model tensor `{name}` has dtype {}; the host loads F32, F16, BF16",
            info.dtype
        )));
    };
    let row_bytes = size * h as u64;
    let rows = ids
        .iter()
        .map(|&id| {
            let at = info.offset_in_input + id as u64 * row_bytes;
            Tensor::from_input(st.input(), at, encoding, &[1, h])
        })
        .collect::<Result<Vec<Tensor>>>()?;
    let refs: Vec<&Tensor> = rows.iter().collect();
    Tensor::concat(&refs, 0).context(format_args!("joining {} rows of `{name}`", ids.len()))
}

/// `x · Wᵀ + b`, as `nn.Linear` computes it, in one host op, with `W` as
/// stored (`[out, in]`): no transposed copy is made; the host packs a
/// weight into its matmul layout once and keeps the panels with the tensor
/// (on a provider, from one job to the next), and adds the bias as it
/// stores each output (the bits of a separate add).
fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.linear(w, b, true, None)
}

impl Bert {
    /// Loads the weights. `used` is every token id the job will look up,
    /// ascending and deduplicated.
    fn load(cfg: BertConfig, used: &[i32]) -> Result<Bert> {
        let st = SafeTensors::open("model")?;
        // Checkpoints saved from BertForX carry a `bert.` prefix.
        let p = if st.contains("embeddings.word_embeddings.weight") {
            ""
        } else if st.contains("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            return Err(Error::Format(
                "input `model` has no embeddings.word_embeddings.weight: is it a BERT safetensors file?"
                    .into(),
            ));
        };
        let (h, i) = (cfg.hidden, cfg.intermediate);
        let types = st.info(&format!("{p}embeddings.token_type_embeddings.weight"))?;
        let type_rows = types.shape.first().copied().unwrap_or(0) as usize;
        let type_table = load(
            &st,
            &format!("{p}embeddings.token_type_embeddings.weight"),
            &[type_rows, h],
        )?;
        let type0 = type_table.slice(0, 0..1)?.reshape(&[h])?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let n = |s: &str| format!("{p}encoder.layer.{l}.{s}");
            layers.push(Layer {
                wq: load(&st, &n("attention.self.query.weight"), &[h, h])?,
                bq: load(&st, &n("attention.self.query.bias"), &[h])?,
                wk: load(&st, &n("attention.self.key.weight"), &[h, h])?,
                bk: load(&st, &n("attention.self.key.bias"), &[h])?,
                wv: load(&st, &n("attention.self.value.weight"), &[h, h])?,
                bv: load(&st, &n("attention.self.value.bias"), &[h])?,
                wo: load(&st, &n("attention.output.dense.weight"), &[h, h])?,
                bo: load(&st, &n("attention.output.dense.bias"), &[h])?,
                ln1_g: load(&st, &n("attention.output.LayerNorm.weight"), &[h])?,
                ln1_b: load(&st, &n("attention.output.LayerNorm.bias"), &[h])?,
                wi: load(&st, &n("intermediate.dense.weight"), &[i, h])?,
                bi: load(&st, &n("intermediate.dense.bias"), &[i])?,
                wo2: load(&st, &n("output.dense.weight"), &[h, i])?,
                bo2: load(&st, &n("output.dense.bias"), &[h])?,
                ln2_g: load(&st, &n("output.LayerNorm.weight"), &[h])?,
                ln2_b: load(&st, &n("output.LayerNorm.bias"), &[h])?,
            });
        }
        let word_name = format!("{p}embeddings.word_embeddings.weight");
        let word_info = st.info(&word_name)?;
        if word_info.shape != [cfg.vocab as u64, h as u64] {
            return Err(Error::Format(format!(
                "model tensor `{word_name}` has shape {:?}; config.json implies [{}, {h}]",
                word_info.shape, cfg.vocab
            )));
        }
        if let Some(&bad) = used.iter().find(|&&id| id < 0 || id as usize >= cfg.vocab) {
            return Err(Error::Format(format!(
                "the tokenizer produced token id {bad}, outside the model's vocabulary of {}: \
                 do tokenizer.json and config.json belong to the same model?",
                cfg.vocab
            )));
        }
        // A job with no tokens at all (empty text) still loads a row: the
        // table is checked and the model is ready the same way.
        let used = if used.is_empty() { &[0][..] } else { used };
        let (word, vocab_rows) = if used.len() * ROWS_PER_VOCAB < cfg.vocab {
            (load_rows(&st, &word_name, used, h)?, Some(used.to_vec()))
        } else {
            (load(&st, &word_name, &[cfg.vocab, h])?, None)
        };
        Ok(Bert {
            word,
            vocab_rows,
            type0,
            pos: load(
                &st,
                &format!("{p}embeddings.position_embeddings.weight"),
                &[cfg.max_positions, h],
            )?,
            ln_g: load(&st, &format!("{p}embeddings.LayerNorm.weight"), &[h])?,
            ln_b: load(&st, &format!("{p}embeddings.LayerNorm.bias"), &[h])?,
            layers,
            cfg,
        })
    }

    /// The index of token `id` in `self.word`.
    fn row_of(&self, id: i32) -> i32 {
        match &self.vocab_rows {
            // `id` is in the list: `load` was given every id the job uses.
            Some(rows) => rows.binary_search(&id).map_or(0, |r| r as i32),
            None => id,
        }
    }

    /// Token vectors `[tokens, hidden]` of a packed batch: `ids` and
    /// `positions` `[tokens]` (i32), `lengths` the sentences' token counts
    /// (none zero).
    fn encode(&self, ids: &Tensor, positions: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        // (word + token type) + position, as BertEmbeddings adds them.
        let mut x = self
            .word
            .gather(ids)?
            .add(&self.type0)?
            .add(&self.pos.gather(positions)?)?
            .layer_norm(&self.ln_g, &self.ln_b, self.cfg.eps)?;
        for layer in &self.layers {
            x = self.layer(layer, &x, lengths)?;
        }
        Ok(x)
    }

    fn layer(&self, w: &Layer, x: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (nh, hd) = (self.cfg.heads, self.cfg.head_dim());
        let eps = self.cfg.eps;
        let q = linear(x, &w.wq, &w.bq)?;
        let k = linear(x, &w.wk, &w.bk)?;
        let v = linear(x, &w.wv, &w.bv)?;
        // Each sentence's tokens attend to each other, head by head:
        // softmax(Q·Kᵀ / √d_head) · V, the heads side by side again.
        let context = q.attention(&k, &v, lengths, nh, 1.0 / (hd as f32).sqrt())?;
        drop((q, k, v));
        let attn = linear(&context, &w.wo, &w.bo)?
            .add(x)?
            .layer_norm(&w.ln1_g, &w.ln1_b, eps)?;
        // GELU applied by the same op, as each output tile is stored.
        let inter = attn.linear(&w.wi, &w.bi, true, Some(UnaryOp::Gelu))?;
        linear(&inter, &w.wo2, &w.bo2)?
            .add(&attn)?
            .layer_norm(&w.ln2_g, &w.ln2_b, eps)
    }
}

/// A batch's token rows, packed (every sentence's rows back to back,
/// `[tokens, hidden]`, which every op but pooling works on) and padded
/// (`[b, s]`, each sentence padded to the longest, which masked mean
/// pooling reads). A padded position holds a copy of its sentence's first
/// token; pooling skips it.
struct Packing {
    s: usize,
    /// `[b·s]` i32: the packed row each padded position reads; `None` when
    /// the batch has no padding (both layouts are the same rows).
    spread: Option<Tensor>,
}

impl Packing {
    /// The layouts of a batch whose sentences have `lens` tokens.
    fn new(lens: &[usize]) -> Result<Packing> {
        let b = lens.len();
        let s = lens.iter().copied().max().unwrap_or(0);
        let tokens: usize = lens.iter().sum();
        if tokens == b * s {
            return Ok(Packing { s, spread: None });
        }
        let mut spread = Vec::with_capacity(b * s);
        let mut first = 0usize;
        for &len in lens {
            spread.extend((0..s).map(|p| match p < len {
                true => (first + p) as i32,
                // A sentence with no tokens reads row 0 (another's token).
                false if len == 0 => 0,
                false => first as i32,
            }));
            first += len;
        }
        Ok(Packing {
            s,
            spread: Some(Tensor::from_i32(&[b * s], &spread)?),
        })
    }

    /// Packed rows `[tokens, d]` → padded rows `[b·s, d]`.
    fn to_padded(&self, x: Tensor) -> Result<Tensor> {
        match &self.spread {
            Some(index) => x.gather(index),
            None => Ok(x),
        }
    }
}

/// The sentences of `text`: split at `\n`, a `\r` before it dropped, no
/// empty line after a final newline (as `str::lines`).
pub fn split_lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// The job's tokenizer: `tokenizer.json`, kept in memory for the rest of
/// the job (the vocabulary borrows its tokens from it).
fn tokenizer(max_seq_length: usize) -> Result<Encoder> {
    let bytes: &'static [u8] = read_input("tokenizer")?.leak();
    Encoder::read(bytes, max_seq_length)
        .map_err(|e| Error::Format(format!("input `tokenizer`: {e}")))
}

/// The ids of `text`, `[CLS] … [SEP]` included.
fn text_ids(tok: &Encoder, text: &str) -> Result<Vec<u32>> {
    tok.ids(text).map_err(|e| Error::Format(e.to_string()))
}

/// A token id from JSON, if it is one of the model's `vocab` ids.
fn vocab_id(id: &Value, vocab: usize) -> Option<u32> {
    id.as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .filter(|&v| (v as usize) < vocab)
}

/// A token id as the model's `i32` row index (an id past `i32::MAX` cannot
/// be in a vocabulary; it fails at the embedding lookup).
fn as_row_id(id: u32) -> i32 {
    i32::try_from(id).unwrap_or(i32::MAX)
}

/// The token ids of each item of `texts`: a string is tokenized, an array
/// of ids becomes `[CLS] ids… [SEP]`, truncated to `max_seq_length`.
fn sequence_ids(
    tok: &Encoder,
    items: &Value,
    vocab: usize,
    max_seq_length: usize,
) -> Result<Vec<Vec<i32>>> {
    let Value::Array(items) = items else {
        return Err(Error::Format(
            "input `texts` must be a JSON array of strings or of token-id arrays".into(),
        ));
    };
    let mut ids = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let row = match item {
            Value::String(text) => text_ids(tok, text).context(format_args!("texts[{n}]"))?,
            Value::Array(given) => {
                let mut ids = Vec::with_capacity(given.len().min(max_seq_length));
                for (k, id) in given.iter().enumerate() {
                    ids.push(vocab_id(id, vocab).ok_or_else(|| {
                        Error::Format(format!(
                            "texts[{n}][{k}] is not a token id of this model (0..{vocab})"
                        ))
                    })?);
                }
                tok.wrap_ids(&ids, max_seq_length)
                    .map_err(|e| Error::Format(format!("texts[{n}]: {e}")))?
            }
            _ => {
                return Err(Error::Format(format!(
                    "texts[{n}] must be a string or an array of token ids"
                )));
            }
        };
        ids.push(row.into_iter().map(as_row_id).collect());
    }
    Ok(ids)
}

/// The `sequences` input: whole token-id sequences, each of 1 to
/// `max_seq_length` ids inside the vocabulary, used as they are.
fn given_sequences(items: &Value, vocab: usize, max_seq_length: usize) -> Result<Vec<Vec<i32>>> {
    let Value::Array(items) = items else {
        return Err(Error::Format(
            "input `sequences` must be a JSON array of token-id arrays".into(),
        ));
    };
    let mut rows = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let Value::Array(ids) = item else {
            return Err(Error::Format(format!(
                "sequences[{n}] must be an array of token ids"
            )));
        };
        if ids.is_empty() || ids.len() > max_seq_length {
            return Err(Error::Format(format!(
                "sequences[{n}] has {} ids; a sequence has 1 to {max_seq_length} (max_seq_length), \
                 special tokens included",
                ids.len()
            )));
        }
        let mut row = Vec::with_capacity(ids.len());
        for (k, id) in ids.iter().enumerate() {
            let id = vocab_id(id, vocab).ok_or_else(|| {
                Error::Format(format!(
                    "sequences[{n}][{k}] is not a token id of this model (0..{vocab})"
                ))
            })?;
            row.push(as_row_id(id));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn run() -> Result<()> {
    let cfg = BertConfig::read()?;
    let pipe = Pipeline::read(&cfg)?;
    let batch_size: usize = param_or("batch_size", DEFAULT_BATCH)?;
    if batch_size == 0 {
        return Err(Error::Param {
            name: "batch_size".into(),
            message: "must be at least 1".into(),
        });
    }

    let ids = if let Some(items) = json_input("sequences")? {
        given_sequences(&items, cfg.vocab, pipe.max_seq_length)?
    } else {
        let tok = tokenizer(pipe.max_seq_length)?;
        let ids = if let Some(items) = json_input("texts")? {
            sequence_ids(&tok, &items, cfg.vocab, pipe.max_seq_length)?
        } else {
            let text = read_input_to_string("text")?;
            let mut ids: Vec<Vec<i32>> = Vec::new();
            for (n, line) in split_lines(&text).iter().enumerate() {
                let row = text_ids(&tok, line).context(format_args!("line {}", n + 1))?;
                ids.push(row.into_iter().map(as_row_id).collect());
            }
            ids
        };
        // The instance and its memory are discarded after the job; freeing
        // the vocabulary string by string (tens of thousands of them) took
        // ~1.5 % of a warm MiniLM job.
        std::mem::forget(tok);
        ids
    };
    let total_tokens: usize = ids.iter().map(Vec::len).sum();
    log!(
        "minilm-embed: {} sequences, {total_tokens} tokens (max_seq_length {}, {:?} pooling, normalize {}), batch size {batch_size}",
        ids.len(),
        pipe.max_seq_length,
        pipe.pooling,
        pipe.normalize
    );

    let h = cfg.hidden;
    let mut used: Vec<i32> = ids.iter().flatten().copied().collect();
    used.sort_unstable();
    used.dedup();
    let model = Bert::load(cfg, &used)?;
    match &model.vocab_rows {
        Some(rows) => log!(
            "minilm-embed: weights loaded ({} of {} word-embedding rows)",
            rows.len(),
            model.cfg.vocab
        ),
        None => log!("minilm-embed: weights loaded"),
    }

    // Longest first; ties keep input order (a stable sort).
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));

    let mut out = vec![0.0f32; ids.len() * h];
    let batches = order.len().div_ceil(batch_size);
    for (bn, chunk) in order.chunks(batch_size).enumerate() {
        let b = chunk.len();
        let lens: Vec<usize> = chunk.iter().map(|&i| ids[i].len()).collect();
        let packing = Packing::new(&lens)?;
        let s = packing.s;
        let mut flat = Vec::new();
        let mut positions = Vec::new();
        let mut mask = Vec::with_capacity(b * s);
        for &i in chunk {
            let row = &ids[i];
            flat.extend(row.iter().map(|&id| model.row_of(id)));
            positions.extend(0..row.len() as i32);
            mask.extend(std::iter::repeat_n(1.0f32, row.len()));
            mask.resize(mask.len() + (s - row.len()), 0.0);
        }
        let ids_t = Tensor::from_i32(&[flat.len()], &flat)?;
        let positions_t = Tensor::from_i32(&[positions.len()], &positions)?;
        // Sentences with no tokens have no rows to attend over.
        let lengths: Vec<usize> = lens.iter().copied().filter(|&n| n > 0).collect();
        let packed = model
            .encode(&ids_t, &positions_t, &lengths)
            .context(format_args!("batch {} of {batches}", bn + 1))?;
        let x = packing.to_padded(packed)?.reshape(&[b, s, h])?;
        let pooled = match pipe.pooling {
            Pooling::Mean => x.masked_mean_pool(&Tensor::from_f32(&[b, s], &mask)?)?,
            Pooling::Cls => x.slice(1, 0..1)?.reshape(&[b, h])?,
        };
        let pooled = if pipe.normalize {
            pooled.l2_normalize(NORMALIZE_EPS)?
        } else {
            pooled
        };
        let rows = pooled.to_vec_f32()?;
        for (r, &i) in chunk.iter().enumerate() {
            out[i * h..(i + 1) * h].copy_from_slice(&rows[r * h..(r + 1) * h]);
        }
        log!(
            "minilm-embed: batch {}/{batches}: {b} sentences × {s} tokens",
            bn + 1
        );
    }

    let mut bytes = Vec::with_capacity(out.len() * 4);
    for v in &out {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write_output("embeddings", &bytes)?;
    let tokens = serde_json::to_string(&ids).map_err(Error::msg)?;
    write_output("tokens.json", tokens)?;
    let info = serde_json::json!({
        "rows": ids.len(),
        "dim": h,
        "dtype": "f32le",
        "tokens": total_tokens,
        "max_seq_length": pipe.max_seq_length,
        "pooling": match pipe.pooling { Pooling::Mean => "mean", Pooling::Cls => "cls" },
        "normalize": pipe.normalize,
    });
    write_output("info.json", info.to_string())?;
    log!("minilm-embed: {} embeddings of {h} written", ids.len());
    Ok(())
}

assay_guest::job!(run);
