//! `assay:gpu/tensor`: the ops. Each host call validates and meters through
//! the job's [`assay_host_gpu::Session`] and names itself (`tensor.<op>`)
//! in any error it returns.

use assay_host_gpu::{self as hg, Tensor};
use assay_protocol::Hash32;
use assay_protocol::trace::Attr;
use wasmtime::component::Resource;

use super::{R, dims, table_trap};
use crate::bindings::tensor;
use crate::ctx::GpuCtxView;
use crate::error::{HostError, RefusalCase};
use crate::trace::{BINARY, Content, DTYPE, REDUCE, UNARY, case, dims_attr};

/// blake3 of elements as little-endian bytes (a read's bytes, where the
/// tensor's own hash is unknown: a GPU).
fn le_hash<const W: usize>(values: impl Iterator<Item = [u8; W]>) -> Hash32 {
    let mut h = blake3::Hasher::new();
    for v in values {
        h.update(&v);
    }
    h.finalize().into()
}

fn dtype_from_wit(d: tensor::Dtype) -> hg::DType {
    match d {
        tensor::Dtype::F32 => hg::DType::F32,
        tensor::Dtype::I32 => hg::DType::I32,
    }
}

fn dtype_to_wit(d: hg::DType) -> tensor::Dtype {
    match d {
        // A tensor of blocks holds f32 values (only some ops read it).
        hg::DType::F32 | hg::DType::Q4_0 | hg::DType::Q4_1 | hg::DType::Q8_0 => tensor::Dtype::F32,
        hg::DType::I32 => tensor::Dtype::I32,
    }
}

/// A handle error in a call that returns no WIT error: a trap naming the call.
fn trap(call: &'static str, e: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::Error::new(table_trap(call, e))
}

impl tensor::HostTensor for GpuCtxView<'_> {
    fn shape(&mut self, x: Resource<Tensor>) -> wasmtime::Result<Vec<u32>> {
        let t = self.table.get(&x).map_err(|e| trap("tensor.shape", e))?;
        Ok(t.shape().iter().map(|&d| d as u32).collect())
    }

    fn dtype(&mut self, x: Resource<Tensor>) -> wasmtime::Result<tensor::Dtype> {
        Ok(dtype_to_wit(
            self.table
                .get(&x)
                .map_err(|e| trap("tensor.dtype", e))?
                .dtype(),
        ))
    }

    fn numel(&mut self, x: Resource<Tensor>) -> wasmtime::Result<u64> {
        Ok(self
            .table
            .get(&x)
            .map_err(|e| trap("tensor.numel", e))?
            .numel() as u64)
    }

    fn read_f32(&mut self, x: Resource<Tensor>) -> R<Vec<f32>> {
        const CALL: &str = "tensor.read-f32";
        self.read_back(
            CALL,
            &x,
            Vec::new(),
            |v, t| {
                v.ctx
                    .session
                    .read_f32(t)
                    .map_err(|e| HostError::from_op(CALL, e))
            },
            |values| le_hash(values.iter().map(|x| x.to_le_bytes())),
        )
    }

    fn read_i32(&mut self, x: Resource<Tensor>) -> R<Vec<i32>> {
        const CALL: &str = "tensor.read-i32";
        self.read_back(
            CALL,
            &x,
            Vec::new(),
            |v, t| {
                v.ctx
                    .session
                    .read_i32(t)
                    .map_err(|e| HostError::from_op(CALL, e))
            },
            |values| le_hash(values.iter().map(|x| x.to_le_bytes())),
        )
    }

    fn drop(&mut self, x: Resource<Tensor>) -> wasmtime::Result<()> {
        self.table.delete(x).map_err(|e| trap("tensor.drop", e))?;
        Ok(())
    }
}

impl tensor::Host for GpuCtxView<'_> {
    fn convert_error(&mut self, err: HostError) -> wasmtime::Result<tensor::Error> {
        match err {
            HostError::Guest {
                call,
                case,
                message,
            } => {
                self.ctx.note_refusal(call, case);
                Ok(match case {
                    RefusalCase::ShapeMismatch => tensor::Error::ShapeMismatch(message),
                    RefusalCase::InvalidArgument => tensor::Error::InvalidArgument(message),
                    RefusalCase::QuotaExceeded => tensor::Error::QuotaExceeded(message),
                    RefusalCase::NotFound => tensor::Error::NotFound(message),
                    RefusalCase::Unsupported => tensor::Error::Unsupported(message),
                })
            }
            other => Err(wasmtime::Error::new(other)),
        }
    }

    fn upload_f32(&mut self, shape: Vec<u32>, data: Vec<f32>) -> R<Resource<Tensor>> {
        let r = self.ctx.session.upload_f32(&dims(&shape), data);
        let attrs = vec![dims_attr(&shape)];
        self.hand_out("tensor.upload-f32", Vec::new(), attrs, Content::Hash, r)
    }

    fn upload_i32(&mut self, shape: Vec<u32>, data: Vec<i32>) -> R<Resource<Tensor>> {
        let r = self.ctx.session.upload_i32(&dims(&shape), data);
        let attrs = vec![dims_attr(&shape)];
        self.hand_out("tensor.upload-i32", Vec::new(), attrs, Content::Hash, r)
    }

    fn fill(&mut self, shape: Vec<u32>, value: f32) -> R<Resource<Tensor>> {
        let r = self.ctx.session.fill(&dims(&shape), value);
        let attrs = vec![dims_attr(&shape), Attr::f32(value)];
        self.hand_out("tensor.fill", Vec::new(), attrs, Content::Hash, r)
    }

    fn matmul(
        &mut self,
        a: Resource<Tensor>,
        b: Resource<Tensor>,
        transpose_a: bool,
        transpose_b: bool,
    ) -> R<Resource<Tensor>> {
        let attrs = vec![Attr::Bool(transpose_a), Attr::Bool(transpose_b)];
        self.op("tensor.matmul", [&a, &b], attrs, |s, [a, b]| {
            s.matmul(a, b, transpose_a, transpose_b)
        })
    }

    fn linear(
        &mut self,
        x: Resource<Tensor>,
        w: Resource<Tensor>,
        bias: Resource<Tensor>,
        transpose_w: bool,
        activation: Option<tensor::UnaryOp>,
    ) -> R<Resource<Tensor>> {
        let activation = activation.map(unary_op);
        let attrs = vec![
            Attr::Bool(transpose_w),
            activation.map_or(Attr::Absent, |op| case(&UNARY, op)),
        ];
        self.op(
            "tensor.linear",
            [&x, &w, &bias],
            attrs,
            |s, [x, w, bias]| s.linear(x, w, bias, transpose_w, activation),
        )
    }

    fn attention(
        &mut self,
        q: Resource<Tensor>,
        k: Resource<Tensor>,
        v: Resource<Tensor>,
        lengths: Vec<u32>,
        heads: u32,
        scale: f32,
    ) -> R<Resource<Tensor>> {
        let attrs = vec![dims_attr(&lengths), Attr::U32(heads), Attr::f32(scale)];
        let lengths = dims(&lengths);
        self.op("tensor.attention", [&q, &k, &v], attrs, |s, [q, k, v]| {
            s.attention(q, k, v, &lengths, heads as usize, scale)
        })
    }

    fn causal_attention(
        &mut self,
        q: Resource<Tensor>,
        keys: Vec<Resource<Tensor>>,
        values: Vec<Resource<Tensor>>,
        heads: u32,
        kv_heads: u32,
        scale: f32,
    ) -> R<Resource<Tensor>> {
        let what = "tensor.causal-attention";
        let query = self.get(what, &q)?;
        let mut held = Vec::with_capacity(keys.len() + values.len());
        for r in keys.iter().chain(&values) {
            held.push(self.get(what, r)?);
        }
        // The inputs in the op's order: q, every key block, every value block.
        let operands: Vec<&Resource<Tensor>> =
            std::iter::once(&q).chain(&keys).chain(&values).collect();
        let inputs = self.producers(&operands);
        let (k, v) = held.split_at(keys.len());
        let (k, v): (Vec<&Tensor>, Vec<&Tensor>) = (k.iter().collect(), v.iter().collect());
        let r = self.ctx.session.causal_attention(
            &query,
            &k,
            &v,
            heads as usize,
            kv_heads as usize,
            scale,
        );
        let attrs = vec![
            Attr::U32(keys.len().try_into().unwrap_or(u32::MAX)),
            Attr::U32(heads),
            Attr::U32(kv_heads),
            Attr::f32(scale),
        ];
        self.hand_out(what, inputs, attrs, Content::Hash, r)
    }

    fn rope(
        &mut self,
        x: Resource<Tensor>,
        cos: Resource<Tensor>,
        sin: Resource<Tensor>,
        heads: u32,
        halves: bool,
    ) -> R<Resource<Tensor>> {
        let attrs = vec![Attr::U32(heads), Attr::Bool(halves)];
        let pairs = if halves {
            hg::RopePairs::Halves
        } else {
            hg::RopePairs::Adjacent
        };
        self.op("tensor.rope", [&x, &cos, &sin], attrs, |s, [x, c, sn]| {
            s.rope(x, c, sn, heads as usize, pairs)
        })
    }

    fn swiglu(&mut self, gate: Resource<Tensor>, up: Resource<Tensor>) -> R<Resource<Tensor>> {
        self.op("tensor.swiglu", [&gate, &up], Vec::new(), |s, [g, u]| {
            s.swiglu(g, u)
        })
    }

    fn unary(&mut self, op: tensor::UnaryOp, x: Resource<Tensor>) -> R<Resource<Tensor>> {
        let op = unary_op(op);
        let attrs = vec![case(&UNARY, op)];
        self.op("tensor.unary", [&x], attrs, |s, [x]| s.unary(op, x))
    }

    fn binary(
        &mut self,
        op: tensor::BinaryOp,
        a: Resource<Tensor>,
        b: Resource<Tensor>,
    ) -> R<Resource<Tensor>> {
        use tensor::BinaryOp as W;
        let op = match op {
            W::Add => hg::BinaryOp::Add,
            W::Sub => hg::BinaryOp::Sub,
            W::Mul => hg::BinaryOp::Mul,
            W::Div => hg::BinaryOp::Div,
            W::Max => hg::BinaryOp::Max,
            W::Min => hg::BinaryOp::Min,
        };
        let attrs = vec![case(&BINARY, op)];
        self.op("tensor.binary", [&a, &b], attrs, |s, [a, b]| {
            s.binary(op, a, b)
        })
    }

    fn scale(&mut self, x: Resource<Tensor>, factor: f32) -> R<Resource<Tensor>> {
        let attrs = vec![Attr::f32(factor)];
        self.op("tensor.scale", [&x], attrs, |s, [x]| s.scale(x, factor))
    }

    fn reduce(&mut self, op: tensor::ReduceOp, x: Resource<Tensor>) -> R<Resource<Tensor>> {
        use tensor::ReduceOp as W;
        let op = match op {
            W::Sum => hg::ReduceOp::Sum,
            W::Mean => hg::ReduceOp::Mean,
            W::Max => hg::ReduceOp::Max,
            W::Min => hg::ReduceOp::Min,
        };
        let attrs = vec![case(&REDUCE, op)];
        self.op("tensor.reduce", [&x], attrs, |s, [x]| s.reduce(op, x))
    }

    fn softmax(&mut self, x: Resource<Tensor>) -> R<Resource<Tensor>> {
        self.op("tensor.softmax", [&x], Vec::new(), |s, [x]| s.softmax(x))
    }

    fn layer_norm(
        &mut self,
        x: Resource<Tensor>,
        gamma: Resource<Tensor>,
        beta: Resource<Tensor>,
        eps: f32,
    ) -> R<Resource<Tensor>> {
        let attrs = vec![Attr::f32(eps)];
        self.op(
            "tensor.layer-norm",
            [&x, &gamma, &beta],
            attrs,
            |s, [x, g, b]| s.layer_norm(x, g, b, eps),
        )
    }

    fn rms_norm(
        &mut self,
        x: Resource<Tensor>,
        gamma: Resource<Tensor>,
        eps: f32,
    ) -> R<Resource<Tensor>> {
        let attrs = vec![Attr::f32(eps)];
        self.op("tensor.rms-norm", [&x, &gamma], attrs, |s, [x, g]| {
            s.rms_norm(x, g, eps)
        })
    }

    fn gather(
        &mut self,
        table: Resource<Tensor>,
        indices: Resource<Tensor>,
    ) -> R<Resource<Tensor>> {
        self.op(
            "tensor.gather",
            [&table, &indices],
            Vec::new(),
            |s, [t, i]| s.gather(t, i),
        )
    }

    fn reshape(&mut self, x: Resource<Tensor>, shape: Vec<u32>) -> R<Resource<Tensor>> {
        let attrs = vec![dims_attr(&shape)];
        let shape = dims(&shape);
        self.op("tensor.reshape", [&x], attrs, |s, [x]| s.reshape(x, &shape))
    }

    fn permute(&mut self, x: Resource<Tensor>, axes: Vec<u32>) -> R<Resource<Tensor>> {
        let attrs = vec![dims_attr(&axes)];
        let axes = dims(&axes);
        self.op("tensor.permute", [&x], attrs, |s, [x]| s.permute(x, &axes))
    }

    fn slice(
        &mut self,
        x: Resource<Tensor>,
        axis: u32,
        start: u32,
        end: u32,
    ) -> R<Resource<Tensor>> {
        let attrs = vec![Attr::U32(axis), Attr::U32(start), Attr::U32(end)];
        self.op("tensor.slice", [&x], attrs, |s, [x]| {
            s.slice(x, axis as usize, start as usize, end as usize)
        })
    }

    fn concat(&mut self, xs: Vec<Resource<Tensor>>, axis: u32) -> R<Resource<Tensor>> {
        let mut held = Vec::with_capacity(xs.len());
        for r in &xs {
            held.push(self.get("tensor.concat", r)?);
        }
        let inputs = self.producers(&xs.iter().collect::<Vec<_>>());
        let refs: Vec<&Tensor> = held.iter().collect();
        let r = self.ctx.session.concat(&refs, axis as usize);
        let attrs = vec![Attr::U32(axis)];
        self.hand_out("tensor.concat", inputs, attrs, Content::Hash, r)
    }

    fn masked_mean_pool(
        &mut self,
        x: Resource<Tensor>,
        mask: Resource<Tensor>,
    ) -> R<Resource<Tensor>> {
        self.op(
            "tensor.masked-mean-pool",
            [&x, &mask],
            Vec::new(),
            |s, [x, m]| s.masked_mean_pool(x, m),
        )
    }

    fn l2_normalize(&mut self, x: Resource<Tensor>, eps: f32) -> R<Resource<Tensor>> {
        let attrs = vec![Attr::f32(eps)];
        self.op("tensor.l2-normalize", [&x], attrs, |s, [x]| {
            s.l2_normalize(x, eps)
        })
    }

    fn argmax(&mut self, x: Resource<Tensor>) -> R<Resource<Tensor>> {
        self.op("tensor.argmax", [&x], Vec::new(), |s, [x]| s.argmax(x))
    }

    fn conv2d(
        &mut self,
        x: Resource<Tensor>,
        weight: Resource<Tensor>,
        bias: Option<Resource<Tensor>>,
        stride: (u32, u32),
        padding: (u32, u32),
    ) -> R<Resource<Tensor>> {
        let attrs = vec![
            Attr::U32(stride.0),
            Attr::U32(stride.1),
            Attr::U32(padding.0),
            Attr::U32(padding.1),
        ];
        let stride = (stride.0 as usize, stride.1 as usize);
        let padding = (padding.0 as usize, padding.1 as usize);
        match bias {
            Some(b) => self.op("tensor.conv2d", [&x, &weight, &b], attrs, |s, [x, w, b]| {
                s.conv2d(x, w, Some(b), stride, padding)
            }),
            None => self.op("tensor.conv2d", [&x, &weight], attrs, |s, [x, w]| {
                s.conv2d(x, w, None, stride, padding)
            }),
        }
    }

    fn max_pool2d(
        &mut self,
        x: Resource<Tensor>,
        kernel: (u32, u32),
        stride: (u32, u32),
        padding: (u32, u32),
    ) -> R<Resource<Tensor>> {
        let attrs = [kernel, stride, padding]
            .iter()
            .flat_map(|&(h, w)| [Attr::U32(h), Attr::U32(w)])
            .collect();
        let k = (kernel.0 as usize, kernel.1 as usize);
        let st = (stride.0 as usize, stride.1 as usize);
        let p = (padding.0 as usize, padding.1 as usize);
        self.op("tensor.max-pool2d", [&x], attrs, |s, [x]| {
            s.max_pool2d(x, k, st, p)
        })
    }

    fn cast(&mut self, x: Resource<Tensor>, to: tensor::Dtype) -> R<Resource<Tensor>> {
        let to = dtype_from_wit(to);
        let attrs = vec![case(&DTYPE, to)];
        self.op("tensor.cast", [&x], attrs, |s, [x]| s.cast(x, to))
    }
}

/// The host's name for a WIT unary op.
fn unary_op(op: tensor::UnaryOp) -> hg::UnaryOp {
    use tensor::UnaryOp as W;
    match op {
        W::Neg => hg::UnaryOp::Neg,
        W::Abs => hg::UnaryOp::Abs,
        W::Relu => hg::UnaryOp::Relu,
        W::Gelu => hg::UnaryOp::Gelu,
        W::Tanh => hg::UnaryOp::Tanh,
        W::Sigmoid => hg::UnaryOp::Sigmoid,
        W::Exp => hg::UnaryOp::Exp,
        W::Log => hg::UnaryOp::Log,
        W::Sqrt => hg::UnaryOp::Sqrt,
    }
}
