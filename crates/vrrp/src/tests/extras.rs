//! Tests for the parts beyond RFC 5798 §6.4's core and for the plumbing:
//! preemption and its delay, shutdown, fault, tracking weights, looped-back
//! adverts, the wire-to-event conversion, and the status ring.

use super::*;

#[test]
fn preempt_off_accepts_a_lower_master() {
    let t0 = Instant::now();
    let mut c = config(200);
    c.preempt = false;
    let mut m = backup(c, t0);
    let mdi = master_down_interval(200, 100);
    // A lower master keeps us in Backup as long as it advertises.
    for i in 1..=10 {
        assert!(m
            .handle(advert("192.168.1.3", 100, 100), t0 + i * SECOND)
            .is_empty());
        assert_eq!(m.next_deadline(), Some(t0 + i * SECOND + mdi));
    }
    assert!(m
        .handle(Event::Timer, t0 + 10 * SECOND + mdi - MICRO)
        .is_empty());
    assert_eq!(m.state(), StateName::Backup);
}

#[test]
fn preempt_on_discards_a_lower_master_and_takes_over() {
    let t0 = Instant::now();
    let mut m = backup(config(200), t0);
    let mdi = master_down_interval(200, 100);
    // Its adverts do not restart the timer armed at Startup.
    for i in 1..=3 {
        assert!(m
            .handle(advert("192.168.1.3", 100, 100), t0 + i * SECOND)
            .is_empty());
        assert_eq!(m.next_deadline(), Some(t0 + mdi));
    }
    let actions = m.handle(Event::Timer, t0 + mdi);
    assert_eq!(
        actions[0],
        changed(StateName::Backup, StateName::Master, Reason::Preempted)
    );
}

#[test]
fn preempt_on_still_accepts_equal_priority() {
    let t0 = Instant::now();
    let mut m = backup(config(100), t0);
    // Equal priority from a lower address: accepted (no address preemption).
    m.handle(advert("192.168.1.1", 100, 100), t0 + SECOND);
    assert_eq!(m.next_deadline(), Some(t0 + SECOND + MDI_100));
}

#[test]
fn preempt_delay_tolerates_a_lower_master_for_the_delay() {
    let t0 = Instant::now();
    let mut c = config(200);
    c.preempt_delay = Duration::from_secs(10);
    let mut m = backup(c, t0);
    let mdi = master_down_interval(200, 100);
    // The first lower advert, at t0 + 1 s, opens the window until t0 + 11 s.
    for i in 1..=10 {
        let at = t0 + i * SECOND;
        m.handle(advert("192.168.1.3", 100, 100), at);
        assert_eq!(m.next_deadline(), Some(at + mdi), "accepted at {i} s");
    }
    // From t0 + 11 s on, discarded: takeover one MDI after the last accepted.
    m.handle(advert("192.168.1.3", 100, 100), t0 + 11 * SECOND);
    assert_eq!(m.next_deadline(), Some(t0 + 10 * SECOND + mdi));
    let actions = m.handle(Event::Timer, t0 + 10 * SECOND + mdi);
    assert_eq!(
        actions[0],
        changed(StateName::Backup, StateName::Master, Reason::Preempted)
    );
}

#[test]
fn preempt_delay_window_closes_on_a_better_master() {
    let t0 = Instant::now();
    let mut c = config(200);
    c.preempt_delay = Duration::from_secs(10);
    let mut m = backup(c, t0);
    let mdi = master_down_interval(200, 100);
    m.handle(advert("192.168.1.3", 100, 100), t0 + SECOND); // window to 11 s
    m.handle(advert("192.168.1.4", 250, 100), t0 + 2 * SECOND); // closes it
                                                                // A lower master at 12 s gets a fresh window (to 22 s): accepted.
    let at = t0 + 12 * SECOND;
    m.handle(advert("192.168.1.3", 100, 100), at);
    assert_eq!(m.next_deadline(), Some(at + mdi));
}

#[test]
fn shutdown_from_master_releases() {
    let t0 = Instant::now();
    let (mut m, t1) = master(config(100), t0);
    assert_eq!(
        m.handle(Event::Shutdown, t1),
        [
            changed(StateName::Master, StateName::Initialize, Reason::Shutdown),
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
        ]
    );
    assert_eq!(m.next_deadline(), None);
    // Adverts and timers mean nothing in Initialize.
    assert!(m.handle(advert("192.168.1.3", 0, 100), t1).is_empty());
    assert!(m.handle(Event::Timer, t1 + MDI_100).is_empty());
}

#[test]
fn shutdown_from_backup_cancels_the_timer() {
    let t0 = Instant::now();
    let mut m = backup(config(100), t0);
    assert_eq!(
        m.handle(Event::Shutdown, t0),
        [changed(
            StateName::Backup,
            StateName::Initialize,
            Reason::Shutdown
        )]
    );
    assert_eq!(m.next_deadline(), None);
    // And it can start again.
    m.handle(Event::Startup, t0 + SECOND);
    assert_eq!(m.next_deadline(), Some(t0 + SECOND + MDI_100));
}

#[test]
fn fault_leaves_master_and_recovers_to_backup() {
    let t0 = Instant::now();
    let (mut m, t1) = master(config(100), t0);
    assert_eq!(
        m.handle(Event::FaultRaised, t1),
        [
            changed(StateName::Master, StateName::Fault, Reason::Fault),
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
        ]
    );
    assert_eq!(m.next_deadline(), None);
    // Deaf while faulted.
    assert!(m.handle(advert("192.168.1.3", 0, 100), t1).is_empty());
    assert!(m.handle(Event::Timer, t1 + MDI_100).is_empty());
    assert!(m.handle(Event::FaultRaised, t1).is_empty());
    let t2 = t1 + 5 * SECOND;
    assert_eq!(
        m.handle(Event::FaultCleared, t2),
        [changed(
            StateName::Fault,
            StateName::Backup,
            Reason::FaultCleared
        )]
    );
    assert_eq!(m.next_deadline(), Some(t2 + MDI_100));
}

#[test]
fn fault_from_backup_and_owner_recovers_to_master() {
    let t0 = Instant::now();
    let mut m = backup(config(100), t0);
    assert_eq!(
        m.handle(Event::FaultRaised, t0),
        [changed(StateName::Backup, StateName::Fault, Reason::Fault)]
    );

    let mut owner = Machine::new(config(255), t0).unwrap();
    owner.handle(Event::Startup, t0);
    owner.handle(Event::FaultRaised, t0);
    let actions = owner.handle(Event::FaultCleared, t0 + SECOND);
    assert_eq!(
        actions,
        [
            changed(StateName::Fault, StateName::Master, Reason::FaultCleared),
            Action::SendAdvert { priority: 255 },
            Action::AddVips,
        ]
    );
}

#[test]
fn fault_before_startup_starts_in_fault() {
    let t0 = Instant::now();
    let mut m = Machine::new(config(100), t0).unwrap();
    assert!(m.handle(Event::FaultRaised, t0).is_empty());
    assert_eq!(
        m.handle(Event::Startup, t0),
        [changed(
            StateName::Initialize,
            StateName::Fault,
            Reason::StartupInFault
        )]
    );
    // Shutdown in Fault remembers the fault for the next Startup.
    m.handle(Event::Shutdown, t0);
    assert_eq!(
        m.handle(Event::Startup, t0)[0],
        changed(
            StateName::Initialize,
            StateName::Fault,
            Reason::StartupInFault
        )
    );
    // Cleared while stopped: Startup is normal again.
    m.handle(Event::Shutdown, t0);
    m.handle(Event::FaultCleared, t0);
    m.handle(Event::Startup, t0);
    assert_eq!(m.state(), StateName::Backup);
}

#[test]
fn tracking_weight_changes_effective_priority() {
    let t0 = Instant::now();
    let (mut m, t1) = master(config(100), t0);
    assert_eq!(
        m.handle(Event::PriorityChanged { weight: -50 }, t1),
        [Action::SendAdvert { priority: 50 }]
    );
    assert_eq!(m.priority(), 50);
    assert_eq!(m.next_deadline(), Some(t1 + SECOND));
    assert_eq!(m.status().priority, 50);
    // Same effective priority again: nothing to do.
    assert!(m
        .handle(Event::PriorityChanged { weight: -50 }, t1)
        .is_empty());
    // Clamped to 1..=254.
    m.handle(Event::PriorityChanged { weight: -500 }, t1);
    assert_eq!(m.priority(), 1);
    m.handle(Event::PriorityChanged { weight: 500 }, t1);
    assert_eq!(m.priority(), 254);
    // Now at 254, a 200 advert is lower; at 150 a 200 advert wins.
    m.handle(Event::PriorityChanged { weight: 50 }, t1);
    let actions = m.handle(advert("192.168.1.3", 200, 100), t1);
    assert_eq!(
        actions[0],
        changed(StateName::Master, StateName::Backup, Reason::HigherPriority)
    );

    let mut owner = Machine::new(config(255), t0).unwrap();
    owner.handle(Event::Startup, t0);
    assert!(owner
        .handle(Event::PriorityChanged { weight: -100 }, t0)
        .is_empty());
    assert_eq!(owner.priority(), 255);
}

#[test]
fn raised_priority_lets_a_backup_preempt() {
    let t0 = Instant::now();
    let mut m = backup(config(100), t0);
    m.handle(advert("192.168.1.3", 120, 100), t0);
    // Tracking raises us to 150: the 120 master is now lower.
    assert!(m
        .handle(Event::PriorityChanged { weight: 50 }, t0)
        .is_empty());
    let last_accepted = t0;
    m.handle(advert("192.168.1.3", 120, 100), t0 + SECOND);
    assert_eq!(m.next_deadline(), Some(last_accepted + MDI_100));
    let actions = m.handle(Event::Timer, last_accepted + MDI_100);
    assert_eq!(
        actions[0],
        changed(StateName::Backup, StateName::Master, Reason::Preempted)
    );
}

#[test]
fn own_advert_looped_back_is_ignored() {
    let t0 = Instant::now();
    let (mut m, t1) = master(config(100), t0);
    assert!(m.handle(advert("192.168.1.2", 100, 100), t1).is_empty());
    let mut b = backup(config(100), t0);
    b.handle(advert("192.168.1.2", 100, 100), t0 + SECOND);
    assert_eq!(b.next_deadline(), Some(t0 + MDI_100));
}

#[test]
fn advert_event_from_a_received_packet() {
    use mxgate_wire::vrrp::{Received, Repr};
    let received = Received {
        src: ip("192.168.1.3"),
        dst: ip("224.0.0.18"),
        repr: Repr {
            vrid: 51,
            priority: 150,
            max_adver_interval_cs: 100,
            addresses: vec![ip("192.168.1.10")],
        },
    };
    assert_eq!(Event::from(&received), advert("192.168.1.3", 150, 100));
}

#[test]
fn status_keeps_the_last_sixteen_transitions() {
    let t0 = Instant::now();
    let mut m = backup(config(100), t0);
    let mut now = t0;
    for _ in 0..20 {
        now += SECOND;
        m.handle(Event::FaultRaised, now);
        m.handle(Event::FaultCleared, now);
    }
    let status = m.status();
    assert_eq!(status.transitions.len(), status::HISTORY_LEN);
    assert_eq!(status.state, StateName::Backup);
    assert_eq!(status.since, now);
    let report = status.report(now + Duration::from_millis(1500));
    assert_eq!(report.in_state_ms, 1500);
    assert_eq!(report.transitions.len(), 16);
    assert_eq!(report.transitions[0].reason, Reason::FaultCleared);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["state"], "backup");
    assert_eq!(json["transitions"][0]["reason"], "fault_cleared");
    assert_eq!(json["transitions"][1]["from"], "backup");
    assert_eq!(
        json["transitions"][1]["description"],
        "a tracked object failed"
    );
}
