//! Tracking records: one record per SMTP session with its transactions and
//! their recipients, written once when the session ends, searchable by
//! sender, recipient, client address and time, pruned by age and count.
//!
//! Tracking is a log beside the policy, not part of it: these tables are
//! never exported and a write publishes nothing. Writes sit on the path of
//! every SMTP session of a busy gateway, so they use cached prepared
//! statements and one immediate transaction per call (WAL with
//! `synchronous=NORMAL`: a commit is an append to the WAL, no fsync);
//! [`Store::record_sessions`] writes a whole batch in one transaction.

use crate::{Store, StoreError};
use mxgate_filter::verdict::Trail;
use rusqlite::types::{Type, Value};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Sessions returned by [`Store::search`] when [`TrackQuery::limit`] is 0.
pub const DEFAULT_SEARCH_LIMIT: u32 = 100;

/// The most sessions one [`Store::search`] returns.
pub const MAX_SEARCH_LIMIT: u32 = 1000;

/// Sessions deleted per transaction by [`Store::prune_tracking`], so that a
/// large prune does not hold the write lock against the gateway for long.
const PRUNE_CHUNK: i64 = 5000;

/// One SMTP session as tracked: who connected, how it went, and what was
/// sent in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Row id in the store: `None` in a record to write (ignored there),
    /// `Some` in every record read back.
    #[serde(default)]
    pub id: Option<i64>,
    /// When the connection was accepted (Unix time, milliseconds).
    pub started_unix_ms: i64,
    /// When the session ended (Unix time, milliseconds).
    pub ended_unix_ms: i64,
    /// Name of the listener that accepted it.
    pub listener: String,
    /// The TCP peer's address.
    pub client_ip: IpAddr,
    /// The TCP peer's port.
    pub client_port: u16,
    /// The client address reported by a PROXY header, when it differs from
    /// the TCP peer.
    #[serde(default)]
    pub proxy_ip: Option<IpAddr>,
    /// The HELO/EHLO argument, empty when the client never sent one.
    #[serde(default)]
    pub helo: String,
    /// TLS protocol and cipher (free text), `None` for a session without TLS.
    #[serde(default)]
    pub tls: Option<String>,
    /// Verdict on the session as a whole (free text chosen by the gateway).
    pub result: String,
    /// Why the session ended (`quit`, `timeout`, `too many errors`, ...).
    pub end_reason: String,
    /// The connection's verdict trail (screening before the banner).
    #[serde(default)]
    pub checks: Trail,
    /// The mail transactions (MAIL FROM .. end of DATA or RSET), in order.
    #[serde(default)]
    pub transactions: Vec<TransactionRecord>,
}

/// One mail transaction inside a [`SessionRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRecord {
    /// Row id in the store: `None` in a record to write (ignored there),
    /// `Some` in every record read back.
    #[serde(default)]
    pub id: Option<i64>,
    /// When MAIL FROM was received (Unix time, milliseconds).
    pub started_unix_ms: i64,
    /// The envelope sender (`""` for the null sender `<>`).
    pub sender: String,
    /// Message size in bytes (0 when no data was received).
    pub size: u64,
    /// The backend the message went to, as `pool/server`; `None` when it
    /// was not relayed.
    #[serde(default)]
    pub server: Option<String>,
    /// The last reply given to the client for this transaction.
    #[serde(default)]
    pub final_reply: Option<String>,
    /// How the transaction ended.
    pub result: TransactionResult,
    /// From MAIL FROM to the final reply, in milliseconds.
    pub duration_ms: u64,
    /// The recipients, in the order given.
    #[serde(default)]
    pub recipients: Vec<RecipientRecord>,
    /// The verdict trail: every filter decision, in order.
    #[serde(default)]
    pub checks: Trail,
}

/// One RCPT TO of a [`TransactionRecord`] and the reply it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRecord {
    /// The envelope recipient.
    pub recipient: String,
    /// The SMTP reply code given to this RCPT TO (0..=999).
    pub reply_code: u16,
    /// The reply text given with it.
    pub reply_text: String,
}

/// How a mail transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransactionResult {
    /// The message was accepted (2xx after DATA).
    Accepted,
    /// The message was refused for good (5xx).
    Rejected,
    /// The message was refused for now (4xx).
    Tempfail,
    /// The sender left before any end-of-data reply.
    Abandoned,
}

impl TransactionResult {
    /// The stored text: `accepted`, `rejected`, `tempfail` or `abandoned`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionResult::Accepted => "accepted",
            TransactionResult::Rejected => "rejected",
            TransactionResult::Tempfail => "tempfail",
            TransactionResult::Abandoned => "abandoned",
        }
    }

    fn parse(text: &str) -> Option<TransactionResult> {
        Some(match text {
            "accepted" => TransactionResult::Accepted,
            "rejected" => TransactionResult::Rejected,
            "tempfail" => TransactionResult::Tempfail,
            "abandoned" => TransactionResult::Abandoned,
            _ => return None,
        })
    }
}

/// What [`Store::search`] looks for; every field set must match (blank
/// strings count as unset), sessions come newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackQuery {
    /// Part of the envelope sender of a transaction (case-insensitive for
    /// ASCII).
    pub sender: Option<String>,
    /// Part of an envelope recipient (case-insensitive for ASCII); with
    /// `sender` set too, both must match in the same transaction.
    pub recipient: Option<String>,
    /// Start of the client address as text (`10.1.`, `2001:db8:`), matched
    /// against the TCP peer and the PROXY-reported address.
    pub client: Option<String>,
    /// Only sessions started at or after this time (Unix ms).
    pub since_unix_ms: Option<i64>,
    /// Only sessions started at or before this time (Unix ms).
    pub until_unix_ms: Option<i64>,
    /// How many sessions at most: 0 means [`DEFAULT_SEARCH_LIMIT`], more
    /// than [`MAX_SEARCH_LIMIT`] means that.
    pub limit: u32,
}

impl Default for TrackQuery {
    fn default() -> Self {
        TrackQuery {
            sender: None,
            recipient: None,
            client: None,
            since_unix_ms: None,
            until_unix_ms: None,
            limit: DEFAULT_SEARCH_LIMIT,
        }
    }
}

impl TrackQuery {
    /// The number of sessions the search returns at most.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => DEFAULT_SEARCH_LIMIT,
            n => n.min(MAX_SEARCH_LIMIT),
        }
    }
}

impl Store {
    /// Writes one session with all its transactions and recipients in one
    /// transaction; returns the new session's id.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the write fails (a size above `i64::MAX`
    /// included); nothing is written then.
    pub fn record_session(&self, session: &SessionRecord) -> Result<i64, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = insert_session(&tx, session)?;
            tx.commit()?;
            Ok(id)
        })
    }

    /// Writes many sessions in one transaction (one commit for the batch);
    /// returns their ids in order. All or nothing.
    ///
    /// # Errors
    /// As [`Store::record_session`].
    pub fn record_sessions(&self, sessions: &[SessionRecord]) -> Result<Vec<i64>, StoreError> {
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let ids = sessions
                .iter()
                .map(|s| insert_session(&tx, s))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok(ids)
        })
    }

    /// The sessions matching `query`, newest first (by start time, then
    /// id), each with all its transactions and recipients.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when a query fails or a stored value does not
    /// fit its type (a hand edit).
    pub fn search(&self, query: &TrackQuery) -> Result<Vec<SessionRecord>, StoreError> {
        let (sql, args) = search_sql(query);
        self.with_conn(|conn| {
            // One read snapshot for the sessions and their children.
            let tx = conn.transaction()?;
            let mut sessions = {
                let mut stmt = tx.prepare_cached(&sql)?;
                let rows = stmt.query_map(params_from_iter(args), read_session)?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            for s in &mut sessions {
                s.transactions = load_transactions(&tx, s.id.unwrap_or_default())?;
            }
            tx.commit()?;
            Ok(sessions)
        })
    }

    /// The session with this id (as returned by [`Store::record_session`]
    /// or found by [`Store::search`]), `None` when there is none (pruned).
    ///
    /// # Errors
    /// As [`Store::search`].
    pub fn tracked_session(&self, id: i64) -> Result<Option<SessionRecord>, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let found = tx
                .prepare_cached(&format!("{SESSION_SELECT} WHERE s.id = ?1"))?
                .query_row([id], read_session)
                .optional()?;
            let found = match found {
                Some(mut s) => {
                    s.transactions = load_transactions(&tx, id)?;
                    Some(s)
                }
                None => None,
            };
            tx.commit()?;
            Ok(found)
        })
    }

    /// Deletes the sessions started more than `max_age` ago, and the oldest
    /// ones beyond the `max_sessions` newest (0 deletes all;
    /// `Duration::MAX` / `u64::MAX` disable either rule), with their
    /// transactions and recipients. Returns how many sessions were deleted.
    ///
    /// Deletes in chunks of a few thousand sessions, one transaction each,
    /// so the gateway's writes are not held up for long. Finding the count
    /// limit walks the time index over `max_sessions` entries.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`]; the chunks deleted before the error stay
    /// deleted.
    pub fn prune_tracking(&self, max_age: Duration, max_sessions: u64) -> Result<u64, StoreError> {
        self.prune_tracking_at(now_unix_ms(), max_age, max_sessions)
    }

    /// [`Store::prune_tracking`] with the current time given (tests).
    pub(crate) fn prune_tracking_at(
        &self,
        now_unix_ms: i64,
        max_age: Duration,
        max_sessions: u64,
    ) -> Result<u64, StoreError> {
        // A session is deleted when (started_unix_ms, id) <= boundary.
        let age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_unix_ms.saturating_sub(age_ms);
        let by_age = (cutoff > i64::MIN).then(|| (cutoff - 1, i64::MAX));
        let offset = i64::try_from(max_sessions).unwrap_or(i64::MAX);
        let by_count: Option<(i64, i64)> = self.with_conn(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT started_unix_ms, id FROM track_sessions
                     ORDER BY started_unix_ms DESC, id DESC LIMIT 1 OFFSET ?1",
                )?
                .query_row([offset], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })?;
        let Some((started, id)) = by_age.max(by_count) else {
            return Ok(0);
        };
        let mut deleted = 0u64;
        loop {
            let n = self.with_conn(|conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let n = tx
                    .prepare_cached(
                        "DELETE FROM track_sessions WHERE id IN (
                             SELECT id FROM track_sessions
                             WHERE started_unix_ms <= ?1 AND (started_unix_ms < ?1 OR id <= ?2)
                             LIMIT ?3)",
                    )?
                    .execute(params![started, id, PRUNE_CHUNK])?;
                tx.commit()?;
                Ok(n)
            })?;
            deleted += n as u64;
            if (n as i64) < PRUNE_CHUNK {
                return Ok(deleted);
            }
        }
    }
}

/// Inserts one session and its children; returns the session's id.
fn insert_session(conn: &Connection, s: &SessionRecord) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO track_sessions (started_unix_ms, ended_unix_ms, listener, client_ip,
             client_port, proxy_ip, helo, tls, result, end_reason, checks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        s.started_unix_ms,
        s.ended_unix_ms,
        s.listener,
        s.client_ip.to_string(),
        s.client_port,
        s.proxy_ip.map(|ip| ip.to_string()),
        s.helo,
        s.tls,
        s.result,
        s.end_reason,
        trail_json(&s.checks),
    ])?;
    let session_id = conn.last_insert_rowid();
    if s.transactions.is_empty() {
        return Ok(session_id);
    }
    let mut insert_tx = conn.prepare_cached(
        "INSERT INTO track_transactions (session_id, started_unix_ms, sender, size, server,
             final_reply, result, duration_ms, checks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut insert_rcpt = conn.prepare_cached(
        "INSERT INTO track_recipients (transaction_id, recipient, reply_code, reply_text)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for t in &s.transactions {
        insert_tx.execute(params![
            session_id,
            t.started_unix_ms,
            t.sender,
            t.size,
            t.server,
            t.final_reply,
            t.result.as_str(),
            t.duration_ms,
            trail_json(&t.checks),
        ])?;
        let transaction_id = conn.last_insert_rowid();
        for r in &t.recipients {
            insert_rcpt.execute(params![
                transaction_id,
                r.recipient,
                r.reply_code,
                r.reply_text
            ])?;
        }
    }
    Ok(session_id)
}

/// The session columns, in the order [`read_session`] reads them.
const SESSION_SELECT: &str = "SELECT s.id, s.started_unix_ms, s.ended_unix_ms, s.listener,
        s.client_ip, s.client_port, s.proxy_ip, s.helo, s.tls, s.result, s.end_reason, s.checks
    FROM track_sessions s";

/// The search statement for `q` and its arguments. Only the conditions in
/// use are written, so the planner sees plain ranges (and the statement
/// cache holds one entry per combination, at most 32).
fn search_sql(q: &TrackQuery) -> (String, Vec<Value>) {
    let mut sql = format!("{SESSION_SELECT} WHERE 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(since) = q.since_unix_ms {
        sql.push_str(" AND s.started_unix_ms >= ?");
        args.push(since.into());
    }
    if let Some(until) = q.until_unix_ms {
        sql.push_str(" AND s.started_unix_ms <= ?");
        args.push(until.into());
    }
    if let Some(client) = filled(&q.client) {
        sql.push_str(" AND (s.client_ip GLOB ? OR s.proxy_ip GLOB ?)");
        let pattern = glob_prefix(&client.to_ascii_lowercase());
        args.push(pattern.clone().into());
        args.push(pattern.into());
    }
    let sender = filled(&q.sender);
    let recipient = filled(&q.recipient);
    if sender.is_some() || recipient.is_some() {
        sql.push_str(" AND EXISTS (SELECT 1 FROM track_transactions t WHERE t.session_id = s.id");
        if let Some(sender) = sender {
            sql.push_str(r" AND t.sender LIKE ? ESCAPE '\'");
            args.push(like_substring(sender).into());
        }
        if let Some(recipient) = recipient {
            sql.push_str(
                r" AND EXISTS (SELECT 1 FROM track_recipients r
                     WHERE r.transaction_id = t.id AND r.recipient LIKE ? ESCAPE '\')",
            );
            args.push(like_substring(recipient).into());
        }
        sql.push(')');
    }
    sql.push_str(" ORDER BY s.started_unix_ms DESC, s.id DESC LIMIT ?");
    args.push(i64::from(q.effective_limit()).into());
    (sql, args)
}

/// The trimmed filter text, `None` when unset or blank.
fn filled(filter: &Option<String>) -> Option<&str> {
    filter.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A `LIKE` pattern (with `ESCAPE '\'`) matching `text` anywhere.
fn like_substring(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A `GLOB` pattern matching text that starts with `prefix` (case-sensitive,
/// so an index on the column serves it).
fn glob_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        match c {
            '*' | '?' | '[' => {
                pattern.push('[');
                pattern.push(c);
                pattern.push(']');
            }
            _ => pattern.push(c),
        }
    }
    pattern.push('*');
    pattern
}

fn read_session(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: Some(r.get(0)?),
        started_unix_ms: r.get(1)?,
        ended_unix_ms: r.get(2)?,
        listener: r.get(3)?,
        client_ip: parse_ip(4, r.get(4)?)?,
        client_port: r.get(5)?,
        proxy_ip: r
            .get::<_, Option<String>>(6)?
            .map(|text| parse_ip(6, text))
            .transpose()?,
        helo: r.get(7)?,
        tls: r.get(8)?,
        result: r.get(9)?,
        end_reason: r.get(10)?,
        checks: read_trail(r, 11)?,
        transactions: Vec::new(),
    })
}

/// A verdict trail as stored.
fn trail_json(trail: &Trail) -> String {
    serde_json::to_string(trail).unwrap_or_else(|_| "[]".into())
}

/// The verdict trail stored in column `index`.
fn read_trail(r: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Trail> {
    let json: String = r.get(index)?;
    serde_json::from_str(&json).map_err(|e| conversion_error(index, e.to_string()))
}

/// The transactions of a session with their recipients, in order.
fn load_transactions(
    conn: &Connection,
    session_id: i64,
) -> Result<Vec<TransactionRecord>, StoreError> {
    let mut transactions = conn
        .prepare_cached(
            "SELECT id, started_unix_ms, sender, size, server, final_reply, result, duration_ms,
                    checks
             FROM track_transactions WHERE session_id = ?1 ORDER BY id",
        )?
        .query_map([session_id], |r| {
            let text: String = r.get(6)?;
            let result = TransactionResult::parse(&text)
                .ok_or_else(|| conversion_error(6, format!("unknown result {text:?}")))?;
            Ok(TransactionRecord {
                id: Some(r.get(0)?),
                started_unix_ms: r.get(1)?,
                sender: r.get(2)?,
                size: r.get(3)?,
                server: r.get(4)?,
                final_reply: r.get(5)?,
                result,
                duration_ms: r.get(7)?,
                recipients: Vec::new(),
                checks: read_trail(r, 8)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT recipient, reply_code, reply_text FROM track_recipients
         WHERE transaction_id = ?1 ORDER BY rowid",
    )?;
    for t in &mut transactions {
        t.recipients = stmt
            .query_map([t.id.unwrap_or_default()], |r| {
                Ok(RecipientRecord {
                    recipient: r.get(0)?,
                    reply_code: r.get(1)?,
                    reply_text: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(transactions)
}

/// An address stored as text in column `index`.
fn parse_ip(index: usize, text: String) -> rusqlite::Result<IpAddr> {
    text.parse()
        .map_err(|_| conversion_error(index, format!("{text:?} is not an IP address")))
}

fn conversion_error(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into())
}

/// Now as Unix time in milliseconds (0 before 1970, saturating far ahead).
pub(crate) fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
