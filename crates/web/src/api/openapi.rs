//! `/api/openapi.json`: the OpenAPI 3.1 document of the API (utoipa),
//! built from the handlers' annotations. A test checks it against the route
//! table: every route documented with its method, nothing extra, and the
//! public routes (and only those) marked as needing no session.

use super::{
    audit, certificates, cluster, filtering, host, listeners, pools, session, system, users,
};
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API's document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mxgate API",
        description = "The JSON API of the mxgate web UI. Log in with POST /api/v1/login \
            (the session cookie is set; the answer holds the CSRF token), then send the \
            token as X-CSRF-Token with every POST, PUT, PATCH and DELETE. Refused input \
            gives 422 with {error, field, reason} and changes nothing."
    ),
    paths(
        document,
        session::setup_handler,
        crate::api::setup_policy::create,
        session::login,
        session::logout,
        session::whoami,
        crate::status::handler,
        crate::tracking::search,
        crate::tracking::session,
        audit::list,
        crate::api::logs::get_logs,
        users::list,
        users::create,
        users::remove,
        pools::list,
        pools::add,
        pools::edit,
        pools::remove,
        pools::set_state,
        listeners::list,
        listeners::create,
        listeners::change,
        listeners::delete,
        filtering::get_all,
        filtering::put_section,
        certificates::get_all,
        certificates::put_named,
        certificates::put_web_certificate,
        crate::api::diagnostics::mx,
        crate::api::diagnostics::probe,
        crate::api::diagnostics::test_message,
        crate::api::dns_helper::generate,
        crate::api::mta_sts::get,
        crate::api::mta_sts::put,
        crate::api::mta_sts::well_known,
        host::handler,
        crate::history::handler,
        cluster::get_cluster,
        cluster::post_pairing,
        cluster::post_join,
        crate::api::handover::post_handover,
        system::get_system,
        system::get_policy,
        system::put_policy,
        system::post_password,
        system::post_reboot,
    ),
    modifiers(&SessionCookie)
)]
pub(crate) struct ApiDoc;

/// Declares the `session` security scheme: the `mxgate_session` cookie.
struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::COOKIE))),
        );
    }
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "api",
    responses((status = 200, description = "This document")), security(()))]
pub(crate) async fn document() -> impl IntoResponse {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], text.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::routes;
    use crate::auth::Access;
    use std::collections::BTreeSet;

    fn documented() -> serde_json::Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc = documented();
        let mut in_doc = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                in_doc.insert((method.to_uppercase(), path.clone()));
            }
        }
        let in_router: BTreeSet<_> = routes()
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        assert_eq!(in_router, in_doc);
    }

    #[test]
    fn only_public_routes_are_documented_without_a_session() {
        let doc = documented();
        for r in routes() {
            let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
            let security = op["security"].to_string();
            let public = security == "[{}]";
            assert_eq!(
                public,
                r.access == Access::Public,
                "{} {}: {security}",
                r.method,
                r.path
            );
            if !public {
                assert_eq!(security, r#"[{"session":[]}]"#, "{} {}", r.method, r.path);
            }
        }
    }
}
