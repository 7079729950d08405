//! "Hand over to peer" in the namespace lab of `support/vrrp_lab.rs`: A
//! (priority 150) is master, B (100) backup; `POST
//! /api/v1/cluster/handover` on A makes B master within [`TAKEOVER`], and
//! after the hold A takes the VIP back (preemption). Refusals: a backup
//! has nothing to hand over (409), a hold out of range is 422. Needs root
//! and `ip netns`; skips otherwise.

mod support;

use std::time::{Duration, Instant};

use support::netns::skip_unless_netns;
use support::vrrp_lab::{assert_vip, curl_missing, started_pair, wait_vip, TAKEOVER};

const HOLD: Duration = Duration::from_secs(5);

#[test]
fn hand_over_moves_the_vip_to_the_peer_for_the_hold_time() {
    let test = "hand_over_moves_the_vip_to_the_peer_for_the_hold_time";
    if skip_unless_netns(test) || curl_missing(test) {
        return;
    }
    let (lab, a, mut b) = started_pair(100, "", "", "A (150) is master");

    let (code, body) = b.api_post("/api/v1/cluster/handover", "{\"hold_s\":5}");
    assert_eq!(code, 409, "a backup has nothing to hand over: {body}");
    let (code, body) = a.api_post("/api/v1/cluster/handover", "{\"hold_s\":2}");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("hold_s"), "{body}");
    assert_vip(&lab.a, true, "refusals change nothing", &[&a, &b]);

    let t0 = Instant::now();
    let (code, body) = a.api_post("/api/v1/cluster/handover", "{\"hold_s\":5}");
    assert_eq!(code, 200, "{body}");
    let took = wait_vip(&lab.b, true, TAKEOVER);
    assert!(
        took.is_some(),
        "B took the VIP within {TAKEOVER:?}:\n{}\n{}",
        a.run.output(),
        b.run.output()
    );
    assert_vip(&lab.a, false, "A handed over", &[&a, &b]);
    b.wait_state("MASTER", TAKEOVER);
    let audit = a.api_get("/api/v1/audit");
    assert!(audit.contains("cluster.handover"), "{audit}");

    // After the hold A is backup again and, with preemption, master.
    let back = wait_vip(&lab.a, true, HOLD + TAKEOVER * 2);
    assert!(
        back.is_some(),
        "A took the VIP back after the hold:\n{}",
        a.run.output()
    );
    assert!(
        t0.elapsed() >= HOLD - Duration::from_millis(500),
        "not before the hold: {:?}",
        t0.elapsed()
    );
    assert!(wait_vip(&lab.b, false, TAKEOVER).is_some(), "B let go");
    assert_eq!(a.state(), "master");
}
