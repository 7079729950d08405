//! `/api/v1/status`: this node, its listeners and its pools as JSON.

use crate::AppState;
use axum::extract::State;
use axum::Json;
use mxgate_balance::ServerStatus;
use mxgate_gateway::ListenerStatus;
use serde::Serialize;

/// The status document.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Node name from the node file.
    pub node: String,
    /// mxgate version.
    pub version: String,
    /// Seconds since start.
    pub uptime_s: u64,
    /// `ok` or the reason it is not.
    pub health: String,
    /// Connections open now over all listeners.
    pub active_connections: u64,
    /// Configured listeners.
    pub listeners: Vec<ListenerStatus>,
    /// Backend pools.
    pub pools: Vec<PoolStatus>,
    /// VRRP: state, since when (`in_state_ms`), effective priority, the
    /// master's address, tracked objects, counters and the last
    /// transitions with their reasons; `null` while this node has no
    /// `[vrrp]`.
    pub vrrp: Option<mxgate_vrrp::Snapshot>,
    /// Peer sync state; `null` while this node has no `[sync]`.
    pub sync: Option<()>,
}

/// One pool in the status document.
#[derive(Debug, Serialize)]
pub struct PoolStatus {
    /// Pool name.
    pub name: String,
    /// Selection algorithm.
    pub balance: mxgate_config::Balance,
    /// Servers in policy order.
    pub servers: Vec<ServerStatus>,
}

impl AppState {
    /// The current status document.
    pub fn status(&self) -> Status {
        let inner = &self.inner;
        Status {
            node: inner.node.clone(),
            version: inner.version.clone(),
            uptime_s: inner.started.elapsed().as_secs(),
            health: self.health_problem().unwrap_or_else(|| "ok".to_string()),
            active_connections: inner.gateway.active_connections(),
            listeners: inner.gateway.listeners(),
            pools: inner
                .pools
                .all()
                .iter()
                .map(|p| PoolStatus {
                    name: p.name().to_string(),
                    balance: p.settings().balance,
                    servers: p.servers().iter().map(|s| s.status()).collect(),
                })
                .collect(),
            vrrp: self.vrrp(),
            sync: None,
        }
    }
}

pub(crate) async fn handler(State(state): State<AppState>) -> Json<Status> {
    Json(state.status())
}
