//! SMTP grammar pieces shared by the gateway, the health checks and the sink:
//! replies ([`Reply`], [`parse_reply`]), command lines ([`Command`],
//! [`parse_command`]), line framing ([`find_line`]), the RFC 5322 date
//! ([`rfc5322_date`]) and the server protocol engine ([`server`]).
//!
//! Everything here is pure: byte slices in, values out, no I/O and no async.
//! Framing is two-step (find a whole frame, then parse it) and "incomplete"
//! is a normal outcome, so the same code serves servers, clients and tests.
//!
//! ```
//! use mxgate_smtp::{find_line, parse_command, Command, LineResult, MAX_COMMAND_LINE};
//!
//! let buf = b"EHLO client.example\r\nMAIL FROM:<>\r\n";
//! let LineResult::Line(len) = find_line(buf, MAX_COMMAND_LINE) else { panic!() };
//! assert_eq!(parse_command(&buf[..len]), Ok(Command::Ehlo("client.example")));
//! ```

pub mod command;
pub mod date;
pub mod line;
pub mod reply;
pub mod server;

pub use command::{parse_command, Command, CommandError};
pub use date::rfc5322_date;
pub use line::{find_line, LineResult, MAX_COMMAND_LINE};
pub use reply::{parse_reply, Reply, ReplyClass, ReplyError, MAX_REPLY_LINE};
