//! Why a provider is or is not hired, item by item, in words — the worker
//! dashboard's checklist. Pure: the store reads the numbers, this decides.

use crate::state::HardwareState;

/// What the checklist looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Heard from within the liveness window.
    pub online: bool,
    /// Ms since it was last heard from.
    pub silent_ms: u64,
    /// Caught cheating.
    pub suspended: bool,
    /// Where its hardware challenge stands.
    pub hardware: HardwareState,
    /// The coordinator's note on the challenge.
    pub hardware_note: String,
    /// Its stake and floor, µIO.
    pub stake: u64,
    /// The floor below which it is not hired, µIO.
    pub stake_floor: u64,
    /// Its asking price, µIOSD per million units.
    pub price: u64,
    /// Queued shards now, and the highest price any of them offers.
    pub queued: u64,
    /// The highest `max_price` among queued shards (0 when none).
    pub best_offer: u64,
    /// Free slots at its last heartbeat.
    pub free_slots: u32,
    /// Its slots.
    pub slots: u32,
}

/// One line of the checklist: `(check, ok, detail)`.
pub type Item = (&'static str, bool, String);

/// The checklist, in the order a provider should fix things.
pub fn checklist(s: &Standing) -> Vec<Item> {
    let mut out = Vec::with_capacity(6);
    out.push(if s.online {
        ("online", true, "heard from at its last heartbeat".into())
    } else {
        (
            "online",
            false,
            format!(
                "offline: no heartbeat for {} s — start the provider daemon (see installation below)",
                s.silent_ms / 1000
            ),
        )
    });
    out.push(if s.suspended {
        (
            "not-suspended",
            false,
            "suspended: a receipt was proven wrong; it is never matched again".into(),
        )
    } else {
        ("not-suspended", true, "no receipt proven wrong".into())
    });
    out.push(match s.hardware {
        HardwareState::Passed => ("hardware", true, "hardware challenge passed".into()),
        HardwareState::Unchallenged => (
            "hardware",
            true,
            "no hardware challenge needed for this claim".into(),
        ),
        HardwareState::Failed => (
            "hardware",
            false,
            format!(
                "hardware challenge failed{}: GPU jobs are not matched to it",
                note(&s.hardware_note)
            ),
        ),
        other => (
            "hardware",
            false,
            format!(
                "hardware challenge not passed yet ({}){}",
                other.as_str(),
                note(&s.hardware_note)
            ),
        ),
    });
    out.push(if s.stake >= s.stake_floor {
        (
            "stake",
            true,
            format!("stake {} µIO ≥ floor {} µIO", s.stake, s.stake_floor),
        )
    } else {
        (
            "stake",
            false,
            format!(
                "stake {} µIO below the floor {} µIO: stake {} µIO more (`assay stake`)",
                s.stake,
                s.stake_floor,
                s.stake_floor - s.stake
            ),
        )
    });
    out.push(if s.queued == 0 {
        ("price", true, "no work is queued right now".into())
    } else if s.price <= s.best_offer {
        (
            "price",
            true,
            format!(
                "price {} ≤ the best queued offer {} (µIOSD per million units)",
                s.price, s.best_offer
            ),
        )
    } else {
        (
            "price",
            false,
            format!(
                "price {} above what renters offer (best queued offer {} µIOSD per million units): lower it to be hired",
                s.price, s.best_offer
            ),
        )
    });
    out.push(if s.free_slots > 0 {
        (
            "free-slot",
            true,
            format!("{} of {} slots free", s.free_slots, s.slots),
        )
    } else {
        (
            "free-slot",
            false,
            format!("no free slot: all {} slots are running jobs", s.slots),
        )
    });
    out
}

fn note(n: &str) -> String {
    if n.is_empty() {
        String::new()
    } else {
        format!(": {n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Standing {
        Standing {
            online: true,
            silent_ms: 0,
            suspended: false,
            hardware: HardwareState::Passed,
            hardware_note: String::new(),
            stake: 200,
            stake_floor: 200,
            price: 10,
            queued: 3,
            best_offer: 10,
            free_slots: 1,
            slots: 2,
        }
    }

    fn failing(s: &Standing) -> Vec<&'static str> {
        checklist(s)
            .into_iter()
            .filter(|i| !i.1)
            .map(|i| i.0)
            .collect()
    }

    #[test]
    fn a_provider_in_good_standing_passes_every_item() {
        assert!(failing(&good()).is_empty());
        assert_eq!(checklist(&good()).len(), 6);
    }

    #[test]
    fn each_reason_not_to_be_hired_is_named() {
        let mut s = good();
        s.online = false;
        s.silent_ms = 61_000;
        s.price = 11;
        s.stake = 150;
        s.free_slots = 0;
        s.hardware = HardwareState::Challenged;
        assert_eq!(
            failing(&s),
            vec!["online", "hardware", "stake", "price", "free-slot"]
        );
        let items = checklist(&s);
        assert!(items[0].2.contains("61 s"));
        assert!(items[3].2.contains("50 µIO more"));
        assert!(items[4].2.contains("above what renters offer"));
        s.suspended = true;
        assert!(failing(&s).contains(&"not-suspended"));
    }

    #[test]
    fn price_only_matters_when_work_is_queued() {
        let mut s = good();
        s.queued = 0;
        s.best_offer = 0;
        s.price = 1_000;
        assert!(failing(&s).is_empty());
    }
}
