//! What one inbound session may do: sizes and counts, and the server's own
//! settings (name, relay domains, TLS on offer).

/// The settings of a server session, fixed when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The name in the banner, the EHLO reply and the `Received:` header.
    pub hostname: String,
    /// Recipient domains this server accepts mail for (case-insensitive, a
    /// trailing dot ignored). Everything else is refused with 554 5.7.1.
    pub relay_domains: Vec<String>,
    /// True when STARTTLS can be offered (a TLS configuration exists).
    pub tls_available: bool,
    /// The limits of the session.
    pub limits: Limits,
}

/// Sizes and counts a session may not exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message in octets (wire form, without the final `.` line);
    /// advertised with `SIZE`, checked against `MAIL ... SIZE=` and enforced
    /// while the data streams.
    pub max_message_size: u64,
    /// Recipients accepted per message; the next ones get 452 4.5.3.
    pub max_recipients: u32,
    /// Protocol errors (replies this server makes up itself: syntax,
    /// sequence, unknown command, relay denied) before the session is closed
    /// with 421 4.7.0. Backend refusals do not count. 0 means 1.
    pub max_errors: u32,
    /// Longest text line in a message in octets, without its CRLF (RFC 5321
    /// section 4.5.3.1.6: 998). A message with a longer line is read to its
    /// end, never forwarded whole, and refused with 552 5.6.0.
    pub max_line: usize,
}

impl Default for Limits {
    /// 50 MiB messages, 100 recipients (RFC 5321's minimum buffer), 20
    /// errors, 998-octet lines.
    fn default() -> Self {
        Limits {
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 20,
            max_line: 998,
        }
    }
}

/// Counts the protocol errors of a session against [`Limits::max_errors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ErrorCount {
    seen: u32,
    max: u32,
}

impl ErrorCount {
    /// A counter closing the session at the `max`-th error (at least 1).
    pub(crate) fn new(max: u32) -> Self {
        ErrorCount {
            seen: 0,
            max: max.max(1),
        }
    }

    /// Counts one error; true when the limit is now reached.
    pub(crate) fn bump(&mut self) -> bool {
        self.seen = self.seen.saturating_add(1);
        self.seen >= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_count_reaches_limit() {
        let mut count = ErrorCount::new(3);
        assert!(!count.bump());
        assert!(!count.bump());
        assert!(count.bump());
        assert!(ErrorCount::new(0).bump());
    }
}
