//! Line framing: finding one CRLF-terminated line at the front of a buffer.
//!
//! SMTP commands are lines ending in CRLF (RFC 5321 section 2.3.8). This
//! module only answers "is a whole line there yet, and how long is it"; it
//! never copies. Callers parse the line afterwards (two-step framing).
//!
//! A bare LF does *not* end a line here: SMTP servers must not treat a lone
//! LF as a line end (that is how SMTP smuggling works), so a bare LF stays
//! inside the line and the command parser rejects it.

/// The longest command line RFC 5321 section 4.5.3.1.4 allows, CRLF included.
pub const MAX_COMMAND_LINE: usize = 512;

/// The outcome of [`find_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineResult {
    /// A complete line is at the front of the buffer; the value is its length
    /// in octets, including the terminating CRLF.
    Line(usize),
    /// No CRLF yet, but the line could still fit: read more.
    Incomplete,
    /// No CRLF within the first `max` octets: the line is too long.
    TooLong,
}

/// Looks for the first CRLF in `buf` and reports whether a complete line of at
/// most `max` octets (CRLF included) is there.
///
/// Only the first `max` octets are examined, so the cost is bounded by `max`
/// whatever the buffer holds.
///
/// ```
/// use mxgate_smtp::{find_line, LineResult};
/// assert_eq!(find_line(b"NOOP\r\nQUIT\r\n", 512), LineResult::Line(6));
/// assert_eq!(find_line(b"NOOP\r", 512), LineResult::Incomplete);
/// assert_eq!(find_line(b"NOOPNOOP", 4), LineResult::TooLong);
/// ```
pub fn find_line(buf: &[u8], max: usize) -> LineResult {
    let window = &buf[..buf.len().min(max)];
    match window.windows(2).position(|pair| pair == b"\r\n") {
        Some(cr) => LineResult::Line(cr + 2),
        None if buf.len() >= max => LineResult::TooLong,
        None => LineResult::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_line_length_includes_crlf() {
        assert_eq!(find_line(b"QUIT\r\n", 512), LineResult::Line(6));
        assert_eq!(find_line(b"\r\n", 512), LineResult::Line(2));
        assert_eq!(find_line(b"A\r\nB\r\n", 512), LineResult::Line(3));
    }

    #[test]
    fn partial_lines_are_incomplete() {
        assert_eq!(find_line(b"", 512), LineResult::Incomplete);
        assert_eq!(find_line(b"QUI", 512), LineResult::Incomplete);
        assert_eq!(find_line(b"QUIT\r", 512), LineResult::Incomplete);
    }

    #[test]
    fn bare_lf_does_not_end_a_line() {
        assert_eq!(find_line(b"QUIT\n", 512), LineResult::Incomplete);
        assert_eq!(find_line(b"A\nB\r\n", 512), LineResult::Line(5));
    }

    #[test]
    fn limit_is_inclusive_of_crlf() {
        let mut exact = vec![b'x'; 510];
        exact.extend_from_slice(b"\r\n");
        assert_eq!(find_line(&exact, 512), LineResult::Line(512));

        let mut over = vec![b'x'; 511];
        over.extend_from_slice(b"\r\n");
        assert_eq!(find_line(&over, 512), LineResult::TooLong);
    }

    #[test]
    fn too_long_only_when_max_octets_seen() {
        assert_eq!(find_line(&[b'x'; 511], 512), LineResult::Incomplete);
        assert_eq!(find_line(&[b'x'; 512], 512), LineResult::TooLong);
        // A CR as the 512th octet cannot start a CRLF that fits.
        let mut cr_last = vec![b'x'; 511];
        cr_last.push(b'\r');
        assert_eq!(find_line(&cr_last, 512), LineResult::TooLong);
    }
}
