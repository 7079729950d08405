//! The backends, one change at a time: add, edit, remove a pool's server
//! and set its state. The API and the Backends page both call these, so a
//! change is checked the same way whichever way it comes: the change is
//! applied to the stored policy, the whole policy is validated with the
//! same validation as a policy file (a refusal names the field and the
//! reason, and nothing changes), then written through the store's
//! single-row edits, which publish it to the running gateway. Each change
//! is written to the audit log with its user.

use crate::error::{field_of, ApiError};
use crate::state::AppState;
use mxgate_config::raw::{PolicyFile, ServerSection};
use mxgate_config::{Policy, ServerState};
use mxgate_store::Store;
use serde::Serialize;
use serde_json::json;

/// A server's settings as typed in (the name is the path's on edit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerInput {
    /// Name, unique in its pool.
    pub name: String,
    /// `IP:port`.
    pub address: String,
    /// 0..256.
    pub weight: u32,
    /// 0 = no cap.
    pub max_conn: u32,
    /// Administrative state.
    pub state: ServerState,
}

/// The state called `text` (`ready`, `drain`, `maint`).
///
/// # Errors
/// 422 naming `field`.
pub fn parse_state(field: &str, text: &str) -> Result<ServerState, ApiError> {
    match text {
        "ready" => Ok(ServerState::Ready),
        "drain" => Ok(ServerState::Drain),
        "maint" => Ok(ServerState::Maint),
        _ => Err(ApiError::invalid(
            field,
            format!("{text:?} is not a state: ready, drain or maint"),
        )),
    }
}

/// `value` as a `u32` field.
///
/// # Errors
/// 422 naming `field` when it is negative or too large.
pub fn u32_field(field: &str, value: i64) -> Result<u32, ApiError> {
    u32::try_from(value).map_err(|_| {
        ApiError::invalid(
            field,
            format!("{value} is out of range: must be 0..4294967295"),
        )
    })
}

/// The state's name as stored and shown.
pub fn state_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Ready => "ready",
        ServerState::Drain => "drain",
        ServerState::Maint => "maint",
    }
}

/// Adds `input` to `pool` (409 when the name is taken).
///
/// # Errors
/// 404 for an unknown pool, 409 for a taken name, 422 for a refused field.
pub async fn add(
    state: &AppState,
    user: &str,
    pool: &str,
    input: ServerInput,
) -> Result<(), ApiError> {
    let (pool_name, user) = (pool.to_string(), user.to_string());
    state
        .blocking(move |store| {
            let section = section_of(&input);
            let server = checked(store, &pool_name, &input.name, |raw_pool| {
                if raw_pool.iter().any(|s| s.name == input.name) {
                    return Err(ApiError::conflict(format!(
                        "pool {pool_name} already has a server called {:?}",
                        input.name
                    )));
                }
                raw_pool.push(section);
                Ok(())
            })?;
            store.upsert_server(&pool_name, &server)?;
            audit(store, &user, "server.add", &pool_name, &input)
        })
        .await
}

/// Sets the address, weight and cap of `pool`'s server `input.name`
/// (its state is kept).
///
/// # Errors
/// 404 for an unknown pool or server, 422 for a refused field.
pub async fn edit(
    state: &AppState,
    user: &str,
    pool: &str,
    input: ServerInput,
) -> Result<(), ApiError> {
    let (pool_name, user) = (pool.to_string(), user.to_string());
    state
        .blocking(move |store| {
            let mut kept = input.clone();
            let server = checked(store, &pool_name, &input.name, |raw_pool| {
                let old = find(raw_pool, &pool_name, &input.name)?;
                kept.state = old.state;
                *old = section_of(&kept);
                Ok(())
            })?;
            store.upsert_server(&pool_name, &server)?;
            audit(store, &user, "server.edit", &pool_name, &kept)
        })
        .await
}

/// Removes `pool`'s server `name`.
///
/// # Errors
/// 404 for an unknown pool or server.
pub async fn remove(state: &AppState, user: &str, pool: &str, name: &str) -> Result<(), ApiError> {
    let (pool, name, user) = (pool.to_string(), name.to_string(), user.to_string());
    state
        .blocking(move |store| {
            store.remove_server(&pool, &name)?;
            store.audit(
                &user,
                "server.remove",
                &format!("{pool}/{name}"),
                &json!({}),
            )?;
            Ok(())
        })
        .await
}

/// Sets the administrative state of `pool`'s server `name`.
///
/// # Errors
/// 404 for an unknown pool or server.
pub async fn set_state(
    state: &AppState,
    user: &str,
    pool: &str,
    name: &str,
    to: ServerState,
) -> Result<(), ApiError> {
    let (pool, name, user) = (pool.to_string(), name.to_string(), user.to_string());
    state
        .blocking(move |store| {
            store.set_server_state(&pool, &name, to)?;
            store.audit(
                &user,
                "server.state",
                &format!("{pool}/{name}"),
                &json!({ "state": state_name(to) }),
            )?;
            Ok(())
        })
        .await
}

fn section_of(input: &ServerInput) -> ServerSection {
    ServerSection {
        name: input.name.clone(),
        address: input.address.clone(),
        weight: input.weight,
        max_conn: input.max_conn,
        state: input.state,
    }
}

fn find<'a>(
    servers: &'a mut [ServerSection],
    pool: &str,
    name: &str,
) -> Result<&'a mut ServerSection, ApiError> {
    servers
        .iter_mut()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no server is called {pool}/{name}")))
}

/// Applies `change` to the servers of `pool` in the stored policy and
/// validates the result; the validated server `name`.
fn checked(
    store: &Store,
    pool: &str,
    name: &str,
    change: impl FnOnce(&mut Vec<ServerSection>) -> Result<(), ApiError>,
) -> Result<mxgate_config::Server, ApiError> {
    let mut raw: PolicyFile = store.policy()?.to_raw();
    let section = raw
        .pool
        .iter_mut()
        .find(|p| p.name == pool)
        .ok_or_else(|| ApiError::not_found(format!("no pool is called {pool:?}")))?;
    change(&mut section.server)?;
    let prefix = format!("pool[{pool}].server[{name}].");
    let policy = Policy::validate(raw)
        .map_err(|errors| crate::policy_edit::refusal(&errors, &prefix, field_of))?;
    policy
        .pools
        .iter()
        .find(|p| p.name == pool)
        .and_then(|p| p.servers.iter().find(|s| s.name == name))
        .cloned()
        .ok_or_else(|| ApiError::internal("the validated policy lost the server"))
}

fn audit(
    store: &Store,
    user: &str,
    action: &str,
    pool: &str,
    input: &ServerInput,
) -> Result<(), ApiError> {
    let detail = json!({
        "address": input.address,
        "weight": input.weight,
        "max_conn": input.max_conn,
        "state": state_name(input.state),
    });
    store.audit(user, action, &format!("{pool}/{}", input.name), &detail)?;
    Ok(())
}

/// A pool as the API and the Backends page show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PoolView {
    /// Pool name.
    pub name: String,
    /// Selection algorithm.
    pub balance: String,
    /// Servers in policy order.
    pub servers: Vec<ServerView>,
}

/// A server: its settings from the stored policy, its health from the
/// running pool.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServerView {
    /// Name in its pool.
    pub name: String,
    /// `IP:port`.
    pub address: String,
    /// 0..256.
    pub weight: u32,
    /// Session cap; 0 = none.
    pub max_conn: u32,
    /// `ready`, `drain` or `maint`.
    pub state: String,
    /// `up`, `down`, `unknown`, or `pending` until the running gateway has
    /// picked the server up.
    pub health: String,
    /// Sessions open now.
    pub active_sessions: u64,
    /// Sessions since the server was added.
    pub sessions_total: u64,
    /// The last health check (duration, error, banner, TLS and
    /// certificate expiry).
    #[schema(value_type = Option<Object>)]
    pub last_check: Option<mxgate_balance::CheckOutcome>,
}

/// Every pool of the current policy with its servers' health.
pub fn views(state: &AppState) -> Vec<PoolView> {
    let policy = state.store().current();
    let running = &state.inner.pools;
    policy
        .pools
        .iter()
        .map(|p| {
            let live = running.get(&p.name);
            PoolView {
                name: p.name.clone(),
                balance: serde_json::to_value(p.balance)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                servers: p
                    .servers
                    .iter()
                    .map(|s| {
                        let status = live.as_ref().and_then(|pool| {
                            pool.servers()
                                .iter()
                                .find(|r| r.name() == s.name)
                                .map(|r| r.status())
                        });
                        ServerView {
                            name: s.name.clone(),
                            address: s.address.to_string(),
                            weight: s.weight,
                            max_conn: s.max_conn,
                            state: state_name(s.state).to_string(),
                            health: status
                                .as_ref()
                                .map_or("pending", |st| st.health.as_str())
                                .to_string(),
                            active_sessions: status.as_ref().map_or(0, |st| st.active_sessions),
                            sessions_total: status.as_ref().map_or(0, |st| st.sessions_total),
                            last_check: status.and_then(|st| st.last_check),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}
