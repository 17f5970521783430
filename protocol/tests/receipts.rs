//! Receipts verify with the node's key, and any change breaks them.

use assay_protocol::{
    BackendDescriptor, Hash32, JobSpec, NodeKey, Outcome, Receipt, ReceiptBody, Shard, WorkDone,
    inputs_root, job_id, outputs_root,
};

fn sample_body(key: &NodeKey) -> ReceiptBody {
    let component = Hash32::of(b"component");
    let input_hash = Hash32::of(b"input a");
    let inputs = inputs_root([("a", 7u64, &input_hash)]);
    ReceiptBody {
        semantics: assay_protocol::SEMANTICS_VERSION,
        job_id: job_id(&component, &inputs, &JobSpec::default()),
        shard: Shard::default(),
        provider_id: key.id(),
        component_hash: component,
        inputs_root: inputs,
        outputs_root: outputs_root([("c", &b"result"[..])]),
        trace_root: Hash32([9; 32]),
        outcome: Outcome::Success,
        fuel_used: 12345,
        work: WorkDone {
            flops: 1000,
            bytes: 2000,
        },
        backend: BackendDescriptor {
            kind: "cpu".into(),
            device: "test".into(),
        },
        telemetry: None,
        started_at_ms: 1,
        finished_at_ms: 2,
    }
}

#[test]
fn receipt_verifies_with_the_signers_key() {
    let key = NodeKey::from_seed([7; 32]);
    let receipt = sample_body(&key).sign(&key).expect("sign");
    receipt.verify().expect("a fresh receipt verifies");
    // Round trip through JSON keeps it valid.
    let json = serde_json::to_string(&receipt).expect("json");
    let back: Receipt = serde_json::from_str(&json).expect("parse");
    back.verify().expect("still verifies");
}

#[test]
fn any_flipped_byte_of_the_signed_message_or_signature_fails() {
    let key = NodeKey::from_seed([9; 32]);
    let receipt = sample_body(&key).sign(&key).expect("sign");
    let message = receipt.body.signing_bytes();
    for i in 0..message.len() {
        let mut tampered = message.clone();
        tampered[i] ^= 0x01;
        assert!(
            receipt
                .body
                .provider_id
                .verify(&tampered, &receipt.signature)
                .is_err(),
            "flipping byte {i} of the signed message must break the signature"
        );
    }
    for i in 0..64 {
        let mut bad = receipt.clone();
        bad.signature.0[i] ^= 0x80;
        assert!(bad.verify().is_err(), "flipped signature byte {i} verified");
    }
}

#[test]
fn changing_any_field_fails() {
    let key = NodeKey::from_seed([3; 32]);
    let receipt = sample_body(&key).sign(&key).expect("sign");
    let mut cases: Vec<Receipt> = Vec::new();
    let mut r = receipt.clone();
    r.body.fuel_used += 1;
    cases.push(r);
    let mut r = receipt.clone();
    r.body.work.flops += 1;
    cases.push(r);
    let mut r = receipt.clone();
    r.body.outcome = Outcome::Trap;
    cases.push(r);
    let mut r = receipt.clone();
    r.body.outputs_root.0[31] ^= 1;
    cases.push(r);
    let mut r = receipt.clone();
    r.body.backend.device.push('x');
    cases.push(r);
    let mut r = receipt.clone();
    r.body.provider_id = NodeKey::from_seed([4; 32]).id();
    cases.push(r);
    for (i, case) in cases.iter().enumerate() {
        assert!(case.verify().is_err(), "tampered case {i} verified");
    }
}

#[test]
fn a_flipped_character_in_the_json_receipt_fails() {
    let key = NodeKey::from_seed([5; 32]);
    let receipt = sample_body(&key).sign(&key).expect("sign");
    let json = serde_json::to_string(&receipt).expect("json");
    let mut failures = 0;
    let mut parsed = 0;
    for (i, ch) in json.char_indices() {
        // flip hex digits and decimal digits: they still parse
        let replacement = match ch {
            '0'..='8' => ((ch as u8) + 1) as char,
            '9' => '0',
            'a'..='e' => ((ch as u8) + 1) as char,
            _ => continue,
        };
        let mut tampered = json.clone();
        tampered.replace_range(i..i + 1, &replacement.to_string());
        if let Ok(r) = serde_json::from_str::<Receipt>(&tampered) {
            if r == receipt {
                // the flip hit a field name that serde ignores: same receipt
                continue;
            }
            parsed += 1;
            if r.verify().is_err() {
                failures += 1;
            } else {
                panic!("tampered JSON verified: byte {i} {ch} -> {replacement}");
            }
        }
    }
    assert!(
        parsed > 100,
        "the test must exercise many tamperings, got {parsed}"
    );
    assert_eq!(failures, parsed);
}

#[test]
fn key_file_is_created_private_and_reloaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys/node.key");
    let a = NodeKey::load_or_create(&path).expect("create");
    let b = NodeKey::load_or_create(&path).expect("reload");
    assert_eq!(a.id(), b.id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = NodeKey::load_or_create(&path).expect_err("world-readable key refused");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}

#[test]
fn job_id_depends_on_every_deciding_field() {
    let c = Hash32::of(b"c");
    let i = Hash32::of(b"i");
    let base = JobSpec::default();
    let id = job_id(&c, &i, &base);
    let mut s = base.clone();
    s.fuel += 1;
    assert_ne!(job_id(&c, &i, &s), id);
    let mut s = base.clone();
    s.params.insert("batch".into(), "16".into());
    assert_ne!(job_id(&c, &i, &s), id);
    let mut s = base.clone();
    s.wall_clock_ms += 1;
    assert_eq!(
        job_id(&c, &i, &s),
        id,
        "the watchdog is not part of the job"
    );
}
