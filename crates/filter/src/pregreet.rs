//! The pregreet test: a client that talks before the `220` banner is not a
//! real MTA waiting its turn (RFC 5321 §4.3.1), but a bot in a hurry.
//!
//! As in postscreen (`postscreen_greet_wait`, `postscreen_greet_action`),
//! the gateway waits `greet_wait_ms` before sending the banner and counts
//! the bytes received meanwhile; this module decides what that means:
//!
//! - `ignore`: note the failure in the trail, carry on (and do not allowlist
//!   the client as having passed screening);
//! - `reject`: carry on talking, but answer every command with
//!   `550 5.5.1 Protocol error` so the client's HELO, sender and recipients
//!   are still logged (postscreen's `enforce`);
//! - `drop`: send `521 5.5.1 Protocol error` and close at once.

use crate::reply::Reply;
use std::str::FromStr;
use thiserror::Error;

/// What to do with a client that talked before the banner (`greet_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GreetAction {
    /// Log only.
    Ignore,
    /// Reject every command with 550 (the default).
    #[default]
    Reject,
    /// Send 521 and disconnect.
    Drop,
}

/// An unknown `greet_action` value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("greet_action {0:?} is not one of ignore, reject, drop")]
pub struct GreetActionError(pub String);

impl FromStr for GreetAction {
    type Err = GreetActionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ignore" => Ok(GreetAction::Ignore),
            "reject" => Ok(GreetAction::Reject),
            "drop" => Ok(GreetAction::Drop),
            other => Err(GreetActionError(other.to_string())),
        }
    }
}

/// Outcome of the pregreet test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PregreetVerdict {
    /// Nothing arrived before the banner.
    Clean,
    /// The client talked early; logged only.
    Ignored,
    /// Answer every later command with this reply.
    Reject(Reply),
    /// Send this reply and close.
    Drop(Reply),
}

impl PregreetVerdict {
    /// Short label for the verdict trail and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            PregreetVerdict::Clean => "pass",
            PregreetVerdict::Ignored => "ignored",
            PregreetVerdict::Reject(_) => "reject",
            PregreetVerdict::Drop(_) => "drop",
        }
    }
}

/// Decides the pregreet test from the bytes received before the banner.
pub fn pregreet(bytes_before_banner: usize, action: GreetAction) -> PregreetVerdict {
    if bytes_before_banner == 0 {
        return PregreetVerdict::Clean;
    }
    match action {
        GreetAction::Ignore => PregreetVerdict::Ignored,
        GreetAction::Reject => PregreetVerdict::Reject(Reply::new(550, "5.5.1", "Protocol error")),
        GreetAction::Drop => PregreetVerdict::Drop(Reply::new(521, "5.5.1", "Protocol error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        assert_eq!(pregreet(0, GreetAction::Drop), PregreetVerdict::Clean);
        assert_eq!(pregreet(5, GreetAction::Ignore), PregreetVerdict::Ignored);
        let r = pregreet(5, GreetAction::Reject);
        assert_eq!(r.label(), "reject");
        assert!(matches!(r, PregreetVerdict::Reject(ref x) if x.code == 550));
        assert!(
            matches!(pregreet(1, GreetAction::Drop), PregreetVerdict::Drop(ref x) if x.code == 521)
        );
    }

    #[test]
    fn parses_action() {
        assert_eq!("drop".parse::<GreetAction>(), Ok(GreetAction::Drop));
        assert!("enforce".parse::<GreetAction>().is_err());
        assert_eq!(GreetAction::default(), GreetAction::Reject);
    }
}
