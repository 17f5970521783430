//! `assay demo`: the built-in job, end to end, with nothing to install.
//!
//! Runs the embedded `matmul` guest on two generated matrices, twice, and
//! shows that both runs agree bit for bit.

use std::time::Instant;

use assay_protocol::JobSpec;
use assay_runtime::Inputs;
use clap::Args;

use crate::Failure;
use crate::spec_args::DeviceArgs;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Matrix size n (the job multiplies two n×n matrices).
    #[arg(long, default_value_t = 256)]
    pub n: u32,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// A matrix in the matmul guest's format: u32 rows, u32 cols (LE), then f32 LE row-major.
fn matrix(rows: u32, cols: u32, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + rows as usize * cols as usize * 4);
    out.extend_from_slice(&rows.to_le_bytes());
    out.extend_from_slice(&cols.to_le_bytes());
    let mut state = seed;
    for _ in 0..rows as u64 * cols as u64 {
        // splitmix64 → uniform in [-1, 1)
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let v = (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub fn main(args: DemoArgs) -> Result<u8, Failure> {
    let device = args.device.device().map_err(Failure::usage)?;
    eprintln!("[1/3] loading the sandbox on {}", device.info().device);
    let runtime = super::runtime(device)?;
    let component = assay_guests::MATMUL_WASM;
    let mut inputs = Inputs::new();
    inputs.insert("a".into(), matrix(args.n, args.n, 1).into());
    inputs.insert("b".into(), matrix(args.n, args.n, 2).into());
    let spec = JobSpec::default();
    eprintln!("[2/3] running matmul {n}×{n} · {n}×{n} in the sandbox", n = args.n);
    let t = Instant::now();
    let first = super::execute(&runtime, component, inputs.clone(), &spec)?;
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!("[3/3] running it again to check the result is bit-identical");
    let second = super::execute(&runtime, component, inputs, &spec)?;
    let same = first.receipt.body.deterministic_part() == second.receipt.body.deterministic_part();
    if args.json {
        let mut v = super::report_json(&first);
        v["rerun_identical"] = serde_json::Value::Bool(same);
        println!("{v}");
    } else {
        super::print_summary(&first, None);
        println!("first run     {first_ms:.1} ms including compilation");
        println!(
            "rerun         {} (outputs root, outcome, fuel and work)",
            if same { "identical" } else { "DIFFERENT" }
        );
    }
    if !same {
        return Err(Failure::fault(anyhow::anyhow!("two runs of the same job disagreed")));
    }
    Ok(super::exit_code(&first))
}
