//! The smtp-mode backend client (`mxgate_gateway::smtp::outbound::Backend`)
//! against a REAL Postfix: XCLIENT and STARTTLS make Postfix log the real
//! client and a TLS session, PROXY v2 works the same, and a transaction
//! aborted mid-DATA is not delivered.

mod support;

use mxgate_balance::check::{BoxFuture, CheckError, CheckReport, HealthCheck};
use mxgate_balance::{Pool, Pools};
use mxgate_config::{CheckSettings, Policy};
use mxgate_gateway::smtp::outbound::{Announce, Backend, BackendTls, OutboundSettings};
use mxgate_gateway::smtp::relay::{ClientIdentity, Relay};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::{Postfix, DELIVERED};

const WAIT: Duration = Duration::from_secs(20);

/// Leaves the server's health unknown (usable): the test is about the
/// relay, not the checks.
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

fn pool(pf: &Postfix) -> Arc<Pool> {
    let toml = format!(
        "[[pool]]\nname = \"mta\"\n[[pool.server]]\nname = \"{}\"\naddress = \"{}\"\n",
        pf.name(),
        pf.addr()
    );
    let pools = Pools::with_checker(Arc::new(Unchecked));
    pools.apply(&Policy::parse(&toml).unwrap().pools);
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
        ehlo_name: "gw.example.test".into(),
        command_timeout: Duration::from_secs(10),
        data_end_timeout: Duration::from_secs(10),
        ..OutboundSettings::default()
    }
}

/// One whole transaction; the final reply code.
async fn send_one(b: &mut Backend, to: &str) -> u16 {
    assert_eq!(b.mail("sender@client.test", "").await.unwrap().code, 250);
    assert_eq!(b.rcpt(to, "").await.unwrap().code, 250);
    assert_eq!(b.data_start().await.unwrap().code, 354);
    b.data_chunk(b"Subject: outbound test\r\n\r\n..a stuffed dot\r\nbye\r\n")
        .await
        .unwrap();
    b.data_end().await.unwrap().code
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn xclient_and_starttls_make_postfix_see_the_real_client() {
    if Postfix::skip_unless_available("xclient_and_starttls_make_postfix_see_the_real_client") {
        return;
    }
    let pf = Postfix::builder("pfxclient")
        .xclient(true)
        .starttls(true)
        .start();
    runtime().block_on(async {
        let mut b = Backend::new(
            pool(&pf),
            identity(),
            settings(Announce::Xclient, BackendTls::Require),
        );
        assert_eq!(send_one(&mut b, "one@example.test").await, 250);
        b.rset().await;
        assert_eq!(send_one(&mut b, "two@example.test").await, 250);
        b.abort().await;
    });
    pf.wait_log("client=unknown[203.0.113.7]", WAIT);
    pf.wait_log("TLS connection established from", WAIT);
    assert_eq!(pf.wait_log_count(DELIVERED, 2, WAIT), 2);
    // One connection for both transactions, ended with QUIT.
    assert_eq!(pf.count_log("TLS connection established from"), 1);
    pf.wait_log("disconnect from unknown[203.0.113.7]", WAIT);
}

#[test]
fn proxy_v2_makes_postfix_see_the_real_client() {
    if Postfix::skip_unless_available("proxy_v2_makes_postfix_see_the_real_client") {
        return;
    }
    let pf = Postfix::builder("pfproxy2").proxy_protocol(true).start();
    runtime().block_on(async {
        let mut b = Backend::new(
            pool(&pf),
            identity(),
            settings(Announce::ProxyV2, BackendTls::Opportunistic),
        );
        assert_eq!(send_one(&mut b, "user@example.test").await, 250);
        b.abort().await;
    });
    pf.wait_log("connect from unknown[203.0.113.7]", WAIT);
    assert_eq!(pf.wait_log_count(DELIVERED, 1, WAIT), 1);
}

#[test]
fn abort_mid_data_delivers_nothing() {
    if Postfix::skip_unless_available("abort_mid_data_delivers_nothing") {
        return;
    }
    let pf = Postfix::builder("pfabort").start();
    runtime().block_on(async {
        let mut b = Backend::new(
            pool(&pf),
            identity(),
            settings(Announce::None, BackendTls::Off),
        );
        b.mail("sender@client.test", "").await.unwrap();
        b.rcpt("user@example.test", "").await.unwrap();
        assert_eq!(b.data_start().await.unwrap().code, 354);
        b.data_chunk(b"Subject: half\r\n\r\nnot all of it\r\n")
            .await
            .unwrap();
        b.abort().await;
    });
    pf.wait_log("lost connection after DATA", WAIT);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pf.delivered(), 0);
}
