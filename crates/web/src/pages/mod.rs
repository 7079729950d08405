//! The server-rendered pages (maud templates, escaped by construction:
//! every `(value)` in a template is HTML-escaped) and the embedded
//! stylesheet (`web-ui/style.css`). No JavaScript is needed; forms post
//! with the session's CSRF token in a hidden `csrf` field, and a refused
//! field is shown next to its input.

mod backends;
mod dashboard;
mod layout;
mod login;
mod not_yet;

use crate::auth::{self, Access};
use crate::state::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

/// The stylesheet, embedded at build time.
const STYLE: &str = include_str!("../../../../web-ui/style.css");

/// Every page route with who may use it.
fn routes() -> Vec<(&'static str, Access, MethodRouter<AppState>)> {
    use Access::{Admin, Public, User};
    let mut routes = vec![
        ("/assets/style.css", Public, get(style)),
        (
            "/login",
            Public,
            get(login::login_page).post(login::login_form),
        ),
        (
            "/setup",
            Public,
            get(login::setup_page).post(login::setup_form),
        ),
        ("/logout", User, post(login::logout_form)),
        ("/", User, get(dashboard::page)),
        ("/backends", User, get(backends::page)),
        ("/backends/{pool}/servers", Admin, post(backends::add)),
        (
            "/backends/{pool}/servers/{name}",
            Admin,
            post(backends::edit),
        ),
        (
            "/backends/{pool}/servers/{name}/delete",
            Admin,
            post(backends::remove),
        ),
        (
            "/backends/{pool}/servers/{name}/state",
            Admin,
            post(backends::set_state),
        ),
    ];
    for item in layout::NAV.iter().filter(|n| !n.built) {
        routes.push((item.path, User, get(not_yet::page)));
    }
    routes
}

/// The pages' router, each route behind [`auth::guard`].
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, access, handler)| {
            let guard = axum::middleware::from_fn_with_state((state.clone(), access), auth::guard);
            router.route(path, handler.route_layer(guard))
        })
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
}
