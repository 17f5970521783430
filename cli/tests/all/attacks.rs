//! The attack suite: one test per way found to read what is not yours or
//! to take a node down, each run against real processes (a coordinator
//! and providers on loopback) with raw gRPC calls, as an attacker would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_guests::Guest;
use assay_proto::auth::Signer;
use assay_proto::pb;
use assay_proto::pb::blobs_client::BlobsClient;
use assay_proto::pb::provider_client::ProviderClient;
use assay_proto::pb::renter_client::RenterClient;
use assay_protocol::{Hash32, NodeKey};
use tonic::Code;

use crate::common::*;
use crate::network::{
    done_with_outputs, give_back, node_key, registration, signed, signer, take_one,
};

/// A download of `hash` as `key` (through `job`): its bytes, or the status.
async fn read(
    ch: &tonic::transport::Channel,
    key: &Signer,
    job: Option<&Hash32>,
    hash: &Hash32,
) -> Result<Vec<u8>, Code> {
    assay_proto::client::download(ch, key, job, hash, 1 << 24)
        .await
        .map_err(|e| match e {
            assay_proto::Error::Rpc(s) => s.code(),
            other => panic!("not a refusal: {other}"),
        })
}

/// Found: `Download` and `Stat` needed no signature and `GetJob` inlined
/// any job's outputs, so a second key fetched another renter's inputs and
/// outputs by their hashes (which the explorer lists).
#[test]
fn a_strangers_key_reads_no_blob_of_another_renters_job() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &[]);
    let renter_home = root.join("renter");
    ok(assay(&renter_home, &url, &["faucet"]));
    let renter = signer(&url, node_key(&renter_home));
    let stranger = signer(&url, NodeKey::from_seed([66; 32]));
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
    let component: Arc<[u8]> = Guest::Matmul.bytes().to_vec().into();
    let component_hash = Hash32::of(&component);
    let (a_hash, b_hash) = (Hash32::of(&a), Hash32::of(&b));

    let job = rt.block_on(async {
        assay_proto::client::upload(&ch, &renter, component.clone())
            .await
            .expect("upload");
        let spec = assay_protocol::JobSpec {
            fuel: 100_000_000,
            work_budget: 100_000_000,
            ..Default::default()
        };
        // The inputs travel inside the submission: only the job names them.
        let job = rc
            .submit_job(signed(
                &renter,
                pb::SubmitJobRequest {
                    component_hash: component_hash.0.to_vec(),
                    component_size: component.len() as u64,
                    inputs: vec![input("a", &a), input("b", &b)],
                    spec: Some(pb::JobSpec::from(&spec)),
                    shards: 1,
                    max_price: 100,
                    unverified: true,
                    inline_blobs: vec![a.clone(), b.clone()],
                    ..Default::default()
                },
            ))
            .await
            .expect("job")
            .into_inner()
            .job_id;
        let job = Hash32(job.as_slice().try_into().expect("job id"));

        // The lease holder reads the job's blobs through the job, and only so.
        let holder = signer(&url, NodeKey::from_seed([9; 32]));
        let mut pc = ProviderClient::new(ch.clone());
        pc.register(registration(&holder)).await.expect("register");
        let leases = take_one(&mut pc, &holder).await;
        assert_eq!(leases.len(), 1);
        assert_eq!(read(&ch, &holder, Some(&job), &a_hash).await, Ok(a.clone()));
        assert_eq!(
            read(&ch, &holder, Some(&job), &component_hash)
                .await
                .map(|c| c.len()),
            Ok(component.len())
        );
        assert_eq!(
            read(&ch, &holder, None, &a_hash).await,
            Err(Code::PermissionDenied)
        );
        give_back(&mut pc, &holder, &leases[0]).await;
        job
    });

    // A real provider runs it.
    let _p = provider(&url, &root.join("provider"), 10, 1);
    rt.block_on(async {
        let status = done_with_outputs(&mut rc, &renter, &job.0).await;
        let shard = &status.shards[0];
        assert!(!shard.outputs.is_empty(), "{status:?}");
        assert_eq!(shard.inline_outputs.len(), shard.outputs.len());
        let outputs: Vec<Hash32> = shard
            .outputs
            .iter()
            .map(|o| Hash32(o.hash.as_slice().try_into().expect("hash")))
            .collect();
        let mut every = vec![component_hash, a_hash, b_hash];
        every.extend(&outputs);

        // The renter reads each through its job, and a stat says so.
        for h in &every {
            assert!(read(&ch, &renter, Some(&job), h).await.is_ok(), "{h}");
        }
        let seen = assay_proto::client::stat(&ch, &renter, Some(&job), &every)
            .await
            .expect("stat");
        assert_eq!(seen.len(), every.len());

        // A stranger reads none, named job or not, and a stat shows none —
        // the same answer as for a blob that does not exist.
        let missing = Hash32::of(b"no such blob");
        for h in every.iter().chain([&missing]) {
            for through in [Some(&job), None] {
                assert_eq!(
                    read(&ch, &stranger, through, h).await,
                    Err(Code::PermissionDenied),
                    "{h} through {through:?}"
                );
            }
        }
        for through in [Some(&job), None] {
            let seen = assay_proto::client::stat(&ch, &stranger, through, &every)
                .await
                .expect("stat");
            assert!(seen.is_empty(), "a stranger's stat shows {seen:?}");
        }

        // Unsigned or forged reads are refused before anything is looked up.
        let mut blobs = BlobsClient::new(ch.clone());
        let unsigned = pb::DownloadRequest {
            hash: a_hash.0.to_vec(),
            job_id: job.0.to_vec(),
            ..Default::default()
        };
        let e = blobs
            .download(unsigned.clone())
            .await
            .expect_err("unsigned");
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");
        let mut forged = signed(&stranger, unsigned);
        if let Some(auth) = forged.auth.as_mut() {
            auth.node_id = renter.id().0.to_vec();
        }
        let e = blobs.download(forged).await.expect_err("forged");
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");
        let e = blobs
            .stat(pb::StatRequest {
                hashes: vec![a_hash.0.to_vec()],
                ..Default::default()
            })
            .await
            .expect_err("unsigned stat");
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");

        // The job's status shows hashes to anyone (as the explorer does),
        // its output bytes only to the renter.
        let public = rc
            .get_job(pb::GetJobRequest {
                job_id: job.0.to_vec(),
                ..Default::default()
            })
            .await
            .expect("public status")
            .into_inner();
        assert_eq!(public.shards[0].outputs.len(), outputs.len());
        assert!(public.shards[0].inline_outputs.is_empty());
        let ask = pb::GetJobRequest {
            job_id: job.0.to_vec(),
            inline_outputs_max_bytes: 64 << 10,
            ..Default::default()
        };
        let e = rc.get_job(ask.clone()).await.expect_err("unsigned inline");
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");
        assert!(e.message().contains("renter"), "{e}");
        let e = rc
            .get_job(signed(&stranger, ask))
            .await
            .expect_err("a stranger's inline");
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");

        // Uploading the bytes proves holding them: then the key may read them.
        assay_proto::client::upload(&ch, &stranger, a.clone().into())
            .await
            .expect("upload");
        assert_eq!(read(&ch, &stranger, None, &a_hash).await, Ok(a.clone()));
        assert_eq!(
            read(&ch, &stranger, None, &b_hash).await,
            Err(Code::PermissionDenied)
        );
    });
}

/// Every blob file the coordinator keeps under `data` (not the temporary
/// ones).
fn stored_blobs(data: &std::path::Path) -> usize {
    let Ok(dirs) = std::fs::read_dir(data.join("blobs")) else {
        return 0;
    };
    dirs.flatten()
        .filter(|d| d.file_name() != "tmp")
        .filter_map(|d| std::fs::read_dir(d.path()).ok())
        .map(Iterator::count)
        .sum()
}

fn temporary_files(data: &std::path::Path) -> usize {
    std::fs::read_dir(data.join("blobs").join("tmp")).map_or(0, Iterator::count)
}

/// Found: the renter chose `log_bytes`, `output_bytes` and the memories
/// freely (a guest writing under `log_bytes` = 1 TiB grew the provider
/// until it was killed, then every verifier), and `SubmitJob` with split
/// inputs read, split and stored them before checking the balance (a
/// zero-balance key wrote a part per shard of any blob).
#[test]
fn a_job_over_the_caps_or_unpaid_is_refused_before_anything_is_stored() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("coordinator");
    let (_c, url) = coordinator(&data, "127.0.0.1:0", &["--cap-log-bytes", "64KiB"]);
    let broke = signer(&url, NodeKey::from_seed([67; 32]));
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let _in_runtime = rt.enter();
    let ch = assay_proto::client::channel(&url).expect("channel");
    let mut rc = RenterClient::new(ch.clone());
    // The coordinator's own blobs (its challenge component).
    let own = stored_blobs(&data);
    rt.block_on(async {
        let component: Arc<[u8]> = Guest::Matmul.bytes().to_vec().into();
        let lines: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        for blob in [component.clone(), lines.clone().into()] {
            assay_proto::client::upload(&ch, &broke, blob)
                .await
                .expect("upload");
        }
        let stored = stored_blobs(&data);
        assert_eq!(stored, own + 2);
        let job = |spec: assay_protocol::JobSpec, shards: u32, split: bool| {
            signed(
                &broke,
                pb::SubmitJobRequest {
                    component_hash: Hash32::of(&component).0.to_vec(),
                    component_size: component.len() as u64,
                    inputs: vec![pb::BlobRef {
                        name: "text".into(),
                        hash: Hash32::of(&lines).0.to_vec(),
                        size: lines.len() as u64,
                    }],
                    spec: Some(pb::JobSpec::from(&spec)),
                    shards,
                    max_price: 1,
                    split_inputs: if split { vec!["text".into()] } else { vec![] },
                    ..Default::default()
                },
            )
        };
        for (spec, field) in [
            (
                assay_protocol::JobSpec {
                    log_bytes: 1 << 40,
                    ..Default::default()
                },
                "spec.log_bytes",
            ),
            (
                // Over the operator's cap (--cap-log-bytes 64KiB) by one.
                assay_protocol::JobSpec {
                    log_bytes: (64 << 10) + 1,
                    ..Default::default()
                },
                "spec.log_bytes",
            ),
            (
                assay_protocol::JobSpec {
                    output_bytes: 1 << 40,
                    ..Default::default()
                },
                "spec.output_bytes",
            ),
            (
                assay_protocol::JobSpec {
                    gpu_memory_bytes: 1 << 50,
                    ..Default::default()
                },
                "spec.gpu_memory_bytes",
            ),
        ] {
            let e = rc.submit_job(job(spec, 1, false)).await.expect_err(field);
            assert_eq!(e.code(), Code::InvalidArgument, "{e}");
            assert!(e.message().contains(field), "{e}");
        }
        // 256 shards of a split input, from a key with no balance.
        let e = rc
            .submit_job(job(assay_protocol::JobSpec::default(), 256, true))
            .await
            .expect_err("unpaid");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        assert!(e.message().contains("does not cover the escrow"), "{e}");
        assert_eq!(stored_blobs(&data), stored, "nothing was split or stored");
        // Eighty thousand inputs in one message (3.6 MB, under the 4 MiB
        // limit of a request): refused on
        // their count, before names are compared (that was quadratic).
        let mut many = job(assay_protocol::JobSpec::default(), 1, false);
        many.inputs = (0..80_000)
            .map(|i| pb::BlobRef {
                name: format!("i{i}"),
                hash: vec![0; 32],
                size: 1,
            })
            .collect();
        let many = signed(&broke, many);
        let started = Instant::now();
        let e = RenterClient::new(ch.clone())
            .max_encoding_message_size(8 << 20)
            .submit_job(many)
            .await
            .expect_err("too many");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains("80000 inputs"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        // Twice the same input name, in one request.
        let mut twice = job(assay_protocol::JobSpec::default(), 1, false);
        twice.inputs.push(twice.inputs[0].clone());
        let twice = signed(&broke, twice);
        let e = rc.submit_job(twice).await.expect_err("twice");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains("\"text\" appears twice"), "{e}");
    });
}

/// Found: blobs were never collected and a key could store without bound:
/// one stranger with a key filled the coordinator's disk, and every blob
/// ever uploaded stayed.
#[test]
fn a_key_stores_at_most_its_quota_and_blobs_no_job_needs_are_collected() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("coordinator");
    let (_c, url) = coordinator(
        &data,
        "127.0.0.1:0",
        &[
            "--max-stored-bytes-per-key",
            "100000",
            "--blob-retention-ms",
            "1500",
            "--blob-sweep-ms",
            "200",
        ],
    );
    let (a, b) = (
        signer(&url, NodeKey::from_seed([74; 32])),
        signer(&url, NodeKey::from_seed([75; 32])),
    );
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let _in_runtime = rt.enter();
    let ch = assay_proto::client::channel(&url).expect("channel");
    // The coordinator's own blobs (the public challenge component: kept).
    let own = stored_blobs(&data);
    rt.block_on(async {
        let blob = |tag: u8, len: usize| -> Arc<[u8]> { vec![tag; len].into() };
        let upload = |key: &Signer, bytes: Arc<[u8]>| {
            let (ch, key) = (ch.clone(), key.clone());
            async move { assay_proto::client::upload(&ch, &key, bytes).await }
        };
        upload(&a, blob(1, 60_000)).await.expect("within a's quota");
        match upload(&a, blob(2, 60_000)).await {
            Err(assay_proto::Error::Rpc(s)) if s.code() == Code::ResourceExhausted => {
                assert!(s.message().contains("--max-stored-bytes-per-key"), "{s:?}");
            }
            other => panic!("over the quota, not refused: {other:?}"),
        }
        upload(&a, blob(1, 60_000))
            .await
            .expect("a blob a key stores already costs nothing again");
        upload(&b, blob(2, 60_000))
            .await
            .expect("each key has its own quota");
        // A job names a's blob (as its component) and waits in the queue:
        // no provider takes it.
        RenterClient::new(ch.clone())
            .faucet(signed(
                &a,
                pb::FaucetRequest {
                    amount: 1_000_000_000,
                    ..Default::default()
                },
            ))
            .await
            .expect("faucet");
        RenterClient::new(ch.clone())
            .submit_job(signed(
                &a,
                pb::SubmitJobRequest {
                    component_hash: Hash32::of(&blob(1, 60_000)).0.to_vec(),
                    component_size: 60_000,
                    spec: Some(pb::JobSpec::from(&assay_protocol::JobSpec::default())),
                    shards: 1,
                    max_price: 1,
                    ..Default::default()
                },
            ))
            .await
            .expect("job");
        assert_eq!(stored_blobs(&data), own + 2);
        // Past the retention period, b's blob (no job names it) goes.
        let deadline = Instant::now() + Duration::from_secs(20);
        while stored_blobs(&data) > own + 1 {
            assert!(Instant::now() < deadline, "b's blob was never collected");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Its ownership went with it: b reads it no more.
        let gone = read(&ch, &b, None, &Hash32::of(&blob(2, 60_000))).await;
        assert_eq!(gone, Err(Code::PermissionDenied));
        assert_eq!(
            read(&ch, &a, None, &Hash32::of(&blob(1, 60_000)))
                .await
                .map(|v| v.len()),
            Ok(60_000),
            "the queued job's component stays"
        );
        // b's quota is free again: 60,000 + 40,000 bytes fit.
        upload(&b, blob(3, 60_000)).await.expect("quota freed");
        upload(&b, blob(4, 40_000)).await.expect("quota freed");
    });
}

/// Found: a download read the blob on a blocking thread and waited there
/// for the client to take each chunk, so about 512 downloads that never
/// read parked every blocking thread — and with them every store call
/// (the tick's too): the coordinator stopped answering anyone.
#[test]
fn downloads_that_never_read_do_not_stop_the_coordinator() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_c, url) = coordinator(
        &tmp.path().join("coordinator"),
        "127.0.0.1:0",
        &["--max-downloads", "64", "--transfer-idle-ms", "2000"],
    );
    let attacker = signer(&url, NodeKey::from_seed([68; 32]));
    let honest = signer(&url, NodeKey::from_seed([69; 32]));
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let big: Arc<[u8]> = vec![7u8; 8 << 20].into();
        let hash = Hash32::of(&big);
        let ch = assay_proto::client::channel(&url).expect("channel");
        assay_proto::client::upload(&ch, &attacker, big.clone())
            .await
            .expect("upload");
        // 600 downloads over 6 connections, none ever read.
        let mut held = Vec::new();
        let (mut open, mut refused) = (0, 0);
        for _ in 0..6 {
            let ch = assay_proto::client::channel(&url).expect("channel");
            for _ in 0..100 {
                let req = signed(
                    &attacker,
                    pb::DownloadRequest {
                        hash: hash.0.to_vec(),
                        ..Default::default()
                    },
                );
                match BlobsClient::new(ch.clone()).download(req).await {
                    Ok(stream) => {
                        open += 1;
                        held.push(stream);
                    }
                    Err(e) if e.code() == Code::ResourceExhausted => refused += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(open + refused, 600);
        assert!(open <= 64, "{open} downloads streaming at once");
        assert!(refused > 0);
        // Everyone else is still served: reads and writes of the store.
        let ch = assay_proto::client::channel(&url).expect("channel");
        let started = Instant::now();
        let mut rc = RenterClient::new(ch.clone());
        rc.get_account(pb::GetAccountRequest {
            node_id: honest.id().0.to_vec(),
        })
        .await
        .expect("account");
        rc.faucet(signed(
            &honest,
            pb::FaucetRequest {
                amount: 1_000,
                ..Default::default()
            },
        ))
        .await
        .expect("faucet");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "answered after {:?}",
            started.elapsed()
        );
        // The stalled downloads are dropped after the idle time: their
        // slots come back.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let bytes = assay_proto::client::download(&ch, &attacker, None, &hash, 16 << 20)
            .await
            .expect("a slot is free again");
        assert_eq!(bytes.len(), big.len());
        drop(held);
    });
}

/// Found: an upload whose client went away mid-stream left its temporary
/// file behind, and one that stopped sending held it open for ever.
#[test]
fn an_abandoned_upload_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("coordinator");
    let (_c, url) = coordinator(&data, "127.0.0.1:0", &["--transfer-idle-ms", "1500"]);
    let key = signer(&url, NodeKey::from_seed([70; 32]));
    let own = stored_blobs(&data);
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let _in_runtime = rt.enter();
    rt.block_on(async {
        let bytes = vec![5u8; 3 << 20];
        let header = || {
            signed(
                &key,
                pb::UploadHeader {
                    hash: Hash32::of(&bytes).0.to_vec(),
                    size: bytes.len() as u64,
                    ..Default::default()
                },
            )
        };
        let first = |h: pb::UploadHeader| {
            vec![
                pb::UploadRequest {
                    part: Some(pb::upload_request::Part::Header(h)),
                },
                pb::UploadRequest {
                    part: Some(pb::upload_request::Part::Chunk(bytes[..1 << 20].to_vec())),
                },
            ]
        };
        let wait_for = |want: usize| {
            let data = data.clone();
            async move {
                let started = Instant::now();
                while temporary_files(&data) != want {
                    assert!(
                        started.elapsed() < Duration::from_secs(10),
                        "{} temporary files, not {want}",
                        temporary_files(&data)
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        // A header and one chunk of three, then nothing, on a connection of its own.
        let stall = || {
            let ch = assay_proto::client::channel(&url).expect("channel");
            let stalled = tokio_stream::StreamExt::chain(
                tokio_stream::iter(first(header())),
                tokio_stream::pending(),
            );
            tokio::spawn(async move { BlobsClient::new(ch).upload(stalled).await })
        };
        // A client that stops sending: dropped after the idle time.
        let call = stall();
        wait_for(1).await;
        let e = call.await.expect("task").expect_err("idle");
        assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
        wait_for(0).await;
        // A client that goes away mid-stream (its connection closed).
        let call = stall();
        wait_for(1).await;
        call.abort();
        wait_for(0).await;
        assert_eq!(stored_blobs(&data), own, "nothing half-sent was kept");
    });
}

/// Found: a signed request did not name its coordinator, so one sent to a
/// coordinator could be replayed to another within its expiry (there it
/// was a fresh nonce). Now each coordinator has an id of its own, every
/// request names one, and a request for another is refused.
#[test]
fn a_request_signed_for_one_coordinator_is_refused_by_another() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_a, a_url) = coordinator(&root.join("a"), "127.0.0.1:0", &[]);
    let (_b, b_url) = coordinator(&root.join("b"), "127.0.0.1:0", &[]);
    let for_a = signer(&a_url, NodeKey::from_seed([71; 32]));
    let for_b = signer(&b_url, NodeKey::from_seed([71; 32]));
    assert_ne!(
        for_a.coordinator(),
        for_b.coordinator(),
        "two databases, two ids"
    );
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let _in_runtime = rt.enter();
    let (a, b) = (
        assay_proto::client::channel(&a_url).expect("channel"),
        assay_proto::client::channel(&b_url).expect("channel"),
    );
    rt.block_on(async {
        let faucet = signed(
            &for_a,
            pb::FaucetRequest {
                amount: 1_000,
                ..Default::default()
            },
        );
        RenterClient::new(a.clone())
            .faucet(faucet.clone())
            .await
            .expect("A takes a request signed for it");
        // The same bytes replayed to B: refused, and the answer says why.
        let e = RenterClient::new(b.clone())
            .faucet(faucet)
            .await
            .expect_err("replayed to B");
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        assert!(e.message().contains("GetCoordinator"), "{}", e.message());
        // Every signed call checks it, reads too.
        let blob = b"mine".to_vec();
        assay_proto::client::upload(&a, &for_a, blob.clone().into())
            .await
            .expect("upload to A");
        let e = assay_proto::client::download(&a, &for_b, None, &Hash32::of(&blob), 1 << 20)
            .await
            .expect_err("a download signed for B, sent to A");
        assert!(
            matches!(&e, assay_proto::Error::Rpc(s) if s.code() == Code::Unauthenticated),
            "{e}"
        );
        // Nothing of it reached B's ledger: the key has no account there.
        let account = RenterClient::new(b)
            .get_account(pb::GetAccountRequest {
                node_id: for_b.id().0.to_vec(),
            })
            .await
            .expect("account")
            .into_inner();
        assert_eq!(account.balance, 0);
    });
}

/// Found: any key could send signed requests as fast as the connection
/// carried them, each one a signature check and a store write or read.
/// Now each key has a rate (`--key-requests-per-second`, `--key-burst`):
/// past it the key is told to wait, and other keys are served as before.
#[test]
fn a_key_that_floods_signed_requests_is_slowed_and_others_are_not() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_c, url) = coordinator(
        &tmp.path().join("coordinator"),
        "127.0.0.1:0",
        &["--key-requests-per-second", "5", "--key-burst", "10"],
    );
    let flooder = signer(&url, NodeKey::from_seed([72; 32]));
    let quiet = signer(&url, NodeKey::from_seed([73; 32]));
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let _in_runtime = rt.enter();
    let ch = assay_proto::client::channel(&url).expect("channel");
    rt.block_on(async {
        let hashes = [Hash32::of(b"anything")];
        let (mut served, mut slowed) = (0, Vec::new());
        for _ in 0..40 {
            match assay_proto::client::stat(&ch, &flooder, None, &hashes).await {
                Ok(_) => served += 1,
                Err(assay_proto::Error::Rpc(s)) if s.code() == Code::ResourceExhausted => {
                    slowed.push(s.message().to_string());
                }
                Err(e) => panic!("not a rate refusal: {e}"),
            }
        }
        // The burst of 10, and what 5 per second refilled meanwhile.
        assert!((10..=20).contains(&served), "{served} served");
        assert!(slowed.iter().all(|m| m.contains("retry in")), "{slowed:?}");
        // Writes count too: a faucet call is refused the same way.
        let e = RenterClient::new(ch.clone())
            .faucet(signed(
                &flooder,
                pb::FaucetRequest {
                    amount: 1,
                    ..Default::default()
                },
            ))
            .await
            .expect_err("still over its rate");
        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        // Another key is served at once.
        assay_proto::client::stat(&ch, &quiet, None, &hashes)
            .await
            .expect("a quiet key is served");
        // The flooder, after waiting, is served again.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assay_proto::client::stat(&ch, &flooder, None, &hashes)
            .await
            .expect("served after waiting");
    });
}
