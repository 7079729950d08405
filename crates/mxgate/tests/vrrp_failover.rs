//! VRRP failover seen from outside: mail through the VIP while the master
//! dies, a cut and healed link, a priority tie, malformed adverts, and the
//! `scripts/lab` tool itself.
//!
//! The lab is `support/vrrp_lab.rs` (boxes A 10.77.0.1 and B 10.77.0.2 on
//! a bridge, VIP 10.77.0.100, adverts every 100 ms) plus (`vrrp_lab::MailLab`) a
//! client namespace (10.77.0.10) and two backend MTA namespaces
//! (10.77.0.21, 10.77.0.22, each an `mxgate sink` with a Maildir). There
//! the boxes run in smtp mode for the relay domain `example.test`, over a
//! pool of both MTAs (`client_identity = "none"`, `backend_tls = "off"`).
//! The priority-tie test alone uses the lighter boxes of `vrrp_pair.rs`
//! (l4 to a sink on their own loopback): it partitions box A, and an smtp
//! box cut off from its MTAs would lower its priority (pool tracking) and
//! so test the tracking instead of the tie. The lab test builds its own
//! topology with `scripts/lab run`.
//!
//! Mail is sent by a small Python client run inside the client namespace
//! (`vrrp_lab::CLIENT_PY`): one message per SMTP session, each with a unique
//! Subject and Message-ID, retried on a connection error or a 4xx reply,
//! one JSON line per message with its final reply and every failed attempt.
//! Raw adverts are built with `mxgate_wire` and sent by a Python raw socket
//! in the client namespace ([`SEND_PY`]).
//!
//! Time bounds are generous (seconds where the real figure is a fraction);
//! the figures themselves are the benchmark's business. The tests need
//! root, `ip netns`, python3 and curl (the lab test also swaks), and skip
//! otherwise; all traffic stays inside the namespaces they create, which
//! are deleted on exit, also on failure.

mod support;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mxgate_wire::vrrp::{Repr, MULTICAST_V4};
use serde_json::Value;
use support::netns::{skip_unless_netns, Netns};
use support::vrrp_lab::{
    assert_vip, curl_missing, failures, mac, python, script, Client, Lab, MailLab, MxBox,
    CLIENT_ADDR, DEV, START, TAKEOVER, VIP, VRID,
};
use support::{mxgate_bin, poll, read_text, temp_dir, tool_in_path, Proc};

/// Sends raw VRRP packets to 224.0.0.18 from inside a namespace:
/// `python3 send.py SRC TTL ROUNDS GAP_S HEX...` sends every packet (the
/// VRRP message in hex; the kernel adds the IPv4 header, from SRC) once per
/// round, GAP_S apart, with the multicast TTL given, out of eth0.
const SEND_PY: &str = r#"
import socket, sys, time

src, ttl, rounds, gap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
packets = [bytes.fromhex(h) for h in sys.argv[5:]]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
for r in range(rounds):
    if r:
        time.sleep(gap)
    for p in packets:
        s.sendto(p, ("224.0.0.18", 0))
"#;

#[test]
fn master_killed_under_load_loses_no_accepted_message() {
    let test = "master_killed_under_load_loses_no_accepted_message";
    if skip_unless_netns(test) || curl_missing(test) {
        return;
    }
    let Some(python) = python(test) else {
        return;
    };
    let lab = MailLab::new();
    let mut a = MailLab::start_box(&lab.lab.a, "gw-a", 150);
    let mut b = MailLab::start_box(&lab.lab.b, "gw-b", 100);
    a.wait_state("MASTER", START);
    b.wait_state("BACKUP", START);
    assert_vip(&lab.lab.a, true, "A (150) is master", &[&a, &b]);

    // Load: COUNT messages, one after the other, each session held open
    // 0.3 s after DATA (the poll below sees a session enter its hold within
    // about 50 ms, so the kill lands well inside it).
    const COUNT: usize = 45;
    let tag = format!("mxft{}", std::process::id());
    let mut client = Client::start(
        &lab.client,
        &python,
        COUNT,
        &tag,
        Duration::from_millis(300),
    );
    // A third of the way in, while a session waits between DATA and its
    // body: A dies (SIGKILL) and its link goes down, as a dead box would.
    let cut_in = poll(Duration::from_secs(60), || {
        let records = client.records();
        let done = records.iter().filter(|r| r["event"] == "done").count();
        let in_data = records.last().is_some_and(|r| r["event"] == "data");
        (done >= COUNT / 3 && in_data).then(|| records.last().unwrap()["i"].clone())
    });
    let Some(cut_in) = cut_in else {
        panic!(
            "the load did not get a third of the way within 60 s\n{}\n{}\n{}",
            client.proc.output(),
            read_text(&client.out),
            a.run.output()
        );
    };
    let t_kill = Instant::now();
    a.run.signal("KILL");
    lab.lab.a.ip_ok(&["link", "set", DEV, "down"]);
    assert_vip(&lab.lab.b, true, "B takes over from a dead A", &[&a, &b]);
    let takeover = t_kill.elapsed();
    b.run
        .wait_for_line("reason=no advert from the master", TAKEOVER);

    // Nothing hangs: the whole run ends within a bound far above the
    // ~15 s it needs (0.3 s per message, plus a failover).
    let bound = Duration::from_secs(120);
    let exited = client.proc.wait_exit(bound);
    assert!(
        exited.is_some_and(|s| s.success()),
        "the client did not finish within {bound:?}: {exited:?}\n{}\n{}",
        client.proc.output(),
        read_text(&client.out)
    );
    let run_time = t_kill.elapsed();
    let done = client.done();
    assert_eq!(done.len(), COUNT, "{}", read_text(&client.out));

    // Every message ended with 250; what failed before was a connection
    // error or a 4xx, never a 5xx, and the session open at the kill was
    // among the retried.
    let not_accepted: Vec<&Value> = done.iter().filter(|r| r["code"] != 250).collect();
    assert!(
        not_accepted.is_empty(),
        "messages not accepted: {not_accepted:?}\n{}",
        b.run.output()
    );
    let retried: Vec<&Value> = done.iter().filter(|r| !failures(r).is_empty()).collect();
    for r in &retried {
        for (kind, text) in failures(r) {
            assert!(kind == "conn" || kind == "4xx", "{kind}: {text}");
        }
    }
    assert!(
        retried.iter().any(|r| r["i"] == cut_in),
        "message {cut_in}, in DATA at the kill, was not retried: {retried:?}"
    );

    // Every message the client saw 250 for is in an MTA's Maildir.
    let delivered = lab.delivered();
    let lost: Vec<&str> = done
        .iter()
        .filter_map(|r| r["subject"].as_str())
        .filter(|s| !delivered.contains_key(*s))
        .collect();
    assert!(
        lost.is_empty(),
        "accepted but not delivered: {lost:?}\ndelivered: {delivered:?}"
    );
    let mut duplicates: Vec<(&String, &usize)> =
        delivered.iter().filter(|(_, n)| **n > 1).collect();
    duplicates.sort();
    // After the kill, mail went through B.
    let accepted_by_b = b
        .metric("mxgate_smtp_messages_total{listener=\"mx\",result=\"accepted\"}")
        .unwrap_or(0.0);
    assert!(accepted_by_b >= 1.0, "{}", b.metrics());

    eprintln!(
        "failover under load: {COUNT} messages, the kill in message {cut_in}; \
         VIP on B after {takeover:?}; run finished {run_time:?} after the kill; \
         {} retried, {} by B; duplicates (cut after the backend's 250): {duplicates:?}",
        retried.len(),
        accepted_by_b
    );
    for r in &retried {
        eprintln!(
            "  retried message {} ({} s): {:?}",
            r["i"],
            r["secs"],
            failures(r)
        );
    }
    drop(client);
    drop(a);
    drop(b);
    drop(lab);
}

/// Waits until both boxes report `a_state` and `b_state`; how long it took.
fn wait_states(
    a: &MxBox,
    b: &MxBox,
    a_state: &str,
    b_state: &str,
    timeout: Duration,
) -> Option<Duration> {
    let t0 = Instant::now();
    poll(timeout, || {
        (a.state() == a_state && b.state() == b_state).then(|| t0.elapsed())
    })
}

/// The MAC the neighbour table of `ns` has for the VIP ("" if none).
fn vip_neighbour(ns: &Netns) -> String {
    let out = ns.ip(&["neigh", "show", VIP, "dev", DEV]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn link_cut_makes_two_masters_and_the_heal_leaves_the_higher_one() {
    let test = "link_cut_makes_two_masters_and_the_heal_leaves_the_higher_one";
    if skip_unless_netns(test) || curl_missing(test) {
        return;
    }
    let Some(python) = python(test) else {
        return;
    };
    let lab = MailLab::new();
    let mut a = MailLab::start_box(&lab.lab.a, "gw-a", 150);
    let mut b = MailLab::start_box(&lab.lab.b, "gw-b", 100);
    a.wait_state("MASTER", START);
    b.wait_state("BACKUP", START);
    assert_vip(&lab.lab.a, true, "A (150) is master", &[&a, &b]);
    let before = Client::send_one(&lab.client, &python, "split-before");
    assert_eq!(before["code"], 250, "{before}");

    // A's port leaves the bridge (its cable stays up: no link fault). B
    // hears nothing more and takes the VIP too: two masters.
    lab.lab.unplug("pa");
    assert_vip(
        &lab.lab.b,
        true,
        "B takes the VIP when A is cut off",
        &[&a, &b],
    );
    assert!(
        wait_states(&a, &b, "master", "master", TAKEOVER).is_some(),
        "both masters: A {} B {}",
        a.state(),
        b.state()
    );
    assert!(
        lab.lab.a.has_addr(DEV, VIP),
        "A keeps its VIP while cut off"
    );
    // The client, on B's side, is answered by B meanwhile.
    let during = Client::send_one(&lab.client, &python, "split-during");
    assert_eq!(during["code"], 250, "{during}");
    // Cut off, A also loses both MTAs: its pool is down and it advertises
    // 150 - 50 = 100, as much as B. Wait for that, so the heal below
    // always takes the same path: the tie goes to B (the higher address),
    // then A's pool comes back and A (150) preempts B.
    let a_lowered = poll(Duration::from_secs(10), || {
        (a.status()["vrrp"]["priority"] == 100).then_some(())
    });
    assert!(a_lowered.is_some(), "{}\n{}", a.status(), a.run.output());

    // Heal: exactly one master remains, the higher priority (A).
    lab.lab.plug("pa");
    let t_heal = Instant::now();
    let healed = poll(TAKEOVER, || {
        (lab.lab.a.has_addr(DEV, VIP)
            && !lab.lab.b.has_addr(DEV, VIP)
            && a.state() == "master"
            && b.state() == "backup")
            .then(|| t_heal.elapsed())
    });
    assert!(
        healed.is_some(),
        "one master after the heal: A {} {:?}, B {} {:?}\n{}\n{}",
        a.state(),
        lab.lab.a.ipv4_addrs(DEV),
        b.state(),
        lab.lab.b.ipv4_addrs(DEV),
        a.run.output(),
        b.run.output()
    );
    // And it stays that way.
    std::thread::sleep(Duration::from_millis(500));
    assert!(lab.lab.a.has_addr(DEV, VIP) && !lab.lab.b.has_addr(DEV, VIP));
    assert_eq!(a.state(), "master");

    // The VIP answers SMTP from the client (through A).
    let accepted_by_a = |a: &MxBox| {
        a.metric("mxgate_smtp_messages_total{listener=\"mx\",result=\"accepted\"}")
            .unwrap_or(0.0)
    };
    let a_before = accepted_by_a(&a);
    let t_send = Instant::now();
    let after = Client::send_one(&lab.client, &python, "split-after");
    let took = t_send.elapsed();
    assert_eq!(after["code"], 250, "{after}\n{}", a.run.output());
    assert_eq!(
        accepted_by_a(&a),
        a_before + 1.0,
        "the message went through A"
    );
    let delivered = lab.delivered();
    for record in [&before, &during, &after] {
        let subject = record["subject"].as_str().unwrap_or_default();
        assert!(delivered.contains_key(subject), "{subject}: {delivered:?}");
    }
    let moves: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|x| {
            x.status()["vrrp"]["transitions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |t| format!("{}: {t}", x.run.name()))
        })
        .collect();
    eprintln!("transitions:\n  {}", moves.join("\n  "));
    eprintln!(
        "split brain healed in {:?}; SMTP through the VIP after the heal took {took:?} \
         ({} failed attempts); the client's neighbour entry: {} (A is {}, B is {})",
        healed.unwrap(),
        failures(&after).len(),
        vip_neighbour(&lab.client),
        mac(&lab.lab.a),
        mac(&lab.lab.b)
    );
    drop(a);
    drop(b);
    drop(lab);
}

#[test]
fn equal_priority_the_higher_address_wins_between_two_masters() {
    let test = "equal_priority_the_higher_address_wins_between_two_masters";
    if skip_unless_netns(test) || curl_missing(test) {
        return;
    }
    let lab = Lab::new();
    // Started apart (A's port off the bridge), both become master. RFC 5798
    // breaks a tie only between masters: a backup that hears a master of
    // its own priority stays backup, so a tie is decided by who came first
    // unless both are masters at once, as after a partition.
    lab.unplug("pa");
    let mut a = MxBox::start(&lab.a, "gw-a", 100, "");
    let mut b = MxBox::start(&lab.b, "gw-b", 100, "");
    a.wait_state("MASTER", START);
    b.wait_state("MASTER", START);
    assert_vip(&lab.a, true, "A is master alone", &[&a, &b]);
    assert_vip(&lab.b, true, "B is master alone", &[&a, &b]);

    lab.plug("pa");
    assert_vip(&lab.a, false, "A (10.77.0.1) yields", &[&a, &b]);
    assert_vip(&lab.b, true, "B (10.77.0.2) stays master", &[&a, &b]);
    a.run.wait_for_line(
        "reason=advert with equal priority from a higher address",
        TAKEOVER,
    );
    std::thread::sleep(Duration::from_millis(700));
    assert!(!lab.a.has_addr(DEV, VIP) && lab.b.has_addr(DEV, VIP));
    assert_eq!(a.state(), "backup");
    assert_eq!(b.state(), "master");
    assert_eq!(a.status()["vrrp"]["master"], "10.77.0.2", "{}", a.status());

    // The other half of the rule: B leaves, A takes over; B comes back with
    // the same priority and, although its address is higher, stays backup
    // (a tie never preempts).
    b.run.signal("TERM");
    assert_vip(&lab.a, true, "A takes over when B leaves", &[&a, &b]);
    assert!(b.run.wait_exit(Duration::from_secs(10)).is_some());
    let b = MxBox::start(&lab.b, "gw-b2", 100, "");
    let heard = poll(TAKEOVER, || {
        (b.status()["vrrp"]["master"] == "10.77.0.1").then_some(())
    });
    assert!(heard.is_some(), "{}", b.status());
    std::thread::sleep(Duration::from_millis(700));
    assert!(lab.a.has_addr(DEV, VIP) && !lab.b.has_addr(DEV, VIP));
    assert_eq!(b.state(), "backup");
    assert!(b.run.find_line("to=MASTER").is_none(), "{}", b.run.output());
    drop(a);
    drop(b);
    drop(lab);
}

/// An advert from the client for the VIP, checksummed for 224.0.0.18.
fn advert(vrid: u8, priority: u8, interval_cs: u16) -> Vec<u8> {
    let repr = Repr {
        vrid,
        priority,
        max_adver_interval_cs: interval_cs,
        addresses: vec![VIP.parse().unwrap()],
    };
    let src: IpAddr = CLIENT_ADDR.parse().unwrap();
    repr.to_bytes(src, MULTICAST_V4.into()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends `packet` `rounds` times, `gap` apart, from `ns` to 224.0.0.18
/// with multicast TTL `ttl` (see [`SEND_PY`]).
fn send_raw(ns: &Netns, python: &Path, ttl: u8, rounds: u32, gap: Duration, packet: &[u8]) {
    let dir = temp_dir("send");
    let py = script(dir.path(), "send.py", SEND_PY);
    let mut args = vec![
        py.to_str().unwrap().to_string(),
        CLIENT_ADDR.to_string(),
        ttl.to_string(),
        rounds.to_string(),
        gap.as_secs_f64().to_string(),
    ];
    args.push(hex(packet));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ns.command(python, &args).output().expect("run python3");
    assert!(out.status.success(), "{}", support::output_text(&out));
}

#[test]
fn malformed_adverts_are_counted_and_change_nothing() {
    let test = "malformed_adverts_are_counted_and_change_nothing";
    if skip_unless_netns(test) || curl_missing(test) {
        return;
    }
    let Some(python) = python(test) else {
        return;
    };
    let mail = MailLab::new();
    let (lab, client) = (&mail.lab, &mail.client);
    let mut a = MailLab::start_box(&lab.a, "gw-a", 150);
    let mut b = MailLab::start_box(&lab.b, "gw-b", 100);
    a.wait_state("MASTER", START);
    b.wait_state("BACKUP", START);
    assert_vip(&lab.a, true, "A is master", &[&a, &b]);
    let transitions = |x: &MxBox| {
        ["master", "backup", "fault"].map(|to| {
            x.metric(&format!(
                "mxgate_vrrp_transitions_total{{vrid=\"{VRID}\",to=\"{to}\"}}"
            ))
        })
    };
    let (a_before, b_before) = (transitions(&a), transitions(&b));

    // Each would make A yield if it were taken (priority 254 > 150).
    let good = advert(VRID, 254, 10);
    let mut bad_checksum = good.clone();
    bad_checksum[6] ^= 0xff;
    let mut version_2 = good.clone();
    version_2[0] = 0x21;
    let cases: [(&str, u8, Vec<u8>); 5] = [
        ("truncated", 255, good[..4].to_vec()),
        ("bad_checksum", 255, bad_checksum),
        ("bad_ttl", 64, good.clone()),
        ("unknown_vrid", 255, advert(VRID + 1, 254, 10)),
        ("bad_version", 255, version_2),
    ];
    const ROUNDS: u32 = 3;
    for (reason, ttl, packet) in &cases {
        send_raw(
            client,
            &python,
            *ttl,
            ROUNDS,
            Duration::from_millis(20),
            packet,
        );
        let sample = format!("mxgate_vrrp_rx_dropped_total{{reason=\"{reason}\"}}");
        for x in [&a, &b] {
            x.wait_metric(&sample, f64::from(ROUNDS), TAKEOVER);
        }
    }
    // Nothing moved.
    std::thread::sleep(Duration::from_millis(500));
    assert!(lab.a.has_addr(DEV, VIP) && !lab.b.has_addr(DEV, VIP));
    assert_eq!(a.state(), "master");
    assert_eq!(b.state(), "backup");
    assert_eq!(transitions(&a), a_before, "{}", a.run.output());
    assert_eq!(transitions(&b), b_before, "{}", b.run.output());
    assert_eq!(
        a.run.count_lines("vrrp: state changed"),
        2,
        "{}",
        a.run.output()
    );
    assert_eq!(
        b.run.count_lines("vrrp: state changed"),
        1,
        "{}",
        b.run.output()
    );
    // The master heard none of them as an advert (the backup sends none).
    let received = a.status()["vrrp"]["adverts_received"].as_u64();
    assert_eq!(received, Some(0), "{}", a.status());

    // A well-formed advert with a higher priority from a foreign address
    // does count: the master steps down while it lasts (10 cs interval),
    // and takes the VIP back about 3 intervals after the last one.
    send_raw(client, &python, 255, 10, Duration::from_millis(50), &good);
    a.run
        .wait_for_line("reason=advert with a higher priority", TAKEOVER);
    let back = poll(TAKEOVER, || {
        let status = a.status();
        (status["vrrp"]["state"] == "master"
            && status["vrrp"]["transitions"][0]["reason"] == "master_down")
            .then_some(())
    });
    assert!(back.is_some(), "A is master again: {}", a.status());
    assert_vip(&lab.a, true, "A is master again", &[&a, &b]);
    assert_vip(&lab.b, false, "B stays backup", &[&a, &b]);
    assert!(wait_states(&a, &b, "master", "backup", TAKEOVER).is_some());
    // And the VIP still answers SMTP.
    let after = Client::send_one(client, &python, "adverts-after");
    assert_eq!(after["code"], 250, "{after}");
    drop(a);
    drop(b);
    drop(mail);
}

/// What `lab_run_survives_a_dead_master` runs inside `scripts/lab run`:
/// a box holds the VIP as soon as the command starts; a message through
/// the VIP; box A's mxgate gets SIGKILL (by pid: the only process in A's
/// namespace) and A's link goes down; B takes the VIP; another message
/// through the VIP gets 250. Each step exits with its own status.
const LAB_SCRIPT: &str = r#"
set -u
has_vip() { ip -n "$1" -4 -o addr show dev eth0 | grep -q " $LAB_VIP/"; }
wait_vip() {
    n=0
    until has_vip "$1"; do
        n=$((n + 1)); [ $n -gt 100 ] && { echo "no VIP on $1 after 10 s"; return 1; }
        sleep 0.1
    done
}
send() {
    ip netns exec "$LAB_CLIENT_NS" swaks --server "$LAB_VIP" --to user@lab.test \
        --from lab@client.test --h-Subject "$1" --timeout 20
}
has_vip "$LAB_A_NS" || has_vip "$LAB_B_NS" || { echo "no box holds the VIP at start"; exit 11; }
wait_vip "$LAB_A_NS" || exit 12
send lab-before || exit 13
pids=$(ip netns pids "$LAB_A_NS")
[ -n "$pids" ] || { echo "nothing runs in $LAB_A_NS"; exit 14; }
kill -KILL $pids || exit 15
ip -n "$LAB_A_NS" link set eth0 down || exit 16
wait_vip "$LAB_B_NS" || exit 17
send lab-after || exit 18
echo LAB-OK
"#;

/// Removes whatever a lab named `.0` left behind (processes killed first,
/// as the Netns guard does), also when the test fails.
struct LabLeftovers(String);

impl LabLeftovers {
    fn namespaces(&self) -> Vec<String> {
        let out = support::netns::ip(&["netns", "list"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{}-", self.0)))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for LabLeftovers {
    fn drop(&mut self) {
        for ns in self.namespaces() {
            let pids = support::netns::ip(&["netns", "pids", &ns]);
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                support::process::send_signal("KILL", pid);
            }
            let _ = support::netns::ip(&["netns", "del", &ns]);
        }
    }
}

#[test]
fn lab_run_survives_a_dead_master() {
    let test = "lab_run_survives_a_dead_master";
    if skip_unless_netns(test)
        || support::skip_unless_tools(test, &["swaks", "curl", "python3", "sh"])
    {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lab");
    // At most 10 characters (the lab's interface names).
    let name = format!("mxlt{}", std::process::id() % 100_000);
    let leftovers = LabLeftovers(name.clone());
    let mut cmd = Command::new(tool_in_path("python3").unwrap());
    cmd.arg(&script).args([
        "run",
        "--name",
        &name,
        "--binary",
        mxgate_bin(),
        "--",
        "sh",
        "-c",
        LAB_SCRIPT,
    ]);
    let mut lab = Proc::spawn("lab", cmd);
    let bound = Duration::from_secs(120);
    let status = lab.wait_exit(bound);
    assert!(
        status.is_some_and(|s| s.success()),
        "scripts/lab run: {status:?} (after at most {bound:?})\n{}",
        lab.output()
    );
    assert!(lab.stdout().contains("LAB-OK"), "{}", lab.output());
    assert_eq!(
        lab.stdout().matches("<-  250 2.0.0 Ok: queued").count(),
        2,
        "{}",
        lab.output()
    );
    assert!(
        leftovers.namespaces().is_empty(),
        "scripts/lab left namespaces behind: {:?}",
        leftovers.namespaces()
    );
    let workdir = format!("/tmp/mxgate-lab-{name}");
    assert!(!Path::new(&workdir).exists(), "{workdir} left behind");
}
