//! Unit tests for [`super`].

use super::*;

const T0: u64 = 1_700_000_000;

fn gl() -> Greylist {
    Greylist::new(GreylistSettings::default()).unwrap()
}

fn t<'a>(ip: &str, sender: &'a str, rcpt: &'a str) -> Triplet<'a> {
    Triplet {
        client: ip.parse().unwrap(),
        sender,
        recipient: rcpt,
    }
}

const NONE: GreylistContext<'static> = GreylistContext {
    spf_pass_domain: None,
    dmarc_aligned_pass: false,
};

#[test]
fn first_defers_early_retry_defers_later_retry_passes() {
    let g = gl();
    let mut st = MemoryStore::default();
    let a = t("192.0.2.10", "Alice@Example.org", "bob@example.com");
    let d = g.check(&mut st, &a, T0, &NONE);
    assert_eq!(d, GreylistDecision::Defer { retry_after_s: 300 });
    assert_eq!(
        d.reply().unwrap().to_string(),
        "451 4.7.1 Greylisted, please try again later"
    );
    assert_eq!(
        g.check(&mut st, &a, T0 + 100, &NONE),
        GreylistDecision::Defer { retry_after_s: 200 }
    );
    assert_eq!(
        g.check(&mut st, &a, T0 + 300, &NONE),
        GreylistDecision::Pass(PassReason::Retried)
    );
    assert_eq!(
        g.check(&mut st, &a, T0 + 86_400, &NONE),
        GreylistDecision::Pass(PassReason::Known)
    );
}

#[test]
fn unpassed_entry_past_the_window_starts_over() {
    let g = gl();
    let mut st = MemoryStore::default();
    let a = t("192.0.2.10", "a@example.org", "b@example.com");
    g.check(&mut st, &a, T0, &NONE);
    let late = T0 + 2 * 86_400 + 1;
    assert_eq!(
        g.check(&mut st, &a, late, &NONE),
        GreylistDecision::Defer { retry_after_s: 300 }
    );
    assert_eq!(
        g.check(&mut st, &a, late + 300, &NONE),
        GreylistDecision::Pass(PassReason::Retried)
    );
}

#[test]
fn passed_entry_lives_for_lifetime_since_last_seen() {
    let g = gl();
    let mut st = MemoryStore::default();
    let a = t("192.0.2.10", "a@example.org", "b@example.com");
    g.check(&mut st, &a, T0, &NONE);
    g.check(&mut st, &a, T0 + 300, &NONE);
    let day = 86_400;
    // Seen again after 30 days: refreshes.
    assert!(matches!(
        g.check(&mut st, &a, T0 + 30 * day, &NONE),
        GreylistDecision::Pass(_)
    ));
    // 34 days after that: still alive.
    assert!(matches!(
        g.check(&mut st, &a, T0 + 64 * day, &NONE),
        GreylistDecision::Pass(_)
    ));
    // 36 days of silence: expired, greylisted again.
    assert!(matches!(
        g.check(&mut st, &a, T0 + 100 * day, &NONE),
        GreylistDecision::Defer { .. }
    ));
}

#[test]
fn retry_from_same_slash24_passes() {
    let g = gl();
    let mut st = MemoryStore::default();
    g.check(
        &mut st,
        &t("192.0.2.10", "a@example.org", "b@example.com"),
        T0,
        &NONE,
    );
    assert_eq!(
        g.check(
            &mut st,
            &t("192.0.2.200", "A@EXAMPLE.org", "B@example.com"),
            T0 + 400,
            &NONE
        ),
        GreylistDecision::Pass(PassReason::Retried)
    );
    // Another /24 without SPF keying: a new triplet.
    assert!(matches!(
        g.check(
            &mut st,
            &t("198.51.100.1", "a@example.org", "b@example.com"),
            T0 + 500,
            &NONE
        ),
        GreylistDecision::Defer { .. }
    ));
}

#[test]
fn spf_keying_passes_retry_from_another_pool() {
    let g = gl();
    let mut st = MemoryStore::default();
    let spf = GreylistContext {
        spf_pass_domain: Some("Outlook.example"),
        dmarc_aligned_pass: false,
    };
    let first = t("40.92.1.1", "x@outlook.example", "b@example.com");
    assert!(matches!(
        g.check(&mut st, &first, T0, &spf),
        GreylistDecision::Defer { .. }
    ));
    let retry = t("52.100.9.9", "y@outlook.example", "b@example.com");
    assert_eq!(
        g.check(&mut st, &retry, T0 + 600, &spf),
        GreylistDecision::Pass(PassReason::Retried)
    );
    // Without SPF keying the same retry is a new triplet.
    let g2 = Greylist::new(GreylistSettings {
        spf_domain_keying: false,
        ..GreylistSettings::default()
    })
    .unwrap();
    let mut st2 = MemoryStore::default();
    g2.check(&mut st2, &first, T0, &spf);
    assert!(matches!(
        g2.check(&mut st2, &retry, T0 + 600, &spf),
        GreylistDecision::Defer { .. }
    ));
}

#[test]
fn dmarc_pass_skips() {
    let g = gl();
    let mut st = MemoryStore::default();
    let ctx = GreylistContext {
        spf_pass_domain: None,
        dmarc_aligned_pass: true,
    };
    let a = t("192.0.2.1", "a@example.org", "b@example.com");
    assert_eq!(
        g.check(&mut st, &a, T0, &ctx),
        GreylistDecision::Skipped(SkipReason::DmarcPass)
    );
    assert!(st.triplets.is_empty());
}

#[test]
fn network_auto_allowlisted_after_n_passes() {
    let g = gl();
    let mut st = MemoryStore::default();
    let rcpts = [
        "r1@x.example",
        "r2@x.example",
        "r3@x.example",
        "r4@x.example",
        "r5@x.example",
    ];
    for r in rcpts {
        let a = t("192.0.2.7", "s@example.org", r);
        g.check(&mut st, &a, T0, &NONE);
        assert_eq!(
            g.check(&mut st, &a, T0 + 300, &NONE),
            GreylistDecision::Pass(PassReason::Retried)
        );
    }
    let new = t("192.0.2.8", "other@else.example", "r9@x.example");
    let d = g.check(&mut st, &new, T0 + 400, &NONE);
    assert_eq!(d, GreylistDecision::Skipped(SkipReason::AutoAllowed));
    assert_eq!(d.label(), "skip_auto_allow");
    // After `lifetime` of silence the network is greylisted again.
    let later = T0 + 400 + 36 * 86_400;
    assert!(matches!(
        g.check(&mut st, &new, later, &NONE),
        GreylistDecision::Defer { .. }
    ));
}

#[test]
fn ipv6_keyed_by_slash64_and_settings_validated() {
    let g = gl();
    assert_eq!(
        g.client_net("2001:db8:1:2:aaaa::1".parse().unwrap())
            .to_string(),
        "2001:db8:1:2::/64"
    );
    assert_eq!(
        g.client_net("::ffff:192.0.2.99".parse().unwrap())
            .to_string(),
        "192.0.2.0/24"
    );
    let key = g.key(&t("192.0.2.1", "A@b.example", "C@d.example"), &NONE);
    assert_eq!(key.to_string(), "net:192.0.2.0/24 a@b.example c@d.example");
    assert!(Greylist::new(GreylistSettings {
        ipv4_prefix: 33,
        ..GreylistSettings::default()
    })
    .is_err());
    assert_eq!(
        Greylist::new(GreylistSettings {
            retry_window: Duration::from_secs(10),
            ..GreylistSettings::default()
        }),
        Err(GreylistError::Window)
    );
}
