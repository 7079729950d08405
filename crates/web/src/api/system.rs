//! The System API: `GET /api/v1/system` (node, firmware, uptime, whether
//! the box can reboot itself), the policy backup (`GET /api/v1/policy`, the
//! same TOML as `mxgate policy export`) and restore (`PUT /api/v1/policy`,
//! the same path as `mxgate policy import`: validated, all or nothing),
//! `POST /api/v1/session/password` (change one's own password) and
//! `POST /api/v1/system/reboot`. The System page calls the same functions;
//! every change is audited.

use crate::auth::password::{check_password_rules, hash_password, verify_password};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mxgate_config::Policy;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use utoipa::ToSchema;

/// The file whose presence marks the appliance image (the box may reboot
/// itself); elsewhere the service runs under someone else's init.
pub(crate) const APPLIANCE_MARKER: &str = "/etc/mxgate-appliance";
/// The answer to a reboot request off the appliance.
pub(crate) const NOT_AN_APPLIANCE: &str = "not an appliance: restart the service yourself";

/// This box.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SystemView {
    /// Node name from the node file.
    pub node: String,
    /// Firmware version.
    pub version: String,
    /// Git revision of the build, when known.
    pub git_revision: Option<String>,
    /// Seconds since the service started.
    pub uptime_s: u64,
    /// True on the appliance image: the reboot button works.
    pub appliance: bool,
}

/// A password change.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct PasswordChange {
    /// The current password.
    #[serde(default)]
    pub current: String,
    /// The new one (at least 10 characters).
    #[serde(default)]
    pub new: String,
}

/// This box now.
pub(crate) fn view(state: &AppState) -> SystemView {
    SystemView {
        node: state.inner.node.clone(),
        version: state.inner.version.clone(),
        git_revision: super::host::firmware(state).git_revision,
        uptime_s: state.inner.started.elapsed().as_secs(),
        appliance: Path::new(APPLIANCE_MARKER).exists(),
    }
}

/// The stored policy as TOML (what `mxgate policy export` prints).
///
/// # Errors
/// 500 when the store cannot be read.
pub(crate) async fn export(state: &AppState) -> Result<String, ApiError> {
    state.blocking(|store| Ok(store.policy()?.to_toml())).await
}

/// Replaces the shared policy with `text` (what `mxgate policy import`
/// does): all or nothing; audited.
///
/// # Errors
/// 422 naming the first refused key (its full path, e.g.
/// `pool[mta].server[mta1].weight`) and why; nothing changes.
pub(crate) async fn import(state: &AppState, user: &AuthUser, text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        // An empty file parses as a policy without pools or listeners: a
        // restore that would silently stop all mail is refused.
        return Err(ApiError::invalid(
            "policy",
            "the uploaded policy is empty; upload a file from `mxgate policy export`",
        ));
    }
    let policy = Policy::parse(text).map_err(|errors| match errors.0.first() {
        Some(e) => ApiError::invalid(&e.key, &e.message),
        None => ApiError::invalid("policy", "not valid"),
    })?;
    let user = user.name.clone();
    state
        .blocking(move |store| {
            store.replace_policy(&policy)?;
            let detail = json!({
                "pools": policy.pools.len(),
                "listeners": policy.listeners.len(),
                "relay_domains": policy.relay_domains.len(),
            });
            store.audit(&user, "policy.import", "policy", &detail)?;
            Ok(())
        })
        .await
}

/// Sets `user`'s password to `change.new` after checking `change.current`;
/// audited.
///
/// # Errors
/// 422 naming `current` (wrong) or `new` (too weak).
pub(crate) async fn change_password(
    state: &AppState,
    user: &AuthUser,
    change: PasswordChange,
) -> Result<(), ApiError> {
    if let Some(reason) = check_password_rules(&change.new) {
        return Err(ApiError::invalid("new", reason));
    }
    let name = user.name.clone();
    state
        .blocking(move |store| {
            let right = store
                .user_credentials(&name)?
                .is_some_and(|c| verify_password(&change.current, &c.password_hash));
            if !right {
                return Err(ApiError::invalid("current", "this is not your password"));
            }
            store.set_user_password(&name, &hash_password(&change.new))?;
            store.audit(&name, "user.password", &name, &json!({}))?;
            Ok(())
        })
        .await
}

/// Reboots the appliance (audited); elsewhere 409.
///
/// # Errors
/// 409 off the appliance, 500 when `reboot` cannot be started.
pub(crate) async fn reboot(state: &AppState, user: &AuthUser) -> Result<(), ApiError> {
    if !Path::new(APPLIANCE_MARKER).exists() {
        return Err(ApiError::conflict(NOT_AN_APPLIANCE));
    }
    let name = user.name.clone();
    state
        .blocking(move |store| Ok(store.audit(&name, "system.reboot", "system", &json!({}))?))
        .await?;
    tracing::warn!(user = %user.name, "web: reboot requested");
    std::process::Command::new("reboot")
        .spawn()
        .map_err(ApiError::internal)?;
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/system", tag = "system",
    responses((status = 200, description = "Node, firmware version and revision, uptime, appliance",
        body = SystemView)),
    security(("session" = [])))]
pub(crate) async fn get_system(State(state): State<AppState>) -> Json<SystemView> {
    Json(view(&state))
}

#[utoipa::path(get, path = "/api/v1/policy", tag = "system",
    responses((status = 200, description = "The shared policy as TOML (a backup; the same text as \
        `mxgate policy export`)", content_type = "application/toml")),
    security(("session" = [])))]
pub(crate) async fn get_policy(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = export(&state).await?;
    let file = format!("attachment; filename=\"{}-policy.toml\"", state.inner.node);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/toml; charset=utf-8".to_string(),
            ),
            (header::CONTENT_DISPOSITION, file),
        ],
        text,
    )
        .into_response())
}

#[utoipa::path(put, path = "/api/v1/policy", tag = "system",
    request_body(content = String, content_type = "application/toml",
        description = "A whole policy file (as `mxgate policy import` reads)"),
    responses(
        (status = 204, description = "Imported; the running gateway and the peer pick it up"),
        (status = 422, description = "A refused key: `{error, field, reason}` with the key's path; \
            the old policy is kept"),
    ), security(("session" = [])))]
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    user: AuthUser,
    body: String,
) -> Result<StatusCode, ApiError> {
    import(&state, &user, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/session/password", tag = "session",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 422, description = "`current` is wrong or `new` too weak; nothing changed"),
    ), security(("session" = [])))]
pub(crate) async fn post_password(
    State(state): State<AppState>,
    user: AuthUser,
    super::ApiJson(change): super::ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    change_password(&state, &user, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/system/reboot", tag = "system",
    responses(
        (status = 202, description = "Rebooting"),
        (status = 409, description = "Not the appliance image: restart the service yourself"),
    ), security(("session" = [])))]
pub(crate) async fn post_reboot(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    reboot(&state, &user).await?;
    Ok(StatusCode::ACCEPTED)
}
