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

/// Which columns of a head [`crate::Session::rope`] rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RopePairs {
    /// Columns `2i` and `2i + 1`: GGML's normal mode (0), as llama.cpp
    /// rotates Llama models converted to GGUF.
    Adjacent,
    /// Columns `i` and `i + d/2`: GGML's NEOX mode, as Hugging Face
    /// `transformers` rotates Llama models.
    Halves,
}

/// How raw little-endian bytes encode elements (for tensors made from input
/// bytes). The quantised ones are GGML's blocks of 32 values, decoded
/// exactly as SEMANTICS.md defines ("Input decoding").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceEncoding {
    F32,
    F16,
    Bf16,
    I32,
    I64,
    /// Blocks of 32: f16 scale `d`, 16 bytes of 4-bit `q`; `d·(q − 8)`.
    Q4_0,
    /// Blocks of 32: f16 `d`, f16 `m`, 16 bytes of 4-bit `q`; `d·q + m`.
    Q4_1,
    /// Blocks of 32: f16 `d`, 32 i8 `q`; `d·q`.
    Q8_0,
}

impl SourceEncoding {
    /// (elements per block, bytes per block): one element for the plain
    /// encodings.
    pub fn block(self) -> (usize, usize) {
        match self {
            SourceEncoding::F16 | SourceEncoding::Bf16 => (1, 2),
            SourceEncoding::F32 | SourceEncoding::I32 => (1, 4),
            SourceEncoding::I64 => (1, 8),
            SourceEncoding::Q4_0 => (32, 18),
            SourceEncoding::Q4_1 => (32, 20),
            SourceEncoding::Q8_0 => (32, 34),
        }
    }

    /// Whether this is a block encoding (rows must be whole blocks).
    pub fn is_blocked(self) -> bool {
        self.block().0 > 1
    }

    /// Bytes that encode `n` elements, or `None` if `n` is not a whole
    /// number of blocks (or the count overflows).
    pub fn encoded_len(self, n: usize) -> Option<usize> {
        let (values, bytes) = self.block();
        n.is_multiple_of(values)
            .then(|| (n / values).checked_mul(bytes))
            .flatten()
    }

    /// Elements that `len` bytes encode, or `None` if they are not whole blocks.
    pub fn elements_in(self, len: usize) -> Option<usize> {
        let (values, bytes) = self.block();
        len.is_multiple_of(bytes)
            .then(|| (len / bytes).checked_mul(values))
            .flatten()
    }

    /// The dtype a tensor decoded from this encoding has (floats → f32, integers → i32).
    pub fn dtype(self) -> DType {
        match self {
            SourceEncoding::F32
            | SourceEncoding::F16
            | SourceEncoding::Bf16
            | SourceEncoding::Q4_0
            | SourceEncoding::Q4_1
            | SourceEncoding::Q8_0 => DType::F32,
            SourceEncoding::I32 | SourceEncoding::I64 => DType::I32,
        }
    }

    /// The dtype of a tensor that keeps this encoding's blocks as they are
    /// (`None` for the plain encodings).
    pub fn blocks_dtype(self) -> Option<DType> {
        match self {
            SourceEncoding::Q4_0 => Some(DType::Q4_0),
            SourceEncoding::Q4_1 => Some(DType::Q4_1),
            SourceEncoding::Q8_0 => Some(DType::Q8_0),
            _ => None,
        }
    }

    /// The block encoding a tensor of `dtype` keeps (`None` for f32 and i32).
    pub fn of_blocks(dtype: DType) -> Option<SourceEncoding> {
        match dtype {
            DType::Q4_0 => Some(SourceEncoding::Q4_0),
            DType::Q4_1 => Some(SourceEncoding::Q4_1),
            DType::Q8_0 => Some(SourceEncoding::Q8_0),
            DType::F32 | DType::I32 => None,
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
    /// Inputs `[q, k₀ … k_{blocks−1}, v₀ … v_{blocks−1}]`: q's rows are the
    /// last positions of the sequence whose keys and values are the
    /// blocks' rows back to back; each attends to its own and earlier
    /// positions, query head `h` to key/value head `h / (heads /
    /// kv_heads)` (see [`crate::Session::causal_attention`]).
    CausalAttention {
        blocks: usize,
        heads: usize,
        kv_heads: usize,
        scale: f32,
    },
    /// Inputs `[x, cos, sin]`: each head's pairs of columns rotated by
    /// their row's angles (see [`crate::Session::rope`]).
    Rope {
        heads: usize,
        pairs: RopePairs,
    },
    /// Inputs `[gate, up]`: `silu(gate) · up` (see [`crate::Session::swiglu`]).
    Swiglu,
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
