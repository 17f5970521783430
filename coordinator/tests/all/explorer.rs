//! The explorer's reads on both stores: the numbers a page shows are the
//! store's, counted the way the market counts them.

use crate::common::{key, receipt_for};

use assay_coordinator::explorer::{TelemetrySample, Window};
use assay_coordinator::ledger::Unit;
use assay_coordinator::sql::Backend;
use assay_coordinator::store::explorer::ProviderFilter;
use assay_coordinator::store::prelude::*;
use assay_coordinator::store::{NewJob, ProviderInfo};
use assay_coordinator::{MarketConfig, SqlStore};
use assay_protocol::{JobSpec, NodeKey};

type Db<'a, B> = &'a dyn Fn(MarketConfig) -> SqlStore<B>;

fn cfg() -> MarketConfig {
    MarketConfig {
        lease_ttl_ms: 10_000,
        provider_liveness_ms: 10_000,
        preference_window_ms: 0,
        settlement_delay_ms: 500,
        max_attempts: 0,
        telemetry_every_ms: 1_000,
        telemetry_keep_ms: 5_000,
        ..MarketConfig::default()
    }
}

fn provider(k: &NodeKey, price: u64, gpus: Vec<(String, u64)>) -> ProviderInfo {
    ProviderInfo {
        id: k.id(),
        price,
        cpu_cores: 8,
        memory_bytes: 1 << 34,
        gpus,
        slots: 2,
        version: "test".into(),
    }
}

fn new_job(renter: &NodeKey, tag: u8, shards: u32) -> NewJob {
    let spec = JobSpec {
        fuel: 1_000_000,
        work_budget: 9_000_000,
        memory_bytes: 1 << 20,
        ..JobSpec::default()
    };
    crate::common::job(&renter.id(), tag, shards, 100, 0, spec)
}

fn gpu(i: i32, power_mw: u64) -> TelemetrySample {
    TelemetrySample {
        at_ms: 0,
        device: i,
        temperature_c: 60,
        power_mw,
        utilization_pct: 90,
        memory_used_bytes: 1 << 30,
    }
}

fn the_explorer_counts_what_the_market_did<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (renter, other) = (key(1), key(9));
    let (cpu, gpu_node) = (key(2), key(3));
    s.mint(&renter.id(), 10_000_000, "m", 0).expect("mint");
    s.mint(&other.id(), 10_000_000, "m2", 0).expect("mint");
    s.register(&provider(&cpu, 10, Vec::new()), 0, 0)
        .expect("reg");
    let h100 = ("NVIDIA H100 80GB HBM3".to_string(), 80u64 << 30);
    s.register(&provider(&gpu_node, 50, vec![h100.clone(), h100]), 0, 0)
        .expect("reg");

    // Three jobs: one done and settled, one running, one queued.
    for (tag, who) in [(1, &renter), (2, &renter), (3, &other)] {
        s.submit_job(&new_job(who, tag, 1), 10 * u64::from(tag))
            .expect("job");
    }
    let l1 = s.take_leases(&cpu.id(), 1, 100).expect("take");
    let (r1, _) = s
        .submit_receipt(&receipt_for(&s, &l1[0], &cpu), 200)
        .expect("receipt");
    assert_eq!(s.settle_due(10_000).expect("settle").len(), 1);
    let l2 = s.take_leases(&gpu_node.id(), 1, 10_100).expect("take");
    assert_eq!(l2.len(), 1);

    // Samples: kept at most once a second, dropped after five.
    for (at, w) in [(10_200, 300_000), (10_500, 999_999), (11_300, 500_000)] {
        s.heartbeat(&gpu_node.id(), 1, &[gpu(0, w), gpu(1, w)], at)
            .expect("hb");
    }
    s.heartbeat(&cpu.id(), 2, &[], 10_200).expect("hb");
    let now = 11_400;
    let t = s.telemetry(&gpu_node.id(), 0).expect("telemetry");
    assert_eq!(
        t.iter().map(|x| (x.at_ms, x.device)).collect::<Vec<_>>(),
        vec![(10_200, 0), (10_200, 1), (11_300, 0), (11_300, 1)],
        "the 10 500 heartbeat came too soon after the last kept one"
    );

    let n = s.network(now).expect("network");
    assert_eq!((n.providers_total, n.providers_online), (2, 2));
    assert_eq!(n.jobs.total, 3);
    assert_eq!(
        (n.jobs.settled, n.jobs.running, n.jobs.queued),
        (1, 1, 1),
        "{:?}",
        n.jobs
    );
    assert_eq!(n.gpus.len(), 1);
    assert_eq!((n.gpus[0].total, n.gpus[0].hired), (2, 1));
    assert_eq!((n.cpu_providers_online, n.cpu_providers_hired), (1, 0));
    let receipt = s.receipt_detail(&r1).expect("receipt").expect("exists");
    let paid = receipt.summary.paid_uiosd.expect("settled");
    assert!(paid > 0);
    assert_eq!(n.paid_total_uiosd, paid);
    assert_eq!(n.work_units_total, receipt.summary.units);
    assert_eq!(n.hourly.len(), 24);
    assert_eq!(n.hourly.iter().map(|h| h.jobs).sum::<u64>(), 3);
    assert_eq!(n.hourly.iter().map(|h| h.paid_uiosd).sum::<u64>(), paid);

    // Providers: search by model, status filter, earnings.
    let all = s
        .provider_list(&ProviderFilter::default(), Window::default(), now)
        .expect("list");
    assert_eq!(all.total, 2);
    let by_model = s
        .provider_list(
            &ProviderFilter {
                search: Some("h100".into()),
                status: None,
            },
            Window::default(),
            now,
        )
        .expect("search");
    assert_eq!(by_model.items.len(), 1);
    assert_eq!(by_model.items[0].id, gpu_node.id().to_string());
    let cpu_row = all
        .items
        .iter()
        .find(|p| p.id == cpu.id().to_string())
        .expect("listed");
    assert_eq!(cpu_row.earnings_uiosd, paid);
    assert_eq!(cpu_row.class, "cpu");
    let offline = s
        .provider_list(
            &ProviderFilter {
                search: None,
                status: Some("offline".into()),
            },
            Window::default(),
            now + 60_000,
        )
        .expect("offline");
    assert_eq!(offline.total, 2);

    // The dashboard: checklist, devices, mean power of both GPUs together.
    let d = s
        .provider_detail(&gpu_node.id(), 11_400)
        .expect("detail")
        .expect("exists");
    assert_eq!(d.devices.len(), 3, "two GPUs and the host");
    assert_eq!(d.leased_now, 1);
    assert_eq!(d.mean_power_mw, 800_000, "(600 000 + 1 000 000) / 2");
    let failing: Vec<&str> = d
        .eligibility
        .iter()
        .filter(|i| !i.ok)
        .map(|i| i.check.as_str())
        .collect();
    assert!(failing.is_empty(), "{failing:?}");
    assert!(
        s.provider_detail(&key(77).id(), now)
            .expect("detail")
            .is_none()
    );
    let p = s
        .profitability(&gpu_node.id(), 100_000, 11_400)
        .expect("profit")
        .expect("exists");
    assert_eq!(p.energy_per_day_wh, 19_200);

    // Jobs, newest first, and a renter's only.
    let jobs = s.job_list(None, Window::new(None, Some(2))).expect("jobs");
    assert_eq!((jobs.total, jobs.items.len()), (3, 2));
    assert_eq!(jobs.items[0].id, new_job(&other, 3, 1).id.to_string());
    let mine = s
        .job_list(Some(&renter.id()), Window::default())
        .expect("mine");
    assert_eq!(mine.total, 2);
    assert_eq!(mine.items[1].state, "settled");
    assert_eq!(mine.items[1].paid_uiosd, paid);
    let detail = s
        .job_detail(&new_job(&renter, 1, 1).id, now)
        .expect("job")
        .expect("exists");
    assert_eq!(detail.shard_list.len(), 1);
    assert_eq!(detail.summary.state, "settled");
    assert!(detail.result_root.is_some());

    // Receipts by provider; payments of the renter.
    let rs = s
        .receipt_list(Some(&cpu.id()), None, Window::default())
        .expect("receipts");
    assert_eq!(rs.total, 1);
    assert_eq!(rs.items[0].id, r1.to_string());
    assert_eq!(
        s.receipt_list(Some(&gpu_node.id()), None, Window::default())
            .expect("none")
            .total,
        0
    );
    let pays = s.payments(&renter.id(), Window::default()).expect("pays");
    assert!(pays.items.iter().any(|l| l.kind == "escrow"));
    assert!(pays.items.windows(2).all(|w| w[0].seq > w[1].seq));
    let acct = s.account_view(&renter.id()).expect("account");
    assert_eq!(acct.jobs, 2);
    assert!(!acct.is_provider);
    assert_eq!(
        acct.balance_uiosd,
        s.account(&renter.id()).expect("a").balance
    );
    let _ = Unit::Io;

    s.heartbeat(&gpu_node.id(), 1, &[gpu(0, 1)], 17_000)
        .expect("hb");
    assert!(
        s.telemetry(&gpu_node.id(), 0)
            .expect("telemetry")
            .iter()
            .all(|x| x.at_ms >= 12_000),
        "samples older than telemetry_keep_ms are gone"
    );
}

crate::both_backends!(the_explorer_counts_what_the_market_did);
