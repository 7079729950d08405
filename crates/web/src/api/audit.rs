//! `GET /api/v1/audit?limit=`: the audit log, newest first.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Entries returned when no limit is given.
const DEFAULT_LIMIT: u32 = 100;
/// Most entries returned at once.
const MAX_LIMIT: u32 = 1000;

/// Query of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// How many entries (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// One audited change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditView {
    /// Position in the log.
    pub id: i64,
    /// When (Unix milliseconds).
    pub time_unix_ms: i64,
    /// Who.
    pub user: String,
    /// What (`server.add`, `server.edit`, `server.remove`, `server.state`,
    /// `user.add`, `user.remove`, `setup`).
    pub action: String,
    /// To what (`pool/server`, a user name).
    pub target: String,
    /// The new values.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Newest first", body = [AuditView])),
    security(("session" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let entries = state
        .blocking(move |store| Ok(store.audit_log(limit)?))
        .await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView {
                id: e.id,
                time_unix_ms: e.time_unix_ms,
                user: e.user,
                action: e.action,
                target: e.target,
                detail: e.detail,
            })
            .collect(),
    ))
}
