//! Validation of `[auth]`: the action of each sender-authentication check
//! (SPF at MAIL FROM; DKIM, ARC and DMARC at end of data) and how much of a
//! message is held in memory while it is checked.

use crate::raw::AuthSection;
use crate::Errors;

/// What smtp mode does with one check (SPF, DKIM or ARC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckMode {
    /// No check.
    #[default]
    Off,
    /// Check and record the result in a header (`Received-SPF:`,
    /// `Authentication-Results:`).
    Tag,
    /// As `Tag`, but a failing result is refused with a 550.
    Reject,
}

/// The SPF action (`[auth] spf`).
pub type SpfMode = CheckMode;

impl CheckMode {
    /// Parses `off`, `tag` or `reject` (case-insensitive).
    pub fn parse(text: &str) -> Option<CheckMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" => Some(CheckMode::Off),
            "tag" => Some(CheckMode::Tag),
            "reject" => Some(CheckMode::Reject),
            _ => None,
        }
    }

    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckMode::Off => "off",
            CheckMode::Tag => "tag",
            CheckMode::Reject => "reject",
        }
    }
}

/// What smtp mode does with DMARC (`[auth] dmarc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DmarcMode {
    /// No DMARC evaluation.
    #[default]
    Off,
    /// Evaluate and record the result in `Authentication-Results:`.
    Tag,
    /// Refuse every DMARC `fail`, whatever the domain's policy.
    Reject,
    /// Honour the domain's policy: refuse a `fail` under `p=reject`, tag it
    /// under `p=quarantine` and `p=none`.
    Enforce,
}

impl DmarcMode {
    /// Parses `off`, `tag`, `reject` or `enforce` (case-insensitive).
    pub fn parse(text: &str) -> Option<DmarcMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" => Some(DmarcMode::Off),
            "tag" => Some(DmarcMode::Tag),
            "reject" => Some(DmarcMode::Reject),
            "enforce" => Some(DmarcMode::Enforce),
            _ => None,
        }
    }

    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcMode::Off => "off",
            DmarcMode::Tag => "tag",
            DmarcMode::Reject => "reject",
            DmarcMode::Enforce => "enforce",
        }
    }
}

/// `[auth]` as smtp mode uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthSettings {
    /// SPF at MAIL FROM.
    pub spf: CheckMode,
    /// DKIM at end of data.
    pub dkim: CheckMode,
    /// ARC at end of data.
    pub arc: CheckMode,
    /// DMARC at end of data.
    pub dmarc: DmarcMode,
    /// Octets of a message held in memory before it spills to a file.
    pub hold_memory: usize,
}

impl AuthSettings {
    /// True when a check needs the whole message (DKIM, ARC or DMARC on).
    pub fn checks_message(&self) -> bool {
        self.dkim != CheckMode::Off || self.arc != CheckMode::Off || self.dmarc != DmarcMode::Off
    }

    /// True when SPF must be evaluated at MAIL FROM: asked for, or needed by
    /// DMARC.
    pub fn evaluates_spf(&self) -> bool {
        self.spf != CheckMode::Off || self.dmarc != DmarcMode::Off
    }
}

/// Smallest and largest `hold_memory_kb`.
const HOLD_MEMORY_KB: std::ops::RangeInclusive<u64> = 16..=65_536;

/// Validates `[auth]`: `spf`, `dkim` and `arc` are `off`, `tag` or
/// `reject`; `dmarc` also `enforce`; `hold_memory_kb` within 16..=65536.
/// Words are stored lowercase.
pub(crate) fn validate_auth(errors: &mut Errors, raw: &AuthSection) -> AuthSection {
    let mut out = raw.clone();
    for (key, value, norm) in [
        ("auth.spf", &raw.spf, &mut out.spf),
        ("auth.dkim", &raw.dkim, &mut out.dkim),
        ("auth.arc", &raw.arc, &mut out.arc),
    ] {
        match CheckMode::parse(value) {
            Some(mode) => *norm = mode.as_str().to_string(),
            None => errors.push(key, format!("{value:?} is not one of off, tag, reject")),
        }
    }
    match DmarcMode::parse(&raw.dmarc) {
        Some(mode) => out.dmarc = mode.as_str().to_string(),
        None => errors.push(
            "auth.dmarc",
            format!("{:?} is not one of off, tag, reject, enforce", raw.dmarc),
        ),
    }
    if !HOLD_MEMORY_KB.contains(&raw.hold_memory_kb) {
        errors.push(
            "auth.hold_memory_kb",
            format!(
                "{} is outside {}..={}",
                raw.hold_memory_kb,
                HOLD_MEMORY_KB.start(),
                HOLD_MEMORY_KB.end()
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::Policy;

    use super::{CheckMode, DmarcMode, SpfMode};

    fn errors(text: &str) -> Vec<(String, String)> {
        Policy::parse(text)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.key, e.message))
            .collect()
    }

    #[test]
    fn defaults_leave_every_check_off() {
        let p = Policy::parse("").unwrap();
        let auth = p.auth_settings();
        assert_eq!(auth.spf, CheckMode::Off);
        assert_eq!((auth.dkim, auth.arc), (CheckMode::Off, CheckMode::Off));
        assert_eq!(auth.dmarc, DmarcMode::Off);
        assert_eq!(auth.hold_memory, 256 * 1024);
        assert!(!auth.checks_message() && !auth.evaluates_spf());
        assert_eq!(p.spf_mode(), SpfMode::Off);
    }

    #[test]
    fn modes_parse_and_round_trip() {
        for (text, mode) in [
            ("off", CheckMode::Off),
            ("TAG", CheckMode::Tag),
            ("reject", CheckMode::Reject),
        ] {
            let p = Policy::parse(&format!(
                "[auth]\nspf = \"{text}\"\ndkim = \"{text}\"\narc = \"{text}\"\ndmarc = \"OFF\"\n"
            ))
            .unwrap();
            let auth = p.auth_settings();
            assert_eq!((auth.spf, auth.dkim, auth.arc), (mode, mode, mode));
            assert_eq!(p.auth.spf, mode.as_str());
            assert_eq!(p.auth.dmarc, "off");
            assert_eq!(Policy::parse(&p.to_toml()).unwrap(), p);
        }
        let p = Policy::parse("[auth]\ndmarc = \"Enforce\"\nhold_memory_kb = 64\n").unwrap();
        let auth = p.auth_settings();
        assert_eq!(auth.dmarc, DmarcMode::Enforce);
        assert_eq!(auth.hold_memory, 64 * 1024);
        assert!(auth.checks_message() && auth.evaluates_spf());
        assert_eq!(Policy::parse(&p.to_toml()).unwrap(), p);
    }

    #[test]
    fn unknown_modes_and_bad_sizes_are_refused_with_the_key() {
        let errs = errors(
            "[auth]\nspf = \"strict\"\ndkim = \"verify\"\narc = \"yes\"\ndmarc = \"quarantine\"\nhold_memory_kb = 1\n",
        );
        assert_eq!(
            errs,
            [
                (
                    "auth.spf".to_string(),
                    "\"strict\" is not one of off, tag, reject".to_string()
                ),
                (
                    "auth.dkim".to_string(),
                    "\"verify\" is not one of off, tag, reject".to_string()
                ),
                (
                    "auth.arc".to_string(),
                    "\"yes\" is not one of off, tag, reject".to_string()
                ),
                (
                    "auth.dmarc".to_string(),
                    "\"quarantine\" is not one of off, tag, reject, enforce".to_string()
                ),
                (
                    "auth.hold_memory_kb".to_string(),
                    "1 is outside 16..=65536".to_string()
                ),
            ]
        );
    }

    #[test]
    fn unknown_auth_keys_are_refused() {
        assert!(Policy::parse("[auth]\nbimi = \"off\"\n").is_err());
    }
}
