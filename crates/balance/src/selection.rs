//! Selection algorithms: which of the servers that can take a session now
//! gets it.
//!
//! The pool hands [`BackendSelection::select`] only candidates that are
//! usable and below their cap, in configuration order, each with its
//! effective weight; the algorithm only ranks them.

use crate::server::Server;
use mxgate_config::Balance;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A server that may take the session.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The server.
    pub server: &'a Arc<Server>,
    /// Effective weight (after slow start), at least 1.
    pub weight: u32,
    /// Sessions open on it now.
    pub active: u64,
}

/// A selection algorithm.
pub trait BackendSelection: Send + Sync {
    /// Index into `candidates` of the server for `client`; `None` only when
    /// `candidates` is empty.
    fn select(&self, candidates: &[Candidate<'_>], client: IpAddr) -> Option<usize>;

    /// Drops any state kept for servers whose id is not in `keep`.
    fn retain(&self, _keep: &[u64]) {}
}

/// The algorithm configured as `balance`.
pub fn for_balance(balance: Balance) -> Box<dyn BackendSelection> {
    match balance {
        Balance::Roundrobin => Box::new(RoundRobin::default()),
        Balance::Leastconn => Box::new(LeastConn::default()),
        Balance::Source => Box::new(SourceHash),
        Balance::First => Box::new(First),
    }
}

/// Smooth weighted round robin, as nginx: each pick adds every candidate's
/// weight to its running score, takes the highest and subtracts the total
/// from it. Weights 1:3 give `b a b b`, never `a a` or four `b` in a row.
#[derive(Debug, Default)]
pub struct RoundRobin {
    current: Mutex<HashMap<u64, i64>>,
}

impl BackendSelection for RoundRobin {
    fn select(&self, candidates: &[Candidate<'_>], _client: IpAddr) -> Option<usize> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (i, c) in candidates.iter().enumerate() {
            let w = i64::from(c.weight.max(1));
            total += w;
            let score = current.entry(c.server.id()).or_insert(0);
            *score += w;
            if best.is_none_or(|(_, b)| *score > b) {
                best = Some((i, *score));
            }
        }
        let (i, _) = best?;
        if let Some(score) = current.get_mut(&candidates[i].server.id()) {
            *score -= total;
        }
        Some(i)
    }

    fn retain(&self, keep: &[u64]) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.retain(|id, _| keep.contains(id));
    }
}

/// Fewest open sessions relative to weight; ties go round robin.
#[derive(Debug, Default)]
pub struct LeastConn {
    next: AtomicUsize,
}

impl BackendSelection for LeastConn {
    fn select(&self, candidates: &[Candidate<'_>], _client: IpAddr) -> Option<usize> {
        // a.active / a.weight < b.active / b.weight, without division
        let load = |c: &Candidate<'_>| (u128::from(c.active), u128::from(c.weight.max(1)));
        let mut tied: Vec<usize> = Vec::new();
        let mut best: Option<(u128, u128)> = None;
        for (i, c) in candidates.iter().enumerate() {
            let (a, w) = load(c);
            match best {
                Some((ba, bw)) if a * bw > ba * w => {}
                Some((ba, bw)) if a * bw == ba * w => tied.push(i),
                _ => {
                    best = Some((a, w));
                    tied.clear();
                    tied.push(i);
                }
            }
        }
        if tied.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        Some(tied[turn % tied.len()])
    }
}

/// Weighted rendezvous hashing of the client address: every (client,
/// server) pair gets a score and the best one wins, so the same client goes
/// to the same server, and removing a server moves only its own clients.
/// The hash is fixed (not seeded per process), so both boxes of a pair agree.
#[derive(Debug, Default, Clone, Copy)]
pub struct SourceHash;

impl BackendSelection for SourceHash {
    fn select(&self, candidates: &[Candidate<'_>], client: IpAddr) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, c) in candidates.iter().enumerate() {
            let s = rendezvous_score(client, c.server.name(), c.weight.max(1));
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        best.map(|(i, _)| i)
    }
}

/// The first candidate in configuration order.
#[derive(Debug, Default, Clone, Copy)]
pub struct First;

impl BackendSelection for First {
    fn select(&self, candidates: &[Candidate<'_>], _client: IpAddr) -> Option<usize> {
        (!candidates.is_empty()).then_some(0)
    }
}

/// `weight / -ln(u)` with `u` in (0, 1) hashed from client and server
/// (weighted rendezvous hashing, as in Resch's "logarithmic method").
fn rendezvous_score(client: IpAddr, server: &str, weight: u32) -> f64 {
    let mut h = Fnv::default();
    match client {
        IpAddr::V4(v4) => {
            h.write(&[4]);
            h.write(&v4.octets());
        }
        IpAddr::V6(v6) => {
            h.write(&[6]);
            h.write(&v6.octets());
        }
    }
    h.write(&[0]);
    h.write(server.as_bytes());
    let bits = fmix64(h.0) >> 11; // 53 bits
    let u = (bits as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(weight) / -u.ln()
}

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// MurmurHash3's finaliser, to spread FNV's output over every bit.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxgate_config::{Server as ServerConfig, ServerState};
    use std::net::Ipv4Addr;

    fn servers(weights: &[u32]) -> Vec<Arc<Server>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                Server::new(&ServerConfig {
                    name: format!("mta{i}"),
                    address: format!("127.0.0.1:{}", 2500 + i).parse().unwrap(),
                    weight: w,
                    max_conn: 0,
                    state: ServerState::Ready,
                })
            })
            .collect()
    }

    fn candidates(servers: &[Arc<Server>]) -> Vec<Candidate<'_>> {
        servers
            .iter()
            .map(|s| Candidate {
                server: s,
                weight: s.weight(),
                active: 0,
            })
            .collect()
    }

    fn client(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn roundrobin_follows_weights_and_interleaves() {
        let s = servers(&[1, 3]);
        let c = candidates(&s);
        let rr = RoundRobin::default();
        let picks: Vec<usize> = (0..4000)
            .map(|i| rr.select(&c, client(i)).unwrap())
            .collect();
        let a = picks.iter().filter(|&&p| p == 0).count();
        assert!((980..=1020).contains(&a), "25% ±2%: got {a}/4000");
        // smooth: every window of four holds exactly one pick of the light server
        for w in picks.windows(4) {
            assert_eq!(w.iter().filter(|&&p| p == 0).count(), 1, "{w:?}");
        }
    }

    #[test]
    fn roundrobin_equal_weights_alternate() {
        let s = servers(&[1, 1, 1]);
        let c = candidates(&s);
        let rr = RoundRobin::default();
        let picks: Vec<usize> = (0..6).map(|_| rr.select(&c, client(0)).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn roundrobin_retain_forgets_removed_servers() {
        let s = servers(&[1, 1]);
        let rr = RoundRobin::default();
        rr.select(&candidates(&s), client(0));
        rr.retain(&[s[0].id()]);
        assert_eq!(rr.current.lock().unwrap().len(), 1);
    }

    #[test]
    fn leastconn_prefers_the_idle_one() {
        let s = servers(&[1, 1, 1]);
        let mut c = candidates(&s);
        c[0].active = 5;
        c[1].active = 0;
        c[2].active = 3;
        let lc = LeastConn::default();
        for _ in 0..10 {
            assert_eq!(lc.select(&c, client(0)), Some(1));
        }
    }

    #[test]
    fn leastconn_weighs_and_breaks_ties_round_robin() {
        let s = servers(&[1, 4]);
        let mut c = candidates(&s);
        c[0].active = 1; // 1 per weight
        c[1].active = 3; // 0.75 per weight
        let lc = LeastConn::default();
        assert_eq!(lc.select(&c, client(0)), Some(1));
        c[1].active = 4; // tie: 1 = 1
        let picks: Vec<_> = (0..4).map(|_| lc.select(&c, client(0)).unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 2, "{picks:?}");
    }

    #[test]
    fn source_hash_sticks_and_spreads() {
        let s = servers(&[1, 1, 1]);
        let c = candidates(&s);
        let sh = SourceHash;
        let mut counts = [0usize; 3];
        for n in 0..3000 {
            let a = sh.select(&c, client(n)).unwrap();
            assert_eq!(
                sh.select(&c, client(n)),
                Some(a),
                "same client, same server"
            );
            counts[a] += 1;
        }
        for &n in &counts {
            assert!((850..=1150).contains(&n), "{counts:?}");
        }
    }

    #[test]
    fn source_hash_removal_moves_only_that_servers_clients() {
        let s = servers(&[1, 1, 1, 1]);
        let all = candidates(&s);
        let without: Vec<Candidate<'_>> = all
            .iter()
            .filter(|c| c.server.name() != "mta2")
            .cloned()
            .collect();
        let sh = SourceHash;
        let mut moved = 0;
        for n in 0..2000 {
            let before = all[sh.select(&all, client(n)).unwrap()].server.name();
            let after = without[sh.select(&without, client(n)).unwrap()]
                .server
                .name();
            if before == "mta2" {
                moved += 1;
                assert_ne!(after, "mta2");
            } else {
                assert_eq!(before, after, "client {n} moved though its server stayed");
            }
        }
        assert!(moved > 350 && moved < 650, "about a quarter moved: {moved}");
    }

    #[test]
    fn source_hash_follows_weights() {
        let s = servers(&[1, 3]);
        let c = candidates(&s);
        let heavy = (0..4000)
            .filter(|&n| SourceHash.select(&c, client(n)) == Some(1))
            .count();
        assert!((2850..=3150).contains(&heavy), "about 75%: {heavy}");
    }

    #[test]
    fn first_takes_the_first_candidate() {
        let s = servers(&[1, 5]);
        assert_eq!(First.select(&candidates(&s), client(0)), Some(0));
        assert_eq!(First.select(&candidates(&s[1..]), client(0)), Some(0));
        assert_eq!(First.select(&[], client(0)), None);
    }

    #[test]
    fn empty_candidates_give_none() {
        for b in [
            Balance::Roundrobin,
            Balance::Leastconn,
            Balance::Source,
            Balance::First,
        ] {
            assert_eq!(for_balance(b).select(&[], client(0)), None);
        }
    }
}
