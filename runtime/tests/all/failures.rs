//! The frozen failure records (`assay/failure/v1`): what every outcome class
//! hashes. A failed run's only output is its record, so these bytes — and
//! the outputs roots they make — must never move with a reworded message or
//! a wasmtime upgrade. Changing one is a change of `SEMANTICS_VERSION`.

use assay_protocol::{Failure, Outcome, outputs_root};

use crate::{hostile, hostile_spec, runtime};

/// (hostile mode, outcome, the `error` output, blake3 outputs root as hex).
const GOLDEN: &[(&str, Outcome, &str, &str)] = &[
    (
        "guest-error",
        Outcome::GuestError,
        r#"{"kind":"guest-error","version":1}"#,
        "35887a27788946da8baac9786f97bc33cb30ae2ae70743481cdd94ebf0fabc84",
    ),
    (
        "missing-input",
        Outcome::GuestError,
        r#"{"call":"job-io.read-input","error":"not-found","kind":"guest-error","version":1}"#,
        "fec791665529e802b0fb365f0792295433306353f42e998da91a5006bfef2d28",
    ),
    (
        "bad-output-name",
        Outcome::GuestError,
        r#"{"call":"job-io.write-output","error":"invalid-argument","kind":"guest-error","version":1}"#,
        "3bae5ca40631c4f8a782515a075e35dfb4e0e3ced11ee73323bb78b6a6b47a6c",
    ),
    (
        "panic",
        Outcome::Trap,
        r#"{"kind":"trap","trap":"unreachable","version":1}"#,
        "3c7fced989a565f7b13787aa5fa250913d7817a90e9d89889319591e4cb09c16",
    ),
    (
        "unwrap-refusal",
        Outcome::Trap,
        r#"{"call":"job-io.read-input","error":"not-found","kind":"trap","trap":"unreachable","version":1}"#,
        "417739293888ef7bc8a68f01119b95526f7266eafdcfe91e982b8edab94ed41e",
    ),
    (
        "deep-recursion",
        Outcome::Trap,
        r#"{"kind":"trap","trap":"stack-overflow","version":1}"#,
        "d69619959a8c2aefaf462ef7fbb65cecf33e948559d76bcbe664dd54cd5e2061",
    ),
    (
        "wild-pointer",
        Outcome::Trap,
        r#"{"kind":"trap","trap":"memory-out-of-bounds","version":1}"#,
        "f37b3b4bf05ab79f4b54a058aefad6e13a34998e703db14f54aac68dc512325e",
    ),
    (
        "infinite-loop",
        Outcome::FuelExhausted,
        r#"{"kind":"fuel-exhausted","version":1}"#,
        "f822f0ad3f62e85cc7b4b24845ae301918d3c7fb1a745fd1aa78fd4c24c35ad8",
    ),
    (
        "work-bomb",
        Outcome::WorkBudgetExhausted,
        r#"{"call":"tensor.matmul","kind":"work-budget-exhausted","version":1}"#,
        "70b20c43d408d902e3a83aed191cac2f51459971b92e7b3da39ca9b7042232d3",
    ),
    (
        "memory-bomb",
        Outcome::MemoryLimit,
        r#"{"kind":"memory-limit","version":1}"#,
        "416d4ec8f4f22e55722d9b3496d9ea234469e0d748a783a2f898933c694c04f1",
    ),
    (
        "quota-bomb",
        Outcome::GpuQuotaExceeded,
        r#"{"call":"tensor.fill","kind":"gpu-quota-exceeded","version":1}"#,
        "9856aebdff29504cb523615d40d10a476a52e734b1da163e009ba0a636c62046",
    ),
    (
        "tensor-hoard",
        Outcome::GpuQuotaExceeded,
        r#"{"call":"tensor.fill","kind":"gpu-quota-exceeded","version":1}"#,
        "9856aebdff29504cb523615d40d10a476a52e734b1da163e009ba0a636c62046",
    ),
    (
        "huge-output",
        Outcome::OutputLimitExceeded,
        r#"{"call":"job-io.write-output","kind":"output-limit-exceeded","output":"bulk-000008","version":1}"#,
        "f8f4b4ff32805108fe52c34357ebaad6565d68d4139f30e3fbacb516c5a8f10d",
    ),
];

#[test]
fn every_outcome_class_hashes_its_frozen_record() {
    let rt = runtime();
    let spec = hostile_spec();
    let mut classes: Vec<Outcome> = Vec::new();
    for (mode, outcome, record, root) in GOLDEN {
        let r = hostile(&rt, mode, &spec);
        let message = r.error.clone().unwrap_or_default();
        assert_eq!(r.outcome, *outcome, "mode {mode}: {message}");
        let written = String::from_utf8_lossy(&r.outputs["error"]).into_owned();
        assert_eq!(
            written, *record,
            "mode {mode}: the record moved ({message})"
        );
        assert_eq!(r.outputs.len(), 1, "mode {mode}: a failure has one output");
        let parsed = Failure::parse(record.as_bytes()).expect("a golden record parses");
        assert_eq!(r.failure.as_ref(), Some(&parsed), "mode {mode}");
        let expected_root = outputs_root([("error", record.as_bytes())]);
        assert_eq!(r.receipt.body.outputs_root, expected_root, "mode {mode}");
        assert_eq!(
            expected_root.to_hex(),
            *root,
            "mode {mode}: the outputs root of a frozen record moved"
        );
        classes.push(r.outcome);
    }
    for class in Outcome::ALL.into_iter().filter(|o| !o.is_success()) {
        assert!(classes.contains(&class), "no golden record for {class}");
    }
}

#[test]
fn the_human_message_rides_beside_the_record_and_is_not_hashed() {
    let rt = runtime();
    let r = hostile(&rt, "panic", &hostile_spec());
    let message = r.error.clone().unwrap_or_default();
    // wasmtime's trap text and the guest's panic message are for people...
    assert!(message.contains("panicked on purpose"), "{message}");
    assert!(message.contains("trap"), "{message}");
    // ...and not in what is hashed.
    let record = String::from_utf8_lossy(&r.outputs["error"]).into_owned();
    assert!(!record.contains("panicked"), "{record}");
    assert!(!record.contains("wasm trap"), "{record}");
    let r = hostile(&rt, "guest-error", &hostile_spec());
    assert!(
        r.error.as_deref().unwrap_or("").contains("on purpose"),
        "{:?}",
        r.error
    );
}
