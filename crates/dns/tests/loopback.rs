//! The resolver against the testkit DNS server on loopback (real UDP/TCP path).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use mxgate_dns::{
    dnsbl_query_name, DnsError, DnsblOutcome, Resolver, ResolverSettings, MAX_TTL, MIN_TTL,
};
use mxgate_testkit::{DnsServer, RecordType};

fn resolver(server: &DnsServer, timeout_ms: u64) -> Resolver {
    Resolver::new(&ResolverSettings {
        servers: vec![server.addr()],
        timeout: Duration::from_millis(timeout_ms),
        attempts: 1,
    })
    .unwrap()
}

fn zones(names: &[&str]) -> Vec<String> {
    names.iter().map(|z| (*z).to_string()).collect()
}

#[tokio::test]
async fn a_txt_nxdomain_servfail_timeout() {
    let server = DnsServer::start();
    let r = resolver(&server, 500);
    server.add_a("mx.example", Ipv4Addr::new(192, 0, 2, 7), 300);
    server.add_a("mx.example", Ipv4Addr::new(192, 0, 2, 8), 200);
    let spf = format!("v=spf1 {}-all", "ip4:198.51.100.0/24 ".repeat(32));
    assert!(spf.len() > 600);
    server.add_txt("example.com", &spf, 3600);
    server.add_txt("example.com", "short", 3600);

    let a = r.lookup_ipv4("mx.example").await.unwrap();
    assert_eq!(
        a.records,
        vec![Ipv4Addr::new(192, 0, 2, 7), Ipv4Addr::new(192, 0, 2, 8)]
    );
    assert_eq!(a.ttl, Duration::from_secs(200));

    let txt = r.lookup_txt("example.com.").await.unwrap();
    assert_eq!(txt.records.len(), 2);
    assert!(txt.records.contains(&spf));
    assert!(txt.records.contains(&"short".to_string()));

    let none = r.lookup_ipv4("nothing.example").await.unwrap();
    assert!(none.records.is_empty());
    assert_eq!(none.ttl, Duration::from_secs(60));
    let nodata = r.lookup_txt("mx.example").await.unwrap();
    assert!(nodata.records.is_empty());

    server.set_servfail("broken.example");
    assert_eq!(
        r.lookup_ipv4("broken.example").await,
        Err(DnsError::ServFail)
    );

    server.add_a("slow.example", Ipv4Addr::new(192, 0, 2, 9), 60);
    server.set_delay("slow.example", Duration::from_secs(3));
    let started = Instant::now();
    assert_eq!(r.lookup_ipv4("slow.example").await, Err(DnsError::Timeout));
    assert!(started.elapsed() < Duration::from_millis(1000));
}

#[tokio::test]
async fn dnsbl_zones_are_asked_in_parallel() {
    let server = DnsServer::start();
    let timeout = Duration::from_millis(600);
    let r = resolver(&server, 600);
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    server.add_a("1.2.0.192.black.example", Ipv4Addr::new(127, 0, 0, 2), 900);
    server.add_a("1.2.0.192.black.example", Ipv4Addr::new(127, 0, 0, 4), 900);
    server.add_a("1.2.0.192.slow.example", Ipv4Addr::new(127, 0, 0, 2), 900);
    server.set_delay("1.2.0.192.slow.example", Duration::from_secs(3));
    // Every zone also answers slowly, but well inside the timeout: in
    // sequence they would take 3 × 350 ms > 2 × timeout minus the slow one.
    server.set_delay("1.2.0.192.black.example", Duration::from_millis(350));
    server.set_delay("1.2.0.192.clean.example", Duration::from_millis(350));

    let started = Instant::now();
    let got = r
        .dnsbl(
            ip,
            &zones(&["black.example", "slow.example", "clean.example"]),
        )
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed < 2 * timeout, "took {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_millis(300),
        "took {elapsed:?}"
    );

    assert_eq!(got.len(), 3);
    assert_eq!(got[0].zone, "black.example");
    assert_eq!(
        got[0].outcome,
        DnsblOutcome::Listed(vec![
            Ipv4Addr::new(127, 0, 0, 2),
            Ipv4Addr::new(127, 0, 0, 4)
        ])
    );
    assert_eq!(got[0].ttl, Duration::from_secs(900));
    assert_eq!(got[1].zone, "slow.example");
    assert_eq!(got[1].outcome, DnsblOutcome::Failed("timeout".into()));
    assert_eq!(got[1].ttl, Duration::ZERO);
    assert_eq!(got[2].outcome, DnsblOutcome::NotListed);
    assert_eq!(got[2].ttl, MIN_TTL);
    // hickory retransmits a UDP query left unanswered for a while (normal
    // resolver behaviour), so a slow name may show up more than once.
    let mut asked = server.queries();
    asked.sort();
    asked.dedup();
    assert_eq!(
        asked,
        vec![
            ("1.2.0.192.black.example".to_string(), RecordType::A),
            ("1.2.0.192.clean.example".to_string(), RecordType::A),
            ("1.2.0.192.slow.example".to_string(), RecordType::A),
        ]
    );
}

#[tokio::test]
async fn ipv6_nibble_names() {
    let server = DnsServer::start();
    let r = resolver(&server, 1000);
    let ip: Ipv6Addr = "2001:db8::25".parse().unwrap();
    let name = dnsbl_query_name(IpAddr::V6(ip), "v6bl.example");
    assert_eq!(
        name,
        "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.v6bl.example"
    );
    server.add_a(&name, Ipv4Addr::new(127, 0, 0, 3), 300);
    let got = r.dnsbl(IpAddr::V6(ip), &zones(&["v6bl.example"])).await;
    assert_eq!(
        got[0].outcome,
        DnsblOutcome::Listed(vec![Ipv4Addr::new(127, 0, 0, 3)])
    );
    assert_eq!(server.queries(), vec![(name, RecordType::A)]);
}

#[tokio::test]
async fn cache_hits_send_no_query_and_ttls_are_clamped() {
    let server = DnsServer::start();
    let r = resolver(&server, 1000);
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    server.add_a("9.113.0.203.short.example", Ipv4Addr::new(127, 0, 0, 2), 5);
    server.add_a(
        "9.113.0.203.long.example",
        Ipv4Addr::new(127, 0, 0, 10),
        86_400,
    );
    server.add_a(
        "9.113.0.203.refused.example",
        Ipv4Addr::new(127, 255, 255, 254),
        300,
    );
    let list = zones(&["short.example", "long.example", "refused.example"]);

    let first = r.dnsbl(ip, &list).await;
    assert_eq!(first[0].ttl, MIN_TTL);
    assert_eq!(first[1].ttl, MAX_TTL);
    assert!(
        matches!(first[2].outcome, DnsblOutcome::Failed(ref why) if why.contains("127.255.255.254"))
    );
    assert_eq!(server.queries().len(), 3);

    let second = r.dnsbl(ip, &list).await;
    assert_eq!(second[0].outcome, first[0].outcome);
    assert_eq!(second[1].outcome, first[1].outcome);
    assert!(second[0].ttl <= MIN_TTL && second[0].ttl > MIN_TTL - Duration::from_secs(5));
    let asked = server.queries();
    assert_eq!(
        asked.len(),
        4,
        "only the failed zone is asked again: {asked:?}"
    );
    assert_eq!(asked[3].0, "9.113.0.203.refused.example");
    for name in ["9.113.0.203.short.example", "9.113.0.203.long.example"] {
        assert_eq!(asked.iter().filter(|(n, _)| n == name).count(), 1);
    }
}

#[test]
fn system_resolver_settings_build() {
    let settings = ResolverSettings::default();
    assert_eq!(settings.timeout, Duration::from_millis(1500));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Building may fail only when /etc/resolv.conf is unreadable; it never panics.
    let _ = rt.block_on(async { Resolver::new(&settings).map(|r| r.hickory_config()) });
}
