//! Reserved clusters end to end: a coordinator and two providers as
//! separate `assay` processes; a renter reserves a cluster of one provider
//! with `assay cluster create`, publishes a job with `--cluster`, the job
//! runs only on that provider (though the other asks less per unit of
//! work), and `assay cluster release` pays the member to the moment and
//! refunds the rest; the provider sees its reservation; the ledger
//! verifies.

use crate::common::*;

const FEE_BPS: u64 = 200;

#[test]
fn a_job_on_a_reserved_cluster_runs_on_its_member_and_release_refunds_the_rest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &[]);
    let renter = root.join("renter");
    let (member, outsider) = (root.join("p0"), root.join("p1"));
    let (id0, id1) = (node_id(&member, &url), node_id(&outsider, &url));
    // The outsider is cheaper per unit of work but dearer per slot-hour.
    let _p0 = provider_with(&url, &member, 10, 2, &["--reserve-price", "1"]);
    let _p1 = provider_with(&url, &outsider, 5, 2, &["--reserve-price", "3"]);
    wait_registered(&renter, &url, &id0);
    wait_registered(&renter, &url, &id1);
    ok(assay(&renter, &url, &["faucet", "--amount", "5000000"]));

    let (cluster, created) = cluster_of_one(&renter, &url);
    assert_eq!(created["state"], "active");
    assert_eq!(
        created["members"][0]["provider"].as_str(),
        Some(id0.as_str())
    );
    assert_eq!(
        created["escrowed"].as_u64(),
        Some(1_000_000),
        "1 IOSD × 1 h"
    );
    assert_eq!(
        account(&renter, &url, None)["balance"].as_u64(),
        Some(4_000_000)
    );
    // The provider sees its reservation.
    let theirs = json(&ok(assay(
        &renter,
        &url,
        &["cluster", "list", "--provider", &id0, "--active", "--json"],
    )));
    assert_eq!(theirs[0]["cluster"].as_str(), Some(cluster.as_str()));
    let none = json(&ok(assay(
        &renter,
        &url,
        &["cluster", "list", "--provider", &id1, "--json"],
    )));
    assert_eq!(none.as_array().map(Vec::len), Some(0));

    let (component, a, b) = matmul_inputs(root);
    let component = component.to_string_lossy().to_string();
    let mut args = vec![
        "publish", &component, "--input", &a, "--input", &b, "--shards", "2",
    ];
    args.extend([
        "--cluster",
        &cluster,
        "--max-price",
        "100",
        "--wait",
        "--json",
        "--wait-timeout-s",
        "60",
    ]);
    args.extend(LIMITS);
    let published = json(&ok(assay(&renter, &url, &args)));
    let job = published["job_id"].as_str().expect("job id").to_string();
    for s in published["shards"].as_array().expect("shards") {
        assert_eq!(s["outcome"], "success", "{s:#}");
        assert_eq!(s["provider"].as_str(), Some(id0.as_str()), "{s:#}");
    }

    // Another renter may not use the cluster.
    let other = root.join("other");
    ok(assay(&other, &url, &["faucet", "--amount", "5000000"]));
    let mut theirs = vec!["publish", &component, "--input", &a, "--input", &b];
    theirs.extend(["--cluster", &cluster, "--max-price", "100"]);
    theirs.extend(LIMITS);
    let refused = assay(&other, &url, &theirs);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("another renter's"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let settled = wait_job(&renter, &url, &job, 30, |s| s["state"] == "settled");
    let (mut spent, mut earned) = (0, 0);
    for s in settled["shards"].as_array().expect("shards") {
        let paid = s["paid"].as_u64().expect("paid");
        spent += paid;
        earned += paid - paid * FEE_BPS / 10_000;
    }

    let released = json(&ok(assay(
        &renter,
        &url,
        &["cluster", "release", &cluster, "--json"],
    )));
    assert_eq!(released["state"], "released");
    let (paid, refunded) = (
        released["paid"].as_u64().expect("paid"),
        released["refunded"].as_u64().expect("refunded"),
    );
    assert_eq!(paid + refunded, 1_000_000);
    assert_eq!(released["escrow_left"].as_u64(), Some(0));
    assert!(
        refunded > 900_000,
        "a minute or so of an hour was used: {released:#}"
    );
    assert_eq!(released["members"][0]["why_left"], "released");
    assert_eq!(
        account(&renter, &url, None)["balance"].as_u64(),
        Some(5_000_000 - spent - paid)
    );
    // The member earned its work and its held slot, each less the fee.
    let expected = earned + paid - paid * FEE_BPS / 10_000;
    let got = account(&renter, &url, Some(&id0))["earnings"]
        .as_u64()
        .expect("earnings");
    // Each payment's fee is floored on its own: a slow machine's extra
    // accrual (one a minute) can leave the member a µIOSD more.
    assert!(
        (expected..=expected + 3).contains(&got),
        "earned {got}, expected {expected}"
    );
    assert_eq!(
        account(&renter, &url, Some(&id1))["earnings"].as_u64(),
        Some(0)
    );
    // An ended cluster takes no more jobs.
    let mut late = vec!["publish", &component, "--input", &a, "--input", &b];
    late.extend(["--cluster", &cluster, "--max-price", "100"]);
    late.extend(LIMITS);
    let refused = assay(&renter, &url, &late);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("has ended"));

    let shown = ok(assay(&renter, &url, &["cluster", "show", &cluster]));
    assert!(String::from_utf8_lossy(&shown.stdout).contains("released"));
    let verified = ok(assay(&renter, &url, &["ledger", "verify"]));
    assert!(String::from_utf8_lossy(&verified.stdout).contains("ledger OK"));
}

/// `assay devnet` (its own coordinator, providers asking 1 and 1.1 IOSD
/// per slot-hour, verifiers, arbiter, oracle), stopped with SIGTERM so it
/// stops its children.
struct Devnet(std::process::Child);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn on_a_devnet_a_cluster_of_one_runs_its_job_and_release_refunds_the_rest() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("devnet");
    let mut child = std::process::Command::new(BIN)
        .args(["devnet", "--listen", "127.0.0.1:0", "--http-listen", ""])
        .arg("--dir")
        .arg(&dir)
        .env("ASSAY_HOME", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("devnet");
    let out = child.stdout.take().expect("stdout");
    let devnet = Devnet(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut url = None;
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the devnet starts");
        if let Some(u) = line.trim().strip_prefix("export ASSAY_COORDINATOR=") {
            url = Some(u.to_string());
        }
        if line.contains("devnet running") {
            break;
        }
    }
    let url = url.expect("the devnet's URL");
    let (p0, p1) = (dir.join("provider-0"), dir.join("provider-1"));
    let renter = tmp.path().join("renter");
    let (id0, id1) = (node_id(&p0, &url), node_id(&p1, &url));
    // The devnet stakes each provider 10,000 IO.
    wait_staked(&renter, &url, &id0, 10_000_000_000);
    wait_staked(&renter, &url, &id1, 10_000_000_000);
    ok(assay(&renter, &url, &["faucet", "--amount", "5000000"]));
    let before = account(&renter, &url, None)["balance"]
        .as_u64()
        .expect("balance");

    let (cluster, created) = cluster_of_one(&renter, &url);
    assert_eq!(
        created["members"][0]["provider"].as_str(),
        Some(id0.as_str()),
        "provider-0 asks the least per slot-hour: {created:#}"
    );

    let (component, a, b) = matmul_inputs(tmp.path());
    let component = component.to_string_lossy().to_string();
    let mut args = vec![
        "publish", &component, "--input", &a, "--input", &b, "--shards", "3",
    ];
    args.extend([
        "--cluster",
        &cluster,
        "--unverified",
        "--max-price",
        "100",
        "--wait",
        "--json",
        "--wait-timeout-s",
        "60",
    ]);
    args.extend(LIMITS);
    let published = json(&ok(assay(&renter, &url, &args)));
    let job = published["job_id"].as_str().expect("job id").to_string();
    for s in published["shards"].as_array().expect("shards") {
        assert_eq!(s["outcome"], "success", "{s:#}");
        assert_eq!(s["provider"].as_str(), Some(id0.as_str()), "{s:#}");
    }
    let settled = wait_job(&renter, &url, &job, 60, |s| s["state"] == "settled");
    let spent: u64 = settled["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| s["paid"].as_u64().expect("paid"))
        .sum();

    let released = json(&ok(assay(
        &renter,
        &url,
        &["cluster", "release", &cluster, "--json"],
    )));
    let (paid, refunded) = (
        released["paid"].as_u64().expect("paid"),
        released["refunded"].as_u64().expect("refunded"),
    );
    assert_eq!(released["state"], "released");
    assert_eq!(paid + refunded, 1_000_000, "{released:#}");
    assert_eq!(released["escrow_left"].as_u64(), Some(0));
    assert!(refunded > 900_000, "{released:#}");
    assert_eq!(
        account(&renter, &url, None)["balance"].as_u64(),
        Some(before - spent - paid)
    );
    let verified = ok(assay(&renter, &url, &["ledger", "verify"]));
    assert!(String::from_utf8_lossy(&verified.stdout).contains("ledger OK"));
    drop(devnet);
}
