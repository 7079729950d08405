//! Router-level tests of the guard, driven through the route table: every
//! route that changes state refuses a request without a session (401),
//! without the CSRF token (403) and from a read-only user (403), and the
//! pages escape what users typed.

use crate::api::routes;
use crate::auth::password::hash_password;
use crate::auth::{is_mutating, Access};
use crate::{web_router, AppState};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use mxgate_balance::Pools;
use mxgate_config::Policy;
use mxgate_gateway::Gateway;
use mxgate_store::{Role, Store};
use std::sync::Arc;
use tower::ServiceExt;

const POLICY: &str =
    "[[pool]]\nname = \"mta\"\n[[pool.server]]\nname = \"mta1\"\naddress = \"127.0.0.1:2\"\n";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    router: Router,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store
        .replace_policy(&Policy::parse(POLICY).unwrap())
        .unwrap();
    for (name, role) in [("admin", Role::Admin), ("viewer", Role::Readonly)] {
        store
            .create_user(name, role, &hash_password("long enough password"))
            .unwrap();
    }
    let pools = Pools::new();
    let gateway = Gateway::new(Arc::clone(&pools), "test", 1).unwrap();
    let state = AppState::new("test", "0", gateway, pools, Arc::clone(&store));
    Fixture {
        _dir: dir,
        store,
        router: web_router(state),
    }
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = router.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Logs `name` in; its cookie header value and CSRF token.
async fn login(router: &Router, name: &str) -> (String, String) {
    let req = Request::post("/api/v1/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!(
            r#"{{"name":"{name}","password":"long enough password"}}"#
        )))
        .unwrap();
    let (status, headers, body) = send(router, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let csrf = serde_json::from_str::<serde_json::Value>(&body).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    (cookie, csrf)
}

fn request(
    method: &axum::http::Method,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
) -> Request<Body> {
    let path = path
        .replace("{pool}", "mta")
        .replace("{name}", "mta1")
        .replace("{id}", "1");
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    if let Some(t) = csrf {
        b = b.header("x-csrf-token", t);
    }
    b.body(Body::from(r#"{"state":"drain","address":"127.0.0.1:3","weight":1,"max_conn":0,"name":"x","role":"readonly","password":"long enough password"}"#))
        .unwrap()
}

#[tokio::test]
async fn every_guarded_change_needs_a_session_the_csrf_token_and_the_admin_role() {
    let f = fixture();
    let (admin_cookie, _) = login(&f.router, "admin").await;
    let (viewer_cookie, viewer_csrf) = login(&f.router, "viewer").await;
    let before = f.store.policy().unwrap();
    let guarded: Vec<_> = routes()
        .into_iter()
        .filter(|r| r.access != Access::Public && is_mutating(&r.method))
        .collect();
    assert!(guarded.len() >= 7);
    for r in &guarded {
        let what = format!("{} {}", r.method, r.path);
        let (status, _, body) = send(&f.router, request(&r.method, r.path, None, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        let (status, _, body) = send(
            &f.router,
            request(&r.method, r.path, Some(&admin_cookie), None),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what} without CSRF: {body}");
        if r.access == Access::Admin {
            let req = request(&r.method, r.path, Some(&viewer_cookie), Some(&viewer_csrf));
            let (status, _, body) = send(&f.router, req).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{what} read-only: {body}");
        }
    }
    assert_eq!(f.store.policy().unwrap(), before);
    assert!(f.store.audit_log(10).unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_form_value_is_shown_escaped_next_to_its_field() {
    let f = fixture();
    let (cookie, csrf) = login(&f.router, "admin").await;
    let req = Request::post("/backends/mta/servers")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "csrf={csrf}&name=%3Cscript%3Ealert(1)%3C%2Fscript%3E&address=127.0.0.1%3A25&weight=1&max_conn=0"
        )))
        .unwrap();
    let (status, _, body) = send(&f.router, req).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
    assert!(!body.contains("<script>"), "{body}");
    assert!(body.contains(r#"aria-invalid="true""#), "{body}");
}
