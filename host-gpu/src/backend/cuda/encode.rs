//! Input decoding on the device: encoded bytes (f32, f16, bf16, i32, i64,
//! GGML's Q4_0, Q4_1 and Q8_0 blocks) uploaded as they are and decoded by
//! `assay_decode`. The CPU reference is
//! `cpu/encode.rs`.

use super::gpu::Param;
use super::{CudaBackend, CudaBuffer, u64of};
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
        let enc = match encoding {
            SourceEncoding::F32 => 0,
            SourceEncoding::F16 => 1,
            SourceEncoding::Bf16 => 2,
            SourceEncoding::I32 => 3,
            SourceEncoding::I64 => 4,
            SourceEncoding::Q4_0 => 5,
            SourceEncoding::Q4_1 => 6,
            SourceEncoding::Q8_0 => 7,
        };
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
                Param::I32(enc),
            ],
        )?;
        Ok(out)
    }
}
