//! Schema and migrations: an ordered list of SQL scripts, the applied version
//! kept in `schema_version`, each script applied in its own transaction.
//!
//! Rules for adding a migration: append a script to [`MIGRATIONS`] (never edit
//! or reorder a shipped one); keep rows keyed by natural keys (names, domains)
//! so per-row change stamps and peer sync can address them; keep CHECK
//! constraints loose enough that a later release can relax validation without
//! rebuilding a table.

use crate::StoreError;
use rusqlite::{Connection, TransactionBehavior};
use tracing::info;

/// Version 1: pools, servers, listeners, relay domains and settings.
///
/// `position` keeps file order so that export reproduces the file exactly.
/// Tables are STRICT so a hand edit cannot store text in an integer column.
const V1: &str = r#"
CREATE TABLE pools (
    name               TEXT    NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    balance            TEXT    NOT NULL CHECK (balance IN ('roundrobin', 'leastconn', 'source', 'first')),
    check_interval_ms  INTEGER NOT NULL CHECK (check_interval_ms > 0),
    check_timeout_ms   INTEGER NOT NULL CHECK (check_timeout_ms > 0),
    check_fall         INTEGER NOT NULL CHECK (check_fall BETWEEN 1 AND 4294967295),
    check_rise         INTEGER NOT NULL CHECK (check_rise BETWEEN 1 AND 4294967295),
    check_starttls     INTEGER NOT NULL CHECK (check_starttls IN (0, 1)),
    check_ehlo         TEXT    NOT NULL CHECK (length(check_ehlo) BETWEEN 1 AND 255),
    check_send_proxy   TEXT             CHECK (check_send_proxy IN ('none', 'v1', 'v2')),
    slow_start_ms      INTEGER NOT NULL CHECK (slow_start_ms >= 0),
    connect_timeout_ms INTEGER NOT NULL CHECK (connect_timeout_ms > 0),
    queue_timeout_ms   INTEGER NOT NULL CHECK (queue_timeout_ms >= 0),
    max_queue          INTEGER NOT NULL CHECK (max_queue BETWEEN 0 AND 4294967295),
    position           INTEGER NOT NULL
) STRICT;

CREATE TABLE servers (
    pool     TEXT    NOT NULL REFERENCES pools (name) ON DELETE CASCADE ON UPDATE CASCADE,
    name     TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    address  TEXT    NOT NULL CHECK (length(address) > 0),
    weight   INTEGER NOT NULL CHECK (weight BETWEEN 0 AND 256),
    max_conn INTEGER NOT NULL CHECK (max_conn BETWEEN 0 AND 4294967295),
    state    TEXT    NOT NULL CHECK (state IN ('ready', 'drain', 'maint')),
    position INTEGER NOT NULL,
    PRIMARY KEY (pool, name)
) STRICT;

CREATE TABLE listeners (
    name             TEXT    NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    bind             TEXT    NOT NULL UNIQUE CHECK (length(bind) > 0),
    mode             TEXT    NOT NULL CHECK (mode IN ('l4', 'smtp')),
    pool             TEXT    NOT NULL REFERENCES pools (name) ON UPDATE CASCADE,
    send_proxy       TEXT    NOT NULL CHECK (send_proxy IN ('none', 'v1', 'v2')),
    accept_proxy     INTEGER NOT NULL CHECK (accept_proxy IN (0, 1)),
    -- comma-separated networks, '' for none
    proxy_trusted    TEXT    NOT NULL DEFAULT '',
    proxy_timeout_ms INTEGER NOT NULL CHECK (proxy_timeout_ms >= 0),
    idle_timeout_ms  INTEGER NOT NULL CHECK (idle_timeout_ms >= 0),
    max_connections  INTEGER NOT NULL CHECK (max_connections BETWEEN 0 AND 4294967295),
    position         INTEGER NOT NULL
) STRICT;

CREATE INDEX listeners_pool ON listeners (pool);

CREATE TABLE relay_domains (
    domain   TEXT    NOT NULL PRIMARY KEY CHECK (length(domain) BETWEEN 1 AND 254),
    position INTEGER NOT NULL
) STRICT;

-- scalar settings by dotted key: `limits.max_connections`
CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY CHECK (length(key) > 0),
    value TEXT NOT NULL
) STRICT;
"#;

/// Version 2: smtp-mode settings of pools (how backends are spoken to) and
/// listeners (limits, timeouts, STARTTLS).
const V2: &str = r#"
ALTER TABLE pools ADD COLUMN client_identity TEXT NOT NULL DEFAULT 'none'
    CHECK (client_identity IN ('none', 'xclient', 'proxy_v1', 'proxy_v2'));
ALTER TABLE pools ADD COLUMN backend_tls TEXT NOT NULL DEFAULT 'opportunistic'
    CHECK (backend_tls IN ('off', 'opportunistic', 'require', 'verify'));
ALTER TABLE pools ADD COLUMN backend_tls_name TEXT;
ALTER TABLE pools ADD COLUMN recipient_cache_positive_ttl_s INTEGER NOT NULL DEFAULT 3600
    CHECK (recipient_cache_positive_ttl_s >= 0);
ALTER TABLE pools ADD COLUMN recipient_cache_negative_ttl_s INTEGER NOT NULL DEFAULT 600
    CHECK (recipient_cache_negative_ttl_s >= 0);

ALTER TABLE listeners ADD COLUMN max_connections_per_client INTEGER NOT NULL DEFAULT 50
    CHECK (max_connections_per_client >= 0);
ALTER TABLE listeners ADD COLUMN smtp_hostname TEXT;
ALTER TABLE listeners ADD COLUMN max_message_size INTEGER NOT NULL DEFAULT 52428800
    CHECK (max_message_size > 0);
ALTER TABLE listeners ADD COLUMN max_recipients INTEGER NOT NULL DEFAULT 1000
    CHECK (max_recipients > 0);
ALTER TABLE listeners ADD COLUMN max_errors INTEGER NOT NULL DEFAULT 20 CHECK (max_errors > 0);
ALTER TABLE listeners ADD COLUMN max_line_length INTEGER NOT NULL DEFAULT 998
    CHECK (max_line_length > 0);
ALTER TABLE listeners ADD COLUMN starttls INTEGER NOT NULL DEFAULT 1 CHECK (starttls IN (0, 1));
ALTER TABLE listeners ADD COLUMN command_timeout_ms INTEGER NOT NULL DEFAULT 300000
    CHECK (command_timeout_ms > 0);
ALTER TABLE listeners ADD COLUMN data_timeout_ms INTEGER NOT NULL DEFAULT 180000
    CHECK (data_timeout_ms > 0);
"#;

/// Version 3: tracking records of SMTP sessions and the TLS certificates of
/// the SMTP listeners (see `tracking.rs` and `certs.rs`).
///
/// Tracking rows are a log, not policy: they are never exported and do not
/// notify subscribers. Sessions are listed newest first through the time
/// index (which ends with the rowid, so `ORDER BY started_unix_ms DESC, id
/// DESC` needs no sort); a pruned session takes its transactions and
/// recipients with it (`ON DELETE CASCADE`). Addresses are kept as text so
/// that a prefix search (`GLOB '10.1.*'`) can use their index.
const V3: &str = r#"
CREATE TABLE track_sessions (
    id              INTEGER NOT NULL PRIMARY KEY,
    started_unix_ms INTEGER NOT NULL,
    ended_unix_ms   INTEGER NOT NULL,
    listener        TEXT    NOT NULL,
    client_ip       TEXT    NOT NULL,
    client_port     INTEGER NOT NULL CHECK (client_port BETWEEN 0 AND 65535),
    -- the PROXY-reported client when it differs from the TCP peer
    proxy_ip        TEXT,
    -- '' when the client never said HELO/EHLO
    helo            TEXT    NOT NULL,
    -- protocol and cipher, NULL for a session without TLS
    tls             TEXT,
    result          TEXT    NOT NULL,
    end_reason      TEXT    NOT NULL
) STRICT;

CREATE INDEX track_sessions_started ON track_sessions (started_unix_ms);
CREATE INDEX track_sessions_client ON track_sessions (client_ip);
CREATE INDEX track_sessions_proxy ON track_sessions (proxy_ip);

CREATE TABLE track_transactions (
    id              INTEGER NOT NULL PRIMARY KEY,
    session_id      INTEGER NOT NULL REFERENCES track_sessions (id) ON DELETE CASCADE,
    started_unix_ms INTEGER NOT NULL,
    sender          TEXT    NOT NULL,
    size            INTEGER NOT NULL CHECK (size >= 0),
    -- `pool/server` the message went to, NULL when it was not relayed
    server          TEXT,
    final_reply     TEXT,
    result          TEXT    NOT NULL CHECK (result IN ('accepted', 'rejected', 'tempfail', 'abandoned')),
    duration_ms     INTEGER NOT NULL CHECK (duration_ms >= 0)
) STRICT;

CREATE INDEX track_transactions_session ON track_transactions (session_id);
CREATE INDEX track_transactions_sender ON track_transactions (sender COLLATE NOCASE);

CREATE TABLE track_recipients (
    transaction_id INTEGER NOT NULL REFERENCES track_transactions (id) ON DELETE CASCADE,
    recipient      TEXT    NOT NULL,
    reply_code     INTEGER NOT NULL CHECK (reply_code BETWEEN 0 AND 999),
    reply_text     TEXT    NOT NULL
) STRICT;

CREATE INDEX track_recipients_transaction ON track_recipients (transaction_id);
CREATE INDEX track_recipients_recipient ON track_recipients (recipient COLLATE NOCASE);

CREATE TABLE certificates (
    name         TEXT    NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 255),
    cert_pem     TEXT    NOT NULL CHECK (length(cert_pem) > 0),
    key_pem      TEXT    NOT NULL CHECK (length(key_pem) > 0),
    created_unix INTEGER NOT NULL
) STRICT;
"#;

/// Version 4: the filter policy's allow/block lists and rate limits.
const V4: &str = r#"
CREATE TABLE lists (
    position INTEGER NOT NULL PRIMARY KEY,
    action   TEXT    NOT NULL CHECK (action IN ('allow', 'block')),
    kind     TEXT    NOT NULL CHECK (kind IN ('client', 'reverse_name', 'helo', 'sender',
                                              'sender_domain', 'recipient')),
    value    TEXT    NOT NULL CHECK (length(value) BETWEEN 1 AND 320),
    UNIQUE (kind, value)
) STRICT;

CREATE TABLE rate_limits (
    position    INTEGER NOT NULL PRIMARY KEY,
    key         TEXT    NOT NULL CHECK (key IN ('client_ip', 'client_net', 'sender',
                                                'sender_domain', 'recipient_domain')),
    window_s    INTEGER NOT NULL CHECK (window_s > 0),
    connections INTEGER CHECK (connections > 0),
    messages    INTEGER CHECK (messages > 0),
    recipients  INTEGER CHECK (recipients > 0),
    concurrency INTEGER CHECK (concurrency > 0)
) STRICT;
"#;

/// Version 5: shared filter state: greylist triplets and client networks,
/// and the temporary allowlist of clients that passed screening. (The
/// `[screen]` and `[greylist]` settings live in `settings` as
/// `section.screen` / `section.greylist`.)
const V5: &str = r#"
CREATE TABLE greylist_triplets (
    key        TEXT    NOT NULL PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    passed     INTEGER NOT NULL CHECK (passed IN (0, 1))
) STRICT;
CREATE INDEX greylist_triplets_last_seen ON greylist_triplets (last_seen);

CREATE TABLE greylist_clients (
    net       TEXT    NOT NULL PRIMARY KEY,
    passed    INTEGER NOT NULL CHECK (passed >= 0),
    last_seen INTEGER NOT NULL
) STRICT;

CREATE TABLE temp_allowlist (
    client     TEXT    NOT NULL PRIMARY KEY,
    until_unix INTEGER NOT NULL
) STRICT;
CREATE INDEX temp_allowlist_until ON temp_allowlist (until_unix);
"#;

/// Version 6: the verdict trails, as JSON arrays of `{check, result,
/// detail}`: of each tracked session (connection screening: lists, DNSBL
/// zones and score, pregreet, rate limits) and of each transaction (lists,
/// limits, SPF/DKIM/ARC/DMARC results, greylisting state).
const V6: &str = r#"
ALTER TABLE track_sessions ADD COLUMN checks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE track_transactions ADD COLUMN checks TEXT NOT NULL DEFAULT '[]';
"#;

/// The three change-log triggers of a synced table (see `sync/mod.rs`):
/// `sync_log` gets the row's key, a fresh HLC stamp from `mxgate_hlc()`,
/// this node's id and the next log position, in the writing transaction.
/// An update that changes the key (a rename, an `ON UPDATE CASCADE`) or
/// moves a setting out of the shared keys leaves a tombstone for the old
/// key. `mxgate_sync_local()` is 0 while a remote batch is applied, which
/// writes the remote stamps itself.
///
/// Arguments: the table, the SQL condition on `NEW` and on `OLD` for rows
/// that sync (`1` for all), then the key columns.
macro_rules! sync_triggers {
    ($t:literal, $new:expr, $old:expr, $c0:literal $(, $c:literal)*) => {
        concat!(
            "CREATE TRIGGER sync_", $t, "_insert AFTER INSERT ON ", $t,
            " WHEN mxgate_sync_local() AND (", $new, ") BEGIN\n",
            sync_log_write!($t, "NEW", "0", "1", $c0 $(, $c)*),
            "END;\n",
            "CREATE TRIGGER sync_", $t, "_delete AFTER DELETE ON ", $t,
            " WHEN mxgate_sync_local() AND (", $old, ") BEGIN\n",
            sync_log_write!($t, "OLD", "1", "1", $c0 $(, $c)*),
            "END;\n",
            "CREATE TRIGGER sync_", $t, "_update AFTER UPDATE ON ", $t,
            " WHEN mxgate_sync_local() BEGIN\n",
            sync_log_write!($t, "OLD", "1",
                concat!("(", $old, ") AND (NOT (", $new, ") OR json_array(OLD.", $c0,
                    $(", OLD.", $c,)* ") IS NOT json_array(NEW.", $c0, $(", NEW.", $c,)* "))"),
                $c0 $(, $c)*),
            sync_log_write!($t, "NEW", "0", $new, $c0 $(, $c)*),
            "END;\n",
        )
    };
}

/// Two trigger statements: take the next stamp and log position when
/// `$when` holds, and write the log row of `$row`'s key.
macro_rules! sync_log_write {
    ($t:literal, $row:literal, $deleted:literal, $when:expr, $c0:literal $(, $c:literal)*) => {
        concat!(
            "  UPDATE sync_node SET hlc = mxgate_hlc(hlc), seq = seq + 1 WHERE (", $when, ");\n",
            "  INSERT INTO sync_log (tbl, pk, hlc, node, deleted, seq)\n",
            "    SELECT '", $t, "', json_array(", $row, ".", $c0, $(", ", $row, ".", $c,)* "), hlc, node, ",
            $deleted, ", seq FROM sync_node WHERE (", $when, ")\n",
            "    ON CONFLICT (tbl, pk) DO UPDATE SET hlc = excluded.hlc, node = excluded.node,\n",
            "        deleted = excluded.deleted, seq = excluded.seq;\n",
        )
    };
}

/// Logs every existing row of a synced table at migration, all with the
/// migration's stamp and consecutive log positions.
macro_rules! sync_backfill {
    ($t:literal, $new:expr, $c0:literal $(, $c:literal)*) => {
        concat!(
            "INSERT INTO sync_log (tbl, pk, hlc, node, deleted, seq)\n",
            "  SELECT '", $t, "', json_array(NEW.", $c0, $(", NEW.", $c,)* "),\n",
            "    (SELECT hlc FROM sync_node), (SELECT node FROM sync_node), 0,\n",
            "    (SELECT seq FROM sync_node) + row_number() OVER (ORDER BY NEW.", $c0, $(", NEW.", $c,)* ")\n",
            "  FROM ", $t, " AS NEW WHERE ", $new, ";\n",
            "UPDATE sync_node SET seq = (SELECT coalesce(max(seq), 0) FROM sync_log);\n",
        )
    };
}

/// The shared `settings` keys (see `sync::is_shared_setting`); any other
/// key is node-local and is not logged.
macro_rules! shared_setting {
    ($row:literal) => {
        concat!(
            $row,
            ".key GLOB 'limits.*' OR ",
            $row,
            ".key GLOB 'section.*'"
        )
    };
}

/// Version 7: the change log for peer sync (see `sync/mod.rs` and
/// `docs/sync.md`).
///
/// - `sync_node` (one row, node-local): this node's random 63-bit id, the
///   last HLC stamp issued or seen, the last log position issued. Kept in
///   the database so that every process writing the store (the service,
///   `mxgate policy import`) stamps in order under SQLite's write lock.
/// - `sync_log`: the latest version of every synced row, tombstones
///   included; `seq` is the local order in which versions were logged.
/// - `sync_peers` (node-local): how far each peer has acknowledged the log.
///
/// Existing rows are logged with the migration's stamp, so they sync.
const V7: &str = concat!(
    r#"
CREATE TABLE sync_node (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 0),
    node INTEGER NOT NULL CHECK (node >= 0),
    hlc  INTEGER NOT NULL CHECK (hlc >= 0),
    seq  INTEGER NOT NULL CHECK (seq >= 0)
) STRICT;
INSERT INTO sync_node (id, node, hlc, seq) VALUES (0, random() & 9223372036854775807, 0, 0);

CREATE TABLE sync_log (
    tbl     TEXT    NOT NULL,
    -- json_array of the primary key values
    pk      TEXT    NOT NULL,
    hlc     INTEGER NOT NULL,
    node    INTEGER NOT NULL,
    deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    seq     INTEGER NOT NULL,
    PRIMARY KEY (tbl, pk)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX sync_log_seq ON sync_log (seq);
CREATE INDEX sync_log_tombstones ON sync_log (seq) WHERE deleted = 1;

CREATE TABLE sync_peers (
    node          INTEGER NOT NULL PRIMARY KEY,
    acked_seq     INTEGER NOT NULL CHECK (acked_seq >= 0),
    acked_unix_ms INTEGER NOT NULL
) STRICT;

UPDATE sync_node SET hlc = mxgate_hlc(hlc);
"#,
    sync_backfill!("certificates", "1", "name"),
    sync_backfill!("greylist_clients", "1", "net"),
    sync_backfill!("greylist_triplets", "1", "key"),
    sync_backfill!("listeners", "1", "name"),
    sync_backfill!("lists", "1", "position"),
    sync_backfill!("pools", "1", "name"),
    sync_backfill!("rate_limits", "1", "position"),
    sync_backfill!("relay_domains", "1", "domain"),
    sync_backfill!("servers", "1", "pool", "name"),
    sync_backfill!("settings", shared_setting!("NEW"), "key"),
    sync_backfill!("temp_allowlist", "1", "client"),
    sync_triggers!("certificates", "1", "1", "name"),
    sync_triggers!("greylist_clients", "1", "1", "net"),
    sync_triggers!("greylist_triplets", "1", "1", "key"),
    sync_triggers!("listeners", "1", "1", "name"),
    sync_triggers!("lists", "1", "1", "position"),
    sync_triggers!("pools", "1", "1", "name"),
    sync_triggers!("rate_limits", "1", "1", "position"),
    sync_triggers!("relay_domains", "1", "1", "domain"),
    sync_triggers!("servers", "1", "1", "pool", "name"),
    sync_triggers!(
        "settings",
        shared_setting!("NEW"),
        shared_setting!("OLD"),
        "key"
    ),
    sync_triggers!("temp_allowlist", "1", "1", "client"),
);

/// Version 8: the web UI's accounts, sessions and audit log.
///
/// - `users` (synced, so either box's UI takes the same logins): the name,
///   the role (`admin`, `readonly`; checked in Rust so a later release can
///   add roles without rebuilding the table) and the argon2id hash in PHC
///   string form.
/// - `web_sessions` (node-local): the SHA-256 of the session cookie's token
///   (the token itself is never stored), its user, its CSRF token and its
///   idle expiry. No foreign key to `users`: a user's row may be replaced
///   by peer sync; a session whose user is gone is simply not found.
/// - `audit_log` (node-local): who changed what, and when.
const V8: &str = concat!(
    r#"
CREATE TABLE users (
    name          TEXT    NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    role          TEXT    NOT NULL CHECK (length(role) BETWEEN 1 AND 32),
    password_hash TEXT    NOT NULL CHECK (length(password_hash) > 0),
    created_unix  INTEGER NOT NULL,
    updated_unix  INTEGER NOT NULL
) STRICT;

CREATE TABLE web_sessions (
    token_hash   TEXT    NOT NULL PRIMARY KEY,
    user         TEXT    NOT NULL,
    csrf         TEXT    NOT NULL,
    expires_unix INTEGER NOT NULL,
    created_unix INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_user ON web_sessions (user);
CREATE INDEX web_sessions_expires ON web_sessions (expires_unix);

CREATE TABLE audit_log (
    id           INTEGER NOT NULL PRIMARY KEY,
    time_unix_ms INTEGER NOT NULL,
    user         TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    -- a JSON object
    detail       TEXT    NOT NULL DEFAULT '{}'
) STRICT;
"#,
    sync_triggers!("users", "1", "1", "name"),
);

/// Every migration in order; `MIGRATIONS[i]` takes the schema from version
/// `i` to `i + 1`.
///
/// Version 7 calls `mxgate_hlc()`, so migrations run on a connection with
/// the sync functions registered (`Store::open` does that).
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`], one transaction per step.
///
/// Safe against another process migrating at the same time: each step takes
/// the write lock first (`BEGIN IMMEDIATE`) and re-reads the version inside it.
///
/// # Errors
/// [`StoreError::SchemaTooNew`] when the database is newer than this binary;
/// [`StoreError::Sqlite`] when a script fails (that step is rolled back).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = version(&tx)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        let next = found + 1;
        let index = usize::try_from(found).map_err(|_| {
            // A negative version is a hand edit; refuse rather than guess.
            rusqlite::Error::IntegralValueOutOfRange(0, found)
        })?;
        tx.execute_batch(MIGRATIONS[index])?;
        tx.execute("DELETE FROM schema_version", [])?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [next])?;
        tx.commit()?;
        info!(version = next, "store schema migrated");
    }
}

/// The applied schema version (0 for a new database).
pub(crate) fn version(conn: &Connection) -> Result<i64, StoreError> {
    let v: Option<i64> =
        conn.query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))?;
    Ok(v.unwrap_or(0))
}
