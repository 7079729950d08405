//! Unit tests for [`super`].

use super::*;

fn a(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn filter_syntaxes() {
    let f = ReplyFilter::parse("127.0.0.2").unwrap();
    assert!(f.matches(a("127.0.0.2")));
    assert!(!f.matches(a("127.0.0.3")));
    let f = ReplyFilter::parse("127.0.0.[2..11]").unwrap();
    assert!(f.matches(a("127.0.0.2")) && f.matches(a("127.0.0.11")));
    assert!(!f.matches(a("127.0.0.1")) && !f.matches(a("127.0.0.12")));
    let f = ReplyFilter::parse("127.0.0.[2;4;6]").unwrap();
    assert!(f.matches(a("127.0.0.4")) && !f.matches(a("127.0.0.5")));
    let f = ReplyFilter::parse("127.0.[0..255].[2..11]").unwrap();
    assert!(f.matches(a("127.0.200.3")) && !f.matches(a("127.1.0.3")));
    let f = ReplyFilter::parse("127.0.0.[2;10..11]").unwrap();
    assert!(f.matches(a("127.0.0.10")) && !f.matches(a("127.0.0.3")));
    assert_eq!(f.as_str(), "127.0.0.[2;10..11]");
}

#[test]
fn filter_errors() {
    assert!(matches!(
        ReplyFilter::parse("127.0.0"),
        Err(DnsblError::OctetCount(_))
    ));
    assert!(matches!(
        ReplyFilter::parse("127.0.0.256"),
        Err(DnsblError::BadOctet { .. })
    ));
    assert!(matches!(
        ReplyFilter::parse("127.0.0.[11..2]"),
        Err(DnsblError::ReversedRange { .. })
    ));
    assert!(matches!(
        ReplyFilter::parse("127.0.0.[2;x]"),
        Err(DnsblError::BadOctet { .. })
    ));
    assert!(matches!(
        Zone::new(" ", 1, None),
        Err(DnsblError::BadZone(_))
    ));
}

#[test]
fn query_names() {
    assert_eq!(
        query_name("zen.example", "192.0.2.99".parse().unwrap()),
        "99.2.0.192.zen.example"
    );
    assert_eq!(
        query_name("zen.example.", "::ffff:192.0.2.99".parse().unwrap()),
        "99.2.0.192.zen.example"
    );
    assert_eq!(
        query_name("bl.example", "2001:db8::1".parse().unwrap()),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example"
    );
}

fn zones() -> Vec<Zone> {
    vec![
        Zone::new("zen.example", 3, Some("127.0.0.[2..11]")).unwrap(),
        Zone::new("b.example", 1, None).unwrap(),
        Zone::new("wl.example", -5, None).unwrap(),
    ]
}

fn ans(zone: &str, result: ZoneResult) -> ZoneAnswer {
    ZoneAnswer {
        zone: zone.into(),
        result,
    }
}

#[test]
fn weighted_score_and_failures() {
    let s = score(
        &zones(),
        &[
            ans("zen.example", ZoneResult::Listed(vec![a("127.0.0.4")])),
            ans("b.example", ZoneResult::Failed("timeout".into())),
        ],
    );
    assert_eq!(s.total, 3);
    assert_eq!(s.matched.len(), 1);
    assert_eq!(s.matched[0].zone, "zen.example");
    assert_eq!(
        s.failed,
        vec!["b.example".to_string(), "wl.example".to_string()]
    );
    assert_eq!(s.verdict(3, -1), DnsblVerdict::Listed);
    assert_eq!(s.verdict(4, -1), DnsblVerdict::Pass);
}

#[test]
fn reply_filter_excludes_answers() {
    // 127.255.255.254 is Spamhaus' "query refused" code: not a listing.
    let s = score(
        &zones(),
        &[ans(
            "zen.example",
            ZoneResult::Listed(vec![a("127.255.255.254")]),
        )],
    );
    assert_eq!(s.total, 0);
    assert!(s.matched.is_empty());
}

#[test]
fn allowlist_zone_lowers_the_score() {
    let s = score(
        &zones(),
        &[
            ans("zen.example", ZoneResult::NotListed),
            ans("b.example", ZoneResult::NotListed),
            ans("WL.example.", ZoneResult::Listed(vec![a("127.0.10.1")])),
        ],
    );
    assert_eq!(s.total, -5);
    assert!(s.failed.is_empty());
    assert_eq!(s.verdict(3, -1), DnsblVerdict::Allowlisted);
    assert_eq!(s.verdict(3, 0), DnsblVerdict::Pass);
}

#[test]
fn reply_does_not_leak_unless_asked() {
    let s = score(
        &zones(),
        &[ans("zen.example", ZoneResult::Listed(vec![a("127.0.0.2")]))],
    );
    assert!(!s.reply_text(false).contains("zen.example"));
    assert!(s.reply_text(true).contains("zen.example"));
    assert_eq!(s.reply(false).code, 550);
}
