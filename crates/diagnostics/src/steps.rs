//! The record of an SMTP conversation: each step with its duration, the
//! command sent and the reply read, and the first step that failed.

use crate::millis;
use mxgate_balance::check::{CheckError, Step};
use mxgate_smtp::Reply;
use serde::Serialize;
use std::future::Future;
use std::time::Instant;

/// An SMTP reply as read from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmtpReply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line, without the code.
    pub lines: Vec<String>,
}

impl SmtpReply {
    /// The reply on one line, e.g. `250 2.0.0 Ok: queued as 4Zx1` (lines
    /// joined with ` / `).
    pub fn one_line(&self) -> String {
        let text = self.lines.join(" / ");
        if text.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {text}", self.code)
        }
    }
}

impl From<&Reply> for SmtpReply {
    fn from(reply: &Reply) -> Self {
        SmtpReply {
            code: reply.code,
            lines: reply.lines.clone(),
        }
    }
}

/// One step of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTiming {
    /// The step: `connect`, `banner`, `EHLO`, `STARTTLS`, `TLS handshake`,
    /// `EHLO after STARTTLS`, `MAIL FROM`, `RCPT TO`, `DATA`, `end of data`,
    /// `QUIT`.
    pub step: String,
    /// The command line sent, without CRLF (`None` for connect, banner, TLS
    /// handshake and message content).
    pub command: Option<String>,
    /// The server's reply, when one was read.
    pub reply: Option<SmtpReply>,
    /// How long the step took, in milliseconds.
    pub millis: f64,
    /// The step did what it should (e.g. the reply had the expected code).
    pub ok: bool,
}

/// The step that ended a conversation early, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepError {
    /// The step (as in [`StepTiming::step`]).
    pub step: String,
    /// What went wrong, one sentence.
    pub message: String,
}

/// Collects [`StepTiming`]s and the first error.
#[derive(Debug, Default)]
pub(crate) struct Steps {
    pub(crate) list: Vec<StepTiming>,
    pub(crate) error: Option<StepError>,
}

impl Steps {
    /// Times `work` as `step`; on error records it and returns `None`.
    pub(crate) async fn run<T>(
        &mut self,
        step: Step,
        work: impl Future<Output = Result<T, CheckError>>,
    ) -> Option<T> {
        let started = Instant::now();
        let got = work.await;
        self.push(step, None, None, started, got.is_ok());
        got.map_err(|e| self.fail(e.step(), e.to_string())).ok()
    }

    /// Times a command (or, with `command == None`, a reply alone) as
    /// `step`; the reply must have code `expect`, else the step failed and
    /// the error names the reply. Returns the reply when it was read.
    pub(crate) async fn exchange(
        &mut self,
        step: Step,
        command: Option<&str>,
        work: impl Future<Output = Result<Reply, CheckError>>,
        expect: u16,
    ) -> Option<Reply> {
        let started = Instant::now();
        let got = work.await;
        let command = command.map(|c| c.trim_end().to_owned());
        match got {
            Ok(reply) => {
                let ok = reply.code == expect;
                let shown = SmtpReply::from(&reply);
                if !ok {
                    self.fail(step, format!("expected {expect}, got {}", shown.one_line()));
                }
                self.push(step, command, Some(shown), started, ok);
                Some(reply)
            }
            Err(e) => {
                self.push(step, command, None, started, false);
                self.fail(e.step(), e.to_string());
                None
            }
        }
    }

    /// Records `message` as the error of `step` unless one is already there.
    pub(crate) fn fail(&mut self, step: Step, message: String) {
        self.error.get_or_insert(StepError {
            step: step.to_string(),
            message,
        });
    }

    /// True when a step failed.
    pub(crate) fn failed(&self) -> bool {
        self.error.is_some()
    }

    fn push(
        &mut self,
        step: Step,
        command: Option<String>,
        reply: Option<SmtpReply>,
        started: Instant,
        ok: bool,
    ) {
        self.list.push(StepTiming {
            step: step.to_string(),
            command,
            reply,
            millis: millis(started.elapsed()),
            ok,
        });
    }

    /// The duration of the last `step` recorded, if any.
    pub(crate) fn millis_of(&self, step: Step) -> Option<f64> {
        let name = step.to_string();
        self.list
            .iter()
            .rev()
            .find(|s| s.step == name)
            .map(|s| s.millis)
    }
}
