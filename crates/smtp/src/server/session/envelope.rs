//! The envelope commands: MAIL (parameters checked, backend asked) and
//! RCPT (the relay policy, the recipient limit), and STARTTLS.

use super::{
    not_implemented, unreachable_in_data, Phase, Session, Transaction, IN_BDAT, NEED_MAIL,
    NESTED_MAIL, SEND_HELO,
};
use crate::reply::Reply;
use crate::server::mail::{check_mail, check_rcpt_params};
use crate::server::rcpt::check_recipient;
use crate::server::step::Step;

impl Session {
    pub(super) fn mail(&mut self, from: &str, params: &str) -> Step {
        let helo = match &self.phase {
            Phase::Greeting => return self.error(Reply::new(503, SEND_HELO)),
            Phase::Mail(..) | Phase::Rcpt(..) | Phase::Chunk(..) => {
                return self.error(Reply::new(503, NESTED_MAIL))
            }
            Phase::Data { .. } => return unreachable_in_data(),
            Phase::Ready(helo) => helo.clone(),
        };
        match check_mail(from, params, self.config.limits.max_message_size) {
            Err(reply) => self.error(reply),
            Ok(checked) => {
                let tx = Transaction {
                    smtputf8: checked.smtputf8,
                    attempted: 0,
                    accepted: 0,
                };
                self.phase = Phase::Mail(helo, tx);
                Step::Mail {
                    from: from.to_owned(),
                    params: params.to_owned(),
                }
            }
        }
    }

    pub(super) fn rcpt(&mut self, to: &str, params: &str, source_route: bool) -> Step {
        let tx = match &mut self.phase {
            Phase::Greeting => return self.error(Reply::new(503, SEND_HELO)),
            Phase::Ready(_) => return self.error(Reply::new(503, NEED_MAIL)),
            Phase::Data { .. } => return unreachable_in_data(),
            Phase::Chunk(..) => return self.error(Reply::new(503, IN_BDAT)),
            Phase::Mail(_, tx) | Phase::Rcpt(_, tx) => tx,
        };
        tx.attempted = tx.attempted.saturating_add(1);
        let checked = if tx.accepted >= self.config.limits.max_recipients {
            Err(Reply::new(452, "4.5.3 Error: too many recipients"))
        } else {
            check_rcpt_params(to, params, tx.smtputf8)
                .and_then(|()| check_recipient(to, source_route, &self.config.relay_domains))
        };
        match checked {
            Ok(to) => Step::Rcpt {
                to,
                params: params.to_owned(),
            },
            Err(reply) => {
                let code = reply.code;
                // Running out of recipient room is not the client's error.
                let step = if code == 452 {
                    self.replied(reply)
                } else {
                    self.error(reply)
                };
                match step {
                    Step::Close => Step::Close,
                    _ => Step::RcptRefused {
                        to: to.to_owned(),
                        code,
                    },
                }
            }
        }
    }

    pub(super) fn starttls(&mut self) -> Step {
        if !self.config.tls_available {
            return self.error(not_implemented());
        }
        if self.tls_active {
            return self.error(Reply::new(503, "5.5.1 Error: TLS already active"));
        }
        match self.phase {
            Phase::Greeting => self.error(Reply::new(503, SEND_HELO)),
            Phase::Ready(_) => {
                self.phase = Phase::Greeting;
                self.tls_active = true;
                self.reply(&Reply::new(220, "2.0.0 Ready to start TLS"));
                Step::StartTls
            }
            _ => self.error(Reply::new(503, "5.5.1 Error: MAIL transaction in progress")),
        }
    }
}
