//! Forward-confirmed reverse DNS against the testkit DNS server on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use mxgate_dns::{reverse_query_name, Resolver, ResolverSettings, ReverseName, MAX_PTR_NAMES};
use mxgate_testkit::{reverse_name, DnsServer, RecordType};

const TIMEOUT: Duration = Duration::from_millis(800);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 25);

fn resolver(server: &DnsServer) -> Resolver {
    Resolver::new(&ResolverSettings {
        servers: vec![server.addr()],
        timeout: Duration::from_millis(500),
        attempts: 1,
    })
    .unwrap()
}

fn v4(ip: Ipv4Addr) -> IpAddr {
    IpAddr::V4(ip)
}

#[tokio::test]
async fn a_name_resolving_back_is_verified_and_cached() {
    let server = DnsServer::start();
    let r = resolver(&server);
    let ip = v4(CLIENT);
    assert_eq!(reverse_query_name(ip), reverse_name(ip));
    server.add_ptr(&reverse_name(ip), "Mail.Example.TEST.", 300);
    server.add_a("mail.example.test", Ipv4Addr::new(198, 51, 100, 9), 300);
    server.add_a("mail.example.test", CLIENT, 300);

    let got = r.verified_reverse_name(ip, TIMEOUT).await;
    assert_eq!(got, ReverseName::Verified("mail.example.test".into()));
    assert_eq!(
        server.queries(),
        vec![
            ("25.2.0.192.in-addr.arpa".to_string(), RecordType::PTR),
            ("mail.example.test".to_string(), RecordType::A),
        ]
    );
    // Cached: no second query. An IPv4-mapped address is the same client.
    let mapped = IpAddr::V6(CLIENT.to_ipv6_mapped());
    assert_eq!(r.verified_reverse_name(mapped, TIMEOUT).await, got);
    assert_eq!(server.queries().len(), 2);
}

#[tokio::test]
async fn a_name_not_resolving_back_is_unverified() {
    let server = DnsServer::start();
    let r = resolver(&server);
    let ip = v4(CLIENT);
    server.add_ptr(&reverse_name(ip), "forged.example.test", 300);
    server.add_a("forged.example.test", Ipv4Addr::new(198, 51, 100, 9), 300);
    assert_eq!(
        r.verified_reverse_name(ip, TIMEOUT).await,
        ReverseName::Unverified
    );
    // A name without any address is no better.
    let other = v4(Ipv4Addr::new(192, 0, 2, 26));
    server.add_ptr(&reverse_name(other), "nowhere.example.test", 300);
    assert_eq!(
        r.verified_reverse_name(other, TIMEOUT).await,
        ReverseName::Unverified
    );
}

#[tokio::test]
async fn no_ptr_is_none_and_cached() {
    let server = DnsServer::start();
    let r = resolver(&server);
    let ip = v4(CLIENT);
    assert_eq!(
        r.verified_reverse_name(ip, TIMEOUT).await,
        ReverseName::None
    );
    assert_eq!(
        r.verified_reverse_name(ip, TIMEOUT).await,
        ReverseName::None
    );
    assert_eq!(server.queries().len(), 1, "the negative answer is cached");
}

#[tokio::test]
async fn servfail_and_timeouts_are_tempfail_and_not_cached() {
    let server = DnsServer::start();
    let r = resolver(&server);
    let ip = v4(CLIENT);
    server.set_servfail(&reverse_name(ip));
    assert_eq!(
        r.verified_reverse_name(ip, TIMEOUT).await,
        ReverseName::TempFail
    );
    // (hickory may ask SERVFAIL again over TCP: count, don't assume 1.)
    let first = server.queries().len();
    assert!(first >= 1);
    assert_eq!(
        r.verified_reverse_name(ip, TIMEOUT).await,
        ReverseName::TempFail
    );
    assert!(server.queries().len() > first, "a failure is asked again");

    // The forward lookup is too slow for the whole budget.
    let slow = v4(Ipv4Addr::new(192, 0, 2, 27));
    server.add_ptr(&reverse_name(slow), "slow.example.test", 300);
    server.add_a("slow.example.test", Ipv4Addr::new(192, 0, 2, 27), 300);
    server.set_delay("slow.example.test", Duration::from_secs(3));
    let started = Instant::now();
    assert_eq!(
        r.verified_reverse_name(slow, Duration::from_millis(300))
            .await,
        ReverseName::TempFail
    );
    assert!(started.elapsed() < Duration::from_millis(1000));

    // Once the server answers in time, the name is verified.
    server.set_delay("slow.example.test", Duration::ZERO);
    assert_eq!(
        r.verified_reverse_name(slow, TIMEOUT).await,
        ReverseName::Verified("slow.example.test".into())
    );
}

#[tokio::test]
async fn the_first_matching_name_of_at_most_five_is_verified() {
    let server = DnsServer::start();
    let r = resolver(&server);
    let ip = v4(CLIENT);
    let ptr = reverse_name(ip);
    for i in 0..8 {
        server.add_ptr(&ptr, &format!("h{i}.example.test"), 300);
    }
    // h1 fails, h3 and h4 match: h3 is the first match in PTR order. h7
    // would match too, but is beyond the fifth name and never asked.
    server.set_servfail("h1.example.test");
    for name in ["h3", "h4", "h7"] {
        server.add_a(&format!("{name}.example.test"), CLIENT, 300);
    }
    assert_eq!(
        r.verified_reverse_name(ip, TIMEOUT).await,
        ReverseName::Verified("h3.example.test".into())
    );
    // (hickory may ask the SERVFAIL name again over TCP.)
    let mut asked = server.queries();
    asked.dedup();
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), 1 + MAX_PTR_NAMES, "{asked:?}");
    assert!(!asked.iter().any(|(n, _)| n == "h7.example.test"));

    // Only a failed name could have matched: no verdict.
    let other = v4(Ipv4Addr::new(192, 0, 2, 28));
    server.add_ptr(&reverse_name(other), "h1.example.test", 300);
    server.add_ptr(&reverse_name(other), "h0.example.test", 300);
    assert_eq!(
        r.verified_reverse_name(other, TIMEOUT).await,
        ReverseName::TempFail
    );
}

#[tokio::test]
async fn ipv6_clients_are_checked_against_aaaa() {
    let server = DnsServer::start();
    let r = resolver(&server);
    let v6: Ipv6Addr = "2001:db8::25".parse().unwrap();
    let ip = IpAddr::V6(v6);
    server.add_ptr(&reverse_name(ip), "mail6.example.test", 300);
    server.add_a("mail6.example.test", CLIENT, 300);
    server.add_aaaa("mail6.example.test", v6, 300);
    assert_eq!(
        r.verified_reverse_name(ip, TIMEOUT).await,
        ReverseName::Verified("mail6.example.test".into())
    );
    assert_eq!(
        server.queries(),
        vec![
            (reverse_name(ip), RecordType::PTR),
            ("mail6.example.test".to_string(), RecordType::AAAA),
        ]
    );
}

#[tokio::test]
async fn loopback_is_answered_locally() {
    // RFC 6761: hickory answers the loopback reverse zone and `localhost`
    // itself (or from /etc/hosts, whose name for 127.0.0.1 differs between
    // machines) without asking any server.
    let server = DnsServer::start();
    let r = resolver(&server);
    let ip = v4(Ipv4Addr::LOCALHOST);
    server.add_ptr(&reverse_name(ip), "mail.example.test", 300);
    let got = r.verified_reverse_name(ip, TIMEOUT).await;
    assert!(
        matches!(got, ReverseName::Verified(ref name) if name != "mail.example.test"),
        "{got:?}"
    );
    assert!(server.queries().is_empty());
}
