//! The guided first policy (`POST /api/v1/setup/policy`, and the setup
//! page's second step): a few answers — mode, up to four backend servers,
//! relay domains, the listener's address, the PROXY version for l4 — turned
//! into a complete policy part (pool `mta`, round robin with health checks;
//! listener `mx`; the relay domains) and written through
//! [`crate::policy_edit`] (validated as a whole, audited as `setup.policy`).
//! Offered while the policy has no listener.

use super::ApiJson;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::policy_edit::{self, Target};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use mxgate_config::raw::{ListenerSection, PolicyFile, PoolSection};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;
use utoipa::ToSchema;

/// The pool the pattern creates.
pub(crate) const POOL: &str = "mta";
/// The listener the pattern creates.
pub(crate) const LISTENER: &str = "mx";
/// Backend rows offered.
pub(crate) const MAX_SERVERS: usize = 4;
/// The listener address offered.
pub(crate) const DEFAULT_BIND: &str = "0.0.0.0:25";

/// One backend mail server.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub(crate) struct PatternServer {
    /// 1 to 64 of `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// `IP:port`, e.g. `10.0.0.11:25`.
    pub address: String,
}

/// The answers of the guided form.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub(crate) struct PolicyPattern {
    /// `l4` (pass TCP through, with a PROXY header) or `smtp` (speak SMTP,
    /// filter, relay for the relay domains).
    pub mode: String,
    /// 1 to 4 backend servers.
    pub servers: Vec<PatternServer>,
    /// smtp mode: the recipient domains accepted (at least one).
    #[serde(default)]
    pub relay_domains: Vec<String>,
    /// `IP:port` to accept mail on (default `0.0.0.0:25`).
    #[serde(default)]
    pub bind: Option<String>,
    /// l4 mode: PROXY header to the backends, `none`, `v1` or `v2`
    /// (default `v2`).
    #[serde(default)]
    pub send_proxy: Option<String>,
}

/// Whether the guided step is still offered: the policy has no listener.
pub(crate) fn wanted(state: &AppState) -> bool {
    state.store().current().listeners.is_empty()
}

/// The validation key's field in the pattern's terms (`bind`,
/// `relay_domains`, `servers[1].address`, ...).
fn pattern_field(key: &str) -> String {
    if key.starts_with("relay.domains") {
        return "relay_domains".to_string();
    }
    if let Some(rest) = key.strip_prefix(&format!("listener[{LISTENER}].")) {
        return rest.to_string();
    }
    crate::error::field_of(key)
}

/// Checks the answers a policy validation cannot tie to a row, and builds
/// the pool and the listener.
fn build(p: &PolicyPattern) -> Result<(PoolSection, ListenerSection), ApiError> {
    let mode = match p.mode.as_str() {
        "l4" | "smtp" => p.mode.as_str(),
        other => {
            return Err(ApiError::invalid(
                "mode",
                format!("{other:?} is not a mode: l4 or smtp"),
            ))
        }
    };
    if p.servers.is_empty() || p.servers.len() > MAX_SERVERS {
        return Err(ApiError::invalid(
            "servers",
            format!("give 1 to {MAX_SERVERS} backend servers"),
        ));
    }
    for (i, s) in p.servers.iter().enumerate() {
        if s.address.trim().parse::<SocketAddr>().is_err() {
            return Err(ApiError::invalid(
                format!("servers[{i}].address"),
                format!("{:?} is not IP:port, e.g. 10.0.0.11:25", s.address),
            ));
        }
        if s.name.trim().is_empty() {
            return Err(ApiError::invalid(
                format!("servers[{i}].name"),
                "give the server a name, e.g. mta1",
            ));
        }
    }
    if mode == "smtp" && p.relay_domains.is_empty() {
        return Err(ApiError::invalid(
            "relay_domains",
            "smtp mode needs at least one relay domain, e.g. example.com",
        ));
    }
    let send_proxy = match (mode, p.send_proxy.as_deref()) {
        ("smtp", _) => "none",
        (_, None | Some("")) => "v2",
        (_, Some(v @ ("none" | "v1" | "v2"))) => v,
        (_, Some(other)) => {
            return Err(ApiError::invalid(
                "send_proxy",
                format!("{other:?} is not a PROXY version: none, v1 or v2"),
            ))
        }
    };
    let bind = p
        .bind
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .unwrap_or(DEFAULT_BIND);
    let servers: Vec<_> = p
        .servers
        .iter()
        .map(|s| json!({ "name": s.name.trim(), "address": s.address.trim() }))
        .collect();
    let pool = json!({ "name": POOL, "balance": "roundrobin", "check": {}, "server": servers });
    let listener = json!({ "name": LISTENER, "bind": bind, "mode": mode, "pool": POOL,
        "send_proxy": send_proxy });
    Ok((
        serde_json::from_value(pool).map_err(ApiError::internal)?,
        serde_json::from_value(listener).map_err(ApiError::internal)?,
    ))
}

/// Builds the policy part from `pattern` and writes it.
///
/// # Errors
/// 409 when the policy has a listener or a pool `mta` already; 422 naming
/// the field; nothing changes on error.
pub(crate) async fn apply(
    state: &AppState,
    user: &str,
    pattern: PolicyPattern,
) -> Result<(), ApiError> {
    let (pool, listener) = build(&pattern)?;
    let domains: Vec<String> = pattern
        .relay_domains
        .iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
    let target = Target {
        action: "setup.policy",
        name: LISTENER.to_string(),
        key_prefix: String::new(),
        field: pattern_field,
    };
    let detail = serde_json::to_value(&pattern).map_err(ApiError::internal)?;
    policy_edit::edit(state, user, target, detail, move |raw: &mut PolicyFile| {
        if !raw.listener.is_empty() {
            return Err(ApiError::conflict(
                "the policy has a listener already: change it on the Listeners page",
            ));
        }
        if raw.pool.iter().any(|p| p.name == POOL) {
            return Err(ApiError::conflict(
                "the policy has a pool called mta already: change it on the Backends page",
            ));
        }
        raw.pool.push(pool);
        raw.listener.push(listener);
        if !domains.is_empty() {
            raw.relay.domains = domains;
        }
        Ok(())
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/setup/policy", tag = "session", request_body = PolicyPattern,
    responses(
        (status = 201, description = "The pool `mta` and the listener `mx` are in the policy; the gateway binds at once"),
        (status = 409, description = "The policy has a listener or a pool `mta` already"),
        (status = 422, description = "A refused field (`mode`, `servers[i].address`, `relay_domains`, `bind`, `send_proxy`); nothing changed"),
    ), security(("session" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(pattern): ApiJson<PolicyPattern>,
) -> Result<StatusCode, ApiError> {
    apply(&state, &user.name, pattern).await?;
    Ok(StatusCode::CREATED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(mode: &str, address: &str) -> PolicyPattern {
        PolicyPattern {
            mode: mode.to_string(),
            servers: vec![PatternServer {
                name: "mta1".into(),
                address: address.into(),
            }],
            relay_domains: vec!["example.com".into()],
            ..PolicyPattern::default()
        }
    }

    #[test]
    fn an_l4_pattern_sends_proxy_v2_on_port_25() {
        let (pool, listener) = build(&pattern("l4", "10.0.0.11:25")).unwrap();
        assert_eq!(pool.server[0].address, "10.0.0.11:25");
        assert_eq!(listener.bind, DEFAULT_BIND);
        assert_eq!(serde_json::to_value(listener.send_proxy).unwrap(), "v2");
    }

    #[test]
    fn refusals_name_the_row() {
        let e = build(&pattern("smtp", "10.0.0.11")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("servers[0].address"));
        let e = build(&pattern("x", "10.0.0.11:25")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("mode"));
        assert_eq!(pattern_field("relay.domains[0]"), "relay_domains");
        assert_eq!(pattern_field("listener[mx].bind"), "bind");
    }
}
