//! The one-time setup code of an unconfigured box: `XXXX-XXXX` from an
//! alphabet without look-alikes (no 0/O, 1/I/L), about 40 bits, printed on
//! the console and in the log, asked for by the setup page once.

use super::password::{random_bytes, same_secret};

/// Letters and digits that cannot be mistaken for each other.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A setup code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupCode(String);

impl SetupCode {
    /// A fresh random code (unbiased: bytes past the last whole multiple of
    /// the alphabet's size are drawn again).
    pub fn generate() -> SetupCode {
        let limit = 256 - 256 % ALPHABET.len();
        let mut chars = Vec::with_capacity(8);
        while chars.len() < 8 {
            for b in random_bytes::<16>() {
                if usize::from(b) < limit && chars.len() < 8 {
                    chars.push(ALPHABET[usize::from(b) % ALPHABET.len()]);
                }
            }
        }
        let text = String::from_utf8(chars).expect("ASCII");
        SetupCode(format!("{}-{}", &text[..4], &text[4..]))
    }

    /// The code as printed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `typed` is this code, ignoring case, spaces and dashes.
    pub fn matches(&self, typed: &str) -> bool {
        let norm = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect()
        };
        same_secret(&norm(&self.0), &norm(typed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_look_like_xxxx_xxxx_without_look_alikes() {
        let code = SetupCode::generate();
        let s = code.as_str();
        assert_eq!(s.len(), 9);
        assert_eq!(&s[4..5], "-");
        assert!(
            s.bytes()
                .filter(|b| *b != b'-')
                .all(|b| ALPHABET.contains(&b)),
            "{s}"
        );
        assert_ne!(code, SetupCode::generate());
    }

    #[test]
    fn typing_is_forgiving_about_case_and_dashes_only() {
        let code = SetupCode("ABCD-EF23".into());
        assert!(code.matches("abcd-ef23"));
        assert!(code.matches(" ABCDEF23 "));
        assert!(!code.matches("ABCD-EF24"));
        assert!(!code.matches(""));
    }
}
