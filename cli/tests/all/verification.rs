//! Verification end to end, as users run it: a coordinator, providers and
//! verifiers as separate `assay` processes on loopback, renters using the
//! CLI. A provider that cheats (the hidden `--cheat-rate` knob) is caught,
//! slashed and its work redone; a verifier that lies (`--lie-rate`) is
//! overruled by the arbiter and slashed, and two colluding liars cannot
//! outvote it; a cheat's own rubber-stamping verifier is caught by the
//! arbiter's re-check and both are slashed; a lie or a cheat about one step
//! is bisected to that step, which the arbiter recomputes alone; thousands of honest jobs checked by
//! verifiers on other thread counts never produce a mismatch; and the ledger
//! balances to the µIOSD through all of it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use assay_protocol::market::{billable_units, cost};
use assay_protocol::{Hash32, Receipt};
use serde_json::Value;

const STAKE: u64 = 1_000_000;
const FAUCET: u64 = 1_000_000_000_000;

/// The coordinator of these tests: short epochs, a challenge window long
/// enough for a cheat to be caught before its receipts would settle, and
/// an arbiter (its key made here, named to the coordinator; the returned
/// process re-executes what it is given).
fn market(root: &Path, window_ms: &str, rate: &str) -> (Proc, String, Proc) {
    market_with(root, window_ms, rate, &[])
}

fn market_with(root: &Path, window_ms: &str, rate: &str, extra: &[&str]) -> (Proc, String, Proc) {
    market_watched(root, window_ms, rate, extra, &[])
}

/// [`market_with`], the arbiter started with `arbiter_extra` flags (e.g.
/// `--metrics-listen`).
fn market_watched(
    root: &Path,
    window_ms: &str,
    rate: &str,
    extra: &[&str],
    arbiter_extra: &[&str],
) -> (Proc, String, Proc) {
    let (arbiter_home, arbiter) = arbiter_key(root);
    let mut args = vec![
        "--epoch-ms",
        "300",
        "--settlement-delay-ms",
        window_ms,
        "--verify-rate",
        rate,
        // Verified receipts settle after the worst-case dispute, three
        // check deadlines (a verification, a bisection game, an
        // arbitration): about 40 s here.
        "--check-ttl-ms",
        "13000",
        "--preference-window-ms",
        "0",
        "--arbiter-key",
        &arbiter,
    ];
    args.extend_from_slice(extra);
    let (c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &args);
    let arbiter = verifier(&url, &arbiter_home, arbiter_extra);
    (c, url, arbiter)
}

fn status(home: &Path, url: &str, job: &str) -> Value {
    json(&ok(assay(home, url, &["job", "status", job, "--json"])))
}

fn wait_all_settled(home: &Path, url: &str, jobs: &[String], secs: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let all: Vec<Value> = jobs.iter().map(|j| status(home, url, j)).collect();
        if all.iter().all(|s| s["state"] == "settled") {
            return all;
        }
        // The whole status of every unsettled job, so a failure on a loaded
        // CI machine says which shard stood where.
        assert!(
            Instant::now() < deadline,
            "not all settled in {secs} s: {}",
            all.iter()
                .filter(|s| s["state"] != "settled")
                .map(|s| format!("{s:#}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// `slash_bps` 5000 of `stake`: (slashed, verifier's bounty, referee's share, renter's rest).
fn slash_split(stake: u64) -> (u64, u64, u64, u64) {
    let s = stake / 2;
    let (bounty, referee) = (s / 2, s / 4);
    (s, bounty, referee, s - bounty - referee)
}

/// What a settled shard cost the renter: the provider's pay, plus the
/// verifier's fee (a re-execution at the same price) if a verifier agreed.
fn renter_cost(shard: &Value, price: u64) -> u64 {
    let receipt: Receipt = serde_json::from_value(shard["receipt"].clone()).expect("receipt");
    receipt
        .verify()
        .expect("the receipt is signed by its provider");
    let pay = cost(
        price,
        billable_units(receipt.body.fuel_used, &receipt.body.work),
    )
    .expect("fits");
    assert_eq!(u(&shard["paid"]), pay);
    let verified = shard["verification"]["state"] == "verified";
    pay + if verified { pay } else { 0 }
}

/// Publishes the matmul job (inputs written into `root`) at max price 100
/// with `extra` flags; returns the job id.

#[test]
fn a_cheating_provider_is_caught_slashed_and_its_jobs_redone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    // A 120 s challenge window: the cheater's unsampled receipts must still
    // be unsettled when it is caught and audited, so the audit finds them —
    // on a loaded CI machine (the chat tests beside it) 45 s once let one
    // settle first; its honest successor's settle 120 s later.
    let (_c, url, _arbiter) = market(root, "120000", "0.2");
    let renter = root.join("renter");
    let (cheat_home, honest_home) = (root.join("cheater"), root.join("honest"));
    let (cheater, honest) = (node_id(&cheat_home, &url), node_id(&honest_home, &url));
    let _v1 = verifier(&url, &root.join("v1"), &["--threads", "2"]);
    let _v2 = verifier(&url, &root.join("v2"), &[]);
    // The cheater runs alone first: every shard is its, and every result wrong.
    let cheat = provider_with(&url, &cheat_home, 10, 2, &["--cheat-rate", "1"]);
    wait_registered(&renter, &url, &cheater);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", &FAUCET.to_string()],
    ));
    let before = u(&account(&renter, &url, None)["balance"]);

    let (component, a, b) = matmul_inputs(root);
    let component = component.to_string_lossy().to_string();
    let mut jobs = Vec::new();
    for rate in ["1", "0.2", "0.2"] {
        jobs.push(publish_matmul(
            root,
            &renter,
            &url,
            &["--shards", "2", "--verify-rate", rate],
        ));
    }
    // The cheater is caught on the job checked at p = 1; every other receipt
    // of its, still in the challenge window, is then audited.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let rejected: usize = jobs
            .iter()
            .map(|j| status(&renter, &url, j))
            .map(|s| {
                s["shards"]
                    .as_array()
                    .expect("shards")
                    .iter()
                    .map(|x| x["rejected_receipts"].as_array().map_or(0, Vec::len))
                    .sum::<usize>()
            })
            .sum();
        if rejected == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {rejected} of the cheater's 6 receipts were rejected"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(cheat);
    let _honest = provider(&url, &honest_home, 20, 2);
    let settled = wait_all_settled(&renter, &url, &jobs, 420);

    // Every shard ends with the honest provider's result, which is what a
    // local run gives.
    let mut local = BTreeMap::new();
    for i in 0..2 {
        let shard = format!("{i}/2");
        let mut run = vec![
            "run", &component, "--input", &a, "--input", &b, "--shard", &shard, "--json",
        ];
        run.extend(LIMITS);
        local.insert(
            i,
            json(&ok(assay(&root.join("local"), &url, &run)))["outputs_root"].clone(),
        );
    }
    let mut spent = 0;
    for s in &settled {
        for (i, x) in s["shards"].as_array().expect("shards").iter().enumerate() {
            assert_eq!(x["provider"].as_str(), Some(honest.as_str()), "{x:#}");
            assert_eq!(
                x["outputs_root"], local[&i],
                "job {} shard {i}",
                s["job_id"]
            );
            assert_eq!(x["rejected_receipts"].as_array().map(Vec::len), Some(1));
            spent += renter_cost(x, 20);
        }
    }
    // The cheater: never paid, slashed once per wrong receipt, suspended.
    let mut stake = STAKE;
    let mut compensation = 0;
    for _ in 0..6 {
        let (s, _, _, rest) = slash_split(stake);
        stake -= s;
        compensation += rest;
    }
    let c = account(&renter, &url, Some(&cheater));
    assert_eq!(u(&c["earnings"]), 0, "no pay for wrong results");
    assert_eq!(u(&c["stake"]), stake, "slashed six times");
    let r = account(&renter, &url, None);
    assert_eq!(
        u(&r["balance"]),
        before - spent,
        "the renter paid only for correct work (IOSD)"
    );
    assert_eq!(
        u(&r["io"]["balance"]),
        compensation,
        "and got the rest of each slash (stakes are IO)"
    );
    let text =
        String::from_utf8_lossy(&ok(assay(&renter, &url, &["job", "status", &jobs[0]])).stdout)
            .to_string();
    assert!(text.contains("proven wrong"), "{text}");
    assert!(
        text.contains("guarantee    each receipt re-executed with probability p = 1"),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&ok(assay(&renter, &url, &["ledger", "verify"])).stdout)
            .contains("ledger OK")
    );
}

#[test]
fn a_lying_verifier_is_overruled_by_the_arbiter_and_slashed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url, _arbiter) = market(root, "1000", "1");
    let renter = root.join("renter");
    let (p_home, liar_home, ref_home) = (root.join("p"), root.join("liar"), root.join("arbiter"));
    let (p, liar, referee) = (
        node_id(&p_home, &url),
        node_id(&liar_home, &url),
        node_id(&ref_home, &url),
    );
    let _p = provider(&url, &p_home, 10, 1);
    // Only the liar is online at first, so it takes the check.
    let _liar = verifier(&url, &liar_home, &["--lie-rate", "1"]);
    wait_registered(&renter, &url, &p);
    wait_staked(&renter, &url, &liar, STAKE);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", &FAUCET.to_string()],
    ));
    let job = publish_matmul(root, &renter, &url, &[]);
    let settled = wait_job(&renter, &url, &job, 60, |s| s["state"] == "settled");
    let shard = &settled["shards"][0];
    let verdicts = shard["verification"]["verdicts"]
        .as_array()
        .expect("verdicts");
    assert_eq!(verdicts.len(), 2, "{shard:#}");
    assert_eq!(
        (
            verdicts[0]["verifier"].as_str(),
            verdicts[0]["agrees"].as_bool()
        ),
        (Some(liar.as_str()), Some(false))
    );
    assert_eq!(
        (
            verdicts[1]["verifier"].as_str(),
            verdicts[1]["role"].as_str(),
            verdicts[1]["agrees"].as_bool()
        ),
        (Some(referee.as_str()), Some("referee"), Some(true))
    );
    let pay = u(&shard["paid"]);
    let (_, _, referee_share, _) = slash_split(STAKE);
    let (slashed, ..) = slash_split(STAKE);
    assert_eq!(
        u(&account(&renter, &url, Some(&liar))["stake"]),
        STAKE - slashed
    );
    // The verifiers' and providers' faucet gave 1,000 IO; they staked STAKE.
    let io_left = 1_000_000_000 - STAKE;
    let r = account(&renter, &url, Some(&referee));
    assert_eq!(u(&r["verifier_earnings"]), pay, "the referee's fee (IOSD)");
    assert_eq!(
        u(&r["io"]["balance"]),
        io_left + referee_share,
        "and its share of the slash (IO)"
    );
    let fee = pay * 200 / 10_000;
    let pa = account(&renter, &url, Some(&p));
    assert_eq!(u(&pa["earnings"]), pay - fee, "the provider is paid");
    assert_eq!(
        u(&pa["io"]["balance"]),
        io_left + (slashed - referee_share),
        "and compensated in IO"
    );
    assert!(
        String::from_utf8_lossy(&ok(assay(&renter, &url, &["ledger", "verify"])).stdout)
            .contains("ledger OK")
    );
}

/// Two verifiers run by one person lie about every check, and no honest
/// verifier is online: they cannot outvote anyone, because only the
/// arbiter's re-execution decides a dispute. The honest provider keeps its
/// stake, both liars lose theirs, and the job settles with the honest
/// result.
#[test]
fn two_colluding_liars_cannot_slash_an_honest_provider() {
    for store in stores("liars") {
        eprintln!("on {}", store.name);
        two_colluding_liars_on(&store);
    }
}

fn store_flags(store: &Store) -> Vec<&str> {
    store.flags.iter().map(String::as_str).collect()
}

fn two_colluding_liars_on(store: &Store) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url, _arbiter) = market_with(root, "1000", "1", &store_flags(store));
    let renter = root.join("renter");
    let p_home = root.join("p");
    let p = node_id(&p_home, &url);
    let _p = provider(&url, &p_home, 10, 4);
    let liar_homes = [root.join("liar1"), root.join("liar2")];
    let liars: Vec<String> = liar_homes.iter().map(|h| node_id(h, &url)).collect();
    let _liars: Vec<Proc> = liar_homes
        .iter()
        .map(|h| verifier(&url, h, &["--lie-rate", "1"]))
        .collect();
    wait_registered(&renter, &url, &p);
    for l in &liars {
        wait_staked(&renter, &url, l, STAKE);
    }
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", &FAUCET.to_string()],
    ));
    // Four shards: a liar's stake bonds two checks at a time, so both get some.
    let job = publish_matmul(root, &renter, &url, &["--shards", "4"]);
    let settled = wait_job(&renter, &url, &job, 120, |s| s["state"] == "settled");
    for shard in settled["shards"].as_array().expect("shards") {
        assert_eq!(shard["provider"].as_str(), Some(p.as_str()), "{shard:#}");
        assert_eq!(shard["verification"]["state"], "verified", "{shard:#}");
        let verdicts = shard["verification"]["verdicts"]
            .as_array()
            .expect("verdicts");
        let last = verdicts.last().expect("a verdict");
        assert_eq!(last["role"], "referee", "the arbiter decided: {shard:#}");
        assert_eq!(last["agrees"], true, "{shard:#}");
    }
    assert_eq!(
        u(&account(&renter, &url, Some(&p))["stake"]),
        STAKE,
        "the honest provider keeps its stake"
    );
    for l in &liars {
        let stake = u(&account(&renter, &url, Some(l))["stake"]);
        assert!(stake < STAKE, "liar {l} kept its stake {stake}");
    }
    assert!(
        String::from_utf8_lossy(&ok(assay(&renter, &url, &["ledger", "verify"])).stdout)
            .contains("ledger OK")
    );
}

/// Disputes are bisected before the arbiter runs. A verifier that lies
/// about one step of its re-execution (`--lie-step`), and a provider that
/// computed one step wrong (`--cheat-step`), are each taken by the game
/// between the two traces to that step; the arbiter recomputes it alone
/// from the inputs the honest side revealed, never the job, and the liar
/// is slashed. A verifier that lies about a call the guest made
/// (`--lie-call`) is convicted by re-running the guest up to that step.
#[test]
fn a_lie_and_a_cheat_are_each_bisected_to_one_step() {
    for store in stores("bisect") {
        eprintln!("on {}", store.name);
        // A lie about an op's output: the arbiter recomputes that op.
        a_lie_bisected_on(&store, "--lie-step", "recomputed by the arbiter");
        // A lie about the guest's call: it re-runs the guest up to there.
        a_lie_bisected_on(
            &store,
            "--lie-call",
            "the arbiter re-ran the guest up to it",
        );
        // A receipt of calls only: the lie is in the data trace the
        // provider commits to when disputed (the default).
        a_cheat_bisected_on(&store, &["--cheat-step"]);
        // A receipt whose trace hashes outputs: the lie is in the receipt.
        a_cheat_bisected_on(&store, &["--cheat-step", "--trace", "outputs"]);
    }
}

/// The arbiter's counters: (steps recomputed, steps handed back for a full
/// re-execution, fuel burnt re-executing jobs).
fn arbiter_runs(port: u16) -> (u64, u64, u64) {
    let m = metrics(port);
    let value = |name: &str| metric(&m, name) as u64;
    (
        value("assay_verifier_step_replays_total"),
        value("assay_verifier_step_fallbacks_total"),
        value("assay_verifier_fuel_used_total"),
    )
}

/// The market of the bisection tests: every receipt checked, on `store`,
/// its arbiter serving its metrics on the returned port.
fn bisecting_market(root: &Path, store: &Store) -> (Proc, String, Proc, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (c, url, arbiter) = market_watched(
        root,
        "1000",
        "1",
        &store_flags(store),
        &["--metrics-listen", &listen],
    );
    (c, url, arbiter, port)
}

fn a_lie_bisected_on(store: &Store, knob: &str, decided: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url, _arbiter, port) = bisecting_market(root, store);
    let renter = root.join("renter");
    let (p_home, liar_home) = (root.join("p"), root.join("liar"));
    let (p, liar) = (node_id(&p_home, &url), node_id(&liar_home, &url));
    let _p = provider(&url, &p_home, 10, 1);
    let _liar = verifier(&url, &liar_home, &[knob]);
    wait_registered(&renter, &url, &p);
    wait_staked(&renter, &url, &liar, STAKE);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", &FAUCET.to_string()],
    ));
    let job = publish_matmul(root, &renter, &url, &[]);
    let settled = wait_job(&renter, &url, &job, 90, |s| s["state"] == "settled");
    let shard = &settled["shards"][0];
    assert_eq!(shard["verification"]["state"], "verified", "{shard:#}");
    let verdicts = shard["verification"]["verdicts"]
        .as_array()
        .expect("verdicts");
    let last = verdicts.last().expect("the arbiter's verdict");
    assert_eq!(
        (last["role"].as_str(), last["agrees"].as_bool()),
        (Some("referee"), Some(true)),
        "{shard:#}"
    );
    let how = last["arbitration"].as_str().unwrap_or_default();
    eprintln!("the lie's arbitration: {how}");
    assert!(how.contains(decided), "decided on one step: {how}");
    assert!(!how.starts_with("full re-execution"), "{how}");
    let (replayed, handed_back, fuel) = arbiter_runs(port);
    assert_eq!((replayed, handed_back), (1, 0), "one step decided alone");
    assert_eq!(fuel, 0, "the arbiter never re-executed the job in full");
    assert!(
        u(&account(&renter, &url, Some(&liar))["stake"]) < STAKE,
        "the liar is slashed"
    );
    assert_eq!(u(&account(&renter, &url, Some(&p))["stake"]), STAKE);
    let text = String::from_utf8_lossy(&ok(assay(&renter, &url, &["job", "status", &job])).stdout)
        .to_string();
    assert!(text.contains(decided), "{text}");
    assert!(
        String::from_utf8_lossy(&ok(assay(&renter, &url, &["ledger", "verify"])).stdout)
            .contains("ledger OK")
    );
}

fn a_cheat_bisected_on(store: &Store, knobs: &[&str]) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url, _arbiter, port) = bisecting_market(root, store);
    let renter = root.join("renter");
    let (cheat_home, honest_home) = (root.join("cheater"), root.join("honest"));
    let (cheater, honest) = (node_id(&cheat_home, &url), node_id(&honest_home, &url));
    let _v = verifier(&url, &root.join("v"), &[]);
    let cheat = provider_with(&url, &cheat_home, 10, 1, knobs);
    wait_registered(&renter, &url, &cheater);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", &FAUCET.to_string()],
    ));
    let job = publish_matmul(root, &renter, &url, &[]);
    wait_job(&renter, &url, &job, 90, |s| {
        s["shards"][0]["rejected_receipts"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
    });
    let (replayed, handed_back, fuel) = arbiter_runs(port);
    assert_eq!(
        (replayed, handed_back, fuel),
        (1, 0, 0),
        "one step recomputed, the job never"
    );
    let (slashed, ..) = slash_split(STAKE);
    assert_eq!(
        u(&account(&renter, &url, Some(&cheater))["stake"]),
        STAKE - slashed
    );
    drop(cheat);
    let _honest = provider(&url, &honest_home, 20, 1);
    let settled = wait_job(&renter, &url, &job, 90, |s| s["state"] == "settled");
    let shard = &settled["shards"][0];
    assert_eq!(
        shard["provider"].as_str(),
        Some(honest.as_str()),
        "{shard:#}"
    );
    assert_eq!(shard["verification"]["state"], "verified", "{shard:#}");
    assert!(
        String::from_utf8_lossy(&ok(assay(&renter, &url, &["ledger", "verify"])).stdout)
            .contains("ledger OK")
    );
}

/// A cheating provider whose own verifier agrees with everything without
/// re-executing: the arbiter re-checks agreements (here every one,
/// `--recheck-rate 1`), finds the result wrong, and slashes both; an honest
/// provider and verifier then redo the work.
#[test]
fn a_cheat_and_its_rubber_stamp_verifier_are_both_slashed() {
    for store in stores("stamp") {
        eprintln!("on {}", store.name);
        rubber_stamp_on(&store);
    }
}

fn rubber_stamp_on(store: &Store) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let mut flags = vec!["--recheck-rate", "1"];
    flags.extend(store_flags(store));
    let (_c, url, _arbiter) = market_with(root, "1000", "1", &flags);
    let renter = root.join("renter");
    let (cheat_home, stamp_home) = (root.join("cheater"), root.join("stamp"));
    let (cheater, stamp) = (node_id(&cheat_home, &url), node_id(&stamp_home, &url));
    let cheat = provider_with(&url, &cheat_home, 10, 2, &["--cheat-rate", "1"]);
    let stamper = verifier(&url, &stamp_home, &["--rubber-stamp"]);
    wait_registered(&renter, &url, &cheater);
    wait_staked(&renter, &url, &stamp, STAKE);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", &FAUCET.to_string()],
    ));
    let job = publish_matmul(root, &renter, &url, &[]);
    wait_job(&renter, &url, &job, 90, |s| {
        s["shards"][0]["rejected_receipts"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    drop((cheat, stamper));
    let (slashed, ..) = slash_split(STAKE);
    for (who, id) in [("the cheater", &cheater), ("its verifier", &stamp)] {
        let a = account(&renter, &url, Some(id));
        assert_eq!(u(&a["stake"]), STAKE - slashed, "{who} is slashed: {a:#}");
        assert_eq!(
            u(&a["earnings"]) + u(&a["verifier_earnings"]),
            0,
            "{who} is not paid"
        );
    }
    let honest_home = root.join("honest");
    let honest = node_id(&honest_home, &url);
    let _honest = provider(&url, &honest_home, 20, 2);
    let _v = verifier(&url, &root.join("v"), &[]);
    let settled = wait_job(&renter, &url, &job, 120, |s| s["state"] == "settled");
    let shard = &settled["shards"][0];
    assert_eq!(
        shard["provider"].as_str(),
        Some(honest.as_str()),
        "{shard:#}"
    );
    assert_eq!(shard["verification"]["state"], "verified", "{shard:#}");
    assert!(
        String::from_utf8_lossy(&ok(assay(&renter, &url, &["ledger", "verify"])).stdout)
            .contains("ledger OK")
    );
}

/// 2,000 honest shards, every one re-executed (p = 1) by verifiers on other
/// thread counts than the providers', a tenth of the agreements re-checked
/// by the arbiter: not one mismatch, nobody slashed.
#[test]
fn two_thousand_honest_jobs_checked_on_other_thread_counts_never_mismatch() {
    const JOBS: u32 = 8;
    const SHARDS: u32 = 250;
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url, _arbiter) = market(root, "1000", "1");
    let renter = root.join("renter");
    let homes: Vec<_> = (0..2).map(|i| root.join(format!("p{i}"))).collect();
    let ids: Vec<String> = homes.iter().map(|h| node_id(h, &url)).collect();
    let _p0 = provider_with(&url, &homes[0], 10, 4, &["--poll-ms", "20"]);
    let _p1 = provider_with(
        &url,
        &homes[1],
        10,
        4,
        &["--poll-ms", "20", "--threads", "2"],
    );
    let _v2 = verifier(&url, &root.join("v2"), &["--threads", "2", "--slots", "4"]);
    let _v3 = verifier(&url, &root.join("v3"), &["--threads", "3", "--slots", "4"]);
    for id in &ids {
        wait_registered(&renter, &url, id);
    }
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", &FAUCET.to_string()],
    ));
    // An MLP (matmul, add, GELU, softmax): d 16, hidden 32, 4 classes, 2 rows per shard.
    let (component, model, x) = mlp_job(root, 16, 32, 4, SHARDS as usize * 2);
    let shards = SHARDS.to_string();
    let jobs: Vec<String> = (0..JOBS)
        .map(|_| {
            publish(
                &renter,
                &url,
                &[
                    &component,
                    "--input",
                    &model,
                    "--input",
                    &x,
                    "--shards",
                    &shards,
                    "--max-price",
                    "100",
                    "--fuel",
                    "50000000",
                    "--work-budget",
                    "50000000",
                ],
            )
        })
        .collect();
    let settled = wait_all_settled(&renter, &url, &jobs, 900);
    let (mut checked, mut rechecked) = (0, 0);
    let mut roots: BTreeMap<u64, Value> = BTreeMap::new();
    for s in &settled {
        for x in s["shards"].as_array().expect("shards") {
            let v = &x["verification"];
            assert_eq!(v["state"], "verified", "{x:#}");
            let verdicts = v["verdicts"].as_array().expect("verdicts");
            // A verifier's agreement, and for about 10 % the arbiter's
            // re-check of it: never a dispute.
            assert_eq!(verdicts[0]["role"], "verify", "{x:#}");
            match verdicts.len() {
                1 => {}
                2 => {
                    assert_eq!(verdicts[1]["role"], "recheck", "{x:#}");
                    rechecked += 1;
                }
                _ => panic!("a dispute: {x:#}"),
            }
            assert!(verdicts.iter().all(|d| d["agrees"] == true), "{x:#}");
            assert_eq!(x["rejected_receipts"].as_array().map(Vec::len), Some(0));
            // Same shard index, same rows: the same bytes, whoever ran it.
            let prev = roots.insert(u(&x["index"]), x["outputs_root"].clone());
            if let Some(p) = prev {
                assert_eq!(p, x["outputs_root"]);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, JOBS * SHARDS);
    // 10 % of 2,000 agreements: 200 ± 13.4 (σ); far outside ±5σ is a bug.
    assert!((133..=267).contains(&rechecked), "{rechecked} re-checks");
    for id in &ids {
        let a = account(&renter, &url, Some(id));
        assert_eq!(u(&a["stake"]), STAKE, "provider {id} was never slashed");
    }
    let _ = Hash32::of(b"");
    assert!(
        String::from_utf8_lossy(&ok(assay(&renter, &url, &["ledger", "verify"])).stdout)
            .contains("ledger OK")
    );
}

/// Proof of hardware, both ways: a GPU claim that answers its challenge in
/// time (here a small challenge, on the CPU backend: results are bit-exact,
/// so the verifier's re-execution agrees) passes and gets GPU jobs; one
/// that cannot answer within the bound fails and gets none.
fn hardware_claim(bound_ms: &str) -> (tempfile::TempDir, Proc, String, Proc, Proc, String) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().to_path_buf();
    let over = format!("64,2,{bound_ms}");
    let (c, url) = coordinator(
        &root.join("coordinator"),
        "127.0.0.1:0",
        &[
            "--epoch-ms",
            "300",
            "--verify-rate",
            "1",
            "--challenge-override",
            &over,
        ],
    );
    let renter = root.join("renter");
    let gpu = node_id(&root.join("gpu"), &url);
    let p = provider_with(
        &url,
        &root.join("gpu"),
        10,
        1,
        &[
            "--claim-gpu",
            "NVIDIA H100 80GB HBM3:80GiB",
            "--backend",
            "cpu",
        ],
    );
    let v = verifier(&url, &root.join("v"), &[]);
    wait_registered(&renter, &url, &gpu);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", &FAUCET.to_string()],
    ));
    (tmp, c, url, p, v, gpu)
}

fn publish_gpu_job(root: &Path, url: &str) -> String {
    publish_matmul(root, &root.join("renter"), url, &["--gpu"])
}

#[test]
fn a_gpu_claim_that_answers_its_challenge_in_time_gets_gpu_jobs() {
    let (tmp, _c, url, _p, _v, gpu) = hardware_claim("60000");
    let job = publish_gpu_job(tmp.path(), &url);
    let done = wait_job(&tmp.path().join("renter"), &url, &job, 60, |s| {
        s["state"] == "settled"
    });
    assert_eq!(done["shards"][0]["provider"].as_str(), Some(gpu.as_str()));
}

#[test]
fn a_gpu_claim_that_misses_its_challenge_bound_gets_no_gpu_jobs() {
    let (tmp, _c, url, _p, _v, _gpu) = hardware_claim("1");
    let job = publish_gpu_job(tmp.path(), &url);
    // The challenge cannot come back within 1 ms of its lease: the claim fails.
    let s = wait_job(&tmp.path().join("renter"), &url, &job, 60, |s| {
        s["shards"][0]["why_not_matched"]
            .as_str()
            .is_some_and(|w| w.contains("passed its hardware challenge (GPU claims: 1 failed)"))
    });
    assert_eq!(s["state"], "queued");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        status(&tmp.path().join("renter"), &url, &job)["state"],
        "queued"
    );
}

/// Over-billing is a mismatch too: the verifier re-derives the work.
#[test]
fn a_provider_that_inflates_its_work_is_caught() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url, _arbiter) = market(root, "20000", "1");
    let renter = root.join("renter");
    let p_home = root.join("p");
    let p = node_id(&p_home, &url);
    let _p = provider_with(
        &url,
        &p_home,
        10,
        1,
        &["--cheat-rate", "1", "--inflate-work", "1000000"],
    );
    let _v1 = verifier(&url, &root.join("v1"), &[]);
    let _v2 = verifier(&url, &root.join("v2"), &[]);
    wait_registered(&renter, &url, &p);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", &FAUCET.to_string()],
    ));
    let job = publish_matmul(root, &renter, &url, &[]);
    let s = wait_job(&renter, &url, &job, 60, |s| {
        s["shards"][0]["rejected_receipts"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
    });
    // Outputs were honest; only the claimed work was not.
    assert_eq!(
        s["state"], "queued",
        "re-queued, and its only provider is suspended"
    );
    let acct = account(&renter, &url, Some(&p));
    assert_eq!(u(&acct["stake"]), STAKE / 2);
    assert_eq!(u(&acct["earnings"]), 0);
}
