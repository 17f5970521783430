//! The network end to end, as users run it: a coordinator and providers as
//! separate `assay` processes on loopback, renters using the CLI (and, for
//! the refusal tests, raw gRPC calls). Short lease, heartbeat and settlement
//! times keep every test to seconds; every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_guests::Guest;
use assay_proto::auth::Signer;
use assay_proto::pb;
use assay_proto::pb::provider_client::ProviderClient;
use assay_proto::pb::renter_client::RenterClient;
use assay_protocol::market::{billable_units, cost};
use assay_protocol::{Hash32, NodeKey, Receipt, results_root};

use crate::common::*;

/// What a settled shard must have paid: (payment, fee).
fn expected_pay(receipt: &Receipt, price: u64, escrow: u64) -> (u64, u64) {
    let units = billable_units(receipt.body.fuel_used, &receipt.body.work);
    let payment = cost(price, units).expect("cost").min(escrow);
    (payment, payment * 200 / 10_000)
}

#[test]
fn two_providers_run_matmul_in_two_shards_and_the_ledger_balances_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &[]);
    let renter = root.join("renter");
    let (id0, id1) = (
        node_id(&root.join("p0"), &url),
        node_id(&root.join("p1"), &url),
    );
    let _p0 = provider(&url, &root.join("p0"), 10, 1);
    let _p1 = provider(&url, &root.join("p1"), 10, 1);
    wait_registered(&renter, &url, &id0);
    wait_registered(&renter, &url, &id1);
    let (component, a, b) = matmul_inputs(root);
    let component = component.to_string_lossy().to_string();

    ok(assay(&renter, &url, &["faucet", "--amount", "5000000"]));
    let mut args = vec![
        "publish", &component, "--input", &a, "--input", &b, "--shards", "2",
    ];
    args.extend([
        "--max-price",
        "100",
        "--wait",
        "--json",
        "--wait-timeout-s",
        "60",
    ]);
    args.extend(LIMITS);
    let published = json(&ok(assay(&renter, &url, &args)));
    assert!(published["uploaded_bytes"].as_u64().expect("uploaded") > 0);
    let job = published["job_id"].as_str().expect("job id").to_string();
    let shards = published["shards"].as_array().expect("shards").clone();
    assert_eq!(shards.len(), 2);

    // Each shard's outputs root is what a local `assay run` of that shard gives.
    let mut roots = Vec::new();
    let mut providers = std::collections::BTreeSet::new();
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(s["outcome"], "success", "{s:#}");
        let shard = format!("{i}/2");
        let mut run = vec![
            "run", &component, "--input", &a, "--input", &b, "--shard", &shard, "--json",
        ];
        run.extend(LIMITS);
        let local = json(&ok(assay(&root.join("local"), &url, &run)));
        assert_eq!(s["outputs_root"], local["outputs_root"], "shard {i}");
        assert_eq!(s["shard_job_id"], local["job_id"], "shard {i}");
        roots.push(
            s["outputs_root"]
                .as_str()
                .expect("root")
                .parse::<Hash32>()
                .expect("hash"),
        );
        providers.insert(s["provider"].as_str().expect("provider").to_string());
    }
    assert_eq!(providers.len(), 2, "one shard on each provider");
    assert_eq!(
        published["result_root"].as_str(),
        Some(results_root(&roots).to_hex().as_str())
    );

    // Settlement: exactly price × units per shard, fee 2 %, the rest refunded.
    let settled = wait_job(&renter, &url, &job, 30, |s| s["state"] == "settled");
    let escrow_total = settled["escrow"].as_u64().expect("escrow");
    let per_shard = escrow_total / 2;
    assert_eq!(
        per_shard,
        100 * 200,
        "100 µIOSD/Munit × (1e8 fuel + 1e8 work) / 1e6"
    );
    let mut spent = 0;
    let mut earned: std::collections::BTreeMap<String, u64> = Default::default();
    let mut fees = 0;
    for s in settled["shards"].as_array().expect("shards") {
        let receipt: Receipt = serde_json::from_value(s["receipt"].clone()).expect("receipt");
        receipt.verify().expect("signed receipt");
        let (payment, fee) = expected_pay(&receipt, 10, per_shard);
        assert_eq!(s["paid"].as_u64(), Some(payment));
        spent += payment;
        fees += fee;
        *earned
            .entry(s["provider"].as_str().expect("p").to_string())
            .or_default() += payment - fee;
    }
    assert_eq!(
        account(&renter, &url, None)["balance"].as_u64(),
        Some(5_000_000 - spent)
    );
    for (p, e) in &earned {
        assert_eq!(
            account(&renter, &url, Some(p))["earnings"].as_u64(),
            Some(*e),
            "provider {p}"
        );
    }
    let _ = fees;
    ok(assay(&renter, &url, &["ledger", "verify"]));
    let offline = ok(assay(
        &renter,
        &url,
        &[
            "ledger",
            "verify",
            "--data-dir",
            &root.join("coordinator").to_string_lossy(),
        ],
    ));
    assert!(String::from_utf8_lossy(&offline.stdout).contains("ledger OK"));

    // Outputs come back concatenated in shard order.
    let out = root.join("out");
    ok(assay(
        &renter,
        &url,
        &["job", "outputs", &job, "--out", &out.to_string_lossy()],
    ));
    let c0 = std::fs::read(out.join(".assay/shard-0/c")).expect("shard 0 output");
    let joined = std::fs::read(out.join("c")).expect("joined");
    assert_eq!(joined.len(), 2 * c0.len());

    // Content addressing: the same blobs again upload nothing.
    let mut again = vec![
        "publish",
        &component,
        "--input",
        &a,
        "--input",
        &b,
        "--max-price",
        "100",
        "--json",
    ];
    again.extend(LIMITS);
    let second = json(&ok(assay(&renter, &url, &again)));
    assert_eq!(second["uploaded_bytes"].as_u64(), Some(0));

    // Tampering with one ledger entry in the database is caught, offline and online.
    use assay_coordinator::sql::Backend;
    let db = assay_coordinator::sqlite::Sqlite::open(&root.join("coordinator/coordinator.db"))
        .expect("db");
    db.write(&mut |c| c.exec("UPDATE ledger SET amount = amount + 1 WHERE seq = 2", &[]))
        .expect("tamper");
    let offline = assay(
        &renter,
        &url,
        &[
            "ledger",
            "verify",
            "--data-dir",
            &root.join("coordinator").to_string_lossy(),
        ],
    );
    assert_eq!(offline.status.code(), Some(1));
    let text = String::from_utf8_lossy(&offline.stdout);
    assert!(
        text.contains("BROKEN") && text.contains("entry 2"),
        "{text}"
    );
    let online = assay(&renter, &url, &["ledger", "verify"]);
    assert_eq!(online.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&online.stdout).contains("entry 2"));
}

#[test]
fn devnet_runs_the_demo_end_to_end() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = Command::new(BIN)
        .args([
            "devnet",
            "--demo",
            "--exit-after-demo",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--dir")
        .arg(tmp.path())
        .env("ASSAY_HOME", tmp.path())
        .output()
        .expect("devnet");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Which providers take the two shards depends on who polls first: one
    // provider may run both. The demo must finish all shards either way.
    assert!(text.contains("done         2/2 shards on "), "{text}");
    assert!(
        text.contains("settled      2/2 shards paid; checks: 2 verified"),
        "the devnet's verifiers check both shards: {text}"
    );
    assert!(text.contains("ledger OK"), "{text}");
}

/// A job that burns `fuel` in a loop (≈ 0.3 ns per unit here): long enough
/// to be killed in the middle of.
fn spin_job(dir: &Path) -> String {
    let component = dir.join("hostile.wasm");
    std::fs::write(&component, Guest::Hostile.bytes()).expect("component");
    component.to_string_lossy().to_string()
}

fn publish_spin(renter: &Path, url: &str, component: &str, fuel: &str) -> String {
    let out = ok(assay(
        renter,
        url,
        &[
            "publish",
            component,
            "--param",
            "mode=infinite-loop",
            "--fuel",
            fuel,
            "--work-budget",
            "1000",
            "--max-price",
            "10",
            "--json",
        ],
    ));
    json(&out)["job_id"].as_str().expect("job").to_string()
}

#[test]
fn a_provider_killed_mid_job_loses_the_lease_and_another_completes_it_paid_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &[]);
    let renter = root.join("renter");
    ok(assay(&renter, &url, &["faucet"]));
    let component = spin_job(root);
    let victim_id = node_id(&root.join("victim"), &url);
    let rescuer = root.join("rescuer");
    let rescuer_id = node_id(&rescuer, &url);
    let mut victim = provider(&url, &root.join("victim"), 10, 1);
    wait_registered(&renter, &url, &victim_id);
    let job = publish_spin(&renter, &url, &component, "6000000000");
    wait_job(&renter, &url, &job, 30, |s| {
        s["shards"][0]["state"] == "leased"
    });
    std::thread::sleep(Duration::from_millis(300));
    victim.0.kill().expect("kill -9");
    let _ = victim.0.wait();

    let _r = provider(&url, &rescuer, 10, 1);
    let s = wait_job(&renter, &url, &job, 60, |s| s["state"] == "settled");
    let shard = &s["shards"][0];
    assert_eq!(shard["attempts"].as_u64(), Some(2), "{s:#}");
    assert_eq!(shard["provider"].as_str(), Some(rescuer_id.as_str()));
    assert_eq!(shard["outcome"], "fuel-exhausted");
    let receipt: Receipt = serde_json::from_value(shard["receipt"].clone()).expect("receipt");
    let (payment, fee) = expected_pay(&receipt, 10, s["escrow"].as_u64().expect("escrow"));
    assert!(payment > 0);
    assert_eq!(
        account(&renter, &url, Some(&rescuer_id))["earnings"].as_u64(),
        Some(payment - fee)
    );
    assert_eq!(
        account(&renter, &url, Some(&victim_id))["earnings"].as_u64(),
        Some(0),
        "the killed provider is paid nothing"
    );
    assert_eq!(
        account(&renter, &url, None)["balance"].as_u64(),
        Some(1_000_000_000 - payment)
    );
    ok(assay(&renter, &url, &["ledger", "verify"]));
}

fn restart_mid_flight(extra: &[&str]) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let data = root.join("coordinator");
    let mut args = vec!["--lease-ttl-ms", "10000"];
    args.extend(extra);
    let (c, url) = coordinator(&data, "127.0.0.1:0", &args);
    let listen = url.trim_start_matches("http://").to_string();
    let renter = root.join("renter");
    ok(assay(&renter, &url, &["faucet"]));
    let _p = provider(&url, &root.join("p"), 10, 1);
    let component = spin_job(root);
    let job = publish_spin(&renter, &url, &component, "3000000000");
    wait_job(&renter, &url, &job, 30, |s| {
        s["shards"][0]["state"] == "leased"
    });
    drop(c); // kill -9 while the provider runs the job
    std::thread::sleep(Duration::from_millis(500));
    let (_c, url2) = coordinator(&data, &listen, &args);
    assert_eq!(url, url2);
    // The provider's receipt goes through once the coordinator is back.
    let s = wait_job(&renter, &url, &job, 60, |s| s["state"] == "settled");
    assert_eq!(
        s["shards"][0]["attempts"].as_u64(),
        Some(1),
        "the lease survived the restart: {s:#}"
    );
    assert_eq!(s["shards"][0]["outcome"], "fuel-exhausted");
    // The failure's message for people travels beside the result: whole in
    // --json, its first line in the human view, in .assay/error.txt.
    let fuel_message = "fuel exhausted: the guest used all the fuel of its spec";
    assert_eq!(s["shards"][0]["message"], fuel_message, "{s:#}");
    let human = ok(assay(&renter, &url, &["job", "status", &job]));
    let human = String::from_utf8_lossy(&human.stdout).to_string();
    assert!(
        human.contains(&format!("message: {fuel_message}")),
        "{human}"
    );
    // The blobs and the ledger survived too.
    let out = root.join("out");
    ok(assay(
        &renter,
        &url,
        &["job", "outputs", &job, "--out", &out.to_string_lossy()],
    ));
    // `error` is the hashed failure record; the message is never in it.
    let record = std::fs::read_to_string(out.join("error")).expect("error output");
    assert_eq!(record, r#"{"kind":"fuel-exhausted","version":1}"#);
    let message = std::fs::read_to_string(out.join(".assay/error.txt")).expect("error.txt");
    assert_eq!(message, fuel_message);
    let shard_message =
        std::fs::read_to_string(out.join(".assay/shard-0/error.txt")).expect("shard error.txt");
    assert_eq!(shard_message, fuel_message);
    let v = ok(assay(&renter, &url, &["ledger", "verify"]));
    let text = String::from_utf8_lossy(&v.stdout).to_string();
    // Genesis (four allocations, the reward pool), the renter's IOSD (a
    // burn and a mint), escrow, provider IO faucet + stake, pay, fee. No
    // refund: the guest's log line is work (semantics 2), so the pay rounds
    // up to the whole escrow of fuel + 1,000 work units.
    assert!(text.contains("ledger OK    12 entries"), "{text}");
}

#[test]
fn a_coordinator_restarted_mid_flight_loses_nothing_sqlite() {
    restart_mid_flight(&[]);
}

#[test]
fn a_coordinator_restarted_mid_flight_loses_nothing_postgres() {
    let Ok(url) = std::env::var("ASSAY_TEST_POSTGRES_URL") else {
        assert_ne!(
            std::env::var("ASSAY_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "ASSAY_REQUIRE_POSTGRES=1 but ASSAY_TEST_POSTGRES_URL is not set"
        );
        eprintln!(
            "SKIPPED the PostgreSQL restart test: set ASSAY_TEST_POSTGRES_URL (see scripts/ci-postgres.sh)"
        );
        return;
    };
    // A schema of its own, so parallel tests and old runs do not mix.
    let schema = format!(
        "e2e_{}_{}",
        std::process::id(),
        assay_proto::now_ms() % 1_000_000
    );
    let pg = assay_coordinator::postgres::Postgres::open(&url, Some(&schema)).expect("postgres");
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    restart_mid_flight(&["--database", &db]);
    let _ = pg.drop_schema();
}

pub(super) fn signed<M: assay_proto::auth::Signed>(key: &Signer, mut m: M) -> M {
    assay_proto::auth::sign(key, &mut m, assay_proto::now_ms(), 60_000).expect("sign");
    m
}

/// A signed registration of a one-core machine at price 1 with one slot.
pub(super) fn registration(key: &Signer) -> pb::RegisterRequest {
    signed(
        key,
        pb::RegisterRequest {
            hardware: Some(pb::Hardware {
                cpu_cores: 1,
                memory_bytes: 1 << 40,
                gpus: vec![],
            }),
            price: 1,
            slots: 1,
            version: "test".into(),
            ..Default::default()
        },
    )
}

/// Gives `lease` back (nobody's fault).
pub(super) async fn give_back(
    pc: &mut ProviderClient<tonic::transport::Channel>,
    key: &Signer,
    lease: &pb::Lease,
) {
    pc.return_lease(signed(
        key,
        pb::ReturnLeaseRequest {
            lease_id: lease.lease_id.clone(),
            reason: "the test only looked".into(),
            ..Default::default()
        },
    ))
    .await
    .expect("give back");
}

/// Long-polls `job` as its renter until done, with its outputs' bytes.
pub(super) async fn done_with_outputs(
    rc: &mut RenterClient<tonic::transport::Channel>,
    renter: &Signer,
    job: &[u8],
) -> pb::JobStatus {
    let started = Instant::now();
    let mut seen = String::new();
    loop {
        let status = rc
            .get_job(signed(
                renter,
                pb::GetJobRequest {
                    job_id: job.to_vec(),
                    wait_ms: 5_000,
                    seen_state: std::mem::take(&mut seen),
                    inline_outputs_max_bytes: 64 << 10,
                    auth: None,
                },
            ))
            .await
            .expect("the renter's status")
            .into_inner();
        if status.state == "done" || status.state == "settled" {
            return status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{status:?}");
        seen = status.state;
    }
}

/// At most one lease for `key`, at once.
pub(super) async fn take_one(
    pc: &mut ProviderClient<tonic::transport::Channel>,
    key: &Signer,
) -> Vec<pb::Lease> {
    pc.take_leases(signed(
        key,
        pb::TakeLeasesRequest {
            max: 1,
            ..Default::default()
        },
    ))
    .await
    .expect("lease")
    .into_inner()
    .leases
}

#[test]
fn bad_requests_are_refused_with_clear_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url) = coordinator(
        &root.join("coordinator"),
        "127.0.0.1:0",
        &["--max-blob-bytes", "64KiB"],
    );
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let ch = assay_proto::client::channel(&url).expect("channel");
        let (renter, p1, p2) = (
            signer(&url, NodeKey::from_seed([1; 32])),
            signer(&url, NodeKey::from_seed([2; 32])),
            signer(&url, NodeKey::from_seed([3; 32])),
        );
        let mut rc = RenterClient::new(ch.clone());
        let mut pc = ProviderClient::new(ch.clone());

        // A request signed by another key than the node it names.
        let mut forged = signed(
            &p2,
            pb::FaucetRequest {
                unit: String::new(),
                auth: None,
                amount: 1,
            },
        );
        if let Some(a) = forged.auth.as_mut() {
            a.node_id = renter.id().0.to_vec();
        }
        let e = rc.faucet(forged).await.expect_err("wrong key");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(e.message().contains("bad signature"), "{}", e.message());

        // A replayed request.
        let once = signed(
            &renter,
            pb::FaucetRequest {
                unit: String::new(),
                auth: None,
                amount: 10_000_000,
            },
        );
        rc.faucet(once.clone()).await.expect("first");
        let e = rc.faucet(once).await.expect_err("replay");
        assert_eq!(e.code(), tonic::Code::AlreadyExists);
        assert!(e.message().contains("replayed"), "{}", e.message());

        // An expired request.
        let mut old = pb::FaucetRequest {
            unit: String::new(),
            auth: None,
            amount: 1,
        };
        assay_proto::auth::sign_with(&renter, &mut old, 77, assay_proto::now_ms() - 1);
        let e = rc.faucet(old).await.expect_err("expired");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(e.message().contains("expired"), "{}", e.message());

        // An oversized blob, and a blob whose bytes do not match its hash.
        let big: Arc<[u8]> = vec![7u8; 100 << 10].into();
        let e = assay_proto::client::upload(&ch, &renter, big)
            .await
            .expect_err("too big");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e}");
        assert!(e.to_string().contains("limit"), "{e}");
        let bytes: Arc<[u8]> = b"some bytes".to_vec().into();
        let e =
            assay_proto::client::upload_declared(&ch, &renter, bytes, Hash32::of(b"other bytes"))
                .await
                .expect_err("mismatch");
        assert_eq!(e.code(), tonic::Code::DataLoss, "{e}");
        assert!(e.to_string().contains("hash mismatch"), "{e}");

        // A job, leased to p1.
        let component: Arc<[u8]> = Guest::Matmul.bytes().to_vec().into();
        assay_proto::client::upload(&ch, &renter, component.clone())
            .await
            .expect("upload");
        let spec = assay_protocol::JobSpec {
            fuel: 1_000,
            work_budget: 1_000,
            ..Default::default()
        };
        rc.submit_job(signed(
            &renter,
            pb::SubmitJobRequest {
                inline_blobs: Vec::new(),
                pay_in: String::new(),
                unverified: true,
                verify_rate_ppm: 0,
                auth: None,
                component_hash: Hash32::of(&component).0.to_vec(),
                component_size: component.len() as u64,
                inputs: vec![],
                spec: Some(pb::JobSpec::from(&spec)),
                shards: 1,
                max_price: 10,
                requirements: None,
                split_inputs: vec![],
                cluster_id: vec![],
            },
        ))
        .await
        .expect("job");
        pc.register(registration(&p1)).await.expect("p1");
        pc.register(registration(&p2)).await.expect("p2");
        let leases = take_one(&mut pc, &p1).await;
        assert_eq!(leases.len(), 1);

        // p2 submits a receipt for p1's lease, and for no lease at all.
        let body = assay_protocol::ReceiptBody {
            semantics: assay_protocol::SEMANTICS_VERSION,
            job_id: Hash32::of(b"x"),
            shard: Default::default(),
            provider_id: p2.id(),
            component_hash: Hash32::of(&component),
            inputs_root: Hash32::of(b"y"),
            outputs_root: assay_protocol::outputs_root(Vec::<(&str, &[u8])>::new()),
            trace_root: assay_protocol::Hash32::ZERO,
            outcome: assay_protocol::Outcome::Success,
            fuel_used: 1,
            work: Default::default(),
            backend: Default::default(),
            telemetry: None,
            started_at_ms: 0,
            finished_at_ms: 0,
        };
        let receipt = body.sign(p2.key()).expect("sign");
        let submit = |lease: Vec<u8>| {
            signed(
                &p2,
                pb::SubmitReceiptRequest {
                    inline_outputs: Vec::new(),
                    auth: None,
                    lease_id: lease,
                    receipt: Some(pb::Receipt::from(&receipt)),
                    outputs: vec![],
                    failure_message: String::new(),
                },
            )
        };
        let e = pc
            .submit_receipt(submit(leases[0].lease_id.clone()))
            .await
            .expect_err("not p2's lease");
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(
            e.message().contains("is held by provider"),
            "{}",
            e.message()
        );
        let e = pc
            .submit_receipt(submit(vec![9; 32]))
            .await
            .expect_err("no lease");
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert!(e.message().contains("no lease"), "{}", e.message());
        let long = signed(
            &p2,
            pb::SubmitReceiptRequest {
                inline_outputs: Vec::new(),
                auth: None,
                lease_id: leases[0].lease_id.clone(),
                receipt: Some(pb::Receipt::from(&receipt)),
                outputs: vec![],
                failure_message: "x".repeat(assay_proto::FAILURE_MESSAGE_MAX_BYTES + 1),
            },
        );
        let e = pc
            .submit_receipt(long)
            .await
            .expect_err("a failure message longer than is kept");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("failure message"), "{}", e.message());
    });

    // Through the CLI: a renter without credits is told what to do.
    let (component, a, b) = matmul_inputs(root);
    let out = assay(
        &root.join("poor"),
        &url,
        &[
            "publish",
            &component.to_string_lossy(),
            "--input",
            &a,
            "--input",
            &b,
            "--max-price",
            "100",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not cover the escrow") && err.contains("assay faucet"),
        "{err}"
    );
}

#[test]
fn small_inputs_and_outputs_travel_inside_the_job_messages() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &[]);
    let renter_home = root.join("renter");
    ok(assay(&renter_home, &url, &["faucet"]));
    let renter = signer(&url, node_key(&renter_home));
    let (_component, _, _) = matmul_inputs(root);
    let a = std::fs::read(root.join("a.bin")).expect("a");
    let b = std::fs::read(root.join("b.bin")).expect("b");
    let input = |name: &str, bytes: &[u8]| pb::BlobRef {
        name: name.into(),
        hash: Hash32::of(bytes).0.to_vec(),
        size: bytes.len() as u64,
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let _in_runtime = rt.enter();
    let ch = assay_proto::client::channel(&url).expect("channel");
    let mut rc = RenterClient::new(ch.clone());
    let job = rt.block_on(async {
        let component: Arc<[u8]> = Guest::Matmul.bytes().to_vec().into();
        assay_proto::client::upload(&ch, &renter, component.clone())
            .await
            .expect("upload");
        let spec = assay_protocol::JobSpec {
            fuel: 100_000_000,
            work_budget: 100_000_000,
            ..Default::default()
        };
        let request = |inline_blobs: Vec<Vec<u8>>| {
            signed(
                &renter,
                pb::SubmitJobRequest {
                    component_hash: Hash32::of(&component).0.to_vec(),
                    component_size: component.len() as u64,
                    inputs: vec![input("a", &a), input("b", &b)],
                    spec: Some(pb::JobSpec::from(&spec)),
                    shards: 1,
                    max_price: 100,
                    unverified: true,
                    inline_blobs,
                    ..Default::default()
                },
            )
        };
        // More than a message may carry is refused, saying what to do.
        let e = rc
            .submit_job(request(vec![vec![7; 65 << 10]]))
            .await
            .expect_err("too much inline");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        assert!(e.message().contains("upload larger blobs first"), "{e}");
        // The inputs only inline, never uploaded: the job is accepted and
        // they are stored, by hash.
        let job = rc
            .submit_job(request(vec![a.clone(), b.clone()]))
            .await
            .expect("inline inputs")
            .into_inner()
            .job_id;
        let job_id = Hash32(job.as_slice().try_into().expect("job id"));
        let stored =
            assay_proto::client::download(&ch, &renter, Some(&job_id), &Hash32::of(&a), 1 << 20)
                .await
                .expect("stored");
        assert_eq!(stored, a);

        // A lease carries them: a provider needs no download.
        let p1 = signer(&url, NodeKey::from_seed([9; 32]));
        let mut pc = ProviderClient::new(ch.clone());
        pc.register(registration(&p1)).await.expect("register");
        let leases = take_one(&mut pc, &p1).await;
        assert_eq!(leases.len(), 1);
        let mut carried = leases[0].inline_inputs.clone();
        carried.sort();
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(carried, want, "the lease carries both inputs");
        give_back(&mut pc, &p1, &leases[0]).await;
        job
    });

    // A real provider runs it; its outputs go inside its receipt request,
    // and the job's status brings them back when asked to.
    let _p = provider(&url, &root.join("provider"), 10, 1);
    rt.block_on(async {
        let status = done_with_outputs(&mut rc, &renter, &job).await;
        let shard = &status.shards[0];
        assert!(!shard.outputs.is_empty(), "{status:?}");
        assert_eq!(
            shard.inline_outputs.len(),
            shard.outputs.len(),
            "{status:?}"
        );
        for out in &shard.outputs {
            let hash = Hash32(out.hash.as_slice().try_into().expect("hash"));
            let carried = shard
                .inline_outputs
                .iter()
                .find(|b| Hash32::of(b) == hash)
                .expect("each output carried");
            let job_id = Hash32(job.as_slice().try_into().expect("job id"));
            let stored = assay_proto::client::download(&ch, &renter, Some(&job_id), &hash, 1 << 20)
                .await
                .expect("stored");
            assert_eq!(&stored, carried, "{}", out.name);
        }
        // Not asked: none.
        let plain = rc
            .get_job(pb::GetJobRequest {
                job_id: job.clone(),
                ..Default::default()
            })
            .await
            .expect("status")
            .into_inner();
        assert!(plain.shards[0].inline_outputs.is_empty());
    });
}

#[test]
fn a_provider_stopped_with_sigterm_gives_its_lease_back_at_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    // Leases last 60 s: only a returned lease lets the second provider in quickly.
    let (_c, url) = coordinator(
        &root.join("coordinator"),
        "127.0.0.1:0",
        &["--lease-ttl-ms", "60000"],
    );
    let renter = root.join("renter");
    ok(assay(&renter, &url, &["faucet"]));
    let component = spin_job(root);
    let first_id = node_id(&root.join("first"), &url);
    let port = free_port();
    let first = Proc(
        Command::new(BIN)
            .args([
                "provider",
                "--coordinator",
                &url,
                "--slots",
                "1",
                "--poll-ms",
                "100",
            ])
            .args([
                "--drain-timeout-ms",
                "200",
                "--faucet",
                "1000000000",
                "--stake",
                "1000000",
            ])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .env("ASSAY_HOME", root.join("first"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn provider"),
    );
    wait_registered(&renter, &url, &first_id);
    let job = publish_spin(&renter, &url, &component, "20000000000");
    wait_job(&renter, &url, &job, 30, |s| {
        s["shards"][0]["state"] == "leased"
    });
    let m = metrics(port);
    assert!(m.contains("assay_provider_leases_taken_total 1"), "{m}");
    assert!(
        m.contains("# TYPE assay_provider_running_jobs gauge"),
        "{m}"
    );

    let pid = first.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let started = Instant::now();
    let s = wait_job(&renter, &url, &job, 20, |s| {
        s["shards"][0]["state"] == "queued"
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "returned, not expired"
    );
    assert_eq!(s["shards"][0]["attempts"].as_u64(), Some(1));
    drop(first);
}

#[test]
fn split_inputs_give_each_shard_only_its_lines() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_c, url) = coordinator(&tmp.path().join("coordinator"), "127.0.0.1:0", &[]);
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let ch = assay_proto::client::channel(&url).expect("channel");
        let (renter, p) = (
            signer(&url, NodeKey::from_seed([1; 32])),
            signer(&url, NodeKey::from_seed([2; 32])),
        );
        RenterClient::new(ch.clone())
            .faucet(signed(
                &renter,
                pb::FaucetRequest {
                    unit: String::new(),
                    auth: None,
                    amount: 1_000_000,
                },
            ))
            .await
            .expect("faucet");
        let component: Arc<[u8]> = Guest::Matmul.bytes().to_vec().into();
        let text: Arc<[u8]> = b"one\ntwo\nthree\nfour\nfive".to_vec().into();
        let other: Arc<[u8]> = b"not split".to_vec().into();
        assay_proto::client::upload_missing(
            &ch,
            &renter,
            &[component.clone(), text.clone(), other.clone()],
        )
        .await
        .expect("upload");
        let blob = |name: &str, b: &[u8]| pb::BlobRef {
            name: name.into(),
            hash: Hash32::of(b).0.to_vec(),
            size: b.len() as u64,
        };
        let spec = assay_protocol::JobSpec {
            fuel: 1_000,
            work_budget: 1_000,
            ..Default::default()
        };
        let resp = RenterClient::new(ch.clone())
            .submit_job(signed(
                &renter,
                pb::SubmitJobRequest {
                    inline_blobs: Vec::new(),
                    pay_in: String::new(),
                    unverified: true,
                    verify_rate_ppm: 0,
                    auth: None,
                    component_hash: Hash32::of(&component).0.to_vec(),
                    component_size: component.len() as u64,
                    inputs: vec![blob("text", &text), blob("other", &other)],
                    spec: Some(pb::JobSpec::from(&spec)),
                    shards: 2,
                    max_price: 10,
                    requirements: None,
                    split_inputs: vec!["text".into()],
                    cluster_id: vec![],
                },
            ))
            .await
            .expect("job")
            .into_inner();
        let mut pc = ProviderClient::new(ch.clone());
        pc.register(signed(
            &p,
            pb::RegisterRequest {
                auth: None,
                hardware: Some(pb::Hardware {
                    cpu_cores: 1,
                    memory_bytes: 1 << 40,
                    gpus: vec![],
                }),
                price: 1,
                stake: 0,
                slots: 2,
                version: "test".into(),
                reserve_price: 0,
            },
        ))
        .await
        .expect("register");
        let mut leases = pc
            .take_leases(signed(
                &p,
                pb::TakeLeasesRequest {
                    auth: None,
                    max: 2,
                    ..Default::default()
                },
            ))
            .await
            .expect("leases")
            .into_inner()
            .leases;
        leases.sort_by_key(|l| l.spec.as_ref().and_then(|s| s.shard).map_or(0, |s| s.index));
        assert_eq!(leases.len(), 2);
        let mut joined = Vec::new();
        for (i, (l, want)) in leases
            .iter()
            .zip([&b"one\ntwo\n"[..], &b"three\nfour\nfive"[..]])
            .enumerate()
        {
            let inputs = assay_proto::convert::blob_refs("inputs", &l.inputs).expect("inputs");
            let t = inputs.iter().find(|b| b.name == "text").expect("text");
            let job_id = Hash32(resp.job_id.as_slice().try_into().expect("job id"));
            let part = assay_proto::client::download(&ch, &p, Some(&job_id), &t.hash, 1 << 20)
                .await
                .expect("part");
            assert_eq!(part, want, "shard {i} gets only its lines");
            joined.extend(part);
            let o = inputs.iter().find(|b| b.name == "other").expect("other");
            assert_eq!(o.hash, Hash32::of(&other), "unsplit inputs stay whole");
            // The shard's job id is what a local run on exactly these inputs gives.
            let root = assay_protocol::inputs_root(
                inputs.iter().map(|b| (b.name.as_str(), b.size, &b.hash)),
            );
            let mut s = spec.clone();
            s.shard = assay_protocol::Shard {
                index: i as u32,
                count: 2,
            };
            let id = assay_protocol::job_id(&Hash32::of(&component), &root, &s);
            assert_eq!(l.shard_job_id, id.0.to_vec());
            assert_eq!(resp.shard_job_ids[i], id.0.to_vec());
        }
        assert_eq!(joined, text.to_vec());
    });
}

use crate::model_store;

#[test]
fn minilm_in_two_shards_with_split_text_matches_local_runs() {
    let model = match model_store::load() {
        Ok(m) => m,
        Err(e) => {
            assert_ne!(
                std::env::var("ASSAY_REQUIRE_MODEL").as_deref(),
                Ok("1"),
                "ASSAY_REQUIRE_MODEL=1 but the model is not usable: {e}"
            );
            eprintln!("SKIPPED minilm on the network: {e} (run `assay model fetch`)");
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let component = root.join("minilm.wasm");
    std::fs::write(&component, Guest::MinilmEmbed.bytes()).expect("component");
    let component = component.to_string_lossy().to_string();
    let text = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/minilm-embed/testdata/sentences.txt"),
    )
    .expect("sentences");
    let mut inputs: Vec<String> = Vec::new();
    for (name, bytes) in &model.files {
        let p = root.join(name);
        std::fs::write(&p, bytes).expect("model file");
        inputs.push(format!("{name}={}", p.display()));
    }
    let write = |name: &str, bytes: &[u8]| {
        let p = root.join(name);
        std::fs::write(&p, bytes).expect("text");
        format!("text={}", p.display())
    };
    let full = write("text.txt", &text);
    // The coordinator's split: shard i of 2 gets lines [i·L/2, (i+1)·L/2).
    let lines: Vec<&[u8]> = text.split_inclusive(|c| *c == b'\n').collect();
    let half = lines.len() / 2;
    let parts = [
        write("part0.txt", &lines[..half].concat()),
        write("part1.txt", &lines[half..].concat()),
    ];

    let (_c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &[]);
    let renter = root.join("renter");
    let (id0, id1) = (
        node_id(&root.join("p0"), &url),
        node_id(&root.join("p1"), &url),
    );
    let _p0 = provider(&url, &root.join("p0"), 10, 1);
    let _p1 = provider(&url, &root.join("p1"), 10, 1);
    wait_registered(&renter, &url, &id0);
    wait_registered(&renter, &url, &id1);
    ok(assay(&renter, &url, &["faucet"]));
    let mut args = vec!["publish", component.as_str(), "--input", full.as_str()];
    for i in &inputs {
        args.extend(["--input", i.as_str()]);
    }
    args.extend([
        "--split-input",
        "text",
        "--shards",
        "2",
        "--max-price",
        "10",
        "--wait",
        "--json",
    ]);
    args.extend(["--work-budget", "1000000000000", "--wait-timeout-s", "150"]);
    let published = json(&ok(assay(&renter, &url, &args)));
    let job = published["job_id"].as_str().expect("job").to_string();

    // Each shard's outputs root is a local run of that shard on its part.
    for (i, part) in parts.iter().enumerate() {
        let shard = format!("{i}/2");
        let mut run = vec![
            "run",
            component.as_str(),
            "--input",
            part.as_str(),
            "--shard",
            shard.as_str(),
            "--json",
        ];
        for x in &inputs {
            run.extend(["--input", x.as_str()]);
        }
        let local = json(&ok(assay(&root.join("local"), &url, &run)));
        let s = &published["shards"][i];
        assert_eq!(s["outcome"], "success", "{s:#}");
        assert_eq!(s["outputs_root"], local["outputs_root"], "shard {i}");
    }
    // And the embeddings, joined in shard order, are the unsharded job's, bit for bit.
    let out = root.join("out");
    ok(assay(
        &renter,
        &url,
        &["job", "outputs", &job, "--out", &out.to_string_lossy()],
    ));
    let mut run = vec![
        "run",
        component.as_str(),
        "--input",
        full.as_str(),
        "--json",
        "--out",
    ];
    let whole = root.join("whole");
    let whole_s = whole.to_string_lossy().to_string();
    run.push(whole_s.as_str());
    for x in &inputs {
        run.extend(["--input", x.as_str()]);
    }
    ok(assay(&root.join("local"), &url, &run));
    let joined = std::fs::read(out.join("embeddings")).expect("joined embeddings");
    assert_eq!(joined.len(), 64 * 384 * 4);
    assert!(
        joined == std::fs::read(whole.join("embeddings")).expect("whole"),
        "sharded ≠ unsharded"
    );
}

/// `key`, signing for the coordinator at `url` (asks it for its id).
pub(super) fn signer(url: &str, key: NodeKey) -> Signer {
    // On a thread of its own: callers may be inside a runtime already.
    let id = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio");
            rt.block_on(async {
                let ch = assay_proto::client::channel(url).expect("channel");
                assay_proto::client::coordinator_id(&ch)
                    .await
                    .expect("the coordinator's id")
            })
        })
        .join()
        .expect("asking for the coordinator's id")
    });
    Signer::new(key, id)
}

/// The provider daemon's node key under `home` (`node_id` created it).
pub(super) fn node_key(home: &Path) -> NodeKey {
    NodeKey::load_or_create(&home.join("node.key")).expect("node key")
}

/// The first column of a query on the coordinator's database (SQLite in
/// `data`, or `store`'s PostgreSQL), as text.
fn db_text(store: &Store, data: &Path, sql: &str) -> Vec<String> {
    db_column(data, store.flags.get(1).map(String::as_str), sql)
}

#[test]
fn an_orphaned_lease_is_requeued_within_its_cap_and_the_provider_keeps_getting_work() {
    for store in stores("orphan") {
        orphaned_lease(&store);
    }
}

fn orphaned_lease(store: &Store) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let data = root.join("coordinator");
    // Leases last a minute and are renewed: only the report rule can end
    // the orphan quickly.
    let mut flags = vec!["--lease-ttl-ms", "60000", "--lease-report-grace-ms", "1000"];
    flags.extend(store.flags.iter().map(String::as_str));
    let (_c, url) = coordinator(&data, "127.0.0.1:0", &flags);
    let renter = root.join("renter");
    ok(assay(&renter, &url, &["faucet"]));
    let component = spin_job(root);
    let (a_home, b_home) = (root.join("a"), root.join("b"));
    let a_id = node_id(&a_home, &url);
    let b_id = node_id(&b_home, &url);
    let a_key = signer(&url, node_key(&a_home));
    let _a = provider(&url, &a_home, 10, 1);
    wait_registered(&renter, &url, &a_id);
    // A is busy with a long job (its one slot full, it asks for no more).
    let long = publish_spin(&renter, &url, &component, "20000000000");
    wait_job(&renter, &url, &long, 30, |s| {
        s["shards"][0]["state"] == "leased"
    });

    // A client with A's key claims more slots, takes a lease and loses the
    // reply: the coordinator thinks A holds it, A never heard of it.
    let job = publish_spin(&renter, &url, &component, "300000000");
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let orphan = rt.block_on(async {
        let ch = assay_proto::client::channel(&url).expect("channel");
        let mut pc = ProviderClient::new(ch);
        let register = pb::RegisterRequest {
            auth: None,
            hardware: Some(pb::Hardware {
                cpu_cores: 4,
                memory_bytes: 8 << 30,
                gpus: vec![],
            }),
            price: 10,
            stake: 1_000_000,
            slots: 4,
            version: "test".into(),
            reserve_price: 0,
        };
        pc.register(signed(&a_key, register))
            .await
            .expect("register");
        let take = pb::TakeLeasesRequest {
            auth: None,
            max: 1,
            ..Default::default()
        };
        let leases = pc
            .take_leases(signed(&a_key, take))
            .await
            .expect("take")
            .into_inner()
            .leases;
        assert_eq!(leases.len(), 1, "the orphan");
        Hash32(leases[0].lease_id.as_slice().try_into().expect("32 bytes"))
    });
    let taken = Instant::now();
    let s = wait_job(&renter, &url, &job, 30, |s| {
        s["shards"][0]["state"] == "queued"
    });
    // Well within its cap (3 × the 10-minute watchdog) and its lease time.
    assert!(
        taken.elapsed() < Duration::from_secs(15),
        "re-queued after {:?}",
        taken.elapsed()
    );
    assert_eq!(s["shards"][0]["attempts"].as_u64(), Some(1), "{s:#}");
    let reasons = db_text(
        store,
        &data,
        "SELECT id FROM leases WHERE reason = 'not held by the provider (lost TakeLeases reply?)'",
    );
    assert_eq!(reasons, vec![orphan.to_hex()], "{}", store.name);

    // The shard is not offered to A again; B does it.
    let mut b = provider(&url, &b_home, 10, 1);
    let s = wait_job(&renter, &url, &job, 60, |s| s["state"] == "settled");
    assert_eq!(s["shards"][0]["provider"].as_str(), Some(b_id.as_str()));
    b.0.kill().expect("kill b");
    let _ = b.0.wait();
    // A's own job was never disturbed, and A keeps getting work.
    let s = wait_job(&renter, &url, &long, 120, |s| s["state"] == "settled");
    assert_eq!(s["shards"][0]["provider"].as_str(), Some(a_id.as_str()));
    assert_eq!(s["shards"][0]["attempts"].as_u64(), Some(1));
    let next = publish_spin(&renter, &url, &component, "300000000");
    let s = wait_job(&renter, &url, &next, 60, |s| s["state"] == "settled");
    assert_eq!(s["shards"][0]["provider"].as_str(), Some(a_id.as_str()));
    // Nobody was charged for the orphan.
    assert_eq!(
        db_text(
            store,
            &data,
            "SELECT faults + expired FROM providers ORDER BY id"
        ),
        vec!["0".to_string(), "0".to_string()]
    );
    ok(assay(&renter, &url, &["ledger", "verify"]));
}

#[test]
fn a_job_that_only_trips_the_watchdog_pays_each_slot_a_fee_and_charges_no_one() {
    for store in stores("watchdog") {
        only_timeouts(&store);
    }
}

fn only_timeouts(store: &Store) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let data = root.join("coordinator");
    let mut flags = vec!["--max-attempts", "2", "--watchdog-fee", "5000"];
    flags.extend(store.flags.iter().map(String::as_str));
    let (_c, url) = coordinator(&data, "127.0.0.1:0", &flags);
    let renter = root.join("renter");
    ok(assay(&renter, &url, &["faucet"]));
    let start = account(&renter, &url, None)["balance"]
        .as_u64()
        .expect("balance");
    let component = spin_job(root);
    let homes = [root.join("p1"), root.join("p2")];
    let ids: Vec<String> = homes.iter().map(|h| node_id(h, &url)).collect();
    let _ps: Vec<Proc> = homes.iter().map(|h| provider(&url, h, 10, 1)).collect();
    for id in &ids {
        wait_registered(&renter, &url, id);
    }
    // An endless loop with a 300 ms watchdog: no attempt can finish.
    let out = ok(assay(
        &renter,
        &url,
        &[
            "publish",
            &component,
            "--param",
            "mode=infinite-loop",
            "--fuel",
            "100000000000",
            "--work-budget",
            "1000",
            "--timeout-ms",
            "300",
            "--max-price",
            "10",
            "--json",
        ],
    ));
    let job = json(&out)["job_id"].as_str().expect("job").to_string();
    let s = wait_job(&renter, &url, &job, 60, |s| s["state"] == "failed");
    // Each provider held the shard once (a returned shard is not offered
    // again to its provider) and was paid the fee less the 2% protocol fee.
    assert_eq!(s["shards"][0]["attempts"].as_u64(), Some(2), "{s:#}");
    for id in &ids {
        assert_eq!(
            account(&renter, &url, Some(id))["earnings"].as_u64(),
            Some(5_000 - 100),
            "provider {id}"
        );
    }
    // The renter paid the two slots and got the rest of the escrow back.
    assert_eq!(
        account(&renter, &url, None)["balance"].as_u64(),
        Some(start - 2 * 5_000)
    );
    // Every attempt timed out, so no one's reliability is charged.
    assert_eq!(
        db_text(
            store,
            &data,
            "SELECT faults + expired FROM providers ORDER BY id"
        ),
        vec!["0".to_string(), "0".to_string()],
        "{}",
        store.name
    );
    assert_eq!(
        db_text(
            store,
            &data,
            "SELECT COUNT(*) FROM leases WHERE watchdog = 1"
        ),
        vec!["2".to_string()]
    );
    ok(assay(&renter, &url, &["ledger", "verify"]));
}
