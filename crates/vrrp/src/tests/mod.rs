//! Unit tests for every §6.4 transition and the extras, with explicit
//! `Instant`s (time moves only when a test adds to `t0`).
//!
//! Numbers used throughout: interval 100 cs (1 s), local priority 100, so
//! Skew_Time = 156 * 1 s / 256 = 609.375 ms and Master_Down_Interval =
//! 3.609375 s.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::machine::address_greater;

mod extras;
mod sim;

const SKEW_100: Duration = Duration::from_micros(609_375);
const MDI_100: Duration = Duration::from_micros(3_609_375);
const SECOND: Duration = Duration::from_secs(1);
const MICRO: Duration = Duration::from_micros(1);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config(priority: u8) -> Config {
    Config::new(51, priority, ip("192.168.1.2"))
}

fn advert(src: &str, priority: u8, interval_cs: u16) -> Event {
    Event::AdvertReceived {
        src: ip(src),
        priority,
        max_adver_interval_cs: interval_cs,
    }
}

fn changed(from: StateName, to: StateName, reason: Reason) -> Action {
    Action::StateChanged { from, to, reason }
}

/// A started non-owner machine in Backup at `t0`.
fn backup(config: Config, t0: Instant) -> Machine {
    let mut m = Machine::new(config, t0).unwrap();
    m.handle(Event::Startup, t0);
    assert_eq!(m.state(), StateName::Backup);
    m
}

/// A machine that became Master by timing out; returns it and when.
fn master(config: Config, t0: Instant) -> (Machine, Instant) {
    let mut m = backup(config, t0);
    let at = m.next_deadline().unwrap();
    m.handle(Event::Timer, at);
    assert_eq!(m.state(), StateName::Master);
    (m, at)
}

#[test]
fn timer_formulas() {
    assert_eq!(skew_time(100, 100), SKEW_100);
    assert_eq!(master_down_interval(100, 100), MDI_100);
    assert_eq!(skew_time(255, 100), Duration::from_micros(3_906)); // 1/256 s, floored
    assert_eq!(skew_time(1, 100), Duration::from_micros(996_093));
    assert_eq!(
        master_down_interval(200, 50),
        Duration::from_micros(1_609_375)
    );
}

#[test]
fn config_is_validated() {
    let t0 = Instant::now();
    let bad = |edit: fn(&mut Config)| {
        let mut c = config(100);
        edit(&mut c);
        Machine::new(c, t0).err()
    };
    assert_eq!(bad(|c| c.vrid = 0), Some(ConfigError::VridZero));
    assert_eq!(bad(|c| c.priority = 0), Some(ConfigError::PriorityZero));
    assert_eq!(
        bad(|c| c.advert_interval_cs = 0),
        Some(ConfigError::Interval(0))
    );
    assert_eq!(
        bad(|c| c.advert_interval_cs = 4096),
        Some(ConfigError::Interval(4096))
    );
    assert_eq!(
        bad(|c| c.preempt_delay = Duration::MAX),
        Some(ConfigError::PreemptDelay(Duration::MAX))
    );
    assert_eq!(bad(|c| c.preempt_delay = MAX_PREEMPT_DELAY), None);
    assert_eq!(bad(|_| {}), None);
}

#[test]
fn startup_non_owner_becomes_backup() {
    let t0 = Instant::now();
    let mut m = Machine::new(config(100), t0).unwrap();
    assert_eq!(m.state(), StateName::Initialize);
    assert_eq!(m.next_deadline(), None);
    let actions = m.handle(Event::Startup, t0);
    assert_eq!(
        actions,
        [changed(
            StateName::Initialize,
            StateName::Backup,
            Reason::Startup
        )]
    );
    assert_eq!(m.master_adver_interval_cs(), Some(100));
    assert_eq!(m.next_deadline(), Some(t0 + MDI_100));
}

#[test]
fn startup_owner_becomes_master_at_once() {
    let t0 = Instant::now();
    let mut m = Machine::new(config(255), t0).unwrap();
    let actions = m.handle(Event::Startup, t0);
    assert_eq!(
        actions,
        [
            changed(
                StateName::Initialize,
                StateName::Master,
                Reason::OwnerStartup
            ),
            Action::SendAdvert { priority: 255 },
            Action::AddVips,
        ]
    );
    assert_eq!(m.next_deadline(), Some(t0 + SECOND));
}

#[test]
fn backup_takes_over_after_exactly_master_down_interval() {
    let t0 = Instant::now();
    let mut m = backup(config(100), t0);
    assert!(m.handle(Event::Timer, t0 + MDI_100 - MICRO).is_empty());
    assert_eq!(m.state(), StateName::Backup);
    let actions = m.handle(Event::Timer, t0 + MDI_100);
    assert_eq!(
        actions,
        [
            changed(StateName::Backup, StateName::Master, Reason::MasterDown),
            Action::SendAdvert { priority: 100 },
            Action::AddVips,
        ]
    );
    assert_eq!(m.next_deadline(), Some(t0 + MDI_100 + SECOND));
}

#[test]
fn master_advertises_on_its_timer() {
    let t0 = Instant::now();
    let (mut m, t1) = master(config(100), t0);
    assert!(m.handle(Event::Timer, t1 + SECOND - MICRO).is_empty());
    assert_eq!(
        m.handle(Event::Timer, t1 + SECOND),
        [Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(m.next_deadline(), Some(t1 + 2 * SECOND));
    // A late wake-up sends one advert and restarts from then.
    let late = t1 + 5 * SECOND;
    assert_eq!(
        m.handle(Event::Timer, late),
        [Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(m.next_deadline(), Some(late + SECOND));
}

#[test]
fn backup_accepts_advert_and_restarts_timer() {
    let t0 = Instant::now();
    let mut m = backup(config(100), t0);
    let t1 = t0 + 3 * SECOND;
    assert!(m.handle(advert("192.168.1.3", 150, 100), t1).is_empty());
    assert_eq!(m.next_deadline(), Some(t1 + MDI_100));
    assert!(m.handle(Event::Timer, t0 + MDI_100).is_empty());
    assert_eq!(m.state(), StateName::Backup);
}

#[test]
fn backup_learns_master_adver_interval() {
    let t0 = Instant::now();
    let mut m = backup(config(100), t0);
    m.handle(advert("192.168.1.3", 150, 200), t0);
    assert_eq!(m.master_adver_interval_cs(), Some(200));
    // 3 * 2 s + 156 * 2 s / 256.
    assert_eq!(
        m.next_deadline(),
        Some(t0 + Duration::from_micros(6_000_000 + 1_218_750))
    );
    // A zero interval is taken as 1 cs, never a zero Master_Down_Interval.
    m.handle(advert("192.168.1.3", 150, 0), t0);
    assert_eq!(m.master_adver_interval_cs(), Some(1));
    assert_eq!(m.next_deadline(), Some(t0 + master_down_interval(100, 1)));
}

#[test]
fn backup_takes_over_skew_time_after_priority_zero() {
    let t0 = Instant::now();
    let mut m = backup(config(100), t0);
    m.handle(advert("192.168.1.3", 150, 100), t0);
    let t1 = t0 + SECOND;
    assert!(m.handle(advert("192.168.1.3", 0, 100), t1).is_empty());
    assert_eq!(m.next_deadline(), Some(t1 + SKEW_100));
    assert!(m.handle(Event::Timer, t1 + SKEW_100 - MICRO).is_empty());
    let actions = m.handle(Event::Timer, t1 + SKEW_100);
    assert_eq!(
        actions[0],
        changed(StateName::Backup, StateName::Master, Reason::MasterReleased)
    );
}

#[test]
fn priority_zero_skew_uses_the_learned_interval() {
    let t0 = Instant::now();
    let mut m = backup(config(100), t0);
    m.handle(advert("192.168.1.3", 150, 300), t0);
    m.handle(advert("192.168.1.3", 0, 300), t0);
    assert_eq!(m.next_deadline(), Some(t0 + skew_time(100, 300)));
}

#[test]
fn master_answers_priority_zero_with_an_advert() {
    let t0 = Instant::now();
    let (mut m, t1) = master(config(100), t0);
    let t2 = t1 + Duration::from_millis(300);
    assert_eq!(
        m.handle(advert("192.168.1.3", 0, 100), t2),
        [Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(m.next_deadline(), Some(t2 + SECOND));
    assert_eq!(m.state(), StateName::Master);
}

#[test]
fn master_yields_to_higher_priority() {
    let t0 = Instant::now();
    let (mut m, t1) = master(config(100), t0);
    let actions = m.handle(advert("192.168.1.1", 101, 50), t1);
    assert_eq!(
        actions,
        [
            changed(StateName::Master, StateName::Backup, Reason::HigherPriority),
            Action::RemoveVips,
        ]
    );
    assert_eq!(m.master_adver_interval_cs(), Some(50));
    assert_eq!(m.next_deadline(), Some(t1 + master_down_interval(100, 50)));
}

#[test]
fn master_yields_on_equal_priority_to_higher_address_only() {
    let t0 = Instant::now();
    // Numerically 192.168.1.10 > 192.168.1.9, though "10" < "9" as text.
    let mut c = config(100);
    c.primary_address = ip("192.168.1.9");
    let (mut m, t1) = master(c.clone(), t0);
    let actions = m.handle(advert("192.168.1.10", 100, 100), t1);
    assert_eq!(
        actions[0],
        changed(StateName::Master, StateName::Backup, Reason::HigherAddress)
    );

    c.primary_address = ip("192.168.1.10");
    let (mut m, t1) = master(c, t0);
    let actions = m.handle(advert("192.168.1.9", 100, 100), t1);
    assert_eq!(m.state(), StateName::Master);
    assert!(!actions.contains(&Action::RemoveVips));
}

#[test]
fn addresses_compare_as_numbers() {
    assert!(address_greater(ip("10.0.0.2"), ip("9.255.255.255")));
    assert!(!address_greater(ip("10.0.0.2"), ip("10.0.0.2")));
    assert!(address_greater(ip("fe80::10"), ip("fe80::9")));
    assert!(address_greater(ip("fe80::1:0"), ip("fe80::ffff")));
    assert!(!address_greater(ip("fe80::2"), ip("fe80::10")));
}

#[test]
fn master_discards_lower_advert_but_heals_split_brain() {
    let t0 = Instant::now();
    let (mut m, t1) = master(config(100), t0);
    let t2 = t1 + Duration::from_millis(400);
    assert_eq!(
        m.handle(advert("192.168.1.3", 50, 100), t2),
        [Action::SendAdvert { priority: 100 }, Action::ReannounceVips]
    );
    assert_eq!(m.state(), StateName::Master);
    assert_eq!(m.next_deadline(), Some(t2 + SECOND));
    // At most one extra advert per Advertisement_Interval.
    assert!(m
        .handle(advert("192.168.1.3", 50, 100), t2 + SECOND - MICRO)
        .is_empty());
    assert_eq!(
        m.handle(advert("192.168.1.3", 50, 100), t2 + SECOND),
        [Action::SendAdvert { priority: 100 }, Action::ReannounceVips]
    );
}

#[test]
fn owner_never_yields() {
    let t0 = Instant::now();
    let mut m = Machine::new(config(255), t0).unwrap();
    m.handle(Event::Startup, t0);
    let actions = m.handle(advert("192.168.1.200", 255, 100), t0 + SECOND);
    assert_eq!(m.state(), StateName::Master);
    assert!(!actions.contains(&Action::RemoveVips));
}
