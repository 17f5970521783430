//! `assay devnet`: a whole market on this machine — a coordinator (with
//! the faucet and the default IO genesis), an oracle posting a fixed IO
//! price, providers, verifiers and the arbiter that decides disputes and
//! re-checks, each its own process on loopback with
//! its own key — until Ctrl-C. The coordinator serves the web explorer on
//! `--http-listen` (127.0.0.1:7780) and the URL is printed. The reward schedule is compressed: an hour
//! of it lasts a minute, a reward epoch 10 s. `--demo` then publishes the
//! matmul job in two shards, paid in IO (burned into IOSD at the oracle
//! price), every shard checked by a verifier (p = 1), follows it to
//! verified settlement, and shows the providers' IOSD earnings and IO
//! block rewards. `--tls` serves gRPC and the explorer over TLS with a CA
//! of its own (the nodes trust it; the printed `ASSAY_TLS_CA` line is for
//! other shells and browsers; `assay gateway --tls-cert
//! DIR/tls/cert.pem --tls-key DIR/tls/key.pem` serves the gateway
//! with the same certificate).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::Failure;

#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Where every node keeps its state and logs [default: $ASSAY_HOME/devnet].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The coordinator's address.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: String,
    /// The web explorer's address (empty: no web server).
    #[arg(long, default_value = "127.0.0.1:7780")]
    pub http_listen: String,
    /// How many providers.
    #[arg(long, default_value_t = 2)]
    pub providers: u32,
    /// How many verifiers (besides the arbiter, which only decides disputes and re-checks).
    #[arg(long, default_value_t = 2)]
    pub verifiers: u32,
    /// Publish the matmul job in two shards and follow it to settlement.
    #[arg(long)]
    pub demo: bool,
    /// With --demo: stop the devnet when the demo is done.
    #[arg(long)]
    pub exit_after_demo: bool,
    /// Serve gRPC and the explorer over TLS: a CA and a certificate for
    /// 127.0.0.1 and localhost are made in DIR/tls, every node trusts that
    /// CA, and the URLs are https:// (clients: export
    /// ASSAY_TLS_CA=DIR/tls/ca.pem).
    #[arg(long)]
    pub tls: bool,
}

/// `exe` as a devnet node: trusting the devnet's CA when it serves TLS.
fn node_command(exe: &Path, ca: Option<&Path>) -> Command {
    let mut command = Command::new(exe);
    if let Some(ca) = ca {
        command.env(assay_proto::client::TLS_CA_ENV, ca);
    }
    command
}

/// Children are stopped (SIGTERM, then kill) when this drops.
struct Node {
    name: String,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            // SIGTERM: providers give their leases back, the coordinator stops.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("stopped {}", self.name);
    }
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File, Failure> {
    let path = dir.join("logs").join(format!("{name}.log"));
    std::fs::create_dir_all(dir.join("logs"))
        .map_err(|e| Failure::usage(anyhow::anyhow!("{e}")))?;
    std::fs::File::create(&path)
        .with_context(|| format!("creating {}", path.display()))
        .map_err(Failure::usage)
}

/// Each devnet provider's stake, µIO (10,000 IO).
const DEVNET_PROVIDER_STAKE: &str = "10000000000";

pub fn main(args: DevnetArgs) -> Result<u8, Failure> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| crate::home::dir().join("devnet"));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating {}", dir.display()))
        .map_err(Failure::usage)?;
    let exe = std::env::current_exe()
        .context("finding the assay binary")
        .map_err(Failure::fault)?;
    let oracle_home = dir.join("oracle");
    std::fs::create_dir_all(&oracle_home)
        .with_context(|| format!("creating {}", oracle_home.display()))
        .map_err(Failure::usage)?;
    let oracle_key = assay_protocol::NodeKey::load_or_create(&oracle_home.join("node.key"))
        .map_err(Failure::usage)?
        .id()
        .to_string();

    // The arbiter decides disputes and re-checks; its key is named to the
    // coordinator before either starts.
    let arbiter_home = dir.join("arbiter");
    let arbiter_key = assay_protocol::NodeKey::load_or_create(&arbiter_home.join("node.key"))
        .map_err(Failure::usage)?
        .id()
        .to_string();

    let tls = if args.tls {
        Some(
            crate::tls::make(&dir.join("tls"), &["127.0.0.1", "localhost"])
                .map_err(Failure::fault)?,
        )
    } else {
        None
    };
    let ca = tls.as_ref().map(|t| t.ca.as_path());
    let mut coordinator = node_command(&exe, ca)
        .args(["coordinator", "--faucet", "--listen", &args.listen])
        .args(["--oracle-key", &oracle_key])
        .args(["--arbiter-key", &arbiter_key])
        .args([
            "--reward-hour-ms",
            &REWARD_HOUR_MS.to_string(),
            "--reward-epoch-ms",
            &REWARD_EPOCH_MS.to_string(),
        ])
        .args([
            "--settlement-delay-ms",
            "3000",
            "--heartbeat-ms",
            "1000",
            "--lease-ttl-ms",
            "5000",
            "--epoch-ms",
            "1000",
            // A verified receipt settles after the worst-case dispute (three
            // check deadlines: a verification, a bisection game and an
            // arbitration): keep it to half a minute on a devnet.
            "--check-ttl-ms",
            "10000",
            "--telemetry-every-ms",
            "5000",
        ])
        .args(if args.http_listen.is_empty() {
            Vec::new()
        } else {
            vec!["--http-listen", args.http_listen.as_str()]
        })
        .args(match &tls {
            Some(t) => vec![
                "--tls-cert".into(),
                t.cert.clone().into_os_string(),
                "--tls-key".into(),
                t.key.clone().into_os_string(),
            ],
            None => Vec::new(),
        })
        .arg("--data-dir")
        .arg(dir.join("coordinator"))
        .env("ASSAY_HOME", dir.join("coordinator"))
        .stdout(Stdio::piped())
        .stderr(log_file(&dir, "coordinator")?)
        .spawn()
        .context("starting the coordinator")
        .map_err(Failure::fault)?;
    let mut stdout = coordinator.stdout.take().map(BufReader::new);
    let mut nodes = vec![Node {
        name: "coordinator".into(),
        child: coordinator,
    }];
    let mut first = String::new();
    if let Some(out) = stdout.as_mut() {
        let _ = out.read_line(&mut first);
    }
    let Some(url) = first
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
    else {
        return Err(Failure::fault(anyhow::anyhow!(
            "the coordinator did not start (see {}): {first}",
            dir.join("logs/coordinator.log").display()
        )));
    };
    let url = url.to_string();
    println!("coordinator  {url}  (data and logs in {})", dir.display());
    if !args.http_listen.is_empty() {
        let mut line = String::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.read_line(&mut line);
        }
        match line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        {
            Some(web) => println!("explorer     {web}  (worker dashboards at /providers/<id>)"),
            None => {
                return Err(Failure::fault(anyhow::anyhow!(
                    "the coordinator's web server did not start on {} (see {}): {line}",
                    args.http_listen,
                    dir.join("logs/coordinator.log").display()
                )));
            }
        }
    }
    let oracle = node_command(&exe, ca)
        .args(["oracle", "run", "--coordinator", &url])
        .args(["--price", ORACLE_PRICE, "--every-ms", "2000"])
        .env("ASSAY_HOME", &oracle_home)
        .stdout(Stdio::null())
        .stderr(log_file(&dir, "oracle")?)
        .spawn()
        .context("starting the oracle")
        .map_err(Failure::fault)?;
    nodes.push(Node {
        name: "oracle".into(),
        child: oracle,
    });
    println!("oracle       {oracle_key}  posts {ORACLE_PRICE} IOSD per IO every 2 s");
    println!(
        "rewards      an hour of the schedule lasts {} s, an epoch {} s",
        REWARD_HOUR_MS / 1000,
        REWARD_EPOCH_MS / 1000
    );

    for i in 0..args.providers {
        let name = format!("provider-{i}");
        let child = node_command(&exe, ca)
            .args(["provider", "--coordinator", &url])
            .args(["--price", &(10 + i).to_string()])
            .args(["--reserve-price", &devnet_reserve_price(i)])
            // A provider bonds stake for each unsettled receipt, in
            // proportion to the job's value: 100 IO held back a gateway's
            // stream of jobs after two or three receipts until they settled.
            .args(["--stake", DEVNET_PROVIDER_STAKE, "--faucet", "20000000000"])
            .args([
                "--slots",
                "2",
                "--poll-ms",
                "200",
                "--drain-timeout-ms",
                "5000",
            ])
            .env("ASSAY_HOME", dir.join(&name))
            .stdout(Stdio::null())
            .stderr(log_file(&dir, &name)?)
            .spawn()
            .with_context(|| format!("starting {name}"))
            .map_err(Failure::fault)?;
        println!(
            "{name}   price {} µIOSD/Munit, reserve {} IOSD/slot-hour, stake 10,000 IO",
            10 + i,
            devnet_reserve_price(i)
        );
        nodes.push(Node { name, child });
    }
    let arbiter = node_command(&exe, ca)
        .args(["verifier", "--coordinator", &url])
        .args(["--poll-ms", "200", "--backend", "cpu"])
        .env("ASSAY_HOME", &arbiter_home)
        .stdout(Stdio::null())
        .stderr(log_file(&dir, "arbiter")?)
        .spawn()
        .context("starting the arbiter")
        .map_err(Failure::fault)?;
    nodes.push(Node {
        name: "arbiter".into(),
        child: arbiter,
    });
    println!("arbiter      {arbiter_key}  re-executes disputes and re-checks (its result decides)");
    for i in 0..args.verifiers {
        let name = format!("verifier-{i}");
        let child = node_command(&exe, ca)
            .args(["verifier", "--coordinator", &url])
            .args(["--stake", "100000000", "--faucet", "1000000000"])
            .args(["--poll-ms", "200", "--backend", "cpu"])
            .env("ASSAY_HOME", dir.join(&name))
            .stdout(Stdio::null())
            .stderr(log_file(&dir, &name)?)
            .spawn()
            .with_context(|| format!("starting {name}"))
            .map_err(Failure::fault)?;
        println!("{name}   stake 100 IO, re-executes on the CPU");
        nodes.push(Node { name, child });
    }
    println!();
    println!("try it (another shell):");
    println!("  export ASSAY_COORDINATOR={url}");
    if let Some(ca) = ca {
        println!(
            "  export {}={}   # trust the devnet's CA",
            assay_proto::client::TLS_CA_ENV,
            ca.display()
        );
    }
    println!("  assay faucet                   # IOSD (minted by burning the faucet's IO)");
    println!("  assay faucet --unit io         # IO");
    println!(
        "  assay publish JOB.wasm --input NAME=PATH --shards 2 --max-price 100 --wait [--pay-in io]"
    );
    println!(
        "  assay cluster create --gpus 1 --hours 1 --max-price 2   # reserve a provider; then publish --cluster ID"
    );
    println!("  assay ledger supply; assay rewards; assay account");
    println!();
    let _ = std::io::stdout().flush();

    // Conversions need the oracle's first price.
    wait_for_price(&url, ca)?;
    if args.demo {
        let code = demo(&exe, &dir, &url, args.providers, ca)?;
        if args.exit_after_demo {
            drop(nodes);
            return Ok(code);
        }
    }
    println!("devnet running; Ctrl-C stops it");
    let _ = std::io::stdout().flush();
    let rt = super::net::tokio()?;
    rt.block_on(super::net::shutdown_signal());
    drop(nodes);
    Ok(0)
}

/// The devnet's compressed reward schedule.
const REWARD_HOUR_MS: u64 = 60_000;
const REWARD_EPOCH_MS: u64 = 10_000;
/// Provider `i`'s reserve price on a devnet, IOSD per slot-hour: 1, 1.1,
/// 1.2, … (so a cluster of one picks provider-0).
fn devnet_reserve_price(i: u32) -> String {
    format!("1.{}", i.min(9))
}

/// The devnet oracle's fixed price, IOSD per IO.
const ORACLE_PRICE: &str = "1.5";

/// Waits (up to 30 s) until the coordinator has a fresh IO price.
fn wait_for_price(url: &str, ca: Option<&Path>) -> Result<(), Failure> {
    let rt = super::net::tokio()?;
    let channel = {
        let _in = rt.enter();
        assay_proto::client::channel_trusting(url, ca).map_err(Failure::usage)?
    };
    rt.block_on(async {
        let mut client = assay_proto::pb::economy_client::EconomyClient::new(channel);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.get_price(assay_proto::pb::GetPriceRequest {}).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(Failure::fault(anyhow::anyhow!(
                        "the devnet oracle posted no price in 30 s: {}",
                        e.message()
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
}

/// Publishes matmul (2 shards), paid in IO, as a renter; follows it to
/// settlement; then shows the providers' IOSD earnings and IO rewards.
fn demo(
    exe: &Path,
    dir: &Path,
    url: &str,
    providers: u32,
    ca: Option<&Path>,
) -> Result<u8, Failure> {
    let work = dir.join("demo");
    std::fs::create_dir_all(&work).map_err(|e| Failure::usage(anyhow::anyhow!("{e}")))?;
    let component = work.join("matmul.wasm");
    std::fs::write(&component, assay_guests::MATMUL_WASM)
        .map_err(|e| Failure::fault(anyhow::anyhow!("{e}")))?;
    let n = 64u32;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 - 3.0).collect();
    let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 * 0.5).collect();
    for (name, m) in [("a.bin", &a), ("b.bin", &b)] {
        let bytes = assay_guests::matrix::encode(n, n, m)
            .ok_or_else(|| Failure::fault(anyhow::anyhow!("encoding the demo matrix")))?;
        std::fs::write(work.join(name), bytes)
            .map_err(|e| Failure::fault(anyhow::anyhow!("{e}")))?;
    }
    let run = |args: &[&str]| -> Result<u8, Failure> {
        println!("$ assay {}", args.join(" "));
        let _ = std::io::stdout().flush();
        let status = node_command(exe, ca)
            .args(args)
            .env("ASSAY_HOME", dir.join("renter"))
            .env("ASSAY_COORDINATOR", url)
            .current_dir(&work)
            .status()
            .map_err(|e| Failure::fault(anyhow::anyhow!("{e}")))?;
        Ok(status.code().unwrap_or(1) as u8)
    };
    run(&["faucet", "--unit", "io"])?;
    let code = run(&[
        "publish",
        "matmul.wasm",
        "--input",
        "a=a.bin",
        "--input",
        "b=b.bin",
        "--shards",
        "2",
        "--max-price",
        "100",
        "--fuel",
        "100000000",
        "--work-budget",
        "100000000",
        "--verify-rate",
        "1",
        "--pay-in",
        "io",
        "--wait-settled",
    ])?;
    if code != 0 {
        return Ok(code);
    }
    run(&["account"])?;
    // The providers' work counts in the reward epoch it settled in: wait
    // for that epoch to close.
    println!(
        "(waiting {} s for the reward epoch to close)",
        REWARD_EPOCH_MS / 1000 + 2
    );
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_millis(REWARD_EPOCH_MS + 2_000));
    run(&["rewards", "--limit", "2"])?;
    for i in 0..providers {
        let key = dir.join(format!("provider-{i}")).join("node.key");
        if let Ok(k) = assay_protocol::NodeKey::load_or_create(&key) {
            run(&["account", &k.id().to_string()])?;
        }
    }
    run(&["ledger", "supply"])?;
    run(&["ledger", "verify"])
}
