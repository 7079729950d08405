//! Validation of `[auth]`: the SPF mode, and DKIM/DMARC held at `off`
//! until they are implemented (so no setting pretends to check anything).

use crate::raw::AuthSection;
use crate::Errors;

/// The refusal for any DKIM or DMARC value but `off`.
const NOT_AVAILABLE: &str = "dkim/dmarc checking is not available in this version: use \"off\"";

/// What smtp mode does with SPF at MAIL FROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpfMode {
    /// No SPF check.
    Off,
    /// Check and add a `Received-SPF:` header.
    #[default]
    Tag,
    /// As `Tag`, but an SPF `fail` is refused with `550 5.7.23`.
    Reject,
}

impl SpfMode {
    /// Parses `off`, `tag` or `reject` (case-insensitive).
    pub fn parse(text: &str) -> Option<SpfMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" => Some(SpfMode::Off),
            "tag" => Some(SpfMode::Tag),
            "reject" => Some(SpfMode::Reject),
            _ => None,
        }
    }

    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfMode::Off => "off",
            SpfMode::Tag => "tag",
            SpfMode::Reject => "reject",
        }
    }
}

/// Validates `[auth]`: `spf` is `off`, `tag` or `reject`; `dkim` and
/// `dmarc` must be `off`. Values are stored lowercase.
pub(crate) fn validate_auth(errors: &mut Errors, raw: &AuthSection) -> AuthSection {
    let mut out = raw.clone();
    match SpfMode::parse(&raw.spf) {
        Some(mode) => out.spf = mode.as_str().to_string(),
        None => errors.push(
            "auth.spf",
            format!("{:?} is not one of off, tag, reject", raw.spf),
        ),
    }
    for (key, value, norm) in [
        ("auth.dkim", &raw.dkim, &mut out.dkim),
        ("auth.dmarc", &raw.dmarc, &mut out.dmarc),
    ] {
        if value.trim().eq_ignore_ascii_case("off") {
            *norm = "off".to_string();
        } else {
            errors.push(key, NOT_AVAILABLE);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::Policy;

    use super::SpfMode;

    fn errors(text: &str) -> Vec<(String, String)> {
        Policy::parse(text)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.key, e.message))
            .collect()
    }

    #[test]
    fn defaults_leave_spf_dkim_dmarc_off() {
        let p = Policy::parse("").unwrap();
        assert_eq!(p.auth.spf, "off");
        assert_eq!(
            (p.auth.dkim.as_str(), p.auth.dmarc.as_str()),
            ("off", "off")
        );
        assert_eq!(p.spf_mode(), SpfMode::Off);
    }

    #[test]
    fn spf_modes_parse_and_round_trip() {
        for (text, mode) in [
            ("off", SpfMode::Off),
            ("TAG", SpfMode::Tag),
            ("reject", SpfMode::Reject),
        ] {
            let p = Policy::parse(&format!(
                "[auth]\nspf = \"{text}\"\ndkim = \"off\"\ndmarc = \"OFF\"\n"
            ))
            .unwrap();
            assert_eq!(p.spf_mode(), mode);
            assert_eq!(p.auth.spf, mode.as_str());
            assert_eq!(p.auth.dmarc, "off");
            assert_eq!(Policy::parse(&p.to_toml()).unwrap(), p);
        }
    }

    #[test]
    fn unknown_spf_mode_and_dkim_dmarc_other_than_off_are_refused() {
        let errs = errors("[auth]\nspf = \"strict\"\ndkim = \"verify\"\ndmarc = \"reject\"\n");
        let msg = "dkim/dmarc checking is not available in this version: use \"off\"";
        assert_eq!(
            errs,
            [
                (
                    "auth.spf".to_string(),
                    "\"strict\" is not one of off, tag, reject".to_string()
                ),
                ("auth.dkim".to_string(), msg.to_string()),
                ("auth.dmarc".to_string(), msg.to_string()),
            ]
        );
    }

    #[test]
    fn unknown_auth_keys_are_refused() {
        assert!(Policy::parse("[auth]\narc = \"off\"\n").is_err());
    }
}
