//! Weighted DNSBL/DNSWL scoring, after Postfix postscreen.
//!
//! The DNS lookups happen elsewhere: this module builds the query names
//! ([`query_name`]), and turns the answers ([`ZoneAnswer`]) into a [`Score`].
//! Each listed zone adds its weight (negative for allowlists); a zone that
//! failed or timed out counts as not listed and is reported in
//! [`Score::failed`]. Reply filters ([`ReplyFilter`]) use postscreen's syntax:
//! `127.0.0.2`, `127.0.0.[2..11]`, `127.0.0.[2;4;6]`, `127.0.[0..255].[2..11]`.

use crate::reply::Reply;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use thiserror::Error;

/// Why a zone or reply filter is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DnsblError {
    /// The filter does not have four dot-separated octet patterns.
    #[error("reply filter {0:?} must have four dot-separated parts")]
    OctetCount(String),
    /// One octet pattern is not a number 0-255, `[a..b]` or `[a;b;...]`.
    #[error("reply filter {filter:?}: bad octet pattern {part:?}")]
    BadOctet {
        /// The whole filter.
        filter: String,
        /// The offending part.
        part: String,
    },
    /// A range whose start is above its end.
    #[error("reply filter {filter:?}: range {part:?} is reversed")]
    ReversedRange {
        /// The whole filter.
        filter: String,
        /// The offending range.
        part: String,
    },
    /// An empty or malformed zone name.
    #[error("DNSBL zone {0:?} is not a valid domain name")]
    BadZone(String),
}

/// Allowed values for one octet, as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OctetSet(Vec<(u8, u8)>);

impl OctetSet {
    fn contains(&self, v: u8) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= v && v <= hi)
    }
}

/// Which A-record answers count as "listed" (postscreen's `=pattern`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyFilter {
    text: String,
    octets: [OctetSet; 4],
}

impl ReplyFilter {
    /// Parses a filter such as `127.0.0.[2..11]` or `127.0.0.[2;4;6]`.
    /// Inside brackets, `;`-separated items may each be a number or a
    /// `a..b` range.
    ///
    /// # Errors
    /// A [`DnsblError`] naming the bad part.
    pub fn parse(text: &str) -> Result<ReplyFilter, DnsblError> {
        let text = text.trim();
        let parts: Vec<&str> = split_octets(text);
        if parts.len() != 4 {
            return Err(DnsblError::OctetCount(text.to_string()));
        }
        let mut sets = Vec::with_capacity(4);
        for part in parts {
            sets.push(parse_octet(text, part)?);
        }
        let octets: [OctetSet; 4] = sets
            .try_into()
            .map_err(|_| DnsblError::OctetCount(text.to_string()))?;
        Ok(ReplyFilter {
            text: text.to_string(),
            octets,
        })
    }

    /// True if the answer address matches.
    pub fn matches(&self, addr: Ipv4Addr) -> bool {
        addr.octets()
            .iter()
            .zip(&self.octets)
            .all(|(v, set)| set.contains(*v))
    }

    /// The filter as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Splits on dots outside brackets (`[2..11]` contains dots).
fn split_octets(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_octet(filter: &str, part: &str) -> Result<OctetSet, DnsblError> {
    let bad = || DnsblError::BadOctet {
        filter: filter.to_string(),
        part: part.to_string(),
    };
    let num = |s: &str| s.trim().parse::<u8>().map_err(|_| bad());
    if let Some(inner) = part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
        let mut ranges = Vec::new();
        for item in inner.split(';') {
            let range = match item.split_once("..") {
                Some((lo, hi)) => (num(lo)?, num(hi)?),
                None => {
                    let v = num(item)?;
                    (v, v)
                }
            };
            if range.0 > range.1 {
                return Err(DnsblError::ReversedRange {
                    filter: filter.to_string(),
                    part: item.to_string(),
                });
            }
            ranges.push(range);
        }
        Ok(OctetSet(ranges))
    } else {
        let v = num(part)?;
        Ok(OctetSet(vec![(v, v)]))
    }
}

/// One configured DNSBL or DNSWL zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// Zone name, lowercase, no trailing dot.
    pub name: String,
    /// Added to the score when listed; negative for allowlists (DNSWL).
    pub weight: i32,
    /// Which answers count; `None` = any answer.
    pub filter: Option<ReplyFilter>,
}

impl Zone {
    /// Validates a zone from config values.
    ///
    /// # Errors
    /// [`DnsblError::BadZone`] for an empty name, or a reply filter error.
    pub fn new(name: &str, weight: i32, filter: Option<&str>) -> Result<Zone, DnsblError> {
        let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if n.is_empty() || n.starts_with('.') || n.contains("..") || n.contains(char::is_whitespace)
        {
            return Err(DnsblError::BadZone(name.to_string()));
        }
        Ok(Zone {
            name: n,
            weight,
            filter: filter.map(ReplyFilter::parse).transpose()?,
        })
    }
}

/// The DNS name to look up for `ip` in `zone`: reversed octets for IPv4
/// (`2.0.0.127.zen.example`), reversed nibbles for IPv6. IPv4-mapped IPv6
/// addresses are looked up as IPv4.
pub fn query_name(zone: &str, ip: IpAddr) -> String {
    let mut out = String::new();
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            for o in v4.octets().iter().rev() {
                let _ = write!(out, "{o}.");
            }
        }
        IpAddr::V6(v6) => {
            for b in v6.octets().iter().rev() {
                let _ = write!(out, "{:x}.{:x}.", b & 0x0f, b >> 4);
            }
        }
    }
    out.push_str(zone.trim_end_matches('.'));
    out
}

/// What the resolver got for one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneResult {
    /// A records returned (NOERROR with answers).
    Listed(Vec<Ipv4Addr>),
    /// NXDOMAIN or no A records.
    NotListed,
    /// Timeout, SERVFAIL or similar; the text says what.
    Failed(String),
}

/// The answer for one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneAnswer {
    /// Zone name as configured.
    pub zone: String,
    /// What came back.
    pub result: ZoneResult,
}

/// A zone that counted towards the score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneMatch {
    /// Zone name.
    pub zone: String,
    /// Its weight.
    pub weight: i32,
    /// The answers that passed the reply filter.
    pub addrs: Vec<Ipv4Addr>,
}

/// The combined result of all zones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Score {
    /// Sum of the weights of listed zones.
    pub total: i32,
    /// Zones that listed the client.
    pub matched: Vec<ZoneMatch>,
    /// Zones that failed or gave no answer (counted as not listed).
    pub failed: Vec<String>,
}

/// What the score means for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsblVerdict {
    /// Below the threshold.
    Pass,
    /// At or above the threshold: refuse.
    Listed,
    /// At or below a negative allow threshold: skip further reputation checks.
    Allowlisted,
}

/// Scores the answers against the configured zones. A configured zone
/// without an answer is treated as failed.
pub fn score(zones: &[Zone], answers: &[ZoneAnswer]) -> Score {
    let mut s = Score::default();
    for zone in zones {
        let answer = answers.iter().find(|a| {
            a.zone
                .trim_end_matches('.')
                .eq_ignore_ascii_case(&zone.name)
        });
        match answer.map(|a| &a.result) {
            Some(ZoneResult::Listed(addrs)) => {
                let addrs: Vec<Ipv4Addr> = addrs
                    .iter()
                    .copied()
                    .filter(|a| zone.filter.as_ref().is_none_or(|f| f.matches(*a)))
                    .collect();
                if !addrs.is_empty() {
                    s.total = s.total.saturating_add(zone.weight);
                    s.matched.push(ZoneMatch {
                        zone: zone.name.clone(),
                        weight: zone.weight,
                        addrs,
                    });
                }
            }
            Some(ZoneResult::NotListed) => {}
            Some(ZoneResult::Failed(_)) | None => s.failed.push(zone.name.clone()),
        }
    }
    s
}

impl Score {
    /// Listed when `total >= threshold`; allowlisted when `allow_threshold`
    /// is negative and `total <= allow_threshold` (as postscreen, a zero or
    /// positive allow threshold disables allowlisting); pass otherwise.
    pub fn verdict(&self, threshold: i32, allow_threshold: i32) -> DnsblVerdict {
        if self.total >= threshold {
            DnsblVerdict::Listed
        } else if allow_threshold < 0 && self.total <= allow_threshold {
            DnsblVerdict::Allowlisted
        } else {
            DnsblVerdict::Pass
        }
    }

    /// Reply text for a refused client. Names the blocklists that matched
    /// only when `reveal` is set, so spammers cannot probe our config.
    pub fn reply_text(&self, reveal: bool) -> String {
        let listing: Vec<&str> = self
            .matched
            .iter()
            .filter(|m| m.weight > 0)
            .map(|m| m.zone.as_str())
            .collect();
        if reveal && !listing.is_empty() {
            format!(
                "Service unavailable; client blocked using {}",
                listing.join(", ")
            )
        } else {
            "Service unavailable; client address has a poor reputation".to_string()
        }
    }

    /// The full reply for a refused client: `550 5.7.1` plus
    /// [`Score::reply_text`].
    pub fn reply(&self, reveal: bool) -> Reply {
        Reply::new(550, "5.7.1", self.reply_text(reveal))
    }
}

#[cfg(test)]
mod tests;
