//! Bounded TTL caches: DNSBL answers keyed by (client IP, zone), and the
//! generic [`TtlCache`] under it (also used for reverse names, see
//! [`crate::Resolver::verified_reverse_name`]).
//!
//! Time is passed in explicitly ([`Instant`]) so the caches are unit-testable.
//! TTLs are clamped to [[`MIN_TTL`], [`MAX_TTL`]]; expired entries are dropped
//! when seen and before any eviction. When full, the entry that expires first
//! is evicted.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::dnsbl::DnsblOutcome;

/// Shortest time an answer is kept (even if its TTL is lower).
pub const MIN_TTL: Duration = Duration::from_secs(60);
/// Longest time an answer is kept (even if its TTL is higher).
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// A bounded map whose entries expire after their clamped TTL.
#[derive(Debug)]
pub(crate) struct TtlCache<K, V> {
    max_entries: usize,
    entries: HashMap<K, (V, Instant)>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    /// An empty cache holding at most `max_entries` values (0 disables it).
    pub(crate) fn new(max_entries: usize) -> Self {
        TtlCache {
            max_entries,
            entries: HashMap::new(),
        }
    }

    /// The value for `key` and the time it has left, if it has not expired
    /// at `now` (an expired entry is removed).
    pub(crate) fn get(&mut self, key: &K, now: Instant) -> Option<(V, Duration)> {
        let (value, expires) = self.entries.get(key)?;
        if *expires <= now {
            self.entries.remove(key);
            return None;
        }
        Some((value.clone(), *expires - now))
    }

    /// Stores `value` for the clamped `ttl` from `now` (evicting expired
    /// entries, then the one expiring first, when full) and returns the time
    /// it will be kept; zero when the cache is disabled.
    pub(crate) fn insert(&mut self, key: K, value: V, ttl: Duration, now: Instant) -> Duration {
        if self.max_entries == 0 {
            return Duration::ZERO;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            self.purge(now);
            if self.entries.len() >= self.max_entries {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(k, _)| k.clone());
                if let Some(soonest) = soonest {
                    self.entries.remove(&soonest);
                }
            }
        }
        let ttl = ttl.clamp(MIN_TTL, MAX_TTL);
        self.entries.insert(key, (value, now + ttl));
        ttl
    }

    /// Drops every entry expired at `now`.
    pub(crate) fn purge(&mut self, now: Instant) {
        self.entries.retain(|_, (_, expires)| *expires > now);
    }

    /// Number of entries held (expired ones included until purged).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Bounded cache of DNSBL outcomes per (IP, zone).
#[derive(Debug)]
pub struct DnsblCache {
    inner: TtlCache<(IpAddr, String), DnsblOutcome>,
}

/// Cache key for a zone: lower case, no trailing dot.
fn zone_key(zone: &str) -> String {
    zone.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsblCache {
    /// An empty cache holding at most `max_entries` answers (0 disables it).
    pub fn new(max_entries: usize) -> Self {
        DnsblCache {
            inner: TtlCache::new(max_entries),
        }
    }

    /// Clamps a TTL to [[`MIN_TTL`], [`MAX_TTL`]].
    pub fn clamp_ttl(ttl: Duration) -> Duration {
        ttl.clamp(MIN_TTL, MAX_TTL)
    }

    /// The cached outcome for `ip` in `zone` and the time it has left, if it
    /// has not expired at `now` (an expired entry is removed).
    pub fn get(
        &mut self,
        ip: IpAddr,
        zone: &str,
        now: Instant,
    ) -> Option<(DnsblOutcome, Duration)> {
        self.inner.get(&(ip, zone_key(zone)), now)
    }

    /// Stores `outcome` for `ip` in `zone` for the clamped `ttl` from `now`
    /// and returns the time it will be kept. `Failed` outcomes are not
    /// stored (a failing zone is asked again next time); they return zero.
    pub fn insert(
        &mut self,
        ip: IpAddr,
        zone: &str,
        outcome: DnsblOutcome,
        ttl: Duration,
        now: Instant,
    ) -> Duration {
        if matches!(outcome, DnsblOutcome::Failed(_)) {
            return Duration::ZERO;
        }
        self.inner.insert((ip, zone_key(zone)), outcome, ttl, now)
    }

    /// Drops every entry expired at `now`.
    pub fn purge(&mut self, now: Instant) {
        self.inner.purge(now);
    }

    /// Number of entries held (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.inner.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn ttl_is_clamped_and_entries_expire() {
        let mut cache = DnsblCache::new(10);
        let t0 = Instant::now();
        let listed = DnsblOutcome::Listed(vec![Ipv4Addr::new(127, 0, 0, 2)]);
        assert_eq!(
            cache.insert(
                ip(1),
                "zen.example",
                listed.clone(),
                Duration::from_secs(5),
                t0
            ),
            MIN_TTL
        );
        assert_eq!(
            cache.insert(
                ip(2),
                "zen.example",
                DnsblOutcome::NotListed,
                Duration::from_secs(86_400),
                t0
            ),
            MAX_TTL
        );
        assert_eq!(
            cache.insert(
                ip(3),
                "zen.example",
                DnsblOutcome::NotListed,
                Duration::from_secs(300),
                t0
            ),
            Duration::from_secs(300)
        );
        let at = t0 + Duration::from_secs(59);
        assert_eq!(
            cache.get(ip(1), "ZEN.example.", at),
            Some((listed, Duration::from_secs(1)))
        );
        assert_eq!(cache.get(ip(1), "zen.example", t0 + MIN_TTL), None);
        assert_eq!(cache.len(), 2, "expired entry dropped on get");
        assert!(cache
            .get(ip(2), "zen.example", t0 + Duration::from_secs(3599))
            .is_some());
        assert!(cache.get(ip(2), "zen.example", t0 + MAX_TTL).is_none());
        assert!(cache.get(ip(1), "other.example", t0).is_none());
        cache.purge(t0 + Duration::from_secs(301));
        assert!(cache.is_empty());
    }

    #[test]
    fn failures_are_not_cached() {
        let mut cache = DnsblCache::new(10);
        let t0 = Instant::now();
        let kept = cache.insert(
            ip(1),
            "z",
            DnsblOutcome::Failed("timeout".into()),
            MAX_TTL,
            t0,
        );
        assert_eq!(kept, Duration::ZERO);
        assert!(cache.is_empty());
        assert_eq!(
            DnsblCache::new(0).insert(ip(1), "z", DnsblOutcome::NotListed, MAX_TTL, t0),
            Duration::ZERO
        );
    }

    #[test]
    fn bounded_evicting_expired_then_soonest() {
        let mut cache = DnsblCache::new(2);
        let t0 = Instant::now();
        cache.insert(
            ip(1),
            "z",
            DnsblOutcome::NotListed,
            Duration::from_secs(100),
            t0,
        );
        cache.insert(
            ip(2),
            "z",
            DnsblOutcome::NotListed,
            Duration::from_secs(1000),
            t0,
        );
        cache.insert(
            ip(3),
            "z",
            DnsblOutcome::NotListed,
            Duration::from_secs(500),
            t0,
        );
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get(ip(1), "z", t0).is_none(),
            "soonest to expire evicted"
        );
        assert!(cache.get(ip(2), "z", t0).is_some());
        // Replacing an existing key does not evict another.
        cache.insert(
            ip(3),
            "z",
            DnsblOutcome::NotListed,
            Duration::from_secs(700),
            t0,
        );
        assert_eq!(cache.len(), 2);
        assert!(cache.get(ip(2), "z", t0).is_some());
        // Expired entries go first.
        let later = t0 + Duration::from_secs(701);
        cache.insert(
            ip(4),
            "z",
            DnsblOutcome::NotListed,
            Duration::from_secs(60),
            later,
        );
        assert!(cache.get(ip(2), "z", later).is_some());
        assert!(cache.get(ip(4), "z", later).is_some());
        assert!(cache.get(ip(3), "z", later).is_none());
    }
}
