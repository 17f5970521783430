//! [`SpecCaps`]: the most a node accepts in a job's spec. A renter chooses
//! its job's limits, and some of them size host memory that no fuel pays
//! for (captured logs, outputs, guest and device memory): a coordinator
//! refuses a job over its caps at submission, and a provider refuses a
//! lease over its own before it runs anything.
//!
//! # Example
//!
//! ```
//! use assay_protocol::{JobSpec, SpecCaps};
//!
//! let caps = SpecCaps::default();
//! assert!(caps.check(&JobSpec::default()).is_ok());
//! let greedy = JobSpec { log_bytes: 1 << 40, ..JobSpec::default() };
//! let over = caps.check(&greedy).unwrap_err();
//! assert_eq!(over.field, "log_bytes");
//! ```

use std::fmt;

use crate::JobSpec;

/// The most a node accepts in each limit of a [`JobSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecCaps {
    /// Most fuel.
    pub fuel: u64,
    /// Most guest linear memory, bytes.
    pub memory_bytes: u64,
    /// Most device memory, bytes.
    pub gpu_memory_bytes: u64,
    /// Most work units.
    pub work_budget: u64,
    /// Most output bytes in total.
    pub output_bytes: u64,
    /// Most captured bytes of each of stdout, stderr and the log.
    pub log_bytes: u64,
    /// Longest watchdog, ms.
    pub wall_clock_ms: u64,
    /// Most named parameters.
    pub params: u64,
    /// Most bytes of parameter names and values together.
    pub param_bytes: u64,
}

impl Default for SpecCaps {
    /// Room for every job the repository's guests run (MiniLM over
    /// thousands of texts, SmolLM2 chat), and no more than one 2026
    /// server holds per job.
    fn default() -> Self {
        SpecCaps {
            fuel: 10_000_000_000_000,
            // A wasm32 guest addresses 4 GiB.
            memory_bytes: 4 << 30,
            gpu_memory_bytes: 80 << 30,
            work_budget: 1 << 60,
            output_bytes: 1 << 30,
            log_bytes: 1 << 20,
            wall_clock_ms: 24 * 3_600_000,
            params: 256,
            param_bytes: 64 << 10,
        }
    }
}

/// A spec limit over a node's cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverCap {
    /// The spec field (`log_bytes`, `params`, …).
    pub field: &'static str,
    /// What the spec asks for.
    pub asked: u64,
    /// The most the node accepts.
    pub cap: u64,
}

impl fmt::Display for OverCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spec.{} = {} is over this node's cap of {}: lower it (a job needs no more than it uses)",
            self.field, self.asked, self.cap
        )
    }
}

impl std::error::Error for OverCap {}

impl SpecCaps {
    /// Checks each limit of `spec` against its cap.
    ///
    /// # Errors
    ///
    /// The first [`OverCap`].
    pub fn check(&self, spec: &JobSpec) -> Result<(), OverCap> {
        let param_bytes = spec
            .params
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        let limits = [
            ("fuel", spec.fuel, self.fuel),
            ("memory_bytes", spec.memory_bytes, self.memory_bytes),
            (
                "gpu_memory_bytes",
                spec.gpu_memory_bytes,
                self.gpu_memory_bytes,
            ),
            ("work_budget", spec.work_budget, self.work_budget),
            ("output_bytes", spec.output_bytes, self.output_bytes),
            ("log_bytes", spec.log_bytes, self.log_bytes),
            ("wall_clock_ms", spec.wall_clock_ms, self.wall_clock_ms),
            ("params", spec.params.len() as u64, self.params),
            ("params (bytes)", param_bytes, self.param_bytes),
        ];
        match limits.into_iter().find(|(_, asked, cap)| asked > cap) {
            Some((field, asked, cap)) => Err(OverCap { field, asked, cap }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_checked_against_its_own_cap() {
        let caps = SpecCaps::default();
        assert_eq!(caps.check(&JobSpec::default()), Ok(()));
        type Change = fn(&mut JobSpec);
        let cases: [(&str, Change); 8] = [
            ("fuel", |s| s.fuel = u64::MAX),
            ("memory_bytes", |s| s.memory_bytes = (4 << 30) + 1),
            ("gpu_memory_bytes", |s| s.gpu_memory_bytes = u64::MAX),
            ("output_bytes", |s| s.output_bytes = (1 << 30) + 1),
            ("log_bytes", |s| s.log_bytes = 1 << 40),
            ("wall_clock_ms", |s| s.wall_clock_ms = u64::MAX),
            ("params", |s| {
                for i in 0..257 {
                    s.params.insert(format!("p{i}"), String::new());
                }
            }),
            ("params (bytes)", |s| {
                s.params.insert("big".into(), "x".repeat(64 << 10));
            }),
        ];
        for (field, set) in cases {
            let mut spec = JobSpec::default();
            set(&mut spec);
            let e = caps.check(&spec).expect_err(field);
            assert_eq!(e.field, field);
            assert!(e.to_string().contains("lower it"), "{e}");
        }
        // At the cap is accepted.
        let at = JobSpec {
            log_bytes: caps.log_bytes,
            output_bytes: caps.output_bytes,
            ..JobSpec::default()
        };
        assert_eq!(caps.check(&at), Ok(()));
    }
}
