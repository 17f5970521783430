//! [`Tensor`]: a handle to an n-dimensional array on the host's device.
//!
//! A tensor lives on the provider's GPU (or CPU); the guest holds only a
//! handle. Every op is a method that asks the host to make a new tensor, and
//! returns [`Result`] because the host checks shapes, dtypes and the job's
//! GPU memory quota before it launches anything. Dropping a tensor frees its
//! memory and returns it to the quota, so let intermediates go out of scope
//! in long jobs.
//!
//! Every op is defined bit for bit by the host (host-gpu/SEMANTICS.md): the
//! same job gives the same bytes on any backend.
//!
//! # Op families
//! | family | methods |
//! | --- | --- |
//! | make | [`Tensor::from_f32`], [`Tensor::from_i32`], [`Tensor::fill`], [`Tensor::zeros`], [`Tensor::ones`], [`Tensor::scalar`], [`Tensor::from_input`] |
//! | read back | [`Tensor::to_vec_f32`], [`Tensor::to_vec_i32`], [`Tensor::to_scalar_f32`], [`Tensor::shape`], [`Tensor::dtype`], [`Tensor::numel`] |
//! | linear algebra | [`Tensor::matmul`], [`Tensor::matmul_t`], [`Tensor::linear`], [`Tensor::attention`], [`Tensor::causal_attention`] |
//! | decoder blocks | [`Tensor::rope`], [`Tensor::swiglu`] |
//! | element-wise, one operand | [`Tensor::neg`], [`Tensor::abs`], [`Tensor::relu`], [`Tensor::gelu`], [`Tensor::tanh`], [`Tensor::sigmoid`], [`Tensor::exp`], [`Tensor::log`], [`Tensor::sqrt`], [`Tensor::scale`], [`Tensor::unary`] |
//! | element-wise, two operands (numpy broadcasting) | [`Tensor::add`], [`Tensor::sub`], [`Tensor::mul`], [`Tensor::div`], [`Tensor::maximum`], [`Tensor::minimum`], [`Tensor::binary`] |
//! | reductions over the last axis | [`Tensor::sum`], [`Tensor::mean`], [`Tensor::max`], [`Tensor::min`], [`Tensor::argmax`], [`Tensor::reduce`] |
//! | normalisation | [`Tensor::softmax`], [`Tensor::layer_norm`], [`Tensor::rms_norm`], [`Tensor::l2_normalize`], [`Tensor::masked_mean_pool`] |
//! | layout | [`Tensor::reshape`], [`Tensor::permute`], [`Tensor::transpose`], [`Tensor::slice`], [`Tensor::concat`], [`Tensor::try_clone`] |
//! | lookup, conversion | [`Tensor::gather`], [`Tensor::cast`] |
//! | convolution | [`Tensor::conv2d`], [`Tensor::max_pool2d`] |
//!
//! # Example: one transformer-style block
//! ```no_run
//! use assay_guest::{Result, Tensor};
//!
//! /// x: [s, d]; w1: [d, h]; w2: [h, d]; g, b: [d]
//! fn mlp_block(x: &Tensor, w1: &Tensor, w2: &Tensor, g: &Tensor, b: &Tensor) -> Result<Tensor> {
//!     let h = x.matmul(w1)?.gelu()?;
//!     let y = h.matmul(w2)?.add(x)?;       // residual
//!     y.layer_norm(g, b, 1e-12)
//! }
//! ```
//!
//! # Example: attention scores
//! ```no_run
//! use assay_guest::{Result, Tensor};
//!
//! /// q, k, v: [heads, s, d] → [heads, s, d]
//! fn attention(q: &Tensor, k: &Tensor, v: &Tensor, d: usize) -> Result<Tensor> {
//!     let scores = q.matmul_t(k, false, true)?.scale(1.0 / (d as f32).sqrt())?;
//!     scores.softmax()?.matmul(v)
//! }
//! ```

use std::fmt;
use std::ops::{Bound, RangeBounds};

use crate::bindings::assay::gpu::job_io;
use crate::bindings::assay::gpu::tensor as wit;
use crate::shape::{self, Dims};
use crate::{Error, Result};

pub use crate::bindings::assay::gpu::job_io::{BlockFormat, Encoding};
pub use crate::bindings::assay::gpu::tensor::{BinaryOp, Dtype, ReduceOp, UnaryOp};

/// The raw WIT resource behind a [`Tensor`], for code that calls the
/// generated bindings directly.
pub type RawTensor = wit::Tensor;

/// A handle to an n-dimensional array on the host's device.
///
/// See the [module docs](self) for the op catalogue. Shapes are row-major;
/// a scalar has shape `[]`.
pub struct Tensor {
    raw: RawTensor,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the handle: asking the host for the shape would be a host call
        // (and would not work outside a running job).
        f.debug_struct("Tensor")
            .field("handle", &self.raw.handle())
            .finish()
    }
}

fn axis_u32(what: &str, axis: usize) -> Result<u32> {
    u32::try_from(axis)
        .map_err(|_| Error::InvalidArgument(format!("{what}: axis {axis} is out of range")))
}

impl Tensor {
    // ----- raw access -------------------------------------------------------

    /// Wraps a raw WIT tensor.
    pub fn from_raw(raw: RawTensor) -> Self {
        Tensor { raw }
    }

    /// The raw WIT tensor (for calling the generated bindings directly).
    pub fn as_raw(&self) -> &RawTensor {
        &self.raw
    }

    /// Unwraps the raw WIT tensor.
    pub fn into_raw(self) -> RawTensor {
        self.raw
    }

    fn wrap(r: core::result::Result<RawTensor, wit::Error>) -> Result<Tensor> {
        r.map(Tensor::from_raw).map_err(Error::from)
    }

    // ----- make -------------------------------------------------------------

    /// An f32 tensor from guest memory (`data.len()` must equal the product of `shape`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the length does not match the shape,
    /// [`Error::QuotaExceeded`] past the job's GPU memory quota.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f() -> assay_guest::Result<()> {
    /// let x = Tensor::from_f32(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
    /// assert_eq!(x.shape(), vec![2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn from_f32<S: Dims + ?Sized>(shape: &S, data: &[f32]) -> Result<Tensor> {
        let shape = shape::to_u32s("upload-f32 shape", shape)?;
        Self::wrap(wit::upload_f32(&shape, data))
    }

    /// An i32 tensor from guest memory (e.g. token ids).
    ///
    /// # Errors
    /// As [`Tensor::from_f32`].
    pub fn from_i32<S: Dims + ?Sized>(shape: &S, data: &[i32]) -> Result<Tensor> {
        let shape = shape::to_u32s("upload-i32 shape", shape)?;
        Self::wrap(wit::upload_i32(&shape, data))
    }

    /// An f32 tensor with every element equal to `value`; no data passes
    /// through guest memory.
    ///
    /// # Errors
    /// [`Error::QuotaExceeded`] past the job's GPU memory quota.
    pub fn fill<S: Dims + ?Sized>(shape: &S, value: f32) -> Result<Tensor> {
        let shape = shape::to_u32s("fill shape", shape)?;
        Self::wrap(wit::fill(&shape, value))
    }

    /// An f32 tensor of zeros.
    ///
    /// # Errors
    /// As [`Tensor::fill`].
    pub fn zeros<S: Dims + ?Sized>(shape: &S) -> Result<Tensor> {
        Self::fill(shape, 0.0)
    }

    /// An f32 tensor of ones.
    ///
    /// # Errors
    /// As [`Tensor::fill`].
    pub fn ones<S: Dims + ?Sized>(shape: &S) -> Result<Tensor> {
        Self::fill(shape, 1.0)
    }

    /// An f32 scalar (shape `[]`).
    ///
    /// # Errors
    /// As [`Tensor::fill`].
    pub fn scalar(value: f32) -> Result<Tensor> {
        Self::wrap(wit::fill(&[], value))
    }

    /// A tensor straight from a byte range of a job input, without passing
    /// through guest memory: how model weights reach the device. `offset` is
    /// in bytes from the start of the input; the bytes are decoded as
    /// `encoding` (little-endian; f16/bf16 widen to f32, i64 narrows to i32).
    ///
    /// For safetensors files use [`SafeTensors::load`](crate::SafeTensors::load),
    /// which computes offset, encoding and shape from the header.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the input does not exist or the range lies
    /// outside it; [`Error::InvalidArgument`] if an i64 does not fit in i32;
    /// [`Error::QuotaExceeded`] past the quota.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::{Encoding, Tensor};
    /// # fn f() -> assay_guest::Result<()> {
    /// // input "x": an 8-byte header, then 4×784 f32 values
    /// let x = Tensor::from_input("x", 8, Encoding::F32, &[4, 784])?;
    /// # Ok(()) }
    /// ```
    pub fn from_input<S: Dims + ?Sized>(
        name: &str,
        offset: u64,
        encoding: Encoding,
        shape: &S,
    ) -> Result<Tensor> {
        let shape = shape::to_u32s("tensor-from-input shape", shape)?;
        Self::wrap(job_io::tensor_from_input(name, offset, encoding, &shape))
    }

    /// Makes an f32 tensor of `shape` from GGML blocks (Q4_0, Q4_1, Q8_0:
    /// 32 values a block) at byte `offset` of input `name`, decoded by the
    /// host exactly as its SEMANTICS.md defines; the last dimension must be
    /// a multiple of 32. [`crate::Gguf::load`] calls it for quantised
    /// tensors.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the input does not exist or the range lies
    /// outside it; [`Error::InvalidArgument`] or [`Error::ShapeMismatch`]
    /// for rows that are not whole blocks; [`Error::QuotaExceeded`] past
    /// the quota.
    pub fn from_blocks<S: Dims + ?Sized>(
        name: &str,
        offset: u64,
        format: BlockFormat,
        shape: &S,
    ) -> Result<Tensor> {
        let shape = shape::to_u32s("tensor-from-blocks shape", shape)?;
        Self::wrap(job_io::tensor_from_blocks(name, offset, format, &shape))
    }

    /// Makes a `[n, k]` weight that **keeps** the GGML blocks at byte
    /// `offset` of input `name` as they are (4.5, 5 or 8.5 bits a value in
    /// device memory, against 32 for [`Tensor::from_blocks`]'s f32s). Its
    /// values are the ones `from_blocks` decodes, and only three calls read
    /// it, each giving bit for bit what it gives with the decoded tensor:
    /// [`Tensor::matmul_t`]`(w, false, true)` and [`Tensor::linear`]`(x, w,
    /// bias, true, ..)` with it as the transposed weight, and
    /// [`Tensor::gather`] on it as the table. Other ops refuse it.
    /// [`crate::Gguf::load_weight`] calls it for quantised tensors.
    ///
    /// # Errors
    /// As [`Tensor::from_blocks`]; [`Error::Unsupported`] from a host that
    /// predates it.
    pub fn weight_from_blocks<S: Dims + ?Sized>(
        name: &str,
        offset: u64,
        format: BlockFormat,
        shape: &S,
    ) -> Result<Tensor> {
        let shape = shape::to_u32s("blocks-from-input shape", shape)?;
        Self::wrap(job_io::blocks_from_input(name, offset, format, &shape))
    }

    // ----- read back ----------------------------------------------------------

    /// The dimensions, outermost first (one host call).
    pub fn shape(&self) -> Vec<usize> {
        self.raw.shape().into_iter().map(|d| d as usize).collect()
    }

    /// The number of dimensions (one host call).
    pub fn rank(&self) -> usize {
        self.raw.shape().len()
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.raw.dtype()
    }

    /// The number of elements (the product of the shape; `u64` because it can
    /// exceed a wasm32 `usize`).
    pub fn numel(&self) -> u64 {
        self.raw.numel()
    }

    /// Copies an f32 tensor's elements (row-major) into guest memory.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the tensor is not f32.
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        self.raw.read_f32().map_err(Error::from)
    }

    /// Copies an i32 tensor's elements (row-major) into guest memory.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the tensor is not i32.
    pub fn to_vec_i32(&self) -> Result<Vec<i32>> {
        self.raw.read_i32().map_err(Error::from)
    }

    /// The single element of a one-element f32 tensor (e.g. a reduced loss).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the tensor is not f32 or does not have
    /// exactly one element.
    pub fn to_scalar_f32(&self) -> Result<f32> {
        match self.to_vec_f32()?.as_slice() {
            [v] => Ok(*v),
            other => Err(Error::InvalidArgument(format!(
                "to_scalar_f32: the tensor has {} elements, not 1",
                other.len()
            ))),
        }
    }

    // ----- linear algebra ---------------------------------------------------

    /// Batched matrix product: `self [..., m, k] · b [..., k, n] → [..., m, n]`;
    /// leading (batch) dimensions broadcast.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the inner dimensions differ.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f() -> assay_guest::Result<()> {
    /// let a = Tensor::from_f32(&[2, 2], &[1.0, 2.0, 3.0, 4.0])?;
    /// let i = Tensor::from_f32(&[2, 2], &[1.0, 0.0, 0.0, 1.0])?;
    /// assert_eq!(a.matmul(&i)?.to_vec_f32()?, vec![1.0, 2.0, 3.0, 4.0]);
    /// # Ok(()) }
    /// ```
    pub fn matmul(&self, b: &Tensor) -> Result<Tensor> {
        self.matmul_t(b, false, false)
    }

    /// Matrix product reading `self` and/or `b` as their transpose over the
    /// last two dimensions, without copying: `x.matmul_t(&w, false, true)` is
    /// `x · wᵀ`, the layout of PyTorch `Linear` weights.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the inner dimensions differ.
    pub fn matmul_t(&self, b: &Tensor, transpose_a: bool, transpose_b: bool) -> Result<Tensor> {
        Self::wrap(wit::matmul(&self.raw, &b.raw, transpose_a, transpose_b))
    }

    /// A dense layer: `self · w` (or `self · wᵀ` with `transpose_w`, for
    /// PyTorch `Linear` weights stored `[out, in]`) plus `bias` on every
    /// row, then `activation` if given. The same bits as `matmul_t`, `add`
    /// and `unary(activation)`, in one op: no intermediate tensor is written
    /// and read back.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the inner dimensions differ or `bias`
    /// is not a vector of the output's last dimension.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f() -> assay_guest::Result<()> {
    /// let x = Tensor::from_f32(&[1, 2], &[1.0, 2.0])?;
    /// let w = Tensor::from_f32(&[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0])?;
    /// let b = Tensor::from_f32(&[3], &[0.5, 0.5, 0.5])?;
    /// assert_eq!(x.linear(&w, &b, true, None)?.to_vec_f32()?, vec![1.5, 2.5, 3.5]);
    /// # Ok(()) }
    /// ```
    pub fn linear(
        &self,
        w: &Tensor,
        bias: &Tensor,
        transpose_w: bool,
        activation: Option<UnaryOp>,
    ) -> Result<Tensor> {
        Self::wrap(wit::linear(
            &self.raw,
            &w.raw,
            &bias.raw,
            transpose_w,
            activation,
        ))
    }

    /// Scaled dot-product attention with `self` as the queries, over
    /// sequences packed back to back without padding: `self` and `k` are
    /// `[tokens, heads·d]`, `v` is `[tokens, heads·dv]`, and `lengths` (each
    /// ≥ 1, summing to `tokens`) split the rows into sequences whose tokens
    /// attend only to each other. Per sequence and head, the same bits as
    /// `softmax(scale · q·kᵀ) · v` by [`Tensor::matmul_t`], [`Tensor::scale`],
    /// [`Tensor::softmax`] and [`Tensor::matmul`] on that sequence's rows
    /// and that head's columns — with no padding, mask, permute or
    /// intermediate tensor. Returns `[tokens, heads·dv]`, the heads side by
    /// side as an output projection reads them.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the rows or widths disagree or the
    /// lengths do not add up to the rows; [`Error::InvalidArgument`] for a
    /// zero length or heads that do not divide the widths.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f(q: &Tensor, k: &Tensor, v: &Tensor) -> assay_guest::Result<()> {
    /// // Two sentences of 7 and 5 tokens, 12 heads of 32: q, k, v are [12, 384].
    /// let context = q.attention(k, v, &[7, 5], 12, 1.0 / 32f32.sqrt())?; // [12, 384]
    /// # Ok(()) }
    /// ```
    pub fn attention(
        &self,
        k: &Tensor,
        v: &Tensor,
        lengths: &[usize],
        heads: usize,
        scale: f32,
    ) -> Result<Tensor> {
        let lengths = lengths
            .iter()
            .map(|&n| u32::try_from(n))
            .collect::<std::result::Result<Vec<u32>, _>>()
            .map_err(|_| Error::InvalidArgument("attention: a length above u32".into()))?;
        let heads = u32::try_from(heads)
            .map_err(|_| Error::InvalidArgument("attention: heads above u32".into()))?;
        Self::wrap(wit::attention(
            &self.raw, &k.raw, &v.raw, &lengths, heads, scale,
        ))
    }

    /// A decoder's causal attention with `self` as the queries of the last
    /// `t` positions (`[t, heads·d]`), over a key/value cache held as
    /// blocks: `keys[b]` `[n_b, kv_heads·d]` and `values[b]`
    /// `[n_b, kv_heads·dv]` are the sequence's positions back to back. A
    /// prefill appends one block of its rows, each decode step one block of
    /// its row, so growing the cache never copies it (a guest may still
    /// [`Tensor::concat`] old blocks into one now and then to keep the list
    /// short). Row `i` is position `n − t + i` and sees positions up to
    /// itself; query head `h` reads key/value head `h / (heads /
    /// kv_heads)`. Per row and head, the same bits as [`Tensor::attention`]
    /// over exactly the positions it sees. Returns `[t, heads·dv]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no blocks, unequal numbers of key and
    /// value blocks, or heads that do not divide; [`Error::ShapeMismatch`]
    /// when the blocks disagree in width or rows, the head widths of `self`
    /// and the keys differ, or `self` has more rows than the cache.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f(q: &Tensor, k: Tensor, v: Tensor, keys: &mut Vec<Tensor>, values: &mut Vec<Tensor>) -> assay_guest::Result<()> {
    /// // One decode step of SmolLM2: 9 query heads over 3 key/value heads of 64.
    /// keys.push(k); // [1, 192], this step's row
    /// values.push(v);
    /// let (k, v): (Vec<&Tensor>, Vec<&Tensor>) = (keys.iter().collect(), values.iter().collect());
    /// let context = q.causal_attention(&k, &v, 9, 3, 0.125)?; // [1, 576]
    /// # Ok(()) }
    /// ```
    pub fn causal_attention(
        &self,
        keys: &[&Tensor],
        values: &[&Tensor],
        heads: usize,
        kv_heads: usize,
        scale: f32,
    ) -> Result<Tensor> {
        let count = |n: usize, what: &str| {
            u32::try_from(n)
                .map_err(|_| Error::InvalidArgument(format!("causal_attention: {what} above u32")))
        };
        let (heads, kv_heads) = (count(heads, "heads")?, count(kv_heads, "kv_heads")?);
        let keys: Vec<&RawTensor> = keys.iter().map(|t| &t.raw).collect();
        let values: Vec<&RawTensor> = values.iter().map(|t| &t.raw).collect();
        Self::wrap(wit::causal_attention(
            &self.raw, &keys, &values, heads, kv_heads, scale,
        ))
    }

    /// Rotary position embedding: each head's pairs of columns of `self`
    /// (`[rows, heads·d]`) rotated by their row's angles, given as `cos` and
    /// `sin` (`[rows, d/2]`): `(a, b) → (a·cos − b·sin, a·sin + b·cos)`,
    /// each product rounded, then the sum. `halves = false` pairs columns
    /// `(2i, 2i+1)` of a head, as GGUF Llama models (GGML's normal mode)
    /// need; `true` pairs `(i, i + d/2)`, as Hugging Face Llama models
    /// (NEOX) need. Make the angle table once (in the guest, where `sin`
    /// and `cos` give the same bits on every machine), upload it, and
    /// [`Tensor::gather`] the rows of the positions at hand.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for zero heads or an odd head width;
    /// [`Error::ShapeMismatch`] when `cos` or `sin` is not `[rows, d/2]`.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f(q: &Tensor, cos: &Tensor, sin: &Tensor) -> assay_guest::Result<()> {
    /// let q = q.rope(cos, sin, 9, false)?; // [t, 576], 9 heads of 64
    /// # Ok(()) }
    /// ```
    pub fn rope(&self, cos: &Tensor, sin: &Tensor, heads: usize, halves: bool) -> Result<Tensor> {
        let heads = u32::try_from(heads)
            .map_err(|_| Error::InvalidArgument("rope: heads above u32".into()))?;
        Self::wrap(wit::rope(&self.raw, &cos.raw, &sin.raw, heads, halves))
    }

    /// The SwiGLU gate of a Llama feed-forward block with `self` as the
    /// gate: `silu(self) · up`, where `silu(g) = g · sigmoid(g)`, in one op.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless `up` has `self`'s shape.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f(x: &Tensor, gate: &Tensor, up: &Tensor, down: &Tensor) -> assay_guest::Result<()> {
    /// // PyTorch-layout weights [out, in]: x · wᵀ.
    /// let h = x.matmul_t(gate, false, true)?.swiglu(&x.matmul_t(up, false, true)?)?;
    /// let y = h.matmul_t(down, false, true)?;
    /// # Ok(()) }
    /// ```
    pub fn swiglu(&self, up: &Tensor) -> Result<Tensor> {
        Self::wrap(wit::swiglu(&self.raw, &up.raw))
    }

    // ----- element-wise -------------------------------------------------------

    /// Applies an element-wise function (the named methods below call this).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an i32 tensor where the op needs f32.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        Self::wrap(wit::unary(op, &self.raw))
    }

    /// Applies an element-wise function of two tensors with numpy
    /// broadcasting (the named methods below call this).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes do not broadcast.
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        Self::wrap(wit::binary(op, &self.raw, &other.raw))
    }

    /// `self · factor`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a non-f32 tensor.
    pub fn scale(&self, factor: f32) -> Result<Tensor> {
        Self::wrap(wit::scale(&self.raw, factor))
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl Tensor {$(
            $(#[$doc])*
            ///
            /// # Errors
            /// [`Error::InvalidArgument`] if the host refuses the dtype.
            pub fn $name(&self) -> Result<Tensor> {
                self.unary(UnaryOp::$op)
            }
        )*}
    };
}

unary_methods! {
    /// `-x`, element-wise.
    neg => Neg;
    /// `|x|`, element-wise.
    abs => Abs;
    /// `max(x, 0)`, element-wise.
    relu => Relu;
    /// `x · Φ(x)` with the exact erf (as BERT uses), element-wise.
    gelu => Gelu;
    /// `tanh(x)`, element-wise.
    tanh => Tanh;
    /// `1 / (1 + e^-x)`, element-wise.
    sigmoid => Sigmoid;
    /// `e^x`, element-wise.
    exp => Exp;
    /// The natural logarithm, element-wise.
    log => Log;
    /// The square root, element-wise.
    sqrt => Sqrt;
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl Tensor {$(
            $(#[$doc])*
            ///
            /// # Errors
            /// [`Error::ShapeMismatch`] if the shapes do not broadcast
            /// (numpy rules: align from the right; each pair equal or one of them 1).
            pub fn $name(&self, other: &Tensor) -> Result<Tensor> {
                self.binary(BinaryOp::$op, other)
            }
        )*}
    };
}

binary_methods! {
    /// `self + other`, element-wise with broadcasting (e.g. `[s, d] + [d]` adds a bias).
    add => Add;
    /// `self − other`, element-wise with broadcasting.
    sub => Sub;
    /// `self × other`, element-wise with broadcasting.
    mul => Mul;
    /// `self ÷ other`, element-wise with broadcasting.
    div => Div;
    /// The larger of each pair (any NaN gives NaN), with broadcasting.
    maximum => Max;
    /// The smaller of each pair (any NaN gives NaN), with broadcasting.
    minimum => Min;
}

macro_rules! reduce_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl Tensor {$(
            $(#[$doc])*
            ///
            /// # Errors
            /// [`Error::InvalidArgument`] for a scalar or a dtype the host refuses.
            pub fn $name(&self) -> Result<Tensor> {
                self.reduce(ReduceOp::$op)
            }
        )*}
    };
}

reduce_methods! {
    /// Sum over the last axis: `[..., n] → [...]`.
    sum => Sum;
    /// Mean over the last axis: `[..., n] → [...]`.
    mean => Mean;
    /// Largest element of the last axis: `[..., n] → [...]`.
    max => Max;
    /// Smallest element of the last axis: `[..., n] → [...]`.
    min => Min;
}

impl Tensor {
    /// Reduces the last axis: `[..., n] → [...]` (the named methods call this).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a scalar or a dtype the host refuses.
    pub fn reduce(&self, op: ReduceOp) -> Result<Tensor> {
        Self::wrap(wit::reduce(op, &self.raw))
    }

    /// Index of the largest element of the last axis (first on ties; a NaN
    /// wins) as an i32 tensor: `[..., n] → [...]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a scalar.
    pub fn argmax(&self) -> Result<Tensor> {
        Self::wrap(wit::argmax(&self.raw))
    }

    // ----- normalisation ----------------------------------------------------

    /// Softmax over the last axis.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a non-f32 tensor.
    pub fn softmax(&self) -> Result<Tensor> {
        Self::wrap(wit::softmax(&self.raw))
    }

    /// Layer normalisation over the last axis:
    /// `(x − mean) / sqrt(var + eps) · gamma + beta`, with `gamma` and `beta` of
    /// shape `[d]` for `x: [..., d]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `gamma`/`beta` do not match the last axis.
    pub fn layer_norm(&self, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        Self::wrap(wit::layer_norm(&self.raw, &gamma.raw, &beta.raw, eps))
    }

    /// RMS normalisation over the last axis: `x / sqrt(mean(x²) + eps) · gamma`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `gamma` does not match the last axis.
    pub fn rms_norm(&self, gamma: &Tensor, eps: f32) -> Result<Tensor> {
        Self::wrap(wit::rms_norm(&self.raw, &gamma.raw, eps))
    }

    /// `x / max(‖x‖₂, eps)` over the last axis (unit-length embeddings).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a non-f32 tensor.
    pub fn l2_normalize(&self, eps: f32) -> Result<Tensor> {
        Self::wrap(wit::l2_normalize(&self.raw, eps))
    }

    /// Mean over the sequence of `self: [b, s, d]` weighted by `mask: [b, s]`
    /// (f32, 0 or 1) → `[b, d]`: sentence embeddings from token embeddings.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the mask does not match `[b, s]`.
    pub fn masked_mean_pool(&self, mask: &Tensor) -> Result<Tensor> {
        Self::wrap(wit::masked_mean_pool(&self.raw, &mask.raw))
    }

    // ----- layout ---------------------------------------------------------------

    /// The same elements under a new shape with the same element count. One
    /// dimension may be `-1`: it is inferred from the others.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the element counts differ.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f(x: &Tensor) -> assay_guest::Result<()> {
    /// // [b, s, heads·d] → [b, s, heads, d]
    /// let (b, s, heads) = (1, 128, 12);
    /// let split = x.reshape(&[b, s, heads, -1])?;
    /// # Ok(()) }
    /// ```
    pub fn reshape<S: Dims + ?Sized>(&self, shape: &S) -> Result<Tensor> {
        let shape = shape::reshape_dims(shape, self.numel())?;
        Self::wrap(wit::reshape(&self.raw, &shape))
    }

    /// Reorders dimensions: output dimension `i` is input dimension `axes[i]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `axes` is not a permutation of `0..rank`.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f(x: &Tensor) -> assay_guest::Result<()> {
    /// // [b, s, heads, d] → [b, heads, s, d]
    /// let heads_first = x.permute(&[0, 2, 1, 3])?;
    /// # Ok(()) }
    /// ```
    pub fn permute<S: Dims + ?Sized>(&self, axes: &S) -> Result<Tensor> {
        let axes = shape::to_u32s("permute axes", axes)?;
        Self::wrap(wit::permute(&self.raw, &axes))
    }

    /// Swaps two axes (a [`Tensor::permute`] that asks the host for the rank first).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if an axis is out of range.
    pub fn transpose(&self, axis0: usize, axis1: usize) -> Result<Tensor> {
        let rank = self.rank();
        if axis0 >= rank || axis1 >= rank {
            return Err(Error::InvalidArgument(format!(
                "transpose({axis0}, {axis1}) of a rank-{rank} tensor"
            )));
        }
        let mut axes: Vec<u32> = (0..rank as u32).collect();
        axes.swap(axis0, axis1);
        Self::wrap(wit::permute(&self.raw, &axes))
    }

    /// Elements `range` of one axis, e.g. `x.slice(1, 0..64)` or `x.slice(0, 2..)`.
    /// An open end asks the host for the shape.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the axis or range is out of bounds.
    pub fn slice(&self, axis: usize, range: impl RangeBounds<usize>) -> Result<Tensor> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => match self.shape().get(axis) {
                Some(&d) => d,
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "slice: axis {axis} of a rank-{} tensor",
                        self.rank()
                    )));
                }
            },
        };
        let axis = axis_u32("slice", axis)?;
        let (start, end) = match (u32::try_from(start), u32::try_from(end)) {
            (Ok(s), Ok(e)) => (s, e),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "slice: range {start}..{end} is out of range"
                )));
            }
        };
        Self::wrap(wit::slice(&self.raw, axis, start, end))
    }

    /// Joins tensors along one axis; all other dimensions must agree.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the other dimensions differ;
    /// [`Error::InvalidArgument`] for an empty list or a bad axis.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f(a: &Tensor, b: &Tensor) -> assay_guest::Result<()> {
    /// let ab = Tensor::concat(&[a, b], 0)?;
    /// # Ok(()) }
    /// ```
    pub fn concat(xs: &[&Tensor], axis: usize) -> Result<Tensor> {
        let axis = axis_u32("concat", axis)?;
        let raws: Vec<&RawTensor> = xs.iter().map(|t| &t.raw).collect();
        Self::wrap(wit::concat(&raws, axis))
    }

    /// A copy of this tensor (same shape, same elements, a new handle).
    ///
    /// # Errors
    /// [`Error::QuotaExceeded`] past the quota.
    pub fn try_clone(&self) -> Result<Tensor> {
        Self::wrap(wit::reshape(&self.raw, &self.raw.shape()))
    }

    // ----- lookup, conversion ---------------------------------------------------

    /// Embedding lookup: `self` is the table `[v, d]`, `indices` an i32 tensor
    /// `[...]` → `[..., d]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if an index is out of range or not i32.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f(word_embeddings: &Tensor) -> assay_guest::Result<()> {
    /// let ids = Tensor::from_i32(&[1, 4], &[101, 7592, 2088, 102])?;
    /// let x = word_embeddings.gather(&ids)?; // [1, 4, d]
    /// # Ok(()) }
    /// ```
    pub fn gather(&self, indices: &Tensor) -> Result<Tensor> {
        Self::wrap(wit::gather(&self.raw, &indices.raw))
    }

    /// Converts between dtypes (f32 → i32 truncates toward zero and
    /// saturates; NaN → 0).
    ///
    /// # Errors
    /// [`Error::QuotaExceeded`] past the quota.
    pub fn cast(&self, to: Dtype) -> Result<Tensor> {
        Self::wrap(wit::cast(&self.raw, to))
    }

    // ----- convolution ----------------------------------------------------------

    /// 2-D convolution, NCHW: `self [n, c, h, w]`, `weight [o, c, kh, kw]`,
    /// optional `bias [o]` → `[n, o, h', w']`. `stride` and `padding` are
    /// `(vertical, horizontal)`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the channel counts differ.
    ///
    /// # Example
    /// ```no_run
    /// # use assay_guest::Tensor;
    /// # fn f(img: &Tensor, w: &Tensor, b: &Tensor) -> assay_guest::Result<()> {
    /// let y = img.conv2d(w, Some(b), (1, 1), (1, 1))?.relu()?.max_pool2d((2, 2), (2, 2), (0, 0))?;
    /// # Ok(()) }
    /// ```
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: (u32, u32),
        padding: (u32, u32),
    ) -> Result<Tensor> {
        Self::wrap(wit::conv2d(
            &self.raw,
            &weight.raw,
            bias.map(|b| &b.raw),
            stride,
            padding,
        ))
    }

    /// 2-D max pooling, NCHW; padded positions never win.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the window does not fit.
    pub fn max_pool2d(
        &self,
        kernel: (u32, u32),
        stride: (u32, u32),
        padding: (u32, u32),
    ) -> Result<Tensor> {
        Self::wrap(wit::max_pool2d(&self.raw, kernel, stride, padding))
    }
}
