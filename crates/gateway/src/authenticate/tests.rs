//! The held-message relay against a fake backend and a loopback DNS server
//! publishing real DKIM keys and DMARC records: what reaches the backend,
//! what the sender is answered, and the trail.

use super::*;
use crate::screen::Verdicts;
use crate::smtp::inbound::tests::{identity, Fake};
use mxgate_config::{CheckMode, DmarcMode};
use mxgate_testkit::{DkimSigner25519, DnsServer};

const MESSAGE: &[u8] = b"From: Alice <alice@signed.test>\r\n\
To: bob@example.org\r\n\
Subject: hello\r\n\
Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <1@signed.test>\r\n\
\r\n\
Hello Bob.\r\n\
.A line that starts with a dot.\r\n";

const TRACE: &[u8] = b"Received: from test by mx.example.org\r\n";

struct World {
    dns: DnsServer,
    signer: DkimSigner25519,
    authenticator: Arc<Authenticator>,
}

fn world() -> World {
    let dns = DnsServer::start();
    let signer = DkimSigner25519::new("signed.test", "s1");
    signer.publish(&dns);
    dns.add_txt("_dmarc.signed.test", "v=DMARC1; p=reject", 300);
    dns.add_txt("_dmarc.strict.test", "v=DMARC1; p=reject", 300);
    dns.add_txt("_dmarc.lenient.test", "v=DMARC1; p=quarantine", 300);
    let resolver = mxgate_dns::Resolver::new(&mxgate_dns::ResolverSettings {
        servers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
    })
    .unwrap();
    let authenticator = Arc::new(Authenticator::new(&resolver, "mx.example.org").unwrap());
    World {
        dns,
        signer,
        authenticator,
    }
}

fn auth(dkim: CheckMode, dmarc: DmarcMode, hold_memory: usize) -> AuthSettings {
    AuthSettings {
        spf: CheckMode::Off,
        dkim,
        arc: CheckMode::Tag,
        dmarc,
        hold_memory,
    }
}

struct Run {
    reply: Reply,
    fake: Fake,
    trail: String,
}

/// One transaction of `message` (sender form) through the relay.
async fn run(
    world: &World,
    settings: AuthSettings,
    message: &[u8],
    prepare: impl Fn(&CheckLog),
) -> Run {
    let fake = Fake::default();
    let log = CheckLog::new(Arc::new(Verdicts::default()));
    let checks = MessageChecks {
        authenticator: Arc::clone(&world.authenticator),
        auth: settings,
        timeout: Duration::from_secs(2),
        authserv_id: "mx.example.org".into(),
        spool_dir: None,
    };
    let mut relay = AuthenticatingRelay::new(fake.clone(), Some(checks), log.clone());
    relay.identify(&identity());
    relay.mail("alice@signed.test", "").await.unwrap();
    relay.rcpt("bob@example.org", "").await.unwrap();
    prepare(&log);
    assert_eq!(relay.data_start().await.unwrap().code, 354);
    relay.data_trace(TRACE).await.unwrap();
    let wire = stuff(message);
    for chunk in wire.chunks(7) {
        relay.data_chunk(chunk).await.unwrap();
    }
    let reply = relay.data_end().await.unwrap();
    let trail = log.take_trail().to_string();
    Run { reply, fake, trail }
}

/// DATA wire form of `message`.
fn stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out
}

/// The first 8 characters of the `b=` tag of the message's
/// DKIM-Signature (what RFC 8601 `header.b=` quotes).
fn signature_prefix(signed: &[u8]) -> String {
    let text = text(signed);
    let field = text.split("\r\n\r\n").next().unwrap().replace("\r\n", "");
    let b = field
        .split(';')
        .map(|tag| tag.split_whitespace().collect::<String>())
        .find(|tag| tag.starts_with("b="))
        .expect("a b= tag");
    b[2..10].to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_signed_message_passes_and_is_relayed_with_one_results_header_after_the_trace() {
    let world = world();
    let signed = world.signer.sign(MESSAGE);
    let run = run(
        &world,
        auth(CheckMode::Reject, DmarcMode::Enforce, 1 << 20),
        &signed,
        |_| {},
    )
    .await;
    assert_eq!(run.reply.code, 250, "{}", run.reply);
    let data = text(&run.fake.data());
    assert!(data.starts_with("Received: from test by mx.example.org\r\nAuthentication-Results: mx.example.org;\r\n\tdkim=pass"), "{data}");
    assert!(data.contains("header.d=signed.test"), "{data}");
    assert!(
        data.contains("dmarc=pass header.from=signed.test policy.dmarc=reject"),
        "{data}"
    );
    assert_eq!(data.matches("Authentication-Results:").count(), 1);
    let header = format!(
        "Authentication-Results: mx.example.org;\r\n\
         \tdkim=pass header.d=signed.test header.s=s1 header.b={};\r\n\
         \tarc=none smtp.remote-ip=192.0.2.1;\r\n\
         \tdmarc=pass header.from=signed.test policy.dmarc=reject\r\n",
        signature_prefix(&signed)
    );
    assert!(
        data.contains(&header),
        "expected exactly\n{header}\nin\n{data}"
    );
    // The message itself reaches the backend unchanged, still dot-stuffed.
    assert!(data.ends_with(&text(&stuff(&signed))), "{data}");
    assert!(
        run.trail.contains("dkim=pass (signed.test:pass)"),
        "{}",
        run.trail
    );
    assert!(
        run.trail.contains("dmarc=pass (signed.test p=reject)"),
        "{}",
        run.trail
    );
    assert_eq!(run.fake.calls().last().unwrap(), "data_end");
}

#[tokio::test]
async fn a_broken_signature_is_refused_under_dkim_reject_and_the_backend_aborted() {
    let world = world();
    let mut signed = world.signer.sign(MESSAGE);
    let at = signed.len() - 5;
    signed[at] = b'X';
    let run = run(
        &world,
        auth(CheckMode::Reject, DmarcMode::Off, 1 << 20),
        &signed,
        |_| {},
    )
    .await;
    assert_eq!(
        run.reply.to_string().trim_end(),
        "550 5.7.20 No passing DKIM signature found"
    );
    let calls = run.fake.calls();
    assert_eq!(calls.last().unwrap(), "abort");
    assert!(!calls.contains(&"data_end".to_string()));
    assert!(
        run.fake.data().is_empty(),
        "nothing was streamed to the backend"
    );
    assert!(run.trail.starts_with("dkim=fail"), "{}", run.trail);
    // Only tagged under "tag".
    let run = self::run(
        &world,
        auth(CheckMode::Tag, DmarcMode::Off, 1 << 20),
        &signed,
        |_| {},
    )
    .await;
    assert_eq!(run.reply.code, 250);
    assert!(text(&run.fake.data()).contains("dkim=fail"));
}

#[tokio::test]
async fn dmarc_enforce_follows_the_domain_policy_and_reject_refuses_every_fail() {
    let world = world();
    let unsigned = |domain: &str| {
        String::from_utf8_lossy(MESSAGE)
            .replace("alice@signed.test", &format!("alice@{domain}"))
            .into_bytes()
    };
    let strict = run(
        &world,
        auth(CheckMode::Off, DmarcMode::Enforce, 1 << 20),
        &unsigned("strict.test"),
        |_| {},
    )
    .await;
    assert_eq!(
        strict.reply.to_string().trim_end(),
        "550 5.7.1 Email rejected per DMARC policy"
    );
    assert!(
        strict.trail.contains("dmarc=fail (strict.test p=reject)"),
        "{}",
        strict.trail
    );

    let lenient = run(
        &world,
        auth(CheckMode::Off, DmarcMode::Enforce, 1 << 20),
        &unsigned("lenient.test"),
        |_| {},
    )
    .await;
    assert_eq!(lenient.reply.code, 250);
    let data = text(&lenient.fake.data());
    assert!(data.contains("\tdmarc=fail"), "{data}");
    assert!(
        data.contains("header.from=lenient.test policy.dmarc=quarantine"),
        "{data}"
    );

    let rejected = run(
        &world,
        auth(CheckMode::Off, DmarcMode::Reject, 1 << 20),
        &unsigned("lenient.test"),
        |_| {},
    )
    .await;
    assert_eq!(rejected.reply.code, 550);

    // No DMARC record: none, delivered.
    let none = run(
        &world,
        auth(CheckMode::Off, DmarcMode::Reject, 1 << 20),
        &unsigned("plain.test"),
        |_| {},
    )
    .await;
    assert_eq!(none.reply.code, 250);
    assert!(none.trail.contains("dmarc=none"), "{}", none.trail);
    drop(world.dns);
}

#[tokio::test]
async fn a_held_greylist_deferral_is_lifted_by_a_dmarc_pass_only() {
    let world = world();
    let defer = |log: &CheckLog| {
        log.lock().greylist_deferral = Some(Reply::new(451, "4.7.1 Greylisted, try again later"));
    };
    let signed = world.signer.sign(MESSAGE);
    let pass = run(
        &world,
        auth(CheckMode::Off, DmarcMode::Tag, 1 << 20),
        &signed,
        defer,
    )
    .await;
    assert_eq!(pass.reply.code, 250);
    assert!(
        pass.trail.contains("greylist=skip (DMARC-aligned pass)"),
        "{}",
        pass.trail
    );

    let mut broken = signed.clone();
    let at = broken.len() - 5;
    broken[at] = b'X';
    let fail = run(
        &world,
        auth(CheckMode::Off, DmarcMode::Tag, 1 << 20),
        &broken,
        defer,
    )
    .await;
    assert_eq!(
        fail.reply.to_string().trim_end(),
        "451 4.7.1 Greylisted, try again later"
    );
    assert_eq!(fail.fake.calls().last().unwrap(), "abort");
}

#[tokio::test]
async fn forged_results_with_our_name_are_removed_and_large_messages_spill() {
    let world = world();
    let mut message =
        b"Authentication-Results: mx.example.org; dkim=pass header.d=bank.test\r\n".to_vec();
    message.extend_from_slice(MESSAGE);
    message.extend(
        std::iter::repeat_n(
            b"0123456789012345678901234567890123456789\r\n".as_slice(),
            2000,
        )
        .flatten(),
    );
    let signed = world.signer.sign(&message);
    let run = run(
        &world,
        auth(CheckMode::Reject, DmarcMode::Off, 16 * 1024),
        &signed,
        |_| {},
    )
    .await;
    assert_eq!(run.reply.code, 250, "{}", run.reply);
    let data = text(&run.fake.data());
    assert!(
        !data.contains("header.d=bank.test"),
        "the forged header is gone"
    );
    assert_eq!(data.matches("Authentication-Results:").count(), 1);
    assert!(
        data.contains("dkim=pass"),
        "the signature still verifies after the spill"
    );
    assert!(data.len() > 80_000);
}

#[tokio::test]
async fn without_checks_everything_streams_through_untouched() {
    let fake = Fake::default();
    let log = CheckLog::new(Arc::new(Verdicts::default()));
    let mut relay = AuthenticatingRelay::new(fake.clone(), None, log);
    relay.mail("a@b.test", "").await.unwrap();
    relay.data_start().await.unwrap();
    relay.data_trace(TRACE).await.unwrap();
    relay
        .data_chunk(b"Subject: x\r\n\r\nbody\r\n")
        .await
        .unwrap();
    assert_eq!(
        fake.calls(),
        ["mail a@b.test", "data_start", "data_chunk", "data_chunk"]
    );
    assert_eq!(relay.data_end().await.unwrap().code, 250);
    assert_eq!(
        text(&fake.data()),
        format!("{}Subject: x\r\n\r\nbody\r\n", text(TRACE))
    );
}
