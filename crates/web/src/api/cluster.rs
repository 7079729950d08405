//! The cluster API: `GET /api/v1/cluster` (peer sync and VRRP state,
//! whether a pairing is pending), `POST /api/v1/cluster/pairing` (a
//! one-time pairing code, as `mxgate cluster pair`) and
//! `POST /api/v1/cluster/join` (pair with the peer's code, as `mxgate
//! cluster join`). The Cluster page calls the same functions; both
//! changes are audited.

use super::ApiJson;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::status::SyncStatus;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mxgate_sync::pairing;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// How to hand the virtual IPs to the peer while the web UI cannot.
pub(crate) const HANDOVER_HINT: &str = "stop the service on the master (systemctl stop mxgate, \
     or SIGTERM): it sends a priority-0 advert and the backup takes the virtual IPs at once";

/// The cluster picture.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClusterView {
    /// This box's name.
    pub node: String,
    /// Peer sync; `null` without `[sync]` in the node file.
    #[schema(value_type = Option<Object>)]
    pub sync: Option<SyncStatus>,
    /// VRRP state and settings; `null` without `[vrrp]`.
    #[schema(value_type = Option<Object>)]
    pub vrrp: Option<mxgate_vrrp::Snapshot>,
    /// When a pairing code of this box is waiting for its peer: when it
    /// expires (Unix seconds).
    pub pairing_expires_unix: Option<u64>,
    /// How to hand the virtual IPs over for longer than a hand-over hold
    /// (at most 600 s) allows.
    pub handover: String,
}

/// A new pairing code.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PairingCode {
    /// The code (86 characters), shown once: give it to the other box.
    pub code: String,
    /// Unix seconds after which it is refused.
    pub expires_unix: u64,
}

/// Pair with a peer.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct JoinRequest {
    /// The peer's `[sync] listen` address, `HOST:PORT`.
    #[serde(default)]
    pub peer: String,
    /// The code the peer's "Create pairing code" (or `mxgate cluster
    /// pair`) printed.
    #[serde(default)]
    pub code: String,
}

/// The cluster picture now.
pub(crate) fn view(state: &AppState) -> ClusterView {
    let pending = pairing::load(&state.data_dir()).ok().flatten();
    ClusterView {
        node: state.inner.node.clone(),
        sync: state.sync(),
        vrrp: state.vrrp(),
        pairing_expires_unix: pending
            .map(|p| p.expires_unix)
            .filter(|e| *e >= pairing::now_unix()),
        handover: HANDOVER_HINT.to_string(),
    }
}

/// Creates a pairing code for this box (replacing a pending one), valid
/// [`pairing::DEFAULT_VALID`]; audited.
///
/// # Errors
/// 409 without `[sync]` (no listener would take the peer's join), 500 when
/// the data directory cannot be written.
pub(crate) async fn create_pairing(
    state: &AppState,
    user: &AuthUser,
) -> Result<PairingCode, ApiError> {
    if state.inner.sync.get().is_none() {
        return Err(ApiError::conflict(
            "peer sync is not configured on this box: add [sync] listen and peer to its node \
             file and restart, then create the code",
        ));
    }
    let (dir, user) = (state.data_dir(), user.name.clone());
    state
        .blocking(move |store| {
            let now = pairing::now_unix();
            let code =
                pairing::create(&dir, now, pairing::DEFAULT_VALID).map_err(ApiError::internal)?;
            let expires_unix = now + pairing::DEFAULT_VALID.as_secs();
            store.audit(
                &user,
                "cluster.pairing",
                "sync",
                &json!({ "expires_unix": expires_unix }),
            )?;
            Ok(PairingCode { code, expires_unix })
        })
        .await
}

/// Checks a join request: the peer as `HOST:PORT`, the code's form.
fn check_join(req: &JoinRequest) -> Result<(String, String), ApiError> {
    let peer = req.peer.trim();
    let port_ok = peer
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        return Err(ApiError::invalid(
            "peer",
            format!("{peer:?} is not HOST:PORT (the peer's [sync] listen address, e.g. 192.0.2.11:4747)"),
        ));
    }
    let code = req.code.trim();
    pairing::decode_code(code).map_err(|e| ApiError::invalid("code", e))?;
    Ok((peer.to_string(), code.to_string()))
}

/// Pairs with `req.peer` using its code (the peer must be running with
/// `[sync] listen`); stores the peer's pin; audited.
///
/// # Errors
/// 422 naming `peer` or `code` for bad input, 502 with the peer's refusal
/// or the connection error.
pub(crate) async fn join(
    state: &AppState,
    user: &AuthUser,
    req: &JoinRequest,
) -> Result<String, ApiError> {
    let (peer, code) = check_join(req)?;
    let pin = pairing::join(&state.data_dir(), &peer, &code)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))?
        .to_string();
    let (user, target) = (user.name.clone(), peer.clone());
    let detail = json!({ "peer_key": pin });
    state
        .blocking(move |store| Ok(store.audit(&user, "cluster.join", &target, &detail)?))
        .await?;
    tracing::info!(peer = %peer, "web: paired with the peer");
    Ok(pin)
}

#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses((status = 200, description = "Peer sync (peer, up, last sync, lag, pending, \
        conflicts, refusals, last error, max skew), VRRP state and settings, a pending pairing",
        body = ClusterView)),
    security(("session" = [])))]
pub(crate) async fn get_cluster(State(state): State<AppState>) -> Json<ClusterView> {
    Json(view(&state))
}

#[utoipa::path(post, path = "/api/v1/cluster/pairing", tag = "cluster",
    responses(
        (status = 201, description = "A one-time code for the other box's join (valid 15 minutes, \
            one use; replaces a pending one)", body = PairingCode),
        (status = 409, description = "No [sync] in this box's node file"),
    ), security(("session" = [])))]
pub(crate) async fn post_pairing(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<(StatusCode, Json<PairingCode>), ApiError> {
    let code = create_pairing(&state, &user).await?;
    Ok((StatusCode::CREATED, Json(code)))
}

#[utoipa::path(post, path = "/api/v1/cluster/join", tag = "cluster", request_body = JoinRequest,
    responses(
        (status = 200, description = "Paired: `{peer_key}`; the running services connect by themselves"),
        (status = 422, description = "A refused field (`peer` or `code`)"),
        (status = 502, description = "The peer refused (used, expired or wrong code) or did not answer"),
    ), security(("session" = [])))]
pub(crate) async fn post_join(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<JoinRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pin = join(&state, &user, &req).await?;
    Ok(Json(json!({ "peer_key": pin })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(peer: &str, code: &str) -> JoinRequest {
        JoinRequest {
            peer: peer.into(),
            code: code.into(),
        }
    }

    #[test]
    fn a_join_names_the_refused_field() {
        for peer in ["", "192.0.2.1", "192.0.2.1:0", ":4747", "host:port"] {
            let e = check_join(&req(peer, "x")).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("peer"), "{peer}");
        }
        let e = check_join(&req("192.0.2.1:4747", "not-a-code")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("code"));
        let code = pairing::encode_code(mxgate_sync::Pin([7; 32]), &[9; 32]);
        let (peer, _) = check_join(&req(" gw-a.example:4747 ", &code)).unwrap();
        assert_eq!(peer, "gw-a.example:4747");
    }
}
