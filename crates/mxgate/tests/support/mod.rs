//! The black-box test harness shared by every test file in `crates/mxgate/tests/`.
//!
//! Include it with `mod support;` at the top of a test file. It starts and
//! guards real processes (the `mxgate` binary, a real Postfix as the backend
//! MTA) and drives standard mail tools (swaks, smtp-source) against them.
//! Every resource is owned by a guard whose `Drop` cleans up, so nothing is
//! left running when a test fails (panics).
//!
//! Set `MXGATE_TEST_KEEP=1` to keep the temporary directories (logs,
//! Postfix configuration) of a run for inspection; their paths are printed.

// Each test file uses a different subset of the harness.
#![allow(dead_code, unused_imports)]

pub mod gateway;
pub mod net;
pub mod netns;
pub mod postfix;
pub mod process;
pub mod sync;
pub mod tools;
pub mod vrrp_lab;
pub mod web;

pub use net::{
    free_addr, free_port, port_listening, port_open, wait_listening, wait_port, wait_port_closed,
};
pub use postfix::{Postfix, PostfixBuilder, DELIVERED};
pub use process::Proc;
pub use tools::{
    is_root, mxgate, mxgate_bin, note_skip, output_text, skip_unless_root, skip_unless_tools,
    smtp_source, smtp_source_path, swaks, tool_in_path,
};

use std::path::Path;
use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
///
/// The building block of every `wait_*` helper: tests never sleep a fixed
/// time when they can wait for an observable condition instead.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Makes a temporary directory that honours `MXGATE_TEST_KEEP`, readable
/// (mode 0755) so that unprivileged daemons (Postfix runs as `postfix`) can
/// traverse it.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("mxgate-test-{prefix}-"))
        .tempdir()
        .expect("create a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the temporary directory");
    if std::env::var_os("MXGATE_TEST_KEEP").is_some_and(|v| !v.is_empty() && v != "0") {
        dir.disable_cleanup(true);
        eprintln!("MXGATE_TEST_KEEP: keeping {}", dir.path().display());
    }
    dir
}

/// Reads a file as text; a missing or unreadable file reads as "".
pub fn read_text(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `n` lines of `text`, for assertion messages that stay readable.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
