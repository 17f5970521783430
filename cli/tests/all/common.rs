//! Helpers shared by the end-to-end suites: `assay` processes on loopback
//! (coordinator, providers, verifiers), the CLI as a renter, bounded waits.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use assay_guests::{Guest, matrix};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_assay");

/// A child process killed (SIGKILL) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How a process is started: directly, or through a launcher such as
/// `ip netns exec NAME` (the faults suite runs each node in a network
/// namespace of its own).
pub type Launcher<'a> = &'a [&'a str];

/// `assay` started through `launcher` (empty: directly).
fn command(launcher: Launcher<'_>) -> Command {
    match launcher.split_first() {
        None => Command::new(BIN),
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(BIN);
            c
        }
    }
}

/// Starts a coordinator; returns it and its URL.
pub fn coordinator(data: &Path, listen: &str, extra: &[&str]) -> (Proc, String) {
    coordinator_via(&[], data, listen, extra, &[])
}

/// [`coordinator`] started through `launcher`, with environment variables.
pub fn coordinator_via(
    launcher: Launcher<'_>,
    data: &Path,
    listen: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Proc, String) {
    let mut child = command(launcher)
        .envs(env.iter().copied())
        .args(["coordinator", "--faucet", "--listen", listen])
        .arg("--data-dir")
        .arg(data)
        .args(
            [
                ("--lease-ttl-ms", "1500"),
                ("--heartbeat-ms", "300"),
                ("--settlement-delay-ms", "500"),
                ("--preference-window-ms", "0"),
                ("--tick-ms", "100"),
                // Unverified unless a test turns sampling on (the
                // verification suite does): receipts settle after the window.
                ("--verify-rate", "0"),
                // Stakes are exactly what each test asks for; the economy
                // suite turns the per-device floor on.
                ("--stake-per-device", "0"),
            ]
            .iter()
            .filter(|(flag, _)| !extra.contains(flag))
            .flat_map(|(flag, v)| [*flag, *v]),
        )
        .args(extra)
        .env("ASSAY_HOME", data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn coordinator");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("coordinator started");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (Proc(child), url)
}

pub fn provider(url: &str, home: &Path, price: u64, slots: u32) -> Proc {
    provider_with(url, home, price, slots, &[])
}

/// A provider with extra flags (e.g. `--cheat-rate 1`, or `--threads 2`
/// in place of the default).
pub fn provider_with(url: &str, home: &Path, price: u64, slots: u32, extra: &[&str]) -> Proc {
    provider_env(url, home, price, slots, extra, &[])
}

/// [`provider_with`] with environment variables (e.g. `ASSAY_TLS_CA`).
pub fn provider_env(
    url: &str,
    home: &Path,
    price: u64,
    slots: u32,
    extra: &[&str],
    env: &[(&str, &Path)],
) -> Proc {
    provider_via(&[], url, home, price, slots, extra, env)
}

/// [`provider_env`] started through `launcher`.
pub fn provider_via(
    launcher: Launcher<'_>,
    url: &str,
    home: &Path,
    price: u64,
    slots: u32,
    extra: &[&str],
    env: &[(&str, &Path)],
) -> Proc {
    let slots = slots.to_string();
    let defaults = [
        ("--slots", slots.as_str()),
        ("--poll-ms", "100"),
        ("--drain-timeout-ms", "2000"),
        ("--faucet", "1000000000"),
        ("--stake", "1000000"),
        ("--threads", "1"),
    ];
    daemon(
        launcher,
        &[
            "provider",
            "--coordinator",
            url,
            "--price",
            &price.to_string(),
        ],
        &defaults,
        extra,
        home,
        env,
    )
}

/// Spawns `assay ARGS` with each default flag unless `extra` names it.
fn daemon(
    launcher: Launcher<'_>,
    args: &[&str],
    defaults: &[(&str, &str)],
    extra: &[&str],
    home: &Path,
    env: &[(&str, &Path)],
) -> Proc {
    Proc(
        command(launcher)
            .envs(env.iter().copied())
            .args(args)
            .args(
                defaults
                    .iter()
                    .filter(|(flag, _)| !extra.contains(flag))
                    .flat_map(|(flag, v)| [*flag, *v]),
            )
            .args(extra)
            .env("ASSAY_HOME", home)
            .stdout(Stdio::null())
            .stderr(log_to(home))
            .spawn()
            .expect("spawn assay daemon"),
    )
}

/// Where a daemon's log goes: nowhere, or with `ASSAY_TEST_LOG_DIR=DIR` to
/// `DIR/<its home's path, / as _>.log` (to see why an end-to-end test hung).
fn log_to(home: &Path) -> Stdio {
    let Some(dir) = std::env::var_os("ASSAY_TEST_LOG_DIR") else {
        return Stdio::null();
    };
    let name = home.to_string_lossy().replace('/', "_");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::File::create(Path::new(&dir).join(format!("{name}.log")))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

pub fn assay(home: &Path, url: &str, args: &[&str]) -> Output {
    assay_via(&[], home, url, args)
}

/// [`assay`] run through `launcher`.
pub fn assay_via(launcher: Launcher<'_>, home: &Path, url: &str, args: &[&str]) -> Output {
    command(launcher)
        .args(args)
        .env("ASSAY_HOME", home)
        .env("ASSAY_COORDINATOR", url)
        .output()
        .expect("spawn assay")
}

pub fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A node's id (creating its key first, before any daemon uses that home).
pub fn node_id(home: &Path, url: &str) -> String {
    account(home, url, None)["node"]
        .as_str()
        .expect("node")
        .to_string()
}

/// Waits until the provider registered (its stake is in place).
pub fn wait_registered(home: &Path, url: &str, id: &str) {
    wait_staked(home, url, id, 1_000_000);
}

/// Waits until the node holds `stake` (it registered).
pub fn wait_staked(home: &Path, url: &str, id: &str, stake: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while account(home, url, Some(id))["stake"].as_u64() != Some(stake) {
        assert!(Instant::now() < deadline, "provider {id} never registered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn account(home: &Path, url: &str, node: Option<&str>) -> Value {
    let mut args = vec!["account", "--json"];
    if let Some(n) = node {
        args.push(n);
    }
    json(&ok(assay(home, url, &args)))
}

/// Polls `assay job status --json` until `done(status)` or the deadline.
pub fn wait_job(
    home: &Path,
    url: &str,
    job: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = json(&ok(assay(home, url, &["job", "status", job, "--json"])));
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} never got there: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn matmul_inputs(dir: &Path) -> (PathBuf, String, String) {
    let component = dir.join("matmul.wasm");
    std::fs::write(&component, Guest::Matmul.bytes()).expect("component");
    let a: Vec<f32> = (0..24 * 16).map(|i| (i % 13) as f32 * 0.5 - 3.0).collect();
    let b: Vec<f32> = (0..16 * 8).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect();
    std::fs::write(dir.join("a.bin"), matrix::encode(24, 16, &a).expect("a")).expect("a");
    std::fs::write(dir.join("b.bin"), matrix::encode(16, 8, &b).expect("b")).expect("b");
    (
        component,
        format!("a={}", dir.join("a.bin").display()),
        format!("b={}", dir.join("b.bin").display()),
    )
}

pub const LIMITS: [&str; 4] = ["--fuel", "100000000", "--work-budget", "100000000"];

/// Publishes the matmul job of [`matmul_inputs`] (written under `root`) at
/// most 100 per unit with [`LIMITS`] and `extra` flags; returns its id.
pub fn publish_matmul(root: &Path, renter: &Path, url: &str, extra: &[&str]) -> String {
    let (component, a, b) = matmul_inputs(root);
    let component = component.to_string_lossy().to_string();
    let mut args = vec![
        component.as_str(),
        "--input",
        &a,
        "--input",
        &b,
        "--max-price",
        "100",
    ];
    args.extend(LIMITS);
    args.extend(extra);
    publish(renter, url, &args)
}

/// A verifier daemon with a stake of 1 credit (from the faucet) and extra
/// flags (e.g. `--lie-rate 1`, `--threads 2`).
pub fn verifier(url: &str, home: &Path, extra: &[&str]) -> Proc {
    verifier_via(&[], url, home, extra)
}

/// [`verifier`] started through `launcher`.
pub fn verifier_via(launcher: Launcher<'_>, url: &str, home: &Path, extra: &[&str]) -> Proc {
    let defaults = [
        ("--faucet", "1000000000"),
        ("--stake", "1000000"),
        ("--poll-ms", "50"),
        ("--slots", "2"),
    ];
    daemon(
        launcher,
        &["verifier", "--coordinator", url],
        &defaults,
        extra,
        home,
        &[],
    )
}

/// An arbiter's home under `root` and its key (hex), made before the
/// coordinator starts so that it can be named with `--arbiter-key`; start
/// it with [`verifier`] once the coordinator is up.
pub fn arbiter_key(root: &Path) -> (PathBuf, String) {
    let home = root.join("arbiter");
    std::fs::create_dir_all(&home).expect("arbiter home");
    let key = assay_protocol::NodeKey::load_or_create(&home.join("node.key"))
        .expect("arbiter key")
        .id()
        .to_string();
    (home, key)
}

/// Publishes with `args` (plus `--json`); returns the job id.
pub fn publish(home: &Path, url: &str, args: &[&str]) -> String {
    let mut all = vec!["publish"];
    all.extend_from_slice(args);
    all.push("--json");
    json(&ok(assay(home, url, &all)))["job_id"]
        .as_str()
        .expect("job id")
        .to_string()
}

/// Writes an MLP job into `dir` — the guest, a safetensors model (`d`
/// inputs, `h` hidden, `c` classes; seeded values in [-1, 1)) and `rows`
/// rows of input `x` — and returns the component path and the two
/// `--input` arguments.
pub fn mlp_job(dir: &Path, d: usize, h: usize, c: usize, rows: usize) -> (String, String, String) {
    use assay_guests::safetensors::{Entry, encode, f32_le};
    let values = |n: usize, seed: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    };
    let (w1, b1, w2, b2) = (
        f32_le(&values(h * d, 1)),
        f32_le(&values(h, 2)),
        f32_le(&values(c * h, 3)),
        f32_le(&values(c, 4)),
    );
    let (d64, h64, c64) = (d as u64, h as u64, c as u64);
    let entry = |name, shape, data| Entry {
        name,
        dtype: "F32",
        shape,
        data,
    };
    let model = encode(
        &[
            entry("fc1.weight", &[h64, d64], &w1),
            entry("fc1.bias", &[h64], &b1),
            entry("fc2.weight", &[c64, h64], &w2),
            entry("fc2.bias", &[c64], &b2),
        ],
        &[],
    );
    let component = dir.join("mlp.wasm");
    std::fs::write(&component, Guest::Mlp.bytes()).expect("component");
    std::fs::write(dir.join("model.safetensors"), model).expect("model");
    std::fs::write(dir.join("x.bin"), f32_le(&values(rows * d, 5))).expect("x");
    (
        component.to_string_lossy().to_string(),
        format!("model={}", dir.join("model.safetensors").display()),
        format!("x={}", dir.join("x.bin").display()),
    )
}

/// `--database` flags for each store this machine can run: SQLite always,
/// PostgreSQL (a schema of its own, dropped afterwards) when configured.
pub struct Store {
    pub name: &'static str,
    pub flags: Vec<String>,
    pg: Option<assay_coordinator::postgres::Postgres>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(pg) = self.pg.take() {
            let _ = pg.drop_schema();
        }
    }
}

pub fn stores(test: &str) -> Vec<Store> {
    let mut out = vec![Store {
        name: "sqlite",
        flags: Vec::new(),
        pg: None,
    }];
    match std::env::var("ASSAY_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!(
                "e2e_{test}_{}_{}",
                std::process::id(),
                assay_proto::now_ms() % 1_000_000
            );
            let pg =
                assay_coordinator::postgres::Postgres::open(&url, Some(&schema)).expect("postgres");
            let sep = if url.contains('?') { '&' } else { '?' };
            out.push(Store {
                name: "postgres",
                flags: vec![
                    "--database".into(),
                    format!("{url}{sep}options=-c%20search_path%3D{schema}"),
                ],
                pg: Some(pg),
            });
        }
        _ => {
            assert_ne!(
                std::env::var("ASSAY_REQUIRE_POSTGRES").as_deref(),
                Ok("1"),
                "ASSAY_REQUIRE_POSTGRES=1 but ASSAY_TEST_POSTGRES_URL is not set"
            );
            eprintln!("SKIPPED {test} on PostgreSQL: set ASSAY_TEST_POSTGRES_URL");
        }
    }
    out
}

/// The rows of `sql` on a coordinator's database: the PostgreSQL at `pg`
/// (a `--database` URL), else the SQLite file in its data dir `data`.
pub fn db_rows(
    data: &Path,
    pg: Option<&str>,
    sql: &str,
) -> Vec<Vec<assay_coordinator::sql::Value>> {
    use assay_coordinator::sql::{Backend, Conn};
    let read = |c: &mut dyn Conn| Ok(c.query(sql, &[])?.into_iter().map(|r| r.0).collect());
    match pg {
        Some(url) => assay_coordinator::postgres::Postgres::open(url, None)
            .expect("postgres")
            .read(&mut |c| read(c)),
        None => assay_coordinator::sqlite::Sqlite::open(&data.join("coordinator.db"))
            .expect("sqlite")
            .read(&mut |c| read(c)),
    }
    .expect("query")
}

/// The first column of [`db_rows`], as text (blobs as hex).
pub fn db_column(data: &Path, pg: Option<&str>, sql: &str) -> Vec<String> {
    use assay_coordinator::sql::Value;
    db_rows(data, pg, sql)
        .into_iter()
        .map(|r| match r.into_iter().next() {
            Some(Value::Text(t)) => t,
            Some(Value::Int(i)) => i.to_string(),
            Some(Value::Blob(b)) => hex::encode(b),
            other => format!("{other:?}"),
        })
        .collect()
}

/// A TCP port free now on loopback (for a daemon's `--metrics-listen`).
/// `assay cluster create --gpus 1 --hours 1 --max-price 2 --json` by the
/// renter in `home`: the cluster's id and the created cluster.
pub fn cluster_of_one(home: &Path, url: &str) -> (String, Value) {
    let created = json(&ok(assay(
        home,
        url,
        &[
            "cluster",
            "create",
            "--gpus",
            "1",
            "--hours",
            "1",
            "--max-price",
            "2",
            "--json",
        ],
    )));
    let cluster = created["cluster"].as_str().expect("cluster id").to_string();
    (cluster, created)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The sum of the samples of metric `name` (a counter's `…_total`, every
/// label set) in Prometheus text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The Prometheus text a daemon serves on `port`.
pub fn metrics(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    body
}

/// Asserts that a local run succeeded, showing its error and log if not.
pub fn assert_succeeded(report: &assay_runtime::RunReport) {
    assert!(
        report.outcome.is_success(),
        "the job failed ({}): {}\nlog:\n{}",
        report.outcome,
        report.error.as_deref().unwrap_or(""),
        report.log
    );
}

/// An HTTP client that trusts only the certificate authority in `ca_pem`
/// (a test's own CA), with a 20 s limit per call.
pub fn https_agent(ca_pem: &[u8]) -> ureq::Agent {
    let ca = ureq::tls::Certificate::from_pem(ca_pem).expect("a CA PEM");
    ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    ca,
                ])))
                .build(),
        )
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent()
}
