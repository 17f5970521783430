//! Stake floors: the IO a provider must stake to be hired.
//!
//! A provider stakes [`crate::config::EconomyConfig::stake_per_device`]
//! (200 IO in production) per device, times its class multiplier: the
//! reference class is a GPU of 20–60 GiB (×1); smaller GPUs ×0.5, GPUs of
//! 60 GiB and more ×2. A CPU provider stakes by core class: ×0.05 per 16
//! cores (rounded up), so a 16-core box stakes 10 IO. The verified-shard
//! stake (what a job's guarantee needs) is priced in IOSD and converted to
//! IO at the oracle price when the job is accepted; a provider is matched
//! only when its stake covers both.

use assay_protocol::challenge::DeviceClass;

/// The class multiplier, basis points of the per-device stake.
pub fn class_multiplier_bps(class: DeviceClass) -> u64 {
    match class {
        DeviceClass::Cpu => 500,
        DeviceClass::GpuSmall => 5_000,
        DeviceClass::GpuMedium => 10_000,
        DeviceClass::GpuLarge => 20_000,
    }
}

/// The IO (µIO) a provider with `gpus` devices of `class` — or, with no
/// GPU, `cpu_cores` cores — stakes to be hired.
pub fn stake_floor(per_device: u64, class: DeviceClass, gpus: u32, cpu_cores: u32) -> u64 {
    let units = if class == DeviceClass::Cpu {
        u64::from(cpu_cores.max(1)).div_ceil(16)
    } else {
        u64::from(gpus.max(1))
    };
    let v = u128::from(per_device) * u128::from(class_multiplier_bps(class)) / 10_000
        * u128::from(units);
    u64::try_from(v).unwrap_or(u64::MAX).min(i64::MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::BASE;

    #[test]
    fn floors_follow_the_class_and_the_device_count() {
        let per = 200 * BASE;
        assert_eq!(stake_floor(per, DeviceClass::GpuMedium, 1, 8), 200 * BASE);
        assert_eq!(stake_floor(per, DeviceClass::GpuLarge, 8, 64), 3_200 * BASE);
        assert_eq!(stake_floor(per, DeviceClass::GpuSmall, 2, 8), 200 * BASE);
        assert_eq!(stake_floor(per, DeviceClass::Cpu, 0, 2), 10 * BASE);
        assert_eq!(stake_floor(per, DeviceClass::Cpu, 0, 32), 20 * BASE);
        assert_eq!(stake_floor(0, DeviceClass::GpuLarge, 8, 64), 0);
    }
}
