//! MAIL FROM: the ESMTP parameters this server understands and the checks
//! made before the backend is asked.
//!
//! Accepted: `SIZE=<n>` (RFC 1870; more than the limit gives 552 5.3.4),
//! `BODY=7BIT|8BITMIME` (RFC 6152), `SMTPUTF8` (RFC 6531). Anything else is
//! `555 5.5.4` (the extension was not advertised). A non-ASCII sender needs
//! `SMTPUTF8` (`553 5.6.7`). The null sender `<>` is fine.

use crate::reply::Reply;

/// What the MAIL parameters said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailParams {
    /// The `SIZE=` the client declared, if any.
    pub size: Option<u64>,
    /// True with `SMTPUTF8`: non-ASCII addresses are allowed.
    pub smtputf8: bool,
}

/// Checks `MAIL FROM:<from> params` against the size limit.
///
/// # Errors
///
/// The reply for the client: 501 5.5.4 (bad value), 555 5.5.4 (unknown
/// parameter), 552 5.3.4 (declared size too large), 553 5.6.7 (non-ASCII
/// sender without SMTPUTF8).
pub fn check_mail(from: &str, params: &str, max_size: u64) -> Result<MailParams, Reply> {
    let mut parsed = MailParams::default();
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if key.eq_ignore_ascii_case("SIZE") {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad_value(param));
            }
            // A size beyond u64 is certainly too large.
            let size = value.parse::<u64>().unwrap_or(u64::MAX);
            if size > max_size {
                return Err(Reply::new(
                    552,
                    "5.3.4 Error: message size exceeds fixed maximum message size",
                ));
            }
            parsed.size = Some(size);
        } else if key.eq_ignore_ascii_case("BODY") {
            if !value.eq_ignore_ascii_case("7BIT") && !value.eq_ignore_ascii_case("8BITMIME") {
                return Err(bad_value(param));
            }
        } else if key.eq_ignore_ascii_case("SMTPUTF8") && value.is_empty() {
            parsed.smtputf8 = true;
        } else {
            return Err(unsupported(param));
        }
    }
    if !from.is_ascii() && !parsed.smtputf8 {
        return Err(needs_smtputf8());
    }
    Ok(parsed)
}

/// Checks `RCPT TO:` parameters (none are supported: DSN is not offered)
/// and a non-ASCII recipient against the transaction's SMTPUTF8.
///
/// # Errors
///
/// 555 5.5.4 for any parameter, 553 5.6.7 for a non-ASCII address without
/// SMTPUTF8.
pub fn check_rcpt_params(to: &str, params: &str, smtputf8: bool) -> Result<(), Reply> {
    if let Some(param) = params.split(' ').find(|p| !p.is_empty()) {
        return Err(unsupported(param));
    }
    if !to.is_ascii() && !smtputf8 {
        return Err(needs_smtputf8());
    }
    Ok(())
}

fn bad_value(param: &str) -> Reply {
    Reply::new(501, format!("5.5.4 Error: bad parameter value: {param}"))
}

fn unsupported(param: &str) -> Reply {
    Reply::new(555, format!("5.5.4 Error: unsupported parameter: {param}"))
}

fn needs_smtputf8() -> Reply {
    Reply::new(553, "5.6.7 Error: non-ASCII address needs SMTPUTF8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_parameters() {
        let p = check_mail("a@b", "SIZE=100 body=8BITMIME SMTPUTF8", 1000).unwrap();
        assert_eq!(
            p,
            MailParams {
                size: Some(100),
                smtputf8: true
            }
        );
        assert_eq!(check_mail("", "", 10), Ok(MailParams::default()));
        assert!(check_mail("a@b", "BODY=7bit", 10).is_ok());
    }

    #[test]
    fn size_limit_and_bad_values() {
        assert_eq!(check_mail("a@b", "SIZE=1001", 1000).unwrap_err().code, 552);
        assert_eq!(
            check_mail("a@b", "SIZE=99999999999999999999999", 1000)
                .unwrap_err()
                .code,
            552
        );
        assert!(check_mail("a@b", "SIZE=1000", 1000).is_ok());
        for bad in ["SIZE=", "SIZE=-1", "SIZE=1k", "BODY=BINARYMIME", "BODY"] {
            assert_eq!(check_mail("a@b", bad, 1000).unwrap_err().code, 501, "{bad}");
        }
    }

    #[test]
    fn unknown_parameters_and_utf8() {
        assert_eq!(check_mail("a@b", "AUTH=<>", 10).unwrap_err().code, 555);
        assert_eq!(check_mail("a@b", "SMTPUTF8=x", 10).unwrap_err().code, 555);
        assert_eq!(check_mail("\u{e9}@b", "", 10).unwrap_err().code, 553);
        assert!(check_mail("\u{e9}@b", "SMTPUTF8", 10).is_ok());
        assert_eq!(
            check_rcpt_params("a@b", "NOTIFY=NEVER", false)
                .unwrap_err()
                .code,
            555
        );
        assert_eq!(
            check_rcpt_params("\u{e9}@b", "", false).unwrap_err().code,
            553
        );
        assert!(check_rcpt_params("\u{e9}@b", "", true).is_ok());
        assert!(check_rcpt_params("a@b", "", false).is_ok());
    }
}
