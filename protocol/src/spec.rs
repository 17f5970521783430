use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Hash32;
use crate::canonical::Encoder;

/// Which part of a data-parallel job a run is: `index` of `count` (index < count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u32,
    /// How many shards the job has (≥ 1).
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

/// A job's limits and parameters, set by the renter.
///
/// Every field but `wall_clock_ms` takes part in the job's identity
/// ([`job_id`]) and decides its outcome; `wall_clock_ms` is only the
/// provider's watchdog: firing it is a provider fault, never a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobSpec {
    /// Wasm fuel (≈ guest instructions) the run may burn.
    pub fuel: u64,
    /// Most bytes of guest linear memory.
    pub memory_bytes: u64,
    /// Most bytes of tensors alive at once on the device.
    pub gpu_memory_bytes: u64,
    /// Most work units (tensor FLOPs + bytes moved) over the run.
    pub work_budget: u64,
    /// Most bytes of outputs in total.
    pub output_bytes: u64,
    /// Most bytes of captured stdout, stderr and log each.
    pub log_bytes: u64,
    /// Wall-clock watchdog in milliseconds (provider-side only).
    pub wall_clock_ms: u64,
    /// The wall-clock time the guest sees, in Unix milliseconds.
    pub start_time_ms: u64,
    /// Which shard of the job this run is.
    pub shard: Shard,
    /// Named parameters the guest can read (e.g. a batch size).
    pub params: BTreeMap<String, String>,
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            fuel: 50_000_000_000,
            memory_bytes: 1 << 30,
            gpu_memory_bytes: 4 << 30,
            work_budget: 100_000_000_000_000,
            output_bytes: 256 << 20,
            log_bytes: 64 << 10,
            wall_clock_ms: 600_000,
            // 2026-01-01T00:00:00Z
            start_time_ms: 1_767_225_600_000,
            shard: Shard::default(),
            params: BTreeMap::new(),
        }
    }
}

impl JobSpec {
    /// Appends the fields that decide the outcome to a canonical encoding.
    pub fn encode_into(&self, e: &mut Encoder) {
        e.u64(self.fuel)
            .u64(self.memory_bytes)
            .u64(self.gpu_memory_bytes)
            .u64(self.work_budget)
            .u64(self.output_bytes)
            .u64(self.log_bytes)
            .u64(self.start_time_ms)
            .u32(self.shard.index)
            .u32(self.shard.count)
            .u64(self.params.len() as u64);
        for (k, v) in &self.params {
            e.str(k).str(v);
        }
    }
}

/// A job's id: blake3 over the semantics version, its component, its inputs
/// root and its spec (canonical encoding, domain `assay/job/v2`). The same
/// job submitted twice has the same id; the guest's random seed derives from
/// it; a node of another [`crate::semantics::SEMANTICS_VERSION`] derives another id, so
/// it never passes off its result as this one's.
pub fn job_id(component: &Hash32, inputs_root: &Hash32, spec: &JobSpec) -> Hash32 {
    let mut e = Encoder::new("assay/job/v2");
    e.u32(crate::semantics::SEMANTICS_VERSION)
        .fixed32(&component.0)
        .fixed32(&inputs_root.0);
    spec.encode_into(&mut e);
    e.hash()
}
