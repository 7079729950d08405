//! `Netns`: a network namespace that a test creates for itself and that is
//! deleted when the guard is dropped, even when the test panics.
//!
//! Names are unique per run and per guard (`mxv-<pid>-<n>-<tag>`), so
//! parallel tests and parallel runs never share one, and nothing a test
//! does reaches an interface outside the namespaces it created. On drop,
//! every process still inside the namespace (only ones the test started
//! there) gets SIGKILL before the namespace is deleted.
//!
//! The `ip` command (iproute2) does the work: the crate forbids `unsafe`,
//! and tests may shell out (the product may not).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{is_root, note_skip, output_text, tool_in_path};

/// A network namespace owned by the test.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `mxv-<pid>-<n>-<tag>` with its loopback up.
    ///
    /// # Panics
    /// When `ip netns add` fails (the message has its output).
    pub fn new(tag: &str) -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("mxv-{}-{n}-{tag}", std::process::id());
        let out = ip(&["netns", "add", &name]);
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            output_text(&out)
        );
        let ns = Netns { name };
        ns.ip_ok(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Runs `ip -n NAME ARGS` and panics when it fails.
    pub fn ip_ok(&self, args: &[&str]) {
        let out = self.ip(args);
        assert!(
            out.status.success(),
            "ip -n {} {}: {}",
            self.name,
            args.join(" "),
            output_text(&out)
        );
    }

    /// A `Command` running `program ARGS` inside the namespace
    /// (`ip netns exec`, which execs the program: its pid is the program's).
    pub fn command(&self, program: impl AsRef<Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new(ip_path());
        cmd.args(["netns", "exec", &self.name])
            .arg(program.as_ref())
            .args(args);
        cmd
    }

    /// The IPv4 addresses (`A.B.C.D/N`) on `dev`.
    pub fn ipv4_addrs(&self, dev: &str) -> Vec<String> {
        let out = self.ip(&["-4", "-o", "addr", "show", "dev", dev]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                words.find(|w| *w == "inet")?;
                words.next().map(str::to_string)
            })
            .collect()
    }

    /// Whether `dev` has the address `addr` (with any prefix).
    pub fn has_addr(&self, dev: &str, addr: &str) -> bool {
        self.ipv4_addrs(dev)
            .iter()
            .any(|a| a.split('/').next() == Some(addr))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let pids = ip(&["netns", "pids", &self.name]);
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            super::process::send_signal("KILL", pid);
        }
        let out = ip(&["netns", "del", &self.name]);
        if !out.status.success() {
            eprintln!("ip netns del {}: {}", self.name, output_text(&out));
        }
    }
}

fn ip_path() -> std::path::PathBuf {
    tool_in_path("ip").unwrap_or_else(|| "ip".into())
}

/// Runs `ip ARGS` (no stdin).
pub fn ip(args: &[&str]) -> Output {
    Command::new(ip_path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip")
}

/// For tests that build network namespaces: returns `true` (and prints
/// `SKIPPED (needs ...)`) when not root or when `ip netns` does not work
/// here (no iproute2, no namespace support).
pub fn skip_unless_netns(test_name: &str) -> bool {
    if !is_root() {
        note_skip(test_name, "root");
        return true;
    }
    if tool_in_path("ip").is_none() {
        note_skip(test_name, "ip (iproute2)");
        return true;
    }
    static PROBES: AtomicU32 = AtomicU32::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let probe = format!("mxv-{}-probe{n}", std::process::id());
    let ok = ip(&["netns", "add", &probe]).status.success();
    if ok {
        let _ = ip(&["netns", "del", &probe]);
        return false;
    }
    note_skip(test_name, "working `ip netns` (network namespaces)");
    true
}
