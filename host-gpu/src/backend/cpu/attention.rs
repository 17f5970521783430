//! Attention over sequences packed back to back (SEMANTICS.md, `attention`),
//! and causal attention over a key/value cache held as blocks
//! (`causal_attention`), which runs the same per-row programs.
//!
//! Each task takes one block of query rows of one sequence and a group of
//! adjacent heads, and for each head:
//! its scores, each the matmul's dot product (fma over the head's columns
//! from +0) then `scale`'s product, in tiles of 4 query rows × 16 keys;
//! `softmax`'s own row kernel; then each output the matmul's dot product of
//! the probabilities with the values, in tiles of 2 rows × 32 columns. The keys
//! and values of the sequence's head are copied into small zero-padded
//! tiles first, so both loops run on whole vectors; the scores never leave
//! the cache, and no padded, permuted or masked copy of Q, K or V is made.
//! Every step rounds as its op does, so the bits are the composition's
//! (`tests/all/reference.rs` checks it on every SIMD path and thread count).

use std::sync::Mutex;

use crate::backend::contract::TensorRef;
use crate::backend::cpu::alloc::uninit;
use crate::backend::cpu::buffer::f32s;
use crate::backend::cpu::ctx::Ctx;
use crate::backend::cpu::norm::softmax_rows;
use crate::backend::cpu::scalar::canon;
use crate::backend::cpu::shared_out::SharedOut;
use crate::backend::cpu::simd::multiversion;
use crate::error::Error;

/// Query rows per task: a task's scores are at most this many rows of its
/// sequence's length, and long sequences still split into several tasks.
const QUERY_BLOCK: usize = 64;

/// Rough cost of one score beyond the two products, for parallel
/// splitting only (scale, exp, the sums).
const COST_PER_SCORE: usize = 24;

/// One task: query rows `first..first + rows` of the sequence of `len`
/// rows starting at row `start`, heads `heads`.
#[derive(Debug, Clone)]
struct Block {
    start: usize,
    len: usize,
    heads: std::ops::Range<usize>,
    first: usize,
    rows: usize,
}

/// `q`, `k` `[tokens, heads·d]`, `v` `[tokens, heads·dv]` → `[tokens, heads·dv]`.
pub(super) fn attention(
    ctx: &Ctx<'_>,
    q: &TensorRef<'_>,
    k: &TensorRef<'_>,
    v: &TensorRef<'_>,
    lengths: &[usize],
    heads: usize,
    scale: f32,
) -> Result<Vec<f32>, Error> {
    let (qv, kv, vv) = (f32s(q)?, f32s(k)?, f32s(v)?);
    let (&[tokens, width], &[v_tokens, v_width]) = (q.shape, v.shape) else {
        return Err(Error::Device(
            "cpu: attention operands must be matrices".into(),
        ));
    };
    if heads == 0 || k.shape != q.shape || v_tokens != tokens {
        return Err(Error::Device("cpu: attention shapes".into()));
    }
    let (d, dv) = (width / heads, v_width / heads);
    // A task takes a group of adjacent heads: it reads its rows' columns
    // of those heads as one contiguous run, which the prefetchers follow —
    // right after a two-thread `linear` wrote Q, K and V, one task per head
    // (32 columns) spent more time fetching rows from the other core's
    // cache than computing. Groups stay small enough for every thread to
    // get work when there are few sequences.
    let groups = (4 * ctx.threads())
        .div_ceil(lengths.len().max(1))
        .clamp(1, heads);
    let group = heads.div_ceil(groups);
    let mut blocks = Vec::new();
    let (mut start, mut cost) = (0usize, 0usize);
    for &len in lengths {
        for head in (0..heads).step_by(group) {
            for first in (0..len).step_by(QUERY_BLOCK) {
                let rows = QUERY_BLOCK.min(len - first);
                blocks.push(Block {
                    start,
                    len,
                    heads: head..(head + group).min(heads),
                    first,
                    rows,
                });
            }
        }
        let scores = len.saturating_mul(len).saturating_mul(heads);
        cost = cost.saturating_add(scores.saturating_mul(2 * (d + dv) + COST_PER_SCORE));
        start += len;
    }
    if start != tokens {
        return Err(Error::Device("cpu: attention lengths".into()));
    }
    let n = tokens * v_width;
    let mut out = uninit::<f32>(n)?;
    // Tasks write disjoint rectangles: rows of one sequence × the columns
    // of some heads.
    let shared = SharedOut::over(&mut out.spare_capacity_mut()[..n]);
    let operands = Operands {
        q: qv,
        k: kv,
        v: vv,
        width,
        v_width,
        d,
        dv,
        scale,
    };
    let serial = ctx.serial();
    let failure = Mutex::new(None);
    ctx.for_cost(cost).tasks(blocks.len(), |i| {
        if let Err(e) = operands.block(&serial, &blocks[i], &shared) {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // SAFETY: every block returned Ok, so wrote its rectangle, and the
    // blocks cover every (row, head): the lengths add up to `tokens` and
    // each sequence has a block per group of heads (the groups cover
    // 0..heads) and per QUERY_BLOCK rows.
    unsafe { out.set_len(n) };
    Ok(out)
}

/// What every block reads.
struct Operands<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    width: usize,
    v_width: usize,
    d: usize,
    dv: usize,
    scale: f32,
}

impl Operands<'_> {
    /// One block: scores and their scale, softmax, `P · V`, stored at its place.
    fn block(&self, ctx: &Ctx<'_>, b: &Block, out: &SharedOut) -> Result<(), Error> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            b.heads
                .clone()
                .try_for_each(|head| self.head(ctx, b, head, out, &mut scratch))
        })
    }

    /// One head of a block.
    fn head(
        &self,
        ctx: &Ctx<'_>,
        b: &Block,
        head: usize,
        out: &SharedOut,
        scratch: &mut Vec<f32>,
    ) -> Result<(), Error> {
        let (rows, len, d, dv) = (b.rows, b.len, self.d, self.dv);
        let padded = len.next_multiple_of(SCORE_KEYS);
        let v_padded = dv.next_multiple_of(CONTEXT_COLUMNS);
        let sizes = [
            d * padded,
            rows * len,
            rows * len,
            len * v_padded,
            rows * v_padded,
        ];
        let [keys_t, scaled, probs, values, context] = scratch_parts(scratch, sizes)?;
        // The sequence's keys in the head's columns, transposed: row c holds
        // k[start + j][head·d + c] for every j, then zeros up to `padded`.
        keys_t.fill(0.0);
        for j in 0..len {
            let key = &self.k[(b.start + j) * self.width + head * d..][..d];
            for (c, &x) in key.iter().enumerate() {
                keys_t[c * padded + j] = x;
            }
        }
        let queries = &self.q[(b.start + b.first) * self.width + head * d..];
        let shape = (rows, len, d, padded);
        scaled_scores(
            ctx.simd, queries, self.width, keys_t, shape, self.scale, scaled,
        );
        softmax_rows(ctx.simd, scaled, len, probs);
        // The sequence's values in the head's columns, each row zero-padded
        // to whole vectors.
        values.fill(0.0);
        for (j, row) in values
            .chunks_exact_mut(v_padded.max(1))
            .enumerate()
            .take(len)
        {
            row[..dv].copy_from_slice(&self.v[(b.start + j) * self.v_width + head * dv..][..dv]);
        }
        weighted_values(ctx.simd, probs, values, (rows, len, v_padded), context);
        for i in 0..rows {
            let at = (b.start + b.first + i) * self.v_width + head * dv;
            // SAFETY: this block is the only writer of its rows' head columns.
            unsafe { out.write(at, &context[i * v_padded..][..dv]) };
        }
        Ok(())
    }
}

/// `q` `[t, heads·d]`, the last `t` positions of the sequence whose keys
/// and values are `blocks`' rows back to back, → `[t, heads·dv]`
/// (SEMANTICS.md, `causal_attention`).
///
/// Each task takes a block of query rows and one key/value head, copies
/// the keys its last row sees (transposed) and their values into its
/// scratch once, and runs every query head of the group over them with
/// `attention`'s own score, softmax and context programs: the scores of a
/// block's rows are computed over its last row's keys and each row's
/// softmax and context then read only its own prefix, so every row gets
/// the bits of `attention` over exactly the positions it sees.
pub(super) fn causal_attention(
    ctx: &Ctx<'_>,
    q: &TensorRef<'_>,
    blocks: (&[TensorRef<'_>], &[TensorRef<'_>]),
    (heads, kv_heads): (usize, usize),
    scale: f32,
) -> Result<Vec<f32>, Error> {
    let qv = f32s(q)?;
    let (keys, values) = blocks;
    let (&[t, width], Some(k0), Some(v0)) = (q.shape, keys.first(), values.first()) else {
        return Err(Error::Device("cpu: causal attention operands".into()));
    };
    let (k_width, v_width) = (k0.shape[1], v0.shape[1]);
    if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
        return Err(Error::Device("cpu: causal attention heads".into()));
    }
    fn rows_of<'a>(blocks: &[TensorRef<'a>], w: usize) -> Result<Vec<&'a [f32]>, Error> {
        let mut rows = Vec::new();
        for b in blocks {
            if b.shape.len() != 2 || b.shape[1] != w {
                return Err(Error::Device("cpu: causal attention blocks".into()));
            }
            let data = f32s(b)?;
            if w == 0 {
                // Rows of no columns: chunks of a width would give none.
                rows.extend(std::iter::repeat_n(&data[..0], b.shape[0]));
            } else {
                rows.extend(data.chunks_exact(w));
            }
        }
        Ok(rows)
    }
    let (key_rows, value_rows) = (rows_of(keys, k_width)?, rows_of(values, v_width)?);
    let n = key_rows.len();
    if value_rows.len() != n || t == 0 || t > n {
        return Err(Error::Device("cpu: causal attention rows".into()));
    }
    let (d, dv, group) = (width / heads, v_width / kv_heads, heads / kv_heads);
    let out_width = heads * dv;
    let mut tasks = Vec::new();
    let mut cost = 0usize;
    for first in (0..t).step_by(QUERY_BLOCK) {
        let rows = QUERY_BLOCK.min(t - first);
        for head in 0..kv_heads {
            tasks.push((first, rows, head));
        }
        let seen = n - t + first + rows;
        cost = cost.saturating_add(
            rows.saturating_mul(seen)
                .saturating_mul(heads)
                .saturating_mul(2 * (d + dv) + COST_PER_SCORE),
        );
    }
    let len = t * out_width;
    let mut out = uninit::<f32>(len)?;
    let shared = SharedOut::over(&mut out.spare_capacity_mut()[..len]);
    let cache = Cache {
        q: qv,
        width,
        keys: &key_rows,
        values: &value_rows,
        d,
        dv,
        group,
        past: n - t,
        out_width,
        scale,
    };
    let serial = ctx.serial();
    let failure = Mutex::new(None);
    ctx.for_cost(cost).tasks(tasks.len(), |i| {
        let (first, rows, head) = tasks[i];
        if let Err(e) = cache.task(&serial, (first, rows), head, &shared) {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // SAFETY: every task returned Ok, so wrote its rows' columns of every
    // query head of its key/value head; the tasks cover every block of
    // QUERY_BLOCK rows of 0..t and every key/value head, whose groups of
    // query heads cover 0..heads.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// What every task of a causal attention reads.
struct Cache<'a> {
    q: &'a [f32],
    width: usize,
    /// The cache's rows, position by position (each `kv_heads·d`).
    keys: &'a [&'a [f32]],
    /// Likewise (each `kv_heads·dv`).
    values: &'a [&'a [f32]],
    d: usize,
    dv: usize,
    /// Query heads per key/value head.
    group: usize,
    /// Positions before q's first row.
    past: usize,
    out_width: usize,
    scale: f32,
}

impl Cache<'_> {
    /// Query rows `first..first + rows`, the query heads of key/value head `kv`.
    fn task(
        &self,
        ctx: &Ctx<'_>,
        (first, rows): (usize, usize),
        kv: usize,
        out: &SharedOut,
    ) -> Result<(), Error> {
        let (d, dv) = (self.d, self.dv);
        // The keys the block's last row sees; each row sees a prefix.
        let len = self.past + first + rows;
        let padded = len.next_multiple_of(SCORE_KEYS);
        let v_padded = dv.next_multiple_of(CONTEXT_COLUMNS);
        let sizes = [d * padded, rows * len, len, len * v_padded, v_padded];
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let [keys_t, scaled, probs, values, context] = scratch_parts(&mut scratch, sizes)?;
            keys_t.fill(0.0);
            for (j, key) in self.keys[..len].iter().enumerate() {
                for (c, &x) in key[kv * d..][..d].iter().enumerate() {
                    keys_t[c * padded + j] = x;
                }
            }
            values.fill(0.0);
            for (row, value) in values
                .chunks_exact_mut(v_padded.max(1))
                .zip(&self.values[..len])
            {
                row[..dv].copy_from_slice(&value[kv * dv..][..dv]);
            }
            for head in kv * self.group..(kv + 1) * self.group {
                let queries = &self.q[first * self.width + head * d..];
                let shape = (rows, len, d, padded);
                scaled_scores(
                    ctx.simd, queries, self.width, keys_t, shape, self.scale, scaled,
                );
                for i in 0..rows {
                    let seen = self.past + first + i + 1;
                    softmax_rows(
                        ctx.simd,
                        &scaled[i * len..][..seen],
                        seen,
                        &mut probs[..seen],
                    );
                    weighted_values(
                        ctx.simd,
                        &probs[..seen],
                        values,
                        (1, seen, v_padded),
                        context,
                    );
                    let at = (first + i) * self.out_width + head * dv;
                    // SAFETY: this task is the only writer of its rows' columns of its heads.
                    unsafe { out.write(at, &context[..dv]) };
                }
            }
            Ok(())
        })
    }
}

/// The scratch cut into the five parts a head's work needs (keys
/// transposed, scaled scores, probabilities, values, context) of `sizes`,
/// grown first if it is short.
fn scratch_parts(scratch: &mut Vec<f32>, sizes: [usize; 5]) -> Result<[&mut [f32]; 5], Error> {
    let total: usize = sizes.iter().sum();
    if scratch.len() < total {
        scratch
            .try_reserve(total - scratch.len())
            .map_err(|e| Error::Device(format!("cpu: attention scratch: {e}")))?;
        scratch.resize(total, 0.0);
    }
    let (keys_t, rest) = scratch.split_at_mut(sizes[0]);
    let (scaled, rest) = rest.split_at_mut(sizes[1]);
    let (probs, rest) = rest.split_at_mut(sizes[2]);
    let (values, rest) = rest.split_at_mut(sizes[3]);
    Ok([keys_t, scaled, probs, values, &mut rest[..sizes[4]]])
}

thread_local! {
    /// Each thread's working memory for its blocks (keys, scores,
    /// probabilities, values, context), kept between blocks and ops.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One vector: 256 bits, which LLVM keeps whole on both vector paths.
const LANES: usize = 8;

/// Scores: a tile of [`SCORE_ROWS`] query rows × [`SCORE_KEYS`] keys per
/// pass over d — eight independent accumulators, enough to keep the FMA
/// units busy (one chain waits 4 cycles per step).
const SCORE_ROWS: usize = 4;
const SCORE_KEYS: usize = 2 * LANES;

/// Context: a tile of [`CONTEXT_ROWS`] rows × [`CONTEXT_COLUMNS`] columns
/// per pass over the keys (again eight accumulators).
const CONTEXT_ROWS: usize = 2;
const CONTEXT_COLUMNS: usize = 4 * LANES;

multiversion! {
    /// `out[i·len + j] = canon(canon(dot over c ascending (q_i[c], k_j[c])) ·
    /// scale)`: the matmul's dot product from +0, then `scale`'s product.
    /// `q_i` is `queries[i·stride..][..d]`; `keys_t` holds `k_j[c]` at
    /// `c·padded + j` (`padded` a multiple of [`SCORE_KEYS`]).
    fn scaled_scores(
        queries: &[f32],
        stride: usize,
        keys_t: &[f32],
        shape: (usize, usize, usize, usize),
        scale: f32,
        out: &mut [f32],
    ) {
        let (rows, len, d, padded) = shape;
        for i0 in (0..rows).step_by(SCORE_ROWS) {
            // A short last tile recomputes its last row in the spare slots.
            let q: [&[f32]; SCORE_ROWS] =
                std::array::from_fn(|r| &queries[(i0 + r).min(rows - 1) * stride..][..d]);
            for j0 in (0..len).step_by(SCORE_KEYS) {
                let mut acc = [[0.0f32; SCORE_KEYS]; SCORE_ROWS];
                for c in 0..d {
                    let k: &[f32; SCORE_KEYS] = keys_t[c * padded + j0..][..SCORE_KEYS]
                        .try_into()
                        .unwrap_or(&[0.0; SCORE_KEYS]);
                    for (row, q) in acc.iter_mut().zip(&q) {
                        let qc = q[c];
                        for (a, &kv) in row.iter_mut().zip(k) {
                            *a = qc.mul_add(kv, *a);
                        }
                    }
                }
                for (r, row) in acc.iter().enumerate().take(rows - i0) {
                    let o = &mut out[(i0 + r) * len + j0..(i0 + r + 1) * len];
                    for (o, &a) in o.iter_mut().zip(row) {
                        *o = canon(canon(a) * scale);
                    }
                }
            }
        }
    }
}

multiversion! {
    /// `out[i·padded + c] = canon(dot over j ascending (p[i·len + j],
    /// values[j·padded + c]))`: the matmul's dot product from +0
    /// (`padded` a multiple of [`CONTEXT_COLUMNS`]).
    fn weighted_values(
        p: &[f32],
        values: &[f32],
        shape: (usize, usize, usize),
        out: &mut [f32],
    ) {
        let (rows, len, padded) = shape;
        for i0 in (0..rows).step_by(CONTEXT_ROWS) {
            let probs: [&[f32]; CONTEXT_ROWS] =
                std::array::from_fn(|r| &p[(i0 + r).min(rows - 1) * len..][..len]);
            for c0 in (0..padded).step_by(CONTEXT_COLUMNS) {
                let mut acc = [[0.0f32; CONTEXT_COLUMNS]; CONTEXT_ROWS];
                for j in 0..len {
                    let v: &[f32; CONTEXT_COLUMNS] = values[j * padded + c0..][..CONTEXT_COLUMNS]
                        .try_into()
                        .unwrap_or(&[0.0; CONTEXT_COLUMNS]);
                    for (row, probs) in acc.iter_mut().zip(&probs) {
                        let pj = probs[j];
                        for (a, &x) in row.iter_mut().zip(v) {
                            *a = pj.mul_add(x, *a);
                        }
                    }
                }
                for (r, row) in acc.iter().enumerate().take(rows - i0) {
                    let o = &mut out[(i0 + r) * padded + c0..][..CONTEXT_COLUMNS];
                    for (o, &a) in o.iter_mut().zip(row) {
                        *o = canon(a);
                    }
                }
            }
        }
    }
}
