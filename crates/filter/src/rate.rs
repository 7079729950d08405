//! Rate and concurrency limits (`[[rate_limit]]`), as token buckets keyed by
//! rule and key value, driven by an explicit `Instant`.
//!
//! Each limit is a bucket holding up to `limit` tokens that refills at
//! `limit / window`; an event takes one token, or is limited if none is left.
//! Connections and concurrency are checked at connect (`421 4.7.0`),
//! messages at MAIL and recipients at RCPT (`451 4.7.1`). An event is
//! checked against every applicable rule first and only then counted, so a
//! limited event uses no tokens.
//!
//! Concurrency is released explicitly: [`RateLimiter::connection`] returns a
//! [`ConcurrencyTicket`] that the caller hands back to
//! [`RateLimiter::release`] when the connection ends.
//!
//! Memory is bounded: [`RateLimiter::prune`] drops buckets idle for longer
//! than their window (they would be full again anyway), and at most
//! `max_keys` buckets are tracked; past that, the least recently used one is
//! dropped.

use crate::reply::Reply;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

mod rule;
pub use rule::{Metric, RateError, RateKey, RateRule};

/// An event refused by a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// Index of the rule in configured order.
    pub rule: usize,
    /// What was exceeded.
    pub metric: Metric,
    /// The key value (`192.0.2.0/24`, `example.org`, ...).
    pub key: String,
    /// `421 4.7.0` for connections/concurrency, `451 4.7.1` otherwise.
    pub reply: Reply,
}

/// Proof of the concurrency slots one connection holds; give it back with
/// [`RateLimiter::release`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "hand the ticket back with RateLimiter::release when the connection ends"]
pub struct ConcurrencyTicket {
    held: Vec<(usize, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

type BucketId = (usize, Metric, String);

/// The rate limiter state.
#[derive(Debug)]
pub struct RateLimiter {
    rules: Vec<RateRule>,
    buckets: HashMap<BucketId, Bucket>,
    active: HashMap<(usize, String), u32>,
    max_keys: usize,
}

fn key_value(key: RateKey, ip: IpAddr, sender: Option<&str>, rcpt: Option<&str>) -> Option<String> {
    let domain = |a: &str| {
        a.rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
    };
    let ip = ip.to_canonical();
    match key {
        RateKey::ClientIp => Some(ip.to_string()),
        RateKey::ClientNet => {
            let prefix = if ip.is_ipv4() { 24 } else { 64 };
            IpNet::new(ip, prefix).ok().map(|n| n.trunc().to_string())
        }
        RateKey::Sender => sender.map(|s| {
            if s.is_empty() {
                "<>".into()
            } else {
                s.to_ascii_lowercase()
            }
        }),
        RateKey::SenderDomain => sender.and_then(domain),
        RateKey::RecipientDomain => rcpt.and_then(domain),
    }
}

impl RateLimiter {
    /// Builds a limiter tracking at most `max_keys` buckets.
    ///
    /// # Errors
    /// The first invalid rule's [`RateError`].
    pub fn new(rules: Vec<RateRule>, max_keys: usize) -> Result<Self, RateError> {
        for (i, r) in rules.iter().enumerate() {
            r.validate(i)?;
        }
        Ok(RateLimiter {
            rules,
            buckets: HashMap::new(),
            active: HashMap::new(),
            max_keys: max_keys.max(1),
        })
    }

    /// Number of buckets tracked now.
    pub fn tracked_keys(&self) -> usize {
        self.buckets.len()
    }

    /// A new connection from `ip`: checks concurrency and connection rate.
    ///
    /// # Errors
    /// [`Limited`] with a `421 4.7.0` reply; nothing is counted then.
    pub fn connection(&mut self, ip: IpAddr, now: Instant) -> Result<ConcurrencyTicket, Limited> {
        let mut held = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let (Some(limit), Some(k)) = (rule.concurrency, key_value(rule.key, ip, None, None))
            else {
                continue;
            };
            let open = self.active.get(&(i, k.clone())).copied().unwrap_or(0);
            if open >= limit {
                return Err(limited(i, Metric::Concurrency, k));
            }
            held.push((i, k));
        }
        self.take(Metric::Connections, ip, None, None, now)?;
        for id in &held {
            *self.active.entry(id.clone()).or_insert(0) += 1;
        }
        Ok(ConcurrencyTicket { held })
    }

    /// Gives back the concurrency slots of a finished connection.
    pub fn release(&mut self, ticket: ConcurrencyTicket) {
        for id in ticket.held {
            if let Some(n) = self.active.get_mut(&id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.active.remove(&id);
                }
            }
        }
    }

    /// Connections open now under a rule and key value (for tests and the UI).
    pub fn open_connections(&self, rule: usize, key: &str) -> u32 {
        self.active
            .get(&(rule, key.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// A MAIL command: counts one message by client and sender keys.
    ///
    /// # Errors
    /// [`Limited`] with a `451 4.7.1` reply; nothing is counted then.
    pub fn message(&mut self, ip: IpAddr, sender: &str, now: Instant) -> Result<(), Limited> {
        self.take(Metric::Messages, ip, Some(sender), None, now)
    }

    /// A RCPT command: counts one recipient by every key.
    ///
    /// # Errors
    /// [`Limited`] with a `451 4.7.1` reply; nothing is counted then.
    pub fn recipient(
        &mut self,
        ip: IpAddr,
        sender: &str,
        recipient: &str,
        now: Instant,
    ) -> Result<(), Limited> {
        self.take(Metric::Recipients, ip, Some(sender), Some(recipient), now)
    }

    /// Drops buckets idle for longer than their rule's window.
    pub fn prune(&mut self, now: Instant) {
        let rules = &self.rules;
        self.buckets
            .retain(|(i, _, _), b| now.saturating_duration_since(b.last) <= rules[*i].window);
    }

    fn take(
        &mut self,
        m: Metric,
        ip: IpAddr,
        sender: Option<&str>,
        rcpt: Option<&str>,
        now: Instant,
    ) -> Result<(), Limited> {
        let mut ids = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let (Some(limit), Some(k)) = (rule.limit(m), key_value(rule.key, ip, sender, rcpt))
            else {
                continue;
            };
            let id = (i, m, k);
            let tokens = self
                .buckets
                .get(&id)
                .map_or(f64::from(limit), |b| refill(rule, limit, b, now));
            if tokens < 1.0 {
                return Err(limited(i, m, id.2));
            }
            ids.push((id, tokens));
        }
        for (id, tokens) in ids {
            if !self.buckets.contains_key(&id) && self.buckets.len() >= self.max_keys {
                self.make_room(now);
            }
            self.buckets.insert(
                id,
                Bucket {
                    tokens: tokens - 1.0,
                    last: now,
                },
            );
        }
        Ok(())
    }

    fn make_room(&mut self, now: Instant) {
        self.prune(now);
        if self.buckets.len() < self.max_keys {
            return;
        }
        let oldest = self
            .buckets
            .iter()
            .min_by_key(|(_, b)| b.last)
            .map(|(id, _)| id.clone());
        if let Some(id) = oldest {
            self.buckets.remove(&id);
        }
    }
}

fn refill(rule: &RateRule, limit: u32, b: &Bucket, now: Instant) -> f64 {
    let cap = f64::from(limit);
    let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
    (b.tokens + elapsed * cap / rule.window.as_secs_f64()).min(cap)
}

fn limited(rule: usize, metric: Metric, key: String) -> Limited {
    Limited {
        rule,
        metric,
        key,
        reply: metric.reply(),
    }
}

#[cfg(test)]
mod tests;
