//! The gateway's errors, and how each reaches a client: OpenAI's error
//! format (`{"error": {"message", "type", "param", "code"}}`) with the
//! status code OpenAI's clients act on (401 retried never, 429 and 503
//! retried with back-off, 400 reported).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No key, or a key this gateway did not issue (or revoked).
    #[error("{0}")]
    Unauthorized(String),
    /// The request is malformed or asks what the model cannot do.
    #[error("{message}")]
    BadRequest {
        /// What is wrong and how to fix it.
        message: String,
        /// The field at fault (`input`, `model`, …), when one is.
        param: Option<&'static str>,
        /// A short machine-readable code.
        code: &'static str,
    },
    /// No such model.
    #[error(
        "the model `{0}` does not exist on this gateway; GET /v1/models lists the ones it serves"
    )]
    ModelNotFound(String),
    /// No such route (404), or not with this method (405).
    #[error("{message}")]
    NoRoute {
        /// What was asked and what this gateway serves.
        message: String,
        /// The path exists, with another method.
        wrong_method: bool,
    },
    /// The key's spend limit is reached.
    #[error("{0}")]
    SpendLimit(String),
    /// The network could not run the request in time (no provider, the
    /// gateway's account cannot pay, the coordinator is unreachable).
    #[error("{0}")]
    Unavailable(String),
    /// The job ran and failed: a fault of the network, not of the request.
    #[error("{0}")]
    JobFailed(String),
    /// The key store (SQLite) failed.
    #[error("the gateway's key store failed: {0}")]
    Keys(#[from] rusqlite::Error),
    /// A coordinator call or blob transfer failed.
    #[error("the coordinator refused or failed: {0}")]
    Coordinator(#[from] assay_proto::Error),
    /// The model's files cannot be served (no tokenizer, a config that
    /// does not parse).
    #[error("{0}")]
    Model(String),
    /// A local I/O error (the key store's directory).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// A 400 for `param`.
    pub fn bad(param: &'static str, message: impl Into<String>) -> Error {
        Error::BadRequest {
            message: message.into(),
            param: Some(param),
            code: "invalid_value",
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::ModelNotFound(_) => StatusCode::NOT_FOUND,
            Error::NoRoute {
                wrong_method: false,
                ..
            } => StatusCode::NOT_FOUND,
            Error::NoRoute {
                wrong_method: true, ..
            } => StatusCode::METHOD_NOT_ALLOWED,
            Error::SpendLimit(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) | Error::Coordinator(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::JobFailed(_) | Error::Keys(_) | Error::Io(_) | Error::Model(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The body: OpenAI's error object.
    pub fn body(&self) -> serde_json::Value {
        let (kind, param, code) = match self {
            Error::Unauthorized(_) => ("invalid_request_error", None, Some("invalid_api_key")),
            Error::BadRequest { param, code, .. } => ("invalid_request_error", *param, Some(*code)),
            Error::ModelNotFound(_) => (
                "invalid_request_error",
                Some("model"),
                Some("model_not_found"),
            ),
            Error::NoRoute { .. } => ("invalid_request_error", None, Some("unknown_url")),
            Error::SpendLimit(_) => ("insufficient_quota", None, Some("insufficient_quota")),
            Error::Unavailable(_) | Error::Coordinator(_) => {
                ("server_error", None, Some("no_capacity"))
            }
            Error::JobFailed(_) | Error::Keys(_) | Error::Io(_) | Error::Model(_) => {
                ("server_error", None, None)
            }
        };
        json!({ "error": { "message": self.to_string(), "type": kind, "param": param, "code": code } })
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        (self.status(), axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_an_openai_error_object_with_its_status() {
        let cases = [
            (Error::Unauthorized("no".into()), 401, "invalid_api_key"),
            (Error::bad("input", "empty"), 400, "invalid_value"),
            (Error::ModelNotFound("gpt-4".into()), 404, "model_not_found"),
            (Error::SpendLimit("spent".into()), 429, "insufficient_quota"),
            (
                Error::NoRoute {
                    message: "x".into(),
                    wrong_method: true,
                },
                405,
                "unknown_url",
            ),
            (Error::Unavailable("none".into()), 503, "no_capacity"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), status);
            let body = e.body();
            assert_eq!(body["error"]["code"], code);
            assert_eq!(body["error"]["message"], e.to_string());
            assert!(body["error"]["type"].is_string());
        }
        assert_eq!(Error::bad("input", "x").body()["error"]["param"], "input");
    }
}
