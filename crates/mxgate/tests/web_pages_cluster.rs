//! The Dashboard, Cluster and System pages and their API, black-box
//! against `mxgate run`: host readings and traffic charts on the
//! dashboard, the counter history, the cluster page without and with
//! `[sync]` (pairing two running boxes through the web UI end to end),
//! policy backup and restore (the same text as `mxgate policy export`,
//! refused input changes nothing), reboot off the appliance, and roles.

mod support;

use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use support::gateway::{smtp_policy, Gateway, Sink};
use support::sync::{peer_up, with_domains};
use support::web::{add_user, admin, ADMIN_PASSWORD};
use support::{free_addr, poll};

const WAIT: Duration = Duration::from_secs(20);

/// The standard output of `mxgate policy export` for `gw`'s store.
fn export(gw: &Gateway) -> String {
    let out = support::mxgate(&[
        "policy",
        "export",
        "--data",
        gw.data_dir().to_str().unwrap(),
    ])
    .output()
    .expect("run mxgate policy export");
    assert!(out.status.success(), "{}", support::output_text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn sync_section(listen: SocketAddr, peer: SocketAddr) -> String {
    format!("[sync]\nlisten = \"{listen}\"\npeer = \"{peer}\"\n")
}

#[test]
fn the_dashboard_shows_the_host_and_the_traffic_charts() {
    let sink = Sink::start("sink", false);
    let gw = Gateway::start("dash", &smtp_policy(free_addr(), sink.addr, ""));
    let c = admin(&gw);

    let host = c.get("/api/v1/host");
    assert_eq!(host.status, 200, "{}", host.body);
    let host = host.json();
    assert!(
        host["memory"]["total_bytes"].as_u64().unwrap() > 0,
        "{host}"
    );
    let names: Vec<&str> = host["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(names.contains(&"lo"), "{names:?}");
    assert!(host["disk"]["total_bytes"].as_u64().unwrap() > 0, "{host}");

    let page = c.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"memory-total\""), "{}", page.body);
    assert!(page.body.contains(" used of "), "memory total shown");
    assert!(page.body.contains(">lo<"), "the lo interface is listed");
    assert!(page.body.contains("<svg id=\"chart-sessions\""), "chart");
    assert!(page.body.contains("<svg id=\"chart-messages\""), "chart");
    assert!(page.body.contains("Top reject reasons"));
    assert!(page.body.contains("src=\"/assets/dashboard.js\""));
    let js = c.get("/assets/dashboard.js");
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").unwrap().contains("javascript"));

    // The first sample is taken when the web server starts.
    let history = c.get("/api/v1/history");
    assert_eq!(history.status, 200, "{}", history.body);
    let samples = history.json();
    let first = &samples.as_array().expect("an array")[0];
    assert!(
        first["unix_ms"].as_u64().unwrap() > 1_600_000_000_000,
        "{first}"
    );
    assert_eq!(first["sessions"], json!(0), "{first}");
    assert!(first["sessions_per_min"].is_null(), "{first}");
}

#[test]
fn policy_backup_restore_reboot_and_roles_on_the_system_page() {
    let sink = Sink::start("sink", false);
    let policy = smtp_policy(free_addr(), sink.addr, "");
    let gw = Gateway::start("system", &policy);
    add_user(&gw.data_dir(), "viewer", "readonly", ADMIN_PASSWORD);
    let c = admin(&gw);

    let page = c.get("/system");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"firmware\""), "{}", page.body);
    assert!(page.body.contains(env!("CARGO_PKG_VERSION")));
    assert!(page.body.contains("viewer"), "the users are listed");

    // Backup: the same text as `mxgate policy export`.
    let backup = c.get("/api/v1/policy");
    assert_eq!(backup.status, 200);
    assert!(backup
        .header("content-disposition")
        .unwrap()
        .contains("attachment"));
    assert_eq!(backup.body, export(&gw));

    // Restore a changed policy: it applies.
    let changed = with_domains(&policy, "\"restored.test\"");
    let r = c.send(
        "PUT",
        "/api/v1/policy",
        &[("X-CSRF-Token", c.csrf.as_deref().unwrap())],
        Some(("application/toml", changed.as_bytes())),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let after = export(&gw);
    assert!(after.contains("restored.test"), "{after}");

    // An invalid one: 422 naming the key, nothing changes.
    let invalid = changed.replace("name = \"mta1\"\n", "name = \"mta1\"\nweight = 999\n");
    let r = c.send(
        "PUT",
        "/api/v1/policy",
        &[("X-CSRF-Token", c.csrf.as_deref().unwrap())],
        Some(("application/toml", invalid.as_bytes())),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["field"], json!("pool[mta].server[mta1].weight"));
    assert_eq!(export(&gw), after, "the old policy is kept");
    // An empty upload would remove every listener: refused.
    let r = c.send(
        "PUT",
        "/api/v1/policy",
        &[("X-CSRF-Token", c.csrf.as_deref().unwrap())],
        Some(("application/toml", b"\n")),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(export(&gw), after, "the old policy is kept");
    // The page's form shows the refusal and keeps what was typed.
    let r = c.form(
        "/system/policy",
        &[("csrf", c.csrf.as_deref().unwrap()), ("policy", &invalid)],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("pool[mta].server[mta1].weight"),
        "{}",
        r.body
    );
    assert!(r.body.contains("weight = 999"), "typed text kept");
    assert_eq!(export(&gw), after);

    // Reboot off the appliance image.
    let r = c.json("POST", "/api/v1/system/reboot", &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.json()["error"],
        json!("not an appliance: restart the service yourself")
    );

    // Own password: a wrong current one is refused by field.
    let r = c.json(
        "POST",
        "/api/v1/session/password",
        &json!({ "current": "wrong-password", "new": "another-long-password" }),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["field"], json!("current"));

    // A read-only user may read but not pair, restore or reboot.
    let mut viewer = gw.web_client();
    assert_eq!(viewer.login("viewer", ADMIN_PASSWORD).status, 200);
    assert_eq!(viewer.get("/api/v1/cluster").status, 200);
    let r = viewer.json("POST", "/api/v1/cluster/pairing", &json!({}));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = viewer.send(
        "PUT",
        "/api/v1/policy",
        &[("X-CSRF-Token", viewer.csrf.as_deref().unwrap())],
        Some(("application/toml", policy.as_bytes())),
    );
    assert_eq!(r.status, 403);
    assert_eq!(export(&gw), after);
    assert!(!viewer.get("/cluster").body.contains("Create pairing code"));
}

#[test]
fn two_boxes_pair_through_the_web_ui() {
    let sink = Sink::start("sink", false);
    let policy = smtp_policy(free_addr(), sink.addr, "");

    // Without [sync]: the page says so and no code is made.
    let alone = Gateway::start("alone", &policy);
    let c = admin(&alone);
    let page = c.get("/cluster");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Peer sync is not configured"),
        "{}",
        page.body
    );
    assert!(c.get("/api/v1/cluster").json()["sync"].is_null());
    let r = c.json("POST", "/api/v1/cluster/pairing", &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    drop(alone);

    let (a_sync, b_sync) = (free_addr(), free_addr());
    let a = Gateway::start_with_node_extra("gw-a", &policy, &sync_section(a_sync, b_sync));
    let b = Gateway::start_with_node_extra("gw-b", &policy, &sync_section(b_sync, a_sync));
    let (ca, cb) = (admin(&a), admin(&b));

    // A's button makes a code, shown once with the join command.
    let page = ca.form("/cluster/pairing", &[("csrf", ca.csrf.as_deref().unwrap())]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"pairing-code\""), "{}", page.body);
    assert!(page.body.contains("mxgate cluster join --data"));
    let r = ca.json("POST", "/api/v1/cluster/pairing", &json!({}));
    assert_eq!(r.status, 201, "{}", r.body);
    let code = r.json()["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 86);
    assert!(r.json()["expires_unix"].as_u64().unwrap() > 1_600_000_000);

    // B's join form: bad input names the field; a wrong code is the
    // peer's refusal (502); nothing is stored.
    let r = cb.json(
        "POST",
        "/api/v1/cluster/join",
        &json!({ "peer": "nowhere", "code": code }),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["field"], json!("peer"));
    let r = cb.json(
        "POST",
        "/api/v1/cluster/join",
        &json!({ "peer": a_sync.to_string(), "code": "x" }),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["field"], json!("code"));
    let mut wrong = code.clone().into_bytes();
    wrong[60] = if wrong[60] == b'A' { b'B' } else { b'A' };
    let wrong = String::from_utf8(wrong).unwrap();
    let r = cb.json(
        "POST",
        "/api/v1/cluster/join",
        &json!({ "peer": a_sync.to_string(), "code": wrong }),
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("refused"),
        "{}",
        r.body
    );
    assert!(!b.data_dir().join("sync_peer_pin").exists());

    // The real join through B's page form.
    let page = cb.form(
        "/cluster/join",
        &[
            ("csrf", cb.csrf.as_deref().unwrap()),
            ("peer", &a_sync.to_string()),
            ("code", &code),
        ],
    );
    assert_eq!(
        page.status,
        200,
        "{}\nA log:\n{}",
        page.body,
        a.proc.output()
    );
    assert!(page.body.contains("Paired with"), "{}", page.body);

    // Both boxes then show the peer up, on the page and in the API.
    a.wait_metric(&peer_up(b_sync), 1.0, WAIT);
    b.wait_metric(&peer_up(a_sync), 1.0, WAIT);
    for c in [&ca, &cb] {
        let up = poll(WAIT, || {
            (c.get("/api/v1/cluster").json()["sync"]["up"] == json!(true)).then_some(())
        });
        assert!(up.is_some(), "{}", c.get("/api/v1/cluster").body);
        let page = c.get("/cluster");
        assert!(
            page.body
                .contains("id=\"sync-up\"><span class=\"badge up\">"),
            "{}",
            page.body
        );
    }
    let audit = ca.get("/api/v1/audit").body;
    assert!(audit.contains("cluster.pairing"), "{audit}");
    assert!(cb.get("/api/v1/audit").body.contains("cluster.join"));
}
