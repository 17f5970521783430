//! Canonical math: `exp`, `log`, `erf`, `tanh` as fixed sequences of IEEE
//! primitives (placeholder: being replaced by the canonical implementations).

#![allow(clippy::disallowed_methods)]

/// Canonical e^x.
pub fn exp(x: f32) -> f32 {
    x.exp()
}

/// Canonical natural logarithm.
pub fn log(x: f32) -> f32 {
    x.ln()
}

/// Canonical error function.
pub fn erf(x: f32) -> f32 {
    // placeholder
    let _ = x;
    unimplemented!("canonical erf")
}

/// Canonical hyperbolic tangent.
pub fn tanh(x: f32) -> f32 {
    x.tanh()
}
