//! Prometheus exposition for the daemons (provider, verifier): one format
//! writer and one tiny HTTP endpoint, so every daemon speaks the same text.
//!
//! # Example
//!
//! ```
//! let mut out = String::new();
//! assay_proto::metrics::sample(&mut out, "assay_provider", "runs_total", "counter", "Runs.", 3);
//! assert!(out.ends_with("assay_provider_runs_total 3\n"));
//! ```

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Appends one metric (`# HELP`, `# TYPE` and its value) named
/// `{prefix}_{name}` to `out`.
pub fn sample(out: &mut String, prefix: &str, name: &str, kind: &str, help: &str, value: u64) {
    out.push_str(&format!(
        "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} {kind}\n{prefix}_{name} {value}\n"
    ));
}

/// Serves `GET /metrics` (any path, really) on `listener` forever, each
/// answer the text `render` gives at that moment.
pub async fn serve<F>(listener: tokio::net::TcpListener, render: F)
where
    F: Fn() -> String + Clone + Send + 'static,
{
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            // One request per connection; its contents do not matter.
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf)).await;
            let body = render();
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
