//! The host side of `assay:gpu`, one file per WIT interface (as
//! wasmtime-wasi's `p2/host/`): [`tensor`] (the ops) and [`job_io`] (inputs,
//! outputs, params, log). Both run on a [`GpuCtxView`]; this module wires
//! them into a linker and holds what they share: the call-name plumbing
//! that lets a failure record name the host call involved.
//!
//! Every host call knows its WIT name (`interface.function`, e.g.
//! `tensor.matmul`): errors carry it ([`HostError::Guest`],
//! [`crate::Ending`]), and the failure record copies it — never a message.

mod job_io;
mod tensor;

use std::fmt;

use assay_host_gpu::{self as hg, Tensor};
use assay_protocol::trace::Attr;
use wasmtime::component::{HasData, Linker, Resource};

use crate::bindings;
use crate::ctx::{GpuCtxView, GpuView};
use crate::error::{Ending, HostError};
use crate::trace::Content;

pub(crate) use job_io::{check_output_name, input_range};

type R<T> = Result<T, HostError>;

struct HasGpu;

impl HasData for HasGpu {
    type Data<'a> = GpuCtxView<'a>;
}

/// Adds `assay:gpu/tensor` and `assay:gpu/job-io` to `linker`.
///
/// # Errors
///
/// If the linker already defines them.
pub fn add_to_linker<T: GpuView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::tensor::add_to_linker::<T, HasGpu>(linker, |t| t.gpu())?;
    bindings::job_io::add_to_linker::<T, HasGpu>(linker, |t| t.gpu())?;
    Ok(())
}

fn dims(shape: &[u32]) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}

/// Resource-table errors are about the guest's handles, not the machine:
/// a deterministic trap, never a provider fault.
fn table_trap(call: &'static str, e: impl fmt::Display) -> HostError {
    HostError::End(Ending::HostRule {
        call,
        message: format!("bad tensor handle: {e}"),
    })
}

impl GpuCtxView<'_> {
    /// The tensor behind a handle the guest passed in.
    fn get(&self, call: &'static str, r: &Resource<Tensor>) -> R<Tensor> {
        self.table.get(r).cloned().map_err(|e| table_trap(call, e))
    }

    /// The trace steps whose outputs the operands are (nothing when the
    /// run records no trace).
    fn producers(&self, operands: &[&Resource<Tensor>]) -> Vec<u64> {
        if !self.ctx.trace.is_on() {
            return Vec::new();
        }
        operands
            .iter()
            .map(|r| self.ctx.trace.producer(r.rep()))
            .collect()
    }

    /// Ends the run when the trace has reached the step it was to stop
    /// after ([`crate::TraceOptions::stop_after`]).
    fn stop_if_due(&self, call: &'static str) -> R<()> {
        match self.ctx.trace.stop_due() {
            Some(n) => Err(HostError::End(Ending::HostRule {
                call,
                message: format!("the run was to stop after trace step {n}"),
            })),
            None => Ok(()),
        }
    }

    /// Hands an op's result to the guest, and records it as a trace step
    /// whose call is `call` on the steps `inputs` with parameters `attrs`.
    fn hand_out(
        &mut self,
        call: &'static str,
        inputs: Vec<u64>,
        attrs: Vec<Attr>,
        content: Content,
        result: Result<Tensor, hg::Error>,
    ) -> R<Resource<Tensor>> {
        let t = match result {
            Ok(t) => t,
            Err(e) => {
                let e = HostError::from_op(call, e);
                self.ctx.trace.refused(call, inputs, attrs, &e);
                self.stop_if_due(call)?;
                return Err(e);
            }
        };
        let step = self.ctx.trace.produced(call, inputs, attrs, &t, content);
        self.stop_if_due(call)?;
        if self.ctx.trace.wants(step) {
            let bytes = self
                .ctx
                .session
                .read_bytes(&t)
                .map_err(|e| HostError::from_op(call, e))?;
            self.ctx.trace.keep(step, &t, bytes);
        }
        let r = self.table.push(t).map_err(|e| table_trap(call, e))?;
        self.ctx.trace.bind(r.rep(), step);
        Ok(r)
    }

    /// Runs op `call` on borrowed operands and hands the result to the
    /// guest; `attrs` are its other parameters in WIT order, for the trace.
    fn op<const N: usize>(
        &mut self,
        call: &'static str,
        operands: [&Resource<Tensor>; N],
        attrs: Vec<Attr>,
        f: impl FnOnce(&mut hg::Session, [&Tensor; N]) -> Result<Tensor, hg::Error>,
    ) -> R<Resource<Tensor>> {
        let mut held = Vec::with_capacity(N);
        for r in operands {
            held.push(self.get(call, r)?);
        }
        let inputs = self.producers(&operands);
        let refs: [&Tensor; N] = std::array::from_fn(|i| &held[i]);
        let result = f(&mut self.ctx.session, refs);
        // A reshape shares its input's buffer: the same bytes, hashed once.
        let content = if call == "tensor.reshape" {
            Content::SameAs(0)
        } else {
            Content::Hash
        };
        self.hand_out(call, inputs, attrs, content, result)
    }

    /// A host→guest read of a tensor, recorded as a step: `read` reads it.
    fn read_back<T>(
        &mut self,
        call: &'static str,
        x: &Resource<Tensor>,
        attrs: Vec<Attr>,
        read: impl FnOnce(&mut Self, &Tensor) -> R<T>,
        bytes_hash: impl FnOnce(&T) -> assay_protocol::Hash32,
    ) -> R<T> {
        let t = self.get(call, x)?;
        let inputs = self.producers(&[x]);
        // The bytes copied out of the device are work; a read that would
        // pass the budget ends the run, as an op would.
        let read = |v: &mut Self, t: &Tensor| {
            let value = read(v, t)?;
            v.ctx
                .session
                .charge_copy(call, t.byte_len())
                .map_err(|e| HostError::from_op(call, e))?;
            Ok(value)
        };
        match read(self, &t) {
            Ok(v) => {
                let input = inputs.first().copied().unwrap_or(u64::MAX);
                self.ctx
                    .trace
                    .read(call, input, attrs, &t, || bytes_hash(&v));
                self.stop_if_due(call)?;
                Ok(v)
            }
            Err(e) => {
                self.ctx.trace.refused(call, inputs, attrs, &e);
                self.stop_if_due(call)?;
                Err(e)
            }
        }
    }
}
