//! Black-box tests of greylisting in smtp mode: the first attempt of a
//! (client network, sender, recipient) triplet is deferred with `451 4.7.1`,
//! a retry after `delay_s` passes and reaches the backend, and the state
//! lives in the store (it survives a restart).

mod support;

use std::time::Duration;
use support::gateway::{smtp_policy, Gateway, Sink, SmtpClient};
use support::{free_addr, poll};

const WAIT: Duration = Duration::from_secs(10);
const DEFER: &str = "mxgate_filter_verdicts_total{check=\"greylist\",result=\"defer\"}";
const PASS: &str = "mxgate_filter_verdicts_total{check=\"greylist\",result=\"pass\"}";

fn wait_backend_up(gw: &Gateway) {
    let up = poll(WAIT, || {
        (gw.metric("mxgate_backend_up{pool=\"mta\",server=\"mta1\"}") == Some(1.0)).then_some(())
    });
    assert!(up.is_some(), "backend not up:\n{}", gw.metrics_text());
}

/// A client past EHLO and `MAIL FROM:<from>`.
fn client_with_sender(gw_bind: std::net::SocketAddr, from: &str) -> SmtpClient {
    let mut c = SmtpClient::connect(gw_bind).unwrap();
    let greeting = c.reply().unwrap();
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(c.command("EHLO client.test").unwrap().starts_with("250"));
    let mail = c.command(&format!("MAIL FROM:<{from}>")).unwrap();
    assert!(mail.starts_with("250"), "{mail}");
    c
}

#[test]
fn unknown_triplets_are_deferred_until_retried_after_the_delay() {
    let sink = Sink::start("sink", false);
    let bind = free_addr();
    let policy = format!(
        "{}[greylist]\nenabled = true\ndelay_s = 2\n",
        smtp_policy(bind, sink.addr, "")
    );
    let mut gw = Gateway::start("gw", &policy);
    wait_backend_up(&gw);

    // First attempt and an early retry: deferred.
    let mut c = client_with_sender(bind, "alice@client.test");
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("451 4.7.1"), "{r}");
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("451 4.7.1"), "retry before the delay: {r}");
    c.command("QUIT").unwrap();
    gw.wait_metric(DEFER, 2.0, WAIT);

    std::thread::sleep(Duration::from_millis(2_500));

    // The retry after the delay passes and the message is delivered; a
    // recipient not seen before is greylisted on its own.
    let mut c = client_with_sender(bind, "alice@client.test");
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("250"), "retry after the delay: {r}");
    let r = c.command("RCPT TO:<carol@example.test>").unwrap();
    assert!(r.starts_with("451 4.7.1"), "another recipient: {r}");
    assert!(c.command("DATA").unwrap().starts_with("354"));
    c.send(b"Subject: greylisted\r\n\r\nhello\r\n.\r\n")
        .unwrap();
    let r = c.reply().unwrap();
    assert!(r.starts_with("250"), "end of data: {r}");
    c.command("QUIT").unwrap();
    let delivered = poll(WAIT, || (sink.messages().len() == 1).then_some(()));
    assert!(delivered.is_some(), "{:?}", sink.messages());
    assert!(sink.messages()[0].contains("Subject: greylisted"));

    // Another connection from the same network: the passed triplet passes
    // at once.
    let mut c = client_with_sender(bind, "alice@client.test");
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("250"), "known triplet: {r}");
    c.command("QUIT").unwrap();
    gw.wait_metric(DEFER, 3.0, WAIT);
    gw.wait_metric(PASS, 2.0, WAIT);

    // The state is in the store: after a restart the passed triplet still
    // passes, and a new one is still deferred.
    gw.restart();
    wait_backend_up(&gw);
    let mut c = client_with_sender(bind, "alice@client.test");
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("250"), "known triplet after restart: {r}");
    let r = c.command("RCPT TO:<dave@example.test>").unwrap();
    assert!(r.starts_with("451 4.7.1"), "new triplet after restart: {r}");
    c.command("QUIT").unwrap();
    gw.wait_metric(PASS, 1.0, WAIT);
    gw.wait_metric(DEFER, 1.0, WAIT);
}

#[test]
fn listed_senders_skip_greylisting() {
    let sink = Sink::start("sink", false);
    let bind = free_addr();
    let policy = format!(
        "{}[[list]]\naction = \"allow\"\nsender_domain = \"friend.test\"\n\
         [greylist]\nenabled = true\ndelay_s = 600\n",
        smtp_policy(bind, sink.addr, "")
    );
    let gw = Gateway::start("gw", &policy);
    wait_backend_up(&gw);
    let mut c = client_with_sender(bind, "pal@friend.test");
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("250"), "allowed sender: {r}");
    c.command("RSET").unwrap();
    let r = c.command("MAIL FROM:<stranger@client.test>").unwrap();
    assert!(r.starts_with("250"), "{r}");
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("451 4.7.1"), "unlisted sender: {r}");
    c.command("QUIT").unwrap();
    gw.wait_metric(DEFER, 1.0, WAIT);
    assert_eq!(gw.metric(PASS), None);
}
