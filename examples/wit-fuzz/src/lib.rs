//! `wit-fuzz`: a guest whose every host call comes from fuzz input.
//!
//! Its input `program` is read byte by byte as a sequence of calls into
//! the whole `assay:gpu` host surface — every tensor op, every `job-io`
//! call — on a small stack of live tensors, with shapes, dtypes, scalars,
//! names and ranges taken from the bytes (mostly small, sometimes the
//! extremes: `u32::MAX` dimensions, NaN and infinities, names that are not
//! names, ranges past the end). It calls the raw bindings, so nothing the
//! SDK would check first is checked: the host sees what a hostile guest
//! could send.
//!
//! A refused call is expected (the host answers with an `error` variant
//! and the program goes on); what the guest records of each call — the
//! error's kind, or the result's shape, and the bits of what it reads back
//! — is its output `calls`. The host-side fuzz case
//! (`assay_fuzz_cases::wit_host_surface`) runs the program twice and wants
//! the same outcome, outputs, fuel and work both times, and never a trap:
//! this guest breaks no rule, so a trap is the host's fault.

use assay_guest::bindings::assay::gpu::job_io::{self, BlockFormat, Encoding};
use assay_guest::bindings::assay::gpu::tensor::{
    self as wit, BinaryOp, Dtype, ReduceOp, Tensor, UnaryOp,
};

/// Most tensors kept alive at once (more drop the oldest).
const STACK: usize = 8;
/// Most calls one program makes.
const MAX_CALLS: usize = 256;

/// The program's bytes, read front to back; past the end every read is 0.
struct Program {
    bytes: Vec<u8>,
    at: usize,
}

impl Program {
    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn u32_le(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A dimension: mostly 0–8, sometimes larger, rarely extreme.
    fn dim(&mut self) -> u32 {
        match self.byte() {
            b @ 0..=215 => u32::from(b % 9),
            b @ 216..=247 => [16, 17, 31, 32, 33, 64, 65, 128][usize::from(b % 8)],
            b => [
                1 << 16,
                (1 << 16) + 1,
                1 << 20,
                1 << 31,
                u32::MAX,
                u32::MAX - 1,
                self.u32_le(),
                0,
            ][usize::from(b % 8)],
        }
    }

    fn shape(&mut self) -> Vec<u32> {
        let rank = match self.byte() {
            b @ 0..=249 => usize::from(b % 5),
            b => usize::from(b % 8) + 3,
        };
        (0..rank).map(|_| self.dim()).collect()
    }

    fn scalar(&mut self) -> f32 {
        match self.byte() {
            b @ 0..=127 => f32::from(b) / 16.0 - 4.0,
            b => [
                0.0,
                -0.0,
                1.0,
                -1.0,
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::MAX,
                f32::MIN_POSITIVE,
                1e-45,
                -1e-45,
                0.125,
                1e-6,
                65504.0,
                -3.5,
                f32::from_bits(self.u32_le()),
            ][usize::from(b % 16)],
        }
    }

    fn name(&mut self) -> String {
        match self.byte() % 8 {
            0 => "program".into(),
            1 => "missing".into(),
            2 => String::new(),
            3 => "../escape".into(),
            4 => "x".repeat(129),
            5 => "out.bin".into(),
            6 => "calls".into(),
            _ => format!("o{}", self.byte() % 4),
        }
    }

    fn offset(&mut self) -> u64 {
        match self.byte() % 4 {
            0 => 0,
            1 => u64::from(self.byte()),
            2 => u64::from(self.u32_le()),
            _ => u64::MAX - u64::from(self.byte()),
        }
    }
}

/// What the guest keeps of each call, written as output `calls`.
struct Record {
    out: Vec<u8>,
}

impl Record {
    fn refused(&mut self, op: u8, e: &wit::Error) {
        let kind = match e {
            wit::Error::ShapeMismatch(_) => 1,
            wit::Error::InvalidArgument(_) => 2,
            wit::Error::QuotaExceeded(_) => 3,
            wit::Error::NotFound(_) => 4,
            wit::Error::Unsupported(_) => 5,
        };
        self.out.extend_from_slice(&[op, kind]);
    }

    fn made(&mut self, op: u8, t: &Tensor) {
        self.out.extend_from_slice(&[op, 0]);
        for d in t.shape() {
            self.out.extend_from_slice(&d.to_le_bytes());
        }
        self.out.push(match t.dtype() {
            Dtype::F32 => 0,
            Dtype::I32 => 1,
        });
    }

    fn bytes(&mut self, op: u8, data: &[u8]) {
        self.out.extend_from_slice(&[op, 0]);
        self.out
            .extend_from_slice(&(data.len() as u64).to_le_bytes());
        // A cheap digest of what came back (FNV-1a), so a run that reads
        // different bits writes a different output.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in data {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        self.out.extend_from_slice(&h.to_le_bytes());
    }
}

fn unary_op(b: u8) -> UnaryOp {
    [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Relu,
        UnaryOp::Gelu,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
    ][usize::from(b % 9)]
}

fn binary_op(b: u8) -> BinaryOp {
    [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ][usize::from(b % 6)]
}

fn reduce_op(b: u8) -> ReduceOp {
    [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min][usize::from(b % 4)]
}

fn encoding(b: u8) -> Encoding {
    [
        Encoding::F32,
        Encoding::F16,
        Encoding::Bf16,
        Encoding::I32,
        Encoding::I64,
    ][usize::from(b % 5)]
}

fn block_format(b: u8) -> BlockFormat {
    [BlockFormat::Q40, BlockFormat::Q41, BlockFormat::Q80][usize::from(b % 3)]
}

fn dtype(b: u8) -> Dtype {
    if b & 1 == 0 { Dtype::F32 } else { Dtype::I32 }
}

/// The program's interpreter: a stack of live tensors, one call per step.
struct Machine {
    p: Program,
    stack: Vec<Tensor>,
    record: Record,
}

impl Machine {
    /// The operand a byte picks (a fresh `[2, 2]` fill when none is live).
    fn pick(&mut self) -> usize {
        if self.stack.is_empty()
            && let Ok(t) = wit::fill(&[2, 2], 1.0)
        {
            self.stack.push(t);
        }
        usize::from(self.p.byte()) % self.stack.len().max(1)
    }

    fn keep(&mut self, op: u8, r: Result<Tensor, wit::Error>) {
        match r {
            Ok(t) => {
                self.record.made(op, &t);
                if self.stack.len() == STACK {
                    self.stack.remove(0);
                }
                self.stack.push(t);
            }
            Err(e) => self.record.refused(op, &e),
        }
    }

    fn unit(&mut self, op: u8, r: Result<(), wit::Error>) {
        match r {
            Ok(()) => self.record.out.extend_from_slice(&[op, 0]),
            Err(e) => self.record.refused(op, &e),
        }
    }

    /// Several operands (for `concat` and the attention cache).
    fn picks(&mut self) -> Vec<usize> {
        let n = usize::from(self.p.byte() % 5);
        (0..n).map(|_| self.pick()).collect()
    }

    fn step(&mut self) {
        let op = self.p.byte() % 40;
        if self.stack.is_empty() && op >= 3 {
            let t = wit::fill(&[2, 3], 0.5);
            self.keep(255, t);
        }
        match op {
            0 => {
                let shape = self.p.shape();
                let n = shape.iter().map(|&d| u64::from(d)).product::<u64>();
                // The right number of values when it is small, else a few
                // (the host must refuse the mismatch).
                let len = if n <= 4096 { n as usize } else { 3 };
                let len = if self.p.flag() {
                    len
                } else {
                    len.saturating_add(1)
                };
                let data: Vec<f32> = (0..len).map(|_| self.p.scalar()).collect();
                let r = wit::upload_f32(&shape, &data);
                self.keep(op, r);
            }
            1 => {
                let shape = self.p.shape();
                let n = shape.iter().map(|&d| u64::from(d)).product::<u64>();
                let len = if n <= 4096 { n as usize } else { 2 };
                let data: Vec<i32> = (0..len).map(|_| i32::from(self.p.byte() as i8)).collect();
                let r = wit::upload_i32(&shape, &data);
                self.keep(op, r);
            }
            2 => {
                let (shape, v) = (self.p.shape(), self.p.scalar());
                let r = wit::fill(&shape, v);
                self.keep(op, r);
            }
            3 => {
                let (a, b) = (self.pick(), self.pick());
                let (ta, tb) = (self.p.flag(), self.p.flag());
                let r = wit::matmul(&self.stack[a], &self.stack[b], ta, tb);
                self.keep(op, r);
            }
            4 => {
                let (x, w, b) = (self.pick(), self.pick(), self.pick());
                let tw = self.p.flag();
                let act = self.p.flag().then(|| unary_op(self.p.byte()));
                let r = wit::linear(&self.stack[x], &self.stack[w], &self.stack[b], tw, act);
                self.keep(op, r);
            }
            5 => {
                let (q, k, v) = (self.pick(), self.pick(), self.pick());
                let lengths: Vec<u32> = (0..self.p.byte() % 4).map(|_| self.p.dim()).collect();
                let (heads, scale) = (self.p.dim(), self.p.scalar());
                let r = wit::attention(
                    &self.stack[q],
                    &self.stack[k],
                    &self.stack[v],
                    &lengths,
                    heads,
                    scale,
                );
                self.keep(op, r);
            }
            6 => {
                let q = self.pick();
                let (keys, values) = (self.picks(), self.picks());
                let (heads, kv_heads, scale) = (self.p.dim(), self.p.dim(), self.p.scalar());
                let keys: Vec<&Tensor> = keys.iter().map(|&i| &self.stack[i]).collect();
                let values: Vec<&Tensor> = values.iter().map(|&i| &self.stack[i]).collect();
                let r =
                    wit::causal_attention(&self.stack[q], &keys, &values, heads, kv_heads, scale);
                self.keep(op, r);
            }
            7 => {
                let (x, c, s) = (self.pick(), self.pick(), self.pick());
                let (heads, halves) = (self.p.dim(), self.p.flag());
                let r = wit::rope(
                    &self.stack[x],
                    &self.stack[c],
                    &self.stack[s],
                    heads,
                    halves,
                );
                self.keep(op, r);
            }
            8 => {
                let (g, u) = (self.pick(), self.pick());
                let r = wit::swiglu(&self.stack[g], &self.stack[u]);
                self.keep(op, r);
            }
            9 => {
                let (f, x) = (unary_op(self.p.byte()), self.pick());
                let r = wit::unary(f, &self.stack[x]);
                self.keep(op, r);
            }
            10 => {
                let (f, a, b) = (binary_op(self.p.byte()), self.pick(), self.pick());
                let r = wit::binary(f, &self.stack[a], &self.stack[b]);
                self.keep(op, r);
            }
            11 => {
                let (x, f) = (self.pick(), self.p.scalar());
                let r = wit::scale(&self.stack[x], f);
                self.keep(op, r);
            }
            12 => {
                let (f, x) = (reduce_op(self.p.byte()), self.pick());
                let r = wit::reduce(f, &self.stack[x]);
                self.keep(op, r);
            }
            13 => {
                let x = self.pick();
                let r = wit::softmax(&self.stack[x]);
                self.keep(op, r);
            }
            14 => {
                let (x, g, b, eps) = (self.pick(), self.pick(), self.pick(), self.p.scalar());
                let r = wit::layer_norm(&self.stack[x], &self.stack[g], &self.stack[b], eps);
                self.keep(op, r);
            }
            15 => {
                let (x, g, eps) = (self.pick(), self.pick(), self.p.scalar());
                let r = wit::rms_norm(&self.stack[x], &self.stack[g], eps);
                self.keep(op, r);
            }
            16 => {
                let (t, i) = (self.pick(), self.pick());
                let r = wit::gather(&self.stack[t], &self.stack[i]);
                self.keep(op, r);
            }
            17 => {
                let (x, shape) = (self.pick(), self.p.shape());
                let r = wit::reshape(&self.stack[x], &shape);
                self.keep(op, r);
            }
            18 => {
                let x = self.pick();
                let axes: Vec<u32> = (0..self.p.byte() % 6)
                    .map(|_| u32::from(self.p.byte() % 6))
                    .collect();
                let r = wit::permute(&self.stack[x], &axes);
                self.keep(op, r);
            }
            19 => {
                let (x, axis, start, end) = (self.pick(), self.p.dim(), self.p.dim(), self.p.dim());
                let r = wit::slice(&self.stack[x], axis, start, end);
                self.keep(op, r);
            }
            20 => {
                let (xs, axis) = (self.picks(), self.p.dim());
                let xs: Vec<&Tensor> = xs.iter().map(|&i| &self.stack[i]).collect();
                let r = wit::concat(&xs, axis);
                self.keep(op, r);
            }
            21 => {
                let (x, m) = (self.pick(), self.pick());
                let r = wit::masked_mean_pool(&self.stack[x], &self.stack[m]);
                self.keep(op, r);
            }
            22 => {
                let x = self.pick();
                let r = wit::argmax(&self.stack[x]);
                self.keep(op, r);
            }
            23 => {
                let (x, to) = (self.pick(), dtype(self.p.byte()));
                let r = wit::cast(&self.stack[x], to);
                self.keep(op, r);
            }
            24 => {
                let (x, w) = (self.pick(), self.pick());
                let bias = if self.p.flag() {
                    Some(self.pick())
                } else {
                    None
                };
                let stride = (self.p.dim(), self.p.dim());
                let padding = (self.p.dim(), self.p.dim());
                let r = wit::conv2d(
                    &self.stack[x],
                    &self.stack[w],
                    bias.map(|b| &self.stack[b]),
                    stride,
                    padding,
                );
                self.keep(op, r);
            }
            25 => {
                let x = self.pick();
                let kernel = (self.p.dim(), self.p.dim());
                let stride = (self.p.dim(), self.p.dim());
                let padding = (self.p.dim(), self.p.dim());
                let r = wit::max_pool2d(&self.stack[x], kernel, stride, padding);
                self.keep(op, r);
            }
            26 => {
                let x = self.pick();
                let t = &self.stack[x];
                let r: Result<Vec<u8>, wit::Error> = match t.dtype() {
                    Dtype::F32 => t
                        .read_f32()
                        .map(|v| v.iter().flat_map(|f| f.to_bits().to_le_bytes()).collect()),
                    Dtype::I32 => t
                        .read_i32()
                        .map(|v| v.iter().flat_map(|i| i.to_le_bytes()).collect()),
                };
                match r {
                    Ok(bytes) => self.record.bytes(op, &bytes),
                    Err(e) => self.record.refused(op, &e),
                }
            }
            27 => {
                // A read of the wrong dtype is refused, not a trap.
                let x = self.pick();
                let t = &self.stack[x];
                let r = match t.dtype() {
                    Dtype::F32 => t.read_i32().map(|v| v.len()),
                    Dtype::I32 => t.read_f32().map(|v| v.len()),
                };
                match r {
                    Ok(n) => self.record.bytes(op, &(n as u64).to_le_bytes()),
                    Err(e) => self.record.refused(op, &e),
                }
            }
            28 => {
                if !self.stack.is_empty() {
                    let x = self.pick();
                    self.stack.remove(x);
                }
            }
            29 => {
                let (name, offset) = (self.p.name(), self.p.offset());
                let (enc, shape) = (encoding(self.p.byte()), self.p.shape());
                let r = job_io::tensor_from_input(&name, offset, enc, &shape);
                self.keep(op, r);
            }
            30 => {
                let (name, offset) = (self.p.name(), self.p.offset());
                let (format, shape) = (block_format(self.p.byte()), self.p.shape());
                let r = job_io::tensor_from_blocks(&name, offset, format, &shape);
                self.keep(op, r);
            }
            31 => {
                let (name, offset) = (self.p.name(), self.p.offset());
                let (format, shape) = (block_format(self.p.byte()), self.p.shape());
                let r = job_io::blocks_from_input(&name, offset, format, &shape);
                self.keep(op, r);
            }
            32 => {
                let (name, x) = (self.p.name(), self.pick());
                let r = job_io::write_tensor_output(&name, &self.stack[x]);
                self.unit(op, r);
            }
            33 => {
                let name = self.p.name();
                let data: Vec<u8> = (0..self.p.byte()).map(|_| self.p.byte()).collect();
                let r = job_io::write_output(&name, &data);
                self.unit(op, r);
            }
            34 => {
                let (name, offset) = (self.p.name(), self.p.offset());
                let len = match self.p.byte() % 3 {
                    0 => u64::from(self.p.byte()),
                    1 => u64::from(self.p.u32_le()),
                    _ => u64::MAX,
                };
                match job_io::read_input(&name, offset, len) {
                    Ok(bytes) => self.record.bytes(op, &bytes),
                    Err(e) => self.record.refused(op, &e),
                }
            }
            35 => {
                let len = usize::from(self.p.byte());
                let text: String = (0..len)
                    .map(|_| char::from(self.p.byte() % 96 + 32))
                    .collect();
                job_io::log(&text);
            }
            36 => {
                let name = self.p.name();
                let v = job_io::param(&name);
                self.record.bytes(op, v.as_deref().unwrap_or("").as_bytes());
            }
            37 => {
                let inputs = job_io::list_inputs();
                let s = job_io::shard();
                let mut seen = Vec::new();
                for i in inputs {
                    seen.extend_from_slice(i.name.as_bytes());
                    seen.extend_from_slice(&i.size.to_le_bytes());
                }
                seen.extend_from_slice(&s.index.to_le_bytes());
                seen.extend_from_slice(&s.count.to_le_bytes());
                self.record.bytes(op, &seen);
            }
            38 => {
                let x = self.pick();
                let t = &self.stack[x];
                let n = t.numel();
                self.record.bytes(op, &n.to_le_bytes());
            }
            _ => {
                // Many tensors at once: the quota, not the host, says no.
                let (shape, v) = (self.p.shape(), self.p.scalar());
                for _ in 0..self.p.byte() % 8 {
                    let r = wit::fill(&shape, v);
                    self.keep(op, r);
                }
            }
        }
    }
}

fn run() -> Result<(), String> {
    let bytes = job_io::read_input("program", 0, 1 << 20)
        .map_err(|e| format!("wit-fuzz: no input `program`: {e:?}"))?;
    let mut m = Machine {
        p: Program { bytes, at: 0 },
        stack: Vec::new(),
        record: Record { out: Vec::new() },
    };
    let mut calls = 0;
    while !m.p.done() && calls < MAX_CALLS {
        m.step();
        calls += 1;
    }
    drop(m.stack);
    job_io::write_output("calls", &m.record.out).map_err(|e| format!("{e:?}"))
}

assay_guest::job!(run);
