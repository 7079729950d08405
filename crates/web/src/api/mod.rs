//! The JSON API under `/api/v1`, built from one route table ([`routes`]):
//! each route's method, path, [`Access`] and handler. The router, the
//! guard on every route and the OpenAPI check (`openapi.rs`) all read that
//! table, so no route escapes authentication or the documentation.

mod audit;
mod openapi;
mod pools;
mod session;
mod users;

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
