//! The HTML pages: each page handler reads the same records as the API
//! ([`crate::data`]), lays them out as [`Section`]s and renders them with
//! the askama templates in `templates/` (`base.html` the layout,
//! `page.html` the sections). Numbers carry `data-api` marks naming the
//! API path and JSON pointer they show (see [`Cell::api`]).

use std::sync::Arc;

use askama::Template;
use assay_coordinator::explorer::*;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::charts::{self, Series};
use crate::data;
use crate::format::{Cell, bytes, esc, money, permille, short, signed_money, src, time};
use crate::params::{JobQuery, Paging, ProfitQuery, ProviderQuery, ReceiptQuery, query};
use crate::{App, PageError, WebError};

type PageResult = Result<Response, PageError>;

/// The pages' routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(explorer))
        .route("/providers/{node}", get(provider))
        .route("/accounts/{node}", get(account))
        .route("/jobs/{id}", get(job))
        .route("/receipts/{id}", get(receipt))
        .route("/epochs", get(epochs))
        .route("/epochs/{n}", get(epoch))
        .route("/notes/{id}", get(note))
        .route("/bonds/{id}", get(bond))
}

/// One block of a page. `kind` picks how `page.html` draws it: `facts`
/// (a definition list), `table`, `chart`, `checklist`, `bar` (the uptime
/// bar), `pre` (a command with a copy button) or `html` (a form).
#[derive(Debug, Default)]
pub struct Section {
    kind: &'static str,
    id: String,
    title: String,
    intro: String,
    facts: Vec<(String, Cell)>,
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
    empty: String,
    html: String,
    summary: String,
    checks: Vec<(bool, String, String)>,
    cells: Vec<(String, String)>,
    links: Vec<Cell>,
}

impl Section {
    fn facts(title: &str, facts: Vec<(&str, Cell)>) -> Section {
        Section {
            kind: "facts",
            title: title.into(),
            facts: facts.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            ..Section::default()
        }
    }

    fn table(title: &str, headers: &[&str], rows: Vec<Vec<Cell>>, empty: &str) -> Section {
        Section {
            kind: "table",
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
            empty: empty.into(),
            ..Section::default()
        }
    }

    fn chart(title: &str, unit: &str, series: &[Series], summary: String) -> Section {
        Section {
            kind: "chart",
            title: title.into(),
            html: charts::lines(title, unit, series),
            summary,
            ..Section::default()
        }
    }

    fn html(title: &str, html: String) -> Section {
        Section {
            kind: "html",
            title: title.into(),
            html,
            ..Section::default()
        }
    }

    fn id(mut self, id: &str) -> Section {
        self.id = id.into();
        self
    }

    fn intro(mut self, t: impl Into<String>) -> Section {
        self.intro = t.into();
        self
    }

    fn link(mut self, l: Cell) -> Section {
        self.links.push(l);
        self
    }
}

#[derive(Template)]
#[template(path = "page.html")]
struct PageTemplate<'a> {
    title: &'a str,
    subtitle: &'a str,
    refresh: u32,
    sections: Vec<Section>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    title: &'a str,
    subtitle: &'a str,
    refresh: u32,
    message: &'a str,
}

fn render(title: &str, subtitle: &str, refresh: u32, sections: Vec<Section>) -> PageResult {
    let t = PageTemplate {
        title,
        subtitle,
        refresh,
        sections,
    };
    let html = t
        .render()
        .map_err(|e| WebError::Internal(format!("template: {e}")))?;
    Ok(Html(html).into_response())
}

/// The HTML of an error page.
pub fn error_page(status: StatusCode, message: &str) -> String {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("error")
    );
    ErrorTemplate {
        title: &title,
        subtitle: "",
        refresh: 0,
        message,
    }
    .render()
    .unwrap_or_else(|_| {
        format!(
            "<!DOCTYPE html><title>{title}</title><p>{}</p>",
            esc(message)
        )
    })
}

// ---- helpers ---------------------------------------------------------------

fn iosd(source: String, v: u64) -> Cell {
    Cell::api_shown(source, v, money(v, "IOSD"))
}

fn io(source: String, v: u64) -> Cell {
    Cell::api_shown(source, v, money(v, "IO"))
}

fn at(source: String, ms: u64) -> Cell {
    Cell::api_shown(source, ms, time(ms))
}

fn provider_link(id: &str) -> Cell {
    Cell::link(format!("/providers/{id}"), short(id))
}

fn account_link(id: &str) -> Cell {
    Cell::link(format!("/accounts/{id}"), short(id))
}

fn status_badge(s: &str) -> Cell {
    let class = match s {
        "online" | "settled" | "verified" | "passed" | "done" | "success" => "ok",
        "suspended" | "failed" | "rejected" | "disputed" => "bad",
        "offline" | "queued" | "pending" | "unchecked" | "challenged" => "warn",
        _ => "muted",
    };
    Cell::Badge {
        class,
        text: s.to_string(),
    }
}

/// `path?k=v&…` with the non-empty pairs, for the API path a table shows.
fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            format!(
                "{k}={}",
                serde_urlencoded::to_string([("", v)])
                    .unwrap_or_default()
                    .trim_start_matches('=')
            )
        })
        .collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// Previous/next links of a paged table (`page` is a page path with query
/// pairs other than `offset`).
fn pager<T>(page: &Page<T>, base: &str, pairs: &[(&str, String)], anchor: &str) -> Vec<Cell> {
    let mut out = Vec::new();
    let at = |offset: u64| {
        let mut p = pairs.to_vec();
        p.push(("offset", offset.to_string()));
        format!("{}{anchor}", with_query(base, &p))
    };
    if page.offset > 0 {
        out.push(Cell::link(
            at(page.offset.saturating_sub(u64::from(page.limit))),
            "← previous",
        ));
    }
    let end = page.offset + page.items.len() as u64;
    if end < page.total {
        out.push(Cell::link(at(end), "next →"));
    }
    if page.total > 0 {
        out.push(Cell::text(format!(
            "{}–{} of {}",
            page.offset + 1,
            end,
            page.total
        )));
    }
    out
}

fn series_per_hour(h: &[HourBucket], f: impl Fn(&HourBucket) -> f64) -> Vec<Series> {
    vec![(
        "per hour".into(),
        h.iter().map(|b| (b.start_ms, f(b))).collect(),
    )]
}

// ---- the explorer ----------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct ExplorerQuery {
    q: Option<String>,
    status: Option<String>,
    offset: Option<u64>,
}

async fn explorer(State(app): State<Arc<App>>, RawQuery(raw): RawQuery) -> PageResult {
    let eq: ExplorerQuery = query(raw.as_deref())?;
    let pq = ProviderQuery {
        q: eq.q.clone(),
        status: eq.status.clone(),
        offset: eq.offset,
        limit: Some(25),
    };
    // Four independent reads, each on its own blocking thread.
    let jq = JobQuery {
        renter: None,
        offset: None,
        limit: Some(20),
    };
    let (n, providers, jobs, epochs) = tokio::join!(
        data::network(&app),
        data::providers(&app, &pq),
        data::jobs(&app, &jq),
        data::epochs(&app, Window::new(None, Some(10))),
    );
    let (n, providers, jobs, epochs) = (n?, providers?, jobs?, epochs?);

    let net = |p: &str| format!("/api/v1/network#{p}");
    let mut sections = vec![
        Section::facts(
            "The network",
            vec![
                (
                    "Providers online",
                    Cell::api(net("/providers_online"), n.providers_online),
                ),
                (
                    "Providers registered",
                    Cell::api(net("/providers_total"), n.providers_total),
                ),
                (
                    "Suspended (online)",
                    Cell::api(net("/providers_suspended"), n.providers_suspended),
                ),
                (
                    "Verifiers",
                    Cell::api(net("/verifiers_total"), n.verifiers_total),
                ),
                (
                    "CPU-only providers online",
                    Cell::api(net("/cpu_providers_online"), n.cpu_providers_online),
                ),
                (
                    "… of which hired",
                    Cell::api(net("/cpu_providers_hired"), n.cpu_providers_hired),
                ),
                ("Jobs in all", Cell::api(net("/jobs/total"), n.jobs.total)),
                ("Jobs queued", Cell::api(net("/jobs/queued"), n.jobs.queued)),
                (
                    "Jobs running",
                    Cell::api(net("/jobs/running"), n.jobs.running),
                ),
                (
                    "Jobs done (settling)",
                    Cell::api(net("/jobs/done"), n.jobs.done),
                ),
                (
                    "Jobs settled",
                    Cell::api(net("/jobs/settled"), n.jobs.settled),
                ),
                ("Jobs failed", Cell::api(net("/jobs/failed"), n.jobs.failed)),
                (
                    "Work units settled",
                    Cell::api(net("/work_units_total"), n.work_units_total),
                ),
                (
                    "IOSD paid to providers",
                    iosd(net("/paid_total_uiosd"), n.paid_total_uiosd),
                ),
                (
                    "IOSD paid today (UTC)",
                    iosd(net("/paid_today_uiosd"), n.paid_today_uiosd),
                ),
                (
                    "IO emitted as block rewards",
                    io(net("/emitted_total_uio"), n.emitted_total_uio),
                ),
                (
                    "IO emitted today (UTC)",
                    io(net("/emitted_today_uio"), n.emitted_today_uio),
                ),
                (
                    "Reward epochs closed",
                    Cell::api(net("/epochs_closed"), n.epochs_closed),
                ),
                (
                    "IO price",
                    match n.io_price_uiosd {
                        Some(p) => Cell::api_shown(
                            net("/io_price_uiosd"),
                            p,
                            format!("{} per IO", money(p, "IOSD")),
                        ),
                        None => Cell::text("no price posted"),
                    },
                ),
            ],
        )
        .intro(format!("As of {}.", time(n.at_ms))),
        Section::table(
            "GPUs by model and class",
            &["Model", "Class", "Online", "Hired", "Idle"],
            n.gpus
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    vec![
                        Cell::api(net(&format!("/gpus/{i}/model")), &g.model),
                        Cell::api(net(&format!("/gpus/{i}/class")), &g.class),
                        Cell::api(net(&format!("/gpus/{i}/total")), g.total),
                        Cell::api(net(&format!("/gpus/{i}/hired")), g.hired),
                        Cell::text(g.total.saturating_sub(g.hired).to_string()),
                    ]
                })
                .collect(),
            "No GPU provider is online.",
        ),
        Section::facts(
            "Verification",
            vec![
                (
                    "Re-executions asked for",
                    Cell::api(net("/verification/checks"), n.verification.checks),
                ),
                (
                    "Receipts verified",
                    Cell::api(net("/verification/verified"), n.verification.verified),
                ),
                (
                    "Disputes (referee checks)",
                    Cell::api(net("/verification/disputes"), n.verification.disputes),
                ),
                (
                    "Receipts proven wrong",
                    Cell::api(net("/verification/rejected"), n.verification.rejected),
                ),
                (
                    "Slashes",
                    Cell::api(net("/verification/slashes"), n.verification.slashes),
                ),
                (
                    "Hardware challenges passed",
                    Cell::api(
                        net("/verification/challenges_passed"),
                        n.verification.challenges_passed,
                    ),
                ),
                (
                    "Hardware challenges failed",
                    Cell::api(
                        net("/verification/challenges_failed"),
                        n.verification.challenges_failed,
                    ),
                ),
            ],
        ),
    ];
    let total = |f: &dyn Fn(&HourBucket) -> u64| n.hourly.iter().map(f).sum::<u64>();
    sections.push(Section::chart(
        "Jobs per hour",
        "jobs",
        &series_per_hour(&n.hourly, |b| b.jobs as f64),
        format!(
            "{} jobs accepted in the last 24 hours (UTC hours).",
            total(&|b| b.jobs)
        ),
    ));
    sections.push(Section::chart(
        "Work units per hour",
        "work units",
        &series_per_hour(&n.hourly, |b| b.work_units as f64),
        format!(
            "{} work units committed in the last 24 hours.",
            total(&|b| b.work_units)
        ),
    ));
    sections.push(Section::chart(
        "IOSD paid per hour",
        "IOSD",
        &series_per_hour(&n.hourly, |b| b.paid_uiosd as f64 / 1e6),
        format!(
            "{} paid to providers in the last 24 hours.",
            money(total(&|b| b.paid_uiosd), "IOSD")
        ),
    ));

    // Providers, with search.
    let ppath = with_query(
        "/api/v1/providers",
        &[
            ("q", eq.q.clone().unwrap_or_default()),
            ("status", eq.status.clone().unwrap_or_default()),
            (
                "offset",
                eq.offset.map(|o| o.to_string()).unwrap_or_default(),
            ),
            ("limit", "25".into()),
        ],
    );
    let p = |i: usize, f: &str| src(&ppath, &[&"items", &i, &f]);
    let form = format!(
        "<form class=\"search\" method=\"get\" action=\"/#providers\" role=\"search\">\
         <label for=\"q\">Search providers</label>\
         <input id=\"q\" name=\"q\" type=\"search\" value=\"{}\" placeholder=\"id, GPU model, class\">\
         <label for=\"status\">Status</label>\
         <select id=\"status\" name=\"status\">{}</select>\
         <button type=\"submit\">Search</button></form>",
        esc(eq.q.as_deref().unwrap_or("")),
        ["", "online", "offline", "suspended"]
            .iter()
            .map(|s| format!(
                "<option value=\"{s}\"{}>{}</option>",
                if eq.status.as_deref().unwrap_or("") == *s {
                    " selected"
                } else {
                    ""
                },
                if s.is_empty() { "any" } else { s }
            ))
            .collect::<String>()
    );
    let mut ptable = Section::table(
        "Providers",
        &[
            "Provider",
            "Status",
            "Class",
            "Price (µIOSD/Munit)",
            "Stake",
            "Reliability",
            "Uptime",
            "Hire rate",
            "Earnings",
            "Rewards",
        ],
        providers
            .items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                vec![
                    provider_link(&x.id),
                    status_badge(&x.status),
                    Cell::api(p(i, "class"), &x.class),
                    Cell::api(p(i, "price_uiosd"), x.price_uiosd),
                    io(p(i, "stake_uio"), x.stake_uio),
                    Cell::api_shown(
                        p(i, "reliability_permille"),
                        x.reliability_permille,
                        permille(x.reliability_permille),
                    ),
                    Cell::api_shown(
                        p(i, "uptime_permille"),
                        x.uptime_permille,
                        permille(x.uptime_permille),
                    ),
                    Cell::api_shown(
                        p(i, "hire_rate_permille"),
                        x.hire_rate_permille,
                        permille(x.hire_rate_permille),
                    ),
                    iosd(p(i, "earnings_uiosd"), x.earnings_uiosd),
                    io(p(i, "rewards_uio"), x.rewards_uio),
                ]
            })
            .collect(),
        "No provider matches.",
    )
    .id("providers");
    ptable.links = pager(
        &providers,
        "/",
        &[
            ("q", eq.q.clone().unwrap_or_default()),
            ("status", eq.status.clone().unwrap_or_default()),
        ],
        "#providers",
    );
    sections.push(Section::html("Find a provider", form).id("search"));
    sections.push(ptable);

    let jpath = "/api/v1/jobs?limit=20";
    sections.push(
        Section::table(
            "Latest jobs",
            &[
                "Job",
                "Renter",
                "State",
                "Shards done",
                "Paid",
                "Verified",
                "Accepted",
            ],
            jobs.items
                .iter()
                .enumerate()
                .map(|(i, j)| {
                    let s = |f: &str| src(jpath, &[&"items", &i, &f]);
                    vec![
                        Cell::link(format!("/jobs/{}", j.id), short(&j.id)),
                        account_link(&j.renter),
                        status_badge(&j.state),
                        Cell::api_shown(
                            s("shards_done"),
                            j.shards_done,
                            format!("{} / {}", j.shards_done, j.shards),
                        ),
                        iosd(s("paid_uiosd"), j.paid_uiosd),
                        Cell::api(s("verified"), j.verified),
                        at(s("created_at_ms"), j.created_at_ms),
                    ]
                })
                .collect(),
            "No job yet.",
        )
        .id("jobs"),
    );
    sections.push(
        epoch_table(
            &epochs,
            "/api/v1/epochs?limit=10",
            "Block-reward epochs (latest)",
        )
        .id("epochs"),
    );
    sections.push(
        Section::html("Find an epoch", epoch_search())
            .link(Cell::link("/epochs", "all epochs"))
            .link(Cell::link("/api/v1/epochs.csv", "epochs as CSV")),
    );
    render(
        "Network explorer",
        "Providers, jobs, payments, block rewards and verification on this coordinator.",
        10,
        sections,
    )
}

fn epoch_search() -> String {
    "<form class=\"search\" method=\"get\" action=\"/epochs\" role=\"search\">\
     <label for=\"epoch\">Epoch number</label>\
     <input id=\"epoch\" name=\"epoch\" type=\"number\" min=\"0\" inputmode=\"numeric\">\
     <button type=\"submit\">Go</button></form>"
        .to_string()
}

fn epoch_table(page: &Page<EpochView>, path: &str, title: &str) -> Section {
    Section::table(
        title,
        &[
            "Epoch",
            "Start",
            "End",
            "Scheduled",
            "Emitted",
            "Nominated",
            "Paid",
            "Failed",
        ],
        page.items
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let s = |f: &str| src(path, &[&"items", &i, &f]);
                vec![
                    Cell::link(format!("/epochs/{}", e.epoch), e.epoch.to_string()),
                    at(s("start_ms"), e.start_ms),
                    at(s("end_ms"), e.end_ms),
                    io(s("scheduled_uio"), e.scheduled_uio),
                    io(s("emitted_uio"), e.emitted_uio),
                    Cell::api(s("nominated"), e.nominated),
                    Cell::api(s("paid"), e.paid),
                    Cell::api(s("failed"), e.failed),
                ]
            })
            .collect(),
        "No reward epoch has closed yet.",
    )
}

// ---- the worker dashboard -------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct DashboardQuery {
    kwh_price: Option<String>,
    offset: Option<u64>,
}

async fn provider(
    State(app): State<Arc<App>>,
    Path(node): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let dq: DashboardQuery = query(raw.as_deref())?;
    let d = data::provider(&app, &node).await?;
    let samples = data::telemetry(&app, &node, None).await?;
    let pq = ProfitQuery {
        kwh_price: dq.kwh_price.clone(),
    };
    let profit = data::profitability(&app, &node, &pq).await?;
    let rq = ReceiptQuery {
        provider: Some(node.clone()),
        job: None,
        offset: dq.offset,
        limit: Some(20),
    };
    let receipts = data::receipts(&app, &rq).await?;
    let rewards = data::provider_rewards(
        &app,
        &node,
        &Paging {
            offset: None,
            limit: Some(20),
        },
    )
    .await?;
    let s = &d.summary;
    let dp = format!("/api/v1/providers/{node}");
    let f = |p: &str| format!("{dp}#{p}");
    let mut sections = vec![
        Section::facts(
            "Provider",
            vec![
                ("Status", status_badge(&s.status)),
                ("Class", Cell::api(f("/summary/class"), &s.class)),
                (
                    "Price (µIOSD per million units)",
                    Cell::api(f("/summary/price_uiosd"), s.price_uiosd),
                ),
                ("Stake", io(f("/summary/stake_uio"), s.stake_uio)),
                (
                    "Stake floor",
                    io(f("/summary/stake_floor_uio"), s.stake_floor_uio),
                ),
                (
                    "Reliability",
                    Cell::api_shown(
                        f("/summary/reliability_permille"),
                        s.reliability_permille,
                        permille(s.reliability_permille),
                    ),
                ),
                (
                    "Uptime since registration",
                    Cell::api_shown(
                        f("/summary/uptime_permille"),
                        s.uptime_permille,
                        permille(s.uptime_permille),
                    ),
                ),
                (
                    "Hire rate",
                    Cell::api_shown(
                        f("/summary/hire_rate_permille"),
                        s.hire_rate_permille,
                        permille(s.hire_rate_permille),
                    ),
                ),
                (
                    "Earned (IOSD, settled work)",
                    iosd(f("/summary/earnings_uiosd"), s.earnings_uiosd),
                ),
                (
                    "Block rewards",
                    io(f("/summary/rewards_uio"), s.rewards_uio),
                ),
                (
                    "Shards completed",
                    Cell::api(f("/summary/completed"), s.completed),
                ),
                ("Faults", Cell::api(f("/faults"), d.faults)),
                ("Leases expired", Cell::api(f("/expired"), d.expired)),
                ("Running now", Cell::api(f("/leased_now"), d.leased_now)),
                (
                    "Slots free",
                    Cell::api_shown(
                        f("/summary/free_slots"),
                        s.free_slots,
                        format!("{} of {}", s.free_slots, s.slots),
                    ),
                ),
                ("Daemon version", Cell::api(f("/version"), &d.version)),
                (
                    "Last heard from",
                    at(f("/summary/last_seen_ms"), s.last_seen_ms),
                ),
                (
                    "Registered",
                    at(f("/summary/registered_at_ms"), s.registered_at_ms),
                ),
                (
                    "Wallet",
                    Cell::link(format!("/accounts/{node}"), "balances and payments"),
                ),
            ],
        )
        .intro(format!("Node {}", s.id)),
    ];
    sections.push(Section::table(
        "Devices",
        &["Device", "Model", "Memory"],
        d.devices
            .iter()
            .enumerate()
            .map(|(i, x)| {
                vec![
                    Cell::api(f(&format!("/devices/{i}/index")), x.index),
                    Cell::api(f(&format!("/devices/{i}/model")), &x.model),
                    Cell::api_shown(
                        f(&format!("/devices/{i}/memory_bytes")),
                        x.memory_bytes,
                        bytes(x.memory_bytes),
                    ),
                ]
            })
            .collect(),
        "No device registered.",
    ));
    sections.extend(telemetry_charts(&samples));
    sections.push(Section {
        kind: "checklist",
        title: "Reward eligibility: why it is or is not hired".into(),
        checks: d
            .eligibility
            .iter()
            .map(|c| (c.ok, c.check.clone(), c.detail.clone()))
            .collect(),
        ..Section::default()
    });
    sections.push(uptime_bar(&d.uptime));
    sections.push(Section::facts(
        "Hardware challenge",
        vec![
            ("State", status_badge(&s.hardware_state)),
            (
                "Note",
                Cell::text(if d.hardware_note.is_empty() {
                    "—".to_string()
                } else {
                    d.hardware_note.clone()
                }),
            ),
            (
                "Next challenge due",
                match d.next_challenge_at_ms {
                    Some(t) => at(f("/next_challenge_at_ms"), t),
                    None => Cell::text("not scheduled"),
                },
            ),
        ],
    ));
    let pp = with_query(
        &format!("/api/v1/providers/{node}/profitability"),
        &[("kwh_price", dq.kwh_price.clone().unwrap_or_default())],
    );
    let g = |p: &str| format!("{pp}#{p}");
    let profit_section = Section::facts(
        "Profitability (from the last 24 hours)",
        vec![
            ("Electricity price", Cell::api_shown(g("/kwh_price_uiosd"), profit.kwh_price_uiosd, format!("{} per kWh", money(profit.kwh_price_uiosd, "IOSD")))),
            ("IOSD earned per day", iosd(g("/paid_per_day_uiosd"), profit.paid_per_day_uiosd)),
            ("Block rewards per day (at the IO price)", iosd(g("/rewards_per_day_uiosd"), profit.rewards_per_day_uiosd)),
            ("Energy per day (mean sampled GPU power)", Cell::api_shown(g("/energy_per_day_wh"), profit.energy_per_day_wh, format!("{} Wh", profit.energy_per_day_wh))),
            ("Power cost per day", iosd(g("/power_cost_per_day_uiosd"), profit.power_cost_per_day_uiosd)),
            ("Profit per day", Cell::api_shown(g("/profit_per_day_uiosd"), profit.profit_per_day_uiosd, signed_money(profit.profit_per_day_uiosd, "IOSD"))),
            ("Profit per month (30 days)", Cell::api_shown(g("/profit_per_month_uiosd"), profit.profit_per_month_uiosd, signed_money(profit.profit_per_month_uiosd, "IOSD"))),
        ],
    )
    .intro("Earnings − power × your electricity price. The page remembers the price you enter (in this browser).");
    sections.push(Section::html(
        "Your electricity price",
        format!(
            "<form class=\"kwh\" method=\"get\" action=\"/providers/{}\" data-remember=\"kwh_price\">\
             <label for=\"kwh_price\">Price per kWh (IOSD)</label>\
             <input id=\"kwh_price\" name=\"kwh_price\" inputmode=\"decimal\" pattern=\"[0-9]+(\\.[0-9]{{1,6}})?\" value=\"{}\">\
             <button type=\"submit\">Compute</button></form>",
            esc(&node),
            esc(dq.kwh_price.as_deref().unwrap_or(""))
        ),
    ));
    sections.push(profit_section);
    let rpath = with_query(
        &format!("/api/v1/providers/{node}/receipts"),
        &[
            (
                "offset",
                dq.offset.map(|o| o.to_string()).unwrap_or_default(),
            ),
            ("limit", "20".into()),
        ],
    );
    let mut runs = receipt_table("Jobs run and what each earned", &receipts, &rpath, false);
    runs.links = pager(
        &receipts,
        &format!("/providers/{node}"),
        &[("kwh_price", dq.kwh_price.clone().unwrap_or_default())],
        "",
    );
    runs.links.push(Cell::link(
        format!("/api/v1/receipts.csv?provider={node}"),
        "receipts as CSV",
    ));
    sections.push(runs);
    let wpath = format!("/api/v1/providers/{node}/rewards?limit=20");
    sections.push(Section::table(
        "Block rewards",
        &["Epoch", "Work units", "Online", "Failed", "Paid"],
        rewards
            .items
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let s = |x: &str| src(&wpath, &[&"items", &i, &x]);
                vec![
                    Cell::link(format!("/epochs/{}", r.epoch), r.epoch.to_string()),
                    Cell::api(s("work_units"), r.work_units),
                    Cell::api_shown(
                        s("uptime_ms"),
                        r.uptime_ms,
                        format!("{} s", r.uptime_ms / 1000),
                    ),
                    Cell::api(s("failed"), r.failed),
                    io(s("amount_uio"), r.amount_uio),
                ]
            })
            .collect(),
        "No block reward yet.",
    ));
    sections.push(Section::table(
        "Slashes",
        &["When", "Kind", "Amount", "Reference"],
        d.slashes
            .iter()
            .enumerate()
            .map(|(i, l)| {
                vec![
                    at(f(&format!("/slashes/{i}/at_ms")), l.at_ms),
                    Cell::text(&l.kind),
                    Cell::api_shown(
                        f(&format!("/slashes/{i}/amount")),
                        l.amount,
                        money(l.amount, &l.unit.to_uppercase()),
                    ),
                    Cell::Code(l.reference.clone()),
                ]
            })
            .collect(),
        "Never slashed.",
    ));
    sections.push(Section {
        kind: "pre",
        title: "Installation: run a provider against this coordinator".into(),
        intro:
            "On a machine with Rust: build Assay (`cargo build --release -p assay-cli`), then run:"
                .into(),
        summary: d.install_command.clone(),
        ..Section::default()
    });
    render(
        &format!("Worker dashboard {}", short(&node)),
        "A provider's machines, work, earnings and standing.",
        10,
        sections,
    )
}

fn telemetry_charts(samples: &[TelemetrySample]) -> Vec<Section> {
    let mut devices: Vec<i32> = samples.iter().map(|s| s.device).collect();
    devices.sort_unstable();
    devices.dedup();
    let gpus: Vec<i32> = devices.iter().copied().filter(|d| *d >= 0).collect();
    let name = |d: i32| {
        if d < 0 {
            "host".to_string()
        } else {
            format!("GPU {d}")
        }
    };
    let series = |ds: &[i32], f: &dyn Fn(&TelemetrySample) -> f64| -> Vec<Series> {
        ds.iter()
            .map(|d| {
                (
                    name(*d),
                    samples
                        .iter()
                        .filter(|s| s.device == *d)
                        .map(|s| (s.at_ms, f(s)))
                        .collect(),
                )
            })
            .collect()
    };
    let summary = |what: &str, ds: &[i32], f: &dyn Fn(&TelemetrySample) -> u64, unit: &str| {
        let last: Vec<String> = ds
            .iter()
            .filter_map(|d| {
                samples
                    .iter()
                    .rev()
                    .find(|s| s.device == *d)
                    .map(|s| format!("{} {} {unit}", name(*d), f(s)))
            })
            .collect();
        if last.is_empty() {
            format!("No {what} samples in the last 24 hours.")
        } else {
            format!(
                "Latest {what}: {}. {} samples in the last 24 hours.",
                last.join(", "),
                samples.len()
            )
        }
    };
    let host = [-1];
    let mut out = Vec::new();
    if samples.is_empty() {
        out.push(Section::table(
            "Device telemetry",
            &[],
            Vec::new(),
            "No samples in the last 24 hours (samples arrive with heartbeats).",
        ));
        return out;
    }
    if !gpus.is_empty() {
        out.push(Section::chart(
            "GPU temperature",
            "°C",
            &series(&gpus, &|s| f64::from(s.temperature_c)),
            summary("temperature", &gpus, &|s| u64::from(s.temperature_c), "°C"),
        ));
        out.push(Section::chart(
            "GPU power",
            "W",
            &series(&gpus, &|s| s.power_mw as f64 / 1000.0),
            summary("power", &gpus, &|s| s.power_mw / 1000, "W"),
        ));
        out.push(Section::chart(
            "GPU utilisation",
            "%",
            &series(&gpus, &|s| f64::from(s.utilization_pct)),
            summary("utilisation", &gpus, &|s| u64::from(s.utilization_pct), "%"),
        ));
        out.push(Section::chart(
            "GPU memory in use",
            "GiB",
            &series(&gpus, &|s| {
                s.memory_used_bytes as f64 / f64::from(1u32 << 30)
            }),
            summary("memory", &gpus, &|s| s.memory_used_bytes >> 20, "MiB"),
        ));
    }
    if devices.contains(&-1) {
        out.push(Section::chart(
            "CPU load",
            "%",
            &series(&host, &|s| f64::from(s.utilization_pct)),
            summary("CPU load", &host, &|s| u64::from(s.utilization_pct), "%"),
        ));
        out.push(Section::chart(
            "Host memory in use",
            "GiB",
            &series(&host, &|s| {
                s.memory_used_bytes as f64 / f64::from(1u32 << 30)
            }),
            summary("memory", &host, &|s| s.memory_used_bytes >> 20, "MiB"),
        ));
    }
    out
}

fn uptime_bar(slots: &[UptimeSlot]) -> Section {
    let cells: Vec<(String, String)> = slots
        .iter()
        .map(|u| {
            let len = u.end_ms.saturating_sub(u.start_ms).max(1);
            let frac = u.online_ms.min(len) * 100 / len;
            let class = match frac {
                90.. => "up",
                50..=89 => "part",
                1..=49 => "low",
                _ => "down",
            };
            let label = match u.epoch {
                Some(e) => format!(
                    "epoch {e}: online {frac} % ({} – {})",
                    time(u.start_ms),
                    time(u.end_ms)
                ),
                None => format!("open epoch: online {frac} % so far"),
            };
            (class.to_string(), label)
        })
        .collect();
    let online: u64 = slots.iter().map(|u| u.online_ms).sum();
    let span: u64 = slots
        .iter()
        .map(|u| u.end_ms.saturating_sub(u.start_ms))
        .sum();
    let summary = if slots.is_empty() {
        "No reward epoch yet.".to_string()
    } else {
        format!(
            "Online {} % of the last {} reward epochs ({} s of {} s).",
            online * 100 / span.max(1),
            slots.len(),
            online / 1000,
            span / 1000
        )
    };
    Section {
        kind: "bar",
        title: "Uptime by reward epoch".into(),
        cells,
        summary,
        ..Section::default()
    }
}

fn receipt_table(
    title: &str,
    page: &Page<ReceiptSummary>,
    path: &str,
    show_provider: bool,
) -> Section {
    let mut headers = vec!["Receipt", "Job", "Shard"];
    if show_provider {
        headers.push("Provider");
    }
    headers.extend(["Outcome", "Units", "Paid", "Check", "Committed"]);
    Section::table(
        title,
        &headers,
        page.items
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let s = |x: &str| src(path, &[&"items", &i, &x]);
                let mut row = vec![
                    Cell::link(format!("/receipts/{}", r.id), short(&r.id)),
                    Cell::link(format!("/jobs/{}", r.job_id), short(&r.job_id)),
                    Cell::api(s("shard"), r.shard),
                ];
                if show_provider {
                    row.push(provider_link(&r.provider));
                }
                row.extend([
                    status_badge(&r.outcome),
                    Cell::api(s("units"), r.units),
                    match r.paid_uiosd {
                        Some(p) => iosd(s("paid_uiosd"), p),
                        None => Cell::text("not yet"),
                    },
                    status_badge(&r.check_state),
                    at(s("committed_at_ms"), r.committed_at_ms),
                ]);
                row
            })
            .collect(),
        "No receipt yet.",
    )
}

// ---- the renter console ---------------------------------------------------

async fn account(
    State(app): State<Arc<App>>,
    Path(node): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let pg: Paging = query(raw.as_deref())?;
    let a = data::account(&app, &node).await?;
    let jobs = data::jobs(
        &app,
        &JobQuery {
            renter: Some(node.clone()),
            offset: pg.offset,
            limit: Some(20),
        },
    )
    .await?;
    let payments = data::payments(&app, &node, Window::new(None, Some(50))).await?;
    let ap = format!("/api/v1/accounts/{node}");
    let f = |p: &str| format!("{ap}#{p}");
    let mut sections = vec![
        Section::facts(
            "Balances and stakes",
            vec![
                ("IOSD balance", iosd(f("/balance_uiosd"), a.balance_uiosd)),
                ("IO balance", io(f("/balance_uio"), a.balance_uio)),
                ("Stake", io(f("/stake_uio"), a.stake_uio)),
                ("Unbonding", io(f("/unbonding_uio"), a.unbonding_uio)),
                (
                    "Unbonding released",
                    match a.unbonding_release_ms {
                        Some(t) => at(f("/unbonding_release_ms"), t),
                        None => Cell::text("—"),
                    },
                ),
                (
                    "Provider earnings",
                    iosd(f("/earnings_uiosd"), a.earnings_uiosd),
                ),
                (
                    "Verifier earnings",
                    iosd(f("/verifier_earnings_uiosd"), a.verifier_earnings_uiosd),
                ),
                ("Block rewards", io(f("/rewards_uio"), a.rewards_uio)),
                ("Jobs published", Cell::api(f("/jobs"), a.jobs)),
            ],
        )
        .intro(format!("Node {}", a.node)),
    ];
    if a.is_provider {
        sections[0].links.push(Cell::link(
            format!("/providers/{node}"),
            "this node's worker dashboard",
        ));
    }
    let jpath = with_query(
        "/api/v1/jobs",
        &[
            ("renter", node.clone()),
            (
                "offset",
                pg.offset.map(|o| o.to_string()).unwrap_or_default(),
            ),
            ("limit", "20".into()),
        ],
    );
    let mut jt = Section::table(
        "Jobs",
        &["Job", "State", "Shards done", "Escrow", "Paid", "Verification", "Accepted", "Outputs"],
        jobs.items
            .iter()
            .enumerate()
            .map(|(i, j)| {
                let s = |x: &str| src(&jpath, &[&"items", &i, &x]);
                let unit = if j.paid_in == "io" { "IO" } else { "IOSD" };
                vec![
                    Cell::link(format!("/jobs/{}", j.id), short(&j.id)),
                    status_badge(&j.state),
                    Cell::api_shown(s("shards_done"), j.shards_done, format!("{} / {}", j.shards_done, j.shards)),
                    Cell::api_shown(s("escrow"), j.escrow, money(j.escrow, unit)),
                    iosd(s("paid_uiosd"), j.paid_uiosd),
                    Cell::text(if j.verify_rate_ppm == 0 {
                        "unverified".to_string()
                    } else {
                        format!("p = {} · {} verified · {} rejected", f64::from(j.verify_rate_ppm) / 1e6, j.verified, j.rejected)
                    }),
                    at(s("created_at_ms"), j.created_at_ms),
                    Cell::Code(format!("assay job outputs {}", j.id)),
                ]
            })
            .collect(),
        "No job published by this node.",
    )
    .intro("Outputs are private: download them with your own key (the command in the last column); the job page lists their hashes.");
    jt.links = pager(&jobs, &format!("/accounts/{node}"), &[], "");
    sections.push(jt);
    let ppath = format!("/api/v1/accounts/{node}/payments?limit=50");
    sections.push(
        Section::table(
            "Payments (latest 50 ledger lines)",
            &["Seq", "When", "Kind", "Debit", "Credit", "Amount"],
            payments
                .items
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let s = |x: &str| src(&ppath, &[&"items", &i, &x]);
                    vec![
                        Cell::api(s("seq"), l.seq),
                        at(s("at_ms"), l.at_ms),
                        Cell::api(s("kind"), &l.kind),
                        Cell::Code(l.debit.clone()),
                        Cell::Code(l.credit.clone()),
                        Cell::api_shown(
                            s("amount"),
                            l.amount,
                            money(l.amount, &l.unit.to_uppercase()),
                        ),
                    ]
                })
                .collect(),
            "No payment yet.",
        )
        .link(Cell::link(
            format!("/api/v1/accounts/{node}/payments.csv"),
            "all payments as CSV",
        )),
    );
    render(
        &format!("Account {}", short(&node)),
        "A renter's jobs, balances, stakes and payments.",
        0,
        sections,
    )
}

// ---- jobs and receipts -----------------------------------------------------

async fn job(State(app): State<Arc<App>>, Path(id): Path<String>) -> PageResult {
    let j = data::job(&app, &id).await?;
    let jp = format!("/api/v1/jobs/{id}");
    let f = |p: &str| format!("{jp}#{p}");
    let s = &j.summary;
    let unit = if s.paid_in == "io" { "IO" } else { "IOSD" };
    let p_text = f64::from(s.verify_rate_ppm) / 1e6;
    let mut sections = vec![
        Section::facts(
            "Job",
            vec![
                ("State", status_badge(&s.state)),
                ("Renter", account_link(&s.renter)),
                ("Shards", Cell::api(f("/summary/shards"), s.shards)),
                (
                    "Shards done",
                    Cell::api(f("/summary/shards_done"), s.shards_done),
                ),
                (
                    "Escrow",
                    Cell::api_shown(f("/summary/escrow"), s.escrow, money(s.escrow, unit)),
                ),
                (
                    "Paid to providers",
                    iosd(f("/summary/paid_uiosd"), s.paid_uiosd),
                ),
                (
                    "Highest price (µIOSD per million units)",
                    Cell::api(f("/max_price_uiosd"), j.max_price_uiosd),
                ),
                ("Component", Cell::Code(j.component_hash.clone())),
                (
                    "Component size",
                    Cell::api_shown(
                        f("/component_size"),
                        j.component_size,
                        bytes(j.component_size),
                    ),
                ),
                (
                    "Result root",
                    Cell::Code(
                        j.result_root
                            .clone()
                            .unwrap_or_else(|| "not all shards done".into()),
                    ),
                ),
                ("Accepted", at(f("/summary/created_at_ms"), s.created_at_ms)),
            ],
        )
        .intro(format!("Job {id}")),
    ];
    let g = Section::table(
        "Guarantee",
        &["Provider", "Stake at risk", "Receipts (n)", "(1 − p·f)^n, f = 1 %", "f = 10 %", "f = 100 %"],
        j.guarantee
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let mut row = vec![
                    provider_link(&x.provider),
                    io(f(&format!("/guarantee/{i}/stake_uio")), x.stake_uio),
                    Cell::api(f(&format!("/guarantee/{i}/receipts")), x.receipts),
                ];
                for (k, e) in x.escape_ppb.iter().enumerate() {
                    row.push(Cell::api_shown(
                        f(&format!("/guarantee/{i}/escape_ppb/{k}/probability_ppb")),
                        e.probability_ppb,
                        format!("{:.3e}", e.probability_ppb as f64 / 1e9),
                    ));
                }
                row
            })
            .collect(),
        "No provider has run a shard yet.",
    )
    .intro(if s.verify_rate_ppm == 0 {
        "None: the job opted out of verification.".to_string()
    } else {
        format!(
            "Each receipt is re-executed with probability p = {p_text}; a provider proven wrong loses {} % of its stake. (1 − p·f)^n is the chance a provider cheating on a fraction f of its n receipts here is never sampled.",
            j.slash_bps / 100
        )
    });
    sections.push(g);
    sections.push(Section::table(
        "Shards",
        &[
            "Shard", "State", "Provider", "Attempts", "Receipt", "Check", "Verdicts", "Note",
        ],
        j.shard_list
            .iter()
            .enumerate()
            .map(|(i, sh)| {
                vec![
                    Cell::api(f(&format!("/shard_list/{i}/index")), sh.index),
                    status_badge(&sh.state),
                    sh.provider
                        .as_deref()
                        .map(provider_link)
                        .unwrap_or_else(|| Cell::text("—")),
                    Cell::api(f(&format!("/shard_list/{i}/attempts")), sh.attempts),
                    sh.receipt
                        .as_ref()
                        .map(|r| Cell::link(format!("/receipts/{}", r.id), short(&r.id)))
                        .unwrap_or_else(|| Cell::text("—")),
                    sh.receipt
                        .as_ref()
                        .map(|r| status_badge(&r.check_state))
                        .unwrap_or_else(|| Cell::text("—")),
                    Cell::text(
                        sh.verdicts
                            .iter()
                            .map(|v| {
                                format!(
                                    "{} {}",
                                    v.role,
                                    if v.agrees { "agrees" } else { "disagrees" }
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    Cell::text(
                        [sh.why_not_matched.as_str(), sh.check_note.as_str()]
                            .iter()
                            .filter(|t| !t.is_empty())
                            .copied()
                            .collect::<Vec<_>>()
                            .join(" · "),
                    ),
                ]
            })
            .collect(),
        "No shard.",
    ));
    let verdicts: Vec<Vec<Cell>> = j
        .shard_list
        .iter()
        .enumerate()
        .flat_map(|(i, sh)| {
            let f = &f;
            sh.verdicts.iter().enumerate().map(move |(k, v)| {
                vec![
                    Cell::text(sh.index.to_string()),
                    account_link(&v.verifier),
                    Cell::text(&v.role),
                    status_badge(if v.agrees { "agrees" } else { "disagrees" }),
                    Cell::Code(v.outputs_root.clone()),
                    at(f(&format!("/shard_list/{i}/verdicts/{k}/at_ms")), v.at_ms),
                ]
            })
        })
        .collect();
    sections.push(Section::table(
        "Verdicts",
        &[
            "Shard",
            "Verifier",
            "Role",
            "Result",
            "Outputs root",
            "When",
        ],
        verdicts,
        "No re-execution recorded.",
    ));
    sections.push(blob_table(
        "Inputs",
        &j.inputs,
        &|i| f(&format!("/inputs/{i}/size")),
        "No inputs.",
    ));
    render(&format!("Job {}", short(&id)), "", 0, sections)
}

async fn receipt(State(app): State<Arc<App>>, Path(id): Path<String>) -> PageResult {
    let r = data::receipt(&app, &id).await?;
    let rp = format!("/api/v1/receipts/{id}");
    let f = |p: &str| format!("{rp}#{p}");
    let s = &r.summary;
    let mut facts = vec![
        (
            "Job",
            Cell::link(format!("/jobs/{}", s.job_id), short(&s.job_id)),
        ),
        ("Shard", Cell::api(f("/summary/shard"), s.shard)),
        ("Provider", provider_link(&s.provider)),
        ("Outcome", status_badge(&s.outcome)),
        ("Check", status_badge(&s.check_state)),
        (
            "Checked because",
            Cell::text(if r.check_reason.is_empty() {
                "not sampled".to_string()
            } else {
                r.check_reason.clone()
            }),
        ),
        ("Sampling epoch", Cell::api(f("/epoch"), r.epoch)),
        ("Work units", Cell::api(f("/summary/units"), s.units)),
        ("Fuel", Cell::api(f("/fuel_used"), r.fuel_used)),
        ("FLOPs", Cell::api(f("/flops"), r.flops)),
        ("Bytes moved", Cell::api(f("/bytes"), r.bytes)),
        (
            "Paid",
            match s.paid_uiosd {
                Some(p) => iosd(f("/summary/paid_uiosd"), p),
                None => Cell::text("not settled"),
            },
        ),
        (
            "Committed",
            at(f("/summary/committed_at_ms"), s.committed_at_ms),
        ),
        ("Settles", at(f("/summary/settle_at_ms"), s.settle_at_ms)),
        (
            "Backend",
            Cell::text(format!("{} ({})", r.backend, r.device)),
        ),
        ("Component", Cell::Code(r.component_hash.clone())),
        ("Inputs root", Cell::Code(r.inputs_root.clone())),
        ("Outputs root", Cell::Code(r.outputs_root.clone())),
        ("Signature (ed25519)", Cell::Code(r.signature.clone())),
    ];
    if let Some(t) = &r.telemetry {
        facts.push((
            "Device samples in the run",
            Cell::api(f("/telemetry/samples"), t.samples),
        ));
        facts.push((
            "Highest temperature",
            Cell::api_shown(
                f("/telemetry/max_temperature_c"),
                t.max_temperature_c,
                format!("{} °C", t.max_temperature_c),
            ),
        ));
        facts.push((
            "Mean power",
            Cell::api_shown(
                f("/telemetry/mean_power_mw"),
                t.mean_power_mw,
                format!("{} W", t.mean_power_mw / 1000),
            ),
        ));
        facts.push((
            "Mean utilisation",
            Cell::api_shown(
                f("/telemetry/mean_utilization_pct"),
                t.mean_utilization_pct,
                format!("{} %", t.mean_utilization_pct),
            ),
        ));
    }
    if !r.failure_message.is_empty() {
        facts.push(("Failure", Cell::text(&r.failure_message)));
    }
    let sections = vec![
        Section::facts("Receipt", facts).intro(format!("Receipt {id}")),
        blob_table(
            "Outputs",
            &r.outputs,
            &|i| f(&format!("/outputs/{i}/size")),
            "No outputs.",
        )
        .intro("Contents are the renter's; only their hashes are public."),
        Section::table(
            "Verdicts",
            &["Verifier", "Role", "Result", "Outputs root", "When"],
            r.verdicts
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    vec![
                        account_link(&v.verifier),
                        Cell::text(&v.role),
                        status_badge(if v.agrees { "agrees" } else { "disagrees" }),
                        Cell::Code(v.outputs_root.clone()),
                        at(f(&format!("/verdicts/{i}/at_ms")), v.at_ms),
                    ]
                })
                .collect(),
            "Not re-executed.",
        ),
    ];
    render(&format!("Receipt {}", short(&id)), "", 0, sections)
}

/// Blobs by name, hash and size (`size_at(i)`: the API source of item
/// `i`'s size).
fn blob_table(
    title: &str,
    blobs: &[BlobInfo],
    size_at: &dyn Fn(usize) -> String,
    empty: &str,
) -> Section {
    Section::table(
        title,
        &["Name", "Hash", "Size"],
        blobs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                vec![
                    Cell::text(&b.name),
                    Cell::Code(b.hash.clone()),
                    Cell::api_shown(size_at(i), b.size, bytes(b.size)),
                ]
            })
            .collect(),
        empty,
    )
}

// ---- epochs, notes, bonds ---------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct EpochsQuery {
    epoch: Option<String>,
    offset: Option<u64>,
}

async fn epochs(State(app): State<Arc<App>>, RawQuery(raw): RawQuery) -> PageResult {
    let q: EpochsQuery = query(raw.as_deref())?;
    if let Some(e) = q.epoch.as_deref().filter(|e| !e.trim().is_empty()) {
        let n = crate::params::epoch(e)?;
        return Ok(Redirect::to(&format!("/epochs/{n}")).into_response());
    }
    let page = data::epochs(&app, Window::new(q.offset, Some(50))).await?;
    let path = with_query(
        "/api/v1/epochs",
        &[
            (
                "offset",
                q.offset.map(|o| o.to_string()).unwrap_or_default(),
            ),
            ("limit", "50".into()),
        ],
    );
    let mut t = epoch_table(&page, &path, "Closed epochs");
    t.links = pager(&page, "/epochs", &[], "");
    t.links
        .push(Cell::link("/api/v1/epochs.csv", "epochs as CSV"));
    render(
        "Block-reward epochs",
        "Each epoch pays its scheduled IO: 70 % by verified work, 30 % by time online.",
        0,
        vec![Section::html("Find an epoch", epoch_search()), t],
    )
}

async fn epoch(State(app): State<Arc<App>>, Path(n): Path<String>) -> PageResult {
    let e = data::epoch(&app, &n).await?;
    let ep = format!("/api/v1/epochs/{n}");
    let f = |p: &str| format!("{ep}#{p}");
    let sections = vec![
        Section::facts(
            "Epoch",
            vec![
                ("Start", at(f("/start_ms"), e.start_ms)),
                ("End", at(f("/end_ms"), e.end_ms)),
                ("Scheduled", io(f("/scheduled_uio"), e.scheduled_uio)),
                ("Emitted", io(f("/emitted_uio"), e.emitted_uio)),
                (
                    "Providers nominated",
                    Cell::api(f("/nominated"), e.nominated),
                ),
                ("Providers paid", Cell::api(f("/paid"), e.paid)),
                ("Providers failed", Cell::api(f("/failed"), e.failed)),
                ("Closed", at(f("/closed_at_ms"), e.closed_at_ms)),
            ],
        ),
        Section::table(
            "Payouts",
            &["Provider", "Work units", "Online", "Failed", "Paid"],
            e.payouts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let s = |x: &str| f(&format!("/payouts/{i}/{x}"));
                    vec![
                        provider_link(&p.provider),
                        Cell::api(s("work_units"), p.work_units),
                        Cell::api_shown(
                            s("uptime_ms"),
                            p.uptime_ms,
                            format!("{} s", p.uptime_ms / 1000),
                        ),
                        Cell::api(s("failed"), p.failed),
                        io(s("amount_uio"), p.amount_uio),
                    ]
                })
                .collect(),
            "No provider was nominated.",
        ),
    ];
    render(&format!("Epoch {n}"), "", 0, sections)
}

async fn note(State(app): State<Arc<App>>, Path(id): Path<String>) -> PageResult {
    let n = data::note(&app, &id).await?;
    let np = format!("/api/v1/notes/{id}");
    let f = |p: &str| format!("{np}#{p}");
    let sections = vec![
        Section::facts(
            "Compute note",
            vec![
                ("Device", provider_link(&n.device)),
                ("Shares", Cell::api(f("/shares"), n.shares)),
                (
                    "Holders' part of each earning",
                    Cell::api_shown(
                        f("/holders_bps"),
                        n.holders_bps,
                        format!("{} %", f64::from(n.holders_bps) / 100.0),
                    ),
                ),
                ("Term (days)", Cell::api(f("/term_days"), n.term_days)),
                ("Issued", at(f("/issued_at_ms"), n.issued_at_ms)),
                ("Ends", at(f("/ends_at_ms"), n.ends_at_ms)),
            ],
        )
        .intro(format!("Note {id}")),
        holdings_table("Holders", &n.holdings, &f, "shares"),
        Section::table(
            "Offers",
            &["Seller", "Shares", "Price per share"],
            n.offers
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    vec![
                        account_link(&o.seller),
                        Cell::api(f(&format!("/offers/{i}/shares")), o.shares),
                        io(f(&format!("/offers/{i}/price_uio")), o.price_uio),
                    ]
                })
                .collect(),
            "No shares on offer.",
        ),
    ];
    render(&format!("Note {}", short(&id)), "", 0, sections)
}

fn holdings_table(title: &str, h: &[Holding], f: &dyn Fn(&str) -> String, what: &str) -> Section {
    Section::table(
        title,
        &[
            "Holder",
            if what == "shares" {
                "Shares"
            } else {
                "Principal"
            },
        ],
        h.iter()
            .enumerate()
            .map(|(i, x)| {
                let s = f(&format!("/holdings/{i}/amount"));
                vec![
                    account_link(&x.holder),
                    if what == "shares" {
                        Cell::api(s, x.amount)
                    } else {
                        iosd(s, x.amount)
                    },
                ]
            })
            .collect(),
        "No holder.",
    )
}

async fn bond(State(app): State<Arc<App>>, Path(id): Path<String>) -> PageResult {
    let b = data::bond(&app, &id).await?;
    let bp = format!("/api/v1/bonds/{id}");
    let f = |p: &str| format!("{bp}#{p}");
    let sections = vec![
        Section::facts(
            "Compute bond",
            vec![
                ("Device", provider_link(&b.device)),
                ("State", status_badge(&b.state)),
                (
                    "Principal offered",
                    iosd(f("/principal_uiosd"), b.principal_uiosd),
                ),
                ("Principal sold", iosd(f("/sold_uiosd"), b.sold_uiosd)),
                (
                    "Coupon",
                    Cell::api_shown(
                        f("/coupon_bps"),
                        b.coupon_bps,
                        format!("{} % a year", f64::from(b.coupon_bps) / 100.0),
                    ),
                ),
                (
                    "Maturity (days)",
                    Cell::api(f("/maturity_days"), b.maturity_days),
                ),
                ("Issued", at(f("/issued_at_ms"), b.issued_at_ms)),
                ("Matures", at(f("/matures_at_ms"), b.matures_at_ms)),
                (
                    "Coupons owed",
                    iosd(f("/coupon_total_uiosd"), b.coupon_total_uiosd),
                ),
                (
                    "Coupons paid",
                    iosd(f("/coupon_paid_uiosd"), b.coupon_paid_uiosd),
                ),
                (
                    "Principal escrowed",
                    iosd(f("/escrowed_uiosd"), b.escrowed_uiosd),
                ),
            ],
        )
        .intro(format!("Bond {id}")),
        holdings_table("Holders", &b.holdings, &f, "principal"),
    ];
    render(&format!("Bond {}", short(&id)), "", 0, sections)
}
