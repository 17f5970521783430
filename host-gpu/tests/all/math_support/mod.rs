//! Shared by the canonical-math tests: the input sweep and ulp measurement.
//!
//! The sweep ([`inputs`]) is, per function:
//! - a stratified sample of *all* 2^32 bit patterns: every 64th pattern, with
//!   the low 6 bits varied pseudo-randomly from one stratum to the next
//!   (2^26 inputs, both signs, every exponent, NaNs and infinities included);
//! - plus every f32 in the ranges where the algorithm switches branches,
//!   loses bits or leaves the normal range (listed in [`dense_ranges`]).
//!
//! With `ASSAY_MATH_EXHAUSTIVE=1` it is every one of the 2^32 bit patterns
//! instead (minutes in release on two cores).
#![allow(dead_code)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The four canonical functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Exp,
    Log,
    Erf,
    Tanh,
}

pub const ALL: [Func; 4] = [Func::Exp, Func::Log, Func::Erf, Func::Tanh];

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Erf => "erf",
            Func::Tanh => "tanh",
        }
    }

    /// The Rust implementation under test.
    pub fn ours(self) -> fn(f32) -> f32 {
        match self {
            Func::Exp => assay_host_gpu::math::exp,
            Func::Log => assay_host_gpu::math::log,
            Func::Erf => assay_host_gpu::math::erf,
            Func::Tanh => assay_host_gpu::math::tanh,
        }
    }

    /// Odd functions: f(−x) must be exactly −f(x).
    pub fn is_odd(self) -> bool {
        matches!(self, Func::Erf | Func::Tanh)
    }
}

/// One contiguous run of bit patterns, `first..=last`, every `step`-th.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// Every 64th pattern of the whole u32 space, low 6 bits mixed.
    Stratified,
    /// Every pattern in `first..=last`.
    Range { first: u32, last: u32 },
}

/// Every f32 between `a` and `b` (same sign, either order) as a bit range.
fn span(a: f32, b: f32) -> Source {
    let (x, y) = (a.to_bits(), b.to_bits());
    Source::Range {
        first: x.min(y),
        last: x.max(y),
    }
}

/// The ranges swept densely (every f32) for `f`, on top of the stratified sample.
pub fn dense_ranges(f: Func) -> Vec<Source> {
    match f {
        // subnormal results and the underflow edge; the overflow edge; the
        // points where k = round(x·log2e) changes from 0 to ±1
        Func::Exp => vec![
            span(-104.5, -87.0),
            span(88.0, 89.0),
            span(0.3, 0.4),
            span(-0.4, -0.3),
        ],
        // the whole of [0.5, 2): log near 1 and both sides of √½ and √2;
        // every subnormal
        Func::Log => vec![
            span(0.5, 1.999_999_9),
            Source::Range {
                first: 1,
                last: 0x007f_ffff,
            },
        ],
        // polynomial / tail switch at 1 and everything around it; the
        // saturation to 1 near 3.92
        Func::Erf => vec![span(0.5, 1.999_999_9), span(3.75, 4.0)],
        // polynomial / exp switch at 0.625 and the saturation near 9.25
        Func::Tanh => vec![span(0.5, 0.999_999_94), span(9.0, 9.5)],
    }
}

/// Whether the exhaustive sweep was asked for.
pub fn exhaustive() -> bool {
    std::env::var("ASSAY_MATH_EXHAUSTIVE").is_ok_and(|v| v == "1")
}

/// The sweep for `f`.
pub fn inputs(f: Func) -> Vec<Source> {
    if exhaustive() {
        vec![Source::Range {
            first: 0,
            last: u32::MAX,
        }]
    } else {
        let mut v = vec![Source::Stratified];
        v.extend(dense_ranges(f));
        v
    }
}

/// Number of inputs in a sweep.
pub fn count(sources: &[Source]) -> u64 {
    sources
        .iter()
        .map(|s| match *s {
            Source::Stratified => 1u64 << 26,
            Source::Range { first, last } => u64::from(last - first) + 1,
        })
        .sum()
}

const CHUNK: u64 = 1 << 20;

/// Calls `visit(state, bits)` for every input of `sources`, on all cores
/// (chunks handed out through an atomic counter), and merges the per-thread
/// states with `merge`.
pub fn par_sweep<S, V, M>(sources: &[Source], visit: V, merge: M) -> S
where
    S: Default + Send,
    V: Fn(&mut S, u32) + Sync,
    M: Fn(S, S) -> S,
{
    // flatten into (source, chunk start) jobs
    let mut jobs: Vec<(Source, u64, u64)> = Vec::new();
    for s in sources {
        let n = count(std::slice::from_ref(s));
        let mut start = 0;
        while start < n {
            let end = (start + CHUNK).min(n);
            jobs.push((*s, start, end));
            start = end;
        }
    }
    let next = AtomicU64::new(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let results: Mutex<Vec<S>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut st = S::default();
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(src, start, end)) = jobs.get(j as usize) else {
                        break;
                    };
                    for i in start..end {
                        let bits = match src {
                            Source::Stratified => {
                                let i = i as u32;
                                let mix = i.wrapping_mul(0x9e37_79b1) >> 26;
                                (i << 6) | mix
                            }
                            Source::Range { first, .. } => first + i as u32,
                        };
                        visit(&mut st, bits);
                    }
                }
                match results.lock() {
                    Ok(mut r) => r.push(st),
                    Err(p) => p.into_inner().push(st),
                }
            });
        }
    });
    let all = match results.into_inner() {
        Ok(v) => v,
        Err(p) => p.into_inner(),
    };
    all.into_iter().fold(S::default(), merge)
}

/// Position of `x` on the ordered line of f32 values (−0 and +0 both 0).
pub fn ordered(x: f32) -> i64 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        -i64::from(b & 0x7fff_ffff)
    } else {
        i64::from(b)
    }
}

/// ulp distance between two f32 on the ordered bit patterns; 0 for two
/// NaNs, u64::MAX for a NaN against a number.
pub fn ulp_distance(a: f32, b: f32) -> u64 {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => 0,
        (false, false) => (ordered(a) - ordered(b)).unsigned_abs(),
        _ => u64::MAX,
    }
}

/// Error of `ours` against the real value `exact` (an f64 stand-in), in
/// units of the f32 ulp at `exact` (2^−149 in the subnormal range). `None`
/// where that is not a finite number (infinities, NaN, overflow).
pub fn ulp_error(ours: f32, exact: f64) -> Option<f64> {
    if !ours.is_finite() || !exact.is_finite() || exact.abs() > f64::from(f32::MAX) {
        return None;
    }
    let e = ((exact.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let ulp = 2f64.powi(e.max(-126) - 23);
    Some((f64::from(ours) - exact).abs() / ulp)
}
