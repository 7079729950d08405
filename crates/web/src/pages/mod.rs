//! The server-rendered pages (maud templates, escaped by construction:
//! every `(value)` in a template is HTML-escaped) and the embedded
//! stylesheet (`web-ui/style.css`). No JavaScript is needed; forms post
//! with the session's CSRF token in a hidden `csrf` field, and a refused
//! field is shown next to its input.

mod backends;
mod certificates;
mod chart;
mod cluster;
mod dashboard;
mod diagnostics;
mod dns_helper;
mod filtering;
mod form;
mod host;
mod layout;
mod listeners;
mod login;
mod logs;
mod not_yet;
mod setup;
mod system;
mod time;
mod tracking;

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
            "/listeners",
            Admin,
            get(listeners::page).post(listeners::add),
        ),
        ("/listeners/{name}", Admin, post(listeners::edit)),
        ("/listeners/{name}/delete", Admin, post(listeners::remove)),
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
        ("/setup/policy", Admin, get(setup::page).post(setup::submit)),
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
        ("/assets/dashboard.js", Public, get(dashboard_js)),
        ("/cluster", User, get(cluster::page)),
        ("/cluster/pairing", Admin, post(cluster::create_pairing)),
        ("/cluster/join", Admin, post(cluster::join)),
        ("/cluster/handover", Admin, post(cluster::handover)),
        ("/logs", User, get(logs::page)),
        ("/system", User, get(system::page)),
        ("/system/policy", Admin, post(system::restore)),
        ("/system/users", Admin, post(system::add_user)),
        (
            "/system/users/{name}/delete",
            Admin,
            post(system::remove_user),
        ),
        ("/system/password", User, post(system::password)),
        ("/system/reboot", Admin, post(system::reboot)),
        ("/diagnostics", User, get(diagnostics::page)),
        ("/diagnostics/mx", Admin, post(diagnostics::mx)),
        ("/diagnostics/probe", Admin, post(diagnostics::probe)),
        (
            "/diagnostics/test-message",
            Admin,
            post(diagnostics::test_message),
        ),
        ("/dns", User, get(dns_helper::page)),
        ("/dns/mta-sts", Admin, post(dns_helper::publish)),
        ("/filtering", User, get(filtering::page)),
        ("/filtering/{section}", Admin, post(filtering::post)),
        ("/tracking", User, get(tracking::page)),
        ("/tracking/{id}", User, get(tracking::detail)),
        ("/certificates", User, get(certificates::page)),
        ("/certificates/{name}", Admin, post(certificates::upload)),
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

/// The dashboard's live refresh, embedded at build time.
const DASHBOARD_JS: &str = include_str!("../../../../web-ui/dashboard.js");

async fn dashboard_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        DASHBOARD_JS,
    )
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
