//! What a running virtual router shows to the rest of the process: the
//! machine's [`Status`], the master's address, counters (transitions by
//! target state, received adverts dropped by reason) and the tracked
//! objects' state, behind one cheap-to-clone handle.
//!
//! The driver writes ([`Monitor::record_status`], [`Monitor::count_drop`],
//! ...); the status page and `/metrics` read a [`Snapshot`] taken at a given
//! `now`. No I/O here, so the web crate can depend on it on any platform.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;

use crate::{StateName, Status, StatusReport};

/// The states in the order of their metric values (see [`state_value`]).
pub const STATES: [StateName; 4] = [
    StateName::Initialize,
    StateName::Backup,
    StateName::Master,
    StateName::Fault,
];

/// The `mxgate_vrrp_state` gauge value of a state: 0 init, 1 backup,
/// 2 master, 3 fault.
pub fn state_value(state: StateName) -> u8 {
    match state {
        StateName::Initialize => 0,
        StateName::Backup => 1,
        StateName::Master => 2,
        StateName::Fault => 3,
    }
}

/// The lower-case label of a state (`init`, `backup`, `master`, `fault`),
/// for metric labels and the notify command.
pub fn state_label(state: StateName) -> &'static str {
    match state {
        StateName::Initialize => "init",
        StateName::Backup => "backup",
        StateName::Master => "master",
        StateName::Fault => "fault",
    }
}

/// A shared view of one running virtual router. Clones share the same data.
#[derive(Debug, Clone)]
pub struct Monitor {
    inner: Arc<Mutex<Shared>>,
}

#[derive(Debug)]
struct Shared {
    interface: String,
    virtual_ips: Vec<String>,
    status: Status,
    master: Option<IpAddr>,
    transitions: [u64; 4],
    rx_dropped: BTreeMap<&'static str, u64>,
    adverts_received: u64,
    adverts_sent: u64,
    tracked_weight: u32,
    tracked_fault: bool,
    link_up: Option<bool>,
}

impl Monitor {
    /// A monitor for virtual router `vrid` on `interface` with `virtual_ips`
    /// (as the node file gives them), in Initialize since `now`.
    pub fn new(
        vrid: u8,
        priority: u8,
        interface: &str,
        virtual_ips: Vec<String>,
        now: Instant,
    ) -> Monitor {
        Monitor {
            inner: Arc::new(Mutex::new(Shared {
                interface: interface.to_string(),
                virtual_ips,
                status: Status::new(vrid, priority, now),
                master: None,
                transitions: [0; 4],
                rx_dropped: BTreeMap::new(),
                adverts_received: 0,
                adverts_sent: 0,
                tracked_weight: 0,
                tracked_fault: false,
                link_up: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Only plain data inside: a panic elsewhere leaves it consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copy the machine's status (after every event that may change it).
    pub fn record_status(&self, status: &Status) {
        self.lock().status = status.clone();
    }

    /// Count a transition into `to`.
    pub fn count_transition(&self, to: StateName) {
        self.lock().transitions[usize::from(state_value(to))] += 1;
    }

    /// Set the current master's address (`None`: unknown).
    pub fn set_master(&self, master: Option<IpAddr>) {
        self.lock().master = master;
    }

    /// Count a received packet dropped for `reason` (a codec error's
    /// `label()`, or `not_a_peer` for unicast from an unknown source).
    pub fn count_drop(&self, reason: &'static str) {
        *self.lock().rx_dropped.entry(reason).or_insert(0) += 1;
    }

    /// Count an advert that passed every check.
    pub fn count_received(&self) {
        self.lock().adverts_received += 1;
    }

    /// Count an advert sent (to each destination once).
    pub fn count_sent(&self) {
        self.lock().adverts_sent += 1;
    }

    /// Record the tracked objects' state: the failed weight in effect and
    /// whether a fault is raised.
    pub fn set_tracking(&self, weight: u32, fault: bool) {
        let mut s = self.lock();
        s.tracked_weight = weight;
        s.tracked_fault = fault;
    }

    /// Record the VRRP interface's link state.
    pub fn set_link_up(&self, up: bool) {
        self.lock().link_up = Some(up);
    }

    /// The current state.
    pub fn state(&self) -> StateName {
        self.lock().status.state
    }

    /// Everything, with times relative to `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let s = self.lock();
        Snapshot {
            report: s.status.report(now),
            interface: s.interface.clone(),
            virtual_ips: s.virtual_ips.clone(),
            master: s.master,
            link_up: s.link_up,
            tracked_weight: s.tracked_weight,
            tracked_fault: s.tracked_fault,
            adverts_received: s.adverts_received,
            adverts_sent: s.adverts_sent,
            transitions_total: STATES
                .iter()
                .map(|&st| (state_label(st), s.transitions[usize::from(state_value(st))]))
                .collect(),
            rx_dropped: s
                .rx_dropped
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
        }
    }
}

/// A serializable picture of one virtual router (the `vrrp` field of
/// `/api/v1/status`, and the source of the `mxgate_vrrp_*` metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// State, since when, effective priority, recent transitions.
    #[serde(flatten)]
    pub report: StatusReport,
    /// The interface adverts go out on.
    pub interface: String,
    /// The virtual IPs, as configured.
    pub virtual_ips: Vec<String>,
    /// The master's address: ours when Master, the sender of the last
    /// advert when Backup, `null` when unknown.
    pub master: Option<IpAddr>,
    /// The interface's link state; `null` before the first reading.
    pub link_up: Option<bool>,
    /// The sum of the weights of the failed tracked objects now.
    pub tracked_weight: u32,
    /// Whether a failed tracked object holds the router in Fault.
    pub tracked_fault: bool,
    /// Adverts received that passed every check.
    pub adverts_received: u64,
    /// Adverts sent.
    pub adverts_sent: u64,
    /// Transitions into each state (`init`, `backup`, `master`, `fault`).
    pub transitions_total: BTreeMap<&'static str, u64>,
    /// Received packets dropped, by reason.
    pub rx_dropped: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Reason, Transition};
    use std::time::Duration;

    #[test]
    fn snapshot_counts_and_reports() {
        let t0 = Instant::now();
        let m = Monitor::new(51, 150, "eth0", vec!["192.0.2.25/24".into()], t0);
        let mut status = Status::new(51, 150, t0);
        status.record(Transition {
            at: t0 + Duration::from_secs(1),
            from: StateName::Initialize,
            to: StateName::Backup,
            reason: Reason::Startup,
        });
        m.record_status(&status);
        m.count_transition(StateName::Backup);
        m.count_drop("bad_ttl");
        m.count_drop("bad_ttl");
        m.set_master(Some("192.0.2.2".parse().unwrap()));
        let snap = m.snapshot(t0 + Duration::from_secs(3));
        assert_eq!(snap.report.state, StateName::Backup);
        assert_eq!(snap.report.in_state_ms, 2000);
        assert_eq!(snap.transitions_total["backup"], 1);
        assert_eq!(snap.transitions_total["master"], 0);
        assert_eq!(snap.rx_dropped["bad_ttl"], 2);
        let json = serde_json::to_value(&snap).unwrap();
        assert_eq!(json["state"], "backup");
        assert_eq!(json["master"], "192.0.2.2");
        assert_eq!(json["transitions"][0]["reason"], "startup");
    }

    #[test]
    fn state_values_follow_the_metric_contract() {
        let values: Vec<u8> = STATES.iter().map(|&s| state_value(s)).collect();
        assert_eq!(values, [0, 1, 2, 3]);
        assert_eq!(state_label(StateName::Master), "master");
    }
}
