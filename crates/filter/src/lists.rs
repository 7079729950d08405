//! Allow/block lists: match a session's client, reverse name, HELO, sender
//! and recipients against configured entries.
//!
//! # Precedence
//!
//! - Within one stage (client, HELO, sender, recipient), **block beats
//!   allow**: if both an allow and a block entry match, the verdict is
//!   [`Verdict::Block`].
//! - An [`Verdict::Allow`] at the client or HELO stage skips DNSBL scoring,
//!   greylisting and rate limits for the whole session; at the sender or
//!   recipient stage it skips them for that transaction (or recipient).
//! - A [`Verdict::Block`] at any stage refuses, even after an earlier allow:
//!   an allowed client sending from a blocked sender is refused.
//!
//! This is the "allow beats DNSBL, block beats allow".
//!
//! # Name patterns
//!
//! Reverse names, HELO names and sender domains are compared
//! case-insensitively, ignoring one trailing dot. A value written with a
//! leading dot (`.example.com`) matches strict subdomains only
//! (`mx.example.com`, not `example.com`), as in Postfix; list both to cover
//! the domain and its subdomains.

use ipnet::IpNet;
use std::net::IpAddr;
use thiserror::Error;

/// What an entry does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListAction {
    /// Skip reputation checks (DNSBL, greylisting, rate limits).
    Allow,
    /// Refuse.
    Block,
}

/// A name compared exactly or as a suffix (`.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    /// The whole name, lowercase, no trailing dot.
    Exact(String),
    /// Strict subdomains of this name (stored lowercase, without the
    /// leading dot).
    Suffix(String),
}

impl NamePattern {
    /// Parses `name` or `.suffix`.
    ///
    /// # Errors
    /// [`ListError::EmptyName`] when nothing is left after the dots.
    fn parse(kind: &'static str, value: &str) -> Result<Self, ListError> {
        let v = normalize_name(value);
        let (suffix, name) = match v.strip_prefix('.') {
            Some(rest) => (true, rest.to_string()),
            None => (false, v),
        };
        if name.is_empty() || name.starts_with('.') || name.contains("..") {
            return Err(ListError::EmptyName {
                kind,
                value: value.to_string(),
            });
        }
        Ok(if suffix {
            NamePattern::Suffix(name)
        } else {
            NamePattern::Exact(name)
        })
    }

    /// True if `name` (any case, optional trailing dot) matches.
    pub fn matches(&self, name: &str) -> bool {
        let name = normalize_name(name);
        match self {
            NamePattern::Exact(n) => name == *n,
            NamePattern::Suffix(s) => name
                .strip_suffix(s.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

/// What an entry matches against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Client address or network. IPv4-mapped IPv6 clients match IPv4 entries.
    Client(IpNet),
    /// The client's verified reverse name.
    ReverseName(NamePattern),
    /// The HELO/EHLO argument.
    Helo(NamePattern),
    /// The envelope sender address, lowercase.
    Sender(String),
    /// The envelope sender's domain.
    SenderDomain(NamePattern),
    /// An envelope recipient address, lowercase.
    Recipient(String),
}

/// One configured list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Allow or block.
    pub action: ListAction,
    /// What it matches.
    pub matcher: Matcher,
}

/// Why a list entry could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ListError {
    /// The kind is not one of the known keys.
    #[error("unknown list key {0:?}; expected client, reverse_name, helo, sender, sender_domain or recipient")]
    UnknownKind(String),
    /// A client value that is neither an address nor a CIDR network.
    #[error("client {value:?} is not an IP address or CIDR network: {reason}")]
    BadCidr {
        /// The value as written.
        value: String,
        /// What the parser said.
        reason: String,
    },
    /// A CIDR network with bits set after the prefix.
    #[error("client {value:?} has host bits set; did you mean {suggest}?")]
    HostBits {
        /// The value as written.
        value: String,
        /// The network with host bits cleared.
        suggest: String,
    },
    /// An empty domain or host name.
    #[error("{kind} {value:?} is an empty or malformed name")]
    EmptyName {
        /// The list key.
        kind: &'static str,
        /// The value as written.
        value: String,
    },
    /// An address without a local part or domain.
    #[error("{kind} {value:?} is not an address of the form local@domain")]
    BadAddress {
        /// The list key.
        kind: &'static str,
        /// The value as written.
        value: String,
    },
}

impl ListEntry {
    /// Parses one entry from its config key (`client`, `reverse_name`,
    /// `helo`, `sender`, `sender_domain`, `recipient`) and value.
    ///
    /// # Errors
    /// A [`ListError`] saying what is wrong with the value.
    pub fn parse(kind: &str, value: &str, action: ListAction) -> Result<ListEntry, ListError> {
        let value = value.trim();
        let matcher = match kind {
            "client" => Matcher::Client(parse_client(value)?),
            "reverse_name" => Matcher::ReverseName(NamePattern::parse("reverse_name", value)?),
            "helo" => Matcher::Helo(NamePattern::parse("helo", value)?),
            "sender" => Matcher::Sender(parse_address("sender", value)?),
            "sender_domain" => Matcher::SenderDomain(NamePattern::parse("sender_domain", value)?),
            "recipient" => Matcher::Recipient(parse_address("recipient", value)?),
            other => return Err(ListError::UnknownKind(other.to_string())),
        };
        Ok(ListEntry { action, matcher })
    }
}

fn parse_client(value: &str) -> Result<IpNet, ListError> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(IpNet::from(ip.to_canonical()));
    }
    let net: IpNet = value
        .parse()
        .map_err(|e: ipnet::AddrParseError| ListError::BadCidr {
            value: value.to_string(),
            reason: e.to_string(),
        })?;
    if net.trunc() != net {
        return Err(ListError::HostBits {
            value: value.to_string(),
            suggest: net.trunc().to_string(),
        });
    }
    Ok(net)
}

fn parse_address(kind: &'static str, value: &str) -> Result<String, ListError> {
    let v = value.to_ascii_lowercase();
    match v.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(v),
        _ => Err(ListError::BadAddress {
            kind,
            value: value.to_string(),
        }),
    }
}

fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The domain of an address (after the last `@`), if any.
fn domain_of(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}

/// Outcome of one list stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An allow entry matched (and no block entry did); the text says which.
    Allow(String),
    /// A block entry matched; the text says which.
    Block(String),
    /// Nothing matched.
    None,
}

impl Verdict {
    /// True for [`Verdict::Block`].
    pub fn is_block(&self) -> bool {
        matches!(self, Verdict::Block(_))
    }

    /// True for [`Verdict::Allow`]: DNSBL, greylisting and rate limits are
    /// skipped.
    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow(_))
    }
}

/// The configured allow and block lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lists {
    entries: Vec<ListEntry>,
}

impl Lists {
    /// Builds the lists from parsed entries (order does not matter).
    pub fn new(entries: Vec<ListEntry>) -> Self {
        Lists { entries }
    }

    /// The entries, in configured order.
    pub fn entries(&self) -> &[ListEntry] {
        &self.entries
    }

    /// Checks the client address and, when known, its verified reverse name.
    pub fn check_client(&self, ip: IpAddr, rdns: Option<&str>) -> Verdict {
        let canonical = ip.to_canonical();
        self.decide(|m| match m {
            Matcher::Client(net) if net.contains(&canonical) || net.contains(&ip) => {
                Some(format!("client {net}"))
            }
            Matcher::ReverseName(p) => rdns
                .filter(|name| p.matches(name))
                .map(|name| format!("reverse name {}", normalize_name(name))),
            _ => None,
        })
    }

    /// Checks the HELO/EHLO argument.
    pub fn check_helo(&self, helo: &str) -> Verdict {
        self.decide(|m| match m {
            Matcher::Helo(p) if p.matches(helo) => Some(format!("helo {}", normalize_name(helo))),
            _ => None,
        })
    }

    /// Checks the envelope sender (address and domain). The null sender
    /// (`""`) only matches nothing.
    pub fn check_sender(&self, sender: &str) -> Verdict {
        let lower = sender.to_ascii_lowercase();
        let domain = domain_of(&lower);
        self.decide(|m| match m {
            Matcher::Sender(a) if *a == lower => Some(format!("sender {a}")),
            Matcher::SenderDomain(p) => domain
                .filter(|d| p.matches(d))
                .map(|d| format!("sender domain {d}")),
            _ => None,
        })
    }

    /// Checks one envelope recipient.
    pub fn check_recipient(&self, recipient: &str) -> Verdict {
        let lower = recipient.to_ascii_lowercase();
        self.decide(|m| match m {
            Matcher::Recipient(a) if *a == lower => Some(format!("recipient {a}")),
            _ => None,
        })
    }

    /// Block beats allow; the first matching entry of the winning action
    /// gives the reason.
    fn decide(&self, matches: impl Fn(&Matcher) -> Option<String>) -> Verdict {
        let mut allow = None;
        for entry in &self.entries {
            if let Some(reason) = matches(&entry.matcher) {
                match entry.action {
                    ListAction::Block => return Verdict::Block(reason),
                    ListAction::Allow => {
                        allow.get_or_insert(reason);
                    }
                }
            }
        }
        allow.map_or(Verdict::None, Verdict::Allow)
    }
}

#[cfg(test)]
mod tests;
