//! Replicas: two coordinators on one PostgreSQL database share their
//! blobs through an S3-compatible bucket (`--blob-store s3://…`), served
//! here by a real S3 server, `s3s-fs` (`cargo install s3s-fs --features
//! binary`). Without it the test says it is skipped; with
//! `ASSAY_REQUIRE_S3=1` it fails instead.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assay_protocol::{Hash32, NodeKey};

use crate::common::*;
use crate::network::signer;

const ACCESS_KEY: &str = "assay-test";
const SECRET_KEY: &str = "assay-test-secret";

/// The `s3s-fs` binary: `ASSAY_S3S_FS`, else on `PATH`, else in cargo's bin.
fn s3s_fs() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ASSAY_S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        Some(home.join("bin").join("s3s-fs")).filter(|p| p.is_file())
    })
}

/// An S3 server with bucket `assay` over `root`; its endpoint URL.
fn s3_server(root: &Path) -> Option<(Proc, String)> {
    let Some(bin) = s3s_fs() else {
        assert_ne!(
            std::env::var("ASSAY_REQUIRE_S3").as_deref(),
            Ok("1"),
            "ASSAY_REQUIRE_S3=1 but s3s-fs is not installed (cargo install s3s-fs --features binary)"
        );
        eprintln!(
            "SKIPPED the replicas test: no S3 server (cargo install s3s-fs --features binary, or set ASSAY_S3S_FS)"
        );
        return None;
    };
    std::fs::create_dir_all(root.join("assay")).expect("bucket");
    let port = free_port();
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn s3s-fs");
    let server = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((server, format!("http://127.0.0.1:{port}")))
}

fn blob_files(data: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(data.join("blobs")) {
        for d in dirs.flatten().filter(|d| d.file_name() != "tmp") {
            if let Ok(files) = std::fs::read_dir(d.path()) {
                out.extend(
                    files
                        .flatten()
                        .map(|f| f.file_name().to_string_lossy().into_owned()),
                );
            }
        }
    }
    out
}

/// Two coordinators (`a`, `b` under `root`) on one fresh PostgreSQL schema
/// sharing bucket `assay` of a real S3 server, `b` with `extra_b` flags;
/// `None` (said) without PostgreSQL or the server.
struct Replicas {
    _s3: Proc,
    _a: Proc,
    _b: Proc,
    a: String,
    b: String,
    _db: Store,
}

fn replicas(test: &str, root: &Path, extra_b: &[&str]) -> Option<Replicas> {
    let db = stores(test).into_iter().find(|s| s.name == "postgres")?;
    let (s3, endpoint) = s3_server(&root.join("s3"))?;
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
    ];
    let mut flags: Vec<&str> = db.flags.iter().map(String::as_str).collect();
    flags.extend(["--blob-store", "s3://assay/blobs", "--no-challenges"]);
    let (a_proc, a) = coordinator_via(&[], &root.join("a"), "127.0.0.1:0", &flags, &env);
    flags.extend(extra_b);
    let (b_proc, b) = coordinator_via(&[], &root.join("b"), "127.0.0.1:0", &flags, &env);
    Some(Replicas {
        _s3: s3,
        _a: a_proc,
        _b: b_proc,
        a,
        b,
        _db: db,
    })
}

#[test]
fn replicas_share_blobs_through_an_s3_bucket() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let Some(r) = replicas("replicas", root, &[]) else {
        return;
    };
    let (url_a, url_b) = (r.a.clone(), r.b.clone());
    let data_b = root.join("b");

    // An upload to A is downloaded from B, which fetches it from the bucket.
    let (on_a, on_b) = (
        signer(&url_a, NodeKey::from_seed([81; 32])),
        signer(&url_b, NodeKey::from_seed([81; 32])),
    );
    // Over 8 MiB: put to the bucket in parts.
    let bytes: Vec<u8> = (0..9_000_000u32).map(|i| (i % 251) as u8).collect();
    let hash = Hash32::of(&bytes);
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let _in_runtime = rt.enter();
    let (ch_a, ch_b) = (
        assay_proto::client::channel(&url_a).expect("channel"),
        assay_proto::client::channel(&url_b).expect("channel"),
    );
    rt.block_on(async {
        assay_proto::client::upload(&ch_a, &on_a, bytes.clone().into())
            .await
            .expect("upload to A");
    });
    assert!(
        root.join("s3/assay/blobs").join(hash.to_hex()).is_file(),
        "the upload was acknowledged before it was in the bucket"
    );
    assert!(!blob_files(&data_b).contains(&hash.to_hex()));
    let got = rt.block_on(async {
        assay_proto::client::download(&ch_b, &on_b, None, &hash, 1 << 24)
            .await
            .expect("download from B")
    });
    assert_eq!(got, bytes);
    assert!(
        blob_files(&data_b).contains(&hash.to_hex()),
        "B keeps its copy"
    );

    // A job published on A, run by a provider of B, its outputs read from A.
    let renter = root.join("renter");
    ok(assay(&renter, &url_a, &["faucet"]));
    let _p = provider(&url_b, &root.join("p"), 10, 1);
    let job = publish_matmul(root, &renter, &url_a, &[]);
    wait_job(&renter, &url_a, &job, 90, |s| s["state"] == "settled");
    let out = root.join("out");
    ok(assay(
        &renter,
        &url_a,
        &["job", "outputs", &job, "--out", &out.to_string_lossy()],
    ));
    let c = std::fs::read(out.join("c")).expect("output c");
    assert!(c.len() > 8, "{} bytes", c.len());
    ok(assay(&renter, &url_b, &["ledger", "verify"]));
}

/// Retention collects from the bucket too: a blob no job names, uploaded
/// through one replica, is deleted from the bucket by the other's sweep
/// once the period passed, while a blob a queued job names stays.
#[test]
fn retention_collects_from_the_shared_bucket() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let sweeping = ["--blob-retention-ms", "1500", "--blob-sweep-ms", "200"];
    let Some(r) = replicas("replica_retention", root, &sweeping) else {
        return;
    };
    let url_a = r.a.clone();
    let renter = root.join("renter");
    ok(assay(&renter, &url_a, &["faucet"]));
    let key = crate::network::node_key(&renter);
    let on_a = signer(&url_a, key);
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let _in_runtime = rt.enter();
    let ch = assay_proto::client::channel(&url_a).expect("channel");
    let (orphan, named): (Vec<u8>, Vec<u8>) = (vec![1; 10_000], vec![2; 10_000]);
    rt.block_on(async {
        for blob in [&orphan, &named] {
            assay_proto::client::upload(&ch, &on_a, blob.clone().into())
                .await
                .expect("upload");
        }
    });
    // A job names `named` (as its component) and waits: no provider.
    let component = root.join("named.wasm");
    std::fs::write(&component, &named).expect("component");
    let component = component.to_string_lossy().to_string();
    let mut args = vec![component.as_str(), "--max-price", "100"];
    args.extend(LIMITS);
    publish(&renter, &url_a, &args);
    let in_bucket = |b: &[u8]| {
        root.join("s3/assay/blobs")
            .join(Hash32::of(b).to_hex())
            .is_file()
    };
    assert!(in_bucket(&orphan) && in_bucket(&named));
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_bucket(&orphan) {
        assert!(Instant::now() < deadline, "the orphan was never collected");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(in_bucket(&named), "a blob a queued job names was collected");
}
