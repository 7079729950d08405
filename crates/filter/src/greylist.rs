//! Greylisting: temporarily refuse the first delivery attempt of an unknown
//! (client network, sender, recipient) triplet, and accept the retry.
//!
//! Pure state machine over a [`GreylistStore`] (the real one lives in the
//! SQLite store and is synced with the peer; [`MemoryStore`] serves tests).
//! Time is unix seconds passed in by the caller.
//!
//! - First attempt: record the triplet, defer (`451 4.7.1`).
//! - Retry before `delay`: defer again.
//! - Retry after `delay` and within `retry_window` of the first attempt: pass
//!   and record the pass. Later an unpassed entry starts over.
//! - A passed triplet passes for `lifetime` since it was last seen.
//! - A client network with `auto_allow_after` distinct passed triplets is
//!   auto-allowlisted (skips greylisting) for `lifetime` since last seen.
//!
//! Keying is pool-aware: the client is reduced to its /24 (IPv4) or /64
//! (IPv6) network; and when SPF passed for the sender's domain and
//! `spf_domain_keying` is on, the key is (SPF domain, recipient) with no
//! network at all, so senders retrying from another pool (Office 365 style)
//! still pass.

use crate::reply::Reply;
use ipnet::IpNet;
use std::net::IpAddr;
use std::time::Duration;
use thiserror::Error;

mod store;
pub use store::{
    ClientEntry, Entry, GreylistContext, GreylistStore, MemoryStore, Origin, Triplet, TripletKey,
};

/// Greylisting settings (`[greylist]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreylistSettings {
    /// Minimum wait before a retry passes. Default 300 s.
    pub delay: Duration,
    /// How long after the first attempt a retry still passes. Default 2 days.
    pub retry_window: Duration,
    /// How long passed triplets and auto-allowlisted networks live since last
    /// seen. Default 35 days.
    pub lifetime: Duration,
    /// IPv4 client network prefix. Default 24.
    pub ipv4_prefix: u8,
    /// IPv6 client network prefix. Default 64.
    pub ipv6_prefix: u8,
    /// Passed triplets after which a client network is auto-allowlisted;
    /// 0 = never. Default 5.
    pub auto_allow_after: u32,
    /// Key by SPF-validated sender domain instead of network and address.
    /// Default true.
    pub spf_domain_keying: bool,
    /// Skip greylisting when DMARC passed with alignment. Default true.
    pub skip_dmarc_pass: bool,
}

impl Default for GreylistSettings {
    fn default() -> Self {
        GreylistSettings {
            delay: Duration::from_secs(300),
            retry_window: Duration::from_secs(2 * 86_400),
            lifetime: Duration::from_secs(35 * 86_400),
            ipv4_prefix: 24,
            ipv6_prefix: 64,
            auto_allow_after: 5,
            spf_domain_keying: true,
            skip_dmarc_pass: true,
        }
    }
}

/// Invalid greylisting settings.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GreylistError {
    /// A prefix longer than the address.
    #[error("greylist {family} prefix {prefix} is longer than {max}")]
    Prefix {
        /// `ipv4` or `ipv6`.
        family: &'static str,
        /// As configured.
        prefix: u8,
        /// Upper bound.
        max: u8,
    },
    /// The retry window ends before the delay does.
    #[error("greylist retry window must be longer than the delay")]
    Window,
}

/// Why a triplet passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassReason {
    /// Retried after the delay, within the window.
    Retried,
    /// Passed before and still within its lifetime.
    Known,
}

/// Why greylisting was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// DMARC passed with alignment.
    DmarcPass,
    /// The client network is auto-allowlisted.
    AutoAllowed,
}

/// Outcome of [`Greylist::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreylistDecision {
    /// Accept.
    Pass(PassReason),
    /// Refuse for now; the client may retry after this many seconds.
    Defer {
        /// Seconds until a retry would pass.
        retry_after_s: u64,
    },
    /// Greylisting did not apply.
    Skipped(SkipReason),
}

impl GreylistDecision {
    /// `451 4.7.1` for [`GreylistDecision::Defer`], `None` otherwise.
    pub fn reply(&self) -> Option<Reply> {
        match self {
            GreylistDecision::Defer { .. } => Some(Reply::new(
                451,
                "4.7.1",
                "Greylisted, please try again later",
            )),
            _ => None,
        }
    }

    /// Short label for the verdict trail and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            GreylistDecision::Pass(PassReason::Retried) => "pass",
            GreylistDecision::Pass(PassReason::Known) => "known",
            GreylistDecision::Defer { .. } => "defer",
            GreylistDecision::Skipped(SkipReason::DmarcPass) => "skip_dmarc",
            GreylistDecision::Skipped(SkipReason::AutoAllowed) => "skip_auto_allow",
        }
    }
}

/// The greylisting policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greylist {
    settings: GreylistSettings,
}

impl Greylist {
    /// Validates the settings.
    ///
    /// # Errors
    /// [`GreylistError`] for prefixes out of range or a window not longer
    /// than the delay.
    pub fn new(settings: GreylistSettings) -> Result<Self, GreylistError> {
        if settings.ipv4_prefix > 32 {
            return Err(GreylistError::Prefix {
                family: "ipv4",
                prefix: settings.ipv4_prefix,
                max: 32,
            });
        }
        if settings.ipv6_prefix > 128 {
            return Err(GreylistError::Prefix {
                family: "ipv6",
                prefix: settings.ipv6_prefix,
                max: 128,
            });
        }
        if settings.retry_window <= settings.delay {
            return Err(GreylistError::Window);
        }
        Ok(Greylist { settings })
    }

    /// The settings.
    pub fn settings(&self) -> &GreylistSettings {
        &self.settings
    }

    /// The client network an address belongs to.
    pub fn client_net(&self, ip: IpAddr) -> IpNet {
        let ip = ip.to_canonical();
        let prefix = match ip {
            IpAddr::V4(_) => self.settings.ipv4_prefix,
            IpAddr::V6(_) => self.settings.ipv6_prefix,
        };
        // Prefixes are validated in `new`, so this cannot fail.
        IpNet::new(ip, prefix).map_or(IpNet::from(ip), |n| n.trunc())
    }

    /// The store key for an attempt.
    pub fn key(&self, triplet: &Triplet<'_>, ctx: &GreylistContext<'_>) -> TripletKey {
        let recipient = triplet.recipient.to_ascii_lowercase();
        let origin = match ctx.spf_pass_domain {
            Some(d) if self.settings.spf_domain_keying && !d.is_empty() => {
                Origin::SpfDomain(d.trim_end_matches('.').to_ascii_lowercase())
            }
            _ => Origin::Client {
                net: self.client_net(triplet.client),
                sender: triplet.sender.to_ascii_lowercase(),
            },
        };
        TripletKey { origin, recipient }
    }

    /// True when the store may delete this entry: passed and unseen for
    /// `lifetime`, or unpassed and past the retry window.
    pub fn is_expired(&self, entry: &Entry, now_unix_s: u64) -> bool {
        if entry.passed {
            now_unix_s.saturating_sub(entry.last_seen) > self.settings.lifetime.as_secs()
        } else {
            now_unix_s.saturating_sub(entry.first_seen) > self.settings.retry_window.as_secs()
        }
    }

    /// Decides one attempt and records it in the store.
    pub fn check<S: GreylistStore + ?Sized>(
        &self,
        store: &mut S,
        triplet: &Triplet<'_>,
        now_unix_s: u64,
        ctx: &GreylistContext<'_>,
    ) -> GreylistDecision {
        let s = &self.settings;
        let now = now_unix_s;
        if s.skip_dmarc_pass && ctx.dmarc_aligned_pass {
            return GreylistDecision::Skipped(SkipReason::DmarcPass);
        }
        let net = self.client_net(triplet.client);
        let client = store
            .get_client(&net)
            .filter(|c| now.saturating_sub(c.last_seen) <= s.lifetime.as_secs());
        if let Some(c) = client {
            if s.auto_allow_after > 0 && c.passed >= s.auto_allow_after {
                store.put_client(
                    &net,
                    ClientEntry {
                        last_seen: now,
                        ..c
                    },
                );
                return GreylistDecision::Skipped(SkipReason::AutoAllowed);
            }
        }

        let key = self.key(triplet, ctx);
        let fresh = Entry {
            first_seen: now,
            last_seen: now,
            passed: false,
        };
        let entry = match store.get(&key) {
            Some(e) if !self.is_expired(&e, now) => e,
            _ => {
                store.put(&key, fresh);
                return GreylistDecision::Defer {
                    retry_after_s: s.delay.as_secs(),
                };
            }
        };
        if entry.passed {
            store.put(
                &key,
                Entry {
                    last_seen: now,
                    ..entry
                },
            );
            return GreylistDecision::Pass(PassReason::Known);
        }
        let age = now.saturating_sub(entry.first_seen);
        if age < s.delay.as_secs() {
            store.put(
                &key,
                Entry {
                    last_seen: now,
                    ..entry
                },
            );
            return GreylistDecision::Defer {
                retry_after_s: s.delay.as_secs() - age,
            };
        }
        store.put(
            &key,
            Entry {
                last_seen: now,
                passed: true,
                ..entry
            },
        );
        let passed = client.map_or(0, |c| c.passed).saturating_add(1);
        store.put_client(
            &net,
            ClientEntry {
                passed,
                last_seen: now,
            },
        );
        GreylistDecision::Pass(PassReason::Retried)
    }
}

#[cfg(test)]
mod tests;
