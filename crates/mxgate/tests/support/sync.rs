//! Helpers for the peer-sync tests (sync_pair.rs, sync_pairing.rs): the
//! sync metrics of a gateway, its exported policy, and waiting until two
//! gateways export the same policy.

use super::gateway::{mxgate_output, Gateway};
use super::poll;
use std::net::SocketAddr;
use std::time::Duration;

/// The `mxgate_sync_peer_up` sample for `peer`.
pub fn peer_up(peer: SocketAddr) -> String {
    format!("mxgate_sync_peer_up{{peer=\"{peer}\"}}")
}

/// How often `gw` refused `peer` so far.
pub fn refused(gw: &Gateway, peer: SocketAddr) -> f64 {
    gw.metric(&format!("mxgate_sync_refused_total{{peer=\"{peer}\"}}"))
        .unwrap_or(0.0)
}

/// Waits until `a` (sync address `a_sync`) and `b` (`b_sync`) have each
/// refused the other at least once, and checks neither shows the peer up.
///
/// # Panics
/// After `wait`, with both metrics pages.
pub fn wait_refused_both_ways(
    a: &Gateway,
    a_sync: SocketAddr,
    b: &Gateway,
    b_sync: SocketAddr,
    wait: Duration,
) {
    let both_refused = poll(wait, || {
        (refused(a, b_sync) > 0.0 && refused(b, a_sync) > 0.0).then_some(())
    });
    assert!(
        both_refused.is_some(),
        "A:\n{}\nB:\n{}",
        a.metrics_text(),
        b.metrics_text()
    );
    assert_eq!(a.metric(&peer_up(b_sync)), Some(0.0));
    assert_eq!(b.metric(&peer_up(a_sync)), Some(0.0));
}

/// `mxgate policy export` of `gw`'s store.
pub fn export(gw: &Gateway) -> String {
    let (code, out) = mxgate_output(&[
        "policy",
        "export",
        "--data",
        gw.data_dir().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    out
}

/// `policy` (from `smtp_policy`) with more relay domains, e.g. `"\"a.test\""`.
pub fn with_domains(policy: &str, domains: &str) -> String {
    policy.replace(
        "domains = [\"example.test\"]",
        &format!("domains = [\"example.test\", {domains}]"),
    )
}

/// Waits until `a` and `b` export the same policy and `check` accepts it;
/// returns it.
///
/// # Panics
/// After `wait`, with both exports and both logs.
pub fn wait_same(
    a: &Gateway,
    b: &Gateway,
    wait: Duration,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let same = poll(wait, || {
        let (ea, eb) = (export(a), export(b));
        (ea == eb && check(&ea)).then_some(ea)
    });
    same.unwrap_or_else(|| {
        panic!(
            "{what}: not converged\nA:\n{}\nB:\n{}\nA log:\n{}\nB log:\n{}",
            export(a),
            export(b),
            a.proc.output(),
            b.proc.output()
        )
    })
}
