//! Black-box test of one-time pairing: two `mxgate run` processes with
//! `[sync]` but no `peer_key` refuse each other; `mxgate cluster pair` on A
//! and `mxgate cluster join` on B, while both run, pair them without a
//! restart; a wrong code and a used code fail and store nothing.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::gateway::{mxgate_output, smtp_policy, Gateway, Sink};
use support::sync::{peer_up, refused, wait_same, with_domains};
use support::{free_addr, poll, temp_dir};

const WAIT: Duration = Duration::from_secs(20);

fn sync_section(listen: SocketAddr, peer: SocketAddr) -> String {
    format!("[sync]\nlisten = \"{listen}\"\npeer = \"{peer}\"\n")
}

fn pair_code(data: &Path) -> String {
    let (code, out) = mxgate_output(&["cluster", "pair", "--data", data.to_str().unwrap()]);
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
    let both_refused = poll(WAIT, || {
        (refused(&a, b_sync) > 0.0 && refused(&b, a_sync) > 0.0).then_some(())
    });
    assert!(
        both_refused.is_some(),
        "A:\n{}\nB:\n{}",
        a.metrics_text(),
        b.metrics_text()
    );
    assert_eq!(a.metric(&peer_up(b_sync)), Some(0.0));

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
