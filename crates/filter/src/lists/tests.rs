//! Unit tests for [`super`].

use super::*;
use ListAction::{Allow, Block};

fn lists(entries: &[(&str, &str, ListAction)]) -> Lists {
    Lists::new(
        entries
            .iter()
            .map(|(k, v, a)| ListEntry::parse(k, v, *a).unwrap())
            .collect(),
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn client_cidr_v4_v6_and_mapped() {
    let l = lists(&[
        ("client", "198.51.100.0/24", Block),
        ("client", "2001:db8::/32", Block),
        ("client", "203.0.113.7", Allow),
    ]);
    assert!(l.check_client(ip("198.51.100.9"), None).is_block());
    assert!(l.check_client(ip("::ffff:198.51.100.9"), None).is_block());
    assert!(l.check_client(ip("2001:db8:1::1"), None).is_block());
    assert!(l.check_client(ip("203.0.113.7"), None).is_allow());
    assert!(l.check_client(ip("::ffff:203.0.113.7"), None).is_allow());
    assert_eq!(l.check_client(ip("203.0.113.8"), None), Verdict::None);
}

#[test]
fn block_beats_allow_within_a_stage() {
    let l = lists(&[
        ("client", "198.51.100.0/24", Allow),
        ("client", "198.51.100.66", Block),
    ]);
    assert_eq!(
        l.check_client(ip("198.51.100.66"), None),
        Verdict::Block("client 198.51.100.66/32".into())
    );
    assert!(l.check_client(ip("198.51.100.1"), None).is_allow());
}

#[test]
fn block_at_a_later_stage_refuses_an_allowed_client() {
    let l = lists(&[
        ("client", "198.51.100.0/24", Allow),
        ("sender", "Spammer@Example.org", Block),
    ]);
    assert!(l.check_client(ip("198.51.100.1"), None).is_allow());
    assert!(l.check_sender("spammer@example.ORG").is_block());
}

#[test]
fn reverse_name_exact_and_suffix() {
    let l = lists(&[
        ("reverse_name", ".dyn.example.net", Block),
        ("reverse_name", "mx.partner.example", Allow),
    ]);
    let a = ip("192.0.2.1");
    assert!(l
        .check_client(a, Some("host-1.DYN.example.net."))
        .is_block());
    assert_eq!(l.check_client(a, Some("dyn.example.net")), Verdict::None);
    assert_eq!(l.check_client(a, Some("xdyn.example.net")), Verdict::None);
    assert!(l.check_client(a, Some("MX.partner.example")).is_allow());
    assert_eq!(l.check_client(a, None), Verdict::None);
}

#[test]
fn helo_case_insensitive_and_suffix() {
    let l = lists(&[
        ("helo", "localhost", Block),
        ("helo", ".bad.example", Block),
    ]);
    assert!(l.check_helo("LocalHost").is_block());
    assert!(l.check_helo("a.b.bad.example").is_block());
    assert_eq!(l.check_helo("good.example"), Verdict::None);
}

#[test]
fn sender_and_sender_domain() {
    let l = lists(&[
        ("sender", "ceo@example.com", Allow),
        ("sender_domain", "spam.example", Block),
        ("sender_domain", ".spam.example", Block),
    ]);
    assert!(l.check_sender("CEO@example.com").is_allow());
    assert!(l.check_sender("x@spam.example").is_block());
    assert!(l.check_sender("x@mail.Spam.Example").is_block());
    assert_eq!(l.check_sender(""), Verdict::None);
    assert_eq!(l.check_sender("x@notspam.example"), Verdict::None);
}

#[test]
fn recipient_exact() {
    let l = lists(&[("recipient", "abuse@example.com", Allow)]);
    assert!(l.check_recipient("Abuse@Example.com").is_allow());
    assert_eq!(l.check_recipient("postmaster@example.com"), Verdict::None);
}

#[test]
fn parse_errors_are_clear() {
    let e = ListEntry::parse("client", "198.51.100.0/33", Block).unwrap_err();
    assert!(matches!(e, ListError::BadCidr { .. }), "{e}");
    let e = ListEntry::parse("client", "198.51.100.7/24", Block).unwrap_err();
    assert!(e.to_string().contains("198.51.100.0/24"), "{e}");
    let e = ListEntry::parse("sender_domain", ".", Block).unwrap_err();
    assert!(matches!(e, ListError::EmptyName { .. }), "{e}");
    let e = ListEntry::parse("sender_domain", "", Block).unwrap_err();
    assert!(matches!(e, ListError::EmptyName { .. }));
    let e = ListEntry::parse("sender", "nobody", Block).unwrap_err();
    assert!(matches!(e, ListError::BadAddress { .. }));
    let e = ListEntry::parse("ip", "1.2.3.4", Block).unwrap_err();
    assert!(matches!(e, ListError::UnknownKind(_)));
}
