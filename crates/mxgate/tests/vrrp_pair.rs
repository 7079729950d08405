//! VRRP between two `mxgate run` processes (and with keepalived), each in a
//! network namespace of its own, joined by a bridge in a third (the lab of
//! `support/vrrp_lab.rs`):
//!
//! ```text
//!   ns A: eth0 10.77.0.1/24 ──veth── pa ┐
//!                                       ├ br0 (ns sw)
//!   ns B: eth0 10.77.0.2/24 ──veth── pb ┘        VIP 10.77.0.100/24
//! ```
//!
//! Each box runs an `mxgate sink` on its loopback and an l4 policy over it.
//! The tests check who holds the VIP (`ip -n NS addr`) after: startup
//! (higher priority wins), SIGTERM of the master (the backup takes over at
//! once: priority 0), a restart with higher priority and preemption, a
//! SIGKILL plus link down, a restart that finds a stale VIP, and against
//! keepalived. They need root and `ip netns`, and skip otherwise; all
//! traffic stays inside the namespaces they create (deleted on exit).

mod support;

use std::time::{Duration, Instant};

use support::netns::skip_unless_netns;
use support::vrrp_lab::{
    assert_vip, curl_missing, mac, started_pair, wait_neighbour, wait_vip, Lab, MxBox, DEV, START,
    TAKEOVER, VIP,
};
use support::{mxgate_bin, poll, temp_dir, tool_in_path, Proc};

#[test]
fn higher_priority_wins_sigterm_hands_over_and_preemption_takes_back() {
    let test = "higher_priority_wins_sigterm_hands_over_and_preemption_takes_back";
    if skip_unless_netns(test) || curl_missing(test) {
        return;
    }
    let (lab, mut a, mut b) = started_pair(100, "", "", "A (150) is master");
    assert_vip(&lab.b, false, "B (100) is backup", &[&a, &b]);
    let a_mac = mac(&lab.a);
    assert!(
        wait_neighbour(&lab.b, &a_mac),
        "B learned the VIP at A's MAC {a_mac} from A's gratuitous ARP: {:?}",
        lab.b.ip(&["neigh"])
    );
    // Stays that way (B hears A's adverts and does not take over).
    std::thread::sleep(Duration::from_millis(700));
    assert!(lab.a.has_addr(DEV, VIP) && !lab.b.has_addr(DEV, VIP));
    assert!(b.run.find_line("to=MASTER").is_none(), "{}", b.run.output());

    let status = a.status();
    assert_eq!(status["vrrp"]["state"], "master", "{status}");
    assert_eq!(status["vrrp"]["priority"], 150, "{status}");
    assert_eq!(status["vrrp"]["master"], "10.77.0.1", "{status}");
    assert!(
        status["vrrp"]["transitions"][0]["reason"].is_string(),
        "{status}"
    );
    let b_status = b.status();
    assert_eq!(b_status["vrrp"]["state"], "backup", "{b_status}");
    assert_eq!(b_status["vrrp"]["master"], "10.77.0.1", "{b_status}");
    let metrics = a.metrics();
    assert!(
        metrics.contains("mxgate_vrrp_state{vrid=\"51\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mxgate_vrrp_transitions_total{vrid=\"51\",to=\"master\"} 1"),
        "{metrics}"
    );
    assert!(
        b.metrics().contains("mxgate_vrrp_state{vrid=\"51\"} 1"),
        "{}",
        b.metrics()
    );

    // SIGTERM of the master: priority 0, VIP removed, the backup takes over.
    let t0 = Instant::now();
    a.run.signal("TERM");
    assert_vip(&lab.b, true, "B takes over after SIGTERM of A", &[&a, &b]);
    let took = t0.elapsed();
    let status = a.run.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "A exits 0: {status:?}\n{}",
        a.run.output()
    );
    assert!(!lab.a.has_addr(DEV, VIP), "A removed the VIP on shutdown");
    let b_mac = mac(&lab.b);
    assert!(
        wait_neighbour(&lab.a, &b_mac),
        "A learned the VIP at B's MAC {b_mac} from B's gratuitous ARP: {:?}",
        lab.a.ip(&["neigh"])
    );
    eprintln!("takeover after SIGTERM: {took:?}");
    b.run
        .wait_for_line("reason=master sent priority 0", TAKEOVER);

    // A comes back with the higher priority and preempts B.
    let mut a = MxBox::start(&lab.a, "gw-a2", 150, "");
    a.wait_state("MASTER", START);
    assert_vip(&lab.a, true, "A preempts B", &[&a, &b]);
    assert_vip(&lab.b, false, "B yields to A", &[&a, &b]);
    assert!(
        a.run
            .find_line("preempted a lower-priority master")
            .is_some(),
        "{}",
        a.run.output()
    );
    drop(a);
    drop(b);
    drop(lab);
}

#[test]
fn sigkill_and_link_down_then_a_restart_cleans_the_stale_vip() {
    let test = "sigkill_and_link_down_then_a_restart_cleans_the_stale_vip";
    if skip_unless_netns(test) {
        return;
    }
    let (lab, mut a, mut b) = started_pair(100, "", "", "A is master");

    // A dies without a word and its link goes down: B takes over after
    // Master_Down_Interval.
    a.run.signal("KILL");
    lab.a.ip_ok(&["link", "set", DEV, "down"]);
    assert_vip(&lab.b, true, "B takes over from a killed A", &[&a, &b]);
    b.run
        .wait_for_line("reason=no advert from the master", TAKEOVER);
    assert!(lab.a.has_addr(DEV, VIP), "the killed A left its VIP behind");

    // The link comes back; A restarts (no preemption this time): it removes
    // the stale VIP before joining, as backup.
    lab.a.ip_ok(&["link", "set", DEV, "up"]);
    drop(a);
    let mut a = MxBox::start(&lab.a, "gw-a2", 150, "preempt = false");
    a.run.wait_for_line(
        "removed a virtual IP left on the interface",
        Duration::from_secs(1),
    );
    a.wait_state("BACKUP", START);
    assert_vip(
        &lab.a,
        false,
        "restarted A removed the stale VIP",
        &[&a, &b],
    );
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !lab.a.has_addr(DEV, VIP),
        "A stays backup without preemption"
    );
    assert!(lab.b.has_addr(DEV, VIP), "B stays master");
    assert!(a.run.find_line("to=MASTER").is_none(), "{}", a.run.output());
    drop(a);
    drop(b);
    drop(lab);
}

#[test]
fn tracking_a_dead_pool_and_a_down_link() {
    let test = "tracking_a_dead_pool_and_a_down_link";
    if skip_unless_netns(test) || curl_missing(test) {
        return;
    }
    let (lab, mut a, mut b) = started_pair(120, "", "", "A is master");

    // A's only backend dies: its pool is down, A advertises 150 - 50 = 100,
    // and B (120) preempts it.
    a.sink.as_mut().unwrap().signal("KILL");
    assert_vip(&lab.b, true, "B preempts A whose pool is down", &[&a, &b]);
    assert_vip(&lab.a, false, "A yields", &[&a, &b]);
    let status = a.status();
    assert_eq!(status["vrrp"]["priority"], 100, "{status}");
    assert_eq!(status["vrrp"]["tracked_weight"], 50, "{status}");
    assert_eq!(status["vrrp"]["state"], "backup", "{status}");
    assert!(
        a.metrics()
            .contains("mxgate_vrrp_priority{vrid=\"51\"} 100"),
        "{}",
        a.metrics()
    );

    // B's link goes down: B is in FAULT (link weight 255) and gives the VIP
    // up; A, alone, takes it whatever its priority.
    lab.b.ip_ok(&["link", "set", DEV, "down"]);
    b.wait_state("FAULT", TAKEOVER);
    assert_vip(&lab.b, false, "B in fault removed the VIP", &[&a, &b]);
    assert_vip(&lab.a, true, "A takes over from a faulty B", &[&a, &b]);
    assert_eq!(b.status()["vrrp"]["state"], "fault");

    // The link comes back: B starts again as backup; A stays master (100 < 120
    // would let B preempt, so give A its backend back first).
    a.sink = Some(Proc::spawn(
        "gw-a-sink2",
        lab.a
            .command(mxgate_bin(), &["sink", "--listen", "127.0.0.1:2525"]),
    ));
    let restored = poll(Duration::from_secs(10), || {
        (a.status()["vrrp"]["priority"] == 150).then_some(())
    });
    assert!(restored.is_some(), "{}", a.run.output());
    lab.b.ip_ok(&["link", "set", DEV, "up"]);
    b.run
        .wait_for_line("reason=tracked objects recovered", TAKEOVER);
    std::thread::sleep(Duration::from_millis(700));
    assert!(lab.a.has_addr(DEV, VIP) && !lab.b.has_addr(DEV, VIP));
    drop(a);
    drop(b);
    drop(lab);
}

#[test]
fn unicast_peers_instead_of_multicast() {
    let test = "unicast_peers_instead_of_multicast";
    if skip_unless_netns(test) || curl_missing(test) {
        return;
    }
    let (lab, mut a, mut b) = started_pair(
        100,
        "unicast_peers = [\"10.77.0.2\"]",
        "unicast_peers = [\"10.77.0.1\"]",
        "A is master over unicast",
    );
    std::thread::sleep(Duration::from_millis(700));
    assert!(!lab.b.has_addr(DEV, VIP), "B hears A's unicast adverts");
    let received = poll(TAKEOVER, || {
        let n = b.status()["vrrp"]["adverts_received"].as_u64()?;
        (n > 0).then_some(n)
    });
    assert!(received.is_some(), "{}", b.status());
    a.run.signal("TERM");
    assert_vip(&lab.b, true, "B takes over", &[&a, &b]);
    b.run
        .wait_for_line("reason=master sent priority 0", TAKEOVER);
    drop(a);
    drop(b);
    drop(lab);
}

/// keepalived.conf for box B: VRRPv3, the same VRID and VIP, priority 100.
fn keepalived_conf() -> String {
    format!(
        "global_defs {{\n  router_id mxv_b\n  vrrp_version 3\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface {DEV}\n  virtual_router_id 51\n\
           priority 100\n  advert_int 0.1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    )
}

#[test]
fn keepalived_interop_both_ways() {
    let test = "keepalived_interop_both_ways";
    if skip_unless_netns(test) || support::skip_unless_tools(test, &["keepalived"]) {
        return;
    }
    let lab = Lab::new();
    let mut a = MxBox::start(&lab.a, "gw-a", 150, "");
    a.wait_state("MASTER", START);
    let dir = temp_dir("keepalived");
    let conf = dir.path().join("keepalived.conf");
    std::fs::write(&conf, keepalived_conf()).unwrap();
    let pid = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let keepalived = Proc::spawn(
        "keepalived",
        lab.b.command(
            tool_in_path("keepalived").unwrap(),
            &[
                "--dont-fork",
                "--log-console",
                "--log-detail",
                "--vrrp",
                "--use-file",
                conf.to_str().unwrap(),
                "--pid",
                &pid("keepalived.pid"),
                "--vrrp_pid",
                &pid("vrrp.pid"),
                "--checkers_pid",
                &pid("checkers.pid"),
            ],
        ),
    );
    let ka = [&a];
    // keepalived hears mxgate's adverts: it stays backup, no VIP on B.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !lab.b.has_addr(DEV, VIP),
        "keepalived took the VIP from a higher mxgate master\n{}",
        keepalived.output()
    );
    assert_vip(&lab.a, true, "mxgate stays master", &ka);

    // mxgate leaves: keepalived takes the VIP.
    a.run.signal("TERM");
    if wait_vip(&lab.b, true, TAKEOVER).is_none() {
        panic!(
            "keepalived did not take over\n{}\n{}",
            keepalived.output(),
            a.run.output()
        );
    }
    assert!(a.run.wait_exit(Duration::from_secs(10)).is_some());
    assert!(!lab.a.has_addr(DEV, VIP));

    // mxgate hears keepalived's adverts and preempts it (higher priority).
    let mut a = MxBox::start(&lab.a, "gw-a2", 150, "");
    a.wait_state("MASTER", START);
    assert_vip(&lab.a, true, "mxgate preempts keepalived", &[&a]);
    if wait_vip(&lab.b, false, TAKEOVER).is_none() {
        panic!("keepalived kept the VIP\n{}", keepalived.output());
    }
    let metrics = a.metrics();
    assert!(
        !metrics.contains("mxgate_vrrp_rx_dropped_total{reason=\"bad_checksum\"}"),
        "{metrics}"
    );
    assert!(
        a.run
            .find_line("preempted a lower-priority master")
            .is_some(),
        "{}",
        a.run.output()
    );
    drop(keepalived);
    drop(a);
    drop(lab);
}
