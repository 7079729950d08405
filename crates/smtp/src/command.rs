//! SMTP command lines (RFC 5321 section 4.1, plus STARTTLS from RFC 3207 and
//! BDAT from RFC 3030): one line in, one borrowed [`Command`] out.
//!
//! Strict where it matters for safety, lenient where real clients differ:
//!
//! - the line must end in CRLF and contain no other CR, LF or NUL (a bare LF
//!   is never a line end: SMTP smuggling);
//! - verbs are case-insensitive, trailing spaces after the arguments are
//!   ignored;
//! - `MAIL FROM:` and `RCPT TO:` are case-insensitive and may be followed by
//!   spaces before the `<` (as Postfix accepts by default), but the angle
//!   brackets are required;
//! - a source route (`<@a,@b:user@c>`) is accepted and dropped, as RFC 5321
//!   section 4.1.1.3 requires;
//! - text must be UTF-8 (ASCII, or SMTPUTF8 per RFC 6531).

use thiserror::Error;

use crate::reply::Reply;

/// One parsed command line. Every `&str` borrows from the line given to
/// [`parse_command`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `HELO domain`: the argument, trimmed.
    Helo(&'a str),
    /// `EHLO domain`: the argument, trimmed.
    Ehlo(&'a str),
    /// `MAIL FROM:<path> [params]`.
    Mail {
        /// The reverse-path without angle brackets or source route; empty for
        /// the null sender `<>`.
        from: &'a str,
        /// The ESMTP parameters after the path (`SIZE=1000 BODY=8BITMIME`),
        /// empty if none.
        params: &'a str,
    },
    /// `RCPT TO:<path> [params]`.
    Rcpt {
        /// The forward-path without angle brackets or source route; never
        /// empty.
        to: &'a str,
        /// The ESMTP parameters after the path, empty if none.
        params: &'a str,
    },
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `NOOP [string]`; the argument is ignored.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`: the argument, trimmed.
    Vrfy(&'a str),
    /// `HELP [string]`; the argument is ignored.
    Help,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `BDAT chunk-size [LAST]` (RFC 3030).
    Bdat {
        /// Octets of message data that follow the command line.
        size: u64,
        /// True if this is the last chunk.
        last: bool,
    },
    /// Any other verb (including EXPN, which this crate does not implement):
    /// the verb as sent, for logging.
    Unknown(&'a str),
}

/// Why a command line was refused. Always the client's fault; map it to a
/// reply with [`Reply::from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The line does not end with CRLF.
    #[error("command line does not end with CRLF")]
    MissingCrlf,
    /// The line contains a CR, LF or NUL before its CRLF.
    #[error("command line contains a bare CR, LF or a NUL")]
    InvalidCharacter,
    /// The line is not UTF-8.
    #[error("command line is not UTF-8")]
    NotUtf8,
    /// The line is empty or only spaces.
    #[error("empty command line")]
    Empty,
    /// The verb is known but its arguments are malformed.
    #[error("syntax error, expected: {usage}")]
    Syntax {
        /// What the command should look like, e.g. `MAIL FROM:<address>`.
        usage: &'static str,
    },
    /// The path in `MAIL FROM:<...>` is malformed.
    #[error("bad sender address syntax")]
    InvalidSender,
    /// The path in `RCPT TO:<...>` is malformed or empty.
    #[error("bad recipient address syntax")]
    InvalidRecipient,
}

impl From<&CommandError> for Reply {
    /// The reply a server sends for this error, with its RFC 3463 enhanced
    /// status code: 500 5.5.2 for an unreadable line, 501 with 5.5.4, 5.1.7
    /// or 5.1.3 for bad arguments.
    fn from(error: &CommandError) -> Self {
        match error {
            CommandError::MissingCrlf
            | CommandError::InvalidCharacter
            | CommandError::NotUtf8
            | CommandError::Empty => Reply::new(500, "5.5.2 Error: bad syntax"),
            CommandError::Syntax { usage } => Reply::new(501, format!("5.5.4 Syntax: {usage}")),
            CommandError::InvalidSender => Reply::new(501, "5.1.7 Bad sender address syntax"),
            CommandError::InvalidRecipient => Reply::new(501, "5.1.3 Bad recipient address syntax"),
        }
    }
}

impl From<CommandError> for Reply {
    fn from(error: CommandError) -> Self {
        Reply::from(&error)
    }
}

/// Parses one command line, CRLF included (as delimited by
/// [`find_line`](crate::find_line)).
///
/// # Errors
///
/// [`CommandError`] when the line is not a well-formed command; an unknown
/// verb is not an error but [`Command::Unknown`].
///
/// ```
/// use mxgate_smtp::{parse_command, Command};
/// assert_eq!(
///     parse_command(b"mail from:<a@example.org> SIZE=100\r\n"),
///     Ok(Command::Mail { from: "a@example.org", params: "SIZE=100" })
/// );
/// ```
pub fn parse_command(line: &[u8]) -> Result<Command<'_>, CommandError> {
    let body = line
        .strip_suffix(b"\r\n")
        .ok_or(CommandError::MissingCrlf)?;
    if body.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(CommandError::InvalidCharacter);
    }
    let text = std::str::from_utf8(body).map_err(|_| CommandError::NotUtf8)?;
    let text = text.trim_end_matches([' ', '\t']);
    let (verb, args) = text.split_once(' ').unwrap_or((text, ""));
    if verb.is_empty() {
        return Err(CommandError::Empty);
    }
    let is = |name: &str| verb.eq_ignore_ascii_case(name);
    let no_args = |command, usage| {
        if args.is_empty() {
            Ok(command)
        } else {
            Err(CommandError::Syntax { usage })
        }
    };
    if is("HELO") || is("EHLO") {
        let domain = args.trim_matches(' ');
        if domain.is_empty() {
            let usage = if is("HELO") {
                "HELO hostname"
            } else {
                "EHLO hostname"
            };
            return Err(CommandError::Syntax { usage });
        }
        return Ok(if is("HELO") {
            Command::Helo(domain)
        } else {
            Command::Ehlo(domain)
        });
    }
    if is("MAIL") {
        let (from, params) = parse_path_arg(args, "FROM:", "MAIL FROM:<address>")
            .map_err(|e| e.unwrap_or(CommandError::InvalidSender))?;
        return Ok(Command::Mail { from, params });
    }
    if is("RCPT") {
        let (to, params) = parse_path_arg(args, "TO:", "RCPT TO:<address>")
            .map_err(|e| e.unwrap_or(CommandError::InvalidRecipient))?;
        if to.is_empty() {
            return Err(CommandError::InvalidRecipient);
        }
        return Ok(Command::Rcpt { to, params });
    }
    if is("DATA") {
        return no_args(Command::Data, "DATA");
    }
    if is("RSET") {
        return no_args(Command::Rset, "RSET");
    }
    if is("QUIT") {
        return no_args(Command::Quit, "QUIT");
    }
    if is("STARTTLS") {
        return no_args(Command::StartTls, "STARTTLS");
    }
    if is("NOOP") {
        return Ok(Command::Noop);
    }
    if is("HELP") {
        return Ok(Command::Help);
    }
    if is("VRFY") {
        let arg = args.trim_matches(' ');
        if arg.is_empty() {
            return Err(CommandError::Syntax {
                usage: "VRFY address",
            });
        }
        return Ok(Command::Vrfy(arg));
    }
    if is("BDAT") {
        return parse_bdat(args);
    }
    Ok(Command::Unknown(verb))
}

/// Parses `FROM:<path> params` / `TO:<path> params`. `Err(None)` means the
/// path itself is bad (the caller picks sender or recipient), `Err(Some(_))`
/// a syntax error around it.
fn parse_path_arg<'a>(
    args: &'a str,
    keyword: &str,
    usage: &'static str,
) -> Result<(&'a str, &'a str), Option<CommandError>> {
    let syntax = Some(CommandError::Syntax { usage });
    let prefix = args.get(..keyword.len()).ok_or(syntax)?;
    if !prefix.eq_ignore_ascii_case(keyword) {
        return Err(syntax);
    }
    let rest = args[keyword.len()..].trim_start_matches(' ');
    let inner = rest.strip_prefix('<').ok_or(syntax)?;
    let close = closing_bracket(inner).ok_or(syntax)?;
    let path = &inner[..close];
    let after = &inner[close + 1..];
    let params = match after.strip_prefix(' ') {
        Some(params) => params.trim_start_matches(' '),
        None if after.is_empty() => "",
        None => return Err(syntax),
    };
    let mailbox = strip_source_route(path).ok_or(None)?;
    if !valid_mailbox(mailbox) {
        return Err(None);
    }
    Ok((mailbox, params))
}

/// Index of the `>` that closes a path, skipping quoted strings in the local
/// part (`"a>b"@example.org`).
fn closing_bracket(inner: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (index, c) in inner.char_indices() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => quoted = false,
            (true, false, _) => {}
            (false, _, '"') => quoted = true,
            (false, _, '>') => return Some(index),
            (false, _, _) => {}
        }
    }
    None
}

/// Drops an RFC 5321 `A-d-l ":"` source route; `None` if it is malformed.
fn strip_source_route(path: &str) -> Option<&str> {
    if !path.starts_with('@') {
        return Some(path);
    }
    let (route, mailbox) = path.split_once(':')?;
    let ok = route.split(',').all(|hop| {
        hop.strip_prefix('@')
            .is_some_and(|domain| !domain.is_empty() && !domain.contains(['@', ' ', '"']))
    });
    ok.then_some(mailbox)
}

/// A light check of a mailbox: no unquoted space, `<` or `>`, no control
/// characters, quotes balanced. Empty is allowed (the null path).
fn valid_mailbox(mailbox: &str) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for c in mailbox.chars() {
        if c.is_control() {
            return false;
        }
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => quoted = false,
            (true, false, _) => {}
            (false, _, '"') => quoted = true,
            (false, _, ' ' | '<' | '>') => return false,
            (false, _, _) => {}
        }
    }
    !quoted && !mailbox.starts_with('@')
}

/// Parses `chunk-size [LAST]`.
fn parse_bdat(args: &str) -> Result<Command<'_>, CommandError> {
    let syntax = CommandError::Syntax {
        usage: "BDAT chunk-size [LAST]",
    };
    let mut words = args.split(' ').filter(|w| !w.is_empty());
    let size = words.next().ok_or(syntax)?;
    if !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax);
    }
    let size = size.parse::<u64>().map_err(|_| syntax)?;
    let last = match words.next() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(syntax),
    };
    if words.next().is_some() {
        return Err(syntax);
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command<'_>, CommandError> {
        parse_command(line.as_bytes())
    }

    #[test]
    fn simple_verbs_any_case() {
        assert_eq!(parse("DATA\r\n"), Ok(Command::Data));
        assert_eq!(parse("data\r\n"), Ok(Command::Data));
        assert_eq!(parse("RsEt\r\n"), Ok(Command::Rset));
        assert_eq!(parse("QUIT\r\n"), Ok(Command::Quit));
        assert_eq!(parse("QUIT  \r\n"), Ok(Command::Quit));
        assert_eq!(parse("NOOP\r\n"), Ok(Command::Noop));
        assert_eq!(parse("NOOP anything\r\n"), Ok(Command::Noop));
        assert_eq!(parse("HELP\r\n"), Ok(Command::Help));
        assert_eq!(parse("help mail\r\n"), Ok(Command::Help));
        assert_eq!(parse("STARTTLS\r\n"), Ok(Command::StartTls));
    }

    #[test]
    fn argumentless_verbs_refuse_arguments() {
        for line in ["DATA x\r\n", "RSET x\r\n", "QUIT now\r\n", "STARTTLS x\r\n"] {
            assert!(
                matches!(parse(line), Err(CommandError::Syntax { .. })),
                "{line:?}"
            );
        }
    }

    #[test]
    fn helo_and_ehlo() {
        assert_eq!(
            parse("EHLO client.example\r\n"),
            Ok(Command::Ehlo("client.example"))
        );
        assert_eq!(
            parse("helo [192.0.2.1]\r\n"),
            Ok(Command::Helo("[192.0.2.1]"))
        );
        assert_eq!(
            parse("EHLO\r\n"),
            Err(CommandError::Syntax {
                usage: "EHLO hostname"
            })
        );
        assert_eq!(
            parse("HELO   \r\n"),
            Err(CommandError::Syntax {
                usage: "HELO hostname"
            })
        );
    }

    #[test]
    fn mail_from() {
        assert_eq!(
            parse("MAIL FROM:<a@example.org>\r\n"),
            Ok(Command::Mail {
                from: "a@example.org",
                params: ""
            })
        );
        assert_eq!(
            parse("mail from:<a@example.org> SIZE=10 BODY=8BITMIME\r\n"),
            Ok(Command::Mail {
                from: "a@example.org",
                params: "SIZE=10 BODY=8BITMIME"
            })
        );
        assert_eq!(
            parse("MAIL FROM: <a@example.org>\r\n"),
            Ok(Command::Mail {
                from: "a@example.org",
                params: ""
            })
        );
    }

    #[test]
    fn null_sender() {
        assert_eq!(
            parse("MAIL FROM:<>\r\n"),
            Ok(Command::Mail {
                from: "",
                params: ""
            })
        );
        assert_eq!(parse("RCPT TO:<>\r\n"), Err(CommandError::InvalidRecipient));
    }

    #[test]
    fn missing_angle_brackets_is_a_syntax_error() {
        let mail = CommandError::Syntax {
            usage: "MAIL FROM:<address>",
        };
        assert_eq!(parse("MAIL FROM:a@example.org\r\n"), Err(mail));
        assert_eq!(parse("MAIL FROM:<a@example.org\r\n"), Err(mail));
        assert_eq!(parse("MAIL a@example.org\r\n"), Err(mail));
        assert_eq!(parse("MAIL\r\n"), Err(mail));
        assert_eq!(parse("MAIL FROM:<a@b>SIZE=1\r\n"), Err(mail));
        assert_eq!(
            parse("RCPT TO:b@example.org\r\n"),
            Err(CommandError::Syntax {
                usage: "RCPT TO:<address>"
            })
        );
    }

    #[test]
    fn bad_addresses() {
        assert_eq!(
            parse("MAIL FROM:<a b@example.org>\r\n"),
            Err(CommandError::InvalidSender)
        );
        assert_eq!(
            parse("RCPT TO:<a<b@example.org>\r\n"),
            Err(CommandError::InvalidRecipient)
        );
        assert_eq!(
            parse("RCPT TO:<\"open@example.org>\r\n"),
            Err(CommandError::Syntax {
                usage: "RCPT TO:<address>"
            })
        );
        assert_eq!(
            parse("RCPT TO:<@relay.example>\r\n"),
            Err(CommandError::InvalidRecipient)
        );
    }

    #[test]
    fn rcpt_to_with_quotes_and_source_route() {
        assert_eq!(
            parse("RCPT TO:<\"a> b\"@example.org> NOTIFY=NEVER\r\n"),
            Ok(Command::Rcpt {
                to: "\"a> b\"@example.org",
                params: "NOTIFY=NEVER"
            })
        );
        assert_eq!(
            parse("rcpt to:<@hop1.example,@hop2.example:user@example.org>\r\n"),
            Ok(Command::Rcpt {
                to: "user@example.org",
                params: ""
            })
        );
        assert_eq!(
            parse("RCPT TO:<Postmaster>\r\n"),
            Ok(Command::Rcpt {
                to: "Postmaster",
                params: ""
            })
        );
    }

    #[test]
    fn utf8_addresses() {
        assert_eq!(
            parse("RCPT TO:<jösé@bücher.example> \r\n"),
            Ok(Command::Rcpt {
                to: "jösé@bücher.example",
                params: ""
            })
        );
        assert_eq!(
            parse_command(b"RCPT TO:<\xff@x>\r\n"),
            Err(CommandError::NotUtf8)
        );
    }

    #[test]
    fn vrfy_bdat_unknown() {
        assert_eq!(parse("VRFY root\r\n"), Ok(Command::Vrfy("root")));
        assert!(matches!(
            parse("VRFY\r\n"),
            Err(CommandError::Syntax { .. })
        ));
        assert_eq!(
            parse("BDAT 1000\r\n"),
            Ok(Command::Bdat {
                size: 1000,
                last: false
            })
        );
        assert_eq!(
            parse("bdat 0 last\r\n"),
            Ok(Command::Bdat {
                size: 0,
                last: true
            })
        );
        for bad in [
            "BDAT\r\n",
            "BDAT x\r\n",
            "BDAT +5\r\n",
            "BDAT 5 FIRST\r\n",
            "BDAT 5 LAST x\r\n",
            "BDAT 99999999999999999999999\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(CommandError::Syntax { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(parse("EXPN staff\r\n"), Ok(Command::Unknown("EXPN")));
        assert_eq!(parse("GET / HTTP/1.1\r\n"), Ok(Command::Unknown("GET")));
    }

    #[test]
    fn line_level_errors() {
        assert_eq!(parse("QUIT"), Err(CommandError::MissingCrlf));
        assert_eq!(parse("QUIT\n"), Err(CommandError::MissingCrlf));
        assert_eq!(parse("QUIT\r"), Err(CommandError::MissingCrlf));
        assert_eq!(parse("NOOP\nDATA\r\n"), Err(CommandError::InvalidCharacter));
        assert_eq!(parse("NOOP\r\r\n"), Err(CommandError::InvalidCharacter));
        assert_eq!(parse("NO\0OP\r\n"), Err(CommandError::InvalidCharacter));
        assert_eq!(parse("\r\n"), Err(CommandError::Empty));
        assert_eq!(parse("   \r\n"), Err(CommandError::Empty));
        assert_eq!(parse(" QUIT\r\n"), Err(CommandError::Empty));
    }

    #[test]
    fn errors_map_to_replies() {
        let reply = Reply::from(CommandError::Empty);
        assert_eq!(reply.to_string(), "500 5.5.2 Error: bad syntax\r\n");
        let reply = Reply::from(CommandError::InvalidSender);
        assert_eq!(reply.code, 501);
        assert!(reply.lines[0].starts_with("5.1.7 "));
        let reply = Reply::from(CommandError::InvalidRecipient);
        assert!(reply.lines[0].starts_with("5.1.3 "));
        let reply = Reply::from(CommandError::Syntax { usage: "DATA" });
        assert_eq!(reply.to_string(), "501 5.5.4 Syntax: DATA\r\n");
    }
}
