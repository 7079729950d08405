//! Test helpers for mxgate (not published).
//!
//! [`DnsServer`] is a small authoritative DNS server on loopback whose records
//! live in an in-memory table that tests change while it runs (A, AAAA,
//! MX, PTR and TXT records, NXDOMAIN, SERVFAIL and slow answers).
//! [`DkimSigner25519`] signs test messages and publishes its key there.

mod dkim;
mod dns;

pub use dkim::{base64, DkimSigner25519};
pub use dns::{reverse_name, DnsServer, RecordType};

#[cfg(test)]
mod tests;
