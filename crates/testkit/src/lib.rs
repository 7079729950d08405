//! Test helpers for mxgate (not published).
//!
//! [`DnsServer`] is a small authoritative DNS server on loopback whose records
//! live in an in-memory table that tests change while it runs.

mod dns;

pub use dns::{DnsServer, RecordType};

#[cfg(test)]
mod tests;
