//! The host's own readings for the worker dashboard: CPU load and memory,
//! read from `/proc` (Linux). Elsewhere, or when `/proc` cannot be read,
//! nothing is sent.

use assay_proto::pb;

/// The host's CPU load and memory now, if they can be read.
pub fn telemetry(cores: u32) -> Option<pb::HostTelemetry> {
    let load = std::fs::read_to_string("/proc/loadavg").ok()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse(&load, &meminfo, cores)
}

/// `/proc/loadavg` and `/proc/meminfo` as a sample: the 1-minute load over
/// `cores`, per mille (capped at 1000), and memory in use (total − available).
fn parse(loadavg: &str, meminfo: &str, cores: u32) -> Option<pb::HostTelemetry> {
    let load: f64 = loadavg.split_whitespace().next()?.parse().ok()?;
    let per_core = load / f64::from(cores.max(1));
    let kib = |key: &str| -> Option<u64> {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim_start_matches(':')
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let total = kib("MemTotal")?.saturating_mul(1024);
    let available = kib("MemAvailable")?.saturating_mul(1024);
    Some(pb::HostTelemetry {
        cpu_load_permille: (per_core * 1000.0).clamp(0.0, 1000.0) as u32,
        memory_used_bytes: total.saturating_sub(available),
        memory_total_bytes: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_and_memory_are_read_from_proc_text() {
        let t = parse(
            "1.50 0.80 0.40 2/300 1234\n",
            "MemTotal:       16000 kB\nMemFree:  1000 kB\nMemAvailable:    4000 kB\n",
            2,
        )
        .expect("parsed");
        assert_eq!(t.cpu_load_permille, 750);
        assert_eq!(t.memory_total_bytes, 16_000 * 1024);
        assert_eq!(t.memory_used_bytes, 12_000 * 1024);
        assert!(parse("x", "", 1).is_none());
        let busy =
            parse("9.0 1 1 1/1 1", "MemTotal: 1 kB\nMemAvailable: 1 kB\n", 4).expect("parsed");
        assert_eq!(busy.cpu_load_permille, 1000);
    }
}
