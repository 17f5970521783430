//! Element-wise ops: `unary` (the canonical functions), `binary` (numpy
//! broadcasting), `scale` and `cast`. Owns the broadcast rule and the
//! per-element FLOPs of every unary function ([`unary_flops`],
//! [`TRANSCENDENTAL_FLOPS`]), which `linear`, `softmax` and `attention`
//! also charge by.

use crate::dtype::DType;
use crate::error::Error;
use crate::op::{BinaryOp, Op, UnaryOp};
use crate::session::{Session, product};
use crate::tensor::Tensor;

impl Session {
    /// An element-wise function (f32 only).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor; quota and budget errors as usual.
    pub fn unary(&mut self, op: UnaryOp, x: &Tensor) -> Result<Tensor, Error> {
        let what = unary_name(op);
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let flops = x.numel() as u128 * unary_flops(op) as u128;
        self.op(
            what,
            Op::Unary(op),
            &[x],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }

    /// An element-wise function of two f32 tensors with numpy broadcasting.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 operand;
    /// [`Error::ShapeMismatch`] if the shapes do not broadcast; quota and
    /// budget errors as usual.
    pub fn binary(&mut self, op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor, Error> {
        let what = binary_name(op);
        self.check_inputs(
            what,
            &[("a", a, Some(DType::F32)), ("b", b, Some(DType::F32))],
        )?;
        let out_shape = broadcast_shapes(what, &a.shape, &b.shape)?;
        let flops = product(out_shape.iter().copied());
        self.op(what, Op::Binary(op), &[a, b], out_shape, DType::F32, flops)
    }

    /// x · factor.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor; quota and budget errors as usual.
    pub fn scale(&mut self, x: &Tensor, factor: f32) -> Result<Tensor, Error> {
        let what = "scale";
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let flops = x.numel() as u128;
        self.op(
            what,
            Op::Scale { factor },
            &[x],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }

    /// The SwiGLU gate: `silu(gate) · up` element by element, where
    /// `silu(g) = g · sigmoid(g)` with `sigmoid` the unary op's (SEMANTICS.md,
    /// `swiglu`): the activation between a Llama-style FFN's gate and up
    /// projections and its down projection, in one pass.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 operand;
    /// [`Error::ShapeMismatch`] unless both have the same shape (no
    /// broadcasting); quota and budget errors as usual.
    ///
    /// # Example
    ///
    /// ```
    /// # use assay_host_gpu::{Device, Session, SessionLimits};
    /// let mut s = Session::new(Device::cpu(), SessionLimits::default());
    /// let gate = s.upload_f32(&[2], vec![0.0, 20.0])?;
    /// let up = s.upload_f32(&[2], vec![5.0, 2.0])?;
    /// let y = s.swiglu(&gate, &up)?;
    /// let y = s.read_f32(&y)?;
    /// assert_eq!(y[0], 0.0);
    /// assert!((y[1] - 40.0).abs() < 1e-4);
    /// # Ok::<(), assay_host_gpu::Error>(())
    /// ```
    pub fn swiglu(&mut self, gate: &Tensor, up: &Tensor) -> Result<Tensor, Error> {
        let what = "swiglu";
        self.check_inputs(
            what,
            &[
                ("gate", gate, Some(DType::F32)),
                ("up", up, Some(DType::F32)),
            ],
        )?;
        if gate.shape != up.shape {
            return Err(Error::ShapeMismatch(format!(
                "{what}: gate {:?} and up {:?} must have the same shape",
                gate.shape, up.shape
            )));
        }
        let flops = gate.numel() as u128 * SWIGLU_FLOPS as u128;
        self.op(
            what,
            Op::Swiglu,
            &[gate, up],
            gate.shape.to_vec(),
            DType::F32,
            flops,
        )
    }

    /// Converts between dtypes: f32 → i32 truncates toward zero and
    /// saturates (NaN → 0); i32 → f32 rounds to nearest even.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a tensor of another session; quota and
    /// budget errors as usual.
    pub fn cast(&mut self, x: &Tensor, to: DType) -> Result<Tensor, Error> {
        let what = "cast";
        self.check_inputs(what, &[("x", x, None)])?;
        let flops = if x.dtype == to { 0 } else { x.numel() as u128 };
        self.op(what, Op::Cast { to }, &[x], x.shape.to_vec(), to, flops)
    }
}

/// FLOPs charged for one evaluation of a canonical function (`exp`, `log`,
/// `tanh`, `erf`): a fixed number, so work depends on shapes alone.
pub const TRANSCENDENTAL_FLOPS: u64 = 16;

/// FLOPs per element of `swiglu`: the sigmoid, `g · σ`, `· up`.
pub const SWIGLU_FLOPS: u64 = TRANSCENDENTAL_FLOPS + 3 + 2;

/// FLOPs per element of a unary op (see SEMANTICS.md).
pub fn unary_flops(op: UnaryOp) -> u64 {
    match op {
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Sqrt => 1,
        UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh => TRANSCENDENTAL_FLOPS,
        // -x, exp, 1 + e, 1 / d
        UnaryOp::Sigmoid => TRANSCENDENTAL_FLOPS + 3,
        // x · (1/√2), erf, 0.5 · x, 1 + e, h · t
        UnaryOp::Gelu => TRANSCENDENTAL_FLOPS + 4,
    }
}

/// The numpy broadcast of two shapes.
pub(crate) fn broadcast_shapes(what: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>, Error> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < a.len() { a[a.len() - 1 - i] } else { 1 };
        let db = if i < b.len() { b[b.len() - 1 - i] } else { 1 };
        out[rank - 1 - i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            (x, y) => {
                return Err(Error::ShapeMismatch(format!(
                    "{what}: shapes {a:?} and {b:?} do not broadcast: dimension -{} is {x} vs {y}; each pair must be equal or one of them 1",
                    i + 1
                )));
            }
        };
    }
    Ok(out)
}

pub(crate) fn unary_name(op: UnaryOp) -> &'static str {
    match op {
        UnaryOp::Neg => "neg",
        UnaryOp::Abs => "abs",
        UnaryOp::Relu => "relu",
        UnaryOp::Gelu => "gelu",
        UnaryOp::Tanh => "tanh",
        UnaryOp::Sigmoid => "sigmoid",
        UnaryOp::Exp => "exp",
        UnaryOp::Log => "log",
        UnaryOp::Sqrt => "sqrt",
    }
}

pub(crate) fn binary_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Max => "max",
        BinaryOp::Min => "min",
    }
}
