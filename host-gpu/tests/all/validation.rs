//! The session refuses what it must, with the right error, before anything
//! is charged or allocated: hostile shapes, wrong dtypes, budgets, quotas.

use assay_host_gpu::{
    BinaryOp, DType, Device, Error, ReduceOp, Session, SessionLimits, SourceEncoding, Tensor,
    UnaryOp, Work,
};

fn session() -> Session {
    Session::new(Device::cpu_with_threads(1), SessionLimits::default())
}

fn limited(memory_quota: u64, work_budget: u64) -> Session {
    Session::new(
        Device::cpu_with_threads(1),
        SessionLimits {
            memory_quota,
            work_budget,
            max_rank: 8,
        },
    )
}

fn f32s(s: &mut Session, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    s.upload_f32(shape, (0..n).map(|i| i as f32 * 0.25).collect())
        .expect("upload")
}

fn i32s(s: &mut Session, shape: &[usize], values: Vec<i32>) -> Tensor {
    s.upload_i32(shape, values).expect("upload")
}

/// Asserts `r` is the error `kind` and its text contains every one of `words`.
#[track_caller]
fn expect_err<T: std::fmt::Debug>(r: Result<T, Error>, kind: fn(&Error) -> bool, words: &[&str]) {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            assert!(kind(&e), "wrong error kind: {e:?}");
            let text = e.to_string();
            for w in words {
                assert!(text.contains(w), "error {text:?} does not mention {w:?}");
            }
        }
    }
}

fn shape_mismatch(e: &Error) -> bool {
    matches!(e, Error::ShapeMismatch(_))
}
fn invalid(e: &Error) -> bool {
    matches!(e, Error::InvalidArgument(_))
}
fn quota(e: &Error) -> bool {
    matches!(e, Error::QuotaExceeded(_))
}
fn budget(e: &Error) -> bool {
    matches!(e, Error::WorkBudgetExhausted(_))
}

#[test]
fn matmul_names_both_inner_dimensions() {
    let mut s = session();
    let a = f32s(&mut s, &[2, 3]);
    let b = f32s(&mut s, &[4, 5]);
    expect_err(
        s.matmul(&a, &b, false, false),
        shape_mismatch,
        &["matmul: inner dimensions differ: a is [2, 3] (k=3), b is [4, 5] (k=4)"],
    );
    expect_err(
        s.matmul(&a, &b, true, false),
        shape_mismatch,
        &["a is [2, 3] transposed (k=2)", "(k=4)"],
    );
    let v = f32s(&mut s, &[3]);
    expect_err(
        s.matmul(&v, &b, false, false),
        invalid,
        &["rank ≥ 2", "[1, n]"],
    );
    let a3 = f32s(&mut s, &[2, 2, 3]);
    let b3 = f32s(&mut s, &[3, 3, 4]);
    expect_err(
        s.matmul(&a3, &b3, false, false),
        shape_mismatch,
        &["do not broadcast", "batch"],
    );
    let ids = i32s(&mut s, &[2, 3], vec![0; 6]);
    expect_err(
        s.matmul(&ids, &b, false, false),
        invalid,
        &["a must be f32", "i32"],
    );
}

#[test]
fn matmul_meters_two_flops_per_fma() {
    let mut s = session();
    let a = f32s(&mut s, &[4, 2, 3]);
    let b = f32s(&mut s, &[3, 5]);
    let before = s.work();
    let c = s.matmul(&a, &b, false, false).expect("matmul");
    assert_eq!(c.shape(), &[4, 2, 5]);
    let w = s.work();
    assert_eq!(w.flops - before.flops, 2 * 4 * 2 * 5 * 3);
    assert_eq!(w.bytes - before.bytes, 4 * (24 + 15 + 40));
}

#[test]
fn elementwise_and_reduction_errors() {
    let mut s = session();
    let a = f32s(&mut s, &[2, 3]);
    let b = f32s(&mut s, &[4]);
    expect_err(
        s.binary(BinaryOp::Add, &a, &b),
        shape_mismatch,
        &["add", "[2, 3]", "[4]", "broadcast"],
    );
    let ids = i32s(&mut s, &[3], vec![1, 2, 3]);
    expect_err(
        s.unary(UnaryOp::Relu, &ids),
        invalid,
        &["relu", "must be f32", "cast"],
    );
    let scalar = f32s(&mut s, &[]);
    expect_err(s.reduce(ReduceOp::Sum, &scalar), invalid, &["scalar"]);
    expect_err(s.softmax(&scalar), invalid, &["softmax"]);
    let empty = f32s(&mut s, &[3, 0]);
    expect_err(s.argmax(&empty), invalid, &["argmax", "1 to 2^31"]);
    // Empty rows are fine where an answer exists.
    let sums = s.reduce(ReduceOp::Sum, &empty).expect("sum of empty rows");
    assert_eq!(s.read_f32(&sums).expect("read"), vec![0.0; 3]);
}

#[test]
fn norm_parameters_are_checked() {
    let mut s = session();
    let x = f32s(&mut s, &[2, 4]);
    let g = f32s(&mut s, &[4]);
    let g5 = f32s(&mut s, &[5]);
    expect_err(
        s.layer_norm(&x, &g5, &g, 1e-5),
        shape_mismatch,
        &["gamma must be [4]", "[5]"],
    );
    expect_err(s.layer_norm(&x, &g, &g5, 1e-5), shape_mismatch, &["beta"]);
    expect_err(s.layer_norm(&x, &g, &g, f32::NAN), invalid, &["eps"]);
    expect_err(s.rms_norm(&x, &g, -1.0), invalid, &["eps", "≥ 0"]);
    expect_err(s.l2_normalize(&x, f32::INFINITY), invalid, &["eps"]);
    s.layer_norm(&x, &g, &g, 1e-5).expect("valid layer norm");
}

#[test]
fn layout_errors() {
    let mut s = session();
    let x = f32s(&mut s, &[2, 3, 4]);
    expect_err(s.permute(&x, &[0, 0, 1]), invalid, &["not a permutation"]);
    expect_err(s.permute(&x, &[0, 1]), invalid, &["not a permutation"]);
    expect_err(s.slice(&x, 3, 0, 1), invalid, &["axis 3 does not exist"]);
    expect_err(s.slice(&x, 1, 2, 4), invalid, &["2..4", "length 3"]);
    expect_err(s.slice(&x, 1, 2, 1), invalid, &["start ≤ end"]);
    let empty = s.slice(&x, 1, 1, 1).expect("empty slice");
    assert_eq!(empty.shape(), &[2, 0, 4]);
    let y = f32s(&mut s, &[2, 5, 3]);
    expect_err(s.concat(&[&x, &y], 1), shape_mismatch, &["xs[1]", "axis 1"]);
    expect_err(s.concat(&[], 0), invalid, &["at least one"]);
    let ids = i32s(&mut s, &[2, 3, 4], vec![0; 24]);
    expect_err(s.concat(&[&x, &ids], 0), invalid, &["dtype"]);
    expect_err(
        s.reshape(&x, &[5, 5]),
        shape_mismatch,
        &["24 elements", "25"],
    );
}

#[test]
fn gather_refuses_out_of_range_indices_before_charging() {
    let mut s = session();
    let table = f32s(&mut s, &[5, 3]);
    let ids = i32s(&mut s, &[2, 2], vec![0, 4, 5, 1]);
    let neg = i32s(&mut s, &[1], vec![-1]);
    let before = (s.work(), s.live_bytes());
    expect_err(
        s.gather(&table, &ids),
        invalid,
        &["index 5 at position 2", "5 rows"],
    );
    expect_err(s.gather(&table, &neg), invalid, &["index -1"]);
    assert_eq!(
        (s.work(), s.live_bytes()),
        before,
        "a refused gather is not charged"
    );
    let fids = f32s(&mut s, &[2]);
    expect_err(s.gather(&table, &fids), invalid, &["indices must be i32"]);
    let ok = i32s(&mut s, &[3], vec![4, 0, 4]);
    let out = s.gather(&table, &ok).expect("gather");
    assert_eq!(out.shape(), &[3, 3]);
}

#[test]
fn conv_and_pool_errors() {
    let mut s = session();
    let x = f32s(&mut s, &[1, 3, 5, 5]);
    let w = f32s(&mut s, &[2, 4, 3, 3]);
    expect_err(
        s.conv2d(&x, &w, None, (1, 1), (0, 0)),
        shape_mismatch,
        &["3 channels", "expects 4"],
    );
    let w = f32s(&mut s, &[2, 3, 7, 3]);
    expect_err(
        s.conv2d(&x, &w, None, (1, 1), (0, 0)),
        shape_mismatch,
        &["larger than the padded input"],
    );
    let out = s
        .conv2d(&x, &w, None, (1, 1), (1, 0))
        .expect("padding makes it fit");
    assert_eq!(out.shape(), &[1, 2, 1, 3]);
    expect_err(s.conv2d(&x, &w, None, (0, 1), (1, 0)), invalid, &["stride"]);
    let b = f32s(&mut s, &[3]);
    expect_err(
        s.conv2d(&x, &w, Some(&b), (1, 1), (1, 0)),
        shape_mismatch,
        &["bias must be [2]"],
    );
    expect_err(
        s.max_pool2d(&x, (2, 2), (2, 2), (2, 0)),
        invalid,
        &["more than half the kernel"],
    );
    expect_err(
        s.max_pool2d(&x, (0, 2), (2, 2), (0, 0)),
        invalid,
        &["at least 1"],
    );
    let p = s.max_pool2d(&x, (3, 3), (2, 2), (1, 1)).expect("pool");
    assert_eq!(p.shape(), &[1, 3, 3, 3]);
}

#[test]
fn hostile_shapes_are_refused_without_panicking_or_allocating() {
    let mut s = session();
    expect_err(s.fill(&[65536, 65536, 65536], 1.0), quota, &["quota"]);
    expect_err(
        s.fill(&[usize::MAX, 2], 1.0),
        invalid,
        &["more elements than can be addressed"],
    );
    expect_err(s.fill(&[1 << 62], 1.0), invalid, &["addressed"]);
    expect_err(s.fill(&[1; 9], 1.0), invalid, &["rank 9", "limit of 8"]);
    expect_err(
        s.upload_f32(&[1 << 40, 1 << 40], vec![]),
        invalid,
        &["addressed"],
    );
    expect_err(
        s.upload_f32(&[65536, 65536], vec![0.0; 3]),
        shape_mismatch,
        &["3 were given"],
    );
    expect_err(
        s.from_encoded(&[usize::MAX, usize::MAX], SourceEncoding::I64, &[]),
        invalid,
        &["addressed"],
    );
    let x = f32s(&mut s, &[4, 4]);
    expect_err(s.reshape(&x, &[usize::MAX, 2]), invalid, &["addressed"]);
    let img = f32s(&mut s, &[1, 1, 4, 4]);
    expect_err(
        s.max_pool2d(&img, (1, 1), (1, 1), (usize::MAX / 2, 0)),
        invalid,
        &[],
    );
    let w = f32s(&mut s, &[1, 1, 1, 1]);
    // A padding the size of the address space meets the quota before any allocation.
    let r = s.conv2d(&img, &w, None, (1, 1), (1 << 40, 1 << 40));
    assert!(
        matches!(
            r,
            Err(Error::QuotaExceeded(_)) | Err(Error::InvalidArgument(_))
        ),
        "{r:?}"
    );
    // A matmul whose output would be huge is refused by the quota.
    let tall = f32s(&mut s, &[1 << 16, 1]);
    let wide = f32s(&mut s, &[1, 1 << 16]);
    let before = (s.work(), s.live_bytes());
    expect_err(
        s.matmul(&tall, &wide, false, false),
        quota,
        &["17179869184 bytes"],
    );
    assert_eq!(
        (s.work(), s.live_bytes()),
        before,
        "a refused op is not charged"
    );
    let t = s
        .matmul(&wide, &tall, false, false)
        .expect("the inner product is small");
    assert_eq!(t.shape(), &[1, 1]);
}

#[test]
fn zero_size_tensors_with_huge_dimensions_do_not_overflow() {
    // A zero-size tensor may carry huge other dimensions; every product the
    // session and backend form from them must stay checked (run this test
    // in a debug build too: overflow there panics).
    let mut s = session();
    let big = 1usize << 62;
    let z = s.fill(&[0, big, big], 0.0).expect("zero elements");
    let p = s.permute(&z, &[0, 2, 1]).expect("empty permute");
    assert_eq!(p.shape(), &[0, big, big]);
    s.slice(&z, 2, 1, 5).expect("empty slice");
    s.concat(&[&z, &z], 0).expect("empty concat");
    let one = s.fill(&[1], 1.0).expect("one");
    s.binary(BinaryOp::Add, &z, &one).expect("empty add");
    let r = s.reduce(ReduceOp::Sum, &z).expect("empty reduce");
    assert_eq!(r.shape(), &[0, big]);
    s.softmax(&z).expect("empty softmax");
    // matmul: a [2^62, 1, 2, 0] · b [1, 2^62, 0, n]: the batch alone overflows u64.
    let a = s.fill(&[big, 1, 2, 0], 0.0).expect("a");
    let b = s.fill(&[1, big, 0, usize::MAX], 0.0).expect("b");
    expect_err(s.matmul(&a, &b, false, false), invalid, &[]);
    // conv2d over zero channels with a huge image and stride.
    let x = s.fill(&[1, 0, big, big], 0.0).expect("x");
    let w = s.fill(&[2, 0, 3, 3], 0.0).expect("w");
    let bias = s.fill(&[2], 0.5).expect("bias");
    let y = s
        .conv2d(&x, &w, Some(&bias), (big / 4, big / 4), (0, 0))
        .expect("conv");
    assert_eq!(y.shape(), &[1, 2, 4, 4]);
    assert_eq!(s.read_f32(&y).expect("read"), vec![0.5; 32]);
    let e = s.fill(&[0, 3, big, big], 0.0).expect("images");
    let pooled = s
        .max_pool2d(&e, (2, 2), (1, 1), (0, 0))
        .expect("empty pool");
    assert_eq!(pooled.shape()[0], 0);
}

#[test]
fn quota_counts_live_tensors_and_frees_on_drop() {
    let mut s = limited(1000, u64::MAX);
    let a = s.fill(&[100], 0.0).expect("400 bytes");
    let b = s.fill(&[100], 0.0).expect("800 bytes");
    assert_eq!(s.live_bytes(), 800);
    expect_err(
        s.fill(&[51], 0.0),
        quota,
        &["204 bytes", "800 bytes alive", "1000"],
    );
    let view = s.reshape(&a, &[10, 10]).expect("views are free");
    assert_eq!(s.live_bytes(), 800);
    drop(a);
    assert_eq!(s.live_bytes(), 800, "the view keeps the buffer alive");
    drop(view);
    assert_eq!(s.live_bytes(), 400);
    let c = s.fill(&[150], 0.0).expect("fits again");
    assert_eq!(s.live_bytes(), 1000);
    drop((b, c));
    assert_eq!(s.live_bytes(), 0);
    expect_err(s.upload_f32(&[251], vec![0.0; 251]), quota, &["upload_f32"]);
    expect_err(
        s.from_encoded(&[251], SourceEncoding::F16, &[0; 502]),
        quota,
        &["from_encoded"],
    );
}

#[test]
fn work_budget_is_checked_before_launch() {
    let mut s = limited(1 << 20, 10_000);
    let a = f32s(&mut s, &[16, 16]);
    let used = s.work();
    assert_eq!(
        used,
        Work {
            flops: 0,
            bytes: 2 * 1024
        }
    );
    // 2·16³ = 8192 flops + 3 KiB of bytes: over the 10 000 units.
    expect_err(
        s.matmul(&a, &a, false, false),
        budget,
        &["matmul", "11264 work units"],
    );
    assert_eq!(s.work(), used, "a refused op is not charged");
    assert_eq!(s.live_bytes(), 1024);
    let r = s.unary(UnaryOp::Relu, &a).expect("small op fits");
    assert_eq!(s.work().flops, 256);
    assert_eq!(s.work().bytes, 2 * 1024 + 2 * 1024);
    drop(r);
}

#[test]
fn tensors_of_another_session_are_refused() {
    let mut s1 = session();
    let mut s2 = session();
    let a = f32s(&mut s1, &[2, 2]);
    let b = f32s(&mut s2, &[2, 2]);
    expect_err(
        s1.binary(BinaryOp::Add, &a, &b),
        invalid,
        &["b belongs to another session"],
    );
    expect_err(s2.read_f32(&a), invalid, &["another session"]);
}

#[test]
fn encoded_inputs_decode_exactly() {
    let mut s = session();
    // f16: 1.0, -2.0, smallest subnormal, +inf, a NaN with payload, -0.
    let halves: [u16; 6] = [0x3c00, 0xc000, 0x0001, 0x7c00, 0x7e01, 0x8000];
    let bytes: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
    let t = s
        .from_encoded(&[6], SourceEncoding::F16, &bytes)
        .expect("f16");
    let got: Vec<u32> = s
        .read_f32(&t)
        .expect("read")
        .iter()
        .map(|v| v.to_bits())
        .collect();
    let want = [
        1.0f32.to_bits(),
        (-2.0f32).to_bits(),
        2f32.powi(-24).to_bits(),
        f32::INFINITY.to_bits(),
        0x7fc0_0000,
        0x8000_0000,
    ];
    assert_eq!(got, want);
    let bf: Vec<u8> = [0x3f80u16, 0xffc1]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    let t = s
        .from_encoded(&[2], SourceEncoding::Bf16, &bf)
        .expect("bf16");
    let got: Vec<u32> = s
        .read_f32(&t)
        .expect("read")
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(got, [1.0f32.to_bits(), 0x7fc0_0000]);
    let wide: Vec<u8> = [7i64, -3, i64::from(i32::MAX)]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let t = s
        .from_encoded(&[3], SourceEncoding::I64, &wide)
        .expect("i64");
    assert_eq!(t.dtype(), DType::I32);
    assert_eq!(s.read_i32(&t).expect("read"), vec![7, -3, i32::MAX]);
    let before = s.work();
    let bad: Vec<u8> = [1i64, 1 << 31]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    expect_err(
        s.from_encoded(&[2], SourceEncoding::I64, &bad),
        invalid,
        &["element 1", "2147483648"],
    );
    assert_eq!(s.work(), before);
    expect_err(
        s.from_encoded(&[3], SourceEncoding::F32, &[0; 8]),
        shape_mismatch,
        &["needs 12 bytes", "holds 8"],
    );
    let t = s
        .upload_f32(&[1], vec![f32::from_bits(0xffc0_0001)])
        .expect("upload");
    assert_eq!(
        s.read_bytes(&t).expect("bytes"),
        0x7fc0_0000u32.to_le_bytes()
    );
}

#[test]
fn read_checks_the_dtype() {
    let mut s = session();
    let a = f32s(&mut s, &[2]);
    expect_err(s.read_i32(&a), invalid, &["must be i32", "f32"]);
    let c = s.cast(&a, DType::I32).expect("cast");
    assert_eq!(s.read_i32(&c).expect("read"), vec![0, 0]);
}
