//! Reading what a stranger sends: ids, paging, filters. Every refusal
//! says what was expected.

use assay_coordinator::explorer::{MAX_PAGE, Window};
use assay_protocol::{Hash32, NodeId};
use serde::Deserialize;

use crate::WebError;

/// The longest query string read.
const MAX_QUERY: usize = 2048;

/// A node id (64 hex digits).
pub fn node(s: &str) -> Result<NodeId, WebError> {
    s.parse().map_err(|_| {
        WebError::BadRequest(format!(
            "{:?} is not a node id: write its 64 hex digits",
            clip(s)
        ))
    })
}

/// A job, receipt, note or bond id (64 hex digits).
pub fn hash(s: &str, what: &str) -> Result<Hash32, WebError> {
    s.parse().map_err(|_| {
        WebError::BadRequest(format!(
            "{:?} is not a {what} id: write its 64 hex digits",
            clip(s)
        ))
    })
}

/// An epoch number.
pub fn epoch(s: &str) -> Result<u64, WebError> {
    s.trim().parse().map_err(|_| {
        WebError::BadRequest(format!(
            "{:?} is not an epoch number: write e.g. 12",
            clip(s)
        ))
    })
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Decodes a query string into `T`.
pub fn query<T: for<'de> Deserialize<'de> + Default>(raw: Option<&str>) -> Result<T, WebError> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_QUERY {
        return Err(WebError::BadRequest(format!(
            "the query string is {} bytes; at most {MAX_QUERY}",
            raw.len()
        )));
    }
    if raw.is_empty() {
        return Ok(T::default());
    }
    serde_urlencoded::from_str(raw).map_err(|e| WebError::BadRequest(format!("query: {e}")))
}

/// Paging of every list: `offset` and `limit` (at most 200).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Items to skip (default 0).
    pub offset: Option<u64>,
    /// Items to return, 1–200 (default 50).
    pub limit: Option<u32>,
}

impl Paging {
    /// The store's window.
    pub fn window(&self) -> Result<Window, WebError> {
        if self.limit.is_some_and(|l| l > MAX_PAGE) {
            return Err(WebError::BadRequest(format!(
                "limit {} is over the most one page holds ({MAX_PAGE}): page with offset",
                self.limit.unwrap_or(0)
            )));
        }
        Ok(Window::new(self.offset, self.limit))
    }
}

/// The provider list's filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderQuery {
    /// Text found in the id, class, a GPU model or the status.
    pub q: Option<String>,
    /// `online`, `offline` or `suspended`.
    pub status: Option<String>,
    /// Items to skip.
    pub offset: Option<u64>,
    /// Items to return, 1–200.
    pub limit: Option<u32>,
}

impl ProviderQuery {
    /// The store's filter, checked.
    pub fn filter(&self) -> Result<assay_coordinator::store::explorer::ProviderFilter, WebError> {
        if let Some(s) = &self.status
            && !["online", "offline", "suspended", ""].contains(&s.as_str())
        {
            return Err(WebError::BadRequest(format!(
                "status {:?}: online, offline or suspended",
                clip(s)
            )));
        }
        if self.q.as_ref().is_some_and(|q| q.len() > 128) {
            return Err(WebError::BadRequest("q: at most 128 characters".into()));
        }
        Ok(assay_coordinator::store::explorer::ProviderFilter {
            search: self
                .q
                .clone()
                .map(|q| q.trim().to_string())
                .filter(|q| !q.is_empty()),
            status: self.status.clone().filter(|s| !s.is_empty()),
        })
    }

    /// Paging.
    pub fn paging(&self) -> Paging {
        Paging {
            offset: self.offset,
            limit: self.limit,
        }
    }
}

/// The job list's filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only this renter's jobs (node id).
    pub renter: Option<String>,
    /// Items to skip.
    pub offset: Option<u64>,
    /// Items to return, 1–200.
    pub limit: Option<u32>,
}

/// The receipt list's filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiptQuery {
    /// Only this provider's receipts (node id).
    pub provider: Option<String>,
    /// Only this job's receipts (job id).
    pub job: Option<String>,
    /// Items to skip.
    pub offset: Option<u64>,
    /// Items to return, 1–200.
    pub limit: Option<u32>,
}

/// Telemetry since when.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TelemetryQuery {
    /// Unix ms (default: 24 hours ago).
    pub since_ms: Option<u64>,
}

/// The electricity price.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProfitQuery {
    /// IOSD per kWh as a decimal, e.g. `0.12` (default 0).
    pub kwh_price: Option<String>,
}

impl ProfitQuery {
    /// µIOSD per kWh, parsed exactly.
    pub fn micro(&self) -> Result<u64, WebError> {
        match self.kwh_price.as_deref().map(str::trim) {
            None | Some("") => Ok(0),
            Some(p) => assay_coordinator::ledger::accounts::parse_amount(p)
                .map_err(|e| WebError::BadRequest(format!("kwh_price: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_paging_are_checked_with_a_reason() {
        assert!(node(&"ab".repeat(32)).is_ok());
        let e = node("zz").expect_err("not hex");
        assert!(e.to_string().contains("64 hex digits"));
        assert!(hash("12", "job").is_err());
        assert!(
            Paging {
                offset: None,
                limit: Some(201)
            }
            .window()
            .is_err()
        );
        let q: Paging = query(Some("offset=5&limit=7")).expect("query");
        assert_eq!(q.window().expect("w"), Window::new(Some(5), Some(7)));
        assert!(query::<Paging>(Some("limit=x")).is_err());
        let p = ProfitQuery {
            kwh_price: Some("0.12".into()),
        };
        assert_eq!(p.micro().expect("price"), 120_000);
        assert!(
            ProfitQuery {
                kwh_price: Some("-1".into())
            }
            .micro()
            .is_err()
        );
    }
}
