//! Size and use of the filesystem that holds a directory (`statvfs`), as
//! `df` shows it.

use serde::Serialize;
use std::io;
use std::path::Path;

/// Space on the filesystem of one directory, in bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskUsage {
    /// The directory asked about (the box's data directory).
    pub path: String,
    /// Size of the filesystem.
    pub total_bytes: u64,
    /// Bytes in use (size minus free blocks).
    pub used_bytes: u64,
    /// Bytes an unprivileged writer may still use (free minus the blocks
    /// reserved for root), which is what runs out first for mxgate.
    pub available_bytes: u64,
    /// `used / (used + available)` in percent, as `df` computes it; 0 for an
    /// empty filesystem.
    pub used_percent: f64,
}

/// Reads the use of the filesystem that holds `path`.
///
/// # Errors
/// When `path` does not exist or cannot be examined (the OS error).
pub fn disk_usage(path: &Path) -> io::Result<DiskUsage> {
    let st = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    let block = st.f_frsize.max(1);
    let total_bytes = st.f_blocks.saturating_mul(block);
    let free = st.f_bfree.saturating_mul(block);
    let available_bytes = st.f_bavail.saturating_mul(block);
    let used_bytes = total_bytes.saturating_sub(free);
    Ok(DiskUsage {
        path: path.display().to_string(),
        total_bytes,
        used_bytes,
        available_bytes,
        used_percent: percent(used_bytes, used_bytes.saturating_add(available_bytes)),
    })
}

/// `part / whole` in percent, 0 when `whole` is 0.
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Precision loss past 2^52 bytes is far below what a percentage shows.
        #[allow(clippy::cast_precision_loss)]
        let ratio = part as f64 / whole as f64;
        ratio * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_of_nothing_is_zero() {
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(1, 4), 25.0);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let err = disk_usage(Path::new("/nonexistent/mxgate-data")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
