//! The `Received:` trace header mxgate puts in front of each relayed
//! message (RFC 5321 section 4.4, protocol names from RFC 3848).

use crate::date::rfc5322_date;
use std::net::IpAddr;
use std::time::SystemTime;

/// What the `Received:` header says about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedInfo<'a> {
    /// The HELO/EHLO name the client gave.
    pub helo: &'a str,
    /// The client's reverse DNS name, when known.
    pub rdns: Option<&'a str>,
    /// The client's address.
    pub ip: IpAddr,
    /// This server's name.
    pub hostname: &'a str,
    /// True after EHLO (ESMTP), false after HELO (SMTP).
    pub esmtp: bool,
    /// TLS of the session, e.g. `TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384`.
    pub tls: Option<&'a str>,
    /// True when the client authenticated (adds `A`, RFC 3848).
    pub authenticated: bool,
    /// The transaction id, for finding the message in mxgate's logs.
    pub id: &'a str,
    /// The recipient, given only when the message has exactly one.
    pub rcpt: Option<&'a str>,
    /// When the message was received.
    pub date: SystemTime,
}

/// The header, folded (continuation lines start with a TAB), every line
/// ending in CRLF:
///
/// ```text
/// Received: from <helo> (<rdns or unknown> [<ip>])
///     by <hostname> (mxgate) with ESMTPS id <id>
///     (<tls>)
///     for <rcpt>; <date>
/// ```
///
/// The `(<tls>)` line is there only with TLS, `for <rcpt>` only with one
/// recipient. `helo` and `rdns` come from a parsed command line, so they
/// hold no CR or LF.
pub fn received_header(info: &ReceivedInfo<'_>) -> String {
    let protocol = match (info.esmtp, info.tls.is_some(), info.authenticated) {
        (false, _, _) => "SMTP",
        (true, false, false) => "ESMTP",
        (true, false, true) => "ESMTPA",
        (true, true, false) => "ESMTPS",
        (true, true, true) => "ESMTPSA",
    };
    let ip = match info.ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("IPv6:{v6}"),
    };
    let mut header = format!(
        "Received: from {} ({} [{ip}])\r\n\tby {} (mxgate) with {protocol} id {}\r\n",
        info.helo,
        info.rdns.unwrap_or("unknown"),
        info.hostname,
        info.id
    );
    if let Some(tls) = info.tls {
        header.push_str(&format!("\t({tls})\r\n"));
    }
    let date = rfc5322_date(info.date);
    match info.rcpt {
        Some(rcpt) => header.push_str(&format!("\tfor <{rcpt}>; {date}\r\n")),
        None => header.push_str(&format!("\t; {date}\r\n")),
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn info() -> ReceivedInfo<'static> {
        ReceivedInfo {
            helo: "client.example",
            rdns: None,
            ip: "192.0.2.1".parse().unwrap(),
            hostname: "mx.example.org",
            esmtp: true,
            tls: Some("TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384"),
            authenticated: false,
            id: "ab12",
            rcpt: Some("u@example.org"),
            date: UNIX_EPOCH + Duration::from_secs(1_732_735_260),
        }
    }

    #[test]
    fn full_header() {
        assert_eq!(
            received_header(&info()),
            "Received: from client.example (unknown [192.0.2.1])\r\n\
             \tby mx.example.org (mxgate) with ESMTPS id ab12\r\n\
             \t(TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384)\r\n\
             \tfor <u@example.org>; Wed, 27 Nov 2024 19:21:00 +0000\r\n"
        );
    }

    #[test]
    fn plain_helo_many_recipients_ipv6() {
        let header = received_header(&ReceivedInfo {
            esmtp: false,
            tls: None,
            rcpt: None,
            rdns: Some("host.example"),
            ip: "2001:db8::1".parse().unwrap(),
            ..info()
        });
        assert_eq!(
            header,
            "Received: from client.example (host.example [IPv6:2001:db8::1])\r\n\
             \tby mx.example.org (mxgate) with SMTP id ab12\r\n\
             \t; Wed, 27 Nov 2024 19:21:00 +0000\r\n"
        );
    }
}
