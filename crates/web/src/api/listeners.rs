//! The listeners: `GET /api/v1/listeners` (settings from the stored policy,
//! bound or not from the running gateway), `POST` to add one, `PUT
//! /api/v1/listeners/{name}` to change some of its keys, `DELETE` to remove
//! it. A body holds the keys of a `[[listener]]` policy section (`name`,
//! `bind`, `mode`, `pool`, `send_proxy`, `accept_proxy`, `proxy_trusted`
//! and the rest, with the policy file's defaults). The changes go through
//! [`crate::policy_edit`]; the Listeners page calls the same functions.

use super::ApiJson;
use crate::auth::AuthUser;
use crate::error::{field_of, ApiError};
use crate::policy_edit::{self, Target};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use mxgate_config::raw::ListenerSection;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A listener as the API and the page show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ListenerView {
    /// Name.
    pub name: String,
    /// `IP:port` to accept on.
    pub bind: String,
    /// `l4` or `smtp`.
    pub mode: String,
    /// The pool sessions go to.
    pub pool: String,
    /// PROXY header to the backend: `none`, `v1`, `v2`.
    pub send_proxy: String,
    /// Reads a PROXY header from a trusted upstream first.
    pub accept_proxy: bool,
    /// Who may send that header.
    pub proxy_trusted: Vec<String>,
    /// `bound`, `not bound`, or `pending` until the running gateway has
    /// picked the listener up.
    pub status: String,
    /// The bound address.
    pub local_addr: Option<String>,
    /// Why it is not bound.
    pub error: Option<String>,
    /// Every key of the listener's policy section.
    #[schema(value_type = Object)]
    pub settings: ListenerSection,
}

/// The keys of a `[[listener]]` section (documentation of the body; more
/// keys of the section may be given, unknown ones are refused).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct ListenerBody {
    /// 1 to 64 of `A-Z a-z 0-9 . _ -` (POST only; PUT takes the path's).
    pub name: Option<String>,
    /// `IP:port`.
    pub bind: Option<String>,
    /// `l4` (default) or `smtp`.
    pub mode: Option<String>,
    /// A pool's name.
    pub pool: Option<String>,
    /// `none` (default), `v1` or `v2`.
    pub send_proxy: Option<String>,
    /// Read a PROXY header first (default false).
    pub accept_proxy: Option<bool>,
    /// Networks trusted to send it.
    pub proxy_trusted: Option<Vec<String>>,
}

fn text<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Every listener of the current policy with its state in the gateway.
pub(crate) fn views(state: &AppState) -> Vec<ListenerView> {
    let policy = state.store().current();
    let running = state.inner.gateway.listeners();
    policy
        .to_raw()
        .listener
        .into_iter()
        .map(|l| {
            let live = running.iter().find(|r| r.name == l.name);
            let status = match live {
                None => "pending",
                Some(r) if r.bound => "bound",
                Some(_) => "not bound",
            };
            ListenerView {
                name: l.name.clone(),
                bind: l.bind.clone(),
                mode: text(&l.mode),
                pool: l.pool.clone(),
                send_proxy: text(&l.send_proxy),
                accept_proxy: l.accept_proxy,
                proxy_trusted: l.proxy_trusted.clone(),
                status: status.to_string(),
                local_addr: live.and_then(|r| r.local_addr).map(|a| a.to_string()),
                error: live.and_then(|r| r.error.clone()),
                settings: l,
            }
        })
        .collect()
}

fn target(action: &'static str, name: &str) -> Target {
    Target {
        action,
        name: name.to_string(),
        key_prefix: format!("listener[{name}]"),
        field: field_of,
    }
}

/// A listener section from `fields` (the policy file's defaults filled).
fn section(fields: Map<String, Value>) -> Result<ListenerSection, ApiError> {
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::invalid("body", e.to_string()))
}

/// Adds a listener made of `fields`.
///
/// # Errors
/// 409 when the name is taken, 422 for a refused field.
pub(crate) async fn add(
    state: &AppState,
    user: &str,
    fields: Map<String, Value>,
) -> Result<(), ApiError> {
    let new = section(fields.clone())?;
    let name = new.name.clone();
    policy_edit::edit(
        state,
        user,
        target("listener.add", &name),
        Value::Object(fields),
        move |raw| {
            if raw.listener.iter().any(|l| l.name == new.name) {
                return Err(ApiError::conflict(format!(
                    "a listener is called {:?}",
                    new.name
                )));
            }
            raw.listener.push(new);
            Ok(())
        },
    )
    .await
}

/// Sets the keys in `fields` of listener `name`, keeping the others.
///
/// # Errors
/// 404 for an unknown listener, 422 for a refused field (a `name` other
/// than the path's: listeners are not renamed).
pub(crate) async fn edit(
    state: &AppState,
    user: &str,
    name: &str,
    fields: Map<String, Value>,
) -> Result<(), ApiError> {
    if fields.get("name").is_some_and(|n| n.as_str() != Some(name)) {
        return Err(ApiError::invalid(
            "name",
            "a listener cannot be renamed: remove it and add it under the new name",
        ));
    }
    let owned = name.to_string();
    policy_edit::edit(
        state,
        user,
        target("listener.edit", name),
        Value::Object(fields.clone()),
        move |raw| {
            let old = raw
                .listener
                .iter_mut()
                .find(|l| l.name == owned)
                .ok_or_else(|| ApiError::not_found(format!("no listener is called {owned:?}")))?;
            let Value::Object(mut merged) =
                serde_json::to_value(&*old).map_err(ApiError::internal)?
            else {
                return Err(ApiError::internal("a listener section is not an object"));
            };
            merged.extend(fields);
            *old = section(merged)?;
            Ok(())
        },
    )
    .await
}

/// Removes listener `name`.
///
/// # Errors
/// 404 for an unknown listener.
pub(crate) async fn remove(state: &AppState, user: &str, name: &str) -> Result<(), ApiError> {
    let owned = name.to_string();
    policy_edit::edit(
        state,
        user,
        target("listener.remove", name),
        Value::Object(Map::new()),
        move |raw| {
            let before = raw.listener.len();
            raw.listener.retain(|l| l.name != owned);
            if raw.listener.len() == before {
                return Err(ApiError::not_found(format!(
                    "no listener is called {owned:?}"
                )));
            }
            Ok(())
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/listeners", tag = "listeners",
    responses((status = 200, description = "Listeners with their settings and whether they are bound", body = [ListenerView])),
    security(("session" = [])))]
pub(crate) async fn list(State(state): State<AppState>) -> Json<Vec<ListenerView>> {
    Json(views(&state))
}

#[utoipa::path(post, path = "/api/v1/listeners", tag = "listeners", request_body = ListenerBody,
    responses(
        (status = 201, description = "Added; the running gateway binds it at once"),
        (status = 409, description = "A listener has that name"),
        (status = 422, description = "A refused field: `{error, field, reason}`; nothing changed"),
    ), security(("session" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(fields): ApiJson<Map<String, Value>>,
) -> Result<StatusCode, ApiError> {
    add(&state, &user.name, fields).await?;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(put, path = "/api/v1/listeners/{name}", tag = "listeners",
    params(("name" = String, Path, description = "Listener name")), request_body = ListenerBody,
    responses(
        (status = 204, description = "Changed (the keys given; the others are kept)"),
        (status = 404, description = "No such listener"),
        (status = 422, description = "A refused field; nothing changed"),
    ), security(("session" = [])))]
pub(crate) async fn change(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    ApiJson(fields): ApiJson<Map<String, Value>>,
) -> Result<StatusCode, ApiError> {
    edit(&state, &user.name, &name, fields).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/listeners/{name}", tag = "listeners",
    params(("name" = String, Path, description = "Listener name")),
    responses(
        (status = 204, description = "Removed; the gateway stops accepting on it"),
        (status = 404, description = "No such listener"),
    ), security(("session" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove(&state, &user.name, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
