//! The example guests, built for `wasm32-wasip2` and ready to run.
//!
//! This crate's build script builds every example guest in release with a
//! nested `cargo build --target wasm32-wasip2` into
//! `<workspace>/target/guests` whenever `wit/`, `guest-sdk/` or a guest's
//! folder changes, so tests and the CLI always get fresh components with no
//! manual step. It needs the `wasm32-wasip2` target (`rust-toolchain.toml`
//! lists it; otherwise `rustup target add wasm32-wasip2`).
//!
//! ```no_run
//! use assay_guests::Guest;
//!
//! let path = Guest::Matmul.path();            // …/target/guests/wasm32-wasip2/release/matmul.wasm
//! let bytes: &[u8] = Guest::Matmul.bytes();   // embedded in the binary
//! let a = assay_guests::matrix::encode(2, 2, &[1.0, 2.0, 3.0, 4.0]);
//! ```
//!
//! | guest | world | what |
//! | --- | --- | --- |
//! | [`Guest::Hello`] | `assay:gpu/job` | touches WASI (stdout, stderr, clocks, random); outputs `greeting.txt`, `wasi.json` |
//! | [`Guest::Matmul`] | `assay:gpu/job` | `c = a · b` on inputs `a`, `b` in the [`matrix`] format; output `c` |
//! | [`Guest::Hostile`] | `assay:gpu/job` | misbehaves as param `mode` says (see `examples/hostile/src/lib.rs`) |
//! | [`Guest::Microbench`] | `assay:gpu/job` | param `mode`: `trivial`, `host-calls`, `tiny-matmul` (param `n`) |
//! | [`Guest::WasiCommand`] | `wasi:cli/command` | a plain `fn main`: the wrong world, which the host must refuse |
//! | [`Guest::MinilmEmbed`] | `assay:gpu/job` | all-MiniLM-L6-v2 sentence embeddings (see `examples/minilm-embed/src/lib.rs`) |
//! | [`Guest::Mlp`] | `assay:gpu/job` | a 2-layer MLP; weights from safetensors input `model` (see [`safetensors`]), rows from input `x`; outputs `probs`, `classes.txt`; shards split the rows |
//! | [`Guest::GgufInspect`] | `assay:gpu/job` | GGUF input `model`: output `header.json` (metadata, tensor table) and `<name>.f32` for each tensor in param `tensors` (see `examples/gguf-inspect/src/lib.rs`) |
//! | [`Guest::LlmGenerate`] | `assay:gpu/job` | chat completion: GGUF Llama input `model` (SmolLM2-135M-Instruct), input `messages`; params `max_tokens`, `temperature`, `top_p`, `stop`, `seed`; output `completion.json` (see `examples/llm-generate/src/lib.rs`) |
//! | [`Guest::Challenge`] | `assay:gpu/job` | proof of hardware: params `seed`, `n`, `rounds`; ≈ `rounds · 2n³` FLOPs of seeded matmul on the device; output `digest` (see `examples/challenge/src/lib.rs`, sizes in `assay_protocol::challenge`) |
//! | [`Guest::WitFuzz`] | `assay:gpu/job` | reads input `program` as calls into every tensor op and `job-io` call, arguments from the bytes; output `calls` (what each call gave); driven by the `wit_host_surface` fuzz target |

#![forbid(unsafe_code)]

use std::path::Path;

/// One example guest component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Guest {
    /// `examples/hello`: touches WASI, writes `greeting.txt` and `wasi.json`.
    Hello,
    /// `examples/matmul`: `c = a · b`, matrices in the [`matrix`] format.
    Matmul,
    /// `examples/hostile`: misbehaves as the job param `mode` says.
    Hostile,
    /// `examples/microbench`: host benchmark workloads (param `mode`).
    Microbench,
    /// `examples/wasi-command`: a `wasi:cli/command` component, not a job.
    WasiCommand,
    /// `examples/minilm-embed`: sentence embeddings (inputs `text`, `tokenizer`, `model`, `config`, …).
    MinilmEmbed,
    /// `examples/mlp`: a two-layer MLP classifier, weights from a safetensors input.
    Mlp,
    /// `examples/challenge`: the proof-of-hardware job (params `seed`, `n`, `rounds`).
    Challenge,
    /// `examples/gguf-inspect`: a GGUF file's header, and tensors as the device holds them.
    GgufInspect,
    /// `examples/llm-generate`: chat completions with a GGUF Llama model (inputs `model`, `messages`).
    LlmGenerate,
    /// `examples/wit-fuzz`: input `program` read as calls into the whole host surface (for fuzzing).
    WitFuzz,
}

/// `matmul.wasm`, embedded (only this guest's bytes are linked into a binary that uses it).
pub static MATMUL_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_MATMUL"));
/// `hello.wasm`, embedded.
pub static HELLO_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_HELLO"));
/// `hostile.wasm`, embedded.
pub static HOSTILE_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_HOSTILE"));
/// `microbench.wasm`, embedded.
pub static MICROBENCH_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_MICROBENCH"));
/// `wasi-command.wasm`, embedded.
pub static WASI_COMMAND_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_WASI_COMMAND"));
/// `minilm_embed.wasm`, embedded.
pub static MINILM_EMBED_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_MINILM_EMBED"));
/// `mlp.wasm`, embedded.
pub static MLP_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_MLP"));
/// `challenge.wasm`, embedded (what the coordinator sends as the proof-of-hardware job).
pub static CHALLENGE_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_CHALLENGE"));
/// `gguf_inspect.wasm`, embedded.
pub static GGUF_INSPECT_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_GGUF_INSPECT"));
/// `llm_generate.wasm`, embedded.
pub static LLM_GENERATE_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_LLM_GENERATE"));
/// `wit_fuzz.wasm`, embedded.
pub static WIT_FUZZ_WASM: &[u8] = include_bytes!(env!("ASSAY_GUEST_WIT_FUZZ"));

impl Guest {
    /// Every guest.
    pub const ALL: [Guest; 11] = [
        Guest::Hello,
        Guest::Matmul,
        Guest::Hostile,
        Guest::Microbench,
        Guest::WasiCommand,
        Guest::Mlp,
        Guest::MinilmEmbed,
        Guest::Challenge,
        Guest::GgufInspect,
        Guest::LlmGenerate,
        Guest::WitFuzz,
    ];

    /// The guest's package name (`hello`, `matmul`, `hostile`, `microbench`, `wasi-command`, `mlp`, `minilm-embed`, `challenge`, `gguf-inspect`, `llm-generate`, `wit-fuzz`).
    pub fn name(self) -> &'static str {
        match self {
            Guest::Hello => "hello",
            Guest::Matmul => "matmul",
            Guest::Hostile => "hostile",
            Guest::Microbench => "microbench",
            Guest::WasiCommand => "wasi-command",
            Guest::MinilmEmbed => "minilm-embed",
            Guest::Mlp => "mlp",
            Guest::Challenge => "challenge",
            Guest::GgufInspect => "gguf-inspect",
            Guest::LlmGenerate => "llm-generate",
            Guest::WitFuzz => "wit-fuzz",
        }
    }

    /// The guest named `name` (as [`Guest::name`] spells it).
    pub fn from_name(name: &str) -> Option<Guest> {
        Guest::ALL.into_iter().find(|g| g.name() == name)
    }

    /// Whether the component targets the `assay:gpu/job` world (all but [`Guest::WasiCommand`]).
    pub fn is_job(self) -> bool {
        self != Guest::WasiCommand
    }

    /// The absolute path of the built component (`.wasm`), as of this crate's build.
    pub fn path(self) -> &'static Path {
        Path::new(match self {
            Guest::Hello => env!("ASSAY_GUEST_HELLO"),
            Guest::Matmul => env!("ASSAY_GUEST_MATMUL"),
            Guest::Hostile => env!("ASSAY_GUEST_HOSTILE"),
            Guest::Microbench => env!("ASSAY_GUEST_MICROBENCH"),
            Guest::WasiCommand => env!("ASSAY_GUEST_WASI_COMMAND"),
            Guest::MinilmEmbed => env!("ASSAY_GUEST_MINILM_EMBED"),
            Guest::Mlp => env!("ASSAY_GUEST_MLP"),
            Guest::Challenge => env!("ASSAY_GUEST_CHALLENGE"),
            Guest::GgufInspect => env!("ASSAY_GUEST_GGUF_INSPECT"),
            Guest::LlmGenerate => env!("ASSAY_GUEST_LLM_GENERATE"),
            Guest::WitFuzz => env!("ASSAY_GUEST_WIT_FUZZ"),
        })
    }

    /// The component's bytes, embedded at compile time. (Using this links
    /// every guest into the binary; use a `*_WASM` static to embed just one.)
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Guest::Hello => HELLO_WASM,
            Guest::Matmul => MATMUL_WASM,
            Guest::Hostile => HOSTILE_WASM,
            Guest::Microbench => MICROBENCH_WASM,
            Guest::WasiCommand => WASI_COMMAND_WASM,
            Guest::MinilmEmbed => MINILM_EMBED_WASM,
            Guest::Mlp => MLP_WASM,
            Guest::Challenge => CHALLENGE_WASM,
            Guest::GgufInspect => GGUF_INSPECT_WASM,
            Guest::LlmGenerate => LLM_GENERATE_WASM,
            Guest::WitFuzz => WIT_FUZZ_WASM,
        }
    }
}

impl std::fmt::Display for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The path of a guest's built component (same as [`Guest::path`]).
pub fn path(guest: Guest) -> &'static Path {
    guest.path()
}

/// A guest's component bytes (same as [`Guest::bytes`]).
pub fn bytes(guest: Guest) -> &'static [u8] {
    guest.bytes()
}

/// The folder holding the built components (`<workspace>/target/guests/wasm32-wasip2/release`).
pub fn dir() -> &'static Path {
    Path::new(env!("ASSAY_GUESTS_DIR"))
}

/// The matrix file format of the `matmul` guest's inputs and output:
/// `rows: u32 LE`, `cols: u32 LE`, then `rows·cols` f32 LE, row-major.
pub mod matrix {
    /// Encodes a `rows × cols` matrix. Returns `None` if `data.len() != rows·cols`.
    pub fn encode(rows: u32, cols: u32, data: &[f32]) -> Option<Vec<u8>> {
        if data.len() as u64 != u64::from(rows) * u64::from(cols) {
            return None;
        }
        let mut out = Vec::with_capacity(8 + data.len() * 4);
        out.extend_from_slice(&rows.to_le_bytes());
        out.extend_from_slice(&cols.to_le_bytes());
        for v in data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        Some(out)
    }

    /// Decodes a matrix file into `(rows, cols, data)`. Returns `None` if the
    /// size does not match the header.
    pub fn decode(bytes: &[u8]) -> Option<(u32, u32, Vec<f32>)> {
        let rows = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
        let cols = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
        let body = &bytes[8..];
        if body.len() as u64 != u64::from(rows) * u64::from(cols) * 4 {
            return None;
        }
        let data = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some((rows, cols, data))
    }

    /// The reference product of two decoded matrices (`a: m×k`, `b: k×n`),
    /// computed as the host must: one `fma` per `k`, ascending, from `+0.0`.
    /// Returns `None` if the inner dimensions differ.
    pub fn reference_matmul(
        m: u32,
        k: u32,
        a: &[f32],
        k2: u32,
        n: u32,
        b: &[f32],
    ) -> Option<Vec<f32>> {
        if k != k2
            || a.len() as u64 != u64::from(m) * u64::from(k)
            || b.len() as u64 != u64::from(k) * u64::from(n)
        {
            return None;
        }
        let (m, k, n) = (m as usize, k as usize, n as usize);
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for p in 0..k {
                    acc = a[i * k + p].mul_add(b[p * n + j], acc);
                }
                c[i * n + j] = acc;
            }
        }
        Some(c)
    }
}

/// Writing safetensors files (for the `mlp` guest's `model` input, or any
/// test that needs a model), and the element encodings they use.
pub mod safetensors {
    /// One tensor to write: its name, safetensors dtype (`"F32"`, `"F16"`,
    /// `"BF16"`, `"I32"`, `"I64"`, …), shape and little-endian bytes.
    #[derive(Debug, Clone, Copy)]
    pub struct Entry<'a> {
        /// The tensor's name.
        pub name: &'a str,
        /// The dtype as safetensors spells it.
        pub dtype: &'a str,
        /// The dimensions.
        pub shape: &'a [u64],
        /// The elements, little-endian, row-major.
        pub data: &'a [u8],
    }

    /// A safetensors file holding `entries` (data in the given order, header
    /// keys sorted), with optional `__metadata__`. The sizes are not checked
    /// against the shapes, so tests can write broken files on purpose.
    pub fn encode(entries: &[Entry<'_>], metadata: &[(&str, &str)]) -> Vec<u8> {
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut offset = 0usize;
        for e in entries {
            let shape: Vec<String> = e.shape.iter().map(u64::to_string).collect();
            let value = format!(
                "{{\"dtype\":{},\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                json_string(e.dtype),
                shape.join(","),
                offset,
                offset + e.data.len()
            );
            fields.push((e.name.to_owned(), value));
            offset += e.data.len();
        }
        fields.sort();
        let mut parts: Vec<String> = Vec::new();
        if !metadata.is_empty() {
            let meta: Vec<String> = metadata
                .iter()
                .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
                .collect();
            parts.push(format!("\"__metadata__\":{{{}}}", meta.join(",")));
        }
        parts.extend(
            fields
                .iter()
                .map(|(k, v)| format!("{}:{v}", json_string(k))),
        );
        let mut header = format!("{{{}}}", parts.join(",")).into_bytes();
        // Pad with spaces to a multiple of 8, as the reference writer does.
        while header.len() % 8 != 0 {
            header.push(b' ');
        }
        let mut out = Vec::with_capacity(8 + header.len() + offset);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        for e in entries {
            out.extend_from_slice(e.data);
        }
        out
    }

    fn json_string(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    /// f32 values as little-endian bytes (dtype `F32`).
    pub fn f32_le(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// f32 values rounded to bfloat16 (nearest, ties to even), little-endian (dtype `BF16`).
    pub fn bf16_le(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|&v| f32_to_bf16(v).to_le_bytes())
            .collect()
    }

    /// f32 values rounded to IEEE binary16 (nearest, ties to even), little-endian (dtype `F16`).
    pub fn f16_le(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|&v| f32_to_f16(v).to_le_bytes())
            .collect()
    }

    /// f32 → bfloat16 bits, round to nearest even; NaN stays NaN.
    pub fn f32_to_bf16(x: f32) -> u16 {
        let b = x.to_bits();
        if x.is_nan() {
            return ((b >> 16) as u16) | 0x0040;
        }
        let lsb = (b >> 16) & 1;
        (b.wrapping_add(0x7fff + lsb) >> 16) as u16
    }

    /// bfloat16 bits → f32 (exact).
    pub fn bf16_to_f32(h: u16) -> f32 {
        f32::from_bits(u32::from(h) << 16)
    }

    /// f32 → binary16 bits, round to nearest even (subnormals kept, overflow to ∞).
    pub fn f32_to_f16(x: f32) -> u16 {
        let b = x.to_bits();
        let sign = ((b >> 16) & 0x8000) as u16;
        let exp = ((b >> 23) & 0xff) as i32;
        let man = b & 0x7f_ffff;
        if exp == 0xff {
            return sign | 0x7c00 | if man != 0 { 0x0200 } else { 0 };
        }
        let e = exp - 127 + 15;
        if e >= 0x1f {
            return sign | 0x7c00;
        }
        if e <= 0 {
            if e < -10 {
                return sign;
            }
            let m = man | 0x80_0000;
            let shift = (14 - e) as u32;
            let half = 1u32 << (shift - 1);
            let rem = m & ((1u32 << shift) - 1);
            let mut h = m >> shift;
            if rem > half || (rem == half && h & 1 == 1) {
                h += 1;
            }
            return sign | h as u16;
        }
        let mut h = ((e as u32) << 10) | (man >> 13);
        let rem = man & 0x1fff;
        if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) {
            h += 1;
        }
        sign | h as u16
    }

    /// binary16 bits → f32 (exact).
    pub fn f16_to_f32(h: u16) -> f32 {
        let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
        let exp = i32::from((h >> 10) & 0x1f);
        let man = f32::from(h & 0x3ff);
        match exp {
            0 => sign * man * 2f32.powi(-24),
            0x1f if man == 0.0 => sign * f32::INFINITY,
            0x1f => f32::NAN,
            _ => sign * (1.0 + man / 1024.0) * 2f32.powi(exp - 15),
        }
    }
}
