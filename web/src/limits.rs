//! Limits on what a stranger can ask of the web server: requests per
//! minute per client address (a token bucket each, in a bounded table) and
//! a deadline per request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, PageError};
use crate::{App, WebError};

/// Client addresses tracked at once; past this, idle buckets are dropped
/// (and, if none is idle, the table starts again).
const MAX_CLIENTS: usize = 10_000;
/// The most a request may take.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// Token buckets per client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_minute` requests a minute per address, in bursts of as many.
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip` at `now`: `Err(seconds to wait)` when none is left.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let cap = f64::from(self.per_minute);
        let rate = cap / 60.0;
        let Ok(mut b) = self.buckets.lock() else {
            return Ok(());
        };
        if b.len() >= MAX_CLIENTS && !b.contains_key(&ip) {
            b.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < cap
            });
            if b.len() >= MAX_CLIENTS {
                b.clear();
            }
        }
        let (tokens, at) = b.entry(ip).or_insert((cap, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil() as u64)
        }
    }
}

/// The middleware: rate limit, then the request under its deadline.
pub async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api");
    let ip = req
        .extensions()
        .get::<ConnectInfo<assay_https::Peer>>()
        .map(|c| c.0.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let refuse = |e: WebError| {
        if api {
            ApiError(e).into_response()
        } else {
            PageError(e).into_response()
        }
    };
    if let Err(wait) = app.limiter.take(ip, Instant::now()) {
        return refuse(WebError::RateLimited(wait));
    }
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(req)).await {
        Ok(r) => r,
        Err(_) => refuse(WebError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_refills_with_time() {
        let l = RateLimiter::new(60);
        let ip = IpAddr::from([1, 2, 3, 4]);
        let t = Instant::now();
        for _ in 0..60 {
            assert!(l.take(ip, t).is_ok());
        }
        assert_eq!(l.take(ip, t), Err(1));
        assert!(l.take(IpAddr::from([5, 6, 7, 8]), t).is_ok(), "per address");
        assert!(l.take(ip, t + Duration::from_secs(2)).is_ok());
    }
}
