//! The checks of one smtp-mode transaction, shared by the relay wrappers
//! that make them: [`crate::screen::FilteringRelay`] (lists, limits, SPF,
//! greylisting at MAIL/RCPT) and [`crate::authenticate::AuthenticatingRelay`]
//! (DKIM, ARC, DMARC at end of data). Each decision is counted for
//! `mxgate_filter_verdicts_total{check,result}` and written into the
//! transaction's verdict trail, which the inbound session stores with the
//! transaction record (log line and tracking store).

use crate::screen::Verdicts;
use crate::spf::SpfOutcome;
use mxgate_filter::verdict::Trail;
use mxgate_smtp::Reply;
use std::sync::{Arc, Mutex, MutexGuard};

/// What the checks of the open transaction found so far.
#[derive(Default)]
pub(crate) struct TransactionChecks {
    /// Every decision, in order.
    pub trail: Trail,
    /// The SPF outcome at MAIL FROM, when SPF was evaluated.
    pub spf: Option<SpfOutcome>,
    /// A greylisting deferral held back to the end of data, where a
    /// DMARC-aligned pass lifts it (`[greylist] skip_dmarc_pass`).
    pub greylist_deferral: Option<Reply>,
}

/// The checks of one session's open transaction, and the counters they
/// also go to. Cheap to clone (one per relay wrapper).
#[derive(Clone)]
pub(crate) struct CheckLog {
    verdicts: Arc<Verdicts>,
    open: Arc<Mutex<TransactionChecks>>,
}

impl CheckLog {
    /// A log counting into `verdicts`.
    pub fn new(verdicts: Arc<Verdicts>) -> CheckLog {
        CheckLog {
            verdicts,
            open: Arc::default(),
        }
    }

    /// Records one decision: counted, and appended to the trail.
    pub fn record(&self, check: &'static str, result: &str, detail: impl Into<String>) {
        self.verdicts.count(check, result);
        self.lock().trail.push(check, result, detail);
    }

    /// The open transaction's state.
    pub fn lock(&self) -> MutexGuard<'_, TransactionChecks> {
        self.open.lock().expect("check log lock")
    }

    /// Starts a new transaction (MAIL): the old state is dropped.
    pub fn start(&self) {
        *self.lock() = TransactionChecks::default();
    }

    /// Takes the trail recorded since the last call.
    pub fn take_trail(&self) -> Trail {
        std::mem::take(&mut self.lock().trail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_count_and_trail_and_start_clears() {
        let verdicts = Arc::new(Verdicts::default());
        let log = CheckLog::new(Arc::clone(&verdicts));
        log.record("spf", "pass", "example.org");
        log.clone().record("dkim", "fail", "");
        assert_eq!(
            log.take_trail().to_string(),
            "spf=pass (example.org) dkim=fail"
        );
        assert!(log.take_trail().is_empty());
        log.record("greylist", "defer", "");
        log.lock().greylist_deferral = Some(Reply::new(451, "4.7.1 later"));
        log.start();
        assert!(log.lock().greylist_deferral.is_none() && log.take_trail().is_empty());
        assert_eq!(
            verdicts.snapshot(),
            vec![
                ("dkim", "fail".to_string(), 1),
                ("greylist", "defer".to_string(), 1),
                ("spf", "pass".to_string(), 1)
            ]
        );
    }
}
