//! The Diagnostics page, the DNS helper page and MTA-STS serving,
//! black-box against `mxgate run` with a loopback DNS server
//! (`mxgate_testkit`) and a sink behind an smtp-mode listener: the MX
//! look-up with sorted priorities (JSON and page), a STARTTLS probe of the
//! box's own listener, a test message that reaches the sink and is linked
//! to its tracking record, the exact MX lines of both modes (API and the
//! page's GET form), the policy at
//! `/.well-known/mta-sts.txt` without a session, and the roles.

mod support;

use mxgate_testkit::DnsServer;
use serde_json::{json, Value};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use support::free_addr;
use support::gateway::{smtp_policy, Gateway, Sink};
use support::web::{add_user, WebClient, ADMIN, ADMIN_PASSWORD};

/// An smtp-mode gateway `gw` (listener hostname mx.gw.test, relay domain
/// example.test) asking `dns`, relaying to a sink, once the sink is up.
fn start(dns: &DnsServer) -> (Gateway, Sink, SocketAddr) {
    let sink = Sink::start("sink", false);
    let bind = free_addr();
    let extra = format!("[dns]\nservers = [\"{}\"]\n", dns.addr());
    let gw = Gateway::start_with_node_extra("gw", &smtp_policy(bind, sink.addr, ""), &extra);
    gw.wait_metric(
        "mxgate_backend_up{pool=\"mta\",server=\"mta1\"}",
        1.0,
        Duration::from_secs(20),
    );
    (gw, sink, bind)
}

fn login(gw: &Gateway, name: &str, password: &str) -> WebClient {
    let mut c = gw.web_client();
    let r = c.login(name, password);
    assert_eq!(r.status, 200, "{}", r.body);
    c
}

fn csrf(c: &WebClient) -> String {
    c.csrf.clone().expect("logged in")
}

/// `path?k=v&...`, percent-encoded.
fn query(path: &str, fields: &[(&str, &str)]) -> String {
    let encode = |t: &str| -> String {
        t.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let pairs: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// The positions of `needles` in `text`, asserting each is there.
fn positions(text: &str, needles: &[&str]) -> Vec<usize> {
    needles
        .iter()
        .map(|n| {
            text.find(n)
                .unwrap_or_else(|| panic!("{n:?} missing in:\n{text}"))
        })
        .collect()
}

#[test]
fn mx_look_up_lists_the_hosts_by_preference_in_the_json_and_on_the_page() {
    let dns = DnsServer::start();
    dns.add_mx("example.test", 20, "mx2.example.test", 600);
    dns.add_mx("example.test", 10, "mx1.example.test", 600);
    dns.add_mx("example.test", 30, "mx3.example.test", 600);
    dns.add_a("mx1.example.test", Ipv4Addr::new(192, 0, 2, 1), 300);
    dns.add_aaaa(
        "mx1.example.test",
        "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        300,
    );
    dns.add_a("mx2.example.test", Ipv4Addr::new(192, 0, 2, 2), 300);
    let (gw, _sink, _bind) = start(&dns);
    let c = login(&gw, ADMIN, ADMIN_PASSWORD);

    let r = c.json(
        "POST",
        "/api/v1/diagnostics/mx",
        &json!({ "domain": "Example.TEST" }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    assert_eq!(report["domain"], "example.test");
    assert_eq!(report["outcome"]["kind"], "records");
    let hosts = report["hosts"].as_array().unwrap();
    let order: Vec<(u64, &str)> = hosts
        .iter()
        .map(|h| {
            (
                h["preference"].as_u64().unwrap(),
                h["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (10, "mx1.example.test"),
            (20, "mx2.example.test"),
            (30, "mx3.example.test")
        ]
    );
    assert_eq!(hosts[0]["ipv4"], json!(["192.0.2.1"]));
    assert_eq!(hosts[0]["ipv6"], json!(["2001:db8::1"]));
    assert!(hosts[2]["error"].is_string(), "{}", r.body);
    assert!(report["millis"].as_f64().unwrap() > 0.0);

    let page = c.form(
        "/diagnostics/mx",
        &[("csrf", &csrf(&c)), ("domain", "example.test")],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let at = positions(
        &page.body,
        &["mx1.example.test", "mx2.example.test", "mx3.example.test"],
    );
    assert!(at[0] < at[1] && at[1] < at[2], "{}", page.body);
    assert!(page.body.contains("192.0.2.1") && page.body.contains("2001:db8::1"));

    // Bounded input: a field and a reason, on the API and on the page.
    let bad = c.json(
        "POST",
        "/api/v1/diagnostics/mx",
        &json!({ "domain": "a b" }),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["field"], "domain");
    let page = c.form("/diagnostics/mx", &[("csrf", &csrf(&c)), ("domain", "a b")]);
    assert_eq!(page.status, 422);
    assert!(page.body.contains("is not a domain name"), "{}", page.body);
}

#[test]
fn probe_and_test_message_through_the_boxs_own_smtp_listener() {
    let dns = DnsServer::start();
    dns.add_a("mx.gw.test", Ipv4Addr::LOCALHOST, 300);
    let (gw, sink, bind) = start(&dns);
    let c = login(&gw, ADMIN, ADMIN_PASSWORD);

    // The probe resolves the name with the node's resolver, times the
    // banner and shows the STARTTLS certificate (the box's self-signed one).
    let r = c.json(
        "POST",
        "/api/v1/diagnostics/probe",
        &json!({ "host": "mx.gw.test", "port": bind.port() }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let p = r.json();
    assert_eq!(p["error"], Value::Null, "{}", r.body);
    assert_eq!(p["addr"], bind.to_string());
    assert!(p["banner_millis"].as_f64().is_some(), "{}", r.body);
    assert!(p["banner"]["lines"][0]
        .as_str()
        .unwrap()
        .starts_with("mx.gw.test"));
    assert_eq!(p["starttls_offered"], true);
    assert_eq!(p["tls"]["certificate"]["subject"], "CN=gw", "{}", r.body);
    assert_eq!(p["tls"]["certificate"]["self_signed"], true);
    assert_eq!(p["tls"]["verification"]["trusted"], false);
    let steps: Vec<&str> = p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(steps.len() >= 5, "{steps:?}");

    let page = c.form(
        "/diagnostics/probe",
        &[
            ("csrf", &csrf(&c)),
            ("host", "127.0.0.1"),
            ("port", &bind.port().to_string()),
            ("server_name", "mx.gw.test"),
        ],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    for text in ["Banner time", "CN=gw", "self-signed", "TLS handshake"] {
        assert!(page.body.contains(text), "{text:?} missing:\n{}", page.body);
    }
    for (body, field) in [
        (json!({ "host": "127.0.0.1", "port": 70000 }), "port"),
        (json!({ "host": "127.0.0.1", "port": 0 }), "port"),
        (json!({ "host": "127.0.0.1", "timeout_s": 11 }), "timeout_s"),
        (json!({ "host": "no such host!" }), "host"),
        (json!({ "host": "missing.gw.test" }), "host"),
    ] {
        let bad = c.json("POST", "/api/v1/diagnostics/probe", &body);
        assert_eq!(
            (bad.status, bad.json()["field"].clone()),
            (422, json!(field)),
            "{body}"
        );
    }

    // The test message goes to the first listener by default and lands
    // in the sink; the reply and the queue id are shown, and the tracking
    // record is linked.
    let r = c.json(
        "POST",
        "/api/v1/diagnostics/test-message",
        &json!({ "to": "user@example.test", "from": "probe@client.test" }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert_eq!(t["addr"], bind.to_string());
    assert_eq!(t["accepted"], true, "{}", r.body);
    let queue_id = t["queue_id"].as_str().expect("a queue id").to_string();
    assert!(t["final_reply"]["lines"][0]
        .as_str()
        .unwrap()
        .contains(&queue_id));
    let message_id = t["message_id"].as_str().unwrap();
    let landed = sink.messages();
    assert_eq!(landed.len(), 1);
    assert!(landed[0].contains(message_id), "{}", landed[0]);
    let tracked = t["tracking_url"].as_str().expect("tracked").to_string();
    let record = c.get(&tracked);
    assert_eq!(record.status, 200, "{}", record.body);
    assert!(record.body.contains("user@example.test"), "{}", record.body);

    let page = c.form(
        "/diagnostics/test-message",
        &[
            ("csrf", &csrf(&c)),
            ("to", "other@example.test"),
            ("from", ""),
            ("address", &bind.to_string()),
        ],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    for text in ["accepted", "Ok: queued as", "/api/v1/tracking/"] {
        assert!(page.body.contains(text), "{text:?} missing:\n{}", page.body);
    }
    assert_eq!(sink.messages().len(), 2);
    let bad = c.json(
        "POST",
        "/api/v1/diagnostics/test-message",
        &json!({ "to": "not an address" }),
    );
    assert_eq!(
        (bad.status, bad.json()["field"].clone()),
        (422, json!("to"))
    );
}

#[test]
fn dns_helper_gives_the_exact_mx_lines_of_both_modes() {
    let dns = DnsServer::start();
    let (gw, _sink, _bind) = start(&dns);
    let c = login(&gw, ADMIN, ADMIN_PASSWORD);
    let passive = c.json(
        "POST",
        "/api/v1/dns-helper",
        &json!({ "domain": "example.com", "mode": "active-passive",
                 "hosts": [{ "name": "mx.example.com", "addresses": ["192.0.2.25"] }],
                 "mta_sts_mode": "enforce", "max_age": 1209600, "mta_sts_id": "20260101" }),
    );
    assert_eq!(passive.status, 200, "{}", passive.body);
    let zone = passive.json()["zone"]["zone_text"]
        .as_str()
        .unwrap()
        .to_string();
    let mx: Vec<&str> = zone.lines().filter(|l| l.contains(" IN MX ")).collect();
    assert_eq!(mx, ["example.com. 3600 IN MX 10 mx.example.com."]);
    assert!(zone.contains("_mta-sts.example.com. 300 IN TXT \"v=STSv1; id=20260101\""));
    assert_eq!(
        passive.json()["mta_sts_policy"],
        "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 1209600\r\n"
    );

    let active = c.json(
        "POST",
        "/api/v1/dns-helper",
        &json!({ "domain": "example.com", "mode": "active-active",
                 "hosts": [{ "name": "mx1.example.com", "addresses": ["192.0.2.11"] },
                           { "name": "mx2.example.com", "addresses": ["192.0.2.12"] }] }),
    );
    assert_eq!(active.status, 200, "{}", active.body);
    let report = active.json();
    let zone = report["zone"]["zone_text"].as_str().unwrap();
    let mx: Vec<&str> = zone.lines().filter(|l| l.contains(" IN MX ")).collect();
    assert_eq!(
        mx,
        [
            "example.com. 300 IN MX 10 mx1.example.com.",
            "example.com. 300 IN MX 10 mx2.example.com."
        ]
    );
    assert_eq!(report["zone"]["ttl_advice"][0]["ttl"], 300);

    // The page shows the same lines, ready to copy, and the policy.
    let page = c.get(&query(
        "/dns",
        &[
            ("show", "1"),
            ("domain", "example.com"),
            ("mode", "active-active"),
            ("hosts[0].name", "mx1.example.com"),
            ("hosts[0].addresses", "192.0.2.11"),
            ("hosts[1].name", "mx2.example.com"),
            ("hosts[1].addresses", "192.0.2.12"),
            ("mta_sts_mode", "testing"),
            ("max_age", "604800"),
        ],
    ));
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "example.com. 300 IN MX 10 mx1.example.com.\nexample.com. 300 IN MX 10 mx2.example.com.\n",
        "TTL advice",
        "mode: testing",
    ] {
        assert!(page.body.contains(text), "{text:?} missing:\n{}", page.body);
    }
    // One refused field, named, next to its input.
    let bad = c.json(
        "POST",
        "/api/v1/dns-helper",
        &json!({ "domain": "example.com", "mode": "active-active",
                 "hosts": [{ "name": "mx1.example.com", "addresses": ["192.0.2.11"] }] }),
    );
    assert_eq!(
        (bad.status, bad.json()["field"].clone()),
        (422, json!("hosts"))
    );
    let page = c.get(&query(
        "/dns",
        &[
            ("show", "1"),
            ("domain", "example.com"),
            ("mode", "active-passive"),
            ("hosts[0].name", "mx.example.com"),
            ("hosts[0].addresses", "not-an-ip"),
        ],
    ));
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains("is not an IPv4 or IPv6 address"),
        "{}",
        page.body
    );
}

#[test]
fn the_mta_sts_policy_is_served_without_a_session_and_only_admins_change_things() {
    let dns = DnsServer::start();
    let (gw, _sink, bind) = start(&dns);
    let admin = login(&gw, ADMIN, ADMIN_PASSWORD);
    let anonymous = gw.web_client();
    let none = anonymous.get("/.well-known/mta-sts.txt");
    assert_eq!(none.status, 404, "{}", none.body);
    assert_eq!(admin.get("/api/v1/mta-sts").status, 404);

    let put = admin.json(
        "PUT",
        "/api/v1/mta-sts",
        &json!({ "mode": "enforce", "mx": ["MX1.example.com", "*.mx.example.com"], "max_age": 1209600 }),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.mx.example.com\r\nmax_age: 1209600\r\n";
    let served = anonymous.get("/.well-known/mta-sts.txt");
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(served.header("content-type"), Some("text/plain"));
    assert_eq!(served.body, POLICY);

    // A refused change keeps the previous policy.
    let bad = admin.json(
        "PUT",
        "/api/v1/mta-sts",
        &json!({ "mode": "enforce", "mx": ["mx1.example.com"], "max_age": 60 }),
    );
    assert_eq!(
        (bad.status, bad.json()["field"].clone()),
        (422, json!("max_age"))
    );
    assert_eq!(anonymous.get("/.well-known/mta-sts.txt").body, POLICY);
    let got = admin.get("/api/v1/mta-sts").json();
    assert_eq!(got["mx"], json!(["mx1.example.com", "*.mx.example.com"]));
    assert_eq!(got["policy"], POLICY);
    let audit = admin.get("/api/v1/audit").body;
    assert!(audit.contains("mta_sts.set"), "{audit}");
    // The page lists what is served now.
    let page = admin.get("/dns");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("mode: enforce"), "{}", page.body);

    // Read-only users see the pages but cannot run diagnostics or change
    // the policy.
    add_user(&gw.data_dir(), "viewer", "readonly", "viewer password");
    let viewer = login(&gw, "viewer", "viewer password");
    for (path, body) in [
        (
            "/api/v1/diagnostics/mx",
            json!({ "domain": "example.test" }),
        ),
        (
            "/api/v1/diagnostics/probe",
            json!({ "host": "127.0.0.1", "port": bind.port() }),
        ),
        (
            "/api/v1/diagnostics/test-message",
            json!({ "to": "user@example.test" }),
        ),
        ("/api/v1/dns-helper", json!({ "domain": "example.com" })),
    ] {
        assert_eq!(viewer.json("POST", path, &body).status, 403, "{path}");
    }
    let form = viewer.form(
        "/diagnostics/mx",
        &[("csrf", &csrf(&viewer)), ("domain", "example.test")],
    );
    assert_eq!(form.status, 403);
    let put = viewer.json(
        "PUT",
        "/api/v1/mta-sts",
        &json!({ "mode": "none", "mx": [], "max_age": 86400 }),
    );
    assert_eq!(put.status, 403);
    assert_eq!(anonymous.get("/.well-known/mta-sts.txt").body, POLICY);
    let page = viewer.get("/diagnostics");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("only admins can run them"),
        "{}",
        page.body
    );
    // The DNS helper page computes for them (a GET), without a publish button.
    let helper = viewer.get(&query(
        "/dns",
        &[
            ("show", "1"),
            ("domain", "example.com"),
            ("mode", "active-passive"),
            ("hosts[0].name", "mx.example.com"),
            ("hosts[0].addresses", "192.0.2.25"),
        ],
    ));
    assert_eq!(helper.status, 200, "{}", helper.body);
    assert!(helper
        .body
        .contains("example.com. 3600 IN MX 10 mx.example.com."));
    assert!(!helper.body.contains("Publish this policy"));
    // Without a session the diagnostics answer 401.
    let anon = anonymous.json(
        "POST",
        "/api/v1/diagnostics/mx",
        &json!({ "domain": "x.test" }),
    );
    assert_eq!(anon.status, 401);

    // The page's publish button stores a new policy.
    let published = admin.form(
        "/dns/mta-sts",
        &[
            ("csrf", &csrf(&admin)),
            ("mode", "testing"),
            ("mx", "mx.example.com"),
            ("max_age", "604800"),
        ],
    );
    assert_eq!(published.status, 303, "{}", published.body);
    assert_eq!(
        anonymous.get("/.well-known/mta-sts.txt").body,
        "version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 604800\r\n"
    );
}
