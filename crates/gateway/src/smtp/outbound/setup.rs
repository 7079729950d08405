//! Opening a backend session: a server chosen and connected (the next one
//! when a connect or the set-up fails: nothing of the transaction was sent
//! yet), the PROXY header, the 220 banner, EHLO (HELO when EHLO is refused
//! with 5xx), STARTTLS per [`BackendTls`] and EHLO again, then XCLIENT when
//! configured, followed by the greeting the sender itself gave.

use super::conn::{summary, Conn};
use super::{tls, Announce, BackendTls, OutboundSettings};
use crate::backend::connect_backend_skipping;
use crate::smtp::relay::{ClientIdentity, RelayError};
use mxgate_balance::{Lease, Pool};
use mxgate_smtp::Reply;
use mxgate_wire::proxy::{self, Command};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Longest wait for the reply to a `QUIT` sent after a refusal.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// Connects to a server of `pool` and runs the set-up; on a set-up failure
/// the next server is tried. The error is the last set-up failure, or
/// [`RelayError::NoBackend`] when no server could be connected at all.
pub(super) async fn open(
    pool: &Pool,
    identity: &ClientIdentity,
    settings: &OutboundSettings,
) -> Result<(Lease, Conn), RelayError> {
    let mut tried = Vec::new();
    let mut last = None;
    loop {
        let (lease, tcp) = match connect_backend_skipping(pool, identity.addr, &mut tried).await {
            Ok(pair) => pair,
            Err(reason) => return Err(last.unwrap_or(RelayError::NoBackend(reason))),
        };
        let server = Arc::clone(lease.server());
        let label = format!("{}/{}", pool.name(), server.name());
        match handshake(tcp, server.address(), label, identity, settings).await {
            Ok(conn) => return Ok((lease, conn)),
            Err(e) => {
                tracing::warn!(error = %e, "backend session set-up failed, trying the next server");
                tried.push(server);
                last = Some(e);
            }
        }
    }
}

/// The set-up dialogue on a fresh connection.
async fn handshake(
    tcp: TcpStream,
    address: SocketAddr,
    label: String,
    identity: &ClientIdentity,
    settings: &OutboundSettings,
) -> Result<Conn, RelayError> {
    let limit = settings.command_timeout;
    let mut conn = Conn::new(Box::new(tcp), label);
    if let Some(header) = proxy_header(settings.identity, identity) {
        conn.send(&header, "PROXY header", limit).await?;
    }
    let banner = conn.reply("banner", limit).await?;
    if banner.code != 220 {
        return Err(refused(conn, "banner", &banner).await);
    }
    let ehlo = format!("EHLO {}\r\n", settings.ehlo_name);
    let mut caps = conn.command(&ehlo, "EHLO", limit).await?;
    if caps.is_permanent() {
        let helo = format!("HELO {}\r\n", settings.ehlo_name);
        let reply = conn.command(&helo, "HELO", limit).await?;
        if reply.code != 250 {
            return Err(refused(conn, "HELO", &reply).await);
        }
        // No extensions: nothing offered.
        caps = Reply::new(250, settings.ehlo_name.clone());
    } else if caps.code != 250 {
        return Err(refused(conn, "EHLO", &caps).await);
    }
    let (next, upgraded) = starttls(conn, &caps, address, settings).await?;
    conn = next;
    if upgraded {
        caps = conn.command(&ehlo, "EHLO after STARTTLS", limit).await?;
        if caps.code != 250 {
            return Err(refused(conn, "EHLO after STARTTLS", &caps).await);
        }
    }
    if settings.identity == Announce::Xclient {
        if let Err(e) = xclient(&mut conn, &caps, identity, settings).await {
            if matches!(e, RelayError::Protocol { .. }) {
                conn.quit(QUIT_WAIT.min(limit)).await;
            }
            return Err(e);
        }
    }
    Ok(conn)
}

/// STARTTLS as `settings.tls` asks; the connection, and whether it is TLS now.
async fn starttls(
    mut conn: Conn,
    caps: &Reply,
    address: SocketAddr,
    settings: &OutboundSettings,
) -> Result<(Conn, bool), RelayError> {
    let limit = settings.command_timeout;
    let mode = settings.tls;
    let offered = keyword(caps, "STARTTLS").is_some();
    match mode {
        BackendTls::Off => return Ok((conn, false)),
        BackendTls::Opportunistic if !offered => return Ok((conn, false)),
        BackendTls::Require | BackendTls::Verify if !offered => {
            let e = conn.protocol("STARTTLS", "STARTTLS is not offered by the backend".into());
            conn.quit(QUIT_WAIT.min(limit)).await;
            return Err(e);
        }
        _ => {}
    }
    let reply = conn.command("STARTTLS\r\n", "STARTTLS", limit).await?;
    if reply.code != 220 {
        if mode == BackendTls::Opportunistic && reply.is_transient() {
            tracing::info!(server = conn.server(), reply = %summary(&reply), "STARTTLS refused, going on without TLS");
            return Ok((conn, false));
        }
        return Err(refused(conn, "STARTTLS", &reply).await);
    }
    if conn.has_unread() {
        return Err(conn.protocol("STARTTLS", "data after the 220 reply to STARTTLS".into()));
    }
    let step = "TLS handshake";
    let tls_name = settings
        .tls_name
        .as_deref()
        .filter(|_| mode == BackendTls::Verify);
    let prepared =
        tls::connector(mode).and_then(|c| Ok((c, tls::server_name(tls_name, address.ip())?)));
    let (connector, name) = match prepared {
        Ok(pair) => pair,
        Err(e) => return Err(conn.protocol(step, e.to_string())),
    };
    let (stream, label) = conn.into_parts();
    match tokio::time::timeout(limit, connector.connect(name, stream)).await {
        Err(_) => Err(RelayError::Timeout {
            server: label,
            step,
        }),
        Ok(Err(e)) => Err(RelayError::Protocol {
            server: label,
            step,
            detail: e.to_string(),
        }),
        Ok(Ok(tls)) => Ok((Conn::new(Box::new(tls), label), true)),
    }
}

/// XCLIENT with the sender's identity, then the sender's own greeting
/// (Postfix resets the session after XCLIENT and wants a new EHLO/HELO).
async fn xclient(
    conn: &mut Conn,
    caps: &Reply,
    identity: &ClientIdentity,
    settings: &OutboundSettings,
) -> Result<(), RelayError> {
    let limit = settings.command_timeout;
    let Some(offered) = keyword(caps, "XCLIENT") else {
        return Err(conn.protocol("XCLIENT", "backend does not allow XCLIENT from us".into()));
    };
    let line = xclient_line(identity, &offered);
    let reply = conn.command(&line, "XCLIENT", limit).await?;
    if reply.code != 220 {
        return Err(conn.protocol("XCLIENT", summary(&reply)));
    }
    let helo = greeting_name(&identity.helo).unwrap_or(&settings.ehlo_name);
    let verb = if identity.esmtp { "EHLO" } else { "HELO" };
    let reply = conn
        .command(&format!("{verb} {helo}\r\n"), "EHLO after XCLIENT", limit)
        .await?;
    if reply.code != 250 {
        return Err(conn.protocol("EHLO after XCLIENT", summary(&reply)));
    }
    Ok(())
}

/// `XCLIENT NAME=.. ADDR=.. PORT=.. PROTO=.. HELO=..\r\n`, with only the
/// attributes the backend listed (all when it listed none). `NAME` is the
/// client's forward-confirmed reverse name when mxgate looked it up, else
/// `[UNAVAILABLE]` (Postfix then logs `unknown`).
pub(super) fn xclient_line(identity: &ClientIdentity, offered: &[String]) -> String {
    let ip = identity.addr.ip().to_canonical();
    let addr = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("IPV6:{v6}"),
    };
    let helo = if identity.helo.is_empty() {
        "[UNAVAILABLE]".to_owned()
    } else {
        xtext(&identity.helo)
    };
    let proto = if identity.esmtp { "ESMTP" } else { "SMTP" };
    let attributes = [
        (
            "NAME",
            identity
                .rdns
                .as_deref()
                .map_or_else(|| "[UNAVAILABLE]".to_owned(), xtext),
        ),
        ("ADDR", xtext(&addr)),
        ("PORT", identity.addr.port().to_string()),
        ("PROTO", proto.to_owned()),
        ("HELO", helo),
    ];
    let mut line = String::from("XCLIENT");
    for (name, value) in attributes {
        if offered.is_empty() || offered.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            line.push_str(&format!(" {name}={value}"));
        }
    }
    line.push_str("\r\n");
    line
}

/// RFC 3461 xtext: `+XX` for `+`, `=` and octets outside `!`..=`~`.
pub(super) fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// The sender's HELO name when it can stand in a command line as one word.
fn greeting_name(helo: &str) -> Option<&str> {
    let ok = !helo.is_empty() && helo.len() <= 255 && helo.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(helo)
}

/// The parameters of EHLO keyword `name` when the backend lists it.
pub(super) fn keyword(caps: &Reply, name: &str) -> Option<Vec<String>> {
    caps.lines.iter().skip(1).find_map(|line| {
        let mut words = line.split_ascii_whitespace();
        let kw = words.next()?;
        kw.eq_ignore_ascii_case(name)
            .then(|| words.map(str::to_owned).collect())
    })
}

/// The PROXY header for `announce`, source the sender, destination the
/// address it connected to.
fn proxy_header(announce: Announce, identity: &ClientIdentity) -> Option<Vec<u8>> {
    let (src, dst) = (identity.addr, identity.destination);
    match announce {
        Announce::ProxyV1 => Some(proxy::emit_v1(src, dst)),
        Announce::ProxyV2 => proxy::emit_v2(Command::Proxy, src, dst, &[]).ok(),
        Announce::None | Announce::Xclient => None,
    }
}

/// The error for a refused set-up step, after a polite `QUIT`.
async fn refused(conn: Conn, step: &'static str, reply: &Reply) -> RelayError {
    let e = conn.protocol(step, summary(reply));
    conn.quit(QUIT_WAIT).await;
    e
}
