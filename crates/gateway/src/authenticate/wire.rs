//! Byte work on a held message in DATA wire form (CRLF lines, dot-stuffed,
//! without the final `.` line): undoing the dot-stuffing for the
//! verifiers, and removing `Authentication-Results:` fields that claim to
//! come from this gateway (RFC 8601 §5: a receiver must not let a sender
//! forge its own results).

use std::borrow::Cow;

/// The message as written by its sender: the leading `.` of every
/// dot-stuffed line removed (RFC 5321 §4.5.2).
pub(crate) fn unstuff(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire.len());
    for line in wire.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

/// `wire` without the header fields `Authentication-Results:` whose
/// authserv-id is `authserv_id` (case-insensitive), folded lines included.
/// Only the header section is looked at; the body is never changed.
pub(crate) fn strip_own_results<'a>(wire: &'a [u8], authserv_id: &str) -> Cow<'a, [u8]> {
    const NAME: &[u8] = b"authentication-results:";
    let mut kept: Option<Vec<u8>> = None;
    let mut dropping = false;
    let mut at = 0;
    for line in wire.split_inclusive(|&b| b == b'\n') {
        let start = at;
        at += line.len();
        if line == b"\r\n" || line == b"\n" {
            // End of the header section: the rest is kept as is.
            if let Some(out) = kept.as_mut() {
                out.extend_from_slice(&wire[start..]);
            }
            break;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            dropping = line.len() > NAME.len()
                && line[..NAME.len()].eq_ignore_ascii_case(NAME)
                && authserv_id_of(&line[NAME.len()..]).eq_ignore_ascii_case(authserv_id);
            if dropping && kept.is_none() {
                kept = Some(wire[..start].to_vec());
            }
        }
        if !dropping {
            if let Some(out) = kept.as_mut() {
                out.extend_from_slice(line);
            }
        }
    }
    match kept {
        Some(out) => Cow::Owned(out),
        None => Cow::Borrowed(wire),
    }
}

/// The authserv-id at the start of a field value: the first token, up to
/// `;`, a comment or white space.
fn authserv_id_of(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    text.trim_start()
        .split(|c: char| c == ';' || c == '(' || c.is_whitespace())
        .next()
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstuff_removes_one_leading_dot_per_line() {
        let wire = b"Subject: x\r\n\r\n..leading\r\n.\r\nmid.dle\r\n...\r\n";
        assert_eq!(
            unstuff(wire),
            b"Subject: x\r\n\r\n.leading\r\n\r\nmid.dle\r\n..\r\n".to_vec()
        );
        assert_eq!(unstuff(b""), Vec::<u8>::new());
    }

    #[test]
    fn own_results_are_removed_with_their_folded_lines_only_in_the_header() {
        let wire = b"Received: from a\r\n\
Authentication-Results: MX.example.net;\r\n\tdkim=pass header.d=forged.example\r\n\
Subject: hi\r\n\
authentication-results: other.example; spf=pass\r\n\
Authentication-Results: mx.example.net (comment); spf=pass\r\n\
\r\n\
Authentication-Results: mx.example.net; body line stays\r\n";
        let out = strip_own_results(wire, "mx.example.net");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Received: from a\r\n\
Subject: hi\r\n\
authentication-results: other.example; spf=pass\r\n\
\r\n\
Authentication-Results: mx.example.net; body line stays\r\n"
        );
    }

    #[test]
    fn a_message_without_own_results_is_not_copied() {
        let wire = b"Authentication-Results: other.example; none\r\n\r\nbody\r\n";
        assert!(matches!(
            strip_own_results(wire, "mx.example.net"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(strip_own_results(b"", "mx"), Cow::Borrowed(_)));
    }
}
