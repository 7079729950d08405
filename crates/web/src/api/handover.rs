//! `POST /api/v1/cluster/handover {hold_s}`: asks this box's virtual router
//! to hand the virtual IPs over to the peer (a priority-0 advert, then out
//! as if faulted for `hold_s` seconds, 5 to 600, default 30). After the
//! hold the box is Backup again; with `preempt` and a higher priority it
//! takes the VIPs back. The Cluster page's button calls the same code.

use super::ApiJson;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mxgate_vrrp::linux::handover::{DEFAULT_HOLD, MAX_HOLD, MIN_HOLD};
use mxgate_vrrp::linux::HandOverError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use utoipa::ToSchema;

/// A hand-over request.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct HandOverRequest {
    /// Seconds to stay out before coming back as backup (5..=600, default 30).
    #[serde(default)]
    pub hold_s: Option<u64>,
}

/// What was done.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HandOverDone {
    /// The hold in seconds.
    pub hold_s: u64,
}

/// Hands over for `hold_s` (default 30 s) and audits it.
///
/// # Errors
/// 422 (`hold_s`) out of range; 409 without `[vrrp]` or when not Master.
pub(crate) async fn hand_over(
    state: &AppState,
    user: &AuthUser,
    hold_s: Option<u64>,
) -> Result<HandOverDone, ApiError> {
    let hold = hold_s.map_or(DEFAULT_HOLD, Duration::from_secs);
    if !(MIN_HOLD..=MAX_HOLD).contains(&hold) {
        return Err(ApiError::invalid(
            "hold_s",
            format!(
                "must be {}..={} seconds",
                MIN_HOLD.as_secs(),
                MAX_HOLD.as_secs()
            ),
        ));
    }
    let handle = state.inner.handover.get().ok_or_else(|| {
        ApiError::conflict("VRRP is not configured on this box (no [vrrp] in its node file)")
    })?;
    handle.hand_over(hold).await.map_err(|e| match e {
        HandOverError::Hold => ApiError::invalid("hold_s", e.to_string()),
        other => ApiError::conflict(other.to_string()),
    })?;
    let hold_s = hold.as_secs();
    tracing::info!(user = %user.name, hold_s, "web: handed the virtual IPs over to the peer");
    let name = user.name.clone();
    state
        .blocking(move |store| {
            store.audit(
                &name,
                "cluster.handover",
                "vrrp",
                &json!({ "hold_s": hold_s }),
            )?;
            Ok(())
        })
        .await?;
    Ok(HandOverDone { hold_s })
}

#[utoipa::path(post, path = "/api/v1/cluster/handover", tag = "cluster", request_body = HandOverRequest,
    responses(
        (status = 200, description = "Stepped down: the peer takes over; this box is back as backup after the hold (and may take the VIPs back with preempt)", body = HandOverDone),
        (status = 409, description = "No [vrrp] on this box, or it is not MASTER"),
        (status = 422, description = "`hold_s` out of 5..=600"),
    ), security(("session" = [])))]
pub(crate) async fn post_handover(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<HandOverRequest>,
) -> Result<Json<HandOverDone>, ApiError> {
    Ok(Json(hand_over(&state, &user, req.hold_s).await?))
}
