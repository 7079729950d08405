//! CHUNKING (RFC 3030): turning the octets of `BDAT` chunks into the wire
//! form of DATA for a backend that is spoken to with DATA.
//!
//! BDAT content is raw: no dot-stuffing, no end-of-data line, and a chunk
//! may end anywhere (even between the CR and the LF of a line end). The
//! [`BdatReader`] converts it, across chunks, into CRLF lines with every
//! line that starts with `.` given one more `.` in front, so the backend's
//! DATA reader sees exactly the message, and never an end-of-data line
//! inside it.
//!
//! The same rules as for DATA ([`super::data`]) apply, so that mxgate and a
//! backend never disagree on the message:
//!
//! - a bare CR or a bare LF anywhere (including a CR that ends the last
//!   chunk) taints the message: from then on nothing is forwarded, and at
//!   `LAST` the message is refused with `550 5.6.0` and never ends at the
//!   backend;
//! - a line longer than the line limit (content octets, without CRLF and
//!   without the stuffing dot) taints it with `552 5.6.0`;
//! - the size limit counts the BDAT octets themselves (not the stuffed
//!   form); the session refuses a chunk that would pass it before reading
//!   it ([`BdatReader::fits`]);
//! - a message whose content does not end with CRLF gets a CRLF appended
//!   (DATA can only carry whole lines); an empty message stays empty.

use super::data::DataError;

/// Incremental converter of BDAT content to dot-stuffed DATA wire form.
#[derive(Debug, Clone)]
pub struct BdatReader {
    /// At the start of a line (start of the message, or after CRLF).
    line_start: bool,
    /// A CR was read and waits for its LF (maybe in the next chunk).
    cr: bool,
    line_len: usize,
    size: u64,
    max_line: usize,
    max_size: u64,
    error: Option<DataError>,
}

impl BdatReader {
    /// A reader for lines of at most `max_line` octets (without CRLF) and
    /// messages of at most `max_size` octets.
    pub fn new(max_line: usize, max_size: u64) -> Self {
        BdatReader {
            line_start: true,
            cr: false,
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

    /// BDAT octets read so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True when `more` octets still fit in the size limit.
    pub fn fits(&self, more: u64) -> bool {
        self.size.saturating_add(more) <= self.max_size
    }

    /// Reads chunk octets and appends their wire form to `out` (nothing
    /// from an input in which the message is found tainted, nor after).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        for &octet in input {
            self.octet(octet, out);
        }
        self.size = self.size.saturating_add(input.len() as u64);
        if self.size > self.max_size {
            self.taint(DataError::TooLarge);
        }
        if self.error.is_some() {
            out.truncate(start);
        }
    }

    /// Ends the message (after the `LAST` chunk): a CR still waiting is a
    /// bare CR; an unfinished last line gets its CRLF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.cr {
            self.cr = false;
            self.taint(DataError::BareLineEnd);
        }
        if self.error.is_none() && !self.line_start {
            out.extend_from_slice(b"\r\n");
            self.line_start = true;
            self.line_len = 0;
        }
    }

    fn octet(&mut self, octet: u8, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.cr) {
            if octet == b'\n' {
                out.extend_from_slice(b"\r\n");
                self.line_start = true;
                self.line_len = 0;
                return;
            }
            self.taint(DataError::BareLineEnd);
        }
        match octet {
            b'\r' => self.cr = true,
            b'\n' => self.taint(DataError::BareLineEnd),
            _ => {
                if self.line_start && octet == b'.' {
                    out.push(b'.');
                }
                out.push(octet);
                self.line_start = false;
                self.line_len = self.line_len.saturating_add(1);
                if self.line_len > self.max_line {
                    self.taint(DataError::LineTooLong);
                }
            }
        }
    }

    fn taint(&mut self, error: DataError) {
        self.error.get_or_insert(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Converts `chunks` as one message; the wire form (if clean) and error.
    fn convert(chunks: &[&[u8]], max_line: usize) -> (Vec<u8>, Option<DataError>) {
        let mut reader = BdatReader::new(max_line, 1000);
        let mut out = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, &mut out);
        }
        reader.finish(&mut out);
        (out, reader.error())
    }

    #[test]
    fn dot_stuffing_across_chunks() {
        let (out, error) = convert(&[b"Subject: x\r\n\r\n.", b"dot\r", b"\n.\r\n..x\r\n"], 998);
        assert_eq!(error, None);
        assert_eq!(out, b"Subject: x\r\n\r\n..dot\r\n..\r\n...x\r\n");
    }

    #[test]
    fn missing_final_crlf_is_added_and_empty_stays_empty() {
        assert_eq!(convert(&[b"a\r\nb"], 998), (b"a\r\nb\r\n".to_vec(), None));
        assert_eq!(convert(&[b"", b""], 998), (Vec::new(), None));
        assert_eq!(convert(&[b"."], 998), (b"..\r\n".to_vec(), None));
    }

    #[test]
    fn bare_line_ends_taint() {
        for chunks in [
            &[&b"a\nb\r\n"[..]][..],
            &[b"a\rb\r\n"],
            &[b"a\r", b"b\r\n"],
            &[b"a\r\n", b"\r"],
            &[b"\r\n.\n"],
        ] {
            let (out, error) = convert(chunks, 998);
            assert_eq!(error, Some(DataError::BareLineEnd), "{chunks:?}");
            assert!(!out.windows(3).any(|w| w == b".\r\n" || w == b".\n\r"));
        }
    }

    #[test]
    fn long_line_and_size_taint() {
        assert_eq!(convert(&[b"abcd\r\n"], 3).1, Some(DataError::LineTooLong));
        assert_eq!(convert(&[b"abc\r\n"], 3).1, None);
        let mut reader = BdatReader::new(998, 10);
        assert!(reader.fits(10) && !reader.fits(11));
        let mut out = Vec::new();
        reader.feed(b"0123456789ab", &mut out);
        assert_eq!(reader.error(), Some(DataError::TooLarge));
        assert!(out.is_empty());
        assert_eq!(reader.size(), 12);
    }
}
