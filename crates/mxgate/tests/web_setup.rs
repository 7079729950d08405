//! The guided first-boot setup, black-box against `mxgate run`: a box with
//! no admin and no listener, set up with its one-time code through the
//! setup page, goes on to the policy step; a refused answer (an address
//! without a port) gives 422 naming the row and changes nothing; an smtp
//! pattern with a sink as its backend makes the listener bind, and a
//! message sent to it reaches the sink.

mod support;

use serde_json::json;
use std::time::Duration;
use support::gateway::{Gateway, Sink, SmtpClient};
use support::{free_addr, poll, wait_port};

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "a good long password";

/// The box's setup code, read from its log.
fn setup_code(gw: &mut Gateway) -> String {
    let line = gw.proc.wait_for_line("setup code: ", WAIT);
    line.rsplit("setup code: ")
        .next()
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn the_guided_setup_builds_a_policy_that_relays_mail() {
    let sink = Sink::start("sink", false);
    let mut gw = Gateway::start_without_admin("guided", "");
    let code = setup_code(&mut gw);
    let mut c = gw.web_client();

    // Step 1 on the page: the admin; the box goes on to the policy step.
    let created = c.form(
        "/setup",
        &[
            ("code", &code),
            ("name", "root"),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
        ],
    );
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.header("location"), Some("/setup/policy"));
    assert_eq!(c.login("root", PASSWORD).status, 200);
    let step = c.get("/setup/policy");
    assert_eq!(step.status, 200, "{}", step.body);
    assert!(step.body.contains("href=\"/dns\""), "{}", step.body);

    // A backend address without a port: 422 naming the row, no change.
    let bad = c.json(
        "POST",
        "/api/v1/setup/policy",
        &json!({ "mode": "smtp", "servers": [{ "name": "mta1", "address": "127.0.0.1" }],
                 "relay_domains": ["example.test"], "bind": free_addr().to_string() }),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["field"], "servers[0].address");
    let csrf = c.csrf.clone().unwrap();
    let bad_form = c.form(
        "/setup/policy",
        &[
            ("csrf", &csrf),
            ("mode", "smtp"),
            ("servers[0].name", "mta1"),
            ("servers[0].address", "127.0.0.1"),
            ("relay_domains", "example.test"),
        ],
    );
    assert_eq!(bad_form.status, 422, "{}", bad_form.body);
    assert!(
        bad_form.body.contains("is not IP:port"),
        "{}",
        bad_form.body
    );
    assert_eq!(c.get("/api/v1/listeners").json(), json!([]));
    assert_eq!(c.get("/api/v1/pools").json(), json!([]));

    // The smtp pattern through the form: the listener binds, mail flows.
    let bind = free_addr();
    let done = c.form(
        "/setup/policy",
        &[
            ("csrf", &csrf),
            ("mode", "smtp"),
            ("servers[0].name", "mta1"),
            ("servers[0].address", &sink.addr.to_string()),
            ("servers[1].name", ""),
            ("servers[1].address", ""),
            ("relay_domains", "example.test"),
            ("bind", &bind.to_string()),
            ("send_proxy", "v2"),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some("/"));
    wait_port(bind, WAIT);
    gw.wait_metric("mxgate_backend_up{pool=\"mta\",server=\"mta1\"}", 1.0, WAIT);
    let mut smtp = SmtpClient::connect(bind).unwrap();
    smtp.reply().unwrap();
    smtp.command("EHLO client.test").unwrap();
    let queued = smtp
        .send_mail(
            "alice@client.test",
            "bob@example.test",
            "guided setup works",
        )
        .unwrap();
    assert!(queued.starts_with("250 "), "{queued}");
    let arrived = poll(WAIT, || {
        sink.messages()
            .into_iter()
            .find(|m| m.contains("guided setup works"))
    });
    assert!(arrived.is_some(), "{}", gw.proc.output());

    // Once there is a listener the step is gone, and the change is audited.
    assert_eq!(c.get("/setup/policy").header("location"), Some("/"));
    let again = c.json(
        "POST",
        "/api/v1/setup/policy",
        &json!({ "mode": "l4", "servers": [{ "name": "b", "address": "127.0.0.1:25" }] }),
    );
    assert_eq!(again.status, 409, "{}", again.body);
    let audit = c.get("/api/v1/audit").json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "setup.policy" && e["user"] == "root"),
        "{audit}"
    );
}
