//! Host allocation for the CPU kernels: a leaf every kernel imports (it
//! imports nothing from its siblings). Running out of host memory is a
//! device fault, never a job's error: the session checked the quota first.

use crate::error::Error;

/// A zeroed vector of `n` elements, or a device fault if the host is out of memory
/// (the quota was checked before; running out here says nothing about the job).
pub(crate) fn alloc<T: Copy + Default>(n: usize) -> Result<Vec<T>, Error> {
    let mut v = uninit(n)?;
    v.resize(n, T::default());
    Ok(v)
}

/// An empty vector with room for `n` elements (to be written through
/// `spare_capacity_mut`), or a device fault if the host is out of memory.
pub(crate) fn uninit<T>(n: usize) -> Result<Vec<T>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|e| Error::Device(format!("cpu: cannot allocate {n} elements: {e}")))?;
    Ok(v)
}

/// The number of elements of `shape`, or a device fault on overflow (the
/// session checked every shape, so this is a bug in the caller).
pub(crate) fn numel(shape: &[usize]) -> Result<usize, Error> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::Device(format!("cpu: shape {shape:?} overflows")))
}
