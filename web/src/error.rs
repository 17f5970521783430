//! The web layer's one error type, and how it answers: JSON in OpenAPI's
//! documented shape under `/api`, an HTML page elsewhere.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What went wrong serving a request.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A malformed id, number or parameter; the message says what is expected.
    #[error("{0}")]
    BadRequest(String),
    /// No such provider, job, receipt, epoch, note or bond.
    #[error("{0}")]
    NotFound(String),
    /// Too many requests from this address; retry after this many seconds.
    #[error("too many requests: slow down and retry after {0} s")]
    RateLimited(u64),
    /// The request took longer than the server allows.
    #[error("the request took too long; retry, or narrow it (a smaller page)")]
    Timeout,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] assay_coordinator::Error),
    /// Anything else (a panicked worker, a template that failed).
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Store(assay_coordinator::Error::NotFound(_)) => StatusCode::NOT_FOUND,
            WebError::Store(assay_coordinator::Error::Invalid(_)) => StatusCode::BAD_REQUEST,
            WebError::Store(_) | WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self.status() {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "timeout",
            _ => "internal",
        }
    }

    fn retry_after(&self, r: &mut Response) {
        if let WebError::RateLimited(s) = self
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
}

/// The JSON body of an API error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An API error's detail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// In words, with what to do next.
    pub message: String,
    /// `bad_request`, `not_found`, `rate_limited`, `timeout` or `internal`.
    pub code: String,
}

/// A [`WebError`] answered as JSON (the API).
#[derive(Debug)]
pub struct ApiError(pub WebError);

impl<E: Into<WebError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.status().is_server_error() {
            tracing::warn!("web API: {e}");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                message: e.to_string(),
                code: e.code().into(),
            },
        };
        let mut r = (e.status(), axum::Json(body)).into_response();
        e.retry_after(&mut r);
        r
    }
}

/// A [`WebError`] answered as an HTML page.
#[derive(Debug)]
pub struct PageError(pub WebError);

impl<E: Into<WebError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.status().is_server_error() {
            tracing::warn!("web page: {e}");
        }
        let html = crate::pages::error_page(e.status(), &e.to_string());
        let mut r = (e.status(), axum::response::Html(html)).into_response();
        e.retry_after(&mut r);
        r
    }
}
