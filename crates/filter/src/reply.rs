//! SMTP replies produced by the filters, as plain values the gateway writes.

use std::fmt;

/// One SMTP reply line: basic code, enhanced status code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Basic reply code, e.g. 451.
    pub code: u16,
    /// Enhanced status code (RFC 3463), e.g. `4.7.1`.
    pub status: &'static str,
    /// Human-readable text; never contains CR or LF.
    pub text: String,
}

impl Reply {
    /// Builds a reply.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Reply {
            code,
            status,
            text: text.into(),
        }
    }

    /// True for 4xx replies (try again later).
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.code, self.status, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_a_reply_line() {
        let r = Reply::new(451, "4.7.1", "Greylisted");
        assert_eq!(r.to_string(), "451 4.7.1 Greylisted");
        assert!(r.is_transient());
        assert!(!Reply::new(550, "5.7.1", "x").is_transient());
    }
}
