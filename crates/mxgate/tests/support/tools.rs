//! External programs the tests drive (the `mxgate` binary under test, swaks,
//! Postfix's smtp-source) and the checks that decide whether a test can run
//! here (root, tools installed).
//!
//! `.ci/run` installs every tool; a test that needs one that is missing
//! fails under `CI=true` and is skipped (with a `SKIPPED` line) elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::read_text;

/// Path of the `mxgate` binary built by Cargo for these tests.
pub fn mxgate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_mxgate")
}

/// A `Command` for the `mxgate` binary with `args`; hand it to
/// [`super::Proc::spawn`] for a server, or call `.output()` for a one-shot.
pub fn mxgate(args: &[&str]) -> Command {
    let mut cmd = Command::new(mxgate_bin());
    cmd.args(args);
    cmd
}

/// Whether the effective user is root (reads `/proc/self/status`, no
/// `unsafe` needed).
pub fn is_root() -> bool {
    read_text(Path::new("/proc/self/status"))
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// For tests that need root: returns `true` (and prints
/// `SKIPPED (needs root): NAME`) when the test must be skipped.
///
/// ```ignore
/// if skip_unless_root("l4_proxy_v2_to_postfix") { return; }
/// ```
pub fn skip_unless_root(test_name: &str) -> bool {
    if is_root() {
        return false;
    }
    note_skip(test_name, "root");
    true
}

/// Reports a skipped test: `SKIPPED (needs WHAT): NAME` on stdout and
/// stderr (seen with `--nocapture`) and appended to the file named by
/// `MXGATE_SKIP_LOG` if set (`scripts/test` sets it and lists the skips in
/// its summary, since cargo captures the output of passing tests).
pub fn note_skip(test_name: &str, needs: &str) {
    let line = format!("SKIPPED (needs {needs}): {test_name}");
    println!("{line}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("MXGATE_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// For tests that need external programs: returns `true` (and prints
/// `SKIPPED (needs TOOL): NAME`) when one is missing, except under CI
/// (`CI` set), where a missing tool is a setup error and panics.
pub fn skip_unless_tools(test_name: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| tool_in_path(t).is_none())
        .collect();
    if missing.is_empty() {
        return false;
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    assert!(
        !ci,
        "{test_name}: missing {missing:?} under CI: .ci/run should have installed it"
    );
    note_skip(test_name, &missing.join(", "));
    true
}

/// The full path of program `name`, searched in `$PATH` plus the sbin
/// directories (not always in a user's `$PATH`) and Postfix's own.
pub fn tool_in_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain([
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
            "/usr/lib/postfix/sbin",
        ])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// Runs `swaks` with `args` and returns its output (never panics on a
/// failed SMTP dialogue: check `status` and the text). Stdin is closed.
///
/// # Panics
/// If swaks cannot be started (not installed).
pub fn swaks(args: &[&str]) -> Output {
    let program = tool_in_path("swaks").unwrap_or_else(|| PathBuf::from("swaks"));
    Command::new(&program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// Where Postfix's `smtp-source` load generator is installed
/// (`/usr/sbin/smtp-source` on Debian).
pub fn smtp_source_path() -> PathBuf {
    tool_in_path("smtp-source").unwrap_or_else(|| PathBuf::from("/usr/sbin/smtp-source"))
}

/// Runs Postfix's `smtp-source` with `args` and returns its output, e.g.
/// `smtp_source(&["-s", "5", "-m", "20", "-t", "x@example.test", "127.0.0.1:2525"])`.
///
/// # Panics
/// If it cannot be started (postfix not installed).
pub fn smtp_source(args: &[&str]) -> Output {
    let program = smtp_source_path();
    Command::new(&program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// Status, stdout and stderr of a finished command as one text, for
/// assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "status: {}\n----- stdout -----\n{}\n----- stderr -----\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
