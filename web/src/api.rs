//! The JSON API under `/api/v1`, and its OpenAPI document (generated from
//! these handlers' annotations and the records' `ToSchema` derives).
//!
//! Every handler is the matching [`crate::data`] function answered as
//! JSON; lists are pages (`offset`, `limit` ≤ 200); three lists also come
//! as CSV (`/receipts.csv`, `/epochs.csv`, `/accounts/{node}/payments.csv`,
//! at most [`csv::MAX_ROWS`] rows, `X-Truncated` when cut).

use std::sync::Arc;

use assay_coordinator::explorer::*;
use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use utoipa::OpenApi;

use crate::App;
use crate::csv::{self, Csv};
use crate::data;
use crate::error::{ApiError, ErrorBody};
use crate::params::{
    JobQuery, Paging, ProfitQuery, ProviderQuery, ReceiptQuery, TelemetryQuery, query,
};

type Api<T> = Result<Json<T>, ApiError>;

/// The API's routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/network", get(network))
        .route("/api/v1/providers", get(providers))
        .route("/api/v1/providers/{node}", get(provider))
        .route("/api/v1/providers/{node}/telemetry", get(telemetry))
        .route("/api/v1/providers/{node}/receipts", get(provider_receipts))
        .route("/api/v1/providers/{node}/rewards", get(provider_rewards))
        .route("/api/v1/providers/{node}/profitability", get(profitability))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/jobs/{id}", get(job))
        .route("/api/v1/receipts", get(receipts))
        .route("/api/v1/receipts.csv", get(receipts_csv))
        .route("/api/v1/receipts/{id}", get(receipt))
        .route("/api/v1/accounts/{node}", get(account))
        .route("/api/v1/accounts/{node}/payments", get(payments))
        .route("/api/v1/accounts/{node}/payments.csv", get(payments_csv))
        .route("/api/v1/epochs", get(epochs))
        .route("/api/v1/epochs.csv", get(epochs_csv))
        .route("/api/v1/epochs/{n}", get(epoch))
        .route("/api/v1/notes/{id}", get(note))
        .route("/api/v1/bonds/{id}", get(bond))
}

/// The OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Assay explorer API",
        description = "The public state of an Assay coordinator: providers, jobs, receipts, payments, block rewards, notes and bonds. Ids are lowercase hex; times Unix ms; money integers in base units (µIOSD in fields ending _uiosd, µIO in _uio)."
    ),
    paths(
        network,
        providers,
        provider,
        telemetry,
        provider_receipts,
        provider_rewards,
        profitability,
        jobs,
        job,
        receipts,
        receipts_csv,
        receipt,
        account,
        payments,
        payments_csv,
        epochs,
        epochs_csv,
        epoch,
        note,
        bond
    ),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Unknown API paths.
pub async fn not_found() -> ApiError {
    ApiError(crate::WebError::NotFound(
        "no such API route: see /api/openapi.json".into(),
    ))
}

/// The network at a glance.
#[utoipa::path(get, path = "/api/v1/network", responses((status = 200, body = NetworkSummary)))]
async fn network(State(app): State<Arc<App>>) -> Api<NetworkSummary> {
    Ok(Json(data::network(&app).await?))
}

/// Providers, online first, then by earnings.
#[utoipa::path(get, path = "/api/v1/providers", params(ProviderQuery),
    responses((status = 200, body = Page<ProviderSummary>), (status = 400, body = ErrorBody)))]
async fn providers(
    State(app): State<Arc<App>>,
    RawQuery(q): RawQuery,
) -> Api<Page<ProviderSummary>> {
    let q: ProviderQuery = query(q.as_deref())?;
    Ok(Json(data::providers(&app, &q).await?))
}

/// A provider's dashboard data.
#[utoipa::path(get, path = "/api/v1/providers/{node}", params(("node" = String, Path, description = "node id, 64 hex digits")),
    responses((status = 200, body = ProviderDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn provider(State(app): State<Arc<App>>, Path(node): Path<String>) -> Api<ProviderDetail> {
    Ok(Json(data::provider(&app, &node).await?))
}

/// A provider's device samples (GPUs by index; the host as −1).
#[utoipa::path(get, path = "/api/v1/providers/{node}/telemetry",
    params(("node" = String, Path, description = "node id"), TelemetryQuery),
    responses((status = 200, body = Vec<TelemetrySample>), (status = 400, body = ErrorBody)))]
async fn telemetry(
    State(app): State<Arc<App>>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Api<Vec<TelemetrySample>> {
    let q: TelemetryQuery = query(q.as_deref())?;
    Ok(Json(data::telemetry(&app, &node, q.since_ms).await?))
}

/// The receipts a provider committed (jobs run and what each earned).
#[utoipa::path(get, path = "/api/v1/providers/{node}/receipts",
    params(("node" = String, Path, description = "node id"), Paging),
    responses((status = 200, body = Page<ReceiptSummary>), (status = 400, body = ErrorBody)))]
async fn provider_receipts(
    State(app): State<Arc<App>>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Api<Page<ReceiptSummary>> {
    let p: Paging = query(q.as_deref())?;
    let q = ReceiptQuery {
        provider: Some(node),
        job: None,
        offset: p.offset,
        limit: p.limit,
    };
    Ok(Json(data::receipts(&app, &q).await?))
}

/// A provider's block rewards per epoch.
#[utoipa::path(get, path = "/api/v1/providers/{node}/rewards",
    params(("node" = String, Path, description = "node id"), Paging),
    responses((status = 200, body = Page<EpochPayout>), (status = 400, body = ErrorBody)))]
async fn provider_rewards(
    State(app): State<Arc<App>>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Api<Page<EpochPayout>> {
    let p: Paging = query(q.as_deref())?;
    Ok(Json(data::provider_rewards(&app, &node, &p).await?))
}

/// Earnings against power cost at an electricity price.
#[utoipa::path(get, path = "/api/v1/providers/{node}/profitability",
    params(("node" = String, Path, description = "node id"), ProfitQuery),
    responses((status = 200, body = Profitability), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn profitability(
    State(app): State<Arc<App>>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Api<Profitability> {
    let q: ProfitQuery = query(q.as_deref())?;
    Ok(Json(data::profitability(&app, &node, &q).await?))
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", params(JobQuery),
    responses((status = 200, body = Page<JobSummary>), (status = 400, body = ErrorBody)))]
async fn jobs(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Api<Page<JobSummary>> {
    let q: JobQuery = query(q.as_deref())?;
    Ok(Json(data::jobs(&app, &q).await?))
}

/// A job: shards, receipts, verdicts, the guarantee.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", params(("id" = String, Path, description = "job id, 64 hex digits")),
    responses((status = 200, body = JobDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn job(State(app): State<Arc<App>>, Path(id): Path<String>) -> Api<JobDetail> {
    Ok(Json(data::job(&app, &id).await?))
}

/// Receipts, newest first.
#[utoipa::path(get, path = "/api/v1/receipts", params(ReceiptQuery),
    responses((status = 200, body = Page<ReceiptSummary>), (status = 400, body = ErrorBody)))]
async fn receipts(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Api<Page<ReceiptSummary>> {
    let q: ReceiptQuery = query(q.as_deref())?;
    Ok(Json(data::receipts(&app, &q).await?))
}

/// Receipts as CSV (same filters; at most 10,000 rows).
#[utoipa::path(get, path = "/api/v1/receipts.csv", params(ReceiptQuery),
    responses((status = 200, content_type = "text/csv", body = String)))]
async fn receipts_csv(
    State(app): State<Arc<App>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: ReceiptQuery = query(q.as_deref())?;
    let page = data::receipts_in(&app, &q, Window::first(csv::MAX_ROWS)).await?;
    let mut c = Csv::new(&[
        "seq",
        "id",
        "job_id",
        "shard",
        "provider",
        "units",
        "paid_uiosd",
        "outcome",
        "check_state",
        "committed_at_ms",
        "settle_at_ms",
    ]);
    for r in &page.items {
        c.row([
            r.seq.to_string(),
            r.id.clone(),
            r.job_id.clone(),
            r.shard.to_string(),
            r.provider.clone(),
            r.units.to_string(),
            r.paid_uiosd.map(|p| p.to_string()).unwrap_or_default(),
            r.outcome.clone(),
            r.check_state.clone(),
            r.committed_at_ms.to_string(),
            r.settle_at_ms.to_string(),
        ]);
    }
    Ok(c.into_response("receipts.csv", page.items.len() as u64, page.total))
}

/// A receipt.
#[utoipa::path(get, path = "/api/v1/receipts/{id}", params(("id" = String, Path, description = "receipt id")),
    responses((status = 200, body = ReceiptDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn receipt(State(app): State<Arc<App>>, Path(id): Path<String>) -> Api<ReceiptDetail> {
    Ok(Json(data::receipt(&app, &id).await?))
}

/// A node's balances and stakes.
#[utoipa::path(get, path = "/api/v1/accounts/{node}", params(("node" = String, Path, description = "node id")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody)))]
async fn account(State(app): State<Arc<App>>, Path(node): Path<String>) -> Api<AccountView> {
    Ok(Json(data::account(&app, &node).await?))
}

/// The ledger lines that move a node's own accounts, newest first.
#[utoipa::path(get, path = "/api/v1/accounts/{node}/payments", params(("node" = String, Path, description = "node id"), Paging),
    responses((status = 200, body = Page<LedgerLine>), (status = 400, body = ErrorBody)))]
async fn payments(
    State(app): State<Arc<App>>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Api<Page<LedgerLine>> {
    let p: Paging = query(q.as_deref())?;
    Ok(Json(data::payments(&app, &node, p.window()?).await?))
}

/// Payments as CSV (at most 10,000 rows).
#[utoipa::path(get, path = "/api/v1/accounts/{node}/payments.csv", params(("node" = String, Path, description = "node id")),
    responses((status = 200, content_type = "text/csv", body = String)))]
async fn payments_csv(
    State(app): State<Arc<App>>,
    Path(node): Path<String>,
) -> Result<Response, ApiError> {
    let page = data::payments(&app, &node, Window::first(csv::MAX_ROWS)).await?;
    let mut c = Csv::new(&[
        "seq",
        "kind",
        "debit",
        "credit",
        "amount",
        "unit",
        "reference",
        "at_ms",
    ]);
    for l in &page.items {
        c.row([
            l.seq.to_string(),
            l.kind.clone(),
            l.debit.clone(),
            l.credit.clone(),
            l.amount.to_string(),
            l.unit.clone(),
            l.reference.clone(),
            l.at_ms.to_string(),
        ]);
    }
    Ok(c.into_response("payments.csv", page.items.len() as u64, page.total))
}

/// Closed reward epochs, newest first.
#[utoipa::path(get, path = "/api/v1/epochs", params(Paging),
    responses((status = 200, body = Page<EpochView>), (status = 400, body = ErrorBody)))]
async fn epochs(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Api<Page<EpochView>> {
    let p: Paging = query(q.as_deref())?;
    Ok(Json(data::epochs(&app, p.window()?).await?))
}

/// Reward epochs as CSV (at most 10,000 rows).
#[utoipa::path(get, path = "/api/v1/epochs.csv",
    responses((status = 200, content_type = "text/csv", body = String)))]
async fn epochs_csv(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let page = data::epochs(&app, Window::first(csv::MAX_ROWS)).await?;
    let mut c = Csv::new(&[
        "epoch",
        "start_ms",
        "end_ms",
        "scheduled_uio",
        "emitted_uio",
        "nominated",
        "paid",
        "failed",
        "closed_at_ms",
    ]);
    for e in &page.items {
        c.row([
            e.epoch.to_string(),
            e.start_ms.to_string(),
            e.end_ms.to_string(),
            e.scheduled_uio.to_string(),
            e.emitted_uio.to_string(),
            e.nominated.to_string(),
            e.paid.to_string(),
            e.failed.to_string(),
            e.closed_at_ms.to_string(),
        ]);
    }
    Ok(c.into_response("epochs.csv", page.items.len() as u64, page.total))
}

/// One closed epoch with each provider's part.
#[utoipa::path(get, path = "/api/v1/epochs/{n}", params(("n" = u64, Path, description = "epoch number")),
    responses((status = 200, body = EpochView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn epoch(State(app): State<Arc<App>>, Path(n): Path<String>) -> Api<EpochView> {
    Ok(Json(data::epoch(&app, &n).await?))
}

/// A compute note.
#[utoipa::path(get, path = "/api/v1/notes/{id}", params(("id" = String, Path, description = "note id")),
    responses((status = 200, body = NoteView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn note(State(app): State<Arc<App>>, Path(id): Path<String>) -> Api<NoteView> {
    Ok(Json(data::note(&app, &id).await?))
}

/// A compute bond.
#[utoipa::path(get, path = "/api/v1/bonds/{id}", params(("id" = String, Path, description = "bond id")),
    responses((status = 200, body = BondView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn bond(State(app): State<Arc<App>>, Path(id): Path<String>) -> Api<BondView> {
    Ok(Json(data::bond(&app, &id).await?))
}
