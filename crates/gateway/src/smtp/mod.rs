//! SMTP mode: mxgate speaks SMTP itself, screens and checks each
//! transaction, and relays it to a backend, answering the sender's end of
//! data only with the backend's own reply.
//!
//! - [`inbound`]: the SMTP server side, driving the pure engine of
//!   [`mxgate_smtp::server`] and relaying through a [`relay::Relay`].
//! - [`outbound`]: the SMTP client towards the backend ([`outbound::Backend`]).
//! - [`recipients`]: the per-pool cache of the backends' recipient answers.
//! - [`relay`]: the seam between the inbound and the outbound session.
//! - `session`: one smtp-mode connection from accept to its tracking report.

pub mod inbound;
pub mod outbound;
pub mod recipients;
pub mod relay;
pub(crate) mod session;

pub use session::SessionReport;
