//! The verdict trail: every check a session went through, in order, as the
//! gateway logs it, stores it with the message record and counts it in
//! `mxgate_filter_verdicts_total{check,result}`.

use serde::{Deserialize, Serialize};

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
    /// ARC.
    pub const ARC: &str = "arc";
    /// Talking before the banner.
    pub const PREGREET: &str = "pregreet";
    /// Forward-confirmed reverse DNS of the client.
    pub const RDNS: &str = "rdns";
    /// Every check name, for pre-registering metric series.
    pub const ALL: [&str; 10] = [
        LIST, DNSBL, GREYLIST, RATE, SPF, DKIM, ARC, DMARC, PREGREET, RDNS,
    ];
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Which check, one of [`checks`].
    pub check: std::borrow::Cow<'static, str>,
    /// Short result label (`pass`, `block`, `defer`, `listed`, ...); low
    /// cardinality, used as a metric label.
    pub result: String,
    /// Free text for logs and the UI (which entry, zones, scores); never a
    /// metric label.
    pub detail: String,
}

/// The ordered list of checks for one session or transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
            check: check.into(),
            result: result.into(),
            detail: detail.into(),
        });
    }

    /// The checks in order.
    pub fn checks(&self) -> &[Check] {
        &self.0
    }

    /// True when no check was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends every check of `other`.
    pub fn append(&mut self, mut other: Trail) {
        self.0.append(&mut other.0);
    }

    /// `(check, result)` pairs to increment
    /// `mxgate_filter_verdicts_total{check,result}` by one each.
    pub fn metric_labels(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .map(|c| (c.check.as_ref(), c.result.as_str()))
            .collect()
    }
}

/// One line for logs: `check=result (detail)`, space-separated; `-` when
/// empty.
impl std::fmt::Display for Trail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={}", c.check, c.result)?;
            if !c.detail.is_empty() {
                write!(f, " ({})", c.detail)?;
            }
        }
        Ok(())
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
        assert_eq!(
            t.to_string(),
            "list=none dnsbl=pass (score 1 (b.example)) greylist=defer (retry in 300 s)"
        );
        assert_eq!(Trail::new().to_string(), "-");
    }
}
