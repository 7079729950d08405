//! The JSON API under `/api/v1`, built from one route table ([`routes`]):
//! each route's method, path, [`Access`] and handler. The router, the
//! guard on every route and the OpenAPI check (`openapi.rs`) all read that
//! table, so no route escapes authentication or the documentation.

mod audit;
pub(crate) mod certificates;
pub(crate) mod cluster;
pub(crate) mod diagnostics;
pub(crate) mod dns_helper;
pub(crate) mod filtering;
pub(crate) mod handover;
pub(crate) mod host;
pub(crate) mod listeners;
pub(crate) mod logs;
pub(crate) mod mta_sts;
mod openapi;
mod pools;
mod session;
pub(crate) mod setup_policy;
pub(crate) mod system;
pub(crate) mod users;

pub(crate) use session::{setup, SetupRequest};

use crate::auth::{self, Access, AuthUser, ClientAddr};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::Method;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;

/// One route of the API.
pub(crate) struct ApiRoute {
    /// HTTP method (the handler's; the tests compare it with the OpenAPI
    /// document and drive the guard with it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub method: Method,
    /// Path, with `{param}` segments (axum's and OpenAPI's syntax alike).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The handler.
    pub handler: MethodRouter<AppState>,
}

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> ApiRoute {
    ApiRoute {
        method,
        path,
        access,
        handler,
    }
}

/// Every API route.
pub(crate) fn routes() -> Vec<ApiRoute> {
    use Access::{Admin, Public, User};
    const SERVERS: &str = "/api/v1/pools/{pool}/servers";
    const SERVER: &str = "/api/v1/pools/{pool}/servers/{name}";
    vec![
        route(
            Method::GET,
            "/api/openapi.json",
            Public,
            get(openapi::document),
        ),
        route(
            Method::POST,
            "/api/v1/setup",
            Public,
            post(session::setup_handler),
        ),
        route(
            Method::POST,
            "/api/v1/setup/policy",
            Admin,
            post(setup_policy::create),
        ),
        route(Method::POST, "/api/v1/login", Public, post(session::login)),
        route(Method::POST, "/api/v1/logout", User, post(session::logout)),
        route(Method::GET, "/api/v1/session", User, get(session::whoami)),
        route(
            Method::GET,
            "/api/v1/status",
            User,
            get(crate::status::handler),
        ),
        route(
            Method::GET,
            "/api/v1/tracking",
            User,
            get(crate::tracking::search),
        ),
        route(
            Method::GET,
            "/api/v1/tracking/{id}",
            User,
            get(crate::tracking::session),
        ),
        route(Method::GET, "/api/v1/audit", User, get(audit::list)),
        route(Method::GET, "/api/v1/logs", User, get(logs::get_logs)),
        route(Method::GET, "/api/v1/users", User, get(users::list)),
        route(Method::POST, "/api/v1/users", Admin, post(users::create)),
        route(
            Method::DELETE,
            "/api/v1/users/{name}",
            Admin,
            delete(users::remove),
        ),
        route(Method::GET, "/api/v1/pools", User, get(pools::list)),
        route(Method::POST, SERVERS, Admin, post(pools::add)),
        route(Method::PUT, SERVER, Admin, put(pools::edit)),
        route(Method::DELETE, SERVER, Admin, delete(pools::remove)),
        route(
            Method::POST,
            "/api/v1/pools/{pool}/servers/{name}/state",
            Admin,
            post(pools::set_state),
        ),
        route(Method::GET, "/api/v1/listeners", User, get(listeners::list)),
        route(
            Method::POST,
            "/api/v1/listeners",
            Admin,
            post(listeners::create),
        ),
        route(
            Method::PUT,
            "/api/v1/listeners/{name}",
            Admin,
            put(listeners::change),
        ),
        route(
            Method::DELETE,
            "/api/v1/listeners/{name}",
            Admin,
            delete(listeners::delete),
        ),
        route(
            Method::GET,
            "/api/v1/filtering",
            User,
            get(filtering::get_all),
        ),
        route(
            Method::PUT,
            "/api/v1/filtering/{section}",
            Admin,
            put(filtering::put_section),
        ),
        route(
            Method::GET,
            "/api/v1/certificates",
            User,
            get(certificates::get_all),
        ),
        route(
            Method::PUT,
            "/api/v1/certificates/{name}",
            Admin,
            put(certificates::put_named),
        ),
        route(
            Method::PUT,
            "/api/v1/web-certificate",
            Admin,
            put(certificates::put_web_certificate),
        ),
        route(
            Method::POST,
            "/api/v1/diagnostics/mx",
            Admin,
            post(diagnostics::mx),
        ),
        route(
            Method::POST,
            "/api/v1/diagnostics/probe",
            Admin,
            post(diagnostics::probe),
        ),
        route(
            Method::POST,
            "/api/v1/diagnostics/test-message",
            Admin,
            post(diagnostics::test_message),
        ),
        route(
            Method::POST,
            "/api/v1/dns-helper",
            Admin,
            post(dns_helper::generate),
        ),
        route(Method::GET, "/api/v1/mta-sts", User, get(mta_sts::get)),
        route(Method::PUT, "/api/v1/mta-sts", Admin, put(mta_sts::put)),
        route(
            Method::GET,
            "/.well-known/mta-sts.txt",
            Public,
            get(mta_sts::well_known),
        ),
        route(Method::GET, "/api/v1/host", User, get(host::handler)),
        route(
            Method::GET,
            "/api/v1/history",
            User,
            get(crate::history::handler),
        ),
        route(
            Method::GET,
            "/api/v1/cluster",
            User,
            get(cluster::get_cluster),
        ),
        route(
            Method::POST,
            "/api/v1/cluster/pairing",
            Admin,
            post(cluster::post_pairing),
        ),
        route(
            Method::POST,
            "/api/v1/cluster/join",
            Admin,
            post(cluster::post_join),
        ),
        route(
            Method::POST,
            "/api/v1/cluster/handover",
            Admin,
            post(handover::post_handover),
        ),
        route(Method::GET, "/api/v1/system", User, get(system::get_system)),
        route(Method::GET, "/api/v1/policy", User, get(system::get_policy)),
        route(
            Method::PUT,
            "/api/v1/policy",
            Admin,
            put(system::put_policy),
        ),
        route(
            Method::POST,
            "/api/v1/session/password",
            User,
            post(system::post_password),
        ),
        route(
            Method::POST,
            "/api/v1/system/reboot",
            Admin,
            post(system::post_reboot),
        ),
    ]
}

/// The API router: every route of [`routes`] behind [`auth::guard`].
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    routes().into_iter().fold(Router::new(), |router, r| {
        let guard = axum::middleware::from_fn_with_state((state.clone(), r.access), auth::guard);
        router.route(r.path, r.handler.route_layer(guard))
    })
}

/// A JSON body whose refusal is a JSON 422 (`field` = `body`).
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|j| ApiJson(j.0))
            .map_err(|e| ApiError::invalid("body", e.body_text()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<AuthUser>()
            .cloned()
            .ok_or_else(ApiError::unauthenticated)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(auth::client_addr(&parts.extensions)))
    }
}
