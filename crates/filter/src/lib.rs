//! Pure filtering logic for mxgate's front door, shared by both gateways of
//! the pair.
//!
//! Nothing here does I/O, resolves names or reads the clock: callers hand in
//! addresses, DNS answers, a store and the time (`std::time::Instant` or unix
//! seconds), and get decisions back. That keeps every rule testable by
//! advancing time by hand.
//!
//! - [`lists`]: allow/block lists by client, reverse name, HELO, sender,
//!   sender domain and recipient, with the precedence rules.
//! - [`dnsbl`]: weighted DNSBL/DNSWL scoring, postscreen-style reply filters
//!   and query names.
//! - [`greylist`]: the greylisting state machine over a [`greylist::GreylistStore`].
//! - [`rate`]: token-bucket rate limits and concurrency limits.
//! - [`pregreet`]: the pregreet (talk-before-banner) decision.
//! - [`verdict`]: the verdict trail logged and stored per session.
//! - [`reply`]: the SMTP replies these checks produce.
//!
//! # Precedence between checks
//!
//! A block from a list at any stage refuses. Within one stage, block beats
//! allow. An allow skips DNSBL scoring, greylisting and rate limits for that
//! session (client/HELO allow) or transaction (sender/recipient allow); it does
//! not skip a block found at a later stage.

pub mod dnsbl;
pub mod greylist;
pub mod lists;
pub mod pregreet;
pub mod rate;
pub mod reply;
pub mod verdict;

pub use reply::Reply;
