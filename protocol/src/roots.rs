//! The roots a receipt states: of a run's outputs (their bytes) and of a
//! job's inputs (their content ids). Frozen formats: a root's bytes never
//! change for the same outputs or inputs.

use crate::Hash32;
use crate::canonical::Encoder;

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
    let mut e = Encoder::new("assay/inputs/v1");
    e.u64(items.len() as u64);
    for (name, size, hash) in &items {
        e.str(name.as_ref()).u64(*size).fixed32(&hash.0);
    }
    e.hash()
}
