//! The library behind the web UI's Diagnostics page and DNS helper page.
//!
//! Diagnostics (each never fails as a whole: problems are data in the
//! report, so a page can show them):
//!
//! - [`mx_lookup`]: the MX hosts of a domain with their preferences and
//!   addresses, the implicit MX (RFC 5321 §5.1) and a null MX (RFC 7505).
//! - [`probe_smtp`]: connect to an SMTP server, time the banner, read the
//!   EHLO reply, run STARTTLS and show the certificate (subject, names,
//!   issuer, expiry) and whether it verifies against the public roots
//!   ([`webpki_roots_store`]) for the MX host name.
//! - [`send_test_message`]: one whole transaction with a unique Message-ID,
//!   every reply recorded; the last one names where the message landed.
//!
//! DNS helper (pure functions, no I/O):
//!
//! - [`zone_records`]: the zone lines to publish for the MX hosts in
//!   active-passive or active-active mode, with MTA-STS and TLS-RPT records
//!   and the TTL advice.
//! - [`mta_sts_policy`]: the `/.well-known/mta-sts.txt` body (RFC 8461).
//!
//! Their invalid inputs come back as [`FieldError`]s, each naming the field
//! and the reason, for the page to show next to the input.
//!
//! The SMTP client side reuses the health check's connection and TLS code
//! (`mxgate_balance::check`), so a probe here and a backend check speak SMTP
//! the same way. Every result type is `serde::Serialize` for the JSON API.

mod cert;
mod lookup;
mod message;
mod mta_sts;
mod mx;
mod names;
mod probe;
mod session;
mod steps;
mod tls;
mod zone;

pub use cert::{
    certificate_details, verify_chain, webpki_roots_store, CertificateDetails, ChainVerification,
};
pub use message::{send_test_message, TestMessageReport};
pub use mta_sts::{mta_sts_policy, validate_mx_pattern, MtaStsMode, MAX_MAX_AGE, MIN_MAX_AGE};
pub use mx::{mx_lookup, MxHost, MxOutcome, MxReport};
pub use names::FieldError;
pub use probe::{probe_smtp, ProbeReport};
pub use steps::{SmtpReply, StepError, StepTiming};
pub use tls::TlsDetails;
pub use zone::{
    zone_records, DeployMode, MxHostSpec, TtlAdvice, ZoneRecord, ZoneReport, ZoneRequest, LONG_TTL,
    SHORT_TTL,
};

use std::time::Duration;

/// A duration in milliseconds with microsecond precision, as the reports
/// show timings (a loopback banner arrives in well under a millisecond).
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
