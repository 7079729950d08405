//! The slow part of connection screening, after the lists and the rate
//! limits: the pregreet test, the DNSBL/DNSWL lookups and the client's
//! forward-confirmed reverse DNS ([`ReverseLookup`]), run together, and the
//! temporary allowlist of clients that passed them.
//!
//! The lookups of every zone start at connect and run in parallel during
//! the pregreet wait (smtp mode: `220-<host> ESMTP mxgate` sent first; l4
//! mode: silence). A zone that does not answer within `dns_timeout_ms`
//! counts as not listed. A client that passed both is put on the
//! [`TempAllowlist`] for `allowlist_ttl_s` and skips both next time.
//! None of this runs (no await, no DNS) when the policy has no pregreet
//! wait and no zone.
//!
//! The checks are two steps, so the reverse name can be judged in between
//! (a `reverse_name` list entry beats the DNSBL score): [`Pending::gather`]
//! waits and looks up, [`Gathered::judge`] gives the pregreet and DNSBL
//! verdicts.

use crate::checks::CheckLog;
use mxgate_config::raw::ScreenSection;
use mxgate_dns::{DnsblOutcome, Resolver, ReverseName};
use mxgate_filter::dnsbl::{score, DnsblVerdict, Zone, ZoneAnswer, ZoneResult};
use mxgate_filter::pregreet::{pregreet, GreetAction, PregreetVerdict};
use mxgate_filter::verdict::checks;
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

/// The forward-confirmed reverse DNS lookup of one client (`[screen]
/// reverse_dns`, or a `reverse_name` list entry).
pub(crate) struct ReverseLookup {
    /// Where to ask.
    pub resolver: Arc<Resolver>,
    /// `[screen] dns_timeout_ms`: the bound of the whole lookup.
    pub timeout: Duration,
}

impl ReverseLookup {
    /// The verified reverse name of `client`, if it has one; counted as
    /// `rdns`/`verified`|`unverified`|`none`|`temperror`.
    pub async fn run(self, client: IpAddr, log: &CheckLog) -> Option<String> {
        let got = self
            .resolver
            .verified_reverse_name(client, self.timeout)
            .await;
        log.record(checks::RDNS, got.label(), got.verified().unwrap_or(""));
        tracing::debug!(%client, result = got.label(), name = got.verified().unwrap_or("-"), "reverse DNS");
        match got {
            ReverseName::Verified(name) => Some(name),
            ReverseName::Unverified | ReverseName::None | ReverseName::TempFail => None,
        }
    }
}

/// What the pregreet wait and the DNSBL lookups found, not judged yet.
pub(crate) struct Gathered {
    pending: Pending,
    /// Octets the client sent during the wait.
    early: usize,
    answers: Vec<ZoneAnswer>,
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
    /// Runs the pregreet wait, the DNSBL lookups and `reverse` (when given)
    /// together: what they found, and the client's verified reverse name.
    /// In smtp mode (`banner_host` set) the `220-` line is sent first, and
    /// the engine's banner completes it.
    ///
    /// # Errors
    /// `None` (just close) when the client went away.
    pub async fn gather(
        self,
        stream: &mut TcpStream,
        client: IpAddr,
        banner_host: Option<&str>,
        reverse: Option<ReverseLookup>,
        log: &CheckLog,
    ) -> Result<(Gathered, Option<String>), Refusal> {
        let r = &self.reputation;
        if let (Some(host), false) = (banner_host, r.greet_wait.is_zero()) {
            let line = format!("220-{host} ESMTP mxgate\r\n");
            if stream.write_all(line.as_bytes()).await.is_err() {
                return Err(None);
            }
        }
        let lookups = lookups(r, self.resolver.as_ref(), client);
        let reverse = async {
            match reverse {
                Some(lookup) => lookup.run(client, log).await,
                None => None,
            }
        };
        let (early, answers, name) =
            tokio::join!(wait_for_greeting(stream, r.greet_wait), lookups, reverse);
        let Some(early) = early else {
            return Err(None);
        };
        let gathered = Gathered {
            pending: self,
            early,
            answers,
        };
        Ok((gathered, name))
    }
}

impl Gathered {
    /// The pregreet and DNSBL verdicts; a client that passed both cleanly
    /// goes on the temporary allowlist.
    ///
    /// # Errors
    /// The refusal, not yet sent.
    pub fn judge(self, client: IpAddr, log: &CheckLog) -> Result<Passed, Refusal> {
        let Gathered {
            pending,
            early,
            answers,
        } = self;
        let r = &pending.reputation;
        let mut passed = Passed::default();
        let mut clean = true;
        match pregreet(early, r.greet_action) {
            PregreetVerdict::Clean => {}
            PregreetVerdict::Ignored => {
                log.record(
                    checks::PREGREET,
                    "ignore",
                    format!("{early} octets before the banner"),
                );
                clean = false;
            }
            PregreetVerdict::Reject(reply) => {
                log.record(
                    checks::PREGREET,
                    "reject",
                    format!("{early} octets before the banner"),
                );
                tracing::info!(%client, "pregreet: client talked before the banner");
                passed.reject_all = Some(to_reply(&reply));
                clean = false;
            }
            PregreetVerdict::Drop(reply) => {
                log.record(
                    checks::PREGREET,
                    "drop",
                    format!("{early} octets before the banner"),
                );
                tracing::info!(%client, "pregreet: client talked before the banner; dropped");
                return Err(Some(to_reply(&reply)));
            }
        }
        if !r.zones.is_empty() {
            let score = score(&r.zones, &answers);
            for failed in &answers {
                if let ZoneResult::Failed(why) = &failed.result {
                    let what = if why == "timeout" { "timeout" } else { "error" };
                    log.record(checks::DNSBL, what, format!("{}: {why}", failed.zone));
                    tracing::debug!(%client, zone = %failed.zone, reason = %why, "DNSBL zone gave no answer");
                }
            }
            let zones: Vec<&str> = score.matched.iter().map(|m| m.zone.as_str()).collect();
            let detail = format!("score {} [{}]", score.total, zones.join(" "));
            match score.verdict(r.threshold, r.allow_threshold) {
                DnsblVerdict::Listed => {
                    log.record(checks::DNSBL, "listed", detail);
                    tracing::info!(%client, score = score.total, zones = ?zones, "DNSBL: client refused");
                    return Err(Some(to_reply(&score.reply(r.reveal))));
                }
                DnsblVerdict::Allowlisted => {
                    log.record(checks::DNSBL, "allowlisted", detail);
                    passed.allowlisted = true;
                }
                DnsblVerdict::Pass => log.record(checks::DNSBL, "pass", detail),
            }
        }
        if clean && !r.allowlist_ttl.is_zero() {
            if let Some(allowlist) = &pending.allowlist {
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
    use crate::screen::{Screening, Verdicts};

    /// A check log counting into `screening`'s counters.
    fn log_for(screening: &Screening) -> CheckLog {
        CheckLog::new(Arc::clone(&screening.verdicts))
    }
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
        let admitted = screening
            .connection("192.0.2.1".parse().unwrap(), &log_for(&screening))
            .ok();
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
        let admitted = screening.connection(ip, &log_for(&screening)).ok().unwrap();
        assert!(admitted.pending.is_some());
        list.add(ip, SystemTime::now() + Duration::from_secs(60));
        let admitted = screening.connection(ip, &log_for(&screening)).ok().unwrap();
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
        let verdicts = Arc::new(Verdicts::default());
        let log = CheckLog::new(Arc::clone(&verdicts));
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
            let (gathered, name) = pending
                .gather(&mut server, peer.ip(), Some("mx.test"), None, &log)
                .await
                .ok()
                .unwrap();
            assert_eq!(name, None);
            let passed = gathered.judge(peer.ip(), &log).ok().unwrap();
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

    fn resolver_for(dns: &mxgate_testkit::DnsServer) -> Arc<Resolver> {
        Arc::new(
            Resolver::new(&mxgate_dns::ResolverSettings {
                servers: vec![dns.addr()],
                timeout: Duration::from_secs(2),
                attempts: 1,
            })
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn the_reverse_name_is_looked_up_during_the_wait() {
        use mxgate_testkit::{reverse_name, DnsServer};
        use std::net::Ipv4Addr;
        use tokio::net::{TcpListener, TcpStream as Client};
        let dns = DnsServer::start();
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25));
        let slow = Duration::from_millis(500);
        dns.add_ptr(&reverse_name(ip), "mail.example.test", 300);
        dns.add_a("mail.example.test", Ipv4Addr::new(192, 0, 2, 25), 300);
        dns.add_a("25.2.0.192.bl.test", Ipv4Addr::new(127, 0, 0, 2), 300);
        dns.set_delay(&reverse_name(ip), slow);
        dns.set_delay("25.2.0.192.bl.test", slow);
        let resolver = resolver_for(&dns);
        let reputation = Reputation::from_policy(&ScreenSection {
            greet_wait_ms: 500,
            dnsbl: vec![DnsblSection {
                zone: "bl.test".into(),
                weight: 5,
                filter: None,
            }],
            ..ScreenSection::default()
        })
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = Client::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let verdicts = Arc::new(Verdicts::default());
        let log = CheckLog::new(Arc::clone(&verdicts));
        let pending = Pending {
            reputation: Arc::new(reputation),
            resolver: Some(Arc::clone(&resolver)),
            allowlist: None,
        };
        let reverse = ReverseLookup {
            resolver,
            timeout: Duration::from_secs(2),
        };
        let started = std::time::Instant::now();
        let (gathered, name) = pending
            .gather(&mut server, ip, None, Some(reverse), &log)
            .await
            .ok()
            .unwrap();
        // The wait, the DNSBL and the PTR lookups each take 500 ms: together.
        assert!(
            started.elapsed() < Duration::from_millis(1400),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(name.as_deref(), Some("mail.example.test"));
        let refused = gathered.judge(ip, &log).err().flatten().unwrap();
        assert_eq!(refused.code, 550);
        let counted = verdicts.snapshot();
        for (check, result) in [("rdns", "verified"), ("dnsbl", "listed")] {
            assert!(
                counted.contains(&(check, result.to_string(), 1)),
                "{counted:?}"
            );
        }
    }

    #[tokio::test]
    async fn reverse_name_entries_judge_the_verified_name() {
        let dns = mxgate_testkit::DnsServer::start();
        let screening = Screening::default();
        screening.apply(
            &Policy::parse(
                "[[list]]\naction = \"block\"\nreverse_name = \".bad.test\"\n\
                 [[list]]\naction = \"allow\"\nreverse_name = \"good.test\"\n\
                 [[list]]\naction = \"allow\"\nclient = \"192.0.2.1\"\n",
            )
            .unwrap(),
        );
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let admitted = screening.connection(ip, &log_for(&screening)).ok().unwrap();
        assert!(admitted.reverse.is_none(), "no resolver, no lookup");
        *screening.resolver.write().unwrap() = Some(resolver_for(&dns));

        let mut admitted = screening.connection(ip, &log_for(&screening)).ok().unwrap();
        assert!(admitted.reverse.is_some() && !admitted.allowed);
        screening
            .reverse_name(&mut admitted, ip, None, &log_for(&screening))
            .unwrap();
        assert!(!admitted.allowed && admitted.reverse_name.is_none());
        screening
            .reverse_name(
                &mut admitted,
                ip,
                Some("good.test".into()),
                &log_for(&screening),
            )
            .unwrap();
        assert!(admitted.allowed);
        assert_eq!(admitted.reverse_name.as_deref(), Some("good.test"));

        let mut admitted = screening.connection(ip, &log_for(&screening)).ok().unwrap();
        let refused = screening
            .reverse_name(
                &mut admitted,
                ip,
                Some("mx.Bad.test".into()),
                &log_for(&screening),
            )
            .unwrap_err();
        assert_eq!(refused.code, 554);

        // Allowed by address, looked up all the same: the block wins.
        let allowed: IpAddr = "192.0.2.1".parse().unwrap();
        let mut admitted = screening
            .connection(allowed, &log_for(&screening))
            .ok()
            .unwrap();
        assert!(admitted.allowed && admitted.reverse.is_some());
        assert!(screening
            .reverse_name(
                &mut admitted,
                allowed,
                Some("x.bad.test".into()),
                &log_for(&screening)
            )
            .is_err());
        let counted = screening.verdicts.snapshot();
        assert!(
            counted.contains(&("list", "allow".to_string(), 2)),
            "{counted:?}"
        );
        assert!(
            counted.contains(&("list", "block".to_string(), 2)),
            "{counted:?}"
        );
    }

    #[tokio::test]
    async fn no_reverse_lookup_unless_asked() {
        let dns = mxgate_testkit::DnsServer::start();
        let screening = Screening::default();
        *screening.resolver.write().unwrap() = Some(resolver_for(&dns));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let allowed: IpAddr = "192.0.2.1".parse().unwrap();
        let allow_client = "[[list]]\naction = \"allow\"\nclient = \"192.0.2.1\"\n";
        let allow_name = "[[list]]\naction = \"allow\"\nreverse_name = \"good.test\"\n";
        // (policy, looked up for `ip`, looked up for the allowed `allowed`)
        for (policy, other, allowed_too) in [
            (allow_client.to_string(), false, false),
            (
                format!("{allow_client}[screen]\nreverse_dns = true\n"),
                true,
                true,
            ),
            (format!("{allow_client}{allow_name}"), true, false),
        ] {
            screening.apply(&Policy::parse(&policy).unwrap());
            let got = screening.connection(ip, &log_for(&screening)).ok().unwrap();
            assert_eq!(got.reverse.is_some(), other, "{policy}");
            let got = screening
                .connection(allowed, &log_for(&screening))
                .ok()
                .unwrap();
            assert!(got.allowed);
            assert_eq!(got.reverse.is_some(), allowed_too, "{policy}");
        }
        assert!(dns.queries().is_empty());
    }
}
