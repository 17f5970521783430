//! Tensors of GGML blocks on the CPU: how they are laid out
//! ([`BlockRows`]), the product `x · Wᵀ` with such a `W` (matmul and
//! linear), the rows `gather` picks, and the way back to GGML's bytes.
//!
//! **Layout.** GGML stores a `[n, k]` weight row after row, each row
//! `k / 32` blocks. A dot product per output walks k in ascending order
//! (SEMANTICS.md: `acc = fma(x[k], w[j, k], acc)`), so a vector kernel
//! must hold many *outputs* in its lanes, and each step needs the weights
//! of 16 rows at one k. The buffer therefore keeps the rows in groups of
//! [`LANES`], and within a group interleaves the rows' blocks lane by lane:
//! for each block, the 16 scales `d`, the 16 `m` (Q4_1), then each quant
//! byte of the block for the 16 rows together. This is the same bytes
//! moved, no bigger (4.5, 5 or 8.5 bits a value), and a kernel reads 16
//! weights at a k with one contiguous load. The last group's missing rows
//! are zero bytes whose outputs are never stored.
//!
//! **Exactness.** Each weight is decoded by the formula of "Input decoding"
//! (`d·(q − 8)`, `d·q + m`, `d·q`, products exact, Q4_1's sum rounded once)
//! and fed to the same fma chain as [`super::matmul`]'s, from +0.0, in
//! ascending k; then the bias is added, the sum canonicalised and the
//! activation applied, as `linear` does. So every output has the bits the
//! decoded f32 weight gives, on every SIMD path and thread count.

use crate::backend::contract::TensorRef;
use crate::backend::cpu::alloc::alloc;
use crate::backend::cpu::buffer::{Values, buffer, f32s};
use crate::backend::cpu::ctx::Ctx;
use crate::backend::cpu::elementwise::unary_in_place;
use crate::backend::cpu::matmul::{SourceB, gemm_rows};
use crate::backend::cpu::scalar::canon;
use crate::backend::cpu::shared_out::SharedOut;
use crate::backend::cpu::simd::{CpuSimd, multiversion};
use crate::dtype::DType;
use crate::error::Error;
use crate::op::{SourceEncoding, UnaryOp};

/// Rows per group: the outputs one kernel computes side by side.
pub(crate) const LANES: usize = 16;
/// Values per GGML block.
const BLOCK: usize = 32;
/// Rows of x a kernel call multiplies at once (each decoded weight is
/// used this many times).
const MAX_TILE_ROWS: usize = 4;

/// A `[rows, cols]` matrix of GGML blocks in the group layout (module docs).
#[derive(Debug)]
pub(crate) struct BlockRows {
    encoding: SourceEncoding,
    rows: usize,
    cols: usize,
    data: Vec<u8>,
}

/// Where the parts of one group's block lie, for `encoding`.
#[derive(Debug, Clone, Copy)]
struct GroupBlock {
    /// Bytes of one block of one group (all its lanes).
    bytes: usize,
    /// Offset of the quant bytes (after `d`, and `m` for Q4_1).
    quants: usize,
}

impl GroupBlock {
    fn of(encoding: SourceEncoding) -> GroupBlock {
        let (_, block_bytes) = encoding.block();
        let scales = match encoding {
            SourceEncoding::Q4_1 => 4,
            _ => 2,
        };
        GroupBlock {
            bytes: block_bytes * LANES,
            quants: scales * LANES,
        }
    }
}

impl BlockRows {
    /// `bytes` (whole rows of `cols` values in `encoding`'s blocks) in the
    /// group layout.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] if `encoding` has no blocks or the bytes are not
    /// whole rows; [`Error::QuotaExceeded`] if the host cannot allocate.
    pub(crate) fn from_ggml(
        bytes: &[u8],
        encoding: SourceEncoding,
        cols: usize,
    ) -> Result<BlockRows, Error> {
        let (values, block_bytes) = encoding.block();
        if values != BLOCK || cols == 0 || !cols.is_multiple_of(BLOCK) {
            return Err(Error::Device(format!(
                "cpu: {encoding:?} rows of {cols} values are not whole blocks of 32"
            )));
        }
        let row_bytes = cols / BLOCK * block_bytes;
        if !bytes.len().is_multiple_of(row_bytes) {
            return Err(Error::Device(format!(
                "cpu: {} bytes are not whole {encoding:?} rows of {cols} values",
                bytes.len()
            )));
        }
        let rows = bytes.len() / row_bytes;
        let blocks = cols / BLOCK;
        let gb = GroupBlock::of(encoding);
        let groups = rows.div_ceil(LANES);
        let mut data = alloc::<u8>(groups * blocks * gb.bytes)?;
        let scales = gb.quants / LANES;
        for (r, row) in bytes.chunks_exact(row_bytes).enumerate() {
            let (g, lane) = (r / LANES, r % LANES);
            for (b, block) in row.chunks_exact(block_bytes).enumerate() {
                let at = (g * blocks + b) * gb.bytes;
                let dst = &mut data[at..at + gb.bytes];
                // Scales: each 2-byte f16 to its lane of its array.
                for s in 0..scales / 2 {
                    let o = s * 2 * LANES + lane * 2;
                    dst[o..o + 2].copy_from_slice(&block[s * 2..s * 2 + 2]);
                }
                for (i, &q) in block[scales..].iter().enumerate() {
                    dst[gb.quants + i * LANES + lane] = q;
                }
            }
        }
        Ok(BlockRows {
            encoding,
            rows,
            cols,
            data,
        })
    }

    /// The blocks as GGML stores them (the inverse of [`BlockRows::from_ggml`]).
    pub(crate) fn to_ggml(&self) -> Result<Vec<u8>, Error> {
        let (_, block_bytes) = self.encoding.block();
        let blocks = self.cols / BLOCK;
        let gb = GroupBlock::of(self.encoding);
        let scales = gb.quants / LANES;
        let mut out = alloc::<u8>(self.rows * blocks * block_bytes)?;
        for (r, row) in out.chunks_exact_mut(blocks * block_bytes).enumerate() {
            let (g, lane) = (r / LANES, r % LANES);
            for (b, block) in row.chunks_exact_mut(block_bytes).enumerate() {
                let at = (g * blocks + b) * gb.bytes;
                let src = &self.data[at..at + gb.bytes];
                for s in 0..scales / 2 {
                    let o = s * 2 * LANES + lane * 2;
                    block[s * 2..s * 2 + 2].copy_from_slice(&src[o..o + 2]);
                }
                for (i, q) in block[scales..].iter_mut().enumerate() {
                    *q = src[gb.quants + i * LANES + lane];
                }
            }
        }
        Ok(out)
    }

    /// The dtype of a tensor holding these blocks.
    pub(crate) fn dtype(&self) -> DType {
        self.encoding.blocks_dtype().unwrap_or(DType::F32)
    }

    /// Number of values.
    pub(crate) fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Group `g`'s blocks, one after another.
    fn group(&self, g: usize) -> &[u8] {
        let bytes = self.cols / BLOCK * GroupBlock::of(self.encoding).bytes;
        &self.data[g * bytes..(g + 1) * bytes]
    }
}

/// The f32 an f16's bits stand for, exactly, for a vector lane: normal
/// and subnormal halves scale into place by one exact product, infinities
/// and NaNs keep their class (a NaN's payload never reaches an output:
/// every result is canonicalised).
#[inline(always)]
fn f16_bits_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let magnitude = h & 0x7fff;
    let finite = f32::from_bits(magnitude << 13) * f32::from_bits(0x7780_0000); // · 2¹¹²
    let bits = if magnitude >= 0x7c00 {
        0x7f80_0000 | ((magnitude & 0x3ff) << 13)
    } else {
        finite.to_bits()
    };
    f32::from_bits(bits | ((h & 0x8000) << 16))
}

/// The 16 lanes of a group block's scale array at byte `at`.
#[inline(always)]
fn lanes_of_f16(bytes: &[u8], at: usize) -> [f32; LANES] {
    let mut out = [0.0; LANES];
    for (j, o) in out.iter_mut().enumerate() {
        *o = f16_bits_to_f32(u16::from_le_bytes([
            bytes[at + 2 * j],
            bytes[at + 2 * j + 1],
        ]));
    }
    out
}

/// The 16 lanes of quant byte `i` of a block.
#[inline(always)]
fn quant_lanes(block: &[u8], quants: usize, i: usize) -> &[u8; LANES] {
    let at = quants + i * LANES;
    block[at..at + LANES].try_into().unwrap_or(&[0; LANES])
}

/// `acc[r][j] = fma(x[r][k], w[j], acc[r][j])` for every row of the tile.
#[inline(always)]
fn fma_step<const R: usize>(
    acc: &mut [[f32; LANES]; R],
    x: &[&[f32; BLOCK]; R],
    k: usize,
    w: &[f32; LANES],
) {
    for r in 0..R {
        let xv = x[r][k];
        for j in 0..LANES {
            acc[r][j] = xv.mul_add(w[j], acc[r][j]);
        }
    }
}

/// The dot products of `R` rows of x (`x_rows[r]`, each `cols` long) with
/// the 16 rows of one group, k ascending: the tile's accumulators. (Plain
/// loops over fixed-size arrays, no `array::from_fn`: that is a call the
/// compiler keeps out of line, compiled without the caller's features.)
#[inline(always)]
fn group_tile<const R: usize>(
    encoding: SourceEncoding,
    group: &[u8],
    x_rows: [&[f32]; R],
) -> [[f32; LANES]; R] {
    let gb = GroupBlock::of(encoding);
    let mut acc = [[0.0f32; LANES]; R];
    let mut x: [&[f32; BLOCK]; R] = [&[0.0; BLOCK]; R];
    let mut w = [0.0f32; LANES];
    for (b, block) in group.chunks_exact(gb.bytes).enumerate() {
        for r in 0..R {
            if let Ok(row) = x_rows[r][b * BLOCK..(b + 1) * BLOCK].try_into() {
                x[r] = row;
            }
        }
        let d = lanes_of_f16(block, 0);
        match encoding {
            SourceEncoding::Q8_0 => {
                for k in 0..BLOCK {
                    let q = quant_lanes(block, gb.quants, k);
                    for j in 0..LANES {
                        w[j] = d[j] * f32::from(q[j] as i8);
                    }
                    fma_step(&mut acc, &x, k, &w);
                }
            }
            SourceEncoding::Q4_1 => {
                let m = lanes_of_f16(block, 2 * LANES);
                for half in [0, 4] {
                    for i in 0..16 {
                        let q = quant_lanes(block, gb.quants, i);
                        for j in 0..LANES {
                            // `d·q` is exact (11 by 4 significant bits), so
                            // one fma rounds as the product then the sum do.
                            w[j] = d[j].mul_add(f32::from((q[j] >> half) & 0x0f), m[j]);
                        }
                        fma_step(&mut acc, &x, i + half * 4, &w);
                    }
                }
            }
            _ => {
                for half in [0, 4] {
                    for i in 0..16 {
                        let q = quant_lanes(block, gb.quants, i);
                        for j in 0..LANES {
                            w[j] = d[j] * (i32::from((q[j] >> half) & 0x0f) - 8) as f32;
                        }
                        fma_step(&mut acc, &x, i + half * 4, &w);
                    }
                }
            }
        }
    }
    acc
}

/// A matrix of blocks as the GEMM engine's B operand (read transposed:
/// `B[k, j] = W[j, k]`), each panel decoded as it is packed: for tall x,
/// where one decoding serves every row.
struct BlockSource<'a> {
    w: &'a BlockRows,
    simd: CpuSimd,
}

impl SourceB for BlockSource<'_> {
    fn pack_panel(
        &self,
        k0: usize,
        kc: usize,
        j0: usize,
        width: usize,
        nr: usize,
        dst: &mut [f32],
    ) {
        decode_panel(self.simd, self.w, k0, kc, j0, width, nr, dst);
    }
}

/// Lanes `j` of value `k` of a group's block: the decoded weights.
#[inline(always)]
fn block_lanes(
    encoding: SourceEncoding,
    block: &[u8],
    (d, m): (&[f32; LANES], &[f32; LANES]),
    k: usize,
    out: &mut [f32; LANES],
) {
    let gb = GroupBlock::of(encoding);
    match encoding {
        SourceEncoding::Q8_0 => {
            let q = quant_lanes(block, gb.quants, k);
            for j in 0..LANES {
                out[j] = d[j] * f32::from(q[j] as i8);
            }
        }
        SourceEncoding::Q4_1 => {
            let (q, half) = (
                quant_lanes(block, gb.quants, k % 16),
                if k < 16 { 0 } else { 4 },
            );
            for j in 0..LANES {
                // Exact product: one fma rounds as product-then-sum does.
                out[j] = d[j].mul_add(f32::from((q[j] >> half) & 0x0f), m[j]);
            }
        }
        _ => {
            let (q, half) = (
                quant_lanes(block, gb.quants, k % 16),
                if k < 16 { 0 } else { 4 },
            );
            for j in 0..LANES {
                out[j] = d[j] * (i32::from((q[j] >> half) & 0x0f) - 8) as f32;
            }
        }
    }
}

multiversion! {
    /// Writes `W[j0 + j, k0 + kk]` to `dst[kk·nr + j]` for `kk < kc`,
    /// `j < width`, and +0.0 for `width ≤ j < nr` (the engine's panel).
    fn decode_panel(
        w: &BlockRows,
        k0: usize,
        kc: usize,
        j0: usize,
        width: usize,
        nr: usize,
        dst: &mut [f32],
    ) {
        let gb = GroupBlock::of(w.encoding);
        let mut lanes = [0.0f32; LANES];
        for row in dst.chunks_exact_mut(nr).take(kc) {
            row[width..].fill(0.0);
        }
        if width == 0 {
            return;
        }
        for g in j0 / LANES..=(j0 + width - 1) / LANES {
            let group = w.group(g);
            let lo = j0.max(g * LANES) - g * LANES;
            let hi = (j0 + width).min((g + 1) * LANES) - g * LANES;
            let col = g * LANES + lo - j0;
            for b in k0 / BLOCK..(k0 + kc).div_ceil(BLOCK) {
                let block = &group[b * gb.bytes..(b + 1) * gb.bytes];
                let d = lanes_of_f16(block, 0);
                let m = if w.encoding == SourceEncoding::Q4_1 {
                    lanes_of_f16(block, 2 * LANES)
                } else {
                    [0.0; LANES]
                };
                for k in 0..BLOCK {
                    let at = (b * BLOCK + k - k0) * nr + col;
                    // A whole group decodes straight into the panel.
                    if let Some(out) = dst
                        .get_mut(at..at + LANES)
                        .filter(|_| hi - lo == LANES)
                        .and_then(|o| <&mut [f32; LANES]>::try_from(o).ok())
                    {
                        block_lanes(w.encoding, block, (&d, &m), k, out);
                    } else {
                        block_lanes(w.encoding, block, (&d, &m), k, &mut lanes);
                        dst[at..at + hi - lo].copy_from_slice(&lanes[lo..hi]);
                    }
                }
            }
        }
    }
}

/// The dot products of rows `first..first + rows` (at most
/// [`MAX_TILE_ROWS`]) of x (`k` wide) with a group's 16 rows: the explicit
/// AVX-512 kernel on that path (the compiler splits the portable one into
/// 256-bit halves), the portable one elsewhere. Both run the same program.
#[allow(clippy::too_many_arguments)]
fn tile_products(
    simd: CpuSimd,
    encoding: SourceEncoding,
    group: &[u8],
    x: &[f32],
    k: usize,
    first: usize,
    rows: usize,
    acc: &mut [[f32; LANES]; MAX_TILE_ROWS],
) {
    #[cfg(target_arch = "x86_64")]
    if simd == CpuSimd::Avx512 {
        let rows = rows.clamp(1, MAX_TILE_ROWS);
        let x = &x[first * k..(first + rows) * k];
        let gb = GroupBlock::of(encoding);
        assert!(
            group.len() == k / BLOCK * gb.bytes && x.len() == rows * k,
            "blocks: tile extents"
        );
        // SAFETY: the path is only chosen on a CPU with AVX-512 (the
        // backend checked), and the kernel reads `group` (k / 32 group
        // blocks) and `rows` rows of k floats of x, as asserted above.
        unsafe {
            match rows {
                1 => x86::tile::<1>(encoding, group, x.as_ptr(), k, acc),
                2 => x86::tile::<2>(encoding, group, x.as_ptr(), k, acc),
                3 => x86::tile::<3>(encoding, group, x.as_ptr(), k, acc),
                _ => x86::tile::<4>(encoding, group, x.as_ptr(), k, acc),
            }
        }
        return;
    }
    tile_products_portable(simd, encoding, group, x, k, first, rows, acc);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BLOCK, GroupBlock, LANES, MAX_TILE_ROWS};
    use crate::op::SourceEncoding;

    /// [`super::group_tile`] in AVX-512: each group block's 16 scales
    /// widened by `vcvtph2ps` (exact, as SEMANTICS' f16), then per k the
    /// 16 weights decoded (`d·(q − 8)`, `fma(d, q, m)` — the product is
    /// exact, so this rounds as product-then-sum — or `d·q`) and one
    /// `vfmadd231ps` per row.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512F; `group` is whole group blocks of `encoding`,
    /// `k / 32` of them, and `x` points to `R` rows of `k` floats.
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
    pub(super) unsafe fn tile<const R: usize>(
        encoding: SourceEncoding,
        group: &[u8],
        x: *const f32,
        k: usize,
        out: &mut [[f32; LANES]; MAX_TILE_ROWS],
    ) {
        let gb = GroupBlock::of(encoding);
        let mut acc = [_mm512_setzero_ps(); R];
        // SAFETY: every offset stays inside the extents the caller promises.
        unsafe {
            for b in 0..k / BLOCK {
                let block = group.as_ptr().add(b * gb.bytes);
                let d = _mm512_cvtph_ps(_mm256_loadu_si256(block.cast()));
                let quants = block.add(gb.quants);
                let xb = x.add(b * BLOCK);
                let mut step = |kk: usize, w: __m512| {
                    for (r, a) in acc.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(*xb.add(r * k + kk));
                        *a = _mm512_fmadd_ps(xv, w, *a);
                    }
                };
                match encoding {
                    SourceEncoding::Q8_0 => {
                        for kk in 0..BLOCK {
                            let q = _mm512_cvtepi8_epi32(_mm_loadu_si128(
                                quants.add(kk * LANES).cast(),
                            ));
                            step(kk, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q)));
                        }
                    }
                    SourceEncoding::Q4_1 => {
                        let m = _mm512_cvtph_ps(_mm256_loadu_si256(block.add(2 * LANES).cast()));
                        let low = _mm512_set1_epi32(0x0f);
                        for half in 0..2 {
                            for i in 0..16 {
                                let q = _mm512_cvtepu8_epi32(_mm_loadu_si128(
                                    quants.add(i * LANES).cast(),
                                ));
                                let q = if half == 0 {
                                    _mm512_and_si512(q, low)
                                } else {
                                    _mm512_srli_epi32::<4>(q)
                                };
                                step(i + 16 * half, _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(q), m));
                            }
                        }
                    }
                    _ => {
                        let (low, eight) = (_mm512_set1_epi32(0x0f), _mm512_set1_epi32(8));
                        for half in 0..2 {
                            for i in 0..16 {
                                let q = _mm512_cvtepu8_epi32(_mm_loadu_si128(
                                    quants.add(i * LANES).cast(),
                                ));
                                let q = if half == 0 {
                                    _mm512_and_si512(q, low)
                                } else {
                                    _mm512_srli_epi32::<4>(q)
                                };
                                let q = _mm512_sub_epi32(q, eight);
                                step(i + 16 * half, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q)));
                            }
                        }
                    }
                }
            }
            for (r, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(out[r].as_mut_ptr(), *a);
            }
        }
    }
}

multiversion! {
    /// The portable form of [`tile_products`].
    fn tile_products_portable(
        encoding: SourceEncoding,
        group: &[u8],
        x: &[f32],
        k: usize,
        first: usize,
        rows: usize,
        acc: &mut [[f32; LANES]; MAX_TILE_ROWS],
    ) {
        let row = |r: usize| &x[(first + r) * k..(first + r + 1) * k];
        match rows {
            1 => acc[..1].copy_from_slice(&group_tile::<1>(encoding, group, [row(0)])),
            2 => acc[..2].copy_from_slice(&group_tile::<2>(encoding, group, [row(0), row(1)])),
            3 => acc[..3]
                .copy_from_slice(&group_tile::<3>(encoding, group, [row(0), row(1), row(2)])),
            _ => {
                *acc = group_tile::<4>(encoding, group, [row(0), row(1), row(2), row(3)]);
            }
        }
    }
}

/// The blocks behind `w`.
pub(super) fn block_rows<'a>(w: &TensorRef<'a>) -> Result<&'a BlockRows, Error> {
    match buffer(w)? {
        Values::Blocks(b) => Ok(b),
        _ => Err(Error::Device("cpu: expected a buffer of blocks".into())),
    }
}

/// `x · wᵀ` for x `[..., m, k]` and a `[n, k]` matrix of blocks `w`,
/// plus `bias` and then `activation` when given (`linear`), else
/// canonicalised only (`matmul`): `[..., m, n]`. A few rows (a decode
/// step) run the fused kernel, which decodes each weight as it multiplies;
/// more run the GEMM engine on panels decoded as they are packed, so one
/// decoding serves every row.
pub(super) fn product(
    ctx: &Ctx<'_>,
    x: &TensorRef<'_>,
    w: &TensorRef<'_>,
    epilogue: Option<(&[f32], Option<UnaryOp>)>,
) -> Result<Vec<f32>, Error> {
    let w = block_rows(w)?;
    let xs = f32s(x)?;
    let (n, k) = (w.rows, w.cols);
    if k == 0 || !xs.len().is_multiple_of(k) {
        return Err(Error::Device(format!(
            "cpu: x of {} values times a [{n}, {k}] matrix of blocks",
            xs.len()
        )));
    }
    if let Some((bias, _)) = epilogue
        && bias.len() != n
    {
        return Err(Error::Device("cpu: linear's bias".into()));
    }
    let m = xs.len() / k;
    if m > MAX_TILE_ROWS {
        let source = BlockSource { w, simd: ctx.simd };
        return gemm_rows(ctx, xs, (m, n, k), &source, epilogue);
    }
    let mut out = alloc::<f32>(m * n)?;
    let groups = n.div_ceil(LANES);
    let ctx = ctx.for_cost(m.saturating_mul(k).saturating_mul(n));
    // Tasks own whole groups: every output column belongs to one task.
    let tasks = (ctx.threads() * 4).min(groups).max(1);
    let per_task = groups.div_ceil(tasks);
    let shared = SharedOut::over(as_uninit(&mut out));
    let simd = ctx.simd;
    ctx.tasks(groups.div_ceil(per_task), |t| {
        let mut acc = [[0.0f32; LANES]; MAX_TILE_ROWS];
        let mut row = [0.0f32; LANES];
        for g in t * per_task..((t + 1) * per_task).min(groups) {
            let group = w.group(g);
            let j0 = g * LANES;
            let width = LANES.min(n - j0);
            for first in (0..m).step_by(MAX_TILE_ROWS) {
                let rows = MAX_TILE_ROWS.min(m - first);
                tile_products(simd, w.encoding, group, xs, k, first, rows, &mut acc);
                for (r, lanes) in acc.iter().enumerate().take(rows) {
                    let row = &mut row[..width];
                    match epilogue {
                        Some((bias, activation)) => {
                            for ((o, &v), &b) in row.iter_mut().zip(lanes).zip(&bias[j0..]) {
                                *o = canon(v + b);
                            }
                            if let Some(op) = activation {
                                unary_in_place(simd, op, row);
                            }
                        }
                        None => {
                            for (o, &v) in row.iter_mut().zip(lanes) {
                                *o = canon(v);
                            }
                        }
                    }
                    // SAFETY: columns j0..j0 + width of a row belong to
                    // this task's group alone.
                    unsafe { shared.write((first + r) * n + j0, row) };
                }
            }
        }
    });
    Ok(out)
}

/// `out` as the uninitialised memory [`SharedOut`] writes through (every
/// element is written before the vector is read).
fn as_uninit(out: &mut [f32]) -> &mut [std::mem::MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and writing
    // through it only ever stores initialised floats.
    unsafe { &mut *(std::ptr::from_mut(out) as *mut [std::mem::MaybeUninit<f32>]) }
}

/// The rows `indices` of the matrix of blocks `table`, decoded: `gather`.
pub(super) fn gather(
    ctx: &Ctx<'_>,
    table: &TensorRef<'_>,
    indices: &[i32],
) -> Result<Vec<f32>, Error> {
    let w = block_rows(table)?;
    let (rows, d) = (w.rows, w.cols);
    let blocks = d / BLOCK;
    let gb = GroupBlock::of(w.encoding);
    ctx.new_rows(indices.len() * d, d, d, |first, chunk| {
        for (out, &i) in chunk.chunks_exact_mut(d).zip(&indices[first..]) {
            // The session checked every index; an out-of-range one stays zero.
            let Some(r) = usize::try_from(i).ok().filter(|&r| r < rows) else {
                continue;
            };
            let (group, lane) = (w.group(r / LANES), r % LANES);
            for (b, values) in out.chunks_exact_mut(BLOCK).enumerate().take(blocks) {
                let block = &group[b * gb.bytes..(b + 1) * gb.bytes];
                let d = lanes_of_f16(block, 0)[lane];
                for (k, v) in values.iter_mut().enumerate() {
                    let q = block[gb.quants + (k % 16) * LANES + lane];
                    let nibble = if k < 16 { q & 0x0f } else { q >> 4 };
                    *v = canon(match w.encoding {
                        SourceEncoding::Q8_0 => {
                            d * f32::from(block[gb.quants + k * LANES + lane] as i8)
                        }
                        SourceEncoding::Q4_1 => {
                            d * f32::from(nibble) + lanes_of_f16(block, 2 * LANES)[lane]
                        }
                        _ => d * (i32::from(nibble) - 8) as f32,
                    });
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_bits_decode_exactly() {
        let cases: [(u16, f32); 8] = [
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x0001, 2f32.powi(-24)),
            (0x8000, -0.0),
            (0x7bff, 65504.0),
            (0x03ff, 1023.0 * 2f32.powi(-24)),
            (0x7c00, f32::INFINITY),
            (0xfc00, f32::NEG_INFINITY),
        ];
        for (h, want) in cases {
            assert_eq!(f16_bits_to_f32(h).to_bits(), want.to_bits(), "{h:#06x}");
        }
        assert!(f16_bits_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn the_group_layout_gives_back_ggmls_bytes() {
        for encoding in [
            SourceEncoding::Q4_0,
            SourceEncoding::Q4_1,
            SourceEncoding::Q8_0,
        ] {
            let (_, block_bytes) = encoding.block();
            // 19 rows (a partial last group) of 64 values.
            let bytes: Vec<u8> = (0..19 * 2 * block_bytes)
                .map(|i| (i * 7 + 3) as u8)
                .collect();
            let rows = BlockRows::from_ggml(&bytes, encoding, 64).expect("layout");
            assert_eq!(rows.to_ggml().expect("bytes"), bytes, "{encoding:?}");
        }
    }
}
