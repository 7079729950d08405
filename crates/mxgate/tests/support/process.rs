//! `Proc`: a guard around one child process started by a test.
//!
//! The child runs in its own process group with stdin closed and its stdout
//! and stderr written to files in a private temporary directory, so a test
//! can wait for a line ("listening on …") and put the whole output in an
//! assertion message. On `Drop` the group gets SIGTERM, then SIGKILL after
//! 3 s, and the child is reaped, even when the test panics; a panicking
//! test also gets the tail of the output on stderr.

use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::{poll, read_text, tail, temp_dir};

/// How long a process gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(3);

/// A running child process that is stopped and reaped when dropped.
pub struct Proc {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    // Declared last: removed only after the child is gone.
    dir: tempfile::TempDir,
}

impl Proc {
    /// Spawns `cmd` as `name` (used in messages), capturing its output.
    ///
    /// Stdin is closed; stdout and stderr go to files; the child becomes the
    /// leader of a new process group so that signals reach its descendants.
    ///
    /// # Panics
    /// If the program cannot be started (the message names it).
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let dir = temp_dir(name);
        let stdout_path = dir.path().join("stdout");
        let stderr_path = dir.path().join("stderr");
        let out = File::create(&stdout_path).expect("create stdout capture file");
        let err = File::create(&stderr_path).expect("create stderr capture file");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {:?}: {e}", cmd.get_program()));
        Proc {
            name: name.to_owned(),
            child,
            status: None,
            stdout_path,
            stderr_path,
            dir,
        }
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The private temporary directory that holds the capture files; a test
    /// may put more files there (it lives as long as the guard).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout(&self) -> String {
        read_text(&self.stdout_path)
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_text(&self.stderr_path)
    }

    /// Stdout and stderr, labelled, for assertion messages.
    pub fn output(&self) -> String {
        format!(
            "----- {name} stdout -----\n{}\n----- {name} stderr -----\n{}\n----- end of {name} -----",
            self.stdout(),
            self.stderr(),
            name = self.name
        )
    }

    /// The first line of stdout, then stderr, that contains `pattern`.
    pub fn find_line(&self, pattern: &str) -> Option<String> {
        [self.stdout(), self.stderr()]
            .iter()
            .flat_map(|text| text.lines())
            .find(|line| line.contains(pattern))
            .map(str::to_owned)
    }

    /// How many lines of stdout and stderr contain `pattern`.
    pub fn count_lines(&self, pattern: &str) -> usize {
        [self.stdout(), self.stderr()]
            .iter()
            .flat_map(|text| text.lines())
            .filter(|line| line.contains(pattern))
            .count()
    }

    /// Waits until a line of the output contains `pattern` (a plain
    /// substring) and returns that line; `None` on timeout or when the
    /// process exits without having printed it.
    pub fn try_wait_for_line(&mut self, pattern: &str, timeout: Duration) -> Option<String> {
        poll(timeout, || {
            if let Some(line) = self.find_line(pattern) {
                return Some(Some(line));
            }
            // Exited: one last look (output written just before exit).
            self.try_status().map(|_| self.find_line(pattern))
        })
        .flatten()
    }

    /// Like [`Proc::try_wait_for_line`] but panics, with the whole output
    /// and the exit status, when the line does not come.
    pub fn wait_for_line(&mut self, pattern: &str, timeout: Duration) -> String {
        match self.try_wait_for_line(pattern, timeout) {
            Some(line) => line,
            None => {
                let status = self.status_text();
                panic!(
                    "{}: no output line containing {pattern:?} within {timeout:?} (status: {status})\n{}",
                    self.name,
                    self.output()
                )
            }
        }
    }

    /// The exit status if the child has exited (reaps it), without blocking.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits up to `timeout` for the child to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll(timeout, || self.try_status())
    }

    /// Sends a signal by name (`"TERM"`, `"INT"`, `"HUP"`, `"KILL"`, …) to
    /// the child's process group. Does nothing once the child was reaped.
    pub fn signal(&mut self, signal: &str) {
        if self.try_status().is_none() {
            send_signal(signal, &format!("-{}", self.pid()));
        }
    }

    /// Stops the child: SIGTERM to its group, SIGKILL after [`TERM_GRACE`],
    /// then reaps it. Returns the exit status (also when it had already
    /// exited). Idempotent.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.try_status() {
            // The leader is gone; make sure no descendant stays behind.
            send_signal("KILL", &format!("-{}", self.pid()));
            return status;
        }
        send_signal("TERM", &format!("-{}", self.pid()));
        if let Some(status) = self.wait_exit(TERM_GRACE) {
            send_signal("KILL", &format!("-{}", self.pid()));
            return status;
        }
        send_signal("KILL", &format!("-{}", self.pid()));
        let status = self.child.wait().expect("reap the child");
        self.status = Some(status);
        status
    }

    /// The exit status in words (`running`, `exit code 2`, `signal 9`).
    pub fn status_text(&mut self) -> String {
        match self.try_status() {
            None => "running".to_owned(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit code {code}"),
                (None, Some(sig)) => format!("signal {sig}"),
                _ => format!("{s}"),
            },
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "----- {name} (test failed; last output) -----\nstdout:\n{}\nstderr:\n{}\n-----",
                tail(&self.stdout(), 40),
                tail(&self.stderr(), 40),
                name = self.name
            );
        }
    }
}

/// Sends `signal` to `target` (a pid, or `-PGID` for a process group) with
/// the `kill` program (procps), because the crate forbids `unsafe` and so
/// cannot call `kill(2)` itself. Errors (no such process) are ignored.
pub fn send_signal(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether process `pid` exists and is not a zombie (reads `/proc`).
pub fn pid_alive(pid: u32) -> bool {
    let stat = read_text(Path::new(&format!("/proc/{pid}/stat")));
    // Format: "PID (COMM) STATE ...": COMM may contain spaces and ')'.
    match stat.rfind(')') {
        Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z') | None),
        None => false,
    }
}

/// The pids of all live (non-zombie) processes in process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = read_text(Path::new(&format!("/proc/{pid}/stat")));
            let Some(i) = stat.rfind(')') else {
                return false;
            };
            // Fields after COMM: state ppid pgrp ...
            let fields: Vec<&str> = stat[i + 1..].split_whitespace().collect();
            fields.first().is_some_and(|s| *s != "Z")
                && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
        })
        .collect()
}
