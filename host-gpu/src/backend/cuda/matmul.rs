//! Matmul and linear launches: tiled sgemm kernels (128×128 or 64×64 output
//! tiles) over broadcast batch dims. The CPU reference is `cpu/matmul.rs`.

use super::gpu::{Launch, Param};
use super::strided::{broadcast_strides, coalesce, strided_launches};
use super::{BIG_TILE_MIN_TILES, BLOCK, CudaBackend, CudaBuffer, i64of, input, u64of};
use crate::backend::contract::TensorRef;
use crate::dtype::DType;
use crate::error::Error;
use crate::op::{BinaryOp, UnaryOp};

impl CudaBackend {
    /// `x · w` (`w` maybe transposed), plus the bias, then the activation.
    pub(super) fn linear(
        &self,
        inputs: &[TensorRef<'_>],
        transpose_b: bool,
        activation: Option<UnaryOp>,
        out_shape: &[usize],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let n = u64of(out.len);
        self.matmul(
            input(inputs, 0)?,
            input(inputs, 1)?,
            false,
            transpose_b,
            out_shape,
            out,
        )?;
        // The bias added, then the activation applied, in place: each
        // kernel reads an output element before writing it, at the
        // same index.
        let product = TensorRef {
            shape: out_shape,
            dtype: DType::F32,
            buffer: out,
        };
        self.binary(BinaryOp::Add, &product, input(inputs, 2)?, out_shape, out)?;
        match activation {
            Some(u) => self.unary(u, o, o, n),
            None => Ok(()),
        }
    }

    pub(super) fn matmul(
        &self,
        a: &TensorRef<'_>,
        b: &TensorRef<'_>,
        ta: bool,
        tb: bool,
        out_shape: &[usize],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let (ap, bp) = (self.ptr(a, DType::F32)?, self.ptr(b, DType::F32)?);
        let (ra, rb, r) = (a.shape.len(), b.shape.len(), out_shape.len());
        if ra < 2 || rb < 2 || r < 2 {
            return Err(Error::Device("cuda: matmul operands of rank < 2".into()));
        }
        let (m, n) = (out_shape[r - 2], out_shape[r - 1]);
        let (am, k) = if ta {
            (a.shape[ra - 1], a.shape[ra - 2])
        } else {
            (a.shape[ra - 2], a.shape[ra - 1])
        };
        let (bk, bn) = if tb {
            (b.shape[rb - 1], b.shape[rb - 2])
        } else {
            (b.shape[rb - 2], b.shape[rb - 1])
        };
        if am != m || bk != k || bn != n {
            return Err(Error::Device("cuda: matmul shapes".into()));
        }
        // Batch strides in elements: each batch matrix is contiguous.
        let batch = &out_shape[..r - 2];
        let scale = |s: Vec<usize>, per: usize| s.into_iter().map(|v| v * per).collect();
        let sa: Vec<usize> = scale(broadcast_strides(&a.shape[..ra - 2], r - 2), m * k);
        let sb: Vec<usize> = scale(broadcast_strides(&b.shape[..rb - 2], r - 2), k * n);
        let (dims, strides) = coalesce(batch, &[sa, sb]);
        let o = Param::Ptr(out.mem.ptr);
        strided_launches(&dims, &strides, |d, batches, ba, bb, bo| {
            let tiles = |t: usize| u64of(m.div_ceil(t)) * u64of(n.div_ceil(t)) * batches;
            let big = tiles(128) >= BIG_TILE_MIN_TILES;
            let tile = if big { 128 } else { 64 };
            let kernel = match (big, ta, tb) {
                (true, false, false) => "assay_sgemm128_nn",
                (true, false, true) => "assay_sgemm128_nt",
                (true, true, false) => "assay_sgemm128_tn",
                (true, true, true) => "assay_sgemm128_tt",
                (false, false, false) => "assay_sgemm64_nn",
                (false, false, true) => "assay_sgemm64_nt",
                (false, true, false) => "assay_sgemm64_tn",
                (false, true, true) => "assay_sgemm64_tt",
            };
            let shape = Launch {
                grid: [
                    u64of(n.div_ceil(tile)).clamp(1, 1 << 30) as u32,
                    u64of(m.div_ceil(tile)).clamp(1, 65535) as u32,
                    batches.clamp(1, 65535) as u32,
                ],
                block: [BLOCK, 1, 1],
            };
            self.launch(
                kernel,
                shape,
                &[
                    ap,
                    bp,
                    o,
                    Param::I64(i64of(m)),
                    Param::I64(i64of(n)),
                    Param::I64(i64of(k)),
                    Param::Dims(d),
                    Param::U64(batches),
                    Param::I64(ba),
                    Param::I64(bb),
                    // the kernel adds z·m·n for each batch of this launch
                    Param::I64(bo * i64of(m) * i64of(n)),
                ],
            )
        })
    }
}
