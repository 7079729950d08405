//! [`HostSampler`]: keeps the previous CPU sample so repeated readings give
//! the CPU use since the last one without waiting.

use crate::disk::{disk_usage, percent};
use crate::interfaces::interfaces;
use crate::report::{Cpu, Firmware, HostReport, LoadAverage, Memory};
use std::path::Path;
use std::time::{Duration, Instant};
use sysinfo::System;

/// The shortest interval between two CPU samples that gives a meaningful
/// use percentage (sysinfo's minimum on this platform).
pub const CPU_SAMPLE_INTERVAL: Duration = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;

/// Takes host readings, keeping the CPU counters of the previous reading as
/// the baseline of the next one. Cheap to keep for the life of the web
/// server (behind a `Mutex`); each [`HostSampler::read`] costs a few reads
/// of `/proc` and `/sys`.
pub struct HostSampler {
    system: System,
    last_cpu_sample: Instant,
    /// The interval the current CPU figures cover (zero before the second
    /// sample).
    cpu_interval: Duration,
    firmware: Option<Firmware>,
}

impl std::fmt::Debug for HostSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSampler")
            .field("last_cpu_sample", &self.last_cpu_sample)
            .field("cpu_interval", &self.cpu_interval)
            .field("firmware", &self.firmware)
            .finish_non_exhaustive()
    }
}

impl HostSampler {
    /// Takes the first CPU sample now; `firmware` is copied into every
    /// report (pass the binary's version and git revision).
    pub fn new(firmware: Option<Firmware>) -> HostSampler {
        let mut system = System::new();
        system.refresh_cpu_usage();
        HostSampler {
            system,
            last_cpu_sample: Instant::now(),
            cpu_interval: Duration::ZERO,
            firmware,
        }
    }

    /// Reads the host, with CPU use since the previous reading (or since
    /// [`HostSampler::new`]). Readings closer together than
    /// [`CPU_SAMPLE_INTERVAL`] repeat the previous CPU figures rather than
    /// report noise. `data_dir` names the filesystem whose space is shown.
    pub fn read(&mut self, data_dir: &Path) -> HostReport {
        let mut problems = Vec::new();
        let cpu = self.cpu();
        self.system.refresh_memory();
        let disk = disk_usage(data_dir)
            .map_err(|e| {
                problems.push(format!(
                    "cannot read the disk of {}: {e}",
                    data_dir.display()
                ));
            })
            .ok();
        let interfaces = interfaces();
        if interfaces.is_empty() {
            problems.push("no network interface found".to_owned());
        }
        let load = System::load_average();
        HostReport {
            hostname: System::host_name(),
            kernel: System::kernel_version(),
            uptime_s: System::uptime(),
            cpu,
            load: LoadAverage {
                one: load.one,
                five: load.five,
                fifteen: load.fifteen,
            },
            memory: self.memory(),
            disk,
            interfaces,
            firmware: self.firmware.clone(),
            problems,
        }
    }

    /// CPU use since the last sample, taking a new one when enough time
    /// has passed.
    fn cpu(&mut self) -> Cpu {
        let elapsed = self.last_cpu_sample.elapsed();
        if elapsed >= CPU_SAMPLE_INTERVAL {
            self.system.refresh_cpu_usage();
            self.last_cpu_sample = Instant::now();
            self.cpu_interval = elapsed;
        }
        let cpus = self.system.cpus();
        Cpu {
            count: cpus.len(),
            usage_percent: self.system.global_cpu_usage().clamp(0.0, 100.0),
            per_cpu_percent: cpus
                .iter()
                .map(|c| c.cpu_usage().clamp(0.0, 100.0))
                .collect(),
            interval_ms: u64::try_from(self.cpu_interval.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn memory(&self) -> Memory {
        let s = &self.system;
        let total = s.total_memory();
        let used = s.used_memory();
        Memory {
            total_bytes: total,
            used_bytes: used,
            available_bytes: s.available_memory(),
            used_percent: percent(used, total),
            swap_total_bytes: s.total_swap(),
            swap_used_bytes: s.used_swap(),
        }
    }
}
