//! What a failed run hashes: the frozen failure record.
//!
//! A run that ends in a deterministic failure (every [`Outcome`] but
//! `success`) has exactly one output, `error`, and that output is hashed into
//! the outputs root like any other. So its bytes are part of what providers
//! and verifiers must agree on — the *consensus surface* — and must never
//! be prose: a reworded host message or a wasmtime upgrade that renders a
//! trap differently would move the root, and an honest provider on one node
//! version would be "caught" by a verifier on another.
//!
//! The `error` output is therefore a [`Failure`]: a canonical JSON object
//! with fixed keys in byte order and no whitespace, whose every value comes
//! from a closed vocabulary frozen here or from the WIT contract (the names
//! of host calls and error cases). The human explanation (host messages,
//! wasmtime's trap text, the tail of the guest's stderr) travels beside it,
//! never inside it.
//!
//! # Format `assay/failure/v1` (frozen)
//!
//! ```text
//! {"call":C,"error":E,"kind":K,"output":O,"trap":T,"version":1}
//! ```
//!
//! Keys appear in this order and only when present (`kind` and `version`
//! always are):
//!
//! | key | when | value |
//! | --- | --- | --- |
//! | `call` | a host call was involved | `interface.function` as in the WIT, e.g. `tensor.matmul`, `job-io.write-output` |
//! | `error` | the call returned a WIT error the guest did not recover from | the WIT `error` case, e.g. `shape-mismatch` |
//! | `kind` | always | the [`Outcome`] name, e.g. `work-budget-exhausted` |
//! | `output` | `output-limit-exceeded` | the output being written |
//! | `trap` | `kind` = `trap` | a [`TrapCode`] name |
//! | `version` | always | `1` |
//!
//! Strings are JSON strings with `"`, `\` and control characters escaped
//! (`\"`, `\\`, `\n`, `\r`, `\t`, otherwise `\u00XX` in lower-case hex);
//! everything else, including non-ASCII, is written as UTF-8.
//!
//! Which failure gets which fields:
//!
//! - `guest-error`: `run` returned `Err`. The guest's own message is kept
//!   beside the record. If a host call was refused with a WIT error during
//!   the run, `call` and `error` name the last one refused.
//! - `trap`: `trap` is the [`TrapCode`]; for [`TrapCode::HostRule`] (the
//!   guest broke a rule of the interface, e.g. used a dropped tensor)
//!   `call` names the host call. Otherwise, as for a guest error, the last
//!   refused call is named (a Rust guest that `unwrap`s a refusal panics).
//! - `fuel-exhausted`, `memory-limit`: the kind alone.
//! - `work-budget-exhausted`: `call` is the op whose work went past the budget.
//! - `gpu-quota-exceeded`: `call` is the first op refused for the quota.
//! - `output-limit-exceeded`: `call` is the write, `output` its name.
//!
//! Changing any of this is a change of [`crate::SEMANTICS_VERSION`].
//!
//! # Example
//!
//! ```
//! use assay_protocol::{Failure, Outcome, TrapCode};
//!
//! let f = Failure::trap(TrapCode::Unreachable);
//! assert_eq!(f.to_canonical_json(), r#"{"kind":"trap","trap":"unreachable","version":1}"#);
//! assert_eq!(Failure::parse(f.to_canonical_json().as_bytes()).unwrap(), f);
//!
//! let f = Failure::new(Outcome::WorkBudgetExhausted).with_call("tensor.matmul");
//! assert_eq!(
//!     f.to_canonical_json(),
//!     r#"{"call":"tensor.matmul","kind":"work-budget-exhausted","version":1}"#
//! );
//! ```

use std::fmt::Write as _;

use crate::{Error, Outcome};

/// The version written in every record's `version` key.
pub const FAILURE_RECORD_VERSION: u32 = 1;

/// Longest string value a record holds (a WIT name or an output name; the
/// runtime caps output names at 128 bytes).
const MAX_FIELD: usize = 256;

/// Why a guest trapped, in a vocabulary of our own (never wasmtime's text),
/// so that which trap it was is part of the result but how a wasmtime version
/// describes it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrapCode {
    /// A wasm `unreachable` instruction (a Rust panic ends in one).
    Unreachable,
    /// The call stack was exhausted.
    StackOverflow,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// A misaligned atomic access.
    HeapMisaligned,
    /// An indirect call through an index outside the table.
    TableOutOfBounds,
    /// An indirect call through an uninitialised table element.
    IndirectCallToNull,
    /// An indirect call whose signature did not match.
    BadSignature,
    /// Signed integer division overflowed.
    IntegerOverflow,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero,
    /// A float-to-integer conversion out of range or of NaN.
    BadConversionToInteger,
    /// The guest broke a rule of a host interface (a dead or foreign
    /// resource handle, an error it could not be handed).
    HostRule,
    /// The component model's canonical ABI refused a value the guest passed
    /// (a bad string, list, discriminant or pointer).
    CanonicalAbi,
    /// Any other trap (features the sandbox does not enable).
    Other,
}

impl TrapCode {
    /// Every code, in a fixed order.
    pub const ALL: [TrapCode; 13] = [
        TrapCode::Unreachable,
        TrapCode::StackOverflow,
        TrapCode::MemoryOutOfBounds,
        TrapCode::HeapMisaligned,
        TrapCode::TableOutOfBounds,
        TrapCode::IndirectCallToNull,
        TrapCode::BadSignature,
        TrapCode::IntegerOverflow,
        TrapCode::IntegerDivisionByZero,
        TrapCode::BadConversionToInteger,
        TrapCode::HostRule,
        TrapCode::CanonicalAbi,
        TrapCode::Other,
    ];

    /// The frozen name written in a record.
    pub fn name(self) -> &'static str {
        match self {
            TrapCode::Unreachable => "unreachable",
            TrapCode::StackOverflow => "stack-overflow",
            TrapCode::MemoryOutOfBounds => "memory-out-of-bounds",
            TrapCode::HeapMisaligned => "heap-misaligned",
            TrapCode::TableOutOfBounds => "table-out-of-bounds",
            TrapCode::IndirectCallToNull => "indirect-call-to-null",
            TrapCode::BadSignature => "bad-signature",
            TrapCode::IntegerOverflow => "integer-overflow",
            TrapCode::IntegerDivisionByZero => "integer-division-by-zero",
            TrapCode::BadConversionToInteger => "bad-conversion-to-integer",
            TrapCode::HostRule => "host-rule",
            TrapCode::CanonicalAbi => "canonical-abi",
            TrapCode::Other => "other",
        }
    }

    /// The code with this name.
    pub fn from_name(name: &str) -> Option<TrapCode> {
        TrapCode::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The record a failed run writes as its `error` output (format
/// `assay/failure/v1`, see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The outcome class; never [`Outcome::Success`] in a real record.
    pub kind: Outcome,
    /// The host call involved (`interface.function`, as in the WIT).
    pub call: Option<String>,
    /// The WIT error case that call returned.
    pub error: Option<String>,
    /// For `output-limit-exceeded`: the output being written.
    pub output: Option<String>,
    /// For `trap`: which trap.
    pub trap: Option<TrapCode>,
}

impl Failure {
    /// A record of `kind` with no other field.
    pub fn new(kind: Outcome) -> Failure {
        Failure {
            kind,
            call: None,
            error: None,
            output: None,
            trap: None,
        }
    }

    /// A trap record.
    pub fn trap(code: TrapCode) -> Failure {
        Failure {
            trap: Some(code),
            ..Failure::new(Outcome::Trap)
        }
    }

    /// Names the host call involved.
    #[must_use]
    pub fn with_call(mut self, call: impl Into<String>) -> Failure {
        self.call = Some(call.into());
        self
    }

    /// Names the WIT error case the call returned.
    #[must_use]
    pub fn with_error(mut self, error: impl Into<String>) -> Failure {
        self.error = Some(error.into());
        self
    }

    /// Names the output being written.
    #[must_use]
    pub fn with_output(mut self, output: impl Into<String>) -> Failure {
        self.output = Some(output.into());
        self
    }

    /// The record's bytes: what the `error` output holds and the root hashes.
    pub fn to_canonical_json(&self) -> String {
        let mut s = String::from("{");
        let mut field = |key: &str, value: &str| {
            if s.len() > 1 {
                s.push(',');
            }
            write_json_string(&mut s, key);
            s.push(':');
            s.push_str(value);
        };
        let string = |v: &str| {
            let mut out = String::new();
            write_json_string(&mut out, v);
            out
        };
        if let Some(call) = &self.call {
            field("call", &string(call));
        }
        if let Some(error) = &self.error {
            field("error", &string(error));
        }
        field("kind", &string(self.kind.name()));
        if let Some(output) = &self.output {
            field("output", &string(output));
        }
        if let Some(trap) = self.trap {
            field("trap", &string(trap.name()));
        }
        field("version", &FAILURE_RECORD_VERSION.to_string());
        s.push('}');
        s
    }

    /// Reads a record back, accepting only its canonical bytes (so one
    /// record has one encoding).
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] if `bytes` are not a canonical `assay/failure/v1`
    /// record.
    pub fn parse(bytes: &[u8]) -> Result<Failure, Error> {
        let bad = |why: &str| Error::Malformed(format!("failure record: {why}"));
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(&format!("not JSON: {e}")))?;
        let object = value.as_object().ok_or_else(|| bad("not an object"))?;
        let text = |key: &str| -> Result<Option<String>, Error> {
            match object.get(key) {
                None => Ok(None),
                Some(serde_json::Value::String(s)) if s.len() <= MAX_FIELD => Ok(Some(s.clone())),
                Some(_) => Err(bad(&format!(
                    "`{key}` must be a string of ≤ {MAX_FIELD} bytes"
                ))),
            }
        };
        for key in object.keys() {
            if !["call", "error", "kind", "output", "trap", "version"].contains(&key.as_str()) {
                return Err(bad(&format!("unknown key `{key}`")));
            }
        }
        if object.get("version").and_then(serde_json::Value::as_u64)
            != Some(u64::from(FAILURE_RECORD_VERSION))
        {
            return Err(bad("`version` must be 1"));
        }
        let kind = text("kind")?.ok_or_else(|| bad("`kind` is missing"))?;
        let kind = Outcome::ALL
            .into_iter()
            .find(|o| o.name() == kind)
            .ok_or_else(|| bad(&format!("unknown kind `{kind}`")))?;
        let trap = match text("trap")? {
            None => None,
            Some(t) => {
                Some(TrapCode::from_name(&t).ok_or_else(|| bad(&format!("unknown trap `{t}`")))?)
            }
        };
        let record = Failure {
            kind,
            call: text("call")?,
            error: text("error")?,
            output: text("output")?,
            trap,
        };
        if record.to_canonical_json().as_bytes() != bytes {
            return Err(bad("not in canonical form"));
        }
        Ok(record)
    }
}

/// Appends `value` as a JSON string in the record's canonical escaping.
fn write_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_in_key_order() {
        let f = Failure {
            kind: Outcome::OutputLimitExceeded,
            call: Some("job-io.write-output".into()),
            error: Some("x".into()),
            output: Some("a\"b\\c\n\u{1}é".into()),
            trap: Some(TrapCode::Other),
        };
        let json = f.to_canonical_json();
        assert_eq!(
            json,
            "{\"call\":\"job-io.write-output\",\"error\":\"x\",\"kind\":\"output-limit-exceeded\",\
             \"output\":\"a\\\"b\\\\c\\n\\u0001é\",\"trap\":\"other\",\"version\":1}"
        );
        assert_eq!(Failure::parse(json.as_bytes()).ok(), Some(f));
    }

    #[test]
    fn only_the_canonical_encoding_parses() {
        for text in [
            r#"{"kind":"trap","trap":"unreachable","version":1}"#,
            r#"{"kind":"fuel-exhausted","version":1}"#,
        ] {
            assert!(Failure::parse(text.as_bytes()).is_ok(), "{text}");
        }
        for text in [
            r#"{"version":1,"kind":"fuel-exhausted"}"#,
            r#"{"kind":"fuel-exhausted", "version":1}"#,
            r#"{"kind":"fuel-exhausted","version":2}"#,
            r#"{"kind":"melted","version":1}"#,
            r#"{"kind":"trap","trap":"wasm trap: unreachable","version":1}"#,
            r#"{"kind":"fuel-exhausted","message":"x","version":1}"#,
            "fuel exhausted: the guest used all the fuel of its spec",
        ] {
            assert!(Failure::parse(text.as_bytes()).is_err(), "{text}");
        }
    }

    #[test]
    fn trap_names_are_distinct_and_round_trip() {
        for code in TrapCode::ALL {
            assert_eq!(TrapCode::from_name(code.name()), Some(code));
        }
        let mut names: Vec<_> = TrapCode::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TrapCode::ALL.len());
    }
}
