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
#[utoipa::path(get, path = "/api/v1/tracking", tag = "tracking",
    params(
        ("sender" = Option<String>, Query, description = "Part of the envelope sender"),
        ("recipient" = Option<String>, Query, description = "Part of a recipient"),
        ("client" = Option<String>, Query, description = "Client address prefix (also the PROXY-reported one)"),
        ("since_unix_ms" = Option<i64>, Query, description = "Sessions started at or after"),
        ("until_unix_ms" = Option<i64>, Query, description = "Sessions started before"),
        ("limit" = Option<u32>, Query, description = "At most this many (default 100, max 1000)"),
    ),
    responses((status = 200, description = "Tracked smtp-mode sessions with their transactions, newest first")),
    security(("session" = [])))]
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
#[utoipa::path(get, path = "/api/v1/tracking/{id}", tag = "tracking",
    params(("id" = i64, Path, description = "Session id")),
    responses(
        (status = 200, description = "One tracked session with its transactions and recipients"),
        (status = 404, description = "No such session"),
    ),
    security(("session" = [])))]
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
