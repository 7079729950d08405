//! The Filtering, Tracking and Certificates pages, black-box against
//! `mxgate run` through their forms (POST with the CSRF field, as a
//! browser sends them): a block entry added on the page shows on the page
//! and in `mxgate policy export`; refused input is a 422 page with the
//! reason next to the field and the policy unchanged; a message sent
//! through an smtp listener is found on /tracking and its detail page
//! shows the verdict trail, with a hostile sender escaped; an uploaded
//! smtp certificate is listed with its days left; read-only users get 403
//! on every form route.

mod support;

use std::time::Duration;
use support::gateway::{l4_policy, Gateway, Sink, SmtpClient};
use support::poll;
use support::sync::export;
use support::web::{add_user, admin, self_signed, Response, WebClient};

const WAIT: Duration = Duration::from_secs(20);

/// A gateway with pool `mta` over one sink and the l4 listener `mx`.
fn l4_gateway(name: &str) -> (Gateway, Sink) {
    let sink = Sink::start("sink1", false);
    let policy = l4_policy(
        support::free_addr(),
        &[("mta1".to_string(), sink.addr)],
        "interval_ms = 300, timeout_ms = 1000, fall = 1, rise = 1",
        "",
    );
    (Gateway::start(name, &policy), sink)
}

/// Posts a page form with the session's CSRF field.
fn post(c: &WebClient, path: &str, fields: &[(&str, &str)]) -> Response {
    let csrf = c.csrf.clone().expect("logged in");
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    c.form(path, &all)
}

/// Gets `path` and checks that it answers 200 with `text` in the page.
fn page_says(c: &WebClient, path: &str, text: &str) {
    let page = c.get(path);
    assert_eq!(page.status, 200, "{path}: {}", page.body);
    assert!(
        page.body.contains(text),
        "{path} says {text:?}: {}",
        page.body
    );
}

/// Adds `domain` to the allow or block list (`action`) on the Filtering page.
fn add_sender_domain(c: &WebClient, action: &str, domain: &str) {
    let r = post(
        c,
        "/filtering/lists",
        &[
            ("op", "add"),
            ("action", action),
            ("kind", "sender_domain"),
            ("value", domain),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
}

/// The `<p class="error">` shown for input `id`, if any.
fn error_next_to(page: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}-error\">");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find("</p>")? + start;
    Some(page[start..end].to_string())
}

#[test]
fn a_block_entry_added_on_the_filtering_page_shows_there_and_in_the_export() {
    let (gw, _sink) = l4_gateway("filtering-page");
    let c = admin(&gw);
    page_says(&c, "/filtering", "No allow or block entry");

    add_sender_domain(&c, "block", "spam.test");
    let page = c.get("/filtering").body;
    assert!(
        page.contains("<td class=\"mono\">spam.test</td>") && page.contains("sender domain"),
        "{page}"
    );
    let exported = export(&gw);
    assert!(
        exported.contains("sender_domain = \"spam.test\""),
        "{exported}"
    );

    // Refused input: the reason next to the field, what was typed kept,
    // the policy unchanged.
    let before = export(&gw);
    let r = post(
        &c,
        "/filtering/lists",
        &[
            ("op", "add"),
            ("action", "block"),
            ("kind", "client"),
            ("value", "10.0.0.1/99"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let reason = error_next_to(&r.body, "lists-value").expect("error next to the value");
    assert!(!reason.is_empty(), "{}", r.body);
    assert!(r.body.contains("value=\"10.0.0.1/99\""), "typed value kept");
    let r = post(
        &c,
        "/filtering/screen",
        &[("op", "add_zone"), ("zone", "zen.example"), ("weight", "x")],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let reason = error_next_to(&r.body, "zone-weight").expect("error next to the weight");
    assert!(reason.contains("not a whole number"), "{reason}");
    let r = post(
        &c,
        "/filtering/relay",
        &[("op", "save"), ("domains", "example.test\nnot a domain")],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        error_next_to(&r.body, "relay-domains").is_some(),
        "{}",
        r.body
    );
    assert_eq!(export(&gw), before, "refused forms changed the policy");

    // A settings form and a stale remove button.
    let r = post(
        &c,
        "/filtering/auth",
        &[
            ("op", "save"),
            ("spf", "tag"),
            ("dkim", "off"),
            ("arc", "off"),
            ("dmarc", "enforce"),
            ("hold_memory_kb", "128"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let exported = export(&gw);
    assert!(
        exported.contains("dmarc = \"enforce\"") && exported.contains("hold_memory_kb = 128"),
        "{exported}"
    );
    let r = post(
        &c,
        "/filtering/lists",
        &[("op", "remove"), ("index", "0"), ("expect", "{}")],
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        export(&gw).contains("spam.test"),
        "a stale remove removes nothing"
    );
}

#[test]
fn a_message_sent_through_an_smtp_listener_is_found_on_the_tracking_page() {
    let (gw, _sink, bind) = Gateway::start_smtp_with_sink("");
    let c = admin(&gw);
    page_says(
        &c,
        "/tracking?recipient=nobody%40example.test",
        "No session matches this search",
    );

    // An allow entry added on the Filtering page puts a check in the trail.
    add_sender_domain(&c, "allow", "a.test");
    let hostile = "\"<script>x</script>\"@a.test";
    let mut smtp = SmtpClient::connect(bind).unwrap();
    assert!(smtp.reply().unwrap().starts_with("220"));
    smtp.command("EHLO client.test").unwrap();
    let reply = smtp
        .send_mail(
            hostile,
            "tracked@example.test",
            "Subject: t\r\n\r\nhello\r\n",
        )
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    smtp.command("QUIT").unwrap();

    let list = poll(WAIT, || {
        let r = c.get("/tracking?recipient=tracked%40example.test");
        r.body.contains("tracked@example.test").then_some(r)
    })
    .expect("the session is listed");
    assert_eq!(list.status, 200);
    assert!(!list.body.contains("<script>x</script>"), "{}", list.body);
    assert!(
        list.body.contains("&lt;script&gt;x&lt;/script&gt;"),
        "escaped sender: {}",
        list.body
    );
    assert!(list.body.contains("accepted") && list.body.contains("mta/mta1"));
    let start = list.body.find("href=\"/tracking/").expect("a detail link") + 6;
    let end = start + list.body[start..].find('"').unwrap();
    let link = &list.body[start..end];

    let detail = c.get(link);
    assert_eq!(detail.status, 200, "{link}");
    for shown in [
        "Verdict trail",
        "tracked@example.test",
        "client.test",
        "mta/mta1",
        "Final reply",
    ] {
        assert!(detail.body.contains(shown), "{shown}: {}", detail.body);
    }
    assert!(!detail.body.contains("<script>x</script>"));
    let trail = &detail.body[detail.body.find("Verdict trail").unwrap()..];
    assert!(
        trail.contains("<td>list</td>") && trail.contains("a.test"),
        "the allow entry in the trail: {trail}"
    );

    let r = c.get("/tracking?since=soon");
    assert_eq!(r.status, 422);
    assert!(error_next_to(&r.body, "t-since").is_some(), "{}", r.body);
    assert_eq!(c.get("/tracking/999999").status, 404);
}

#[test]
fn an_smtp_certificate_uploaded_on_the_page_is_listed_with_its_days_left() {
    let (gw, _sink) = l4_gateway("certs-page");
    let c = admin(&gw);
    let (cert_pem, key_pem) = self_signed();
    let (_, other_key) = self_signed();
    let r = post(
        &c,
        "/certificates/smtp",
        &[("cert_pem", &cert_pem), ("key_pem", &other_key)],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(error_next_to(&r.body, "smtp-key").is_some(), "{}", r.body);
    assert!(
        !r.body.contains("PRIVATE KEY"),
        "the key is never sent back"
    );

    let r = post(
        &c,
        "/certificates/smtp",
        &[("cert_pem", &cert_pem), ("key_pem", &key_pem)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let days = c.get("/api/v1/certificates").json()["store"][0]["leaf"]["days_left"]
        .as_i64()
        .expect("days left");
    assert!(days > 365);
    let page = c.get("/certificates").body;
    assert!(page.contains("mx.example.test"), "{page}");
    assert!(
        page.contains(&format!("<td>{days}</td>")),
        "days left: {page}"
    );
    assert!(page.contains("next start of the service"), "{page}");
}

#[test]
fn read_only_users_get_403_on_every_form_of_these_pages() {
    let (gw, _sink) = l4_gateway("pages-readonly");
    add_user(&gw.data_dir(), "viewer", "readonly", "viewer password");
    let mut viewer = gw.web_client();
    assert_eq!(viewer.login("viewer", "viewer password").status, 200);
    for page in ["/filtering", "/tracking", "/certificates"] {
        let r = viewer.get(page);
        assert_eq!(r.status, 200, "{page}");
        assert!(
            r.body.contains("read-only") || page == "/tracking",
            "{page}"
        );
    }
    let before = export(&gw);
    for path in [
        "/filtering/relay",
        "/filtering/lists",
        "/filtering/screen",
        "/filtering/greylist",
        "/filtering/rate_limits",
        "/filtering/auth",
        "/certificates/smtp",
        "/certificates/web",
    ] {
        let r = post(&viewer, path, &[("op", "save")]);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    assert_eq!(export(&gw), before);
}
