//! The Logs page and `GET /api/v1/logs`, black-box against `mxgate run`: a
//! failed login the test makes shows up in the log lines a read-only user
//! can read, and `limit` bounds the answer.

mod support;

use std::time::Duration;
use support::gateway::Gateway;
use support::poll;
use support::web::add_user;

#[test]
fn a_failed_login_shows_up_in_the_logs() {
    let gw = Gateway::start("logs", "");
    add_user(
        &gw.data_dir(),
        "viewer",
        "readonly",
        "a long viewer password",
    );
    let mut intruder = gw.web_client();
    assert_eq!(intruder.login("mallory-7431", "wrong password").status, 401);

    let mut viewer = gw.web_client();
    assert_eq!(viewer.login("viewer", "a long viewer password").status, 200);
    let found = poll(Duration::from_secs(5), || {
        let r = viewer.get("/api/v1/logs?limit=1000");
        assert_eq!(r.status, 200, "{}", r.body);
        let lines = r.json()["lines"].as_array().cloned().unwrap_or_default();
        lines
            .iter()
            .filter_map(|l| l.as_str())
            .find(|l| l.contains("mallory-7431"))
            .map(str::to_string)
    });
    assert!(found.is_some(), "{}", viewer.get("/api/v1/logs").body);
    let two = viewer.get("/api/v1/logs?limit=2").json();
    assert_eq!(two["lines"].as_array().unwrap().len(), 2, "{two}");
    let page = viewer.get("/logs");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("mallory-7431"), "{}", page.body);
}
