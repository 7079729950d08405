//! SPF at MAIL FROM in smtp mode (`[auth] spf`), with mail-auth.
//!
//! [`Authenticator`] is built once from the gateway's resolver settings (see
//! [`crate::Gateway::set_resolver`]) and shared; the same mail-auth
//! authenticator verifies DKIM, ARC and DMARC at end of data (see
//! [`crate::authenticate`]). [`Authenticator::check`]
//! verifies the MAIL FROM identity, or the HELO identity when the sender is
//! `<>`, within the screen's `dns_timeout_ms`; a timeout is a `temperror`.
//! The outcome carries the `Received-SPF:` header (RFC 7208 §9.1) that
//! [`crate::screen::FilteringRelay`] adds after mxgate's `Received:` line.

use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfOutput, SpfResult};
use std::net::IpAddr;
use std::time::Duration;

/// Records kept by the verifier's DNS cache (SPF, DKIM keys, DMARC).
const AUTH_CACHE_ENTRIES: u64 = 10_000;

/// The sender-authentication verifier: a mail-auth authenticator over the
/// gateway's DNS servers, and the gateway's name (the SPF `%{r}` macro).
pub(crate) struct Authenticator {
    auth: MessageAuthenticator,
    host: String,
}

/// What SPF said about one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpfOutcome {
    /// The result.
    pub result: SpfResult,
    /// The domain checked (the sender's, or the HELO name for `<>`),
    /// lowercase.
    pub domain: String,
    /// The `Received-SPF:` header line, CRLF-terminated.
    pub header: String,
    /// What mail-auth said (DMARC and `Authentication-Results:` need it).
    pub output: SpfOutput,
}

impl SpfOutcome {
    /// The result as counted and written: `pass`, `fail`, `softfail`,
    /// `neutral`, `none`, `temperror`, `permerror`.
    pub fn label(&self) -> &'static str {
        label(self.result)
    }
}

/// The lowercase name of `result` (RFC 7208 §2.6).
pub(crate) fn label(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::None => "none",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
    }
}

impl Authenticator {
    /// A checker using the servers and options of `resolver`; `host` is the
    /// gateway's name (the `%{r}` macro).
    ///
    /// # Errors
    /// When hickory cannot build a resolver from that configuration.
    pub fn new(resolver: &mxgate_dns::Resolver, host: &str) -> Result<Authenticator, String> {
        let (config, mut opts) = resolver.hickory_config();
        // SPF, DKIM key and DMARC records are asked for every message:
        // hickory's cache keeps them for their TTL (negative answers for
        // the SOA minimum), so a busy sender costs one lookup per TTL.
        opts.cache_size = AUTH_CACHE_ENTRIES;
        let auth = MessageAuthenticator::new(config, opts).map_err(|e| e.to_string())?;
        Ok(Authenticator {
            auth,
            host: host.to_string(),
        })
    }

    /// Verifies `from` (or `helo` when `from` is empty) for `ip`, within
    /// `timeout` (then `temperror`).
    pub async fn check(&self, ip: IpAddr, helo: &str, from: &str, timeout: Duration) -> SpfOutcome {
        let helo_domain = helo.trim().trim_end_matches('.');
        let params = if from.is_empty() {
            SpfParameters::verify_ehlo(ip, helo_domain, &self.host)
        } else {
            SpfParameters::verify_mail_from(ip, helo_domain, &self.host, from)
        };
        let domain = if from.is_empty() {
            helo_domain
        } else {
            from.rsplit_once('@').map_or(helo_domain, |(_, d)| d)
        }
        .to_ascii_lowercase();
        let output = match tokio::time::timeout(timeout, self.auth.verify_spf(params)).await {
            Ok(output) => output,
            Err(_) => SpfOutput::new(domain.clone()).with_result(SpfResult::TempError),
        };
        let result = output.result();
        let header = received_spf(result, ip, helo, from);
        SpfOutcome {
            result,
            domain,
            header,
            output,
        }
    }

    /// The mail-auth authenticator (DKIM, ARC, DMARC use it too).
    pub fn mail_auth(&self) -> &MessageAuthenticator {
        &self.auth
    }
}

/// The `Received-SPF:` header (RFC 7208 §9.1), folded once, CRLF-ended.
/// The comment names `mxgate` as the checker (the listener's host name is
/// already in the `Received:` line above it).
pub(crate) fn received_spf(result: SpfResult, ip: IpAddr, helo: &str, from: &str) -> String {
    let (identity, who) = if from.is_empty() {
        ("helo", clean(helo))
    } else {
        ("mailfrom", clean(from))
    };
    let comment = match result {
        SpfResult::Pass => format!("domain of {who} designates {ip} as permitted sender"),
        SpfResult::Fail => format!("domain of {who} does not designate {ip} as permitted sender"),
        SpfResult::SoftFail => {
            format!("transitioning domain of {who} does not designate {ip} as permitted sender")
        }
        SpfResult::Neutral => {
            format!("{ip} is neither permitted nor denied by domain of {who}")
        }
        SpfResult::None => format!("domain of {who} does not publish an SPF policy"),
        SpfResult::TempError => format!("temporary error checking the domain of {who}"),
        SpfResult::PermError => format!("permanent error in the SPF record of the domain of {who}"),
    };
    format!(
        "Received-SPF: {} (mxgate: {})\r\n\tclient-ip={ip}; envelope-from={}; helo={}; identity={identity};\r\n",
        label(result),
        comment.replace(['(', ')', '\\'], ""),
        value(from),
        value(helo),
    )
}

/// `text` without control characters (nothing a sender sent may end the
/// header early).
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// A key-value-pair value: a dot-atom as is, anything else quoted.
fn value(text: &str) -> String {
    let text = clean(text);
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = !text.is_empty()
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext));
    if dot_atom {
        text
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_follows_rfc_7208_format() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let h = received_spf(SpfResult::Pass, ip, "foo.example.com", "a@x.test");
        assert_eq!(
            h,
            "Received-SPF: pass (mxgate: domain of a@x.test designates 192.0.2.1 as \
             permitted sender)\r\n\tclient-ip=192.0.2.1; \
             envelope-from=\"a@x.test\"; helo=foo.example.com; identity=mailfrom;\r\n"
        );
    }

    #[test]
    fn null_sender_uses_helo_identity_and_odd_values_are_quoted() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let h = received_spf(SpfResult::Fail, ip, "[bad \"helo\"]\r\n", "");
        assert!(h.starts_with("Received-SPF: fail (mxgate: domain of [bad \"helo\"] does not"));
        assert!(h.contains("envelope-from=\"\"; helo=\"[bad \\\"helo\\\"]\"; identity=helo;"));
        assert_eq!(h.matches("\r\n").count(), 2);
    }

    #[test]
    fn labels_are_lowercase_rfc_names() {
        assert_eq!(label(SpfResult::SoftFail), "softfail");
        assert_eq!(label(SpfResult::TempError), "temperror");
        assert_eq!(label(SpfResult::PermError), "permerror");
    }
}
