//! Batch invariance on attention-shaped inputs: a row's result does not
//! depend on the other rows of the batch, on where the row sits (tile
//! boundaries), or on masked padding. Batching requests together must not
//! change anyone's output hash.

use crate::common::{Rng, session};
use assay_host_gpu::{BinaryOp, Device, Session, Tensor};

fn up(s: &mut Session, shape: &[usize], data: Vec<f32>) -> Tensor {
    s.upload_f32(shape, data).expect("upload")
}

/// Runs an op on session `s` and reads its output back as bits.
macro_rules! bits {
    ($s:ident . $($call:tt)*) => {{
        let t = $s.$($call)*.expect("op failed");
        $s.read_f32(&t)
            .expect("read")
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<u32>>()
    }};
}

test_device!(matmul_rows_do_not_depend_on_the_batch);
fn matmul_rows_do_not_depend_on_the_batch(name: &str, device: &Device) {
    let (b, sq, d, n) = (6, 37, 96, 160);
    let mut rng = Rng::new(11);
    let x = rng.uniform(b * sq * d, -1.0, 1.0);
    let w = rng.uniform(d * n, -0.1, 0.1);
    let mut s = session(device);
    let xt = up(&mut s, &[b, sq, d], x.clone());
    let wt = up(&mut s, &[d, n], w.clone());
    let full = bits!(s.matmul(&xt, &wt, false, false));
    // Each sequence alone, and odd row windows that start mid-tile.
    for (start, rows) in [(0, sq), (sq, sq), (3, 1), (5, 17), (b * sq - 11, 11)] {
        let part = up(
            &mut s,
            &[rows, d],
            x[start * d..(start + rows) * d].to_vec(),
        );
        let got = bits!(s.matmul(&part, &wt, false, false));
        assert_eq!(
            got,
            full[start * n..(start + rows) * n],
            "{name}: rows {start}..{} differ when computed alone",
            start + rows
        );
    }
    // The transposed weight layout (nn.Linear's [out, in]) gives the same bits.
    let wt_t = s.permute(&wt, &[1, 0]).expect("transpose");
    let via_t = bits!(s.matmul(&xt, &wt_t, false, true));
    assert_eq!(via_t, full, "{name}: transpose_b changed the bits");
}

test_device!(attention_scores_ignore_other_sequences_and_padding_keys);
fn attention_scores_ignore_other_sequences_and_padding_keys(name: &str, device: &Device) {
    let (b, h, sq, dh, pad) = (3, 4, 29, 16, 7);
    let mut rng = Rng::new(12);
    let q = rng.uniform(b * h * sq * dh, -1.0, 1.0);
    let k = rng.uniform(b * h * sq * dh, -1.0, 1.0);
    let mut s = session(device);
    let qt = up(&mut s, &[b, h, sq, dh], q.clone());
    let kt = up(&mut s, &[b, h, sq, dh], k.clone());
    let scores = bits!(s.matmul(&qt, &kt, false, true));
    // One sequence alone.
    let one = |v: &Vec<f32>| v[h * sq * dh..2 * h * sq * dh].to_vec();
    let q1 = up(&mut s, &[1, h, sq, dh], one(&q));
    let k1 = up(&mut s, &[1, h, sq, dh], one(&k));
    let alone = bits!(s.matmul(&q1, &k1, false, true));
    assert_eq!(
        alone,
        scores[h * sq * sq..2 * h * sq * sq],
        "{name}: sequence 1 alone"
    );
    // The same sequence with `pad` garbage keys appended.
    let mut kp = Vec::new();
    for head in 0..h {
        kp.extend_from_slice(&one(&k)[head * sq * dh..(head + 1) * sq * dh]);
        kp.extend(rng.edgy(pad * dh, 0.0));
    }
    let kpt = up(&mut s, &[1, h, sq + pad, dh], kp);
    let padded = bits!(s.matmul(&q1, &kpt, false, true));
    for row in 0..h * sq {
        assert_eq!(
            padded[row * (sq + pad)..row * (sq + pad) + sq],
            alone[row * sq..(row + 1) * sq],
            "{name}: padding keys changed row {row}"
        );
    }
}

test_device!(softmax_ignores_masked_padding_and_other_rows);
fn softmax_ignores_masked_padding_and_other_rows(name: &str, device: &Device) {
    let (rows, len, pad) = (12, 45, 19);
    let mut rng = Rng::new(13);
    let x = rng.uniform(rows * len, -8.0, 8.0);
    let mut s = session(device);
    let xt = up(&mut s, &[rows, len], x.clone());
    let plain = bits!(s.softmax(&xt));
    let one = up(&mut s, &[1, len], x[5 * len..6 * len].to_vec());
    assert_eq!(
        bits!(s.softmax(&one)),
        plain[5 * len..6 * len],
        "{name}: a row alone"
    );
    // Padding masked with -inf, and with BERT's additive -10000 on garbage scores.
    for mask_value in [f32::NEG_INFINITY, -10000.0] {
        let mut padded = Vec::new();
        let mut mask = Vec::new();
        for r in 0..rows {
            padded.extend_from_slice(&x[r * len..(r + 1) * len]);
            padded.extend(rng.uniform(pad, -8.0, 8.0));
            mask.extend(std::iter::repeat_n(0.0, len));
            mask.extend(std::iter::repeat_n(mask_value, pad));
        }
        let pt = up(&mut s, &[rows, len + pad], padded);
        let mt = up(&mut s, &[rows, len + pad], mask);
        let masked = s.binary(BinaryOp::Add, &pt, &mt).expect("mask");
        let got = bits!(s.softmax(&masked));
        for r in 0..rows {
            let w = len + pad;
            assert_eq!(
                got[r * w..r * w + len],
                plain[r * len..(r + 1) * len],
                "{name}: padding masked with {mask_value} changed row {r}"
            );
            assert!(got[r * w + len..(r + 1) * w].iter().all(|&b| b == 0));
        }
    }
}

test_device!(layer_norm_rows_do_not_depend_on_the_batch);
fn layer_norm_rows_do_not_depend_on_the_batch(name: &str, device: &Device) {
    let (rows, d) = (50, 384);
    let mut rng = Rng::new(14);
    let x = rng.uniform(rows * d, -3.0, 3.0);
    let g = rng.uniform(d, 0.5, 1.5);
    let beta = rng.uniform(d, -0.5, 0.5);
    let mut s = session(device);
    let (gt, bt) = (up(&mut s, &[d], g.clone()), up(&mut s, &[d], beta.clone()));
    let xt = up(&mut s, &[5, 10, d], x.clone());
    let full = bits!(s.layer_norm(&xt, &gt, &bt, 1e-12));
    for r in [0, 7, 49] {
        let one = up(&mut s, &[d], x[r * d..(r + 1) * d].to_vec());
        let got = bits!(s.layer_norm(&one, &gt, &bt, 1e-12));
        assert_eq!(got, full[r * d..(r + 1) * d], "{name}: row {r} alone");
    }
}

test_device!(masked_mean_pool_ignores_padding_whatever_it_holds);
fn masked_mean_pool_ignores_padding_whatever_it_holds(name: &str, device: &Device) {
    let (b, len, pad, d) = (4, 21, 11, 384);
    let mut rng = Rng::new(15);
    let x = rng.uniform(b * len * d, -2.0, 2.0);
    let mut s = session(device);
    let xt = up(&mut s, &[b, len, d], x.clone());
    let ones = up(&mut s, &[b, len], vec![1.0; b * len]);
    let plain = bits!(s.masked_mean_pool(&xt, &ones));
    // Right-padded with NaN, ±inf and huge garbage under mask 0.
    let mut padded = Vec::new();
    let mut mask = Vec::new();
    for bi in 0..b {
        padded.extend_from_slice(&x[bi * len * d..(bi + 1) * len * d]);
        padded.extend((0..pad * d).map(|i| match i % 4 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            _ => 3.0e38,
        }));
        mask.extend(std::iter::repeat_n(1.0, len));
        mask.extend(std::iter::repeat_n(0.0, pad));
    }
    let pt = up(&mut s, &[b, len + pad, d], padded);
    let mt = up(&mut s, &[b, len + pad], mask);
    let got = bits!(s.masked_mean_pool(&pt, &mt));
    assert_eq!(got, plain, "{name}: padding changed the pooled embeddings");
    // One sequence alone.
    let one = up(&mut s, &[1, len, d], x[2 * len * d..3 * len * d].to_vec());
    let m1 = up(&mut s, &[1, len], vec![1.0; len]);
    let alone = bits!(s.masked_mean_pool(&one, &m1));
    assert_eq!(alone, plain[2 * d..3 * d], "{name}: sequence 2 alone");
}
