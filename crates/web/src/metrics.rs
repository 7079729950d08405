//! `/metrics` in the Prometheus text exposition format, rendered from the
//! live counters on each scrape (nothing is kept twice).

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use mxgate_config::ListenerMode;
use mxgate_gateway::stats::{class_label, ReplyPhase, REPLY_CLASSES};
use mxgate_gateway::{ConnResult, MessageResult};
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) async fn handler(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&state),
    )
}

/// Writes one metric family: its HELP and TYPE lines, then a sample per
/// label set.
fn family<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{k}=\"{}\"", escape(v));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition.
pub(crate) fn render(state: &AppState) -> String {
    let inner = &state.inner;
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "mxgate_build_info",
        "gauge",
        "Always 1; the labels say which build runs.",
        [(
            vec![
                ("version", inner.version.as_str()),
                ("node", inner.node.as_str()),
            ],
            1.0,
        )],
    );
    family(
        &mut out,
        "mxgate_uptime_seconds",
        "gauge",
        "Seconds since the service started.",
        [(vec![], inner.started.elapsed().as_secs_f64().floor())],
    );
    family(
        &mut out,
        "mxgate_web_login_failures_total",
        "counter",
        "Web UI / API logins refused: a wrong name or password, or the rate limit.",
        [
            (
                vec![("reason", "credentials")],
                inner.login_failures.load(Ordering::Relaxed) as f64,
            ),
            (
                vec![("reason", "rate_limited")],
                inner.login_rate_limited.load(Ordering::Relaxed) as f64,
            ),
        ],
    );

    let pools = inner.pools.all();
    let servers: Vec<_> = pools
        .iter()
        .flat_map(|p| {
            p.servers()
                .iter()
                .map(|s| (p.name().to_string(), Arc::clone(s)))
                .collect::<Vec<_>>()
        })
        .collect();
    let per_server = |f: &dyn Fn(&mxgate_balance::Server) -> f64| {
        servers
            .iter()
            .map(|(pool, s)| (vec![("pool", pool.as_str()), ("server", s.name())], f(s)))
            .collect::<Vec<_>>()
    };
    family(
        &mut out,
        "mxgate_backend_up",
        "gauge",
        "1 when the backend passes its health checks, 0 when it is down.",
        per_server(&|s| f64::from(u8::from(s.is_up()))),
    );
    family(
        &mut out,
        "mxgate_backend_sessions_total",
        "counter",
        "Sessions handed to this backend.",
        per_server(&|s| s.sessions_total() as f64),
    );
    family(
        &mut out,
        "mxgate_backend_active_sessions",
        "gauge",
        "Sessions open on this backend now.",
        per_server(&|s| s.active_sessions() as f64),
    );

    let listeners = inner.gateway.listeners();
    let mut samples = Vec::new();
    for l in &listeners {
        let c = l.connections;
        for result in ConnResult::ALL {
            let value = match result {
                ConnResult::Accepted => c.accepted,
                ConnResult::Rejected => c.rejected,
                ConnResult::Tempfail => c.tempfail,
                ConnResult::Error => c.error,
            };
            samples.push((
                vec![("listener", l.name.as_str()), ("result", result.as_str())],
                value as f64,
            ));
        }
    }
    family(
        &mut out,
        "mxgate_listener_connections_total",
        "counter",
        "Connections by how they ended: accepted (relayed), rejected (policy), tempfail (421), error.",
        samples,
    );
    let mut samples = Vec::new();
    for l in listeners.iter().filter(|l| l.mode == ListenerMode::Smtp) {
        let c = l.connections;
        for result in MessageResult::ALL {
            let value = match result {
                MessageResult::Accepted => c.messages_accepted,
                MessageResult::Rejected => c.messages_rejected,
                MessageResult::Tempfail => c.messages_tempfail,
            };
            samples.push((
                vec![("listener", l.name.as_str()), ("result", result.as_str())],
                value as f64,
            ));
        }
    }
    family(
        &mut out,
        "mxgate_smtp_messages_total",
        "counter",
        "smtp mode: messages by the reply their sender got at the end of data (accepted = the backend's 250).",
        samples,
    );
    let mut samples = Vec::new();
    for l in listeners.iter().filter(|l| l.mode == ListenerMode::Smtp) {
        for phase in ReplyPhase::ALL {
            for class in REPLY_CLASSES {
                samples.push((
                    vec![
                        ("listener", l.name.as_str()),
                        ("phase", phase.as_str()),
                        ("class", class_label(class)),
                    ],
                    l.connections.replies(phase, class) as f64,
                ));
            }
        }
    }
    family(
        &mut out,
        "mxgate_smtp_replies_total",
        "counter",
        "smtp mode: replies sent to senders by phase (connect, helo, mail, rcpt, data, end_of_data = the final reply to DATA/BDAT LAST, other) and class.",
        samples,
    );
    let verdicts = inner.gateway.filter_verdicts();
    family(
        &mut out,
        "mxgate_filter_verdicts_total",
        "counter",
        "Screening decisions: check (list, rate, ...) and result (block, allow, limited, ...).",
        verdicts.iter().map(|(check, result, n)| {
            (
                vec![("check", *check), ("result", result.as_str())],
                *n as f64,
            )
        }),
    );
    family(
        &mut out,
        "mxgate_listener_active_connections",
        "gauge",
        "Connections open now on this listener.",
        listeners.iter().map(|l| {
            (
                vec![("listener", l.name.as_str())],
                l.connections.active as f64,
            )
        }),
    );
    family(
        &mut out,
        "mxgate_listener_bound",
        "gauge",
        "1 when the listener is accepting.",
        listeners.iter().map(|l| {
            (
                vec![("listener", l.name.as_str())],
                f64::from(u8::from(l.bound)),
            )
        }),
    );
    if let Some(vrrp) = state.vrrp() {
        render_vrrp(&mut out, &vrrp);
    }
    if let Some(sync) = state.sync() {
        render_sync(&mut out, &sync);
    }
    out
}

/// The `mxgate_sync_*` families of a node with `[sync]`.
fn render_sync(out: &mut String, s: &crate::status::SyncStatus) {
    let peer = s.peer.as_str();
    family(
        out,
        "mxgate_sync_peer_up",
        "gauge",
        "1 while a trusted sync session with the peer is up.",
        [(vec![("peer", peer)], if s.up { 1.0 } else { 0.0 })],
    );
    family(
        out,
        "mxgate_sync_pending_changes",
        "gauge",
        "Local changes the peer has not acknowledged.",
        [(vec![("peer", peer)], s.pending as f64)],
    );
    family(
        out,
        "mxgate_sync_conflicts_total",
        "counter",
        "Concurrent edits resolved by last writer wins.",
        [(vec![], s.conflicts_total as f64)],
    );
    family(
        out,
        "mxgate_sync_refused_total",
        "counter",
        "Sync connections refused or closed for a protocol or trust error (unpinned key, bad version, malformed frame).",
        [(vec![("peer", peer)], s.refused_total as f64)],
    );
    if let Some(skew) = s.max_skew_ms {
        family(
            out,
            "mxgate_sync_max_skew_ms",
            "gauge",
            "Largest clock skew seen from the peer since start (ms).",
            [(vec![("peer", peer)], skew as f64)],
        );
    }
}

/// The `mxgate_vrrp_*` families of a node that runs a virtual router.
fn render_vrrp(out: &mut String, v: &mxgate_vrrp::Snapshot) {
    let vrid = v.report.vrid.to_string();
    let vrid = vrid.as_str();
    family(
        out,
        "mxgate_vrrp_state",
        "gauge",
        "VRRP state: 0 init, 1 backup, 2 master, 3 fault.",
        [(
            vec![("vrid", vrid)],
            f64::from(mxgate_vrrp::monitor::state_value(v.report.state)),
        )],
    );
    family(
        out,
        "mxgate_vrrp_transitions_total",
        "counter",
        "VRRP state changes, by the state entered (init, backup, master, fault).",
        v.transitions_total
            .iter()
            .map(|(to, n)| (vec![("vrid", vrid), ("to", *to)], *n as f64)),
    );
    family(
        out,
        "mxgate_vrrp_priority",
        "gauge",
        "Effective VRRP priority: configured minus the weights of failed tracked objects.",
        [(vec![("vrid", vrid)], f64::from(v.report.priority))],
    );
    family(
        out,
        "mxgate_vrrp_adverts_total",
        "counter",
        "VRRP adverts sent (direction tx) and received and accepted (rx).",
        [
            (
                vec![("vrid", vrid), ("direction", "rx")],
                v.adverts_received as f64,
            ),
            (
                vec![("vrid", vrid), ("direction", "tx")],
                v.adverts_sent as f64,
            ),
        ],
    );
    family(
        out,
        "mxgate_vrrp_rx_dropped_total",
        "counter",
        "Received VRRP packets dropped, by reason (bad_ttl, bad_checksum, unknown_vrid, not_a_peer, ...).",
        v.rx_dropped
            .iter()
            .map(|(reason, n)| (vec![("reason", reason.as_str())], *n as f64)),
    );
}

#[cfg(test)]
mod tests {
    use super::{escape, render_sync, render_vrrp};

    #[test]
    fn sync_families_follow_the_interface_contract() {
        let s = crate::status::SyncStatus {
            peer: "192.0.2.12:4747".into(),
            peer_name: Some("gw-b".into()),
            up: true,
            last_sync_unix_ms: Some(1),
            lag_ms: Some(2),
            pending: 3,
            max_skew_ms: Some(-4),
            conflicts_total: 5,
            refused_total: 6,
            last_error: None,
        };
        let mut out = String::new();
        render_sync(&mut out, &s);
        for line in [
            "mxgate_sync_peer_up{peer=\"192.0.2.12:4747\"} 1",
            "mxgate_sync_pending_changes{peer=\"192.0.2.12:4747\"} 3",
            "mxgate_sync_conflicts_total 5",
            "mxgate_sync_refused_total{peer=\"192.0.2.12:4747\"} 6",
            "mxgate_sync_max_skew_ms{peer=\"192.0.2.12:4747\"} -4",
            "# TYPE mxgate_sync_conflicts_total counter",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
    }
    use mxgate_vrrp::{Monitor, StateName, Status};
    use std::time::Instant;

    #[test]
    fn vrrp_families_follow_the_interface_contract() {
        let t0 = Instant::now();
        let m = Monitor::new(51, 150, "eth0", vec!["192.0.2.25/24".into()], t0);
        let mut status = Status::new(51, 150, t0);
        for (from, to) in [
            (StateName::Initialize, StateName::Backup),
            (StateName::Backup, StateName::Master),
        ] {
            status.record(mxgate_vrrp::Transition {
                at: t0,
                from,
                to,
                reason: mxgate_vrrp::Reason::Startup,
            });
            m.count_transition(to);
        }
        m.record_status(&status);
        m.count_drop("bad_ttl");
        let mut out = String::new();
        render_vrrp(&mut out, &m.snapshot(t0));
        for line in [
            "mxgate_vrrp_state{vrid=\"51\"} 2",
            "mxgate_vrrp_transitions_total{vrid=\"51\",to=\"master\"} 1",
            "mxgate_vrrp_transitions_total{vrid=\"51\",to=\"backup\"} 1",
            "mxgate_vrrp_transitions_total{vrid=\"51\",to=\"fault\"} 0",
            "mxgate_vrrp_priority{vrid=\"51\"} 150",
            "mxgate_vrrp_rx_dropped_total{reason=\"bad_ttl\"} 1",
            "# TYPE mxgate_vrrp_transitions_total counter",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing in:\n{out}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
