//! Running one job: instantiate, run, classify the ending, sign the receipt.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use assay_host_gpu::{Device, Session, SessionLimits};
use assay_protocol::{
    BackendDescriptor, Failure, Hash32, JobSpec, NodeKey, Outcome, Receipt, ReceiptBody,
    SEMANTICS_VERSION, WorkDone, inputs_root, job_id, outputs_root,
};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::JobPre;
use crate::cache::{CacheHit, DiskCache, MemoryCache};
use crate::ctx::{GpuCtx, GpuCtxView, GpuView, Inputs};
use crate::limits::GuestLimits;
use crate::outcome::{Ended, classify};
use crate::trace::{RangeHashes, Recorder, RunTrace, TraceOptions};
use crate::wasi::deterministic_ctx;
use crate::{Error, FaultKind};

/// Everything in a store.
pub(crate) struct JobState {
    wasi: WasiCtx,
    table: ResourceTable,
    gpu: GpuCtx,
    limits: GuestLimits,
}

impl WasiView for JobState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl GpuView for JobState {
    fn gpu(&mut self) -> GpuCtxView<'_> {
        GpuCtxView {
            ctx: &mut self.gpu,
            table: &mut self.table,
        }
    }
}

/// A component compiled and linked, ready to instantiate.
pub struct LoadedComponent {
    hash: Hash32,
    pre: JobPre<JobState>,
    hit: CacheHit,
}

impl fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("hash", &self.hash)
            .field("hit", &self.hit)
            .finish()
    }
}

impl LoadedComponent {
    /// blake3 of the component's bytes.
    pub fn hash(&self) -> Hash32 {
        self.hash
    }

    /// Where this load came from.
    pub fn cache_hit(&self) -> CacheHit {
        self.hit
    }
}

/// How to set up a [`Runtime`].
#[derive(Debug)]
pub struct RuntimeOptions {
    /// Where compiled components are cached (none: compile every process).
    pub cache_dir: Option<PathBuf>,
    /// The device tensor ops run on.
    pub device: Device,
    /// The key receipts are signed with.
    pub key: NodeKey,
}

/// What one run produced: a deterministic result with its signed receipt.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The job id ([`assay_protocol::job_id`]).
    pub job_id: Hash32,
    /// How it ended.
    pub outcome: Outcome,
    /// The outputs: what the guest wrote on success; otherwise one output
    /// `error` holding the failure record's canonical JSON.
    pub outputs: BTreeMap<String, Vec<u8>>,
    /// The failure record (hashed, as the `error` output), if the run failed.
    pub failure: Option<Failure>,
    /// What went wrong, for people (never hashed: kept beside the result),
    /// if the run failed: the host's message, wasmtime's trap text and the
    /// tail of the guest's stderr, or the guest's own error.
    pub error: Option<String>,
    /// The receipt, signed by this node.
    pub receipt: Receipt,
    /// Captured stdout (capped; not part of the outputs root).
    pub stdout: Vec<u8>,
    /// Captured stderr (capped; not part of the outputs root).
    pub stderr: Vec<u8>,
    /// The guest's `log` lines (capped; not part of the outputs root).
    pub log: String,
    /// Wall time of instantiate + run.
    pub elapsed: std::time::Duration,
    /// Where the device time went, per tensor op (wall clock; the rest of
    /// `elapsed` is the guest's own code, host calls and instantiation).
    pub op_times: BTreeMap<&'static str, assay_host_gpu::OpTime>,
    /// The run's trace (its root is the receipt's `trace_root`): kept so
    /// this node can answer reveals in a dispute.
    pub trace: RunTrace,
}

/// The sandbox: one engine, one linker, one device, a component cache and a node key.
pub struct Runtime {
    engine: Engine,
    linker: Linker<JobState>,
    device: Device,
    disk: Option<DiskCache>,
    loaded: MemoryCache<LoadedComponent>,
    key: NodeKey,
    input_hashes: InputHashes,
    range_hashes: Arc<RangeHashes>,
    /// The last receipt's `finished_at_ms`: each later one is later still.
    last_finished_ms: std::sync::atomic::AtomicU64,
}

/// The blake3 of input buffers this runtime hashed lately, so a daemon that
/// hands the same `Arc` (a model) to job after job hashes it once. An entry
/// holds a `Weak` to the buffer: while the buffer is alive its address is
/// its identity and its bytes cannot change (`Arc::get_mut` is refused while
/// a `Weak` exists); once it is dropped the entry no longer matches.
#[derive(Default)]
struct InputHashes(std::sync::Mutex<Vec<(std::sync::Weak<[u8]>, Hash32)>>);

impl InputHashes {
    const KEPT: usize = 64;

    fn of(&self, bytes: &Arc<[u8]>) -> Hash32 {
        // Small buffers are cheaper to hash than to look up.
        if bytes.len() < 64 << 10 {
            return Hash32::of(bytes);
        }
        let same = |w: &std::sync::Weak<[u8]>| {
            std::ptr::eq(w.as_ptr().cast::<u8>(), Arc::as_ptr(bytes).cast::<u8>())
                && w.strong_count() > 0
        };
        if let Ok(memo) = self.0.lock()
            && let Some((_, h)) = memo.iter().find(|(w, _)| same(w))
        {
            return *h;
        }
        let h = Hash32::of(bytes);
        if let Ok(mut memo) = self.0.lock() {
            memo.retain(|(w, _)| w.strong_count() > 0);
            if memo.len() >= Self::KEPT {
                memo.remove(0);
            }
            memo.push((Arc::downgrade(bytes), h));
        }
        h
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("device", &self.device.info())
            .field("node", &self.key.id())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime on the process-wide engine.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] if the engine can't be built; [`Error::Cache`] if the
    /// cache directory can't be created.
    pub fn new(options: RuntimeOptions) -> Result<Runtime, Error> {
        let engine = crate::engine::shared()?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::Engine(format!("linking WASI: {e}")))?;
        crate::host::add_to_linker(&mut linker)
            .map_err(|e| Error::Engine(format!("linking assay:gpu: {e}")))?;
        let disk = match &options.cache_dir {
            Some(dir) => Some(DiskCache::open(dir, &engine)?),
            None => None,
        };
        Ok(Runtime {
            engine,
            linker,
            device: options.device,
            disk,
            loaded: MemoryCache::default(),
            key: options.key,
            input_hashes: InputHashes::default(),
            range_hashes: Arc::default(),
            last_finished_ms: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Now, for a receipt's `finished_at_ms`, but after every earlier
    /// receipt of this runtime: two runs of identical work (two market jobs
    /// of one content) finishing in the same millisecond would otherwise
    /// sign byte-identical receipts, one receipt for two leases.
    fn finished_now(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let now = unix_ms();
        let mut prev = self.last_finished_ms.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev.saturating_add(1));
            match self.last_finished_ms.compare_exchange_weak(
                prev,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => prev = seen,
            }
        }
    }

    /// This node's identity.
    pub fn node_key(&self) -> &NodeKey {
        &self.key
    }

    /// The device ops run on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Compiles (or fetches from the caches) and links a component.
    ///
    /// # Errors
    ///
    /// [`Error::BadComponent`] if the bytes are not a component for the
    /// `assay:gpu/job` world, with a message saying what to do.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedComponent>, Error> {
        self.load_hashed(Hash32::of(bytes), bytes)
    }

    /// [`Runtime::load`] of bytes whose BLAKE3 hash the caller already
    /// checked (a blob cache did): a component already loaded is then
    /// found without hashing its megabytes again for every job.
    ///
    /// # Errors
    ///
    /// As [`Runtime::load`].
    pub fn load_hashed(&self, hash: Hash32, bytes: &[u8]) -> Result<Arc<LoadedComponent>, Error> {
        if let Some(c) = self.loaded.get(&hash) {
            return Ok(Arc::new(LoadedComponent {
                hash,
                pre: c.pre.clone(),
                hit: CacheHit::Memory,
            }));
        }
        let (component, hit) = match &self.disk {
            Some(disk) => disk.load_or_compile(&self.engine, &hash, bytes)?,
            None => (
                crate::cache::compile(&self.engine, bytes)?,
                CacheHit::Compiled,
            ),
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(JobPre::new)
            .map_err(|e| {
                Error::BadComponent(format!(
                    "this component is not an Assay job: it must target the `assay:gpu/job` world \
                     (export `run: func() -> result<_, string>`, import only assay:gpu and WASI 0.2) \
                     — write it with the assay-guest SDK. Details: {e}"
                ))
            })?;
        let loaded = Arc::new(LoadedComponent { hash, pre, hit });
        self.loaded.insert(hash, loaded.clone());
        Ok(loaded)
    }

    /// Runs `component` on `inputs` under `spec`.
    ///
    /// Every deterministic ending — success, guest error, trap, fuel, work
    /// budget, memory cap, GPU quota, output cap — is an `Ok` report with a
    /// signed receipt.
    ///
    /// # Errors
    ///
    /// [`Error::ProviderFault`] when the ending says something about this
    /// machine instead (watchdog, device failure, no free instance slot):
    /// no receipt, the job should run elsewhere.
    pub fn run(
        &self,
        component: &LoadedComponent,
        inputs: Arc<Inputs>,
        spec: &JobSpec,
    ) -> Result<RunReport, Error> {
        self.run_with(component, inputs, spec, &TraceOptions::default())
    }

    /// [`Runtime::run`], recording the trace as `trace` says (keeping some
    /// steps' output tensors, or — to measure its cost — not at all).
    ///
    /// # Errors
    ///
    /// As [`Runtime::run`].
    pub fn run_with(
        &self,
        component: &LoadedComponent,
        inputs: Arc<Inputs>,
        spec: &JobSpec,
        trace: &TraceOptions,
    ) -> Result<RunReport, Error> {
        let input_hashes: Vec<(String, u64, Hash32)> = inputs
            .iter()
            .map(|(n, b)| (n.clone(), b.len() as u64, self.input_hashes.of(b)))
            .collect();
        let inputs_root = inputs_root(input_hashes.iter().map(|(n, s, h)| (n.as_str(), *s, h)));
        let job_id = job_id(&component.hash, &inputs_root, spec);
        let started_at_ms = unix_ms();
        let start = Instant::now();

        let (wasi, captured) = deterministic_ctx(&job_id, spec);
        let session = Session::new(
            self.device.clone(),
            SessionLimits {
                memory_quota: spec.gpu_memory_bytes,
                work_budget: spec.work_budget,
                ..SessionLimits::default()
            },
        );
        let params = Arc::new(spec.params.clone());
        let mut gpu = GpuCtx::new(
            session,
            inputs,
            input_hashes
                .iter()
                .map(|(n, _, h)| (n.clone(), *h))
                .collect(),
            params,
            spec,
        );
        gpu.trace = Recorder::new(trace, self.range_hashes.clone());
        let state = JobState {
            wasi,
            table: ResourceTable::new(),
            gpu,
            limits: GuestLimits {
                memory_bytes: spec.memory_bytes.min(crate::engine::MAX_GUEST_MEMORY),
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store
            .set_fuel(spec.fuel)
            .map_err(|e| internal(format!("setting fuel: {e}")))?;
        store.set_epoch_deadline(crate::engine::watchdog_ticks(spec.wall_clock_ms));
        store.epoch_deadline_trap();

        let result = component
            .pre
            .instantiate(&mut store)
            .and_then(|job| job.call_run(&mut store));
        let elapsed = start.elapsed();
        let fuel_used = spec.fuel - store.get_fuel().unwrap_or(0);

        let mut state = store.into_data();
        let trace: RunTrace = std::mem::replace(&mut state.gpu.trace, Recorder::off()).finish();
        let Ended {
            outcome,
            failure,
            message,
        } = classify(result, &state.gpu, &captured)?;
        let outputs = match &failure {
            None => state.gpu.outputs,
            Some(record) => {
                BTreeMap::from([("error".to_string(), record.to_canonical_json().into_bytes())])
            }
        };
        let root = outputs_root(outputs.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
        // What the guest wrote to stdout and stderr was copied into the
        // host: work, counted once the run is over.
        state.gpu.session.add_copied_after_run(
            (captured.stdout.contents().len() + captured.stderr.contents().len()) as u64,
        );
        let work = state.gpu.session.work();
        let info = self.device.info();
        let receipt = ReceiptBody {
            semantics: SEMANTICS_VERSION,
            job_id,
            shard: spec.shard,
            provider_id: self.key.id(),
            component_hash: component.hash,
            inputs_root,
            outputs_root: root,
            trace_root: trace.root,
            outcome,
            fuel_used,
            work: WorkDone {
                flops: work.flops,
                bytes: work.bytes,
            },
            backend: BackendDescriptor {
                kind: info.kind,
                device: info.device,
            },
            telemetry: None,
            started_at_ms,
            finished_at_ms: self.finished_now(),
        }
        .sign(&self.key)?;
        Ok(RunReport {
            job_id,
            outcome,
            outputs,
            failure,
            error: message,
            receipt,
            stdout: captured.stdout.contents().to_vec(),
            stderr: captured.stderr.contents().to_vec(),
            log: state.gpu.log,
            elapsed,
            op_times: state.gpu.session.op_times().clone(),
            trace,
        })
    }
}

fn internal(message: String) -> Error {
    Error::ProviderFault {
        kind: FaultKind::Internal,
        message,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_input_hash_is_only_reused_for_the_same_live_buffer() {
        let memo = InputHashes::default();
        let a: Arc<[u8]> = vec![1u8; 1 << 20].into();
        assert_eq!(memo.of(&a), Hash32::of(&a));
        assert_eq!(memo.of(&a.clone()), Hash32::of(&a), "the same buffer");
        // Equal length, other bytes, other buffer: hashed for itself.
        let b: Arc<[u8]> = vec![2u8; 1 << 20].into();
        assert_eq!(memo.of(&b), Hash32::of(&b));
        // A buffer freed and a new one made: never confused with the old.
        drop(a);
        let c: Arc<[u8]> = vec![3u8; 1 << 20].into();
        assert_eq!(memo.of(&c), Hash32::of(&c));
        let small: Arc<[u8]> = vec![4u8; 10].into();
        assert_eq!(memo.of(&small), Hash32::of(&small));
    }
}
