//! Host readings of an mxgate box for the web UI's dashboard: CPU use, load
//! average, memory, the data directory's filesystem, uptime, network
//! interfaces and the firmware version.
//!
//! [`HostReport::read`] takes one reading from scratch; it waits
//! [`CPU_SAMPLE_INTERVAL`] between two CPU samples (the kernel's counters
//! give a use percentage only as a difference), so call it from a blocking
//! task. A dashboard that refreshes keeps a [`HostSampler`] instead: it
//! holds the previous CPU sample, so each [`HostSampler::read`] returns at
//! once with the use since the last call.
//!
//! ```no_run
//! use mxgate_system::{Firmware, HostSampler};
//!
//! let mut sampler = HostSampler::new(Some(Firmware::new("0.1.0", Some("d84f36e"))));
//! let report = sampler.read(std::path::Path::new("/data/mxgate"));
//! println!("{}", serde_json::to_string_pretty(&report).unwrap());
//! ```
//!
//! Every part is read independently: one that cannot be read (say, a data
//! directory that does not exist) is `None` or empty in the report and
//! named in [`HostReport::problems`], never a panic or an error for the
//! whole report.

mod disk;
mod interfaces;
mod report;
mod sampler;

pub use disk::{disk_usage, DiskUsage};
pub use interfaces::{interfaces, Interface, InterfaceAddress};
pub use report::{Cpu, Firmware, HostReport, LoadAverage, Memory};
pub use sampler::{HostSampler, CPU_SAMPLE_INTERVAL};
