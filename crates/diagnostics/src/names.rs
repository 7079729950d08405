//! Checks of the names the DNS helper is given, and the error type that
//! names the field at fault (the page shows the reason next to the input).

use serde::Serialize;

/// One invalid input: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The input, e.g. `domain`, `hosts[1].name`, `max_age`, `mx[0]`.
    pub field: String,
    /// What is wrong and what would be valid.
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// `name` in lower case without a trailing dot when it is a host name of at
/// least two labels (letters, digits, hyphens; 1..63 octets a label; at most
/// 253 in all), else why not.
pub(crate) fn host_name(name: &str) -> Result<String, String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err("empty; expected a host name such as mx.example.com".into());
    }
    if !name.is_ascii() {
        return Err(format!(
            "{name:?} is not ASCII; give the punycode (xn--) form"
        ));
    }
    if name.len() > 253 {
        return Err(format!("{name:?} is longer than 253 characters"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "{name:?} has one label; expected a name such as mx.example.com"
        ));
    }
    for label in labels {
        let ldh = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if label.is_empty()
            || label.len() > 63
            || !ldh
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "{name:?}: label {label:?} must be 1..63 letters, digits or inner hyphens"
            ));
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_normalised_or_refused() {
        assert_eq!(
            host_name(" MX1.Example.COM. ").as_deref(),
            Ok("mx1.example.com")
        );
        for bad in [
            "",
            "localhost",
            "a..b",
            "-a.b",
            "a-.b",
            "a_b.c",
            "ex\u{e4}mple.de",
            "*.example.com",
        ] {
            assert!(host_name(bad).is_err(), "{bad:?}");
        }
        assert!(host_name(&format!("{}.com", "a".repeat(64))).is_err());
    }
}
