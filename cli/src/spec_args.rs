//! Command-line flags that build a `JobSpec` and pick the device.

use std::path::PathBuf;

use anyhow::Context;
use assay_host_gpu::Device;
use assay_protocol::{JobSpec, Shard};
use clap::{Args, ValueEnum};

/// Limits and parameters of a job.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// A JobSpec as JSON; the flags below override its fields.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Fuel (≈ guest wasm instructions).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Guest linear memory cap, e.g. 512MiB.
    #[arg(long, value_parser = parse_size)]
    pub memory: Option<u64>,
    /// GPU memory quota (live tensor bytes), e.g. 4GiB.
    #[arg(long, value_parser = parse_size)]
    pub gpu_memory: Option<u64>,
    /// Work budget in units (tensor FLOPs + bytes moved).
    #[arg(long)]
    pub work_budget: Option<u64>,
    /// Total output bytes cap, e.g. 256MiB.
    #[arg(long, value_parser = parse_size)]
    pub output_limit: Option<u64>,
    /// Wall-clock watchdog in milliseconds (a provider-side limit only).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// A job parameter the guest reads, NAME=VALUE (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub params: Vec<(String, String)>,
    /// Which shard to run, INDEX/COUNT.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

impl SpecArgs {
    /// The spec: file (or defaults), then flag overrides.
    pub fn build(&self) -> anyhow::Result<JobSpec> {
        let mut spec = match &self.spec {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading spec {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a JobSpec", path.display()))?
            }
            None => JobSpec::default(),
        };
        if let Some(v) = self.fuel {
            spec.fuel = v;
        }
        if let Some(v) = self.memory {
            spec.memory_bytes = v;
        }
        if let Some(v) = self.gpu_memory {
            spec.gpu_memory_bytes = v;
        }
        if let Some(v) = self.work_budget {
            spec.work_budget = v;
        }
        if let Some(v) = self.output_limit {
            spec.output_bytes = v;
        }
        if let Some(v) = self.timeout_ms {
            spec.wall_clock_ms = v;
        }
        if let Some(v) = self.shard {
            spec.shard = v;
        }
        for (k, v) in &self.params {
            spec.params.insert(k.clone(), v.clone());
        }
        Ok(spec)
    }
}

/// Which device runs the tensor ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// CUDA when a driver and a GPU are present, else the CPU.
    Auto,
    /// The CPU reference backend.
    Cpu,
    /// An NVIDIA GPU through CUDA.
    Cuda,
}

/// Device flags.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// Backend for tensor ops.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Threads the CPU backend runs each op on, the job's own included
    /// (default: every core; results do not depend on it).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Decoded job inputs (a model's weights) the device keeps from one job
    /// to the next, e.g. 512MiB; 0 keeps none (results and receipts do not
    /// depend on it, only speed).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "1GiB")]
    pub resident_memory: u64,
}

impl DeviceArgs {
    pub fn device(&self) -> anyhow::Result<Device> {
        Ok(self.backend()?.with_resident_limit(self.resident_memory))
    }

    fn backend(&self) -> anyhow::Result<Device> {
        let cpu = || match self.threads {
            Some(n) => Device::cpu_with_threads(n),
            None => Device::cpu(),
        };
        match self.backend {
            BackendChoice::Cpu => Ok(cpu()),
            BackendChoice::Auto => match Device::cuda(0) {
                Ok(gpu) => {
                    tracing::info!("using the CUDA backend: {}", gpu.info().device);
                    Ok(gpu)
                }
                Err(e @ assay_host_gpu::Error::Unsupported(_)) => {
                    tracing::info!("using the CPU backend: {e}");
                    Ok(cpu())
                }
                Err(e) => {
                    tracing::warn!("using the CPU backend: no usable CUDA device: {e}");
                    Ok(cpu())
                }
            },
            BackendChoice::Cuda => Device::cuda(0).map_err(|e| {
                anyhow::anyhow!(
                    "--backend cuda: {e}; use --backend cpu (or auto) to run on the CPU"
                )
            }),
        }
    }
}

/// Parses `512`, `64KiB`, `512MiB`, `4GiB` (also K/M/G, KB/MB/GB as binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 4096, 512MiB, 4GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses `NAME=VALUE`.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} should be NAME=VALUE")),
    }
}

/// Parses `INDEX/COUNT`.
pub fn parse_shard(s: &str) -> Result<Shard, String> {
    let err = || format!("{s:?} should be INDEX/COUNT with INDEX < COUNT, e.g. 0/4");
    let (i, n) = s.split_once('/').ok_or_else(err)?;
    let index: u32 = i.parse().map_err(|_| err())?;
    let count: u32 = n.parse().map_err(|_| err())?;
    if count == 0 || index >= count {
        return Err(err());
    }
    Ok(Shard { index, count })
}
