//! The per-element programs of `SEMANTICS.md`, one function each.
//!
//! Kernels call these inside loops the compiler vectorises; every function is
//! `#[inline(always)]` so it is compiled with the caller's target features.
//! Changing any line here changes the bits every backend must produce.

use crate::math;

/// The one NaN every op writes (quiet, positive, no payload).
pub(crate) const CANONICAL_NAN: f32 = f32::from_bits(0x7fc0_0000);

/// `x`, with any NaN replaced by [`CANONICAL_NAN`].
///
/// The test is on the bits, not `f32::is_nan`: LLVM treats all NaNs as
/// interchangeable and folds `if r.is_nan() { NAN } else { r }` to `r` when
/// `r` is the result of an operation (measured: `canon(x.sqrt())` became a
/// bare `sqrtss`, leaving x86's negative default NaN 0xffc00000). It does not
/// reason about NaN payloads through an integer compare.
#[inline(always)]
pub(crate) fn canon(x: f32) -> f32 {
    let bits = x.to_bits();
    f32::from_bits(if bits & 0x7fff_ffff > 0x7f80_0000 {
        CANONICAL_NAN.to_bits()
    } else {
        bits
    })
}

/// IEEE 754-2019 `maximum`: NaN if either is NaN; `max(-0, +0) = +0`.
/// Unlike `f32::max` it is order-free, so any reduction order gives the same bits.
#[inline(always)]
pub(crate) fn max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        CANONICAL_NAN
    } else if a > b {
        a
    } else if b > a {
        b
    } else {
        // Equal: identical bits, or ±0, where clearing the sign picks +0.
        f32::from_bits(a.to_bits() & b.to_bits())
    }
}

/// IEEE 754-2019 `minimum`: NaN if either is NaN; `min(-0, +0) = -0`.
#[inline(always)]
pub(crate) fn min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        CANONICAL_NAN
    } else if a < b {
        a
    } else if b < a {
        b
    } else {
        f32::from_bits(a.to_bits() | b.to_bits())
    }
}

/// `max(x, +0)`: `relu(-0) = +0`, `relu(NaN) = NaN`.
#[inline(always)]
pub(crate) fn relu(x: f32) -> f32 {
    max(x, 0.0)
}

/// `1 / √2` rounded to f32 (0x3f3504f3).
pub(crate) const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// gelu(x) = (0.5·x) · (1 + erf(x · f32(1/√2))), three roundings after erf:
/// `h = 0.5 * x`, `t = 1.0 + e`, `h * t`. No fma.
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    let e = math::erf(x * FRAC_1_SQRT_2);
    let h = 0.5 * x;
    h * (1.0 + e)
}

/// sigmoid(x) = 1 / (1 + exp(-x)).
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + math::exp(-x))
}
