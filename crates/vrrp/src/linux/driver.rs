//! The driver task: owns the [`Machine`], waits for whatever comes first
//! (a packet, the machine's deadline, a tracking change, the link poll, the
//! gratuitous-ARP refresh, shutdown), feeds the machine and carries out its
//! actions in order. See the [module documentation](super) for the whole
//! picture.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use mxgate_wire::vrrp::{receive_ipv4, Repr, PRIORITY_RELEASE};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::garp::GarpSender;
use super::handover::{HandOver, HandOverError, Request};
use super::netlink::Netlink;
use super::socket::{VrrpSocket, RECV_BUFFER};
use super::{notify, DriverConfig, DriverError, Tracking, LINK_POLL};
use crate::{Action, Event, Machine, Monitor, StateName};

/// A virtual router on one interface, ready to run.
#[derive(Debug)]
pub struct Driver {
    config: DriverConfig,
    machine: Machine,
    netlink: Netlink,
    socket: VrrpSocket,
    garp: Arc<GarpSender>,
    monitor: Monitor,
    primary: Ipv4Addr,
    /// The sender of the last advert heard (not priority 0): the master.
    heard: Option<Ipv4Addr>,
    /// The running burst of gratuitous ARPs, if any.
    garp_burst: Option<JoinHandle<()>>,
    /// The next periodic gratuitous ARP round while Master.
    next_refresh: Option<Instant>,
    /// The interface's link, as last read (`None`: not read yet).
    link_up: Option<bool>,
    /// What the owner reports.
    external: Tracking,
    /// What the machine was last told (external plus the link).
    applied: Tracking,
    /// A send is failing (log the first failure and the recovery only).
    send_failing: bool,
    /// Hand-over requests ([`Driver::hand_over`] gives out the sender).
    handover_tx: mpsc::Sender<Request>,
    handover_rx: mpsc::Receiver<Request>,
    /// While handed over: when to come back (held in Fault until then).
    held_until: Option<Instant>,
}

/// What woke the loop.
enum Wake {
    Stop,
    Packet(std::io::Result<usize>),
    Timer,
    Tracking(Option<Tracking>),
    LinkPoll,
    Refresh,
    HandOver(Request),
    HoldOver,
}

/// Sleep until `at`, or forever when there is none.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// Open everything and clean up after a crashed run: look the interface
    /// up, remove every configured VIP found on it, find the primary
    /// address, open the VRRP and gratuitous-ARP sockets. Nothing is sent
    /// yet.
    ///
    /// # Errors
    /// A [`DriverError`] naming what failed.
    pub async fn open(config: DriverConfig, monitor: Monitor) -> Result<Driver, DriverError> {
        let netlink = Netlink::open(&config.interface).await?;
        for vip in &config.virtual_ips {
            if netlink.remove(*vip).await? {
                tracing::warn!(interface = %config.interface, %vip,
                    "vrrp: removed a virtual IP left on the interface by an earlier run");
            }
        }
        let primary = netlink.primary_ipv4(&config.virtual_ips).await?;
        let machine = Machine::new(config.machine_config(primary), Instant::now())?;
        let socket = VrrpSocket::open(
            &config.interface,
            netlink.index(),
            primary,
            &config.unicast_peers,
        )?;
        let garp = Arc::new(GarpSender::open(&config.interface)?);
        let (handover_tx, handover_rx) = mpsc::channel(4);
        Ok(Driver {
            config,
            machine,
            netlink,
            socket,
            garp,
            monitor,
            primary,
            heard: None,
            garp_burst: None,
            next_refresh: None,
            link_up: None,
            external: Tracking::default(),
            applied: Tracking::default(),
            send_failing: false,
            handover_tx,
            handover_rx,
            held_until: None,
        })
    }

    /// A handle to ask the running driver to hand over to the peer.
    pub fn hand_over(&self) -> HandOver {
        HandOver {
            tx: self.handover_tx.clone(),
        }
    }

    /// The address adverts are sent from.
    pub fn primary_address(&self) -> Ipv4Addr {
        self.primary
    }

    /// Run until `shutdown`: start (Backup, or Master for priority 255),
    /// take part, and on shutdown send priority 0 if Master and remove the
    /// VIPs.
    pub async fn run(
        mut self,
        mut tracking: watch::Receiver<Tracking>,
        shutdown: CancellationToken,
    ) {
        tracing::info!(
            interface = %self.config.interface,
            vrid = self.config.vrid,
            priority = self.config.priority,
            primary = %self.primary,
            destinations = ?self.socket.destinations(),
            "vrrp: starting"
        );
        self.external = *tracking.borrow_and_update();
        self.poll_link().await;
        self.apply_tracking().await;
        self.handle(Event::Startup).await;
        let mut tracking_open = true;
        let mut link_poll = tokio::time::interval(LINK_POLL);
        link_poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            let wake = tokio::select! {
                () = shutdown.cancelled() => Wake::Stop,
                r = self.socket.recv(&mut buf) => Wake::Packet(r),
                () = sleep_until(self.machine.next_deadline()) => Wake::Timer,
                r = tracking.changed(), if tracking_open => {
                    Wake::Tracking(r.ok().map(|()| *tracking.borrow_and_update()))
                }
                _ = link_poll.tick() => Wake::LinkPoll,
                () = sleep_until(self.next_refresh) => Wake::Refresh,
                Some(req) = self.handover_rx.recv() => Wake::HandOver(req),
                () = sleep_until(self.held_until) => Wake::HoldOver,
            };
            match wake {
                Wake::Stop => break,
                Wake::Packet(Ok(n)) => self.on_packet(&buf[..n]).await,
                Wake::Packet(Err(e)) => {
                    tracing::warn!(error = %e, "vrrp: receive failed");
                    tokio::time::sleep(LINK_POLL).await;
                }
                Wake::Timer => self.handle(Event::Timer).await,
                Wake::Tracking(Some(t)) => {
                    self.external = t;
                    self.apply_tracking().await;
                }
                Wake::Tracking(None) => tracking_open = false,
                Wake::LinkPoll => {
                    self.poll_link().await;
                    self.apply_tracking().await;
                }
                Wake::Refresh => {
                    self.next_refresh = self.next_refresh.map(|t| t + self.config.garp_refresh);
                    self.announce_once();
                }
                Wake::HandOver(req) => {
                    let answer = self.start_hand_over(req.hold).await;
                    let _ = req.reply.send(answer);
                }
                Wake::HoldOver => {
                    tracing::info!(
                        vrid = self.config.vrid,
                        "vrrp: hand-over hold over, back as backup"
                    );
                    self.held_until = None;
                    self.apply_tracking().await;
                }
            }
        }
        self.stop().await;
    }

    /// Leave: the machine's Shutdown (priority 0 from a Master), then make
    /// sure no VIP stays behind whatever the state was.
    async fn stop(&mut self) {
        self.handle(Event::Shutdown).await;
        self.stop_garp();
        for vip in self.config.virtual_ips.clone() {
            if let Err(e) = self.netlink.remove(vip).await {
                tracing::error!(error = %e, "vrrp: cannot remove a virtual IP on shutdown");
            }
        }
        tracing::info!(interface = %self.config.interface, vrid = self.config.vrid, "vrrp: stopped");
    }

    async fn on_packet(&mut self, packet: &[u8]) {
        let vrid = self.config.vrid;
        let advert = match receive_ipv4(packet, |v| v == vrid) {
            Ok(advert) => advert,
            Err(e) => {
                tracing::debug!(reason = e.label(), error = %e, "vrrp: packet dropped");
                self.monitor.count_drop(e.label());
                return;
            }
        };
        let IpAddr::V4(src) = advert.src else {
            self.monitor.count_drop("family_mismatch");
            return;
        };
        if !self.socket.accepts_from(src) {
            tracing::debug!(%src, "vrrp: advert from a source that is not a unicast peer dropped");
            self.monitor.count_drop("not_a_peer");
            return;
        }
        self.monitor.count_received();
        if src != self.primary {
            self.heard = (advert.repr.priority != PRIORITY_RELEASE).then_some(src);
        }
        self.handle(Event::from(&advert)).await;
    }

    /// Feed `event` to the machine now and carry out its actions.
    async fn handle(&mut self, event: Event) {
        let now = Instant::now();
        for action in self.machine.handle(event, now) {
            self.execute(action, now).await;
        }
        self.monitor.record_status(self.machine.status());
        self.monitor.set_master(match self.machine.state() {
            StateName::Master => Some(IpAddr::V4(self.primary)),
            StateName::Backup => self.heard.map(IpAddr::V4),
            StateName::Initialize | StateName::Fault => None,
        });
    }

    async fn execute(&mut self, action: Action, now: Instant) {
        match action {
            Action::SendAdvert { priority } => self.send_advert(priority).await,
            Action::AddVips => {
                for vip in self.config.virtual_ips.clone() {
                    if let Err(e) = self.netlink.add(vip).await {
                        tracing::error!(error = %e, "vrrp: cannot add a virtual IP");
                    }
                }
                self.start_garp();
            }
            Action::RemoveVips => {
                self.stop_garp();
                for vip in self.config.virtual_ips.clone() {
                    if let Err(e) = self.netlink.remove(vip).await {
                        tracing::error!(error = %e, "vrrp: cannot remove a virtual IP");
                    }
                }
            }
            Action::ReannounceVips => self.start_garp(),
            Action::StateChanged { from, to, reason } => {
                tracing::info!(
                    interface = %self.config.interface,
                    vrid = self.config.vrid,
                    %from,
                    %to,
                    reason = %reason,
                    code = ?reason,
                    priority = self.machine.priority(),
                    "vrrp: state changed"
                );
                self.monitor.count_transition(to);
                self.next_refresh = (to == StateName::Master
                    && !self.config.garp_refresh.is_zero())
                .then(|| now + self.config.garp_refresh);
                if let Some(program) = &self.config.notify {
                    notify::spawn(program, self.config.vrid, from, to, reason);
                }
            }
        }
    }

    async fn send_advert(&mut self, priority: u8) {
        let repr = Repr {
            vrid: self.config.vrid,
            priority,
            max_adver_interval_cs: self.config.advert_interval_cs,
            addresses: self
                .config
                .virtual_ips
                .iter()
                .map(|v| IpAddr::V4(v.addr()))
                .collect(),
        };
        let mut failure = None;
        for &dst in self.socket.destinations() {
            let sent = match repr.to_bytes(self.primary.into(), dst.into()) {
                Ok(bytes) => self.socket.send(&bytes, dst).await,
                Err(e) => Err(std::io::Error::other(e)),
            };
            match sent {
                Ok(()) => self.monitor.count_sent(),
                Err(e) => failure = Some((dst, e)),
            }
        }
        match (failure, self.send_failing) {
            (Some((dst, e)), false) => {
                tracing::warn!(%dst, error = %e, "vrrp: cannot send adverts (logged once until they work again)");
                self.send_failing = true;
            }
            (None, true) => {
                tracing::info!("vrrp: sending adverts works again");
                self.send_failing = false;
            }
            _ => {}
        }
    }

    /// `garp_count` rounds `garp_interval` apart, replacing a running burst.
    fn start_garp(&mut self) {
        self.stop_garp();
        let garp = Arc::clone(&self.garp);
        let ips: Vec<Ipv4Addr> = self.config.virtual_ips.iter().map(|v| v.addr()).collect();
        let (count, interval) = (self.config.garp_count, self.config.garp_interval);
        self.garp_burst = Some(tokio::spawn(async move {
            for round in 0..count {
                if round > 0 {
                    tokio::time::sleep(interval).await;
                }
                if let Err(e) = garp.announce(&ips) {
                    tracing::warn!(error = %e, "vrrp: cannot send gratuitous ARP");
                }
            }
        }));
    }

    fn stop_garp(&mut self) {
        if let Some(burst) = self.garp_burst.take() {
            burst.abort();
        }
    }

    /// One round now (the periodic refresh).
    fn announce_once(&self) {
        let ips: Vec<Ipv4Addr> = self.config.virtual_ips.iter().map(|v| v.addr()).collect();
        if let Err(e) = self.garp.announce(&ips) {
            tracing::warn!(error = %e, "vrrp: cannot send gratuitous ARP");
        }
    }

    async fn poll_link(&mut self) {
        match self.netlink.link_up().await {
            Ok(up) => {
                if self.link_up != Some(up) {
                    if self.link_up.is_some() || !up {
                        tracing::info!(interface = %self.config.interface, up, "vrrp: link state");
                    }
                    self.link_up = Some(up);
                    self.monitor.set_link_up(up);
                }
            }
            Err(e) => tracing::debug!(error = %e, "vrrp: cannot read the link state"),
        }
    }

    /// Step down for `hold` when Master: held in Fault (the machine sends
    /// priority 0 and removes the VIPs) until the hold is over.
    async fn start_hand_over(&mut self, hold: std::time::Duration) -> Result<(), HandOverError> {
        let state = self.machine.state();
        if state != StateName::Master {
            return Err(HandOverError::NotMaster(state));
        }
        tracing::info!(
            vrid = self.config.vrid,
            hold_s = hold.as_secs(),
            "vrrp: handing over to the peer"
        );
        self.held_until = Some(Instant::now() + hold);
        self.apply_tracking().await;
        Ok(())
    }

    /// Tell the machine what changed in the tracked objects: a fault is
    /// raised before a weight change, cleared after it (so the restart
    /// uses the new priority).
    async fn apply_tracking(&mut self) {
        let mut want = self.external;
        want.add(self.link_up == Some(false), self.config.link_weight);
        want.fault |= self.held_until.is_some();
        if want == self.applied {
            return;
        }
        let fault_changed = want.fault != self.applied.fault;
        if fault_changed && want.fault {
            self.handle(Event::FaultRaised).await;
        }
        if want.failed_weight != self.applied.failed_weight {
            tracing::info!(
                failed_weight = want.failed_weight,
                "vrrp: tracked weight changed"
            );
            let weight = i32::try_from(want.failed_weight).unwrap_or(i32::MAX);
            self.handle(Event::PriorityChanged { weight: -weight })
                .await;
        }
        if fault_changed && !want.fault {
            self.handle(Event::FaultCleared).await;
        }
        self.applied = want;
        self.monitor.set_tracking(want.failed_weight, want.fault);
    }
}
