//! Errors: [`ApiError`], an HTTP refusal with a JSON body
//! `{"error", "field", "reason"}` (what the API returns and what the pages
//! show next to a form field), and [`WebError`], why the HTTPS listener
//! cannot start.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mxgate_store::StoreError;
use serde::Serialize;
use std::path::PathBuf;

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub error: String,
    /// The input field at fault (`address`, `weight`, ...), for a refused
    /// input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why the field was refused and what would be valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds until a rate-limited request may be tried again.
    #[serde(skip)]
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    /// An error with `status` and `error` only.
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            field: None,
            reason: None,
            retry_after_s: None,
        }
    }

    /// 401: no valid session.
    pub fn unauthenticated() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "not logged in")
    }

    /// 403: the CSRF token is missing or wrong.
    pub fn csrf() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token (X-CSRF-Token header or csrf form field)",
        )
    }

    /// 403: the role may not do this.
    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "read-only users cannot change anything",
        )
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, what)
    }

    /// 409.
    pub fn conflict(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, what)
    }

    /// 422: `field` is refused for `reason`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        let (field, reason) = (field.into(), reason.into());
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: format!("{field}: {reason}"),
            field: Some(field),
            reason: Some(reason),
            retry_after_s: None,
        }
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after_s: u64) -> ApiError {
        ApiError {
            retry_after_s: Some(retry_after_s.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed attempts; try again later",
            )
        }
    }

    /// 500, logged.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "web: internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }

    /// The reason for `field`, when this error is about that field.
    pub fn reason_for(&self, field: &str) -> Option<&str> {
        (self.field.as_deref() == Some(field))
            .then_some(self.reason.as_deref())
            .flatten()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Invalid(errors) => match errors.0.first() {
                Some(first) => ApiError::invalid(field_of(&first.key), &first.message),
                None => ApiError::invalid("policy", "not valid"),
            },
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// The input field a validation key names: the part after the last `].`
/// (`pool[mta].server[mta1].weight` → `weight`), or the whole key.
pub(crate) fn field_of(key: &str) -> String {
    key.rsplit_once("].")
        .map_or(key, |(_, field)| field)
        .to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.retry_after_s;
        let mut response = (self.status, Json(&self)).into_response();
        if let Some(s) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, s.to_string().parse().expect("digits"));
        }
        response
    }
}

/// Why the web listener cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// The certificate directory or a file in it cannot be used.
    #[error("web: {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The certificate or key is not usable.
    #[error("web: {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_key_names_its_field() {
        assert_eq!(field_of("pool[mta].server[mta1].weight"), "weight");
        assert_eq!(field_of("pool[mta].server[a.b].address"), "address");
        assert_eq!(field_of("relay"), "relay");
    }
}
