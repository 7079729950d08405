//! The policy pages' API, black-box against `mxgate run`: a listener added
//! through the API binds, a block-list entry refuses the client, a
//! filtering change shows in `policy export`, refused input in every
//! section is a 422 naming the field and changes nothing, certificates are
//! checked before they are stored and listed with their days left, and
//! read-only users change nothing.

mod support;

use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::Duration;
use support::gateway::{l4_policy, Gateway, Sink, SmtpClient};
use support::sync::export;
use support::web::{add_user, admin, self_signed, WebClient};
use support::{free_addr, poll};

const WAIT: Duration = Duration::from_secs(20);

/// A gateway with pool `mta` over one sink and the l4 listener `mx`.
fn gateway(name: &str) -> (Gateway, Sink, std::net::SocketAddr) {
    let sink = Sink::start("sink1", false);
    let bind = free_addr();
    let policy = l4_policy(
        bind,
        &[("mta1".to_string(), sink.addr)],
        "interval_ms = 300, timeout_ms = 1000, fall = 1, rise = 1",
        "",
    );
    (Gateway::start(name, &policy), sink, bind)
}

/// Sends `body` and expects a 422 naming `field`, with the policy as it was.
fn refused(gw: &Gateway, c: &WebClient, method: &str, path: &str, body: &Value, field: &str) {
    let before = export(gw);
    let r = c.json(method, path, body);
    assert_eq!(r.status, 422, "{method} {path} {body}: {}", r.body);
    assert_eq!(r.json()["field"], field, "{method} {path}: {}", r.body);
    assert!(r.json()["reason"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(export(gw), before, "{method} {path} changed the policy");
}

#[test]
fn a_listener_added_through_the_api_binds_and_bad_input_changes_nothing() {
    let (gw, _sink, _) = gateway("listeners");
    let c = admin(&gw);
    let bind = free_addr();
    let r = c.json(
        "POST",
        "/api/v1/listeners",
        &json!({ "name": "mx2", "bind": bind.to_string(), "pool": "mta", "send_proxy": "none" }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let mut smtp = poll(WAIT, || SmtpClient::connect(bind).ok()).expect("mx2 accepts");
    let banner = smtp.reply().unwrap();
    assert!(banner.starts_with("220"), "the backend's banner: {banner}");
    let listed = poll(WAIT, || {
        let all = c.get("/api/v1/listeners").json();
        let mx2 = all.as_array()?.iter().find(|l| l["name"] == "mx2")?.clone();
        (mx2["status"] == "bound").then_some(mx2)
    })
    .expect("listed as bound");
    assert_eq!(listed["bind"], bind.to_string());
    assert!(export(&gw).contains(&format!("bind = \"{bind}\"")));

    refused(
        &gw,
        &c,
        "POST",
        "/api/v1/listeners",
        &json!({ "name": "mx3", "bind": "nonsense", "pool": "mta" }),
        "bind",
    );
    refused(
        &gw,
        &c,
        "POST",
        "/api/v1/listeners",
        &json!({ "name": "mx3", "bind": free_addr().to_string(), "pool": "nopool" }),
        "pool",
    );
    refused(
        &gw,
        &c,
        "PUT",
        "/api/v1/listeners/mx2",
        &json!({ "accept_proxy": true, "proxy_trusted": ["10.0.0.1/8"] }),
        "proxy_trusted[0]",
    );
    assert_eq!(
        c.json(
            "POST",
            "/api/v1/listeners",
            &json!({ "name": "mx2", "bind": free_addr().to_string(), "pool": "mta" })
        )
        .status,
        409
    );

    let r = c.json("DELETE", "/api/v1/listeners/mx2", &json!({}));
    assert_eq!(r.status, 204, "{}", r.body);
    poll(WAIT, || TcpStream::connect(bind).is_err().then_some(())).expect("mx2 closed");
    let audit = c.get("/api/v1/audit").body;
    assert!(
        audit.contains("listener.add") && audit.contains("listener.remove"),
        "{audit}"
    );

    let page = c.get("/listeners");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Add a listener") && page.body.contains(">mx<"),
        "{}",
        page.body
    );
}

#[test]
fn a_block_list_entry_from_the_api_refuses_the_client() {
    let (gw, _sink, bind) = gateway("blocklist");
    let c = admin(&gw);
    let entries = json!({ "entries": [{ "action": "block", "client": "127.0.0.0/8" }] });
    let r = c.json("PUT", "/api/v1/filtering/lists", &entries);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(c.get("/api/v1/filtering").json()["lists"], entries);
    let reply = poll(WAIT, || {
        let mut smtp = SmtpClient::connect(bind).ok()?;
        let reply = smtp.reply().ok()?;
        reply.starts_with("554").then_some(reply)
    })
    .expect("refused once the entry is applied");
    assert!(reply.starts_with("554 5.7.1"), "{reply}");
}

#[test]
fn filtering_changes_show_in_the_export_and_refused_input_changes_nothing() {
    let (gw, _sink, _) = gateway("filtering");
    let c = admin(&gw);
    let mut greylist = c.get("/api/v1/filtering").json()["greylist"].clone();
    greylist["delay_s"] = json!(120);
    let r = c.json("PUT", "/api/v1/filtering/greylist", &greylist);
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(export(&gw).contains("delay_s = 120"), "{}", export(&gw));

    let put = |section: &str| format!("/api/v1/filtering/{section}");
    refused(
        &gw,
        &c,
        "PUT",
        &put("relay"),
        &json!({ "domains": ["not a domain"] }),
        "domains[0]",
    );
    refused(
        &gw,
        &c,
        "PUT",
        &put("lists"),
        &json!({ "entries": [{ "action": "block", "client": "not-an-ip" }] }),
        "entries[0].client",
    );
    refused(
        &gw,
        &c,
        "PUT",
        &put("screen"),
        &json!({ "greet_action": "shout" }),
        "greet_action",
    );
    refused(
        &gw,
        &c,
        "PUT",
        &put("screen"),
        &json!({ "dnsbl": [{ "zone": "zen.example", "weight": 0 }] }),
        "dnsbl[0].weight",
    );
    refused(
        &gw,
        &c,
        "PUT",
        &put("greylist"),
        &json!({ "delay_s": 0 }),
        "delay_s",
    );
    refused(
        &gw,
        &c,
        "PUT",
        &put("rate_limits"),
        &json!({ "rules": [{ "key": "bogus", "connections": 3 }] }),
        "rules[0].key",
    );
    refused(
        &gw,
        &c,
        "PUT",
        &put("auth"),
        &json!({ "spf": "maybe" }),
        "spf",
    );
    refused(
        &gw,
        &c,
        "PUT",
        &put("greylist"),
        &json!({ "delay": 5 }),
        "body",
    );
    assert_eq!(c.json("PUT", &put("nope"), &json!({})).status, 404);
}

#[test]
fn certificates_are_checked_before_they_are_stored_and_listed_with_days_left() {
    let (gw, _sink, _) = gateway("certs");
    let c = admin(&gw);
    let (cert_pem, key_pem) = self_signed();
    let (_, other_key) = self_signed();
    for path in ["/api/v1/certificates/smtp", "/api/v1/web-certificate"] {
        let r = c.json(
            "PUT",
            path,
            &json!({ "cert_pem": cert_pem, "key_pem": other_key }),
        );
        assert_eq!(r.status, 422, "{path}: {}", r.body);
        assert_eq!(r.json()["field"], "key_pem", "{}", r.body);
    }
    let r = c.json(
        "PUT",
        "/api/v1/certificates/smtp",
        &json!({ "cert_pem": cert_pem, "key_pem": key_pem }),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        c.json(
            "PUT",
            "/api/v1/certificates/other",
            &json!({ "cert_pem": cert_pem, "key_pem": key_pem })
        )
        .status,
        404
    );

    let r = c.get("/api/v1/certificates");
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("PRIVATE KEY"), "keys are never shown");
    let all = r.json();
    let smtp = &all["store"][0];
    assert_eq!(smtp["name"], "smtp");
    assert_eq!(smtp["leaf"]["sans"], json!(["mx.example.test"]));
    assert!(smtp["leaf"]["days_left"].as_i64().unwrap() > 365, "{smtp}");
    assert!(
        all["web"]["leaf"]["days_left"].as_i64().unwrap() > 0,
        "{all}"
    );

    let r = c.json(
        "PUT",
        "/api/v1/web-certificate",
        &json!({ "cert_pem": cert_pem, "key_pem": key_pem }),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let written = std::fs::read_to_string(gw.data_dir().join("web").join("cert.pem")).unwrap();
    assert_eq!(written, cert_pem, "used from the next start");
}

#[test]
fn read_only_users_change_nothing_on_the_policy_routes() {
    let (gw, _sink, _) = gateway("readonly");
    add_user(&gw.data_dir(), "viewer", "readonly", "viewer password");
    let mut viewer = gw.web_client();
    assert_eq!(viewer.login("viewer", "viewer password").status, 200);
    let before = export(&gw);
    assert_eq!(
        viewer.get("/api/v1/filtering").status,
        200,
        "read-only users read"
    );
    for (method, path) in [
        ("POST", "/api/v1/listeners"),
        ("PUT", "/api/v1/listeners/mx"),
        ("DELETE", "/api/v1/listeners/mx"),
        ("PUT", "/api/v1/filtering/greylist"),
        ("PUT", "/api/v1/certificates/smtp"),
        ("PUT", "/api/v1/web-certificate"),
    ] {
        let r = viewer.json(method, path, &json!({}));
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
    }
    let csrf = viewer.csrf.clone().unwrap();
    let form = viewer.form("/listeners/mx/delete", &[("csrf", &csrf)]);
    assert_eq!(form.status, 403, "{}", form.body);
    assert_eq!(export(&gw), before);
}
