//! The attention launch: per-row sequence starts and lengths uploaded
//! beside the operands, one warp per query row and head. The CPU reference
//! is `cpu/attention.rs`.

use super::gpu::Param;
use super::{CudaBackend, CudaBuffer, as_bytes, u64of};
use crate::backend::contract::TensorRef;
use crate::dtype::DType;
use crate::error::Error;

impl CudaBackend {
    /// `attention` (SEMANTICS.md): one warp per query row and head, the
    /// row's scores in a scratch buffer the session counted against the quota.
    pub(super) fn attention(
        &self,
        [q, k, v]: [&TensorRef<'_>; 3],
        lengths: &[usize],
        heads: usize,
        scale: f32,
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let (&[tokens, width], &[_, v_width]) = (q.shape, v.shape) else {
            return Err(Error::Device(
                "cuda: attention operands must be matrices".into(),
            ));
        };
        if heads == 0 || k.shape != q.shape || v.shape[0] != tokens {
            return Err(Error::Device("cuda: attention shapes".into()));
        }
        let too_big = || Error::Device(format!("cuda: attention over {tokens} rows"));
        let mut starts = Vec::with_capacity(tokens);
        let mut lens = Vec::with_capacity(tokens);
        let mut first = 0usize;
        for &len in lengths {
            let at = u32::try_from(first).map_err(|_| too_big())?;
            let n = u32::try_from(len).map_err(|_| too_big())?;
            starts.extend(std::iter::repeat_n(at, len));
            lens.extend(std::iter::repeat_n(n, len));
            first += len;
        }
        if first != tokens {
            return Err(Error::Device("cuda: attention lengths".into()));
        }
        let longest = lengths.iter().copied().max().unwrap_or(0);
        let scratch_len = tokens
            .checked_mul(heads)
            .and_then(|r| r.checked_mul(longest))
            .ok_or_else(too_big)?;
        let scratch = self.alloc(scratch_len, DType::F32)?;
        let starts = self.gpu.upload(as_bytes(&starts))?;
        let lens = self.gpu.upload(as_bytes(&lens))?;
        self.launch_rows(
            "assay_attention_rows",
            u64of(tokens * heads),
            &[
                self.ptr(q, DType::F32)?,
                self.ptr(k, DType::F32)?,
                self.ptr(v, DType::F32)?,
                Param::Ptr(starts.ptr),
                Param::Ptr(lens.ptr),
                Param::Ptr(scratch.mem.ptr),
                Param::Ptr(out.mem.ptr),
                Param::U64(u64of(tokens)),
                Param::U64(u64of(heads)),
                Param::U64(u64of(width / heads)),
                Param::U64(u64of(v_width / heads)),
                Param::U64(u64of(longest)),
                Param::F32(scale),
            ],
        )
    }
}
