//! mxgate's HTTP side.
//!
//! Two routers: [`metrics_router`] (plain HTTP, `/metrics` in the Prometheus
//! text format and `/healthz`) and [`api_router`] (`/api/v1/status`,
//! `/api/v1/tracking` and `/healthz`). Until the web UI adds authentication, the node file only
//! allows the API on a loopback address.

mod metrics;
mod status;
mod tracking;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use mxgate_balance::Pools;
use mxgate_gateway::Gateway;
use mxgate_store::Store;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub use status::Status;

/// Everything the handlers read. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    version: String,
    started: Instant,
    gateway: Arc<Gateway>,
    pools: Arc<Pools>,
    store: Arc<Store>,
    /// The running virtual router, once `[vrrp]` started one.
    vrrp: OnceLock<mxgate_vrrp::Monitor>,
    /// The peer sync task's state, once `[sync]` started it: the peer's
    /// configured address and the shared status.
    sync: OnceLock<(String, Arc<mxgate_sync::Shared>)>,
}

impl AppState {
    /// State for a node called `node`.
    pub fn new(
        node: &str,
        version: &str,
        gateway: Arc<Gateway>,
        pools: Arc<Pools>,
        store: Arc<Store>,
    ) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                node: node.to_string(),
                version: version.to_string(),
                started: Instant::now(),
                gateway,
                pools,
                store,
                vrrp: OnceLock::new(),
                sync: OnceLock::new(),
            }),
        }
    }

    /// Shows peer sync with `peer` (its address, the metrics' `peer`
    /// label) in `/api/v1/status` and `/metrics`. Only the first call
    /// counts.
    pub fn set_sync(&self, peer: &str, shared: Arc<mxgate_sync::Shared>) {
        let _ = self.inner.sync.set((peer.to_string(), shared));
    }

    /// Shows this virtual router in `/api/v1/status` and `/metrics`. Only
    /// the first call counts (a node runs at most one).
    pub fn set_vrrp(&self, monitor: mxgate_vrrp::Monitor) {
        let _ = self.inner.vrrp.set(monitor);
    }

    /// The VRRP picture now, when a virtual router runs.
    pub fn vrrp(&self) -> Option<mxgate_vrrp::Snapshot> {
        self.inner.vrrp.get().map(|m| m.snapshot(Instant::now()))
    }

    /// Why the node is unhealthy, or `None` when every listener is bound and
    /// the store is open.
    pub fn health_problem(&self) -> Option<String> {
        let down: Vec<String> = self
            .inner
            .gateway
            .listeners()
            .into_iter()
            .filter(|l| !l.bound)
            .map(|l| format!("listener {} not bound", l.name))
            .collect();
        if !down.is_empty() {
            return Some(down.join(", "));
        }
        if !self.inner.store.check_health() {
            return Some("store not available".to_string());
        }
        None
    }
}

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

/// `/api/v1/status`, `/api/v1/tracking` and `/healthz`.
pub fn api_router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/status", get(status::handler))
        .route("/api/v1/tracking", get(tracking::search))
        .route("/api/v1/tracking/{id}", get(tracking::session))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes.
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
