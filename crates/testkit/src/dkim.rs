//! A DKIM signer for tests: an Ed25519 key generated per test, its public
//! key published as `<selector>._domainkey.<domain>` TXT in a
//! [`DnsServer`](crate::DnsServer), and messages signed with mail-auth, so
//! the gateway's verifier sees what a real signing MTA would send.

use crate::DnsServer;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;

/// A signing domain with its key.
pub struct DkimSigner25519 {
    pkcs8: Vec<u8>,
    domain: String,
    selector: String,
}

impl DkimSigner25519 {
    /// A new key for `domain` under `selector`.
    ///
    /// # Panics
    /// When ring cannot generate a key.
    pub fn new(domain: &str, selector: &str) -> DkimSigner25519 {
        DkimSigner25519 {
            pkcs8: Ed25519Key::generate_pkcs8().expect("ed25519 key"),
            domain: domain.to_string(),
            selector: selector.to_string(),
        }
    }

    fn key(&self) -> Ed25519Key {
        Ed25519Key::from_pkcs8_der(&self.pkcs8).expect("ed25519 key")
    }

    /// Publishes the public key in `dns` (TTL 300).
    pub fn publish(&self, dns: &DnsServer) {
        let record = format!("v=DKIM1; k=ed25519; p={}", base64(&self.key().public_key()));
        dns.add_txt(
            &format!("{}._domainkey.{}", self.selector, self.domain),
            &record,
            300,
        );
    }

    /// `message` with a `DKIM-Signature:` header in front (relaxed/relaxed,
    /// signing From, To, Subject, Date, Message-ID).
    ///
    /// # Panics
    /// When mail-auth cannot sign the message.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature = DkimSigner::from_key(self.key())
            .domain(self.domain.clone())
            .selector(self.selector.clone())
            .headers(["From", "To", "Subject", "Date", "Message-ID"])
            .sign(message)
            .expect("dkim signature");
        let mut out = signature.to_header().into_bytes();
        out.extend_from_slice(message);
        out
    }
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }
}
