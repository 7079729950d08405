//! mxgate's HTTP side.
//!
//! Two routers:
//! - [`metrics_router`]: plain HTTP, `/metrics` (Prometheus text format) and
//!   `/healthz`, for scrapers on a management network.
//! - [`web_router`]: the web UI and the JSON API, served over HTTPS only by
//!   [`serve_https`] (a plain HTTP request on that port gets a `301` to
//!   `https://`), with the certificate from [`tls::server_config`]. Every
//!   page and API route except login, setup, `/healthz`, the stylesheet and
//!   `/api/openapi.json` needs a session; every change needs the session's
//!   CSRF token and the admin role (see [`auth`]). Security headers go on
//!   every answer ([`headers`]).
//!
//! Layout: `api/` (the route table and the JSON handlers, OpenAPI),
//! `auth/` (sessions, CSRF, roles, passwords, login rate limit, setup
//! code), `pages/` (maud templates; the stylesheet is `web-ui/style.css`),
//! `backends.rs` (the backend changes both the API and the pages make).

pub mod auth;
pub mod backends;
pub mod error;
pub mod headers;
pub mod tls;

mod api;
mod history;
mod https;
mod metrics;
mod pages;
mod policy_edit;
mod state;
mod status;
mod tracking;

#[cfg(test)]
mod tests;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::future::Future;

pub use api::logs::LogRing;
pub use error::{ApiError, WebError};
pub use https::serve_https;
pub use state::AppState;
pub use status::Status;

async fn healthz(State(state): State<AppState>) -> (StatusCode, String) {
    match state.health_problem() {
        None => (StatusCode::OK, "ok\n".to_string()),
        Some(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {problem}\n"),
        ),
    }
}

/// `/metrics` and `/healthz`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::handler))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// The web UI's pages, the JSON API (`/api/v1/...`, `/api/openapi.json`)
/// and `/healthz`, with the security headers on every answer.
/// Starts the dashboard's counter history (`history.rs`) on the current
/// runtime.
pub fn web_router(state: AppState) -> Router {
    history::start(&state);
    Router::new()
        .merge(api::router(&state))
        .merge(pages::router(&state))
        .route("/healthz", get(healthz))
        .layer(axum::middleware::from_fn(headers::add))
        .with_state(state)
}

/// Serves `router` over plain HTTP on `listener` until `shutdown` completes
/// (the metrics listener).
///
/// # Errors
/// When the server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
