//! Attention over sequences packed back to back (SEMANTICS.md, `attention`).
//!
//! Each task takes one block of query rows of one sequence and one head and
//! runs the four steps of the definition with the kernels of their own ops:
//! the scores with the matmul kernel (Q read in place, K's head columns
//! packed as a transposed B), `scale`'s and `softmax`'s row kernels, and
//! the matmul kernel again for `P · V` — so every bit is that of the
//! composition, while the block's scores stay in cache and no padded,
//! permuted or masked copy of Q, K or V is ever made.

use std::mem::MaybeUninit;
use std::sync::Mutex;

use crate::backend::TensorRef;
use crate::backend::cpu::elementwise::scale_kernel;
use crate::backend::cpu::matmul::{Strided, gemm};
use crate::backend::cpu::norm::softmax_rows;
use crate::backend::cpu::{Ctx, alloc, f32s, uninit};
use crate::error::Error;

/// Query rows per task: a task's scores are at most this many rows of its
/// sequence's length, and long sequences still split into several tasks.
const QUERY_BLOCK: usize = 64;

/// Rough cost of one score beyond the two products, for parallel
/// splitting only (scale, exp, the sums).
const COST_PER_SCORE: usize = 24;

/// One task: query rows `first..first + rows` of the sequence of `len`
/// rows starting at row `start`, head `head`.
#[derive(Debug, Clone, Copy)]
struct Block {
    start: usize,
    len: usize,
    head: usize,
    first: usize,
    rows: usize,
}

/// The output, written by tasks in disjoint rectangles (rows of one
/// sequence × the columns of one head).
struct SharedRows {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: tasks write disjoint elements (each (row, head) belongs to one
// block) and nothing reads the output until every task has returned.
unsafe impl Sync for SharedRows {}
// SAFETY: as above.
unsafe impl Send for SharedRows {}

impl SharedRows {
    /// Writes `values` at element `at`.
    ///
    /// # Safety
    ///
    /// No other thread may access these elements meanwhile.
    unsafe fn write(&self, at: usize, values: &[f32]) -> Result<(), Error> {
        if at
            .checked_add(values.len())
            .is_none_or(|end| end > self.len)
        {
            return Err(Error::Device("cpu: attention output bounds".into()));
        }
        // SAFETY: in bounds (checked above); exclusive (the caller's promise).
        unsafe {
            std::ptr::copy_nonoverlapping(values.as_ptr(), self.ptr.add(at), values.len());
        }
        Ok(())
    }
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
    let mut blocks = Vec::new();
    let (mut start, mut cost) = (0usize, 0usize);
    for &len in lengths {
        for head in 0..heads {
            for first in (0..len).step_by(QUERY_BLOCK) {
                let rows = QUERY_BLOCK.min(len - first);
                blocks.push(Block {
                    start,
                    len,
                    head,
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
    let shared = SharedRows {
        ptr: out.spare_capacity_mut().as_mut_ptr().cast(),
        len: n,
    };
    let serial = ctx.serial();
    let failure = Mutex::new(None);
    ctx.for_cost(cost).tasks(blocks.len(), |i| {
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
        if let Err(e) = operands.block(&serial, blocks[i], &shared) {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // SAFETY: every block returned Ok, so wrote its rectangle, and the
    // blocks cover every (row, head): the lengths add up to `tokens` and
    // each sequence has a block per head and per QUERY_BLOCK rows.
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
    /// One block: scores, scale, softmax, `P · V`, stored at its place.
    fn block(&self, ctx: &Ctx<'_>, b: Block, out: &SharedRows) -> Result<(), Error> {
        let (rows, len) = (b.rows, b.len);
        // Scores [rows, len]: the block's query rows · the sequence's keys,
        // B[c][j] = k[start + j][head·d + c] (a transposed B).
        let queries = Strided {
            data: self.q,
            off: (b.start + b.first) * self.width + b.head * self.d,
            rs: self.width,
            cs: 1,
        };
        let keys = Strided {
            data: self.k,
            off: b.start * self.width + b.head * self.d,
            rs: 1,
            cs: self.width,
        };
        let scores = product(ctx, rows, len, self.d, &queries, &keys)?;
        let mut scaled = alloc(rows * len)?;
        scale_kernel(ctx.simd, &scores, self.scale, &mut scaled);
        let mut probs = scores;
        softmax_rows(ctx.simd, &scaled, len, &mut probs);
        // Context [rows, dv] = P · the sequence's values in the head's columns.
        let p = Strided {
            data: &probs,
            off: 0,
            rs: len,
            cs: 1,
        };
        let values = Strided {
            data: self.v,
            off: b.start * self.v_width + b.head * self.dv,
            rs: self.v_width,
            cs: 1,
        };
        let context = product(ctx, rows, self.dv, len, &p, &values)?;
        for (i, row) in context.chunks_exact(self.dv.max(1)).enumerate() {
            let at = (b.start + b.first + i) * self.v_width + b.head * self.dv;
            // SAFETY: this block is the only writer of its rows' head columns.
            unsafe { out.write(at, row)? };
        }
        Ok(())
    }
}

/// `a · b` (m×k times k×n) into a new row-major vector, by the matmul kernel.
fn product(
    ctx: &Ctx<'_>,
    m: usize,
    n: usize,
    k: usize,
    a: &Strided<'_>,
    b: &Strided<'_>,
) -> Result<Vec<f32>, Error> {
    let mut c = uninit::<f32>(m * n)?;
    let spare: &mut [MaybeUninit<f32>] = &mut c.spare_capacity_mut()[..m * n];
    gemm(ctx, m, n, k, a, b, None, None, spare)?;
    // SAFETY: gemm returned Ok, so wrote all m·n elements.
    unsafe { c.set_len(m * n) };
    Ok(c)
}
