//! Authentication and authorisation for the web UI and API.
//!
//! - **Sessions**: a login draws a random 256-bit token, sent once as the
//!   cookie `mxgate_session` (`HttpOnly; Secure; SameSite=Strict;
//!   Path=/`); the store keeps only its SHA-256, with the user, a CSRF
//!   token and an idle expiry of [`IDLE_S`] that every request pushes
//!   forward ([`session`]).
//! - **CSRF**: every state-changing request (POST, PUT, PATCH, DELETE) on
//!   a guarded route carries the session's CSRF token as the
//!   `X-CSRF-Token` header or the `csrf` form field ([`guard`]).
//! - **Roles**: `admin` changes, `readonly` only reads ([`Access`]).
//! - **Login** ([`login`]): argon2id verification, rate-limited per
//!   client address and per user name ([`limiter`]), failures logged and
//!   counted.

pub mod limiter;
pub mod password;
pub mod setup_code;

use crate::error::ApiError;
use crate::state::{lock, AppState};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use mxgate_store::{Role, WebSession};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The session cookie's name.
pub const COOKIE: &str = "mxgate_session";
/// A session ends after this many seconds without a request.
pub const IDLE_S: i64 = 12 * 3600;
/// Largest form body read to find its `csrf` field.
const MAX_FORM: usize = 1 << 20;

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (login, setup, health).
    Public,
    /// Any logged-in user; a state-changing method still needs the CSRF
    /// token (logout).
    User,
    /// Admins only for state-changing methods (read-only users may read).
    Admin,
}

/// The logged-in user of a guarded request (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The session's CSRF token (the pages put it in their forms).
    pub csrf: String,
    /// SHA-256 of the session token (logout deletes it).
    pub(crate) token_hash: String,
}

/// The client's address (a request extension set by the HTTPS server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The client address of `req`, `0.0.0.0:0` when unknown (tests).
pub(crate) fn client_addr(extensions: &axum::http::Extensions) -> SocketAddr {
    extensions
        .get::<ClientAddr>()
        .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0)
}

/// True for methods that change state.
pub fn is_mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// SHA-256 hex of a session token, the key it is stored under.
pub(crate) fn token_hash(token: &str) -> String {
    password::hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// The session token in the request's cookies, if any.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Set-Cookie` value that starts a session.
pub(crate) fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/")
}

/// `Set-Cookie` value that ends one.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

/// The live session of a request (its expiry pushed forward), if any.
pub(crate) async fn session(state: &AppState, headers: &HeaderMap) -> Option<AuthUser> {
    let hash = token_hash(cookie_token(headers)?);
    let lookup = hash.clone();
    let found: Option<WebSession> = state
        .blocking(move |store| Ok(store.touch_web_session(&lookup, IDLE_S)?))
        .await
        .ok()
        .flatten();
    found.map(|s| AuthUser {
        name: s.user,
        role: s.role,
        csrf: s.csrf,
        token_hash: hash,
    })
}

/// The middleware of every non-public route: no session → 401 JSON for
/// `/api/*`, a redirect to `/login` for pages; a state-changing method
/// without the session's CSRF token → 403; a read-only user changing
/// anything on an [`Access::Admin`] route → 403. Puts [`AuthUser`] in the
/// request's extensions.
pub(crate) async fn guard(
    State((state, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let api = req.uri().path().starts_with("/api/");
    let Some(user) = session(&state, req.headers()).await else {
        return if api {
            ApiError::unauthenticated().into_response()
        } else {
            Redirect::to("/login").into_response()
        };
    };
    let mut req = req;
    if is_mutating(req.method()) {
        let (checked, ok) = carries_csrf(req, &user.csrf).await;
        if !ok {
            return ApiError::csrf().into_response();
        }
        req = checked;
        if access == Access::Admin && user.role != Role::Admin {
            return ApiError::forbidden().into_response();
        }
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}

/// Whether `req` carries `expected` as its `X-CSRF-Token` header or, for a
/// form, its `csrf` field; the request is handed back with its body intact.
async fn carries_csrf(req: Request, expected: &str) -> (Request, bool) {
    if let Some(v) = req.headers().get("x-csrf-token") {
        let ok = v.to_str().is_ok_and(|v| password::same_secret(v, expected));
        return (req, ok);
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return (req, false);
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return (Request::from_parts(parts, Body::empty()), false);
    };
    let ok = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == "csrf"))
        .is_some_and(|(_, v)| password::same_secret(&v, expected));
    (Request::from_parts(parts, Body::from(bytes)), ok)
}

/// A session just created by a login or the setup.
#[derive(Debug, Clone)]
pub(crate) struct NewSession {
    /// The cookie's token (never stored).
    pub token: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The user.
    pub user: String,
    /// Its role.
    pub role: Role,
}

/// Starts a session for `user` (after a login or the setup).
pub(crate) async fn start_session(
    state: &AppState,
    user: &str,
    role: Role,
) -> Result<NewSession, ApiError> {
    let (token, csrf) = (password::token(), password::token());
    let (hash, name, c) = (token_hash(&token), user.to_string(), csrf.clone());
    state
        .blocking(move |store| Ok(store.create_web_session(&hash, &name, &c, IDLE_S)?))
        .await?;
    Ok(NewSession {
        token,
        csrf,
        user: user.to_string(),
        role,
    })
}

/// Checks `name` and `password` from client `client`: 429 while the
/// address or the name is over the failure limit, 401 for a wrong name or
/// password (logged and counted), else a new session.
pub(crate) async fn login(
    state: &AppState,
    client: SocketAddr,
    name: &str,
    password: &str,
) -> Result<NewSession, ApiError> {
    let keys = [format!("ip:{}", client.ip()), format!("user:{name}")];
    if let Err(wait) = lock(&state.inner.limiter).check(&keys, Instant::now()) {
        state
            .inner
            .login_rate_limited
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(client = %client.ip(), user = name, "web: login refused: too many failures");
        return Err(ApiError::rate_limited(wait.as_secs() + 1));
    }
    let (n, p) = (name.to_string(), password.to_string());
    let role = state
        .blocking(move |store| {
            Ok(match store.user_credentials(&n)? {
                Some(c) if password::verify_password(&p, &c.password_hash) => Some(c.role),
                Some(_) => None,
                None => {
                    password::verify_nothing(&p);
                    None
                }
            })
        })
        .await?;
    let Some(role) = role else {
        lock(&state.inner.limiter).fail(&keys, Instant::now());
        state.inner.login_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(client = %client.ip(), user = name, "web: login failed: wrong name or password");
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        ));
    };
    lock(&state.inner.limiter).clear(&keys[1]);
    tracing::info!(client = %client.ip(), user = name, "web: login");
    start_session(state, name, role).await
}

/// Ends `user`'s session.
pub(crate) async fn logout(state: &AppState, user: &AuthUser) -> Result<(), ApiError> {
    let hash = user.token_hash.clone();
    state
        .blocking(move |store| Ok(store.delete_web_session(&hash)?))
        .await
}

/// Why a user name is refused, if it is: 1 to 64 of `A-Z a-z 0-9 . _ @ -`.
pub fn check_user_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    (!ok).then(|| "must be 1 to 64 of A-Z a-z 0-9 . _ @ -".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let token = "ab".repeat(32);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("theme=dark; {COOKIE}={token}; x=y")
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie_token(&h), Some(token.as_str()));
        h.insert(header::COOKIE, format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn the_cookie_is_http_only_secure_and_strict() {
        let c = session_cookie("t");
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(attr), "{c}");
        }
    }

    #[test]
    fn user_names_are_plain() {
        assert_eq!(check_user_name("ops.admin@site"), None);
        assert!(check_user_name("<b>").is_some());
        assert!(check_user_name("").is_some());
    }
}
