//! The DATA phase: finding the end of the message in the client's bytes,
//! incrementally, and deciding what may be forwarded to a backend.
//!
//! Rules (RFC 5321 sections 2.3.8, 4.1.1.4, 4.5.2), chosen so that mxgate
//! and any backend can never disagree on where a message ends (SMTP
//! smuggling):
//!
//! - only `CRLF . CRLF` ends the data (the first line may be `.CRLF` alone);
//!   `LF . LF`, `CR . CR`, `CRLF . LF`, `LF . CRLF`, `CRLF NUL . CRLF` are
//!   content, not an end;
//! - a bare LF or a bare CR anywhere taints the message: from that point
//!   nothing more is forwarded and, when the real end arrives, the message is
//!   refused with `550 5.6.0`; the backend never sees a final dot, so it
//!   delivers nothing;
//! - a line longer than [`Limits::max_line`](super::Limits::max_line) octets
//!   (without CRLF) or a message larger than the size limit taints it the
//!   same way (`552 5.6.0` / `552 5.3.4`); the message is read to its end,
//!   never cut in the middle;
//! - NUL and 8-bit octets are allowed (8BITMIME) and forwarded byte-exact;
//! - forwarded bytes are the client's bytes unchanged: still dot-stuffed,
//!   CRLF lines, without the final `.` line.
//!
//! The first taint wins: its reason is the one the client hears.
//!
//! At most two octets (`.`, `.CR`, or a `CR` at the end of the input) are
//! left unconsumed by [`DataReader::feed`]; everything else is consumed at
//! once, so a caller's buffer stays bounded whatever the client sends.

use crate::reply::Reply;

/// Why a message is refused at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataError {
    /// A CR not followed by LF, or an LF not preceded by CR.
    BareLineEnd,
    /// A text line longer than the line limit.
    LineTooLong,
    /// The message grew beyond the size limit.
    TooLarge,
}

impl From<DataError> for Reply {
    /// `550 5.6.0` for bare CR/LF, `552 5.6.0` for a long line, `552 5.3.4`
    /// for an oversized message.
    fn from(error: DataError) -> Self {
        match error {
            DataError::BareLineEnd => Reply::new(550, "5.6.0 Error: bare LF/CR not allowed"),
            DataError::LineTooLong => Reply::new(552, "5.6.0 Error: message line too long"),
            DataError::TooLarge => Reply::new(
                552,
                "5.3.4 Error: message size exceeds fixed maximum message size",
            ),
        }
    }
}

/// Where the reader stands between two octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// At the start of a line (start of data, or after CRLF).
    LineStart,
    /// Inside a line.
    Inside,
    /// After a CR inside a line: an LF must follow.
    Cr,
    /// After a `.` at the start of a line.
    Dot,
    /// After `.CR` at the start of a line: an LF ends the data.
    DotCr,
}

/// The outcome of one [`DataReader::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Octets of the input used; the rest must be offered again with more.
    pub consumed: usize,
    /// How many octets at the front of the input to forward to the backend
    /// (never more than `consumed`; 0 once the message is tainted).
    pub forward: usize,
    /// True when the end-of-data line was consumed.
    pub done: bool,
}

/// Incremental reader of one message's data, after the 354 reply.
#[derive(Debug, Clone)]
pub struct DataReader {
    at: At,
    line_len: usize,
    size: u64,
    max_line: usize,
    max_size: u64,
    error: Option<DataError>,
}

impl DataReader {
    /// A reader for lines of at most `max_line` octets (without CRLF) and
    /// messages of at most `max_size` octets.
    pub fn new(max_line: usize, max_size: u64) -> Self {
        DataReader {
            at: At::LineStart,
            line_len: 0,
            size: 0,
            max_line,
            max_size,
            error: None,
        }
    }

    /// Why the message will be refused, as soon as it is known.
    pub fn error(&self) -> Option<DataError> {
        self.error
    }

    /// Octets of message data seen so far (wire form, without the final `.`
    /// line), counted on past the size limit.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads as much of `input` as can be decided. See [`Fed`].
    pub fn feed(&mut self, input: &[u8]) -> Fed {
        // `safe` is where the last decided octet ends, with the state and
        // line length there; an undecided tail (`.`, `.CR`, `CR`) is given
        // back and read again with the next input.
        let mut safe = 0;
        let mut safe_at = self.at;
        let mut safe_line = self.line_len;
        for (index, &octet) in input.iter().enumerate() {
            let before = (self.at, self.line_len);
            let Some(next) = self.step(octet) else {
                // `.CRLF` at a line start: the end. `safe` is the `.`.
                self.finish(safe);
                self.at = At::LineStart;
                self.line_len = 0;
                return Fed {
                    consumed: index + 1,
                    forward: self.forwardable(safe),
                    done: true,
                };
            };
            self.at = next;
            self.line_len = self.line_len.saturating_add(1);
            if next == At::LineStart {
                if self.line_len - 2 > self.max_line {
                    self.taint(DataError::LineTooLong);
                }
                self.line_len = 0;
            } else if self.line_len > self.max_line.saturating_add(2) {
                self.taint(DataError::LineTooLong);
            }
            match next {
                At::LineStart | At::Inside => {
                    safe = index + 1;
                    safe_at = self.at;
                    safe_line = self.line_len;
                }
                At::Cr => {
                    // Everything before this CR is decided (a CR before it
                    // was a bare one); only the CR itself waits for its LF.
                    safe = index;
                    safe_at = match before.0 {
                        At::LineStart => At::LineStart,
                        _ => At::Inside,
                    };
                    safe_line = before.1;
                }
                At::Dot | At::DotCr => {}
            }
        }
        self.at = safe_at;
        self.line_len = safe_line;
        self.finish(safe);
        Fed {
            consumed: safe,
            forward: self.forwardable(safe),
            done: false,
        }
    }

    /// The state after `octet`, or `None` when it ends the data.
    fn step(&mut self, octet: u8) -> Option<At> {
        let next = match (self.at, octet) {
            (At::DotCr, b'\n') => return None,
            (At::Cr, b'\n') => At::LineStart,
            (At::Cr | At::DotCr, _) => {
                // A CR without its LF; this octet is read as inside a line.
                self.taint(DataError::BareLineEnd);
                match octet {
                    b'\r' => At::Cr,
                    _ => At::Inside,
                }
            }
            (_, b'\n') => {
                self.taint(DataError::BareLineEnd);
                At::Inside
            }
            (At::LineStart, b'.') => At::Dot,
            (At::Dot, b'\r') => At::DotCr,
            (_, b'\r') => At::Cr,
            (At::LineStart | At::Inside | At::Dot, _) => At::Inside,
        };
        Some(next)
    }

    /// Adds the `octets` decided message octets of this input to the size.
    fn finish(&mut self, octets: usize) {
        self.size = self.size.saturating_add(octets as u64);
        if self.size > self.max_size {
            self.taint(DataError::TooLarge);
        }
    }

    /// What may be forwarded of `decided` octets: all of them while the
    /// message is clean, nothing once it is tainted.
    fn forwardable(&self, decided: usize) -> usize {
        if self.error.is_none() {
            decided
        } else {
            0
        }
    }

    /// Records the first reason to refuse the message.
    fn taint(&mut self, error: DataError) {
        self.error.get_or_insert(error);
    }
}
