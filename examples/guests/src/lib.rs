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

impl Guest {
    /// Every guest.
    pub const ALL: [Guest; 5] = [
        Guest::Hello,
        Guest::Matmul,
        Guest::Hostile,
        Guest::Microbench,
        Guest::WasiCommand,
    ];

    /// The guest's package name (`hello`, `matmul`, `hostile`, `microbench`, `wasi-command`).
    pub fn name(self) -> &'static str {
        match self {
            Guest::Hello => "hello",
            Guest::Matmul => "matmul",
            Guest::Hostile => "hostile",
            Guest::Microbench => "microbench",
            Guest::WasiCommand => "wasi-command",
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
