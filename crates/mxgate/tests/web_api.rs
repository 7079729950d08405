//! The web UI's security core and API, black-box against `mxgate run`:
//! HTTPS only (plain HTTP redirected), first-boot setup with the one-time
//! code, sessions, CSRF and roles on every mutating route of the OpenAPI
//! document, the login rate limit, the backends API writing through the
//! store to the running gateway, validation errors, the audit log and
//! escaping on the Backends page.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;
use support::gateway::{l4_policy, Gateway, Sink};
use support::sync::export;
use support::web::{add_user, admin, WebClient, ADMIN, ADMIN_PASSWORD};
use support::{free_addr, poll};

const WAIT: Duration = Duration::from_secs(20);
const SCRIPT: &str = "<script>alert(1)</script>";

/// A gateway with pool `mta` over one sink (`mta1`), health checked often.
fn gateway(name: &str) -> (Gateway, Sink) {
    let sink = Sink::start("sink1", false);
    let policy = l4_policy(
        free_addr(),
        &[("mta1".to_string(), sink.addr)],
        "interval_ms = 300, timeout_ms = 1000, fall = 1, rise = 1",
        "",
    );
    (Gateway::start(name, &policy), sink)
}

/// The example values of a path's parameters.
fn concrete(path: &str) -> String {
    path.replace("{pool}", "mta")
        .replace("{name}", "mta1")
        .replace("{id}", "1")
}

/// Every (method, path) of the OpenAPI document that changes state and
/// needs a session, read from the running box.
fn guarded_mutations(c: &WebClient) -> Vec<(String, String)> {
    let doc = c.get("/api/openapi.json").json();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            let public = op["security"] == json!([{}]);
            if ["post", "put", "patch", "delete"].contains(&method.as_str()) && !public {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn plain_http_is_redirected_and_https_answers_carry_the_security_headers() {
    let (gw, _sink) = gateway("redirect");
    let mut tcp = std::net::TcpStream::connect(gw.api).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "GET /backends?x=1 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        gw.api
    )
    .unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).unwrap();
    let r = support::web::parse_response(&raw).unwrap();
    assert_eq!(r.status, 301, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("https://{}/backends?x=1", gw.api).as_str())
    );

    let c = gw.web_client();
    let health = c.get("/healthz");
    assert_eq!((health.status, health.body.trim()), (200, "ok"));
    for name in [
        "strict-transport-security",
        "x-frame-options",
        "content-security-policy",
        "x-content-type-options",
        "referrer-policy",
    ] {
        assert!(
            health.header(name).is_some(),
            "{name} missing: {:?}",
            health.headers
        );
    }
    assert!(health
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    // Pages without a session lead to the login page; the API says 401.
    let page = c.get("/backends");
    assert_eq!(
        (page.status, page.header("location")),
        (303, Some("/login"))
    );
    let api = c.get("/api/v1/status");
    assert_eq!(api.status, 401);
    assert_eq!(api.json()["error"], "not logged in");
    // A login sets a strict, secure, HTTP-only cookie.
    let mut c = gw.web_client();
    let login = c.login(ADMIN, ADMIN_PASSWORD);
    let cookie = login.header("set-cookie").unwrap();
    for attr in [
        "mxgate_session=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert_eq!(c.get("/api/v1/session").json()["user"], ADMIN);
    assert_eq!(c.get("/api/v1/status").json()["node"], "redirect");
    let dash = c.get("/");
    assert_eq!(dash.status, 200);
    assert!(dash.body.contains("Dashboard") && dash.body.contains("redirect"));
    // Logout ends the session.
    assert_eq!(c.json("POST", "/api/v1/logout", &json!({})).status, 204);
    assert_eq!(c.get("/api/v1/session").status, 401);
}

#[test]
fn the_setup_code_creates_the_first_admin_once() {
    let sink = Sink::start("sink1", false);
    let policy = l4_policy(free_addr(), &[("mta1".to_string(), sink.addr)], "", "");
    let mut gw = Gateway::start_without_admin("setup", &policy);
    let line = gw.proc.wait_for_line("setup code: ", WAIT);
    let code = line
        .rsplit("setup code: ")
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(code.len(), 9, "{line}");
    let c = gw.web_client();
    // The login page sends an unconfigured box's users to the setup page.
    assert_eq!(c.get("/login").header("location"), Some("/setup"));
    assert_eq!(c.get("/setup").status, 200);

    let setup = |code: &str, password: &str| {
        c.json(
            "POST",
            "/api/v1/setup",
            &json!({ "code": code, "name": "root", "password": password }),
        )
    };
    let wrong = setup("AAAA-AAAA", "a good long password");
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert_eq!(wrong.json()["field"], "code");
    let short = setup(&code, "short");
    assert_eq!(
        (short.status, short.json()["field"].clone()),
        (422, json!("password"))
    );
    let done = setup(&code.to_lowercase(), "a good long password");
    assert_eq!(done.status, 201, "{}", done.body);
    assert!(done
        .header("set-cookie")
        .unwrap()
        .starts_with("mxgate_session="));
    assert_eq!(done.json()["role"], "admin");
    let again = setup(&code, "another long password");
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(c.get("/setup").header("location"), Some("/login"));

    let mut root = gw.web_client();
    assert_eq!(root.login("root", "a good long password").status, 200);
    let audit = root.get("/api/v1/audit").json();
    assert_eq!(audit[0]["action"], "setup");
    assert_eq!(audit[0]["user"], "root");
    drop(sink);
}

#[test]
fn every_mutating_route_needs_a_session_a_csrf_token_and_the_admin_role() {
    let (gw, _sink) = gateway("guards");
    let before = export(&gw);
    let anonymous = gw.web_client();
    let routes = guarded_mutations(&anonymous);
    assert!(routes.len() >= 7, "{routes:?}");
    let body = json!({ "name": "x1", "address": "127.0.0.1:2", "weight": 1, "max_conn": 0,
        "state": "drain", "role": "readonly", "password": "long enough password" });
    for (method, path) in &routes {
        let r = anonymous.json(method, &concrete(path), &body);
        assert_eq!(
            r.status, 401,
            "{method} {path} without a session: {}",
            r.body
        );
    }

    let mut no_csrf = admin(&gw);
    no_csrf.csrf = None;
    let mut wrong_csrf = admin(&gw);
    wrong_csrf.csrf = Some("0".repeat(64));
    for (method, path) in &routes {
        for c in [&no_csrf, &wrong_csrf] {
            let r = c.json(method, &concrete(path), &body);
            assert_eq!(
                r.status, 403,
                "{method} {path} without the CSRF token: {}",
                r.body
            );
            assert!(
                r.json()["error"].as_str().unwrap().contains("CSRF"),
                "{}",
                r.body
            );
        }
    }

    add_user(&gw.data_dir(), "viewer", "readonly", "viewer password");
    let mut viewer = gw.web_client();
    assert_eq!(viewer.login("viewer", "viewer password").status, 200);
    assert_eq!(
        viewer.get("/api/v1/pools").status,
        200,
        "read-only users read"
    );
    // Every user may log out and change their own password; nothing else.
    let own = ["/api/v1/logout", "/api/v1/session/password"];
    for (method, path) in routes.iter().filter(|(_, p)| !own.contains(&p.as_str())) {
        let r = viewer.json(method, &concrete(path), &body);
        assert_eq!(r.status, 403, "{method} {path} as read-only: {}", r.body);
    }
    // The pages' forms are guarded the same way.
    let form = viewer.form("/backends/mta/servers/mta1/state", &[("state", "drain")]);
    assert_eq!(form.status, 403);
    let csrf = viewer.csrf.clone().unwrap();
    let form = viewer.form(
        "/backends/mta/servers/mta1/state",
        &[("csrf", &csrf), ("state", "drain")],
    );
    assert_eq!(form.status, 403, "read-only with the token: {}", form.body);
    assert_eq!(export(&gw), before, "nothing changed");
}

#[test]
fn backends_are_added_edited_drained_and_removed_through_the_api() {
    let (gw, _sink) = gateway("backends");
    let sink2 = Sink::start("sink2", false);
    let c = admin(&gw);
    let added = c.json(
        "POST",
        "/api/v1/pools/mta/servers",
        &json!({ "name": "mta2", "address": sink2.addr.to_string(), "weight": 3 }),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    let pools = c.get("/api/v1/pools").json();
    let mta2 = &pools[0]["servers"][1];
    assert_eq!(
        (mta2["name"].clone(), mta2["weight"].clone()),
        (json!("mta2"), json!(3))
    );
    gw.wait_metric("mxgate_backend_up{pool=\"mta\",server=\"mta2\"}", 1.0, WAIT);
    let dup = c.json(
        "POST",
        "/api/v1/pools/mta/servers",
        &json!({ "name": "mta2", "address": sink2.addr.to_string() }),
    );
    assert_eq!(dup.status, 409);

    // Refused input: 422 naming the field and why; the policy is unchanged.
    let before = export(&gw);
    for (input, field) in [
        (json!({ "name": "mta3", "address": "nowhere" }), "address"),
        (
            json!({ "name": "mta3", "address": "127.0.0.1:25", "weight": 300 }),
            "weight",
        ),
        (json!({ "name": SCRIPT, "address": "127.0.0.1:25" }), "name"),
        (
            json!({ "name": "mta3", "address": "127.0.0.1:25", "state": "off" }),
            "state",
        ),
        (
            json!({ "name": "mta3", "address": "127.0.0.1:25", "max_conn": -1 }),
            "max_conn",
        ),
    ] {
        let r = c.json("POST", "/api/v1/pools/mta/servers", &input);
        assert_eq!(r.status, 422, "{input}: {}", r.body);
        let err = r.json();
        assert_eq!(err["field"], field, "{}", r.body);
        assert!(
            !err["reason"].as_str().unwrap_or("").is_empty(),
            "{}",
            r.body
        );
    }
    let bad_edit = c.json(
        "PUT",
        "/api/v1/pools/mta/servers/mta2",
        &json!({ "address": "127.0.0.1:0", "weight": 1, "max_conn": 0 }),
    );
    assert_eq!(
        (bad_edit.status, bad_edit.json()["field"].clone()),
        (422, json!("address"))
    );
    assert_eq!(export(&gw), before, "refused input changed nothing");
    assert_eq!(
        c.json(
            "POST",
            "/api/v1/pools/nope/servers",
            &json!({"name": "a", "address": "127.0.0.1:25"})
        )
        .status,
        404
    );

    let edit = c.json(
        "PUT",
        "/api/v1/pools/mta/servers/mta2",
        &json!({ "address": sink2.addr.to_string(), "weight": 7, "max_conn": 20 }),
    );
    assert_eq!(edit.status, 204, "{}", edit.body);
    let drain = c.json(
        "POST",
        "/api/v1/pools/mta/servers/mta2/state",
        &json!({ "state": "drain" }),
    );
    assert_eq!(drain.status, 204, "{}", drain.body);
    let server = |pools: &Value| pools[0]["servers"][1].clone();
    let now = server(&c.get("/api/v1/pools").json());
    assert_eq!(
        (
            now["weight"].clone(),
            now["max_conn"].clone(),
            now["state"].clone()
        ),
        (json!(7), json!(20), json!("drain"))
    );
    let status_has_drain = poll(WAIT, || {
        gw.status()
            .contains("\"admin_state\":\"drain\"")
            .then_some(())
    });
    assert!(
        status_has_drain.is_some(),
        "the running gateway has the change: {}",
        gw.status()
    );
    assert_eq!(
        c.send(
            "DELETE",
            "/api/v1/pools/mta/servers/mta2",
            &[("X-CSRF-Token", c.csrf.as_deref().unwrap())],
            None
        )
        .status,
        204
    );
    assert_eq!(
        c.get("/api/v1/pools").json()[0]["servers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(export(&gw).contains("mta1") && !export(&gw).contains("mta2"));

    let audit = c.get("/api/v1/audit").json();
    let trail: Vec<(String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap().to_string();
            (field("user"), field("action"), field("target"))
        })
        .filter(|(_, action, _): &(String, String, String)| action.starts_with("server."))
        .collect();
    let expected: Vec<(String, String, String)> =
        ["server.add", "server.edit", "server.state", "server.remove"]
            .iter()
            .map(|a| (ADMIN.to_string(), a.to_string(), "mta/mta2".to_string()))
            .collect();
    assert_eq!(trail, expected);
    assert_eq!(audit[1]["detail"]["state"], "drain");
}

#[test]
fn the_backends_page_escapes_what_backends_and_users_typed() {
    // A backend whose banner (shown as the last check) carries markup.
    let evil_addr = free_addr();
    let _evil = support::Proc::spawn(
        "evil",
        support::mxgate(&[
            "sink",
            "--listen",
            &evil_addr.to_string(),
            "--hostname",
            SCRIPT,
        ]),
    );
    support::wait_port(evil_addr, Duration::from_secs(10));
    let policy = l4_policy(
        free_addr(),
        &[("mta1".to_string(), evil_addr)],
        "interval_ms = 300, timeout_ms = 1000, fall = 1, rise = 1",
        "",
    );
    let gw = Gateway::start("escape", &policy);
    gw.wait_metric("mxgate_backend_up{pool=\"mta\",server=\"mta1\"}", 1.0, WAIT);
    let c = admin(&gw);
    let page = c.get("/backends");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(SCRIPT), "{}", page.body);
    // A refused name comes back escaped next to its field.
    let csrf = c.csrf.clone().unwrap();
    let refused = c.form(
        "/backends/mta/servers",
        &[
            ("csrf", &csrf),
            ("name", SCRIPT),
            ("address", "127.0.0.1:25"),
            ("weight", "1"),
            ("max_conn", "0"),
        ],
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("class=\"error\""), "{}", refused.body);
    assert!(refused.body.contains("&lt;script&gt;"), "{}", refused.body);
    assert!(!refused.body.contains(SCRIPT), "{}", refused.body);
    // A good form adds the server and goes back to the page.
    let added = c.form(
        "/backends/mta/servers",
        &[
            ("csrf", &csrf),
            ("name", "mta9"),
            ("address", "127.0.0.1:2599"),
            ("weight", "2"),
            ("max_conn", ""),
        ],
    );
    assert_eq!(
        (added.status, added.header("location")),
        (303, Some("/backends"))
    );
    assert!(c.get("/backends").body.contains("127.0.0.1:2599"));
}

#[test]
fn failed_logins_are_rate_limited_and_counted() {
    let (gw, _sink) = gateway("ratelimit");
    let mut c = gw.web_client();
    for i in 0..5 {
        let r = c.login(ADMIN, "wrong password");
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
    }
    let limited = c.login(ADMIN, ADMIN_PASSWORD);
    assert_eq!(limited.status, 429, "{}", limited.body);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=301).contains(&retry), "{retry}");
    let metric = |reason: &str| {
        gw.metric(&format!(
            "mxgate_web_login_failures_total{{reason=\"{reason}\"}}"
        ))
    };
    assert_eq!(metric("credentials"), Some(5.0));
    assert_eq!(metric("rate_limited"), Some(1.0));
    assert!(
        gw.proc.output().contains("login failed"),
        "{}",
        gw.proc.output()
    );
}
