//! The `alerts` section: how loud each kind of alert is, the quietest one the application
//! wants, and what alerts may contain.
//!
//! ```yaml
//! alerts:
//!   min_severity: warning        # info (default) | warning | high | critical
//!   include_prompt_text: false   # quote prompts (shortened) in alerts; off by default
//!   severity:                    # override any default; unset keys keep theirs
//!     gate_inconclusive: high
//!     evaluation_submitted: info
//! ```
//!
//! Every key is optional; unknown keys and unknown severities are errors with their line.
//! send-alert honours the section only when the whole policy is valid: an invalid policy
//! falls back to the defaults (so the rejection it causes is still alerted). The defaults
//! are documented in `docs/alerts.md` and [`crate::alert::default_severity`].

use serde::Deserialize;

use super::Problem;
use crate::alert::Severity;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsPolicy {
    /// Whether alerts and events may quote prompt text (shortened). Off by default: prompts
    /// can hold customer data, and alerts go to email and chat.
    #[serde(default)]
    pub include_prompt_text: bool,
    /// Alerts below this severity are not sent for this application. Default `info`
    /// (everything is sent; subscribers can still filter on the `severity` attribute).
    #[serde(default)]
    pub min_severity: Severity,
    /// Per-kind severity overrides.
    #[serde(default)]
    pub severity: SeverityOverrides,
}

/// Severity overrides, one optional key per kind of alert (and per gate outcome).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityOverrides {
    /// `Gate Verdict` with outcome `pass` (default `info`).
    pub gate_pass: Option<Severity>,
    /// `Gate Verdict` with outcome `fail` (default `high`).
    pub gate_fail: Option<Severity>,
    /// `Gate Verdict` with outcome `inconclusive` (default `warning`).
    pub gate_inconclusive: Option<Severity>,
    /// `Gate Verdict` with outcome `error` (default `high`).
    pub gate_error: Option<Severity>,
    /// `Dataset Rejected` (default `warning`).
    pub dataset_rejected: Option<Severity>,
    /// `Evaluation Submitted` (default `info`).
    pub evaluation_submitted: Option<Severity>,
    /// `Evaluation Deferred` (default `info`).
    pub evaluation_deferred: Option<Severity>,
    /// `Release Promoted` (default `info`).
    pub release_promoted: Option<Severity>,
    /// `Rollback Executed` (default `critical`).
    pub rollback_executed: Option<Severity>,
    /// `Rollback Skipped` (default `critical`).
    pub rollback_skipped: Option<Severity>,
    /// Any other evalgate event kind (default `warning`).
    pub other: Option<Severity>,
}

impl AlertsPolicy {
    /// Nothing here can be semantically wrong: every combination is a legitimate choice,
    /// and types and unknown keys are caught while parsing.
    pub fn validate(&self, _problems: &mut Vec<Problem>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    const BASE: &str = "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n";

    #[test]
    fn defaults_send_everything_without_prompt_text() {
        let policy = Policy::parse("p.yaml", BASE).unwrap();
        assert_eq!(policy.alerts, AlertsPolicy::default());
        assert_eq!(policy.alerts.min_severity, Severity::Info);
        assert!(!policy.alerts.include_prompt_text);
    }

    #[test]
    fn reads_min_severity_overrides_and_prompt_text() {
        let text = format!(
            "{BASE}alerts:\n  min_severity: warning\n  include_prompt_text: true\n  severity:\n    gate_inconclusive: high\n    rollback_skipped: warning\n"
        );
        let alerts = Policy::parse("p.yaml", &text).unwrap().alerts;
        assert_eq!(alerts.min_severity, Severity::Warning);
        assert!(alerts.include_prompt_text);
        assert_eq!(alerts.severity.gate_inconclusive, Some(Severity::High));
        assert_eq!(alerts.severity.rollback_skipped, Some(Severity::Warning));
        assert_eq!(alerts.severity.gate_fail, None);
    }

    #[test]
    fn unknown_severity_names_its_line_and_the_choices() {
        let text = format!("{BASE}alerts:\n  severity:\n    gate_fail: urgent\n");
        let err = Policy::parse("s3://b/policies/app.yaml", &text).unwrap_err();
        let problem = &err.problems[0];
        assert_eq!(problem.line, Some(7), "{err}");
        assert!(problem.message.contains("urgent"), "{err}");
        assert!(problem.message.contains("critical"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = format!("{BASE}alerts:\n  severity:\n    gate_failed: high\n");
        let err = Policy::parse("p.yaml", &text).unwrap_err();
        assert!(err.to_string().contains("gate_failed"), "{err}");
        let text = format!("{BASE}alerts:\n  minimum_severity: high\n");
        let err = Policy::parse("p.yaml", &text).unwrap_err();
        assert!(err.to_string().contains("minimum_severity"), "{err}");
    }
}
