//! The state machine proper: one type per state holding only what is valid
//! in it, and handlers that consume a state and return the next.
//!
//! - Initialize: not running; remembers whether a fault is active.
//! - Backup: the learned `Master_Adver_Interval`, the Master_Down_Timer,
//!   what its expiry would mean (silence, a priority-0 release, or a
//!   preemption), and the preempt-delay window if one is open.
//! - Master: the Adver_Timer and when the last extra (split-brain) advert
//!   went out.
//! - Fault: nothing.
//!
//! The rules themselves are listed in the crate documentation; each handler
//! below cites the RFC 5798 paragraph it implements.

use std::mem;
use std::net::IpAddr;
use std::time::Instant;

use mxgate_wire::vrrp::{PRIORITY_OWNER, PRIORITY_RELEASE};

use crate::status::{Status, Transition};
use crate::{
    centiseconds, master_down_interval, skew_time, Action, Config, ConfigError, Event, Reason,
    StateName,
};

/// One virtual router's VRRP state machine.
///
/// Feed it [`Event`]s with the current time through [`Machine::handle`] and
/// carry out the [`Action`]s it returns, in order. Call it with
/// [`Event::Timer`] once [`Machine::next_deadline`] has passed; a late call
/// is fine (the timer fires then), an early one does nothing.
#[derive(Debug, Clone)]
pub struct Machine {
    config: Config,
    /// The effective priority: the configured one plus tracking weights.
    priority: u8,
    state: State,
    status: Status,
}

#[derive(Debug, Clone)]
enum State {
    Initialize(Initialize),
    Backup(Backup),
    Master(Master),
    Fault(Fault),
}

/// §6.4.1: waiting for Startup.
#[derive(Debug, Clone)]
struct Initialize {
    /// A fault was raised (and not cleared) while not running.
    fault_pending: bool,
}

/// §6.4.2: watching the master.
#[derive(Debug, Clone)]
struct Backup {
    /// Master_Adver_Interval, learned from the master's adverts.
    master_adver_interval_cs: u16,
    /// When the Master_Down_Timer fires.
    master_down_at: Instant,
    /// What the timer firing would mean, for the log.
    expiry: Expiry,
    /// End of the preempt-delay window, once a lower master has been heard.
    preempt_window_end: Option<Instant>,
}

/// Why a Backup's Master_Down_Timer would fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// No accepted advert for Master_Down_Interval.
    Silence,
    /// The master sent priority 0; the timer is at Skew_Time.
    Released,
    /// We are discarding a lower master's adverts to preempt it.
    Preempting,
}

/// §6.4.3: holding the VIPs.
#[derive(Debug, Clone)]
struct Master {
    /// When the Adver_Timer fires.
    adver_at: Instant,
    /// When the last extra advert answering a lower advert went out.
    last_heal: Option<Instant>,
}

/// Not in the RFC: a tracked object is down.
#[derive(Debug, Clone)]
struct Fault;

/// A handler's result: the next state and, if it is another state, why.
struct Next {
    state: State,
    reason: Option<Reason>,
}

impl Next {
    fn stay(state: State) -> Next {
        Next {
            state,
            reason: None,
        }
    }

    fn to(state: State, reason: Reason) -> Next {
        Next {
            state,
            reason: Some(reason),
        }
    }
}

/// What every handler needs: settings, the effective priority, the time,
/// and where to put actions.
struct Ctx<'a> {
    config: &'a Config,
    priority: u8,
    now: Instant,
    out: &'a mut Vec<Action>,
}

impl Ctx<'_> {
    fn advert_interval(&self) -> std::time::Duration {
        centiseconds(self.config.advert_interval_cs)
    }

    fn send_advert(&mut self) {
        self.out.push(Action::SendAdvert {
            priority: self.priority,
        });
    }

    /// Leaving Master: advertise priority 0 so a backup takes over after
    /// Skew_Time instead of Master_Down_Interval, and drop the VIPs.
    fn release(&mut self) {
        self.out.push(Action::SendAdvert {
            priority: PRIORITY_RELEASE,
        });
        self.out.push(Action::RemoveVips);
    }
}

impl Machine {
    /// A machine in Initialize for a validated `config`.
    ///
    /// # Errors
    /// The [`ConfigError`] from [`Config::validate`].
    pub fn new(config: Config, now: Instant) -> Result<Machine, ConfigError> {
        config.validate()?;
        Ok(Machine {
            priority: config.priority,
            status: Status::new(config.vrid, config.priority, now),
            config,
            state: State::Initialize(Initialize {
                fault_pending: false,
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> StateName {
        match self.state {
            State::Initialize(_) => StateName::Initialize,
            State::Backup(_) => StateName::Backup,
            State::Master(_) => StateName::Master,
            State::Fault(_) => StateName::Fault,
        }
    }

    /// The effective priority: configured plus tracking weights, 1..=254,
    /// or 255 for the owner.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The state, since when, and recent transitions.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// In Backup, the Master_Adver_Interval learned from the master.
    pub fn master_adver_interval_cs(&self) -> Option<u16> {
        match &self.state {
            State::Backup(b) => Some(b.master_adver_interval_cs),
            _ => None,
        }
    }

    /// When to call [`Machine::handle`] with [`Event::Timer`]: the
    /// Master_Down_Timer in Backup, the Adver_Timer in Master, none otherwise.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Backup(b) => Some(b.master_down_at),
            State::Master(m) => Some(m.adver_at),
            State::Initialize(_) | State::Fault(_) => None,
        }
    }

    /// React to `event` at `now`; the returned actions are to be carried out
    /// in order. A [`Action::StateChanged`], if any, comes first.
    ///
    /// An advert whose source is our own primary address is our own, looped
    /// back, and is ignored.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        match event {
            Event::AdvertReceived { src, .. } if src == self.config.primary_address => {
                return Vec::new();
            }
            Event::PriorityChanged { weight } => {
                let priority = self.effective_priority(weight);
                if priority == self.priority {
                    return Vec::new();
                }
                self.priority = priority;
                self.status.priority = priority;
            }
            _ => {}
        }
        let mut out = Vec::new();
        let from = self.state();
        let placeholder = State::Initialize(Initialize {
            fault_pending: false,
        });
        let mut cx = Ctx {
            config: &self.config,
            priority: self.priority,
            now,
            out: &mut out,
        };
        let next = match mem::replace(&mut self.state, placeholder) {
            State::Initialize(s) => s.on(event, &mut cx),
            State::Backup(s) => s.on(event, &mut cx),
            State::Master(s) => s.on(event, &mut cx),
            State::Fault(s) => s.on(event, &mut cx),
        };
        self.state = next.state;
        if let Some(reason) = next.reason {
            let to = self.state();
            out.insert(0, Action::StateChanged { from, to, reason });
            self.status.record(Transition {
                at: now,
                from,
                to,
                reason,
            });
        }
        out
    }

    /// Configured priority plus `weight`, clamped to 1..=254; the owner's
    /// 255 never moves.
    fn effective_priority(&self, weight: i32) -> u8 {
        if self.config.is_owner() {
            return PRIORITY_OWNER;
        }
        let p = i64::from(self.config.priority) + i64::from(weight);
        // Clamped into u8 range just above.
        p.clamp(1, i64::from(PRIORITY_OWNER) - 1) as u8
    }
}

/// Leave Initialize or Fault the way §6.4.1 says: the owner becomes Master,
/// everyone else Backup with the configured interval as Master_Adver_Interval.
fn start(cx: &mut Ctx<'_>, owner_reason: Reason, backup_reason: Reason) -> Next {
    if cx.config.is_owner() {
        Next::to(State::Master(Master::enter(cx)), owner_reason)
    } else {
        let interval = cx.config.advert_interval_cs;
        Next::to(State::Backup(Backup::enter(cx, interval)), backup_reason)
    }
}

impl Initialize {
    fn on(self, event: Event, cx: &mut Ctx<'_>) -> Next {
        match event {
            Event::Startup if self.fault_pending => {
                Next::to(State::Fault(Fault), Reason::StartupInFault)
            }
            Event::Startup => start(cx, Reason::OwnerStartup, Reason::Startup),
            Event::FaultRaised | Event::FaultCleared => Next::stay(State::Initialize(Initialize {
                fault_pending: event == Event::FaultRaised,
            })),
            _ => Next::stay(State::Initialize(self)),
        }
    }
}

impl Backup {
    /// Enter Backup with `interval_cs` as Master_Adver_Interval and the
    /// Master_Down_Timer at Master_Down_Interval from now.
    fn enter(cx: &Ctx<'_>, interval_cs: u16) -> Backup {
        Backup {
            master_adver_interval_cs: interval_cs,
            master_down_at: cx.now + master_down_interval(cx.priority, interval_cs),
            expiry: Expiry::Silence,
            preempt_window_end: None,
        }
    }

    fn on(mut self, event: Event, cx: &mut Ctx<'_>) -> Next {
        match event {
            // §6.4.2: Shutdown cancels the Master_Down_Timer.
            Event::Shutdown => Next::to(
                State::Initialize(Initialize {
                    fault_pending: false,
                }),
                Reason::Shutdown,
            ),
            Event::FaultRaised => Next::to(State::Fault(Fault), Reason::Fault),
            // §6.4.2: Master_Down_Timer fires → advert, VIPs, Master.
            Event::Timer if cx.now >= self.master_down_at => {
                let reason = match self.expiry {
                    Expiry::Silence => Reason::MasterDown,
                    Expiry::Released => Reason::MasterReleased,
                    Expiry::Preempting => Reason::Preempted,
                };
                Next::to(State::Master(Master::enter(cx)), reason)
            }
            // §6.4.2: priority 0 → Master_Down_Timer = Skew_Time.
            Event::AdvertReceived {
                priority: PRIORITY_RELEASE,
                ..
            } => {
                self.master_down_at =
                    cx.now + skew_time(cx.priority, self.master_adver_interval_cs);
                self.expiry = Expiry::Released;
                Next::stay(State::Backup(self))
            }
            Event::AdvertReceived {
                priority,
                max_adver_interval_cs,
                ..
            } => {
                if self.accepts(priority, cx) {
                    // Learn the interval, recompute, restart the timer.
                    let interval = max_adver_interval_cs.max(1);
                    self.master_adver_interval_cs = interval;
                    self.master_down_at = cx.now + master_down_interval(cx.priority, interval);
                    self.expiry = Expiry::Silence;
                } else {
                    // Preempting: discard, let the timer run out.
                    self.expiry = Expiry::Preempting;
                }
                Next::stay(State::Backup(self))
            }
            _ => Next::stay(State::Backup(self)),
        }
    }

    /// §6.4.2: whether an advert with `priority` (not 0) restarts the
    /// Master_Down_Timer: always without preemption or from a master at
    /// least our priority; from a lower master only inside the
    /// preempt-delay window (see the crate doc).
    fn accepts(&mut self, priority: u8, cx: &Ctx<'_>) -> bool {
        if !cx.config.preempt || priority >= cx.priority {
            self.preempt_window_end = None;
            return true;
        }
        let delay = cx.config.preempt_delay;
        if delay.is_zero() {
            return false;
        }
        let end = *self.preempt_window_end.get_or_insert(cx.now + delay);
        cx.now < end
    }
}

impl Master {
    /// §6.4.1/§6.4.2: send an advert, add the VIPs (with gratuitous ARP /
    /// unsolicited NA), start the Adver_Timer.
    fn enter(cx: &mut Ctx<'_>) -> Master {
        cx.send_advert();
        cx.out.push(Action::AddVips);
        Master {
            adver_at: cx.now + cx.advert_interval(),
            last_heal: None,
        }
    }

    fn advertise_now(&mut self, cx: &mut Ctx<'_>) {
        cx.send_advert();
        self.adver_at = cx.now + cx.advert_interval();
    }

    fn on(mut self, event: Event, cx: &mut Ctx<'_>) -> Next {
        match event {
            // §6.4.3: Shutdown → priority 0 advert, Initialize.
            Event::Shutdown => {
                cx.release();
                Next::to(
                    State::Initialize(Initialize {
                        fault_pending: false,
                    }),
                    Reason::Shutdown,
                )
            }
            Event::FaultRaised => {
                cx.release();
                Next::to(State::Fault(Fault), Reason::Fault)
            }
            // §6.4.3: Adver_Timer fires → advert, restart.
            Event::Timer if cx.now >= self.adver_at => {
                self.advertise_now(cx);
                Next::stay(State::Master(self))
            }
            // Let backups see the new priority now, not in up to a second.
            Event::PriorityChanged { .. } => {
                self.advertise_now(cx);
                Next::stay(State::Master(self))
            }
            // §6.4.3: priority 0 → advert at once, restart the timer.
            Event::AdvertReceived {
                priority: PRIORITY_RELEASE,
                ..
            } => {
                self.advertise_now(cx);
                Next::stay(State::Master(self))
            }
            Event::AdvertReceived {
                src,
                priority,
                max_adver_interval_cs,
            } => {
                if let Some(reason) = yields_to(src, priority, cx) {
                    // §6.4.3: cancel Adver_Timer, learn the interval, Backup.
                    cx.out.push(Action::RemoveVips);
                    let backup = Backup::enter(cx, max_adver_interval_cs.max(1));
                    return Next::to(State::Backup(backup), reason);
                }
                // §6.4.3 discards a lower advert. It also means a second
                // master exists: make it yield now and win the VIPs back.
                let due = self
                    .last_heal
                    .is_none_or(|at| cx.now >= at + cx.advert_interval());
                if due {
                    self.advertise_now(cx);
                    cx.out.push(Action::ReannounceVips);
                    self.last_heal = Some(cx.now);
                }
                Next::stay(State::Master(self))
            }
            _ => Next::stay(State::Master(self)),
        }
    }
}

/// §6.4.3: whether a Master yields to an advert from `src` with `priority`
/// (not 0), and why. The owner never yields (§7.1).
fn yields_to(src: IpAddr, priority: u8, cx: &Ctx<'_>) -> Option<Reason> {
    if cx.config.is_owner() {
        return None;
    }
    if priority > cx.priority {
        return Some(Reason::HigherPriority);
    }
    if priority == cx.priority && address_greater(src, cx.config.primary_address) {
        return Some(Reason::HigherAddress);
    }
    None
}

/// `a > b` as unsigned numbers in network byte order (§6.4.3). Families never
/// mix on one virtual router; if they did, IPv6 would count as greater.
pub fn address_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a) > u32::from(b),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a) > u128::from(b),
        (IpAddr::V6(_), IpAddr::V4(_)) => true,
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

impl Fault {
    fn on(self, event: Event, cx: &mut Ctx<'_>) -> Next {
        match event {
            Event::FaultCleared => start(cx, Reason::FaultCleared, Reason::FaultCleared),
            Event::Shutdown => Next::to(
                State::Initialize(Initialize {
                    fault_pending: true,
                }),
                Reason::Shutdown,
            ),
            _ => Next::stay(State::Fault(self)),
        }
    }
}
