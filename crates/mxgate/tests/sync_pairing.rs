//! Black-box test of one-time pairing: two `mxgate run` processes with
//! `[sync]` but no `peer_key` refuse each other; `mxgate cluster pair` on A
//! and `mxgate cluster join` on B, while both run, pair them without a
//! restart; a wrong code, a used code and an expired code fail and store
//! nothing; a new pairing replaces the trusted peer (a replaced box).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::gateway::{mxgate_output, smtp_policy, Gateway, Sink};
use support::sync::{peer_up, refused, wait_refused_both_ways, wait_same, with_domains};
use support::{free_addr, poll, temp_dir};

const WAIT: Duration = Duration::from_secs(20);

fn sync_section(listen: SocketAddr, peer: SocketAddr) -> String {
    format!("[sync]\nlisten = \"{listen}\"\npeer = \"{peer}\"\n")
}

fn pair_code(data: &Path) -> String {
    pair_code_valid(data, 900)
}

fn pair_code_valid(data: &Path, valid_s: u32) -> String {
    let (code, out) = mxgate_output(&[
        "cluster",
        "pair",
        "--data",
        data.to_str().unwrap(),
        "--valid-s",
        &valid_s.to_string(),
    ]);
    assert_eq!(code, 0, "{out}");
    out.lines()
        .map(str::trim)
        .find(|l| {
            l.len() == 86
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_else(|| panic!("no code in {out}"))
        .to_string()
}

fn join(data: &Path, peer: SocketAddr, code: &str) -> (i32, String) {
    mxgate_output(&[
        "cluster",
        "join",
        "--data",
        data.to_str().unwrap(),
        "--peer",
        &peer.to_string(),
        code,
    ])
}

#[test]
fn pair_and_join_pair_two_running_boxes_once() {
    let sink = Sink::start("sink", false);
    let policy = smtp_policy(free_addr(), sink.addr, "");
    let (a_sync, b_sync) = (free_addr(), free_addr());
    let a = Gateway::start_with_node_extra("gw-a", &policy, &sync_section(a_sync, b_sync));
    let b = Gateway::start_with_node_extra("gw-b", &policy, &sync_section(b_sync, a_sync));

    // No peer_key and no pairing: refused on both sides.
    wait_refused_both_ways(&a, a_sync, &b, b_sync, WAIT);

    let code = pair_code(&a.data_dir());
    assert!(a.data_dir().join("pairing").exists());

    // A wrong code (secret changed) from a third box: refused, nothing
    // stored on either side, and A's pairing is still pending.
    let stranger = temp_dir("gw-c");
    let mut wrong: Vec<u8> = code.clone().into_bytes();
    wrong[60] = if wrong[60] == b'A' { b'B' } else { b'A' };
    let wrong = String::from_utf8(wrong).unwrap();
    let (rc, out) = join(stranger.path(), a_sync, &wrong);
    assert_ne!(rc, 0, "{out}");
    assert!(out.contains("wrong pairing code"), "{out}");
    assert!(!stranger.path().join("sync_peer_pin").exists());
    assert!(!a.data_dir().join("sync_peer_pin").exists());
    assert!(a.data_dir().join("pairing").exists());

    // The real join, while both run.
    let (rc, out) = join(&b.data_dir(), a_sync, &code);
    assert_eq!(rc, 0, "{out}\nA log:\n{}", a.proc.output());
    assert!(out.contains("paired with"), "{out}");
    assert!(!a.data_dir().join("pairing").exists());
    for dir in [a.data_dir(), b.data_dir()] {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.join("sync_peer_pin")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    // No restart: the services pick up the stored pins.
    a.wait_metric(&peer_up(b_sync), 1.0, WAIT);
    b.wait_metric(&peer_up(a_sync), 1.0, WAIT);
    let out = a.import_policy(&with_domains(&policy, "\"from-a.test\""));
    assert!(out.status.success(), "{out:?}");
    wait_same(&a, &b, WAIT, "A's import on B", |e| {
        e.contains("from-a.test")
    });
    let out = b.import_policy(&with_domains(&policy, "\"from-b.test\""));
    assert!(out.status.success(), "{out:?}");
    wait_same(&a, &b, WAIT, "B's import on A", |e| {
        e.contains("from-b.test") && !e.contains("from-a.test")
    });

    // The code is used: a second join fails, from another box (refused
    // in the handshake) and from B itself (already trusted).
    let (rc, out) = join(stranger.path(), a_sync, &code);
    assert_ne!(rc, 0, "{out}");
    assert!(out.contains("refused the pairing"), "{out}");
    assert!(!stranger.path().join("sync_peer_pin").exists());
    let (rc, out) = join(&b.data_dir(), a_sync, &code);
    assert_ne!(rc, 0, "{out}");
    assert!(out.contains("one use"), "{out}");
    // Still synced.
    assert_eq!(a.metric(&peer_up(b_sync)), Some(1.0));
}

#[test]
fn an_expired_code_is_refused_and_a_new_pairing_replaces_the_trusted_peer() {
    let sink = Sink::start("sink", false);
    let policy = smtp_policy(free_addr(), sink.addr, "");
    let (a_sync, b_sync) = (free_addr(), free_addr());
    let a = Gateway::start_with_node_extra("gw-a", &policy, &sync_section(a_sync, b_sync));
    let b = Gateway::start_with_node_extra("gw-b", &policy, &sync_section(b_sync, a_sync));

    // Out-of-range validity: a usage error, nothing created.
    let (rc, out) = mxgate_output(&[
        "cluster",
        "pair",
        "--data",
        a.data_dir().to_str().unwrap(),
        "--valid-s",
        "7200",
    ]);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("--valid-s"), "{out}");
    assert!(!a.data_dir().join("pairing").exists());

    // A code good for one second, used after it expired.
    let code = pair_code_valid(&a.data_dir(), 1);
    std::thread::sleep(Duration::from_millis(2_100));
    let (rc, out) = join(&b.data_dir(), a_sync, &code);
    assert_ne!(rc, 0, "{out}");
    assert!(out.contains("expired"), "{out}");
    assert!(!a.data_dir().join("sync_peer_pin").exists());
    assert!(!b.data_dir().join("sync_peer_pin").exists());

    // A fresh code pairs B.
    let (rc, out) = join(&b.data_dir(), a_sync, &pair_code(&a.data_dir()));
    assert_eq!(rc, 0, "{out}");
    a.wait_metric(&peer_up(b_sync), 1.0, WAIT);

    // B is replaced by C: a new pairing on A trusts C's key instead of
    // B's; B is refused from then on.
    let c_dir = temp_dir("gw-c");
    let (rc, out) = join(c_dir.path(), a_sync, &pair_code(&a.data_dir()));
    assert_eq!(rc, 0, "{out}");
    let trusted = std::fs::read_to_string(a.data_dir().join("sync_peer_pin")).unwrap();
    let c_pin = mxgate_sync::Identity::load_or_create(c_dir.path())
        .unwrap()
        .pin
        .to_string();
    assert_eq!(trusted.trim(), c_pin, "A now trusts C's key");
    let refused_before = refused(&a, b_sync);
    let b_refused = poll(WAIT, || {
        (a.metric(&peer_up(b_sync)) == Some(0.0) && refused(&a, b_sync) > refused_before)
            .then_some(())
    });
    assert!(
        b_refused.is_some(),
        "B still trusted after the new pairing:\n{}",
        a.metrics_text()
    );
}
