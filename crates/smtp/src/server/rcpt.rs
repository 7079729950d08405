//! RCPT TO: the relay policy. A recipient is taken only for a relay domain,
//! and only in a form whose meaning no backend can read differently.
//!
//! Refused with `554 5.7.1 Relay access denied`:
//! - a domain that is not a relay domain (compared case-insensitively, a
//!   trailing dot ignored; a domain literal `[192.0.2.1]` never matches);
//! - a source route `<@a,@b:user@domain>` (RFC 5321 lets a server ignore the
//!   route, but an old backend might follow it);
//! - the %-hack `user%other@relay.example` and bang paths `a!b@relay.example`
//!   in the local part, quoted or not, and a quoted local part holding `@`;
//! - `<postmaster>` when no relay domain is configured.
//!
//! `<postmaster>` without a domain must be accepted (RFC 5321 section 4.5.1):
//! it is routed to `postmaster@<first relay domain>`. Any other address
//! without a domain is a syntax error (`501 5.1.3`).

use crate::reply::Reply;

/// The reply for a recipient this server does not relay for.
pub fn relay_denied() -> Reply {
    Reply::new(554, "5.7.1 Error: Relay access denied")
}

/// Checks one forward-path (as [`Command::Rcpt`](crate::Command::Rcpt)
/// gives it, angle brackets and any source route removed) against the relay
/// domains. `source_route` tells whether the client sent a route.
///
/// Returns the address to give the backend: `to` itself, or
/// `postmaster@<first relay domain>` for a bare `postmaster`.
///
/// # Errors
///
/// The reply for the client: 554 5.7.1 (relay denied) or 501 5.1.3 (no
/// domain).
///
/// ```
/// use mxgate_smtp::server::check_recipient;
/// let domains = ["example.org".to_string()];
/// assert_eq!(check_recipient("a@Example.ORG.", false, &domains).unwrap(), "a@Example.ORG.");
/// assert_eq!(check_recipient("a@other.example", false, &domains).unwrap_err().code, 554);
/// assert_eq!(check_recipient("Postmaster", false, &domains).unwrap(), "postmaster@example.org");
/// ```
pub fn check_recipient(
    to: &str,
    source_route: bool,
    relay_domains: &[String],
) -> Result<String, Reply> {
    if source_route {
        return Err(relay_denied());
    }
    let Some((local, domain)) = to.rsplit_once('@') else {
        if to.eq_ignore_ascii_case("postmaster") {
            return match relay_domains.first() {
                Some(first) => Ok(format!("postmaster@{}", normalize(first))),
                None => Err(relay_denied()),
            };
        }
        return Err(Reply::new(
            501,
            "5.1.3 Error: recipient address must include a domain",
        ));
    };
    if local.is_empty() || domain.is_empty() || !safe_local_part(local) {
        return Err(relay_denied());
    }
    let domain = normalize(domain);
    if relay_domains.iter().any(|d| normalize(d) == domain) {
        Ok(to.to_owned())
    } else {
        Err(relay_denied())
    }
}

/// True when a local part has no routing in it: no `%`, `!` or `@`,
/// whether quoted or not.
fn safe_local_part(local: &str) -> bool {
    !local.contains(['%', '!', '@'])
}

/// Lower case, without a trailing dot.
fn normalize(domain: &str) -> String {
    domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase()
}

/// True when the `RCPT TO:` path in a raw command line starts with a source
/// route (`<@`), which [`parse_command`](crate::parse_command) drops.
pub(crate) fn has_source_route(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let rest = &line[colon + 1..];
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    rest[start..].starts_with(b"<@")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec!["Example.org.".into(), "mail.example.net".into()]
    }

    #[test]
    fn policy_table() {
        let ok = |to: &str| check_recipient(to, false, &domains());
        for accepted in [
            "a@example.org",
            "A@EXAMPLE.ORG",
            "a@example.org.",
            "first.last+tag@mail.example.net",
            "\"quoted name\"@example.org",
            "\u{e9}l\u{e8}ve@example.org",
        ] {
            assert_eq!(ok(accepted).as_deref(), Ok(accepted), "{accepted}");
        }
        for denied in [
            "a@other.example",
            "a@example.org.evil",
            "a@sub.example.org",
            "a@example.org..",
            "a@[192.0.2.1]",
            "user%other.example@example.org",
            "a!b@example.org",
            "other.example!user@example.org",
            "\"a@other.example\"@example.org",
            "\"a%b\"@example.org",
            "\"a!b\"@example.org",
            "a@b@example.org",
            "@example.org",
            "a@",
        ] {
            assert_eq!(ok(denied), Err(relay_denied()), "{denied}");
        }
        assert_eq!(ok("user").unwrap_err().code, 501);
    }

    #[test]
    fn postmaster_without_domain() {
        assert_eq!(
            check_recipient("postmaster", false, &domains()).as_deref(),
            Ok("postmaster@example.org")
        );
        assert_eq!(
            check_recipient("POSTMASTER", false, &[]),
            Err(relay_denied())
        );
    }

    #[test]
    fn source_route_is_refused() {
        assert_eq!(
            check_recipient("a@example.org", true, &domains()),
            Err(relay_denied())
        );
        assert!(has_source_route(b"RCPT TO:<@a,@b:u@example.org>\r\n"));
        assert!(has_source_route(b"RCPT TO: <@a:u@example.org>\r\n"));
        assert!(!has_source_route(b"RCPT TO:<u@example.org>\r\n"));
    }
}
