//! The Llama architecture on host tensor ops: its sizes from the GGUF
//! metadata, its weights loaded once (resident on the provider across
//! jobs), and the forward pass over a key/value cache held as blocks.

use assay_guest::prelude::*;
use assay_guest::{Gguf, Tensor};

/// The sizes and constants of a Llama-family model, from `llama.*` metadata.
#[derive(Debug, Clone)]
pub struct Config {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f32,
    pub rope_base: f32,
    pub vocab: usize,
    pub context: usize,
}

impl Config {
    /// Reads the model's sizes.
    ///
    /// # Errors
    /// A model of another architecture, or sizes that do not fit together.
    pub fn of(model: &Gguf) -> Result<Config> {
        let arch = model.string("general.architecture")?;
        if arch != "llama" {
            return Err(Error::Unsupported(format!(
                "llm-generate runs Llama-family models (general.architecture = llama); this one is {arch}"
            )));
        }
        let get = |key: &str| -> Result<usize> {
            let v = model.u64(&format!("llama.{key}"))?;
            usize::try_from(v).map_err(|_| Error::Format(format!("llama.{key} = {v} is too large")))
        };
        let (hidden, heads) = (get("embedding_length")?, get("attention.head_count")?);
        let kv_heads = match model.get("llama.attention.head_count_kv") {
            Some(_) => get("attention.head_count_kv")?,
            None => heads,
        };
        if heads == 0
            || kv_heads == 0
            || !heads.is_multiple_of(kv_heads)
            || !hidden.is_multiple_of(heads)
        {
            return Err(Error::Format(format!(
                "{heads} heads over {kv_heads} key/value heads do not split a width of {hidden}"
            )));
        }
        let head_dim = hidden / heads;
        if let Some(v) = model.get("llama.rope.dimension_count")
            && v.as_u64() != Some(head_dim as u64)
        {
            return Err(Error::Unsupported(format!(
                "rope over {v:?} of a head's {head_dim} dimensions (partial rotary) is not supported"
            )));
        }
        let rope_base = match model.get("llama.rope.freq_base") {
            Some(_) => model.f32("llama.rope.freq_base")?,
            None => 10_000.0,
        };
        let tokens = model
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .ok_or_else(|| Error::Format("the model has no tokenizer.ggml.tokens".into()))?;
        Ok(Config {
            layers: get("block_count")?,
            hidden,
            heads,
            kv_heads,
            head_dim,
            eps: model.f32("llama.attention.layer_norm_rms_epsilon")?,
            rope_base,
            vocab: tokens.len(),
            context: get("context_length")?,
        })
    }
}

/// One transformer block's weights (linear ones `[out, in]`, as GGUF stores them).
struct Layer {
    attn_norm: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    ffn_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

/// The model on the device.
pub struct Model {
    pub config: Config,
    embeddings: Tensor,
    layers: Vec<Layer>,
    out_norm: Tensor,
    /// The output projection: `output.weight`, or the embeddings when tied.
    output: Option<Tensor>,
}

/// Each layer's cached keys and values, one block per forward pass.
pub struct Cache {
    keys: Vec<Vec<Tensor>>,
    values: Vec<Vec<Tensor>>,
    /// Positions held.
    pub len: usize,
}

/// The rotation angles of every position up to the job's last, as the
/// device reads them: `cos` and `sin` `[positions, head_dim / 2]`.
pub struct Angles {
    cos: Tensor,
    sin: Tensor,
}

impl Angles {
    /// GGML's angles for `positions` positions: pair `i` of position `p`
    /// turns by `p · base^(−2i/d)`, the powers taken as llama.cpp takes
    /// them (one `powf`, then a running product). Computed here, in Wasm,
    /// so every node has the same bits.
    ///
    /// # Errors
    /// Quota errors from the upload.
    pub fn new(config: &Config, positions: usize) -> Result<Angles> {
        let half = config.head_dim / 2;
        let scale = config.rope_base.powf(-2.0 / config.head_dim as f32);
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            let mut theta = p as f32;
            for _ in 0..half {
                cos.push(theta.cos());
                sin.push(theta.sin());
                theta *= scale;
            }
        }
        Ok(Angles {
            cos: Tensor::from_f32(&[positions, half], &cos)?,
            sin: Tensor::from_f32(&[positions, half], &sin)?,
        })
    }
}

impl Model {
    /// Loads every weight onto the device (quantised matrices kept as
    /// blocks, the rest decoded; all kept there for the next job that reads
    /// the same file).
    ///
    /// # Errors
    /// A tensor missing or of an unexpected shape, or the device's errors.
    pub fn load(model: &Gguf) -> Result<Model> {
        let config = Config::of(model)?;
        let (h, kv) = (config.hidden, config.kv_heads * config.head_dim);
        let checked = |t: Tensor, name: &str, shape: &[usize]| -> Result<Tensor> {
            if t.shape() != shape {
                return Err(Error::ShapeMismatch(format!(
                    "{name} is {:?}; this model's sizes say {shape:?}",
                    t.shape()
                )));
            }
            Ok(t)
        };
        // Vectors decoded; matrices kept as blocks (4.5–8.5 bits a value),
        // which matmul and gather read as their decoded values.
        let tensor = |name: &str, shape: &[usize]| -> Result<Tensor> {
            checked(model.load(name).context(name)?, name, shape)
        };
        let weight = |name: &str, shape: &[usize]| -> Result<Tensor> {
            checked(model.load_weight(name).context(name)?, name, shape)
        };
        let ffn = model
            .tensor("blk.0.ffn_gate.weight")
            .and_then(|t| t.shape.first().copied())
            .ok_or_else(|| Error::NotFound("blk.0.ffn_gate.weight".into()))?
            as usize;
        let mut layers = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let w = |part: &str| format!("blk.{i}.{part}.weight");
            layers.push(Layer {
                attn_norm: tensor(&w("attn_norm"), &[h])?,
                q: weight(&w("attn_q"), &[h, h])?,
                k: weight(&w("attn_k"), &[kv, h])?,
                v: weight(&w("attn_v"), &[kv, h])?,
                out: weight(&w("attn_output"), &[h, h])?,
                ffn_norm: tensor(&w("ffn_norm"), &[h])?,
                gate: weight(&w("ffn_gate"), &[ffn, h])?,
                up: weight(&w("ffn_up"), &[ffn, h])?,
                down: weight(&w("ffn_down"), &[h, ffn])?,
            });
        }
        let output = match model.tensor("output.weight") {
            Some(_) => Some(weight("output.weight", &[config.vocab, h])?),
            None => None,
        };
        Ok(Model {
            embeddings: weight("token_embd.weight", &[config.vocab, h])?,
            out_norm: tensor("output_norm.weight", &[h])?,
            layers,
            output,
            config,
        })
    }

    /// An empty cache for this model.
    pub fn cache(&self) -> Cache {
        Cache {
            keys: (0..self.config.layers).map(|_| Vec::new()).collect(),
            values: (0..self.config.layers).map(|_| Vec::new()).collect(),
            len: 0,
        }
    }

    /// Runs `ids` as the next positions after the cache's, appends their
    /// keys and values to it, and returns the logits of the last one
    /// (`[vocab]`, read back).
    ///
    /// # Errors
    /// No ids, positions past the angle table, or the device's errors.
    pub fn forward(&self, ids: &[u32], cache: &mut Cache, angles: &Angles) -> Result<Vec<f32>> {
        let c = &self.config;
        let t = ids.len();
        if t == 0 {
            return Err(Error::InvalidArgument("forward: no tokens".into()));
        }
        let ids: Vec<i32> = ids
            .iter()
            .map(|&id| {
                i32::try_from(id).map_err(|_| Error::InvalidArgument(format!("token id {id}")))
            })
            .collect::<Result<_>>()?;
        let positions: Vec<i32> = (cache.len..cache.len + t)
            .map(|p| i32::try_from(p).map_err(|_| Error::InvalidArgument(format!("position {p}"))))
            .collect::<Result<_>>()?;
        let positions = Tensor::from_i32(&[t], &positions)?;
        let (cos, sin) = (
            angles.cos.gather(&positions)?,
            angles.sin.gather(&positions)?,
        );
        let scale = 1.0 / (c.head_dim as f32).sqrt();
        let mut x = self.embeddings.gather(&Tensor::from_i32(&[t], &ids)?)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let h = x.rms_norm(&layer.attn_norm, c.eps)?;
            let q = h
                .matmul_t(&layer.q, false, true)?
                .rope(&cos, &sin, c.heads, false)?;
            let k = h
                .matmul_t(&layer.k, false, true)?
                .rope(&cos, &sin, c.kv_heads, false)?;
            let v = h.matmul_t(&layer.v, false, true)?;
            cache.keys[i].push(k);
            cache.values[i].push(v);
            let keys: Vec<&Tensor> = cache.keys[i].iter().collect();
            let values: Vec<&Tensor> = cache.values[i].iter().collect();
            let context = q.causal_attention(&keys, &values, c.heads, c.kv_heads, scale)?;
            x = x.add(&context.matmul_t(&layer.out, false, true)?)?;
            let h = x.rms_norm(&layer.ffn_norm, c.eps)?;
            let gated = h
                .matmul_t(&layer.gate, false, true)?
                .swiglu(&h.matmul_t(&layer.up, false, true)?)?;
            x = x.add(&gated.matmul_t(&layer.down, false, true)?)?;
        }
        cache.len += t;
        let last = x.slice(0, t - 1..t)?.rms_norm(&self.out_norm, c.eps)?;
        let output = self.output.as_ref().unwrap_or(&self.embeddings);
        last.matmul_t(output, false, true)?.to_vec_f32()
    }
}
