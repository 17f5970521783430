//! What a key may keep in the blob store: a quota on the bytes of the
//! blobs it uploaded that are still stored, and when retention starts to
//! count. Pure: the store sums, these decide.

/// Whether `node` may upload `size` more bytes while it already stores
/// `stored` bytes under a quota of `quota` bytes (`None`: no quota).
/// Uploading a blob it already owns costs nothing.
///
/// # Errors
///
/// What to tell the uploader: how much it stores, the quota, and what
/// frees space.
pub fn admit_upload(
    stored: u64,
    already_owned: bool,
    size: u64,
    quota: Option<u64>,
) -> Result<(), String> {
    let Some(quota) = quota else { return Ok(()) };
    if already_owned || stored.checked_add(size).is_some_and(|total| total <= quota) {
        return Ok(());
    }
    Err(format!(
        "this key stores {stored} bytes of blobs and may store {quota} (--max-stored-bytes-per-key): \
         a blob of {size} bytes does not fit; blobs no live job names are collected after the \
         retention period, so wait for your jobs to settle or upload from another key"
    ))
}

/// The start of the retention window of a sweep at `now_ms` that keeps
/// blobs for `keep_ms`: what was used since then stays.
pub fn retained_since(now_ms: u64, keep_ms: u64) -> u64 {
    now_ms.saturating_sub(keep_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_admits_up_to_its_bytes_and_owned_blobs_again() {
        assert!(admit_upload(0, false, 100, Some(100)).is_ok());
        assert!(admit_upload(60, false, 40, Some(100)).is_ok());
        let e = admit_upload(60, false, 41, Some(100)).expect_err("over");
        assert!(
            e.contains("stores 60 bytes") && e.contains("may store 100"),
            "{e}"
        );
        assert!(
            admit_upload(100, true, 50, Some(100)).is_ok(),
            "owned already"
        );
        assert!(admit_upload(u64::MAX, false, u64::MAX, None).is_ok());
        assert!(admit_upload(u64::MAX, false, 1, Some(u64::MAX)).is_err());
    }

    #[test]
    fn retention_starts_no_earlier_than_time_zero() {
        assert_eq!(retained_since(10_000, 3_000), 7_000);
        assert_eq!(retained_since(1_000, 3_000), 0);
    }
}
