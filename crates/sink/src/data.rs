//! The DATA phase: finding the end-of-data line and removing dot-stuffing
//! (RFC 5321 sections 4.1.1.4 and 4.5.2), incrementally over reads of any
//! size.
//!
//! Only `CRLF . CRLF` ends the data; a bare LF or bare CR never starts a new
//! line, so `LF . LF` and the like are kept as message content (no SMTP
//! smuggling). Lines are not length-checked: a sink accepts what comes.

/// Incremental reader of one message's data, after the 354 reply.
#[derive(Debug)]
pub(crate) struct DotReader {
    /// True when the next octet starts a line (start of data, or after CRLF).
    at_line_start: bool,
    /// Message octets seen so far, after unstuffing (also past the limit).
    size: usize,
    /// Octets kept at most; beyond it the body is dropped and only counted.
    limit: usize,
    /// The unstuffed body, exactly as sent (CRLF line ends included).
    body: Vec<u8>,
}

/// What [`DotReader::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Feed {
    /// The end-of-data line has not been seen yet: read more.
    NeedMore,
    /// The end-of-data line was consumed.
    Done,
}

impl DotReader {
    /// A reader for a message of at most `limit` octets.
    pub(crate) fn new(limit: usize) -> Self {
        DotReader {
            at_line_start: true,
            size: 0,
            limit,
            body: Vec::new(),
        }
    }

    /// Consumes data octets from `input`; returns how many were used and
    /// whether the end was reached. Unused octets (after the end, or a
    /// trailing `.`, `.\r` or `\r` that needs the next read to be decided)
    /// must be offered again with more data.
    pub(crate) fn feed(&mut self, input: &[u8]) -> (usize, Feed) {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            if self.at_line_start {
                if rest.starts_with(b".\r\n") {
                    return (pos + 3, Feed::Done);
                }
                if b".\r\n".starts_with(rest) {
                    return (pos, Feed::NeedMore);
                }
                if rest[0] == b'.' {
                    pos += 1;
                }
                self.at_line_start = false;
                continue;
            }
            match find_crlf(rest) {
                Some(cr) => {
                    self.push(&rest[..cr + 2]);
                    pos += cr + 2;
                    self.at_line_start = true;
                }
                None => {
                    let take = rest.len() - usize::from(rest.ends_with(b"\r"));
                    self.push(&rest[..take]);
                    return (pos + take, Feed::NeedMore);
                }
            }
        }
    }

    /// True if the message grew beyond the limit (its body was dropped).
    pub(crate) fn too_large(&self) -> bool {
        self.size > self.limit
    }

    /// The message size after unstuffing, counted even past the limit.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The unstuffed body (empty if [`too_large`](Self::too_large)).
    pub(crate) fn into_body(self) -> Vec<u8> {
        self.body
    }

    fn push(&mut self, octets: &[u8]) {
        self.size = self.size.saturating_add(octets.len());
        if self.size <= self.limit {
            self.body.extend_from_slice(octets);
        } else if !self.body.is_empty() {
            self.body = Vec::new();
        }
    }
}

/// Index of the first CR of the first CRLF in `buf`.
fn find_crlf(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(lf) = buf[from..].iter().position(|&b| b == b'\n') {
        let lf = from + lf;
        if lf > 0 && buf[lf - 1] == b'\r' {
            return Some(lf - 1);
        }
        from = lf + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in chunks of `chunk` octets, the way reads would arrive,
    /// keeping unused octets for the next round. Returns body and leftover.
    fn run(wire: &[u8], chunk: usize, limit: usize) -> Option<(DotReader, Vec<u8>)> {
        let mut reader = DotReader::new(limit);
        let mut pending = Vec::new();
        let mut pieces = wire.chunks(chunk);
        while let Some(piece) = pieces.next() {
            pending.extend_from_slice(piece);
            let (used, feed) = reader.feed(&pending);
            pending.drain(..used);
            if feed == Feed::Done {
                pending.extend(pieces.flatten());
                return Some((reader, pending));
            }
        }
        None
    }

    fn body_of(wire: &[u8]) -> Vec<u8> {
        let mut seen = None;
        for chunk in 1..=wire.len().max(1) {
            let (reader, _) = run(wire, chunk, usize::MAX).expect("end of data found");
            let body = reader.into_body();
            if let Some(previous) = &seen {
                assert_eq!(previous, &body, "chunk size {chunk} changed the result");
            }
            seen = Some(body);
        }
        seen.unwrap_or_default()
    }

    #[test]
    fn plain_message() {
        assert_eq!(
            body_of(b"Subject: x\r\n\r\nhello\r\n.\r\n"),
            b"Subject: x\r\n\r\nhello\r\n"
        );
    }

    #[test]
    fn empty_message() {
        assert_eq!(body_of(b".\r\n"), b"");
    }

    #[test]
    fn dot_stuffing_is_removed() {
        assert_eq!(
            body_of(b"..\r\n..leading\r\n...\r\nmid.dle\r\n.\r\n"),
            b".\r\n.leading\r\n..\r\nmid.dle\r\n"
        );
        assert_eq!(body_of(b".x\r\n.\r\n"), b"x\r\n");
    }

    #[test]
    fn only_crlf_dot_crlf_ends_data() {
        let wire = b"a\n.\nb\r.\r\nc\r\n.\n\r\n.\r\n";
        assert_eq!(body_of(wire), b"a\n.\nb\r.\r\nc\r\n\n\r\n");
        assert!(run(b"a\n.\n", 1, usize::MAX).is_none());
    }

    #[test]
    fn binary_and_bare_cr_kept() {
        let wire = b"\x00\xff\r\rx\r\n\r\n.\r\n";
        assert_eq!(body_of(wire), b"\x00\xff\r\rx\r\n\r\n");
    }

    #[test]
    fn octets_after_the_end_are_left() {
        let (reader, rest) = run(b"x\r\n.\r\nQUIT\r\n", 64, usize::MAX).unwrap();
        assert_eq!(reader.into_body(), b"x\r\n");
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn limit_drops_body_but_keeps_counting() {
        let (reader, _) = run(b"0123456789\r\n.\r\n", 4, 5).unwrap();
        assert!(reader.too_large());
        assert_eq!(reader.size(), 12);
        assert!(reader.into_body().is_empty());

        let (reader, _) = run(b"0123\r\n.\r\n", 4, 6).unwrap();
        assert!(!reader.too_large());
        assert_eq!(reader.into_body(), b"0123\r\n");
    }
}
