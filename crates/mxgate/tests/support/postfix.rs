//! `Postfix`: a real Postfix instance as the backend MTA of a test.
//!
//! Each instance lives in its own temporary directory:
//!
//! ```text
//! DIR/etc/{main.cf,master.cf}   config_directory (`postfix -c DIR/etc`)
//! DIR/queue/                    queue_directory (pid/master.pid inside)
//! DIR/data/                     data_directory (master.lock inside)
//! DIR/maillog                   maillog_file, written by postlogd
//! DIR/tls/{cert,key}.pem        only with `.starttls(true)`
//! ```
//!
//! so any number of instances run side by side: each has its own queue,
//! pid file, lock and log, and its smtpd listens on its own loopback port.
//! Postfix only asks that a non-default `-c` directory be registered in
//! `alternate_config_directories` (or via `postmulti`) for unprivileged,
//! set-gid use (postdrop, postqueue); `postfix -c DIR start` run as root is
//! accepted as is, so the system's /etc/postfix is neither read for this
//! nor changed. Mail never leaves the box: every transport is
//! `discard:discarded`, so each accepted recipient is logged as
//! `status=sent (discarded)`. Peer name lookups are off
//! (`smtpd_peername_lookup = no`): clients appear as `unknown[IP]`, with no
//! DNS delay.
//!
//! Postfix must run as root: guard tests with [`Postfix::skip_unless_available`].
//! On `Drop` the instance is stopped (`postfix stop`, then `abort`, then
//! SIGKILL to its process group), also when the test panics; a panicking
//! test also gets the tail of the maillog on stderr.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::net::{free_port, port_listening, wait_port_closed};
use super::process::{group_members, pid_alive, send_signal};
use super::tools::{output_text, skip_unless_root, skip_unless_tools};
use super::{poll, read_text, tail, temp_dir};

/// The log text of one delivered recipient (every transport discards).
pub const DELIVERED: &str = "status=sent (discarded)";

/// How long starting or stopping an instance may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Options of a Postfix instance; [`PostfixBuilder::start`] starts it.
#[derive(Debug, Clone)]
pub struct PostfixBuilder {
    name: String,
    port: Option<u16>,
    proxy_protocol: bool,
    xclient: bool,
    starttls: bool,
    extra: Vec<(String, String)>,
}

impl PostfixBuilder {
    /// Listen on this port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// `smtpd_upstream_proxy_protocol = haproxy`: smtpd expects a PROXY v1
    /// or v2 header before SMTP (as behind mxgate with `send_proxy`) and
    /// logs the address from it (`connect from unknown[203.0.113.7]`).
    pub fn proxy_protocol(mut self, on: bool) -> Self {
        self.proxy_protocol = on;
        self
    }

    /// `smtpd_authorized_xclient_hosts = 127.0.0.0/8`: loopback clients may
    /// use XCLIENT to pass the original client on.
    pub fn xclient(mut self, on: bool) -> Self {
        self.xclient = on;
        self
    }

    /// Offer STARTTLS with a fresh self-signed certificate for
    /// `NAME.example.test` (made with `openssl`), `smtpd_tls_loglevel = 1`.
    pub fn starttls(mut self, on: bool) -> Self {
        self.starttls = on;
        self
    }

    /// Any other main.cf setting (added last, so it overrides the defaults).
    pub fn main_cf(mut self, key: &str, value: &str) -> Self {
        self.extra.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Creates the instance, checks it (`postfix check`), starts it and
    /// waits until its smtpd accepts connections.
    ///
    /// # Panics
    /// When any step fails; the message holds the command output and the
    /// maillog.
    pub fn start(self) -> Postfix {
        let dir = temp_dir(&format!("postfix-{}", self.name));
        let root = dir.path().to_owned();
        for sub in ["etc", "queue"] {
            std::fs::create_dir_all(root.join(sub)).expect("create Postfix directories");
        }
        let mut pf = Postfix {
            port: self.port.unwrap_or_else(free_port),
            opts: self,
            root,
            dir,
        };
        if pf.opts.starttls {
            pf.make_certificate();
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            pf.write_config();
            pf.check();
            match pf.try_start() {
                Ok(()) => return pf,
                // Someone took the free port in between: pick another one.
                Err(log) if pf.opts.port.is_none() && attempt < 4 && log.contains("in use") => {
                    pf.port = free_port();
                }
                Err(log) => panic!("{}: postfix start failed\n{log}", pf.opts.name),
            }
        }
    }
}

/// A running Postfix instance, stopped when dropped.
pub struct Postfix {
    opts: PostfixBuilder,
    port: u16,
    root: PathBuf,
    // Declared last: removed only after the instance is stopped.
    dir: tempfile::TempDir,
}

impl Postfix {
    /// Options for an instance called `name` (used in its host name
    /// `NAME.example.test`, its temporary directory and in messages).
    pub fn builder(name: &str) -> PostfixBuilder {
        PostfixBuilder {
            name: name.to_owned(),
            port: None,
            proxy_protocol: false,
            xclient: false,
            starttls: false,
            extra: Vec::new(),
        }
    }

    /// A plain instance (no PROXY, no XCLIENT, no TLS) on a free port.
    pub fn start(name: &str) -> Postfix {
        Postfix::builder(name).start()
    }

    /// For Postfix tests: `true` (test skipped, reason printed) unless this
    /// runs as root with postfix and swaks installed (missing tools fail
    /// under CI instead of skipping).
    pub fn skip_unless_available(test_name: &str) -> bool {
        skip_unless_root(test_name) || skip_unless_tools(test_name, &["postfix", "swaks"])
    }

    /// The instance name.
    pub fn name(&self) -> &str {
        &self.opts.name
    }

    /// `myhostname`: `NAME.example.test`, in its banner and EHLO reply.
    pub fn hostname(&self) -> String {
        format!("{}.example.test", self.opts.name)
    }

    /// The smtpd address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The smtpd port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether smtpd expects a PROXY header.
    pub fn proxy_protocol(&self) -> bool {
        self.opts.proxy_protocol
    }

    /// The instance's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config directory passed as `postfix -c`.
    pub fn config_dir(&self) -> PathBuf {
        self.root.join("etc")
    }

    /// The maillog file.
    pub fn maillog_path(&self) -> PathBuf {
        self.root.join("maillog")
    }

    /// The whole maillog so far.
    pub fn maillog(&self) -> String {
        read_text(&self.maillog_path())
    }

    /// The maillog's current length: pass it to
    /// [`Postfix::wait_log_since`] to look only at what comes after.
    pub fn log_mark(&self) -> usize {
        self.maillog().len()
    }

    /// How many maillog lines contain `pattern` (a plain substring).
    pub fn count_log(&self, pattern: &str) -> usize {
        self.maillog()
            .lines()
            .filter(|l| l.contains(pattern))
            .count()
    }

    /// How many recipients were delivered (discarded) so far.
    pub fn delivered(&self) -> usize {
        self.count_log(DELIVERED)
    }

    /// Waits for a maillog line containing `pattern`; returns it.
    ///
    /// # Panics
    /// On timeout, with the maillog in the message.
    pub fn wait_log(&self, pattern: &str, timeout: Duration) -> String {
        self.wait_log_since(0, pattern, timeout)
    }

    /// Like [`Postfix::wait_log`], looking only after byte offset `mark`
    /// (from [`Postfix::log_mark`]).
    pub fn wait_log_since(&self, mark: usize, pattern: &str, timeout: Duration) -> String {
        self.try_wait_log_since(mark, pattern, timeout)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no maillog line containing {pattern:?} within {timeout:?}\n{}",
                    self.opts.name,
                    self.log_dump()
                )
            })
    }

    /// Waits for a maillog line after `mark` containing `pattern`; `None`
    /// on timeout.
    pub fn try_wait_log_since(
        &self,
        mark: usize,
        pattern: &str,
        timeout: Duration,
    ) -> Option<String> {
        poll(timeout, || {
            let log = self.maillog();
            log.get(mark..)
                .unwrap_or("")
                .lines()
                .find(|l| l.contains(pattern))
                .map(str::to_owned)
        })
    }

    /// Waits until at least `n` maillog lines contain `pattern`; returns
    /// the count (which may exceed `n`).
    ///
    /// # Panics
    /// On timeout, with the count and the maillog in the message.
    pub fn wait_log_count(&self, pattern: &str, n: usize, timeout: Duration) -> usize {
        poll(timeout, || {
            let c = self.count_log(pattern);
            (c >= n).then_some(c)
        })
        .unwrap_or_else(|| {
            panic!(
                "{}: expected {n} maillog lines containing {pattern:?} within {timeout:?}, found {}\n{}",
                self.opts.name,
                self.count_log(pattern),
                self.log_dump()
            )
        })
    }

    /// The master daemon's pid (from `queue/pid/master.pid`) if it runs.
    pub fn master_pid(&self) -> Option<u32> {
        let text = read_text(&self.root.join("queue/pid/master.pid"));
        let pid = text.trim().parse::<u32>().ok()?;
        let cmdline = read_text(Path::new(&format!("/proc/{pid}/cmdline")));
        (pid_alive(pid) && cmdline.contains("master")).then_some(pid)
    }

    /// Whether the master daemon runs.
    pub fn is_running(&self) -> bool {
        self.master_pid().is_some()
    }

    /// Simulates a crash: SIGKILL to the master and all its children (one
    /// process group), then waits until the port refuses connections. No
    /// clean shutdown; [`Postfix::restart`] brings it back on the same port.
    pub fn kill(&mut self) {
        if let Some(pid) = self.master_pid() {
            send_signal("KILL", &format!("-{pid}"));
            send_signal("KILL", &pid.to_string());
            let gone = poll(Duration::from_secs(5), || {
                group_members(pid).is_empty().then_some(())
            });
            assert!(
                gone.is_some(),
                "{}: processes survive SIGKILL",
                self.opts.name
            );
        }
        wait_port_closed(self.addr(), Duration::from_secs(5));
    }

    /// Stops the instance in order (`postfix stop`), falling back to
    /// `postfix abort` and then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        let Some(pid) = self.master_pid() else {
            return;
        };
        let _ = self.postfix(&["stop"]);
        let stopped = |pf: &Self| poll(Duration::from_secs(3), || (!pf.is_running()).then_some(()));
        if stopped(self).is_none() {
            let _ = self.postfix(&["abort"]);
            if stopped(self).is_none() {
                send_signal("KILL", &format!("-{pid}"));
            }
        }
        // Children that outlived their master (none expected).
        for child in group_members(pid) {
            send_signal("KILL", &child.to_string());
        }
    }

    /// Starts the instance again (after [`Postfix::kill`] or
    /// [`Postfix::stop`]) on the same port and waits until it accepts.
    ///
    /// # Panics
    /// When it does not start.
    pub fn restart(&mut self) {
        assert!(
            !self.is_running(),
            "{}: restart while running",
            self.opts.name
        );
        if let Err(log) = self.try_start() {
            panic!("{}: postfix restart failed\n{log}", self.opts.name);
        }
    }

    /// Sets main.cf parameters (`postconf -e KEY=VALUE …`) and reloads a
    /// running instance (`postfix reload`; new smtpd processes use them).
    pub fn reconfigure(&mut self, settings: &[(&str, &str)]) {
        let mut cmd = self.command("postconf");
        cmd.arg("-e");
        for (k, v) in settings {
            cmd.arg(format!("{k}={v}"));
        }
        let out = cmd.output().expect("run postconf");
        assert!(
            out.status.success(),
            "postconf -e failed\n{}",
            output_text(&out)
        );
        if self.is_running() {
            let out = self.postfix(&["reload"]);
            assert!(
                out.status.success(),
                "postfix reload failed\n{}",
                self.log_dump()
            );
        }
    }

    /// Runs `postfix -c CONFIG_DIR ARGS…` and returns its output.
    pub fn postfix(&self, args: &[&str]) -> Output {
        self.command("postfix")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run postfix: {e}"))
    }

    /// A Postfix admin command (`postfix`, `postconf`, `postqueue`, …)
    /// pointed at this instance (`-c CONFIG_DIR`), with a clean
    /// environment so the caller's MAIL_CONFIG or MAIL_DEBUG cannot leak in.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C")
            .arg("-c")
            .arg(self.config_dir())
            .stdin(Stdio::null());
        cmd
    }

    /// The maillog and the config, for failure messages.
    fn log_dump(&self) -> String {
        format!(
            "----- {} maillog ({}) -----\n{}\n----- end of maillog -----",
            self.opts.name,
            self.maillog_path().display(),
            tail(&self.maillog(), 200)
        )
    }

    fn write_config(&self) {
        let etc = self.config_dir();
        std::fs::write(etc.join("main.cf"), self.main_cf()).expect("write main.cf");
        std::fs::write(etc.join("master.cf"), self.master_cf()).expect("write master.cf");
    }

    fn main_cf(&self) -> String {
        let r = self.root.display();
        let mut kv: Vec<(String, String)> = [
            ("compatibility_level", "3.6".to_owned()),
            ("queue_directory", format!("{r}/queue")),
            ("data_directory", format!("{r}/data")),
            ("maillog_file", format!("{r}/maillog")),
            ("maillog_file_prefixes", format!("{r}")),
            (
                "import_environment",
                "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME"
                    .to_owned(),
            ),
            ("myhostname", self.hostname()),
            ("mydomain", "example.test".to_owned()),
            ("myorigin", "$myhostname".to_owned()),
            ("inet_interfaces", "127.0.0.1".to_owned()),
            ("inet_protocols", "ipv4".to_owned()),
            ("mydestination", "example.test".to_owned()),
            ("mynetworks", "127.0.0.0/8".to_owned()),
            (
                "smtpd_relay_restrictions",
                "permit_mynetworks, reject_unauth_destination".to_owned(),
            ),
            // Nothing leaves the box.
            ("local_transport", "discard:discarded".to_owned()),
            ("virtual_transport", "discard:discarded".to_owned()),
            ("relay_transport", "discard:discarded".to_owned()),
            ("default_transport", "discard:discarded".to_owned()),
            // Any local part of example.test exists; no /etc/aliases.
            ("local_recipient_maps", String::new()),
            ("alias_maps", String::new()),
            ("alias_database", String::new()),
            ("biff", "no".to_owned()),
            // Fast and deterministic under test load.
            ("smtpd_peername_lookup", "no".to_owned()),
            ("smtpd_client_connection_count_limit", "0".to_owned()),
            ("smtpd_error_sleep_time", "0s".to_owned()),
            ("in_flow_delay", "0s".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if self.opts.proxy_protocol {
            kv.push(("smtpd_upstream_proxy_protocol".into(), "haproxy".into()));
        }
        if self.opts.xclient {
            kv.push((
                "smtpd_authorized_xclient_hosts".into(),
                "127.0.0.0/8".into(),
            ));
        }
        if self.opts.starttls {
            kv.push(("smtpd_tls_security_level".into(), "may".into()));
            kv.push(("smtpd_tls_cert_file".into(), format!("{r}/tls/cert.pem")));
            kv.push(("smtpd_tls_key_file".into(), format!("{r}/tls/key.pem")));
            kv.push(("smtpd_tls_loglevel".into(), "1".into()));
        }
        kv.extend(self.opts.extra.iter().cloned());
        let mut text = String::from("# Written by the mxgate test harness.\n");
        for (k, v) in kv {
            let _ = writeln!(text, "{k} = {v}");
        }
        text
    }

    fn master_cf(&self) -> String {
        // No chroot anywhere: the queue is not a prepared chroot jail.
        let mut text = format!(
            "# Written by the mxgate test harness.\n\
             127.0.0.1:{port} inet n - n - - smtpd\n",
            port = self.port
        );
        text.push_str(
            "pickup    unix  n - n 60    1 pickup\n\
             cleanup   unix  n - n -     0 cleanup\n\
             qmgr      unix  n - n 300   1 qmgr\n\
             tlsmgr    unix  - - n 1000? 1 tlsmgr\n\
             rewrite   unix  - - n -     - trivial-rewrite\n\
             bounce    unix  - - n -     0 bounce\n\
             defer     unix  - - n -     0 bounce\n\
             trace     unix  - - n -     0 bounce\n\
             verify    unix  - - n -     1 verify\n\
             flush     unix  n - n 1000? 0 flush\n\
             proxymap  unix  - - n -     - proxymap\n\
             showq     unix  n - n -     - showq\n\
             error     unix  - - n -     - error\n\
             retry     unix  - - n -     - error\n\
             discard   unix  - - n -     - discard\n\
             anvil     unix  - - n -     1 anvil\n\
             scache    unix  - - n -     1 scache\n\
             postlog   unix-dgram n - n - 1 postlogd\n",
        );
        text
    }

    fn make_certificate(&self) {
        let tls = self.root.join("tls");
        std::fs::create_dir_all(&tls).expect("create tls directory");
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .arg("-subj")
            .arg(format!("/CN={}", self.hostname()))
            .arg("-keyout")
            .arg(tls.join("key.pem"))
            .arg("-out")
            .arg(tls.join("cert.pem"))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
        assert!(
            out.status.success(),
            "openssl req failed\n{}",
            output_text(&out)
        );
    }

    /// `postfix check` (creates the queue and data directories with the
    /// right owners, validates the config).
    fn check(&self) {
        let out = self.postfix(&["check"]);
        assert!(
            out.status.success(),
            "{}: postfix check failed\n{}\n{}",
            self.opts.name,
            output_text(&out),
            self.log_dump()
        );
    }

    /// `postfix start` and wait until smtpd listens (checked without a
    /// connection, so the maillog stays free of probes); `Err(maillog +
    /// output)` when
    /// it does not come up.
    fn try_start(&self) -> Result<(), String> {
        let mark = self.log_mark();
        let out = self.postfix(&["start"]);
        let fail = |why: &str| {
            let log = read_text(&self.maillog_path());
            format!(
                "{why}\n{}\n----- maillog since start -----\n{}",
                output_text(&out),
                log.get(mark..).unwrap_or("")
            )
        };
        if !out.status.success() {
            return Err(fail("postfix start exited with failure"));
        }
        let up = poll(START_TIMEOUT, || {
            let failed = self
                .maillog()
                .get(mark..)
                .is_some_and(|l| l.contains("fatal:"));
            if failed && !self.is_running() {
                return Some(false);
            }
            // Not a connect probe: that would show up in the maillog.
            port_listening(self.addr()).then_some(true)
        });
        if up != Some(true) {
            return Err(fail("smtpd did not start listening"));
        }
        Ok(())
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        self.stop();
        if panicking {
            eprintln!("{}", self.log_dump());
        }
    }
}
