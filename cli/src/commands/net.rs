//! What the network subcommands share: the coordinator flag, a tokio
//! runtime, the node key, signing, and turning gRPC statuses into exit
//! statuses.

use assay_proto::auth::{self, Signed, Signer};
use assay_proto::client::REQUEST_TTL_MS;
use assay_proto::now_ms;
use assay_protocol::NodeKey;
use clap::Args;
use tonic::transport::Channel;

use crate::Failure;

/// The default coordinator address (`assay coordinator`'s default `--listen`).
pub const DEFAULT_COORDINATOR: &str = "http://127.0.0.1:7700";

/// Which coordinator to talk to.
#[derive(Debug, Clone, Args)]
pub struct CoordinatorUrl {
    /// The coordinator's URL.
    #[arg(long, env = "ASSAY_COORDINATOR", default_value = DEFAULT_COORDINATOR)]
    pub coordinator: String,
}

impl CoordinatorUrl {
    /// A lazily connecting channel (made inside `rt`, which drives it).
    pub fn channel(&self, rt: &tokio::runtime::Runtime) -> Result<Channel, Failure> {
        let _in_runtime = rt.enter();
        assay_proto::client::channel(&self.coordinator).map_err(Failure::usage)
    }
}

/// A multi-threaded tokio runtime for one command.
pub fn tokio() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::fault(anyhow::anyhow!("starting the async runtime: {e}")))
}

/// This node's key (`$ASSAY_HOME/node.key`, created on first use).
pub fn node_key() -> Result<NodeKey, Failure> {
    NodeKey::load_or_create(&crate::home::key_file()).map_err(Failure::usage)
}

/// This node's key, bound to the coordinator behind `channel` (one call
/// asks for its id: every signed request names it).
pub async fn bind(channel: &Channel, url: &str) -> Result<Signer, Failure> {
    assay_proto::client::signer(channel, node_key()?)
        .await
        .map_err(proto(url))
}

/// [`bind`], from outside the runtime.
pub fn signer(
    rt: &tokio::runtime::Runtime,
    channel: &Channel,
    url: &str,
) -> Result<Signer, Failure> {
    rt.block_on(bind(channel, url))
}

/// `m`, signed by `signer` with a fresh nonce.
pub fn signed<M: Signed>(signer: &Signer, mut m: M) -> Result<M, Failure> {
    auth::sign(signer, &mut m, now_ms(), REQUEST_TTL_MS).map_err(Failure::fault)?;
    Ok(m)
}

/// A refused or failed call as an exit status: the coordinator unreachable
/// or broken is a fault (1); a refusal of the request is a usage error (2).
pub fn rpc(url: &str) -> impl Fn(tonic::Status) -> Failure + '_ {
    move |s| {
        let e = assay_proto::Error::from(s.clone());
        match s.code() {
            tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::Internal
            | tonic::Code::Cancelled => Failure::fault(anyhow::anyhow!(
                "coordinator at {url}: {e}{}",
                tls_hint(url, &s)
            )),
            _ => Failure::usage(anyhow::anyhow!("{e}")),
        }
    }
}

/// What to do about a failure that looks like a TLS mismatch.
fn tls_hint(url: &str, s: &tonic::Status) -> String {
    let text = s.message();
    if text.contains("invalid peer certificate") {
        format!(
            " (its certificate is not signed by an authority this machine trusts: set {}=PATH \
             to its CA's PEM, e.g. a devnet's DIR/tls/ca.pem)",
            assay_proto::client::TLS_CA_ENV
        )
    } else if url.starts_with("http://")
        && (s.code() == tonic::Code::Cancelled
            || [
                "transport error",
                "h2 protocol error",
                "operation was canceled",
                "connection reset",
                "connection closed",
            ]
            .iter()
            .any(|t| text.contains(t)))
    {
        // Something listens there but does not speak plaintext HTTP/2; how
        // that shows (a transport, h2 or cancelled error) varies.
        " (if that coordinator serves TLS, use its https:// URL)".into()
    } else {
        String::new()
    }
}

/// A proto-layer error (uploads, downloads) as an exit status.
pub fn proto(url: &str) -> impl Fn(assay_proto::Error) -> Failure + '_ {
    move |e| match e {
        assay_proto::Error::Rpc(s) => rpc(url)(s),
        other if other.is_transient() => {
            Failure::fault(anyhow::anyhow!("coordinator at {url}: {other}"))
        }
        other => Failure::usage(other),
    }
}

/// Base units (µIOSD, µIO) as whole units with six decimals.
pub fn amount(micro: u64) -> String {
    assay_coordinator::ledger::accounts::format_amount(micro)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
