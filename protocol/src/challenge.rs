//! Proof of hardware: the challenge job a provider must answer in time for
//! the device class it claims.
//!
//! At registration and at random times the coordinator sends a provider a
//! run of the `challenge` guest (`examples/challenge`, embedded as
//! `assay_guests::CHALLENGE_WASM`) with [`challenge_spec`]`(class, seed, t)`,
//! where `class` is [`classify`] of the GPUs the provider registered and
//! `seed` is 32 fresh random bytes. The provider passes if its receipt
//! arrives within [`DeviceClass::bound_ms`] of the lease and its outputs
//! root matches a re-execution (by hash, like any job's: the challenge is
//! bit-exact on every backend, so a CPU verifier can check a GPU's answer).
//! A provider that fails is not matched to jobs that need that class.
//!
//! # The guest
//!
//! From the seed the guest draws thin factors and forms two dense n×n f32
//! operands on the device, `B` and `D`, then runs `rounds` steps of
//! `X ← tanh(rms_norm(X·B, γₜ) + D)` from `X = D`, with fresh seeded gains
//! γₜ each round, and returns `X·w` for a seeded vector `w` (output
//! `digest`; the layout and the reasons for this shape are in
//! `examples/challenge/src/lib.rs`). Its work is [`challenge_work`]`(n,
//! rounds)` — `rounds · 2n³` FLOPs of matmul plus `O(rounds · n²)` — exactly
//! as the host meters it, and its live device memory peaks at
//! [`peak_gpu_bytes`]`(n)`, about 16·n² bytes.
//!
//! # Sizing
//!
//! Each class has a **floor**: the f32 matmul throughput that our CUDA
//! kernels (or, for [`DeviceClass::Cpu`], the portable scalar CPU path)
//! reach on the slowest mainstream device of that class. Its bound is
//!
//! ```text
//! bound = OVERHEAD_MS + MARGIN × flops / floor          (MARGIN = 5/4)
//! ```
//!
//! `OVERHEAD_MS` (5 s) covers what is not compute: the lease poll, fetching
//! the component, compiling it (once per provider: the compiled component is
//! cached), signing and sending the receipt. A device at the floor finishes
//! its compute in 80% of the compute allowance; a faster one has more slack.
//! Each class's work is then chosen so that a machine only as fast as
//! [`ClassParams::excludes_mflops`] (the class below) misses the bound:
//! `flops / excluded > bound`, which needs
//! `flops · (1/excluded − MARGIN/floor) > OVERHEAD_MS`.
//!
//! Peak f32 throughput, and the floors (rates are sustained FMA throughput,
//! 1 TFLOP/s = 10¹² FLOP/s):
//!
//! - **CPU**: our AVX-512 matmul runs at ≈ 120 GFLOP/s per core
//!   (BENCHMARKS.md, 1024³), so a 16-core server reaches ≈ 2 TFLOP/s; that
//!   is the rate the smallest GPU class must exclude. The CPU class's own
//!   floor is the portable scalar path, ≈ 0.5 GFLOP/s, so any CPU passes.
//! - **GPU small** (< 20 GiB): T4 8.1 TFLOP/s peak (70 W cap: ≈ 6.5
//!   sustained), RTX 3060 12.7, V100-16GB 15.7, RTX 4080 48.7. Floor
//!   **4 TFLOP/s**: the T4 at ≈ 60% of its sustained peak.
//! - **GPU medium** (20–60 GiB): A100-40GB 19.5, A10 31.2, L4 30.3 (72 W
//!   cap), RTX 3090 35.6, A6000 38.7, L40S 91.6, RTX 4090 82.6. Floor
//!   **8 TFLOP/s**: the A100-40GB at 41%, the L4 at about half its
//!   power-capped rate. (The A30, 10.3 peak, would need 78% and is expected
//!   to fail this class: it has the f32 rate of a small GPU.)
//! - **GPU large** (≥ 60 GiB): A100-80GB 19.5, H100 PCIe 51, H100 SXM and
//!   H200 67. Floor **10 TFLOP/s**: the A100-80GB at 51%.
//!
//! Our CUDA matmul (128×128 tiles, 8×8 outputs per thread, double-buffered
//! shared memory, one `fmaf` per step: the classic SGEMM structure, which
//! usually reaches 60–90% of peak) has not been timed on these devices
//! yet: the floors assume 40–60%. Calibrate them with
//! `cargo bench -p assay-host-gpu --features cuda --bench cuda_matmul` on
//! the slowest device of each class and adjust [`ClassParams::floor_mflops`].
//!
//! | class | n | rounds | FLOPs | floor | bound | at the floor | excluded rate | it takes |
//! |---|---|---|---|---|---|---|---|---|
//! | cpu | 256 | 4 | 1.45·10⁸ | 0.5 GFLOP/s | 5.36 s | 0.29 s | — | — |
//! | gpu-small | 8192 | 64 | 7.04·10¹³ | 4 TFLOP/s | 27.0 s | 17.6 s | 2 TFLOP/s (16-core CPU) | 35.2 s |
//! | gpu-medium | 8192 | 96 | 1.06·10¹⁴ | 8 TFLOP/s | 21.5 s | 13.2 s | 4 TFLOP/s (small floor) | 26.4 s |
//! | gpu-large | 16384 | 16 | 1.41·10¹⁴ | 10 TFLOP/s | 22.6 s | 14.1 s | 4 TFLOP/s (small floor) | 35.2 s |
//!
//! (Times are compute only; the bound adds the 5 s overhead allowance.) An
//! H100 at ~35 TFLOP/s (half of its peak) needs ≈ 4 s for the large
//! challenge, so the honest margin is wide where it matters.
//!
//! What the bounds do **not** separate, and why:
//!
//! - **Large from medium.** The A100 comes as 40 GB (medium) and 80 GB
//!   (large): the same chip at the same speed. Telling them apart needs a
//!   memory test, not a clock; to exclude the medium floor (8 TFLOP/s) with
//!   this formula the large challenge would need > 440 TFLOP, which a CPU
//!   verifier would re-execute for minutes. The large class's challenge
//!   excludes the small floor instead. A device that claims more memory than
//!   it has fails the jobs that use it with a device out-of-memory error (a
//!   provider fault, which the coordinator counts like any).
//! - **Big CPUs from small GPUs.** A server with ≳ 40 AVX-512 cores runs our
//!   matmul at ≳ 4 TFLOP/s and passes the small class: it does deliver that
//!   class's f32 throughput, which is what a renter pays for.
//! - **A busy GPU** is slower: the coordinator should send random-time
//!   challenges only to a provider with no job leased, or count a miss only
//!   after a retry.
//!
//! The cost of checking: a CPU verifier re-executes at ≈ 1–2 TFLOP/s
//! (16 cores), so the large challenge costs it ≈ 1–2 minutes and ≈ 4 GiB;
//! the CPU class's is negligible.
//!
//! Measured on the 2-core development machine (Xeon, AVX-512, other builds
//! running; `timing_on_this_cpu` in `examples/guests/tests/challenge.rs`):
//! the CPU-class challenge runs in ≈ 3 ms (AVX-512 or AVX2) and 158 ms on
//! the scalar path (0.9 GFLOP/s, above its 0.5 floor); one n = 8192 round
//! takes 7.8 s (142 GFLOP/s for two threads), consistent with ≈ 120 GFLOP/s
//! per core behind the 2 TFLOP/s CPU ceiling.
//!
//! # Cut-offs
//!
//! GPU memory sizes cluster: 8–16 GB (T4, RTX 30/40 consumer cards, V100-16),
//! 24–48 GB (RTX 3090/4090, A10, L4, A30, A100-40, A40/A6000/L40S), and
//! 80 GB and up (A100-80, H100, H200, B200). The cut-offs, 20 GiB and
//! 60 GiB, sit in the gaps, far from what drivers report for the nominal
//! sizes (a "24 GB" card reports ≈ 23.6 GiB, "48 GB" ≈ 48.0 GiB, "80 GB"
//! ≈ 79.6 GiB), so rounding and reserved memory never move a card across.
//! (20 GB cards such as the RTX 4000 Ada report just under 20 GiB and are
//! small.) A provider with several GPUs is classed by its largest (a job
//! runs on one device), so the challenge proves one device of that class,
//! not all of them. A GPU registered with unknown memory (0 bytes) claims
//! the small class.
//!
//! # Example
//!
//! ```
//! use assay_protocol::challenge::{DeviceClass, challenge_spec, classify};
//!
//! let class = classify(&[("NVIDIA H100 80GB HBM3".to_string(), 81_559 << 20)]);
//! assert_eq!(class, DeviceClass::GpuLarge);
//! let spec = challenge_spec(class, [7; 32], 1_767_225_600_000);
//! assert_eq!(spec.params["n"], "16384");
//! // The receipt must arrive within this many ms of the lease:
//! assert!(class.bound_ms() < 30_000);
//! ```

use std::collections::BTreeMap;

use crate::JobSpec;

/// The job param names the guest reads.
pub const PARAM_SEED: &str = "seed";
/// See [`PARAM_SEED`].
pub const PARAM_N: &str = "n";
/// See [`PARAM_SEED`].
pub const PARAM_ROUNDS: &str = "rounds";
/// The guest's output.
pub const OUTPUT_DIGEST: &str = "digest";
/// Bytes of the digest's header (magic, n, rounds, seed) before the n f32.
pub const DIGEST_HEADER_BYTES: u64 = 48;

/// Inner dimension of the guest's thin factors (`RANK` in the guest).
pub const RANK: u64 = 16;
/// Largest n and rounds the guest accepts.
pub const MAX_N: u32 = 65_536;
/// See [`MAX_N`].
pub const MAX_ROUNDS: u32 = 1_000_000;

/// What a bound allows beyond compute: lease poll, component fetch, compile
/// (first challenge only; cached after), receipt signing and submission.
pub const OVERHEAD_MS: u64 = 5_000;
/// The compute allowance over the floor's time, as a fraction (5/4).
pub const MARGIN_NUM: u64 = 5;
/// See [`MARGIN_NUM`].
pub const MARGIN_DEN: u64 = 4;
/// Our matmul on ≈ 16 AVX-512 cores (≈ 120 GFLOP/s each): the fastest CPU
/// the smallest GPU class is sized to exclude, in MFLOP/s.
pub const CPU_CEILING_MFLOPS: u64 = 2_000_000;

/// The slowest re-execution the spec's watchdog allows for (MFLOP/s):
/// a CPU verifier with about one free AVX-512 core.
pub const VERIFIER_FLOOR_MFLOPS: u64 = 100_000;
/// Guest fuel per f32 drawn from the seed: blake3's XOF in portable wasm
/// and the conversion, ≈ 170 measured (n = 16 … 1024); 2.3× headroom.
const FUEL_PER_DRAWN_VALUE: u64 = 400;
/// Guest fuel per round beyond its γₜ (a few host calls); generous.
const FUEL_PER_ROUND: u64 = 10_000;
/// Guest fuel outside the loops (start-up, params, the digest: ≈ 15,000
/// measured, plus 4n for the digest's bytes, covered by the per-value rate).
const FUEL_BASE: u64 = 1_000_000;
/// Guest linear memory: the factors are ≤ 4 MiB at n = 65536.
const GUEST_MEMORY_BYTES: u64 = 64 << 20;
/// One GiB.
const GIB: u64 = 1 << 30;

/// A provider's device class: what it claims, hence which challenge it gets
/// and which jobs it may be matched to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceClass {
    /// No GPU claimed.
    Cpu,
    /// A GPU with < 20 GiB of memory.
    GpuSmall,
    /// A GPU with 20 GiB to < 60 GiB.
    GpuMedium,
    /// A GPU with ≥ 60 GiB.
    GpuLarge,
}

/// A class's challenge size and the throughput it is sized for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassParams {
    /// Matrix size.
    pub n: u32,
    /// Chained n×n products.
    pub rounds: u32,
    /// The throughput (MFLOP/s) of the slowest device this class admits.
    pub floor_mflops: u64,
    /// A machine this fast (MFLOP/s) misses the bound: the class below.
    /// `None` for the lowest class.
    pub excludes_mflops: Option<u64>,
}

/// Why a challenge of a given size cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// `n` or `rounds` is outside what the guest accepts.
    #[error("challenge {what} = {value} is out of range 1..={max}")]
    OutOfRange {
        /// `n` or `rounds`.
        what: &'static str,
        /// The value given.
        value: u32,
        /// The largest accepted.
        max: u32,
    },
    /// The work or memory does not fit in a u64.
    #[error("challenge n = {n}, rounds = {rounds} is too large to meter")]
    TooLarge {
        /// Matrix size.
        n: u32,
        /// Rounds.
        rounds: u32,
    },
}

impl DeviceClass {
    /// Every class, lowest first.
    pub const ALL: [DeviceClass; 4] = [
        DeviceClass::Cpu,
        DeviceClass::GpuSmall,
        DeviceClass::GpuMedium,
        DeviceClass::GpuLarge,
    ];

    /// The class's name: `cpu`, `gpu-small`, `gpu-medium`, `gpu-large`.
    pub fn name(self) -> &'static str {
        match self {
            DeviceClass::Cpu => "cpu",
            DeviceClass::GpuSmall => "gpu-small",
            DeviceClass::GpuMedium => "gpu-medium",
            DeviceClass::GpuLarge => "gpu-large",
        }
    }

    /// The class named `name` (as [`DeviceClass::name`] spells it).
    pub fn from_name(name: &str) -> Option<DeviceClass> {
        DeviceClass::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The class's challenge size and throughput floor (the table in the
    /// [module docs](self)).
    pub fn params(self) -> ClassParams {
        match self {
            DeviceClass::Cpu => ClassParams {
                n: 256,
                rounds: 4,
                floor_mflops: 500,
                excludes_mflops: None,
            },
            DeviceClass::GpuSmall => ClassParams {
                n: 8192,
                rounds: 64,
                floor_mflops: 4_000_000,
                excludes_mflops: Some(CPU_CEILING_MFLOPS),
            },
            DeviceClass::GpuMedium => ClassParams {
                n: 8192,
                rounds: 96,
                floor_mflops: 8_000_000,
                excludes_mflops: Some(DeviceClass::GpuSmall.params().floor_mflops),
            },
            DeviceClass::GpuLarge => ClassParams {
                n: 16384,
                rounds: 16,
                floor_mflops: 10_000_000,
                // Not the medium floor: see "What the bounds do not separate".
                excludes_mflops: Some(DeviceClass::GpuSmall.params().floor_mflops),
            },
        }
    }

    /// FLOPs of the class's challenge (the `flops` of [`challenge_work`]).
    pub fn flops(self) -> u64 {
        let p = self.params();
        // The class table is small enough that this never overflows (tested).
        challenge_work(p.n, p.rounds).map_or(u64::MAX, |w| w.flops)
    }

    /// Milliseconds from lease to receipt within which a device of this
    /// class must answer: `OVERHEAD_MS + 5/4 · flops / floor`.
    pub fn bound_ms(self) -> u64 {
        let p = self.params();
        // flops / (MFLOP/s · 1000) = ms; u128 so the product cannot overflow.
        let compute = u128::from(self.flops()) * u128::from(MARGIN_NUM)
            / (u128::from(p.floor_mflops) * 1000 * u128::from(MARGIN_DEN));
        OVERHEAD_MS.saturating_add(u64::try_from(compute).unwrap_or(u64::MAX))
    }

    /// Milliseconds of compute the challenge takes at `mflops` MFLOP/s (its
    /// FLOPs over the rate; the overhead is not included).
    pub fn compute_ms_at(self, mflops: u64) -> u64 {
        let ms = u128::from(self.flops()) / (u128::from(mflops.max(1)) * 1000);
        u64::try_from(ms).unwrap_or(u64::MAX)
    }
}

impl std::fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The class a provider claims with these GPUs (`(name, memory bytes)`, as
/// it registers them): [`DeviceClass::Cpu`] with none, otherwise by the
/// largest memory (< 20 GiB small, < 60 GiB medium, else large). Names are
/// not used: the claim is the memory, and the challenge checks the speed.
///
/// # Example
/// ```
/// use assay_protocol::challenge::{DeviceClass, classify};
/// assert_eq!(classify(&[]), DeviceClass::Cpu);
/// assert_eq!(classify(&[("NVIDIA GeForce RTX 4090".into(), 24_564 << 20)]), DeviceClass::GpuMedium);
/// ```
pub fn classify(gpus: &[(String, u64)]) -> DeviceClass {
    let Some(largest) = gpus.iter().map(|(_, bytes)| *bytes).max() else {
        return DeviceClass::Cpu;
    };
    if largest < 20 * GIB {
        DeviceClass::GpuSmall
    } else if largest < 60 * GIB {
        DeviceClass::GpuMedium
    } else {
        DeviceClass::GpuLarge
    }
}

/// The work units (as the host meters them) of one run of the challenge
/// guest, op by op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeWork {
    /// Floating-point operations.
    pub flops: u64,
    /// Bytes read and written.
    pub bytes: u64,
}

impl ChallengeWork {
    /// Billable units: `flops + bytes` (what the work budget counts).
    pub fn units(self) -> u64 {
        self.flops.saturating_add(self.bytes)
    }
}

/// The work the challenge guest does for `n` and `rounds`: exactly what the
/// host's meter reports for a successful run (the guest tests check this
/// against the runtime). Per op (host-gpu/SEMANTICS.md §4–5, r = 16):
///
/// ```text
/// per dense operand (×2): upload n×r, r×n      bytes 2·4nr each
///                          matmul n×r · r×n    flops 2n²r, bytes 8nr + 4n²
///                          scale, cast, cast   flops n² each, bytes 8n² each
///                          sub                 flops n², bytes 12n²
/// w: upload n×1                               bytes 8n
/// per round: upload γ (n)                      bytes 8n
///            matmul n×n · n×n                  flops 2n³, bytes 12n²
///            rms_norm                          flops 4n² + 3n, bytes 8n² + 4n
///            add D                             flops n², bytes 12n²
///            tanh                              flops 16n², bytes 8n²
/// digest: matmul n×n · n×1                     flops 2n², bytes 4n² + 8n
/// ```
///
/// # Errors
/// [`ChallengeError::OutOfRange`] for `n` or `rounds` outside what the guest
/// accepts; [`ChallengeError::TooLarge`] if a count overflows u64.
///
/// # Example
/// ```
/// use assay_protocol::challenge::challenge_work;
/// let w = challenge_work(8192, 10)?;
/// assert!(w.flops > 10 * 2 * 8192u64.pow(3));
/// # Ok::<(), assay_protocol::challenge::ChallengeError>(())
/// ```
pub fn challenge_work(n: u32, rounds: u32) -> Result<ChallengeWork, ChallengeError> {
    check_size(n, rounds)?;
    let too_large = ChallengeError::TooLarge { n, rounds };
    let (n64, r) = (u64::from(n), RANK);
    let calc = || -> Option<ChallengeWork> {
        let n2 = n64.checked_mul(n64)?;
        let n3 = n2.checked_mul(n64)?;
        // One dense operand: upload a, upload b, matmul, scale, 2 casts, sub.
        let operand_flops = n2.checked_mul(2 * r + 4)?;
        let operand_bytes = (16 * n64 * r) // uploads: 2 · 4nr each
            .checked_add((8 * n64 * r).checked_add(4 * n2)?)? // matmul
            .checked_add(n2.checked_mul(8 + 8 + 8 + 12)?)?; // scale, casts, sub
        let round_flops = n3
            .checked_mul(2)?
            .checked_add(n2.checked_mul(4 + 1 + 16)?)?
            .checked_add(3 * n64)?;
        let round_bytes = n2
            .checked_mul(12 + 8 + 12 + 8)?
            .checked_add(8 * n64 + 4 * n64)?;
        let rounds = u64::from(rounds);
        let flops = operand_flops
            .checked_mul(2)?
            .checked_add(round_flops.checked_mul(rounds)?)?
            .checked_add(2 * n2)?;
        let bytes = operand_bytes
            .checked_mul(2)?
            .checked_add(8 * n64)? // w upload
            .checked_add(round_bytes.checked_mul(rounds)?)?
            .checked_add(4 * n2 + 8 * n64)?
            // Host copies (semantics 2): the digest vector read back (4n)
            // and the digest output written (48 + 4n).
            .checked_add(8 * n64 + DIGEST_HEADER_BYTES)?;
        flops.checked_add(bytes)?; // units must fit too
        Some(ChallengeWork { flops, bytes })
    };
    calc().ok_or(too_large)
}

/// The most device memory the challenge's live tensors take at once for
/// matrix size `n`: in a round, B, D and two of Xₜ·B, its norm, the sum and
/// the tanh (4 n×n) plus γₜ and w; while forming D, B with `scaled`, its i32
/// cast and the f32 cast back (4 n×n); for small n, B plus D's thin factors
/// and their product.
///
/// # Errors
/// [`ChallengeError::OutOfRange`] for `n` outside what the guest accepts.
pub fn peak_gpu_bytes(n: u32) -> Result<u64, ChallengeError> {
    check_size(n, 1)?;
    let n = u64::from(n);
    let n2 = n * n; // n ≤ 65536: no overflow below 2⁶⁴ for any of these
    let forming = 4 * n2;
    let forming_product = 2 * n2 + 2 * RANK * n;
    let rounds = 4 * n2 + 2 * n;
    let digest = 3 * n2 + 2 * n;
    Ok(4 * forming.max(forming_product).max(rounds).max(digest))
}

fn check_size(n: u32, rounds: u32) -> Result<(), ChallengeError> {
    if n == 0 || n > MAX_N {
        return Err(ChallengeError::OutOfRange {
            what: "n",
            value: n,
            max: MAX_N,
        });
    }
    if rounds == 0 || rounds > MAX_ROUNDS {
        return Err(ChallengeError::OutOfRange {
            what: "rounds",
            value: rounds,
            max: MAX_ROUNDS,
        });
    }
    Ok(())
}

/// The spec of a challenge of size `n` × `rounds` with `seed`: params, and
/// limits that cover the guest's use with headroom — fuel for drawing
/// `(4·16 + 1 + rounds)·n` values and the loop, work budget = [`challenge_work`] + 1/8,
/// GPU memory = [`peak_gpu_bytes`] + 1/8, outputs = the digest. The
/// watchdog (`wall_clock_ms`, not part of the job's identity) is not the
/// time bound — that is the coordinator's to enforce, from lease to
/// receipt — but room for a verifier re-executing on a modest CPU: twice
/// the compute at [`VERIFIER_FLOOR_MFLOPS`], and at least the default.
///
/// # Errors
/// As [`challenge_work`].
///
/// # Example
/// ```
/// use assay_protocol::challenge::spec_for;
/// let spec = spec_for(64, 2, [1; 32], 0)?;
/// assert_eq!(spec.params["rounds"], "2");
/// # Ok::<(), assay_protocol::challenge::ChallengeError>(())
/// ```
pub fn spec_for(
    n: u32,
    rounds: u32,
    seed: [u8; 32],
    start_time_ms: u64,
) -> Result<JobSpec, ChallengeError> {
    let work = challenge_work(n, rounds)?;
    let peak = peak_gpu_bytes(n)?;
    let (n64, rounds64) = (u64::from(n), u64::from(rounds));
    // Values drawn from the seed: four thin factors and w, then γₜ per round.
    let drawn = (4 * RANK + 1 + rounds64) * n64;
    let fuel = FUEL_BASE + FUEL_PER_DRAWN_VALUE * drawn + FUEL_PER_ROUND * rounds64;
    let units = work.units();
    let params = BTreeMap::from([
        (PARAM_SEED.to_owned(), hex::encode(seed)),
        (PARAM_N.to_owned(), n.to_string()),
        (PARAM_ROUNDS.to_owned(), rounds.to_string()),
    ]);
    Ok(JobSpec {
        fuel,
        memory_bytes: GUEST_MEMORY_BYTES,
        gpu_memory_bytes: peak + peak / 8,
        work_budget: units.saturating_add(units / 8),
        output_bytes: DIGEST_HEADER_BYTES + 4 * n64,
        wall_clock_ms: JobSpec::default()
            .wall_clock_ms
            .max(2 * work.flops / VERIFIER_FLOOR_MFLOPS / 1000),
        start_time_ms,
        params,
        ..JobSpec::default()
    })
}

/// The challenge spec for a provider of `class`, with a fresh `seed` (32
/// random bytes the provider cannot predict) and the time the guest sees.
///
/// # Example
/// ```
/// use assay_protocol::challenge::{DeviceClass, challenge_spec};
/// let spec = challenge_spec(DeviceClass::Cpu, [0xab; 32], 0);
/// assert_eq!(spec.params["seed"], "ab".repeat(32));
/// assert_eq!(spec.params["n"], "256");
/// ```
pub fn challenge_spec(class: DeviceClass, seed: [u8; 32], start_time_ms: u64) -> JobSpec {
    let p = class.params();
    match spec_for(p.n, p.rounds, seed, start_time_ms) {
        Ok(spec) => spec,
        // The class table is within range (tested): this arm is never taken.
        Err(e) => unreachable!("class {class}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn classes_are_monotone_and_their_bounds_consistent() {
        for pair in DeviceClass::ALL.windows(2) {
            let (lo, hi) = (pair[0], pair[1]);
            let (pl, ph) = (lo.params(), hi.params());
            assert!(lo < hi);
            assert!(hi.flops() > lo.flops(), "{hi} does more work than {lo}");
            assert!(ph.n >= pl.n, "{hi}: n does not shrink");
            assert!(ph.floor_mflops >= pl.floor_mflops, "{hi}: floor");
            assert!(
                peak_gpu_bytes(ph.n).expect("n") >= peak_gpu_bytes(pl.n).expect("n"),
                "{hi}: memory"
            );
        }
        for class in DeviceClass::ALL {
            let p = class.params();
            let work = challenge_work(p.n, p.rounds).expect("the table is in range");
            assert!(work.flops >= u64::from(p.rounds) * 2 * u64::from(p.n).pow(3));
            // The floor device finishes its compute within the allowance, with
            // the overhead on top.
            let at_floor = class.compute_ms_at(p.floor_mflops);
            let bound = class.bound_ms();
            assert!(bound > OVERHEAD_MS + at_floor, "{class}: {bound} ms");
            let allowance = bound - OVERHEAD_MS;
            assert!(
                allowance.abs_diff(at_floor * MARGIN_NUM / MARGIN_DEN) <= 2,
                "{class}: bound = overhead + 5/4 × the floor's time (±2 ms)",
            );
            // A machine at the excluded rate misses the bound.
            if let Some(excluded) = p.excludes_mflops {
                assert!(excluded < p.floor_mflops);
                let slow = class.compute_ms_at(excluded);
                assert!(
                    slow > bound + bound / 10,
                    "{class}: {slow} ms at {excluded} MFLOP/s vs bound {bound} ms"
                );
            }
            assert!(peak_gpu_bytes(p.n).expect("n") <= 8 * GIB, "{class}");
        }
        // The CPU class is tiny: at the scalar floor its compute is under a second.
        assert!(DeviceClass::Cpu.compute_ms_at(500) < 1_000);
        assert_eq!(
            DeviceClass::GpuSmall.params().excludes_mflops,
            Some(CPU_CEILING_MFLOPS)
        );
    }

    #[test]
    fn the_table_in_the_docs_is_the_table() {
        let row = |c: DeviceClass| {
            let p = c.params();
            (p.n, p.rounds, c.bound_ms() / 10)
        };
        assert_eq!(row(DeviceClass::Cpu), (256, 4, 536));
        assert_eq!(row(DeviceClass::GpuSmall), (8192, 64, 2701));
        assert_eq!(row(DeviceClass::GpuMedium), (8192, 96, 2151));
        assert_eq!(row(DeviceClass::GpuLarge), (16384, 16, 2260));
    }

    #[test]
    fn classify_typical_devices() {
        let gpu = |name: &str, mib: u64| (name.to_string(), mib << 20);
        assert_eq!(classify(&[]), DeviceClass::Cpu);
        for (name, mib, class) in [
            ("Tesla T4", 15_360, DeviceClass::GpuSmall),
            ("NVIDIA GeForce RTX 3060", 12_288, DeviceClass::GpuSmall),
            (
                "NVIDIA RTX 4000 Ada Generation",
                20_475,
                DeviceClass::GpuSmall,
            ),
            ("NVIDIA GeForce RTX 4090", 24_564, DeviceClass::GpuMedium),
            ("NVIDIA A10", 23_028, DeviceClass::GpuMedium),
            ("NVIDIA L4", 23_034, DeviceClass::GpuMedium),
            ("NVIDIA A100-SXM4-40GB", 40_960, DeviceClass::GpuMedium),
            ("NVIDIA RTX A6000", 49_140, DeviceClass::GpuMedium),
            ("NVIDIA A100-SXM4-80GB", 81_920, DeviceClass::GpuLarge),
            ("NVIDIA H100 80GB HBM3", 81_559, DeviceClass::GpuLarge),
            ("NVIDIA H200", 143_771, DeviceClass::GpuLarge),
            ("unknown memory", 0, DeviceClass::GpuSmall),
        ] {
            assert_eq!(classify(&[gpu(name, mib)]), class, "{name}");
        }
        // Several GPUs: the largest decides.
        assert_eq!(
            classify(&[gpu("Tesla T4", 15_360), gpu("NVIDIA H100", 81_559)]),
            DeviceClass::GpuLarge
        );
        // The edges.
        assert_eq!(classify(&[gpu("x", 20 * 1024 - 1)]), DeviceClass::GpuSmall);
        assert_eq!(classify(&[gpu("x", 20 * 1024)]), DeviceClass::GpuMedium);
        assert_eq!(classify(&[gpu("x", 60 * 1024 - 1)]), DeviceClass::GpuMedium);
        assert_eq!(classify(&[gpu("x", 60 * 1024)]), DeviceClass::GpuLarge);
        assert_eq!(classify(&[("x".into(), u64::MAX)]), DeviceClass::GpuLarge);
    }

    #[test]
    fn names_round_trip() {
        for class in DeviceClass::ALL {
            assert_eq!(DeviceClass::from_name(class.name()), Some(class));
            assert_eq!(class.to_string(), class.name());
        }
        assert_eq!(DeviceClass::from_name("gpu"), None);
    }

    #[test]
    fn specs_cover_the_work_and_memory_with_headroom() {
        for class in DeviceClass::ALL {
            let p = class.params();
            let spec = challenge_spec(class, [3; 32], 42);
            let work = challenge_work(p.n, p.rounds).expect("in range");
            assert!(spec.work_budget >= work.units() + work.units() / 10);
            let peak = peak_gpu_bytes(p.n).expect("in range");
            assert!(spec.gpu_memory_bytes >= peak + peak / 10);
            assert!(spec.output_bytes >= DIGEST_HEADER_BYTES + 4 * u64::from(p.n));
            assert_eq!(spec.start_time_ms, 42);
            assert_eq!(spec.params.len(), 3);
            assert_eq!(spec.params[PARAM_SEED], "03".repeat(32));
            assert_eq!(spec.params[PARAM_N], p.n.to_string());
            assert_eq!(spec.params[PARAM_ROUNDS], p.rounds.to_string());
            assert!(spec.memory_bytes <= JobSpec::default().memory_bytes);
            // The watchdog leaves a 100 GFLOP/s verifier room, never less
            // than the default, and is far beyond the class's bound.
            let at_verifier = work.flops / VERIFIER_FLOOR_MFLOPS / 1000;
            assert!(spec.wall_clock_ms >= at_verifier.max(600_000));
            assert!(spec.wall_clock_ms > class.bound_ms());
        }
        // Different seeds, different jobs.
        let a = challenge_spec(DeviceClass::Cpu, [1; 32], 0);
        let b = challenge_spec(DeviceClass::Cpu, [2; 32], 0);
        assert_ne!(a, b);
    }

    #[test]
    fn work_matches_a_direct_count() {
        // n = 3, rounds = 2, counted op by op.
        let (n, r) = (3u64, 16u64);
        let operand = (
            2 * n * n * r + 4 * n * n,
            16 * n * r + 8 * n * r + 4 * n * n + 36 * n * n,
        );
        let round = (2 * n * n * n + 21 * n * n + 3 * n, 40 * n * n + 12 * n);
        let want = ChallengeWork {
            flops: 2 * operand.0 + 2 * round.0 + 2 * n * n,
            // … and the host copies: the digest read back and written.
            bytes: 2 * operand.1 + 8 * n + 2 * round.1 + 4 * n * n + 8 * n + (8 * n + 48),
        };
        assert_eq!(challenge_work(3, 2), Ok(want));
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        for (n, rounds) in [(0, 1), (1, 0), (MAX_N + 1, 1), (1, MAX_ROUNDS + 1)] {
            assert!(matches!(
                challenge_work(n, rounds),
                Err(ChallengeError::OutOfRange { .. })
            ));
            assert!(spec_for(n, rounds, [0; 32], 0).is_err());
        }
        assert!(peak_gpu_bytes(0).is_err());
        // In range but past u64: refused, not wrapped.
        assert_eq!(
            challenge_work(MAX_N, MAX_ROUNDS),
            Err(ChallengeError::TooLarge {
                n: MAX_N,
                rounds: MAX_ROUNDS
            })
        );
        assert!(challenge_work(MAX_N, 1).is_ok());
        assert!(
            spec_for(MAX_N, 1, [0; 32], 0)
                .expect("in range")
                .gpu_memory_bytes
                > 64 * GIB
        );
    }
}
