//! Validation of `[screen]`: the pregreet test, the DNSBL/DNSWL scoring
//! settings and the temporary allowlist.

use crate::raw::ScreenSection;
use crate::validate::is_dns_name;
use crate::Errors;
use mxgate_filter::dnsbl::ReplyFilter;
use mxgate_filter::pregreet::GreetAction;

/// Records an error when `value` is outside `min..=max`.
fn check_count(errors: &mut Errors, key: &str, value: u64, min: u64, max: u64) {
    if value < min || value > max {
        errors.push(
            key,
            format!("{value} is out of range: must be {min}..{max}"),
        );
    }
}

/// Longest `allowlist_ttl_s`: 30 days.
const MAX_ALLOWLIST_TTL_S: u64 = 30 * 86_400;

/// Validates `[screen]`: the pregreet window and action, the DNSBL
/// thresholds and timeout, the allowlist TTL and every `[[screen.dnsbl]]`
/// zone (a DNS name, used once, weight -100..100 and not 0, a filter that
/// parses). Zone names are stored lowercase without a trailing dot.
/// `reverse_dns` is a plain boolean (TOML typing is all it needs); the
/// reverse lookup it asks for is bounded by `dns_timeout_ms`.
pub(crate) fn validate_screen(errors: &mut Errors, raw: &ScreenSection) -> ScreenSection {
    let mut out = raw.clone();
    check_count(errors, "screen.greet_wait_ms", raw.greet_wait_ms, 0, 30_000);
    if let Err(e) = raw.greet_action.parse::<GreetAction>() {
        errors.push("screen.greet_action", e.to_string());
    }
    for (key, value) in [
        ("screen.dnsbl_threshold", raw.dnsbl_threshold),
        ("screen.dnsbl_allow_threshold", raw.dnsbl_allow_threshold),
    ] {
        if !(-100..=100).contains(&value) {
            errors.push(key, format!("{value} is out of range: must be -100..100"));
        }
    }
    if raw.dnsbl_allow_threshold >= raw.dnsbl_threshold {
        errors.push(
            "screen.dnsbl_allow_threshold",
            format!(
                "{} must be below dnsbl_threshold ({})",
                raw.dnsbl_allow_threshold, raw.dnsbl_threshold
            ),
        );
    }
    check_count(
        errors,
        "screen.dns_timeout_ms",
        raw.dns_timeout_ms,
        100,
        10_000,
    );
    check_count(
        errors,
        "screen.allowlist_ttl_s",
        raw.allowlist_ttl_s,
        0,
        MAX_ALLOWLIST_TTL_S,
    );
    let mut seen: Vec<String> = Vec::new();
    for (i, (z, norm)) in raw.dnsbl.iter().zip(out.dnsbl.iter_mut()).enumerate() {
        let key = format!("screen.dnsbl[{i}]");
        let name = z.zone.trim().trim_end_matches('.').to_ascii_lowercase();
        if !is_dns_name(&name) {
            errors.push(
                format!("{key}.zone"),
                format!("{:?} is not a DNS zone like zen.example.org", z.zone),
            );
        } else if seen.contains(&name) {
            errors.push(
                format!("{key}.zone"),
                format!("{:?} is listed twice", z.zone),
            );
        }
        if z.weight == 0 || !(-100..=100).contains(&z.weight) {
            errors.push(
                format!("{key}.weight"),
                format!(
                    "{} is out of range: must be -100..100 and not 0 (negative for allowlists)",
                    z.weight
                ),
            );
        }
        if let Some(filter) = &z.filter {
            match ReplyFilter::parse(filter) {
                Ok(f) => norm.filter = Some(f.as_str().to_string()),
                Err(e) => errors.push(format!("{key}.filter"), e.to_string()),
            }
        }
        norm.zone = name.clone();
        seen.push(name);
    }
    out
}
