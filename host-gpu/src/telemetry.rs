//! GPU telemetry through NVML (libnvidia-ml, loaded at run time).
//!
//! Telemetry is *absent*, not an error, on a machine without an NVIDIA
//! driver: [`Telemetry::open`] returns `Err` with the reason and everything
//! else just has nothing to report. Readings a GPU does not support (power
//! on some boards, clocks under some virtualisation) are `None`.
//!
//! - [`snapshot`]: one reading of every GPU (name, UUID, memory, temperature,
//!   power draw and limit, utilisation, clocks);
//! - [`Sampler`]: a background thread that samples at an interval and keeps
//!   a [`SamplerSummary`] (samples, max temperature, mean power, mean
//!   utilisation) for a job's receipt.
//!
//! Telemetry is never part of a result: nothing here affects any op.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};

/// One reading of one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSnapshot {
    /// NVML's device index.
    pub index: u32,
    /// e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// e.g. `GPU-5c3a…`.
    pub uuid: String,
    /// Total memory, bytes.
    pub memory_total_bytes: u64,
    /// Used memory, bytes.
    pub memory_used_bytes: u64,
    /// Core temperature, °C.
    pub temperature_c: Option<u32>,
    /// Power draw, milliwatts.
    pub power_draw_mw: Option<u32>,
    /// Enforced power limit, milliwatts.
    pub power_limit_mw: Option<u32>,
    /// GPU (SM) utilisation over the last sample period, percent.
    pub utilization_gpu_pct: Option<u32>,
    /// Memory-controller utilisation, percent.
    pub utilization_memory_pct: Option<u32>,
    /// Current SM clock, MHz.
    pub sm_clock_mhz: Option<u32>,
    /// Current memory clock, MHz.
    pub memory_clock_mhz: Option<u32>,
    /// Highest SM clock, MHz.
    pub max_sm_clock_mhz: Option<u32>,
}

/// An open NVML session.
pub struct Telemetry {
    nvml: Nvml,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Loads NVML.
    ///
    /// # Errors
    ///
    /// Why telemetry is unavailable (no NVIDIA driver, no permission…): a
    /// normal state on machines without an NVIDIA GPU, not a failure.
    pub fn open() -> Result<Telemetry, String> {
        Nvml::init()
            .map(|nvml| Telemetry { nvml })
            .map_err(|e| format!("no NVIDIA driver found (NVML: {e})"))
    }

    /// The driver version, e.g. `580.65.06`.
    pub fn driver_version(&self) -> Option<String> {
        self.nvml.sys_driver_version().ok()
    }

    /// The CUDA version the driver supports, e.g. `13.0`.
    pub fn cuda_driver_version(&self) -> Option<String> {
        self.nvml
            .sys_cuda_driver_version()
            .ok()
            .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10))
    }

    /// One reading of every GPU NVML sees (a GPU that cannot be read is left out).
    pub fn snapshot(&self) -> Vec<GpuSnapshot> {
        let count = self.nvml.device_count().unwrap_or(0);
        (0..count).filter_map(|i| self.read(i)).collect()
    }

    fn read(&self, index: u32) -> Option<GpuSnapshot> {
        let d = self.nvml.device_by_index(index).ok()?;
        let memory = d.memory_info().ok();
        let util = d.utilization_rates().ok();
        Some(GpuSnapshot {
            index,
            name: d.name().unwrap_or_else(|_| "unknown NVIDIA GPU".into()),
            uuid: d.uuid().unwrap_or_default(),
            memory_total_bytes: memory.as_ref().map_or(0, |m| m.total),
            memory_used_bytes: memory.as_ref().map_or(0, |m| m.used),
            temperature_c: d.temperature(TemperatureSensor::Gpu).ok(),
            power_draw_mw: d.power_usage().ok(),
            power_limit_mw: d.enforced_power_limit().ok(),
            utilization_gpu_pct: util.as_ref().map(|u| u.gpu),
            utilization_memory_pct: util.as_ref().map(|u| u.memory),
            sm_clock_mhz: d.clock_info(Clock::SM).ok(),
            memory_clock_mhz: d.clock_info(Clock::Memory).ok(),
            max_sm_clock_mhz: d.max_clock_info(Clock::SM).ok(),
        })
    }
}

/// One reading of every GPU, or why there is none (no NVIDIA driver).
///
/// # Errors
///
/// Why telemetry is unavailable; see [`Telemetry::open`].
pub fn snapshot() -> Result<Vec<GpuSnapshot>, String> {
    Ok(Telemetry::open()?.snapshot())
}

/// What a [`Sampler`] saw (maps onto a receipt's telemetry summary).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplerSummary {
    /// Readings taken.
    pub samples: u32,
    /// Highest temperature, °C (0 when none was read).
    pub max_temperature_c: u32,
    /// Mean power draw over the readings that had one, milliwatts.
    pub mean_power_mw: u64,
    /// Mean GPU utilisation over the readings that had one, percent.
    pub mean_utilization_pct: u32,
}

#[derive(Debug, Default)]
struct Totals {
    samples: u32,
    max_temperature_c: u32,
    power_sum_mw: u64,
    power_n: u64,
    util_sum: u64,
    util_n: u64,
}

impl Totals {
    fn add(&mut self, s: &GpuSnapshot) {
        self.samples = self.samples.saturating_add(1);
        if let Some(t) = s.temperature_c {
            self.max_temperature_c = self.max_temperature_c.max(t);
        }
        if let Some(p) = s.power_draw_mw {
            self.power_sum_mw += u64::from(p);
            self.power_n += 1;
        }
        if let Some(u) = s.utilization_gpu_pct {
            self.util_sum += u64::from(u);
            self.util_n += 1;
        }
    }

    fn summary(&self) -> SamplerSummary {
        SamplerSummary {
            samples: self.samples,
            max_temperature_c: self.max_temperature_c,
            mean_power_mw: self.power_sum_mw.checked_div(self.power_n).unwrap_or(0),
            mean_utilization_pct: u32::try_from(
                self.util_sum.checked_div(self.util_n).unwrap_or(0),
            )
            .unwrap_or(u32::MAX),
        }
    }
}

/// Samples one GPU on a background thread until stopped (or dropped).
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    totals: Arc<Mutex<Totals>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling GPU `index` every `interval` (one reading right away).
    ///
    /// # Errors
    ///
    /// Why there is nothing to sample (no NVIDIA driver, no such GPU): the
    /// caller goes on without telemetry.
    pub fn start(index: u32, interval: Duration) -> Result<Sampler, String> {
        let telemetry = Telemetry::open()?;
        let first = telemetry
            .read(index)
            .ok_or_else(|| format!("NVML cannot read GPU {index}"))?;
        let totals = Arc::new(Mutex::new(Totals::default()));
        if let Ok(mut t) = totals.lock() {
            t.add(&first);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, totals2) = (stop.clone(), totals.clone());
        let tick = interval.max(Duration::from_millis(1));
        let thread = std::thread::Builder::new()
            .name(format!("assay-telemetry-{index}"))
            .spawn(move || {
                // Sleep in short steps so `stop` is prompt.
                let step = tick.min(Duration::from_millis(20));
                let mut waited = Duration::ZERO;
                while !stop2.load(Ordering::Relaxed) {
                    std::thread::sleep(step);
                    waited += step;
                    if waited < tick {
                        continue;
                    }
                    waited = Duration::ZERO;
                    if let Some(s) = telemetry.read(index)
                        && let Ok(mut t) = totals2.lock()
                    {
                        t.add(&s);
                    }
                }
            })
            .map_err(|e| format!("cannot start the telemetry thread: {e}"))?;
        Ok(Sampler {
            stop,
            totals,
            thread: Some(thread),
        })
    }

    /// What has been seen so far.
    pub fn summary(&self) -> SamplerSummary {
        self.totals.lock().map(|t| t.summary()).unwrap_or_default()
    }

    /// Stops the thread and returns the final summary.
    pub fn finish(mut self) -> SamplerSummary {
        self.halt();
        self.summary()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(t: Option<u32>, p: Option<u32>, u: Option<u32>) -> GpuSnapshot {
        GpuSnapshot {
            index: 0,
            name: "test".into(),
            uuid: String::new(),
            memory_total_bytes: 0,
            memory_used_bytes: 0,
            temperature_c: t,
            power_draw_mw: p,
            power_limit_mw: None,
            utilization_gpu_pct: u,
            utilization_memory_pct: None,
            sm_clock_mhz: None,
            memory_clock_mhz: None,
            max_sm_clock_mhz: None,
        }
    }

    #[test]
    fn summary_takes_max_temperature_and_means_over_present_readings() {
        let mut t = Totals::default();
        t.add(&reading(Some(60), Some(300_000), Some(90)));
        t.add(&reading(Some(71), None, Some(50)));
        t.add(&reading(None, Some(100_000), None));
        let s = t.summary();
        assert_eq!(s.samples, 3);
        assert_eq!(s.max_temperature_c, 71);
        assert_eq!(s.mean_power_mw, 200_000);
        assert_eq!(s.mean_utilization_pct, 70);
        assert_eq!(Totals::default().summary(), SamplerSummary::default());
    }

    #[test]
    fn without_a_driver_telemetry_is_absent_not_a_panic() {
        // On a machine with an NVIDIA driver this reads real GPUs instead.
        match snapshot() {
            Ok(gpus) => {
                for g in gpus {
                    assert!(!g.name.is_empty());
                }
            }
            Err(why) => assert!(why.contains("no NVIDIA driver"), "{why}"),
        }
        match Sampler::start(0, Duration::from_millis(5)) {
            Ok(s) => assert!(s.finish().samples >= 1),
            Err(why) => assert!(!why.is_empty()),
        }
    }
}
