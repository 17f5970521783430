//! Input tensors kept decoded on the device from one job to the next.
//!
//! A provider runs shard after shard of the same model. Decoding its weights
//! from the input bytes (and, on the CPU, packing them for matmul) once per
//! shard can cost more than a small shard's products. So a session may ask
//! for an input range by a key that names its content
//! ([`Session::from_encoded_resident`](crate::Session::from_encoded_resident));
//! when an earlier job on the same [`Device`](crate::Device) decoded the same
//! content, it gets that buffer.
//!
//! Nothing a job can observe changes: tensors are immutable, the buffer holds
//! the bits a fresh decode would, and the session charges the same work and
//! quota as for decoding. What is kept is bounded ([`DEFAULT_LIMIT`] bytes by
//! default, least recently used first out); a buffer still in use by a job
//! stays alive through that job's handles after it leaves the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::DeviceBuffer;
use crate::dtype::DType;
use crate::op::SourceEncoding;

/// Bytes of decoded inputs a device keeps by default (1 GiB): a few models
/// of MiniLM's size (90 MB), not so much that a host runs short.
pub const DEFAULT_LIMIT: u64 = 1 << 30;

/// A name for the content of an input range, chosen by the caller so that
/// equal keys mean equal bytes (the runtime hashes the input and the range
/// with blake3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentKey(pub [u8; 32]);

/// The decoded buffers a device keeps.
#[derive(Debug)]
pub(crate) struct Resident {
    limit: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<(ContentKey, SourceEncoding, DType), Entry>,
    bytes: u64,
    /// Bumped per lookup; an entry's `used` is the tick of its last hit.
    clock: u64,
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
struct Entry {
    buffer: Arc<dyn DeviceBuffer>,
    /// Encoded length (checked on a hit, a cheap guard against a key reused
    /// for other content) and decoded size (what counts against the limit).
    encoded_len: usize,
    bytes: u64,
    used: u64,
}

/// How a device's resident inputs are doing (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResidentStats {
    /// Buffers kept now.
    pub buffers: usize,
    /// Their decoded size in bytes.
    pub bytes: u64,
    /// The most it keeps.
    pub limit: u64,
    /// Lookups that found a buffer.
    pub hits: u64,
    /// Lookups that had to decode.
    pub misses: u64,
}

impl Resident {
    pub(crate) fn new(limit: u64) -> Resident {
        Resident {
            limit,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the map half-updated in a way that
        // matters: every entry is whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The buffer of `dtype` made earlier from content `key` in `encoding`
    /// (decoded, or its blocks kept), if kept.
    pub(crate) fn get(
        &self,
        key: ContentKey,
        encoding: SourceEncoding,
        dtype: DType,
        encoded_len: usize,
    ) -> Option<Arc<dyn DeviceBuffer>> {
        let mut state = self.state();
        state.clock += 1;
        let now = state.clock;
        let found = state
            .entries
            .get_mut(&(key, encoding, dtype))
            .filter(|e| e.encoded_len == encoded_len)
            .map(|e| {
                e.used = now;
                Arc::clone(&e.buffer)
            });
        match found {
            Some(_) => state.hits += 1,
            None => state.misses += 1,
        }
        found
    }

    /// Keeps `buffer` (decoded from `key`, `bytes` large), making room by
    /// dropping the least recently used; a buffer larger than the limit is
    /// not kept.
    pub(crate) fn keep(
        &self,
        key: ContentKey,
        encoding: SourceEncoding,
        dtype: DType,
        encoded_len: usize,
        buffer: Arc<dyn DeviceBuffer>,
        bytes: u64,
    ) {
        if bytes > self.limit {
            return;
        }
        let mut state = self.state();
        if let Some(old) = state.entries.remove(&(key, encoding, dtype)) {
            state.bytes -= old.bytes;
        }
        while state.bytes + bytes > self.limit {
            let Some(oldest) = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = state.entries.remove(&oldest) {
                state.bytes -= e.bytes;
            }
        }
        let used = state.clock;
        state.bytes += bytes;
        state.entries.insert(
            (key, encoding, dtype),
            Entry {
                buffer,
                encoded_len,
                bytes,
                used,
            },
        );
    }

    pub(crate) fn stats(&self) -> ResidentStats {
        let state = self.state();
        ResidentStats {
            buffers: state.entries.len(),
            bytes: state.bytes,
            limit: self.limit,
            hits: state.hits,
            misses: state.misses,
        }
    }
}
