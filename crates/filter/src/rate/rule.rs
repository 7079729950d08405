//! Rate-limit rules: what they count by, what they limit, and their
//! validation.

use crate::reply::Reply;
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;

/// What a rule counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// The client address.
    ClientIp,
    /// The client's /24 (IPv4) or /64 (IPv6).
    ClientNet,
    /// The envelope sender, lowercased.
    Sender,
    /// The envelope sender's domain.
    SenderDomain,
    /// The recipient's domain.
    RecipientDomain,
}

impl RateKey {
    /// True for keys known at connect time.
    fn at_connect(self) -> bool {
        matches!(self, RateKey::ClientIp | RateKey::ClientNet)
    }
}

impl FromStr for RateKey {
    type Err = RateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "client_ip" => RateKey::ClientIp,
            "client_net" => RateKey::ClientNet,
            "sender" => RateKey::Sender,
            "sender_domain" => RateKey::SenderDomain,
            "recipient_domain" => RateKey::RecipientDomain,
            other => return Err(RateError::UnknownKey(other.to_string())),
        })
    }
}

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// New connections per window.
    Connections,
    /// Messages (MAIL commands) per window.
    Messages,
    /// Recipients (RCPT commands) per window.
    Recipients,
    /// Connections open at once.
    Concurrency,
}

impl Metric {
    /// Label for the verdict trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Connections => "connections",
            Metric::Messages => "messages",
            Metric::Recipients => "recipients",
            Metric::Concurrency => "concurrency",
        }
    }

    /// The reply sent when this limit is exceeded: `421 4.7.0` for
    /// connections and concurrency, `451 4.7.1` for messages and recipients.
    pub fn reply(self) -> Reply {
        match self {
            Metric::Connections => {
                Reply::new(421, "4.7.0", "Too many connections, try again later")
            }
            Metric::Concurrency => Reply::new(
                421,
                "4.7.0",
                "Too many concurrent connections, try again later",
            ),
            Metric::Messages => Reply::new(451, "4.7.1", "Too many messages, try again later"),
            Metric::Recipients => Reply::new(451, "4.7.1", "Too many recipients, try again later"),
        }
    }
}

/// One `[[rate_limit]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRule {
    /// What the rule counts by.
    pub key: RateKey,
    /// The period the limits apply to.
    pub window: Duration,
    /// New connections per window (client keys only).
    pub connections: Option<u32>,
    /// Messages per window (not by recipient domain).
    pub messages: Option<u32>,
    /// Recipients per window.
    pub recipients: Option<u32>,
    /// Connections open at once (client keys only).
    pub concurrency: Option<u32>,
}

/// An invalid rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RateError {
    /// Unknown `key`.
    #[error("rate_limit key {0:?} is not one of client_ip, client_net, sender, sender_domain, recipient_domain")]
    UnknownKey(String),
    /// Zero window.
    #[error("rate_limit rule {0}: window must be longer than zero")]
    ZeroWindow(usize),
    /// No limit set.
    #[error(
        "rate_limit rule {0}: set at least one of connections, messages, recipients, concurrency"
    )]
    NoLimit(usize),
    /// A limit of zero.
    #[error("rate_limit rule {0}: {1} = 0 refuses everything; use a block list instead")]
    ZeroLimit(usize, &'static str),
    /// A limit that cannot be counted by this key.
    #[error("rate_limit rule {0}: {1} cannot be limited by {2:?}")]
    Mismatch(usize, &'static str, RateKey),
}

impl RateRule {
    /// The configured limit for `m`, if any.
    pub fn limit(&self, m: Metric) -> Option<u32> {
        match m {
            Metric::Connections => self.connections,
            Metric::Messages => self.messages,
            Metric::Recipients => self.recipients,
            Metric::Concurrency => self.concurrency,
        }
    }

    /// Checks the rule (numbered `index` in messages).
    ///
    /// # Errors
    /// A [`RateError`] saying what is wrong.
    pub fn validate(&self, index: usize) -> Result<(), RateError> {
        if self.window.is_zero() {
            return Err(RateError::ZeroWindow(index));
        }
        let all = [
            Metric::Connections,
            Metric::Messages,
            Metric::Recipients,
            Metric::Concurrency,
        ];
        if all.iter().all(|m| self.limit(*m).is_none()) {
            return Err(RateError::NoLimit(index));
        }
        for m in all {
            if self.limit(m) == Some(0) {
                return Err(RateError::ZeroLimit(index, m.as_str()));
            }
        }
        for m in [Metric::Connections, Metric::Concurrency] {
            if self.limit(m).is_some() && !self.key.at_connect() {
                return Err(RateError::Mismatch(index, m.as_str(), self.key));
            }
        }
        if self.messages.is_some() && self.key == RateKey::RecipientDomain {
            return Err(RateError::Mismatch(index, "messages", self.key));
        }
        Ok(())
    }
}
