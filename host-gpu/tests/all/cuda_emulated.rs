//! The CUDA backend without a GPU: its host logic and its kernels, compiled
//! for the host by the system C++ compiler with a small CUDA emulation
//! prelude (fibers for threads, barriers, warp shuffles), checked bit for bit
//! against the CPU reference on every op. This catches wrong indexing,
//! broadcasting, tiling, reduction order and NaN handling in the kernels
//! long before a GPU is at hand; what it cannot check is NVRTC's code
//! generation (tests/cuda_compile.rs inspects the PTX) and the real driver.
//!
//! The full conformance suite (golden hashes) runs on the emulator with
//! `ASSAY_CUDA_EMULATOR=1`:
//!
//! ```text
//! ASSAY_CUDA_EMULATOR=1 cargo test --release -p assay-host-gpu --features cuda --test all conformance::
//! ```
//!
//! Without the `cuda` feature or a C++ compiler the tests print SKIPPED,
//! unless `ASSAY_REQUIRE_EMULATOR=1`, which makes that a failure.

use crate::common::{Rng, tensor_hash};
use assay_host_gpu::{
    BinaryOp, DType, Device, Error, ReduceOp, Session, SessionLimits, SourceEncoding, Tensor,
    UnaryOp, cuda_build,
};

/// The emulated CUDA device, or None after saying why it cannot run here.
fn emulated() -> Option<Device> {
    let required = std::env::var("ASSAY_REQUIRE_EMULATOR").as_deref() == Ok("1");
    let why = if !cuda_build::enabled() {
        "built without the `cuda` feature (add `--features cuda`)".to_string()
    } else {
        match Device::cuda_emulated() {
            Ok(d) => return Some(d),
            Err(e) => e.to_string(),
        }
    };
    assert!(
        !required,
        "ASSAY_REQUIRE_EMULATOR=1 but the CUDA emulator cannot run: {why}"
    );
    eprintln!("SKIPPED cuda_emulated: {why} (set ASSAY_REQUIRE_EMULATOR=1 to make this a failure)");
    None
}

type Build<'a> = dyn Fn(&mut Session, &mut Rng) -> Result<Tensor, Error> + 'a;

/// Runs `build` on the CPU and on `gpu` from the same seed; the outputs (or
/// errors) must be identical.
fn same(gpu: &Device, name: &str, build: &Build<'_>) {
    let run = |d: &Device| {
        let mut s = Session::new(d.clone(), SessionLimits::default());
        let mut rng = Rng::for_name(name);
        match build(&mut s, &mut rng) {
            Ok(t) => tensor_hash(&s, &t),
            Err(e) => format!("error: {e}"),
        }
    };
    let want = run(&Device::cpu_with_threads(1));
    let got = run(gpu);
    assert_eq!(
        got, want,
        "{name}: the emulated CUDA backend differs from the CPU"
    );
}

fn edgy(s: &mut Session, rng: &mut Rng, shape: &[usize], p: f32) -> Result<Tensor, Error> {
    let n = shape.iter().product();
    s.upload_f32(shape, rng.edgy(n, p))
}

#[test]
fn every_op_matches_the_cpu_bit_for_bit() {
    let Some(gpu) = emulated() else { return };
    eprintln!("cuda_emulated: {}", gpu.info().device);
    // matmul: tile edges, k remainders, both tile sizes, transposes, broadcast batches
    for &(ba, bb, m, k, n) in &[
        (&[][..], &[][..], 1usize, 1usize, 1usize),
        (&[], &[], 3, 0, 5),
        (&[], &[], 17, 33, 9),
        (&[], &[], 65, 13, 70),
        (&[2, 1][..], &[3][..], 5, 9, 7),
        (&[], &[], 130, 20, 260),
        (&[], &[], 300, 17, 400),
    ] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let name = format!("matmul {ba:?}x{bb:?} {m}x{k}x{n} {ta} {tb}");
            same(&gpu, &name, &|s, rng| {
                let sa: Vec<usize> = ba
                    .iter()
                    .copied()
                    .chain(if ta { [k, m] } else { [m, k] })
                    .collect();
                let sb: Vec<usize> = bb
                    .iter()
                    .copied()
                    .chain(if tb { [n, k] } else { [k, n] })
                    .collect();
                let a = edgy(s, rng, &sa, 0.05)?;
                let b = edgy(s, rng, &sb, 0.05)?;
                s.matmul(&a, &b, ta, tb)
            });
        }
    }
    for op in [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Relu,
        UnaryOp::Gelu,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
    ] {
        same(&gpu, &format!("unary {op:?}"), &|s, rng| {
            let x = edgy(s, rng, &[3001], 0.3)?;
            s.unary(op, &x)
        });
    }
    same(&gpu, "scale", &|s, rng| {
        let x = edgy(s, rng, &[999], 0.3)?;
        s.scale(&x, -3.5e-3)
    });
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ] {
        for (sa, sb) in [
            (&[777][..], &[777][..]),
            (&[2, 3, 1, 5], &[3, 7, 1]),
            (&[], &[6, 11]),
            (
                &[2, 1, 2, 1, 2, 1, 2, 1, 2, 1],
                &[1, 2, 1, 2, 1, 2, 1, 2, 1, 2],
            ),
        ] {
            same(&gpu, &format!("binary {op:?} {sa:?} {sb:?}"), &|s, rng| {
                let a = edgy(s, rng, sa, 0.2)?;
                let b = edgy(s, rng, sb, 0.2)?;
                s.binary(op, &a, &b)
            });
        }
    }
    for shape in [
        &[5, 1][..],
        &[3, 31],
        &[3, 33],
        &[2, 1000],
        &[3, 0],
        &[2, 3, 65],
    ] {
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            same(&gpu, &format!("reduce {op:?} {shape:?}"), &|s, rng| {
                let x = edgy(s, rng, shape, 0.05)?;
                s.reduce(op, &x)
            });
        }
        if shape.last() == Some(&0) {
            continue;
        }
        same(&gpu, &format!("softmax {shape:?}"), &|s, rng| {
            let x = edgy(s, rng, shape, 0.05)?;
            s.softmax(&x)
        });
        same(&gpu, &format!("norms {shape:?}"), &|s, rng| {
            let n = shape[shape.len() - 1];
            let x = edgy(s, rng, shape, 0.05)?;
            let g = edgy(s, rng, &[n], 0.0)?;
            let b = edgy(s, rng, &[n], 0.0)?;
            let y = s.layer_norm(&x, &g, &b, 1e-5)?;
            let y = s.rms_norm(&y, &g, 1e-6)?;
            s.l2_normalize(&y, 1e-12)
        });
        same(&gpu, &format!("argmax {shape:?}"), &|s, rng| {
            let n = shape.iter().product();
            let v: Vec<f32> = rng
                .edgy(n, 0.05)
                .iter()
                .map(|x| (x * 2.0).round())
                .collect();
            let x = s.upload_f32(shape, v)?;
            s.argmax(&x)
        });
    }
    same(&gpu, "masked_mean_pool", &|s, rng| {
        let x = edgy(s, rng, &[3, 9, 17], 0.05)?;
        let m: Vec<f32> = (0..27).map(|i| [1.0, 0.0, 0.5, -0.0][i % 4]).collect();
        let m = s.upload_f32(&[3, 9], m)?;
        s.masked_mean_pool(&x, &m)
    });
    same(&gpu, "permute slice concat gather cast", &|s, rng| {
        let x = edgy(s, rng, &[3, 5, 7, 2], 0.1)?;
        let p = s.permute(&x, &[2, 0, 3, 1])?;
        let q = s.slice(&p, 1, 1, 3)?;
        let r = s.concat(&[&q, &q, &q], 2)?;
        let t = s.reshape(&r, &[7 * 2 * 6, 2])?;
        let ids = s.upload_i32(&[4], vec![3, 0, 83, 3])?;
        let g = s.gather(&t, &ids)?;
        let c = s.cast(&g, DType::I32)?;
        s.cast(&c, DType::F32)
    });
    same(&gpu, "permute rank 8", &|s, rng| {
        let x = edgy(s, rng, &[2, 3, 2, 3, 2, 3, 2, 3], 0.0)?;
        s.permute(&x, &[7, 5, 3, 1, 0, 2, 4, 6])
    });
    same(&gpu, "gather out of range", &|s, rng| {
        let t = edgy(s, rng, &[5, 3], 0.0)?;
        let ids = s.upload_i32(&[3], vec![1, 5, -1])?;
        s.gather(&t, &ids)
    });
    for (x, o, kernel, stride, padding, bias) in [
        ([2, 3, 9, 7], 4, (3, 3), (1, 1), (1, 1), true),
        ([1, 2, 11, 13], 5, (5, 3), (2, 3), (2, 1), false),
    ] {
        same(&gpu, &format!("conv2d {x:?}"), &|s, rng| {
            let xt = edgy(s, rng, &x, 0.05)?;
            let w = edgy(s, rng, &[o, x[1], kernel.0, kernel.1], 0.05)?;
            let b = edgy(s, rng, &[o], 0.0)?;
            s.conv2d(&xt, &w, bias.then_some(&b), stride, padding)
        });
        same(&gpu, &format!("max_pool2d {x:?}"), &|s, rng| {
            let xt = edgy(s, rng, &x, 0.1)?;
            s.max_pool2d(&xt, (3, 3), (2, 2), (1, 1))
        });
    }
    for enc in [
        SourceEncoding::F32,
        SourceEncoding::F16,
        SourceEncoding::Bf16,
        SourceEncoding::I32,
        SourceEncoding::I64,
        SourceEncoding::Q4_0,
        SourceEncoding::Q4_1,
        SourceEncoding::Q8_0,
    ] {
        same(&gpu, &format!("from_encoded {enc:?}"), &|s, rng| {
            // Whole blocks for the block encodings: 10 rows of 32.
            let n = if enc.is_blocked() { 320 } else { 301 };
            let len = enc.encoded_len(n).expect("whole blocks");
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    if enc == SourceEncoding::I64 && i % 8 >= 4 {
                        // the high half of an in-range i64 (sign extension)
                        0
                    } else {
                        rng.next_u64() as u8
                    }
                })
                .collect();
            s.from_encoded(&[n], enc, &bytes)
        });
    }
    same(&gpu, "from_encoded i64 out of range", &|s, _| {
        let bytes: Vec<u8> = [1i64, 1 << 40]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        s.from_encoded(&[2], SourceEncoding::I64, &bytes)
    });
    same(&gpu, "fill", &|s, _| {
        s.fill(&[4, 3], f32::from_bits(0xffc0_1234))
    });
}

/// Outputs are fully written: an op over poisoned fresh memory leaves no trace of it.
#[test]
fn backend_info_names_the_emulator() {
    let Some(gpu) = emulated() else { return };
    let info = gpu.info();
    assert_eq!(info.kind, "cuda-emulated");
    assert!(info.device.contains("emulated"), "{}", info.device);
}
