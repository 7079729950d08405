//! The VRRPv3 state machine (RFC 5798 §6), pure: events and an explicit
//! [`Instant`](std::time::Instant) go in, [`Action`]s come out. No sockets, no clocks, no tasks;
//! the driver owns all of those and calls [`Machine::handle`] when a packet
//! arrives, a tracked object changes, or [`Machine::next_deadline`] passes.
//!
//! Beside the machine: [`monitor`], the shared view of a running router that
//! the status page and the metrics read, and, on Linux only, [`linux`], the
//! driver (raw socket, netlink, gratuitous ARP, tracking, notify command).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use mxgate_vrrp::{Action, Config, Event, Machine, StateName};
//!
//! let t0 = Instant::now();
//! let config = Config::new(51, 100, "192.168.1.2".parse().unwrap());
//! let mut vrrp = Machine::new(config, t0).unwrap();
//! vrrp.handle(Event::Startup, t0);
//! assert_eq!(vrrp.state(), StateName::Backup);
//!
//! // No master heard from: after Master_Down_Interval we take over.
//! let deadline = vrrp.next_deadline().unwrap();
//! assert_eq!(deadline - t0, Duration::from_micros(3_609_375));
//! let actions = vrrp.handle(Event::Timer, deadline);
//! assert!(actions.contains(&Action::AddVips));
//! assert_eq!(vrrp.state(), StateName::Master);
//! ```
//!
//! # The RFC, as implemented
//!
//! Timers (§6.1, §6.4), with `Priority` the local effective priority and
//! `Master_Adver_Interval` the interval the current master advertises:
//! - `Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256`
//! - `Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time`
//!
//! Transitions (§6.4.1–§6.4.3):
//! - Initialize, Startup: priority 255 (the address owner) sends an advert,
//!   adds the VIPs and is Master at once; anyone else is Backup with
//!   `Master_Adver_Interval = Advertisement_Interval` and the
//!   Master_Down_Timer at `Master_Down_Interval`.
//! - Backup, Master_Down_Timer fires: send an advert, add the VIPs, Master.
//! - Backup, advert with priority 0: Master_Down_Timer = `Skew_Time` (the
//!   master is leaving; the highest-priority backup fires first).
//! - Backup, other advert: if preemption is off, or its priority is ≥ ours,
//!   learn `Master_Adver_Interval` from it and restart the Master_Down_Timer;
//!   otherwise discard it, so the timer runs out and we take over.
//! - Master, Adver_Timer fires: send an advert, restart the timer.
//! - Master, advert with priority 0: send an advert at once, restart the timer.
//! - Master, advert with higher priority, or equal priority from a higher
//!   primary address (compared as unsigned numbers): remove the VIPs, learn
//!   the interval, Backup with the Master_Down_Timer at `Master_Down_Interval`.
//! - Master, lower advert: discard (but see "split brain" below).
//! - Shutdown: a Master sends priority 0 and removes the VIPs; all go to
//!   Initialize.
//!
//! # Deliberate differences, and what keepalived users should expect
//!
//! - **Timer arithmetic in microseconds.** The formulas are the RFC's, but
//!   evaluated on microseconds, as keepalived does, rather than on whole
//!   centiseconds: priority 100 at 100 cs gives a Skew_Time of 609.375 ms,
//!   not 600 ms.
//! - **Split brain heals actively.** A Master that receives a lower advert
//!   (another router also thinks it is Master) still discards it, as §6.4.3
//!   says, but also sends an advert at once (so the other side yields now,
//!   not at our next Adver_Timer) and emits [`Action::ReannounceVips`] (so
//!   switches and neighbours that followed the other side's gratuitous ARPs
//!   or NAs come back to us). keepalived has both as options
//!   (`higher_prio_send_advert`, `garp_lower_prio_repeat`); here they are
//!   always on. keepalived issue #166 is the ARP half of the problem. Issue
//!   #2649 (two masters after a reboot) had `higher_prio_send_advert` on
//!   already, so this is not a cure for every two-master report: a link
//!   that loses adverts in one direction still splits. The reannounce only
//!   happens if the winner hears the loser; if the loser hears the winner
//!   first and yields quietly, neighbours that followed the loser's ARPs
//!   are fixed only by a periodic refresh (the driver's job). To
//!   avoid an advert storm between two routers that each think the other is
//!   lower (two owners, or a primary address that is not the real source),
//!   this extra advert is sent at most once per `Advertisement_Interval`.
//! - **The owner never yields.** §7.1 has an owner (priority 255) discard
//!   every advert. Here it stays Master whatever it hears, but still answers
//!   priority-0 and lower adverts like any Master (which helps a split brain
//!   heal and changes nothing else).
//! - **Preempt delay** (not in RFC 5798; keepalived's `preempt_delay`). With
//!   preemption on and a non-zero [`Config::preempt_delay`], the first lower
//!   advert a Backup receives opens a window of that length; during it,
//!   lower adverts are accepted as if preemption were off (they restart the
//!   Master_Down_Timer). From the end of the window on they are discarded,
//!   so we take over `Master_Down_Interval` after the last advert accepted
//!   inside the window: between `delay` and `delay + Master_Down_Interval`
//!   after the lower master was first heard. An advert with priority ≥ ours,
//!   or leaving Backup, closes the window; the next lower master opens a new
//!   one. The delay does not apply when no master is heard at all.
//! - **Fault state** (keepalived's FAULT; not in the RFC). [`Event::FaultRaised`]
//!   takes any running state to Fault (a Master sends priority 0 and removes
//!   its VIPs first). Fault ignores adverts and timers. [`Event::FaultCleared`]
//!   restarts as Startup would: Backup, or Master for the owner. A fault
//!   raised before Startup makes Startup go straight to Fault.
//! - **Tracked priority** (keepalived's `track_*` weights).
//!   [`Event::PriorityChanged`] carries the sum of the weights now in effect;
//!   the effective priority is `priority + weight`, clamped to 1..=254. The
//!   owner's 255 never changes. A Master sends an advert with the new
//!   priority at once. A Backup's running Master_Down_Timer is not restarted;
//!   the new Skew_Time applies from the next advert on.
//! - **Max Adver Int 0** in a received advert is taken as 1 cs, so that the
//!   Master_Down_Interval is never zero.
//!
//! Out of scope here: the §7.1 packet checks (see `mxgate_wire::vrrp`, which
//! also drops adverts for unknown VRIDs), Accept_Mode and answering ARP/ND
//! (the data plane), and comparing the advertised address list with ours.

use std::net::IpAddr;
use std::time::Duration;

use mxgate_wire::vrrp::{Received, MAX_ADVER_INT_MAX, PRIORITY_OWNER};
use serde::Serialize;

#[cfg(target_os = "linux")]
pub mod linux;
pub mod machine;
pub mod monitor;
pub mod status;

pub use machine::Machine;
pub use monitor::{Monitor, Snapshot};
pub use status::{Status, StatusReport, Transition, TransitionReport};

/// One virtual router's settings, as the rest of the machine trusts them
/// once [`Config::validate`] passed ([`Machine::new`] calls it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Virtual Router ID, 1..=255.
    pub vrid: u8,
    /// Configured priority, 1..=255; 255 means we own the addresses.
    pub priority: u8,
    /// Advertisement_Interval in centiseconds, 1..=4095 (default 100).
    pub advert_interval_cs: u16,
    /// Preempt_Mode: whether we take over from a lower-priority master.
    pub preempt: bool,
    /// How long a lower-priority master is tolerated before preempting it
    /// (see the crate doc), at most [`MAX_PREEMPT_DELAY`]. Ignored when
    /// `preempt` is false.
    pub preempt_delay: Duration,
    /// Our primary address on the link: the source of our adverts, compared
    /// with the sender's when priorities tie.
    pub primary_address: IpAddr,
}

impl Config {
    /// A config with the RFC defaults: 1 s interval, preemption on, no delay.
    pub fn new(vrid: u8, priority: u8, primary_address: IpAddr) -> Config {
        Config {
            vrid,
            priority,
            advert_interval_cs: 100,
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary_address,
        }
    }

    /// Check the ranges the RFC gives.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::VridZero);
        }
        if self.priority == 0 {
            return Err(ConfigError::PriorityZero);
        }
        if self.advert_interval_cs == 0 || self.advert_interval_cs > MAX_ADVER_INT_MAX {
            return Err(ConfigError::Interval(self.advert_interval_cs));
        }
        if self.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(ConfigError::PreemptDelay(self.preempt_delay));
        }
        Ok(())
    }

    /// Whether we own the virtual addresses (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == PRIORITY_OWNER
    }
}

/// The longest [`Config::preempt_delay`]: keepalived's limit, 1000 s.
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

/// A [`Config`] value outside what RFC 5798 (or, for the preempt delay,
/// keepalived) allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// VRID 0 is not a valid virtual router.
    #[error("VRID must be 1..=255")]
    VridZero,
    /// Priority 0 is reserved for "master is leaving".
    #[error("priority must be 1..=255 (0 is reserved)")]
    PriorityZero,
    /// The advert interval must fit the 12-bit field and not be zero.
    #[error("advert interval {0} cs is outside 1..=4095")]
    Interval(u16),
    /// The preempt delay is longer than [`MAX_PREEMPT_DELAY`].
    #[error("preempt delay {0:?} is longer than 1000 s")]
    PreemptDelay(Duration),
}

/// Something the machine reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Start the virtual router (leave Initialize).
    Startup,
    /// Stop it (back to Initialize).
    Shutdown,
    /// An advert for our VRID that passed the §7.1 checks.
    AdvertReceived {
        /// The sender's primary address (the IP source).
        src: IpAddr,
        /// The sender's priority; 0 means its master is leaving.
        priority: u8,
        /// The sender's Max Adver Int, in centiseconds.
        max_adver_interval_cs: u16,
    },
    /// [`Machine::next_deadline`] has passed. Early calls do nothing.
    Timer,
    /// A tracked object failed: stop serving (see the crate doc).
    FaultRaised,
    /// Every tracked object is healthy again.
    FaultCleared,
    /// The total weight of the tracked objects changed.
    PriorityChanged {
        /// The sum of the weights now in effect (negative lowers priority).
        weight: i32,
    },
}

impl From<&Received> for Event {
    fn from(advert: &Received) -> Event {
        Event::AdvertReceived {
            src: advert.src,
            priority: advert.repr.priority,
            max_adver_interval_cs: advert.repr.max_adver_interval_cs,
        }
    }
}

/// Something the driver must do, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority, our VRID, addresses and
    /// [`Config::advert_interval_cs`].
    SendAdvert {
        /// The priority to advertise (0 when leaving Master).
        priority: u8,
    },
    /// Become the router for the VIPs: add them, then send gratuitous ARPs
    /// (IPv4) / unsolicited Neighbour Advertisements (IPv6, R and O set).
    AddVips,
    /// Stop being the router for the VIPs: remove them.
    RemoveVips,
    /// Still Master, but another router has claimed the VIPs: send the
    /// gratuitous ARPs / unsolicited NAs again.
    ReannounceVips,
    /// The state changed (log it; it is also in [`Machine::status`]).
    StateChanged {
        /// The state left.
        from: StateName,
        /// The state entered.
        to: StateName,
        /// Why.
        reason: Reason,
    },
}

/// The machine's states: RFC 5798's three plus Fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    /// Not running (before Startup, after Shutdown).
    Initialize,
    /// Watching the master's adverts, ready to take over.
    Backup,
    /// Holding the VIPs and advertising.
    Master,
    /// A tracked object failed; not taking part until it recovers.
    Fault,
}

impl std::fmt::Display for StateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StateName::Initialize => "INITIALIZE",
            StateName::Backup => "BACKUP",
            StateName::Master => "MASTER",
            StateName::Fault => "FAULT",
        })
    }
}

/// Why a transition happened; `Display` gives the log line's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// Startup with priority 255.
    OwnerStartup,
    /// Startup with priority below 255.
    Startup,
    /// Nothing heard from a master for Master_Down_Interval.
    MasterDown,
    /// The master sent priority 0 and Skew_Time passed.
    MasterReleased,
    /// We discarded a lower-priority master's adverts (preemption) and took
    /// over when the Master_Down_Timer ran out.
    Preempted,
    /// An advert with a higher priority than ours.
    HigherPriority,
    /// An advert with our priority from a higher primary address.
    HigherAddress,
    /// Shutdown requested.
    Shutdown,
    /// A tracked object failed.
    Fault,
    /// Startup while a fault was active.
    StartupInFault,
    /// The fault cleared.
    FaultCleared,
}

impl Reason {
    /// The log wording.
    pub fn description(self) -> &'static str {
        match self {
            Reason::OwnerStartup => "address owner (priority 255) starts as master",
            Reason::Startup => "started, waiting for a master",
            Reason::MasterDown => "no advert from the master within Master_Down_Interval",
            Reason::MasterReleased => "master sent priority 0, took over after Skew_Time",
            Reason::Preempted => "preempted a lower-priority master",
            Reason::HigherPriority => "advert with a higher priority",
            Reason::HigherAddress => "advert with equal priority from a higher address",
            Reason::Shutdown => "shutdown",
            Reason::Fault => "a tracked object failed",
            Reason::StartupInFault => "started while a tracked object was failed",
            Reason::FaultCleared => "tracked objects recovered",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// `Skew_Time` for `priority` and an interval of `interval_cs`, computed in
/// microseconds: `((256 - priority) * interval) / 256`.
pub fn skew_time(priority: u8, interval_cs: u16) -> Duration {
    let interval_us = u64::from(interval_cs) * 10_000;
    Duration::from_micros((256 - u64::from(priority)) * interval_us / 256)
}

/// `Master_Down_Interval = 3 * interval + Skew_Time`.
pub fn master_down_interval(priority: u8, interval_cs: u16) -> Duration {
    centiseconds(interval_cs) * 3 + skew_time(priority, interval_cs)
}

/// `cs` centiseconds as a [`Duration`].
pub fn centiseconds(cs: u16) -> Duration {
    Duration::from_millis(u64::from(cs) * 10)
}

#[cfg(test)]
mod tests;
