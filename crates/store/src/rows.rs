//! Mapping between the raw policy ([`PolicyFile`]) and the store's tables.
//!
//! Reading never trusts the database: a value that does not fit its type or
//! an unknown enum text is collected into [`Errors`] with the same dotted
//! keys validation uses (`pool[mta].server[mta1].state`), and the result is
//! then validated by the caller like any policy file.

use crate::StoreError;
use mxgate_config::raw::{
    Balance, CheckSection, ListenerMode, ListenerSection, PolicyFile, PoolSection, ProxyVersion,
    ServerSection, ServerState,
};
use mxgate_config::Errors;
use rusqlite::{params, Connection};

/// Setting key of `[limits] max_connections`.
const MAX_CONNECTIONS: &str = "limits.max_connections";

/// Reads the whole shared policy in its raw form.
///
/// Run it inside a transaction so the tables are read as one snapshot.
///
/// # Errors
/// [`StoreError::Invalid`] for values that cannot be represented (a hand
/// edit); [`StoreError::Sqlite`] when a query fails.
pub(crate) fn read_policy(conn: &Connection) -> Result<PolicyFile, StoreError> {
    let mut errors = Errors::default();
    let mut raw = PolicyFile::default();

    let mut stmt = conn.prepare("SELECT key, value FROM settings WHERE key GLOB 'limits.*'")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        let value: String = row.get(1)?;
        if key == MAX_CONNECTIONS {
            match value.parse::<u32>() {
                Ok(v) => raw.limits.max_connections = v,
                Err(_) => errors.push(
                    key,
                    format!("stored value {value:?} is not a whole number 0..4294967295"),
                ),
            }
        } else {
            errors.push(key, "unknown setting in the store");
        }
    }

    let mut stmt = conn.prepare("SELECT domain FROM relay_domains ORDER BY position, domain")?;
    raw.relay.domains = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;

    raw.pool = read_pools(conn, &mut errors)?;
    raw.listener = read_listeners(conn, &mut errors)?;
    raw.list = crate::filter_rows::read_lists(conn)?;
    raw.rate_limit = crate::filter_rows::read_rate_limits(conn)?;
    (raw.screen, raw.greylist, raw.auth) = crate::filter_rows::read_sections(conn)?;
    errors.into_result(raw).map_err(StoreError::Invalid)
}

fn read_pools(conn: &Connection, errors: &mut Errors) -> Result<Vec<PoolSection>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT name, balance, check_interval_ms, check_timeout_ms, check_fall, check_rise,
                check_starttls, check_ehlo, slow_start_ms, connect_timeout_ms,
                queue_timeout_ms, max_queue, check_send_proxy,
                client_identity, backend_tls, backend_tls_name,
                recipient_cache_positive_ttl_s, recipient_cache_negative_ttl_s
         FROM pools ORDER BY position, name",
    )?;
    let mut rows = stmt.query([])?;
    let mut pools = Vec::new();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let key = format!("pool[{name}]");
        let balance: String = row.get(1)?;
        let check = CheckSection {
            interval_ms: to_u64(errors, &key, "check.interval_ms", row.get(2)?),
            timeout_ms: to_u64(errors, &key, "check.timeout_ms", row.get(3)?),
            fall: to_u32(errors, &key, "check.fall", row.get(4)?),
            rise: to_u32(errors, &key, "check.rise", row.get(5)?),
            starttls: to_bool(errors, &key, "check.starttls", row.get(6)?),
            ehlo: row.get(7)?,
            send_proxy: row.get::<_, Option<String>>(12)?.map(|text| {
                parse_proxy(&text).unwrap_or_else(|| {
                    bad_text(errors, &key, "check.send_proxy", &text, PROXIES);
                    ProxyVersion::default()
                })
            }),
        };
        let pool = PoolSection {
            balance: parse_balance(&balance).unwrap_or_else(|| {
                bad_text(errors, &key, "balance", &balance, BALANCES);
                Balance::default()
            }),
            check,
            slow_start_ms: to_u64(errors, &key, "slow_start_ms", row.get(8)?),
            connect_timeout_ms: to_u64(errors, &key, "connect_timeout_ms", row.get(9)?),
            queue_timeout_ms: to_u64(errors, &key, "queue_timeout_ms", row.get(10)?),
            max_queue: to_u32(errors, &key, "max_queue", row.get(11)?),
            client_identity: parse_enum(
                errors,
                &key,
                "client_identity",
                &row.get::<_, String>(13)?,
            ),
            backend_tls: parse_enum(errors, &key, "backend_tls", &row.get::<_, String>(14)?),
            backend_tls_name: row.get(15)?,
            recipient_cache_positive_ttl_s: to_u64(
                errors,
                &key,
                "recipient_cache_positive_ttl_s",
                row.get(16)?,
            ),
            recipient_cache_negative_ttl_s: to_u64(
                errors,
                &key,
                "recipient_cache_negative_ttl_s",
                row.get(17)?,
            ),
            server: read_servers(conn, errors, &name, &key)?,
            name,
        };
        pools.push(pool);
    }
    Ok(pools)
}

fn read_servers(
    conn: &Connection,
    errors: &mut Errors,
    pool: &str,
    pool_key: &str,
) -> Result<Vec<ServerSection>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, address, weight, max_conn, state
         FROM servers WHERE pool = ?1 ORDER BY position, name",
    )?;
    let mut rows = stmt.query([pool])?;
    let mut servers = Vec::new();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let key = format!("{pool_key}.server[{name}]");
        let state: String = row.get(4)?;
        servers.push(ServerSection {
            address: row.get(1)?,
            weight: to_u32(errors, &key, "weight", row.get(2)?),
            max_conn: to_u32(errors, &key, "max_conn", row.get(3)?),
            state: parse_state(&state).unwrap_or_else(|| {
                bad_text(errors, &key, "state", &state, STATES);
                ServerState::default()
            }),
            name,
        });
    }
    Ok(servers)
}

fn read_listeners(
    conn: &Connection,
    errors: &mut Errors,
) -> Result<Vec<ListenerSection>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT name, bind, mode, pool, send_proxy, accept_proxy, proxy_trusted,
                proxy_timeout_ms, idle_timeout_ms, max_connections, smtp_hostname,
                max_message_size, max_recipients, max_errors, max_line_length, starttls,
                command_timeout_ms, data_timeout_ms, max_connections_per_client
         FROM listeners ORDER BY position, name",
    )?;
    let mut rows = stmt.query([])?;
    let mut listeners = Vec::new();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let key = format!("listener[{name}]");
        let mode: String = row.get(2)?;
        let send_proxy: String = row.get(4)?;
        let trusted: String = row.get(6)?;
        listeners.push(ListenerSection {
            bind: row.get(1)?,
            mode: parse_mode(&mode).unwrap_or_else(|| {
                bad_text(errors, &key, "mode", &mode, MODES);
                ListenerMode::default()
            }),
            pool: row.get(3)?,
            send_proxy: parse_proxy(&send_proxy).unwrap_or_else(|| {
                bad_text(errors, &key, "send_proxy", &send_proxy, PROXIES);
                ProxyVersion::default()
            }),
            accept_proxy: to_bool(errors, &key, "accept_proxy", row.get(5)?),
            proxy_trusted: split_list(&trusted),
            proxy_timeout_ms: to_u64(errors, &key, "proxy_timeout_ms", row.get(7)?),
            idle_timeout_ms: to_u64(errors, &key, "idle_timeout_ms", row.get(8)?),
            max_connections: to_u32(errors, &key, "max_connections", row.get(9)?),
            hostname: row.get(10)?,
            max_message_size: to_u64(errors, &key, "max_message_size", row.get(11)?),
            max_recipients: to_u32(errors, &key, "max_recipients", row.get(12)?),
            max_errors: to_u32(errors, &key, "max_errors", row.get(13)?),
            max_line_length: to_u32(errors, &key, "max_line_length", row.get(14)?),
            starttls: to_bool(errors, &key, "starttls", row.get(15)?),
            command_timeout_ms: to_u64(errors, &key, "command_timeout_ms", row.get(16)?),
            data_timeout_ms: to_u64(errors, &key, "data_timeout_ms", row.get(17)?),
            max_connections_per_client: to_u32(
                errors,
                &key,
                "max_connections_per_client",
                row.get(18)?,
            ),
            name,
        });
    }
    Ok(listeners)
}

/// Replaces every table of the shared policy with `raw`, in file order.
///
/// Run it inside a transaction: on error the caller rolls everything back.
pub(crate) fn write_policy(conn: &Connection, raw: &PolicyFile) -> Result<(), StoreError> {
    // Children first: listeners refer to pools, servers cascade with them.
    conn.execute_batch(
        "DELETE FROM listeners;
         DELETE FROM servers;
         DELETE FROM pools;
         DELETE FROM relay_domains;
         DELETE FROM settings WHERE key GLOB 'limits.*';",
    )?;
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)",
        params![MAX_CONNECTIONS, raw.limits.max_connections.to_string()],
    )?;
    for (i, domain) in raw.relay.domains.iter().enumerate() {
        conn.execute(
            "INSERT INTO relay_domains (domain, position) VALUES (?1, ?2)",
            params![domain, i],
        )?;
    }
    for (i, p) in raw.pool.iter().enumerate() {
        let c = &p.check;
        conn.execute(
            "INSERT INTO pools (name, balance, check_interval_ms, check_timeout_ms, check_fall,
                 check_rise, check_starttls, check_ehlo, slow_start_ms, connect_timeout_ms,
                 queue_timeout_ms, max_queue, position, check_send_proxy,
                 client_identity, backend_tls, backend_tls_name,
                 recipient_cache_positive_ttl_s, recipient_cache_negative_ttl_s)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19)",
            params![
                p.name,
                balance_text(p.balance),
                c.interval_ms,
                c.timeout_ms,
                c.fall,
                c.rise,
                c.starttls,
                c.ehlo,
                p.slow_start_ms,
                p.connect_timeout_ms,
                p.queue_timeout_ms,
                p.max_queue,
                i,
                c.send_proxy.map(proxy_text),
                enum_text(&p.client_identity),
                enum_text(&p.backend_tls),
                p.backend_tls_name,
                p.recipient_cache_positive_ttl_s,
                p.recipient_cache_negative_ttl_s
            ],
        )?;
        for (j, s) in p.server.iter().enumerate() {
            conn.execute(
                "INSERT INTO servers (pool, name, address, weight, max_conn, state, position)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    p.name,
                    s.name,
                    s.address,
                    s.weight,
                    s.max_conn,
                    state_text(s.state),
                    j
                ],
            )?;
        }
    }
    crate::filter_rows::write_filters(conn, &raw.list, &raw.rate_limit)?;
    crate::filter_rows::write_sections(conn, &raw.screen, &raw.greylist, &raw.auth)?;
    for (i, l) in raw.listener.iter().enumerate() {
        conn.execute(
            "INSERT INTO listeners (name, bind, mode, pool, send_proxy, accept_proxy,
                 proxy_trusted, proxy_timeout_ms, idle_timeout_ms, max_connections, position,
                 smtp_hostname, max_message_size, max_recipients, max_errors, max_line_length,
                 starttls, command_timeout_ms, data_timeout_ms, max_connections_per_client)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18, ?19, ?20)",
            params![
                l.name,
                l.bind,
                mode_text(l.mode),
                l.pool,
                proxy_text(l.send_proxy),
                l.accept_proxy,
                l.proxy_trusted.join(","),
                l.proxy_timeout_ms,
                l.idle_timeout_ms,
                l.max_connections,
                i,
                l.hostname,
                l.max_message_size,
                l.max_recipients,
                l.max_errors,
                l.max_line_length,
                l.starttls,
                l.command_timeout_ms,
                l.data_timeout_ms,
                l.max_connections_per_client
            ],
        )?;
    }
    Ok(())
}

/// Inserts a server at the end of its pool, or updates it in place (keeping
/// its position) when the pool already has a server of that name.
pub(crate) fn upsert_server(
    conn: &Connection,
    pool: &str,
    s: &ServerSection,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO servers (pool, name, address, weight, max_conn, state, position)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6,
                 (SELECT coalesce(max(position) + 1, 0) FROM servers WHERE pool = ?1))
         ON CONFLICT (pool, name) DO UPDATE SET
             address = excluded.address, weight = excluded.weight,
             max_conn = excluded.max_conn, state = excluded.state",
        params![
            pool,
            s.name,
            s.address,
            s.weight,
            s.max_conn,
            state_text(s.state)
        ],
    )?;
    Ok(())
}

/// Sets a server's state; the number of rows changed (0 or 1).
pub(crate) fn set_server_state(
    conn: &Connection,
    pool: &str,
    server: &str,
    state: ServerState,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE servers SET state = ?3 WHERE pool = ?1 AND name = ?2",
        params![pool, server, state_text(state)],
    )?)
}

/// Deletes a server; the number of rows deleted (0 or 1).
pub(crate) fn delete_server(
    conn: &Connection,
    pool: &str,
    server: &str,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM servers WHERE pool = ?1 AND name = ?2",
        params![pool, server],
    )?)
}

/// Splits a stored comma-separated list (`''` = empty).
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn to_u64(errors: &mut Errors, key: &str, field: &str, v: i64) -> u64 {
    u64::try_from(v).unwrap_or_else(|_| {
        errors.push(
            format!("{key}.{field}"),
            format!("stored value {v} is out of range: must not be negative"),
        );
        0
    })
}

fn to_u32(errors: &mut Errors, key: &str, field: &str, v: i64) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| {
        errors.push(
            format!("{key}.{field}"),
            format!("stored value {v} is out of range: must be 0..4294967295"),
        );
        0
    })
}

fn to_bool(errors: &mut Errors, key: &str, field: &str, v: i64) -> bool {
    match v {
        0 => false,
        1 => true,
        _ => {
            errors.push(
                format!("{key}.{field}"),
                format!("stored value {v} is not a boolean: must be 0 or 1"),
            );
            false
        }
    }
}

fn bad_text(errors: &mut Errors, key: &str, field: &str, value: &str, valid: &[&str]) {
    errors.push(
        format!("{key}.{field}"),
        format!("stored value {value:?} is not one of: {}", valid.join(", ")),
    );
}

const BALANCES: &[&str] = &["roundrobin", "leastconn", "source", "first"];
const STATES: &[&str] = &["ready", "drain", "maint"];
const MODES: &[&str] = &["l4", "smtp"];
const PROXIES: &[&str] = &["none", "v1", "v2"];

/// Text of a balance algorithm, as in the policy file.
pub(crate) fn balance_text(b: Balance) -> &'static str {
    match b {
        Balance::Roundrobin => "roundrobin",
        Balance::Leastconn => "leastconn",
        Balance::Source => "source",
        Balance::First => "first",
    }
}

fn parse_balance(s: &str) -> Option<Balance> {
    Some(match s {
        "roundrobin" => Balance::Roundrobin,
        "leastconn" => Balance::Leastconn,
        "source" => Balance::Source,
        "first" => Balance::First,
        _ => return None,
    })
}

/// Text of a server state, as in the policy file.
pub(crate) fn state_text(s: ServerState) -> &'static str {
    match s {
        ServerState::Ready => "ready",
        ServerState::Drain => "drain",
        ServerState::Maint => "maint",
    }
}

fn parse_state(s: &str) -> Option<ServerState> {
    Some(match s {
        "ready" => ServerState::Ready,
        "drain" => ServerState::Drain,
        "maint" => ServerState::Maint,
        _ => return None,
    })
}

fn mode_text(m: ListenerMode) -> &'static str {
    match m {
        ListenerMode::L4 => "l4",
        ListenerMode::Smtp => "smtp",
    }
}

fn parse_mode(s: &str) -> Option<ListenerMode> {
    Some(match s {
        "l4" => ListenerMode::L4,
        "smtp" => ListenerMode::Smtp,
        _ => return None,
    })
}

fn proxy_text(p: ProxyVersion) -> &'static str {
    match p {
        ProxyVersion::None => "none",
        ProxyVersion::V1 => "v1",
        ProxyVersion::V2 => "v2",
    }
}

fn parse_proxy(s: &str) -> Option<ProxyVersion> {
    Some(match s {
        "none" => ProxyVersion::None,
        "v1" => ProxyVersion::V1,
        "v2" => ProxyVersion::V2,
        _ => return None,
    })
}

/// The text of an enum setting, as its serde name (the TOML spelling).
fn enum_text<T: serde::Serialize>(value: &T) -> String {
    toml::Value::try_from(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Reads an enum setting stored as its serde name; an unknown text is an
/// error naming the key.
fn parse_enum<T: serde::de::DeserializeOwned + Default>(
    errors: &mut Errors,
    key: &str,
    what: &str,
    text: &str,
) -> T {
    T::deserialize(toml::Value::String(text.to_owned())).unwrap_or_else(|e| {
        errors.push(
            format!("{key}.{what}"),
            format!("stored value {text:?} is not valid: {e}"),
        );
        T::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_texts_round_trip() {
        for b in [
            Balance::Roundrobin,
            Balance::Leastconn,
            Balance::Source,
            Balance::First,
        ] {
            assert_eq!(parse_balance(balance_text(b)), Some(b));
        }
        for s in [ServerState::Ready, ServerState::Drain, ServerState::Maint] {
            assert_eq!(parse_state(state_text(s)), Some(s));
        }
        for m in [ListenerMode::L4, ListenerMode::Smtp] {
            assert_eq!(parse_mode(mode_text(m)), Some(m));
        }
        for p in [ProxyVersion::None, ProxyVersion::V1, ProxyVersion::V2] {
            assert_eq!(parse_proxy(proxy_text(p)), Some(p));
        }
        assert_eq!(parse_balance("RoundRobin"), None);
    }

    #[test]
    fn lists_split_on_commas_and_skip_empties() {
        assert!(split_list("").is_empty());
        assert_eq!(
            split_list("127.0.0.1/32, 2001:db8::/32"),
            vec!["127.0.0.1/32".to_string(), "2001:db8::/32".to_string()]
        );
    }
}
