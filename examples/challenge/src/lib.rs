//! `challenge`: the proof-of-hardware job. From a 32-byte seed it makes the
//! device do about `rounds · 2n³` FLOPs of n×n f32 matmul and returns a
//! small digest that only that work produces.
//!
//! The coordinator sends it to a provider at registration and at random
//! times, sized to the device the provider claims (`assay_protocol::challenge`
//! holds the sizes, budgets and time bounds); the receipt must arrive within
//! the class's bound, and its outputs root is checked by re-execution like
//! any job's.
//!
//! - Params: `seed` (64 hex digits, the challenge's 32 bytes), `n` (matrix
//!   size, 1 ..= 65536), `rounds` (chained n×n products, 1 ..= 1,000,000).
//! - Inputs: none.
//! - Outputs: `digest`, laid out as
//!
//! ```text
//! offset  size   field
//! 0       8      magic "ASSAYCH1" (ASCII; the 1 is this layout's version)
//! 8       4      n       (u32, little-endian)
//! 12      4      rounds  (u32, little-endian)
//! 16      32     seed    (the param's bytes)
//! 48      4·n    d       (n f32, little-endian): d = X_rounds · w
//! ```
//!
//! Bad params (missing, unparsable, out of range, a seed that is not 64 hex
//! digits) end the job with a guest error that says which; a size past the
//! job's GPU memory quota or work budget ends it with the host's refusal.
//!
//! # What it computes
//!
//! ```text
//! one blake3 XOF of the seed (key "assay challenge v1"), drawn in order:
//!     U, V (B's factors), P, Q (D's factors), w, then γ₀, γ₁, … one per round;
//!     U, P: n×16, V, Q: 16×n, w: n×1, γₜ: n; each value uniform on [−1, 1)
//!     (24 random bits, exact in f32); γₜ is 2 + that, in [1, 3)
//! B  = frac(1024 · (U·V))          frac(x) = x − trunc(x), in (−1, 1)
//! D  = frac(1024 · (P·Q))
//! X₀ = D
//! Xₜ₊₁ = tanh(rms_norm(Xₜ · B, γₜ, eps = 1e-6) + D)          t < rounds
//! d  = X_rounds · w
//! ```
//!
//! # Why it is shaped like this
//!
//! - **Small guest memory, work on the device.** Only the thin factors
//!   (4 · 16n floats: 1 MiB at n = 16384), `w` and one γ at a time pass
//!   through the guest; the n×n operands are formed on the device, so
//!   n = 16384 needs a few MiB of guest memory and the guest's own work
//!   (hashing: fuel) stays small beside the device's.
//! - **Dense, full-rank, structureless operands.** `U·V` alone would be
//!   rank 16; `frac(1024·x)` (a sawtooth of period 1/1024, through the
//!   `cast` round trip f32 → i32 → f32) turns it into entries that are
//!   roughly independent and uniform on (−1, 1): full rank, zero mean, with
//!   exact zeros only where `1024·x` is an integer (≈ 10⁻⁴ of entries or
//!   fewer). There are no runs of zeros, repeated rows or repeated columns
//!   for a cheating backend to skip, and since every op is bit-exact (fma in
//!   ascending k) no algebraic shortcut we know of (reassociation, low-rank
//!   factoring, Strassen) gives the same bits: the way to the digest is the
//!   full product.
//! - **Bounded values that never settle.** `rms_norm` brings every row of
//!   `Xₜ·B` to RMS ≈ 2 whatever `rounds` is (no overflow, no underflow) and
//!   `tanh` bounds the state to [−1, 1]. Each row evolves on its own under
//!   the same map, so two things could let a cheater skip work, and the
//!   map is built to prevent both: rows **collapsing** onto one trajectory
//!   (compute one, copy it: measured with neither drive nor varying gains,
//!   48 rows fell onto 19 distinct ones within 600 rounds) — the drive `D`, different in every row, keeps rows
//!   apart; and the state reaching a **fixed point or a cycle** (stop early)
//!   — the fresh seeded gains γₜ make every round a different map. The tests
//!   check both on the output: after 600 rounds the n digest values are
//!   distinct, and one more round changes every one of them.
//! - **Every element counts.** `d_i = Σ_j X[i, j] · w_j` with every `w_j ≠ 0`
//!   (24-bit grid, nonzero except with probability 2⁻²⁴ each), so all of
//!   `X_rounds` — hence every product before it — reaches the digest.
//!
//! The work (FLOPs + bytes, as the host meters them) is a function of `n`
//! and `rounds` alone; `assay_protocol::challenge::challenge_work` is that
//! function, op by op, and the guest tests check it against the runtime's
//! meter.

#![forbid(unsafe_code)]

use assay_guest::prelude::*;

/// Inner dimension of the thin factors: the matmul that forms each n×n
/// operand costs 2·n²·16 FLOPs, small beside one 2n³ round.
const RANK: u32 = 16;
/// Frequency of the sawtooth: `1024 · (U·V)` reaches magnitudes of ~10³, so
/// the fractional part keeps ~13 of f32's 24 bits and neighbouring entries
/// land on unrelated teeth. A power of two, so the scaling itself is exact.
const FREQ: f32 = 1024.0;
/// Centre of the per-round gains γₜ (uniform on [GAIN − 1, GAIN + 1)).
const GAIN: f32 = 2.0;
/// `rms_norm`'s epsilon: far below a row's mean square (≈ n/10 or more), it
/// only keeps an all-zero row finite.
const EPS: f32 = 1e-6;
/// Largest `n` accepted: 65536² f32 is 16 GiB per matrix, beyond any quota
/// a challenge gets; the limit keeps `n · RANK` and the digest small.
const MAX_N: u32 = 65_536;
/// Largest `rounds` accepted (the work budget bounds it long before).
const MAX_ROUNDS: u32 = 1_000_000;
/// blake3 `derive_key` context for the seed's expansion.
const KEY_CONTEXT: &str = "assay challenge v1";
/// The digest's magic (8 bytes, the last one the layout version).
const MAGIC: &[u8; 8] = b"ASSAYCH1";

/// Parses `seed`: exactly 64 hex digits (either case).
fn parse_seed(raw: &str) -> Result<[u8; 32]> {
    let bad = |why: &str| Error::Param {
        name: "seed".to_owned(),
        message: format!("{why}: expected 64 hex digits (32 bytes), got {raw:?}"),
    };
    if raw.len() != 64 {
        return Err(bad(&format!("{} characters", raw.len())));
    }
    let mut seed = [0u8; 32];
    for (byte, pair) in seed.iter_mut().zip(raw.as_bytes().chunks_exact(2)) {
        let hi = hex_digit(pair[0]).ok_or_else(|| bad("not hex"))?;
        let lo = hex_digit(pair[1]).ok_or_else(|| bad("not hex"))?;
        *byte = (hi << 4) | lo;
    }
    Ok(seed)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// An integer param in `1..=max`.
fn bounded_param(name: &str, max: u32) -> Result<u32> {
    let v: u32 = param(name)?;
    if v == 0 || v > max {
        return Err(Error::Param {
            name: name.to_owned(),
            message: format!("{v} is out of range 1..={max}"),
        });
    }
    Ok(v)
}

/// `count` values uniform on [−1, 1) from the seed's XOF: the top 24 bits
/// of each little-endian u32, times 2⁻²³, minus 1 (all exact in f32).
fn uniform(xof: &mut blake3::OutputReader, count: usize) -> Vec<f32> {
    let mut bytes = vec![0u8; count * 4];
    xof.fill(&mut bytes);
    bytes
        .chunks_exact(4)
        .map(|b| {
            let x = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (x >> 8) as f32 * (1.0 / 8_388_608.0) - 1.0
        })
        .collect()
}

/// `frac(FREQ · (A·B))` for thin factors `a` (n×RANK) and `b` (RANK×n)
/// drawn next from the XOF: a dense n×n operand formed on the device.
/// Intermediates are dropped as soon as they are used, so the peak is
/// three n×n tensors on top of what the caller holds.
fn dense_operand(xof: &mut blake3::OutputReader, n: u32) -> Result<Tensor> {
    let thin = n as usize * RANK as usize;
    let a = Tensor::from_f32(&[n, RANK], &uniform(xof, thin))?;
    let b = Tensor::from_f32(&[RANK, n], &uniform(xof, thin))?;
    let low_rank = a.matmul(&b)?;
    drop((a, b));
    let scaled = low_rank.scale(FREQ)?;
    drop(low_rank);
    let truncated = scaled.cast(Dtype::I32)?.cast(Dtype::F32)?;
    scaled.sub(&truncated)
}

fn run() -> Result<()> {
    let seed_hex: String = param("seed")?;
    let seed = parse_seed(&seed_hex)?;
    let n = bounded_param("n", MAX_N)?;
    let rounds = bounded_param("rounds", MAX_ROUNDS)?;

    let mut xof = blake3::Hasher::new_derive_key(KEY_CONTEXT)
        .update(&seed)
        .finalize_xof();
    let b = dense_operand(&mut xof, n).context("forming B")?;
    let drive = dense_operand(&mut xof, n).context("forming D")?;
    let w = Tensor::from_f32(&[n, 1], &uniform(&mut xof, n as usize))?;

    // X₀ is D itself: `None` until the first round has run.
    let mut x: Option<Tensor> = None;
    for round in 0..rounds {
        let gains: Vec<f32> = uniform(&mut xof, n as usize)
            .into_iter()
            .map(|u| GAIN + u)
            .collect();
        let gamma = Tensor::from_f32(&[n], &gains)?;
        let y = x
            .as_ref()
            .unwrap_or(&drive)
            .matmul(&b)
            .context(format_args!("round {round} of {rounds}"))?;
        drop(x.take()); // free Xₜ before the next three n×n tensors exist
        let z = y.rms_norm(&gamma, EPS)?;
        drop(y);
        let s = z.add(&drive)?;
        drop(z);
        x = Some(s.tanh()?);
    }

    let d = x.as_ref().unwrap_or(&drive).matmul(&w)?.to_vec_f32()?;
    let mut out = Vec::with_capacity(48 + d.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&rounds.to_le_bytes());
    out.extend_from_slice(&seed);
    for v in &d {
        out.extend_from_slice(&v.to_le_bytes());
    }
    // No log line: every byte handed to the host is work, and the
    // predicted work (`challenge_work`) counts only the digest's copies.
    write_output("digest", &out)
}

assay_guest::job!(run);
