//! What the machine has been doing, for the web status page and for
//! post-mortems: the current state, since when, and the last
//! [`HISTORY_LEN`] transitions with their reasons.
//!
//! [`Status`] keeps [`Instant`]s, which mean nothing outside the process;
//! [`Status::report`] turns them into "milliseconds ago" for a given `now`
//! and is what gets serialized.

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;

use crate::{Reason, StateName};

/// How many transitions [`Status`] remembers.
pub const HISTORY_LEN: usize = 16;

/// One recorded transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When it happened.
    pub at: Instant,
    /// The state left.
    pub from: StateName,
    /// The state entered.
    pub to: StateName,
    /// Why.
    pub reason: Reason,
}

/// The current state and recent history of one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The virtual router this is about.
    pub vrid: u8,
    /// The current state.
    pub state: StateName,
    /// When the current state was entered (machine creation for Initialize).
    pub since: Instant,
    /// The effective priority (after tracking weights).
    pub priority: u8,
    /// The last [`HISTORY_LEN`] transitions, oldest first.
    pub transitions: VecDeque<Transition>,
}

impl Status {
    /// A virtual router in Initialize since `now`.
    pub fn new(vrid: u8, priority: u8, now: Instant) -> Status {
        Status {
            vrid,
            state: StateName::Initialize,
            since: now,
            priority,
            transitions: VecDeque::with_capacity(HISTORY_LEN),
        }
    }

    /// Record a transition, forgetting the oldest beyond [`HISTORY_LEN`].
    pub fn record(&mut self, transition: Transition) {
        if self.transitions.len() == HISTORY_LEN {
            self.transitions.pop_front();
        }
        self.state = transition.to;
        self.since = transition.at;
        self.transitions.push_back(transition);
    }

    /// A serializable snapshot with times relative to `now`, newest
    /// transition first.
    pub fn report(&self, now: Instant) -> StatusReport {
        let ago = |at: Instant| now.saturating_duration_since(at).as_millis() as u64;
        StatusReport {
            vrid: self.vrid,
            state: self.state,
            priority: self.priority,
            in_state_ms: ago(self.since),
            transitions: self
                .transitions
                .iter()
                .rev()
                .map(|t| TransitionReport {
                    ago_ms: ago(t.at),
                    from: t.from,
                    to: t.to,
                    reason: t.reason,
                    description: t.reason.description(),
                })
                .collect(),
        }
    }
}

/// [`Status`] with relative times, ready to serialize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    /// The virtual router.
    pub vrid: u8,
    /// The current state.
    pub state: StateName,
    /// The effective priority.
    pub priority: u8,
    /// Milliseconds since the current state was entered.
    pub in_state_ms: u64,
    /// Recent transitions, newest first.
    pub transitions: Vec<TransitionReport>,
}

/// One [`Transition`] with a relative time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransitionReport {
    /// Milliseconds since it happened.
    pub ago_ms: u64,
    /// The state left.
    pub from: StateName,
    /// The state entered.
    pub to: StateName,
    /// Why, as a stable code (`master_down`, `higher_priority`, ...).
    pub reason: Reason,
    /// Why, in words.
    pub description: &'static str,
}
