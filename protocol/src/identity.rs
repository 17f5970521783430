use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A node's public identity: its ed25519 verifying key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 32]);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

/// A node's private signing key.
///
/// Created on first use by [`NodeKey::load_or_create`] and stored as 64 hex
/// digits in a file only its owner can read (mode 0600 on Unix). A clone
/// is the same identity (a daemon's blob reader signs with it too).
#[derive(Clone)]
pub struct NodeKey {
    key: SigningKey,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({})", self.id())
    }
}

impl NodeKey {
    /// A fresh key from the operating system's random source.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if the OS has no random source.
    pub fn generate() -> Result<NodeKey, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
        Ok(NodeKey::from_seed(seed))
    }

    /// A key from a 32-byte seed (tests and devnets use fixed seeds).
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        NodeKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Loads the key at `path`, or creates one there (mode 0600) if none exists.
    ///
    /// # Errors
    ///
    /// [`Error::KeyFile`] if the file can't be read or written;
    /// [`Error::BadKeyFile`] if it is not a key or other users can read it
    /// (then fix its permissions with `chmod 600`, or move it away to make a
    /// new identity).
    pub fn load_or_create(path: &Path) -> Result<NodeKey, Error> {
        match fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                let mut seed = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut seed).map_err(|e| Error::BadKeyFile {
                    path: path.to_owned(),
                    reason: format!(
                        "expected 64 hex digits ({e}); move it away to create a new key"
                    ),
                })?;
                Ok(NodeKey::from_seed(seed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = NodeKey::generate()?;
                key.write_new(path)?;
                Ok(key)
            }
            Err(source) => Err(Error::KeyFile {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn write_new(&self, path: &Path) -> Result<(), Error> {
        let io = |source| Error::KeyFile {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        file.write_all(hex::encode(self.key.to_bytes()).as_bytes())
            .map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// This key's public identity.
    pub fn id(&self) -> NodeId {
        NodeId(self.key.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.key.sign(message).to_bytes())
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|source| Error::KeyFile {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::BadKeyFile {
            path: path.to_owned(),
            reason: format!(
                "permissions are {mode:o}; other users could read it — run `chmod 600` on it"
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), Error> {
    Ok(())
}

impl NodeId {
    /// Checks that `signature` is this node's signature of `message`.
    ///
    /// # Errors
    ///
    /// [`Error::BadSignature`] if it is not (or this id is not a valid key).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), Error> {
        let key = VerifyingKey::from_bytes(&self.0)
            .map_err(|e| Error::BadSignature(format!("{self} is not an ed25519 key: {e}")))?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify(message, &sig)
            .map_err(|_| Error::BadSignature(format!("not signed by {self}")))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", &self.to_hex()[..12])
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..6]))
    }
}

fn decode_hex<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| Error::InvalidEncoding {
        what,
        reason: e.to_string(),
    })?;
    Ok(out)
}

impl FromStr for NodeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        decode_hex::<32>(s, "node id (64 hex digits)").map(NodeId)
    }
}

impl FromStr for Signature {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        decode_hex::<64>(s, "signature (128 hex digits)").map(Signature)
    }
}

macro_rules! hex_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.0))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
hex_serde!(NodeId);
hex_serde!(Signature);
