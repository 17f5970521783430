//! Matching rules, as pure functions over what the store knows.
//!
//! A provider fits a shard when its memory covers the spec's guest memory,
//! its device memory (its largest GPU's, or its RAM on a CPU-only machine:
//! the CPU backend keeps tensors in RAM) covers the spec's GPU memory quota,
//! it has a GPU if the job requires one, and its price is at most the
//! renter's max, its stake reaches its devices' floor, the stake its open
//! leases and unsettled receipts leave free covers the shard's bond — what
//! the job's verification rate requires (see
//! [`assay_protocol::verification::required_stake`] and
//! [`crate::rules::exposure`]) — and it was not suspended for a proven
//! cheat. Among fitting providers the cheapest wins; stake, then
//! reliability, then node id break ties. A provider that polls is given a
//! freshly queued shard only if no better-ranked online provider with a free
//! slot (and no shard of that job yet) also fits; after the preference
//! window any fitting provider takes it, so no shard waits on a busy
//! favourite.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use assay_protocol::NodeId;

pub use crate::types::ProviderView;

/// A provider as matching weighs it: what the store knows of it, and the
/// stake its open leases and unsettled receipts leave free
/// ([`crate::rules::exposure::Exposure::free`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The provider.
    pub provider: ProviderView,
    /// Its stake not bonded by an exposure, µIO.
    pub free_stake: u64,
}

/// What a shard needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The renter's max price.
    pub max_price: u64,
    /// Guest linear memory.
    pub memory_bytes: u64,
    /// GPU memory quota.
    pub gpu_memory_bytes: u64,
    /// A GPU is required.
    pub require_gpu: bool,
    /// The stake a provider's lease on it bonds (from the verification
    /// rate): its free stake must cover it.
    pub min_stake: u64,
}

/// Reliability from history, per mille: `(completed + 1) / (completed +
/// faults + 2·expired + 2)`. A new provider starts at 500; an expired lease
/// (a provider that vanished) weighs twice a reported fault.
pub fn reliability_permille(completed: u64, faults: u64, expired: u64) -> u64 {
    let num = completed.saturating_add(1).saturating_mul(1000);
    let den = completed
        .saturating_add(faults)
        .saturating_add(expired.saturating_mul(2))
        .saturating_add(2);
    num / den
}

/// The provider's hardware fits the shard (price aside).
pub fn fits_hardware(p: &ProviderView, n: &Need) -> bool {
    p.memory_bytes >= n.memory_bytes
        && p.device_memory() >= n.gpu_memory_bytes
        && (!n.require_gpu || (p.gpu_count > 0 && p.hardware_ok))
}

/// The provider fits the shard, asks at most its max price, is staked to
/// its floor, and its `free_stake` covers the shard's bond.
pub fn fits(p: &ProviderView, free_stake: u64, n: &Need) -> bool {
    fits_hardware(p, n)
        && p.price <= n.max_price
        && p.stake >= p.stake_floor
        && free_stake >= n.min_stake
        && !p.suspended
}

/// Orders providers best first: cheapest, then most stake, then most
/// reliable, then node id (so the order is total).
pub fn rank(a: &ProviderView, b: &ProviderView) -> Ordering {
    a.price
        .cmp(&b.price)
        .then(b.stake.cmp(&a.stake))
        .then(b.reliability_permille.cmp(&a.reliability_permille))
        .then(a.id.cmp(&b.id))
}

/// Whether `me` should leave a freshly queued shard (still inside the
/// preference window) to a better-ranked online provider: one with a free
/// slot that fits the shard and holds no shard of this job yet.
/// `holders` are the providers holding leases on the shard's job.
///
/// # Errors
///
/// What `holders` returns (it is called only when a better provider exists).
pub fn defer_to_better<E>(
    me: &ProviderView,
    need: &Need,
    online: &[Offer],
    holders: impl FnOnce() -> Result<BTreeSet<NodeId>, E>,
) -> Result<bool, E> {
    let better: Vec<&ProviderView> = online
        .iter()
        .filter(|o| fits(&o.provider, o.free_stake, need))
        .map(|o| &o.provider)
        .filter(|q| q.id != me.id && q.free_slots > 0 && rank(q, me).is_lt())
        .collect();
    if better.is_empty() {
        return Ok(false);
    }
    let holders = holders()?;
    Ok(better.iter().any(|q| !holders.contains(&q.id)))
}

/// Why a queued shard has no provider yet, in words for the renter.
pub fn why_not_matched(n: &Need, offers: &[Offer]) -> String {
    let free_stake = |p: &ProviderView| {
        offers
            .iter()
            .find(|o| o.provider.id == p.id)
            .map_or(0, |o| o.free_stake)
    };
    let online: Vec<&ProviderView> = offers
        .iter()
        .map(|o| &o.provider)
        .filter(|p| p.online)
        .collect();
    if online.is_empty() {
        return "no provider is online".into();
    }
    let hw: Vec<&&ProviderView> = online.iter().filter(|p| fits_hardware(p, n)).collect();
    if hw.is_empty() {
        if n.require_gpu && online.iter().all(|p| p.gpu_count == 0) {
            return format!("none of the {} online providers has a GPU", online.len());
        }
        if n.require_gpu && online.iter().all(|p| p.gpu_count == 0 || !p.hardware_ok) {
            let mut states: std::collections::BTreeMap<&str, usize> = Default::default();
            for p in online.iter().filter(|p| p.gpu_count > 0) {
                *states.entry(p.hardware_state.as_str()).or_default() += 1;
            }
            let states: Vec<String> = states.iter().map(|(s, k)| format!("{k} {s}")).collect();
            return format!(
                "none of the {} online providers has a GPU that passed its hardware challenge (GPU claims: {})",
                online.len(),
                states.join(", ")
            );
        }
        let most_mem = online.iter().map(|p| p.memory_bytes).max().unwrap_or(0);
        let most_dev = online
            .iter()
            .filter(|p| !n.require_gpu || p.gpu_count > 0)
            .map(|p| p.device_memory())
            .max()
            .unwrap_or(0);
        return format!(
            "no online provider has enough memory: the job needs {} bytes of memory and {} bytes of {} memory; the most online is {most_mem} and {most_dev}",
            n.memory_bytes,
            n.gpu_memory_bytes,
            if n.require_gpu { "GPU" } else { "device" }
        );
    }
    let affordable: Vec<&&&ProviderView> = hw.iter().filter(|p| p.price <= n.max_price).collect();
    if affordable.is_empty() {
        let cheapest = hw.iter().map(|p| p.price).min().unwrap_or(0);
        return format!(
            "all {} providers that fit ask more than your max price of {} µIOSD/Munit (the cheapest asks {cheapest}): raise --max-price",
            hw.len(),
            n.max_price
        );
    }
    let floored: Vec<&&&&ProviderView> = affordable
        .iter()
        .filter(|p| p.stake >= p.stake_floor)
        .collect();
    if floored.is_empty() {
        return format!(
            "the {} providers that fit and are within your price stake less IO than their devices' floor (200 IO per reference GPU): \
             they are not hired until they stake more",
            affordable.len()
        );
    }
    let staked: Vec<&&&&&ProviderView> = floored
        .iter()
        .filter(|p| p.stake >= n.min_stake && !p.suspended)
        .collect();
    if staked.is_empty() {
        let most = floored.iter().map(|p| p.stake).max().unwrap_or(0);
        return format!(
            "the {} providers that fit and are within your price hold less stake than the {} µIO your verification rate requires (the most is {most}): \
             wait for a better-staked provider, or raise --verify-rate (a higher rate needs less stake)",
            floored.len(),
            n.min_stake
        );
    }
    let free: Vec<&&&&&&ProviderView> = staked
        .iter()
        .filter(|p| free_stake(p) >= n.min_stake)
        .collect();
    if free.is_empty() {
        let most = staked.iter().map(|p| free_stake(p)).max().unwrap_or(0);
        return format!(
            "the {} providers that fit, are within your price and stake enough have too little stake free: \
             their open leases and unsettled receipts bond it, and each lease of this job bonds {} µIO \
             (the most free is {most}): waiting for their receipts to settle or their leases to end",
            staked.len(),
            n.min_stake
        );
    }
    let affordable = free;
    if affordable.iter().all(|p| p.free_slots == 0) {
        return format!(
            "all {} matching providers are busy: waiting for a free slot",
            affordable.len()
        );
    }
    format!(
        "{} matching providers have free slots: waiting for the next poll",
        affordable.iter().filter(|p| p.free_slots > 0).count()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::HardwareState;

    fn p(id: u8, price: u64, mem: u64, gpus: u32) -> ProviderView {
        ProviderView {
            id: NodeId([id; 32]),
            price,
            cpu_cores: 4,
            memory_bytes: mem,
            gpu_count: gpus,
            gpu_memory_bytes: if gpus > 0 { 80 << 30 } else { 0 },
            slots: 2,
            free_slots: 2,
            stake: 0,
            stake_floor: 0,
            reliability_permille: 500,
            last_seen_ms: 0,
            online: true,
            completed: 0,
            faults: 0,
            expired: 0,
            suspended: false,
            hardware_ok: true,
            hardware_state: HardwareState::Unchallenged,
        }
    }

    /// Offers whose whole stake is free.
    fn free(ps: &[ProviderView]) -> Vec<Offer> {
        ps.iter()
            .map(|p| Offer {
                provider: p.clone(),
                free_stake: p.stake,
            })
            .collect()
    }

    fn need(max_price: u64, mem: u64, gpu: bool) -> Need {
        Need {
            max_price,
            memory_bytes: mem,
            gpu_memory_bytes: mem,
            require_gpu: gpu,
            min_stake: 0,
        }
    }

    #[test]
    fn cheapest_then_stake_then_reliability() {
        let a = p(1, 10, 1 << 30, 0);
        let mut b = p(2, 10, 1 << 30, 0);
        assert_eq!(rank(&a, &b), Ordering::Less, "id breaks the last tie");
        b.stake = 5;
        assert_eq!(rank(&a, &b), Ordering::Greater, "stake beats id");
        let mut c = p(3, 9, 1 << 30, 0);
        c.reliability_permille = 1;
        assert_eq!(rank(&c, &b), Ordering::Less, "price beats stake");
        let mut d = p(4, 10, 1 << 30, 0);
        d.stake = 5;
        d.reliability_permille = 900;
        assert_eq!(
            rank(&d, &b),
            Ordering::Less,
            "reliability breaks a stake tie"
        );
    }

    #[test]
    fn a_fresh_shard_waits_for_a_better_free_provider_without_a_shard_of_the_job() {
        let n = need(100, 1, false);
        let me = p(2, 50, 1 << 30, 0);
        let cheaper = p(1, 10, 1 << 30, 0);
        let dearer = p(3, 90, 1 << 30, 0);
        let none = || Ok::<_, ()>(BTreeSet::new());
        let defer = |online: &[ProviderView], holders: BTreeSet<NodeId>| {
            defer_to_better(&me, &n, &free(online), || Ok::<_, ()>(holders)).unwrap_or(false)
        };
        assert_eq!(
            defer_to_better(&me, &n, &free(&[cheaper.clone(), me.clone()]), none),
            Ok(true)
        );
        assert_eq!(
            defer_to_better(&me, &n, &free(&[dearer.clone(), me.clone()]), none),
            Ok(false)
        );
        // The better one's stake is all bonded: it cannot take a verified shard.
        let bonded = Need {
            min_stake: 100,
            ..n
        };
        let staked = |q: &ProviderView, free_stake| Offer {
            provider: ProviderView {
                stake: 100,
                ..q.clone()
            },
            free_stake,
        };
        let me_staked = ProviderView {
            stake: 100,
            ..me.clone()
        };
        assert_eq!(
            defer_to_better(&me_staked, &bonded, &[staked(&cheaper, 0)], none),
            Ok(false)
        );
        assert_eq!(
            defer_to_better(&me_staked, &bonded, &[staked(&cheaper, 100)], none),
            Ok(true)
        );
        // The better one already holds a shard of this job: take it.
        assert!(!defer(
            std::slice::from_ref(&cheaper),
            BTreeSet::from([cheaper.id])
        ));
        // The better one has no free slot: take it.
        let busy = ProviderView {
            free_slots: 0,
            ..cheaper
        };
        assert!(!defer(&[busy], BTreeSet::new()));
    }

    #[test]
    fn reasons_name_the_blocker() {
        let n = need(10, 2 << 30, false);
        let why = |n: &Need, ps: &[ProviderView]| why_not_matched(n, &free(ps));
        assert_eq!(why(&n, &[]), "no provider is online");
        let small = p(1, 5, 1 << 30, 0);
        assert!(why(&n, &[small]).contains("enough memory"));
        let dear = p(2, 50, 8 << 30, 0);
        let w = why(&n, std::slice::from_ref(&dear));
        assert!(w.contains("max price") && w.contains("50"), "{w}");
        assert!(why(&need(100, 1, true), &[dear]).contains("GPU"));
        let mut busy = p(3, 5, 8 << 30, 0);
        busy.free_slots = 0;
        assert!(why(&n, std::slice::from_ref(&busy)).contains("busy"));
        let poor = Need {
            min_stake: 1_000,
            ..n
        };
        let w = why(&poor, std::slice::from_ref(&busy));
        assert!(w.contains("less stake") && w.contains("1000"), "{w}");
        // Staked enough, but its open leases and receipts bond it all.
        let mut rich = p(5, 5, 8 << 30, 0);
        rich.stake = 1_500;
        let bonded = Offer {
            provider: rich.clone(),
            free_stake: 600,
        };
        let w = why_not_matched(&poor, std::slice::from_ref(&bonded));
        assert!(
            w.contains("too little stake free") && w.contains("600"),
            "{w}"
        );
        let freed = Offer {
            free_stake: 1_000,
            ..bonded
        };
        assert!(why_not_matched(&poor, &[freed]).contains("free slots"));
        let mut offline = p(4, 5, 8 << 30, 0);
        offline.online = false;
        assert_eq!(why(&n, &[offline]), "no provider is online");
    }

    #[test]
    fn reliability_rewards_completion_and_punishes_vanishing() {
        assert_eq!(reliability_permille(0, 0, 0), 500);
        assert!(reliability_permille(10, 0, 0) > 900);
        assert!(reliability_permille(10, 0, 2) < reliability_permille(10, 2, 0));
    }
}
