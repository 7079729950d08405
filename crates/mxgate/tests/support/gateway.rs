//! `Gateway`: an `mxgate run` process under test, with its node and policy
//! files in a temporary directory, plus small clients for its HTTP endpoints
//! and for raw SMTP sessions.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use super::web::{add_user, WebClient, ADMIN, ADMIN_PASSWORD};
use super::{free_addr, mxgate, output_text, poll, temp_dir, Proc};

/// A running `mxgate run`, stopped (SIGTERM) when dropped.
pub struct Gateway {
    /// The process.
    pub proc: Proc,
    /// The metrics/healthz listener.
    pub metrics: SocketAddr,
    /// The web UI / API listener (HTTPS).
    pub api: SocketAddr,
    /// Directory holding node.toml, policy.toml and data/.
    pub dir: tempfile::TempDir,
    /// A client logged in as [`ADMIN`], once [`Gateway::api_get`] needed it.
    web: std::sync::Mutex<Option<WebClient>>,
}

impl Gateway {
    /// Starts `mxgate run` with `policy` (TOML text) and waits for `/healthz`.
    ///
    /// # Panics
    /// When the gateway does not become healthy in 15 s (with its output).
    pub fn start(name: &str, policy: &str) -> Gateway {
        Gateway::start_with_node_extra(name, policy, "")
    }

    /// As [`Gateway::start`], with `extra_node_toml` appended to the node
    /// file (e.g. `[dns]\nservers = ["127.0.0.1:5353"]\n`).
    ///
    /// # Panics
    /// When the gateway does not become healthy in 15 s (with its output).
    pub fn start_with_node_extra(name: &str, policy: &str, extra_node_toml: &str) -> Gateway {
        Gateway::launch(name, policy, extra_node_toml, true)
    }

    /// As [`Gateway::start`], on a store without any web UI user: the box
    /// prints a setup code.
    ///
    /// # Panics
    /// When the gateway does not become healthy in 15 s (with its output).
    pub fn start_without_admin(name: &str, policy: &str) -> Gateway {
        Gateway::launch(name, policy, "", false)
    }

    fn launch(name: &str, policy: &str, extra_node_toml: &str, with_admin: bool) -> Gateway {
        let dir = temp_dir(name);
        let metrics = free_addr();
        let api = free_addr();
        let node = format!(
            "name = \"{name}\"\ndata_dir = \"{}\"\nshutdown_grace_ms = 5000\nlog = \"info\"\n\
             [metrics]\nlisten = \"{metrics}\"\n[web]\nlisten = \"{api}\"\n{extra_node_toml}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("node.toml"), node).unwrap();
        std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
        if with_admin {
            add_user(&dir.path().join("data"), ADMIN, "admin", ADMIN_PASSWORD);
        }
        let proc = spawn_run(name, dir.path());
        let gw = Gateway {
            proc,
            metrics,
            api,
            dir,
            web: std::sync::Mutex::new(None),
        };
        gw.wait_healthy();
        if with_admin {
            // Log in now, so that status() answers as fast as it did over
            // plain HTTP (tests poll it in tight loops).
            gw.api_get("/api/v1/session");
        }
        gw
    }

    /// An smtp-mode gateway (see [`smtp_policy`], with `pool_extra`) relaying
    /// to a fresh `mxgate sink`, once its backend is up: the gateway, the
    /// sink and the listener's address.
    ///
    /// # Panics
    /// When either does not start or the backend does not come up.
    pub fn start_smtp_with_sink(pool_extra: &str) -> (Gateway, Sink, SocketAddr) {
        let sink = Sink::start("sink", false);
        let bind = free_addr();
        let gw = Gateway::start("gw", &smtp_policy(bind, sink.addr, pool_extra));
        gw.wait_metric(
            "mxgate_backend_up{pool=\"mta\",server=\"mta1\"}",
            1.0,
            Duration::from_secs(20),
        );
        (gw, sink, bind)
    }

    /// Stops the process and starts `mxgate run` again with the same
    /// directory (node file, policy file and data/), ports and name: what
    /// the store keeps survives.
    ///
    /// # Panics
    /// When the new process does not become healthy in 15 s.
    pub fn restart(&mut self) {
        self.proc.stop();
        self.respawn();
        self.wait_healthy();
    }

    /// Starts the process again (after it stopped or was killed) without
    /// waiting for it to become healthy.
    pub fn respawn(&mut self) {
        self.proc.stop();
        let name = self.proc.name().to_string();
        self.proc = spawn_run(&name, self.dir.path());
    }

    fn wait_healthy(&self) {
        let healthy = poll(Duration::from_secs(15), || {
            http_get(self.metrics, "/healthz").filter(|(code, _)| *code == 200)
        });
        assert!(
            healthy.is_some(),
            "{} did not become healthy:\n{}",
            self.proc.name(),
            self.proc.output()
        );
    }

    /// The data directory (the store).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The node file.
    pub fn node_file(&self) -> PathBuf {
        self.dir.path().join("node.toml")
    }

    /// `/api/v1/status` as text (JSON; empty when the box does not answer).
    pub fn status(&self) -> String {
        self.api_get("/api/v1/status")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// `GET path` on the web listener over HTTPS, logged in as [`ADMIN`]:
    /// `(status code, body)`, or `None` when the box does not answer.
    pub fn api_get(&self, path: &str) -> Option<(u16, String)> {
        let mut web = self.web.lock().unwrap_or_else(|e| e.into_inner());
        if web.is_none() {
            let mut client = self.web_client();
            if client.try_login(ADMIN, ADMIN_PASSWORD).ok()?.status != 200 {
                return None;
            }
            *web = Some(client);
        }
        let r = web.as_ref()?.try_send("GET", path, &[], None).ok()?;
        if r.status == 401 {
            *web = None;
        }
        Some((r.status, r.body))
    }

    /// A new client of the web listener, not logged in.
    ///
    /// Waits (up to 15 s) for the box's certificate, which the web server
    /// writes on its first start, possibly after `/healthz` answers.
    pub fn web_client(&self) -> WebClient {
        let cert = self.data_dir().join("web").join("cert.pem");
        let written = poll(Duration::from_secs(15), || {
            std::fs::metadata(&cert)
                .ok()
                .filter(|m| m.len() > 0)
                .map(|_| ())
        });
        assert!(written.is_some(), "no {}", cert.display());
        WebClient::new(self.api, &self.data_dir())
    }

    /// `/metrics` as text.
    pub fn metrics_text(&self) -> String {
        http_get(self.metrics, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// The value of one metric sample (`name{labels}` exactly as exposed).
    pub fn metric(&self, sample: &str) -> Option<f64> {
        metric_value(&self.metrics_text(), sample)
    }

    /// Waits until `sample` has `value`.
    ///
    /// # Panics
    /// After `timeout`, with the metrics text.
    pub fn wait_metric(&self, sample: &str, value: f64, timeout: Duration) {
        let ok = poll(timeout, || {
            (self.metric(sample) == Some(value)).then_some(())
        });
        assert!(
            ok.is_some(),
            "{sample} did not become {value}:\n{}\n{}",
            self.metrics_text(),
            self.proc.output()
        );
    }

    /// Imports `policy` into the running gateway's store with
    /// `mxgate policy import` (another process, as an operator would).
    pub fn import_policy(&self, policy: &str) -> Output {
        let file = self.dir.path().join("import.toml");
        std::fs::write(&file, policy).unwrap();
        mxgate(&[
            "policy",
            "import",
            "--data",
            self.data_dir().to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap()
    }
}

/// `mxgate run` with `dir`'s node.toml and policy.toml.
fn spawn_run(name: &str, dir: &Path) -> Proc {
    let node_path = dir.join("node.toml");
    let policy_path = dir.join("policy.toml");
    Proc::spawn(
        name,
        mxgate(&[
            "run",
            "--config",
            node_path.to_str().unwrap(),
            "--policy",
            policy_path.to_str().unwrap(),
        ]),
    )
}

/// A policy with one pool `mta` (health `check` settings as an inline TOML
/// table body) over `servers`, and one l4 listener `mx` on `bind` with
/// `listener_extra` lines.
pub fn l4_policy(
    bind: SocketAddr,
    servers: &[(String, SocketAddr)],
    check: &str,
    listener_extra: &str,
) -> String {
    let mut p =
        format!("[[pool]]\nname = \"mta\"\nconnect_timeout_ms = 1000\ncheck = {{ {check} }}\n");
    for (name, addr) in servers {
        p.push_str(&format!(
            "[[pool.server]]\nname = \"{name}\"\naddress = \"{addr}\"\n"
        ));
    }
    p.push_str(&format!(
        "[[listener]]\nname = \"mx\"\nbind = \"{bind}\"\npool = \"mta\"\n{listener_extra}\n"
    ));
    p
}

/// A policy with one smtp listener on `bind` relaying to `server` for the
/// relay domain example.test (`pool_extra`: more lines for the pool).
/// The listener section comes last: append lines to set more of its keys.
pub fn smtp_policy(bind: SocketAddr, server: SocketAddr, pool_extra: &str) -> String {
    format!(
        "[relay]\ndomains = [\"example.test\"]\n\
         [[pool]]\nname = \"mta\"\n{pool_extra}\n\
         check = {{ interval_ms = 300, timeout_ms = 1000, fall = 1, rise = 1 }}\n\
         [[pool.server]]\nname = \"mta1\"\naddress = \"{server}\"\n\
         [[listener]]\nname = \"mx\"\nbind = \"{bind}\"\nmode = \"smtp\"\npool = \"mta\"\nhostname = \"mx.gw.test\"\n"
    )
}

/// The value of `sample` in a Prometheus text exposition.
pub fn metric_value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A plain HTTP/1.1 GET; `(status code, body)` or `None` when nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// A raw SMTP client session for tests that need to hold connections open or
/// look at exact replies.
pub struct SmtpClient {
    reader: BufReader<TcpStream>,
}

impl SmtpClient {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> std::io::Result<SmtpClient> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(SmtpClient {
            reader: BufReader::new(s),
        })
    }

    /// Connects after sending `prefix` bytes (e.g. a PROXY header).
    pub fn connect_with(addr: SocketAddr, prefix: &[u8]) -> std::io::Result<SmtpClient> {
        let mut c = SmtpClient::connect(addr)?;
        c.reader.get_mut().write_all(prefix)?;
        Ok(c)
    }

    /// Reads one whole (possibly multi-line) reply; the text of all lines.
    pub fn reply(&mut self) -> std::io::Result<String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(all);
            }
        }
    }

    /// Sends one command line (CRLF added) and reads the reply.
    pub fn command(&mut self, line: &str) -> std::io::Result<String> {
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// Writes raw `bytes` (no CRLF added, no reply read): for bad input,
    /// pipelined commands and message data sent in parts.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// `MAIL FROM:<from>` and `RCPT TO:<to>`, both answered 250.
    ///
    /// # Panics
    /// When either is not answered 250.
    pub fn envelope(&mut self, from: &str, to: &str) {
        let mail = self.command(&format!("MAIL FROM:<{from}>")).unwrap();
        assert!(mail.starts_with("250"), "MAIL FROM:<{from}>: {mail}");
        let rcpt = self.command(&format!("RCPT TO:<{to}>")).unwrap();
        assert!(rcpt.starts_with("250"), "RCPT TO:<{to}>: {rcpt}");
    }

    /// Sends a whole transaction and returns the reply to the final dot.
    pub fn send_mail(&mut self, from: &str, to: &str, body: &str) -> std::io::Result<String> {
        self.command(&format!("MAIL FROM:<{from}>"))?;
        self.command(&format!("RCPT TO:<{to}>"))?;
        self.command("DATA")?;
        self.reader
            .get_mut()
            .write_all(format!("Subject: test\r\n\r\n{body}\r\n.\r\n").as_bytes())?;
        self.reply()
    }

    /// Sends `message` (header and body as written, CRLF lines) in one
    /// transaction, dot-stuffed, and returns the reply to the final dot;
    /// or the refusal of MAIL, RCPT or DATA.
    pub fn send_message(
        &mut self,
        from: &str,
        to: &str,
        message: &[u8],
    ) -> std::io::Result<String> {
        for command in [
            format!("MAIL FROM:<{from}>"),
            format!("RCPT TO:<{to}>"),
            "DATA".into(),
        ] {
            let reply = self.command(&command)?;
            if !reply.starts_with('2') && !reply.starts_with("354") {
                return Ok(reply);
            }
        }
        let mut wire = Vec::with_capacity(message.len() + 8);
        for line in message.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        wire.extend_from_slice(b".\r\n");
        self.reader.get_mut().write_all(&wire)?;
        self.reply()
    }

    /// True when the server closes the connection (EOF or reset) within
    /// `timeout`, reading and dropping whatever it sends first (a last
    /// reply, a TLS alert). Silence until `timeout` is `false`.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || self.reader.get_mut().set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
            }
        }
    }
}

/// Runs `mxgate ARGS` to completion.
pub fn mxgate_output(args: &[&str]) -> (i32, String) {
    let out = mxgate(args).output().expect("run mxgate");
    (out.status.code().unwrap_or(-1), output_text(&out))
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A `mxgate sink` process storing mail in its own Maildir.
pub struct Sink {
    /// The process.
    pub proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its Maildir.
    pub maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sink {
    /// Starts a sink on a free loopback port (`accept_proxy`: read PROXY first).
    pub fn start(name: &str, accept_proxy: bool) -> Sink {
        let addr = free_addr();
        let dir = temp_dir(name);
        let maildir = dir.path().join("maildir");
        let mut cmd = mxgate(&["sink", "--listen", &addr.to_string()]);
        cmd.arg("--maildir").arg(&maildir);
        cmd.args(["--hostname", &format!("{name}.test")]);
        if accept_proxy {
            cmd.arg("--accept-proxy");
        }
        let proc = Proc::spawn(name, cmd);
        super::wait_port(addr, Duration::from_secs(10));
        Sink {
            proc,
            addr,
            maildir,
            _dir: dir,
        }
    }

    /// The messages stored so far (file contents).
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}
