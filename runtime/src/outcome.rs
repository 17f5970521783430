//! What a run's ending becomes: a deterministic outcome with its frozen
//! failure record (hashed) and a message for people (not hashed), or a
//! provider fault (no result at all).
//!
//! The record is built only from structured facts — the outcome class, the
//! WIT name of the host call involved, our own [`TrapCode`] for a wasm trap
//! — so rewording a message or upgrading wasmtime cannot move a failed job's
//! outputs root. `tests/all/failures.rs` freezes the records of every class.

use assay_protocol::{Failure, Outcome, TrapCode};
use wasmtime::Trap;

use crate::ctx::GpuCtx;
use crate::error::{Ending, Error, FaultKind, HostError};
use crate::limits::MemoryLimitHit;
use crate::wasi::Captured;

/// Most bytes of guest stderr quoted in a trap's message.
const STDERR_IN_MESSAGE: usize = 4096;

/// How a run ended, once classified.
#[derive(Debug)]
pub(crate) struct Ended {
    pub(crate) outcome: Outcome,
    /// The record the `error` output holds; `None` on success.
    pub(crate) failure: Option<Failure>,
    /// What went wrong, for people; `None` on success.
    pub(crate) message: Option<String>,
}

/// Turns the run's result into an [`Ended`], or a provider fault.
pub(crate) fn classify(
    result: wasmtime::Result<Result<(), String>>,
    gpu: &GpuCtx,
    captured: &Captured,
) -> Result<Ended, Error> {
    let e = match result {
        Ok(Ok(())) => {
            return Ok(Ended {
                outcome: Outcome::Success,
                failure: None,
                message: None,
            });
        }
        Ok(Err(message)) => {
            return Ok(failed(gpu, Failure::new(Outcome::GuestError), message));
        }
        Err(e) => e,
    };
    if let Some(host) = e.downcast_ref::<HostError>() {
        return match host {
            HostError::End(ending) => {
                let record = match ending {
                    Ending::WorkBudget { call, .. } => {
                        Failure::new(Outcome::WorkBudgetExhausted).with_call(*call)
                    }
                    Ending::OutputLimit { call, output, .. } => {
                        Failure::new(Outcome::OutputLimitExceeded)
                            .with_call(*call)
                            .with_output(output.clone())
                    }
                    Ending::HostRule { call, .. } => {
                        Failure::trap(TrapCode::HostRule).with_call(*call)
                    }
                };
                let message = match ending {
                    Ending::HostRule { .. } => with_stderr(&ending.to_string(), captured),
                    _ => ending.to_string(),
                };
                Ok(failed(gpu, record, message))
            }
            HostError::Fault(m) => Err(Error::ProviderFault {
                kind: FaultKind::Device,
                message: m.clone(),
            }),
            // convert_error hands every guest error to the guest; one that
            // reaches here came through a path that cannot return it.
            HostError::Guest { call, .. } => Ok(failed(
                gpu,
                Failure::trap(TrapCode::HostRule).with_call(*call),
                format!("unhandled host error: {host}"),
            )),
        };
    }
    if let Some(hit) = e.downcast_ref::<MemoryLimitHit>() {
        return Ok(failed(
            gpu,
            Failure::new(Outcome::MemoryLimit),
            hit.to_string(),
        ));
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => Ok(failed(
                gpu,
                Failure::new(Outcome::FuelExhausted),
                "fuel exhausted: the guest used all the fuel of its spec".into(),
            )),
            Trap::Interrupt => Err(Error::ProviderFault {
                kind: FaultKind::Watchdog,
                message: "the wall-clock watchdog fired before the job finished".into(),
            }),
            other => Ok(failed(
                gpu,
                Failure::trap(trap_code(*other)),
                with_stderr(&format!("trap: {other}"), captured),
            )),
        };
    }
    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return Err(Error::ProviderFault {
            kind: FaultKind::Capacity,
            message: format!("{e}"),
        });
    }
    // Anything else came from the guest's use of an interface: a handle
    // WASI does not know, or a value the canonical ABI refused. Which one is
    // only in wasmtime's text, so the record says no more than the class.
    let code = if e
        .downcast_ref::<wasmtime::component::ResourceTableError>()
        .is_some()
    {
        TrapCode::HostRule
    } else {
        TrapCode::Other
    };
    Ok(failed(
        gpu,
        Failure::trap(code),
        with_stderr(&format!("trap: {e}"), captured),
    ))
}

/// A failure, re-classed `gpu-quota-exceeded` when the guest failed after a
/// tensor was refused for its quota (the record then names that call);
/// otherwise a guest error or trap names the last refused call, unless the
/// record already names a call (a broken host rule).
fn failed(gpu: &GpuCtx, record: Failure, message: String) -> Ended {
    let record = match (record.kind, gpu.quota_refusal) {
        (Outcome::GuestError | Outcome::Trap, Some(call)) => {
            Failure::new(Outcome::GpuQuotaExceeded).with_call(call)
        }
        (Outcome::GuestError | Outcome::Trap, None) => with_last_refusal(record, gpu),
        _ => record,
    };
    Ended {
        outcome: record.kind,
        failure: Some(record),
        message: Some(message),
    }
}

/// Names the last host call refused with a WIT error, if any.
fn with_last_refusal(record: Failure, gpu: &GpuCtx) -> Failure {
    match gpu.last_refusal {
        Some((call, case)) if record.call.is_none() => record.with_call(call).with_error(case),
        _ => record,
    }
}

/// Our frozen name for a wasmtime trap. Traps of features the engine does
/// not enable (GC, exceptions, async, threads) are [`TrapCode::Other`].
pub(crate) fn trap_code(trap: Trap) -> TrapCode {
    match trap {
        Trap::UnreachableCodeReached => TrapCode::Unreachable,
        Trap::StackOverflow => TrapCode::StackOverflow,
        Trap::MemoryOutOfBounds => TrapCode::MemoryOutOfBounds,
        Trap::HeapMisaligned => TrapCode::HeapMisaligned,
        Trap::TableOutOfBounds => TrapCode::TableOutOfBounds,
        Trap::IndirectCallToNull => TrapCode::IndirectCallToNull,
        Trap::BadSignature => TrapCode::BadSignature,
        Trap::IntegerOverflow => TrapCode::IntegerOverflow,
        Trap::IntegerDivisionByZero => TrapCode::IntegerDivisionByZero,
        Trap::BadConversionToInteger => TrapCode::BadConversionToInteger,
        Trap::InvalidChar
        | Trap::StringOutOfBounds
        | Trap::ListOutOfBounds
        | Trap::InvalidDiscriminant
        | Trap::UnalignedPointer
        | Trap::CannotEnterComponent
        | Trap::CannotLeaveComponent => TrapCode::CanonicalAbi,
        _ => TrapCode::Other,
    }
}

/// A trap's message followed by the tail of the guest's stderr (where a Rust
/// guest prints its panic message).
fn with_stderr(message: &str, captured: &Captured) -> String {
    let stderr = captured.stderr.contents();
    if stderr.is_empty() {
        return message.to_string();
    }
    let tail = &stderr[stderr.len().saturating_sub(STDERR_IN_MESSAGE)..];
    format!(
        "{message}\nguest stderr:\n{}",
        String::from_utf8_lossy(tail).trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_traps_map_to_their_own_codes() {
        let cases = [
            (Trap::UnreachableCodeReached, "unreachable"),
            (Trap::StackOverflow, "stack-overflow"),
            (Trap::MemoryOutOfBounds, "memory-out-of-bounds"),
            (Trap::HeapMisaligned, "heap-misaligned"),
            (Trap::TableOutOfBounds, "table-out-of-bounds"),
            (Trap::IndirectCallToNull, "indirect-call-to-null"),
            (Trap::BadSignature, "bad-signature"),
            (Trap::IntegerOverflow, "integer-overflow"),
            (Trap::IntegerDivisionByZero, "integer-division-by-zero"),
            (Trap::BadConversionToInteger, "bad-conversion-to-integer"),
            (Trap::InvalidChar, "canonical-abi"),
            (Trap::NullReference, "other"),
        ];
        for (trap, name) in cases {
            assert_eq!(trap_code(trap).name(), name, "{trap:?}");
        }
    }
}
