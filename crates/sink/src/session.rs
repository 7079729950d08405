//! The sink's SMTP protocol logic, free of I/O: bytes in, replies out, and an
//! [`Event`] telling the connection loop what to do next.
//!
//! Every complete command in the input is answered in order before more input
//! is asked for, which is all PIPELINING (RFC 2920) needs from a server: the
//! connection loop flushes the replies of a batch before it reads again.

use mxgate_smtp::{find_line, parse_command, Command, LineResult, Reply, MAX_COMMAND_LINE};

use crate::data::{DotReader, Feed};

/// RFC 5321 section 4.5.3.1.8 asks for at least 100; more is refused with 452.
pub(crate) const MAX_RECIPIENTS: usize = 1000;

/// What the connection loop must do after [`Session::step`].
#[derive(Debug)]
pub(crate) enum Event {
    /// Every complete command was answered; flush the replies and read more.
    NeedInput,
    /// A message was received: store it, then write the reply it yields.
    Message(Message),
    /// QUIT was answered: flush and close.
    Close,
}

/// One received message with its envelope.
#[derive(Debug)]
pub(crate) struct Message {
    /// The HELO/EHLO argument.
    pub(crate) helo: String,
    /// True if the client greeted with EHLO.
    pub(crate) extended: bool,
    /// The reverse-path, empty for the null sender.
    pub(crate) from: String,
    /// The forward-paths, in the order given, at least one.
    pub(crate) rcpts: Vec<String>,
    /// The message after dot-unstuffing, exactly as sent.
    pub(crate) body: Vec<u8>,
}

/// What the client said in HELO/EHLO; kept until the next HELO/EHLO.
#[derive(Debug)]
struct Greeting {
    name: String,
    extended: bool,
}

/// The mail transaction, if any (RFC 5321 section 3.3).
#[derive(Debug)]
enum Transaction {
    /// No MAIL yet (or after RSET, HELO/EHLO or the end of a message).
    Idle,
    /// MAIL accepted; RCPT adds recipients.
    Envelope { from: String, rcpts: Vec<String> },
    /// DATA accepted (354 sent); message text is being read.
    Data {
        from: String,
        rcpts: Vec<String>,
        reader: DotReader,
    },
}

/// The state of one SMTP session.
#[derive(Debug)]
pub(crate) struct Session {
    hostname: String,
    max_message_size: usize,
    greeting: Option<Greeting>,
    transaction: Transaction,
    /// True while skipping the rest of a command line longer than 512 octets.
    discarding: bool,
}

impl Session {
    /// A session for a server called `hostname`.
    pub(crate) fn new(hostname: &str, max_message_size: usize) -> Self {
        Session {
            hostname: hostname.to_owned(),
            max_message_size,
            greeting: None,
            transaction: Transaction::Idle,
            discarding: false,
        }
    }

    /// The 220 greeting.
    pub(crate) fn banner(&self) -> Reply {
        Reply::new(220, format!("{} ESMTP mxgate-sink", self.hostname))
    }

    /// The reply sent before closing an idle connection.
    pub(crate) fn timeout_reply(&self) -> Reply {
        Reply::new(
            421,
            format!("4.4.2 {} Error: timeout exceeded", self.hostname),
        )
    }

    /// The reply sent before closing a connection because the sink stops.
    pub(crate) fn shutdown_reply(&self) -> Reply {
        Reply::new(
            421,
            format!(
                "4.3.2 {} Service shutting down, closing transmission channel",
                self.hostname
            ),
        )
    }

    /// True while message text is being read (after 354).
    pub(crate) fn in_data(&self) -> bool {
        matches!(self.transaction, Transaction::Data { .. })
    }

    /// Handles as much of `input` as possible, appending replies to `out`.
    /// Returns the octets consumed; the rest must be offered again together
    /// with the next read.
    pub(crate) fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Event) {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            if let Transaction::Data { reader, .. } = &mut self.transaction {
                let (used, feed) = reader.feed(rest);
                pos += used;
                if feed == Feed::NeedMore {
                    return (pos, Event::NeedInput);
                }
                if let Some(message) = self.end_of_data(out) {
                    return (pos, Event::Message(message));
                }
                continue;
            }
            if self.discarding {
                let (used, done) = skip_line(rest);
                pos += used;
                if !done {
                    return (pos, Event::NeedInput);
                }
                self.discarding = false;
                push(out, &Reply::new(500, "5.5.2 Error: line too long"));
                continue;
            }
            let window = &rest[..rest.len().min(MAX_COMMAND_LINE)];
            if let Some(lf) = window.iter().position(|&b| b == b'\n') {
                if lf == 0 || window[lf - 1] != b'\r' {
                    pos += lf + 1;
                    push(out, &Reply::new(500, "5.5.2 Error: bare <LF> received"));
                    continue;
                }
            }
            match find_line(rest, MAX_COMMAND_LINE) {
                LineResult::Incomplete => return (pos, Event::NeedInput),
                LineResult::TooLong => self.discarding = true,
                LineResult::Line(len) => {
                    pos += len;
                    if let Some(event) = self.command(&rest[..len], out) {
                        return (pos, event);
                    }
                }
            }
        }
    }

    /// Answers one command line; `Some` if the connection loop must act.
    fn command(&mut self, line: &[u8], out: &mut Vec<u8>) -> Option<Event> {
        let command = match parse_command(line) {
            Ok(command) => command,
            Err(error) => {
                push(out, &Reply::from(error));
                return None;
            }
        };
        let reply = match command {
            Command::Helo(name) | Command::Ehlo(name) => {
                let extended = matches!(command, Command::Ehlo(_));
                self.greeting = Some(Greeting {
                    name: name.to_owned(),
                    extended,
                });
                self.transaction = Transaction::Idle;
                self.greeting_reply(extended)
            }
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, params } => self.rcpt(to, params),
            Command::Data => self.data(),
            Command::Rset => {
                self.transaction = Transaction::Idle;
                Reply::new(250, "2.0.0 Ok")
            }
            Command::Noop => Reply::new(250, "2.0.0 Ok"),
            Command::Quit => {
                push(out, &Reply::new(221, "2.0.0 Bye"));
                return Some(Event::Close);
            }
            Command::Vrfy(_) => Reply::new(
                252,
                "2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Command::Help => Reply::new(214, "2.0.0 mxgate-sink: see RFC 5321"),
            Command::StartTls | Command::Bdat { .. } => {
                Reply::new(502, "5.5.1 Error: command not implemented")
            }
            Command::Unknown(_) => Reply::new(502, "5.5.2 Error: command not recognized"),
        };
        push(out, &reply);
        None
    }

    fn greeting_reply(&self, extended: bool) -> Reply {
        if !extended {
            return Reply::new(250, self.hostname.clone());
        }
        Reply::multiline(
            250,
            [
                self.hostname.clone(),
                "PIPELINING".to_owned(),
                format!("SIZE {}", self.max_message_size),
                "8BITMIME".to_owned(),
                "ENHANCEDSTATUSCODES".to_owned(),
                "SMTPUTF8".to_owned(),
            ],
        )
    }

    fn mail(&mut self, from: &str, params: &str) -> Reply {
        if self.greeting.is_none() {
            return Reply::new(503, "5.5.1 Error: send HELO/EHLO first");
        }
        if !matches!(self.transaction, Transaction::Idle) {
            return Reply::new(503, "5.5.1 Error: nested MAIL command");
        }
        if let Err(reply) = check_mail_params(params, self.max_message_size) {
            return reply;
        }
        self.transaction = Transaction::Envelope {
            from: from.to_owned(),
            rcpts: Vec::new(),
        };
        Reply::new(250, "2.1.0 Ok")
    }

    fn rcpt(&mut self, to: &str, params: &str) -> Reply {
        let Transaction::Envelope { rcpts, .. } = &mut self.transaction else {
            return Reply::new(503, "5.5.1 Error: need MAIL command");
        };
        if let Some(param) = params.split(' ').find(|p| !p.is_empty()) {
            return unsupported(param);
        }
        if rcpts.len() >= MAX_RECIPIENTS {
            return Reply::new(452, "4.5.3 Error: too many recipients");
        }
        rcpts.push(to.to_owned());
        Reply::new(250, "2.1.5 Ok")
    }

    fn data(&mut self) -> Reply {
        match std::mem::replace(&mut self.transaction, Transaction::Idle) {
            Transaction::Envelope { from, rcpts } if !rcpts.is_empty() => {
                self.transaction = Transaction::Data {
                    from,
                    rcpts,
                    reader: DotReader::new(self.max_message_size),
                };
                Reply::new(354, "End data with <CR><LF>.<CR><LF>")
            }
            Transaction::Envelope { from, rcpts } => {
                self.transaction = Transaction::Envelope { from, rcpts };
                Reply::new(503, "5.5.1 Error: need RCPT command")
            }
            _ => Reply::new(503, "5.5.1 Error: need MAIL command"),
        }
    }

    /// Ends the DATA phase: the message, or a 552 reply if it was too large.
    fn end_of_data(&mut self, out: &mut Vec<u8>) -> Option<Message> {
        let Transaction::Data {
            from,
            rcpts,
            reader,
        } = std::mem::replace(&mut self.transaction, Transaction::Idle)
        else {
            return None;
        };
        if reader.too_large() {
            tracing::info!(size = reader.size(), from = %from, "message refused: too big");
            push(out, &Reply::new(552, "5.3.4 Error: message file too big"));
            return None;
        }
        let (helo, extended) = match &self.greeting {
            Some(greeting) => (greeting.name.clone(), greeting.extended),
            None => (String::new(), false),
        };
        Some(Message {
            helo,
            extended,
            from,
            rcpts,
            body: reader.into_body(),
        })
    }
}

/// Checks MAIL parameters: SIZE (RFC 1870), BODY (RFC 6152) and SMTPUTF8
/// (RFC 6531) are known; anything else gets 555 (RFC 5321 section 4.1.1.11).
/// They are accepted after HELO too, leniently.
fn check_mail_params(params: &str, max_size: usize) -> Result<(), Reply> {
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (param, None),
        };
        if key.eq_ignore_ascii_case("SIZE") {
            let size = value
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| Reply::new(501, "5.5.4 Bad SIZE parameter"))?;
            // A number too long for u64 is certainly too big.
            let fits = size.parse::<u64>().is_ok_and(|n| n <= max_size as u64);
            if !fits {
                return Err(Reply::new(552, "5.3.4 Message size exceeds fixed limit"));
            }
        } else if key.eq_ignore_ascii_case("BODY") {
            let known = value.is_some_and(|v| {
                v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME")
            });
            if !known {
                return Err(Reply::new(501, "5.5.4 Unsupported BODY parameter"));
            }
        } else if key.eq_ignore_ascii_case("SMTPUTF8") {
            if value.is_some() {
                return Err(Reply::new(501, "5.5.4 SMTPUTF8 takes no value"));
            }
        } else {
            return Err(unsupported(param));
        }
    }
    Ok(())
}

fn unsupported(param: &str) -> Reply {
    let key = param.split('=').next().unwrap_or(param);
    Reply::new(555, format!("5.5.4 Unsupported option: {key}"))
}

/// Skips octets up to and including the next CRLF. Returns the octets used
/// and whether the CRLF was found; a trailing CR is left for the next read.
fn skip_line(input: &[u8]) -> (usize, bool) {
    match find_line(input, usize::MAX) {
        LineResult::Line(len) => (len, true),
        _ => (input.len() - usize::from(input.ends_with(b"\r")), false),
    }
}

fn push(out: &mut Vec<u8>, reply: &Reply) {
    out.extend_from_slice(reply.to_string().as_bytes());
}

#[cfg(test)]
mod tests;
