//! The attention launches, one warp per query row and head: per-row
//! sequence starts and lengths uploaded beside the operands, or for causal
//! attention a table of each cached position's row addresses. The CPU
//! reference is `cpu/attention.rs`.

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

impl CudaBackend {
    /// `causal_attention` (SEMANTICS.md): one warp per query row and head;
    /// each position's key and value rows are found through a table of
    /// their device addresses, uploaded beside the operands, so the blocks
    /// are read where they lie.
    pub(super) fn causal_attention(
        &self,
        q: &TensorRef<'_>,
        (keys, values): (&[TensorRef<'_>], &[TensorRef<'_>]),
        (heads, kv_heads): (usize, usize),
        scale: f32,
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let &[t, width] = q.shape else {
            return Err(Error::Device("cuda: causal attention's q".into()));
        };
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(Error::Device("cuda: causal attention heads".into()));
        }
        let rows_of = |blocks: &[TensorRef<'_>]| -> Result<Vec<u64>, Error> {
            let mut rows = Vec::new();
            for b in blocks {
                let &[n, w] = b.shape else {
                    return Err(Error::Device("cuda: causal attention blocks".into()));
                };
                let Param::Ptr(base) = self.ptr(b, DType::F32)? else {
                    return Err(Error::Device("cuda: a block without an address".into()));
                };
                let row_bytes = u64of(w * 4);
                rows.extend((0..u64of(n)).map(|j| base + j * row_bytes));
            }
            Ok(rows)
        };
        let (key_rows, value_rows) = (rows_of(keys)?, rows_of(values)?);
        let n = key_rows.len();
        let v_width = values.first().map_or(0, |v| v.shape[1]);
        if value_rows.len() != n || t == 0 || t > n {
            return Err(Error::Device("cuda: causal attention rows".into()));
        }
        let scratch_len = t
            .checked_mul(heads)
            .and_then(|r| r.checked_mul(n))
            .ok_or_else(|| Error::Device(format!("cuda: causal attention over {n} positions")))?;
        let scratch = self.alloc(scratch_len, DType::F32)?;
        let key_rows = self.gpu.upload(as_bytes(&key_rows))?;
        let value_rows = self.gpu.upload(as_bytes(&value_rows))?;
        self.launch_rows(
            "assay_causal_attention_rows",
            u64of(t * heads),
            &[
                self.ptr(q, DType::F32)?,
                Param::Ptr(key_rows.ptr),
                Param::Ptr(value_rows.ptr),
                Param::Ptr(scratch.mem.ptr),
                Param::Ptr(out.mem.ptr),
                Param::U64(u64of(t)),
                Param::U64(u64of(heads)),
                Param::U64(u64of(heads / kv_heads)),
                Param::U64(u64of(width / heads)),
                Param::U64(u64of(v_width / kv_heads)),
                Param::U64(u64of(n)),
                Param::F32(scale),
            ],
        )
    }
}
