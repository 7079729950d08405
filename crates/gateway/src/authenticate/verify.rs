//! DKIM, ARC and DMARC on a whole message with mail-auth, gathered into
//! one `Authentication-Results:` header (RFC 8601) together with the SPF
//! result from MAIL FROM, and the action `[auth]` asks for.
//!
//! Refusals (all `550`, the sender keeps no doubt):
//! - `dkim = "reject"`: the message carries signatures, none passes and at
//!   least one fails for good (`fail`, `permerror`) → `5.7.20`;
//! - `arc = "reject"`: the ARC chain is broken (`fail`) → `5.7.29`;
//! - `dmarc = "reject"`: any DMARC `fail` → `5.7.1`; `dmarc = "enforce"`:
//!   a `fail` under the author domain's `p=reject` → `5.7.1` (`p=quarantine`
//!   and `p=none` are tagged only; the header carries `policy.dmarc=`).
//!
//! mail-auth 0.13 reports a body-hash mismatch as `neutral`; RFC 6376
//! §6.1.3 makes it a failed signature, so mxgate reports and treats it as
//! `fail`. DNS trouble (`temperror`) never refuses. Each step (DKIM, ARC, DMARC) is
//! bounded by the screen's DNS timeout; a step that runs out counts as
//! `temperror`.

use crate::spf::SpfOutcome;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy as DmarcPolicy;
use mail_auth::{
    ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcResult,
    Error, MessageAuthenticator, SpfOutput,
};
use mxgate_config::{AuthSettings, CheckMode, DmarcMode};
use mxgate_filter::verdict::checks;
use mxgate_smtp::Reply;
use std::net::IpAddr;
use std::time::Duration;

/// What the end-of-data checks found.
#[derive(Debug, Default)]
pub(crate) struct Evaluation {
    /// The `Authentication-Results:` header, CRLF-terminated.
    pub header: String,
    /// `(check, result, detail)` for the verdict trail.
    pub checks: Vec<(&'static str, String, String)>,
    /// The refusal `[auth]` asks for, if any.
    pub refusal: Option<Reply>,
    /// DMARC passed (which means: aligned with SPF or DKIM).
    pub dmarc_pass: bool,
}

/// The facts of the transaction the checks need besides the message.
pub(crate) struct Envelope<'a> {
    /// The client's address.
    pub ip: IpAddr,
    /// Its HELO name.
    pub helo: &'a str,
    /// The reverse-path, empty for `<>`.
    pub from: &'a str,
    /// The SPF outcome at MAIL FROM, when SPF ran.
    pub spf: Option<&'a SpfOutcome>,
}

/// Checks `message` (as written by the sender, no dot-stuffing) under
/// `auth`; `authserv_id` names this gateway in the header.
pub(crate) async fn evaluate(
    authenticator: &MessageAuthenticator,
    authserv_id: &str,
    message: &[u8],
    envelope: &Envelope<'_>,
    auth: AuthSettings,
    timeout: Duration,
) -> Evaluation {
    let mut out = Evaluation::default();
    let Some(parsed) = AuthenticatedMessage::parse(message) else {
        out.checks.push((
            checks::DKIM,
            "permerror".into(),
            "message header not parseable".into(),
        ));
        out.header = format!("Authentication-Results: {authserv_id}; none\r\n");
        return out;
    };
    let header_from = parsed.from().to_string();
    let mut results = AuthenticationResults::new(authserv_id);

    let dkim: Vec<DkimOutput<'_>> = if auth.dkim != CheckMode::Off || auth.dmarc != DmarcMode::Off {
        match tokio::time::timeout(timeout, authenticator.verify_dkim(&parsed)).await {
            Ok(dkim) => dkim,
            Err(_) => vec![DkimOutput::temp_err(Error::Io("DNS timeout".into()))],
        }
    } else {
        Vec::new()
    };
    if auth.dkim != CheckMode::Off {
        let (label, detail) = dkim_summary(&dkim);
        if auth.dkim == CheckMode::Reject && dkim_refuses(&dkim) {
            out.refusal = Some(Reply::new(550, "5.7.20 No passing DKIM signature found"));
        }
        out.checks.push((checks::DKIM, label.into(), detail));
        results = results.with_dkim_results(&dkim, &header_from);
    }

    let spf_output = spf_output(envelope);
    if let Some(spf) = &spf_output {
        results = if envelope.from.is_empty() {
            results.with_spf_ehlo_result(spf, envelope.ip, envelope.helo)
        } else {
            results.with_spf_mailfrom_result(spf, envelope.ip, envelope.from, envelope.helo)
        };
    }

    if auth.arc != CheckMode::Off {
        let arc = match tokio::time::timeout(timeout, authenticator.verify_arc(&parsed)).await {
            Ok(arc) => arc,
            Err(_) => ArcOutput::default()
                .with_result(DkimResult::TempError(Error::Io("DNS timeout".into()))),
        };
        let label = dkim_label(arc.result());
        if auth.arc == CheckMode::Reject && matches!(arc.result(), DkimResult::Fail(_)) {
            out.refusal
                .get_or_insert_with(|| Reply::new(550, "5.7.29 ARC validation failure"));
        }
        out.checks.push((
            checks::ARC,
            label.into(),
            format!("{} set(s)", arc.sets().len()),
        ));
        results = results.with_arc_result(&arc, envelope.ip);
    }

    if auth.dmarc != DmarcMode::Off {
        let spf = spf_output.unwrap_or_else(|| SpfOutput::new(String::new()));
        let mail_from_domain = envelope.spf.map_or("", |o| o.domain.as_str());
        let params = DmarcParameters::new(&parsed, &dkim, mail_from_domain, &spf);
        let dmarc = tokio::time::timeout(timeout, authenticator.verify_dmarc(params)).await;
        match dmarc.ok() {
            Some(dmarc) => {
                let result = dmarc.result();
                let label = dmarc_label(&result);
                out.dmarc_pass = result == DmarcResult::Pass;
                let policy = dmarc.policy();
                let failed = matches!(result, DmarcResult::Fail(_));
                let refuse = failed
                    && (auth.dmarc == DmarcMode::Reject
                        || (auth.dmarc == DmarcMode::Enforce && policy == DmarcPolicy::Reject));
                if refuse {
                    out.refusal.get_or_insert_with(|| {
                        Reply::new(550, "5.7.1 Email rejected per DMARC policy")
                    });
                }
                out.checks.push((
                    checks::DMARC,
                    label.into(),
                    format!("{} p={}", dmarc.domain(), policy_word(policy)),
                ));
                results = results.with_dmarc_result(&dmarc);
            }
            None => out
                .checks
                .push((checks::DMARC, "temperror".into(), "DNS timeout".into())),
        }
    }
    out.header = mail_auth::common::headers::HeaderWriter::to_header(&results)
        .replace(BODY_HASH_NEUTRAL, BODY_HASH_FAIL);
    out
}

/// How mail-auth 0.13 writes a body-hash mismatch, and how RFC 6376 §6.1.3
/// classifies it (a failed signature; RFC 8601 `fail`).
const BODY_HASH_NEUTRAL: &str = "dkim=neutral (body hash did not verify)";
const BODY_HASH_FAIL: &str = "dkim=fail (body hash did not verify)";

/// True for mail-auth's `neutral` verdict on a body-hash mismatch, which
/// is a failed signature (RFC 6376 §6.1.3).
fn body_hash_mismatch(result: &DkimResult) -> bool {
    matches!(
        result,
        DkimResult::Neutral(Error::Dkim(mail_auth::dkim::DkimError::FailedBodyHashMatch))
    )
}

/// The SPF output from MAIL FROM, when SPF ran.
fn spf_output(envelope: &Envelope<'_>) -> Option<SpfOutput> {
    envelope.spf.map(|o| o.output.clone())
}

/// True when signatures exist, none passes and one fails for good.
fn dkim_refuses(dkim: &[DkimOutput<'_>]) -> bool {
    !dkim.iter().any(|d| *d.result() == DkimResult::Pass)
        && dkim.iter().any(|d| {
            matches!(d.result(), DkimResult::Fail(_) | DkimResult::PermError(_))
                || body_hash_mismatch(d.result())
        })
}

/// The overall DKIM label (`pass` when any signature passes, else the
/// first signature's result, `none` without signatures) and the signing
/// domains with their results.
fn dkim_summary(dkim: &[DkimOutput<'_>]) -> (&'static str, String) {
    let label = if dkim.is_empty() {
        "none"
    } else if dkim.iter().any(|d| *d.result() == DkimResult::Pass) {
        "pass"
    } else {
        dkim_label(dkim[0].result())
    };
    let detail = dkim
        .iter()
        .map(|d| {
            let domain = d.signature().map_or("?", |s| s.d.as_str());
            format!("{domain}:{}", dkim_label(d.result()))
        })
        .collect::<Vec<_>>()
        .join(" ");
    (label, detail)
}

/// RFC 8601 names of a DKIM (or ARC) result (a body-hash mismatch is a
/// `fail`, see [`body_hash_mismatch`]).
fn dkim_label(result: &DkimResult) -> &'static str {
    if body_hash_mismatch(result) {
        return "fail";
    }
    match result {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

/// RFC 8601 names of a DMARC result.
fn dmarc_label(result: &DmarcResult) -> &'static str {
    match result {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}

fn policy_word(policy: DmarcPolicy) -> &'static str {
    match policy {
        DmarcPolicy::Reject => "reject",
        DmarcPolicy::Quarantine => "quarantine",
        DmarcPolicy::None | DmarcPolicy::Unspecified => "none",
    }
}
