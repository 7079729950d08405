//! The greeting phase: the banner, HELO and EHLO replies, and what EHLO
//! advertises.

use super::limits::ServerConfig;
use crate::reply::Reply;

/// The banner: `220 <hostname> ESMTP mxgate` (RFC 5321 section 4.2 and RFC
/// 2034 exempt it from an enhanced status code).
pub fn banner(hostname: &str) -> Reply {
    Reply::new(220, format!("{hostname} ESMTP mxgate"))
}

/// The reply to `HELO`: one line with the server's name.
pub fn helo_reply(config: &ServerConfig) -> Reply {
    Reply::new(250, config.hostname.clone())
}

/// The reply to `EHLO`: the name, then PIPELINING, SIZE, 8BITMIME,
/// SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING (RFC 3030; BINARYMIME is not
/// offered), and STARTTLS only when `offer_tls` (TLS is configured and not
/// active yet).
pub fn ehlo_reply(config: &ServerConfig, offer_tls: bool) -> Reply {
    let mut lines = vec![
        config.hostname.clone(),
        "PIPELINING".to_owned(),
        format!("SIZE {}", config.limits.max_message_size),
        "8BITMIME".to_owned(),
        "SMTPUTF8".to_owned(),
        "ENHANCEDSTATUSCODES".to_owned(),
        "CHUNKING".to_owned(),
    ];
    if offer_tls {
        lines.push("STARTTLS".to_owned());
    }
    Reply::multiline(250, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Limits;

    fn config() -> ServerConfig {
        ServerConfig {
            hostname: "mx.example.org".into(),
            relay_domains: vec![],
            tls_available: true,
            limits: Limits {
                max_message_size: 1234,
                ..Limits::default()
            },
        }
    }

    #[test]
    fn ehlo_keywords() {
        assert_eq!(
            ehlo_reply(&config(), true).to_string(),
            "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1234\r\n250-8BITMIME\r\n\
             250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250 STARTTLS\r\n"
        );
        assert!(!ehlo_reply(&config(), false).text().contains("STARTTLS"));
        assert_eq!(helo_reply(&config()).to_string(), "250 mx.example.org\r\n");
        assert_eq!(
            banner("mx.example.org").to_string(),
            "220 mx.example.org ESMTP mxgate\r\n"
        );
    }
}
