//! What each fuzz target does with its bytes.
//!
//! `fuzz/` (cargo-fuzz, nightly, libFuzzer) drives these functions with
//! generated inputs: `scripts/fuzz.sh MINUTES` runs every target. The
//! inputs worth keeping live in this crate: `corpus/<target>/` (seeds and
//! what the fuzzer found interesting) and `regressions/<target>/` (every
//! input that once crashed a target, named after what it found).
//! `tests/replay.rs` runs all of them through the same functions on stable
//! Rust in the normal test suite, so a crash found once stays fixed.
//!
//! Each case panics only when it finds a bug: a decoder that accepts bytes
//! it would not write back, a header parser that hands out a range outside
//! its input, a coordinator handler that panics on a request.
//!
//! # Example
//!
//! ```
//! // Bytes that are no record at all are refused, not a panic.
//! assay_fuzz_cases::protocol_records(b"\xff\x00not a record");
//! ```

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use assay_coordinator::blobs::BlobStore;
use assay_coordinator::server::{Coordinator, ServerConfig};
use assay_coordinator::sqlite::Sqlite;
use assay_coordinator::{MarketConfig, SqlStore};
use assay_proto::auth::{Signed, Signer};
use assay_proto::pb;
use assay_protocol::NodeKey;
use prost::Message;
use tonic::Request;

/// What a target does with one input.
pub type Case = fn(&[u8]);

/// Every target: its name (a folder under `corpus/` and `regressions/`,
/// a file under `fuzz/fuzz_targets/`) and what it does with its bytes.
pub const TARGETS: &[(&str, Case)] = &[
    ("protocol_records", protocol_records),
    ("gguf_header", gguf_header),
    ("safetensors_header", safetensors_header),
    ("coordinator_request", coordinator_request),
    ("component_loader", component_loader),
    ("wit_host_surface", wit_host_surface),
];

/// The frozen formats a node reads back: a failure record
/// (`assay/failure/v1`) and a traced call. Whatever decodes must encode
/// back to the very same bytes (one record, one encoding).
pub fn protocol_records(data: &[u8]) {
    if let Ok(f) = assay_protocol::Failure::parse(data) {
        assert_eq!(
            f.to_canonical_json().as_bytes(),
            data,
            "a failure record parsed from bytes it does not write"
        );
    }
    if let Ok(call) = assay_protocol::trace::Call::decode(data) {
        assert_eq!(
            call.encode(),
            data,
            "a call decoded from bytes it does not encode"
        );
    }
}

/// A GGUF file's header and tensor table, as a guest reads a model input:
/// whatever parses names only bytes inside the input.
pub fn gguf_header(data: &[u8]) {
    let size = data.len() as u64;
    let Ok(g) = assay_guest::Gguf::parse("fuzz", data, size) else {
        return;
    };
    for (name, t) in g.iter() {
        let end = t.offset_in_input.checked_add(t.byte_len);
        assert!(
            end.is_some_and(|e| e <= size),
            "tensor {name:?} at {} + {} bytes lies outside the {size}-byte input",
            t.offset_in_input,
            t.byte_len
        );
        let _ = t.numel();
    }
    let _ = g.metadata().len();
}

/// A safetensors header (its first 8 bytes here are the input's claimed
/// size): whatever parses names only bytes inside the input.
pub fn safetensors_header(data: &[u8]) {
    let Some((size, header)) = data.split_first_chunk::<8>() else {
        return;
    };
    let size = u64::from_le_bytes(*size);
    let Ok(st) = assay_guest::SafeTensors::parse_header("fuzz", header, size) else {
        return;
    };
    for (name, t) in st.iter() {
        let (start, end) = t.data_offsets;
        assert!(start <= end, "tensor {name:?}: offsets {start} > {end}");
        let last = t.offset_in_input.checked_add(end - start);
        assert!(
            last.is_some_and(|l| l <= size),
            "tensor {name:?} ends past the {size}-byte input"
        );
        let _ = t.numel();
    }
}

/// Component bytes into the runtime's loader (wasmtime's parser,
/// validator and compiler behind the sandbox's engine settings); what
/// loads is run twice under small limits on the CPU, and the two runs
/// must agree on outcome, outputs root, fuel and work (the determinism
/// every receipt relies on).
pub fn component_loader(data: &[u8]) {
    static RUNTIME: OnceLock<assay_runtime::Runtime> = OnceLock::new();
    let rt = RUNTIME.get_or_init(|| {
        assay_runtime::Runtime::new(assay_runtime::RuntimeOptions {
            cache_dir: None,
            device: assay_host_gpu::Device::cpu_with_threads(1),
            key: NodeKey::from_seed([9; 32]),
        })
        .expect("runtime")
    });
    let Ok(component) = rt.load(data) else {
        return;
    };
    let spec = assay_protocol::JobSpec {
        fuel: 2_000_000,
        memory_bytes: 16 << 20,
        gpu_memory_bytes: 16 << 20,
        work_budget: 10_000_000,
        output_bytes: 1 << 20,
        log_bytes: 4 << 10,
        wall_clock_ms: 5_000,
        ..assay_protocol::JobSpec::default()
    };
    let run = || {
        rt.run(&component, Arc::new(assay_runtime::Inputs::new()), &spec)
            .map(|r| {
                let b = &r.receipt.body;
                (r.outcome, b.outputs_root, b.fuel_used, b.work)
            })
            .map_err(|e| e.to_string())
    };
    let (first, second) = (run(), run());
    if let (Ok(a), Ok(b)) = (&first, &second) {
        assert_eq!(a, b, "two runs of one component differ");
    }
}

/// A runtime and the `wit-fuzz` guest's component loaded in it: from
/// `ASSAY_WIT_FUZZ_WASM`, else where the guests' build puts it (`cargo
/// build -p assay-guests`).
fn wit_fuzz_guest() -> &'static (assay_runtime::Runtime, Arc<assay_runtime::LoadedComponent>) {
    static GUEST: OnceLock<(assay_runtime::Runtime, Arc<assay_runtime::LoadedComponent>)> =
        OnceLock::new();
    GUEST.get_or_init(|| {
            let path = std::env::var_os("ASSAY_WIT_FUZZ_WASM")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../target/guests/wasm32-wasip2/release/wit_fuzz.wasm")
                });
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "the wit-fuzz guest is not at {} ({e}): build it with `cargo build -p assay-guests` or set ASSAY_WIT_FUZZ_WASM",
                    path.display()
                )
            });
            let rt = assay_runtime::Runtime::new(assay_runtime::RuntimeOptions {
                cache_dir: None,
                device: assay_host_gpu::Device::cpu_with_threads(1),
                key: NodeKey::from_seed([9; 32]),
            })
            .expect("runtime");
            let component = rt.load(&bytes).expect("the wit-fuzz guest loads");
            (rt, component)
        })
}

/// The WIT host surface, through the `wit-fuzz` guest (`examples/wit-fuzz`):
/// the bytes are its input `program`, read as calls into every tensor op
/// and `job-io` call with arguments from the bytes. The guest breaks no
/// rule, so the run must never trap (the host refuses with an `error`
/// variant or ends the job at a limit), and two runs must agree on
/// outcome, outputs root, fuel and work.
pub fn wit_host_surface(data: &[u8]) {
    let (rt, component) = wit_fuzz_guest();
    let spec = assay_protocol::JobSpec {
        fuel: 50_000_000,
        memory_bytes: 64 << 20,
        gpu_memory_bytes: 4 << 20,
        work_budget: 20_000_000,
        output_bytes: 64 << 10,
        log_bytes: 4 << 10,
        wall_clock_ms: 10_000,
        ..assay_protocol::JobSpec::default()
    };
    let mut inputs = assay_runtime::Inputs::new();
    inputs.insert("program".into(), Arc::from(data));
    let inputs = Arc::new(inputs);
    let run = || {
        let r = rt
            .run(component, inputs.clone(), &spec)
            .unwrap_or_else(|e| panic!("the host failed a run of the wit-fuzz guest: {e}"));
        let b = &r.receipt.body;
        assert!(
            !matches!(
                r.outcome,
                assay_protocol::Outcome::Trap | assay_protocol::Outcome::GuestError
            ),
            "the wit-fuzz guest broke no rule but ended {:?}: {:?}",
            r.outcome,
            r.error
        );
        (r.outcome, b.outputs_root, b.fuel_used, b.work)
    };
    let (first, second) = (run(), run());
    assert_eq!(first, second, "two runs of one program differ");
}

/// One coordinator (SQLite in a temporary directory, the devnet faucet
/// on) for the whole process, and a runtime to call it on.
struct Node {
    runtime: tokio::runtime::Runtime,
    coordinator: Coordinator,
    signer: Signer,
    _dir: tempfile::TempDir,
}

fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqlStore::open(
            Sqlite::open(&dir.path().join("coordinator.db")).expect("sqlite"),
            MarketConfig::default(),
        )
        .expect("store");
        let id = assay_coordinator::store::Nonces::coordinator_id(&store);
        let blobs = BlobStore::open(&dir.path().join("blobs"), 1 << 20).expect("blobs");
        let cfg = ServerConfig {
            faucet: true,
            key_rate: None,
            ..ServerConfig::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let coordinator = {
            let _in = runtime.enter();
            Coordinator::new(Arc::new(store), Arc::new(blobs), cfg)
        };
        Node {
            runtime,
            coordinator,
            signer: Signer::new(NodeKey::from_seed([7; 32]), id),
            _dir: dir,
        }
    })
}

/// The rest of `data` as request `M`, changed by `prepare` (a long poll
/// cut to nothing), then signed for the coordinator when `sign` (so the
/// fuzzer reaches past the signature check).
fn request<M: Message + Default + Signed>(
    data: &[u8],
    sign: bool,
    prepare: impl FnOnce(&mut M),
) -> Option<M> {
    let mut m = M::decode(data).ok()?;
    prepare(&mut m);
    if sign {
        let _ = assay_proto::auth::sign(&node().signer, &mut m, assay_proto::now_ms(), 60_000);
    }
    Some(m)
}

fn unsigned<M: Message + Default>(data: &[u8]) -> Option<M> {
    M::decode(data).ok()
}

/// A gRPC request into the coordinator's handlers: the first byte picks
/// the method, the second whether the case signs it with a funded key, the
/// rest is the request's protobuf bytes. No request may panic a handler
/// (a panic here is a task that dies and a client left without an answer).
pub fn coordinator_request(data: &[u8]) {
    let [method, flags, rest @ ..] = data else {
        return;
    };
    let sign = flags & 1 == 1;
    let n = node();
    let c = &n.coordinator;
    n.runtime.block_on(async {
        use assay_proto::pb::arbitration_server::Arbitration as A;
        use assay_proto::pb::blobs_server::Blobs as B;
        use assay_proto::pb::clusters_server::Clusters as Cl;
        use assay_proto::pb::economy_server::Economy as E;
        use assay_proto::pb::provider_server::Provider as P;
        use assay_proto::pb::renter_server::Renter as R;
        use assay_proto::pb::verifier_server::Verifier as V;
        macro_rules! signed {
            ($t:ident, $f:path) => {
                signed!($t, $f, |_| {})
            };
            ($t:ident, $f:path, $prepare:expr) => {
                if let Some(m) = request::<pb::$t>(rest, sign, $prepare) {
                    let _ = $f(c, Request::new(m)).await;
                }
            };
        }
        macro_rules! open {
            ($t:ident, $f:path) => {
                if let Some(m) = unsigned::<pb::$t>(rest) {
                    let _ = $f(c, Request::new(m)).await;
                }
            };
        }
        let call = async {
            match method % 40 {
                0 => signed!(FaucetRequest, R::faucet),
                1 => signed!(StakeRequest, R::stake),
                2 => signed!(SubmitJobRequest, R::submit_job),
                // Long polls cut to nothing.
                3 => signed!(GetJobRequest, R::get_job, |m| m.wait_ms = 0),
                4 => open!(GetAccountRequest, R::get_account),
                5 => open!(ListJobsRequest, R::list_jobs),
                6 => open!(GetCoordinatorRequest, R::get_coordinator),
                7 => signed!(RegisterRequest, P::register),
                8 => signed!(HeartbeatRequest, P::heartbeat),
                9 => signed!(TakeLeasesRequest, P::take_leases, |m| m.wait_ms = 0),
                10 => signed!(SubmitReceiptRequest, P::submit_receipt),
                11 => signed!(ReturnLeaseRequest, P::return_lease),
                12 => signed!(RegisterVerifierRequest, V::register_verifier),
                13 => open!(ListReceiptsRequest, V::list_receipts),
                14 => open!(GetBeaconRequest, V::get_beacon),
                15 => signed!(TakeChecksRequest, V::take_checks),
                16 => signed!(SubmitVerdictRequest, V::submit_verdict),
                17 => signed!(ReturnCheckRequest, V::return_check),
                18 => open!(PostPriceRequest, E::post_price),
                19 => open!(GetPriceRequest, E::get_price),
                20 => open!(GetSupplyRequest, E::get_supply),
                21 => open!(ListRewardEpochsRequest, E::list_reward_epochs),
                22 => signed!(UnstakeRequest, E::unstake),
                23 => signed!(IssueNoteRequest, E::issue_note),
                24 => signed!(OfferSharesRequest, E::offer_shares),
                25 => signed!(BuySharesRequest, E::buy_shares),
                26 => signed!(TransferSharesRequest, E::transfer_shares),
                27 => open!(GetNoteRequest, E::get_note),
                28 => signed!(IssueBondRequest, E::issue_bond),
                29 => signed!(BuyBondRequest, E::buy_bond),
                30 => open!(GetBondRequest, E::get_bond),
                31 => signed!(CreateClusterRequest, Cl::create_cluster),
                32 => signed!(ExtendClusterRequest, Cl::extend_cluster),
                33 => signed!(ReleaseClusterRequest, Cl::release_cluster),
                34 => open!(GetClusterRequest, Cl::get_cluster),
                35 => open!(ListClustersRequest, Cl::list_clusters),
                36 => signed!(TakeQuestionsRequest, A::take_questions),
                37 => signed!(AnswerRequest, A::answer),
                38 => signed!(StatRequest, B::stat),
                _ => signed!(DownloadRequest, B::download),
            }
        };
        // A handler that waits (a long poll the case did not cut) is not a
        // crash; a bound keeps the fuzzer moving.
        let _ = tokio::time::timeout(Duration::from_secs(2), call).await;
    });
}
