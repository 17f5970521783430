//! The conformance suite of SEMANTICS.md: every op on seeded inputs of every
//! shape class (tiny, odd sizes that are no multiple of any tile or vector
//! width, large-ish; ±0, subnormals, ±inf, NaN, huge and tiny magnitudes),
//! hashed with blake3 and compared with the golden hashes checked in at
//! `tests/golden/conformance.txt`, one test per backend (`test_device!`).
//!
//! A missing, stale or different golden fails the test. Regenerating is a
//! separate, explicit command (review the diff before committing it):
//!
//! ```text
//! ASSAY_REGENERATE_GOLDEN=1 cargo test --release -p assay-host-gpu --test all conformance::
//! ```
//!
//! Regeneration writes the hashes of the reference device (the scalar CPU
//! path on one thread), once per run, and still requires every device to
//! agree with them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use assay_host_gpu::{
    BinaryOp, CpuSimd, DType, Device, Error, ReduceOp, RopePairs, Session, SourceEncoding, Tensor,
    UnaryOp,
};

use crate::common::{Rng, session, tensor_hash};

/// One conformance case: builds its inputs from its own seeded stream and runs one op.
struct Case {
    name: String,
    /// Needs `math::erf` (gelu), which may not be implemented yet.
    needs_erf: bool,
    run: Box<RunCase>,
}

type RunCase = dyn Fn(&mut Session, &mut Rng) -> Result<Tensor, Error>;

/// A matmul case: name, batch dims of a and b, m, k, n, values.
type MatmulCase = (
    &'static str,
    &'static [usize],
    &'static [usize],
    usize,
    usize,
    usize,
    Values,
);

/// A conv2d case: x `[n, c, h, w]` and weight `[o, c, kh, kw]`.
#[derive(Clone, Copy)]
struct Conv {
    name: &'static str,
    x: [usize; 4],
    o: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    bias: bool,
    values: Values,
}

fn case(
    name: impl Into<String>,
    run: impl Fn(&mut Session, &mut Rng) -> Result<Tensor, Error> + 'static,
) -> Case {
    Case {
        name: name.into(),
        needs_erf: false,
        run: Box::new(run),
    }
}

/// How the values of an input are drawn.
#[derive(Clone, Copy)]
enum Values {
    /// Uniform in [-1, 1).
    Plain,
    /// Uniform in [-4, 4) with this fraction of special values.
    Edgy(f32),
    /// Magnitudes spread over 10^-30 .. 10^30 (overflow, underflow, subnormal results).
    Wide,
    /// For row-wise ops on `[8, n]`: each row has its own flavour (see [`flavoured_rows`]).
    Rows,
}

fn draw(rng: &mut Rng, n: usize, values: Values) -> Vec<f32> {
    match values {
        Values::Plain => rng.uniform(n, -1.0, 1.0),
        Values::Edgy(p) => rng.edgy(n, p),
        Values::Wide => (0..n)
            .map(|_| {
                let e = rng.below(61) as i32 - 30;
                rng.range(-1.0, 1.0) * 10f32.powi(e)
            })
            .collect(),
        Values::Rows => flavoured_rows(rng, n),
    }
}

/// Eight rows of `n / 8` values, each testing one hazard of a row reduction:
/// clean; one NaN; one +inf; one -inf; subnormals and signed zeros; huge
/// finite values (the sum overflows); tiny values (subnormal results); all -0.
fn flavoured_rows(rng: &mut Rng, total: usize) -> Vec<f32> {
    let n = total / 8;
    let mut out = Vec::with_capacity(total);
    for row in 0..8 {
        let mut r = rng.uniform(n, -1.0, 1.0);
        let at = rng.below(n as u64) as usize;
        match row {
            1 => r[at] = f32::NAN,
            2 => r[at] = f32::INFINITY,
            3 => r[at] = f32::NEG_INFINITY,
            4 => {
                for (i, x) in r.iter_mut().enumerate() {
                    *x = match i % 3 {
                        0 => f32::from_bits(1 + rng.below(0x7f_ffff) as u32),
                        1 => -0.0,
                        _ => -f32::from_bits(1 + rng.below(0x7f_ffff) as u32),
                    };
                }
            }
            5 => r.iter_mut().for_each(|x| *x *= 3.0e38),
            6 => r.iter_mut().for_each(|x| *x *= 1.0e-36),
            7 => r.iter_mut().for_each(|x| *x = -0.0),
            _ => {}
        }
        out.extend(r);
    }
    out
}

fn input(s: &mut Session, rng: &mut Rng, shape: &[usize], values: Values) -> Result<Tensor, Error> {
    let data = draw(rng, shape.iter().product(), values);
    s.upload_f32(shape, data)
}

/// GGML blocks for `rows` rows of `cols` values: random quants, random
/// ordinary f16 scales (exponents 5 to 20 of 30, either sign).
fn ordinary_blocks(rng: &mut Rng, encoding: SourceEncoding, rows: usize, cols: usize) -> Vec<u8> {
    let (_, block_bytes) = encoding.block();
    let scales = if encoding == SourceEncoding::Q4_1 {
        2
    } else {
        1
    };
    let mut out = Vec::new();
    for _ in 0..rows * cols / 32 {
        let mut block: Vec<u8> = (0..block_bytes).map(|_| rng.next_u64() as u8).collect();
        for sc in 0..scales {
            let h = ((rng.below(2) as u16) << 15)
                | ((5 + rng.below(16) as u16) << 10)
                | rng.below(1024) as u16;
            block[2 * sc..2 * sc + 2].copy_from_slice(&h.to_le_bytes());
        }
        out.extend(block);
    }
    out
}

fn unary_name(op: UnaryOp) -> String {
    format!("{op:?}").to_lowercase()
}

fn cases() -> Vec<Case> {
    use Values::{Edgy, Plain, Wide};
    let mut v = Vec::new();

    // ---- matmul: (name, batch a, batch b, m, k, n, values)
    let mm: &[MatmulCase] = &[
        ("tiny_1x1x1", &[], &[], 1, 1, 1, Plain),
        ("tiny_2x3x4", &[], &[], 2, 3, 4, Plain),
        ("odd_17x33x9", &[], &[], 17, 33, 9, Plain),
        ("odd_7x61x129", &[], &[], 7, 61, 129, Plain),
        ("k_blocks_130x300x190", &[], &[], 130, 300, 190, Plain),
        ("n_blocks_5x257x1100", &[], &[], 5, 257, 1100, Plain),
        ("k0_3x0x4", &[], &[], 3, 0, 4, Plain),
        ("batch_bcast_3x1_by_4", &[3, 1], &[4], 5, 7, 6, Plain),
        ("edge_19x23x21", &[], &[], 19, 23, 21, Edgy(0.1)),
        ("wide_magnitudes_33x47x29", &[], &[], 33, 47, 29, Wide),
        ("attention_12x128x64x128", &[12], &[12], 128, 64, 128, Plain),
        ("bert_ffn_128x384x1536", &[], &[], 128, 384, 1536, Plain),
    ];
    for &(name, ba, bb, m, k, n, values) in mm {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            if name.starts_with("bert") && (ta || tb) {
                continue;
            }
            let tag = format!(
                "{}{}",
                if ta { "t" } else { "n" },
                if tb { "t" } else { "n" }
            );
            v.push(case(format!("matmul/{name}/{tag}"), move |s, rng| {
                let a_mat = if ta { [k, m] } else { [m, k] };
                let b_mat = if tb { [n, k] } else { [k, n] };
                let sa: Vec<usize> = ba.iter().copied().chain(a_mat).collect();
                let sb: Vec<usize> = bb.iter().copied().chain(b_mat).collect();
                let a = input(s, rng, &sa, values)?;
                let b = input(s, rng, &sb, values)?;
                s.matmul(&a, &b, ta, tb)
            }));
        }
    }

    // ---- unary and scale
    let unary = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Relu,
        UnaryOp::Gelu,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
    ];
    for op in unary {
        for (class, shape, values) in [
            ("tiny", vec![3], Plain),
            ("odd", vec![7, 181], Values::Edgy(0.0)),
            ("edge", vec![1237], Edgy(0.3)),
            ("wide", vec![33, 65], Wide),
        ] {
            let mut c = case(
                format!("unary/{}/{class}", unary_name(op)),
                move |s, rng| {
                    let x = input(s, rng, &shape, values)?;
                    s.unary(op, &x)
                },
            );
            c.needs_erf = op == UnaryOp::Gelu;
            v.push(c);
        }
    }
    // Dense sweeps where the canonical functions change branches.
    for op in unary {
        let mut c = case(format!("unary/{}/sweep", unary_name(op)), move |s, _| {
            let xs: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) * 0.01).collect();
            let x = s.upload_f32(&[4001], xs)?;
            s.unary(op, &x)
        });
        c.needs_erf = op == UnaryOp::Gelu;
        v.push(c);
    }
    v.push(case("scale/edge", |s, rng| {
        let x = input(s, rng, &[1001], Edgy(0.3))?;
        s.scale(&x, -1.7e-3)
    }));
    v.push(case("scale/by_inf", |s, rng| {
        let x = input(s, rng, &[64], Edgy(0.3))?;
        s.scale(&x, f32::INFINITY)
    }));

    // ---- binary
    let binary = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ];
    let pairs: [(&str, &[usize], &[usize]); 6] = [
        ("same", &[1001], &[1001]),
        ("row", &[9, 37], &[37]),
        ("outer", &[13, 1], &[1, 29]),
        ("mixed", &[2, 3, 1, 5], &[3, 7, 1]),
        ("scalar", &[], &[6, 11]),
        ("large_rows", &[41, 1000], &[1000]),
    ];
    for op in binary {
        for (class, sa, sb) in pairs {
            v.push(case(
                format!("binary/{op:?}/{class}").to_lowercase(),
                move |s, rng| {
                    let a = input(s, rng, sa, Edgy(0.2))?;
                    let b = input(s, rng, sb, Edgy(0.2))?;
                    s.binary(op, &a, &b)
                },
            ));
        }
        v.push(case(
            format!("binary/{op:?}/signed_zeros").to_lowercase(),
            move |s, _| {
                let z = [0.0f32, -0.0];
                let a: Vec<f32> = (0..16).map(|i| z[i % 2]).collect();
                let b: Vec<f32> = (0..16).map(|i| z[(i / 2) % 2]).collect();
                let (a, b) = (s.upload_f32(&[16], a)?, s.upload_f32(&[16], b)?);
                s.binary(op, &a, &b)
            },
        ));
    }

    // ---- reductions and row-wise ops: rows of lengths around the 32 lanes
    let row_shapes: [(&str, &[usize], Values); 8] = [
        ("n1", &[5, 1], Plain),
        ("n31", &[3, 31], Plain),
        ("n33", &[3, 33], Edgy(0.05)),
        ("n384", &[4, 384], Plain),
        ("flavours_8x33", &[8, 33], Values::Rows),
        ("flavours_8x1000", &[8, 1000], Values::Rows),
        ("n4099_wide", &[2, 4099], Wide),
        ("rank3", &[2, 3, 65], Plain),
    ];
    for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
        for (class, shape, values) in row_shapes {
            v.push(case(
                format!("reduce/{op:?}/{class}").to_lowercase(),
                move |s, rng| {
                    let x = input(s, rng, shape, values)?;
                    s.reduce(op, &x)
                },
            ));
        }
        v.push(case(
            format!("reduce/{op:?}/empty_rows").to_lowercase(),
            move |s, _| {
                let x = s.fill(&[3, 0], 1.0)?;
                s.reduce(op, &x)
            },
        ));
    }
    // Packed sequences (BERT-like heads of 32; one sequence past the CPU's
    // 64-row query block), and edge values with a scale that overflows.
    type AttentionCase = (&'static str, &'static [usize], usize, usize, Values, f32);
    let attention_cases: [AttentionCase; 2] = [
        (
            "packed_12_heads",
            &[15, 9, 70, 1],
            12,
            32,
            Plain,
            0.176_776_7,
        ),
        ("edgy_3_heads", &[5, 33, 2], 3, 7, Edgy(0.05), 3.0e37),
    ];
    for (class, lengths, heads, d, values, scale) in attention_cases {
        v.push(case(format!("attention/{class}"), move |s, rng| {
            let tokens: usize = lengths.iter().sum();
            let q = input(s, rng, &[tokens, heads * d], values)?;
            let k = input(s, rng, &[tokens, heads * d], values)?;
            let val = input(s, rng, &[tokens, heads * (d + 1)], values)?;
            s.attention(&q, &k, &val, lengths, heads, scale)
        }));
    }
    // A decoder's cache as SmolLM2 holds it (9 query heads over 3 key/value
    // heads of 64): a prefill block, then decode rows appended as blocks;
    // queries for the whole prefill, and for one decode step.
    type CausalCase = (&'static str, &'static [usize], usize, Values, f32);
    let causal_cases: [CausalCase; 3] = [
        ("prefill_39_gqa_9_3", &[39], 39, Plain, 0.125),
        ("decode_gqa_9_3", &[39, 1, 1, 1], 1, Plain, 0.125),
        ("edgy_tail_gqa_9_3", &[5, 33, 2], 3, Edgy(0.05), 3.0e37),
    ];
    for (class, blocks, t, values, scale) in causal_cases {
        v.push(case(format!("causal_attention/{class}"), move |s, rng| {
            let q = input(s, rng, &[t, 9 * 64], values)?;
            let mut keys = Vec::new();
            let mut vals = Vec::new();
            for &rows in blocks {
                keys.push(input(s, rng, &[rows, 3 * 64], values)?);
                vals.push(input(s, rng, &[rows, 3 * 64], values)?);
            }
            let (keys, vals): (Vec<&Tensor>, Vec<&Tensor>) =
                (keys.iter().collect(), vals.iter().collect());
            s.causal_attention(&q, &keys, &vals, 9, 3, scale)
        }));
    }
    for (class, values) in [("plain_39x576", Plain), ("edgy_39x576", Edgy(0.05))] {
        for pairs in [RopePairs::Adjacent, RopePairs::Halves] {
            let layout = format!("{pairs:?}").to_lowercase();
            v.push(case(format!("rope/{layout}_{class}"), move |s, rng| {
                let x = input(s, rng, &[39, 576], values)?;
                let c = input(s, rng, &[39, 32], values)?;
                let sn = input(s, rng, &[39, 32], values)?;
                s.rope(&x, &c, &sn, 9, pairs)
            }));
        }
        v.push(case(format!("swiglu/{class}"), move |s, rng| {
            let g = input(s, rng, &[39, 576], values)?;
            let u = input(s, rng, &[39, 576], values)?;
            s.swiglu(&g, &u)
        }));
    }
    for (class, shape, values) in row_shapes {
        v.push(case(format!("softmax/{class}"), move |s, rng| {
            let x = input(s, rng, shape, values)?;
            s.softmax(&x)
        }));
        v.push(case(format!("layer_norm/{class}"), move |s, rng| {
            let x = input(s, rng, shape, values)?;
            let n = shape[shape.len() - 1];
            let g = input(s, rng, &[n], Plain)?;
            let b = input(s, rng, &[n], Plain)?;
            s.layer_norm(&x, &g, &b, 1e-12)
        }));
        v.push(case(format!("rms_norm/{class}"), move |s, rng| {
            let x = input(s, rng, shape, values)?;
            let n = shape[shape.len() - 1];
            let g = input(s, rng, &[n], Plain)?;
            s.rms_norm(&x, &g, 1e-6)
        }));
        v.push(case(format!("l2_normalize/{class}"), move |s, rng| {
            let x = input(s, rng, shape, values)?;
            s.l2_normalize(&x, 1e-12)
        }));
        v.push(case(format!("argmax/{class}"), move |s, rng| {
            // Quantised values make ties common.
            let data: Vec<f32> = draw(rng, shape.iter().product(), values)
                .iter()
                .map(|x| (x * 4.0).round())
                .collect();
            let x = s.upload_f32(shape, data)?;
            s.argmax(&x)
        }));
    }
    v.push(case("softmax/attention_masked_12x128x128", |s, rng| {
        // Scores with the last 40 keys masked by -inf, as a padded batch has.
        let mut data = draw(rng, 12 * 128 * 128, Values::Plain);
        for (i, x) in data.iter_mut().enumerate() {
            if i % 128 >= 88 {
                *x = f32::NEG_INFINITY;
            }
        }
        let x = s.upload_f32(&[12, 128, 128], data)?;
        s.softmax(&x)
    }));
    v.push(case("layer_norm/constant_rows", |s, _| {
        let x = s.fill(&[3, 50], 2.5)?;
        let g = s.fill(&[50], 1.0)?;
        let b = s.fill(&[50], -0.0)?;
        s.layer_norm(&x, &g, &b, 0.0)
    }));
    v.push(case("l2_normalize/zero_rows", |s, _| {
        let x = s.fill(&[2, 40], 0.0)?;
        s.l2_normalize(&x, 1e-12)
    }));

    // ---- masked mean-pool
    for (class, b, sq, d, values) in [
        ("tiny", 1, 1, 1, Plain),
        ("odd", 3, 9, 17, Edgy(0.05)),
        ("bert", 4, 128, 384, Plain),
    ] {
        v.push(case(format!("masked_mean_pool/{class}"), move |s, rng| {
            let x = input(s, rng, &[b, sq, d], values)?;
            let lens: Vec<u64> = (0..b).map(|_| 1 + rng.below(sq as u64)).collect();
            let mask: Vec<f32> = (0..b * sq)
                .map(|i| {
                    if ((i % sq) as u64) < lens[i / sq] {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let m = s.upload_f32(&[b, sq], mask)?;
            s.masked_mean_pool(&x, &m)
        }));
    }
    v.push(case("masked_mean_pool/all_masked_and_weights", |s, rng| {
        let x = input(s, rng, &[3, 5, 7], Edgy(0.1))?;
        let mask = vec![
            0.0, 0.0, 0.0, 0.0, 0.0, // all masked
            0.5, 2.0, 0.0, -0.0, 1.0, // weights other than 1
            1.0, 1.0, 1.0, 1.0, 1.0,
        ];
        let m = s.upload_f32(&[3, 5], mask)?;
        s.masked_mean_pool(&x, &m)
    }));

    // ---- layout
    v.push(case("permute/rank4", |s, rng| {
        let x = input(s, rng, &[3, 5, 7, 2], Edgy(0.1))?;
        s.permute(&x, &[2, 0, 3, 1])
    }));
    v.push(case("permute/transpose_33x65", |s, rng| {
        let x = input(s, rng, &[33, 65], Plain)?;
        s.permute(&x, &[1, 0])
    }));
    v.push(case("permute/heads_2x128x12x64", |s, rng| {
        let x = input(s, rng, &[2, 128, 12, 64], Plain)?;
        s.permute(&x, &[0, 2, 1, 3])
    }));
    v.push(case("slice/middle_axis", |s, rng| {
        let x = input(s, rng, &[4, 9, 5], Edgy(0.1))?;
        s.slice(&x, 1, 2, 7)
    }));
    v.push(case("slice/empty", |s, rng| {
        let x = input(s, rng, &[4, 9, 5], Plain)?;
        s.slice(&x, 2, 3, 3)
    }));
    v.push(case("concat/axis0", |s, rng| {
        let a = input(s, rng, &[2, 7], Plain)?;
        let b = input(s, rng, &[5, 7], Edgy(0.2))?;
        s.concat(&[&a, &b, &a], 0)
    }));
    v.push(case("concat/last_axis", |s, rng| {
        let a = input(s, rng, &[3, 4, 2], Plain)?;
        let b = input(s, rng, &[3, 4, 9], Plain)?;
        s.concat(&[&a, &b], 2)
    }));
    v.push(case("concat/i32", |s, rng| {
        let a = s.upload_i32(&[2, 3], (0..6).map(|_| rng.next_u64() as i32).collect())?;
        s.concat(&[&a, &a], 1)
    }));
    v.push(case("gather/embeddings", |s, rng| {
        let table = input(s, rng, &[50, 17], Edgy(0.1))?;
        let ids = (0..33).map(|_| rng.below(50) as i32).collect();
        let ids = s.upload_i32(&[3, 11], ids)?;
        s.gather(&table, &ids)
    }));
    v.push(case("gather/i32_table", |s, rng| {
        let table = s.upload_i32(&[6, 3], (0..18).map(|i| i * 7 - 40).collect())?;
        let ids = (0..5).map(|_| rng.below(6) as i32).collect();
        let ids = s.upload_i32(&[5], ids)?;
        s.gather(&table, &ids)
    }));
    v.push(case("cast/f32_to_i32", |s, rng| {
        let mut data = draw(rng, 500, Edgy(0.3));
        data.extend([
            2147483520.0,
            2147483648.0,
            -2147483648.0,
            -2147483904.0,
            0.99,
            -0.99,
        ]);
        let x = s.upload_f32(&[506], data)?;
        s.cast(&x, DType::I32)
    }));
    v.push(case("cast/i32_to_f32", |s, rng| {
        let data: Vec<i32> = (0..300).map(|_| rng.next_u64() as i32).collect();
        let x = s.upload_i32(&[300], data)?;
        s.cast(&x, DType::F32)
    }));

    // ---- conv2d
    let conv = |name, x, o, kernel, stride, padding, bias, values| Conv {
        name,
        x,
        o,
        kernel,
        stride,
        padding,
        bias,
        values,
    };
    let convs = [
        conv(
            "3x3_pad1_bias",
            [2, 3, 9, 7],
            4,
            (3, 3),
            (1, 1),
            (1, 1),
            true,
            Plain,
        ),
        conv(
            "5x3_stride2x3",
            [1, 2, 11, 13],
            5,
            (5, 3),
            (2, 3),
            (2, 1),
            true,
            Plain,
        ),
        conv(
            "1x1_33out",
            [3, 4, 6, 6],
            33,
            (1, 1),
            (1, 1),
            (0, 0),
            true,
            Plain,
        ),
        conv(
            "3x3_stride2_nobias",
            [1, 16, 15, 15],
            8,
            (3, 3),
            (2, 2),
            (1, 1),
            false,
            Plain,
        ),
        conv(
            "edge_values",
            [1, 3, 8, 8],
            2,
            (3, 3),
            (1, 1),
            (1, 1),
            true,
            Edgy(0.1),
        ),
        conv(
            "cnn_32x32x16to32",
            [2, 16, 32, 32],
            32,
            (3, 3),
            (1, 1),
            (1, 1),
            true,
            Plain,
        ),
    ];
    for c in convs {
        v.push(case(format!("conv2d/{}", c.name), move |s, rng| {
            let x = input(s, rng, &c.x, c.values)?;
            let wt = input(s, rng, &[c.o, c.x[1], c.kernel.0, c.kernel.1], c.values)?;
            let b = input(s, rng, &[c.o], Plain)?;
            s.conv2d(&x, &wt, c.bias.then_some(&b), c.stride, c.padding)
        }));
    }
    for (name, shape, kernel, stride, padding) in [
        ("3x3_s2_p1", [2, 3, 9, 7], (3, 3), (2, 2), (1, 1)),
        ("2x2_s2", [1, 4, 8, 8], (2, 2), (2, 2), (0, 0)),
        ("3x1_s1_p1x0", [1, 2, 5, 6], (3, 1), (1, 1), (1, 0)),
    ] {
        v.push(case(format!("max_pool2d/{name}"), move |s, rng| {
            let x = input(s, rng, &shape, Edgy(0.15))?;
            s.max_pool2d(&x, kernel, stride, padding)
        }));
    }

    // ---- creation
    v.push(case("from_encoded/f16_all_values", |s, _| {
        let bytes: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
        s.from_encoded(&[65536], SourceEncoding::F16, &bytes)
    }));
    v.push(case("from_encoded/bf16_random", |s, rng| {
        let bytes: Vec<u8> = (0..10000)
            .flat_map(|_| (rng.next_u64() as u16).to_le_bytes())
            .collect();
        s.from_encoded(&[100, 100], SourceEncoding::Bf16, &bytes)
    }));
    v.push(case("from_encoded/f32_payload_nans", |s, rng| {
        let bytes: Vec<u8> = (0..257)
            .flat_map(|_| (0x7f80_0001u32 | rng.next_u64() as u32).to_le_bytes())
            .collect();
        s.from_encoded(&[257], SourceEncoding::F32, &bytes)
    }));
    v.push(case("from_encoded/i64", |s, rng| {
        let bytes: Vec<u8> = (0..99)
            .flat_map(|_| i64::from(rng.next_u64() as i32).to_le_bytes())
            .collect();
        s.from_encoded(&[99], SourceEncoding::I64, &bytes)
    }));
    for (name, enc) in [
        ("q4_0", SourceEncoding::Q4_0),
        ("q4_1", SourceEncoding::Q4_1),
        ("q8_0", SourceEncoding::Q8_0),
    ] {
        // Random blocks: scales of every kind (subnormal, infinite, NaN) among them.
        v.push(case(
            format!("from_encoded/{name}_random"),
            move |s, rng| {
                let len = enc.encoded_len(4 * 96).expect("whole blocks");
                let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                s.from_encoded(&[4, 96], enc, &bytes)
            },
        ));
    }
    // ---- matrices kept as blocks: products (the fused decode-step kernel
    // and the GEMM engine on decoded panels) and gather, on SmolLM2's shapes.
    for (name, enc) in [
        ("q4_0", SourceEncoding::Q4_0),
        ("q4_1", SourceEncoding::Q4_1),
        ("q8_0", SourceEncoding::Q8_0),
    ] {
        for (shape_name, m, k, n) in [
            ("decode_1x576x1536", 1, 576, 1536),
            ("prefill_38x576x200", 38, 576, 200),
        ] {
            v.push(case(
                format!("blocks_matmul/{name}_{shape_name}"),
                move |s, rng| {
                    let bytes = ordinary_blocks(rng, enc, n, k);
                    let w = s.blocks_from_encoded(&[n, k], enc, &bytes, None)?;
                    let x = input(s, rng, &[m, k], Plain)?;
                    s.matmul(&x, &w, false, true)
                },
            ));
        }
        v.push(case(
            format!("blocks_linear/{name}_gelu_7x96x33"),
            move |s, rng| {
                let bytes = ordinary_blocks(rng, enc, 33, 96);
                let w = s.blocks_from_encoded(&[33, 96], enc, &bytes, None)?;
                let x = input(s, rng, &[7, 96], Edgy(0.05))?;
                let b = input(s, rng, &[33], Plain)?;
                s.linear(&x, &w, &b, true, Some(UnaryOp::Gelu))
            },
        ));
        v.push(case(
            format!("blocks_gather/{name}_random"),
            move |s, rng| {
                let len = enc.encoded_len(40 * 64).expect("whole blocks");
                let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                let w = s.blocks_from_encoded(&[40, 64], enc, &bytes, None)?;
                let ids: Vec<i32> = (0..9).map(|_| rng.below(40) as i32).collect();
                let ids = s.upload_i32(&[9], ids)?;
                s.gather(&w, &ids)
            },
        ));
    }
    v.push(case("fill/nan_is_canonical", |s, _| {
        s.fill(&[3, 3], f32::from_bits(0xffc0_1234))
    }));
    v.push(case("fill/negative_zero", |s, _| s.fill(&[5], -0.0)));
    v
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/conformance.txt")
}

const HEADER: &str = "\
# Golden blake3 hashes of the conformance suite (host-gpu/tests/all/conformance.rs):
# blake3(dtype, shape, little-endian bytes) of each case's output. Every
# backend must produce exactly these. Regenerate only on purpose:
#   ASSAY_REGENERATE_GOLDEN=1 cargo test --release -p assay-host-gpu --test all conformance::
";

fn read_golden() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(golden_path()).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (name, hash) = l.split_once(' ')?;
            Some((name.to_string(), hash.trim().to_string()))
        })
        .collect()
}

/// Runs every case on `device` and returns name → hash (or the error text).
fn run_all(device: &Device, cases: &[Case], skip_erf: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for c in cases {
        if c.needs_erf && skip_erf {
            continue;
        }
        let mut s = session(device);
        let mut rng = Rng::for_name(&c.name);
        let hash = match (c.run)(&mut s, &mut rng) {
            Ok(t) => tensor_hash(&s, &t),
            Err(e) => format!("error:{e}"),
        };
        out.insert(c.name.clone(), hash);
    }
    out
}

/// The reference device regeneration takes its hashes from.
const REFERENCE: &str = "cpu/scalar/1t";

/// True when `math::erf` is missing and the gelu cases are skipped.
fn skip_erf() -> bool {
    let skip = !crate::common::erf_is_ready();
    if skip {
        eprintln!("NOTE: math::erf is not implemented yet; the gelu cases are skipped");
    }
    skip
}

/// The goldens to compare with: the file, or under `ASSAY_REGENERATE_GOLDEN=1`
/// the reference device's hashes, written to the file once per run (the
/// per-backend tests run in parallel and share this).
fn golden() -> &'static BTreeMap<String, String> {
    static GOLDEN: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    GOLDEN.get_or_init(|| {
        if std::env::var("ASSAY_REGENERATE_GOLDEN").as_deref() != Ok("1") {
            return read_golden();
        }
        let cases = cases();
        let names: BTreeSet<String> = cases.iter().map(|c| c.name.clone()).collect();
        let reference =
            Device::cpu_with(Some(1), CpuSimd::Scalar).expect("the scalar path runs everywhere");
        let hashes = run_all(&reference, &cases, skip_erf());
        let mut text = String::from(HEADER);
        text.push_str(&format!("# generated on {REFERENCE}\n"));
        let mut all = read_golden();
        // A skipped (erf) case keeps its old golden rather than losing it.
        all.retain(|k, _| names.contains(k) && !hashes.contains_key(k));
        all.extend(hashes);
        for (case, hash) in &all {
            text.push_str(&format!("{case} {hash}\n"));
        }
        let path = golden_path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create tests/golden");
        }
        std::fs::write(&path, text).expect("write the golden file");
        eprintln!("wrote {} goldens to {}", all.len(), path.display());
        all
    })
}

#[test]
fn case_names_are_unique_and_every_golden_has_a_case() {
    let cases = cases();
    let mut names = BTreeSet::new();
    for c in &cases {
        assert!(
            names.insert(c.name.clone()),
            "duplicate case name {}",
            c.name
        );
    }
    let stale: Vec<String> = golden()
        .keys()
        .filter(|k| !names.contains(*k))
        .map(|stale| format!("{stale}: golden entry for a case that no longer exists"))
        .collect();
    assert!(
        stale.is_empty(),
        "{} conformance failures:\n{}",
        stale.len(),
        stale.join("\n")
    );
}

test_device!(conformance);
fn conformance(device_name: &str, device: &Device) {
    let skip_erf = skip_erf();
    let cases = cases();
    let golden = golden();
    let hashes = run_all(device, &cases, skip_erf);
    let mut failures = Vec::new();
    for (case, hash) in &hashes {
        if let Some(e) = hash.strip_prefix("error:") {
            failures.push(format!("{case}: the op failed: {e}"));
        }
    }
    for (case, hash) in &hashes {
        match golden.get(case) {
            None => failures.push(format!(
                "{case}: no golden hash (run the regenerate command in tests/all/conformance.rs)"
            )),
            Some(want) if want != hash => failures.push(format!(
                "{case}: {device_name} gives {hash}, golden is {want}"
            )),
            Some(_) => {}
        }
    }
    eprintln!(
        "conformance: {} cases on {device_name} = {} checks",
        cases.len(),
        hashes.len()
    );
    assert!(
        failures.is_empty(),
        "{} conformance failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
