//! `mx_lookup` against the testkit's loopback DNS server: MX hosts sorted by
//! preference with their addresses, the implicit MX, a null MX, and
//! NXDOMAIN, SERVFAIL and timeouts reported as data.

use mxgate_diagnostics::{mx_lookup, MxOutcome};
use mxgate_dns::{Resolver, ResolverSettings};
use mxgate_testkit::DnsServer;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

fn resolver(dns: &DnsServer) -> Resolver {
    Resolver::new(&ResolverSettings {
        servers: vec![dns.addr()],
        timeout: Duration::from_millis(600),
        attempts: 1,
    })
    .unwrap()
}

#[tokio::test]
async fn mx_hosts_come_sorted_by_preference_with_their_addresses() {
    let dns = DnsServer::start();
    dns.add_mx("example.test", 20, "mx2.example.test", 300);
    dns.add_mx("example.test", 10, "mx1.example.test", 300);
    dns.add_mx("example.test", 10, "mx0.example.test", 300);
    dns.add_mx("example.test", 30, "gone.example.test", 300);
    dns.add_a("mx0.example.test", Ipv4Addr::new(192, 0, 2, 10), 60);
    dns.add_a("mx1.example.test", Ipv4Addr::new(192, 0, 2, 11), 60);
    dns.add_aaaa(
        "mx1.example.test",
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11),
        60,
    );
    dns.add_aaaa(
        "mx2.example.test",
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x12),
        60,
    );

    let report = mx_lookup(&resolver(&dns), "Example.TEST.").await;
    assert_eq!(report.domain, "example.test");
    assert_eq!(report.outcome, MxOutcome::Records);
    let summary: Vec<(u16, &str)> = report
        .hosts
        .iter()
        .map(|h| (h.preference, h.name.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (10, "mx0.example.test"),
            (10, "mx1.example.test"),
            (20, "mx2.example.test"),
            (30, "gone.example.test")
        ]
    );
    let mx1 = &report.hosts[1];
    assert_eq!(mx1.ipv4, [Ipv4Addr::new(192, 0, 2, 11)]);
    assert_eq!(mx1.ipv6.len(), 1);
    assert_eq!((mx1.ttl_s, &mx1.error), (Some(300), &None));
    assert!(report.hosts[2].ipv4.is_empty() && report.hosts[2].error.is_none());
    assert_eq!(
        report.hosts[3].error.as_deref(),
        Some("no such host (NXDOMAIN)")
    );
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].starts_with("gone.example.test has no usable address"));
    assert!(report.millis > 0.0);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["outcome"]["kind"], "records");
}

#[tokio::test]
async fn a_domain_without_mx_falls_back_to_its_own_address() {
    let dns = DnsServer::start();
    dns.add_a("plain.test", Ipv4Addr::new(192, 0, 2, 25), 300);
    dns.add_txt("noaddr.test", "v=spf1 -all", 300);
    let resolver = resolver(&dns);

    let report = mx_lookup(&resolver, "plain.test").await;
    assert_eq!(report.outcome, MxOutcome::Implicit);
    assert_eq!(report.hosts.len(), 1);
    assert_eq!(
        (report.hosts[0].preference, report.hosts[0].name.as_str()),
        (0, "plain.test")
    );
    assert_eq!(report.hosts[0].ipv4, [Ipv4Addr::new(192, 0, 2, 25)]);
    assert!(report.warnings.is_empty());

    let report = mx_lookup(&resolver, "noaddr.test").await;
    assert_eq!(report.outcome, MxOutcome::Implicit);
    assert_eq!(
        report.hosts[0].error.as_deref(),
        Some("no A or AAAA record")
    );
    assert!(
        report.warnings[0].contains("cannot be delivered"),
        "{:?}",
        report.warnings
    );
}

#[tokio::test]
async fn a_null_mx_is_reported_as_such() {
    let dns = DnsServer::start();
    dns.add_mx("nomail.test", 0, ".", 300);
    let report = mx_lookup(&resolver(&dns), "nomail.test").await;
    assert_eq!(report.outcome, MxOutcome::NullMx);
    assert!(report.hosts.is_empty());
    assert!(report.warnings.is_empty());
}

#[tokio::test]
async fn failures_are_data() {
    let dns = DnsServer::start();
    dns.set_servfail("broken.test");
    dns.add_mx("slow.test", 10, "mx.slow.test", 300);
    dns.set_delay("slow.test", Duration::from_secs(3));
    let resolver = resolver(&dns);

    let report = mx_lookup(&resolver, "missing.test").await;
    assert_eq!(report.outcome, MxOutcome::NoSuchDomain);
    assert!(report.hosts.is_empty());

    let report = mx_lookup(&resolver, "broken.test").await;
    let MxOutcome::Failed { error } = &report.outcome else {
        panic!("{report:?}")
    };
    assert!(error.contains("SERVFAIL"), "{error}");

    let report = mx_lookup(&resolver, "slow.test").await;
    assert_eq!(
        report.outcome,
        MxOutcome::Failed {
            error: "timeout".into()
        }
    );
    assert!(report.millis < 2_000.0, "{}", report.millis);

    let report = mx_lookup(&resolver, "bad..name").await;
    assert!(
        matches!(report.outcome, MxOutcome::InvalidName { .. }),
        "{report:?}"
    );
    let report = mx_lookup(&resolver, ".").await;
    assert!(
        matches!(report.outcome, MxOutcome::InvalidName { .. }),
        "{report:?}"
    );
}
