//! The verdict trail: every check a session went through, in order, as the
//! gateway logs it, stores it with the message record and counts it in
//! `mxgate_filter_verdicts_total{check,result}`.

use serde::Serialize;

/// Check names used in the trail and as the `check` metric label.
pub mod checks {
    /// Allow/block lists.
    pub const LIST: &str = "list";
    /// DNSBL/DNSWL scoring.
    pub const DNSBL: &str = "dnsbl";
    /// Greylisting.
    pub const GREYLIST: &str = "greylist";
    /// Rate and concurrency limits.
    pub const RATE: &str = "rate";
    /// SPF.
    pub const SPF: &str = "spf";
    /// DKIM.
    pub const DKIM: &str = "dkim";
    /// DMARC.
    pub const DMARC: &str = "dmarc";
    /// Talking before the banner.
    pub const PREGREET: &str = "pregreet";
    /// Every check name, for pre-registering metric series.
    pub const ALL: [&str; 8] = [LIST, DNSBL, GREYLIST, RATE, SPF, DKIM, DMARC, PREGREET];
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Which check, one of [`checks`].
    pub check: &'static str,
    /// Short result label (`pass`, `block`, `defer`, `listed`, ...); low
    /// cardinality, used as a metric label.
    pub result: String,
    /// Free text for logs and the UI (which entry, zones, scores); never a
    /// metric label.
    pub detail: String,
}

/// The ordered list of checks for one session or transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Trail(pub Vec<Check>);

impl Trail {
    /// An empty trail.
    pub fn new() -> Self {
        Trail(Vec::new())
    }

    /// Appends one check.
    pub fn push(
        &mut self,
        check: &'static str,
        result: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(Check {
            check,
            result: result.into(),
            detail: detail.into(),
        });
    }

    /// The checks in order.
    pub fn checks(&self) -> &[Check] {
        &self.0
    }

    /// `(check, result)` pairs to increment
    /// `mxgate_filter_verdicts_total{check,result}` by one each.
    pub fn metric_labels(&self) -> Vec<(&'static str, &str)> {
        self.0
            .iter()
            .map(|c| (c.check, c.result.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_a_list_and_gives_labels() {
        let mut t = Trail::new();
        t.push(checks::LIST, "none", "");
        t.push(checks::DNSBL, "pass", "score 1 (b.example)");
        t.push(checks::GREYLIST, "defer", "retry in 300 s");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"[{"check":"list","result":"none","detail":""},{"check":"dnsbl","result":"pass","detail":"score 1 (b.example)"},{"check":"greylist","result":"defer","detail":"retry in 300 s"}]"#
        );
        assert_eq!(
            t.metric_labels(),
            vec![("list", "none"), ("dnsbl", "pass"), ("greylist", "defer")]
        );
        assert_eq!(t.checks().len(), 3);
    }
}
