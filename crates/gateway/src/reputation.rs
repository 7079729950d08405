//! The slow part of connection screening, after the lists and the rate
//! limits: the pregreet test and the DNSBL/DNSWL lookups, run together, and
//! the temporary allowlist of clients that passed them.
//!
//! The lookups of every zone start at connect and run in parallel during
//! the pregreet wait (smtp mode: `220-<host> ESMTP mxgate` sent first; l4
//! mode: silence). A zone that does not answer within `dns_timeout_ms`
//! counts as not listed. A client that passed both is put on the
//! [`TempAllowlist`] for `allowlist_ttl_s` and skips both next time.
//! None of this runs (no await, no DNS) when the policy has no pregreet
//! wait and no zone.

use crate::screen::Verdicts;
use mxgate_config::raw::ScreenSection;
use mxgate_dns::{DnsblOutcome, Resolver};
use mxgate_filter::dnsbl::{score, DnsblVerdict, Zone, ZoneAnswer, ZoneResult};
use mxgate_filter::pregreet::{pregreet, GreetAction, PregreetVerdict};
use mxgate_smtp::Reply;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Clients that passed screening recently (`temp_allowlist` in the store, so
/// the peer box honours them too). Implemented by the binary.
pub trait TempAllowlist: Send + Sync {
    /// True when `ip` is allowlisted at `now`.
    fn contains(&self, ip: IpAddr, now: SystemTime) -> bool;
    /// Allowlists `ip` until `until`.
    fn add(&self, ip: IpAddr, until: SystemTime);
}

/// The `[screen]` settings for pregreet and DNSBL, as sessions use them.
#[derive(Debug)]
pub(crate) struct Reputation {
    zones: Vec<Zone>,
    threshold: i32,
    allow_threshold: i32,
    greet_wait: Duration,
    greet_action: GreetAction,
    dns_timeout: Duration,
    reveal: bool,
    allowlist_ttl: Duration,
}

impl Reputation {
    /// The settings of a validated `[screen]`; `None` when there is nothing
    /// to do (no pregreet wait, no zone).
    pub fn from_policy(s: &ScreenSection) -> Option<Reputation> {
        let zones: Vec<Zone> = s
            .dnsbl
            .iter()
            .filter_map(
                |z| match Zone::new(&z.zone, z.weight, z.filter.as_deref()) {
                    Ok(zone) => Some(zone),
                    Err(e) => {
                        tracing::error!(error = %e, "DNSBL zone not applied");
                        None
                    }
                },
            )
            .collect();
        if s.greet_wait_ms == 0 && zones.is_empty() {
            return None;
        }
        Some(Reputation {
            zones,
            threshold: s.dnsbl_threshold,
            allow_threshold: s.dnsbl_allow_threshold,
            greet_wait: Duration::from_millis(s.greet_wait_ms),
            greet_action: s.greet_action.parse().unwrap_or_default(),
            dns_timeout: Duration::from_millis(s.dns_timeout_ms),
            reveal: s.reveal_dnsbl,
            allowlist_ttl: Duration::from_secs(s.allowlist_ttl_s),
        })
    }
}

/// The checks still to run for an admitted connection.
pub(crate) struct Pending {
    /// The settings.
    pub reputation: Arc<Reputation>,
    /// `None`: DNSBL lookups are off (no `[dns]` resolver given).
    pub resolver: Option<Arc<Resolver>>,
    /// Where a passing client is remembered.
    pub allowlist: Option<Arc<dyn TempAllowlist>>,
}

/// A client that passed the slow checks.
#[derive(Debug, Default)]
pub(crate) struct Passed {
    /// A DNSWL allowlisted the client: skip the other reputation checks.
    pub allowlisted: bool,
    /// The pregreet action `reject`: answer every command with this.
    pub reject_all: Option<Reply>,
}

/// Why a client was refused: the reply to send (`None`: just close).
pub(crate) type Refusal = Option<Reply>;

impl Pending {
    /// Runs the pregreet wait and the DNSBL lookups together. In smtp mode
    /// (`banner_host` set) the `220-` line is sent first, and the engine's
    /// banner completes it.
    ///
    /// # Errors
    /// The refusal, not yet sent.
    pub async fn run(
        self,
        stream: &mut TcpStream,
        client: IpAddr,
        banner_host: Option<&str>,
        verdicts: &Verdicts,
    ) -> Result<Passed, Refusal> {
        let r = &self.reputation;
        if let (Some(host), false) = (banner_host, r.greet_wait.is_zero()) {
            let line = format!("220-{host} ESMTP mxgate\r\n");
            if stream.write_all(line.as_bytes()).await.is_err() {
                return Err(None);
            }
        }
        let lookups = lookups(r, self.resolver.as_ref(), client);
        let (early, answers) = tokio::join!(wait_for_greeting(stream, r.greet_wait), lookups);
        let Some(early) = early else {
            return Err(None);
        };
        let mut passed = Passed::default();
        let mut clean = true;
        match pregreet(early, r.greet_action) {
            PregreetVerdict::Clean => {}
            PregreetVerdict::Ignored => {
                verdicts.count("pregreet", "ignore");
                clean = false;
            }
            PregreetVerdict::Reject(reply) => {
                verdicts.count("pregreet", "reject");
                tracing::info!(%client, "pregreet: client talked before the banner");
                passed.reject_all = Some(to_reply(&reply));
                clean = false;
            }
            PregreetVerdict::Drop(reply) => {
                verdicts.count("pregreet", "drop");
                tracing::info!(%client, "pregreet: client talked before the banner; dropped");
                return Err(Some(to_reply(&reply)));
            }
        }
        if !r.zones.is_empty() {
            let score = score(&r.zones, &answers);
            for failed in &answers {
                if let ZoneResult::Failed(why) = &failed.result {
                    let what = if why == "timeout" { "timeout" } else { "error" };
                    verdicts.count("dnsbl", what);
                    tracing::debug!(%client, zone = %failed.zone, reason = %why, "DNSBL zone gave no answer");
                }
            }
            match score.verdict(r.threshold, r.allow_threshold) {
                DnsblVerdict::Listed => {
                    verdicts.count("dnsbl", "listed");
                    let zones: Vec<&str> = score.matched.iter().map(|m| m.zone.as_str()).collect();
                    tracing::info!(%client, score = score.total, zones = ?zones, "DNSBL: client refused");
                    return Err(Some(to_reply(&score.reply(r.reveal))));
                }
                DnsblVerdict::Allowlisted => {
                    verdicts.count("dnsbl", "allowlisted");
                    passed.allowlisted = true;
                }
                DnsblVerdict::Pass => verdicts.count("dnsbl", "pass"),
            }
        }
        if clean && !r.allowlist_ttl.is_zero() {
            if let Some(allowlist) = &self.allowlist {
                allowlist.add(client, SystemTime::now() + r.allowlist_ttl);
            }
        }
        Ok(passed)
    }
}

/// Waits `wait` for the client to talk, without consuming what it sends
/// (the session reads it later): the octets seen, or `None` when the
/// client closed or the socket failed.
async fn wait_for_greeting(stream: &TcpStream, wait: Duration) -> Option<usize> {
    if wait.is_zero() {
        return Some(0);
    }
    let mut probe = [0u8; 512];
    match tokio::time::timeout(wait, stream.peek(&mut probe)).await {
        Err(_) => Some(0),
        Ok(Ok(0) | Err(_)) => None,
        Ok(Ok(n)) => Some(n),
    }
}

/// Asks every zone in parallel, each within the DNS timeout; a zone that
/// does not answer in time is `Failed("timeout")`.
async fn lookups(r: &Reputation, resolver: Option<&Arc<Resolver>>, ip: IpAddr) -> Vec<ZoneAnswer> {
    let Some(resolver) = resolver.filter(|_| !r.zones.is_empty()) else {
        return r
            .zones
            .iter()
            .map(|z| ZoneAnswer {
                zone: z.name.clone(),
                result: ZoneResult::NotListed,
            })
            .collect();
    };
    let mut set = JoinSet::new();
    for zone in &r.zones {
        let (resolver, zone, timeout) = (Arc::clone(resolver), zone.name.clone(), r.dns_timeout);
        set.spawn(async move {
            let names = [zone.clone()];
            let got = tokio::time::timeout(timeout, resolver.dnsbl(ip, &names)).await;
            let result = match got.ok().and_then(|mut v| v.pop()).map(|z| z.outcome) {
                Some(DnsblOutcome::Listed(addrs)) => ZoneResult::Listed(addrs),
                Some(DnsblOutcome::NotListed) => ZoneResult::NotListed,
                Some(DnsblOutcome::Failed(why)) => ZoneResult::Failed(why),
                None => ZoneResult::Failed("timeout".into()),
            };
            ZoneAnswer { zone, result }
        });
    }
    let mut answers = Vec::with_capacity(r.zones.len());
    while let Some(joined) = set.join_next().await {
        if let Ok(answer) = joined {
            answers.push(answer);
        }
    }
    answers
}

fn to_reply(r: &mxgate_filter::Reply) -> Reply {
    Reply::new(r.code, format!("{} {}", r.status, r.text))
}

/// For a pregreeter under `greet_action = "reject"` in smtp mode: completes
/// the banner, then answers every command with `reply` (QUIT with 221)
/// until the client quits, `max_errors` commands were refused, or it is
/// silent for `timeout`.
pub(crate) async fn reject_all(
    stream: &mut TcpStream,
    host: &str,
    reply: &Reply,
    max_errors: u32,
    timeout: Duration,
) {
    if stream
        .write_all(format!("220 {host} ESMTP mxgate\r\n").as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let mut line: Vec<u8> = Vec::new();
    let mut buf = [0u8; 1024];
    let mut refused = 0u32;
    loop {
        let n = match tokio::time::timeout(timeout, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        for &b in &buf[..n] {
            if b != b'\n' {
                if line.len() < 512 {
                    line.push(b);
                }
                continue;
            }
            let quit = line
                .get(..4)
                .is_some_and(|c| c.eq_ignore_ascii_case(b"QUIT"));
            line.clear();
            let answer = if quit {
                format!("221 2.0.0 {host} Bye\r\n")
            } else {
                refused += 1;
                reply.to_string()
            };
            if stream.write_all(answer.as_bytes()).await.is_err() || quit {
                return;
            }
            if refused >= max_errors.max(1) {
                let _ = stream
                    .write_all(format!("421 4.7.0 {host} Too many errors\r\n").as_bytes())
                    .await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::Screening;
    use mxgate_config::raw::DnsblSection;
    use mxgate_config::Policy;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Memory(Mutex<Vec<(IpAddr, SystemTime)>>);

    impl TempAllowlist for Memory {
        fn contains(&self, ip: IpAddr, now: SystemTime) -> bool {
            let list = self.0.lock().unwrap();
            list.iter().any(|(a, until)| *a == ip && *until > now)
        }
        fn add(&self, ip: IpAddr, until: SystemTime) {
            self.0.lock().unwrap().push((ip, until));
        }
    }

    fn policy(screen: ScreenSection) -> Policy {
        Policy {
            screen,
            ..Policy::default()
        }
    }

    #[test]
    fn nothing_to_do_without_wait_or_zones() {
        assert!(Reputation::from_policy(&ScreenSection::default()).is_none());
        let zones = ScreenSection {
            dnsbl: vec![DnsblSection {
                zone: "a.test".into(),
                weight: 2,
                filter: None,
            }],
            ..ScreenSection::default()
        };
        assert!(Reputation::from_policy(&zones).is_some());
        let screening = Screening::default();
        screening.apply(&policy(ScreenSection::default()));
        let admitted = screening.connection("192.0.2.1".parse().unwrap()).ok();
        assert!(admitted.is_some_and(|a| a.pending.is_none()));
    }

    #[test]
    fn an_allowlisted_client_skips_the_slow_checks() {
        let screening = Screening::default();
        screening.apply(&policy(ScreenSection {
            greet_wait_ms: 500,
            ..ScreenSection::default()
        }));
        let list = Arc::new(Memory::default());
        *screening.allowlist.write().unwrap() = Some(list.clone());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let admitted = screening.connection(ip).ok().unwrap();
        assert!(admitted.pending.is_some());
        list.add(ip, SystemTime::now() + Duration::from_secs(60));
        let admitted = screening.connection(ip).ok().unwrap();
        assert!(admitted.pending.is_none());
        let hits = screening.verdicts.snapshot();
        assert!(
            hits.contains(&("allowlist", "hit".to_string(), 1)),
            "{hits:?}"
        );
    }

    #[tokio::test]
    async fn a_patient_client_is_allowlisted_and_a_pregreeter_rejected() {
        use tokio::net::{TcpListener, TcpStream as Client};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reputation = Arc::new(
            Reputation::from_policy(&ScreenSection {
                greet_wait_ms: 100,
                ..ScreenSection::default()
            })
            .unwrap(),
        );
        let list = Arc::new(Memory::default());
        let verdicts = Verdicts::default();
        for talk in [false, true] {
            let mut client = Client::connect(addr).await.unwrap();
            if talk {
                client.write_all(b"EHLO x\r\n").await.unwrap();
            }
            let (mut server, peer) = listener.accept().await.unwrap();
            let pending = Pending {
                reputation: Arc::clone(&reputation),
                resolver: None,
                allowlist: Some(list.clone() as Arc<dyn TempAllowlist>),
            };
            let passed = pending
                .run(&mut server, peer.ip(), Some("mx.test"), &verdicts)
                .await
                .ok()
                .unwrap();
            assert_eq!(passed.reject_all.is_some(), talk);
            let mut line = [0u8; 22];
            client.read_exact(&mut line).await.unwrap();
            assert_eq!(&line, b"220-mx.test ESMTP mxga");
        }
        assert_eq!(list.0.lock().unwrap().len(), 1, "only the patient client");
        let counted = verdicts.snapshot();
        assert!(
            counted.contains(&("pregreet", "reject".to_string(), 1)),
            "{counted:?}"
        );
    }
}
