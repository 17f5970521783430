//! Shapes and axis lists: anything that looks like a list of integers.
//!
//! Every SDK function that takes a shape (or a list of axes) takes
//! `&S where S: Dims + ?Sized`, so all of these work:
//!
//! ```no_run
//! # use assay_guest::Tensor;
//! # fn f(x: &Tensor) -> assay_guest::Result<()> {
//! let a = x.reshape(&[2, 3])?;                 // integer literals
//! let b = x.reshape(&[2u32, 3])?;              // u32, as the WIT has it
//! let dims: Vec<usize> = vec![3, 2];
//! let c = x.reshape(&dims)?;                   // Vec<usize>
//! let d = x.reshape(&dims[..])?;               // &[usize]
//! let e = x.reshape(&[-1, 2])?;                // reshape only: -1 infers one dimension
//! let z = Tensor::zeros(&[] as &[u32])?;       // a scalar (or Tensor::scalar)
//! # Ok(()) }
//! ```
//!
//! Dimensions must fit in `u32` (the WIT's type); a negative or too large
//! value is an [`Error::InvalidArgument`].

use crate::{Error, Result};

/// One integer of a shape or axis list. Implemented for the primitive integers.
pub trait Dim: Copy {
    /// The value as an `i64` (saturating for `u64`/`usize` values past `i64::MAX`).
    fn to_i64(self) -> i64;
}

macro_rules! impl_dim {
    ($($t:ty),*) => {$(
        impl Dim for $t {
            #[inline]
            fn to_i64(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
impl_dim!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// A list of dimensions (or axes): slices, arrays and `Vec`s of any
/// primitive integer type. See the [module docs](self).
pub trait Dims {
    /// The values as `i64`s.
    fn to_i64s(&self) -> Vec<i64>;
}

impl<D: Dim> Dims for [D] {
    fn to_i64s(&self) -> Vec<i64> {
        self.iter().map(|d| d.to_i64()).collect()
    }
}

impl<D: Dim, const N: usize> Dims for [D; N] {
    fn to_i64s(&self) -> Vec<i64> {
        self.as_slice().to_i64s()
    }
}

impl<D: Dim> Dims for Vec<D> {
    fn to_i64s(&self) -> Vec<i64> {
        self.as_slice().to_i64s()
    }
}

impl<T: Dims + ?Sized> Dims for &T {
    fn to_i64s(&self) -> Vec<i64> {
        (**self).to_i64s()
    }
}

/// Converts a shape or axis list to the WIT's `list<u32>`.
pub(crate) fn to_u32s<S: Dims + ?Sized>(what: &str, dims: &S) -> Result<Vec<u32>> {
    dims.to_i64s()
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            u32::try_from(d).map_err(|_| {
                Error::InvalidArgument(format!(
                    "{what}: value {d} at position {i} is out of range (0..=4294967295)"
                ))
            })
        })
        .collect()
}

/// A model file's tensor shape as the host's `u32` dimensions.
///
/// # Errors
/// [`Error::InvalidArgument`] naming tensor `name` if a dimension does not fit.
pub(crate) fn file_dims(name: &str, shape: &[u64]) -> Result<Vec<u32>> {
    shape
        .iter()
        .map(|&d| u32::try_from(d))
        .collect::<core::result::Result<_, _>>()
        .map_err(|_| {
            Error::InvalidArgument(format!(
                "tensor `{name}` has shape {shape:?}: a dimension does not fit in u32"
            ))
        })
}

/// Converts a reshape target, resolving at most one `-1` from the element count.
pub(crate) fn reshape_dims<S: Dims + ?Sized>(dims: &S, numel: u64) -> Result<Vec<u32>> {
    let dims = dims.to_i64s();
    let inferred: Vec<usize> = dims
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == -1)
        .map(|(i, _)| i)
        .collect();
    if inferred.len() > 1 {
        return Err(Error::InvalidArgument(format!(
            "reshape {dims:?}: only one dimension can be -1"
        )));
    }
    let mut known: u64 = 1;
    let mut out = Vec::with_capacity(dims.len());
    for (i, &d) in dims.iter().enumerate() {
        if d == -1 {
            out.push(0);
            continue;
        }
        let d32 = u32::try_from(d).map_err(|_| {
            Error::InvalidArgument(format!(
                "reshape {dims:?}: value {d} at position {i} is out of range (0..=4294967295, or -1 once)"
            ))
        })?;
        known = known.saturating_mul(u64::from(d32));
        out.push(d32);
    }
    if let Some(&i) = inferred.first() {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(Error::ShapeMismatch(format!(
                "reshape {dims:?}: cannot infer the -1 dimension for {numel} elements"
            )));
        }
        out[i] = u32::try_from(numel / known).map_err(|_| {
            Error::InvalidArgument(format!(
                "reshape {dims:?}: the inferred dimension {} does not fit in u32",
                numel / known
            ))
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_slices_vecs() {
        assert_eq!(to_u32s("s", &[2, 3]), Ok(vec![2, 3]));
        assert_eq!(to_u32s("s", &[2usize, 3][..]), Ok(vec![2, 3]));
        assert_eq!(to_u32s("s", &vec![7u64]), Ok(vec![7]));
        assert_eq!(to_u32s("s", &[] as &[u32]), Ok(vec![]));
        assert!(matches!(
            to_u32s("shape", &[1, -2]),
            Err(Error::InvalidArgument(m)) if m.contains("-2 at position 1")
        ));
        assert!(to_u32s("s", &[u64::MAX]).is_err());
        assert!(to_u32s("s", &[1u64 << 32]).is_err());
    }

    #[test]
    fn reshape_infers_one_dimension() {
        assert_eq!(reshape_dims(&[-1, 4], 12), Ok(vec![3, 4]));
        assert_eq!(reshape_dims(&[2, -1, 2], 12), Ok(vec![2, 3, 2]));
        assert_eq!(reshape_dims(&[3, 4], 12), Ok(vec![3, 4]));
        assert!(reshape_dims(&[-1, -1], 12).is_err());
        assert!(reshape_dims(&[-1, 5], 12).is_err());
        assert!(reshape_dims(&[-1, 0], 12).is_err());
        assert!(reshape_dims(&[-2, 6], 12).is_err());
    }
}
