//! What the engine asks of its driver: the [`Step`] after each piece of
//! input, and how a message's data ended.

use crate::reply::Reply;

/// What the caller must do after [`Session::input`](super::Session::input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing more can be done with the buffered input: write the output,
    /// then read more.
    NeedMore,
    /// The input was handled (a reply may be queued, a `BDAT` command
    /// taken, or octets of a refused chunk skipped); go on with the rest of
    /// the input.
    Replied,
    /// Write the output and close the connection (QUIT, too many errors, a
    /// timeout). An open transaction must be aborted.
    Close,
    /// Ask the backend `MAIL FROM:<from> params`, then call
    /// [`Session::mail_reply`](super::Session::mail_reply).
    Mail {
        /// Reverse-path, empty for `<>`.
        from: String,
        /// The ESMTP parameters, checked.
        params: String,
    },
    /// Ask the backend `RCPT TO:<to> params`, then call
    /// [`Session::rcpt_reply`](super::Session::rcpt_reply). The relay policy has passed.
    Rcpt {
        /// Forward-path to give the backend.
        to: String,
        /// The ESMTP parameters (always empty: none are offered).
        params: String,
    },
    /// A recipient was refused by this server (relay policy, parameters,
    /// recipient limit); the reply is queued. For the driver's records.
    RcptRefused {
        /// The forward-path as the client gave it.
        to: String,
        /// The reply code sent.
        code: u16,
    },
    /// Ask the backend `DATA`, then call [`Session::data_reply`](super::Session::data_reply).
    /// Also asked at the first `BDAT` of a transaction: on 354 the chunks
    /// follow as [`Step::Chunk`]s; any other reply ends the transaction
    /// (the backend should get `RSET`: see [`Session::transaction_open`](super::Session::transaction_open)).
    Data,
    /// The transaction ended locally (RSET, or HELO/EHLO in a transaction):
    /// tell the backend `RSET`. The reply is queued.
    Reset,
    /// The transaction ended locally (RSET, HELO/EHLO) between two BDAT
    /// chunks, while the backend is reading message data: abort the backend
    /// (it must not see an end of data). The reply is queued.
    Abort,
    /// STARTTLS was accepted (220 queued): write the output, DISCARD every
    /// buffered octet after the consumed ones (RFC 3207 section 4.2:
    /// plaintext pipelined after STARTTLS must not count as encrypted), then
    /// run the TLS handshake. The session is back in the greeting phase.
    StartTls,
    /// Message data: forward the first `forward` octets of the input to the
    /// backend. Without `end`, read more afterwards.
    Message {
        /// Octets at the front of the input to forward.
        forward: usize,
        /// True once the message is known to be refused: nothing more is
        /// forwarded and the backend should be aborted.
        refused: bool,
        /// Set when the end-of-data line was consumed.
        end: Option<DataEnd>,
    },
    /// BDAT message data (RFC 3030), converted to DATA wire form: forward
    /// `wire` to the backend. The intermediate `250` after a non-LAST chunk
    /// is this server's own and already queued; at the end of the `LAST`
    /// chunk `end` is set, as for [`Step::Message`].
    Chunk {
        /// Dot-stuffed CRLF lines to forward (empty once refused).
        wire: Vec<u8>,
        /// True once the message is known to be refused: nothing more is
        /// forwarded and the backend should be aborted.
        refused: bool,
        /// Set when the message ended (`LAST` chunk read, or a chunk
        /// refused for size).
        end: Option<DataEnd>,
    },
}

/// How a message's data ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEnd {
    /// Clean: end the data at the backend and pass its final reply to
    /// [`Session::message_reply`](super::Session::message_reply).
    Complete {
        /// Message octets (wire form for DATA, BDAT octets for CHUNKING).
        size: u64,
    },
    /// Refused; `reply` is already queued. The backend must be aborted (not
    /// given the final dot).
    Refused {
        /// Message octets (wire form), counted on past any limit.
        size: u64,
        /// The reply the client gets.
        reply: Reply,
    },
}

/// The result of [`Session::input`](super::Session::input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Octets of the input used; drop them from the buffer.
    pub consumed: usize,
    /// What to do now.
    pub step: Step,
}
