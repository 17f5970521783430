//! Input decoding on the device: encoded bytes (f32, f16, bf16, i32, i64,
//! GGML's Q4_0, Q4_1 and Q8_0 blocks) uploaded as they are and decoded by
//! `assay_decode`; tensors of blocks kept as they are, decoded by the
//! same kernel for a product and by `assay_decode_rows` for a gather. The
//! CPU reference is `cpu/encode.rs` (and `cpu/blocks.rs`).

use super::gpu::Param;
use super::{CudaBackend, CudaBuffer, numel, u64of};
use crate::backend::contract::TensorRef;
use crate::dtype::DType;
use crate::error::Error;
use crate::op::SourceEncoding;

impl CudaBackend {
    /// A new buffer of `dtype` decoded from `bytes` in `encoding`.
    pub(super) fn decode_on_device(
        &self,
        bytes: &[u8],
        encoding: SourceEncoding,
        dtype: DType,
    ) -> Result<CudaBuffer, Error> {
        let n = match encoding.elements_in(bytes.len()) {
            Some(n) if encoding.dtype() == dtype => n,
            _ => {
                return Err(Error::Device(format!(
                    "cuda: {} bytes of {encoding:?} cannot become {} elements",
                    bytes.len(),
                    dtype.name()
                )));
            }
        };
        if encoding == SourceEncoding::I64 {
            for (at, c) in bytes.chunks_exact(8).enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                let v = i64::from_le_bytes(b);
                if i32::try_from(v).is_err() {
                    return Err(Error::InvalidArgument(format!(
                        "i64 element {at} is {v}, outside the i32 range; only values that fit in i32 can be narrowed"
                    )));
                }
            }
        }
        // The encoded bytes go to the device as they are (half the traffic
        // for f16/bf16) and are decoded there.
        let src = self.gpu.upload(bytes)?;
        let out = self.alloc(n, dtype)?;
        self.launch_flat(
            "assay_decode",
            u64of(n),
            &[
                Param::Ptr(src.ptr),
                Param::Ptr(out.mem.ptr),
                Param::U64(u64of(n)),
                Param::I32(encoding_code(encoding)),
            ],
        )?;
        Ok(out)
    }

    /// A buffer that keeps GGML blocks as they are (the layout
    /// `assay_decode` reads).
    pub(super) fn upload_blocks_as_they_are(
        &self,
        bytes: &[u8],
        encoding: SourceEncoding,
    ) -> Result<CudaBuffer, Error> {
        let (Some(dtype), Some(n)) = (encoding.blocks_dtype(), encoding.elements_in(bytes.len()))
        else {
            return Err(Error::Device(format!(
                "cuda: {} bytes of {encoding:?} are not whole blocks",
                bytes.len()
            )));
        };
        let mem = self.gpu.upload(bytes)?;
        Ok(self.buffer_from(mem, n, dtype))
    }

    /// The f32 values of a buffer of blocks, decoded into a new buffer for
    /// the length of one op (a product with the weight): the weight itself
    /// stays blocks in device memory.
    pub(super) fn decoded_blocks(&self, x: &TensorRef<'_>) -> Result<CudaBuffer, Error> {
        let encoding = SourceEncoding::of_blocks(x.dtype)
            .ok_or_else(|| Error::Device("cuda: expected a buffer of blocks".into()))?;
        let src = self.any_ptr(x)?;
        let n = numel(x.shape)?;
        let out = self.alloc(n, DType::F32)?;
        self.launch_flat(
            "assay_decode",
            u64of(n),
            &[
                src,
                Param::Ptr(out.mem.ptr),
                Param::U64(u64of(n)),
                Param::I32(encoding_code(encoding)),
            ],
        )?;
        Ok(out)
    }

    /// `gather` from a table of blocks: the picked rows, decoded.
    pub(super) fn gather_blocks(
        &self,
        table: &TensorRef<'_>,
        idx: &TensorRef<'_>,
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let encoding = SourceEncoding::of_blocks(table.dtype)
            .ok_or_else(|| Error::Device("cuda: expected a table of blocks".into()))?;
        let &[_, d] = table.shape else {
            return Err(Error::Device(format!(
                "cuda: gather table {:?}",
                table.shape
            )));
        };
        let count = numel(idx.shape)?;
        if count.checked_mul(d) != Some(out.len) || out.dtype != DType::F32 {
            return Err(Error::Device("cuda: gather sizes".into()));
        }
        self.launch_flat(
            "assay_decode_rows",
            u64of(out.len),
            &[
                self.any_ptr(table)?,
                self.ptr(idx, DType::I32)?,
                Param::Ptr(out.mem.ptr),
                Param::U64(u64of(count)),
                Param::U64(u64of(d)),
                Param::I32(encoding_code(encoding)),
            ],
        )
    }
}

/// `assay_decode`'s code for `encoding`.
fn encoding_code(encoding: SourceEncoding) -> i32 {
    match encoding {
        SourceEncoding::F32 => 0,
        SourceEncoding::F16 => 1,
        SourceEncoding::Bf16 => 2,
        SourceEncoding::I32 => 3,
        SourceEncoding::I64 => 4,
        SourceEncoding::Q4_0 => 5,
        SourceEncoding::Q4_1 => 6,
        SourceEncoding::Q8_0 => 7,
    }
}
