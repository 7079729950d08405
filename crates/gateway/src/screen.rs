//! Screening at the front door, shared by l4 and smtp listeners: the client
//! address against the allow/block lists and the connection rate and
//! concurrency limits, before any backend is touched; and, in smtp mode,
//! the HELO, sender and recipients against the lists and the message and
//! recipient limits ([`FilteringRelay`]), and SPF at MAIL FROM
//! (`[auth] spf`, see [`crate::spf`]). Every decision is counted for
//! `mxgate_filter_verdicts_total{check,result}`.

use crate::greylisting::{self, GreylistBackend};
use crate::reputation::{Pending, Reputation, TempAllowlist};
use crate::smtp::relay::{forward_data_phase, ClientIdentity, Relay, RelayError};
use crate::spf::{SpfChecker, SpfOutcome};
use arc_swap::ArcSwapOption;
use mail_auth::SpfResult;
use mxgate_config::{Policy, SpfMode};
use mxgate_filter::greylist::{Greylist, GreylistDecision};
use mxgate_filter::lists::{Lists, Verdict};
use mxgate_filter::rate::{ConcurrencyTicket, RateLimiter, RateRule};
use mxgate_smtp::Reply;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// Most rate-limit keys tracked at once (memory stays bounded under floods).
const MAX_RATE_KEYS: usize = 100_000;

/// The screening state of a gateway, replaced when the policy changes.
pub(crate) struct Screen {
    lists: Lists,
    rules: Vec<RateRule>,
    rate: Option<Arc<Mutex<RateLimiter>>>,
    /// `[greylist]` when enabled (smtp mode, at RCPT).
    greylist: Option<Greylist>,
    /// Pregreet and DNSBL settings; `None` when both are off.
    reputation: Option<Arc<Reputation>>,
    /// `[auth] spf`.
    spf: SpfMode,
    /// `[screen] dns_timeout_ms`: the bound of one SPF check.
    dns_timeout: Duration,
}

/// Counts of screening decisions by (check, result).
#[derive(Default)]
pub struct Verdicts(Mutex<BTreeMap<(&'static str, String), u64>>);

impl Verdicts {
    /// Counts one decision.
    pub fn count(&self, check: &'static str, result: &str) {
        *self
            .0
            .lock()
            .expect("verdicts lock")
            .entry((check, result.to_string()))
            .or_default() += 1;
    }

    /// Every (check, result, count).
    pub fn snapshot(&self) -> Vec<(&'static str, String, u64)> {
        self.0
            .lock()
            .expect("verdicts lock")
            .iter()
            .map(|((c, r), n)| (*c, r.clone(), *n))
            .collect()
    }
}

/// What screening shares: the current rules and the counters.
#[derive(Default)]
pub(crate) struct Screening {
    current: ArcSwapOption<Screen>,
    /// Decisions so far.
    pub verdicts: Verdicts,
    /// The resolver for DNSBL lookups; `None` = DNSBL off.
    pub resolver: RwLock<Option<Arc<mxgate_dns::Resolver>>>,
    /// Clients that passed pregreet and DNSBL recently.
    pub allowlist: RwLock<Option<Arc<dyn TempAllowlist>>>,
    /// Where greylisting state lives; `None` = greylisting off.
    pub greylist_backend: RwLock<Option<Arc<dyn GreylistBackend>>>,
    /// The SPF verifier (built with the resolver); `None` = SPF off.
    pub spf: RwLock<Option<Arc<SpfChecker>>>,
}

/// A connection that passed; dropping it releases its concurrency slots.
pub(crate) struct Admitted {
    /// The lists allowed the client: reputation checks and limits are skipped.
    pub allowed: bool,
    screen: Option<Arc<Screen>>,
    ticket: Option<(Arc<Mutex<RateLimiter>>, ConcurrencyTicket)>,
    /// Pregreet and DNSBL, still to run (see [`crate::session::screen`]).
    pub pending: Option<Pending>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some((rate, ticket)) = self.ticket.take() {
            rate.lock().expect("rate lock").release(ticket);
        }
    }
}

impl Screening {
    /// Takes the lists and limits of `policy`. The rate counters start over
    /// only when the rules changed.
    pub fn apply(&self, policy: &Policy) {
        let rules = policy.rate_rules();
        let old = self.current.load_full();
        let rate = match old.as_deref() {
            Some(s) if s.rules == rules => s.rate.clone(),
            _ if rules.is_empty() => None,
            _ => match RateLimiter::new(rules.clone(), MAX_RATE_KEYS) {
                Ok(r) => Some(Arc::new(Mutex::new(r))),
                Err(e) => {
                    tracing::error!(error = %e, "rate limits not applied");
                    None
                }
            },
        };
        self.current.store(Some(Arc::new(Screen {
            lists: Lists::new(policy.list_entries()),
            rules,
            rate,
            greylist: greylist_of(policy),
            reputation: Reputation::from_policy(&policy.screen).map(Arc::new),
            spf: policy.spf_mode(),
            dns_timeout: Duration::from_millis(policy.screen.dns_timeout_ms),
        })));
    }

    fn screen(&self) -> Option<Arc<Screen>> {
        self.current.load_full()
    }

    /// Screens a new connection from `client`: the reply to refuse it with,
    /// or the admission to hold for the session.
    pub fn connection(&self, client: IpAddr) -> Result<Admitted, Reply> {
        let screen = self.screen();
        let mut admitted = Admitted {
            allowed: false,
            screen: screen.clone(),
            ticket: None,
            pending: None,
        };
        let Some(screen) = screen else {
            return Ok(admitted);
        };
        match screen.lists.check_client(client, None) {
            Verdict::Block(reason) => {
                self.verdicts.count("list", "block");
                tracing::info!(%client, reason, "client blocked by list");
                return Err(Reply::new(554, "5.7.1 Access denied"));
            }
            Verdict::Allow(_) => {
                self.verdicts.count("list", "allow");
                admitted.allowed = true;
                return Ok(admitted);
            }
            Verdict::None => {}
        }
        let pending = screen
            .reputation
            .as_ref()
            .and_then(|r| self.pending(r, client));
        if let Some(rate) = &screen.rate {
            match rate
                .lock()
                .expect("rate lock")
                .connection(client, Instant::now())
            {
                Ok(ticket) => admitted.ticket = Some((Arc::clone(rate), ticket)),
                Err(limited) => {
                    self.verdicts.count("rate", "limited");
                    tracing::info!(%client, key = %limited.key, metric = limited.metric.as_str(), "rate limited");
                    return Err(to_reply(&limited.reply));
                }
            }
        }
        admitted.pending = pending;
        Ok(admitted)
    }

    /// The pregreet and DNSBL checks to run for `client`, unless it is on
    /// the temporary allowlist.
    fn pending(&self, reputation: &Arc<Reputation>, client: IpAddr) -> Option<Pending> {
        let allowlist = self.allowlist.read().expect("allowlist lock").clone();
        if let Some(list) = &allowlist {
            if list.contains(client, SystemTime::now()) {
                self.verdicts.count("allowlist", "hit");
                return None;
            }
        }
        Some(Pending {
            reputation: Arc::clone(reputation),
            resolver: self.resolver.read().expect("resolver lock").clone(),
            allowlist,
        })
    }
}

/// The greylisting policy of `policy`, when enabled and valid.
fn greylist_of(policy: &Policy) -> Option<Greylist> {
    match Greylist::new(policy.greylist_settings()?) {
        Ok(g) => Some(g),
        Err(e) => {
            tracing::error!(error = %e, "greylisting not applied");
            None
        }
    }
}

fn to_reply(r: &mxgate_filter::Reply) -> Reply {
    Reply::new(r.code, format!("{} {}", r.status, r.text))
}

/// A [`Relay`] that checks HELO, sender and recipients against the lists
/// and the message and recipient limits, then greylists the recipient,
/// before the backend is asked.
pub(crate) struct FilteringRelay<'a, R> {
    inner: R,
    admitted: &'a Admitted,
    verdicts: &'a Verdicts,
    greylist_backend: Option<Arc<dyn GreylistBackend>>,
    client: Option<ClientIdentity>,
    /// The sender of the open transaction, and whether the lists allowed it.
    sender: (String, bool),
    spf_checker: Option<Arc<SpfChecker>>,
    /// The SPF outcome of the open transaction, when checked.
    spf: Option<SpfOutcome>,
}

impl<'a, R> FilteringRelay<'a, R> {
    /// Wraps `inner` for a connection that was `admitted`.
    pub fn new(inner: R, admitted: &'a Admitted, screening: &'a Screening) -> Self {
        FilteringRelay {
            inner,
            admitted,
            verdicts: &screening.verdicts,
            greylist_backend: screening
                .greylist_backend
                .read()
                .expect("greylist backend lock")
                .clone(),
            client: None,
            sender: (String::new(), false),
            spf_checker: screening.spf.read().expect("spf lock").clone(),
            spf: None,
        }
    }

    fn block(&self, what: &str, reason: &str) -> Reply {
        self.verdicts.count("list", "block");
        tracing::info!(what, reason, "blocked by list");
        Reply::new(554, "5.7.1 Access denied")
    }

    /// Greylists (client, sender, `to`) unless greylisting is off or the
    /// client or sender is allowed by the lists: the reply to defer with,
    /// or `None` to go on. (Takes no `&self` across the await: the inner
    /// relay need not be `Sync`.)
    fn greylist(&self, to: &str) -> Option<impl std::future::Future<Output = Option<Reply>> + 'a> {
        if self.sender.1 || self.admitted.allowed {
            return None;
        }
        let admitted: &'a Admitted = self.admitted;
        let greylist = admitted.screen.as_deref()?.greylist.clone()?;
        let backend = self.greylist_backend.clone()?;
        let client = self.client.as_ref()?.addr.ip();
        let verdicts: &'a Verdicts = self.verdicts;
        let sender = self.sender.0.clone();
        let to = to.to_string();
        let spf_pass_domain = self
            .spf
            .as_ref()
            .filter(|o| o.result == SpfResult::Pass)
            .map(|o| o.domain.clone());
        Some(async move {
            let Some(decision) = greylisting::check(
                backend,
                greylist,
                client,
                sender.clone(),
                to.clone(),
                spf_pass_domain,
            )
            .await
            else {
                verdicts.count("greylist", "error");
                return None;
            };
            let result = match decision {
                GreylistDecision::Pass(_) => "pass",
                other => other.label(),
            };
            verdicts.count("greylist", result);
            let reply = decision.reply()?;
            tracing::info!(%client, from = %sender, to = %to, "greylisted");
            Some(to_reply(&reply))
        })
    }
}

impl<R> FilteringRelay<'_, R> {
    /// Checks SPF for the sender (smtp mode, `[auth] spf` not `off`, a
    /// resolver set): remembers the outcome for the transaction and returns
    /// the refusal of an SPF `fail` under `reject`. DNS trouble
    /// (`temperror`) never refuses.
    async fn check_spf(
        &mut self,
        screen: &Screen,
        client: &ClientIdentity,
        from: &str,
    ) -> Option<Reply> {
        if screen.spf == SpfMode::Off {
            return None;
        }
        let checker = self.spf_checker.clone()?;
        let outcome = checker
            .check(client.addr.ip(), &client.helo, from, screen.dns_timeout)
            .await;
        self.verdicts.count("spf", outcome.label());
        let refuse = screen.spf == SpfMode::Reject && outcome.result == SpfResult::Fail;
        if refuse {
            tracing::info!(client = %client.addr.ip(), from, "refused: SPF fail");
            return Some(Reply::new(550, "5.7.23 SPF validation failed"));
        }
        self.spf = Some(outcome);
        None
    }
}

impl<'a, R: Relay> Relay for FilteringRelay<'a, R> {
    fn identify(&mut self, client: &ClientIdentity) {
        self.client = Some(client.clone());
        self.inner.identify(client);
    }

    async fn mail(&mut self, from: &str, params: &str) -> Result<Reply, RelayError> {
        self.sender = (from.to_string(), self.admitted.allowed);
        self.spf = None;
        let admitted: &'a Admitted = self.admitted;
        let client = self.client.clone();
        if let (Some(screen), Some(client)) = (admitted.screen.as_deref(), &client) {
            let mut allowed = self.admitted.allowed;
            for verdict in [
                screen.lists.check_helo(&client.helo),
                screen.lists.check_sender(from),
            ] {
                match verdict {
                    Verdict::Block(reason) => return Ok(self.block("sender", &reason)),
                    Verdict::Allow(_) => allowed = true,
                    Verdict::None => {}
                }
            }
            self.sender.1 = allowed;
            if !allowed {
                if let Some(rate) = &screen.rate {
                    let limited = rate.lock().expect("rate lock").message(
                        client.addr.ip(),
                        from,
                        Instant::now(),
                    );
                    if let Err(limited) = limited {
                        self.verdicts.count("rate", "limited");
                        return Ok(to_reply(&limited.reply));
                    }
                }
                if let Some(reply) = self.check_spf(screen, client, from).await {
                    return Ok(reply);
                }
            }
        }
        self.inner.mail(from, params).await
    }

    async fn rcpt(&mut self, to: &str, params: &str) -> Result<Reply, RelayError> {
        let admitted: &'a Admitted = self.admitted;
        if let (Some(screen), Some(client)) = (admitted.screen.as_deref(), &self.client) {
            match screen.lists.check_recipient(to) {
                Verdict::Block(reason) => return Ok(self.block("recipient", &reason)),
                Verdict::Allow(_) | Verdict::None => {}
            }
            if !self.sender.1 {
                if let Some(rate) = &screen.rate {
                    let limited = rate.lock().expect("rate lock").recipient(
                        client.addr.ip(),
                        &self.sender.0,
                        to,
                        Instant::now(),
                    );
                    if let Err(limited) = limited {
                        self.verdicts.count("rate", "limited");
                        return Ok(to_reply(&limited.reply));
                    }
                }
            }
        }
        if let Some(check) = self.greylist(to) {
            if let Some(reply) = check.await {
                return Ok(reply);
            }
        }
        self.inner.rcpt(to, params).await
    }

    async fn rset(&mut self) {
        self.spf = None;
        self.inner.rset().await;
    }
    forward_data_phase!();
    fn trace_headers(&self) -> Vec<String> {
        self.spf.iter().map(|o| o.header.clone()).collect()
    }
}
