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
//! are [`AlertKind::default_severity`], documented in `docs/policy.md` (section `alerts`).

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

/// A kind of alert whose severity the policy can set: one per key of `alerts.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    GatePass,
    GateFail,
    GateInconclusive,
    GateError,
    DatasetRejected,
    EvaluationSubmitted,
    EvaluationDeferred,
    ReleasePromoted,
    RollbackExecuted,
    RollbackSkipped,
    /// Any evalgate event kind this version does not know.
    Other,
}

impl AlertKind {
    /// Every kind, in the order of the `alerts.severity` keys in `docs/policy.md`.
    pub const ALL: [AlertKind; 11] = [
        AlertKind::GatePass,
        AlertKind::GateFail,
        AlertKind::GateInconclusive,
        AlertKind::GateError,
        AlertKind::DatasetRejected,
        AlertKind::EvaluationSubmitted,
        AlertKind::EvaluationDeferred,
        AlertKind::ReleasePromoted,
        AlertKind::RollbackExecuted,
        AlertKind::RollbackSkipped,
        AlertKind::Other,
    ];

    /// The key under `alerts.severity`.
    pub fn key(self) -> &'static str {
        match self {
            AlertKind::GatePass => "gate_pass",
            AlertKind::GateFail => "gate_fail",
            AlertKind::GateInconclusive => "gate_inconclusive",
            AlertKind::GateError => "gate_error",
            AlertKind::DatasetRejected => "dataset_rejected",
            AlertKind::EvaluationSubmitted => "evaluation_submitted",
            AlertKind::EvaluationDeferred => "evaluation_deferred",
            AlertKind::ReleasePromoted => "release_promoted",
            AlertKind::RollbackExecuted => "rollback_executed",
            AlertKind::RollbackSkipped => "rollback_skipped",
            AlertKind::Other => "other",
        }
    }

    /// The event (and outcome) the kind stands for, in words.
    pub fn describe(self) -> &'static str {
        match self {
            AlertKind::GatePass => "Gate Verdict, outcome pass",
            AlertKind::GateFail => "Gate Verdict, outcome fail",
            AlertKind::GateInconclusive => "Gate Verdict, outcome inconclusive",
            AlertKind::GateError => "Gate Verdict, outcome error",
            AlertKind::DatasetRejected => "Dataset Rejected",
            AlertKind::EvaluationSubmitted => "Evaluation Submitted",
            AlertKind::EvaluationDeferred => "Evaluation Deferred",
            AlertKind::ReleasePromoted => "Release Promoted",
            AlertKind::RollbackExecuted => "Rollback Executed",
            AlertKind::RollbackSkipped => "Rollback Skipped",
            AlertKind::Other => "any other evalgate event kind",
        }
    }

    /// The severity when the policy does not set one (`docs/alerts.md`).
    pub fn default_severity(self) -> Severity {
        match self {
            AlertKind::GatePass
            | AlertKind::EvaluationSubmitted
            | AlertKind::EvaluationDeferred
            | AlertKind::ReleasePromoted => Severity::Info,
            AlertKind::GateInconclusive | AlertKind::DatasetRejected | AlertKind::Other => {
                Severity::Warning
            }
            AlertKind::GateFail | AlertKind::GateError => Severity::High,
            AlertKind::RollbackExecuted | AlertKind::RollbackSkipped => Severity::Critical,
        }
    }
}

impl SeverityOverrides {
    /// The override the policy sets for `kind`, if any.
    pub fn get(&self, kind: AlertKind) -> Option<Severity> {
        match kind {
            AlertKind::GatePass => self.gate_pass,
            AlertKind::GateFail => self.gate_fail,
            AlertKind::GateInconclusive => self.gate_inconclusive,
            AlertKind::GateError => self.gate_error,
            AlertKind::DatasetRejected => self.dataset_rejected,
            AlertKind::EvaluationSubmitted => self.evaluation_submitted,
            AlertKind::EvaluationDeferred => self.evaluation_deferred,
            AlertKind::ReleasePromoted => self.release_promoted,
            AlertKind::RollbackExecuted => self.rollback_executed,
            AlertKind::RollbackSkipped => self.rollback_skipped,
            AlertKind::Other => self.other,
        }
    }

    /// The severity alerts of `kind` get: the override, else the default.
    pub fn severity(&self, kind: AlertKind) -> Severity {
        self.get(kind).unwrap_or_else(|| kind.default_severity())
    }
}

impl AlertsPolicy {
    /// Nothing here can be semantically wrong: every combination is a legitimate choice,
    /// and types and unknown keys are caught while parsing.
    pub fn validate(&self, _problems: &mut Vec<Problem>) {}

    /// Whether alerts of `kind` are sent for this application (their severity is at least
    /// `min_severity`).
    pub fn sends(&self, kind: AlertKind) -> bool {
        self.severity.severity(kind) >= self.min_severity
    }
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
    fn kinds_cover_every_key_with_the_documented_defaults() {
        let text = format!(
            "{BASE}alerts:\n  min_severity: high\n  severity:\n{}",
            AlertKind::ALL
                .iter()
                .map(|k| format!("    {}: critical\n", k.key()))
                .collect::<String>()
        );
        let alerts = Policy::parse("p.yaml", &text).unwrap().alerts;
        for kind in AlertKind::ALL {
            assert_eq!(
                alerts.severity.get(kind),
                Some(Severity::Critical),
                "{kind:?}"
            );
            assert!(alerts.sends(kind), "{kind:?}");
        }
        let defaults = AlertsPolicy {
            min_severity: Severity::High,
            ..AlertsPolicy::default()
        };
        let sent: Vec<&str> = AlertKind::ALL
            .iter()
            .filter(|k| defaults.sends(**k))
            .map(|k| k.key())
            .collect();
        assert_eq!(
            sent,
            [
                "gate_fail",
                "gate_error",
                "rollback_executed",
                "rollback_skipped"
            ]
        );
        assert_eq!(
            AlertKind::GateInconclusive.default_severity(),
            Severity::Warning
        );
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
