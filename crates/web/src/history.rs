//! The dashboard's short memory: every [`INTERVAL`] the web server samples
//! the gateway's cumulative counters (sessions ended, messages answered)
//! into a ring of [`CAPACITY`] samples (one hour), kept in memory only (a
//! restart starts a new hour). `GET /api/v1/history` returns the samples
//! with the rates per minute between neighbours; the Dashboard draws the
//! same rates as charts.

use crate::state::{lock, AppState, Inner};
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use utoipa::ToSchema;

/// Time between two samples.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Samples kept: one hour at [`INTERVAL`].
pub const CAPACITY: usize = 360;

/// The gateway's cumulative counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counters {
    /// Connections that ended, over every listener (accepted, rejected,
    /// tempfail, error).
    pub sessions: u64,
    /// smtp mode: transactions that got their end-of-data reply
    /// (accepted, rejected, tempfail).
    pub messages: u64,
}

/// One sample with the rates since the one before.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Sample {
    /// When it was taken (Unix ms).
    pub unix_ms: u64,
    /// The counters then.
    #[serde(flatten)]
    pub counters: Counters,
    /// Sessions per minute since the previous sample; `null` for the first
    /// one (or after a counter went back, e.g. a listener was removed).
    pub sessions_per_min: Option<f64>,
    /// Messages per minute since the previous sample, likewise.
    pub messages_per_min: Option<f64>,
}

/// A ring of samples, oldest first.
#[derive(Debug)]
pub struct History {
    samples: VecDeque<(u64, Counters)>,
    capacity: usize,
}

impl History {
    /// An empty history keeping at most `capacity` samples (at least one).
    pub fn new(capacity: usize) -> History {
        History {
            samples: VecDeque::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
        }
    }

    /// Adds a sample taken at `unix_ms`, dropping the oldest when full.
    pub fn push(&mut self, unix_ms: u64, counters: Counters) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back((unix_ms, counters));
    }

    /// Every sample, oldest first, with its rates.
    pub fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.samples.len());
        let mut previous: Option<(u64, Counters)> = None;
        for &(unix_ms, counters) in &self.samples {
            let rate = |pick: fn(&Counters) -> u64| {
                let (t0, c0) = previous?;
                let elapsed = unix_ms.checked_sub(t0).filter(|d| *d > 0)?;
                let delta = pick(&counters).checked_sub(pick(&c0))?;
                Some(delta as f64 * 60_000.0 / elapsed as f64)
            };
            out.push(Sample {
                unix_ms,
                counters,
                sessions_per_min: rate(|c| c.sessions),
                messages_per_min: rate(|c| c.messages),
            });
            previous = Some((unix_ms, counters));
        }
        out
    }
}

/// Milliseconds since the Unix epoch.
fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The gateway's counters now.
pub(crate) fn counters(state: &AppState) -> Counters {
    state
        .inner
        .gateway
        .listeners()
        .iter()
        .map(|l| l.connections)
        .fold(Counters::default(), |acc, c| Counters {
            sessions: acc.sessions + c.accepted + c.rejected + c.tempfail + c.error,
            messages: acc.messages
                + c.messages_accepted
                + c.messages_rejected
                + c.messages_tempfail,
        })
}

/// Takes one sample now.
pub(crate) fn sample(state: &AppState) {
    let counters = counters(state);
    lock(&state.inner.history).push(now_unix_ms(), counters);
}

/// Starts sampling `state` every [`INTERVAL`] (the first sample at once)
/// on the current Tokio runtime, when there is one. The task holds the
/// state weakly: it ends when the web server and everything else holding
/// the state are gone (or with the runtime).
pub(crate) fn start(state: &AppState) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<Inner> = Arc::downgrade(&state.inner);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            sample(&AppState { inner });
        }
    });
}

#[utoipa::path(get, path = "/api/v1/history", tag = "status",
    responses((status = 200, description = "The last hour of samples (every 10 s, oldest first): \
        cumulative sessions and messages with the rates per minute since the previous sample",
        body = [Sample])),
    security(("session" = [])))]
pub(crate) async fn handler(State(state): State<AppState>) -> Json<Vec<Sample>> {
    Json(lock(&state.inner.history).samples())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(sessions: u64, messages: u64) -> Counters {
        Counters { sessions, messages }
    }

    #[test]
    fn rates_are_per_minute_between_neighbours() {
        let mut h = History::new(10);
        h.push(0, c(0, 0));
        h.push(10_000, c(5, 2));
        h.push(20_000, c(5, 3));
        let s = h.samples();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].sessions_per_min, None);
        assert_eq!(s[1].sessions_per_min, Some(30.0));
        assert_eq!(s[1].messages_per_min, Some(12.0));
        assert_eq!(s[2].sessions_per_min, Some(0.0));
        assert_eq!(s[2].messages_per_min, Some(6.0));
    }

    #[test]
    fn the_ring_keeps_the_newest_samples() {
        let mut h = History::new(3);
        for i in 0..5 {
            h.push(i * 10_000, c(i, 0));
        }
        let s = h.samples();
        assert_eq!(
            s.iter().map(|s| s.unix_ms).collect::<Vec<_>>(),
            [20_000, 30_000, 40_000]
        );
        assert_eq!(s[0].sessions_per_min, None, "the oldest has no neighbour");
    }

    #[test]
    fn a_counter_that_went_back_or_a_clock_that_stood_still_has_no_rate() {
        let mut h = History::new(5);
        h.push(10_000, c(9, 9));
        h.push(20_000, c(2, 10));
        h.push(20_000, c(3, 11));
        let s = h.samples();
        assert_eq!(s[1].sessions_per_min, None);
        assert_eq!(s[1].messages_per_min, Some(6.0));
        assert_eq!(s[2].sessions_per_min, None);
    }

    #[test]
    fn an_hour_fits() {
        assert_eq!(CAPACITY as u64 * INTERVAL.as_secs(), 3600);
        assert!(History::new(0).samples().is_empty());
    }
}
