//! `attention`: scaled dot-product attention over sequences packed back to
//! back, per head — bit for bit matmul, scale, softmax, matmul. Its quota
//! check also counts the scores of the longest sequence as a temporary
//! tensor; its work is the sum of those ops' formulas per sequence and head.

use crate::dtype::DType;
use crate::error::Error;
use crate::op::Op;
use crate::ops::elementwise::TRANSCENDENTAL_FLOPS;
use crate::session::Session;
use crate::tensor::Tensor;

impl Session {
    /// Scaled dot-product attention over sequences packed back to back,
    /// without padding: `q` and `k` are `[tokens, heads·d]`, `v` is
    /// `[tokens, heads·dv]`, and `lengths` (each ≥ 1) split the rows into
    /// sequences. For each sequence of `n` rows starting at row `o` and each
    /// head `h`, with `Q`, `K`, `V` the sequence's rows and the head's columns
    /// (`h·d..(h+1)·d`, `h·dv..(h+1)·dv`):
    /// `out[o..o+n, h·dv..(h+1)·dv] = matmul(softmax(scale(matmul(Q, K, false,
    /// true), scale)), V)`, bit for bit those ops (SEMANTICS.md). Tokens
    /// attend only within their own sequence, so no mask is needed and no
    /// padding is computed. Output `[tokens, heads·dv]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for non-f32 or non-matrix operands, zero
    /// `heads`, widths not divisible by `heads` or a zero length;
    /// [`Error::ShapeMismatch`] when `q`, `k` and `v` disagree in rows, `q`
    /// and `k` in width, or `lengths` do not sum to the rows; quota (the
    /// scores of the longest sequence count as a temporary `[tokens, heads,
    /// longest]` tensor) and budget errors as usual.
    ///
    /// # Example
    ///
    /// ```
    /// # use assay_host_gpu::{Device, Session, SessionLimits};
    /// let mut s = Session::new(Device::cpu(), SessionLimits::default());
    /// // Two sequences (2 tokens, then 1), one head of width 2.
    /// let q = s.upload_f32(&[3, 2], vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0])?;
    /// let v = s.upload_f32(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
    /// let out = s.attention(&q, &q, &v, &[2, 1], 1, 0.5)?;
    /// let y = s.read_f32(&out)?;
    /// // A sequence of one token attends to itself alone.
    /// assert_eq!(&y[4..], &[5.0, 6.0]);
    /// # Ok::<(), assay_host_gpu::Error>(())
    /// ```
    pub fn attention(
        &mut self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        lengths: &[usize],
        heads: usize,
        scale: f32,
    ) -> Result<Tensor, Error> {
        let what = "attention";
        self.check_inputs(
            what,
            &[
                ("q", q, Some(DType::F32)),
                ("k", k, Some(DType::F32)),
                ("v", v, Some(DType::F32)),
            ],
        )?;
        for (name, t) in [("q", q), ("k", k), ("v", v)] {
            if t.shape.len() != 2 {
                return Err(Error::InvalidArgument(format!(
                    "{what}: {name} must be [tokens, heads·width] but it is {:?}",
                    t.shape
                )));
            }
        }
        let (tokens, width, v_width) = (q.shape[0], q.shape[1], v.shape[1]);
        if k.shape[..] != q.shape[..] || v.shape[0] != tokens {
            return Err(Error::ShapeMismatch(format!(
                "{what}: q {:?} and k {:?} must have the same shape, and v {:?} as many rows",
                q.shape, k.shape, v.shape
            )));
        }
        if heads == 0 || !width.is_multiple_of(heads) || !v_width.is_multiple_of(heads) {
            return Err(Error::InvalidArgument(format!(
                "{what}: {heads} heads must divide the widths of q ({width}) and v ({v_width})"
            )));
        }
        if let Some(at) = lengths.iter().position(|&n| n == 0) {
            return Err(Error::InvalidArgument(format!(
                "{what}: sequence {at} has length 0; leave empty sequences out (they have no rows)"
            )));
        }
        let total = lengths
            .iter()
            .try_fold(0usize, |sum, &n| sum.checked_add(n));
        if total != Some(tokens) {
            return Err(Error::ShapeMismatch(format!(
                "{what}: the {} sequence lengths must add up to the {tokens} rows of q",
                lengths.len()
            )));
        }
        let longest = lengths.iter().copied().max().unwrap_or(0);
        self.check_scores_fit(what, &[tokens, heads, longest], &[tokens, v_width])?;
        // Per sequence and head: the two products (2·n²·d and 2·n²·dv), the
        // scale (n²) and the softmax (n²·(T + 4)).
        let (d, dv) = ((width / heads) as u128, (v_width / heads) as u128);
        let per_score = 2 * d + 2 * dv + 1 + TRANSCENDENTAL_FLOPS as u128 + 4;
        let flops = lengths.iter().fold(0u128, |f, &n| {
            f.saturating_add(
                (n as u128)
                    .saturating_mul(n as u128)
                    .saturating_mul(heads as u128)
                    .saturating_mul(per_score),
            )
        });
        self.op(
            what,
            Op::Attention {
                lengths: lengths.to_vec(),
                heads,
                scale,
            },
            &[q, k, v],
            vec![tokens, v_width],
            DType::F32,
            flops,
        )
    }
}

impl Session {
    /// Causal attention with grouped-query heads over a key/value cache
    /// held as blocks: a decoder's attention, where each decode step
    /// appends its one row of keys and values as a new block instead of
    /// copying the cache.
    ///
    /// `keys` and `values` are blocks of one sequence's rows back to back
    /// (`keys[b]` `[n_b, kv_heads·d]`, `values[b]` `[n_b, kv_heads·dv]`,
    /// the same `n_b`), `n = Σ n_b` positions in all. `q` `[t, heads·d]`
    /// holds the queries of the last `t` positions (`1 ≤ t ≤ n`): row `i`
    /// is position `p = n − t + i` and attends to positions `0..=p`. Query
    /// head `h` reads key/value head `h / (heads / kv_heads)`. Per row and
    /// head, bit for bit `attention`'s program over those `p + 1` keys:
    /// each score the dot product over d from +0 then `scale`'s product,
    /// softmax's row program, then each output the dot product of the
    /// probabilities with the values (SEMANTICS.md, `causal_attention`).
    /// Output `[t, heads·dv]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for non-f32 or non-matrix operands, no
    /// blocks, zero heads, `kv_heads` not dividing `heads`, widths that
    /// the heads do not divide; [`Error::ShapeMismatch`] when `q` and the
    /// keys disagree in head width, a values block has other rows than its
    /// keys block, the blocks disagree in width, or `q` has no rows or
    /// more rows than the cache; quota (the scores count as a temporary
    /// `[t, heads, n]` tensor) and budget errors as usual.
    ///
    /// # Example
    ///
    /// ```
    /// # use assay_host_gpu::{Device, Session, SessionLimits};
    /// let mut s = Session::new(Device::cpu(), SessionLimits::default());
    /// // A cache of two positions in two blocks, one head of width 1.
    /// let (k0, k1) = (s.upload_f32(&[1, 1], vec![0.0])?, s.upload_f32(&[1, 1], vec![0.0])?);
    /// let (v0, v1) = (s.upload_f32(&[1, 1], vec![2.0])?, s.upload_f32(&[1, 1], vec![4.0])?);
    /// // Both positions' queries: the first sees only itself, the second
    /// // both (equal scores: the mean of the values).
    /// let q = s.upload_f32(&[2, 1], vec![1.0, 1.0])?;
    /// let out = s.causal_attention(&q, &[&k0, &k1], &[&v0, &v1], 1, 1, 1.0)?;
    /// assert_eq!(s.read_f32(&out)?, [2.0, 3.0]);
    /// # Ok::<(), assay_host_gpu::Error>(())
    /// ```
    pub fn causal_attention(
        &mut self,
        q: &Tensor,
        keys: &[&Tensor],
        values: &[&Tensor],
        heads: usize,
        kv_heads: usize,
        scale: f32,
    ) -> Result<Tensor, Error> {
        let what = "causal_attention";
        self.check_inputs(what, &[("q", q, Some(DType::F32))])?;
        for (name, blocks) in [("keys", keys), ("values", values)] {
            for t in blocks {
                self.check_inputs(what, &[(name, t, Some(DType::F32))])?;
                if t.shape.len() != 2 {
                    return Err(Error::InvalidArgument(format!(
                        "{what}: every block of {name} must be [rows, kv_heads·width] but one is {:?}",
                        t.shape
                    )));
                }
            }
        }
        let &[t, width] = &q.shape[..] else {
            return Err(Error::InvalidArgument(format!(
                "{what}: q must be [rows, heads·d] but it is {:?}",
                q.shape
            )));
        };
        if keys.is_empty() || keys.len() != values.len() {
            return Err(Error::InvalidArgument(format!(
                "{what}: give the cache as one or more blocks, as many of values as of keys \
                 (got {} and {})",
                keys.len(),
                values.len()
            )));
        }
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(Error::InvalidArgument(format!(
                "{what}: kv_heads ({kv_heads}) must be at least 1 and divide heads ({heads})"
            )));
        }
        let (k_width, v_width) = (keys[0].shape[1], values[0].shape[1]);
        if !width.is_multiple_of(heads)
            || !k_width.is_multiple_of(kv_heads)
            || !v_width.is_multiple_of(kv_heads)
        {
            return Err(Error::InvalidArgument(format!(
                "{what}: {heads} heads must divide q's width ({width}) and {kv_heads} kv_heads \
                 the keys' ({k_width}) and values' ({v_width})"
            )));
        }
        if width / heads != k_width / kv_heads {
            return Err(Error::ShapeMismatch(format!(
                "{what}: q's heads are {} wide but the keys' are {}",
                width / heads,
                k_width / kv_heads
            )));
        }
        let mut n = 0usize;
        for (b, (k, v)) in keys.iter().zip(values).enumerate() {
            if k.shape[1] != k_width || v.shape[1] != v_width || k.shape[0] != v.shape[0] {
                return Err(Error::ShapeMismatch(format!(
                    "{what}: block {b} is keys {:?} and values {:?}; every block must be \
                     [rows, {k_width}] and [rows, {v_width}] with the same rows",
                    k.shape, v.shape
                )));
            }
            n = n.checked_add(k.shape[0]).ok_or_else(|| {
                Error::InvalidArgument(format!("{what}: the blocks' rows overflow"))
            })?;
        }
        if t == 0 || t > n {
            return Err(Error::ShapeMismatch(format!(
                "{what}: q has {t} rows; it must have between 1 and the cache's {n} positions \
                 (append this step's keys and values first)"
            )));
        }
        let out_width = v_width / kv_heads * heads;
        self.check_scores_fit(what, &[t, heads, n], &[t, out_width])?;
        // Per row and head, for its `p + 1` keys: as `attention` per score.
        let (d, dv) = ((width / heads) as u128, (v_width / kv_heads) as u128);
        let per_score = 2 * d + 2 * dv + 1 + TRANSCENDENTAL_FLOPS as u128 + 4;
        let (t128, n128) = (t as u128, n as u128);
        // Σ over i < t of (n − t + i + 1) keys.
        let scores = t128 * (n128 - t128) + t128 * (t128 + 1) / 2;
        let flops = scores
            .saturating_mul(heads as u128)
            .saturating_mul(per_score);
        let mut inputs = Vec::with_capacity(1 + 2 * keys.len());
        inputs.push(q);
        inputs.extend_from_slice(keys);
        inputs.extend_from_slice(values);
        self.op(
            what,
            Op::CausalAttention {
                blocks: keys.len(),
                heads,
                kv_heads,
                scale,
            },
            &inputs,
            vec![t, out_width],
            DType::F32,
            flops,
        )
    }
}

impl Session {
    /// Refuses an attention whose output and scores (a temporary f32
    /// tensor of `scores` alive during the op, on every backend) would take
    /// the live bytes past the quota.
    fn check_scores_fit(&self, what: &str, scores: &[usize], out: &[usize]) -> Result<(), Error> {
        let (_, scores_bytes) = self.checked_size(what, scores, DType::F32)?;
        let (_, out_bytes) = self.checked_size(what, out, DType::F32)?;
        let live = self.live_bytes();
        if live.saturating_add(out_bytes).saturating_add(scores_bytes) > self.limits().memory_quota
        {
            return Err(Error::QuotaExceeded(format!(
                "{what} needs {out_bytes} bytes for its output and {scores_bytes} for its \
                 scores with {live} bytes alive; the job's quota is {} bytes",
                self.limits().memory_quota
            )));
        }
        Ok(())
    }
}
