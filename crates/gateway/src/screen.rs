//! Screening at the front door, shared by l4 and smtp listeners: the client
//! address against the allow/block lists and the connection rate and
//! concurrency limits, before any backend is touched; and, in smtp mode,
//! the HELO, sender and recipients against the lists and the message and
//! recipient limits ([`FilteringRelay`]), and SPF at MAIL FROM
//! (`[auth] spf`, see [`crate::spf`]). The client's forward-confirmed
//! reverse name, looked up during the pregreet wait (see
//! [`crate::session::screen`]), goes through the lists again
//! ([`Screening::reverse_name`]). Every decision is counted for
//! `mxgate_filter_verdicts_total{check,result}`.

use crate::checks::CheckLog;
use crate::greylisting::{self, GreylistBackend};
use crate::reputation::{Pending, Reputation, ReverseLookup, TempAllowlist};
use crate::smtp::relay::{forward_data_phase, ClientIdentity, Relay, RelayError};
use crate::spf::Authenticator;
use arc_swap::ArcSwapOption;
use mail_auth::SpfResult;
use mxgate_config::{AuthSettings, CheckMode, DmarcMode, Policy};
use mxgate_filter::greylist::{Greylist, GreylistDecision};
use mxgate_filter::lists::{ListAction, Lists, Matcher, Verdict};
use mxgate_filter::rate::{ConcurrencyTicket, RateLimiter, RateRule};
use mxgate_filter::verdict::{checks, Trail};
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
    /// `[auth]`.
    auth: AuthSettings,
    /// `[screen] dns_timeout_ms`: the bound of one SPF check (and of each
    /// step of the end-of-data checks).
    dns_timeout: Duration,
    /// When the client's reverse name is looked up.
    reverse_dns: ReverseDns,
}

/// When the client's forward-confirmed reverse name is looked up.
#[derive(Debug, Clone, Copy, Default)]
struct ReverseDns {
    /// `[screen] reverse_dns`, or any `reverse_name` list entry.
    wanted: bool,
    /// `[screen] reverse_dns` itself: the name is wanted for the
    /// `Received:` header even when the address allowed the client.
    explicit: bool,
    /// A `reverse_name` block entry exists: it refuses a client even when
    /// its address is allowed (block beats allow).
    block: bool,
}

impl ReverseDns {
    fn of(policy: &Policy, lists: &Lists) -> Self {
        ReverseDns {
            wanted: policy.reverse_dns_wanted(),
            explicit: policy.screen.reverse_dns,
            block: lists.entries().iter().any(|e| {
                e.action == ListAction::Block && matches!(e.matcher, Matcher::ReverseName(_))
            }),
        }
    }

    /// Whether a client (`allowed` by its address or not) is looked up.
    fn wanted(self, allowed: bool) -> bool {
        if allowed {
            self.explicit || self.block
        } else {
            self.wanted
        }
    }
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
    pub verdicts: Arc<Verdicts>,
    /// The resolver for DNSBL lookups; `None` = DNSBL off.
    pub resolver: RwLock<Option<Arc<mxgate_dns::Resolver>>>,
    /// Clients that passed pregreet and DNSBL recently.
    pub allowlist: RwLock<Option<Arc<dyn TempAllowlist>>>,
    /// Where greylisting state lives; `None` = greylisting off.
    pub greylist_backend: RwLock<Option<Arc<dyn GreylistBackend>>>,
    /// The SPF/DKIM/ARC/DMARC verifier (built with the resolver); `None` =
    /// sender authentication off.
    pub authenticator: RwLock<Option<Arc<Authenticator>>>,
}

/// A connection that passed; dropping it releases its concurrency slots.
pub(crate) struct Admitted {
    /// The lists allowed the client: reputation checks and limits are skipped.
    pub allowed: bool,
    screen: Option<Arc<Screen>>,
    ticket: Option<(Arc<Mutex<RateLimiter>>, ConcurrencyTicket)>,
    /// Pregreet and DNSBL, still to run (see [`crate::session::screen`]).
    pub pending: Option<Pending>,
    /// The reverse DNS lookup, still to run (with `pending` when there is
    /// one); its name goes to [`Screening::reverse_name`].
    pub reverse: Option<ReverseLookup>,
    /// The client's forward-confirmed reverse name, once known (for the
    /// `Received:` header).
    pub reverse_name: Option<String>,
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
        let lists = Lists::new(policy.list_entries());
        self.current.store(Some(Arc::new(Screen {
            reverse_dns: ReverseDns::of(policy, &lists),
            lists,
            rules,
            rate,
            greylist: greylist_of(policy),
            reputation: Reputation::from_policy(&policy.screen).map(Arc::new),
            auth: policy.auth_settings(),
            dns_timeout: Duration::from_millis(policy.screen.dns_timeout_ms),
        })));
    }

    fn screen(&self) -> Option<Arc<Screen>> {
        self.current.load_full()
    }

    /// The shared sender-authentication verifier, when a resolver is set.
    pub fn authenticator(&self) -> Option<Arc<Authenticator>> {
        self.authenticator
            .read()
            .expect("authenticator lock")
            .clone()
    }

    /// Screens a new connection from `client`: the reply to refuse it with,
    /// or the admission to hold for the session.
    pub fn connection(&self, client: IpAddr, log: &CheckLog) -> Result<Admitted, Reply> {
        let screen = self.screen();
        let mut admitted = Admitted {
            allowed: false,
            screen: screen.clone(),
            ticket: None,
            pending: None,
            reverse: None,
            reverse_name: None,
        };
        let Some(screen) = screen else {
            return Ok(admitted);
        };
        match screen.lists.check_client(client, None) {
            Verdict::Block(reason) => return Err(blocked(client, &reason, log)),
            Verdict::Allow(reason) => {
                log.record(checks::LIST, "allow", format!("client: {reason}"));
                admitted.allowed = true;
                admitted.reverse = self.reverse_lookup(&screen, true);
                return Ok(admitted);
            }
            Verdict::None => {}
        }
        admitted.reverse = self.reverse_lookup(&screen, false);
        let pending = screen
            .reputation
            .as_ref()
            .and_then(|r| self.pending(r, client, log));
        if let Some(rate) = &screen.rate {
            match rate
                .lock()
                .expect("rate lock")
                .connection(client, Instant::now())
            {
                Ok(ticket) => admitted.ticket = Some((Arc::clone(rate), ticket)),
                Err(limited) => {
                    log.record(checks::RATE, "limited", limited.key.clone());
                    tracing::info!(%client, key = %limited.key, metric = limited.metric.as_str(), "rate limited");
                    return Err(to_reply(&limited.reply));
                }
            }
        }
        admitted.pending = pending;
        Ok(admitted)
    }

    /// The reverse DNS lookup for a client (`allowed` by its address or
    /// not), when the policy wants one and a resolver is set.
    fn reverse_lookup(&self, screen: &Screen, allowed: bool) -> Option<ReverseLookup> {
        if !screen.reverse_dns.wanted(allowed) {
            return None;
        }
        let resolver = self.resolver.read().expect("resolver lock").clone()?;
        Some(ReverseLookup {
            resolver,
            timeout: screen.dns_timeout,
        })
    }

    /// Applies the client's verified reverse name, when one was found: the
    /// client is checked against the lists again with it (a `reverse_name`
    /// block refuses, even a client allowed by its address; an allow skips
    /// the reputation checks as an address allow does), and the name is
    /// kept for the `Received:` header.
    ///
    /// # Errors
    /// The refusal (`554 5.7.1`) of a blocked name.
    pub fn reverse_name(
        &self,
        admitted: &mut Admitted,
        client: IpAddr,
        name: Option<String>,
        log: &CheckLog,
    ) -> Result<(), Reply> {
        let Some(name) = name else {
            return Ok(());
        };
        if let Some(screen) = admitted.screen.as_deref() {
            match screen.lists.check_client(client, Some(&name)) {
                Verdict::Block(reason) => return Err(blocked(client, &reason, log)),
                Verdict::Allow(reason) if !admitted.allowed => {
                    log.record(checks::LIST, "allow", format!("client: {reason}"));
                    tracing::debug!(%client, reason, "client allowed by list");
                    admitted.allowed = true;
                }
                Verdict::Allow(_) | Verdict::None => {}
            }
        }
        admitted.reverse_name = Some(name);
        Ok(())
    }

    /// The pregreet and DNSBL checks to run for `client`, unless it is on
    /// the temporary allowlist.
    fn pending(
        &self,
        reputation: &Arc<Reputation>,
        client: IpAddr,
        log: &CheckLog,
    ) -> Option<Pending> {
        let allowlist = self.allowlist.read().expect("allowlist lock").clone();
        if let Some(list) = &allowlist {
            if list.contains(client, SystemTime::now()) {
                log.record("allowlist", "hit", "passed recently");
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

impl Admitted {
    /// `[auth]` and the DNS timeout of the policy the session started
    /// under, when it has one.
    pub fn auth(&self) -> Option<(AuthSettings, Duration)> {
        self.screen.as_deref().map(|s| (s.auth, s.dns_timeout))
    }
}

/// Counts and logs a client list block; the reply to refuse with.
fn blocked(client: IpAddr, reason: &str, log: &CheckLog) -> Reply {
    log.record(checks::LIST, "block", format!("client: {reason}"));
    tracing::info!(%client, reason, "client blocked by list");
    Reply::new(554, "5.7.1 Access denied")
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
/// before the backend is asked. Every decision goes to the session's
/// [`CheckLog`].
pub(crate) struct FilteringRelay<'a, R> {
    inner: R,
    admitted: &'a Admitted,
    log: CheckLog,
    greylist_backend: Option<Arc<dyn GreylistBackend>>,
    client: Option<ClientIdentity>,
    /// The sender of the open transaction, and whether the lists allowed it.
    sender: (String, bool),
    authenticator: Option<Arc<Authenticator>>,
}

impl<'a, R> FilteringRelay<'a, R> {
    /// Wraps `inner` for a connection that was `admitted`; decisions go to
    /// `log`.
    pub fn new(inner: R, admitted: &'a Admitted, screening: &Screening, log: CheckLog) -> Self {
        FilteringRelay {
            inner,
            admitted,
            log,
            greylist_backend: screening
                .greylist_backend
                .read()
                .expect("greylist backend lock")
                .clone(),
            client: None,
            sender: (String::new(), false),
            authenticator: screening.authenticator(),
        }
    }

    fn block(&self, what: &str, reason: &str) -> Reply {
        self.log
            .record(checks::LIST, "block", format!("{what}: {reason}"));
        tracing::info!(what, reason, "blocked by list");
        Reply::new(554, "5.7.1 Access denied")
    }

    /// Greylists (client, sender, `to`) unless greylisting is off or the
    /// client or sender is allowed by the lists: the reply to defer with,
    /// or `None` to go on. With DMARC on and `skip_dmarc_pass`, a deferral
    /// is held in the check log for the end of data instead. (Takes no
    /// `&self` across the await: the inner relay need not be `Sync`.)
    fn greylist(&self, to: &str) -> Option<impl std::future::Future<Output = Option<Reply>> + 'a> {
        if self.sender.1 || self.admitted.allowed {
            return None;
        }
        let admitted: &'a Admitted = self.admitted;
        let screen = admitted.screen.as_deref()?;
        let greylist = screen.greylist.clone()?;
        let hold_to_data =
            screen.auth.dmarc != DmarcMode::Off && greylist.settings().skip_dmarc_pass;
        let backend = self.greylist_backend.clone()?;
        let client = self.client.as_ref()?.addr.ip();
        let log = self.log.clone();
        let sender = self.sender.0.clone();
        let to = to.to_string();
        let spf_pass_domain = log
            .lock()
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
                log.record(checks::GREYLIST, "error", to);
                return None;
            };
            let result = match decision {
                GreylistDecision::Pass(_) => "pass",
                other => other.label(),
            };
            let Some(reply) = decision.reply() else {
                log.record(checks::GREYLIST, result, to);
                return None;
            };
            if hold_to_data {
                log.record(
                    checks::GREYLIST,
                    result,
                    format!("{to}, held to end of data"),
                );
                log.lock().greylist_deferral = Some(to_reply(&reply));
                return None;
            }
            log.record(checks::GREYLIST, result, to.clone());
            tracing::info!(%client, from = %sender, to = %to, "greylisted");
            Some(to_reply(&reply))
        })
    }
}

impl<R> FilteringRelay<'_, R> {
    /// Checks SPF for the sender (smtp mode, SPF asked for or needed by
    /// DMARC, a resolver set): keeps the outcome in the check log and
    /// returns the refusal of an SPF `fail` under `spf = "reject"`. DNS
    /// trouble (`temperror`) never refuses.
    async fn check_spf(
        &mut self,
        screen: &Screen,
        client: &ClientIdentity,
        from: &str,
    ) -> Option<Reply> {
        if !screen.auth.evaluates_spf() {
            return None;
        }
        let checker = self.authenticator.clone()?;
        let outcome = checker
            .check(client.addr.ip(), &client.helo, from, screen.dns_timeout)
            .await;
        self.log
            .record(checks::SPF, outcome.label(), outcome.domain.clone());
        let refuse = screen.auth.spf == CheckMode::Reject && outcome.result == SpfResult::Fail;
        if refuse {
            tracing::info!(client = %client.addr.ip(), from, "refused: SPF fail");
            return Some(Reply::new(550, "5.7.23 SPF validation failed"));
        }
        self.log.lock().spf = Some(outcome);
        None
    }

    /// Applies the message rate limit to `from` (not for allowed senders).
    fn limit_message(&self, screen: &Screen, client: IpAddr, from: &str) -> Option<Reply> {
        let rate = screen.rate.as_ref()?;
        let limited = rate
            .lock()
            .expect("rate lock")
            .message(client, from, Instant::now());
        let limited = limited.err()?;
        self.log
            .record(checks::RATE, "limited", limited.key.clone());
        Some(to_reply(&limited.reply))
    }

    /// Applies the recipient rate limit to `to` (not for allowed senders).
    fn limit_recipient(&self, screen: &Screen, client: IpAddr, to: &str) -> Option<Reply> {
        let rate = screen.rate.as_ref()?;
        let limited =
            rate.lock()
                .expect("rate lock")
                .recipient(client, &self.sender.0, to, Instant::now());
        let limited = limited.err()?;
        self.log
            .record(checks::RATE, "limited", limited.key.clone());
        Some(to_reply(&limited.reply))
    }
}

impl<'a, R: Relay> Relay for FilteringRelay<'a, R> {
    fn identify(&mut self, client: &ClientIdentity) {
        self.client = Some(client.clone());
        self.inner.identify(client);
    }

    async fn mail(&mut self, from: &str, params: &str) -> Result<Reply, RelayError> {
        self.sender = (from.to_string(), self.admitted.allowed);
        self.log.start();
        let admitted: &'a Admitted = self.admitted;
        let client = self.client.clone();
        if let (Some(screen), Some(client)) = (admitted.screen.as_deref(), &client) {
            let mut allowed = self.admitted.allowed;
            for (what, verdict) in [
                ("helo", screen.lists.check_helo(&client.helo)),
                ("sender", screen.lists.check_sender(from)),
            ] {
                match verdict {
                    Verdict::Block(reason) => return Ok(self.block(what, &reason)),
                    Verdict::Allow(reason) => {
                        self.log
                            .record(checks::LIST, "allow", format!("{what}: {reason}"));
                        allowed = true;
                    }
                    Verdict::None => {}
                }
            }
            self.sender.1 = allowed;
            if !allowed {
                if let Some(reply) = self.limit_message(screen, client.addr.ip(), from) {
                    return Ok(reply);
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
            if let Verdict::Block(reason) = screen.lists.check_recipient(to) {
                return Ok(self.block("recipient", &reason));
            }
            if !self.sender.1 {
                if let Some(reply) = self.limit_recipient(screen, client.addr.ip(), to) {
                    return Ok(reply);
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
        self.log.start();
        self.inner.rset().await;
    }
    forward_data_phase!();
    fn trace_headers(&self) -> Vec<String> {
        let spf_tagged = self
            .admitted
            .screen
            .as_deref()
            .is_some_and(|s| s.auth.spf != CheckMode::Off);
        let log = self.log.lock();
        log.spf
            .iter()
            .filter(|_| spf_tagged)
            .map(|o| o.header.clone())
            .collect()
    }
    fn take_checks(&mut self) -> Trail {
        self.log.take_trail()
    }
}
