//! A private certificate authority and a server certificate it signs, for
//! a network over TLS on one's own machines (`assay devnet --tls`, and the
//! tests): clients trust the CA through `ASSAY_TLS_CA`.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Where [`make`] wrote the PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA's certificate: what clients trust (`ASSAY_TLS_CA`).
    pub ca: PathBuf,
    /// The server's certificate (`--tls-cert`).
    pub cert: PathBuf,
    /// The server's private key (`--tls-key`), mode 0600.
    pub key: PathBuf,
}

/// Makes a CA and a server certificate for `names` (host names or IP
/// addresses) in `dir`.
///
/// # Errors
///
/// If the keys cannot be made or the files written.
pub fn make(dir: &Path, names: &[&str]) -> anyhow::Result<TlsFiles> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key = KeyPair::generate().context("making the CA's key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Assay devnet CA");
    let ca = ca_params.self_signed(&ca_key).context("signing the CA")?;
    let key = KeyPair::generate().context("making the server's key")?;
    let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
    let params = CertificateParams::new(names).context("server certificate parameters")?;
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .context("signing the server's certificate")?;
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(&files.ca, ca.pem())?;
    write(&files.cert, cert.pem())?;
    write(&files.key, key.serialize_pem())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", files.key.display()))?;
    }
    Ok(files)
}
