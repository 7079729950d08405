//! [`Store::probe_write`]: can this box still write its data directory?
//!
//! A full disk, a file system remounted read-only after an error, or a
//! directory whose permissions changed all leave the open SQLite connection
//! answering reads ([`Store::check_health`]) while every write fails. VRRP
//! tracking asks this probe periodically, so a box that cannot record
//! anything gives the virtual IP to its peer.

use crate::{Store, StoreError};
use std::io::Write;

/// The probe file, in the data directory beside the database.
pub const PROBE_FILE: &str = ".write-probe";

impl Store {
    /// Writes a few bytes to a file in the data directory, flushes them to
    /// the disk (`fsync`) and removes the file.
    ///
    /// Blocks on the disk: call it from `spawn_blocking` in async code.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the probe file when any step fails.
    pub fn probe_write(&self) -> Result<(), StoreError> {
        let dir = self.path().parent().unwrap_or(std::path::Path::new("."));
        let path = dir.join(PROBE_FILE);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::create(&path).map_err(io)?;
        file.write_all(b"mxgate write probe\n").map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::remove_file(&path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_writable_directory_passes_and_keeps_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.probe_write().unwrap();
        assert!(!dir.path().join(PROBE_FILE).exists());
    }

    #[test]
    fn an_unwritable_probe_fails_naming_the_probe_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // A directory where the probe wants to create its file: that fails
        // even for root (who ignores permission bits).
        std::fs::create_dir(dir.path().join(PROBE_FILE)).unwrap();
        let err = store.probe_write().unwrap_err();
        assert!(err.to_string().contains(PROBE_FILE), "{err}");
        std::fs::remove_dir(dir.path().join(PROBE_FILE)).unwrap();
        // And for non-root: a directory without write permission.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
        let as_root = std::fs::File::create(dir.path().join("x")).is_ok();
        if !as_root {
            assert!(store.probe_write().is_err());
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
