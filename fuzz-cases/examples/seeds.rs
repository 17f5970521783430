//! Writes the seed inputs of every fuzz target into `corpus/<target>/`:
//! real records, headers and requests made by the code that makes them,
//! so the fuzzer starts from what nodes really send.
//!
//! `cargo run -p assay-fuzz-cases --example seeds`

use std::path::Path;

use assay_proto::auth::Signer;
use assay_proto::pb;
use assay_protocol::trace::{Attr, Call};
use assay_protocol::{Failure, Hash32, NodeKey, Outcome, TrapCode};
use prost::Message;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn gguf(tensors: &[(&str, u32, &[u64])]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(b"GGUF");
    f.extend(3u32.to_le_bytes());
    f.extend((tensors.len() as u64).to_le_bytes());
    f.extend(1u64.to_le_bytes());
    let key = b"general.architecture";
    f.extend((key.len() as u64).to_le_bytes());
    f.extend(key);
    f.extend(8u32.to_le_bytes());
    f.extend(5u64.to_le_bytes());
    f.extend(b"llama");
    let mut offset = 0u64;
    for (name, ty, shape) in tensors {
        f.extend((name.len() as u64).to_le_bytes());
        f.extend(name.as_bytes());
        f.extend((shape.len() as u32).to_le_bytes());
        for d in *shape {
            f.extend(d.to_le_bytes());
        }
        f.extend(ty.to_le_bytes());
        f.extend(offset.to_le_bytes());
        offset += shape.iter().product::<u64>() * 4;
    }
    while f.len() % 32 != 0 {
        f.push(0);
    }
    f.extend(vec![0u8; offset as usize]);
    f
}

fn main() {
    // protocol_records
    let records = [
        Failure::new(Outcome::WorkBudgetExhausted)
            .with_call("tensor.matmul")
            .with_error("work budget"),
        Failure::trap(TrapCode::MemoryOutOfBounds),
        Failure::new(Outcome::OutputLimitExceeded).with_output("bulk-000001"),
    ];
    for (i, r) in records.iter().enumerate() {
        write(
            "protocol_records",
            &format!("failure-{i}"),
            r.to_canonical_json().as_bytes(),
        );
    }
    let calls = [
        Call::new(
            "tensor.matmul",
            vec![1, 2],
            vec![Attr::Bool(false), Attr::Bool(true)],
        ),
        Call::new(
            "job-io.tensor-from-input",
            vec![],
            vec![
                Attr::Str("model".into()),
                Attr::U64(4096),
                Attr::U32s(vec![2, 3]),
                Attr::Case("f32".into()),
                Attr::Absent,
                Attr::F32(1.5f32.to_bits()),
                Attr::U32(7),
            ],
        ),
    ];
    for (i, c) in calls.iter().enumerate() {
        write("protocol_records", &format!("call-{i}"), &c.encode());
    }

    // gguf_header: F32 (0) and Q8_0 (8) tensors.
    write("gguf_header", "one-f32", &gguf(&[("w", 0, &[4, 2])]));
    write(
        "gguf_header",
        "two-tensors",
        &gguf(&[
            ("token_embd.weight", 0, &[8, 4]),
            ("blk.0.attn_q.weight", 8, &[32, 2]),
        ]),
    );

    // safetensors_header: the claimed input size, then the JSON header.
    let header = br#"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[2],"data_offsets":[16,20]}}"#;
    let mut st = (8 + header.len() as u64 + 20).to_le_bytes().to_vec();
    st.extend(header);
    write("safetensors_header", "two-tensors", &st);

    // coordinator_request: method byte, sign flag, protobuf bytes.
    let signer = Signer::new(NodeKey::from_seed([7; 32]), Hash32::ZERO);
    let _ = signer.id();
    let req = |method: u8, sign: u8, m: &dyn Fn() -> Vec<u8>| {
        let mut v = vec![method, sign];
        v.extend(m());
        v
    };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "faucet",
            req(0, 1, &|| {
                pb::FaucetRequest {
                    amount: 1_000_000,
                    ..Default::default()
                }
                .encode_to_vec()
            }),
        ),
        (
            "stake",
            req(1, 1, &|| {
                pb::StakeRequest {
                    amount: 10,
                    ..Default::default()
                }
                .encode_to_vec()
            }),
        ),
        (
            "submit-job",
            req(2, 1, &|| {
                pb::SubmitJobRequest {
                    component_hash: vec![1; 32],
                    component_size: 100,
                    inputs: vec![pb::BlobRef {
                        name: "a".into(),
                        hash: vec![2; 32],
                        size: 3,
                    }],
                    spec: Some(pb::JobSpec {
                        fuel: 1_000_000,
                        work_budget: 1_000,
                        ..Default::default()
                    }),
                    shards: 2,
                    max_price: 10,
                    inline_blobs: vec![b"abc".to_vec()],
                    ..Default::default()
                }
                .encode_to_vec()
            }),
        ),
        (
            "get-job",
            req(3, 0, &|| {
                pb::GetJobRequest {
                    job_id: vec![3; 32],
                    ..Default::default()
                }
                .encode_to_vec()
            }),
        ),
        (
            "list-jobs",
            req(5, 0, &|| pb::ListJobsRequest::default().encode_to_vec()),
        ),
        (
            "register",
            req(7, 1, &|| {
                pb::RegisterRequest {
                    hardware: Some(pb::Hardware {
                        cpu_cores: 4,
                        memory_bytes: 1 << 30,
                        gpus: vec![],
                    }),
                    price: 5,
                    slots: 2,
                    version: "fuzz".into(),
                    ..Default::default()
                }
                .encode_to_vec()
            }),
        ),
        (
            "take-leases",
            req(9, 1, &|| {
                pb::TakeLeasesRequest {
                    max: 4,
                    ..Default::default()
                }
                .encode_to_vec()
            }),
        ),
        (
            "list-receipts",
            req(13, 0, &|| {
                pb::ListReceiptsRequest::default().encode_to_vec()
            }),
        ),
        (
            "get-supply",
            req(20, 0, &|| pb::GetSupplyRequest::default().encode_to_vec()),
        ),
        (
            "create-cluster",
            req(31, 1, &|| {
                pb::CreateClusterRequest::default().encode_to_vec()
            }),
        ),
        (
            "stat",
            req(38, 1, &|| {
                pb::StatRequest {
                    hashes: vec![vec![4; 32]],
                    ..Default::default()
                }
                .encode_to_vec()
            }),
        ),
        (
            "download",
            req(39, 1, &|| {
                pb::DownloadRequest {
                    hash: vec![4; 32],
                    ..Default::default()
                }
                .encode_to_vec()
            }),
        ),
    ];
    for (name, bytes) in seeds {
        write("coordinator_request", name, &bytes);
    }
    // component_loader: real guests.
    for guest in [assay_guests::Guest::Hello, assay_guests::Guest::Hostile] {
        write(
            "component_loader",
            &format!("{guest:?}").to_lowercase(),
            guest.bytes(),
        );
    }
    // wit_host_surface: programs for the wit-fuzz guest (its
    // `examples/wit-fuzz/src/lib.rs` reads them). Each calls one op on two
    // live tensors — fill [2, 3] and fill [3, 2] — with arguments of 1s;
    // one more walks every op with bytes from a fixed sequence.
    let fills = [2u8, 2, 2, 3, 100, 2, 2, 3, 2, 100];
    for op in 0u8..40 {
        let mut program = fills.to_vec();
        program.push(op);
        program.extend([1u8; 24]);
        write("wit_host_surface", &format!("op-{op:02}"), &program);
    }
    let mut state = 0x2545_f491_u32;
    let mut walk = fills.to_vec();
    for op in 0u8..40 {
        walk.push(op);
        for _ in 0..12 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            walk.push((state % 200) as u8);
        }
    }
    write("wit_host_surface", "every-op", &walk);
    println!("seeds written under fuzz-cases/corpus/");
}
