//! `assay devices`: the GPUs this machine has (NVML telemetry) and whether
//! this build can run jobs on them. Prints "no NVIDIA driver found" and
//! exits 0 on a machine without one.

use assay_host_gpu::cuda_build;
use assay_host_gpu::telemetry::{GpuSnapshot, Telemetry};
use clap::Args;
use serde_json::json;

use crate::Failure;

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also open each GPU with the CUDA backend (compiles the kernels: a few seconds).
    #[arg(long)]
    pub check: bool,
}

fn mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

fn watts(mw: Option<u32>) -> String {
    mw.map_or("n/a".into(), |v| format!("{:.1} W", f64::from(v) / 1000.0))
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map_or("n/a".into(), |v| format!("{v}{unit}"))
}

fn gpu_json(g: &GpuSnapshot) -> serde_json::Value {
    json!({
        "index": g.index,
        "name": g.name,
        "uuid": g.uuid,
        "memory_total_bytes": g.memory_total_bytes,
        "memory_used_bytes": g.memory_used_bytes,
        "temperature_c": g.temperature_c,
        "power_draw_mw": g.power_draw_mw,
        "power_limit_mw": g.power_limit_mw,
        "utilization_gpu_pct": g.utilization_gpu_pct,
        "utilization_memory_pct": g.utilization_memory_pct,
        "sm_clock_mhz": g.sm_clock_mhz,
        "memory_clock_mhz": g.memory_clock_mhz,
        "max_sm_clock_mhz": g.max_sm_clock_mhz,
    })
}

/// What this build's CUDA backend says (one line).
fn backend_line(check: bool) -> String {
    if !cuda_build::enabled() {
        return "not built in (rebuild with `--features cuda`)".into();
    }
    let nvrtc = match cuda_build::nvrtc_version() {
        Ok((a, b)) => format!("NVRTC {a}.{b}"),
        Err(e) => format!("NVRTC unavailable: {e}"),
    };
    if !check {
        return format!("built in, {nvrtc}");
    }
    let probe = assay_host_gpu::Device::probe_accelerators();
    let mut parts = vec![format!("built in, {nvrtc}")];
    parts.extend(
        probe
            .devices
            .iter()
            .map(|d| format!("ready: {}", d.info().device)),
    );
    parts.extend(probe.unavailable);
    parts.join("; ")
}

pub fn main(args: DevicesArgs) -> Result<u8, Failure> {
    let backend = backend_line(args.check);
    let telemetry = Telemetry::open();
    let (gpus, driver, cuda, why) = match &telemetry {
        Ok(t) => (
            t.snapshot(),
            t.driver_version(),
            t.cuda_driver_version(),
            None,
        ),
        Err(e) => (Vec::new(), None, None, Some(e.clone())),
    };
    if args.json {
        let v = json!({
            "driver_version": driver,
            "cuda_driver_version": cuda,
            "gpus": gpus.iter().map(gpu_json).collect::<Vec<_>>(),
            "unavailable": why,
            "cuda_backend": backend,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(Failure::fault)?
        );
        return Ok(0);
    }
    match why {
        Some(_) => println!("no NVIDIA driver found"),
        None => {
            println!(
                "driver {} (CUDA {}), {} GPU{}",
                driver.as_deref().unwrap_or("unknown"),
                cuda.as_deref().unwrap_or("unknown"),
                gpus.len(),
                if gpus.len() == 1 { "" } else { "s" }
            );
            for g in &gpus {
                println!("gpu {}  {}  {}", g.index, g.name, g.uuid);
                println!(
                    "  memory       {} / {} MiB used",
                    mib(g.memory_used_bytes),
                    mib(g.memory_total_bytes)
                );
                println!("  temperature  {}", opt(g.temperature_c, " °C"));
                println!(
                    "  power        {} of {} limit",
                    watts(g.power_draw_mw),
                    watts(g.power_limit_mw)
                );
                println!(
                    "  utilisation  gpu {}, memory {}",
                    opt(g.utilization_gpu_pct, "%"),
                    opt(g.utilization_memory_pct, "%")
                );
                println!(
                    "  clocks       sm {} (max {}), memory {}",
                    opt(g.sm_clock_mhz, " MHz"),
                    opt(g.max_sm_clock_mhz, " MHz"),
                    opt(g.memory_clock_mhz, " MHz")
                );
            }
        }
    }
    println!("cuda backend: {backend}");
    Ok(0)
}
