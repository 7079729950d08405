//! Hybrid logical clock stamps (Kulkarni et al., "Logical Physical Clocks",
//! 2014) packed in one `u64`: the physical time in milliseconds in the high
//! 48 bits, a logical counter in the low 16 bits.
//!
//! Packed this way, comparing two stamps as integers compares them as HLCs,
//! and the usual rules shrink to two lines:
//!
//! - a local event takes `max(now << 16, last + 1)` ([`Hlc::next`]): the wall
//!   clock when it moved on, otherwise the last stamp plus one;
//! - a received stamp is absorbed with `last = max(last, remote)`
//!   ([`Hlc::observe`]), so the next local event is stamped after it.
//!
//! A counter that overflows its 16 bits carries into the milliseconds: the
//! clock then runs slightly ahead of the wall clock until the wall clock
//! catches up, which keeps stamps unique and ordered. 48 bits of
//! milliseconds last until the year 10889.
//!
//! The physical clock is a [`Clock`], so tests can run two stores with skewed
//! or frozen clocks.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the logical counter.
const LOGICAL_BITS: u32 = 16;

/// One hybrid logical clock stamp. Ordered as the HLC orders events.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc(pub u64);

impl Hlc {
    /// The stamp of physical time `ms` with logical counter `logical`.
    pub fn new(ms: u64, logical: u16) -> Hlc {
        Hlc((ms << LOGICAL_BITS) | u64::from(logical))
    }

    /// The physical part: Unix time in milliseconds.
    pub fn physical_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// The logical counter.
    pub fn logical(self) -> u16 {
        // Masked to 16 bits, so the cast cannot truncate anything.
        (self.0 & 0xffff) as u16
    }

    /// The stamp of a local event after `self`, at wall clock `now_ms`.
    pub fn next(self, now_ms: u64) -> Hlc {
        Hlc::new(now_ms, 0).max(Hlc(self.0.saturating_add(1)))
    }

    /// The clock after receiving `remote`: the next local stamp is after
    /// both.
    pub fn observe(self, remote: Hlc) -> Hlc {
        self.max(remote)
    }

    /// The stamp as SQLite stores it (stamps fit in 63 bits until the
    /// year 4400; a larger value saturates).
    pub fn to_sql(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// A stamp read back from SQLite (a negative value, only possible from a
    /// hand edit, reads as zero).
    pub fn from_sql(v: i64) -> Hlc {
        Hlc(u64::try_from(v).unwrap_or(0))
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical_ms(), self.logical())
    }
}

/// The physical clock an HLC reads: Unix time in milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Now, as Unix time in milliseconds.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// Skew of a remote stamp against the local wall clock: remote physical
/// time minus `now_ms`, in milliseconds (positive: the remote is ahead).
pub fn skew_ms(remote: Hlc, now_ms: u64) -> i64 {
    let remote = i128::from(remote.physical_ms());
    let local = i128::from(now_ms);
    i64::try_from(remote - local).unwrap_or(if remote > local { i64::MAX } else { i64::MIN })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_physical_and_logical_apart() {
        let h = Hlc::new(1_800_000_000_123, 7);
        assert_eq!(h.physical_ms(), 1_800_000_000_123);
        assert_eq!(h.logical(), 7);
        assert_eq!(h.to_string(), "1800000000123.7");
        assert_eq!(Hlc::from_sql(h.to_sql()), h);
        assert_eq!(Hlc::from_sql(-5), Hlc(0));
    }

    #[test]
    fn local_events_follow_the_wall_clock_or_count() {
        let start = Hlc::default();
        let a = start.next(1_000);
        assert_eq!(a, Hlc::new(1_000, 0));
        // Same millisecond: the counter moves.
        let b = a.next(1_000);
        assert_eq!(b, Hlc::new(1_000, 1));
        // The wall clock went back (NTP step): still after b.
        let c = b.next(900);
        assert_eq!(c, Hlc::new(1_000, 2));
        // The wall clock moved on: counter resets.
        assert_eq!(c.next(1_001), Hlc::new(1_001, 0));
    }

    #[test]
    fn a_remote_stamp_ahead_is_absorbed() {
        let local = Hlc::new(1_000, 3);
        let remote = Hlc::new(61_000, 9);
        let after = local.observe(remote);
        assert_eq!(after, remote);
        // Next local event at wall clock 1_001 is still after the remote.
        let next = after.next(1_001);
        assert!(next > remote);
        assert_eq!(next, Hlc::new(61_000, 10));
        // An older remote stamp does not move the clock.
        assert_eq!(next.observe(Hlc::new(5, 0)), next);
        assert_eq!(skew_ms(remote, 1_000), 60_000);
        assert_eq!(skew_ms(Hlc::new(500, 0), 1_000), -500);
    }

    #[test]
    fn counter_overflow_carries_into_the_milliseconds() {
        let h = Hlc::new(1_000, u16::MAX);
        let n = h.next(1_000);
        assert_eq!(n, Hlc::new(1_001, 0));
        assert!(n > h);
    }
}
