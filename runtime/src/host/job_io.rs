//! `assay:gpu/job-io`: the job's inputs, outputs, params, shard and log.
//! Reads and writes are bounded by the spec (a read by the guest's memory
//! cap, outputs by the output cap, the log by `log_bytes`).

use assay_host_gpu::{self as hg, Tensor};
use assay_protocol::Hash32;
use wasmtime::component::Resource;

use super::{R, dims};
use crate::bindings::job_io;
use crate::ctx::{GpuCtx, GpuCtxView};
use crate::error::{HostError, RefusalCase};

fn refuse(call: &'static str, case: RefusalCase, message: String) -> HostError {
    HostError::refuse(call, case, message)
}

/// Longest output name.
const MAX_OUTPUT_NAME: usize = 128;

/// Input ranges at least this large are looked up in the device's resident
/// store (smaller ones decode faster than a lookup pays back).
const RESIDENT_MIN_BYTES: usize = 64 << 10;

/// The name of bytes `offset..offset + len` of the input whose blake3 is
/// `input`: equal names mean equal bytes.
fn resident_key(input: &Hash32, offset: u64, len: usize) -> hg::resident::ContentKey {
    let mut h = blake3::Hasher::new();
    h.update(b"assay/resident-range/v1");
    h.update(&input.0);
    h.update(&offset.to_le_bytes());
    h.update(&(len as u64).to_le_bytes());
    hg::resident::ContentKey(*h.finalize().as_bytes())
}

fn check_output_name(call: &'static str, name: &str) -> R<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_OUTPUT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(refuse(
            call,
            RefusalCase::InvalidArgument,
            format!("output name {name:?} must be 1–{MAX_OUTPUT_NAME} bytes of [A-Za-z0-9._-]"),
        ))
    }
}

impl GpuCtx {
    fn input(&self, call: &'static str, name: &str) -> R<&std::sync::Arc<[u8]>> {
        self.inputs.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.inputs.keys().map(String::as_str).collect();
            refuse(
                call,
                RefusalCase::NotFound,
                format!("no input named {name:?}; the job has {names:?}"),
            )
        })
    }
}

/// Bytes `offset..offset + len` of input `name`, or a `not-found` refusal.
fn range<'a>(
    call: &'static str,
    bytes: &'a [u8],
    name: &str,
    offset: u64,
    len: u64,
) -> R<&'a [u8]> {
    let size = bytes.len() as u64;
    let end = offset
        .checked_add(len)
        .filter(|&e| e <= size)
        .ok_or_else(|| {
            refuse(
                call,
                RefusalCase::NotFound,
                format!(
                    "bytes {offset}..{offset}+{len} lie outside input {name:?} of {size} bytes"
                ),
            )
        })?;
    Ok(&bytes[offset as usize..end as usize])
}

impl job_io::Host for GpuCtxView<'_> {
    fn list_inputs(&mut self) -> wasmtime::Result<Vec<job_io::InputInfo>> {
        Ok(self
            .ctx
            .inputs
            .iter()
            .map(|(name, bytes)| job_io::InputInfo {
                name: name.clone(),
                size: bytes.len() as u64,
            })
            .collect())
    }

    fn read_input(&mut self, name: String, offset: u64, len: u64) -> R<Vec<u8>> {
        const CALL: &str = "job-io.read-input";
        if len > self.ctx.max_read {
            return Err(refuse(
                CALL,
                RefusalCase::InvalidArgument,
                format!(
                    "read-input of {len} bytes is larger than the job's memory ({} bytes); read in pieces",
                    self.ctx.max_read
                ),
            ));
        }
        let bytes = self.ctx.input(CALL, &name)?.clone();
        let size = bytes.len() as u64;
        if offset > size {
            return Err(refuse(
                CALL,
                RefusalCase::NotFound,
                format!("offset {offset} lies outside input {name:?} of {size} bytes"),
            ));
        }
        // A short read only at the end of the input.
        let len = len.min(size - offset);
        Ok(range(CALL, &bytes, &name, offset, len)?.to_vec())
    }

    fn tensor_from_input(
        &mut self,
        name: String,
        offset: u64,
        encoding: job_io::Encoding,
        shape: Vec<u32>,
    ) -> R<Resource<Tensor>> {
        const CALL: &str = "job-io.tensor-from-input";
        use job_io::Encoding as W;
        let (encoding, width) = match encoding {
            W::F32 => (hg::SourceEncoding::F32, 4u64),
            W::F16 => (hg::SourceEncoding::F16, 2),
            W::Bf16 => (hg::SourceEncoding::Bf16, 2),
            W::I32 => (hg::SourceEncoding::I32, 4),
            W::I64 => (hg::SourceEncoding::I64, 8),
        };
        let shape = dims(&shape);
        let count = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .and_then(|n| n.checked_mul(width))
            .ok_or_else(|| {
                refuse(
                    CALL,
                    RefusalCase::InvalidArgument,
                    format!("shape {shape:?} is too large"),
                )
            })?;
        let bytes = self.ctx.input(CALL, &name)?.clone();
        let range = range(CALL, &bytes, &name, offset, count)?;
        let r = match self.ctx.input_hashes.get(&name) {
            Some(input) if range.len() >= RESIDENT_MIN_BYTES => {
                let key = resident_key(input, offset, range.len());
                self.ctx
                    .session
                    .from_encoded_resident(&shape, encoding, range, key)
            }
            _ => self.ctx.session.from_encoded(&shape, encoding, range),
        };
        self.hand_out(CALL, r)
    }

    fn write_output(&mut self, name: String, data: Vec<u8>) -> R<()> {
        const CALL: &str = "job-io.write-output";
        check_output_name(CALL, &name)?;
        self.ctx.put_output(CALL, name, data)
    }

    fn write_tensor_output(&mut self, name: String, x: Resource<Tensor>) -> R<()> {
        const CALL: &str = "job-io.write-tensor-output";
        check_output_name(CALL, &name)?;
        let t = self.get(CALL, &x)?;
        // Refuse before reading the tensor back if it cannot fit.
        self.ctx.check_output_room(CALL, &name, t.byte_len())?;
        let bytes = self
            .ctx
            .session
            .read_bytes(&t)
            .map_err(|e| HostError::from_op(CALL, e))?;
        self.ctx.put_output(CALL, name, bytes)
    }

    fn param(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.ctx.params.get(&name).cloned())
    }

    fn shard(&mut self) -> wasmtime::Result<job_io::ShardInfo> {
        Ok(job_io::ShardInfo {
            index: self.ctx.shard.index,
            count: self.ctx.shard.count,
        })
    }

    fn log(&mut self, message: String) -> wasmtime::Result<()> {
        let room = self.ctx.log_limit.saturating_sub(self.ctx.log.len());
        if room > 0 {
            let mut end = message.len().min(room.saturating_sub(1));
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            self.ctx.log.push_str(&message[..end]);
            self.ctx.log.push('\n');
        }
        Ok(())
    }
}
