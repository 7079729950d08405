//! The backends API: `GET /api/v1/pools`, and a pool's servers added
//! (`POST .../servers`), edited (`PUT .../servers/{name}`), removed
//! (`DELETE`) and drained or put in maintenance (`POST .../state`). The
//! checks and the writes are [`crate::backends`]'s, shared with the
//! Backends page.

use super::ApiJson;
use crate::auth::AuthUser;
use crate::backends::{self, parse_state, u32_field, PoolView, ServerInput};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

/// A new server.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewServer {
    /// 1 to 64 of `A-Z a-z 0-9 . _ -`, unique in the pool.
    pub name: String,
    /// `IP:port` of the MTA.
    pub address: String,
    /// 0..256 (default 1).
    pub weight: Option<i64>,
    /// Session cap, 0 = none (default 0).
    pub max_conn: Option<i64>,
    /// `ready` (default), `drain` or `maint`.
    pub state: Option<String>,
}

/// A server's new settings (its state is kept).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ServerEdit {
    /// `IP:port` of the MTA.
    pub address: String,
    /// 0..256.
    pub weight: i64,
    /// Session cap, 0 = none.
    pub max_conn: i64,
}

/// A new administrative state.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct StateChange {
    /// `ready`, `drain` (no new sessions, open ones finish) or `maint`.
    pub state: String,
}

#[utoipa::path(get, path = "/api/v1/pools", tag = "backends",
    responses((status = 200, description = "Pools with their servers' settings and health", body = [PoolView])),
    security(("session" = [])))]
pub(crate) async fn list(State(state): State<AppState>) -> Json<Vec<PoolView>> {
    Json(backends::views(&state))
}

#[utoipa::path(post, path = "/api/v1/pools/{pool}/servers", tag = "backends",
    params(("pool" = String, Path, description = "Pool name")), request_body = NewServer,
    responses(
        (status = 201, description = "Added; the running gateway picks it up at once"),
        (status = 404, description = "No such pool"),
        (status = 409, description = "The pool has a server of that name"),
        (status = 422, description = "A refused field: `{error, field, reason}`; nothing changed"),
    ), security(("session" = [])))]
pub(crate) async fn add(
    State(state): State<AppState>,
    user: AuthUser,
    Path(pool): Path<String>,
    ApiJson(new): ApiJson<NewServer>,
) -> Result<StatusCode, ApiError> {
    let input = ServerInput {
        name: new.name,
        address: new.address,
        weight: u32_field("weight", new.weight.unwrap_or(1))?,
        max_conn: u32_field("max_conn", new.max_conn.unwrap_or(0))?,
        state: parse_state("state", new.state.as_deref().unwrap_or("ready"))?,
    };
    backends::add(&state, &user.name, &pool, input).await?;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(put, path = "/api/v1/pools/{pool}/servers/{name}", tag = "backends",
    params(("pool" = String, Path, description = "Pool name"), ("name" = String, Path, description = "Server name")),
    request_body = ServerEdit,
    responses(
        (status = 204, description = "Changed"),
        (status = 404, description = "No such pool or server"),
        (status = 422, description = "A refused field; nothing changed"),
    ), security(("session" = [])))]
pub(crate) async fn edit(
    State(state): State<AppState>,
    user: AuthUser,
    Path((pool, name)): Path<(String, String)>,
    ApiJson(edit): ApiJson<ServerEdit>,
) -> Result<StatusCode, ApiError> {
    let input = ServerInput {
        name,
        address: edit.address,
        weight: u32_field("weight", edit.weight)?,
        max_conn: u32_field("max_conn", edit.max_conn)?,
        state: mxgate_config::ServerState::Ready,
    };
    backends::edit(&state, &user.name, &pool, input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/pools/{pool}/servers/{name}", tag = "backends",
    params(("pool" = String, Path, description = "Pool name"), ("name" = String, Path, description = "Server name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such pool or server"),
    ), security(("session" = [])))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    Path((pool, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    backends::remove(&state, &user.name, &pool, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/pools/{pool}/servers/{name}/state", tag = "backends",
    params(("pool" = String, Path, description = "Pool name"), ("name" = String, Path, description = "Server name")),
    request_body = StateChange,
    responses(
        (status = 204, description = "Set"),
        (status = 404, description = "No such pool or server"),
        (status = 422, description = "Not a state"),
    ), security(("session" = [])))]
pub(crate) async fn set_state(
    State(state): State<AppState>,
    user: AuthUser,
    Path((pool, name)): Path<(String, String)>,
    ApiJson(change): ApiJson<StateChange>,
) -> Result<StatusCode, ApiError> {
    let to = parse_state("state", &change.state)?;
    backends::set_state(&state, &user.name, &pool, &name, to).await?;
    Ok(StatusCode::NO_CONTENT)
}
