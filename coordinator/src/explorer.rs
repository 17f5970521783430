//! The public read model: what the explorer, the worker dashboard and the
//! renter console show, as plain records.
//!
//! Everything here is public data (what anyone watching the network may
//! see): ids, amounts, states, hashes of inputs and outputs — never blob
//! contents, keys or signatures' secrets. The records are built by
//! [`crate::store::Explorer`] from the store and serialised as they are by
//! the web API (`assay-web`), so every number on a page is a field here.
//!
//! Conventions, so an API client never has to guess:
//! - ids and hashes are lowercase hex strings;
//! - times are Unix milliseconds (`*_ms`);
//! - money is integers in base units, the unit in the field's name:
//!   `*_uiosd` is µIOSD, `*_uio` is µIO (both 10⁻⁶ of a unit);
//! - ratios are integers in per mille (`*_permille`) or parts per million
//!   (`*_ppm`);
//! - lists are [`Page`]s: `items`, the `total` matching, and the
//!   `offset`/`limit` that produced them.
//!
//! With the `openapi` feature every record also derives
//! `utoipa::ToSchema`, which is how the web API's OpenAPI document is
//! generated from this code.

use serde::Serialize;

/// Derives `Serialize` and, with the `openapi` feature, `ToSchema`.
macro_rules! record {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub struct $name { $($body)* }
    };
}

/// The most items one page of a list holds.
pub const MAX_PAGE: u32 = 200;
/// Items per page when the caller names no limit.
pub const DEFAULT_PAGE: u32 = 50;

/// Which slice of a list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Items to skip.
    pub offset: u64,
    /// Items to return, at most [`MAX_PAGE`].
    pub limit: u32,
}

impl Window {
    /// A window with `limit` clamped to `1..=MAX_PAGE` (default
    /// [`DEFAULT_PAGE`]).
    pub fn new(offset: Option<u64>, limit: Option<u32>) -> Window {
        Window {
            offset: offset.unwrap_or(0),
            limit: limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE),
        }
    }

    /// Everything up to `n` items from the start (CSV exports).
    pub fn first(n: u32) -> Window {
        Window {
            offset: 0,
            limit: n.max(1),
        }
    }

    /// A page of `items` that this window read out of `total`.
    pub fn page<T>(self, items: Vec<T>, total: u64) -> Page<T> {
        Page {
            items,
            total,
            offset: self.offset,
            limit: self.limit,
        }
    }

    /// This window's slice of `all` as a page.
    pub fn page_of<T>(self, all: Vec<T>) -> Page<T> {
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(usize::try_from(self.offset).unwrap_or(usize::MAX))
            .take(self.limit as usize)
            .collect();
        Page {
            items,
            total,
            offset: self.offset,
            limit: self.limit,
        }
    }
}

impl Default for Window {
    fn default() -> Self {
        Window::new(None, None)
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// How many items the whole list holds.
    pub total: u64,
    /// Items skipped before the first one here.
    pub offset: u64,
    /// The most items this page could hold.
    pub limit: u32,
}

record! {
    /// The network at a glance.
    pub struct NetworkSummary {
        /// When this was read, Unix ms.
        pub at_ms: u64,
        /// Providers ever registered.
        pub providers_total: u64,
        /// Providers heard from within the liveness window.
        pub providers_online: u64,
        /// Online providers that are suspended for cheating.
        pub providers_suspended: u64,
        /// Registered verifiers.
        pub verifiers_total: u64,
        /// GPUs of online providers, by model and class.
        pub gpus: Vec<GpuGroup>,
        /// CPU-only online providers (no GPU), and how many are hired.
        pub cpu_providers_online: u64,
        /// CPU-only online providers running at least one shard.
        pub cpu_providers_hired: u64,
        /// Jobs by state.
        pub jobs: JobCounts,
        /// Work units settled in all.
        pub work_units_total: u64,
        /// IOSD paid to providers for settled work, µIOSD.
        pub paid_total_uiosd: u64,
        /// … of which since 00:00 UTC today, µIOSD.
        pub paid_today_uiosd: u64,
        /// IO emitted as block rewards, µIO.
        pub emitted_total_uio: u64,
        /// … of which by epochs closed since 00:00 UTC today, µIO.
        pub emitted_today_uio: u64,
        /// Reward epochs closed.
        pub epochs_closed: u64,
        /// The IO price in force (µIOSD per IO), if any.
        pub io_price_uiosd: Option<u64>,
        /// Verification: checks, disputes, slashes, hardware challenges.
        pub verification: VerificationCounts,
        /// The last 24 hours, hour by hour, oldest first.
        pub hourly: Vec<HourBucket>,
    }
}

record! {
    /// GPUs of one model and class.
    pub struct GpuGroup {
        /// The model as the provider's driver names it.
        pub model: String,
        /// The hardware class (`h100`, `a100`, `consumer`, …).
        pub class: String,
        /// GPUs of this model on online providers.
        pub total: u64,
        /// … of which on a provider running shards (one shard hires one GPU).
        pub hired: u64,
    }
}

record! {
    /// Jobs by state (a job is as far as its shards).
    pub struct JobCounts {
        /// Every job accepted.
        pub total: u64,
        /// No shard started.
        pub queued: u64,
        /// Some shard leased or done, not all done.
        pub running: u64,
        /// Every shard has a receipt, not all settled.
        pub done: u64,
        /// Every receipt settled.
        pub settled: u64,
        /// A shard gave up and none is still queued or leased.
        pub failed: u64,
    }
}

record! {
    /// Verification activity.
    pub struct VerificationCounts {
        /// Re-executions asked for (first checks and referee checks).
        pub checks: u64,
        /// Receipts now verified by a re-execution.
        pub verified: u64,
        /// Disputes: referee checks asked for after a disagreement.
        pub disputes: u64,
        /// Receipts proven wrong.
        pub rejected: u64,
        /// Stake slashes posted on the ledger.
        pub slashes: u64,
        /// Providers whose hardware challenge passed.
        pub challenges_passed: u64,
        /// Providers whose hardware challenge failed.
        pub challenges_failed: u64,
    }
}

record! {
    /// One hour of activity.
    pub struct HourBucket {
        /// The hour's start, Unix ms (UTC hour boundary).
        pub start_ms: u64,
        /// Jobs accepted in it.
        pub jobs: u64,
        /// Work units of receipts committed in it.
        pub work_units: u64,
        /// Paid to providers by receipts settled in it, µIOSD.
        pub paid_uiosd: u64,
    }
}

record! {
    /// A provider as the explorer lists it.
    pub struct ProviderSummary {
        /// Its node id.
        pub id: String,
        /// `online`, `offline` or `suspended`.
        pub status: String,
        /// Hardware class (`cpu` for CPU-only).
        pub class: String,
        /// Its GPUs' models (empty on a CPU-only provider).
        pub gpus: Vec<String>,
        /// CPU cores.
        pub cpu_cores: u32,
        /// Asking price, µIOSD per million work units.
        pub price_uiosd: u64,
        /// Stake, µIO.
        pub stake_uio: u64,
        /// The stake it must hold to be hired, µIO.
        pub stake_floor_uio: u64,
        /// Completed over all runs, per mille.
        pub reliability_permille: u64,
        /// Time online (between heartbeats) over time since it registered, per mille.
        pub uptime_permille: u64,
        /// Time its slots were leased over slot-time since it registered, per mille.
        pub hire_rate_permille: u64,
        /// IOSD paid for its settled work, µIOSD.
        pub earnings_uiosd: u64,
        /// IO block rewards paid to it, µIO.
        pub rewards_uio: u64,
        /// Shards completed.
        pub completed: u64,
        /// Jobs it runs at once, and how many were free at its last heartbeat.
        pub slots: u32,
        /// Free slots at its last heartbeat.
        pub free_slots: u32,
        /// Where its hardware challenge stands.
        pub hardware_state: String,
        /// Last heard from, Unix ms.
        pub last_seen_ms: u64,
        /// Registered, Unix ms.
        pub registered_at_ms: u64,
    }
}

record! {
    /// A device of a provider, as it registered it.
    pub struct DeviceInfo {
        /// Index on the provider (the NVML index for a GPU; `-1` for the host).
        pub index: i32,
        /// Model.
        pub model: String,
        /// Memory, bytes.
        pub memory_bytes: u64,
    }
}

record! {
    /// One sample of a device's state, from a heartbeat. For a GPU (`device`
    /// ≥ 0) the NVML readings; for the host (`device` = −1) CPU load in
    /// `utilization_pct` (load average over cores, capped at 100) and
    /// memory in use.
    pub struct TelemetrySample {
        /// When, Unix ms.
        pub at_ms: u64,
        /// GPU index, or −1 for the host.
        pub device: i32,
        /// Temperature, °C (0 when not read).
        pub temperature_c: u32,
        /// Power draw, mW (0 when not read).
        pub power_mw: u64,
        /// Utilisation, percent.
        pub utilization_pct: u32,
        /// Memory in use, bytes.
        pub memory_used_bytes: u64,
    }
}

record! {
    /// One item of the reward-eligibility checklist.
    pub struct EligibilityItem {
        /// Machine-readable name: `online`, `not-suspended`, `hardware`,
        /// `stake`, `price`, `free-slot`.
        pub check: String,
        /// Whether it holds.
        pub ok: bool,
        /// In words: what holds, or why not and what to do.
        pub detail: String,
    }
}

record! {
    /// The worker dashboard's provider.
    pub struct ProviderDetail {
        /// What the explorer lists.
        pub summary: ProviderSummary,
        /// Its devices as registered.
        pub devices: Vec<DeviceInfo>,
        /// RAM, bytes.
        pub memory_bytes: u64,
        /// The daemon's version.
        pub version: String,
        /// Shards it holds now.
        pub leased_now: u64,
        /// Runs that ended in a provider fault, and leases that expired.
        pub faults: u64,
        /// Leases that expired on it.
        pub expired: u64,
        /// Stake slashes, newest first.
        pub slashes: Vec<LedgerLine>,
        /// The hardware challenge: state, the coordinator's note, when the next is due.
        pub hardware_note: String,
        /// When its next hardware challenge is due, Unix ms.
        pub next_challenge_at_ms: Option<u64>,
        /// Why it is or is not hired, item by item.
        pub eligibility: Vec<EligibilityItem>,
        /// Time online per reward epoch, the last ones, oldest first.
        pub uptime: Vec<UptimeSlot>,
        /// Earnings over the last 24 hours: IOSD paid, µIOSD.
        pub paid_24h_uiosd: u64,
        /// IO rewards paid over the last 24 hours, µIO.
        pub rewards_24h_uio: u64,
        /// Mean power over the last 24 hours' samples, all its GPUs together, mW.
        pub mean_power_mw: u64,
        /// The command that runs a provider like it against this coordinator
        /// (filled in by the web layer, which knows the public address).
        pub install_command: String,
    }
}

record! {
    /// Time online in one reward epoch.
    pub struct UptimeSlot {
        /// The epoch (`None`: the epoch still open).
        pub epoch: Option<u64>,
        /// Its start, Unix ms.
        pub start_ms: u64,
        /// Its end (or now), Unix ms.
        pub end_ms: u64,
        /// Online in it, ms.
        pub online_ms: u64,
    }
}

record! {
    /// Earnings against power cost, per day and per month (30 days), from
    /// the last 24 hours.
    pub struct Profitability {
        /// The electricity price used, µIOSD per kWh.
        pub kwh_price_uiosd: u64,
        /// IOSD paid in the last 24 hours, µIOSD.
        pub paid_per_day_uiosd: u64,
        /// IO rewards of the last 24 hours at the IO price, µIOSD.
        pub rewards_per_day_uiosd: u64,
        /// Energy used per day at the mean sampled power, Wh.
        pub energy_per_day_wh: u64,
        /// Power cost per day, µIOSD.
        pub power_cost_per_day_uiosd: u64,
        /// Earnings − power cost per day, µIOSD (negative at a loss).
        pub profit_per_day_uiosd: i64,
        /// The same per month of 30 days, µIOSD.
        pub profit_per_month_uiosd: i64,
    }
}

record! {
    /// A job as lists show it.
    pub struct JobSummary {
        /// Its id.
        pub id: String,
        /// Who pays.
        pub renter: String,
        /// `queued`, `running`, `done`, `settled` or `failed`.
        pub state: String,
        /// Shards.
        pub shards: u64,
        /// Shards done.
        pub shards_done: u64,
        /// Escrowed when accepted, µIOSD (or µIO for a job paid in IO).
        pub escrow: u64,
        /// `iosd` or `io`.
        pub paid_in: String,
        /// Paid to providers so far, µIOSD.
        pub paid_uiosd: u64,
        /// Sampling rate, parts per million (0: unverified).
        pub verify_rate_ppm: u32,
        /// Receipts verified by re-execution.
        pub verified: u64,
        /// Receipts proven wrong.
        pub rejected: u64,
        /// Accepted, Unix ms.
        pub created_at_ms: u64,
    }
}

record! {
    /// A receipt as lists show it.
    pub struct ReceiptSummary {
        /// Commit order.
        pub seq: u64,
        /// Its id.
        pub id: String,
        /// The market job.
        pub job_id: String,
        /// The shard's index.
        pub shard: u32,
        /// Who ran it.
        pub provider: String,
        /// Billable work units (fuel + flops + bytes).
        pub units: u64,
        /// Paid once settled, µIOSD.
        pub paid_uiosd: Option<u64>,
        /// `success`, `trap`, …
        pub outcome: String,
        /// Where its check stands.
        pub check_state: String,
        /// Committed, Unix ms.
        pub committed_at_ms: u64,
        /// Settles (or settled), Unix ms.
        pub settle_at_ms: u64,
    }
}

record! {
    /// A receipt in full (public parts).
    pub struct ReceiptDetail {
        /// What lists show.
        pub summary: ReceiptSummary,
        /// The component run.
        pub component_hash: String,
        /// The Merkle root of its inputs.
        pub inputs_root: String,
        /// The Merkle root of its outputs.
        pub outputs_root: String,
        /// Its outputs: name, hash, size (contents are the renter's).
        pub outputs: Vec<BlobInfo>,
        /// Fuel used.
        pub fuel_used: u64,
        /// Floating-point operations counted.
        pub flops: u64,
        /// Bytes moved by host ops.
        pub bytes: u64,
        /// Backend kind (`cpu`, `cuda`).
        pub backend: String,
        /// The device it ran on.
        pub device: String,
        /// The device telemetry summary the provider signed, if any.
        pub telemetry: Option<ReceiptTelemetry>,
        /// Why it was checked (empty: not sampled).
        pub check_reason: String,
        /// The sampling epoch.
        pub epoch: u64,
        /// The verdicts on it, in order.
        pub verdicts: Vec<Verdict>,
        /// The provider's ed25519 signature over the receipt (public).
        pub signature: String,
        /// For a failed run, the provider's message.
        pub failure_message: String,
    }
}

record! {
    /// The NVML summary in a receipt.
    pub struct ReceiptTelemetry {
        /// Samples taken during the run.
        pub samples: u32,
        /// The highest temperature, °C.
        pub max_temperature_c: u32,
        /// Mean power, mW.
        pub mean_power_mw: u64,
        /// Mean utilisation, percent.
        pub mean_utilization_pct: u32,
    }
}

record! {
    /// A blob named by a job.
    pub struct BlobInfo {
        /// Its name in the job.
        pub name: String,
        /// Its BLAKE3 hash.
        pub hash: String,
        /// Its size, bytes.
        pub size: u64,
    }
}

record! {
    /// A verdict on a receipt.
    pub struct Verdict {
        /// Who re-executed.
        pub verifier: String,
        /// `verify` (first check) or `referee`.
        pub role: String,
        /// Its result equals the receipt's.
        pub agrees: bool,
        /// The outputs root it got.
        pub outputs_root: String,
        /// When, Unix ms.
        pub at_ms: u64,
    }
}

record! {
    /// A job in full.
    pub struct JobDetail {
        /// What lists show.
        pub summary: JobSummary,
        /// The component.
        pub component_hash: String,
        /// Its size, bytes.
        pub component_size: u64,
        /// Its inputs (hashes and sizes).
        pub inputs: Vec<BlobInfo>,
        /// The highest price it pays, µIOSD per million work units.
        pub max_price_uiosd: u64,
        /// The Merkle root of every shard's outputs root, once all are done.
        pub result_root: Option<String>,
        /// Each shard.
        pub shard_list: Vec<ShardDetail>,
        /// The guarantee: each receipt is re-executed with probability
        /// `verify_rate_ppm`/10⁶; a provider proven wrong loses
        /// `slash_bps`/100 % of its stake.
        pub slash_bps: u32,
        /// Per provider: stake at risk and the chance a cheat stays unseen.
        pub guarantee: Vec<ProviderGuarantee>,
    }
}

record! {
    /// One shard of a job.
    pub struct ShardDetail {
        /// Index.
        pub index: u32,
        /// `queued`, `leased`, `done` or `failed`.
        pub state: String,
        /// Who holds or ran it.
        pub provider: Option<String>,
        /// Leases handed out.
        pub attempts: u32,
        /// Its current receipt.
        pub receipt: Option<ReceiptSummary>,
        /// The verdicts on that receipt.
        pub verdicts: Vec<Verdict>,
        /// For a queued shard, why no provider took it yet.
        pub why_not_matched: String,
        /// What the receipt's check waits for, in words.
        pub check_note: String,
        /// Receipts of this shard proven wrong.
        pub rejected_receipts: Vec<String>,
    }
}

record! {
    /// What one provider has at stake on a job.
    pub struct ProviderGuarantee {
        /// The provider.
        pub provider: String,
        /// Its stake, µIO.
        pub stake_uio: u64,
        /// Its receipts on this job (n).
        pub receipts: u64,
        /// `(1 − p·f)^n` for f = 1 %, 10 %, 100 %, in parts per billion.
        pub escape_ppb: Vec<EscapeOdds>,
    }
}

record! {
    /// The chance a provider cheating on a fraction f of its receipts is
    /// never sampled.
    pub struct EscapeOdds {
        /// f, per mille.
        pub cheat_fraction_permille: u32,
        /// `(1 − p·f)^n`, parts per billion (rounded down).
        pub probability_ppb: u64,
    }
}

record! {
    /// One posting of the ledger.
    pub struct LedgerLine {
        /// Its sequence number.
        pub seq: u64,
        /// What it was (`pay`, `escrow`, `slash`, `reward`, …).
        pub kind: String,
        /// The account debited.
        pub debit: String,
        /// The account credited.
        pub credit: String,
        /// Amount in base units of `unit`.
        pub amount: u64,
        /// `io` or `iosd`.
        pub unit: String,
        /// Its reference (unique).
        pub reference: String,
        /// When, Unix ms.
        pub at_ms: u64,
    }
}

record! {
    /// An account as the renter console shows it.
    pub struct AccountView {
        /// Its node id.
        pub node: String,
        /// Spendable IOSD, µIOSD.
        pub balance_uiosd: u64,
        /// Spendable IO, µIO.
        pub balance_uio: u64,
        /// Stake, µIO.
        pub stake_uio: u64,
        /// Unstaked IO in its cooldown, µIO.
        pub unbonding_uio: u64,
        /// When the unbonding IO is released, Unix ms.
        pub unbonding_release_ms: Option<u64>,
        /// Provider earnings, µIOSD.
        pub earnings_uiosd: u64,
        /// Verifier earnings, µIOSD.
        pub verifier_earnings_uiosd: u64,
        /// Block rewards, µIO.
        pub rewards_uio: u64,
        /// Jobs it published.
        pub jobs: u64,
        /// Whether it is also a registered provider.
        pub is_provider: bool,
    }
}

record! {
    /// A closed reward epoch.
    pub struct EpochView {
        /// Its number.
        pub epoch: u64,
        /// Start, Unix ms.
        pub start_ms: u64,
        /// End (exclusive), Unix ms.
        pub end_ms: u64,
        /// The schedule's emission, µIO.
        pub scheduled_uio: u64,
        /// Emitted (paid), µIO.
        pub emitted_uio: u64,
        /// Providers with work or uptime in it.
        pub nominated: u64,
        /// Providers paid.
        pub paid: u64,
        /// Providers slashed or failing a challenge in it.
        pub failed: u64,
        /// Closed, Unix ms.
        pub closed_at_ms: u64,
        /// Each nominated provider (empty in lists).
        pub payouts: Vec<EpochPayout>,
    }
}

record! {
    /// One provider's part of an epoch.
    pub struct EpochPayout {
        /// The epoch.
        pub epoch: u64,
        /// The provider.
        pub provider: String,
        /// Work units it settled in the epoch.
        pub work_units: u64,
        /// Time online in the epoch, ms.
        pub uptime_ms: u64,
        /// It was slashed or failed a challenge: no reward.
        pub failed: bool,
        /// Paid, µIO.
        pub amount_uio: u64,
    }
}

record! {
    /// A compute note.
    pub struct NoteView {
        /// Its id.
        pub id: String,
        /// The device whose cash flow it sells.
        pub device: String,
        /// Shares in all.
        pub shares: u64,
        /// The holders' part of each earning, basis points.
        pub holders_bps: u32,
        /// Term, days.
        pub term_days: u32,
        /// Issued, Unix ms.
        pub issued_at_ms: u64,
        /// Ends, Unix ms.
        pub ends_at_ms: u64,
        /// Holders and their shares.
        pub holdings: Vec<Holding>,
        /// Offers: seller, shares, µIO per share.
        pub offers: Vec<ShareOffer>,
    }
}

record! {
    /// Who holds how much.
    pub struct Holding {
        /// The holder.
        pub holder: String,
        /// Shares (notes) or µIOSD of principal (bonds).
        pub amount: u64,
    }
}

record! {
    /// Shares on offer.
    pub struct ShareOffer {
        /// The seller.
        pub seller: String,
        /// Shares.
        pub shares: u64,
        /// µIO per share.
        pub price_uio: u64,
    }
}

record! {
    /// A compute bond.
    pub struct BondView {
        /// Its id.
        pub id: String,
        /// The device whose earnings repay it.
        pub device: String,
        /// `open`, `repaid`, `defaulted` or `expired`.
        pub state: String,
        /// Principal offered, µIOSD.
        pub principal_uiosd: u64,
        /// Principal sold, µIOSD.
        pub sold_uiosd: u64,
        /// Coupon, basis points a year.
        pub coupon_bps: u32,
        /// Days to maturity.
        pub maturity_days: u32,
        /// Issued, Unix ms.
        pub issued_at_ms: u64,
        /// Matures, Unix ms.
        pub matures_at_ms: u64,
        /// Coupons owed over its life, µIOSD.
        pub coupon_total_uiosd: u64,
        /// Coupons paid, µIOSD.
        pub coupon_paid_uiosd: u64,
        /// Principal escrowed so far, µIOSD.
        pub escrowed_uiosd: u64,
        /// Holders and their principal (µIOSD).
        pub holdings: Vec<Holding>,
    }
}

/// Unix ms of the UTC midnight that starts the day of `now_ms`.
pub fn day_start_ms(now_ms: u64) -> u64 {
    now_ms - now_ms % 86_400_000
}

/// `(1 − p·f)^n` in parts per billion, for `rate_ppm` = p·10⁶ and
/// `fraction_permille` = f·10³ (floating point only for this display
/// figure, never for money).
pub fn escape_ppb(rate_ppm: u32, fraction_permille: u32, n: u64) -> u64 {
    let p = f64::from(rate_ppm) / 1e6;
    let f = f64::from(fraction_permille) / 1e3;
    let q = assay_protocol::verification::escape_probability(p, f, n);
    (q * 1e9).floor().clamp(0.0, 1e9) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_clamps_its_limit_and_pages_a_list() {
        assert_eq!(Window::new(None, Some(0)).limit, 1);
        assert_eq!(Window::new(None, Some(10_000)).limit, MAX_PAGE);
        let p = Window::new(Some(3), Some(2)).page_of((0..10).collect::<Vec<u32>>());
        assert_eq!(p.items, vec![3, 4]);
        assert_eq!(p.total, 10);
        let past = Window::new(Some(50), None).page_of(vec![1, 2]);
        assert!(past.items.is_empty());
        assert_eq!(past.total, 2);
    }

    #[test]
    fn escape_odds_are_one_minus_pf_to_the_n_in_ppb() {
        assert_eq!(escape_ppb(0, 1000, 5), 1_000_000_000);
        assert_eq!(escape_ppb(1_000_000, 1000, 1), 0);
        // p = 0.5, f = 1, n = 2: 0.25
        assert_eq!(escape_ppb(500_000, 1000, 2), 250_000_000);
    }

    #[test]
    fn a_day_starts_at_utc_midnight() {
        assert_eq!(day_start_ms(86_400_000 * 3 + 5), 86_400_000 * 3);
    }
}
