//! Password hashing with argon2id (the crate's default parameters: 19 MiB,
//! 2 passes, 1 lane) in PHC string form, the password rules, and random
//! tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::OnceLock;

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted (hashing cost stays bounded).
pub const MAX_PASSWORD: usize = 1024;

/// `n` random bytes from the operating system.
///
/// # Panics
/// When the system's random source fails (nothing safe can go on then).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the system random source failed");
    buf
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random 256-bit token, as 64 hex digits.
pub(crate) fn token() -> String {
    hex(&random_bytes::<32>())
}

/// Why a password is refused, if it is.
pub fn check_password_rules(password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        Some(format!("must be at least {MIN_PASSWORD} characters"))
    } else if n > MAX_PASSWORD {
        Some(format!("must be at most {MAX_PASSWORD} characters"))
    } else {
        None
    }
}

/// The argon2id hash of `password` with a fresh random salt.
///
/// # Panics
/// Never for a password within [`MAX_PASSWORD`] (argon2 refuses only
/// absurd lengths).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

/// True when `password` matches `hash` (a PHC string); false for a
/// malformed hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .and_then(|h| Argon2::default().verify_password(password.as_bytes(), &h))
        .is_ok()
}

/// Spends the time of one verification for a user that does not exist, so
/// a login's timing does not tell which names exist.
pub(crate) fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password(&token()));
    let _ = verify_password(password, hash);
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse battery");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(h, hash_password("correct horse battery"), "salted");
    }

    #[test]
    fn passwords_need_ten_characters() {
        assert!(check_password_rules("short").is_some());
        assert_eq!(check_password_rules("0123456789"), None);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert_eq!(token().len(), 64);
    }
}
