//! Flap damping for health checks: rise/fall counting over consecutive
//! results, free of I/O and driven by an explicit [`Instant`].
//!
//! A server starts [`Health::Unknown`], which counts as usable, and the first
//! result decides its state at once: a dead backend is out after one failed
//! check at start, a live one in after one success. From then on it takes
//! `fall` consecutive failures to go down and `rise` consecutive successes to
//! come back up, so one lost check does not move traffic around.

use serde::Serialize;
use std::fmt;
use std::time::Instant;

/// What the health checks say about a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not checked yet (or in maintenance). Usable.
    #[default]
    Unknown,
    /// Passing checks.
    Up,
    /// Failing checks: gets no new sessions.
    Down,
}

impl Health {
    /// `"up"`, `"down"` or `"unknown"`, as in the status API.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }

    /// True when new sessions may go to a server in this state.
    pub fn is_usable(self) -> bool {
        self != Health::Down
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of [`Health`] reported by [`HealthTracker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before the result.
    pub from: Health,
    /// State after the result.
    pub to: Health,
    /// Consecutive results of the kind that caused the change.
    pub streak: u32,
    /// When it happened.
    pub at: Instant,
}

/// Rise/fall thresholds of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive successes that bring a down server up (at least 1).
    pub rise: u32,
    /// Consecutive failures that take an up server down (at least 1).
    pub fall: u32,
}

/// Counts consecutive check results and decides the health of one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthTracker {
    health: Health,
    consecutive_ok: u32,
    consecutive_fail: u32,
    since: Option<Instant>,
}

impl HealthTracker {
    /// A tracker in [`Health::Unknown`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Successes in a row, up to now.
    pub fn consecutive_ok(&self) -> u32 {
        self.consecutive_ok
    }

    /// Failures in a row, up to now.
    pub fn consecutive_fail(&self) -> u32 {
        self.consecutive_fail
    }

    /// Time of the last transition, if any.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Feeds one check result taken at `now`; returns the transition when
    /// the state flips.
    pub fn record(&mut self, ok: bool, limits: Thresholds, now: Instant) -> Option<Transition> {
        let (streak, next) = if ok {
            self.consecutive_ok = self.consecutive_ok.saturating_add(1);
            self.consecutive_fail = 0;
            let rise_reached = self.consecutive_ok >= limits.rise.max(1);
            let next = match self.health {
                Health::Unknown => Health::Up,
                Health::Down if rise_reached => Health::Up,
                other => other,
            };
            (self.consecutive_ok, next)
        } else {
            self.consecutive_fail = self.consecutive_fail.saturating_add(1);
            self.consecutive_ok = 0;
            let fall_reached = self.consecutive_fail >= limits.fall.max(1);
            let next = match self.health {
                Health::Unknown => Health::Down,
                Health::Up if fall_reached => Health::Down,
                other => other,
            };
            (self.consecutive_fail, next)
        };
        if next == self.health {
            return None;
        }
        let from = self.health;
        self.health = next;
        self.since = Some(now);
        Some(Transition {
            from,
            to: next,
            streak,
            at: now,
        })
    }

    /// Forgets everything (server put in maintenance): back to
    /// [`Health::Unknown`], so the next result after it decides at once.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const RF: Thresholds = Thresholds { rise: 2, fall: 3 };

    fn feed(t: &mut HealthTracker, results: &[bool], start: Instant) -> Vec<(Health, Health)> {
        let mut out = Vec::new();
        for (i, &ok) in results.iter().enumerate() {
            let now = start + Duration::from_secs(i as u64);
            if let Some(tr) = t.record(ok, RF, now) {
                assert_eq!(tr.at, now);
                out.push((tr.from, tr.to));
            }
        }
        out
    }

    #[test]
    fn first_failure_decides_down_at_once() {
        let mut t = HealthTracker::new();
        let now = Instant::now();
        assert_eq!(t.health(), Health::Unknown);
        assert!(t.health().is_usable());
        let tr = t.record(false, RF, now).expect("transition");
        assert_eq!(
            (tr.from, tr.to, tr.streak),
            (Health::Unknown, Health::Down, 1)
        );
        assert!(!t.health().is_usable());
        assert_eq!(t.since(), Some(now));
    }

    #[test]
    fn first_success_decides_up_at_once() {
        let mut t = HealthTracker::new();
        let tr = t.record(true, RF, Instant::now()).expect("transition");
        assert_eq!(
            (tr.from, tr.to, tr.streak),
            (Health::Unknown, Health::Up, 1)
        );
    }

    #[test]
    fn up_needs_fall_consecutive_failures() {
        let mut t = HealthTracker::new();
        let start = Instant::now();
        // up, then two failures, a success resets the count, then three failures
        let flips = feed(
            &mut t,
            &[true, false, false, true, false, false, false],
            start,
        );
        assert_eq!(
            flips,
            vec![(Health::Unknown, Health::Up), (Health::Up, Health::Down)]
        );
        assert_eq!(t.since(), Some(start + Duration::from_secs(6)));
        assert_eq!(t.consecutive_fail(), 3);
        assert_eq!(t.consecutive_ok(), 0);
    }

    #[test]
    fn down_needs_rise_consecutive_successes() {
        let mut t = HealthTracker::new();
        let flips = feed(&mut t, &[false, true, false, true, true], Instant::now());
        assert_eq!(
            flips,
            vec![(Health::Unknown, Health::Down), (Health::Down, Health::Up)]
        );
        assert_eq!(t.consecutive_ok(), 2);
    }

    #[test]
    fn each_transition_is_reported_once() {
        let mut t = HealthTracker::new();
        let flips = feed(&mut t, &[false; 10], Instant::now());
        assert_eq!(flips.len(), 1);
        assert_eq!(t.consecutive_fail(), 10);
    }

    #[test]
    fn reset_returns_to_unknown() {
        let mut t = HealthTracker::new();
        feed(&mut t, &[false, false], Instant::now());
        t.reset();
        assert_eq!(t, HealthTracker::new());
        let tr = t.record(true, RF, Instant::now()).expect("decides at once");
        assert_eq!(tr.to, Health::Up);
    }

    #[test]
    fn thresholds_of_zero_act_as_one() {
        let mut t = HealthTracker::new();
        let z = Thresholds { rise: 0, fall: 0 };
        let now = Instant::now();
        t.record(true, z, now);
        assert_eq!(t.record(false, z, now).map(|tr| tr.to), Some(Health::Down));
        assert_eq!(t.record(true, z, now).map(|tr| tr.to), Some(Health::Up));
    }
}
