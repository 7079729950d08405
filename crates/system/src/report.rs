//! The host report shown on the dashboard and its parts.

use crate::disk::DiskUsage;
use crate::interfaces::Interface;
use serde::Serialize;

/// One reading of the box, ready to render or to send as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostReport {
    /// The kernel's host name.
    pub hostname: Option<String>,
    /// Kernel version, e.g. `6.12.8`.
    pub kernel: Option<String>,
    /// Seconds since boot.
    pub uptime_s: u64,
    /// Processor use.
    pub cpu: Cpu,
    /// Run-queue load averages.
    pub load: LoadAverage,
    /// Main memory.
    pub memory: Memory,
    /// The filesystem of the data directory (store, keys, spool); `None`
    /// when it could not be read (see `problems`).
    pub disk: Option<DiskUsage>,
    /// Network interfaces, sorted by name.
    pub interfaces: Vec<Interface>,
    /// Firmware version and revision, when the caller passed them.
    pub firmware: Option<Firmware>,
    /// Parts that could not be read, each as one sentence for the page.
    pub problems: Vec<String>,
}

/// Processor use over the last sampling interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cpu {
    /// Logical processors.
    pub count: usize,
    /// Use of all processors together, 0..=100 percent.
    pub usage_percent: f32,
    /// Use of each processor, 0..=100 percent.
    pub per_cpu_percent: Vec<f32>,
    /// Milliseconds between the two samples the use was computed from.
    pub interval_ms: u64,
}

/// Load averages over 1, 5 and 15 minutes (runnable plus waiting tasks).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadAverage {
    /// Last minute.
    pub one: f64,
    /// Last five minutes.
    pub five: f64,
    /// Last fifteen minutes.
    pub fifteen: f64,
}

/// Main memory and swap, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Memory {
    /// Installed memory seen by the kernel.
    pub total_bytes: u64,
    /// In use by programs (total minus what is available without swapping).
    pub used_bytes: u64,
    /// Available for new programs without swapping (includes page cache).
    pub available_bytes: u64,
    /// `used / total` in percent.
    pub used_percent: f64,
    /// Swap size (0 when none).
    pub swap_total_bytes: u64,
    /// Swap in use.
    pub swap_used_bytes: u64,
}

/// The running firmware, as the binary knows it at build time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Firmware {
    /// Release version, e.g. `0.1.0`.
    pub version: String,
    /// Git revision it was built from, when known.
    pub git_revision: Option<String>,
}

impl Firmware {
    /// Firmware `version` built from `git_revision` (an empty or `unknown`
    /// revision counts as not known).
    pub fn new(version: impl Into<String>, git_revision: Option<&str>) -> Firmware {
        let git_revision = git_revision
            .map(str::trim)
            .filter(|r| !r.is_empty() && *r != "unknown")
            .map(str::to_owned);
        Firmware {
            version: version.into(),
            git_revision,
        }
    }
}

impl HostReport {
    /// One reading from scratch: samples the CPU twice,
    /// [`crate::CPU_SAMPLE_INTERVAL`] apart, so it blocks that long (run it
    /// on a blocking thread). Keep a [`crate::HostSampler`] to avoid the
    /// wait on repeated readings.
    pub fn read(data_dir: &std::path::Path) -> HostReport {
        let mut sampler = crate::HostSampler::new(None);
        std::thread::sleep(crate::CPU_SAMPLE_INTERVAL);
        sampler.read(data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_revision_is_none() {
        assert_eq!(Firmware::new("1.0", Some("unknown")).git_revision, None);
        assert_eq!(Firmware::new("1.0", Some(" ")).git_revision, None);
        assert_eq!(
            Firmware::new("1.0", Some("abc123")).git_revision.as_deref(),
            Some("abc123")
        );
    }
}
