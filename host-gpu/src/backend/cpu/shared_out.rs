//! An output several tasks write at once, each its own disjoint part
//! (gemm's tiles, attention's blocks): a leaf shared by `matmul` and
//! `attention`.

use std::mem::MaybeUninit;

/// An output, shared by tasks that each write their own parts of it
/// (gemm's tiles, attention's blocks).
#[derive(Clone, Copy)]
pub(crate) struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: tasks write disjoint parts (see `gemm` and `attention`), so
// sharing the pointer is sound.
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// `c`, to be written through [`SharedOut::write`] and [`SharedOut::block`].
    pub(crate) fn over(c: &mut [MaybeUninit<f32>]) -> SharedOut {
        SharedOut {
            ptr: c.as_mut_ptr().cast(),
            len: c.len(),
        }
    }

    /// A pointer to `rows` rows of `cols` elements starting at `at`, `ld`
    /// apart, after checking they lie inside the output.
    pub(crate) fn block(&self, at: usize, rows: usize, ld: usize, cols: usize) -> *mut f32 {
        assert!(
            rows >= 1 && at + (rows - 1) * ld + cols <= self.len,
            "gemm: tile outside the output"
        );
        // SAFETY: in bounds (checked above).
        unsafe { self.ptr.add(at) }
    }

    /// Copies output elements `at..at + dst.len()` into `dst`.
    ///
    /// # Safety
    ///
    /// Those elements are initialised and no other thread writes them meanwhile.
    pub(crate) unsafe fn read(&self, at: usize, dst: &mut [f32]) {
        assert!(at + dst.len() <= self.len, "gemm: tile outside the output");
        // SAFETY: in bounds (checked); the rest is the caller's promise.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(at), dst.as_mut_ptr(), dst.len()) }
    }

    /// Writes `src` to output elements `at..at + src.len()`.
    ///
    /// # Safety
    ///
    /// No other thread reads or writes those elements meanwhile.
    pub(crate) unsafe fn write(&self, at: usize, src: &[f32]) {
        assert!(at + src.len() <= self.len, "gemm: tile outside the output");
        // SAFETY: in bounds (checked); the rest is the caller's promise.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(at), src.len()) }
    }
}
