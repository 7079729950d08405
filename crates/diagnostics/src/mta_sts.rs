//! The MTA-STS policy file served at
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.2).

use crate::names::{host_name, FieldError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest `max_age` RFC 8461 allows: 31,557,600 s (a year).
pub const MAX_MAX_AGE: u64 = 31_557_600;

/// The shortest `max_age` accepted for `enforce` and `testing`: one day.
/// RFC 8461 expects "weeks or greater"; shorter policies expire between a
/// sender's visits and protect little. `none` (withdrawing a policy) may use
/// any value.
pub const MIN_MAX_AGE: u64 = 86_400;

/// What senders do when a receiving MX fails the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MtaStsMode {
    /// Do not deliver to an MX that fails (no TLS, untrusted certificate,
    /// name not in the policy).
    Enforce,
    /// Deliver anyway but report the failure (TLS-RPT): the first step.
    Testing,
    /// No policy: how to withdraw one.
    None,
}

impl fmt::Display for MtaStsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MtaStsMode::Enforce => "enforce",
            MtaStsMode::Testing => "testing",
            MtaStsMode::None => "none",
        })
    }
}

/// The policy body: `version`, `mode`, one `mx` line per pattern (lower
/// case, duplicates dropped, in the given order) and `max_age`, each line
/// ending in CRLF (RFC 8461 allows CRLF or LF; CRLF is read by every
/// implementation).
///
/// # Errors
/// Every invalid input, each naming its field (`mx`, `mx[i]`, `max_age`):
/// a pattern that is not a host name or a `*.` wildcard of one, no pattern
/// for `enforce`/`testing`, `max_age` above [`MAX_MAX_AGE`], or below
/// [`MIN_MAX_AGE`] for `enforce`/`testing`.
pub fn mta_sts_policy(
    mode: MtaStsMode,
    mx_names: &[String],
    max_age: u64,
) -> Result<String, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut patterns: Vec<String> = Vec::new();
    for (i, name) in mx_names.iter().enumerate() {
        match validate_mx_pattern(name) {
            Ok(p) if !patterns.contains(&p) => patterns.push(p),
            Ok(_) => {}
            Err(reason) => errors.push(FieldError::new(format!("mx[{i}]"), reason)),
        }
    }
    let policy = mode != MtaStsMode::None;
    if policy && mx_names.is_empty() {
        errors.push(FieldError::new(
            "mx",
            format!("mode {mode} needs at least one MX host name"),
        ));
    }
    if max_age > MAX_MAX_AGE {
        errors.push(FieldError::new(
            "max_age",
            format!("{max_age} s is more than the {MAX_MAX_AGE} s (one year) RFC 8461 allows"),
        ));
    } else if policy && max_age < MIN_MAX_AGE {
        errors.push(FieldError::new(
            "max_age",
            format!("{max_age} s is less than one day ({MIN_MAX_AGE} s); use weeks (e.g. 604800 or 1209600)"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut body = format!("version: STSv1\r\nmode: {mode}\r\n");
    for pattern in &patterns {
        body.push_str(&format!("mx: {pattern}\r\n"));
    }
    body.push_str(&format!("max_age: {max_age}\r\n"));
    Ok(body)
}

/// Checks one `mx` pattern: a host name (`mx1.example.com`) or a wildcard
/// whose `*` is the whole leftmost label (`*.example.com`, matching one
/// label only). Returns it in lower case without a trailing dot.
///
/// # Errors
/// Why the pattern is not valid.
pub fn validate_mx_pattern(pattern: &str) -> Result<String, String> {
    let pattern = pattern.trim();
    match pattern.strip_prefix("*.") {
        Some(rest) if !rest.contains('*') => host_name(rest)
            .map(|name| format!("*.{name}"))
            .map_err(|e| format!("wildcard {pattern:?}: {e}")),
        _ if pattern.contains('*') => Err(format!(
            "{pattern:?}: a wildcard must be the whole leftmost label, as in *.example.com"
        )),
        _ => host_name(pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn enforce_policy_text_is_exact() {
        let text = mta_sts_policy(
            MtaStsMode::Enforce,
            &names(&["MX1.example.com.", "*.mx.example.com", "mx1.example.com"]),
            1_209_600,
        )
        .unwrap();
        assert_eq!(
            text,
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.mx.example.com\r\nmax_age: 1209600\r\n"
        );
    }

    #[test]
    fn mode_none_needs_no_mx_and_allows_a_short_max_age() {
        let text = mta_sts_policy(MtaStsMode::None, &[], 300).unwrap();
        assert_eq!(text, "version: STSv1\r\nmode: none\r\nmax_age: 300\r\n");
    }

    #[test]
    fn every_error_names_its_field() {
        let errors = mta_sts_policy(
            MtaStsMode::Testing,
            &names(&["ok.example.com", "mx.*.example.com", "x"]),
            MAX_MAX_AGE + 1,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["mx[1]", "mx[2]", "max_age"]);
        let errors = mta_sts_policy(MtaStsMode::Enforce, &[], 3600).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["mx", "max_age"]);
        assert!(mta_sts_policy(MtaStsMode::Enforce, &names(&["a.b"]), MAX_MAX_AGE).is_ok());
    }

    #[test]
    fn wildcard_patterns() {
        assert_eq!(
            validate_mx_pattern("*.Example.com").as_deref(),
            Ok("*.example.com")
        );
        for bad in [
            "*",
            "*.",
            "**.example.com",
            "*example.com",
            "a.*.example.com",
            "*.*.example.com",
            "*.com",
        ] {
            assert!(validate_mx_pattern(bad).is_err(), "{bad:?}");
        }
    }
}
