//! Accuracy of the canonical math (`assay_host_gpu::math`) against the
//! correctly rounded result, and its special values.
//!
//! Reference: the f64 function rounded to f32 — `f64::exp`, `f64::ln`,
//! `f64::tanh` (the platform libm, < 1 f64 ulp) and `libm::erf` (musl's erf
//! ported to Rust, < 1 f64 ulp). An f64 result is 2^29 times finer than the
//! f32 ulp, so its rounding to f32 is the correctly rounded f32 except when
//! the exact value lies within ~2^−29 f32-ulp of a rounding midpoint, which
//! can move a measured distance by at most 1 only for a result that is
//! already ~0.5 ulp off; the fractional error (`max err`) printed beside the
//! integer distance is measured against the f64 value itself.
//!
//! Run with `cargo test --release -p assay-host-gpu --test all math_accuracy:: --
//! --nocapture` to see the table; `ASSAY_MATH_EXHAUSTIVE=1` sweeps every f32.

use crate::math_support::{ALL, Func, count, inputs, par_sweep, ulp_distance, ulp_error};
use assay_host_gpu::math::{self, MAX_ULP};

fn reference(f: Func, x: f32) -> f64 {
    let x = f64::from(x);
    match f {
        Func::Exp => x.exp(),
        Func::Log => x.ln(),
        Func::Erf => libm::erf(x),
        Func::Tanh => x.tanh(),
    }
}

#[derive(Default)]
struct Stats {
    n: u64,
    max_ulp: u64,
    worst: u32,
    max_err: f64,
    worst_err: u32,
    /// NaN results that are not the canonical 0x7fc00000
    bad_nan: u64,
    first_bad_nan: Option<u32>,
    /// odd functions: f(−x) != −f(x) bitwise
    not_odd: u64,
    first_not_odd: Option<u32>,
}

fn merge(a: Stats, b: Stats) -> Stats {
    let (max_ulp, worst) = if b.max_ulp > a.max_ulp || (b.max_ulp == a.max_ulp && b.worst < a.worst)
    {
        (b.max_ulp, b.worst)
    } else {
        (a.max_ulp, a.worst)
    };
    let (max_err, worst_err) = if b.max_err > a.max_err {
        (b.max_err, b.worst_err)
    } else {
        (a.max_err, a.worst_err)
    };
    Stats {
        n: a.n + b.n,
        max_ulp,
        worst,
        max_err,
        worst_err,
        bad_nan: a.bad_nan + b.bad_nan,
        first_bad_nan: a.first_bad_nan.or(b.first_bad_nan),
        not_odd: a.not_odd + b.not_odd,
        first_not_odd: a.first_not_odd.or(b.first_not_odd),
    }
}

fn measure(f: Func) -> Stats {
    let ours = f.ours();
    par_sweep(
        &inputs(f),
        |st: &mut Stats, bits| {
            let x = f32::from_bits(bits);
            let y = ours(x);
            let exact = reference(f, x);
            st.n += 1;
            if y.is_nan() && y.to_bits() != 0x7fc0_0000 {
                st.bad_nan += 1;
                st.first_bad_nan.get_or_insert(bits);
            }
            let d = ulp_distance(y, exact as f32);
            if d > st.max_ulp {
                st.max_ulp = d;
                st.worst = bits;
            }
            if let Some(e) = ulp_error(y, exact)
                && e > st.max_err
            {
                st.max_err = e;
                st.worst_err = bits;
            }
            if f.is_odd() {
                let yn = ours(-x);
                if !y.is_nan() && yn.to_bits() != (y.to_bits() ^ 0x8000_0000) {
                    st.not_odd += 1;
                    st.first_not_odd.get_or_insert(bits);
                }
            }
        },
        merge,
    )
}

fn show(bits: u32) -> String {
    format!("{:e} (0x{bits:08x})", f32::from_bits(bits))
}

#[test]
fn max_ulp_error_over_the_sweep() {
    let mut failures = Vec::new();
    println!(
        "canonical math accuracy (bound: {MAX_ULP} ulp{})",
        if crate::math_support::exhaustive() {
            ", exhaustive"
        } else {
            ""
        }
    );
    for f in ALL {
        let t0 = std::time::Instant::now();
        let st = measure(f);
        let x = f32::from_bits(st.worst);
        let y = f.ours()(x);
        let r = reference(f, x);
        println!(
            "{:>5}: {} inputs in {:.1?}: max {} ulp at x = {} (ours {}, ref {:e}); max err {:.3} ulp at x = {}",
            f.name(),
            st.n,
            t0.elapsed(),
            st.max_ulp,
            show(st.worst),
            show(y.to_bits()),
            r,
            st.max_err,
            show(st.worst_err),
        );
        assert_eq!(
            st.n,
            count(&inputs(f)),
            "{}: sweep skipped inputs",
            f.name()
        );
        if st.max_ulp > u64::from(MAX_ULP) {
            failures.push(format!(
                "{}: {} ulp at x = {}",
                f.name(),
                st.max_ulp,
                show(st.worst)
            ));
        }
        if let Some(b) = st.first_bad_nan {
            failures.push(format!(
                "{}: {} non-canonical NaN results, first at x = {}",
                f.name(),
                st.bad_nan,
                show(b)
            ));
        }
        if let Some(b) = st.first_not_odd {
            failures.push(format!(
                "{}: {} inputs with f(-x) != -f(x), first x = {}",
                f.name(),
                st.not_odd,
                show(b)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "accuracy failures:\n{}",
        failures.join("\n")
    );
}

/// Bit-exact expectations.
fn check(name: &str, f: fn(f32) -> f32, cases: &[(u32, u32)]) {
    for &(x, want) in cases {
        let got = f(f32::from_bits(x)).to_bits();
        assert_eq!(
            got,
            want,
            "{name}({}) = {} (0x{got:08x}), want {} (0x{want:08x})",
            show(x),
            f32::from_bits(got),
            f32::from_bits(want)
        );
    }
}

const NAN: u32 = 0x7fc0_0000;
/// NaN inputs: quiet, negative, signalling, payloads.
const NANS: [u32; 6] = [
    0x7fc0_0000,
    0xffc0_0000,
    0x7f80_0001,
    0xff80_0001,
    0x7fff_ffff,
    0xffff_ffff,
];
const INF: u32 = 0x7f80_0000;
const NEG_INF: u32 = 0xff80_0000;
const ONE: u32 = 0x3f80_0000;
const NEG_ONE: u32 = 0xbf80_0000;
const MAX: u32 = 0x7f7f_ffff;
const MIN_SUB: u32 = 0x0000_0001;

#[test]
fn exp_special_values() {
    for n in NANS {
        check("exp", math::exp, &[(n, NAN)]);
    }
    check(
        "exp",
        math::exp,
        &[
            (INF, INF),
            (NEG_INF, 0),
            (0, ONE),
            (0x8000_0000, ONE),
            (MIN_SUB, ONE),
            (0x8000_0001, ONE),
            (ONE, 0x402d_f854),     // e
            (NEG_ONE, 0x3ebc_5ab2), // 1/e
            (MAX, INF),
            (0xff7f_ffff, 0), // exp(-MAX) = +0
            (89f32.to_bits(), INF),
            (88.72283f32.to_bits(), 0x7f7f_ff84), // just below overflow: finite
            (88.72284f32.to_bits(), INF),         // just above: +inf
            ((-103.97f32).to_bits(), MIN_SUB),    // rounds up to the smallest subnormal
            ((-103.98f32).to_bits(), 0),          // rounds down to +0
            ((-105f32).to_bits(), 0),
            ((-87.33655f32).to_bits(), 0x007f_ffe6), // just below FLT_MIN: subnormal
        ],
    );
}

#[test]
fn log_special_values() {
    for n in NANS {
        check("log", math::log, &[(n, NAN)]);
    }
    check(
        "log",
        math::log,
        &[
            (INF, INF),
            (NEG_INF, NAN),
            (0, NEG_INF),
            (0x8000_0000, NEG_INF),
            (ONE, 0), // log 1 = +0
            (NEG_ONE, NAN),
            (0x8000_0001, NAN), // negative subnormal
            (0xff7f_ffff, NAN),
            (2f32.to_bits(), 0x3f31_7218), // ln 2
            (MAX, 0x42b1_7218),            // 88.72284
            (MIN_SUB, 0xc2ce_8ed0),        // -103.27893
            (0x0080_0000, 0xc2ae_ac50),    // log FLT_MIN = -87.33655
        ],
    );
}

#[test]
fn erf_special_values() {
    for n in NANS {
        check("erf", math::erf, &[(n, NAN)]);
    }
    check(
        "erf",
        math::erf,
        &[
            (INF, ONE),
            (NEG_INF, NEG_ONE),
            (0, 0),
            (0x8000_0000, 0x8000_0000), // erf(-0) = -0
            (MIN_SUB, MIN_SUB),         // 1.128·2^-149 rounds to 2^-149
            (0x8000_0001, 0x8000_0001),
            (0x0000_0004, 0x0000_0005), // 4.51·2^-149 rounds to 5·2^-149
            (ONE, 0x3f57_bb3d),         // erf 1 = 0.8427008
            (NEG_ONE, 0xbf57_bb3d),
            (3.92f32.to_bits(), ONE),
            (10f32.to_bits(), ONE),
            ((-10f32).to_bits(), NEG_ONE),
            (MAX, ONE),
        ],
    );
}

#[test]
fn tanh_special_values() {
    for n in NANS {
        check("tanh", math::tanh, &[(n, NAN)]);
    }
    check(
        "tanh",
        math::tanh,
        &[
            (INF, ONE),
            (NEG_INF, NEG_ONE),
            (0, 0),
            (0x8000_0000, 0x8000_0000), // tanh(-0) = -0
            (MIN_SUB, MIN_SUB),
            (0x8000_0001, 0x8000_0001),
            (0x0080_0000, 0x0080_0000), // FLT_MIN
            (1e-20f32.to_bits(), 1e-20f32.to_bits()),
            (ONE, 0x3f42_f7d6), // tanh 1 = 0.7615942
            (NEG_ONE, 0xbf42_f7d6),
            (9.25f32.to_bits(), ONE),
            (20f32.to_bits(), ONE),
            ((-20f32).to_bits(), NEG_ONE),
            (MAX, ONE),
        ],
    );
}
