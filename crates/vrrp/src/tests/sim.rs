//! Machines wired together by a simulated link: every `SendAdvert` reaches
//! the other machines after a fixed latency while the link is up, and each
//! machine's timer fires exactly at its deadline. Time is simulated; nothing
//! sleeps.

use super::*;

const LATENCY: Duration = Duration::from_millis(1);

struct Node {
    machine: Machine,
    /// Every action with when it was emitted.
    log: Vec<(Instant, Action)>,
}

struct Sim {
    nodes: Vec<Node>,
    now: Instant,
    link_up: bool,
    /// (delivery time, destination node, event)
    in_flight: Vec<(Instant, usize, Event)>,
}

impl Sim {
    fn new(t0: Instant, configs: Vec<Config>) -> Sim {
        let nodes = configs
            .into_iter()
            .map(|c| Node {
                machine: Machine::new(c, t0).unwrap(),
                log: Vec::new(),
            })
            .collect();
        Sim {
            nodes,
            now: t0,
            link_up: true,
            in_flight: Vec::new(),
        }
    }

    fn event(&mut self, node: usize, event: Event) {
        let actions = self.nodes[node].machine.handle(event, self.now);
        let config = self.nodes[node].machine.config().clone();
        for action in actions {
            self.nodes[node].log.push((self.now, action));
            let Action::SendAdvert { priority } = action else {
                continue;
            };
            if !self.link_up {
                continue;
            }
            for to in (0..self.nodes.len()).filter(|&to| to != node) {
                let advert = Event::AdvertReceived {
                    src: config.primary_address,
                    priority,
                    max_adver_interval_cs: config.advert_interval_cs,
                };
                self.in_flight.push((self.now + LATENCY, to, advert));
            }
        }
    }

    /// Deliver packets and fire timers in time order up to `end`.
    fn run_until(&mut self, end: Instant) {
        loop {
            let packet = self
                .in_flight
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.0)
                .map(|(i, p)| (p.0, i));
            let timer = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.machine.next_deadline().map(|d| (d, i)))
                .min();
            match (packet, timer) {
                (Some((at, i)), t) if at <= end && t.is_none_or(|(d, _)| at <= d) => {
                    let (_, to, event) = self.in_flight.remove(i);
                    self.now = at;
                    self.event(to, event);
                }
                (_, Some((at, node))) if at <= end => {
                    self.now = at;
                    self.event(node, Event::Timer);
                    // A timer handled at its deadline must move it, or the
                    // simulation would spin forever.
                    let next = self.nodes[node].machine.next_deadline();
                    assert!(
                        next != Some(at),
                        "node {node}: timer at its deadline did nothing"
                    );
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].machine.state() == StateName::Master)
            .collect()
    }

    /// Actions of `node` emitted after `since`.
    fn actions_since(&self, node: usize, since: Instant) -> Vec<Action> {
        self.nodes[node]
            .log
            .iter()
            .filter(|(at, _)| *at > since)
            .map(|(_, a)| *a)
            .collect()
    }
}

fn node(priority: u8, addr: &str) -> Config {
    Config::new(51, priority, ip(addr))
}

/// Both start with the link down, so both become Master; returns the sim
/// and when the link came back.
fn split_brain(a: Config, b: Config, link_back_after: Duration) -> (Sim, Instant) {
    let t0 = Instant::now();
    let mut sim = Sim::new(t0, vec![a, b]);
    sim.link_up = false;
    sim.event(0, Event::Startup);
    sim.event(1, Event::Startup);
    let t = t0 + link_back_after;
    sim.run_until(t);
    assert_eq!(sim.masters(), [0, 1], "split brain before the link returns");
    sim.link_up = true;
    (sim, t)
}

#[test]
fn split_brain_heals_and_the_winner_reannounces() {
    // A (150) becomes Master at 3.414 s, B (100) at 3.609 s; they advertise
    // every second from then. The link returns at 10.5 s, so B's advert at
    // 10.609 s is the first across: A hears a lower master.
    let (mut sim, t) = split_brain(
        node(150, "192.168.1.2"),
        node(100, "192.168.1.3"),
        Duration::from_millis(10_500),
    );
    sim.run_until(t + SECOND + skew_time(100, 100));
    assert_eq!(sim.masters(), [0]);
    let a = sim.actions_since(0, t);
    assert!(a.contains(&Action::ReannounceVips), "{a:?}");
    assert!(!a.contains(&Action::RemoveVips));
    let b = sim.actions_since(1, t);
    assert!(b.contains(&changed(
        StateName::Master,
        StateName::Backup,
        Reason::HigherPriority
    )));
    assert!(b.contains(&Action::RemoveVips));
    // And it stays healed.
    sim.run_until(t + 30 * SECOND);
    assert_eq!(sim.masters(), [0]);
}

#[test]
fn split_brain_heals_when_the_winner_speaks_first() {
    // Link back at 10.0 s: A's advert at 10.414 s is first, B yields at
    // once. A never hears B, so nothing prompts a ReannounceVips (see the
    // crate doc: a periodic refresh is the driver's business).
    let (mut sim, t) = split_brain(
        node(150, "192.168.1.2"),
        node(100, "192.168.1.3"),
        Duration::from_secs(10),
    );
    sim.run_until(t + SECOND + skew_time(100, 100));
    assert_eq!(sim.masters(), [0]);
    assert!(sim.actions_since(1, t).contains(&Action::RemoveVips));
}

#[test]
fn split_brain_with_equal_priority_keeps_the_higher_address() {
    // Same priority, same start: both advertise at the same instants. Each
    // hears the other; .3 keeps Master, .2 yields.
    let (mut sim, t) = split_brain(
        node(100, "192.168.1.2"),
        node(100, "192.168.1.3"),
        Duration::from_millis(10_500),
    );
    sim.run_until(t + SECOND + skew_time(100, 100));
    assert_eq!(sim.masters(), [1]);
    assert!(sim.actions_since(1, t).contains(&Action::ReannounceVips));
    assert!(sim.actions_since(0, t).contains(&changed(
        StateName::Master,
        StateName::Backup,
        Reason::HigherAddress
    )));
}

#[test]
fn failover_and_preemption_between_two_nodes() {
    let t0 = Instant::now();
    let mut sim = Sim::new(t0, vec![node(150, "192.168.1.2"), node(100, "192.168.1.3")]);
    sim.event(0, Event::Startup);
    sim.event(1, Event::Startup);
    sim.run_until(t0 + 10 * SECOND);
    assert_eq!(sim.masters(), [0]);

    // A shuts down: B takes over Skew_Time after A's priority-0 advert.
    let t1 = sim.now;
    sim.event(0, Event::Shutdown);
    sim.run_until(t1 + LATENCY + SKEW_100 - MICRO);
    assert_eq!(sim.masters(), Vec::<usize>::new());
    sim.run_until(t1 + LATENCY + SKEW_100);
    assert_eq!(sim.masters(), [1]);

    // A comes back as Backup, discards B's lower adverts and preempts after
    // its Master_Down_Interval; B yields on A's first advert.
    let t2 = sim.now + 5 * SECOND;
    sim.run_until(t2);
    sim.event(0, Event::Startup);
    let takeover = t2 + master_down_interval(150, 100);
    sim.run_until(takeover - MICRO);
    assert_eq!(sim.masters(), [1]);
    sim.run_until(takeover + LATENCY);
    assert_eq!(sim.masters(), [0]);
    assert_eq!(
        sim.nodes[0]
            .machine
            .status()
            .transitions
            .back()
            .unwrap()
            .reason,
        Reason::Preempted
    );
}

#[test]
fn a_lost_master_is_replaced_by_the_highest_backup() {
    // Three nodes; the master's host dies silently (no priority-0 advert).
    let t0 = Instant::now();
    let mut sim = Sim::new(
        t0,
        vec![
            node(200, "192.168.1.2"),
            node(150, "192.168.1.3"),
            node(100, "192.168.1.4"),
        ],
    );
    for i in 0..3 {
        sim.event(i, Event::Startup);
    }
    sim.run_until(t0 + 10 * SECOND);
    assert_eq!(sim.masters(), [0]);
    // Node 0 vanishes: drop it from the link by shutting it down with the
    // link cut, then restoring the link for the others.
    sim.link_up = false;
    sim.event(0, Event::Shutdown);
    sim.link_up = true;
    sim.run_until(sim.now + 10 * SECOND);
    assert_eq!(sim.masters(), [1]);
}
