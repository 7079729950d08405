//! The SMTP server protocol engine: pure, no I/O, no async. An async driver
//! feeds it the client's bytes and gets [`Step`]s back (reply queued, ask
//! the backend MAIL/RCPT/DATA, forward message octets, start TLS, close),
//! then hands the backend's replies back in.
//!
//! One file per phase: [`ehlo`] (banner, HELO/EHLO), [`mail`] (MAIL
//! parameters), [`rcpt`] (the relay policy), [`data`] (the DATA reader and
//! its SMTP smuggling defence), [`bdat`] (CHUNKING: BDAT content to DATA
//! wire form), [`session`] (the state machine), [`limits`] (sizes and
//! counts), [`received`] (the trace header), [`replies`] (replies counted by
//! phase and class).
//!
//! ```
//! use mxgate_smtp::server::{Input, Limits, ServerConfig, Session, Step};
//!
//! let mut session = Session::new(ServerConfig {
//!     hostname: "mx.example.org".into(),
//!     relay_domains: vec!["example.org".into()],
//!     tls_available: false,
//!     limits: Limits::default(),
//! });
//! assert_eq!(session.take_output(), b"220 mx.example.org ESMTP mxgate\r\n");
//! let buf = b"HELO client.example\r\nMAIL FROM:<a@b.example>\r\n";
//! let Input { consumed, step } = session.input(buf);
//! assert_eq!(step, Step::Replied);
//! let Input { step, .. } = session.input(&buf[consumed..]);
//! assert!(matches!(step, Step::Mail { .. }));
//! ```

pub mod bdat;
pub mod data;
pub mod ehlo;
pub mod limits;
pub mod mail;
pub mod rcpt;
pub mod received;
pub mod replies;
pub mod session;
pub mod step;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bdat;
#[cfg(test)]
mod tests_data;

pub use bdat::BdatReader;
pub use data::{DataError, DataReader, Fed};
pub use limits::{Limits, ServerConfig};
pub use rcpt::{check_recipient, relay_denied};
pub use received::{received_header, ReceivedInfo};
pub use replies::{class_index, class_label, ReplyCounts, ReplyPhase, REPLY_CLASSES};
pub use session::{Helo, Session};
pub use step::{DataEnd, Input, Step};
