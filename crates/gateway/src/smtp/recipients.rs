//! Recipient verification at the door, with a cache.
//!
//! Every accepted recipient domain is asked of the backend in real time (the
//! RCPT is relayed), so an unknown user is refused at RCPT time and nothing
//! is ever bounced later. This cache remembers the backend's answers per
//! pool: a recipient the backend called unknown (`5.1.x`) is refused again
//! from the cache for `negative_ttl` without touching a backend — a
//! dictionary attack costs the backends nothing — and recipients it accepted
//! are remembered for `positive_ttl` (for the checks that run before a
//! backend is asked, such as greylisting). Policy refusals (`5.7.x`) and
//! temporary answers are never cached: they may depend on the client or on
//! the moment.

use super::relay::{forward_data_phase, ClientIdentity, Relay, RelayError};
use mxgate_smtp::Reply;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most recipients one cache holds; beyond it expired entries are dropped,
/// and if that is not enough, everything (a cache, not a store).
const MAX_ENTRIES: usize = 100_000;

/// What the backend said about a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// Accepted.
    Valid,
    /// Refused as unknown, with the reply to repeat.
    Unknown(Reply),
}

/// The recipient answers of one pool's backends.
#[derive(Debug)]
pub struct RecipientCache {
    positive_ttl: Duration,
    negative_ttl: Duration,
    entries: Mutex<HashMap<String, (Known, Instant)>>,
}

impl RecipientCache {
    /// A cache keeping accepted recipients for `positive_ttl` and unknown
    /// ones for `negative_ttl` (zero = do not keep).
    pub fn new(positive_ttl: Duration, negative_ttl: Duration) -> RecipientCache {
        RecipientCache {
            positive_ttl,
            negative_ttl,
            entries: Mutex::default(),
        }
    }

    /// True when the cache was made with these TTLs.
    pub fn has_ttls(&self, positive: Duration, negative: Duration) -> bool {
        self.positive_ttl == positive && self.negative_ttl == negative
    }

    /// What is known about `rcpt` at `now`, if it has not expired.
    pub fn lookup(&self, rcpt: &str, now: Instant) -> Option<Known> {
        let entries = self.entries.lock().expect("recipient cache lock");
        let (known, until) = entries.get(&key(rcpt))?;
        (now < *until).then(|| known.clone())
    }

    /// Remembers the backend's `reply` to `RCPT TO:<rcpt>` at `now`.
    pub fn learn(&self, rcpt: &str, reply: &Reply, now: Instant) {
        let (known, ttl) = if reply.is_positive() {
            (Known::Valid, self.positive_ttl)
        } else if is_unknown_user(reply) {
            (Known::Unknown(reply.clone()), self.negative_ttl)
        } else {
            return;
        };
        if ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("recipient cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key(rcpt), (known, now + ttl));
    }
}

/// Recipients compare case-insensitively (the domain part must; the local
/// part in practice does at every backend we relay to).
fn key(rcpt: &str) -> String {
    rcpt.to_ascii_lowercase()
}

/// A permanent "no such user" (550/551/553 with a `5.1.x` status).
fn is_unknown_user(reply: &Reply) -> bool {
    matches!(reply.code, 550 | 551 | 553)
        && reply
            .lines
            .first()
            .is_some_and(|line| line.trim_start().starts_with("5.1."))
}

/// A [`Relay`] that answers RCPT from the [`RecipientCache`] when the
/// backend already called the recipient unknown, and teaches the cache
/// every backend answer.
pub struct CachingRelay<R> {
    inner: R,
    cache: Option<Arc<RecipientCache>>,
}

impl<R> CachingRelay<R> {
    /// Wraps `inner`; without a cache it only passes calls on.
    pub fn new(inner: R, cache: Option<Arc<RecipientCache>>) -> Self {
        CachingRelay { inner, cache }
    }
}

impl<R: Relay> Relay for CachingRelay<R> {
    fn identify(&mut self, client: &ClientIdentity) {
        self.inner.identify(client);
    }
    async fn mail(&mut self, from: &str, params: &str) -> Result<Reply, RelayError> {
        self.inner.mail(from, params).await
    }
    async fn rcpt(&mut self, to: &str, params: &str) -> Result<Reply, RelayError> {
        let Some(cache) = &self.cache else {
            return self.inner.rcpt(to, params).await;
        };
        if let Some(Known::Unknown(reply)) = cache.lookup(to, Instant::now()) {
            return Ok(reply);
        }
        let reply = self.inner.rcpt(to, params).await?;
        cache.learn(to, &reply, Instant::now());
        Ok(reply)
    }
    async fn rset(&mut self) {
        self.inner.rset().await;
    }
    forward_data_phase!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply::new(code, text)
    }

    #[test]
    fn unknown_users_are_remembered_until_the_ttl_ends() {
        let cache = RecipientCache::new(Duration::from_secs(3600), Duration::from_secs(600));
        let t0 = Instant::now();
        let unknown = reply(
            550,
            "5.1.1 <nobody@example.test>: Recipient address rejected",
        );
        cache.learn("Nobody@Example.test", &unknown, t0);
        assert_eq!(
            cache.lookup("nobody@example.test", t0 + Duration::from_secs(599)),
            Some(Known::Unknown(unknown))
        );
        assert_eq!(
            cache.lookup("nobody@example.test", t0 + Duration::from_secs(600)),
            None
        );
    }

    #[test]
    fn accepted_recipients_are_remembered_as_valid() {
        let cache = RecipientCache::new(Duration::from_secs(60), Duration::from_secs(60));
        let t0 = Instant::now();
        cache.learn("a@example.test", &reply(250, "2.1.5 Ok"), t0);
        assert_eq!(cache.lookup("a@example.test", t0), Some(Known::Valid));
    }

    #[test]
    fn policy_and_temporary_refusals_are_not_cached() {
        let cache = RecipientCache::new(Duration::from_secs(60), Duration::from_secs(60));
        let t0 = Instant::now();
        cache.learn(
            "a@example.test",
            &reply(554, "5.7.1 Relay access denied"),
            t0,
        );
        cache.learn("b@example.test", &reply(450, "4.1.1 try later"), t0);
        cache.learn("c@example.test", &reply(550, "5.7.1 blocked"), t0);
        for r in ["a@example.test", "b@example.test", "c@example.test"] {
            assert_eq!(cache.lookup(r, t0), None, "{r}");
        }
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = RecipientCache::new(Duration::ZERO, Duration::ZERO);
        let t0 = Instant::now();
        cache.learn("a@example.test", &reply(550, "5.1.1 unknown"), t0);
        assert_eq!(cache.lookup("a@example.test", t0), None);
    }
}
