use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A blake3 digest: the id of a blob, a component, a job, an outputs root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// blake3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Hash32 {
        Hash32(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex digits, for logs and tables.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl From<blake3::Hash> for Hash32 {
    fn from(h: blake3::Hash) -> Self {
        Hash32(*h.as_bytes())
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.short())
    }
}

impl FromStr for Hash32 {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|e| Error::InvalidEncoding {
            what: "blake3 hash (64 hex digits)",
            reason: e.to_string(),
        })?;
        Ok(Hash32(out))
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The root of a run's outputs: blake3 over the canonical encoding of all
/// outputs sorted by name, each as (name, length, bytes).
///
/// Exactly: `blake3( "assay/outputs/v1" framed, u64 count, then for each
/// output in byte-wise name order: u64 len(name), name, u64 len(bytes), bytes )`
/// with every `u64` little-endian and the domain tag framed as a
/// length-prefixed string (see [`crate::canonical`]).
pub fn outputs_root<'a, I, N>(outputs: I) -> Hash32
where
    I: IntoIterator<Item = (N, &'a [u8])>,
    N: AsRef<str>,
{
    let mut items: Vec<(N, &[u8])> = outputs.into_iter().collect();
    items.sort_by(|a, b| a.0.as_ref().as_bytes().cmp(b.0.as_ref().as_bytes()));
    let mut h = blake3::Hasher::new();
    let tag = "assay/outputs/v1";
    h.update(&(tag.len() as u64).to_le_bytes());
    h.update(tag.as_bytes());
    h.update(&(items.len() as u64).to_le_bytes());
    for (name, bytes) in &items {
        let name = name.as_ref().as_bytes();
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.finalize().into()
}

/// The root of a job's inputs: like [`outputs_root`] but over each input's
/// blake3 instead of its bytes, so a node can compute it from content ids
/// alone: `blake3("assay/inputs/v1" framed, u64 count, then per input in name
/// order: u64 len(name), name, u64 size, blake3(bytes))`.
pub fn inputs_root<'a, I, N>(inputs: I) -> Hash32
where
    I: IntoIterator<Item = (N, u64, &'a Hash32)>,
    N: AsRef<str>,
{
    let mut items: Vec<(N, u64, &Hash32)> = inputs.into_iter().collect();
    items.sort_by(|a, b| a.0.as_ref().as_bytes().cmp(b.0.as_ref().as_bytes()));
    let mut e = crate::canonical::Encoder::new("assay/inputs/v1");
    e.u64(items.len() as u64);
    for (name, size, hash) in &items {
        e.str(name.as_ref()).u64(*size).fixed32(&hash.0);
    }
    e.hash()
}
