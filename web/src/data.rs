//! One function per thing a page or the API shows: the store call (on a
//! blocking thread), with ids parsed and unknowns turned into 404s. The
//! API handlers ([`crate::api`]) return these records as JSON and the
//! pages ([`crate::pages`]) render the very same records, so a number on
//! a page is the API's number.

use std::sync::Arc;

use assay_coordinator::Store;
use assay_coordinator::explorer::*;
use assay_proto::now_ms;

use crate::params::{self, JobQuery, Paging, ProfitQuery, ProviderQuery, ReceiptQuery};
use crate::{App, WebError};

const DAY_MS: u64 = 86_400_000;

/// Runs a store read on a blocking thread.
async fn read<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&dyn Store) -> Result<T, assay_coordinator::Error> + Send + 'static,
) -> Result<T, WebError> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| WebError::Internal(format!("store task: {e}")))?
        .map_err(WebError::from)
}

fn found<T>(v: Option<T>, what: &str, id: &str) -> Result<T, WebError> {
    v.ok_or_else(|| WebError::NotFound(format!("no {what} {id} on this coordinator")))
}

pub async fn network(app: &Arc<App>) -> Result<NetworkSummary, WebError> {
    read(app, |s| s.network(now_ms())).await
}

pub async fn providers(
    app: &Arc<App>,
    q: &ProviderQuery,
) -> Result<Page<ProviderSummary>, WebError> {
    let filter = q.filter()?;
    let window = q.paging().window()?;
    read(app, move |s| s.provider_list(&filter, window, now_ms())).await
}

pub async fn provider(app: &Arc<App>, id: &str) -> Result<ProviderDetail, WebError> {
    let node = params::node(id)?;
    let mut d = found(
        read(app, move |s| s.provider_detail(&node, now_ms())).await?,
        "provider",
        id,
    )?;
    d.install_command = format!(
        "assay provider --coordinator {} --price {} --slots {}",
        app.cfg.grpc_url, d.summary.price_uiosd, d.summary.slots
    );
    Ok(d)
}

pub async fn telemetry(
    app: &Arc<App>,
    id: &str,
    since_ms: Option<u64>,
) -> Result<Vec<TelemetrySample>, WebError> {
    let node = params::node(id)?;
    let since = since_ms.unwrap_or_else(|| now_ms().saturating_sub(DAY_MS));
    read(app, move |s| s.telemetry(&node, since)).await
}

pub async fn profitability(
    app: &Arc<App>,
    id: &str,
    q: &ProfitQuery,
) -> Result<Profitability, WebError> {
    let node = params::node(id)?;
    let price = q.micro()?;
    found(
        read(app, move |s| s.profitability(&node, price, now_ms())).await?,
        "provider",
        id,
    )
}

pub async fn provider_rewards(
    app: &Arc<App>,
    id: &str,
    p: &Paging,
) -> Result<Page<EpochPayout>, WebError> {
    let node = params::node(id)?;
    let window = p.window()?;
    read(app, move |s| s.provider_rewards(&node, window)).await
}

pub async fn jobs(app: &Arc<App>, q: &JobQuery) -> Result<Page<JobSummary>, WebError> {
    let renter = q.renter.as_deref().map(params::node).transpose()?;
    let window = Paging {
        offset: q.offset,
        limit: q.limit,
    }
    .window()?;
    read(app, move |s| s.job_list(renter.as_ref(), window)).await
}

pub async fn job(app: &Arc<App>, id: &str) -> Result<JobDetail, WebError> {
    let h = params::hash(id, "job")?;
    found(
        read(app, move |s| s.job_detail(&h, now_ms())).await?,
        "job",
        id,
    )
}

pub async fn receipts(app: &Arc<App>, q: &ReceiptQuery) -> Result<Page<ReceiptSummary>, WebError> {
    receipts_in(
        app,
        q,
        Paging {
            offset: q.offset,
            limit: q.limit,
        }
        .window()?,
    )
    .await
}

pub async fn receipts_in(
    app: &Arc<App>,
    q: &ReceiptQuery,
    window: Window,
) -> Result<Page<ReceiptSummary>, WebError> {
    let provider = q.provider.as_deref().map(params::node).transpose()?;
    let job = q
        .job
        .as_deref()
        .map(|j| params::hash(j, "job"))
        .transpose()?;
    read(app, move |s| {
        s.receipt_list(provider.as_ref(), job.as_ref(), window)
    })
    .await
}

pub async fn receipt(app: &Arc<App>, id: &str) -> Result<ReceiptDetail, WebError> {
    let h = params::hash(id, "receipt")?;
    found(
        read(app, move |s| s.receipt_detail(&h)).await?,
        "receipt",
        id,
    )
}

pub async fn account(app: &Arc<App>, id: &str) -> Result<AccountView, WebError> {
    let node = params::node(id)?;
    read(app, move |s| s.account_view(&node)).await
}

pub async fn payments(
    app: &Arc<App>,
    id: &str,
    window: Window,
) -> Result<Page<LedgerLine>, WebError> {
    let node = params::node(id)?;
    read(app, move |s| s.payments(&node, window)).await
}

pub async fn epochs(app: &Arc<App>, window: Window) -> Result<Page<EpochView>, WebError> {
    read(app, move |s| s.epoch_list(window)).await
}

pub async fn epoch(app: &Arc<App>, n: &str) -> Result<EpochView, WebError> {
    let e = params::epoch(n)?;
    found(
        read(app, move |s| s.epoch_detail(e)).await?,
        "closed epoch",
        n,
    )
}

pub async fn note(app: &Arc<App>, id: &str) -> Result<NoteView, WebError> {
    let h = params::hash(id, "note")?;
    found(read(app, move |s| s.note_view(&h)).await?, "note", id)
}

pub async fn bond(app: &Arc<App>, id: &str) -> Result<BondView, WebError> {
    let h = params::hash(id, "bond")?;
    found(read(app, move |s| s.bond_view(&h)).await?, "bond", id)
}
