//! `/api/v1/tracking`: search the session and transaction records of smtp
//! mode by sender, recipient, client and time; `/api/v1/tracking/{id}`: one
//! session with its transactions and recipients.

use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use mxgate_store::{SessionRecord, TrackQuery};
use serde_json::{json, Value};

type ApiError = (StatusCode, Json<Value>);

fn internal(e: impl std::fmt::Display) -> ApiError {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": e.to_string() })),
    )
}

/// `GET /api/v1/tracking?sender=&recipient=&client=&since_unix_ms=&until_unix_ms=&limit=`,
/// newest first.
pub(crate) async fn search(
    State(state): State<AppState>,
    Query(query): Query<TrackQuery>,
) -> Result<Json<Vec<SessionRecord>>, ApiError> {
    let store = std::sync::Arc::clone(&state.inner.store);
    tokio::task::spawn_blocking(move || store.search(&query))
        .await
        .map_err(internal)?
        .map(Json)
        .map_err(internal)
}

/// `GET /api/v1/tracking/{id}`.
pub(crate) async fn session(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<SessionRecord>, ApiError> {
    let store = std::sync::Arc::clone(&state.inner.store);
    match tokio::task::spawn_blocking(move || store.tracked_session(id))
        .await
        .map_err(internal)?
        .map_err(internal)?
    {
        Some(record) => Ok(Json(record)),
        None => Err((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no tracked session {id}") })),
        )),
    }
}
