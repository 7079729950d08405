//! One backend server: its live settings, health, session counters and the
//! [`Lease`] that holds one session slot.
//!
//! Everything the session path reads (health, admin state, weight, slots) is
//! an atomic, so picking a server takes no lock; the health-check details
//! shown by the status API sit behind a small mutex only the check loop and
//! the status readers touch.

use crate::check::CheckOutcome;
use crate::health::{Health, HealthTracker, Thresholds, Transition};
use crate::queue::WaitQueue;
use crate::slowstart::ramp_weight;
use mxgate_config::{Server as ServerConfig, ServerState};
use serde::Serialize;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Source of [`Server::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// "No ramp running" in [`Server::ramp_start_ms`].
const NO_RAMP: u64 = u64::MAX;

/// A backend server of a pool.
pub struct Server {
    id: u64,
    name: String,
    address: SocketAddr,
    weight: AtomicU32,
    max_conn: AtomicU32,
    admin: AtomicU8,
    /// The pool's slow start, kept here so the server alone can tell its
    /// effective weight.
    slow_start_ms: AtomicU64,
    health: AtomicU8,
    active: AtomicU64,
    total: AtomicU64,
    /// Base of `ramp_start_ms`.
    born: Instant,
    /// When the slow-start ramp began, in ms after `born`.
    ramp_start_ms: AtomicU64,
    check: Mutex<CheckState>,
}

/// Health-check details, written by the check loop.
#[derive(Debug, Default)]
struct CheckState {
    tracker: HealthTracker,
    last: Option<CheckOutcome>,
    since_unix: Option<u64>,
    /// Back from maintenance and not decided yet: coming up then is a
    /// recovery too (slow start applies).
    resumed: bool,
}

/// A snapshot of a server for the status API and the metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    /// Name in its pool.
    pub name: String,
    /// `IP:port`.
    pub address: String,
    /// `"ready"`, `"drain"` or `"maint"`.
    pub admin_state: ServerState,
    /// `"up"`, `"down"` or `"unknown"` (always unknown in maintenance).
    pub health: Health,
    /// Sessions open now.
    pub active_sessions: u64,
    /// Sessions since the server was added.
    pub sessions_total: u64,
    /// Configured weight.
    pub weight: u32,
    /// Weight after slow start.
    pub effective_weight: u32,
    /// Session cap; 0 = none.
    pub max_conn: u32,
    /// The last health check.
    pub last_check: Option<CheckOutcome>,
    /// Successes in a row.
    pub consecutive_ok: u32,
    /// Failures in a row.
    pub consecutive_fail: u32,
    /// Last health transition, seconds since the Unix epoch.
    pub since_unix: Option<u64>,
}

impl Server {
    /// A server with fresh counters and unknown health.
    pub fn new(config: &ServerConfig) -> Arc<Server> {
        Arc::new(Server {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: config.name.clone(),
            address: config.address,
            weight: AtomicU32::new(config.weight),
            max_conn: AtomicU32::new(config.max_conn),
            admin: AtomicU8::new(state_to_u8(config.state)),
            slow_start_ms: AtomicU64::new(0),
            health: AtomicU8::new(health_to_u8(Health::Unknown)),
            active: AtomicU64::new(0),
            total: AtomicU64::new(0),
            born: Instant::now(),
            ramp_start_ms: AtomicU64::new(NO_RAMP),
            check: Mutex::new(CheckState::default()),
        })
    }

    /// Unique in this process; tells apart two servers of the same name.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Name in its pool.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Address of the MTA.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// True when the health checks say it is up.
    pub fn is_up(&self) -> bool {
        self.health() == Health::Up
    }

    /// What the health checks say (whatever the admin state).
    pub fn health(&self) -> Health {
        health_from_u8(self.health.load(Ordering::Acquire))
    }

    /// Administrative state.
    pub fn admin_state(&self) -> ServerState {
        state_from_u8(self.admin.load(Ordering::Acquire))
    }

    /// Configured weight.
    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    /// Session cap; 0 = none.
    pub fn max_conn(&self) -> u32 {
        self.max_conn.load(Ordering::Relaxed)
    }

    /// Sessions open now.
    pub fn active_sessions(&self) -> u64 {
        self.active.load(Ordering::Acquire)
    }

    /// Sessions since the server was added.
    pub fn sessions_total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Weight after slow start, now.
    pub fn effective_weight(&self) -> u32 {
        self.effective_weight_at(Instant::now())
    }

    /// Weight after slow start at `now`.
    pub fn effective_weight_at(&self, now: Instant) -> u32 {
        let weight = self.weight();
        let start = self.ramp_start_ms.load(Ordering::Relaxed);
        if start == NO_RAMP {
            return weight;
        }
        let slow_start = Duration::from_millis(self.slow_start_ms.load(Ordering::Relaxed));
        let began = self.born + Duration::from_millis(start);
        ramp_weight(weight, slow_start, now.saturating_duration_since(began))
    }

    /// A snapshot for the status API.
    pub fn status(&self) -> ServerStatus {
        let admin_state = self.admin_state();
        let check = self.check_state();
        let health = if admin_state == ServerState::Maint {
            Health::Unknown
        } else {
            self.health()
        };
        ServerStatus {
            name: self.name.clone(),
            address: self.address.to_string(),
            admin_state,
            health,
            active_sessions: self.active_sessions(),
            sessions_total: self.sessions_total(),
            weight: self.weight(),
            effective_weight: self.effective_weight(),
            max_conn: self.max_conn(),
            last_check: check.last.clone(),
            consecutive_ok: check.tracker.consecutive_ok(),
            consecutive_fail: check.tracker.consecutive_fail(),
            since_unix: check.since_unix,
        }
    }

    /// Takes the new weight, cap, admin state and pool slow start. Going to
    /// maintenance forgets the health, so the first check after it decides.
    pub(crate) fn configure(&self, config: &ServerConfig, slow_start: Duration) {
        self.weight.store(config.weight, Ordering::Relaxed);
        self.max_conn.store(config.max_conn, Ordering::Relaxed);
        self.slow_start_ms.store(
            u64::try_from(slow_start.as_millis()).unwrap_or(u64::MAX - 1),
            Ordering::Relaxed,
        );
        let old = state_from_u8(self.admin.swap(state_to_u8(config.state), Ordering::AcqRel));
        if config.state == ServerState::Maint && old != ServerState::Maint {
            let mut check = self.check_state();
            check.tracker.reset();
            check.resumed = true;
            self.health
                .store(health_to_u8(Health::Unknown), Ordering::Release);
            self.ramp_start_ms.store(NO_RAMP, Ordering::Relaxed);
        }
    }

    /// May get new sessions: ready and not down.
    pub(crate) fn accepts_sessions(&self) -> bool {
        self.admin_state() == ServerState::Ready && self.health().is_usable()
    }

    /// Below its session cap.
    pub(crate) fn has_room(&self) -> bool {
        let max = self.max_conn();
        max == 0 || self.active_sessions() < u64::from(max)
    }

    /// Takes a session slot unless the server is at its cap.
    pub(crate) fn try_take_slot(&self) -> bool {
        let mut current = self.active.load(Ordering::Acquire);
        loop {
            let max = self.max_conn();
            if max != 0 && current >= u64::from(max) {
                return false;
            }
            match self.active.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.total.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Err(now) => current = now,
            }
        }
    }

    /// Gives a slot back.
    fn release_slot(&self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }

    /// Feeds a check result taken at `now`; returns the health transition,
    /// if any. Ignored in maintenance. Coming up after being down or in
    /// maintenance starts the slow-start ramp; the very first success of a
    /// new server does not (nothing to protect it from: all start together).
    pub(crate) fn record_check(
        &self,
        outcome: CheckOutcome,
        limits: Thresholds,
        now: Instant,
    ) -> Option<Transition> {
        let mut check = self.check_state();
        if self.admin_state() == ServerState::Maint {
            return None;
        }
        let transition = check.tracker.record(outcome.ok, limits, now);
        check.last = Some(outcome);
        let t = transition?;
        self.health.store(health_to_u8(t.to), Ordering::Release);
        check.since_unix = Some(unix_now());
        let recovered = t.from == Health::Down || check.resumed;
        check.resumed = false;
        if t.to == Health::Up && recovered {
            self.start_ramp(now);
        } else if t.to == Health::Down {
            self.ramp_start_ms.store(NO_RAMP, Ordering::Relaxed);
        }
        Some(t)
    }

    /// Starts the slow-start ramp at `now`.
    pub(crate) fn start_ramp(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.born).as_millis();
        let ms = u64::try_from(ms).unwrap_or(NO_RAMP - 1).min(NO_RAMP - 1);
        self.ramp_start_ms.store(ms, Ordering::Relaxed);
    }

    fn check_state(&self) -> MutexGuard<'_, CheckState> {
        self.check.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("address", &self.address)
            .field("admin_state", &self.admin_state())
            .field("health", &self.health())
            .field("active", &self.active_sessions())
            .finish_non_exhaustive()
    }
}

/// One session slot on a server. Dropping it gives the slot back and wakes
/// a session waiting in the pool's queue.
pub struct Lease {
    server: Arc<Server>,
    queue: Arc<WaitQueue>,
}

impl Lease {
    /// Wraps a slot already taken with [`Server::try_take_slot`].
    pub(crate) fn new(server: Arc<Server>, queue: Arc<WaitQueue>) -> Lease {
        Lease { server, queue }
    }

    /// The server the slot is on.
    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.server.release_slot();
        self.queue.slot_released(self.server.id);
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("server", &self.server.name)
            .finish()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn state_to_u8(state: ServerState) -> u8 {
    match state {
        ServerState::Ready => 0,
        ServerState::Drain => 1,
        ServerState::Maint => 2,
    }
}

fn state_from_u8(v: u8) -> ServerState {
    match v {
        0 => ServerState::Ready,
        1 => ServerState::Drain,
        _ => ServerState::Maint,
    }
}

fn health_to_u8(h: Health) -> u8 {
    match h {
        Health::Unknown => 0,
        Health::Up => 1,
        Health::Down => 2,
    }
}

fn health_from_u8(v: u8) -> Health {
    match v {
        1 => Health::Up,
        2 => Health::Down,
        _ => Health::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(weight: u32, max_conn: u32, state: ServerState) -> ServerConfig {
        ServerConfig {
            name: "mta1".into(),
            address: "127.0.0.1:25".parse().unwrap(),
            weight,
            max_conn,
            state,
        }
    }

    fn outcome(ok: bool) -> CheckOutcome {
        CheckOutcome {
            ok,
            duration_ms: 1,
            error: (!ok).then(|| "connect failed".into()),
            banner: None,
            tls: None,
            at_unix: 1,
        }
    }

    const RF: Thresholds = Thresholds { rise: 1, fall: 1 };

    #[test]
    fn slots_respect_max_conn_and_count_sessions() {
        let s = Server::new(&cfg(1, 2, ServerState::Ready));
        assert!(s.try_take_slot());
        assert!(s.try_take_slot());
        assert!(!s.has_room());
        assert!(!s.try_take_slot());
        s.release_slot();
        assert!(s.try_take_slot());
        assert_eq!(s.active_sessions(), 2);
        assert_eq!(s.sessions_total(), 3);
    }

    #[test]
    fn lease_drop_releases() {
        let s = Server::new(&cfg(1, 1, ServerState::Ready));
        let q = Arc::new(WaitQueue::default());
        assert!(s.try_take_slot());
        let lease = Lease::new(s.clone(), q);
        assert_eq!(lease.server().active_sessions(), 1);
        drop(lease);
        assert_eq!(s.active_sessions(), 0);
    }

    #[test]
    fn check_results_drive_health_and_status() {
        let s = Server::new(&cfg(1, 0, ServerState::Ready));
        assert!(s.accepts_sessions(), "unknown is usable");
        let t = s.record_check(outcome(false), RF, Instant::now()).unwrap();
        assert_eq!(t.to, Health::Down);
        assert!(!s.accepts_sessions());
        let st = s.status();
        assert_eq!(st.health, Health::Down);
        assert_eq!(st.consecutive_fail, 1);
        assert!(st.since_unix.is_some());
        assert_eq!(
            st.last_check.unwrap().error.as_deref(),
            Some("connect failed")
        );
    }

    #[test]
    fn maint_forgets_health_and_shows_unknown() {
        let s = Server::new(&cfg(1, 0, ServerState::Ready));
        s.record_check(outcome(false), RF, Instant::now());
        s.configure(&cfg(1, 0, ServerState::Maint), Duration::ZERO);
        assert_eq!(s.status().health, Health::Unknown);
        assert!(s.record_check(outcome(true), RF, Instant::now()).is_none());
        assert!(!s.accepts_sessions());
        s.configure(&cfg(1, 0, ServerState::Ready), Duration::ZERO);
        assert!(s.accepts_sessions());
        let t = s.record_check(outcome(false), RF, Instant::now()).unwrap();
        assert_eq!((t.from, t.to), (Health::Unknown, Health::Down));
    }

    #[test]
    fn drain_takes_no_new_sessions() {
        let s = Server::new(&cfg(1, 0, ServerState::Drain));
        assert!(!s.accepts_sessions());
    }

    #[test]
    fn recovery_starts_slow_start() {
        let s = Server::new(&cfg(100, 0, ServerState::Ready));
        s.configure(&cfg(100, 0, ServerState::Ready), Duration::from_secs(10));
        let t0 = Instant::now();
        s.record_check(outcome(true), RF, t0);
        assert_eq!(s.effective_weight_at(t0), 100, "first success: no ramp");
        s.record_check(outcome(false), RF, t0);
        let up = t0 + Duration::from_secs(1);
        s.record_check(outcome(true), RF, up);
        assert_eq!(s.effective_weight_at(up), 10);
        assert_eq!(s.effective_weight_at(up + Duration::from_secs(5)), 55);
        assert_eq!(s.effective_weight_at(up + Duration::from_secs(10)), 100);

        // back from maintenance: ramps too
        s.configure(&cfg(100, 0, ServerState::Maint), Duration::from_secs(10));
        s.configure(&cfg(100, 0, ServerState::Ready), Duration::from_secs(10));
        assert_eq!(s.effective_weight_at(up), 100);
        let back = up + Duration::from_secs(60);
        s.record_check(outcome(true), RF, back);
        assert_eq!(s.effective_weight_at(back), 10);
    }

    #[test]
    fn status_serializes_as_documented() {
        let s = Server::new(&cfg(3, 10, ServerState::Drain));
        let json = serde_json::to_value(s.status()).unwrap();
        assert_eq!(json["name"], "mta1");
        assert_eq!(json["address"], "127.0.0.1:25");
        assert_eq!(json["admin_state"], "drain");
        assert_eq!(json["health"], "unknown");
        assert_eq!(json["weight"], 3);
        assert_eq!(json["effective_weight"], 3);
        assert_eq!(json["max_conn"], 10);
        assert_eq!(json["active_sessions"], 0);
        assert_eq!(json["sessions_total"], 0);
        assert!(json["last_check"].is_null());
        assert!(json["since_unix"].is_null());
        assert_eq!(json["consecutive_ok"], 0);
    }
}
