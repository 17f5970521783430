//! Every backend configuration against a naive, obviously-in-order
//! transcription of SEMANTICS.md, bit for bit, on random inputs full of
//! special values. The golden hashes (conformance.rs) pin the bits; this
//! suite shows those bits are the ones the spec defines.

use crate::common::{Rng, session};
use assay_host_gpu::{
    BinaryOp, DType, Device, ReduceOp, RopePairs, Session, SourceEncoding, Tensor, UnaryOp, math,
};

const NAN: u32 = 0x7fc0_0000;

/// A batched matmul case: batch dims of a and b, m, k, n.
type MatmulShape = (&'static [usize], &'static [usize], usize, usize, usize);
type Unary = fn(f32) -> f32;
type Binary = fn(f32, f32) -> f32;

/// On the bits: LLVM may fold an `is_nan` select on an arithmetic result away.
fn canon(x: f32) -> f32 {
    let bits = x.to_bits();
    f32::from_bits(if bits & 0x7fff_ffff > 0x7f80_0000 {
        NAN
    } else {
        bits
    })
}

/// IEEE maximum / minimum (NaN wins; +0 > -0).
fn maximum(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a == b {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

fn minimum(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a == b {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// The 32-lane sum of `step` terms, written as the spec words it.
fn lanes(x: &[f32], step: impl Fn(f32, f32) -> f32) -> f32 {
    let mut s = [0.0f32; 32];
    for (l, lane) in s.iter_mut().enumerate() {
        let mut j = l;
        while j < x.len() {
            *lane = step(*lane, x[j]);
            j += 32;
        }
    }
    for w in [16, 8, 4, 2, 1] {
        for l in 0..w {
            s[l] += s[l + w];
        }
    }
    s[0]
}

fn assert_bits(what: &str, device: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what} on {device}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let w = canon(*w);
        assert!(
            g.to_bits() == w.to_bits(),
            "{what} on {device}: element {i} is {g:e} ({:#010x}), the spec says {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

fn up(s: &mut Session, shape: &[usize], data: &[f32]) -> Tensor {
    s.upload_f32(shape, data.to_vec()).expect("upload")
}

/// Runs an op on session `s` and reads its f32 output back.
macro_rules! out {
    ($s:ident . $($call:tt)*) => {{
        let t = $s.$($call)*.expect("op failed");
        $s.read_f32(&t).expect("read")
    }};
}

/// Uploads canonicalise NaN, so references start from what the device holds.
fn canon_all(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| canon(v)).collect()
}

test_device!(matmul_matches_the_dot_product_program);
fn matmul_matches_the_dot_product_program(name: &str, device: &Device) {
    // (batch_a, batch_b, m, k, n): odd sizes around every tile and block edge.
    let shapes: &[MatmulShape] = &[
        (&[], &[], 1, 1, 1),
        (&[], &[], 5, 7, 3),
        (&[], &[], 13, 300, 37),
        (&[], &[], 9, 17, 1100),
        (&[], &[], 70, 0, 5),
        (&[3], &[3], 7, 33, 19),
        (&[2, 1], &[3], 6, 5, 33),
        (&[4], &[], 11, 9, 65),
    ];
    let mut rng = Rng::new(1);
    for &(ba, bb, m, k, n) in shapes {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a_mat = if ta { [k, m] } else { [m, k] };
            let b_mat = if tb { [n, k] } else { [k, n] };
            let a_shape: Vec<usize> = ba.iter().copied().chain(a_mat).collect();
            let b_shape: Vec<usize> = bb.iter().copied().chain(b_mat).collect();
            let an: usize = a_shape.iter().product();
            let bn: usize = b_shape.iter().product();
            let av = rng.edgy(an, 0.02);
            let bv = rng.edgy(bn, 0.02);
            let mut s = session(device);
            let (at, bt) = (up(&mut s, &a_shape, &av), up(&mut s, &b_shape, &bv));
            let got = out!(s.matmul(&at, &bt, ta, tb));
            let (av, bv) = (canon_all(&av), canon_all(&bv));
            // Broadcast batch (numpy), then the dot product per output.
            let rank = ba.len().max(bb.len());
            let pad = |b: &[usize]| -> Vec<usize> {
                let mut v = vec![1; rank - b.len()];
                v.extend_from_slice(b);
                v
            };
            let (pa, pb) = (pad(ba), pad(bb));
            let out_batch: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
            let batches: usize = out_batch.iter().product();
            let mut want = Vec::new();
            for bi in 0..batches {
                let (mut ia, mut ib, mut rem) = (0, 0, bi);
                let (mut sa, mut sb) = (1, 1);
                for d in (0..rank).rev() {
                    let idx = rem % out_batch[d];
                    rem /= out_batch[d];
                    if pa[d] != 1 {
                        ia += idx * sa;
                    }
                    if pb[d] != 1 {
                        ib += idx * sb;
                    }
                    sa *= pa[d];
                    sb *= pb[d];
                }
                let a0 = ia * m * k;
                let b0 = ib * k * n;
                for i in 0..m {
                    for j in 0..n {
                        let mut acc = 0.0f32;
                        for kk in 0..k {
                            let x = if ta {
                                av[a0 + kk * m + i]
                            } else {
                                av[a0 + i * k + kk]
                            };
                            let y = if tb {
                                bv[b0 + j * k + kk]
                            } else {
                                bv[b0 + kk * n + j]
                            };
                            acc = x.mul_add(y, acc);
                        }
                        want.push(acc);
                    }
                }
            }
            let what = format!("matmul {a_shape:?}·{b_shape:?} ta={ta} tb={tb}");
            assert_bits(&what, name, &got, &want);
        }
    }
}

/// `A · B` by the dot-product program, for row-major or transposed 2-D operands.
fn dot_program(av: &[f32], bv: &[f32], (m, k, n): (usize, usize, usize), tb: bool) -> Vec<f32> {
    let mut want = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                let y = if tb { bv[j * k + kk] } else { bv[kk * n + j] };
                acc = av[i * k + kk].mul_add(y, acc);
            }
            want.push(acc);
        }
    }
    want
}

test_device!(a_weight_reused_as_b_keeps_the_dot_product_bits);
fn a_weight_reused_as_b_keeps_the_dot_product_bits(name: &str, device: &Device) {
    // A weight is B for batch after batch (the CPU backend packs it once and
    // reuses the panels): every row count around the kernels' tile heights,
    // k past one block, n past one column block and not a whole panel, both
    // layouts of the same buffer, and a batched A against the shared B.
    let mut rng = Rng::new(21);
    // (384, 384) is 576 KiB: its panels get their own huge-page mapping.
    for (k, n) in [(300, 70), (9, 1100), (384, 384)] {
        let wv = rng.edgy(k * n, 0.02);
        let mut s = session(device);
        let wt = up(&mut s, &[k, n], &wv);
        let w = canon_all(&wv);
        for tb in [false, true, false] {
            // Read as [n, k] transposed, the same buffer is another matrix.
            let (kk, nn) = if tb { (n, k) } else { (k, n) };
            for m in (1..=17).chain([40]) {
                let av = rng.edgy(m * kk, 0.02);
                let at = up(&mut s, &[m, kk], &av);
                let got = out!(s.matmul(&at, &wt, false, tb));
                let want = dot_program(&canon_all(&av), &w, (m, kk, nn), tb);
                assert_bits(
                    &format!("reused weight m={m} k={kk} n={nn} tb={tb}"),
                    name,
                    &got,
                    &want,
                );
            }
            let av = rng.edgy(3 * 5 * kk, 0.02);
            let at = up(&mut s, &[3, 5, kk], &av);
            let got = out!(s.matmul(&at, &wt, false, tb));
            let want = dot_program(&canon_all(&av), &w, (15, kk, nn), tb);
            assert_bits(
                &format!("batched A, reused weight tb={tb}"),
                name,
                &got,
                &want,
            );
        }
    }
}

test_device!(attention_is_per_sequence_and_head_the_scores_scale_softmax_and_context);
fn attention_is_per_sequence_and_head_the_scores_scale_softmax_and_context(
    name: &str,
    device: &Device,
) {
    // Packed sequences of lengths around the CPU's query block (64) and
    // the warp (32), one token alone, heads of unequal q and v widths
    // (and of width 0), a scale that overflows some scores to ±inf: every
    // row of every head has the bits of slicing its sequence and head out
    // and running matmul, scale, softmax and matmul on them.
    let mut rng = Rng::new(41);
    let cases: [(&[usize], usize, usize, usize, f32); 5] = [
        (&[1], 1, 4, 4, 0.5),
        (&[3, 1, 7], 2, 5, 3, 0.25),
        (&[70, 2, 33], 3, 8, 6, 0.125),
        (&[6, 6], 2, 0, 2, 1.0),
        (&[9, 4], 1, 3, 5, 3.0e37),
    ];
    let mut s = session(device);
    for &(lengths, heads, d, dv, scale) in &cases {
        let tokens: usize = lengths.iter().sum();
        let (width, v_width) = (heads * d, heads * dv);
        let q = up(&mut s, &[tokens, width], &rng.edgy(tokens * width, 0.03));
        let k = up(&mut s, &[tokens, width], &rng.edgy(tokens * width, 0.03));
        let v = up(
            &mut s,
            &[tokens, v_width],
            &rng.edgy(tokens * v_width, 0.03),
        );
        let got = out!(s.attention(&q, &k, &v, lengths, heads, scale));
        assert_eq!(got.len(), tokens * v_width);
        let mut start = 0;
        for &n in lengths {
            for h in 0..heads {
                let part = |s: &mut Session, t: &Tensor, w: usize| {
                    let rows = s.slice(t, 0, start, start + n).expect("rows");
                    s.slice(&rows, 1, h * w, (h + 1) * w).expect("head")
                };
                let (qh, kh, vh) = (
                    part(&mut s, &q, d),
                    part(&mut s, &k, d),
                    part(&mut s, &v, dv),
                );
                let scores = s.matmul(&qh, &kh, false, true).expect("scores");
                let scaled = s.scale(&scores, scale).expect("scale");
                let probs = s.softmax(&scaled).expect("softmax");
                let want = out!(s.matmul(&probs, &vh, false, false));
                let got_head: Vec<f32> = (0..n)
                    .flat_map(|i| {
                        let at = (start + i) * v_width + h * dv;
                        got[at..at + dv].to_vec()
                    })
                    .collect();
                let what = format!(
                    "attention lengths={lengths:?} heads={heads} d={d} dv={dv} scale={scale:e}: sequence at {start}, head {h}"
                );
                assert_bits(&what, name, &got_head, &want);
            }
            start += n;
        }
    }
}

#[test]
fn attention_refuses_what_does_not_fit_together() {
    let device = assay_host_gpu::Device::cpu();
    let mut s = session(&device);
    let q = up(&mut s, &[5, 4], &[0.5; 20]);
    let v = up(&mut s, &[5, 6], &[0.5; 30]);
    let short = up(&mut s, &[4, 4], &[0.5; 16]);
    let flat = up(&mut s, &[20], &[0.5; 20]);
    let bad = [
        (
            s.attention(&q, &q, &v, &[2, 2], 2, 1.0),
            "lengths that miss a row",
        ),
        (
            s.attention(&q, &q, &v, &[5, 0], 2, 1.0),
            "an empty sequence",
        ),
        (
            s.attention(&q, &q, &v, &[5], 3, 1.0),
            "heads that do not divide",
        ),
        (s.attention(&q, &q, &v, &[5], 0, 1.0), "no heads"),
        (
            s.attention(&q, &short, &v, &[5], 2, 1.0),
            "k with fewer rows",
        ),
        (s.attention(&flat, &flat, &flat, &[20], 1, 1.0), "vectors"),
    ];
    for (result, what) in bad {
        let e = result.expect_err(what);
        assert!(
            matches!(
                e,
                assay_host_gpu::Error::InvalidArgument(_) | assay_host_gpu::Error::ShapeMismatch(_)
            ),
            "{what}: {e}"
        );
    }
    // The scores count against the quota: 5 rows × 2 heads × 5 long.
    let limits = assay_host_gpu::SessionLimits {
        memory_quota: 20 * 4 + 30 * 4 + 5 * 6 * 4 + 5 * 2 * 5 * 4 - 1,
        ..assay_host_gpu::SessionLimits::default()
    };
    let mut tight = Session::new(device, limits);
    let q = up(&mut tight, &[5, 4], &[0.5; 20]);
    let v = up(&mut tight, &[5, 6], &[0.5; 30]);
    let e = tight
        .attention(&q, &q, &v, &[5], 2, 1.0)
        .expect_err("over quota");
    assert!(matches!(e, assay_host_gpu::Error::QuotaExceeded(_)), "{e}");
}

test_device!(causal_attention_is_attention_over_each_rows_prefix_of_its_kv_head);
fn causal_attention_is_attention_over_each_rows_prefix_of_its_kv_head(name: &str, device: &Device) {
    // A cache in blocks of uneven rows (a prefill block, then decode rows
    // of one), queries for the last position alone, for the last few and
    // for all (a prefill), grouped heads (3 and 2 query heads per
    // key/value head, and one each), rows past the CPU's query block (64)
    // and the warp (32), a key width of 0, and a scale that overflows some
    // scores: every row and head has the bits of `attention` over that
    // row's query, the cache's positions it sees and its key/value head.
    let mut rng = Rng::new(43);
    type Case = (&'static [usize], usize, usize, usize, usize, usize, f32);
    let cases: [Case; 6] = [
        (&[1], 1, 1, 1, 4, 4, 0.5),
        (&[5, 1, 1, 1], 1, 6, 2, 5, 3, 0.25),
        (&[5, 1, 1, 1], 3, 6, 2, 5, 3, 0.25),
        (&[70, 1, 2], 73, 3, 1, 8, 6, 0.125),
        (&[40, 30], 30, 4, 4, 0, 2, 1.0),
        (&[9, 4], 4, 2, 1, 3, 5, 3.0e37),
    ];
    let mut s = session(device);
    for &(blocks, t, heads, kv_heads, d, dv, scale) in &cases {
        let n: usize = blocks.iter().sum();
        let (kw, vw) = (kv_heads * d, kv_heads * dv);
        let q = up(&mut s, &[t, heads * d], &rng.edgy(t * heads * d, 0.03));
        let keys: Vec<Tensor> = blocks
            .iter()
            .map(|&r| up(&mut s, &[r, kw], &rng.edgy(r * kw, 0.03)))
            .collect();
        let values: Vec<Tensor> = blocks
            .iter()
            .map(|&r| up(&mut s, &[r, vw], &rng.edgy(r * vw, 0.03)))
            .collect();
        let (kr, vr): (Vec<&Tensor>, Vec<&Tensor>) =
            (keys.iter().collect(), values.iter().collect());
        let got = out!(s.causal_attention(&q, &kr, &vr, heads, kv_heads, scale));
        assert_eq!(got.len(), t * heads * dv);
        let k_all = s.concat(&kr, 0).expect("keys");
        let v_all = s.concat(&vr, 0).expect("values");
        for i in 0..t {
            let seen = n - t + i + 1;
            for h in 0..heads {
                let g = h / (heads / kv_heads);
                let qh = s.slice(&q, 0, i, i + 1).expect("row");
                let qh = s.slice(&qh, 1, h * d, (h + 1) * d).expect("head");
                let part = |s: &mut Session, t: &Tensor, w: usize| {
                    let rows = s.slice(t, 0, 0, seen).expect("rows");
                    s.slice(&rows, 1, g * w, (g + 1) * w).expect("head")
                };
                let (kh, vh) = (part(&mut s, &k_all, d), part(&mut s, &v_all, dv));
                let scores = s.matmul(&qh, &kh, false, true).expect("scores");
                let scaled = s.scale(&scores, scale).expect("scale");
                let probs = s.softmax(&scaled).expect("softmax");
                let want = out!(s.matmul(&probs, &vh, false, false));
                let at = i * heads * dv + h * dv;
                let what = format!(
                    "causal attention blocks={blocks:?} t={t} heads={heads}/{kv_heads} d={d} dv={dv} scale={scale:e}: row {i}, head {h}"
                );
                assert_bits(&what, name, &got[at..at + dv], &want);
            }
        }
    }
}

#[test]
fn causal_attention_refuses_what_does_not_fit_together() {
    let device = assay_host_gpu::Device::cpu();
    let mut s = session(&device);
    let q = up(&mut s, &[2, 8], &[0.5; 16]);
    let k = up(&mut s, &[3, 4], &[0.5; 12]);
    let v = up(&mut s, &[3, 6], &[0.5; 18]);
    let v_short = up(&mut s, &[2, 6], &[0.5; 12]);
    let k_wide = up(&mut s, &[3, 8], &[0.5; 24]);
    let q_long = up(&mut s, &[4, 8], &[0.5; 32]);
    let bad = [
        (s.causal_attention(&q, &[], &[], 2, 1, 1.0), "no blocks"),
        (
            s.causal_attention(&q, &[&k], &[&v, &v], 2, 1, 1.0),
            "unequal block counts",
        ),
        (
            s.causal_attention(&q, &[&k], &[&v], 2, 0, 1.0),
            "no kv heads",
        ),
        (
            s.causal_attention(&q, &[&k], &[&v], 3, 2, 1.0),
            "kv heads that do not divide",
        ),
        (
            s.causal_attention(&q, &[&k], &[&v_short], 2, 1, 1.0),
            "values of other rows",
        ),
        (
            s.causal_attention(&q, &[&k, &k_wide], &[&v, &v], 2, 1, 1.0),
            "blocks of other widths",
        ),
        (
            s.causal_attention(&q, &[&k_wide], &[&v], 2, 1, 1.0),
            "heads of other widths",
        ),
        (
            s.causal_attention(&q_long, &[&k], &[&v], 2, 1, 1.0),
            "more queries than positions",
        ),
    ];
    for (result, what) in bad {
        let e = result.expect_err(what);
        assert!(
            matches!(
                e,
                assay_host_gpu::Error::InvalidArgument(_) | assay_host_gpu::Error::ShapeMismatch(_)
            ),
            "{what}: {e}"
        );
    }
}

test_device!(rope_rotates_each_heads_pairs_by_its_rows_angles);
fn rope_rotates_each_heads_pairs_by_its_rows_angles(name: &str, device: &Device) {
    // Both pairings, one head and several, rows past a parallel chunk,
    // special values in x and in the angles.
    let mut rng = Rng::new(44);
    let mut s = session(device);
    for (rows, heads, d) in [(1, 1, 2), (7, 3, 8), (300, 9, 64)] {
        let (width, half) = (heads * d, d / 2);
        let xv = canon_all(&rng.edgy(rows * width, 0.02));
        let cv = canon_all(&rng.edgy(rows * half, 0.02));
        let sv = canon_all(&rng.edgy(rows * half, 0.02));
        let (x, c, sn) = (
            up(&mut s, &[rows, width], &xv),
            up(&mut s, &[rows, half], &cv),
            up(&mut s, &[rows, half], &sv),
        );
        for pairs in [RopePairs::Adjacent, RopePairs::Halves] {
            let got = out!(s.rope(&x, &c, &sn, heads, pairs));
            let mut want = xv.clone();
            for r in 0..rows {
                for h in 0..heads {
                    for i in 0..half {
                        let base = r * width + h * d;
                        let (ia, ib) = match pairs {
                            RopePairs::Adjacent => (base + 2 * i, base + 2 * i + 1),
                            RopePairs::Halves => (base + i, base + i + half),
                        };
                        let (a, b) = (xv[ia], xv[ib]);
                        let (co, si) = (cv[r * half + i], sv[r * half + i]);
                        want[ia] = a * co - b * si;
                        want[ib] = a * si + b * co;
                    }
                }
            }
            let what = format!("rope {pairs:?} rows={rows} heads={heads} d={d}");
            assert_bits(&what, name, &got, &want);
        }
    }
}

test_device!(swiglu_is_the_silu_of_the_gate_times_up);
fn swiglu_is_the_silu_of_the_gate_times_up(name: &str, device: &Device) {
    let mut rng = Rng::new(45);
    let mut s = session(device);
    for n in [1, 33, 10_000] {
        let (g, u) = (canon_all(&rng.edgy(n, 0.05)), canon_all(&rng.edgy(n, 0.05)));
        let (gt, ut) = (up(&mut s, &[n], &g), up(&mut s, &[n], &u));
        let got = out!(s.swiglu(&gt, &ut));
        let want: Vec<f32> = g
            .iter()
            .zip(&u)
            .map(|(&g, &u)| (g * (1.0 / (1.0 + math::exp(-g)))) * u)
            .collect();
        assert_bits(&format!("swiglu n={n}"), name, &got, &want);
    }
    let (a, b) = (up(&mut s, &[2, 3], &[1.0; 6]), up(&mut s, &[3], &[1.0; 3]));
    let e = s.swiglu(&a, &b).expect_err("broadcast");
    assert!(matches!(e, assay_host_gpu::Error::ShapeMismatch(_)), "{e}");
}

test_device!(linear_is_the_dot_product_then_the_bias_add_then_the_activation);
fn linear_is_the_dot_product_then_the_bias_add_then_the_activation(name: &str, device: &Device) {
    // A dense layer's fused bias add and activation round exactly as
    // matmul, add and unary: narrow and wide n (in-place and packed A, a
    // narrow last panel), k of 0, one block and past it, row counts around
    // the tile heights, a batched x, both layouts of w, and a weight used
    // twice (packed the second time).
    let mut rng = Rng::new(33);
    let activations = [None, Some(UnaryOp::Gelu), Some(UnaryOp::Tanh)];
    for (k, n) in [(0, 5), (7, 3), (300, 70), (33, 600)] {
        let wv = rng.edgy(k * n, 0.02);
        let bv = rng.edgy(n, 0.05);
        let mut s = session(device);
        let bias = up(&mut s, &[n], &bv);
        for tw in [false, true] {
            let w_shape = if tw { [n, k] } else { [k, n] };
            let wt = up(&mut s, &w_shape, &wv);
            for (m, batch) in [(1, 0), (5, 3), (11, 0), (12, 0), (13, 2), (25, 0)] {
                let x_shape: Vec<usize> = (batch > 0)
                    .then_some(batch)
                    .into_iter()
                    .chain([m, k])
                    .collect();
                let rows = x_shape[..x_shape.len() - 1].iter().product::<usize>();
                let xv = rng.edgy(rows * k, 0.02);
                let xt = up(&mut s, &x_shape, &xv);
                let dots = dot_program(&canon_all(&xv), &canon_all(&wv), (rows, k, n), tw);
                for activation in activations {
                    for use_ in ["first", "again"] {
                        let got = out!(s.linear(&xt, &wt, &bias, tw, activation));
                        let product = s.matmul(&xt, &wt, false, tw).expect("matmul");
                        let sum = s.binary(BinaryOp::Add, &product, &bias).expect("add");
                        let separate = match activation {
                            Some(op) => out!(s.unary(op, &sum)),
                            None => s.read_f32(&sum).expect("read"),
                        };
                        let what = format!(
                            "linear m={m} k={k} n={n} tw={tw} batch={batch} {activation:?} ({use_} use)"
                        );
                        assert_bits(&what, name, &got, &separate);
                        let want: Vec<f32> = dots
                            .iter()
                            .enumerate()
                            .map(|(i, &d)| {
                                let y = canon(canon(d) + canon(bv[i % n]));
                                match activation {
                                    Some(UnaryOp::Gelu) => gelu(y),
                                    Some(UnaryOp::Tanh) => math::tanh(y),
                                    _ => y,
                                }
                            })
                            .collect();
                        assert_bits(&what, name, &got, &want);
                    }
                }
            }
        }
    }
}

fn gelu(x: f32) -> f32 {
    let e = math::erf(x * std::f32::consts::FRAC_1_SQRT_2);
    (0.5 * x) * (1.0 + e)
}

test_device!(unary_ops_match_their_scalar_programs);
fn unary_ops_match_their_scalar_programs(name: &str, device: &Device) {
    let mut ops: Vec<(UnaryOp, Unary)> = vec![
        (UnaryOp::Neg, |x| -x),
        (UnaryOp::Abs, f32::abs),
        (UnaryOp::Relu, |x| maximum(x, 0.0)),
        (UnaryOp::Tanh, math::tanh),
        (UnaryOp::Sigmoid, |x| 1.0 / (1.0 + math::exp(-x))),
        (UnaryOp::Exp, math::exp),
        (UnaryOp::Log, math::log),
        (UnaryOp::Sqrt, f32::sqrt),
    ];
    if crate::common::erf_is_ready() {
        ops.push((UnaryOp::Gelu, gelu));
    }
    let mut rng = Rng::new(2);
    let x = rng.edgy(3 * 3004, 0.1);
    let mut s = session(device);
    let t = up(&mut s, &[3, 3004], &x);
    for &(op, f) in &ops {
        let got = out!(s.unary(op, &t));
        let want: Vec<f32> = canon_all(&x).iter().map(|&v| f(v)).collect();
        assert_bits(&format!("{op:?}"), name, &got, &want);
    }
    let got = out!(s.scale(&t, -0.37));
    let want: Vec<f32> = canon_all(&x).iter().map(|&v| v * -0.37).collect();
    assert_bits("scale", name, &got, &want);
}

test_device!(binary_ops_broadcast_like_numpy);
fn binary_ops_broadcast_like_numpy(name: &str, device: &Device) {
    let ops: [(BinaryOp, Binary); 6] = [
        (BinaryOp::Add, |a, b| a + b),
        (BinaryOp::Sub, |a, b| a - b),
        (BinaryOp::Mul, |a, b| a * b),
        (BinaryOp::Div, |a, b| a / b),
        (BinaryOp::Max, maximum),
        (BinaryOp::Min, minimum),
    ];
    let pairs: &[(&[usize], &[usize])] = &[
        (&[37], &[37]),
        (&[4, 37], &[37]),
        (&[4, 1], &[1, 37]),
        (&[2, 3, 1, 5], &[3, 7, 1]),
        (&[], &[6, 2]),
        (&[5, 0], &[1]),
        (&[2, 1, 3], &[2, 4, 3]),
        // Large enough to split across threads, in chunks that start mid-row.
        (&[41, 1000], &[1000]),
        (&[150, 301], &[150, 1]),
        (&[70001], &[70001]),
    ];
    let mut rng = Rng::new(3);
    for &(sa, sb) in pairs {
        let av = rng.edgy(sa.iter().product(), 0.15);
        let bv = rng.edgy(sb.iter().product(), 0.15);
        let mut s = session(device);
        let (at, bt) = (up(&mut s, sa, &av), up(&mut s, sb, &bv));
        let (av, bv) = (canon_all(&av), canon_all(&bv));
        let rank = sa.len().max(sb.len());
        let pad = |b: &[usize]| -> Vec<usize> {
            let mut v = vec![1; rank - b.len()];
            v.extend_from_slice(b);
            v
        };
        let (pa, pb) = (pad(sa), pad(sb));
        let out: Vec<usize> = pa
            .iter()
            .zip(&pb)
            .map(|(&x, &y)| if x == 1 { y } else { x })
            .collect();
        let total: usize = out.iter().product();
        let at_index = |shape: &[usize], mut i: usize| {
            let (mut off, mut stride) = (0, 1);
            for d in (0..rank).rev() {
                let idx = i % out[d];
                i /= out[d];
                if shape[d] != 1 {
                    off += idx * stride;
                }
                stride *= shape[d];
            }
            off
        };
        for &(op, f) in &ops {
            let got = out!(s.binary(op, &at, &bt));
            let want: Vec<f32> = (0..total)
                .map(|i| f(av[at_index(&pa, i)], bv[at_index(&pb, i)]))
                .collect();
            assert_bits(&format!("{op:?} {sa:?} {sb:?}"), name, &got, &want);
        }
    }
}

test_device!(row_reductions_use_the_32_lane_order);
fn row_reductions_use_the_32_lane_order(name: &str, device: &Device) {
    let mut rng = Rng::new(4);
    // (rows, n): lengths around the 32 lanes, and enough rows to split across threads.
    let shapes = [
        (3, 1),
        (3, 5),
        (3, 31),
        (3, 32),
        (3, 33),
        (3, 64),
        (3, 100),
        (3, 1000),
        (3, 4099),
        (257, 129),
    ];
    for (rows, n) in shapes {
        for special in [0.0, 0.05] {
            // Values of very different magnitudes make the order visible.
            let x: Vec<f32> = rng
                .edgy(rows * n, special)
                .iter()
                .map(|v| v * 10f32.powi((rng.below(13) as i32) - 6))
                .collect();
            let mut s = session(device);
            let t = up(&mut s, &[rows, n], &x);
            let xc = canon_all(&x);
            let row = |r: usize| &xc[r * n..(r + 1) * n];
            let what = format!("n={n} special={special}");
            let sum: Vec<f32> = (0..rows).map(|r| lanes(row(r), |a, v| a + v)).collect();
            assert_bits(
                &format!("sum {what}"),
                name,
                &out!(s.reduce(ReduceOp::Sum, &t)),
                &sum,
            );
            let mean: Vec<f32> = sum.iter().map(|v| v / n as f32).collect();
            assert_bits(
                &format!("mean {what}"),
                name,
                &out!(s.reduce(ReduceOp::Mean, &t)),
                &mean,
            );
            let max: Vec<f32> = (0..rows)
                .map(|r| row(r).iter().fold(f32::NEG_INFINITY, |a, &v| maximum(a, v)))
                .collect();
            assert_bits(
                &format!("max {what}"),
                name,
                &out!(s.reduce(ReduceOp::Max, &t)),
                &max,
            );
            let min: Vec<f32> = (0..rows)
                .map(|r| row(r).iter().fold(f32::INFINITY, |a, &v| minimum(a, v)))
                .collect();
            assert_bits(
                &format!("min {what}"),
                name,
                &out!(s.reduce(ReduceOp::Min, &t)),
                &min,
            );

            // softmax: max, exp(x - max) summed in lanes, times 1/sum.
            let mut want = Vec::new();
            for (r, &m) in max.iter().enumerate() {
                let e: Vec<f32> = row(r).iter().map(|&v| math::exp(v - m)).collect();
                let sum = lanes(&e, |a, v| a + v);
                let inv = 1.0 / sum;
                want.extend(e.iter().map(|v| v * inv));
            }
            assert_bits(
                &format!("softmax {what}"),
                name,
                &out!(s.softmax(&t)),
                &want,
            );

            // layer norm
            let gamma = rng.uniform(n, -2.0, 2.0);
            let beta = rng.uniform(n, -1.0, 1.0);
            let (g, b) = (up(&mut s, &[n], &gamma), up(&mut s, &[n], &beta));
            let eps = 1e-5;
            let mut want = Vec::new();
            for r in 0..rows {
                let mean = lanes(row(r), |a, v| a + v) / n as f32;
                let var = lanes(row(r), |a, v| (v - mean).mul_add(v - mean, a)) / n as f32;
                let rstd = 1.0 / (var + eps).sqrt();
                for (j, &v) in row(r).iter().enumerate() {
                    want.push(((v - mean) * rstd).mul_add(gamma[j], beta[j]));
                }
            }
            assert_bits(
                &format!("layer_norm {what}"),
                name,
                &out!(s.layer_norm(&t, &g, &b, eps)),
                &want,
            );

            // rms norm
            let mut want = Vec::new();
            for r in 0..rows {
                let rstd = 1.0 / (lanes(row(r), |a, v| v.mul_add(v, a)) / n as f32 + eps).sqrt();
                want.extend(row(r).iter().zip(&gamma).map(|(&v, &gm)| (v * rstd) * gm));
            }
            assert_bits(
                &format!("rms_norm {what}"),
                name,
                &out!(s.rms_norm(&t, &g, eps)),
                &want,
            );

            // l2 normalize
            let mut want = Vec::new();
            for r in 0..rows {
                let inv = 1.0 / maximum(lanes(row(r), |a, v| v.mul_add(v, a)).sqrt(), 1e-12);
                want.extend(row(r).iter().map(|&v| v * inv));
            }
            assert_bits(
                &format!("l2 {what}"),
                name,
                &out!(s.l2_normalize(&t, 1e-12)),
                &want,
            );

            // argmax: first maximum, first NaN wins
            let want: Vec<i32> = (0..rows)
                .map(|r| {
                    let row = row(r);
                    if let Some(p) = row.iter().position(|v| v.is_nan()) {
                        return p as i32;
                    }
                    let mut best = 0;
                    for (i, &v) in row.iter().enumerate() {
                        if v > row[best] {
                            best = i;
                        }
                    }
                    best as i32
                })
                .collect();
            let got = s.argmax(&t).expect("argmax");
            assert_eq!(
                s.read_i32(&got).expect("read"),
                want,
                "argmax {what} on {name}"
            );
        }
    }
}

test_device!(masked_mean_pool_skips_masked_positions);
fn masked_mean_pool_skips_masked_positions(name: &str, device: &Device) {
    let mut rng = Rng::new(5);
    for (b, sq, d) in [(1, 1, 1), (3, 7, 5), (2, 40, 33), (4, 9, 130)] {
        let x = rng.edgy(b * sq * d, 0.05);
        let mask: Vec<f32> = (0..b * sq)
            .map(|i| {
                if i % sq == 0 || rng.unit() < 0.6 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let mut s = session(device);
        let (xt, mt) = (up(&mut s, &[b, sq, d], &x), up(&mut s, &[b, sq], &mask));
        let x = canon_all(&x);
        let mut want = Vec::new();
        for bi in 0..b {
            let mut count = 0.0f32;
            let mut acc = vec![0.0f32; d];
            for si in 0..sq {
                let w = mask[bi * sq + si];
                if w == 0.0 {
                    continue;
                }
                count += w;
                for di in 0..d {
                    acc[di] = w.mul_add(x[(bi * sq + si) * d + di], acc[di]);
                }
            }
            want.extend(
                acc.iter()
                    .map(|&a| if count == 0.0 { 0.0 } else { a / count }),
            );
        }
        let got = out!(s.masked_mean_pool(&xt, &mt));
        assert_bits(&format!("masked_mean_pool {b}x{sq}x{d}"), name, &got, &want);
    }
}

test_device!(conv2d_and_max_pool_match_direct_loops);
fn conv2d_and_max_pool_match_direct_loops(name: &str, device: &Device) {
    // (n, c, h, w, o, kh, kw, stride, padding, bias)
    let cases = [
        (1, 1, 5, 5, 1, 3, 3, (1, 1), (0, 0), false),
        (2, 3, 9, 7, 4, 3, 3, (1, 1), (1, 1), true),
        (1, 2, 11, 13, 5, 5, 3, (2, 3), (2, 1), true),
        (3, 4, 6, 6, 33, 1, 1, (1, 1), (0, 0), true),
        (1, 16, 15, 15, 8, 3, 3, (2, 2), (1, 1), false),
        (1, 0, 4, 4, 2, 3, 3, (1, 1), (1, 1), true),
    ];
    let mut rng = Rng::new(6);
    for (n, c, h, w, o, kh, kw, (sh, sw), (ph, pw), has_bias) in cases {
        let x = rng.edgy(n * c * h * w, 0.03);
        let wt = rng.edgy(o * c * kh * kw, 0.03);
        let bias = rng.uniform(o, -1.0, 1.0);
        let mut s = session(device);
        let xt = up(&mut s, &[n, c, h, w], &x);
        let wtt = up(&mut s, &[o, c, kh, kw], &wt);
        let bt = up(&mut s, &[o], &bias);
        let got = out!(s.conv2d(&xt, &wtt, has_bias.then_some(&bt), (sh, sw), (ph, pw)));
        let (x, wt) = (canon_all(&x), canon_all(&wt));
        let ho = (h + 2 * ph - kh) / sh + 1;
        let wo = (w + 2 * pw - kw) / sw + 1;
        let at = |ni: usize, ci: usize, y: isize, xx: isize| -> f32 {
            if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                0.0
            } else {
                x[((ni * c + ci) * h + y as usize) * w + xx as usize]
            }
        };
        let mut want = Vec::new();
        for ni in 0..n {
            for oc in 0..o {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut acc = 0.0f32;
                        for ci in 0..c {
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let y = (oy * sh + ki) as isize - ph as isize;
                                    let xx = (ox * sw + kj) as isize - pw as isize;
                                    let wv = wt[((oc * c + ci) * kh + ki) * kw + kj];
                                    acc = at(ni, ci, y, xx).mul_add(wv, acc);
                                }
                            }
                        }
                        want.push(if has_bias { acc + bias[oc] } else { acc });
                    }
                }
            }
        }
        let what = format!("conv2d x[{n},{c},{h},{w}] w[{o},{c},{kh},{kw}] s{sh},{sw} p{ph},{pw}");
        assert_bits(&what, name, &got, &want);

        if c == 0 || ph > kh / 2 || pw > kw / 2 {
            continue;
        }
        let got = out!(s.max_pool2d(&xt, (kh, kw), (sh, sw), (ph, pw)));
        let mut want = Vec::new();
        for ni in 0..n {
            for ci in 0..c {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut m = f32::NEG_INFINITY;
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let y = (oy * sh + ki) as isize - ph as isize;
                                let xx = (ox * sw + kj) as isize - pw as isize;
                                if y >= 0 && xx >= 0 && y < h as isize && xx < w as isize {
                                    m = maximum(m, at(ni, ci, y, xx));
                                }
                            }
                        }
                        want.push(m);
                    }
                }
            }
        }
        assert_bits(&format!("max_pool2d of {what}"), name, &got, &want);
    }
}

test_device!(layout_ops_move_bits_unchanged);
fn layout_ops_move_bits_unchanged(name: &str, device: &Device) {
    let mut rng = Rng::new(7);
    let mut s = session(device);
    let shape = [3, 5, 7, 2];
    let x = rng.edgy(shape.iter().product(), 0.2);
    let xt = up(&mut s, &shape, &x);
    let x = canon_all(&x);
    let idx = |i: [usize; 4]| ((i[0] * 5 + i[1]) * 7 + i[2]) * 2 + i[3];

    let axes = [2, 0, 3, 1];
    let got = out!(s.permute(&xt, &axes));
    let mut want = Vec::new();
    for a in 0..7 {
        for b in 0..3 {
            for c in 0..2 {
                for d in 0..5 {
                    want.push(x[idx([b, d, a, c])]);
                }
            }
        }
    }
    assert_bits("permute", name, &got, &want);

    let got = out!(s.slice(&xt, 2, 2, 6));
    let mut want = Vec::new();
    for a in 0..3 {
        for b in 0..5 {
            for c in 2..6 {
                for d in 0..2 {
                    want.push(x[idx([a, b, c, d])]);
                }
            }
        }
    }
    assert_bits("slice", name, &got, &want);

    let y = rng.edgy(3 * 2 * 7 * 2, 0.2);
    let yt = up(&mut s, &[3, 2, 7, 2], &y);
    let y = canon_all(&y);
    let got = out!(s.concat(&[&xt, &yt, &xt], 1));
    let mut want = Vec::new();
    for a in 0..3 {
        want.extend_from_slice(&x[a * 70..(a + 1) * 70]);
        want.extend_from_slice(&y[a * 28..(a + 1) * 28]);
        want.extend_from_slice(&x[a * 70..(a + 1) * 70]);
    }
    assert_bits("concat", name, &got, &want);

    let table = rng.edgy(11 * 6, 0.2);
    let tt = up(&mut s, &[11, 6], &table);
    let table = canon_all(&table);
    let ids: Vec<i32> = (0..2 * 9).map(|_| rng.below(11) as i32).collect();
    let it = s.upload_i32(&[2, 9], ids.clone()).expect("upload");
    let got = out!(s.gather(&tt, &it));
    let want: Vec<f32> = ids
        .iter()
        .flat_map(|&i| table[i as usize * 6..i as usize * 6 + 6].to_vec())
        .collect();
    assert_bits("gather", name, &got, &want);

    let casted = s.cast(&xt, DType::I32).expect("cast");
    let want: Vec<i32> = x.iter().map(|&v| v as i32).collect();
    assert_eq!(
        s.read_i32(&casted).expect("read"),
        want,
        "cast f32→i32 on {name}"
    );
    let back = out!(s.cast(&casted, DType::F32));
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_bits("cast i32→f32", name, &back, &want);
}

/// GGML blocks of `encoding` for `rows` rows of `cols` values: random
/// quants, and scales that are mostly ordinary f16s but include zero, a
/// subnormal, a negative, an infinity and a NaN.
fn random_blocks(rng: &mut Rng, encoding: SourceEncoding, rows: usize, cols: usize) -> Vec<u8> {
    let (_, block_bytes) = encoding.block();
    let blocks = rows * cols / 32;
    let specials: [u16; 6] = [0x0000, 0x0001, 0xb800, 0x7c00, 0x7e00, 0x8000];
    let mut out = Vec::with_capacity(blocks * block_bytes);
    for _ in 0..blocks {
        let mut block: Vec<u8> = (0..block_bytes).map(|_| rng.below(256) as u8).collect();
        let scales = if encoding == SourceEncoding::Q4_1 {
            2
        } else {
            1
        };
        for s in 0..scales {
            // An ordinary scale: exponent 5..=20 of 30, any sign and mantissa.
            let ordinary = ((rng.below(2) as u16) << 15)
                | ((5 + rng.below(16) as u16) << 10)
                | rng.below(1024) as u16;
            let h = if rng.below(40) == 0 {
                specials[rng.below(specials.len() as u64) as usize]
            } else {
                ordinary
            };
            block[2 * s..2 * s + 2].copy_from_slice(&h.to_le_bytes());
        }
        out.extend(block);
    }
    out
}

test_device!(a_matrix_of_blocks_multiplies_and_gathers_as_its_decoded_values);
fn a_matrix_of_blocks_multiplies_and_gathers_as_its_decoded_values(name: &str, device: &Device) {
    // A weight kept as GGML blocks is, to matmul, linear and gather, the
    // f32 tensor its blocks decode to: the same bits, without expanding
    // it. Row counts around the 16-row groups and the 4-row tiles, one
    // block and many, a batched x.
    let mut rng = Rng::new(61);
    let shapes: &[(usize, usize, usize)] = &[
        (1, 32, 1),
        (16, 32, 4),
        (17, 64, 5),
        (40, 96, 9),
        (33, 576, 1),
        (3, 1536, 2),
    ];
    for encoding in [
        SourceEncoding::Q4_0,
        SourceEncoding::Q4_1,
        SourceEncoding::Q8_0,
    ] {
        for &(n, k, m) in shapes {
            let what = format!("{encoding:?} n={n} k={k} m={m}");
            let mut s = session(device);
            let bytes = random_blocks(&mut rng, encoding, n, k);
            let kept = s
                .blocks_from_encoded(&[n, k], encoding, &bytes, None)
                .expect("blocks");
            let decoded = s.from_encoded(&[n, k], encoding, &bytes).expect("decode");
            assert_eq!(
                kept.dtype(),
                encoding.blocks_dtype().expect("a block dtype")
            );
            assert_eq!(s.read_bytes(&kept).expect("blocks back"), bytes, "{what}");
            let x = up(&mut s, &[2, m, k], &rng.edgy(2 * m * k, 0.02));
            let bias = up(&mut s, &[n], &rng.edgy(n, 0.05));
            let got = out!(s.matmul(&x, &kept, false, true));
            let want = out!(s.matmul(&x, &decoded, false, true));
            assert_bits(&format!("matmul {what}"), name, &got, &want);
            for activation in [None, Some(UnaryOp::Gelu)] {
                let got = out!(s.linear(&x, &kept, &bias, true, activation));
                let want = out!(s.linear(&x, &decoded, &bias, true, activation));
                assert_bits(&format!("linear {activation:?} {what}"), name, &got, &want);
            }
            let ids: Vec<i32> = (0..7).map(|_| rng.below(n as u64) as i32).collect();
            let ids = s.upload_i32(&[7], ids).expect("ids");
            let got = out!(s.gather(&kept, &ids));
            let want = out!(s.gather(&decoded, &ids));
            assert_bits(&format!("gather {what}"), name, &got, &want);
        }
    }
}

test_device!(a_matrix_of_blocks_is_refused_where_it_cannot_be_read);
fn a_matrix_of_blocks_is_refused_where_it_cannot_be_read(_name: &str, device: &Device) {
    let mut rng = Rng::new(62);
    let mut s = session(device);
    let bytes = random_blocks(&mut rng, SourceEncoding::Q4_1, 4, 64);
    let w = s
        .blocks_from_encoded(&[4, 64], SourceEncoding::Q4_1, &bytes, None)
        .expect("blocks");
    let x = up(&mut s, &[2, 64], &[1.0; 128]);
    let refused = |r: Result<Tensor, assay_host_gpu::Error>, what: &str| {
        let e = r.expect_err(what);
        assert!(
            matches!(e, assay_host_gpu::Error::InvalidArgument(_))
                && e.to_string().contains("q4_1"),
            "{what}: {e}"
        );
    };
    refused(s.matmul(&x, &w, false, false), "b not transposed");
    refused(s.matmul(&w, &x, false, true), "blocks as a");
    refused(s.unary(UnaryOp::Neg, &w), "unary");
    refused(s.reshape(&w, &[64, 4]), "reshape");
    refused(s.cast(&w, DType::F32), "cast");
    assert!(s.read_f32(&w).is_err(), "read_f32 of blocks");
    let e = s
        .blocks_from_encoded(&[4, 48], SourceEncoding::Q4_1, &bytes[..4 * 30], None)
        .expect_err("48 is not whole blocks");
    assert!(matches!(e, assay_host_gpu::Error::ShapeMismatch(_)), "{e}");
    let e = s
        .blocks_from_encoded(&[16], SourceEncoding::F16, &[0; 32], None)
        .expect_err("f16 has no blocks");
    assert!(
        matches!(e, assay_host_gpu::Error::InvalidArgument(_)),
        "{e}"
    );
    // Found by the wit_host_surface fuzz target: rows of zero values (and
    // no rows) were a device error — a provider fault any guest could
    // cause — instead of a refusal.
    for shape in [[4, 0], [0, 64]] {
        let e = s
            .blocks_from_encoded(&shape, SourceEncoding::Q4_0, &[], None)
            .expect_err("no values");
        assert!(
            matches!(e, assay_host_gpu::Error::ShapeMismatch(_)),
            "{shape:?}: {e}"
        );
    }
}
