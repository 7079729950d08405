//! SMTP replies: the value type, its wire form, and a parser for replies read
//! from a server (RFC 5321 section 4.2).
//!
//! Grammar (RFC 5321 section 4.2):
//!
//! ```text
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF
//! Reply-code = %x32-35 %x30-35 %x30-39
//! ```
//!
//! Parsing is two-step, like every framer in this workspace: `Ok(None)` means
//! "not all of it is here yet" and is a normal outcome, not an error.
//!
//! Leniency: a bare LF is accepted as a line end, the way Postfix's SMTP
//! client accepts it, because some servers and middleboxes emit it and a
//! client gains nothing by refusing it. Line text that is not UTF-8 is kept
//! with U+FFFD replacements. Everything else in the grammar is enforced.

use std::fmt;

use thiserror::Error;

/// The longest reply line RFC 5321 section 4.5.3.1.5 allows, code and CRLF
/// included.
pub const MAX_REPLY_LINE: usize = 512;

/// One SMTP reply: a three-digit code and one or more lines of text.
///
/// An enhanced status code (RFC 3463, e.g. `2.1.0`) is not split out; it stays
/// at the start of each line's text, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code, 200..=559 for anything parsed by [`parse_reply`].
    pub code: u16,
    /// The text of each line, without code, separator or line ending. Must not
    /// contain CR or LF if the reply is to be written with [`fmt::Display`].
    pub lines: Vec<String>,
}

/// The first digit of a reply code (RFC 5321 section 4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyClass {
    /// 2yz: the requested action has been completed.
    PositiveCompletion,
    /// 3yz: accepted, more information is needed (354 after DATA).
    PositiveIntermediate,
    /// 4yz: not done, try again later.
    TransientNegative,
    /// 5yz: not done, do not repeat as is.
    PermanentNegative,
}

/// Why a reply could not be parsed. Always the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The line does not start with a code in 200..=559 (three digits, the
    /// second one 0..=5).
    #[error("reply line {line}: no valid reply code (three digits, 2xx to 5xx)")]
    InvalidCode {
        /// Zero-based index of the offending line within the reply.
        line: usize,
    },
    /// The octet after the code is neither SP, `-` nor the end of the line.
    #[error("reply line {line}: separator after the code is {found:#04x}, not ' ' or '-'")]
    InvalidSeparator {
        /// Zero-based index of the offending line within the reply.
        line: usize,
        /// The octet found instead.
        found: u8,
    },
    /// A continuation line carries a different code than the first line.
    #[error("reply line {line}: code {found} differs from {expected} on the first line")]
    CodeChanged {
        /// Zero-based index of the offending line within the reply.
        line: usize,
        /// The code of the first line.
        expected: u16,
        /// The code of this line.
        found: u16,
    },
    /// No line ending within [`MAX_REPLY_LINE`] octets.
    #[error("reply line {line}: longer than {MAX_REPLY_LINE} octets")]
    LineTooLong {
        /// Zero-based index of the offending line within the reply.
        line: usize,
    },
}

impl Reply {
    /// A one-line reply. `text` must not contain CR or LF.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A reply with several lines (EHLO keywords, for instance).
    pub fn multiline<I, S>(code: u16, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Reply {
            code,
            lines: lines.into_iter().map(Into::into).collect(),
        }
    }

    /// The class given by the first digit of the code, or `None` if the code
    /// is outside 200..=599 (only possible for a hand-built reply).
    pub fn class(&self) -> Option<ReplyClass> {
        match self.code / 100 {
            2 => Some(ReplyClass::PositiveCompletion),
            3 => Some(ReplyClass::PositiveIntermediate),
            4 => Some(ReplyClass::TransientNegative),
            5 => Some(ReplyClass::PermanentNegative),
            _ => None,
        }
    }

    /// True for 2yz and 3yz replies: the command was accepted.
    pub fn is_positive(&self) -> bool {
        matches!(
            self.class(),
            Some(ReplyClass::PositiveCompletion | ReplyClass::PositiveIntermediate)
        )
    }

    /// True for 4yz replies: a temporary failure.
    pub fn is_transient(&self) -> bool {
        self.class() == Some(ReplyClass::TransientNegative)
    }

    /// True for 5yz replies: a permanent failure.
    pub fn is_permanent(&self) -> bool {
        self.class() == Some(ReplyClass::PermanentNegative)
    }

    /// All lines joined with `\n`, for logs and error messages.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

impl fmt::Display for Reply {
    /// Writes the wire form: every line but the last as `code-text\r\n`, the
    /// last as `code text\r\n` (or `code\r\n` when its text is empty, as the
    /// grammar has no SP without text). A reply without lines is written as
    /// `code\r\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((last, rest)) = self.lines.split_last() else {
            return write!(f, "{:03}\r\n", self.code);
        };
        for line in rest {
            write!(f, "{:03}-{}\r\n", self.code, line)?;
        }
        if last.is_empty() {
            write!(f, "{:03}\r\n", self.code)
        } else {
            write!(f, "{:03} {}\r\n", self.code, last)
        }
    }
}

/// Parses one complete reply from the front of `buf`.
///
/// Returns `Ok(Some((reply, consumed)))` once the last line (code followed by
/// SP or by the line end) has arrived, `consumed` being the octets used;
/// `Ok(None)` when more input is needed; an error when a complete line breaks
/// the grammar or a line exceeds [`MAX_REPLY_LINE`] octets.
///
/// # Errors
///
/// [`ReplyError`] when the peer sent something that is not an SMTP reply.
///
/// ```
/// use mxgate_smtp::parse_reply;
/// let wire = b"250-mx.example\r\n250 PIPELINING\r\nrest";
/// let (reply, used) = parse_reply(wire).unwrap().unwrap();
/// assert_eq!(reply.code, 250);
/// assert_eq!(reply.lines, ["mx.example", "PIPELINING"]);
/// assert_eq!(&wire[used..], b"rest");
/// ```
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0;
    let mut code: Option<u16> = None;
    let mut lines = Vec::new();
    loop {
        let index = lines.len();
        let rest = &buf[pos..];
        let window = &rest[..rest.len().min(MAX_REPLY_LINE)];
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            if rest.len() >= MAX_REPLY_LINE {
                return Err(ReplyError::LineTooLong { line: index });
            }
            return Ok(None);
        };
        let content = match &rest[..lf] {
            [head @ .., b'\r'] => head,
            all => all,
        };
        let (line_code, last, text) = parse_line(content, index)?;
        match code {
            None => code = Some(line_code),
            Some(expected) if expected != line_code => {
                return Err(ReplyError::CodeChanged {
                    line: index,
                    expected,
                    found: line_code,
                })
            }
            Some(_) => {}
        }
        lines.push(String::from_utf8_lossy(text).into_owned());
        pos += lf + 1;
        if last {
            let code = line_code;
            return Ok(Some((Reply { code, lines }, pos)));
        }
    }
}

/// Splits one reply line (without its line ending) into code, "is last" and
/// text.
fn parse_line(content: &[u8], index: usize) -> Result<(u16, bool, &[u8]), ReplyError> {
    let invalid = ReplyError::InvalidCode { line: index };
    let Some(&[a, b, c]) = content.get(..3) else {
        return Err(invalid);
    };
    if !(b'2'..=b'5').contains(&a) || !(b'0'..=b'5').contains(&b) || !c.is_ascii_digit() {
        return Err(invalid);
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    match content.get(3) {
        None => Ok((code, true, &[])),
        Some(b' ') => Ok((code, true, &content[4..])),
        Some(b'-') => Ok((code, false, &content[4..])),
        Some(&found) => Err(ReplyError::InvalidSeparator { line: index, found }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EHLO: &[u8] = b"250-mx.example.org Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 ENHANCEDSTATUSCODES\r\n";

    #[test]
    fn parses_single_line() {
        let (reply, used) = parse_reply(b"220 mx.example ESMTP\r\n").unwrap().unwrap();
        assert_eq!(reply, Reply::new(220, "mx.example ESMTP"));
        assert_eq!(used, 22);
    }

    #[test]
    fn parses_multi_line_and_stops_after_last() {
        let mut wire = EHLO.to_vec();
        wire.extend_from_slice(b"221 bye\r\n");
        let (reply, used) = parse_reply(&wire).unwrap().unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(
            reply.lines,
            [
                "mx.example.org Hello",
                "PIPELINING",
                "SIZE 10240000",
                "ENHANCEDSTATUSCODES"
            ]
        );
        assert_eq!(used, EHLO.len());
    }

    #[test]
    fn every_prefix_of_a_multi_line_reply_is_incomplete() {
        for end in 0..EHLO.len() {
            assert_eq!(
                parse_reply(&EHLO[..end]),
                Ok(None),
                "prefix of {end} octets"
            );
        }
        assert!(parse_reply(EHLO).unwrap().is_some());
    }

    #[test]
    fn code_only_line_is_a_last_line() {
        let (reply, used) = parse_reply(b"250\r\n").unwrap().unwrap();
        assert_eq!(reply, Reply::new(250, ""));
        assert_eq!(used, 5);
        let (reply, _) = parse_reply(b"250-\r\n250 x\r\n").unwrap().unwrap();
        assert_eq!(reply.lines, ["", "x"]);
    }

    #[test]
    fn bare_lf_is_tolerated() {
        let (reply, used) = parse_reply(b"220-a\n220 b\n").unwrap().unwrap();
        assert_eq!(reply.lines, ["a", "b"]);
        assert_eq!(used, 12);
    }

    #[test]
    fn enhanced_status_stays_in_text() {
        let (reply, _) = parse_reply(b"550 5.1.1 <x@y>: unknown\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(reply.lines, ["5.1.1 <x@y>: unknown"]);
        assert!(reply.is_permanent());
    }

    #[test]
    fn rejects_bad_codes() {
        for bad in [
            &b"20 x\r\n"[..],
            b"abc x\r\n",
            b"120 x\r\n",
            b"620 x\r\n",
            b"260 x\r\n",
            b"2x0 x\r\n",
            b"\r\n",
            b"HTTP/1.1 400 Bad Request\r\n",
        ] {
            assert_eq!(
                parse_reply(bad),
                Err(ReplyError::InvalidCode { line: 0 }),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_reply(b"559 x\r\n").is_ok());
    }

    #[test]
    fn rejects_bad_separator() {
        assert_eq!(
            parse_reply(b"250-a\r\n250_b\r\n"),
            Err(ReplyError::InvalidSeparator {
                line: 1,
                found: b'_'
            })
        );
    }

    #[test]
    fn rejects_code_change() {
        assert_eq!(
            parse_reply(b"250-a\r\n251 b\r\n"),
            Err(ReplyError::CodeChanged {
                line: 1,
                expected: 250,
                found: 251
            })
        );
    }

    #[test]
    fn line_length_limit() {
        let mut ok = b"250 ".to_vec();
        ok.extend(std::iter::repeat_n(b'x', MAX_REPLY_LINE - 6));
        ok.extend_from_slice(b"\r\n");
        assert_eq!(ok.len(), MAX_REPLY_LINE);
        assert!(parse_reply(&ok).unwrap().is_some());

        let mut long = b"250-a\r\n250 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_REPLY_LINE));
        assert_eq!(parse_reply(&long), Err(ReplyError::LineTooLong { line: 1 }));
        assert_eq!(parse_reply(&long[..7 + MAX_REPLY_LINE - 1]), Ok(None));
    }

    #[test]
    fn class_and_predicates() {
        assert_eq!(
            Reply::new(250, "").class(),
            Some(ReplyClass::PositiveCompletion)
        );
        assert!(Reply::new(354, "").is_positive());
        assert!(Reply::new(421, "").is_transient());
        assert!(!Reply::new(421, "").is_positive());
        assert!(Reply::new(554, "").is_permanent());
        assert_eq!(Reply::new(199, "").class(), None);
        assert_eq!(Reply::new(600, "").class(), None);
    }

    #[test]
    fn display_emits_wire_form_and_round_trips() {
        let reply = Reply::multiline(250, ["mx.example.org Hello", "PIPELINING"]);
        let wire = reply.to_string();
        assert_eq!(wire, "250-mx.example.org Hello\r\n250 PIPELINING\r\n");
        assert_eq!(
            parse_reply(wire.as_bytes()).unwrap().unwrap(),
            (reply, wire.len())
        );
        assert_eq!(Reply::new(250, "").to_string(), "250\r\n");
        assert_eq!(
            Reply::multiline(250, Vec::<String>::new()).to_string(),
            "250\r\n"
        );
        assert_eq!(
            Reply::new(221, "2.0.0 Bye").to_string(),
            "221 2.0.0 Bye\r\n"
        );
    }

    #[test]
    fn non_utf8_text_is_replaced_not_rejected() {
        let (reply, _) = parse_reply(b"220 caf\xe9\r\n").unwrap().unwrap();
        assert_eq!(reply.lines, ["caf\u{fffd}"]);
    }
}
