use std::fmt;

use serde::{Deserialize, Serialize};

/// How a run ended, when the ending is a *deterministic result*: a function
/// of (component, inputs, spec) alone, so any verifier on any backend reaches
/// the same one. Such runs produce outputs (for a failure, the error text is
/// the output `error`) and a receipt, and are verifiable and billable.
///
/// Endings that say something about the provider's machine instead (the
/// wall-clock watchdog fired, the device ran out of memory, a driver error, a
/// crash) are *provider faults*: they have no receipt and the job goes
/// elsewhere. They are not in this enum on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// `run` returned `Ok`.
    Success,
    /// `run` returned `Err`; its text is the output `error`.
    GuestError,
    /// The guest trapped (panic, unreachable, stack overflow, a broken host-call rule).
    Trap,
    /// The guest used all the fuel of its spec.
    FuelExhausted,
    /// A tensor op would have taken the job past its work budget.
    WorkBudgetExhausted,
    /// The guest tried to grow its linear memory past the spec's cap.
    MemoryLimit,
    /// The guest failed after a tensor was refused for its GPU memory quota.
    GpuQuotaExceeded,
    /// The guest wrote more output bytes than the spec allows.
    OutputLimitExceeded,
}

impl Outcome {
    /// Every outcome, in a fixed order (its canonical code is its position).
    pub const ALL: [Outcome; 8] = [
        Outcome::Success,
        Outcome::GuestError,
        Outcome::Trap,
        Outcome::FuelExhausted,
        Outcome::WorkBudgetExhausted,
        Outcome::MemoryLimit,
        Outcome::GpuQuotaExceeded,
        Outcome::OutputLimitExceeded,
    ];

    /// The stable kebab-case name (as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::GuestError => "guest-error",
            Outcome::Trap => "trap",
            Outcome::FuelExhausted => "fuel-exhausted",
            Outcome::WorkBudgetExhausted => "work-budget-exhausted",
            Outcome::MemoryLimit => "memory-limit",
            Outcome::GpuQuotaExceeded => "gpu-quota-exceeded",
            Outcome::OutputLimitExceeded => "output-limit-exceeded",
        }
    }

    /// The canonical code used in signed encodings.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::GuestError => 1,
            Outcome::Trap => 2,
            Outcome::FuelExhausted => 3,
            Outcome::WorkBudgetExhausted => 4,
            Outcome::MemoryLimit => 5,
            Outcome::GpuQuotaExceeded => 6,
            Outcome::OutputLimitExceeded => 7,
        }
    }

    /// True only for [`Outcome::Success`].
    pub fn is_success(self) -> bool {
        self == Outcome::Success
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
