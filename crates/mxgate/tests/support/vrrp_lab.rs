//! The VRRP lab shared by `vrrp_pair.rs` and `vrrp_failover.rs`: two boxes,
//! each in a network namespace of its own, joined by a bridge in a third,
//! plus whatever other hosts a test attaches to the bridge:
//!
//! ```text
//!   ns A:      eth0 10.77.0.1/24  ──veth── pa       ┐
//!   ns B:      eth0 10.77.0.2/24  ──veth── pb       ├ br0 (ns sw)
//!   (attached) eth0 10.77.0.x/24  ──veth── p<tag>   ┘   VIP 10.77.0.100/24
//! ```
//!
//! [`MxBox`] is one `mxgate run` with `[vrrp]` (advert interval 100 ms,
//! VRID 51) in a box namespace, with its metrics (`127.0.0.1:9100`) and
//! web API (HTTPS, `127.0.0.1:9101`, read by curl logged in as the test
//! admin) inside that namespace. The helpers below
//! watch who holds the VIP (`ip -n NS addr`), the boxes' states and the
//! neighbour tables.
//!
//! [`MailLab`] adds a client namespace and two backend MTA namespaces
//! (`mxgate sink` with a Maildir) to the bridge, for boxes in smtp mode
//! ([`MailLab::start_box`]), and [`Client`] sends mail through the VIP from
//! the client namespace with a small Python client ([`CLIENT_PY`]).
//!
//! Everything stays inside the namespaces the lab creates, which are
//! deleted when the guards drop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::netns::Netns;
use super::web::{add_user, ADMIN, ADMIN_PASSWORD};
use super::{mxgate_bin, note_skip, poll, read_text, temp_dir, tool_in_path, Proc};

/// The virtual IP the boxes share.
pub const VIP: &str = "10.77.0.100";
/// Every lab host's interface.
pub const DEV: &str = "eth0";
/// Box A's primary address.
pub const A_ADDR: &str = "10.77.0.1";
/// Box B's primary address.
pub const B_ADDR: &str = "10.77.0.2";
/// The VRID both boxes use.
pub const VRID: u8 = 51;
/// Generous bound for a takeover that should take well under a second.
pub const TAKEOVER: Duration = Duration::from_secs(3);
/// Generous bound for a box to start.
pub const START: Duration = Duration::from_secs(15);
/// The metrics port inside a box's namespace.
pub const METRICS_PORT: u16 = 9100;
/// The status API port inside a box's namespace.
pub const API_PORT: u16 = 9101;

/// The switch namespace and the two boxes' namespaces.
pub struct Lab {
    /// Box A's namespace (10.77.0.1, bridge port `pa`).
    pub a: Netns,
    /// Box B's namespace (10.77.0.2, bridge port `pb`).
    pub b: Netns,
    /// The bridge's namespace. Declared last: deleted after the boxes'.
    pub sw: Netns,
}

impl Lab {
    /// Builds the bridge and both boxes' namespaces.
    ///
    /// # Panics
    /// When an `ip` command fails.
    pub fn new() -> Lab {
        let sw = Netns::new("sw");
        sw.ip_ok(&["link", "add", "br0", "type", "bridge"]);
        sw.ip_ok(&["link", "set", "br0", "up"]);
        let a = Netns::new("a");
        let b = Netns::new("b");
        attach(&sw, &a, "pa", &format!("{A_ADDR}/24"));
        attach(&sw, &b, "pb", &format!("{B_ADDR}/24"));
        Lab { a, b, sw }
    }

    /// A new namespace `tag` on the bridge with `addr` (`A.B.C.D/N`) on its
    /// eth0; its bridge port is `p<tag>` (keep `tag` short: interface names
    /// have at most 15 characters). The caller owns it: keep it alive no
    /// longer than the lab.
    ///
    /// # Panics
    /// When an `ip` command fails.
    pub fn host(&self, tag: &str, addr: &str) -> Netns {
        let ns = Netns::new(tag);
        attach(&self.sw, &ns, &format!("p{tag}"), addr);
        ns
    }

    /// Takes bridge port `port` (`pa`, `pb`, `p<tag>`) off the bridge: the
    /// host behind it is cut off, but both ends of its cable stay up (no
    /// carrier loss, so a box sees no link fault and keeps advertising).
    pub fn unplug(&self, port: &str) {
        self.sw.ip_ok(&["link", "set", port, "nomaster"]);
    }

    /// Puts bridge port `port` back on the bridge.
    pub fn plug(&self, port: &str) {
        self.sw.ip_ok(&["link", "set", port, "master", "br0"]);
    }
}

/// Connects `ns` to the bridge in `sw` with a veth pair (`eth0` in `ns`,
/// `port` in `sw`), gives it `addr` and sets `arp_accept`, so neighbours
/// are learned from gratuitous ARP and the tests can see them.
fn attach(sw: &Netns, ns: &Netns, port: &str, addr: &str) {
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
    let sysctl = format!("echo 1 > /proc/sys/net/ipv4/conf/{DEV}/arp_accept");
    let out = ns.command("sh", &["-c", &sysctl]).output().unwrap();
    assert!(out.status.success(), "{}", super::output_text(&out));
}

/// `ip ARGS` in the test's own namespace (only to create veth pairs whose
/// both ends are put straight into the lab's namespaces).
fn super_ip(args: &[&str]) {
    let out = super::netns::ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        super::output_text(&out)
    );
}

/// The l4 policy of a box that relays to its own loopback sink.
pub const LOOPBACK_L4_POLICY: &str = "[[pool]]\nname = \"mta\"\n\
    check = { interval_ms = 300, timeout_ms = 1000, fall = 1, rise = 1 }\n\
    [[pool.server]]\nname = \"sink\"\naddress = \"127.0.0.1:2525\"\n\
    [[listener]]\nname = \"mx\"\nbind = \"0.0.0.0:2500\"\npool = \"mta\"\n";

/// One box: `mxgate run` inside namespace `ns` (and, for the l4 boxes of
/// [`MxBox::start`], a sink on its loopback).
pub struct MxBox {
    /// The `mxgate run` process.
    pub run: Proc,
    /// The box's own loopback sink, if it has one.
    pub sink: Option<Proc>,
    ns: String,
    _dir: tempfile::TempDir,
}

impl MxBox {
    /// Starts a box with `priority` and more `[vrrp]` lines, relaying (l4,
    /// port 2500) to a sink on its own loopback, and waits until its VRRP
    /// driver runs.
    pub fn start(ns: &Netns, name: &str, priority: u8, vrrp_extra: &str) -> MxBox {
        let sink = Proc::spawn(
            &format!("{name}-sink"),
            ns.command(mxgate_bin(), &["sink", "--listen", "127.0.0.1:2525"]),
        );
        let mut b = MxBox::start_with_policy(ns, name, priority, vrrp_extra, LOOPBACK_L4_POLICY);
        b.sink = Some(sink);
        b
    }

    /// Starts a box with `priority`, more `[vrrp]` lines and `policy` (TOML
    /// text), and waits until its VRRP driver runs.
    ///
    /// # Panics
    /// When it does not log `vrrp: starting` within [`START`].
    pub fn start_with_policy(
        ns: &Netns,
        name: &str,
        priority: u8,
        vrrp_extra: &str,
        policy: &str,
    ) -> MxBox {
        let dir = temp_dir(name);
        let node = format!(
            "name = \"{name}\"\ndata_dir = \"{data}\"\nshutdown_grace_ms = 2000\nlog = \"info\"\n\
             [metrics]\nlisten = \"127.0.0.1:{METRICS_PORT}\"\n\
             [web]\nlisten = \"127.0.0.1:{API_PORT}\"\n\
             [vrrp]\ninterface = \"{DEV}\"\nvrid = {VRID}\npriority = {priority}\n\
             advert_interval_ms = 100\nvirtual_ips = [\"{VIP}/24\"]\n{vrrp_extra}\n",
            data = dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("node.toml"), node).unwrap();
        std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
        add_user(&dir.path().join("data"), ADMIN, "admin", ADMIN_PASSWORD);
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
            sink: None,
            ns: ns.name().to_string(),
            _dir: dir,
        }
    }

    /// The box's data directory (its store, keys and pairing files).
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// `GET path` on the box's metrics port (plain HTTP), from inside its
    /// namespace.
    pub fn http(&self, port: u16, path: &str) -> String {
        self.curl(&[&format!("http://127.0.0.1:{port}{path}")])
    }

    /// `GET path` on the box's web API (HTTPS, trusting the box's own
    /// certificate), logged in as the test admin (the session cookie is
    /// kept in a file and renewed when refused).
    pub fn api_get(&self, path: &str) -> String {
        let cert = self._dir.path().join("data").join("web").join("cert.pem");
        let jar = self._dir.path().join("cookies.txt");
        let (cert, jar) = (cert.to_str().unwrap(), jar.to_str().unwrap());
        let url = |p: &str| format!("https://127.0.0.1:{API_PORT}{p}");
        let get = || self.curl(&["--cacert", cert, "-b", jar, &url(path)]);
        let body = get();
        if !body.contains("not logged in") {
            return body;
        }
        let login = format!("{{\"name\":\"{ADMIN}\",\"password\":\"{ADMIN_PASSWORD}\"}}");
        self.curl(&[
            "--cacert",
            cert,
            "-c",
            jar,
            "-H",
            "content-type: application/json",
            "-d",
            &login,
            &url("/api/v1/login"),
        ]);
        get()
    }

    /// `POST path` with the JSON `body` on the box's web API, logged in as
    /// the test admin with the session's CSRF token: `(status code, body)`.
    pub fn api_post(&self, path: &str, body: &str) -> (u16, String) {
        let session: serde_json::Value =
            serde_json::from_str(&self.api_get("/api/v1/session")).unwrap_or_default();
        let csrf = format!(
            "X-CSRF-Token: {}",
            session["csrf"].as_str().unwrap_or_default()
        );
        let cert = self._dir.path().join("data").join("web").join("cert.pem");
        let jar = self._dir.path().join("cookies.txt");
        let out = self.curl(&[
            "--cacert",
            cert.to_str().unwrap(),
            "-b",
            jar.to_str().unwrap(),
            "-H",
            "content-type: application/json",
            "-H",
            &csrf,
            "-d",
            body,
            "-w",
            "\n%{http_code}",
            &format!("https://127.0.0.1:{API_PORT}{path}"),
        ]);
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// `curl -s ARGS` inside the box's namespace; its output.
    fn curl(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(tool_in_path("ip").unwrap())
            .args(["netns", "exec", &self.ns, "curl", "-s", "--max-time", "5"])
            .args(args)
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `/api/v1/status` (JSON; null when it does not answer).
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.api_get("/api/v1/status")).unwrap_or_default()
    }

    /// The VRRP state from the status API (`master`, `backup`, ...; "" when
    /// the box does not answer).
    pub fn state(&self) -> String {
        self.status()["vrrp"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// `/metrics` as text.
    pub fn metrics(&self) -> String {
        self.http(METRICS_PORT, "/metrics")
    }

    /// The value of one metric sample (`name{labels}` exactly as exposed).
    pub fn metric(&self, sample: &str) -> Option<f64> {
        super::gateway::metric_value(&self.metrics(), sample)
    }

    /// Waits until `sample` has `value`.
    ///
    /// # Panics
    /// After `timeout`, with the metrics and the box's output.
    pub fn wait_metric(&self, sample: &str, value: f64, timeout: Duration) {
        let ok = poll(timeout, || {
            (self.metric(sample) == Some(value)).then_some(())
        });
        assert!(
            ok.is_some(),
            "{sample} did not become {value}:\n{}\n{}",
            self.metrics(),
            self.run.output()
        );
    }

    /// Waits until the log says the box entered `state` (`MASTER`, ...).
    pub fn wait_state(&mut self, state: &str, timeout: Duration) {
        self.run.wait_for_line(&format!("to={state}"), timeout);
    }
}

/// A new lab with A (priority 150, VRRP settings `a_extra`) and B
/// (`b_priority`, `b_extra`) started, A master and B backup, and the VIP on
/// A (`what` names that check). Drop B and A before the lab.
pub fn started_pair(
    b_priority: u8,
    a_extra: &str,
    b_extra: &str,
    what: &str,
) -> (Lab, MxBox, MxBox) {
    let lab = Lab::new();
    let mut a = MxBox::start(&lab.a, "gw-a", 150, a_extra);
    let mut b = MxBox::start(&lab.b, "gw-b", b_priority, b_extra);
    a.wait_state("MASTER", START);
    b.wait_state("BACKUP", START);
    assert_vip(&lab.a, true, what, &[&a, &b]);
    (lab, a, b)
}

/// Whether curl is missing (then the test is reported as skipped).
pub fn curl_missing(test: &str) -> bool {
    if tool_in_path("curl").is_some() {
        return false;
    }
    super::note_skip(test, "curl");
    true
}

/// Waits until `ns` holds the VIP (`true`) or not (`false`); how long it took.
pub fn wait_vip(ns: &Netns, held: bool, timeout: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    poll(timeout, || {
        (ns.has_addr(DEV, VIP) == held).then(|| t0.elapsed())
    })
}

/// The MAC address of `ns`'s eth0.
pub fn mac(ns: &Netns) -> String {
    let out = ns.ip(&["-o", "link", "show", DEV]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "link/ether");
    words.next().unwrap_or_default().to_string()
}

/// Waits until `ns` maps the VIP to `mac` in its neighbour table, which a
/// gratuitous ARP from the master does (the lab sets `arp_accept`).
pub fn wait_neighbour(ns: &Netns, mac: &str) -> bool {
    poll(TAKEOVER, || {
        let out = ns.ip(&["neigh", "show", VIP, "dev", DEV]);
        String::from_utf8_lossy(&out.stdout)
            .contains(mac)
            .then_some(())
    })
    .is_some()
}

/// Asserts that `ns` holds the VIP (`held`) or not within [`TAKEOVER`];
/// the panic message has the boxes' output.
pub fn assert_vip(ns: &Netns, held: bool, what: &str, boxes: &[&MxBox]) {
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

// ----- The mail lab: a client and two backend MTAs on the bridge, smtp boxes -----

/// The client's address (namespace tag `cl`).
pub const CLIENT_ADDR: &str = "10.77.0.10";
/// Backend MTA 1's address.
pub const MTA1_ADDR: &str = "10.77.0.21";
/// Backend MTA 2's address.
pub const MTA2_ADDR: &str = "10.77.0.22";
/// How long the client keeps retrying one message.
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(30);

/// The SMTP client run inside the client namespace:
/// `python3 client.py VIP COUNT TAG OUT HOLD_S DEADLINE_S`.
///
/// Sends COUNT messages one after the other, each in its own session, with
/// Subject and Message-ID `TAG-i`; waits HOLD_S between the 354 and the
/// body (so that a session is almost always open, and a kill lands in
/// one). A connection error (refused, reset, closed, 5 s without an
/// answer) or a 4xx reply is retried after 0.1 s until DEADLINE_S after
/// the message's first attempt; 250 and 5xx are final. Appends JSON lines
/// to OUT: `{"event": "data", "i"}` when a session is about to hold, and
/// `{"event": "done", "i", "subject", "code", "reply", "failures": [{"kind":
/// "conn"|"4xx", "text"}], "secs"}` per message (`code` null: gave up on
/// connection errors).
pub const CLIENT_PY: &str = r#"
import json, socket, sys, time

vip, count, tag, out_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
hold, deadline = float(sys.argv[5]), float(sys.argv[6])
TIMEOUT = 5.0


def reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("connection closed by the server")
        lines.append(line.decode(errors="replace").rstrip())
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), " | ".join(lines)


def attempt(i, subject, log):
    with socket.create_connection((vip, 25), timeout=TIMEOUT) as s:
        f = s.makefile("rb")
        code, text = reply(f)
        if code != 220:
            return code, text
        for command in ("EHLO client.test", "MAIL FROM:<load@client.test>",
                        "RCPT TO:<user@example.test>", "DATA"):
            s.sendall(command.encode() + b"\r\n")
            code, text = reply(f)
            if code >= 400:
                return code, text
        log({"event": "data", "i": i})
        time.sleep(hold)
        s.sendall((f"Subject: {subject}\r\nMessage-ID: <{subject}@client.test>\r\n"
                   f"\r\nmessage {i}\r\n.\r\n").encode())
        code, text = reply(f)
        try:
            s.sendall(b"QUIT\r\n")
            reply(f)
        except (OSError, ValueError):
            pass
        return code, text


with open(out_path, "a", buffering=1) as out:
    def log(record):
        out.write(json.dumps(record) + "\n")

    for i in range(count):
        subject = f"{tag}-{i}"
        t0 = time.monotonic()
        failures = []
        while True:
            try:
                code, text = attempt(i, subject, log)
            except (OSError, ValueError) as e:
                code, text = None, f"{type(e).__name__}: {e}"
            if code is not None and (code == 250 or code >= 500):
                break
            kind = "conn" if code is None else "4xx"
            failures.append({"kind": kind, "text": text if code is None else f"{code} {text}"})
            if time.monotonic() - t0 > deadline:
                break
            time.sleep(0.1)
        log({"event": "done", "i": i, "subject": subject, "code": code, "reply": text,
             "failures": failures, "secs": round(time.monotonic() - t0, 3)})
"#;

/// python3, or `None` after reporting the skip.
pub fn python(test: &str) -> Option<PathBuf> {
    let found = tool_in_path("python3");
    if found.is_none() {
        note_skip(test, "python3");
    }
    found
}

/// Writes `text` into `dir/name`; the path.
pub fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A backend MTA: an `mxgate sink` on port 25 in a namespace of its own,
/// storing mail in a Maildir.
pub struct Mta {
    _sink: Proc,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
    // Declared after the sink: deleted once the sink was stopped.
    _ns: Netns,
}

impl Mta {
    /// Starts the MTA `tag` at `addr` on the lab's bridge.
    pub fn start(lab: &Lab, tag: &str, addr: &str) -> Mta {
        let ns = lab.host(tag, &format!("{addr}/24"));
        let dir = temp_dir(tag);
        let maildir = dir.path().join("maildir");
        let sink = Proc::spawn(
            tag,
            ns.command(
                mxgate_bin(),
                &[
                    "sink",
                    "--listen",
                    "0.0.0.0:25",
                    "--hostname",
                    &format!("{tag}.test"),
                    "--maildir",
                    maildir.to_str().unwrap(),
                ],
            ),
        );
        Mta {
            _sink: sink,
            maildir,
            _dir: dir,
            _ns: ns,
        }
    }

    /// The Subject of every message stored so far.
    pub fn subjects(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .map(|s| s.trim().to_string())
            })
            .collect()
    }
}

/// The mail lab: the VRRP lab plus a client and two backend MTAs.
pub struct MailLab {
    /// The client's namespace (10.77.0.10).
    pub client: Netns,
    /// Backend MTA 1.
    pub mta1: Mta,
    /// Backend MTA 2.
    pub mta2: Mta,
    /// The boxes and the bridge. Declared last: the bridge goes after
    /// everything on it.
    pub lab: Lab,
}

impl MailLab {
    /// Builds the lab, the client and both MTAs (the boxes are started by
    /// [`MailLab::start_box`]).
    pub fn new() -> MailLab {
        let lab = Lab::new();
        let client = lab.host("cl", &format!("{CLIENT_ADDR}/24"));
        let mta1 = Mta::start(&lab, "mta1", MTA1_ADDR);
        let mta2 = Mta::start(&lab, "mta2", MTA2_ADDR);
        MailLab {
            client,
            mta1,
            mta2,
            lab,
        }
    }

    /// Starts box `name` in `ns` with `priority` in smtp mode and waits
    /// until both MTAs are up in its pool.
    pub fn start_box(ns: &Netns, name: &str, priority: u8) -> MxBox {
        let b = MxBox::start_with_policy(ns, name, priority, "", &smtp_policy());
        for server in ["mta1", "mta2"] {
            b.wait_metric(
                &format!("mxgate_backend_up{{pool=\"mta\",server=\"{server}\"}}"),
                1.0,
                START,
            );
        }
        b
    }

    /// Subject → how many times it was delivered, over both MTAs.
    pub fn delivered(&self) -> HashMap<String, usize> {
        let mut all = HashMap::new();
        for s in self.mta1.subjects().into_iter().chain(self.mta2.subjects()) {
            *all.entry(s).or_default() += 1;
        }
        all
    }
}

/// smtp mode on port 25 for `example.test`, over both MTAs.
pub fn smtp_policy() -> String {
    format!(
        "[relay]\ndomains = [\"example.test\"]\n\
         [[pool]]\nname = \"mta\"\nclient_identity = \"none\"\nbackend_tls = \"off\"\n\
         check = {{ interval_ms = 300, timeout_ms = 1000, fall = 1, rise = 1 }}\n\
         [[pool.server]]\nname = \"mta1\"\naddress = \"{MTA1_ADDR}:25\"\n\
         [[pool.server]]\nname = \"mta2\"\naddress = \"{MTA2_ADDR}:25\"\n\
         [[listener]]\nname = \"mx\"\nbind = \"0.0.0.0:25\"\nmode = \"smtp\"\npool = \"mta\"\n\
         hostname = \"mx.gw.test\"\n"
    )
}

/// A run of [`CLIENT_PY`] in the client namespace.
pub struct Client {
    /// The python3 process.
    pub proc: Proc,
    /// Its JSON-lines output file.
    pub out: PathBuf,
    // Declared after the process: holds the script and its output.
    _dir: tempfile::TempDir,
}

impl Client {
    /// Starts sending `count` messages tagged `tag` (see [`CLIENT_PY`]).
    pub fn start(ns: &Netns, python: &Path, count: usize, tag: &str, hold: Duration) -> Client {
        let dir = temp_dir("client");
        let py = script(dir.path(), "client.py", CLIENT_PY);
        let out = dir.path().join("out.jsonl");
        let proc = Proc::spawn(
            "client",
            ns.command(
                python,
                &[
                    py.to_str().unwrap(),
                    VIP,
                    &count.to_string(),
                    tag,
                    out.to_str().unwrap(),
                    &hold.as_secs_f64().to_string(),
                    &MESSAGE_DEADLINE.as_secs_f64().to_string(),
                ],
            ),
        );
        Client {
            proc,
            out,
            _dir: dir,
        }
    }

    /// Sends one message tagged `tag` and returns its `done` record.
    ///
    /// # Panics
    /// When the client does not finish within its deadline plus a margin.
    pub fn send_one(ns: &Netns, python: &Path, tag: &str) -> Value {
        let mut c = Client::start(ns, python, 1, tag, Duration::ZERO);
        let exited = c.proc.wait_exit(MESSAGE_DEADLINE + Duration::from_secs(20));
        assert!(
            exited.is_some_and(|s| s.success()),
            "the client hung or failed: {:?}\n{}",
            exited,
            c.proc.output()
        );
        c.done().pop().expect("a done record")
    }

    /// Every JSON line written so far.
    pub fn records(&self) -> Vec<Value> {
        read_text(&self.out)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The `done` records.
    pub fn done(&self) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["event"] == "done")
            .collect()
    }
}

/// The `failures` of a `done` record, as `(kind, text)`.
pub fn failures(record: &Value) -> Vec<(String, String)> {
    record["failures"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|f| {
                    let field = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                    (field("kind"), field("text"))
                })
                .collect()
        })
        .unwrap_or_default()
}
