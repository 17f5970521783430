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
use wasmtime::component::{HasData, Linker, Resource};

use crate::bindings;
use crate::ctx::{GpuCtxView, GpuView};
use crate::error::{Ending, HostError};

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

    /// Hands an op's result to the guest.
    fn hand_out(
        &mut self,
        call: &'static str,
        result: Result<Tensor, hg::Error>,
    ) -> R<Resource<Tensor>> {
        let t = result.map_err(|e| HostError::from_op(call, e))?;
        self.table.push(t).map_err(|e| table_trap(call, e))
    }

    /// Runs op `call` on borrowed operands and hands the result to the guest.
    fn op<const N: usize>(
        &mut self,
        call: &'static str,
        operands: [&Resource<Tensor>; N],
        f: impl FnOnce(&mut hg::Session, [&Tensor; N]) -> Result<Tensor, hg::Error>,
    ) -> R<Resource<Tensor>> {
        let mut held = Vec::with_capacity(N);
        for r in operands {
            held.push(self.get(call, r)?);
        }
        let refs: [&Tensor; N] = std::array::from_fn(|i| &held[i]);
        let result = f(&mut self.ctx.session, refs);
        self.hand_out(call, result)
    }
}
