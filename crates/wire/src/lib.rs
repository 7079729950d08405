//! Pure wire codecs for mxgate: byte layouts in, typed values out, and back.
//!
//! No I/O and no async: callers read bytes however they like and hand them
//! here. Each format follows the same shape (after smoltcp): a checked
//! zero-copy view where the format is binary, a plain `Repr` with `parse`,
//! `buffer_len` and `emit`, and tests against byte arrays from the spec.
//!
//! - [`proxy`]: HAProxy's PROXY protocol, versions 1 and 2.
//! - [`vrrp`]: VRRP version 3 advertisements (RFC 5798), IPv4 and IPv6.

pub mod proxy;
pub mod vrrp;
