//! One job's state behind the `assay:gpu` interfaces, and how the bindings
//! reach it — wasmtime-wasi's `Ctx` + `View` pair: a [`GpuCtx`] per store, a
//! [`GpuView`] that the store's data implements, and a [`GpuCtxView`] that
//! each host call borrows (the context plus the resource table it shares
//! with WASI). The host calls themselves live in [`crate::host`], one file
//! per WIT interface.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use assay_host_gpu::Session;
use assay_protocol::{Hash32, Shard};
use wasmtime::component::ResourceTable;

use crate::error::{Ending, HostError, RefusalCase};
use crate::trace::Recorder;

/// The job's inputs: name → bytes, shared (a verifier or a provider may run
/// several jobs over the same model blob).
pub type Inputs = BTreeMap<String, Arc<[u8]>>;

/// One job's state behind the `assay:gpu` interfaces.
#[derive(Debug)]
pub struct GpuCtx {
    pub(crate) session: Session,
    pub(crate) inputs: Arc<Inputs>,
    /// The blake3 of each input (the runtime hashed them for the receipt):
    /// large tensor ranges are named by it to the device's resident store.
    pub(crate) input_hashes: BTreeMap<String, Hash32>,
    pub(crate) outputs: BTreeMap<String, Vec<u8>>,
    pub(crate) output_bytes: u64,
    pub(crate) output_limit: u64,
    pub(crate) max_read: u64,
    pub(crate) params: Arc<BTreeMap<String, String>>,
    pub(crate) shard: Shard,
    pub(crate) log: String,
    pub(crate) log_limit: usize,
    /// The first host call refused for the memory quota: a failure after
    /// that is classed `gpu-quota-exceeded` and names it.
    pub(crate) quota_refusal: Option<&'static str>,
    /// The last host call refused with a WIT error, and the error's case:
    /// a guest error or trap after it names it in the failure record.
    pub(crate) last_refusal: Option<(&'static str, &'static str)>,
    /// The run's trace, step by step (off unless the sandbox turns it on).
    pub(crate) trace: Recorder,
}

impl GpuCtx {
    /// A context for one run. `input_hashes` holds the blake3 of inputs (by
    /// name); a tensor read from a large range of one of them may come from
    /// the device's resident store (the same bits, charged the same).
    pub fn new(
        session: Session,
        inputs: Arc<Inputs>,
        input_hashes: BTreeMap<String, Hash32>,
        params: Arc<BTreeMap<String, String>>,
        spec: &assay_protocol::JobSpec,
    ) -> GpuCtx {
        GpuCtx {
            session,
            inputs,
            input_hashes,
            outputs: BTreeMap::new(),
            output_bytes: 0,
            output_limit: spec.output_bytes,
            max_read: spec.memory_bytes,
            params,
            shard: spec.shard,
            log: String::new(),
            log_limit: spec.log_bytes as usize,
            quota_refusal: None,
            last_refusal: None,
            trace: Recorder::off(),
        }
    }

    /// Notes a WIT error on its way to the guest (every one passes here).
    pub(crate) fn note_refusal(&mut self, call: &'static str, case: RefusalCase) {
        if case == RefusalCase::QuotaExceeded && self.quota_refusal.is_none() {
            self.quota_refusal = Some(call);
        }
        self.last_refusal = Some((call, case.wit_name()));
    }

    /// Refuses a write that would take the outputs past the spec's cap,
    /// before any bytes are read or copied; otherwise the outputs' total
    /// bytes after it.
    pub(crate) fn check_output_room(
        &self,
        call: &'static str,
        name: &str,
        len: u64,
    ) -> Result<u64, HostError> {
        let replaced = self.outputs.get(name).map_or(0, |d| d.len() as u64);
        let total = self.output_bytes - replaced + len;
        if total > self.output_limit {
            return Err(HostError::End(Ending::OutputLimit {
                call,
                output: name.to_string(),
                message: format!(
                    "writing {len} bytes to output {name:?} would bring outputs to {total} bytes; the spec allows {}",
                    self.output_limit
                ),
            }));
        }
        Ok(total)
    }

    /// Stores an output if it fits under the cap.
    pub(crate) fn put_output(
        &mut self,
        call: &'static str,
        name: String,
        data: Vec<u8>,
    ) -> Result<(), HostError> {
        self.output_bytes = self.check_output_room(call, &name, data.len() as u64)?;
        self.outputs.insert(name, data);
        Ok(())
    }
}

/// What the bindings borrow from the store for one host call.
pub struct GpuCtxView<'a> {
    /// The job's state.
    pub ctx: &'a mut GpuCtx,
    /// The store's resource table (shared with WASI).
    pub table: &'a mut ResourceTable,
}

impl fmt::Debug for GpuCtxView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuCtxView").finish_non_exhaustive()
    }
}

/// Gives the `assay:gpu` host access to a store's [`GpuCtx`].
pub trait GpuView: Send {
    /// The view for one host call.
    fn gpu(&mut self) -> GpuCtxView<'_>;
}
