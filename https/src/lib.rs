//! HTTPS for Assay's axum servers: the explorer (served by `assay
//! coordinator --web`) and the OpenAI-compatible gateway.
//!
//! [`TlsListener`] is an [`axum::serve::Listener`]: it accepts TCP
//! connections and completes each TLS handshake on a task of its own, so a
//! client that connects and never finishes its handshake holds one of
//! [`MAX_HANDSHAKES`] slots for at most [`HANDSHAKE_TIMEOUT`] and never the
//! accept loop. [`Peer`] is the client's address as axum's `ConnectInfo`,
//! whichever listener served it (rate limits key on it).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use assay_https::{Peer, TlsListener, server_config};
//!
//! let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let tls = TlsListener::new(tcp, server_config(cert_pem, key_pem)?)?;
//! axum::serve(tls, app.into_make_service_with_connect_info::<Peer>()).await?;
//! # Ok(())
//! # }
//! ```

pub use rustls;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many handshakes run at once; further connections wait in the
/// kernel's backlog.
pub const MAX_HANDSHAKES: usize = 256;

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The certificate PEM holds no certificate, or a bad one.
    #[error("the certificate PEM: {0} (give the server's certificate chain, leaf first, as PEM)")]
    Certificate(String),
    /// The key PEM holds no private key, or a bad one.
    #[error("the private key PEM: {0} (give the certificate's PKCS#8, PKCS#1 or SEC1 key as PEM)")]
    Key(String),
    /// rustls refused the pair (e.g. the key does not match).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A rustls server configuration for `cert_pem` (the chain, leaf first)
/// and `key_pem`, offering HTTP/1.1 and HTTP/2.
///
/// # Errors
///
/// [`Error::Certificate`], [`Error::Key`], or [`Error::Config`] when they
/// do not fit together.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>, Error> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(Error::Certificate("no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| Error::Key(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TLS listener for [`axum::serve`]: TCP accepts on one task, each
/// handshake on its own (bounded in time and number), finished streams
/// handed to the server in order of completion.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS with `config` on `tcp`. Call inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The listener's address cannot be read.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (done, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), done));
        Ok(TlsListener {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    done: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait, don't spin.
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, handed) = (acceptor.clone(), done.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = handed.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
        if done.is_closed() {
            return;
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The client's address, as `ConnectInfo<Peer>`, whether it came over
/// plain TCP or [`TlsListener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// Reads a certificate chain and key from PEM files and makes
/// [`server_config`] of them.
///
/// # Errors
///
/// A file cannot be read ([`Error::Certificate`] / [`Error::Key`], naming
/// it), or as [`server_config`].
pub fn server_config_from_files(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let cert_pem = std::fs::read(cert)
        .map_err(|e| Error::Certificate(format!("cannot read {}: {e}", cert.display())))?;
    let key_pem = std::fs::read(key)
        .map_err(|e| Error::Key(format!("cannot read {}: {e}", key.display())))?;
    server_config(&cert_pem, &key_pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        (c.cert.pem(), c.key_pair.serialize_pem())
    }

    #[test]
    fn bad_pem_is_refused_saying_which_file() {
        let (cert, key) = pair();
        assert!(server_config(cert.as_bytes(), key.as_bytes()).is_ok());
        let e = server_config(b"", key.as_bytes()).expect_err("no cert");
        assert!(e.to_string().contains("certificate"), "{e}");
        let e = server_config(cert.as_bytes(), b"nonsense").expect_err("no key");
        assert!(e.to_string().contains("private key"), "{e}");
        let (_, other_key) = pair();
        assert!(server_config(cert.as_bytes(), other_key.as_bytes()).is_err());
    }

    #[tokio::test]
    async fn a_client_that_never_handshakes_does_not_stop_the_next() {
        let (cert, key) = pair();
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let tls = TlsListener::new(
            tcp,
            server_config(cert.as_bytes(), key.as_bytes()).expect("config"),
        )
        .expect("listener");
        let addr = axum::serve::Listener::local_addr(&tls).expect("addr");
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let server = tokio::spawn(async move {
            let _ = axum::serve(tls, app.into_make_service_with_connect_info::<Peer>()).await;
        });
        // Ten connections that say nothing.
        let mut silent = Vec::new();
        for _ in 0..10 {
            silent.push(TcpStream::connect(addr).await.expect("connect"));
        }
        // A real client still gets its answer over TLS.
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(cert.as_bytes()) {
            roots.add(c.expect("cert")).expect("root");
        }
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut s = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
            .await
            .expect("handshake in time")
            .expect("handshake");
        s.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut reply = String::new();
        s.read_to_string(&mut reply).await.expect("read");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("hello"), "{reply}");
        // Plain HTTP to it gets no HTTP answer.
        let mut plain = TcpStream::connect(addr).await.expect("connect");
        plain
            .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .expect("write");
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
        assert!(!buf.starts_with(b"HTTP/1.1 200"));
        drop(silent);
        server.abort();
    }
}
