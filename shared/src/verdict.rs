//! Verdicts: the outcome of a release's gate, and the record that explains it.
//!
//! Fail closed: anything not proven good is not [`Outcome::Pass`].
//!
//! [`Verdict`] is what check-gates writes, once, to `verdicts/<app>/<release>/verdict.json`
//! (snake_case JSON). Other parts of evalgate rely on its top-level `application`,
//! `release`, `outcome`, `decided_at` (`ledger::VerdictSummary`) and on `metrics.<name>`
//! carrying `mean`, `scored` and `unscored` (the CLI's JSON output). Fields may be added;
//! readers ignore unknown ones. `docs/gates.md` documents the format.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Distribution, Usage, WorstPrompt};
use crate::events::{GateVerdict, MetricSummary, PromptNote};
use crate::policy::gates::{ConfidenceMode, Direction};
use crate::stats::Interval;

/// Current verdict schema version.
pub const SCHEMA: u32 = 1;

/// A release's gate outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every gate was met with enough evidence.
    Pass,
    /// At least one gate was broken.
    Fail,
    /// Not enough evidence to decide (too few scored prompts, too many unscored ones, an
    /// interval straddling a bar).
    Inconclusive,
    /// The evaluation itself failed (a job failed or was stopped, results missing or unreadable).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Error => "error",
        }
    }

    /// Every outcome, for metrics and reports.
    pub const ALL: [Outcome; 4] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Inconclusive,
        Outcome::Error,
    ];
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one gate (or of a metric across its gates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Pass,
    Fail,
    Inconclusive,
    /// The metric is reported but no gate applies to it.
    NotGated,
}

impl GateStatus {
    /// Sort key: what needs attention first.
    pub fn rank(self) -> u8 {
        match self {
            GateStatus::Fail => 0,
            GateStatus::Inconclusive => 1,
            GateStatus::Pass => 2,
            GateStatus::NotGated => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GateStatus::Pass => "pass",
            GateStatus::Fail => "fail",
            GateStatus::Inconclusive => "inconclusive",
            GateStatus::NotGated => "not gated",
        }
    }

    /// The worse of two statuses (fail > inconclusive > pass > not gated).
    pub fn worst(self, other: GateStatus) -> GateStatus {
        if other.rank() < self.rank() {
            other
        } else {
            self
        }
    }
}

/// How thresholds were compared, and with which intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInfo {
    pub mode: ConfidenceMode,
    pub level: f64,
    /// Interval of means: `student_t` (Wilson when all scores are equal; see docs/gates.md).
    pub mean_method: String,
    /// Interval of pass rates: `wilson`.
    pub rate_method: String,
}

/// One evaluation job counted in the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutcome {
    pub job_arn: String,
    pub job_name: String,
    /// The uploaded dataset's key.
    pub dataset_key: String,
    pub dataset_id: String,
    pub shard: u32,
    pub shard_count: u32,
    /// Prompts submitted in the shard.
    pub prompts: u32,
    /// Bedrock's status: `Completed`, `Failed`, `Stopped`…
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_messages: Vec<String>,
    /// Result lines read (completed jobs).
    #[serde(default)]
    pub results: u64,
    /// `*_output.jsonl` objects read.
    #[serde(default)]
    pub output_files: u32,
    pub policy_hash: String,
}

/// The release a verdict was compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineInfo {
    pub release: String,
    /// `latest_pass` (the most recent release that passed) or `pinned` (the policy names it).
    pub selection: String,
    pub decided_at: DateTime<Utc>,
    pub verdict_uri: String,
    /// Whether per-prompt scores were available for regressed-prompt checks.
    pub prompt_scores: bool,
}

/// One gate of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateCheck {
    /// The policy key: `min_scored`, `max_unscored_fraction`, `min_mean`, `max_mean`,
    /// `min_pass_rate`, `max_mean_drop`, `max_regressed_prompts`.
    pub gate: String,
    /// `>=` or `<=`: what the value must satisfy.
    pub comparison: String,
    pub threshold: f64,
    /// The measured value; `None` when it could not be measured.
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    pub status: GateStatus,
    /// Why the gate did not pass (absent when it did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl GateCheck {
    /// `>= 0.8`
    pub fn threshold_text(&self) -> String {
        format!("{} {}", self.comparison, fmt_num(self.threshold))
    }
}

/// A metric compared with its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricBaseline {
    pub release: String,
    pub mean: Option<f64>,
    pub scored: u64,
    /// `mean - baseline mean`.
    pub delta: Option<f64>,
    /// Prompts scored in both releases (matched by prompt hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_prompts: Option<u64>,
    /// Matched prompts whose score worsened by more than the regression step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regressed_prompts: Option<u64>,
    /// The most regressed prompts: `(prompt hash, baseline score, score)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regressed: Vec<RegressedPrompt>,
}

/// A prompt that got worse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressedPrompt {
    pub prompt_hash: String,
    pub baseline_score: f64,
    pub score: f64,
}

/// One category of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryVerdict {
    pub prompts: u64,
    pub scored: u64,
    pub unscored: u64,
    pub mean: Option<f64>,
    pub pass_rate: Option<f64>,
}

/// One metric's part of a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricVerdict {
    pub direction: Direction,
    /// The worst of its gates; `not_gated` when the policy sets none.
    pub status: GateStatus,
    pub prompts: u64,
    pub scored: u64,
    pub unscored: u64,
    pub unscored_fraction: Option<f64>,
    pub mean: Option<f64>,
    pub std_dev: Option<f64>,
    pub interval: Option<Interval>,
    /// The score a prompt must reach to pass (`>=`, or `<=` when lower is better).
    pub pass_bar: f64,
    pub passing: u64,
    pub pass_rate: Option<f64>,
    pub pass_rate_interval: Option<Interval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<MetricBaseline>,
    #[serde(default)]
    pub gates: Vec<GateCheck>,
    #[serde(default)]
    pub categories: BTreeMap<String, CategoryVerdict>,
    #[serde(default)]
    pub worst_prompts: Vec<WorstPrompt>,
}

/// Every scored prompt of a critical category must meet a gated metric's bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriticalCheck {
    pub category: String,
    pub metric: String,
    pub prompts: u64,
    pub scored: u64,
    pub unscored: u64,
    /// Scored prompts that missed the bar.
    pub failing: u64,
    pub status: GateStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_prompts: Vec<WorstPrompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A cost or latency limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetCheck {
    /// `latency_ms` or `cost_per_query`.
    pub budget: String,
    /// `max_mean`, `max_p50` or `max_p95`.
    pub gate: String,
    pub threshold: f64,
    pub value: Option<f64>,
    /// Records that carried the value, of all metadata records.
    pub records_with_data: u64,
    pub records: u64,
    pub status: GateStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A release's verdict record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub schema: u32,
    pub application: String,
    pub release: String,
    pub outcome: Outcome,
    pub decided_at: DateTime<Utc>,
    /// Every reason the outcome is not a pass, most important first (empty for a pass).
    pub reasons: Vec<String>,
    /// Context that did not change the outcome (no baseline yet, policy changed since
    /// submission, categories pooled…).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Hash of the policy text the gates were taken from (`None` if it could not be read).
    pub policy_hash: Option<String>,
    pub policy_uri: String,
    #[serde(default)]
    pub confidence: Option<ConfidenceInfo>,
    pub jobs: Vec<JobOutcome>,
    pub job_arns: Vec<String>,
    /// Jobs of earlier uploads of a re-uploaded dataset, not counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded_jobs: Vec<String>,
    #[serde(default)]
    pub baseline: Option<BaselineInfo>,
    /// Judged prompts across all counted jobs.
    pub prompts: u64,
    pub metrics: BTreeMap<String, MetricVerdict>,
    #[serde(default)]
    pub critical_categories: Vec<CriticalCheck>,
    #[serde(default)]
    pub budgets: Vec<BudgetCheck>,
    #[serde(default)]
    pub usage: Option<Usage>,
    pub verdict_uri: String,
    pub report_uri: String,
    /// Per-prompt scores (`scores.jsonl`), the next release's regression baseline.
    #[serde(default)]
    pub scores_uri: Option<String>,
}

/// A number for people: at most 4 decimals, no trailing zeros.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let text = format!("{x:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// A fraction as a percentage: `0.125` → `12.5%`.
pub fn fmt_pct(x: f64) -> String {
    let text = format!("{:.1}", x * 100.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Event limits: EventBridge entries are at most 256 KB, and alerts are read by people.
const EVENT_REASONS: usize = 20;
const EVENT_WORST_PER_METRIC: usize = 3;
const EVENT_WORST: usize = 10;
const EVENT_EXPLANATION_CHARS: usize = 280;
const EVENT_PROMPT_CHARS: usize = 160;

impl Verdict {
    /// The logical identity of this verdict's event.
    pub fn event_key(&self) -> String {
        format!("verdict/{}/{}", self.application, self.release)
    }

    /// Metric names, what needs attention first (fail, inconclusive, pass, not gated),
    /// then by name.
    pub fn metrics_by_status(&self) -> Vec<(&String, &MetricVerdict)> {
        let mut metrics: Vec<_> = self.metrics.iter().collect();
        metrics.sort_by_key(|(name, m)| (m.status.rank(), name.as_str()));
        metrics
    }

    /// The `Gate Verdict` event: failing metrics first, explanations shortened, prompt text
    /// only when `include_prompt_text`.
    pub fn to_event(&self, include_prompt_text: bool) -> GateVerdict {
        let mut reasons: Vec<String> = self.reasons.iter().take(EVENT_REASONS).cloned().collect();
        if self.reasons.len() > EVENT_REASONS {
            reasons.push(format!(
                "… and {} more (see the report)",
                self.reasons.len() - EVENT_REASONS
            ));
        }
        let mut metrics = Vec::new();
        let mut worst_prompts = Vec::new();
        for (name, m) in self.metrics_by_status() {
            // The gate that explains the status best: the first one in that status.
            let primary = m.gates.iter().find(|g| g.status == m.status).or_else(|| {
                m.gates
                    .iter()
                    .find(|g| g.gate == "min_mean" || g.gate == "max_mean")
            });
            let baseline = m.baseline.as_ref();
            metrics.push(MetricSummary {
                metric: name.clone(),
                value: primary.map_or(m.mean, |g| g.value),
                threshold: primary.map(|g| format!("{} ({})", g.threshold_text(), g.gate)),
                baseline_value: baseline.and_then(|b| b.mean),
                delta: baseline.and_then(|b| b.delta),
                status: m.status,
                scored: m.scored,
                unscored: m.unscored,
                pass_rate: m.pass_rate,
            });
            if m.status == GateStatus::NotGated || m.status == GateStatus::Pass {
                continue;
            }
            for w in m.worst_prompts.iter().take(EVENT_WORST_PER_METRIC) {
                if worst_prompts.len() < EVENT_WORST {
                    worst_prompts.push(note(name, w, include_prompt_text));
                }
            }
        }
        for check in &self.critical_categories {
            for w in &check.failing_prompts {
                if worst_prompts.len() < EVENT_WORST
                    && !worst_prompts.iter().any(|n: &PromptNote| {
                        n.prompt_hash == w.prompt_hash && n.metric == check.metric
                    })
                {
                    worst_prompts.push(note(&check.metric, w, include_prompt_text));
                }
            }
        }
        GateVerdict {
            event_key: self.event_key(),
            application: self.application.clone(),
            release: self.release.clone(),
            outcome: self.outcome,
            reasons,
            metrics,
            worst_prompts,
            baseline_release: self.baseline.as_ref().map(|b| b.release.clone()),
            verdict_uri: self.verdict_uri.clone(),
            report_uri: self.report_uri.clone(),
            job_arns: self.job_arns.clone(),
        }
    }
}

fn note(metric: &str, w: &WorstPrompt, include_prompt_text: bool) -> PromptNote {
    PromptNote {
        metric: metric.to_owned(),
        prompt_hash: w.prompt_hash.clone(),
        score: Some(w.score),
        explanation: crate::aggregate::shorten(&w.explanation, EVENT_EXPLANATION_CHARS),
        category: w.category.clone(),
        prompt: if include_prompt_text {
            w.prompt
                .as_deref()
                .map(|p| crate::aggregate::shorten(p, EVENT_PROMPT_CHARS))
        } else {
            None
        },
    }
}

/// A distribution's value for a budget gate.
pub fn budget_value(distribution: &Distribution, gate: &str) -> Option<f64> {
    match gate {
        "max_mean" => Some(distribution.mean),
        "max_p50" => Some(distribution.p50),
        "max_p95" => Some(distribution.p95),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(fmt_num(0.8), "0.8");
        assert_eq!(fmt_num(0.71234), "0.7123");
        assert_eq!(fmt_num(2500.0), "2500");
        assert_eq!(fmt_num(-0.00001), "0");
        assert_eq!(fmt_pct(0.125), "12.5%");
        assert_eq!(fmt_pct(0.9), "90%");
    }

    #[test]
    fn statuses_order_by_attention() {
        use GateStatus::*;
        assert_eq!(Pass.worst(Fail), Fail);
        assert_eq!(Inconclusive.worst(Pass), Inconclusive);
        assert_eq!(NotGated.worst(Pass), Pass);
        assert_eq!(Fail.worst(Inconclusive), Fail);
    }
}
