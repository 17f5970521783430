//! Canonical math: `exp`, `log`, `erf`, `tanh` (`host-gpu/SEMANTICS.md`,
//! the canonical functions).
//!
//! Each function is a fixed, straight-line sequence of IEEE-754 binary32
//! primitives — `+ - * /`, [`f32::mul_add`] (fused, one rounding),
//! comparisons, and bit manipulation of the representation — with fixed
//! constants. No f64, no libm, no `f32::exp`/`ln`/`tanh`, no table lookups.
//! Every operation is round-to-nearest-even on binary32 and subnormals are
//! kept, so the result is a pure function of the input bits: any platform
//! that executes the same operations in the same order gets the same bits.
//!
//! `host-gpu/kernels/canonical.h` is the same code in C (for the CUDA
//! kernels, compiled with `--fmad=false`), line by line: the same constants
//! (same names, same decimal literals), the same operations in the same
//! order, `fmaf` exactly where this file has `mul_add`. The test
//! `tests/all/math_c_crosscheck.rs` compiles the header as C99, as C++17 and down
//! its NVRTC code path, with `-ffp-contract=off` (and hardware FMA enabled
//! where the machine has it), checks all three bit for bit against this file
//! on the accuracy sweep, and checks that every constant has the same value
//! in both files and the bit pattern its comment claims.
//! With `ASSAY_MATH_EXHAUSTIVE=1` the three builds were found identical to
//! the Rust on all 2^32 inputs of each function.
//!
//! The functions are `#[inline]` so that a caller compiled with
//! `#[target_feature(enable = "fma")]` gets hardware FMA for `mul_add`;
//! elsewhere `mul_add` is the correctly rounded software fma. Both give the
//! same bits.
//!
//! # Special values
//!
//! | input          | `exp`      | `log`  | `erf`  | `tanh` |
//! |----------------|------------|--------|--------|--------|
//! | NaN (any)      | NaN        | NaN    | NaN    | NaN    |
//! | +inf           | +inf       | +inf   | 1      | 1      |
//! | −inf           | +0         | NaN    | −1     | −1     |
//! | +0 / −0        | 1 / 1      | −inf / −inf | +0 / −0 | +0 / −0 |
//! | x < 0 (finite) |            | NaN    |        |        |
//!
//! Every NaN result is the canonical NaN `0x7fc00000` (point 6), whatever the
//! input NaN's sign or payload. Subnormal inputs and outputs are exact
//! citizens: `exp` rounds once into the subnormal range, `log` rescales
//! subnormal inputs, `erf`/`tanh` of a subnormal are computed like any other
//! small input. `erf` and `tanh` are odd *exactly*: they work on |x| and copy
//! the sign bit of x onto the result.
//!
//! # Algorithms
//!
//! **exp(x).** Outside [−104, 88.8] the result is +0 or +inf (e^−104 is
//! below half the smallest subnormal, e^88.8 above the largest finite).
//! Cody–Waite reduction x = k·ln2 + r, |r| ≤ ln2/2 (+ a hair):
//! `k = round(x·log2e)` with the 1.5·2^23 shifter (one fma, then the integer
//! k is read from the bits), `r = fma(−k, LN2_HI, x)` is exact (LN2_HI has 15
//! significant bits) and `r = fma(−k, LN2_LO, r)`. Then
//! `e^r ≈ 1 + (r + r²·P(r))` with P of degree 5 (so degree 7 in all,
//! coefficients c2..c7 minimax for relative error on [−ln2/2, ln2/2], max
//! 2^−31.2 with the f32 coefficients), Horner with fma. The scaling by 2^k
//! is done in two exact-power multiplications 2^(k/2)·2^(k−k/2), so
//! the first is exact and the second rounds once — also into the subnormal
//! range near underflow and to +inf at overflow.
//!
//! **log(x).** Specials first (x < 0 or NaN → NaN, ±0 → −inf, +inf → +inf);
//! a subnormal x is scaled by 2^23. The bits are split (as in musl/fdlibm)
//! into x = 2^k·m with m ∈ [√½, √2) by an integer offset of the biased
//! representation, f = m − 1 (exact). With s = f/(2+f), z = s², w = z²:
//! log(1+f) = f − f²/2 + s·(f²/2 + R), R = z·(L1 + z·(L2 + z·(L3 + z·L4)))
//! evaluated as even/odd halves (fdlibm's order), L1..L4 minimax for the
//! relative error of log((1+s)/(1−s)) on [0, 0.1716] (2^−35.2). Then
//! `log x = fma(k, LN2_HI, ((s·(hfsq+R) + k·LN2_LO) − hfsq) + f)`.
//!
//! **tanh(x).** On a = |x|: for a < 0.625, tanh a = a + a·z·T(z), z = a²,
//! T of degree 5 in z (odd degree 13 in all; minimax relative, 2^−32.4),
//! finished with one fma `fma(a·z, T, a)` (a subnormal a gives a). For
//! 0.625 ≤ a < 9.25, tanh a = 1 − 2/d with d = e^(2a) + 1 (2a is exact):
//! `exp`'s reduction gives e^(2a) = 2^k·(1 + s) (k ∈ [2, 27]) and
//! d = fma(2^k, s, 2^k + 1) is rounded once, without first rounding e^(2a);
//! then q = 2/d, and the rounding errors of the division and of 1 − q are
//! recovered exactly (rem = fma(−q, d, 2) = 2 − q·d; h = 1 − q,
//! h_err = (1 − h) − q by Fast2Sum) and put back:
//! `h + (h_err − rem/d)`. From 9.25 on (and for +inf) the correctly rounded
//! result is 1. The sign bit of x is copied onto the result.
//!
//! **erf(x).** On a = |x|: for a < 1, erf a = a + a·E(z), z = a², E of
//! degree 6 in z (minimax relative, 2^−29.4), finished with one fma
//! `fma(a, E, a)` (so tiny and subnormal a are rounded once from a·(1+E(0))).
//! For 1 ≤ a < 3.92, erf a = 1 − e^(−a²)·R(a − 2.5), R of degree 8 ≈
//! erfc(a)·e^(a²), minimax for the *absolute* error of erf (2^−28.6), finished
//! with one fma `fma(−e^(−a²), R, 1)`. From 3.92 on (and for +inf) the
//! correctly rounded result is 1. The sign bit of x is copied.
//!
//! All coefficients were derived by `host-gpu/kernels/gen_coeffs.py` (linear
//! Remez exchange in 40-digit arithmetic, coefficients rounded to f32 one at
//! a time with the rest refitted); they are written as the shortest decimal
//! that round-trips to the f32, with its bit pattern in a comment.
//!
//! # Measured accuracy
//!
//! The accuracy target is ≤ 2 ulp; all four are within 1 ulp of
//! the correctly rounded result over **every** f32 input (all 2^32 bit
//! patterns, `ASSAY_MATH_EXHAUSTIVE=1`, about 10 CPU-minutes in release).
//! "max ulp" is the distance on the ordered bit patterns to the f64 reference
//! rounded to f32; "max err" is the error against the f64 value itself, in
//! f32 ulps, so every result is one of the two f32 neighbours of the exact
//! value (faithful rounding):
//!
//! | function | max ulp | max err   | where the max err is          |
//! |----------|---------|-----------|-------------------------------|
//! | `exp`    | 1       | 0.979 ulp | x = −5.837563 (0xc0bacd51)    |
//! | `log`    | 1       | 0.835 ulp | x = 1.4054595 (0x3fb3e619)    |
//! | `erf`    | 1       | 0.986 ulp | x = ±0.9954299 (0x3f7ed47f)   |
//! | `tanh`   | 1       | 0.943 ulp | x = ±0.62533015 (0x3f2015a3)  |
//!
//! The remaining 1-ulp cases are results within a hair of a rounding
//! midpoint (e.g. exp(2^−24), or erf of a subnormal, where the f32 constant
//! 2/√π − 1 decides a near-tie).
//!
//! `tests/all/math_accuracy.rs` re-measures this on every run (a 2^26-input
//! stratified sample of all bit patterns plus every input in the ranges
//! where the algorithms switch branches or leave the normal range, ~80M
//! inputs per function) and fails above [`MAX_ULP`].

/// The accuracy bound (ulp against the correctly rounded result) that the
/// tests enforce for all four functions: 1, tighter than the contract's 2.
pub const MAX_ULP: u32 = 1;

/// The canonical NaN, `0x7fc00000`.
const CANONICAL_NAN: u32 = 0x7fc0_0000;
/// Sign bit of a binary32.
const SIGN_MASK: u32 = 0x8000_0000;

// ---------------------------------------------------------------- exp ----

/// Above this, exp overflows: e^88.8 > f32::MAX (0x42b1999a).
const EXP_OVERFLOW_X: f32 = 88.8;
/// Below this, exp rounds to +0: e^−104 < 2^−150 (0xc2d00000).
const EXP_UNDERFLOW_X: f32 = -104.0;
/// log2(e) rounded to f32 (0x3fb8aa3b).
#[allow(clippy::approx_constant)] // the same literal as canonical.h, = std's LOG2_E
const EXP_LOG2E: f32 = 1.442695;
/// 1.5·2^23 (0x4b400000): adding it rounds to an integer, kept in the low bits.
const EXP_SHIFTER: f32 = 12582912.0;
/// ln 2, high part: 15 significant bits, so k·LN2_HI is exact (0x3f317200).
const EXP_LN2_HI: f32 = 0.69314575;
/// ln 2 − EXP_LN2_HI rounded to f32 (0x35bfbe8e).
const EXP_LN2_LO: f32 = 1.4286068e-6;
/// exp polynomial: e^r ≈ 1 + r + r²·(C2 + r·(C3 + … + r·C7)) (0x3f000000).
const EXP_C2: f32 = 0.5;
/// (0x3e2aaa9e)
const EXP_C3: f32 = 0.16666648;
/// (0x3d2aaa79)
const EXP_C4: f32 = 0.04166648;
/// (0x3c089b99)
const EXP_C5: f32 = 0.008337879;
/// (0x3ab6a072)
const EXP_C6: f32 = 0.0013933314;
/// (0x3935b404)
const EXP_C7: f32 = 0.00017328566;

/// 2^k for k in [−126, 127], built from the bits.
#[inline]
fn pow2i(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// Reduction and polynomial shared by [`exp`] and [`tanh`]: e^x = 2^k·(1 + s)
/// with |s| <= ~0.42, for x in [EXP_UNDERFLOW_X, EXP_OVERFLOW_X].
#[inline]
fn exp_core(x: f32) -> (i32, f32) {
    // k = round(x·log2e), |k| <= 150
    let t = x.mul_add(EXP_LOG2E, EXP_SHIFTER);
    let kf = t - EXP_SHIFTER;
    let k = t.to_bits() as i32 - 0x4b40_0000;
    // r = x − k·ln2
    let r = (-kf).mul_add(EXP_LN2_HI, x);
    let r = (-kf).mul_add(EXP_LN2_LO, r);
    // e^r − 1
    let p = EXP_C7.mul_add(r, EXP_C6);
    let p = p.mul_add(r, EXP_C5);
    let p = p.mul_add(r, EXP_C4);
    let p = p.mul_add(r, EXP_C3);
    let p = p.mul_add(r, EXP_C2);
    (k, (r * r).mul_add(p, r))
}

/// Canonical e^x: within 1 ulp of the correctly rounded result (see the
/// module docs). exp(NaN) = canonical NaN, exp(+inf) = +inf, exp(−inf) = +0.
#[inline]
pub fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return f32::from_bits(CANONICAL_NAN);
    }
    if x > EXP_OVERFLOW_X {
        return f32::INFINITY;
    }
    if x < EXP_UNDERFLOW_X {
        return 0.0;
    }
    let (k, s) = exp_core(x);
    let y = 1.0 + s;
    // y·2^k in two steps: the first is exact, the second rounds once
    let k1 = k / 2;
    let k2 = k - k1;
    (y * pow2i(k1)) * pow2i(k2)
}

// ---------------------------------------------------------------- log ----

/// 2^23 (0x4b000000): scales a subnormal input into the normal range.
const LOG_SUBNORMAL_SCALE: f32 = 8388608.0;
/// Bits of √½ rounded down (0x3f3504f3): the split point of the mantissa.
const LOG_SQRT_HALF_BITS: u32 = 0x3f35_04f3;
/// ln 2, high part (0x3f317180).
const LOG_LN2_HI: f32 = 0.6931381;
/// ln 2 − LOG_LN2_HI rounded to f32 (0x3717f7d2).
const LOG_LN2_LO: f32 = 9.0580015e-6;
/// log polynomial: R(z) = z·(L1 + z·(L2 + z·(L3 + z·L4))) (0x3f2aaaaa).
const LOG_L1: f32 = 0.6666666;
/// (0x3eccce14)
const LOG_L2: f32 = 0.40000975;
/// (0x3e91e98a)
const LOG_L3: f32 = 0.2849849;
/// (0x3e78b092)
const LOG_L4: f32 = 0.24286106;

/// Canonical natural logarithm: within 1 ulp of the correctly rounded result
/// (see the module docs). log(x < 0) = log(−inf) = log(NaN) = canonical NaN,
/// log(±0) = −inf, log(+inf) = +inf.
#[inline]
pub fn log(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::from_bits(CANONICAL_NAN);
    }
    if x == 0.0 {
        return f32::NEG_INFINITY;
    }
    if x == f32::INFINITY {
        return f32::INFINITY;
    }
    let mut ix = x.to_bits();
    let mut k: i32 = 0;
    if ix < 0x0080_0000 {
        // subnormal: scale into the normal range (exact)
        k = -23;
        ix = (x * LOG_SUBNORMAL_SCALE).to_bits();
    }
    // x = 2^k · m, m in [√½, √2)
    ix += 0x3f80_0000 - LOG_SQRT_HALF_BITS;
    k += (ix >> 23) as i32 - 127;
    ix = (ix & 0x007f_ffff) + LOG_SQRT_HALF_BITS;
    let f = f32::from_bits(ix) - 1.0;
    // log(1+f) = f − hfsq + s·(hfsq + R)
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * w.mul_add(LOG_L4, LOG_L2);
    let t2 = z * w.mul_add(LOG_L3, LOG_L1);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    let lo = dk.mul_add(LOG_LN2_LO, s * (hfsq + r));
    dk.mul_add(LOG_LN2_HI, (lo - hfsq) + f)
}

// --------------------------------------------------------------- tanh ----

/// Below this |x|, tanh uses the odd polynomial (0x3f200000).
const TANH_POLY_MAX: f32 = 0.625;
/// From this |x| on, tanh rounds to 1 (0x41140000).
const TANH_ONE_MIN: f32 = 9.25;
/// tanh polynomial: tanh a ≈ a + a·z·(T1 + z·(T2 + … + z·T6)) (0xbeaaaaaa).
const TANH_T1: f32 = -0.3333333;
/// (0x3e08883d)
const TANH_T2: f32 = 0.13333221;
/// (0xbd5cf8c4)
const TANH_T3: f32 = -0.05394818;
/// (0x3cb1d2a8)
const TANH_T4: f32 = 0.021706894;
/// (0xbc062f68)
const TANH_T5: f32 = -0.0081900135;
/// (0x3b0d140b)
const TANH_T6: f32 = 0.002152684;

/// Canonical hyperbolic tangent: within 1 ulp of the correctly rounded result
/// (see the module docs). Odd to the bit (tanh(−0) = −0), ±1 at ±inf,
/// canonical NaN for NaN.
#[inline]
pub fn tanh(x: f32) -> f32 {
    if x.is_nan() {
        return f32::from_bits(CANONICAL_NAN);
    }
    let sign = x.to_bits() & SIGN_MASK;
    let a = f32::from_bits(x.to_bits() & !SIGN_MASK);
    let y;
    if a < TANH_POLY_MAX {
        let z = a * a;
        let p = TANH_T6.mul_add(z, TANH_T5);
        let p = p.mul_add(z, TANH_T4);
        let p = p.mul_add(z, TANH_T3);
        let p = p.mul_add(z, TANH_T2);
        let p = p.mul_add(z, TANH_T1);
        y = (a * z).mul_add(p, a);
    } else if a < TANH_ONE_MIN {
        // e^(2a) + 1 = 2^k·(1 + s) + 1, rounded once; k in [2, 27]
        let (k, s) = exp_core(a + a);
        let p2k = pow2i(k);
        let d = p2k.mul_add(s, p2k + 1.0);
        // 1 − 2/d with the rounding errors of 2/d and of 1 − q put back:
        // 2/d = q + rem/d and 1 − q = h + h_err, both exactly
        let q = 2.0 / d;
        let rem = (-q).mul_add(d, 2.0);
        let h = 1.0 - q;
        let h_err = (1.0 - h) - q;
        y = h + (h_err - rem / d);
    } else {
        y = 1.0;
    }
    f32::from_bits(y.to_bits() | sign)
}

// ---------------------------------------------------------------- erf ----

/// Below this |x|, erf uses the odd polynomial (0x3f800000).
const ERF_POLY_MAX: f32 = 1.0;
/// From this |x| on, erf rounds to 1 (0x407ae148).
const ERF_ONE_MIN: f32 = 3.92;
/// erf polynomial: erf a ≈ a + a·(E0 + z·(E1 + … + z·E6)) (0x3e0375d4).
const ERF_E0: f32 = 0.12837917;
/// (0xbec0939f)
const ERF_E1: f32 = -0.37612626;
/// (0x3de71673)
const ERF_E2: f32 = 0.11283579;
/// (0xbcdbfb8d)
const ERF_E3: f32 = -0.026853347;
/// (0x3ba9f912)
const ERF_E4: f32 = 0.005187162;
/// (0xba51a8af)
const ERF_E5: f32 = -0.0007997853;
/// (0x38a3b8ff)
const ERF_E6: f32 = 7.806904e-5;
/// Centre of the tail interval: t = a − ERF_TAIL_MID (0x40200000).
const ERF_TAIL_MID: f32 = 2.5;
/// erf tail: erfc a ≈ e^(−a²)·(R0 + t·(R1 + … + t·R8)) (0x3e57ddf3).
const ERF_R0: f32 = 0.2108076;
/// (0xbd9840b8)
const ERF_R1: f32 = -0.07434219;
/// (0x3ccc19a2)
const ERF_R2: f32 = 0.024914566;
/// (0xbc053dae)
const ERF_R3: f32 = -0.008132381;
/// (0x3b16e59c)
const ERF_R4: f32 = 0.0023025041;
/// (0xba2d3a11)
const ERF_R5: f32 = -0.0006608079;
/// (0x3a0e88eb)
const ERF_R6: f32 = 0.00054372725;
/// (0x396c37c4)
const ERF_R7: f32 = 0.00022527488;
/// (0x38e026d9)
const ERF_R8: f32 = 0.00010688388;

/// Canonical error function: within 1 ulp of the correctly rounded result
/// (see the module docs). Odd to the bit (erf(−0) = −0), ±1 at ±inf,
/// canonical NaN for NaN.
#[inline]
pub fn erf(x: f32) -> f32 {
    if x.is_nan() {
        return f32::from_bits(CANONICAL_NAN);
    }
    let sign = x.to_bits() & SIGN_MASK;
    let a = f32::from_bits(x.to_bits() & !SIGN_MASK);
    let y;
    if a < ERF_POLY_MAX {
        let z = a * a;
        let p = ERF_E6.mul_add(z, ERF_E5);
        let p = p.mul_add(z, ERF_E4);
        let p = p.mul_add(z, ERF_E3);
        let p = p.mul_add(z, ERF_E2);
        let p = p.mul_add(z, ERF_E1);
        let p = p.mul_add(z, ERF_E0);
        y = a.mul_add(p, a);
    } else if a < ERF_ONE_MIN {
        let t = a - ERF_TAIL_MID;
        let p = ERF_R8.mul_add(t, ERF_R7);
        let p = p.mul_add(t, ERF_R6);
        let p = p.mul_add(t, ERF_R5);
        let p = p.mul_add(t, ERF_R4);
        let p = p.mul_add(t, ERF_R3);
        let p = p.mul_add(t, ERF_R2);
        let p = p.mul_add(t, ERF_R1);
        let p = p.mul_add(t, ERF_R0);
        let e = exp(-(a * a));
        y = (-e).mul_add(p, 1.0);
    } else {
        y = 1.0;
    }
    f32::from_bits(y.to_bits() | sign)
}
