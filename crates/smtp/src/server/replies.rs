//! Counts of the replies a session sent, by the phase of the dialogue they
//! answer ([`ReplyPhase`]) and their class ([`ReplyClass`]: 2xx, 3xx, 4xx,
//! 5xx). The engine counts every reply it queues, its own and the
//! backend's; the driver adds the counts into the listener's counters.

use crate::reply::ReplyClass;

/// The phase of the dialogue a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyPhase {
    /// The banner (and refusals before it).
    Connect,
    /// HELO and EHLO.
    Helo,
    /// MAIL.
    Mail,
    /// RCPT.
    Rcpt,
    /// DATA and BDAT up to the end of the message: the 354, sequence
    /// errors, the backend's refusal of DATA, the 250 after each non-LAST
    /// BDAT chunk.
    Data,
    /// The final reply to the message: after the end-of-data line, after
    /// `BDAT ... LAST`, or a BDAT refused for size.
    EndOfData,
    /// Everything else: RSET, NOOP, QUIT, VRFY, HELP, STARTTLS, unknown
    /// commands, overlong lines, timeouts, "too many errors".
    Other,
}

impl ReplyPhase {
    /// Every phase, in metrics order (the index of [`ReplyCounts`]).
    pub const ALL: [ReplyPhase; 7] = [
        ReplyPhase::Connect,
        ReplyPhase::Helo,
        ReplyPhase::Mail,
        ReplyPhase::Rcpt,
        ReplyPhase::Data,
        ReplyPhase::EndOfData,
        ReplyPhase::Other,
    ];

    /// Label value in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyPhase::Connect => "connect",
            ReplyPhase::Helo => "helo",
            ReplyPhase::Mail => "mail",
            ReplyPhase::Rcpt => "rcpt",
            ReplyPhase::Data => "data",
            ReplyPhase::EndOfData => "end_of_data",
            ReplyPhase::Other => "other",
        }
    }

    /// The phase of the replies to a command line, from its verb (also for
    /// lines that do not parse): HELO/EHLO, MAIL, RCPT, DATA/BDAT, or other.
    pub fn of_command(line: &[u8]) -> ReplyPhase {
        let verb = line.get(..4).unwrap_or(line);
        let is = |name: &[u8]| verb.eq_ignore_ascii_case(name);
        if is(b"HELO") || is(b"EHLO") {
            ReplyPhase::Helo
        } else if is(b"MAIL") {
            ReplyPhase::Mail
        } else if is(b"RCPT") {
            ReplyPhase::Rcpt
        } else if is(b"DATA") || is(b"BDAT") {
            ReplyPhase::Data
        } else {
            ReplyPhase::Other
        }
    }
}

/// Every reply class, in metrics order (the inner index of [`ReplyCounts`]).
pub const REPLY_CLASSES: [ReplyClass; 4] = [
    ReplyClass::PositiveCompletion,
    ReplyClass::PositiveIntermediate,
    ReplyClass::TransientNegative,
    ReplyClass::PermanentNegative,
];

/// Label value of a reply class in metrics: `2xx`, `3xx`, `4xx`, `5xx`.
pub fn class_label(class: ReplyClass) -> &'static str {
    match class {
        ReplyClass::PositiveCompletion => "2xx",
        ReplyClass::PositiveIntermediate => "3xx",
        ReplyClass::TransientNegative => "4xx",
        ReplyClass::PermanentNegative => "5xx",
    }
}

/// The index of a class in [`REPLY_CLASSES`].
pub fn class_index(class: ReplyClass) -> usize {
    match class {
        ReplyClass::PositiveCompletion => 0,
        ReplyClass::PositiveIntermediate => 1,
        ReplyClass::TransientNegative => 2,
        ReplyClass::PermanentNegative => 3,
    }
}

/// Replies sent, by phase and class: a small fixed table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyCounts {
    counts: [[u64; 4]; 7],
}

impl ReplyCounts {
    /// Counts one reply with `code` in `phase`; codes outside 200..=599 are
    /// not counted.
    pub fn add(&mut self, phase: ReplyPhase, code: u16) {
        let class = match code / 100 {
            2 => ReplyClass::PositiveCompletion,
            3 => ReplyClass::PositiveIntermediate,
            4 => ReplyClass::TransientNegative,
            5 => ReplyClass::PermanentNegative,
            _ => return,
        };
        let cell = &mut self.counts[phase as usize][class_index(class)];
        *cell = cell.saturating_add(1);
    }

    /// Replies of `class` sent in `phase`.
    pub fn get(&self, phase: ReplyPhase, class: ReplyClass) -> u64 {
        self.counts[phase as usize][class_index(class)]
    }

    /// Every non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (ReplyPhase, ReplyClass, u64)> + '_ {
        ReplyPhase::ALL.into_iter().flat_map(move |phase| {
            REPLY_CLASSES
                .into_iter()
                .map(move |class| (phase, class, self.get(phase, class)))
                .filter(|(_, _, n)| *n > 0)
        })
    }

    /// All replies counted.
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, _, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_phase_and_class() {
        let mut counts = ReplyCounts::default();
        counts.add(ReplyPhase::Rcpt, 250);
        counts.add(ReplyPhase::Rcpt, 554);
        counts.add(ReplyPhase::Rcpt, 250);
        counts.add(ReplyPhase::Data, 354);
        counts.add(ReplyPhase::Other, 199);
        assert_eq!(
            counts.get(ReplyPhase::Rcpt, ReplyClass::PositiveCompletion),
            2
        );
        assert_eq!(
            counts.get(ReplyPhase::Rcpt, ReplyClass::PermanentNegative),
            1
        );
        assert_eq!(
            counts.get(ReplyPhase::Data, ReplyClass::PositiveIntermediate),
            1
        );
        assert_eq!(counts.total(), 4);
        assert_eq!(counts.iter().count(), 3);
    }

    #[test]
    fn phase_of_command_lines() {
        assert_eq!(ReplyPhase::of_command(b"ehlo x\r\n"), ReplyPhase::Helo);
        assert_eq!(
            ReplyPhase::of_command(b"MAIL FROM:<>\r\n"),
            ReplyPhase::Mail
        );
        assert_eq!(ReplyPhase::of_command(b"RCPT bad\r\n"), ReplyPhase::Rcpt);
        assert_eq!(ReplyPhase::of_command(b"BDAT 1 LAST\r\n"), ReplyPhase::Data);
        assert_eq!(ReplyPhase::of_command(b"NOOP\r\n"), ReplyPhase::Other);
        assert_eq!(ReplyPhase::of_command(b"X\r\n"), ReplyPhase::Other);
        assert_eq!(
            class_label(REPLY_CLASSES[class_index(ReplyClass::TransientNegative)]),
            "4xx"
        );
    }
}
