//! The `notify` command: run on each transition with the new state, so an
//! operator can hook in (page someone, flip a route, restart a daemon).
//!
//! The program gets the new state as its one argument, in upper case as
//! keepalived's notify scripts expect (`MASTER`, `BACKUP`, `FAULT`,
//! `INITIALIZE`), and these environment variables:
//! `MXGATE_VRRP_VRID`, `MXGATE_VRRP_FROM` (the state left),
//! `MXGATE_VRRP_REASON` (a stable code such as `master_down`) and
//! `MXGATE_VRRP_DESCRIPTION` (the reason in words). Its standard input is
//! closed, its output discarded.
//!
//! It runs in its own task: the driver never waits for it. After
//! [`TIMEOUT`] it is killed and a warning logged; a non-zero exit is logged
//! too. Transitions in quick succession start one run each, in order of
//! the transitions but possibly overlapping.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::{Reason, StateName};

/// How long a notify run may take before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The stable snake_case code of a reason (`master_down`, ...), as the
/// status JSON spells it: its `Debug` name converted.
fn reason_code(reason: Reason) -> String {
    let debug = format!("{reason:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Start `program` for the transition `from` → `to` of `vrid`, in a task
/// of the current runtime; returns its handle (tests wait on it).
pub fn spawn(
    program: &Path,
    vrid: u8,
    from: StateName,
    to: StateName,
    reason: Reason,
) -> tokio::task::JoinHandle<()> {
    let program: PathBuf = program.to_path_buf();
    let mut cmd = tokio::process::Command::new(&program);
    cmd.arg(to.to_string())
        .env("MXGATE_VRRP_VRID", vrid.to_string())
        .env("MXGATE_VRRP_FROM", from.to_string())
        .env("MXGATE_VRRP_REASON", reason_code(reason))
        .env("MXGATE_VRRP_DESCRIPTION", reason.description())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    tokio::spawn(async move {
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!(program = %program.display(), error = %e, "vrrp notify: cannot start");
                return;
            }
        };
        match tokio::time::timeout(TIMEOUT, child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => {
                tracing::warn!(program = %program.display(), %status, "vrrp notify: failed");
            }
            Ok(Err(e)) => {
                tracing::warn!(program = %program.display(), error = %e, "vrrp notify: cannot wait");
            }
            Err(_) => {
                let _ = child.kill().await;
                tracing::warn!(program = %program.display(), timeout = ?TIMEOUT, "vrrp notify: killed after the timeout");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_snake_case() {
        assert_eq!(reason_code(Reason::MasterDown), "master_down");
        assert_eq!(reason_code(Reason::Startup), "startup");
        assert_eq!(reason_code(Reason::StartupInFault), "startup_in_fault");
    }

    #[tokio::test]
    async fn runs_the_program_with_the_new_state() {
        let dir = std::env::temp_dir().join(format!("mxgate-vrrp-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let script = dir.join("notify.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$1 $MXGATE_VRRP_FROM $MXGATE_VRRP_REASON $MXGATE_VRRP_VRID\" > {}\n",
                out.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        spawn(
            &script,
            51,
            StateName::Backup,
            StateName::Master,
            Reason::MasterDown,
        )
        .await
        .unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(text.trim(), "MASTER BACKUP master_down 51");
    }
}
