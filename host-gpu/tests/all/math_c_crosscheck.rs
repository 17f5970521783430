//! The C version of the canonical math (`host-gpu/kernels/canonical.h`, the
//! one the CUDA kernels include) against the Rust (`src/math.rs`):
//!
//! - bit for bit on the same sweep as `math_accuracy.rs`, with the header
//!   compiled three ways by the dev-only crate `assay-math-cshim`: as C99, as
//!   C++17, and as C++17 down its NVRTC path (`-ffp-contract=off`, no
//!   fast-math);
//! - constant by constant: every `const` in math.rs has an `ASSAY_`-prefixed
//!   `#define` in the header with the same value, and every `(0x…)` bit
//!   pattern written in a constant's comment is that constant's actual bits.
//!
//! `ASSAY_MATH_EXHAUSTIVE=1` makes the sweep every f32 bit pattern.

use crate::math_support::{ALL, Func, count, inputs, par_sweep};
use assay_math_cshim::{c, cxx, rtc};

/// A named build of the header's version of one function.
type Version = (&'static str, fn(f32) -> f32);

fn c_versions(f: Func) -> [Version; 3] {
    match f {
        Func::Exp => [("C", c::exp), ("C++", cxx::exp), ("NVRTC path", rtc::exp)],
        Func::Log => [("C", c::log), ("C++", cxx::log), ("NVRTC path", rtc::log)],
        Func::Erf => [("C", c::erf), ("C++", cxx::erf), ("NVRTC path", rtc::erf)],
        Func::Tanh => [
            ("C", c::tanh),
            ("C++", cxx::tanh),
            ("NVRTC path", rtc::tanh),
        ],
    }
}

#[derive(Default)]
struct Diff {
    n: u64,
    mismatches: [u64; 3],
    first: [Option<u32>; 3],
}

fn merge(a: Diff, b: Diff) -> Diff {
    let mut m = a.mismatches;
    let mut first = a.first;
    for i in 0..3 {
        m[i] += b.mismatches[i];
        first[i] = first[i].or(b.first[i]);
    }
    Diff {
        n: a.n + b.n,
        mismatches: m,
        first,
    }
}

#[test]
fn c_header_matches_rust_bit_for_bit() {
    let mut failures = Vec::new();
    for f in ALL {
        let ours = f.ours();
        let versions = c_versions(f);
        let t0 = std::time::Instant::now();
        let d = par_sweep(
            &inputs(f),
            |st: &mut Diff, bits| {
                let x = f32::from_bits(bits);
                let want = ours(x).to_bits();
                st.n += 1;
                for (i, (_, cf)) in versions.iter().enumerate() {
                    if cf(x).to_bits() != want {
                        st.mismatches[i] += 1;
                        st.first[i].get_or_insert(bits);
                    }
                }
            },
            merge,
        );
        println!(
            "{:>5}: {} inputs in {:.1?}, mismatches C/C++/NVRTC-path: {:?}",
            f.name(),
            d.n,
            t0.elapsed(),
            d.mismatches
        );
        assert_eq!(d.n, count(&inputs(f)), "{}: sweep skipped inputs", f.name());
        for (i, (lang, cf)) in versions.iter().enumerate() {
            if let Some(b) = d.first[i] {
                let x = f32::from_bits(b);
                failures.push(format!(
                    "{} ({lang}): {} mismatches, first x = {x:e} (0x{b:08x}): rust 0x{:08x}, {lang} 0x{:08x}",
                    f.name(),
                    d.mismatches[i],
                    ours(x).to_bits(),
                    cf(x).to_bits()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "C/Rust mismatches:\n{}",
        failures.join("\n")
    );
}

/// A numeric constant: f32 (bits) or u32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    F32(u32),
    U32(u32),
}

struct Constant {
    name: String,
    value: Value,
    /// the `(0x…)` bit pattern written in the comment right above, if any
    documented: Option<u32>,
    line: usize,
}

fn documented_bits(comment: &str) -> Option<u32> {
    let i = comment.rfind("(0x")?;
    let hex = comment.get(i + 3..i + 11)?;
    u32::from_str_radix(hex, 16).ok()
}

fn parse_u32(s: &str) -> Option<u32> {
    let s = s.replace('_', "");
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `const NAME: f32 = LIT;` and `const NAME: u32 = LIT;` in math.rs.
fn rust_constants(src: &str) -> Vec<Constant> {
    let mut out = Vec::new();
    let mut comment = String::new();
    for (i, line) in src.lines().enumerate() {
        let t = line.trim();
        if let Some(c) = t.strip_prefix("///") {
            comment.push_str(c);
            continue;
        }
        let decl = t.strip_prefix("pub ").unwrap_or(t);
        if let Some(rest) = decl.strip_prefix("const ") {
            let parsed = rest.split_once(": ").and_then(|(name, rest)| {
                let (ty, lit) = rest.split_once(" = ")?;
                let lit = lit.strip_suffix(';')?;
                let value = match ty {
                    "f32" => Value::F32(lit.replace('_', "").parse::<f32>().ok()?.to_bits()),
                    "u32" => Value::U32(parse_u32(lit)?),
                    _ => return None,
                };
                Some((name.to_string(), value))
            });
            match parsed {
                Some((name, value)) => out.push(Constant {
                    name,
                    value,
                    documented: documented_bits(&comment),
                    line: i + 1,
                }),
                None => panic!("math.rs:{}: cannot parse constant `{t}`", i + 1),
            }
        }
        comment.clear();
    }
    out
}

/// `#define ASSAY_NAME LIT` in canonical.h, LIT a float (`…f`) or an
/// unsigned (`…u`) literal.
fn c_constants(src: &str) -> Vec<Constant> {
    let mut out = Vec::new();
    let mut comment = String::new();
    for (i, line) in src.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("/*") {
            comment = t.to_string();
            continue;
        }
        if let Some(rest) = t.strip_prefix("#define ASSAY_") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(lit), None) = (parts.next(), parts.next(), parts.next()) else {
                comment.clear();
                continue; // function-like or valueless macros
            };
            let value = if let Some(u) = lit.strip_suffix('u') {
                parse_u32(u).map(Value::U32)
            } else if let Some(f) = lit.strip_suffix('f') {
                f.parse::<f32>().ok().map(|v| Value::F32(v.to_bits()))
            } else {
                None
            };
            if let Some(value) = value {
                out.push(Constant {
                    name: name.to_string(),
                    value,
                    documented: documented_bits(&comment),
                    line: i + 1,
                });
            }
        }
        comment.clear();
    }
    out
}

#[test]
fn constants_are_the_same_in_rust_and_c() {
    let rust = rust_constants(include_str!("../../src/math.rs"));
    let c = c_constants(include_str!("../../kernels/canonical.h"));
    assert!(
        rust.len() >= 40,
        "found only {} constants in math.rs",
        rust.len()
    );
    let mut errors = Vec::new();
    for (file, consts) in [("math.rs", &rust), ("canonical.h", &c)] {
        for k in consts.iter() {
            if let (Value::F32(bits), Some(doc)) = (k.value, k.documented)
                && bits != doc
            {
                errors.push(format!(
                    "{file}:{}: {} is 0x{bits:08x} but its comment says 0x{doc:08x}",
                    k.line, k.name
                ));
            }
        }
    }
    // only in one of the two, by design
    let rust_only = ["MAX_ULP"];
    let c_only = ["INF_BITS", "NEG_INF_BITS"];
    for r in &rust {
        if rust_only.contains(&r.name.as_str()) {
            continue;
        }
        match c.iter().find(|k| k.name == r.name) {
            None => errors.push(format!("ASSAY_{} missing from canonical.h", r.name)),
            Some(k) if k.value != r.value => errors.push(format!(
                "{}: math.rs {:?} != canonical.h {:?}",
                r.name, r.value, k.value
            )),
            Some(_) => {}
        }
    }
    for k in &c {
        if !c_only.contains(&k.name.as_str()) && !rust.iter().any(|r| r.name == k.name) {
            errors.push(format!(
                "ASSAY_{} is in canonical.h but not in math.rs",
                k.name
            ));
        }
    }
    assert!(
        errors.is_empty(),
        "constant mismatches:\n{}",
        errors.join("\n")
    );
}
