//! `assay:gpu/job-io`: the job's inputs, outputs, params, shard and log.
//! Reads and writes are bounded by the spec (a read by the guest's memory
//! cap, outputs by the output cap, the log by `log_bytes`).

use assay_host_gpu::{self as hg, Tensor};
use assay_protocol::Hash32;
use assay_protocol::trace::Attr;
use wasmtime::component::Resource;

use super::{R, dims};
use crate::bindings::job_io;
use crate::ctx::{GpuCtx, GpuCtxView, Inputs};
use crate::error::{HostError, RefusalCase};
use crate::trace::{Content, ENCODING, case, dims_attr};

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

/// The trace's memo key of a tensor decoded from a resident range: the
/// range's content name and the encoding (the decoded bytes depend on both).
fn range_content_key(key: &hg::resident::ContentKey, encoding: hg::SourceEncoding) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"assay/trace-range/v1");
    h.update(&key.0);
    let code = ENCODING
        .iter()
        .position(|(e, _)| *e == encoding)
        .unwrap_or(usize::MAX);
    h.update(&(code as u64).to_le_bytes());
    *h.finalize().as_bytes()
}

/// The host's encoding of a WIT block format.
fn block_encoding(format: job_io::BlockFormat) -> hg::SourceEncoding {
    use job_io::BlockFormat as B;
    match format {
        B::Q40 => hg::SourceEncoding::Q4_0,
        B::Q41 => hg::SourceEncoding::Q4_1,
        B::Q80 => hg::SourceEncoding::Q8_0,
    }
}

/// The trace's memo key of the blake3 of a resident range's bytes as they
/// are (a tensor of blocks, whose bytes are the range's).
fn range_bytes_key(key: &hg::resident::ContentKey) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"assay/trace-range-bytes/v1");
    h.update(&key.0);
    *h.finalize().as_bytes()
}

/// Refuses an output name outside `[A-Za-z0-9._-]{1,128}` (or `.`, `..`).
pub(crate) fn check_output_name(call: &'static str, name: &str) -> R<()> {
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

fn input<'a>(call: &'static str, inputs: &'a Inputs, name: &str) -> R<&'a std::sync::Arc<[u8]>> {
    inputs.get(name).ok_or_else(|| {
        let names: Vec<&str> = inputs.keys().map(String::as_str).collect();
        refuse(
            call,
            RefusalCase::NotFound,
            format!("no input named {name:?}; the job has {names:?}"),
        )
    })
}

impl GpuCtx {
    fn input(&self, call: &'static str, name: &str) -> R<&std::sync::Arc<[u8]>> {
        input(call, &self.inputs, name)
    }
}

/// The bytes a `job-io.tensor-from-input` of `shape` in `encoding` at
/// `offset` of input `name` reads, or its refusal (also the arbiter's, when
/// it replays the call).
pub(crate) fn input_range<'a>(
    call: &'static str,
    inputs: &'a Inputs,
    name: &str,
    offset: u64,
    encoding: hg::SourceEncoding,
    shape: &[usize],
) -> R<&'a [u8]> {
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| encoding.encoded_len(n))
        .ok_or_else(|| {
            refuse(
                call,
                RefusalCase::InvalidArgument,
                format!("shape {shape:?} is too large, or not whole {encoding:?} blocks"),
            )
        })?;
    let bytes = input(call, inputs, name)?;
    range(call, bytes, name, offset, count as u64)
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
        let out = range(CALL, &bytes, &name, offset, len)?.to_vec();
        self.charge_copy(CALL, len)?;
        Ok(out)
    }

    fn tensor_from_input(
        &mut self,
        name: String,
        offset: u64,
        encoding: job_io::Encoding,
        shape: Vec<u32>,
    ) -> R<Resource<Tensor>> {
        use job_io::Encoding as W;
        let encoding = match encoding {
            W::F32 => hg::SourceEncoding::F32,
            W::F16 => hg::SourceEncoding::F16,
            W::Bf16 => hg::SourceEncoding::Bf16,
            W::I32 => hg::SourceEncoding::I32,
            W::I64 => hg::SourceEncoding::I64,
        };
        self.tensor_of_input_range(name, offset, encoding, shape)
    }

    fn tensor_from_blocks(
        &mut self,
        name: String,
        offset: u64,
        format: job_io::BlockFormat,
        shape: Vec<u32>,
    ) -> R<Resource<Tensor>> {
        self.tensor_of_input_range(name, offset, block_encoding(format), shape)
    }

    fn blocks_from_input(
        &mut self,
        name: String,
        offset: u64,
        format: job_io::BlockFormat,
        shape: Vec<u32>,
    ) -> R<Resource<Tensor>> {
        self.blocks_of_input_range(name, offset, block_encoding(format), shape)
    }

    fn write_output(&mut self, name: String, data: Vec<u8>) -> R<()> {
        const CALL: &str = "job-io.write-output";
        check_output_name(CALL, &name)?;
        self.charge_copy(CALL, data.len() as u64)?;
        self.ctx.put_output(CALL, name, data)
    }

    fn write_tensor_output(&mut self, name: String, x: Resource<Tensor>) -> R<()> {
        const CALL: &str = "job-io.write-tensor-output";
        let attrs = vec![Attr::Str(name.clone())];
        if let Err(e) = check_output_name(CALL, &name) {
            let inputs = self.producers(&[&x]);
            self.ctx.trace.refused(CALL, inputs, attrs, &e);
            self.stop_if_due(CALL)?;
            return Err(e);
        }
        let bytes = self.read_back(
            CALL,
            &x,
            attrs,
            |v, t| {
                // Refuse before reading the tensor back if it cannot fit.
                v.ctx.check_output_room(CALL, &name, t.byte_len())?;
                v.ctx
                    .session
                    .read_bytes(t)
                    .map_err(|e| HostError::from_op(CALL, e))
            },
            |bytes| Hash32::of(bytes),
        )?;
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
        // Every byte passed is copied into the host, kept or not: a guest
        // that logs past its cap still pays for it.
        self.charge_copy("job-io.log", message.len() as u64)?;
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

impl GpuCtxView<'_> {
    /// Charges `bytes` copied between guest and host by `call` as work
    /// (`Session::charge_copy`): past the budget the run ends.
    fn charge_copy(&mut self, call: &'static str, bytes: u64) -> R<()> {
        self.ctx
            .session
            .charge_copy(call, bytes)
            .map_err(|e| HostError::from_op(call, e))
    }

    /// An input-range call's traced attributes, its shape and its bytes
    /// in `inputs`; a refusal is traced (and ends the run when due) before
    /// it is returned.
    fn traced_input_range<'a>(
        &mut self,
        call: &'static str,
        inputs: &'a Inputs,
        name: &str,
        offset: u64,
        encoding: hg::SourceEncoding,
        shape: &[u32],
    ) -> R<(Vec<Attr>, Vec<usize>, &'a [u8])> {
        let attrs = if self.ctx.trace.is_on() {
            vec![
                Attr::Str(name.to_string()),
                Attr::U64(offset),
                case(&ENCODING, encoding),
                dims_attr(shape),
            ]
        } else {
            Vec::new()
        };
        let shape = dims(shape);
        match input_range(call, inputs, name, offset, encoding, &shape) {
            Ok(range) => Ok((attrs, shape, range)),
            Err(e) => {
                self.ctx.trace.refused(call, Vec::new(), attrs, &e);
                self.stop_if_due(call)?;
                Err(e)
            }
        }
    }

    /// A tensor from a byte range of an input: `tensor-from-input`, and
    /// `tensor-from-blocks` for GGML's block formats. Both are traced as
    /// the one step `job-io.tensor-from-input`, the encoding among its
    /// attributes, so a verifier recomputes either the same way.
    fn tensor_of_input_range(
        &mut self,
        name: String,
        offset: u64,
        encoding: hg::SourceEncoding,
        shape: Vec<u32>,
    ) -> R<Resource<Tensor>> {
        const CALL: &str = "job-io.tensor-from-input";
        let inputs = self.ctx.inputs.clone();
        let (attrs, shape, range) =
            self.traced_input_range(CALL, &inputs, &name, offset, encoding, &shape)?;
        let (r, content) = match self.ctx.input_hashes.get(&name) {
            Some(input) if range.len() >= RESIDENT_MIN_BYTES => {
                let key = resident_key(input, offset, range.len());
                let content = Content::Range(range_content_key(&key, encoding));
                let r = self
                    .ctx
                    .session
                    .from_encoded_resident(&shape, encoding, range, key);
                (r, content)
            }
            _ => (
                self.ctx.session.from_encoded(&shape, encoding, range),
                Content::Hash,
            ),
        };
        self.hand_out(CALL, Vec::new(), attrs, content, r)
    }

    /// `blocks-from-input`: a tensor that keeps the blocks of a byte range
    /// of an input. Its trace content is the blake3 of those bytes
    /// (remembered per range, as a decoded range's is).
    fn blocks_of_input_range(
        &mut self,
        name: String,
        offset: u64,
        encoding: hg::SourceEncoding,
        shape: Vec<u32>,
    ) -> R<Resource<Tensor>> {
        const CALL: &str = "job-io.blocks-from-input";
        let inputs = self.ctx.inputs.clone();
        let (attrs, shape, range) =
            self.traced_input_range(CALL, &inputs, &name, offset, encoding, &shape)?;
        let key = match self.ctx.input_hashes.get(&name) {
            Some(input) if range.len() >= RESIDENT_MIN_BYTES => {
                Some(resident_key(input, offset, range.len()))
            }
            _ => None,
        };
        let r = self
            .ctx
            .session
            .blocks_from_encoded(&shape, encoding, range, key);
        // As for any op output: a device that keeps tensors off the host
        // (a GPU) hashes none, so its trace commits to calls only.
        let on_host = self.ctx.session.device().info().kind == "cpu";
        let content = if r.is_ok() && on_host && self.ctx.trace.hashes_data() {
            let hash = || Hash32::of(range);
            Content::Known(match key {
                Some(key) => self.ctx.trace.remembered(range_bytes_key(&key), hash),
                None => hash(),
            })
        } else {
            Content::Hash
        };
        self.hand_out(CALL, Vec::new(), attrs, content, r)
    }
}
