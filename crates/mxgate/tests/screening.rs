//! Black-box tests of screening at the front door: allow/block lists and
//! rate limits, in l4 and smtp mode, before any backend is touched.

mod support;

use std::time::Duration;
use support::gateway::{l4_policy, smtp_policy, Gateway, Sink, SmtpClient};
use support::{free_addr, poll};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_blocked_client_is_refused_before_any_backend_is_touched() {
    let sink = Sink::start("sink", false);
    let bind = free_addr();
    let policy = format!(
        "{}[[list]]\naction = \"block\"\nclient = \"127.0.0.0/8\"\n",
        l4_policy(bind, &[("s0".into(), sink.addr)], "interval_ms = 60000", "")
    );
    let gw = Gateway::start("gw", &policy);
    let mut c = SmtpClient::connect(bind).unwrap();
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("554 5.7.1"), "{reply}");
    assert!(c.wait_closed(WAIT));
    gw.wait_metric(
        "mxgate_filter_verdicts_total{check=\"list\",result=\"block\"}",
        1.0,
        WAIT,
    );
    gw.wait_metric(
        "mxgate_listener_connections_total{listener=\"mx\",result=\"rejected\"}",
        1.0,
        WAIT,
    );
    assert_eq!(
        gw.metric("mxgate_backend_sessions_total{pool=\"mta\",server=\"s0\"}"),
        Some(0.0)
    );
}

#[test]
fn the_eleventh_connection_in_a_window_of_ten_gets_421() {
    let sink = Sink::start("sink", false);
    let bind = free_addr();
    let policy = format!(
        "{}[[rate_limit]]\nkey = \"client_ip\"\nwindow_s = 600\nconnections = 10\n",
        l4_policy(bind, &[("s0".into(), sink.addr)], "interval_ms = 60000", "")
    );
    let gw = Gateway::start("gw", &policy);
    for i in 0..10 {
        let mut c = SmtpClient::connect(bind).unwrap();
        let r = c.reply().unwrap();
        assert!(r.starts_with("220"), "connection {i}: {r}");
        c.command("QUIT").unwrap();
    }
    let mut c = SmtpClient::connect(bind).unwrap();
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("421 4.7.0"), "{reply}");
    gw.wait_metric(
        "mxgate_filter_verdicts_total{check=\"rate\",result=\"limited\"}",
        1.0,
        WAIT,
    );
}

#[test]
fn smtp_mode_checks_sender_and_recipient_lists_and_message_limits() {
    let sink = Sink::start("sink", false);
    let bind = free_addr();
    let policy = format!(
        "{}[[list]]\naction = \"block\"\nsender_domain = \"spam.test\"\n\
         [[list]]\naction = \"block\"\nrecipient = \"trap@example.test\"\n\
         [[rate_limit]]\nkey = \"sender\"\nwindow_s = 600\nmessages = 2\n",
        smtp_policy(bind, sink.addr, "")
    );
    let gw = Gateway::start("gw", &policy);
    let up = poll(WAIT, || {
        (gw.metric("mxgate_backend_up{pool=\"mta\",server=\"mta1\"}") == Some(1.0)).then_some(())
    });
    assert!(up.is_some());
    let mut c = SmtpClient::connect(bind).unwrap();
    c.reply().unwrap();
    c.command("EHLO client.test").unwrap();
    let r = c.command("MAIL FROM:<x@spam.test>").unwrap();
    assert!(r.starts_with("554 5.7.1"), "{r}");
    assert!(c
        .command("MAIL FROM:<ok@client.test>")
        .unwrap()
        .starts_with("250"));
    let r = c.command("RCPT TO:<trap@example.test>").unwrap();
    assert!(r.starts_with("554 5.7.1"), "{r}");
    assert!(c
        .command("RCPT TO:<user@example.test>")
        .unwrap()
        .starts_with("250"));
    assert!(c.command("RSET").unwrap().starts_with("250"));
    // Two messages per window for this sender: the third MAIL is deferred.
    assert!(c
        .command("MAIL FROM:<ok@client.test>")
        .unwrap()
        .starts_with("250"));
    assert!(c.command("RSET").unwrap().starts_with("250"));
    let r = c.command("MAIL FROM:<ok@client.test>").unwrap();
    assert!(r.starts_with("451 4.7.1"), "{r}");
    c.command("QUIT").unwrap();
    assert!(sink.messages().is_empty());
    gw.wait_metric(
        "mxgate_filter_verdicts_total{check=\"list\",result=\"block\"}",
        2.0,
        WAIT,
    );
}
