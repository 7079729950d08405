//! `POST /api/v1/login`, `POST /api/v1/logout`, `GET /api/v1/session` and
//! the first-boot `POST /api/v1/setup`.

use super::ApiJson;
use crate::auth::password::{check_password_rules, hash_password};
use crate::auth::{self, AuthUser, ClientAddr, NewSession};
use crate::error::ApiError;
use crate::state::{lock, AppState};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Instant;
use utoipa::ToSchema;

/// A login.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LoginRequest {
    /// User name.
    pub name: String,
    /// Password.
    pub password: String,
}

/// The first admin account, with the setup code printed at start.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SetupRequest {
    /// The one-time setup code (`XXXX-XXXX`).
    pub code: String,
    /// The admin's user name.
    pub name: String,
    /// The admin's password (at least 10 characters).
    pub password: String,
}

/// The logged-in user and the CSRF token to send with every change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionInfo {
    /// User name.
    pub user: String,
    /// `admin` or `readonly`.
    pub role: String,
    /// Send as `X-CSRF-Token` (or form field `csrf`) with every POST, PUT,
    /// PATCH and DELETE.
    pub csrf: String,
}

/// The session's JSON answer with its cookie.
fn started(session: &NewSession, status: StatusCode) -> Response {
    let body = SessionInfo {
        user: session.user.clone(),
        role: session.role.as_str().to_string(),
        csrf: session.csrf.clone(),
    };
    (
        status,
        [(header::SET_COOKIE, auth::session_cookie(&session.token))],
        Json(body),
    )
        .into_response()
}

#[utoipa::path(post, path = "/api/v1/login", tag = "session", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the session cookie is set", body = SessionInfo),
        (status = 401, description = "Wrong user name or password"),
        (status = 429, description = "Too many failed logins from this address or for this name; see Retry-After"),
    ), security(()))]
pub(crate) async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let session = auth::login(&state, client.0, &req.name, &req.password).await?;
    Ok(started(&session, StatusCode::OK))
}

#[utoipa::path(post, path = "/api/v1/logout", tag = "session",
    responses((status = 204, description = "Logged out; the cookie is cleared")),
    security(("session" = [])))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Response, ApiError> {
    auth::logout(&state, &user).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::clear_cookie())],
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, description = "Who is logged in", body = SessionInfo)),
    security(("session" = [])))]
pub(crate) async fn whoami(user: AuthUser) -> Json<SessionInfo> {
    Json(SessionInfo {
        user: user.name,
        role: user.role.as_str().to_string(),
        csrf: user.csrf,
    })
}

#[utoipa::path(post, path = "/api/v1/setup", tag = "session", request_body = SetupRequest,
    responses(
        (status = 201, description = "The admin is created and logged in", body = SessionInfo),
        (status = 403, description = "Wrong setup code"),
        (status = 409, description = "The box is set up already"),
        (status = 422, description = "A refused name or password"),
        (status = 429, description = "Too many wrong codes from this address"),
    ), security(()))]
pub(crate) async fn setup_handler(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<SetupRequest>,
) -> Result<Response, ApiError> {
    let session = setup(&state, client, req).await?;
    Ok(started(&session, StatusCode::CREATED))
}

/// First-boot setup (the API's and the page's): checks the one-time code
/// (rate-limited per address), the name and the password, creates the
/// first admin (only while none exists), retires the code, audits, logs in.
///
/// # Errors
/// 409 when an admin exists, 429 after too many wrong codes, 403 for a
/// wrong code, 422 for a refused name or password.
pub(crate) async fn setup(
    state: &AppState,
    client: ClientAddr,
    req: SetupRequest,
) -> Result<NewSession, ApiError> {
    if state.blocking(|store| Ok(store.has_admin()?)).await? {
        return Err(ApiError::conflict("this box is set up already: log in"));
    }
    let key = [format!("setup:{}", client.0.ip())];
    if let Err(wait) = lock(&state.inner.limiter).check(&key, Instant::now()) {
        return Err(ApiError::rate_limited(wait.as_secs() + 1));
    }
    let right = lock(&state.inner.setup)
        .as_ref()
        .is_some_and(|code| code.matches(&req.code));
    if !right {
        lock(&state.inner.limiter).fail(&key, Instant::now());
        tracing::warn!(client = %client.0.ip(), "web: setup refused: wrong setup code");
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            ..ApiError::invalid(
                "code",
                "wrong setup code: use the one printed on the console and in the log",
            )
        });
    }
    if let Some(reason) = auth::check_user_name(&req.name) {
        return Err(ApiError::invalid("name", reason));
    }
    if let Some(reason) = check_password_rules(&req.password) {
        return Err(ApiError::invalid("password", reason));
    }
    let name = req.name.clone();
    let created = state
        .blocking(move |store| {
            let hash = hash_password(&req.password);
            let created = store.create_first_admin(&req.name, &hash)?;
            if created {
                store.audit(&req.name, "setup", &req.name, &json!({ "role": "admin" }))?;
            }
            Ok(created)
        })
        .await?;
    if !created {
        return Err(ApiError::conflict("this box is set up already: log in"));
    }
    *lock(&state.inner.setup) = None;
    tracing::info!(user = %name, client = %client.0.ip(), "web: setup done: admin created");
    auth::start_session(state, &name, mxgate_store::Role::Admin).await
}
