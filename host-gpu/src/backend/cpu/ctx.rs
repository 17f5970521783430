//! What a CPU kernel runs with ([`Ctx`]: the SIMD path and the thread
//! team) and how it splits an output across threads. A leaf every kernel
//! imports; it imports only the team, the SIMD choice and the allocator.

use std::sync::Mutex;

use crate::backend::cpu::alloc::{alloc, uninit};
use crate::backend::cpu::simd::CpuSimd;
use crate::backend::cpu::team::Team;
use crate::error::Error;

/// What a kernel needs to know about where it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) simd: CpuSimd,
    /// The threads an op may use; `None` runs it on the calling thread.
    pub(crate) team: Option<&'a Team>,
}

/// Below this many element-operations an op runs on the calling thread.
/// Handing work to the team costs about a microsecond, but splitting a
/// small op also leaves half its output in another core's cache for the
/// next op to fetch: at batch size 1 (ops of a few thousand elements)
/// 2¹⁴ made layer norms and permutes slower on two threads than on one;
/// 2¹⁶ measured best (2¹⁸ and 2²⁰ lost at batch size 16).
const PAR_MIN_COST: usize = 1 << 16;

/// How much of an output [`Ctx::new_rows`] zeroes ahead of its kernel (it
/// should still be in L1 when the kernel writes it).
const PIECE_BYTES: usize = 16 << 10;

impl Ctx<'_> {
    /// How many threads an op may use (the caller's included).
    pub(crate) fn threads(&self) -> usize {
        self.team.map_or(1, Team::threads)
    }

    /// This context on the calling thread alone.
    pub(crate) fn serial(&self) -> Self {
        Ctx {
            simd: self.simd,
            team: None,
        }
    }

    /// This context, or [`Ctx::serial`] for work of fewer than
    /// [`PAR_MIN_COST`] element-operations in all.
    pub(crate) fn for_cost(&self, cost: usize) -> Self {
        if cost < PAR_MIN_COST {
            self.serial()
        } else {
            *self
        }
    }

    /// Runs `f(first_row, chunk)` over chunks of whole rows of `out` (rows of
    /// `row_len` elements, each costing about `cost_per_row`), in parallel
    /// when it pays. Which rows share a chunk never changes a result.
    pub(crate) fn rows<T: Send>(
        &self,
        out: &mut [T],
        row_len: usize,
        cost_per_row: usize,
        f: impl Fn(usize, &mut [T]) + Sync + Send,
    ) {
        if out.is_empty() || row_len == 0 {
            return;
        }
        let rows = out.len() / row_len;
        let cost = cost_per_row.max(1);
        if self.threads() <= 1 || rows <= 1 || rows.saturating_mul(cost) < PAR_MIN_COST {
            f(0, out);
            return;
        }
        let min_rows = (PAR_MIN_COST / 4).div_ceil(cost).max(1);
        let per_chunk = rows.div_ceil(self.threads() * 4).max(min_rows);
        // Each chunk is taken by exactly one task (its lock is never contended).
        let chunks: Vec<Mutex<&mut [T]>> = out
            .chunks_mut(per_chunk * row_len)
            .map(Mutex::new)
            .collect();
        self.tasks(chunks.len(), |i| {
            let mut chunk = chunks[i].lock().unwrap_or_else(|p| p.into_inner());
            f(i * per_chunk, &mut chunk);
        });
    }

    /// A new vector of `n` elements (rows of `row_len`, each costing about
    /// `cost_per_row`), written by `f(first_row, chunk)` as in [`Ctx::rows`].
    ///
    /// Each task zeroes a piece of its chunk just before `f` writes it,
    /// instead of the caller zeroing all of it first: the memory is
    /// touched once, while in cache, and on every thread — a whole-output
    /// memset ran on the calling thread alone and cost as much as a small op.
    pub(crate) fn new_rows<T: Copy + Default + Send + Sync>(
        &self,
        n: usize,
        row_len: usize,
        cost_per_row: usize,
        f: impl Fn(usize, &mut [T]) + Sync + Send,
    ) -> Result<Vec<T>, Error> {
        if n == 0 || row_len == 0 {
            return alloc(n);
        }
        let mut v: Vec<T> = uninit(n)?;
        let rows_per_piece = (PIECE_BYTES / (row_len * std::mem::size_of::<T>()).max(1)).max(1);
        let spare = &mut v.spare_capacity_mut()[..n];
        self.rows(spare, row_len, cost_per_row, |first, chunk| {
            for (i, piece) in chunk.chunks_mut(rows_per_piece * row_len).enumerate() {
                piece.fill(std::mem::MaybeUninit::new(T::default()));
                // SAFETY: every element of `piece` was initialised just above,
                // and `MaybeUninit<T>` has the layout of `T`.
                let piece = unsafe { &mut *(std::ptr::from_mut(piece) as *mut [T]) };
                f(first + i * rows_per_piece, piece);
            }
        });
        // SAFETY: `rows` hands every element of `spare` (all `n`) to exactly
        // one call, which initialised it before anything read it.
        unsafe { v.set_len(n) };
        Ok(v)
    }

    /// A new vector of `n` elements written by `f(first_row, chunk)` as in
    /// [`Ctx::rows`], for kernels that copy into every element (data
    /// movement): unlike [`Ctx::new_rows`], nothing is zeroed first.
    ///
    /// # Safety
    ///
    /// `f` must initialise every element of each chunk it is given.
    pub(crate) unsafe fn copied_rows<T: Send + Sync>(
        &self,
        n: usize,
        row_len: usize,
        cost_per_row: usize,
        f: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) + Sync + Send,
    ) -> Result<Vec<T>, Error> {
        if n > 0 && (row_len == 0 || !n.is_multiple_of(row_len)) {
            return Err(Error::Device(format!(
                "cpu: an output of {n} elements in rows of {row_len}"
            )));
        }
        let mut v: Vec<T> = uninit(n)?;
        if n > 0 {
            self.rows(&mut v.spare_capacity_mut()[..n], row_len, cost_per_row, f);
        }
        // SAFETY: `rows` hands every element of the first `n` to exactly
        // one call of `f`, which initialised it (the caller's promise).
        unsafe { v.set_len(n) };
        Ok(v)
    }

    /// Runs `f(i)` for `i in 0..n`, in parallel when there is more than one
    /// task and more than one thread.
    pub(crate) fn tasks(&self, n: usize, f: impl Fn(usize) + Sync + Send) {
        match self.team {
            Some(team) if n > 1 => team.run(n, &f),
            _ => (0..n).for_each(f),
        }
    }
}
