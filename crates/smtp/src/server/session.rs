//! One inbound SMTP session as a pure state machine: bytes in, [`Step`]s
//! out, replies collected in an output buffer. The caller (the async driver)
//! does the I/O and the backend calls the steps ask for, and hands the
//! backend's replies back.
//!
//! Phases: `Greeting` (no HELO yet) → `Ready` (HELO/EHLO given) → `Mail`
//! (MAIL taken) → `Rcpt` (at least one recipient taken) → `Data` (354 sent,
//! message streaming) → `Ready`, or, with CHUNKING, `Rcpt` → `Chunk` (BDAT
//! chunks, in the `chunking` submodule) → `Ready`. Each phase holds only
//! what is valid in it.
//!
//! Every reply queued is counted by phase and class ([`ReplyCounts`]).

mod chunking;
mod envelope;

use super::data::DataReader;
use super::ehlo::{banner, ehlo_reply, helo_reply};
use super::limits::{ErrorCount, ServerConfig};
use super::rcpt::has_source_route;
use super::replies::{ReplyCounts, ReplyPhase};
use crate::command::{parse_command, Command};
use crate::line::{find_line, LineResult, MAX_COMMAND_LINE};
use crate::reply::Reply;
use chunking::Chunking;

pub use super::step::{DataEnd, Input, Step};

/// What the client said in HELO/EHLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helo {
    /// The HELO/EHLO argument.
    pub name: String,
    /// True after EHLO.
    pub esmtp: bool,
}

/// An open mail transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transaction {
    smtputf8: bool,
    /// RCPT commands tried (to tell "no RCPT" from "no valid RCPT").
    attempted: u32,
    /// Recipients the backend took.
    accepted: u32,
}

/// The phase of the session.
#[derive(Debug)]
enum Phase {
    Greeting,
    Ready(Helo),
    Mail(Helo, Transaction),
    Rcpt(Helo, Transaction),
    Data {
        helo: Helo,
        reader: DataReader,
        /// Set when the backend failed during the data: the reply given
        /// at the end.
        failed: Option<Reply>,
    },
    /// BDAT chunks after the backend's 354.
    Chunk(Helo, Chunking),
}

/// One server session. See the module documentation.
#[derive(Debug)]
pub struct Session {
    config: ServerConfig,
    phase: Phase,
    tls_active: bool,
    errors: ErrorCount,
    /// Skipping the rest of a command line longer than 512 octets.
    discarding: bool,
    closing: bool,
    output: Vec<u8>,
    /// Octets of a refused BDAT chunk still to be skipped.
    skip: u64,
    /// The first BDAT of a transaction (size, LAST), waiting for the
    /// backend's reply to DATA.
    pending_bdat: Option<(u64, bool)>,
    /// The phase the next reply queued is counted in.
    tag: ReplyPhase,
    replies: ReplyCounts,
}

const SEND_HELO: &str = "5.5.1 Error: send HELO/EHLO first";
const NEED_MAIL: &str = "5.5.1 Error: need MAIL command";
const NEED_RCPT: &str = "5.5.1 Error: need RCPT command";
const NESTED_MAIL: &str = "5.5.1 Error: nested MAIL command";
const IN_BDAT: &str = "5.5.1 Error: BDAT transfer in progress";

impl Session {
    /// A session with the banner queued.
    pub fn new(config: ServerConfig) -> Self {
        let mut session = Session {
            errors: ErrorCount::new(config.limits.max_errors),
            config,
            phase: Phase::Greeting,
            tls_active: false,
            discarding: false,
            closing: false,
            output: Vec::new(),
            skip: 0,
            pending_bdat: None,
            tag: ReplyPhase::Connect,
            replies: ReplyCounts::default(),
        };
        session.reply(&banner(&session.config.hostname));
        session
    }

    /// The queued output, taken (write it to the client).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// True while message data is being read (use the data timeout): after
    /// DATA's 354, inside a BDAT chunk, or skipping a refused chunk.
    pub fn in_data(&self) -> bool {
        match &self.phase {
            Phase::Data { .. } => true,
            Phase::Chunk(_, chunking) => chunking.reading() || self.skip > 0,
            _ => self.skip > 0,
        }
    }

    /// The replies queued so far, by phase and class.
    pub fn replies(&self) -> &ReplyCounts {
        &self.replies
    }

    /// True while a transaction is open at the backend (MAIL taken, no end
    /// yet): closing now needs an abort.
    pub fn transaction_open(&self) -> bool {
        matches!(
            self.phase,
            Phase::Mail(..) | Phase::Rcpt(..) | Phase::Data { .. } | Phase::Chunk(..)
        )
    }

    /// True after STARTTLS.
    pub fn tls_active(&self) -> bool {
        self.tls_active
    }

    /// The last HELO/EHLO, if one is in force.
    pub fn helo(&self) -> Option<&Helo> {
        match &self.phase {
            Phase::Greeting => None,
            Phase::Ready(helo) | Phase::Mail(helo, _) | Phase::Rcpt(helo, _) => Some(helo),
            Phase::Data { helo, .. } | Phase::Chunk(helo, _) => Some(helo),
        }
    }

    /// True once the session must close.
    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Reads the front of `buf`: one command line, or message data.
    pub fn input(&mut self, buf: &[u8]) -> Input {
        if self.closing {
            return Input {
                consumed: 0,
                step: Step::Close,
            };
        }
        if self.skip > 0 {
            return self.skip(buf);
        }
        if matches!(&self.phase, Phase::Chunk(_, chunking) if chunking.reading()) {
            return self.chunk(buf);
        }
        if self.in_data() {
            return self.data(buf);
        }
        if self.discarding {
            return self.discard(buf);
        }
        match find_line(buf, MAX_COMMAND_LINE) {
            LineResult::Incomplete => Input {
                consumed: 0,
                step: Step::NeedMore,
            },
            LineResult::TooLong => {
                self.discarding = true;
                self.discard(buf)
            }
            LineResult::Line(len) => Input {
                consumed: len,
                step: self.command(&buf[..len]),
            },
        }
    }

    /// The backend's reply to MAIL: queued as is; the transaction stays
    /// open only if it is positive.
    pub fn mail_reply(&mut self, reply: &Reply) {
        self.tag = ReplyPhase::Mail;
        if !reply.is_positive() {
            self.end_transaction();
        }
        self.reply(reply);
    }

    /// The backend's reply to RCPT: queued as is; a positive one counts as
    /// an accepted recipient.
    pub fn rcpt_reply(&mut self, reply: &Reply) {
        self.tag = ReplyPhase::Rcpt;
        if reply.is_positive() {
            self.phase = match std::mem::replace(&mut self.phase, Phase::Greeting) {
                Phase::Mail(helo, mut tx) | Phase::Rcpt(helo, mut tx) => {
                    tx.accepted += 1;
                    Phase::Rcpt(helo, tx)
                }
                other => other,
            };
        }
        self.reply(reply);
    }

    /// The backend's reply to DATA. On 354 the data phase starts (and this
    /// server's own 354 is queued; true is returned); any other reply is
    /// queued as is and the transaction stays where it was.
    ///
    /// After the first `BDAT` of a transaction: on 354 the chunk is read
    /// (nothing queued; true); any other reply is queued as is, the chunk's
    /// octets are skipped and the transaction ends (false, and
    /// [`Session::transaction_open`] is false: reset the backend).
    pub fn data_reply(&mut self, reply: &Reply) -> bool {
        self.tag = ReplyPhase::Data;
        if let Some((size, last)) = self.pending_bdat.take() {
            return self.bdat_reply(reply, size, last);
        }
        if reply.code != 354 {
            self.reply(reply);
            return false;
        }
        self.phase = match std::mem::replace(&mut self.phase, Phase::Greeting) {
            Phase::Rcpt(helo, _) => Phase::Data {
                helo,
                reader: DataReader::new(
                    self.config.limits.max_line,
                    self.config.limits.max_message_size,
                ),
                failed: None,
            },
            other => other,
        };
        self.reply(&Reply::new(354, "End data with <CR><LF>.<CR><LF>"));
        true
    }

    /// The backend's final reply to the message: queued exactly.
    pub fn message_reply(&mut self, reply: &Reply) {
        self.tag = ReplyPhase::EndOfData;
        self.reply(reply);
    }

    /// The backend failed (no reply): `reply` is the 451 for the client.
    /// Outside the data phase the transaction ends and the reply is queued
    /// now; during the data the message is read to its end first, and the
    /// reply given then.
    pub fn relay_failed(&mut self, reply: Reply) {
        match &mut self.phase {
            Phase::Data { failed, .. } => {
                failed.get_or_insert(reply);
                return;
            }
            Phase::Chunk(_, chunking) => {
                chunking.fail(reply);
                return;
            }
            _ => {}
        }
        if let Some((size, _)) = self.pending_bdat.take() {
            self.skip = size;
        }
        self.end_transaction();
        self.reply(&reply);
    }

    /// The client was silent too long: 421 4.4.2 queued, the session closes.
    pub fn timeout(&mut self) -> Step {
        self.tag = ReplyPhase::Other;
        let text = format!("4.4.2 {} Error: timeout exceeded", self.config.hostname);
        self.close(Reply::new(421, text))
    }

    fn command(&mut self, line: &[u8]) -> Step {
        self.tag = ReplyPhase::of_command(line);
        let command = match parse_command(line) {
            Ok(command) => command,
            Err(error) => return self.error(Reply::from(error)),
        };
        match command {
            Command::Helo(name) | Command::Ehlo(name) => {
                let esmtp = matches!(command, Command::Ehlo(_));
                let ended = self.local_end();
                self.phase = Phase::Ready(Helo {
                    name: name.to_owned(),
                    esmtp,
                });
                let reply = if esmtp {
                    ehlo_reply(&self.config, self.config.tls_available && !self.tls_active)
                } else {
                    helo_reply(&self.config)
                };
                self.reply(&reply);
                ended
            }
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, params } => self.rcpt(to, params, has_source_route(line)),
            Command::Data => match &self.phase {
                Phase::Greeting => self.error(Reply::new(503, SEND_HELO)),
                Phase::Ready(_) => self.error(Reply::new(503, NEED_MAIL)),
                Phase::Mail(_, tx) if tx.attempted > 0 => {
                    self.error(Reply::new(554, "5.5.1 Error: no valid recipients"))
                }
                Phase::Mail(..) => self.error(Reply::new(503, NEED_RCPT)),
                Phase::Rcpt(..) => Step::Data,
                Phase::Chunk(..) => self.error(Reply::new(503, "5.5.1 Error: DATA after BDAT")),
                Phase::Data { .. } => unreachable_in_data(),
            },
            Command::Rset => {
                let ended = self.local_end();
                self.end_transaction();
                self.reply(&Reply::new(250, "2.0.0 Ok"));
                ended
            }
            Command::Noop => self.replied(Reply::new(250, "2.0.0 Ok")),
            Command::Quit => self.close(Reply::new(221, "2.0.0 Bye")),
            Command::Vrfy(_) => self.replied(Reply::new(
                252,
                "2.5.2 Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Command::Help => self.replied(Reply::new(
                214,
                "2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS",
            )),
            Command::StartTls => self.starttls(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Unknown(verb) if verb.eq_ignore_ascii_case("EXPN") => {
                self.error(not_implemented())
            }
            Command::Unknown(_) => {
                self.error(Reply::new(500, "5.5.2 Error: command not recognized"))
            }
        }
    }

    fn data(&mut self, buf: &[u8]) -> Input {
        let Phase::Data { reader, failed, .. } = &mut self.phase else {
            return Input {
                consumed: 0,
                step: Step::NeedMore,
            };
        };
        let fed = reader.feed(buf);
        let refused = reader.error().is_some() || failed.is_some();
        let forward = if failed.is_some() { 0 } else { fed.forward };
        if !fed.done {
            return Input {
                consumed: fed.consumed,
                step: Step::Message {
                    forward,
                    refused,
                    end: None,
                },
            };
        }
        let size = reader.size();
        let refusal = match (reader.error(), failed.take()) {
            (Some(error), _) => Some(Reply::from(error)),
            (None, failed) => failed,
        };
        self.end_transaction();
        self.tag = ReplyPhase::EndOfData;
        let end = match refusal {
            Some(reply) => {
                self.reply(&reply);
                DataEnd::Refused { size, reply }
            }
            None => DataEnd::Complete { size },
        };
        Input {
            consumed: fed.consumed,
            step: Step::Message {
                forward,
                refused,
                end: Some(end),
            },
        }
    }

    /// Skips a too-long command line up to its CRLF, then answers it.
    fn discard(&mut self, buf: &[u8]) -> Input {
        match buf.windows(2).position(|pair| pair == b"\r\n") {
            Some(cr) => {
                self.discarding = false;
                self.tag = ReplyPhase::Other;
                let step = self.error(Reply::new(500, "5.5.2 Error: line too long"));
                Input {
                    consumed: cr + 2,
                    step,
                }
            }
            None => Input {
                consumed: buf.len() - usize::from(buf.ends_with(b"\r")),
                step: Step::NeedMore,
            },
        }
    }

    /// Back to `Ready` (or `Greeting`), dropping any transaction.
    fn end_transaction(&mut self) {
        self.phase = match std::mem::replace(&mut self.phase, Phase::Greeting) {
            Phase::Greeting => Phase::Greeting,
            Phase::Ready(helo) | Phase::Mail(helo, _) | Phase::Rcpt(helo, _) => Phase::Ready(helo),
            Phase::Data { helo, .. } | Phase::Chunk(helo, _) => Phase::Ready(helo),
        };
    }

    /// The step for a transaction ended by this server (RSET, HELO/EHLO):
    /// abort a backend reading BDAT data, reset one in a transaction.
    fn local_end(&self) -> Step {
        match self.phase {
            Phase::Chunk(..) => Step::Abort,
            _ if self.transaction_open() => Step::Reset,
            _ => Step::Replied,
        }
    }

    fn reply(&mut self, reply: &Reply) {
        self.replies.add(self.tag, reply.code);
        self.output.extend_from_slice(reply.to_string().as_bytes());
    }

    fn replied(&mut self, reply: Reply) -> Step {
        self.reply(&reply);
        Step::Replied
    }

    /// Queues an error made up by this server and counts it; at the limit
    /// the session closes with 421 4.7.0.
    fn error(&mut self, reply: Reply) -> Step {
        self.reply(&reply);
        if self.errors.bump() {
            self.tag = ReplyPhase::Other;
            let text = format!("4.7.0 {} Error: too many errors", self.config.hostname);
            return self.close(Reply::new(421, text));
        }
        Step::Replied
    }

    fn close(&mut self, reply: Reply) -> Step {
        self.reply(&reply);
        self.closing = true;
        Step::Close
    }
}

/// The reply for recognised commands this server does not implement.
fn not_implemented() -> Reply {
    Reply::new(502, "5.5.1 Error: command not implemented")
}

/// Commands are never read in the data phase ([`Session::input`] reads
/// data there); answering `NeedMore` keeps this total without a panic.
fn unreachable_in_data() -> Step {
    Step::NeedMore
}
