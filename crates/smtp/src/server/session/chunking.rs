//! CHUNKING (RFC 3030) in the session: the `BDAT` command, reading its
//! chunks, and skipping the octets of refused ones.
//!
//! - `BDAT` is taken only after at least one accepted RCPT (otherwise 503,
//!   or 554 when every RCPT was refused, as for DATA); the first one asks
//!   the backend for DATA ([`Step::Data`]); on its 354 the chunks are read
//!   and converted ([`BdatReader`]) into [`Step::Chunk`]s;
//! - a non-`LAST` chunk is answered by this server: `250 2.0.0 <n> octets
//!   received` (nothing is accepted before `LAST`); the reply to `LAST` is
//!   the backend's final reply, or the refusal of the message (bare CR/LF,
//!   long line, backend failure) as for DATA;
//! - a chunk that would take the message past the size limit is refused at
//!   once with `552 5.3.4` and ends the transaction;
//! - DATA after BDAT in the same transaction is refused with 503; RSET or
//!   HELO/EHLO between chunks end it ([`Step::Abort`]);
//! - the octets of any refused `BDAT` (sequence, size, backend refusal of
//!   DATA) are read and dropped, never taken as commands, so chunks still in
//!   the pipeline after a failed one are discarded (RFC 3030 section 2). A
//!   `BDAT` line that does not parse gets 501 and its octets cannot be
//!   skipped (their count is unknown).

use super::{Phase, Session, NEED_MAIL, NEED_RCPT, SEND_HELO};
use crate::reply::Reply;
use crate::server::bdat::BdatReader;
use crate::server::limits::Limits;
use crate::server::replies::ReplyPhase;
use crate::server::step::{DataEnd, Input, Step};

/// The state of a BDAT transfer after the backend's 354.
#[derive(Debug)]
pub(super) struct Chunking {
    reader: BdatReader,
    /// Size of the current chunk.
    chunk: u64,
    /// Octets of the current chunk still to read.
    remaining: u64,
    /// True while a chunk's octets are read (after its BDAT line).
    reading: bool,
    /// True when the current chunk is the last.
    last: bool,
    /// Set when the backend failed: the reply given at `LAST`.
    failed: Option<Reply>,
}

impl Chunking {
    fn new(limits: &Limits, size: u64, last: bool) -> Self {
        Chunking {
            reader: BdatReader::new(limits.max_line, limits.max_message_size),
            chunk: size,
            remaining: size,
            reading: true,
            last,
            failed: None,
        }
    }

    /// True while a chunk's octets are read.
    pub(super) fn reading(&self) -> bool {
        self.reading
    }

    /// The backend failed: the message is refused with `reply` at `LAST`.
    pub(super) fn fail(&mut self, reply: Reply) {
        self.failed.get_or_insert(reply);
    }

    fn refused(&self) -> bool {
        self.reader.error().is_some() || self.failed.is_some()
    }
}

impl Session {
    /// `BDAT <size> [LAST]`.
    pub(super) fn bdat(&mut self, size: u64, last: bool) -> Step {
        let refusal = match &mut self.phase {
            Phase::Greeting => Reply::new(503, SEND_HELO),
            Phase::Ready(_) => Reply::new(503, NEED_MAIL),
            Phase::Mail(_, tx) if tx.attempted > 0 => {
                Reply::new(554, "5.5.1 Error: no valid recipients")
            }
            Phase::Mail(..) => Reply::new(503, NEED_RCPT),
            Phase::Data { .. } => return Step::NeedMore,
            Phase::Rcpt(..) => {
                if size > self.config.limits.max_message_size {
                    return self.too_large(size, size);
                }
                self.pending_bdat = Some((size, last));
                return Step::Data;
            }
            Phase::Chunk(_, chunking) => {
                if !chunking.reader.fits(size) {
                    let total = chunking.reader.size().saturating_add(size);
                    return self.too_large(size, total);
                }
                chunking.chunk = size;
                chunking.remaining = size;
                chunking.reading = true;
                chunking.last = last;
                return Step::Replied;
            }
        };
        self.skip = size;
        self.error(refusal)
    }

    /// The backend's reply to DATA asked for by the first BDAT.
    pub(super) fn bdat_reply(&mut self, reply: &Reply, size: u64, last: bool) -> bool {
        if reply.code != 354 {
            self.reply(reply);
            self.end_transaction();
            self.skip = size;
            return false;
        }
        self.phase = match std::mem::replace(&mut self.phase, Phase::Greeting) {
            Phase::Rcpt(helo, _) => {
                Phase::Chunk(helo, Chunking::new(&self.config.limits, size, last))
            }
            other => other,
        };
        true
    }

    /// A chunk of `size` octets would pass the size limit (`total` octets):
    /// 552 5.3.4, the chunk is skipped, the transaction ends.
    fn too_large(&mut self, size: u64, total: u64) -> Step {
        let reply = Reply::from(crate::server::DataError::TooLarge);
        self.end_transaction();
        self.skip = size;
        self.tag = ReplyPhase::EndOfData;
        self.reply(&reply);
        Step::Chunk {
            wire: Vec::new(),
            refused: true,
            end: Some(DataEnd::Refused { size: total, reply }),
        }
    }

    /// Reads octets of the current chunk.
    pub(super) fn chunk(&mut self, buf: &[u8]) -> Input {
        let Phase::Chunk(_, chunking) = &mut self.phase else {
            return need_more();
        };
        let take = usize::try_from(chunking.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if take == 0 && chunking.remaining > 0 {
            return need_more();
        }
        let mut wire = Vec::new();
        chunking.reader.feed(&buf[..take], &mut wire);
        chunking.remaining -= take as u64;
        if chunking.remaining > 0 || !chunking.last {
            let refused = chunking.refused();
            if refused {
                wire.clear();
            }
            if chunking.remaining == 0 {
                chunking.reading = false;
                let text = format!("2.0.0 {} octets received", chunking.chunk);
                self.tag = ReplyPhase::Data;
                self.reply(&Reply::new(250, text));
            }
            return Input {
                consumed: take,
                step: Step::Chunk {
                    wire,
                    refused,
                    end: None,
                },
            };
        }
        chunking.reader.finish(&mut wire);
        let size = chunking.reader.size();
        let refusal = match (chunking.reader.error(), chunking.failed.take()) {
            (Some(error), _) => Some(Reply::from(error)),
            (None, failed) => failed,
        };
        let refused = refusal.is_some();
        if refused {
            wire.clear();
        }
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
            consumed: take,
            step: Step::Chunk {
                wire,
                refused,
                end: Some(end),
            },
        }
    }

    /// Drops octets of a refused chunk.
    pub(super) fn skip(&mut self, buf: &[u8]) -> Input {
        let take = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if take == 0 {
            return need_more();
        }
        self.skip -= take as u64;
        Input {
            consumed: take,
            step: Step::Replied,
        }
    }
}

fn need_more() -> Input {
    Input {
        consumed: 0,
        step: Step::NeedMore,
    }
}
