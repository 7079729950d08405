//! VRRP between two `mxgate run` processes (and with keepalived), each in a
//! network namespace of its own, joined by a bridge in a third:
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

use support::netns::{skip_unless_netns, Netns};
use support::{mxgate_bin, poll, temp_dir, tool_in_path, Proc};

const VIP: &str = "10.77.0.100";
const DEV: &str = "eth0";
/// Generous bound for a takeover that should take well under a second.
const TAKEOVER: Duration = Duration::from_secs(3);
const START: Duration = Duration::from_secs(15);

/// The switch namespace and the two boxes' namespaces.
struct Lab {
    a: Netns,
    b: Netns,
    // Declared last: deleted after the boxes' namespaces.
    _sw: Netns,
}

impl Lab {
    fn new() -> Lab {
        let sw = Netns::new("sw");
        sw.ip_ok(&["link", "add", "br0", "type", "bridge"]);
        sw.ip_ok(&["link", "set", "br0", "up"]);
        let a = Netns::new("a");
        let b = Netns::new("b");
        for (ns, port, addr) in [(&a, "pa", "10.77.0.1/24"), (&b, "pb", "10.77.0.2/24")] {
            super_ip(&[
                "link",
                "add",
                DEV,
                "netns",
                ns.name(),
                "type",
                "veth",
                "peer",
                "name",
                port,
                "netns",
                sw.name(),
            ]);
            sw.ip_ok(&["link", "set", port, "master", "br0"]);
            sw.ip_ok(&["link", "set", port, "up"]);
            ns.ip_ok(&["addr", "add", addr, "dev", DEV]);
            ns.ip_ok(&["link", "set", DEV, "up"]);
            // Learn neighbours from gratuitous ARP, so the tests can see it.
            let sysctl = format!("echo 1 > /proc/sys/net/ipv4/conf/{DEV}/arp_accept");
            let out = ns.command("sh", &["-c", &sysctl]).output().unwrap();
            assert!(out.status.success(), "{}", support::output_text(&out));
        }
        Lab { a, b, _sw: sw }
    }
}

/// `ip ARGS` in the test's own namespace (only to create veth pairs whose
/// both ends are put straight into the lab's namespaces).
fn super_ip(args: &[&str]) {
    let out = support::netns::ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        support::output_text(&out)
    );
}

/// One box: a sink and `mxgate run` inside namespace `ns`.
struct MxBox {
    run: Proc,
    sink: Proc,
    ns: String,
    _dir: tempfile::TempDir,
}

impl MxBox {
    /// Starts a box with `priority` and more `[vrrp]` lines, and waits
    /// until its VRRP driver runs.
    fn start(ns: &Netns, name: &str, priority: u8, vrrp_extra: &str) -> MxBox {
        let dir = temp_dir(name);
        let node = format!(
            "name = \"{name}\"\ndata_dir = \"{data}\"\nshutdown_grace_ms = 2000\nlog = \"info\"\n\
             [metrics]\nlisten = \"127.0.0.1:9100\"\n[web]\nlisten = \"127.0.0.1:9101\"\n\
             [vrrp]\ninterface = \"{DEV}\"\nvrid = 51\npriority = {priority}\n\
             advert_interval_ms = 100\nvirtual_ips = [\"{VIP}/24\"]\n{vrrp_extra}\n",
            data = dir.path().join("data").display()
        );
        let policy = "[[pool]]\nname = \"mta\"\n\
                      check = { interval_ms = 300, timeout_ms = 1000, fall = 1, rise = 1 }\n\
                      [[pool.server]]\nname = \"sink\"\naddress = \"127.0.0.1:2525\"\n\
                      [[listener]]\nname = \"mx\"\nbind = \"0.0.0.0:2500\"\npool = \"mta\"\n";
        std::fs::write(dir.path().join("node.toml"), node).unwrap();
        std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
        let sink = Proc::spawn(
            &format!("{name}-sink"),
            ns.command(mxgate_bin(), &["sink", "--listen", "127.0.0.1:2525"]),
        );
        let node_path = dir.path().join("node.toml");
        let policy_path = dir.path().join("policy.toml");
        let mut cmd = ns.command(
            mxgate_bin(),
            &[
                "run",
                "--config",
                node_path.to_str().unwrap(),
                "--policy",
                policy_path.to_str().unwrap(),
            ],
        );
        // Plain `key=value` log fields, to look for `to=MASTER`.
        cmd.env("NO_COLOR", "1");
        let mut run = Proc::spawn(name, cmd);
        run.wait_for_line("vrrp: starting", START);
        MxBox {
            run,
            sink,
            ns: ns.name().to_string(),
            _dir: dir,
        }
    }

    /// `GET path` on the box's API or metrics port, from inside its namespace.
    fn http(&self, port: u16, path: &str) -> String {
        let out = std::process::Command::new(tool_in_path("ip").unwrap())
            .args(["netns", "exec", &self.ns, "curl", "-s", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.http(9101, "/api/v1/status")).unwrap_or_default()
    }

    fn metrics(&self) -> String {
        self.http(9100, "/metrics")
    }

    /// Waits until the log says the box entered `state` (`MASTER`, ...).
    fn wait_state(&mut self, state: &str, timeout: Duration) {
        self.run.wait_for_line(&format!("to={state}"), timeout);
    }
}

fn curl_missing(test: &str) -> bool {
    if tool_in_path("curl").is_some() {
        return false;
    }
    support::note_skip(test, "curl");
    true
}

/// Waits until `ns` holds the VIP (`true`) or not (`false`); how long it took.
fn wait_vip(ns: &Netns, held: bool, timeout: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    poll(timeout, || {
        (ns.has_addr(DEV, VIP) == held).then(|| t0.elapsed())
    })
}

/// The MAC address of `ns`'s eth0.
fn mac(ns: &Netns) -> String {
    let out = ns.ip(&["-o", "link", "show", DEV]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "link/ether");
    words.next().unwrap_or_default().to_string()
}

/// Waits until `ns` maps the VIP to `mac` in its neighbour table, which a
/// gratuitous ARP from the master does (the lab sets `arp_accept`).
fn wait_neighbour(ns: &Netns, mac: &str) -> bool {
    poll(TAKEOVER, || {
        let out = ns.ip(&["neigh", "show", VIP, "dev", DEV]);
        String::from_utf8_lossy(&out.stdout)
            .contains(mac)
            .then_some(())
    })
    .is_some()
}

fn assert_vip(ns: &Netns, held: bool, what: &str, boxes: &[&MxBox]) {
    if wait_vip(ns, held, TAKEOVER).is_none() {
        let logs: Vec<String> = boxes.iter().map(|b| b.run.output()).collect();
        panic!(
            "{what}: {} should {}hold {VIP}; it has {:?}\n{}",
            ns.name(),
            if held { "" } else { "not " },
            ns.ipv4_addrs(DEV),
            logs.join("\n")
        );
    }
}

#[test]
fn higher_priority_wins_sigterm_hands_over_and_preemption_takes_back() {
    let test = "higher_priority_wins_sigterm_hands_over_and_preemption_takes_back";
    if skip_unless_netns(test) || curl_missing(test) {
        return;
    }
    let lab = Lab::new();
    let mut a = MxBox::start(&lab.a, "gw-a", 150, "");
    let mut b = MxBox::start(&lab.b, "gw-b", 100, "");
    a.wait_state("MASTER", START);
    b.wait_state("BACKUP", START);
    assert_vip(&lab.a, true, "A (150) is master", &[&a, &b]);
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
    let lab = Lab::new();
    let mut a = MxBox::start(&lab.a, "gw-a", 150, "");
    let mut b = MxBox::start(&lab.b, "gw-b", 100, "");
    a.wait_state("MASTER", START);
    b.wait_state("BACKUP", START);
    assert_vip(&lab.a, true, "A is master", &[&a, &b]);

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
    let lab = Lab::new();
    let mut a = MxBox::start(&lab.a, "gw-a", 150, "");
    let mut b = MxBox::start(&lab.b, "gw-b", 120, "");
    a.wait_state("MASTER", START);
    b.wait_state("BACKUP", START);
    assert_vip(&lab.a, true, "A is master", &[&a, &b]);

    // A's only backend dies: its pool is down, A advertises 150 - 50 = 100,
    // and B (120) preempts it.
    a.sink.signal("KILL");
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
    a.sink = Proc::spawn(
        "gw-a-sink2",
        lab.a
            .command(mxgate_bin(), &["sink", "--listen", "127.0.0.1:2525"]),
    );
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
    let lab = Lab::new();
    let mut a = MxBox::start(&lab.a, "gw-a", 150, "unicast_peers = [\"10.77.0.2\"]");
    let mut b = MxBox::start(&lab.b, "gw-b", 100, "unicast_peers = [\"10.77.0.1\"]");
    a.wait_state("MASTER", START);
    b.wait_state("BACKUP", START);
    assert_vip(&lab.a, true, "A is master over unicast", &[&a, &b]);
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
