//! The guest memory cap: a `ResourceLimiter` that ends the run with a clear
//! message (outcome `memory-limit`) instead of letting `memory.grow` fail.

use std::fmt;

/// Raised (as a trap) when a guest tries to grow past its cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimitHit {
    /// What was asked for, in bytes.
    pub desired: usize,
    /// The cap, in bytes.
    pub limit: u64,
}

impl fmt::Display for MemoryLimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "guest memory limit: growing linear memory to {} bytes exceeds the spec's {} bytes",
            self.desired, self.limit
        )
    }
}

impl std::error::Error for MemoryLimitHit {}

/// Largest table any guest may grow to (function references).
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Per-store limits.
#[derive(Debug)]
pub(crate) struct GuestLimits {
    pub(crate) memory_bytes: u64,
}

impl wasmtime::ResourceLimiter for GuestLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            return Err(wasmtime::Error::new(MemoryLimitHit {
                desired,
                limit: self.memory_bytes,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
