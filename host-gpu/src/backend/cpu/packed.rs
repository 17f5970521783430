//! A buffer's packed panels as a matmul B operand, kept with the buffer
//! (`CpuBuffer::packed`). A leaf below both the buffer and `matmul`: it
//! holds and hands out packings; `matmul` makes them (`pack_b`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::backend::cpu::panel_memory::PanelMemory;
use crate::error::Error;

/// The largest packing a buffer keeps (256 MiB of floats: a 8192×8192
/// weight); larger ones are packed block by block on every use.
const MAX_KEPT_PACK_FLOATS: usize = 64 << 20;

/// The whole of a B operand in the panel layout `gemm` reads: for each
/// block of `KC` k rows, its panels of `nr` columns one after another, each
/// `kc · nr` floats, padding columns +0.0.
#[derive(Debug)]
pub(crate) struct PackedB {
    pub(crate) key: PackKey,
    pub(crate) data: PanelMemory,
}

/// What a packing depends on: the same buffer read as another matrix (a
/// transposed read, another shape, another kernel width) packs differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackKey {
    pub(crate) k: usize,
    pub(crate) n: usize,
    pub(crate) nr: usize,
    pub(crate) transposed: bool,
}

impl PackedB {
    /// Panel `q` (columns `q·nr..`) of the k rows `k0..k0 + kc` (a whole
    /// `KC` block).
    pub(crate) fn panel(&self, k0: usize, kc: usize, q: usize) -> &[f32] {
        let nr = self.key.nr;
        let at = k0 * self.key.n.div_ceil(nr) * nr + q * nr * kc;
        &self.data.as_slice()[at..at + nr * kc]
    }
}

/// A buffer's packed form as a B operand (see `CpuBuffer`): packed on the
/// buffer's second use as B, which is when it starts paying (a model's
/// weights are multiplied once per batch; most activations are B once), or
/// on the first for a job's inputs ([`PackCache::eager`]). It holds one
/// packing at a time, so it costs about the buffer's own size again
/// (rounded up to whole 2 MiB pages from 512 KiB on, see `panel_memory`).
#[derive(Debug, Default)]
pub(crate) struct PackCache {
    uses: AtomicU32,
    packed: Mutex<Option<Arc<PackedB>>>,
}

impl PackCache {
    /// A cache that packs on the buffer's first use as B: for buffers that
    /// are a job's inputs (weights, as a rule), which stay resident for
    /// later jobs and are worth packing whole even when a job multiplies by
    /// them once.
    pub(crate) fn eager() -> PackCache {
        PackCache {
            uses: AtomicU32::new(1),
            packed: Mutex::default(),
        }
    }

    /// The packed panels for `key`, packing them now with `pack` if this is
    /// not the buffer's first use as B; `None` when the caller should pack
    /// as it goes.
    pub(crate) fn get(
        &self,
        key: PackKey,
        pack: impl FnOnce() -> Result<PackedB, Error>,
    ) -> Result<Option<Arc<PackedB>>, Error> {
        let mut slot = self.packed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(packed) = slot.as_ref().filter(|p| p.key == key) {
            return Ok(Some(Arc::clone(packed)));
        }
        if self.uses.fetch_add(1, Ordering::Relaxed) == 0 {
            return Ok(None);
        }
        // Packings are host memory outside the job's quota: a matrix too
        // large to keep twice is packed as it goes, as on its first use.
        let floats = key.k.saturating_mul(key.n.div_ceil(key.nr) * key.nr);
        if floats > MAX_KEPT_PACK_FLOATS {
            return Ok(None);
        }
        let packed = Arc::new(pack()?);
        *slot = Some(Arc::clone(&packed));
        Ok(Some(packed))
    }
}
