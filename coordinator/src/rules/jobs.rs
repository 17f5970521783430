//! Jobs: the market job id a renter's request names, its verification
//! rate, its shards' specs and job ids, and inputs split by line.

use assay_protocol::canonical::Encoder;
use assay_protocol::verification::RATE_ALWAYS;
use assay_protocol::{BlobRef, Hash32, JobSpec, NodeId, Shard, inputs_root, job_id};

use crate::Error;

/// What names a market job: the renter, its request nonce, the first
/// shard's job id and the market terms.
#[derive(Debug, Clone, Copy)]
pub struct JobTerms<'a> {
    /// Who pays.
    pub renter: &'a NodeId,
    /// The signed request's nonce.
    pub nonce: u64,
    /// The component.
    pub component: &'a Hash32,
    /// The inputs root of the job's inputs.
    pub inputs_root: &'a Hash32,
    /// The spec, shard 0 of `shards`.
    pub spec: &'a JobSpec,
    /// Number of shards.
    pub shards: u32,
    /// µIOSD per million work units.
    pub max_price: u64,
    /// Only GPU providers.
    pub require_gpu: bool,
    /// Inputs split by line.
    pub split_inputs: &'a [String],
    /// The sampling rate, parts per million.
    pub verify_rate_ppm: u32,
}

/// The market job id: `assay/market-job/v1` over the terms.
pub fn market_job_id(t: &JobTerms<'_>) -> Hash32 {
    let mut e = Encoder::new("assay/market-job/v1");
    e.fixed32(&t.renter.0)
        .u64(t.nonce)
        .fixed32(&job_id(t.component, t.inputs_root, t.spec).0)
        .u64(t.spec.wall_clock_ms)
        .u32(t.shards)
        .u64(t.max_price)
        .u8(u8::from(t.require_gpu))
        .u64(t.split_inputs.len() as u64);
    for name in t.split_inputs {
        e.str(name);
    }
    e.u32(t.verify_rate_ppm);
    e.hash()
}

/// A job's sampling rate: 0 when it opts out, the coordinator's default
/// when it names none.
///
/// # Errors
///
/// [`Error::Invalid`] for both an opt-out and a rate, or a rate over
/// always.
/// What a coordinator accepts in one job request besides its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Most inputs (blob references) in one job.
    pub max_inputs: usize,
    /// Most bytes of inputs one job declares in all.
    pub max_input_bytes: u64,
    /// Longest input name, bytes.
    pub max_name_bytes: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_inputs: 1024,
            max_input_bytes: 64 << 30,
            max_name_bytes: 255,
        }
    }
}

/// The refusal of a job whose renter's balance, `have` µIOSD, does not
/// cover its escrow (the service checks before splitting inputs, the store
/// when it takes the escrow: one message).
pub fn escrow_not_covered(
    have: i64,
    escrow: u64,
    max_price: u64,
    spec: &JobSpec,
    shards: u32,
) -> Error {
    Error::Precondition(format!(
        "your balance of {have} µIOSD does not cover the escrow of {escrow} µIOSD \
         (max price {max_price} µIOSD/Munit × (fuel {} + work budget {}) × {shards} shards): \
         get IOSD (`assay faucet` on a devnet), pay in IO (--pay-in io), or lower --max-price, --fuel or --work-budget",
        spec.fuel, spec.work_budget
    ))
}

/// Checks how many inputs a job has (before they are even decoded).
///
/// # Errors
///
/// [`Error::Invalid`] over [`InputLimits::max_inputs`].
pub fn check_input_count(limits: &InputLimits, count: usize) -> Result<(), Error> {
    if count > limits.max_inputs {
        return Err(Error::Invalid(format!(
            "{count} inputs is over this coordinator's limit of {}: pack them into fewer files",
            limits.max_inputs
        )));
    }
    Ok(())
}

/// Checks a job's inputs and split names against `limits` — counts, sizes,
/// distinct names, each split name an input — before anything is read or
/// stored (every check is O(n log n) in what the request carries).
///
/// # Errors
///
/// [`Error::Invalid`] saying which limit and what to do.
pub fn check_inputs(
    limits: &InputLimits,
    inputs: &[BlobRef],
    split: &[String],
) -> Result<(), Error> {
    check_input_count(limits, inputs.len())?;
    let mut names = std::collections::BTreeSet::new();
    let mut total: u64 = 0;
    for b in inputs {
        if b.name.is_empty() || b.name.len() > limits.max_name_bytes {
            return Err(Error::Invalid(format!(
                "input name {:?} must be 1..={} bytes",
                b.name, limits.max_name_bytes
            )));
        }
        if !names.insert(b.name.as_str()) {
            return Err(Error::Invalid(format!(
                "two inputs are named {:?}: give each its own name",
                b.name
            )));
        }
        total = total.saturating_add(b.size);
    }
    if total > limits.max_input_bytes {
        return Err(Error::Invalid(format!(
            "the inputs declare {total} bytes in all, over this coordinator's limit of {}: split the job",
            limits.max_input_bytes
        )));
    }
    let mut split_names = std::collections::BTreeSet::new();
    for name in split {
        if !names.contains(name.as_str()) {
            return Err(Error::Invalid(format!(
                "split input {name:?} is not one of the job's inputs"
            )));
        }
        if !split_names.insert(name.as_str()) {
            return Err(Error::Invalid(format!(
                "split input {name:?} is named twice"
            )));
        }
    }
    Ok(())
}

pub fn verify_rate(unverified: bool, requested_ppm: u32, default_ppm: u32) -> Result<u32, Error> {
    match (unverified, requested_ppm) {
        (true, 0) => Ok(0),
        (true, _) => Err(Error::Invalid(
            "a job is either unverified or has a verification rate, not both".into(),
        )),
        (false, 0) => Ok(default_ppm),
        (false, r) if r > RATE_ALWAYS => Err(Error::Invalid(format!(
            "verify_rate_ppm {r} is more than {RATE_ALWAYS} (every receipt)"
        ))),
        (false, r) => Ok(r),
    }
}

/// The spec of shard `index` of `count`.
pub fn shard_spec(spec: &JobSpec, index: u32, count: u32) -> JobSpec {
    let mut s = spec.clone();
    s.shard = Shard { index, count };
    s
}

/// The inputs root of a list of inputs.
pub fn root_of(inputs: &[BlobRef]) -> Hash32 {
    inputs_root(inputs.iter().map(|b| (b.name.as_str(), b.size, &b.hash)))
}

/// Each shard's `assay_protocol::job_id`: shard `i` of `count` with inputs
/// root `roots(i)`.
pub fn shard_job_ids(
    component: &Hash32,
    spec: &JobSpec,
    count: u32,
    roots: impl Fn(u32) -> Hash32,
) -> Vec<Hash32> {
    (0..count)
        .map(|i| job_id(component, &roots(i), &shard_spec(spec, i, count)))
        .collect()
}

/// Splits `bytes` by line into `shards` parts as even as lines allow (part
/// `i` gets lines `i·n/shards .. (i+1)·n/shards`).
pub fn split_by_lines(bytes: &[u8], shards: u32) -> Vec<Vec<u8>> {
    let lines: Vec<&[u8]> = bytes.split_inclusive(|c| *c == b'\n').collect();
    let (n, k) = (lines.len(), shards as usize);
    (0..k)
        .map(|i| lines[i * n / k..(i + 1) * n / k].concat())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_over_a_limit_or_named_twice_are_refused_before_any_work() {
        let limits = InputLimits {
            max_inputs: 3,
            max_input_bytes: 100,
            max_name_bytes: 8,
        };
        let blob = |name: &str, size: u64| BlobRef {
            name: name.into(),
            hash: Hash32::ZERO,
            size,
        };
        let ok = [blob("a", 50), blob("b", 50)];
        assert!(check_inputs(&limits, &ok, &["a".into()]).is_ok());
        let refused = |inputs: &[BlobRef], split: &[String], says: &str| {
            let e = check_inputs(&limits, inputs, split).expect_err(says);
            assert!(e.to_string().contains(says), "{e}");
        };
        refused(
            &[blob("a", 1), blob("b", 1), blob("c", 1), blob("d", 1)],
            &[],
            "4 inputs",
        );
        refused(&[blob("a", 60), blob("b", 60)], &[], "120 bytes");
        refused(
            &[blob("a", u64::MAX), blob("b", 2)],
            &[],
            "over this coordinator",
        );
        refused(&[blob("a", 1), blob("a", 1)], &[], "named \"a\"");
        refused(&[blob("", 1)], &[], "1..=8 bytes");
        refused(&[blob("ninechars", 1)], &[], "1..=8 bytes");
        refused(&ok, &["c".into()], "not one of the job's inputs");
        refused(&ok, &["a".into(), "a".into()], "named twice");
    }

    #[test]
    fn lines_split_evenly_and_keep_every_byte() {
        let parts = split_by_lines(b"a\nb\nc\nd\ne", 2);
        assert_eq!(parts, [b"a\nb\n".to_vec(), b"c\nd\ne".to_vec()]);
        assert_eq!(
            split_by_lines(b"", 3),
            [Vec::<u8>::new(), Vec::new(), Vec::new()]
        );
        let parts = split_by_lines(b"1\n2\n3\n", 5);
        assert_eq!(parts.concat(), b"1\n2\n3\n");
        assert_eq!(parts.len(), 5);
    }

    #[test]
    fn the_rate_is_chosen_once() {
        assert_eq!(verify_rate(true, 0, 7).ok(), Some(0));
        assert_eq!(verify_rate(false, 0, 7).ok(), Some(7));
        assert_eq!(verify_rate(false, 9, 7).ok(), Some(9));
        assert!(matches!(verify_rate(true, 9, 7), Err(Error::Invalid(_))));
        assert!(matches!(
            verify_rate(false, RATE_ALWAYS + 1, 7),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn shard_ids_differ_by_index() {
        let spec = JobSpec::default();
        let ids = shard_job_ids(&Hash32([1; 32]), &spec, 3, |_| Hash32([2; 32]));
        assert_eq!(ids.len(), 3);
        assert_ne!(ids[0], ids[1]);
        assert_eq!(
            ids[2],
            job_id(&Hash32([1; 32]), &Hash32([2; 32]), &shard_spec(&spec, 2, 3))
        );
    }
}
