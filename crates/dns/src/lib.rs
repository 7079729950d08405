//! DNS for mxgate: a small async resolver (A, TXT) over `hickory-resolver`,
//! the DNSBL/DNSWL side of client screening and forward-confirmed reverse
//! DNS of clients.
//!
//! [`Resolver`] is built from [`ResolverSettings`] (explicit servers, as in the
//! node file's `[dns] servers`, or the system resolver). [`Resolver::dnsbl`]
//! asks every zone in parallel, each within the per-query timeout, and keeps
//! answers in a bounded [`DnsblCache`]. The scoring of the results belongs to
//! the filter crate; this crate only reports what each zone said.
//! [`Resolver::verified_reverse_name`] gives a client's forward-confirmed
//! reverse name ([`ReverseName`]), cached the same way.
//!
//! The `hickory-resolver` version here is the one mail-auth 0.13 uses (0.26),
//! so a later `mail_auth::MessageAuthenticator` can be built from
//! [`Resolver::hickory_config`] with the same servers.

mod cache;
mod dnsbl;
mod ptr;
mod resolver;

pub use cache::{DnsblCache, MAX_TTL, MIN_TTL};
pub use dnsbl::{dnsbl_query_name, DnsblOutcome, ZoneResult};
pub use ptr::{reverse_query_name, ReverseName, MAX_PTR_NAMES};
pub use resolver::{Answer, DnsError, Resolver, ResolverSettings, DEFAULT_CACHE_ENTRIES};
