//! Matrix products: the GEMM engine (shared with conv2d) and batched matmul.
//!
//! Every output is `acc = +0.0; for k ascending: acc = fma(a[i,k], b[k,j], acc)`.
//! The engine is the classic packed design (B packed into panels of NR
//! columns, A into panels of MR rows, a register-tiled microkernel), with one
//! rule that makes it exact: a microkernel owns whole outputs and walks k in
//! ascending order. k is cut into blocks of `KC` for the cache, and each
//! block resumes from the accumulator the previous one stored (a store and a
//! load of an f32 change nothing), never "sum a block, then add".
//!
//! Two things make small batches cheap. A B that is multiplied again and
//! again (a model's weight, once per batch) is packed once and its panels
//! kept with the buffer (`packed::PackCache`); repacking a 384×1536 weight for a
//! dozen rows used to cost more than the products. And a panel of A that
//! is only partly full runs a kernel of its own height, so 11 rows cost 11
//! rows of FMAs, not 16. Neither changes any output's k order.

use std::mem::MaybeUninit;
use std::sync::Mutex;

use crate::backend::contract::TensorRef;
use crate::backend::cpu::alloc::{alloc, numel, uninit};
use crate::backend::cpu::buffer::{cpu_buffer, f32s};
use crate::backend::cpu::ctx::Ctx;
use crate::backend::cpu::elementwise::unary_in_place;
use crate::backend::cpu::elementwise::{broadcast_strides, offset_of};
use crate::backend::cpu::packed::{PackKey, PackedB};
use crate::backend::cpu::panel_memory::PanelMemory;
use crate::backend::cpu::scalar::canon;
use crate::backend::cpu::shared_out::SharedOut;
use crate::backend::cpu::simd::CpuSimd;
use crate::error::Error;
use crate::op::UnaryOp;

/// k per block (the packed panels of one block stay in L1/L2).
const KC: usize = 256;
/// Columns of B packed at once.
const NC: usize = 1024;
/// A panels a task sweeps per B panel (MC = 16 · MR rows: ~128 KiB of packed
/// A, which stays in L2 while each B panel stays in L1).
const MC_PANELS: usize = 16;
/// The widest product whose row-major A the kernels read in place
/// ([`reads_a_in_place`]).
const DIRECT_A_MAX_N: usize = 512;
/// Tallest panel of A any microkernel uses.
const MAX_MR: usize = 12;
/// Widest panel of B any microkernel uses.
const MAX_NR: usize = 32;
/// Largest tile any microkernel uses (MR · NR).
const MAX_TILE: usize = MAX_MR * MAX_NR;

/// A read-only strided matrix: element (r, c) is `data[off + r·rs + c·cs]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Strided<'a> {
    pub(super) data: &'a [f32],
    pub(super) off: usize,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

/// Whether the kernels read `a` in place rather than packed: only a
/// row-major A, and only for a product at most [`DIRECT_A_MAX_N`] wide.
/// Packing costs one pass over A whatever n is, while reading in place
/// slows every k step a little (twelve row streams instead of one), so
/// packing pays off only for wide products. Measured on AVX-512, one
/// thread, in place vs packed: a 240×384 A times a 384×1536 weight 3.5 %
/// slower; times 384×384 and a 240×1536 A times 1536×384 9 % faster; one
/// layer's attention at batch 16 (192 heads of 15×32 · 32×15) 42 % faster.
fn reads_a_in_place(a: &Strided<'_>, n: usize) -> bool {
    a.cs == 1 && n <= DIRECT_A_MAX_N
}

impl<'a> Strided<'a> {
    /// A row-major A (`cs == 1`) from row `i`, column `k0`, for a kernel
    /// to read in place.
    fn rows_from(&self, i: usize, k0: usize) -> APanel<'a> {
        APanel::Rows {
            data: &self.data[self.off + i * self.rs + k0..],
            lda: self.rs,
        }
    }
}

/// Where the B operand of a GEMM comes from.
pub(super) trait SourceB: Sync {
    /// Writes `B[k0 + kk, j0 + j]` to `dst[kk·nr + j]` for `kk < kc`,
    /// `j < width`, and +0.0 for `width ≤ j < nr` (padding columns, whose
    /// outputs are thrown away).
    fn pack_panel(&self, k0: usize, kc: usize, j0: usize, width: usize, nr: usize, dst: &mut [f32]);
}

impl SourceB for Strided<'_> {
    fn pack_panel(
        &self,
        k0: usize,
        kc: usize,
        j0: usize,
        width: usize,
        nr: usize,
        dst: &mut [f32],
    ) {
        if self.rs == 1 && self.cs != 1 {
            // Transposed B: columns are contiguous; each becomes a column
            // of the panel.
            let mut cols = [&[][..]; MAX_NR];
            for (j, col) in cols.iter_mut().enumerate().take(width) {
                let at = self.off + (j0 + j) * self.cs + k0;
                *col = &self.data[at..at + kc];
            }
            transpose_into(&cols[..width], kc, nr, dst);
            return;
        }
        for (kk, row) in dst.chunks_exact_mut(nr).take(kc).enumerate() {
            let at = self.off + (k0 + kk) * self.rs + j0 * self.cs;
            if self.cs == 1 {
                row[..width].copy_from_slice(&self.data[at..at + width]);
            } else {
                for (j, o) in row[..width].iter_mut().enumerate() {
                    *o = self.data[at + j * self.cs];
                }
            }
            row[width..].fill(0.0);
        }
    }
}

/// Writes `dst[kk·width + r] = src[r][kk]` for `kk < len`, and +0.0 for
/// `src.len() ≤ r < width`: `src` are `len`-long rows, `dst` gets them as
/// columns.
fn transpose_into(src: &[&[f32]], len: usize, width: usize, dst: &mut [f32]) {
    let dst = &mut dst[..len * width];
    // Column by column of `dst`: each source row is read once, in order,
    // and the loop has no bounds checks (row after row of `dst`, gathering
    // one element from every source, checked each one and ran 3× slower).
    for (r, row) in src.iter().enumerate().take(width) {
        for (d, &v) in dst.chunks_exact_mut(width).zip(&row[..len]) {
            d[r] = v;
        }
    }
    for r in src.len()..width {
        for d in dst.chunks_exact_mut(width) {
            d[r] = 0.0;
        }
    }
}

/// Packs `A[i0 + r, k0 + kk]` to `dst[kk·mr + r]` (rows past `rows` are +0.0).
fn pack_a(
    a: &Strided<'_>,
    i0: usize,
    rows: usize,
    k0: usize,
    kc: usize,
    mr: usize,
    dst: &mut [f32],
) {
    if a.cs == 1 {
        let mut src = [&[][..]; MAX_MR];
        for (r, s) in src.iter_mut().enumerate().take(rows) {
            let at = a.off + (i0 + r) * a.rs + k0;
            *s = &a.data[at..at + kc];
        }
        transpose_into(&src[..rows], kc, mr, dst);
    } else {
        for (kk, col) in dst.chunks_exact_mut(mr).take(kc).enumerate() {
            let at = a.off + (k0 + kk) * a.cs + i0 * a.rs;
            if a.rs == 1 {
                col[..rows].copy_from_slice(&a.data[at..at + rows]);
            } else {
                for (r, o) in col[..rows].iter_mut().enumerate() {
                    *o = a.data[at + r * a.rs];
                }
            }
            col[rows..].fill(0.0);
        }
    }
}

/// Packs k rows `k0..k0 + kc` of every MR-row panel of the m-row `a` into
/// `dst` (panel after panel, `kc·mr` floats each), panels in parallel.
fn pack_a_block(
    ctx: &Ctx<'_>,
    a: &Strided<'_>,
    m: usize,
    (k0, kc): (usize, usize),
    mr: usize,
    dst: &mut [f32],
) {
    ctx.rows(dst, mr * kc, mr * kc, |first, chunk| {
        for (p, panel) in chunk.chunks_exact_mut(mr * kc).enumerate() {
            let i0 = (first + p) * mr;
            pack_a(a, i0, mr.min(m - i0), k0, kc, mr, panel);
        }
    });
}

/// Packs k rows `k0..k0 + kc` of the NR-column panels of the n-column `b`
/// that `dst` has room for, the first at column `j0`, panels in parallel.
fn pack_b_block(
    ctx: &Ctx<'_>,
    b: &impl SourceB,
    n: usize,
    (k0, kc): (usize, usize),
    j0: usize,
    nr: usize,
    dst: &mut [f32],
) {
    ctx.rows(dst, nr * kc, nr * kc, |first, chunk| {
        for (q, panel) in chunk.chunks_exact_mut(nr * kc).enumerate() {
            let jq = j0 + (first + q) * nr;
            b.pack_panel(k0, kc, jq, nr.min(n - jq), nr, panel);
        }
    });
}

/// A microkernel: continues the first R rows of an MR×NR block of
/// accumulators at `c` (rows `ldc` floats apart) over `kc` steps of A and
/// of packed B (`kc·NR`). A is packed (`kc·MR`, of which it reads R per
/// step) or, for the in-place kernels, R rows of `kc` floats `lda` apart.
/// `block` says whether this is the first k block of the outputs (start
/// from +0.0; `c` is not read and may be uninitialised) and whether it is
/// the last (store canonical NaNs).
///
/// # Safety
///
/// `a` and `b` point to at least that much A and `kc·NR` floats, `c` to R
/// rows of NR floats `ldc` apart that no other thread touches meanwhile
/// (initialised unless `block.first`), and the CPU supports the kernel's
/// target features.
type KernelFn = unsafe fn(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    block: &KBlock,
);

/// Where a kernel call's k block lies among all k blocks of its outputs.
#[derive(Debug, Clone, Copy)]
struct KBlock {
    /// Accumulators start from +0.0 (what "c += A·B on a zeroed c" gave).
    first: bool,
    /// Outputs are final: the bias (if any) is added, and NaNs are
    /// canonicalised, as they are stored.
    last: bool,
    /// NR floats added to each row of the tile in the last block (the
    /// tile's columns of a `linear` op's bias), or null.
    bias: *const f32,
}

impl KBlock {
    /// The block of `k0..k0 + kc` in a k of `k`, for a tile whose columns'
    /// bias (NR floats) is `bias`.
    fn of(k0: usize, kc: usize, k: usize, bias: Option<&[f32]>) -> KBlock {
        KBlock {
            first: k0 == 0,
            last: k0 + kc >= k,
            bias: bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
        }
    }
}

/// A microkernel family and its tile shape: `run[r - 1]` computes the first
/// `r` rows of an MR-row panel, so a panel that is only partly full (a
/// short matrix, the last rows of a tall one) costs its own rows, not MR.
#[derive(Clone, Copy)]
struct Kernel {
    mr: usize,
    nr: usize,
    /// Packed-A kernels, then in-place-A kernels.
    run: [&'static [KernelFn]; 2],
}

/// The kernels of one family, one per row count 1..=MR, reading A packed
/// (`DIRECT = false`) or in place (`true`).
macro_rules! kernels {
    ($f:ident, $mr:literal, $direct:literal, [$($r:literal),*]) => {
        [$($f::<$mr, $r, $direct>),*]
    };
    ($f:ident, $mr:literal, $direct:literal, [$($r:literal),*], $nr:literal) => {
        [$($f::<$mr, $r, $direct, $nr>),*]
    };
}

#[cfg(target_arch = "x86_64")]
use x86::{kernel_avx2, kernel_avx512};

#[cfg(target_arch = "x86_64")]
static AVX512_KERNELS: [[KernelFn; 12]; 2] = [
    kernels!(
        kernel_avx512,
        12,
        false,
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    ),
    kernels!(
        kernel_avx512,
        12,
        true,
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    ),
];

#[cfg(target_arch = "x86_64")]
static AVX2_KERNELS: [[KernelFn; 6]; 2] = [
    kernels!(kernel_avx2, 6, false, [1, 2, 3, 4, 5, 6]),
    kernels!(kernel_avx2, 6, true, [1, 2, 3, 4, 5, 6]),
];

static GENERIC_KERNELS: [[KernelFn; 4]; 2] = [
    kernels!(kernel_generic, 4, false, [1, 2, 3, 4], 8),
    kernels!(kernel_generic, 4, true, [1, 2, 3, 4], 8),
];

/// Where a microkernel reads its panel of A.
#[derive(Clone, Copy)]
enum APanel<'a> {
    /// Packed: step p's MR values at `p·MR`.
    Packed(&'a [f32]),
    /// In place: row r's k values contiguous from `r·lda` (a row-major A;
    /// packing it only transposed what the kernel can read directly).
    Rows { data: &'a [f32], lda: usize },
}

impl Kernel {
    fn for_simd(simd: CpuSimd) -> Kernel {
        match simd {
            #[cfg(target_arch = "x86_64")]
            CpuSimd::Avx512 => Kernel {
                mr: 12,
                nr: 32,
                run: [&AVX512_KERNELS[0], &AVX512_KERNELS[1]],
            },
            #[cfg(target_arch = "x86_64")]
            CpuSimd::Avx2 => Kernel {
                mr: 6,
                nr: 16,
                run: [&AVX2_KERNELS[0], &AVX2_KERNELS[1]],
            },
            _ => Kernel {
                mr: 4,
                nr: 8,
                run: [&GENERIC_KERNELS[0], &GENERIC_KERNELS[1]],
            },
        }
    }

    /// Runs the kernel for `rows` rows of NR outputs at `c`, `ldc` apart.
    ///
    /// # Safety
    ///
    /// `c` points to `rows` rows of NR floats `ldc` apart that no other
    /// thread reads or writes meanwhile.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_at(
        &self,
        rows: usize,
        kc: usize,
        a: APanel<'_>,
        b: &[f32],
        c: *mut f32,
        ldc: usize,
        block: KBlock,
    ) {
        let (family, a, lda, a_fits) = match a {
            APanel::Packed(a) => (0, a, 0, a.len() >= kc * self.mr),
            APanel::Rows { data, lda } => (1, data, lda, (rows - 1) * lda + kc <= data.len()),
        };
        assert!(
            (1..=self.mr).contains(&rows) && a_fits && b.len() >= kc * self.nr,
            "gemm: panel sizes"
        );
        // `block.bias` comes from `KBlock::of`, which takes NR floats (a
        // `BiasPanels::tile`).
        // SAFETY: extents checked above, `c` is the caller's promise;
        // `Kernel::for_simd` only picks a SIMD kernel for a path the backend
        // verified the CPU supports.
        unsafe { (self.run[family][rows - 1])(kc, a.as_ptr(), lda, b.as_ptr(), c, ldc, &block) }
    }
}

/// The portable microkernel (the `scalar` path), `f32::mul_add` per step.
///
/// # Safety
///
/// As [`KernelFn`].
unsafe fn kernel_generic<const MR: usize, const R: usize, const DIRECT: bool, const NR: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    block: &KBlock,
) {
    if kc == 0 {
        return;
    }
    let a_len = if DIRECT { (R - 1) * lda + kc } else { kc * MR };
    // SAFETY: the caller guarantees the extents (see `KernelFn`).
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, a_len),
            std::slice::from_raw_parts(b, kc * NR),
        )
    };
    let mut acc = [[0.0f32; NR]; R];
    if !block.first {
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: row r of the caller's block, initialised (not the first block).
            row.copy_from_slice(unsafe { std::slice::from_raw_parts(c.add(r * ldc), NR) });
        }
    }
    for (p, bp) in b.chunks_exact(NR).enumerate() {
        for (r, row) in acc.iter_mut().enumerate() {
            let av = if DIRECT {
                a[r * lda + p]
            } else {
                a[p * MR + r]
            };
            for (o, &bv) in row.iter_mut().zip(bp) {
                *o = av.mul_add(bv, *o);
            }
        }
    }
    // SAFETY: a bias is NR floats (see `KBlock::of`).
    let bias = (block.last && !block.bias.is_null())
        .then(|| unsafe { std::slice::from_raw_parts(block.bias, NR) });
    for (r, row) in acc.iter_mut().enumerate() {
        if let Some(bias) = bias {
            row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
        }
        if block.last {
            row.iter_mut().for_each(|v| *v = canon(*v));
        }
        // SAFETY: row r of the caller's block, which nothing else touches
        // meanwhile (written, never read, so it may have been uninitialised).
        unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), c.add(r * ldc), NR) };
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::backend::cpu::matmul::KBlock;
    use crate::backend::cpu::scalar::CANONICAL_NAN;

    /// How many k steps ahead the kernels prefetch B. Without
    /// prefetching, MiniLM's dense layers ran 25 % slower at batch size 1
    /// and 9 % at 16 (weights stream from L3); 8, 16, 32 and 64 steps
    /// measured within noise of each other, 32 marginally best.
    const PREFETCH_STEPS: usize = 32;

    /// AVX2 microkernel, MR × 16: two 8-wide accumulators per row held over
    /// the whole k block; `vfmadd231ps` rounds each lane once, like `fmaf`.
    ///
    /// # Safety
    ///
    /// As [`super::KernelFn`]; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel_avx2<const MR: usize, const R: usize, const DIRECT: bool>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        block: &KBlock,
    ) {
        // SAFETY: every pointer offset stays inside the extents the caller guarantees.
        unsafe {
            let mut acc0 = [_mm256_setzero_ps(); R];
            let mut acc1 = [_mm256_setzero_ps(); R];
            if !block.first {
                for r in 0..R {
                    acc0[r] = _mm256_loadu_ps(c.add(r * ldc));
                    acc1[r] = _mm256_loadu_ps(c.add(r * ldc + 8));
                }
            }
            for p in 0..kc {
                // As in the AVX-512 kernel: a weight streams from memory, so
                // fetch its panel ahead (one 64-byte line per step here).
                _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + PREFETCH_STEPS) * 16).cast());
                let b0 = _mm256_loadu_ps(b.add(p * 16));
                let b1 = _mm256_loadu_ps(b.add(p * 16 + 8));
                for r in 0..R {
                    let at = if DIRECT { r * lda + p } else { p * MR + r };
                    let av = _mm256_broadcast_ss(&*a.add(at));
                    acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
                    acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
                }
            }
            if block.last && !block.bias.is_null() {
                let (b0, b1) = (
                    _mm256_loadu_ps(block.bias),
                    _mm256_loadu_ps(block.bias.add(8)),
                );
                for r in 0..R {
                    acc0[r] = _mm256_add_ps(acc0[r], b0);
                    acc1[r] = _mm256_add_ps(acc1[r], b1);
                }
            }
            if block.last {
                let nan = _mm256_set1_ps(CANONICAL_NAN);
                for r in 0..R {
                    let m0 = _mm256_cmp_ps::<_CMP_UNORD_Q>(acc0[r], acc0[r]);
                    let m1 = _mm256_cmp_ps::<_CMP_UNORD_Q>(acc1[r], acc1[r]);
                    acc0[r] = _mm256_blendv_ps(acc0[r], nan, m0);
                    acc1[r] = _mm256_blendv_ps(acc1[r], nan, m1);
                }
            }
            for r in 0..R {
                _mm256_storeu_ps(c.add(r * ldc), acc0[r]);
                _mm256_storeu_ps(c.add(r * ldc + 8), acc1[r]);
            }
        }
    }

    /// AVX-512 microkernel, MR × 32: two 16-wide accumulators per row.
    ///
    /// # Safety
    ///
    /// As [`super::KernelFn`]; the CPU has AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn kernel_avx512<const MR: usize, const R: usize, const DIRECT: bool>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        block: &KBlock,
    ) {
        // SAFETY: every pointer offset stays inside the extents the caller guarantees.
        unsafe {
            let mut acc0 = [_mm512_setzero_ps(); R];
            let mut acc1 = [_mm512_setzero_ps(); R];
            if !block.first {
                for r in 0..R {
                    acc0[r] = _mm512_loadu_ps(c.add(r * ldc));
                    acc1[r] = _mm512_loadu_ps(c.add(r * ldc + 16));
                }
            }
            for p in 0..kc {
                // B streams from memory when it is a large weight used by
                // few rows: fetch it well ahead (past the panel's end is the
                // next panel; a prefetch never faults).
                _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + PREFETCH_STEPS) * 32).cast());
                _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + PREFETCH_STEPS) * 32 + 16).cast());
                let b0 = _mm512_loadu_ps(b.add(p * 32));
                let b1 = _mm512_loadu_ps(b.add(p * 32 + 16));
                for r in 0..R {
                    let at = if DIRECT { r * lda + p } else { p * MR + r };
                    let av = _mm512_set1_ps(*a.add(at));
                    acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
                    acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
                }
            }
            if block.last && !block.bias.is_null() {
                let (b0, b1) = (
                    _mm512_loadu_ps(block.bias),
                    _mm512_loadu_ps(block.bias.add(16)),
                );
                for r in 0..R {
                    acc0[r] = _mm512_add_ps(acc0[r], b0);
                    acc1[r] = _mm512_add_ps(acc1[r], b1);
                }
            }
            if block.last {
                let nan = _mm512_set1_ps(CANONICAL_NAN);
                for r in 0..R {
                    let m0 = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(acc0[r], acc0[r]);
                    let m1 = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(acc1[r], acc1[r]);
                    acc0[r] = _mm512_mask_blend_ps(m0, acc0[r], nan);
                    acc1[r] = _mm512_mask_blend_ps(m1, acc1[r], nan);
                }
            }
            for r in 0..R {
                _mm512_storeu_ps(c.add(r * ldc), acc0[r]);
                _mm512_storeu_ps(c.add(r * ldc + 16), acc1[r]);
            }
        }
    }
}

/// Packs all of `b` (k×n) for a kernel `key.nr` columns wide, to be kept
/// (`packed::PackCache`) or used once.
fn pack_b(ctx: &Ctx<'_>, b: &impl SourceB, key: PackKey) -> Result<PackedB, Error> {
    let PackKey { k, n, nr, .. } = key;
    let n_pad = n.div_ceil(nr) * nr;
    let len = k
        .checked_mul(n_pad)
        .ok_or_else(|| Error::Device("cpu: packed matrix size overflows".into()))?;
    let mut data = PanelMemory::zeroed(len)?;
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        let block = &mut data.as_mut_slice()[k0 * n_pad..(k0 + kc) * n_pad];
        pack_b_block(ctx, b, n, (k0, kc), 0, nr, block);
    }
    Ok(PackedB { key, data })
}

/// `c = A · B (+ bias)` for an m×k `a`, a k×n `b` and a row-major m×n `c`:
/// every output the dot product from +0.0, then plus its column's bias
/// (rounded once more, as a separate add would), NaNs canonical. `c` may
/// be uninitialised; on success every element is written. `packed`, when
/// given, is `b` already packed for this kernel.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    ctx: &Ctx<'_>,
    m: usize,
    n: usize,
    k: usize,
    a: &Strided<'_>,
    b: &impl SourceB,
    packed: Option<&PackedB>,
    bias: Option<&BiasPanels>,
    c: &mut [MaybeUninit<f32>],
) -> Result<(), Error> {
    if c.len() != m * n {
        return Err(Error::Device("cpu: gemm output size".into()));
    }
    if k == 0 {
        // Every row is the empty dot product (+0.0) through the epilogue.
        let mut row_values: Vec<f32> = (0..n)
            .map(|j| canon(0.0 + bias.map_or(0.0, |bias| bias.padded[j])))
            .collect();
        if let Some(op) = bias.and_then(|b| b.activation) {
            unary_in_place(ctx.simd, op, &mut row_values);
        }
        for row in c.chunks_mut(n.max(1)) {
            for (o, &v) in row.iter_mut().zip(&row_values) {
                o.write(v);
            }
        }
    }
    if m == 0 || n == 0 || k == 0 {
        return Ok(());
    }
    let kern = Kernel::for_simd(ctx.simd);
    let (mr, nr) = (kern.mr, kern.nr);
    if bias.is_some_and(|b| b.padded.len() < n.div_ceil(nr) * nr) {
        return Err(Error::Device("cpu: gemm bias size".into()));
    }
    let m_panels = m.div_ceil(mr);
    let kc_max = KC.min(k);
    let nc_max = NC.min(n.div_ceil(nr) * nr);
    let packed = packed.filter(|p| p.key.k == k && p.key.n == n && p.key.nr == nr);
    if let Some(packed) = packed {
        return gemm_packed(ctx, kern, (m, n, k), a, packed, bias, c);
    }
    // A row-major A is read in place when the product is narrow; another
    // is packed block by block.
    let direct = reads_a_in_place(a, n);
    let mut apack = alloc::<f32>(if direct { 0 } else { m_panels * mr * kc_max })?;
    let mut bpack = alloc::<f32>(nc_max * kc_max)?;
    let out = SharedOut::over(c);
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        if !direct {
            pack_a_block(ctx, a, m, (k0, kc), mr, &mut apack[..m_panels * mr * kc]);
        }
        let apack = &*apack;
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            let n_panels = nc.div_ceil(nr);
            let bpack = &mut bpack[..n_panels * nr * kc];
            pack_b_block(ctx, b, n, (k0, kc), j0, nr, bpack);
            let bpack = &*bpack;
            let grid = TileGrid {
                m,
                n,
                j0,
                m_panels,
                n_panels,
                mr,
                nr,
            };
            let first = k0 == 0;
            grid.run(ctx, &out, !first, |p, q, rows, dst, ld| {
                let ap = if direct {
                    a.rows_from(p * mr, k0)
                } else {
                    APanel::Packed(&apack[p * mr * kc..(p + 1) * mr * kc])
                };
                let bp = &bpack[q * nr * kc..(q + 1) * nr * kc];
                let block = KBlock::of(k0, kc, k, bias.map(|b| b.tile(j0 + q * nr, nr)));
                // SAFETY: `run` hands out each tile to one call at a time;
                // it was written by the previous k block unless this is the first.
                unsafe { kern.tile_at(rows, kc, ap, bp, dst, ld, block) };
                if let Some(epilogue) = bias.filter(|_| block.last) {
                    // SAFETY: the kernel just wrote the tile; it is this call's.
                    unsafe { epilogue.activate(ctx.simd, rows, nr, dst, ld) };
                }
            });
        }
    }
    Ok(())
}

/// What a `linear` op does to each output after its dot product: add the
/// bias (zero-padded to whole NR-column panels so a kernel can read NR
/// floats for the narrow last panel too; the padding columns' outputs are
/// thrown away), then apply the activation.
pub(super) struct BiasPanels {
    padded: Vec<f32>,
    activation: Option<UnaryOp>,
}

impl BiasPanels {
    /// `bias` (one float per output column) for a kernel `nr` columns wide.
    pub(super) fn new(
        bias: &[f32],
        activation: Option<UnaryOp>,
        nr: usize,
    ) -> Result<BiasPanels, Error> {
        let mut padded = alloc::<f32>(bias.len().div_ceil(nr) * nr)?;
        padded[..bias.len()].copy_from_slice(bias);
        Ok(BiasPanels { padded, activation })
    }

    /// The bias of the tile whose first column is `j`.
    fn tile(&self, j: usize, nr: usize) -> &[f32] {
        &self.padded[j..j + nr]
    }

    /// Applies the activation to a finished tile: `rows` rows of `nr`
    /// floats `ld` apart at `dst`, while they are still in L1.
    ///
    /// # Safety
    ///
    /// As for the kernel that just wrote the tile: the rows are initialised
    /// and no other thread touches them meanwhile.
    unsafe fn activate(&self, simd: CpuSimd, rows: usize, nr: usize, dst: *mut f32, ld: usize) {
        if let Some(op) = self.activation {
            for r in 0..rows {
                // SAFETY: the caller's promise.
                let row = unsafe { std::slice::from_raw_parts_mut(dst.add(r * ld), nr) };
                unary_in_place(simd, op, row);
            }
        }
    }
}

/// The MR×NR output tiles of one GEMM pass: `m_panels` × `n_panels` tiles
/// of an m×n row-major output, the first column of panel 0 at `j0`.
struct TileGrid {
    m: usize,
    n: usize,
    j0: usize,
    m_panels: usize,
    n_panels: usize,
    mr: usize,
    nr: usize,
}

impl TileGrid {
    /// Calls `f(p, q, rows, dst, ld)` once per tile (A panel `p`, B panel
    /// `q`, `rows` real rows, the tile's first element at `dst`, rows `ld`
    /// apart), in tasks that are rectangles of tiles, so each tile belongs
    /// to exactly one task. Within a task, `MC_PANELS` A panels sweep each B
    /// panel (which stays in L1). A whole-width tile is worked on in the
    /// output; the narrower last one of a row in a local MR×NR copy, which
    /// starts as the output's values when `f` reads them (`continues`).
    fn run(
        &self,
        ctx: &Ctx<'_>,
        out: &SharedOut,
        continues: bool,
        f: impl Fn(usize, usize, usize, *mut f32, usize) + Sync + Send,
    ) {
        let Self {
            m,
            n,
            j0,
            m_panels,
            n_panels,
            mr,
            nr,
        } = *self;
        let threads = ctx.threads();
        let target = if threads > 1 { threads * 4 } else { 1 };
        // Columns are split first: a task streams its own B panels once and
        // every task reads all of A, which for a layer's weights (larger
        // than a batch's activations) moves the least memory; a row split
        // would stream the whole weight once per task.
        let col_groups = n_panels.min(target);
        let row_groups = m_panels.min(target.div_ceil(col_groups));
        let rows_per = m_panels.div_ceil(row_groups);
        let cols_per = n_panels.div_ceil(col_groups);
        let tasks = m_panels.div_ceil(rows_per) * n_panels.div_ceil(cols_per);
        let task_cols = n_panels.div_ceil(cols_per);
        ctx.tasks(tasks, |t| {
            let (rg, cg) = (t / task_cols, t % task_cols);
            let mut tile = [0.0f32; MAX_TILE];
            let tile = &mut tile[..mr * nr];
            let task_rows = rg * rows_per..((rg + 1) * rows_per).min(m_panels);
            for p0 in task_rows.clone().step_by(MC_PANELS) {
                for q in cg * cols_per..((cg + 1) * cols_per).min(n_panels) {
                    let jq = j0 + q * nr;
                    let cols = nr.min(n - jq);
                    for p in p0..(p0 + MC_PANELS).min(task_rows.end) {
                        let i0 = p * mr;
                        let rows = mr.min(m - i0);
                        if cols == nr {
                            f(p, q, rows, out.block(i0 * n + jq, rows, n, nr), n);
                            continue;
                        }
                        if continues {
                            for r in 0..rows {
                                // SAFETY: tile (p, q) is this task's alone, and
                                // written by the k blocks before.
                                unsafe {
                                    out.read((i0 + r) * n + jq, &mut tile[r * nr..r * nr + cols])
                                };
                            }
                        }
                        f(p, q, rows, tile.as_mut_ptr(), nr);
                        for r in 0..rows {
                            // SAFETY: tile (p, q) is this task's alone.
                            unsafe { out.write((i0 + r) * n + jq, &tile[r * nr..r * nr + cols]) };
                        }
                    }
                }
            }
        });
    }
}

/// [`gemm`] with all of B packed beforehand (a cached weight): A is packed
/// for every k block at once, and each tile runs all its k blocks in a row,
/// so an output tile is loaded and stored once per call instead of once per
/// k block (which, for a tall output, went through memory each time). The
/// k order of every output is the same.
fn gemm_packed(
    ctx: &Ctx<'_>,
    kern: Kernel,
    (m, n, k): (usize, usize, usize),
    a: &Strided<'_>,
    packed: &PackedB,
    bias: Option<&BiasPanels>,
    c: &mut [MaybeUninit<f32>],
) -> Result<(), Error> {
    let (mr, nr) = (kern.mr, kern.nr);
    let m_panels = m.div_ceil(mr);
    let n_panels = n.div_ceil(nr);
    // Block kb of A: every panel's kc·MR floats, at kb·KC·MR·m_panels;
    // nothing when A is read in place.
    let direct = reads_a_in_place(a, n);
    let mut apack = alloc::<f32>(if direct { 0 } else { m_panels * mr * k })?;
    if !direct {
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            let block = &mut apack[k0 * mr * m_panels..(k0 + kc) * mr * m_panels];
            pack_a_block(ctx, a, m, (k0, kc), mr, block);
        }
    }
    let apack = &*apack;
    let out = SharedOut::over(c);
    let grid = TileGrid {
        m,
        n,
        j0: 0,
        m_panels,
        n_panels,
        mr,
        nr,
    };
    // Each tile runs all its k blocks here, the first from +0.0.
    grid.run(ctx, &out, false, |p, q, rows, dst, ld| {
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            let ap = if direct {
                a.rows_from(p * mr, k0)
            } else {
                let at = k0 * mr * m_panels + p * mr * kc;
                APanel::Packed(&apack[at..at + mr * kc])
            };
            let bp = packed.panel(k0, kc, q);
            let block = KBlock::of(k0, kc, k, bias.map(|b| b.tile(q * nr, nr)));
            // SAFETY: `run` hands out each tile to one call at a time; the
            // first k block writes it, later ones continue it.
            unsafe { kern.tile_at(rows, kc, ap, bp, dst, ld, block) };
        }
        if let Some(epilogue) = bias {
            // SAFETY: the kernels just finished the tile; it is this call's.
            unsafe { epilogue.activate(ctx.simd, rows, nr, dst, ld) };
        }
    });
    Ok(())
}

/// Runs `f(i, out_i)` for each of `count` equal parts of `out`, either the
/// parts in parallel with `f` serial inside, or the parts one by one with
/// `f` free to go parallel: whichever keeps the threads busier. Results do
/// not depend on the choice.
pub(super) fn for_each_part(
    ctx: &Ctx<'_>,
    out: &mut [MaybeUninit<f32>],
    count: usize,
    cost_per_part: usize,
    f: impl Fn(&Ctx<'_>, usize, &mut [MaybeUninit<f32>]) -> Result<(), Error> + Sync + Send,
) -> Result<(), Error> {
    if count == 0 || out.is_empty() {
        return Ok(());
    }
    let part = out.len() / count;
    if count >= ctx.threads() * 2 && ctx.threads() > 1 {
        let serial = ctx.serial();
        let failure = Mutex::new(None);
        ctx.rows(out, part, cost_per_part, |first, chunk| {
            for (i, o) in chunk.chunks_mut(part).enumerate() {
                if let Err(e) = f(&serial, first + i, o) {
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                }
            }
        });
        match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    } else {
        for (i, o) in out.chunks_mut(part).enumerate() {
            f(ctx, i, o)?;
        }
        Ok(())
    }
}

/// Batched matmul `[..., m, k] · [..., k, n]` with broadcast batch dims.
pub(super) fn matmul(
    ctx: &Ctx<'_>,
    a: &TensorRef<'_>,
    b: &TensorRef<'_>,
    (transpose_a, transpose_b): (bool, bool),
    linear: Option<(&[f32], Option<UnaryOp>)>,
    out_shape: &[usize],
) -> Result<Vec<f32>, Error> {
    let (av, bv) = (f32s(a)?, f32s(b)?);
    let (ra, rb, ro) = (a.shape.len(), b.shape.len(), out_shape.len());
    if ra < 2 || rb < 2 || ro < 2 {
        return Err(Error::Device("cpu: matmul needs rank ≥ 2".into()));
    }
    let (a_rows, a_cols) = (a.shape[ra - 2], a.shape[ra - 1]);
    let (b_rows, b_cols) = (b.shape[rb - 2], b.shape[rb - 1]);
    let (m, k) = if transpose_a {
        (a_cols, a_rows)
    } else {
        (a_rows, a_cols)
    };
    let n = if transpose_b { b_rows } else { b_cols };
    let len = numel(out_shape)?;
    let ctx = &ctx.for_cost(len.saturating_mul(k));
    let batch_dims = &out_shape[..ro - 2];
    let batches = numel(batch_dims)?;
    if len != batches * m * n {
        return Err(Error::Device("cpu: matmul output shape".into()));
    }
    let a_strides = broadcast_strides(&a.shape[..ra - 2], ro - 2);
    let b_strides = broadcast_strides(&b.shape[..rb - 2], ro - 2);
    let (a_rs, a_cs) = if transpose_a {
        (1, a_cols)
    } else {
        (a_cols, 1)
    };
    let (b_rs, b_cs) = if transpose_b {
        (1, b_cols)
    } else {
        (b_cols, 1)
    };
    // A B shared by every batch (a weight) may have its panels cached.
    let packed = if numel(&b.shape[..rb - 2])? == 1 {
        let whole = Strided {
            data: bv,
            off: 0,
            rs: b_rs,
            cs: b_cs,
        };
        let key = PackKey {
            k,
            n,
            nr: Kernel::for_simd(ctx.simd).nr,
            transposed: transpose_b,
        };
        cpu_buffer(b)?
            .packed
            .get(key, || pack_b(ctx, &whole, key))?
    } else {
        None
    };
    let bias = match linear {
        Some((bias, _)) if bias.len() != n => {
            return Err(Error::Device("cpu: linear bias size".into()));
        }
        Some((bias, activation)) => Some(BiasPanels::new(
            bias,
            activation,
            Kernel::for_simd(ctx.simd).nr,
        )?),
        None => None,
    };
    let mut out = uninit::<f32>(len)?;
    for_each_part(
        ctx,
        &mut out.spare_capacity_mut()[..len],
        batches,
        2 * m * n * k,
        |ctx, i, c| {
            let a = Strided {
                data: av,
                off: offset_of(i, batch_dims, &a_strides) * a_rows * a_cols,
                rs: a_rs,
                cs: a_cs,
            };
            let b = Strided {
                data: bv,
                off: offset_of(i, batch_dims, &b_strides) * b_rows * b_cols,
                rs: b_rs,
                cs: b_cs,
            };
            gemm(ctx, m, n, k, &a, &b, packed.as_deref(), bias.as_ref(), c)
        },
    )?;
    // SAFETY: each part's gemm returned Ok, so wrote every one of its
    // elements, and the parts cover all `len`.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// `a · B` for a row-major m×k `a` and any B operand `b` (a matrix of
/// blocks, decoded panel by panel as it is packed), plus `linear`'s bias
/// and activation, or only canonicalised: the engine and the bits of every
/// other product.
pub(super) fn gemm_rows(
    ctx: &Ctx<'_>,
    a: &[f32],
    (m, n, k): (usize, usize, usize),
    b: &impl SourceB,
    linear: Option<(&[f32], Option<UnaryOp>)>,
) -> Result<Vec<f32>, Error> {
    let len = m
        .checked_mul(n)
        .ok_or_else(|| Error::Device("cpu: product size overflows".into()))?;
    if a.len() != m * k || linear.is_some_and(|(bias, _)| bias.len() != n) {
        return Err(Error::Device("cpu: product operand sizes".into()));
    }
    let nr = Kernel::for_simd(ctx.simd).nr;
    let bias = match linear {
        Some((bias, activation)) => Some(BiasPanels::new(bias, activation, nr)?),
        None => None,
    };
    let a = Strided {
        data: a,
        off: 0,
        rs: k,
        cs: 1,
    };
    let mut out = uninit::<f32>(len)?;
    gemm(
        &ctx.for_cost(len.saturating_mul(k)),
        m,
        n,
        k,
        &a,
        b,
        None,
        bias.as_ref(),
        &mut out.spare_capacity_mut()[..len],
    )?;
    // SAFETY: gemm returned Ok, so it wrote every element.
    unsafe { out.set_len(len) };
    Ok(out)
}
