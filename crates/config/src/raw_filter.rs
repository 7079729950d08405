//! The raw level of the filter policy: `[[list]]` and `[[rate_limit]]`.

use serde::{Deserialize, Serialize};

/// `[[list]]`: one allow or block entry. Exactly one of the matchers is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListSection {
    /// `allow` or `block`.
    pub action: String,
    /// A client address or network (`198.51.100.0/24`, `2001:db8::/32`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The client's reverse name (`mx.example.com`, or `.example.com` for
    /// every name under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_name: Option<String>,
    /// The HELO/EHLO name (exact or `.suffix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
    /// The envelope sender address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The envelope sender's domain (exact or `.suffix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_domain: Option<String>,
    /// An envelope recipient address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
}

impl ListSection {
    /// The matchers that are set, as (kind, value).
    pub fn matchers(&self) -> Vec<(&'static str, &str)> {
        [
            ("client", &self.client),
            ("reverse_name", &self.reverse_name),
            ("helo", &self.helo),
            ("sender", &self.sender),
            ("sender_domain", &self.sender_domain),
            ("recipient", &self.recipient),
        ]
        .into_iter()
        .filter_map(|(kind, v)| v.as_deref().map(|v| (kind, v)))
        .collect()
    }

    /// A section with one matcher set.
    pub fn with(action: &str, kind: &str, value: &str) -> ListSection {
        let mut s = ListSection {
            action: action.to_string(),
            ..ListSection::default()
        };
        let v = Some(value.to_string());
        match kind {
            "client" => s.client = v,
            "reverse_name" => s.reverse_name = v,
            "helo" => s.helo = v,
            "sender" => s.sender = v,
            "sender_domain" => s.sender_domain = v,
            _ => s.recipient = v,
        }
        s
    }
}

/// `[[rate_limit]]`: limits per key within a window.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// `client_ip`, `client_net`, `sender`, `sender_domain` or `recipient_domain`.
    pub key: String,
    /// The window the counts refill over.
    #[serde(default = "default_window_s")]
    pub window_s: u64,
    /// New connections per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Messages (MAIL) per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u32>,
    /// Recipients (RCPT) per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<u32>,
    /// Connections open at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

fn default_window_s() -> u64 {
    60
}
