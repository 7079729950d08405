//! Unit tests for [`super`].

use super::*;
use std::time::Duration;

fn rule(key: RateKey, secs: u64) -> RateRule {
    RateRule {
        key,
        window: Duration::from_secs(secs),
        connections: None,
        messages: None,
        recipients: None,
        concurrency: None,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn eleventh_connection_limited_then_reset_with_time() {
    let r = RateRule {
        connections: Some(10),
        ..rule(RateKey::ClientIp, 60)
    };
    let mut rl = RateLimiter::new(vec![r], 100).unwrap();
    let t0 = Instant::now();
    for _ in 0..10 {
        let t = rl.connection(ip("192.0.2.1"), t0).unwrap();
        rl.release(t);
    }
    let e = rl.connection(ip("192.0.2.1"), t0).unwrap_err();
    assert_eq!(e.metric, Metric::Connections);
    assert_eq!(e.key, "192.0.2.1");
    assert_eq!(
        e.reply.to_string(),
        "421 4.7.0 Too many connections, try again later"
    );
    // Another client is not affected.
    assert!(rl.connection(ip("192.0.2.2"), t0).is_ok());
    // Six seconds later one token is back; a full window restores all.
    assert!(rl
        .connection(ip("192.0.2.1"), t0 + Duration::from_secs(6))
        .is_ok());
    assert!(rl
        .connection(ip("192.0.2.1"), t0 + Duration::from_secs(6))
        .is_err());
    let later = t0 + Duration::from_secs(70);
    for _ in 0..10 {
        assert!(rl.connection(ip("192.0.2.1"), later).is_ok());
    }
    assert!(rl.connection(ip("192.0.2.1"), later).is_err());
}

#[test]
fn concurrency_released_on_ticket_return() {
    let r = RateRule {
        concurrency: Some(2),
        ..rule(RateKey::ClientIp, 60)
    };
    let mut rl = RateLimiter::new(vec![r], 100).unwrap();
    let t0 = Instant::now();
    let a = rl.connection(ip("192.0.2.1"), t0).unwrap();
    let b = rl.connection(ip("192.0.2.1"), t0).unwrap();
    let e = rl.connection(ip("192.0.2.1"), t0).unwrap_err();
    assert_eq!(e.metric, Metric::Concurrency);
    assert_eq!(e.reply.code, 421);
    assert_eq!(rl.open_connections(0, "192.0.2.1"), 2);
    rl.release(a);
    let c = rl.connection(ip("192.0.2.1"), t0).unwrap();
    rl.release(b);
    rl.release(c);
    assert_eq!(rl.open_connections(0, "192.0.2.1"), 0);
}

#[test]
fn client_net_groups_slash24_and_slash64() {
    let r = RateRule {
        connections: Some(2),
        ..rule(RateKey::ClientNet, 60)
    };
    let mut rl = RateLimiter::new(vec![r], 100).unwrap();
    let t0 = Instant::now();
    let _ = rl.connection(ip("192.0.2.1"), t0).unwrap();
    let _ = rl.connection(ip("::ffff:192.0.2.200"), t0).unwrap();
    let e = rl.connection(ip("192.0.2.99"), t0).unwrap_err();
    assert_eq!(e.key, "192.0.2.0/24");
    assert!(rl.connection(ip("192.0.3.1"), t0).is_ok());
    let _ = rl.connection(ip("2001:db8::1"), t0).unwrap();
    let _ = rl.connection(ip("2001:db8::ffff:1"), t0).unwrap();
    assert_eq!(
        rl.connection(ip("2001:db8::2"), t0).unwrap_err().key,
        "2001:db8::/64"
    );
}

#[test]
fn messages_and_recipients_by_sender_and_domain() {
    let rules = vec![
        RateRule {
            messages: Some(2),
            ..rule(RateKey::SenderDomain, 3600)
        },
        RateRule {
            recipients: Some(3),
            ..rule(RateKey::RecipientDomain, 3600)
        },
    ];
    let mut rl = RateLimiter::new(rules, 100).unwrap();
    let t0 = Instant::now();
    let c = ip("192.0.2.1");
    rl.message(c, "a@Example.org", t0).unwrap();
    rl.message(c, "b@example.org", t0).unwrap();
    let e = rl.message(c, "c@example.org", t0).unwrap_err();
    assert_eq!((e.rule, e.key.as_str()), (0, "example.org"));
    assert_eq!(
        e.reply.to_string(),
        "451 4.7.1 Too many messages, try again later"
    );
    rl.message(c, "", t0).unwrap(); // null sender has no domain
    for _ in 0..3 {
        rl.recipient(c, "x@y.example", "u@dest.example", t0)
            .unwrap();
    }
    let e = rl
        .recipient(c, "x@y.example", "v@DEST.example", t0)
        .unwrap_err();
    assert_eq!(
        (e.metric, e.key.as_str()),
        (Metric::Recipients, "dest.example")
    );
}

#[test]
fn limited_event_uses_no_tokens_of_other_rules() {
    let rules = vec![
        RateRule {
            connections: Some(5),
            ..rule(RateKey::ClientNet, 60)
        },
        RateRule {
            connections: Some(1),
            ..rule(RateKey::ClientIp, 60)
        },
    ];
    let mut rl = RateLimiter::new(rules, 100).unwrap();
    let t0 = Instant::now();
    let _ = rl.connection(ip("192.0.2.1"), t0).unwrap();
    for _ in 0..3 {
        assert!(rl.connection(ip("192.0.2.1"), t0).is_err());
    }
    // The /24 bucket still has 4 tokens.
    for n in 2..6 {
        assert!(rl.connection(ip(&format!("192.0.2.{n}")), t0).is_ok());
    }
    assert_eq!(rl.connection(ip("192.0.2.9"), t0).unwrap_err().rule, 0);
}

#[test]
fn memory_is_bounded() {
    let r = RateRule {
        connections: Some(10),
        ..rule(RateKey::ClientIp, 60)
    };
    let mut rl = RateLimiter::new(vec![r], 3).unwrap();
    let t0 = Instant::now();
    for n in 1..=5u64 {
        let _ = rl
            .connection(ip(&format!("192.0.2.{n}")), t0 + Duration::from_secs(n))
            .unwrap();
    }
    assert_eq!(rl.tracked_keys(), 3);
    rl.prune(t0 + Duration::from_secs(64));
    assert_eq!(rl.tracked_keys(), 2);
    rl.prune(t0 + Duration::from_secs(200));
    assert_eq!(rl.tracked_keys(), 0);
}

#[test]
fn rules_validated() {
    assert_eq!("client_net".parse::<RateKey>(), Ok(RateKey::ClientNet));
    assert!(matches!(
        "ip".parse::<RateKey>(),
        Err(RateError::UnknownKey(_))
    ));
    let bad = |r: RateRule| RateLimiter::new(vec![r], 10).unwrap_err();
    assert_eq!(bad(rule(RateKey::ClientIp, 60)), RateError::NoLimit(0));
    assert_eq!(
        bad(RateRule {
            connections: Some(1),
            ..rule(RateKey::ClientIp, 0)
        }),
        RateError::ZeroWindow(0)
    );
    assert!(matches!(
        bad(RateRule {
            concurrency: Some(1),
            ..rule(RateKey::Sender, 60)
        }),
        RateError::Mismatch(0, "concurrency", RateKey::Sender)
    ));
    assert!(matches!(
        bad(RateRule {
            messages: Some(1),
            ..rule(RateKey::RecipientDomain, 60)
        }),
        RateError::Mismatch(..)
    ));
    assert!(matches!(
        bad(RateRule {
            messages: Some(0),
            ..rule(RateKey::Sender, 60)
        }),
        RateError::ZeroLimit(0, "messages")
    ));
}
