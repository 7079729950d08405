//! Greylisting inputs and state as stored: the attempt ([`Triplet`],
//! [`GreylistContext`]), triplet keys, entries, the [`GreylistStore`] seam
//! and an in-memory store.

use ipnet::IpNet;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// Which client the triplet is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The client network and the lowercased envelope sender.
    Client {
        /// Client address truncated to the configured prefix.
        net: IpNet,
        /// Envelope sender, lowercased (`""` for the null sender).
        sender: String,
    },
    /// The SPF-validated sender domain, lowercased (any network).
    SpfDomain(String),
}

/// Store key of one triplet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TripletKey {
    /// Client part.
    pub origin: Origin,
    /// Envelope recipient, lowercased.
    pub recipient: String,
}

impl fmt::Display for TripletKey {
    /// A stable text form for the SQLite store and sync.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Client { net, sender } => write!(f, "net:{net} {sender} {}", self.recipient),
            Origin::SpfDomain(d) => write!(f, "spf:{d} {}", self.recipient),
        }
    }
}

/// What one delivery attempt looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triplet<'a> {
    /// Client address (IPv4-mapped IPv6 counts as IPv4).
    pub client: IpAddr,
    /// Envelope sender as given (`""` for the null sender).
    pub sender: &'a str,
    /// Envelope recipient as given.
    pub recipient: &'a str,
}

/// Authentication results known when greylisting runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GreylistContext<'a> {
    /// The sender domain SPF passed for, if it did.
    pub spf_pass_domain: Option<&'a str>,
    /// DMARC passed with an aligned identifier.
    pub dmarc_aligned_pass: bool,
}

/// Stored state of one triplet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Unix seconds of the first attempt.
    pub first_seen: u64,
    /// Unix seconds of the last attempt.
    pub last_seen: u64,
    /// The triplet has passed.
    pub passed: bool,
}

/// Stored state of one client network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientEntry {
    /// Distinct triplets passed from this network.
    pub passed: u32,
    /// Unix seconds the network was last seen passing or skipping.
    pub last_seen: u64,
}

/// Where greylisting state lives. The real store is SQLite, synced with the
/// peer; expiry of old rows is the store's job (see [`super::Greylist::is_expired`]).
pub trait GreylistStore {
    /// The triplet's entry, if any.
    fn get(&self, key: &TripletKey) -> Option<Entry>;
    /// Stores the triplet's entry.
    fn put(&mut self, key: &TripletKey, entry: Entry);
    /// The client network's entry, if any.
    fn get_client(&self, net: &IpNet) -> Option<ClientEntry>;
    /// Stores the client network's entry.
    fn put_client(&mut self, net: &IpNet, entry: ClientEntry);
}

/// An in-memory [`GreylistStore`] for tests and single-node use.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    /// Triplets.
    pub triplets: HashMap<TripletKey, Entry>,
    /// Client networks.
    pub clients: HashMap<IpNet, ClientEntry>,
}

impl GreylistStore for MemoryStore {
    fn get(&self, key: &TripletKey) -> Option<Entry> {
        self.triplets.get(key).copied()
    }
    fn put(&mut self, key: &TripletKey, entry: Entry) {
        self.triplets.insert(key.clone(), entry);
    }
    fn get_client(&self, net: &IpNet) -> Option<ClientEntry> {
        self.clients.get(net).copied()
    }
    fn put_client(&mut self, net: &IpNet, entry: ClientEntry) {
        self.clients.insert(*net, entry);
    }
}
