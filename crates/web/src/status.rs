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
    pub sync: Option<SyncStatus>,
}

/// Peer sync in the status document.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    /// The peer: its configured address (or `listen` only: "inbound").
    pub peer: String,
    /// The peer's name from its Hello, once connected.
    pub peer_name: Option<String>,
    /// A trusted session with the peer is up.
    pub up: bool,
    /// When a batch from the peer was last applied (Unix ms).
    pub last_sync_unix_ms: Option<u64>,
    /// Apply time minus the newest change's time in the last batch (ms).
    pub lag_ms: Option<u64>,
    /// Local changes the peer has not acknowledged.
    pub pending: u64,
    /// Largest clock skew seen from the peer since start (ms).
    pub max_skew_ms: Option<i64>,
    /// Concurrent edits resolved (last writer wins).
    pub conflicts_total: u64,
    /// Connections refused or closed for a protocol or trust error.
    pub refused_total: u64,
    /// The last refusal.
    pub last_error: Option<String>,
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
            sync: self.sync(),
        }
    }
}

impl AppState {
    /// The peer sync picture now, when `[sync]` runs.
    pub fn sync(&self) -> Option<SyncStatus> {
        let (peer, shared) = self.inner.sync.get()?;
        let s = shared.status();
        Some(SyncStatus {
            peer: peer.clone(),
            peer_name: s.name,
            up: s.up,
            last_sync_unix_ms: s.last_sync_unix_ms,
            lag_ms: s.lag_ms,
            pending: s.pending,
            max_skew_ms: self.inner.store.sync_max_skew_ms(),
            conflicts_total: s.conflicts_total,
            refused_total: s.refused_total,
            last_error: s.last_error,
        })
    }
}

#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, description = "Node, version, uptime, health, listeners, pools with each \
        server's health, VRRP state, sync state")),
    security(("session" = [])))]
pub(crate) async fn handler(State(state): State<AppState>) -> Json<Status> {
    Json(state.status())
}
