//! The economy end to end, as users run it: a coordinator, an oracle,
//! providers and verifiers as separate `assay` processes on loopback,
//! renters and investors using the CLI — on SQLite and, when
//! `ASSAY_TEST_POSTGRES_URL` is set, on PostgreSQL. A renter paying in IO
//! burns it; a provider earns IOSD for verified work and IO block rewards;
//! a slashed provider's epoch pays it nothing; a note holder receives 0.9
//! of the device's pay; a bond in default hands the stake to its holders.
//! Every scenario ends with `assay ledger verify`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn fails_with(out: std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

fn ledger_verifies(home: &Path, url: &str) {
    let out = ok(assay(home, url, &["ledger", "verify"]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ledger OK"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Polls `assay rewards --json` until `found` picks something.
fn wait_rewards<T>(home: &Path, url: &str, secs: u64, found: impl Fn(&[Value]) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = json(&ok(assay(
            home,
            url,
            &["rewards", "--json", "--limit", "1000"],
        )));
        let epochs = r["epochs"].as_array().cloned().unwrap_or_default();
        if let Some(t) = found(&epochs) {
            return t;
        }
        assert!(Instant::now() < deadline, "no such reward epoch: {r:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn publish_json(home: &Path, url: &str, root: &Path, extra: &[&str]) -> Value {
    let (component, a, b) = matmul_inputs(root);
    let component = component.to_string_lossy().to_string();
    let mut args = vec![
        "publish",
        component.as_str(),
        "--input",
        &a,
        "--input",
        &b,
        "--json",
    ];
    args.extend(LIMITS);
    args.extend(extra);
    json(&ok(assay(home, url, &args)))
}

/// The signed price feed gates IO→IOSD; a renter paying in IO burns
/// exactly what the price asks; the provider (staked to its floor) earns
/// IOSD for the work and IO block rewards for the epoch.
#[test]
fn paying_in_io_burns_it_and_the_provider_earns_iosd_and_io_rewards() {
    for store in stores("pay_in_io") {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let oracle = root.join("oracle");
        let oracle_key = String::from_utf8_lossy(&ok(assay(&oracle, "", &["oracle", "id"])).stdout)
            .trim()
            .to_string();
        let mut flags: Vec<String> = [
            "--oracle-key",
            &oracle_key,
            "--oracle-max-age-ms",
            "6000",
            "--reward-hour-ms",
            "6000",
            "--reward-epoch-ms",
            "2000",
            "--stake-per-device",
            "200",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        flags.extend(store.flags.iter().cloned());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (_c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &flags);
        let renter = root.join("renter");
        let p_home = root.join("provider");
        let p = node_id(&p_home, &url);
        let _p = provider(&url, &p_home, 10, 2);
        // Its floor: 200 IO × 0.05 for a CPU box of up to 16 cores.
        wait_staked(&renter, &url, &p, 10_000_000);
        ok(assay(&renter, &url, &["faucet", "--unit", "io"]));
        // No price yet, a foreign key's price: refused, nothing burned.
        let (component, a, b) = matmul_inputs(root);
        let component = component.to_string_lossy().to_string();
        let mut job = vec![
            "publish",
            &component,
            "--input",
            &a,
            "--input",
            &b,
            "--max-price",
            "100",
            "--pay-in",
            "io",
            "--json",
        ];
        job.extend(LIMITS);
        fails_with(assay(&renter, &url, &job), "no IO price yet");
        fails_with(
            assay(
                &root.join("impostor"),
                &url,
                &["oracle", "post", "--price", "9"],
            ),
            "not signed by this coordinator's oracle",
        );
        let posted = Instant::now();
        ok(assay(&oracle, &url, &["oracle", "post", "--price", "2"]));
        let mut settled = job.clone();
        settled.push("--wait-settled");
        let out = json(&ok(assay(&renter, &url, &settled)));
        let (escrow, burned) = (u(&out["escrow"]), u(&out["io_burned"]));
        // ceil(escrow × 10⁶ / 2 IOSD) µIO.
        assert_eq!(
            burned,
            (escrow * 1_000_000).div_ceil(2_000_000),
            "{}",
            store.name
        );
        let supply = json(&ok(assay(&renter, &url, &["ledger", "supply", "--json"])));
        assert_eq!(u(&supply["io"]["burned"]), burned);
        assert_eq!(u(&supply["iosd"]["minted"]), burned * 2);
        assert_eq!(u(&supply["oracle"]["micro_iosd_per_io"]), 2_000_000);
        let r = account(&renter, &url, None);
        assert_eq!(u(&r["io"]["balance"]), 1_000_000_000 - burned);
        // The provider: IOSD for the work, then IO for the epoch.
        let earned = u(&account(&renter, &url, Some(&p))["earnings"]);
        assert!(earned > 0, "{}", store.name);
        let epoch = wait_rewards(&renter, &url, 30, |epochs| {
            epochs
                .iter()
                .find(|e| {
                    e["providers"].as_array().is_some_and(|ps| {
                        ps.iter()
                            .any(|x| x["provider"] == p.as_str() && u(&x["work_units"]) > 0)
                    })
                })
                .cloned()
        });
        assert!(u(&epoch["emitted"]) > 0);
        assert_eq!(epoch["emitted"], epoch["scheduled"], "{epoch:#}");
        // Read before the list: epochs closing in between only add to it.
        let rewards = u(&account(&renter, &url, Some(&p))["io"]["rewards"]);
        let all = json(&ok(assay(
            &renter,
            &url,
            &["rewards", "--json", "--limit", "1000"],
        )));
        let to_p: u64 = all["epochs"]
            .as_array()
            .expect("epochs")
            .iter()
            .flat_map(|e| e["providers"].as_array().cloned().unwrap_or_default())
            .filter(|x| x["provider"] == p.as_str())
            .map(|x| u(&x["amount"]))
            .sum();
        assert!(rewards > 0 && rewards <= to_p, "{rewards} of {to_p}");
        let csv = String::from_utf8_lossy(&ok(assay(&renter, &url, &["rewards", "--csv"])).stdout)
            .to_string();
        assert!(csv.starts_with("epoch,start_ms,"), "{csv}");
        assert!(csv.contains(&p), "{csv}");
        // A stale price is refused.
        let wait = Duration::from_millis(6_500).saturating_sub(posted.elapsed());
        std::thread::sleep(wait);
        fails_with(assay(&renter, &url, &job), "stale");
        ledger_verifies(&renter, &url);
    }
}

/// A provider caught returning a wrong result is slashed, and the reward
/// epoch it was slashed in pays it nothing.
#[test]
fn a_slashed_provider_gets_no_reward_that_epoch() {
    for store in stores("slashed") {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let mut flags: Vec<&str> = vec![
            "--epoch-ms",
            "300",
            "--verify-rate",
            "1",
            "--settlement-delay-ms",
            "30000",
            "--reward-hour-ms",
            "6000",
            "--reward-epoch-ms",
            "2000",
        ];
        flags.extend(store.flags.iter().map(String::as_str));
        let (arbiter_home, arbiter) = arbiter_key(root);
        flags.extend(["--arbiter-key", arbiter.as_str()]);
        let (_c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &flags);
        let _arbiter = verifier(&url, &arbiter_home, &[]);
        let renter = root.join("renter");
        let cheat_home = root.join("cheater");
        let cheater = node_id(&cheat_home, &url);
        let _v1 = verifier(&url, &root.join("v1"), &[]);
        let _v2 = verifier(&url, &root.join("v2"), &[]);
        let _cheat = provider_with(&url, &cheat_home, 10, 2, &["--cheat-rate", "1"]);
        wait_registered(&renter, &url, &cheater);
        ok(assay(&renter, &url, &["faucet"]));
        let job = publish_json(
            &renter,
            &url,
            root,
            &["--max-price", "100", "--verify-rate", "1"],
        );
        let job = job["job_id"].as_str().expect("job").to_string();
        wait_job(&renter, &url, &job, 60, |s| {
            s["shards"][0]["rejected_receipts"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        });
        let slashed = wait_rewards(&renter, &url, 30, |epochs| {
            epochs
                .iter()
                .flat_map(|e| e["providers"].as_array().cloned().unwrap_or_default())
                .find(|x| x["provider"] == cheater.as_str() && x["failed"] == true)
        });
        assert_eq!(u(&slashed["amount"]), 0, "{} {slashed:#}", store.name);
        assert!(u(&account(&renter, &url, Some(&cheater))["stake"]) < 1_000_000);
        ledger_verifies(&renter, &url);
    }
}

/// An operator sells 60 of its device's 100 shares; the buyer then receives
/// 0.9 × 60/100 of what the device is paid, and the operator the rest.
#[test]
fn a_note_holder_receives_nine_tenths_of_the_device_earnings_pro_rata() {
    for store in stores("note") {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let flags: Vec<&str> = store.flags.iter().map(String::as_str).collect();
        let (_c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &flags);
        let (renter, holder, p_home) = (root.join("renter"), root.join("holder"), root.join("p"));
        let p = node_id(&p_home, &url);
        let h = node_id(&holder, &url);
        let _p = provider(&url, &p_home, 1_000, 2);
        wait_registered(&renter, &url, &p);
        let note = json(&ok(assay(
            &p_home,
            &url,
            &[
                "note",
                "issue",
                "--shares",
                "100",
                "--term-days",
                "30",
                "--json",
            ],
        )));
        let id = note["note"].as_str().expect("note id").to_string();
        ok(assay(
            &p_home,
            &url,
            &["note", "offer", &id, "--shares", "60", "--price", "0.1"],
        ));
        ok(assay(
            &holder,
            &url,
            &["faucet", "--unit", "io", "--amount", "10000000"],
        ));
        fails_with(
            assay(
                &holder,
                &url,
                &[
                    "note",
                    "buy",
                    &id,
                    "--from",
                    &p,
                    "--shares",
                    "61",
                    "--max-price",
                    "0.1",
                ],
            ),
            "offers 60 shares",
        );
        let bought = json(&ok(assay(
            &holder,
            &url,
            &[
                "note",
                "buy",
                &id,
                "--from",
                &p,
                "--shares",
                "60",
                "--max-price",
                "0.1",
                "--json",
            ],
        )));
        assert!(
            bought["holders"]
                .as_array()
                .expect("holders")
                .iter()
                .any(|x| x["holder"] == h.as_str() && u(&x["shares"]) == 60),
            "{bought:#}"
        );
        assert_eq!(u(&account(&holder, &url, None)["io"]["balance"]), 4_000_000);
        ok(assay(&renter, &url, &["faucet"]));
        let job = publish_json(
            &renter,
            &url,
            root,
            &["--max-price", "1000", "--wait-settled"],
        );
        assert_eq!(job["state"], "settled", "{job:#}");
        let pa = account(&renter, &url, Some(&p));
        let (operator, as_holder) = (u(&pa["earnings"]), u(&pa["balance"]));
        let to_h = u(&account(&holder, &url, None)["balance"]);
        let pay = operator + as_holder + to_h;
        assert!(to_h > 0, "{}", store.name);
        assert_eq!(to_h, pay * 9 * 60 / 1_000, "0.9 × 60/100 of {pay}");
        assert_eq!(as_holder, pay * 9 * 40 / 1_000, "0.9 × 40/100 of {pay}");
        let paid: u64 = job["shards"]
            .as_array()
            .expect("shards")
            .iter()
            .map(|s| u(&s["paid"]))
            .sum();
        assert_eq!(pay, paid - paid * 200 / 10_000, "the pay less the 2 % fee");
        ledger_verifies(&renter, &url);
    }
}

/// An operator raises IOSD with a bond its device's earnings do not repay:
/// at maturity the default hands its whole stake to the holders.
#[test]
fn a_bond_in_default_hands_the_stake_to_its_holders() {
    for store in stores("bond") {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let mut flags: Vec<&str> = vec!["--claims-day-ms", "1500"];
        flags.extend(store.flags.iter().map(String::as_str));
        let (_c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &flags);
        let (buyer, p_home) = (root.join("buyer"), root.join("p"));
        let p = node_id(&p_home, &url);
        let b = node_id(&buyer, &url);
        let _p = provider(&url, &p_home, 10, 2);
        wait_registered(&buyer, &url, &p);
        let bond = json(&ok(assay(
            &p_home,
            &url,
            &[
                "bond",
                "issue",
                "--principal",
                "10",
                "--coupon-bps",
                "1000",
                "--maturity-days",
                "2",
                "--json",
            ],
        )));
        let id = bond["bond"].as_str().expect("bond id").to_string();
        fails_with(
            assay(&p_home, &url, &["bond", "buy", &id, "--amount", "1"]),
            "cannot buy its own bond",
        );
        ok(assay(&buyer, &url, &["faucet"]));
        ok(assay(&buyer, &url, &["bond", "buy", &id, "--amount", "10"]));
        assert_eq!(u(&account(&buyer, &url, Some(&p))["balance"]), 10_000_000);
        let deadline = Instant::now() + Duration::from_secs(30);
        let shown = loop {
            let s = json(&ok(assay(&buyer, &url, &["bond", "show", &id, "--json"])));
            if s["state"] != "open" {
                break s;
            }
            assert!(Instant::now() < deadline, "never matured: {s:#}");
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(shown["state"], "defaulted", "{} {shown:#}", store.name);
        assert_eq!(u(&shown["shortfall"]), 10_000_000);
        assert_eq!(u(&account(&buyer, &url, Some(&p))["stake"]), 0);
        assert_eq!(
            u(&account(&buyer, &url, Some(&b))["io"]["balance"]),
            1_000_000,
            "the provider's whole stake"
        );
        ledger_verifies(&buyer, &url);
    }
}
