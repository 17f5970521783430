//! The op catalogue, as handed to a backend after validation.

use crate::dtype::DType;

/// Element-wise functions of one operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Abs,
    Relu,
    Gelu,
    Tanh,
    Sigmoid,
    Exp,
    Log,
    Sqrt,
}

/// Element-wise functions of two operands (numpy broadcasting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

/// Reductions over the last axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
}

/// How raw little-endian bytes encode elements (for tensors made from input bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceEncoding {
    F32,
    F16,
    Bf16,
    I32,
    I64,
}

impl SourceEncoding {
    /// Bytes per encoded element.
    pub fn size(self) -> usize {
        match self {
            SourceEncoding::F16 | SourceEncoding::Bf16 => 2,
            SourceEncoding::F32 | SourceEncoding::I32 => 4,
            SourceEncoding::I64 => 8,
        }
    }

    /// The dtype a tensor decoded from this encoding has (floats → f32, integers → i32).
    pub fn dtype(self) -> DType {
        match self {
            SourceEncoding::F32 | SourceEncoding::F16 | SourceEncoding::Bf16 => DType::F32,
            SourceEncoding::I32 | SourceEncoding::I64 => DType::I32,
        }
    }
}

/// One validated op. Shapes of inputs and output travel beside it in
/// [`crate::TensorRef`]s, already checked by the [`crate::Session`].
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Fill {
        value: f32,
    },
    Matmul {
        transpose_a: bool,
        transpose_b: bool,
    },
    /// Inputs `[x, w, bias]`: `matmul(x, w, false, transpose_b) + bias`,
    /// then `activation`.
    Linear {
        transpose_b: bool,
        activation: Option<UnaryOp>,
    },
    /// Inputs `[q, k, v]`, rows of sequences packed back to back: per
    /// sequence (`lengths`, each ≥ 1, summing to the rows) and head,
    /// `softmax(scale · q·kᵀ) · v` (see [`crate::Session::attention`]).
    Attention {
        lengths: Vec<usize>,
        heads: usize,
        scale: f32,
    },
    Unary(UnaryOp),
    Binary(BinaryOp),
    Scale {
        factor: f32,
    },
    Reduce(ReduceOp),
    Softmax,
    LayerNorm {
        eps: f32,
    },
    RmsNorm {
        eps: f32,
    },
    Gather,
    Permute {
        axes: Vec<usize>,
    },
    Slice {
        axis: usize,
        start: usize,
        end: usize,
    },
    Concat {
        axis: usize,
    },
    MaskedMeanPool,
    L2Normalize {
        eps: f32,
    },
    Argmax,
    Conv2d {
        stride: (usize, usize),
        padding: (usize, usize),
        has_bias: bool,
    },
    MaxPool2d {
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    },
    Cast {
        to: DType,
    },
}
