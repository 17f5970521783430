//! A job's inputs, outputs, parameters, shard and log.
//!
//! - **Inputs** are named blobs the renter published with the job (a model, a
//!   text file, …). Read small ones into guest memory with [`read_input`] /
//!   [`read_input_to_string`] / [`read_input_range`]; load tensors straight
//!   to the device with [`Tensor::from_input`](crate::Tensor::from_input) or
//!   [`SafeTensors`](crate::SafeTensors).
//! - **Outputs** are named blobs the job writes; they are hashed into the
//!   receipt. Names are 1–128 bytes of `[A-Za-z0-9._-]`; writing a name again
//!   replaces it. The job spec caps their total size: going past it ends the
//!   job (outcome `output-limit-exceeded`).
//! - **Parameters** are strings from the job spec, parsed with [`param`].
//! - **Shard**: which part of a sharded job this instance runs ([`shard`]).
//! - **Log**: [`log()`] / [`log!`](crate::log!) append lines to the job's log.
//!
//! # Example
//! ```no_run
//! use assay_guest::{log, param_or, read_input_to_string, shard, write_output};
//!
//! fn run() -> assay_guest::Result<()> {
//!     let text = read_input_to_string("prompts.txt")?;
//!     let lines: Vec<&str> = text.lines().collect();
//!     let mine = &lines[shard().split(lines.len())];
//!     let upper: bool = param_or("upper", false)?;
//!     let out: Vec<String> =
//!         mine.iter().map(|l| if upper { l.to_uppercase() } else { l.to_string() }).collect();
//!     write_output("out.txt", out.join("\n"))?;
//!     log!("shard {:?}: {} lines", shard(), mine.len());
//!     Ok(())
//! }
//! assay_guest::job!(run);
//! ```

use std::any::type_name;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::bindings::assay::gpu::job_io;
use crate::{Error, Result, Tensor};

/// One input blob of the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The input's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The job's inputs, sorted by name.
pub fn inputs() -> Vec<Input> {
    job_io::list_inputs()
        .into_iter()
        .map(|i| Input {
            name: i.name,
            size: i.size,
        })
        .collect()
}

/// The size in bytes of input `name`.
///
/// # Errors
/// [`Error::NotFound`] (naming the inputs there are) if there is no such input.
pub fn input_size(name: &str) -> Result<u64> {
    let all = inputs();
    match all.iter().find(|i| i.name == name) {
        Some(i) => Ok(i.size),
        None => Err(Error::NotFound(missing_input_message(name, &all))),
    }
}

fn missing_input_message(name: &str, all: &[Input]) -> String {
    if all.is_empty() {
        return format!("no input named `{name}` (the job has no inputs)");
    }
    let mut names: Vec<String> = all
        .iter()
        .take(10)
        .map(|i| format!("`{}`", i.name))
        .collect();
    if all.len() > 10 {
        names.push(format!("and {} more", all.len() - 10));
    }
    format!("no input named `{name}` (inputs: {})", names.join(", "))
}

/// The whole of input `name`, copied into guest memory. For large inputs
/// (model weights) prefer [`Tensor::from_input`](crate::Tensor::from_input)
/// or [`SafeTensors`](crate::SafeTensors), which do not copy through the guest.
///
/// # Errors
/// [`Error::NotFound`] if there is no such input.
pub fn read_input(name: &str) -> Result<Vec<u8>> {
    let size = input_size(name)?;
    read_input_range(name, 0, size)
}

/// `len` bytes of input `name` starting at byte `offset`; shorter only if
/// the input ends first.
///
/// # Errors
/// [`Error::NotFound`] if there is no such input or `offset` lies past its end.
///
/// # Example
/// ```no_run
/// # fn f() -> assay_guest::Result<()> {
/// let header = assay_guest::read_input_range("a", 0, 8)?;
/// # Ok(()) }
/// ```
pub fn read_input_range(name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
    job_io::read_input(name, offset, len).map_err(Error::from)
}

/// Input `name` as UTF-8 text.
///
/// # Errors
/// [`Error::NotFound`] if there is no such input; [`Error::Format`] if it is
/// not valid UTF-8.
pub fn read_input_to_string(name: &str) -> Result<String> {
    let bytes = read_input(name)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::Format(format!(
            "input `{name}` is not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Writes (or replaces) output `name`.
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad name (1–128 bytes of
/// `[A-Za-z0-9._-]`). Going past the job's output cap is not an error: it
/// ends the job.
pub fn write_output(name: &str, data: impl AsRef<[u8]>) -> Result<()> {
    job_io::write_output(name, data.as_ref()).map_err(Error::from)
}

/// Writes a tensor's elements (little-endian, row-major; f32 or i32) as
/// output `name` without copying them through guest memory. The shape is
/// not written: record it in another output if the reader needs it.
///
/// # Errors
/// As [`write_output`].
pub fn write_tensor_output(name: &str, tensor: &Tensor) -> Result<()> {
    job_io::write_tensor_output(name, tensor.as_raw()).map_err(Error::from)
}

/// The raw string of job parameter `name`, if the spec has it.
pub fn param_str(name: &str) -> Option<String> {
    job_io::param(name)
}

/// Job parameter `name`, parsed as `T` (any [`FromStr`] type: integers,
/// floats, `bool`, `String`, …).
///
/// # Errors
/// [`Error::Param`] if the parameter is missing or does not parse.
///
/// # Example
/// ```no_run
/// # fn f() -> assay_guest::Result<()> {
/// let batch: u32 = assay_guest::param("batch")?;
/// let mode = assay_guest::param::<String>("mode")?;
/// # Ok(()) }
/// ```
pub fn param<T>(name: &str) -> Result<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    param_opt(name)?.ok_or_else(|| Error::Param {
        name: name.to_owned(),
        message: "missing: set it in the job spec's params".to_owned(),
    })
}

/// Job parameter `name` parsed as `T`, or `None` if the spec does not have it.
///
/// # Errors
/// [`Error::Param`] if the parameter is present but does not parse.
pub fn param_opt<T>(name: &str) -> Result<Option<T>>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match job_io::param(name) {
        None => Ok(None),
        Some(raw) => parse_param(name, &raw).map(Some),
    }
}

/// Job parameter `name` parsed as `T`, or `default` if the spec does not have it.
///
/// # Errors
/// [`Error::Param`] if the parameter is present but does not parse.
pub fn param_or<T>(name: &str, default: T) -> Result<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    Ok(param_opt(name)?.unwrap_or(default))
}

pub(crate) fn parse_param<T>(name: &str, raw: &str) -> Result<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    raw.parse::<T>().map_err(|e| Error::Param {
        name: name.to_owned(),
        message: format!("cannot parse {raw:?} as {}: {e}", type_name::<T>()),
    })
}

/// Which part of a sharded job this instance runs: `index` of `count`
/// (`0 ≤ index < count`; an unsharded job is shard 0 of 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    /// This instance's index.
    pub index: u32,
    /// How many shards the job has.
    pub count: u32,
}

impl Shard {
    /// This shard's contiguous part of `0..n` items: the ranges of all
    /// shards partition `0..n` in order, and their lengths differ by at most one.
    ///
    /// # Example
    /// ```
    /// use assay_guest::Shard;
    /// let parts: Vec<_> = (0..3).map(|index| Shard { index, count: 3 }.split(10)).collect();
    /// assert_eq!(parts, vec![0..4, 4..7, 7..10]);
    /// ```
    pub fn split(&self, n: usize) -> Range<usize> {
        let count = (self.count.max(1)) as usize;
        let index = (self.index as usize).min(count - 1);
        let base = n / count;
        let extra = n % count;
        let start = index * base + index.min(extra);
        let len = base + usize::from(index < extra);
        start..start + len
    }

    /// Whether the job is split across more than one instance.
    pub fn is_sharded(&self) -> bool {
        self.count > 1
    }
}

/// This instance's shard.
pub fn shard() -> Shard {
    let s = job_io::shard();
    Shard {
        index: s.index,
        count: s.count,
    }
}

/// Appends a line to the job's log (capped by the host; text past the cap is
/// dropped). See also [`log!`](crate::log!), which formats.
pub fn log(message: &str) {
    job_io::log(message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_split_partitions() {
        for n in [0usize, 1, 5, 10, 11, 1000] {
            for count in 1..=7u32 {
                let mut next = 0;
                for index in 0..count {
                    let r = Shard { index, count }.split(n);
                    assert_eq!(r.start, next);
                    assert!(r.len() == n / count as usize || r.len() == n / count as usize + 1);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
        assert_eq!(Shard { index: 0, count: 0 }.split(5), 0..5);
    }

    #[test]
    fn params_parse_with_clear_errors() {
        assert_eq!(parse_param::<u32>("n", "12"), Ok(12));
        assert_eq!(parse_param::<String>("mode", "ok"), Ok("ok".to_string()));
        let e = parse_param::<u32>("n", "twelve")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "job parameter `n`: cannot parse \"twelve\" as u32: invalid digit found in string"
            )
        );
    }

    #[test]
    fn missing_input_lists_inputs() {
        let all = vec![
            Input {
                name: "a".into(),
                size: 1,
            },
            Input {
                name: "b".into(),
                size: 2,
            },
        ];
        assert_eq!(
            missing_input_message("c", &all),
            "no input named `c` (inputs: `a`, `b`)"
        );
        assert_eq!(
            missing_input_message("c", &[]),
            "no input named `c` (the job has no inputs)"
        );
    }
}
