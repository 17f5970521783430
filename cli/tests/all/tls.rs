//! The network over TLS: a coordinator with `--tls-cert`, a provider and a
//! renter trusting its CA through `ASSAY_TLS_CA`, and the clients that do
//! not trust it, or speak plaintext, refused.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

fn assay_trusting(home: &Path, url: &str, ca: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("ASSAY_HOME", home)
        .env("ASSAY_COORDINATOR", url)
        .env_remove("ASSAY_TLS_CA");
    if let Some(ca) = ca {
        c.env("ASSAY_TLS_CA", ca);
    }
    c.output().expect("spawn assay")
}

#[test]
fn a_job_runs_over_tls_and_clients_that_do_not_trust_the_certificate_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let files = crate::tls_files::make(&root.join("tls"), &["127.0.0.1", "localhost"])
        .expect("certificates");
    let (cert, key) = (
        files.cert.to_string_lossy().to_string(),
        files.key.to_string_lossy().to_string(),
    );
    let (_c, url) = coordinator(
        &root.join("coordinator"),
        "127.0.0.1:0",
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    assert!(url.starts_with("https://"), "{url}");
    let ca = files.ca.as_path();
    let _p = provider_env(
        &url,
        &root.join("provider"),
        10,
        1,
        &[],
        &[("ASSAY_TLS_CA", ca)],
    );
    let renter = root.join("renter");
    ok(assay_trusting(&renter, &url, Some(ca), &["faucet"]));
    let (component, a, b) = matmul_inputs(root);
    let component = component.to_string_lossy().to_string();
    let mut args = vec!["publish", &component, "--input", &a, "--input", &b];
    args.extend([
        "--max-price",
        "100",
        "--wait",
        "--json",
        "--wait-timeout-s",
        "60",
    ]);
    args.extend(LIMITS);
    let published = json(&ok(assay_trusting(&renter, &url, Some(ca), &args)));
    assert_eq!(
        published["shards"][0]["outcome"], "success",
        "{published:#}"
    );

    // Without the CA: the certificate is not trusted.
    let out = assay_trusting(&renter, &url, None, &["account"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ASSAY_TLS_CA"), "{err}");
    // Plaintext to the TLS port: no answer.
    let plain = url.replacen("https://", "http://", 1);
    let out = assay_trusting(&renter, &plain, Some(ca), &["account"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https://"), "{err}");
    // Another CA's certificate: refused.
    let other = crate::tls_files::make(&root.join("other"), &["127.0.0.1"]).expect("other CA");
    let out = assay_trusting(&renter, &url, Some(&other.ca), &["account"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid peer certificate"), "{err}");
}

/// The coordinator's web pages and API on `--http-listen` are served over
/// HTTPS with the same certificate: a client trusting the CA reads them, one
/// that does not is refused, and plain HTTP gets no page.
#[test]
fn the_explorer_is_served_over_https_with_the_coordinators_certificate() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::Duration;

    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let files = crate::tls_files::make(&root.join("tls"), &["127.0.0.1", "localhost"])
        .expect("certificates");
    let data = root.join("coordinator");
    let mut child = Command::new(BIN)
        .args([
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--tls-cert")
        .arg(&files.cert)
        .arg("--tls-key")
        .arg(&files.key)
        .env("ASSAY_HOME", &data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn coordinator");
    let out = child.stdout.take().expect("stdout");
    let _c = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut urls = Vec::new();
    while urls.len() < 2 {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the coordinator printed {urls:?}, not its two URLs"));
        if let Some(u) = line.split_whitespace().find(|w| w.contains("://")) {
            urls.push(u.to_string());
        }
    }
    let web = urls.pop().expect("web");
    assert!(web.starts_with("https://"), "{web}");

    let ca = std::fs::read(&files.ca).expect("ca");
    let trusting = crate::common::https_agent;
    let agent = trusting(&ca);
    let mut reply = agent
        .get(format!("{web}/api/v1/network"))
        .call()
        .expect("the API over HTTPS");
    let body = reply.body_mut().read_to_string().expect("body");
    assert!(body.starts_with('{'), "{body}");
    let page = agent
        .get(format!("{web}/"))
        .call()
        .expect("the explorer over HTTPS")
        .body_mut()
        .read_to_string()
        .expect("page");
    assert!(page.contains("<html"), "{page}");

    // Another CA: the certificate is not trusted.
    let other = crate::tls_files::make(&root.join("other"), &["127.0.0.1"]).expect("other CA");
    let e = trusting(&std::fs::read(&other.ca).expect("other ca"))
        .get(format!("{web}/api/v1/network"))
        .call()
        .expect_err("untrusted");
    assert!(e.to_string().contains("certificate"), "{e}");
    // Plain HTTP to the TLS port: no page.
    let plain = web.replacen("https://", "http://", 1);
    assert!(
        ureq::get(format!("{plain}/api/v1/network"))
            .config()
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .call()
            .is_err()
    );
}
