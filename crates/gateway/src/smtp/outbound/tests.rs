//! The backend client against scripted fake backends on loopback.

mod failures;
mod fake;

use super::setup::{xclient_line, xtext};
use super::*;
use fake::{lines, start, Op, Op::*};
use mxgate_balance::check::{BoxFuture, CheckError, CheckReport, HealthCheck};
use mxgate_balance::Pools;
use mxgate_config::{CheckSettings, Policy};
use std::net::SocketAddr;

/// Leaves every server's health unknown (usable) and never connects.
struct Unchecked;

impl HealthCheck for Unchecked {
    fn check<'a>(
        &'a self,
        _address: SocketAddr,
        _settings: &'a CheckSettings,
    ) -> BoxFuture<'a, Result<CheckReport, CheckError>> {
        Box::pin(std::future::pending())
    }
}

/// Pool `mta`, balance `first`, servers `s1`, `s2`, ... at `addrs`.
fn pool(addrs: &[SocketAddr]) -> Arc<Pool> {
    let mut toml =
        String::from("[[pool]]\nname = \"mta\"\nbalance = \"first\"\nconnect_timeout_ms = 1000\n");
    for (i, a) in addrs.iter().enumerate() {
        toml.push_str(&format!(
            "[[pool.server]]\nname = \"s{}\"\naddress = \"{a}\"\n",
            i + 1
        ));
    }
    let policy = Policy::parse(&toml).unwrap();
    let pools = Pools::with_checker(Arc::new(Unchecked));
    pools.apply(&policy.pools);
    pools.get("mta").unwrap()
}

fn identity() -> ClientIdentity {
    ClientIdentity {
        addr: "203.0.113.7:40000".parse().unwrap(),
        destination: "192.0.2.1:25".parse().unwrap(),
        helo: "client.example".into(),
        esmtp: true,
        tls: None,
        rdns: None,
    }
}

fn settings(identity: Announce, tls: BackendTls) -> OutboundSettings {
    OutboundSettings {
        identity,
        tls,
        ehlo_name: "mxgate.test".into(),
        command_timeout: Duration::from_secs(5),
        ..OutboundSettings::default()
    }
}

fn plain() -> OutboundSettings {
    settings(Announce::None, BackendTls::Off)
}

/// Banner and a plain EHLO reply offering `caps`.
fn greeting(caps: &'static str) -> Vec<Op> {
    vec![Say("220 fake ESMTP"), Read, Say(caps)]
}

fn script(parts: &[&[Op]]) -> Vec<Op> {
    parts.concat()
}

const OK: Op = Say("250 2.0.0 Ok");
const BYE: &[Op] = &[Read, Say("221 2.0.0 Bye")];

async fn finish(task: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("fake backend finished")
        .expect("fake backend did not panic");
}

#[tokio::test]
async fn happy_path_with_xclient() {
    let xclient_caps = "250-fake\n250-PIPELINING\n250 XCLIENT NAME ADDR PORT PROTO HELO LOGIN";
    let s = script(&[
        &greeting(xclient_caps),
        &[
            Read,
            Say("220 fake ESMTP"),
            Read,
            Say("250-fake\n250 8BITMIME"),
        ],
        &[Read, OK, Read, OK, Read, Say("354 go on"), Data],
        &[Say("250 2.0.0 Ok: queued as ABC")],
        BYE,
    ]);
    let (addr, log, task) = start(vec![s]).await;
    let pool = pool(&[addr]);
    let mut b = Backend::new(
        Arc::clone(&pool),
        identity(),
        settings(Announce::Xclient, BackendTls::Off),
    );
    assert_eq!(b.server(), None, "lazy: nothing before MAIL");
    assert_eq!(
        b.mail("a@x.example", "BODY=8BITMIME").await.unwrap().code,
        250
    );
    assert_eq!(b.server().as_deref(), Some("mta/s1"));
    assert_eq!(pool.server("s1").unwrap().active_sessions(), 1);
    assert_eq!(b.rcpt("b@y.example", "").await.unwrap().code, 250);
    assert_eq!(b.data_start().await.unwrap().code, 354);
    b.data_chunk(b"Subject: hi\r\n\r\n..dot").await.unwrap();
    b.data_chunk(b"\r\n").await.unwrap();
    let end = b.data_end().await.unwrap();
    assert_eq!(end.lines, ["2.0.0 Ok: queued as ABC"]);
    b.abort().await;
    assert_eq!(b.server(), None);
    finish(task).await;
    assert_eq!(pool.server("s1").unwrap().active_sessions(), 0);
    assert_eq!(
        lines(&log, 0),
        [
            "EHLO mxgate.test",
            "XCLIENT NAME=[UNAVAILABLE] ADDR=203.0.113.7 PORT=40000 PROTO=ESMTP HELO=client.example",
            "EHLO client.example",
            "MAIL FROM:<a@x.example> BODY=8BITMIME",
            "RCPT TO:<b@y.example>",
            "DATA",
            "Subject: hi",
            "",
            "..dot",
            ".",
            "QUIT",
        ]
    );
}

#[tokio::test]
async fn proxy_v2_header_comes_first() {
    let s = script(&[&[Raw(28)], &greeting("250 fake"), &[Read, OK], BYE]);
    let (addr, log, task) = start(vec![s]).await;
    let mut b = Backend::new(
        pool(&[addr]),
        identity(),
        settings(Announce::ProxyV2, BackendTls::Off),
    );
    assert_eq!(b.mail("a@x", "").await.unwrap().code, 250);
    b.abort().await;
    finish(task).await;
    let expected = concat!(
        "raw:0d0a0d0a000d0a515549540a", // signature
        "21",                           // v2, PROXY
        "11",                           // TCP over IPv4
        "000c",                         // 12 address bytes
        "cb007107c0000201",             // 203.0.113.7 -> 192.0.2.1
        "9c400019",                     // 40000 -> 25
    );
    assert_eq!(
        lines(&log, 0),
        [expected, "EHLO mxgate.test", "MAIL FROM:<a@x>", "QUIT"]
    );
}

#[tokio::test]
async fn proxy_v1_line_comes_first() {
    let s = script(&[&[Read], &greeting("250 fake"), &[Read, OK], BYE]);
    let (addr, log, task) = start(vec![s]).await;
    let mut b = Backend::new(
        pool(&[addr]),
        identity(),
        settings(Announce::ProxyV1, BackendTls::Off),
    );
    b.mail("a@x", "").await.unwrap();
    b.abort().await;
    finish(task).await;
    assert_eq!(
        lines(&log, 0)[0],
        "PROXY TCP4 203.0.113.7 192.0.2.1 40000 25"
    );
}

#[tokio::test]
async fn opportunistic_starttls_with_a_self_signed_certificate() {
    let s = script(&[
        &greeting("250-fake\n250 STARTTLS"),
        &[Read, Say("220 2.0.0 Ready to start TLS"), Tls],
        &[Read, Say("250-fake\n250 8BITMIME"), Read, OK],
        BYE,
    ]);
    let (addr, log, task) = start(vec![s]).await;
    let mut b = Backend::new(
        pool(&[addr]),
        identity(),
        settings(Announce::None, BackendTls::Opportunistic),
    );
    assert_eq!(b.mail("a@x", "").await.unwrap().code, 250);
    b.abort().await;
    finish(task).await;
    assert_eq!(
        lines(&log, 0),
        [
            "EHLO mxgate.test",
            "STARTTLS",
            "<TLS>",
            "EHLO mxgate.test",
            "MAIL FROM:<a@x>",
            "QUIT"
        ]
    );
}

#[tokio::test]
async fn require_tls_without_starttls_fails() {
    let s = script(&[&greeting("250-fake\n250 8BITMIME"), BYE]);
    let (addr, log, task) = start(vec![s]).await;
    let mut b = Backend::new(
        pool(&[addr]),
        identity(),
        settings(Announce::None, BackendTls::Require),
    );
    let err = b.mail("a@x", "").await.unwrap_err();
    assert!(
        matches!(
            err,
            RelayError::Protocol {
                step: "STARTTLS",
                ..
            }
        ),
        "{err}"
    );
    finish(task).await;
    assert_eq!(lines(&log, 0), ["EHLO mxgate.test", "QUIT"]);
}

#[tokio::test]
async fn xclient_not_advertised_fails() {
    let s = script(&[&greeting("250-fake\n250 PIPELINING"), BYE]);
    let (addr, log, task) = start(vec![s]).await;
    let mut b = Backend::new(
        pool(&[addr]),
        identity(),
        settings(Announce::Xclient, BackendTls::Off),
    );
    let err = b.mail("a@x", "").await.unwrap_err();
    match &err {
        RelayError::Protocol { step, detail, .. } => {
            assert_eq!(*step, "XCLIENT");
            assert!(detail.contains("does not allow XCLIENT"), "{detail}");
        }
        other => panic!("{other}"),
    }
    finish(task).await;
    assert_eq!(lines(&log, 0), ["EHLO mxgate.test", "QUIT"]);
}

#[tokio::test]
async fn connection_is_reused_after_rset() {
    let s = script(&[
        &greeting("250 fake"),
        &[Read, OK, Read, OK, Read, Say("354 go on"), Data, OK],
        &[Read, OK, Read, OK, Read, OK],
        BYE,
    ]);
    let (addr, log, task) = start(vec![s]).await;
    let pool = pool(&[addr]);
    let mut b = Backend::new(Arc::clone(&pool), identity(), plain());
    b.mail("a@x", "").await.unwrap();
    b.rcpt("b@y", "").await.unwrap();
    b.data_start().await.unwrap();
    b.data_chunk(b"x\r\n").await.unwrap();
    assert_eq!(b.data_end().await.unwrap().code, 250);
    b.rset().await;
    b.mail("c@x", "").await.unwrap();
    b.rcpt("d@y", "").await.unwrap();
    b.abort().await;
    finish(task).await;
    assert_eq!(pool.server("s1").unwrap().sessions_total(), 1);
    assert_eq!(
        lines(&log, 0),
        [
            "EHLO mxgate.test",
            "MAIL FROM:<a@x>",
            "RCPT TO:<b@y>",
            "DATA",
            "x",
            ".",
            "RSET",
            "MAIL FROM:<c@x>",
            "RCPT TO:<d@y>",
            "QUIT"
        ]
    );
}

#[tokio::test]
async fn a_kept_connection_the_backend_closed_is_replaced() {
    let first = script(&[
        &greeting("250 fake"),
        &[Read, OK, Read, OK],
        &[Say("421 4.4.2 fake Error: timeout exceeded")],
    ]);
    let second = script(&[&greeting("250 fake"), &[Read, OK], BYE]);
    let (addr, log, task) = start(vec![first, second]).await;
    let mut b = Backend::new(pool(&[addr]), identity(), plain());
    b.mail("a@x", "").await.unwrap();
    b.rset().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(b.mail("c@x", "").await.unwrap().code, 250);
    b.abort().await;
    finish(task).await;
    assert_eq!(
        lines(&log, 0),
        ["EHLO mxgate.test", "MAIL FROM:<a@x>", "RSET"]
    );
    assert_eq!(
        lines(&log, 1),
        ["EHLO mxgate.test", "MAIL FROM:<c@x>", "QUIT"]
    );
}

#[tokio::test]
async fn max_reuse_opens_a_new_connection() {
    let one = script(&[&greeting("250 fake"), &[Read, OK], BYE]);
    let (addr, log, task) = start(vec![one.clone(), one]).await;
    let mut st = plain();
    st.max_reuse = 1;
    let mut b = Backend::new(pool(&[addr]), identity(), st);
    b.mail("a@x", "").await.unwrap();
    b.rset().await;
    b.mail("c@x", "").await.unwrap();
    b.abort().await;
    finish(task).await;
    assert_eq!(
        lines(&log, 0),
        ["EHLO mxgate.test", "MAIL FROM:<a@x>", "QUIT"]
    );
    assert_eq!(
        lines(&log, 1),
        ["EHLO mxgate.test", "MAIL FROM:<c@x>", "QUIT"]
    );
}

#[tokio::test]
async fn helo_when_ehlo_is_refused() {
    let s = script(&[
        &greeting("502 5.5.2 no EHLO here"),
        &[Read, Say("250 fake"), Read, OK],
        BYE,
    ]);
    let (addr, log, task) = start(vec![s]).await;
    let mut b = Backend::new(pool(&[addr]), identity(), plain());
    b.mail("a@x", "").await.unwrap();
    b.abort().await;
    finish(task).await;
    assert_eq!(
        lines(&log, 0),
        [
            "EHLO mxgate.test",
            "HELO mxgate.test",
            "MAIL FROM:<a@x>",
            "QUIT"
        ]
    );
}

#[test]
fn xtext_encodes_plus_equals_and_controls() {
    assert_eq!(xtext("mx.example"), "mx.example");
    assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
    assert_eq!(xtext("[1.2.3.4]"), "[1.2.3.4]");
}

#[test]
fn xclient_line_for_ipv6_and_helo_clients() {
    let mut id = identity();
    id.addr = "[2001:db8::7]:2525".parse().unwrap();
    id.esmtp = false;
    id.helo = "odd name".into();
    assert_eq!(
        xclient_line(&id, &[]),
        "XCLIENT NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::7 PORT=2525 PROTO=SMTP HELO=odd+20name\r\n"
    );
    let only: Vec<String> = vec!["ADDR".into(), "HELO".into()];
    assert_eq!(
        xclient_line(&identity(), &only),
        "XCLIENT ADDR=203.0.113.7 HELO=client.example\r\n"
    );
    id.rdns = Some("mail.example.test".into());
    assert!(xclient_line(&id, &[]).starts_with("XCLIENT NAME=mail.example.test ADDR="));
}

#[tokio::test]
async fn relay_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut b = Backend::new(pool(&[dead]), identity(), plain());
    is_send(&b.mail("a@x", ""));
    is_send(&b.rcpt("b@y", ""));
    is_send(&b.data_start());
    is_send(&b.data_chunk(b""));
    is_send(&b.data_end());
    is_send(&b.rset());
    is_send(&b.abort());
}
