//! The `gates` section: what a release must achieve to pass.
//!
//! ```yaml
//! gates:
//!   min_scored: 30                 # evidence every gated metric needs (default 10)
//!   max_unscored_fraction: 0.1     # share of prompts the judge may leave unscored (default 0.1)
//!   pass_bar: 0.5                  # score a prompt must reach to count as passing (default 0.5)
//!   confidence: { level: 0.95, mode: interval }   # mode: point (default) | interval
//!   metrics:
//!     Builtin.Correctness: { min_mean: 0.8, min_pass_rate: 0.9, pass_bar: 0.75, max_mean_drop: 0.05 }
//!     Builtin.Harmfulness: { max_mean: 0.05 }      # lower is better
//!     brand_voice: { direction: higher_is_better, min_mean: 0.7 }
//!   regression: { step: 0.25, max_regressed_prompts: 3 }   # baseline_release: v41 to pin
//!   critical_categories: [Safety]
//!   budgets:
//!     latency_ms: { max_p50: 800, max_p95: 2500 }
//!     cost_per_query: { max_mean: 0.002 }
//!     prices: { input_per_1k_tokens: 0.0008, output_per_1k_tokens: 0.0032 }
//! ```
//!
//! `docs/policy.md` documents every key; `docs/gates.md` how verdicts are decided.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Problem;

/// Built-in judge metrics of model evaluation, and whether a higher score is better: the one
/// table of built-in metrics (`evaluation::JUDGE_METRICS` and `evaluation::HIGHER_IS_WORSE`
/// are derived from it).
pub const BUILTIN_METRICS: &[(&str, Direction)] = &[
    ("Builtin.Correctness", Direction::HigherIsBetter),
    ("Builtin.Completeness", Direction::HigherIsBetter),
    ("Builtin.Faithfulness", Direction::HigherIsBetter),
    ("Builtin.Helpfulness", Direction::HigherIsBetter),
    ("Builtin.Coherence", Direction::HigherIsBetter),
    ("Builtin.Relevance", Direction::HigherIsBetter),
    ("Builtin.FollowingInstructions", Direction::HigherIsBetter),
    (
        "Builtin.ProfessionalStyleAndTone",
        Direction::HigherIsBetter,
    ),
    ("Builtin.Harmfulness", Direction::LowerIsBetter),
    ("Builtin.Stereotyping", Direction::LowerIsBetter),
    ("Builtin.Refusal", Direction::LowerIsBetter),
];

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

impl Direction {
    /// The built-in metric's direction, `None` for other names.
    pub fn of_builtin(metric: &str) -> Option<Direction> {
        BUILTIN_METRICS
            .iter()
            .find(|(name, _)| *name == metric)
            .map(|(_, d)| *d)
    }

    /// True when `score` meets `bar` in this direction (`>=` or `<=`).
    pub fn meets(self, score: f64, bar: f64) -> bool {
        match self {
            Direction::HigherIsBetter => score >= bar,
            Direction::LowerIsBetter => score <= bar,
        }
    }

    /// How much worse `new` is than `old` (positive = worse).
    pub fn worsening(self, old: f64, new: f64) -> f64 {
        match self {
            Direction::HigherIsBetter => old - new,
            Direction::LowerIsBetter => new - old,
        }
    }

    /// The comparison a passing value satisfies, for messages: `>=` or `<=`.
    pub fn comparison(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => ">=",
            Direction::LowerIsBetter => "<=",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "higher is better",
            Direction::LowerIsBetter => "lower is better",
        }
    }
}

/// How thresholds are compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceMode {
    /// Compare the point estimate (mean, pass rate) with the threshold.
    #[default]
    Point,
    /// Pass only if the whole interval clears the threshold, fail only if it lies entirely
    /// on the wrong side; otherwise inconclusive.
    Interval,
}

pub const DEFAULT_MIN_SCORED: u64 = 10;
pub const DEFAULT_MAX_UNSCORED_FRACTION: f64 = 0.1;
pub const DEFAULT_PASS_BAR: f64 = 0.5;
pub const DEFAULT_LEVEL: f64 = 0.95;
pub const DEFAULT_REGRESSION_STEP: f64 = 0.25;
pub const DEFAULT_WORST_PROMPTS: usize = 5;

fn default_level() -> f64 {
    DEFAULT_LEVEL
}

/// `gates.confidence`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfidencePolicy {
    /// Confidence level of every interval, e.g. 0.95.
    #[serde(default = "default_level")]
    pub level: f64,
    #[serde(default)]
    pub mode: ConfidenceMode,
}

impl Default for ConfidencePolicy {
    fn default() -> Self {
        ConfidencePolicy {
            level: DEFAULT_LEVEL,
            mode: ConfidenceMode::Point,
        }
    }
}

/// One metric's gates: `gates.metrics.<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricGates {
    /// Required for custom metrics; built-in metrics have a fixed direction.
    #[serde(default)]
    pub direction: Option<Spanned<Direction>>,
    /// Lowest acceptable mean (higher-is-better metrics).
    #[serde(default)]
    pub min_mean: Option<Spanned<f64>>,
    /// Highest acceptable mean (lower-is-better metrics).
    #[serde(default)]
    pub max_mean: Option<Spanned<f64>>,
    /// Lowest acceptable share of scored prompts that meet `pass_bar`.
    #[serde(default)]
    pub min_pass_rate: Option<Spanned<f64>>,
    /// The score a prompt must reach (`>=`, or `<=` when lower is better); default
    /// `gates.pass_bar`.
    #[serde(default)]
    pub pass_bar: Option<Spanned<f64>>,
    /// Largest acceptable worsening of the mean against the baseline.
    #[serde(default)]
    pub max_mean_drop: Option<Spanned<f64>>,
    /// Overrides `gates.regression.max_regressed_prompts` for this metric.
    #[serde(default)]
    pub max_regressed_prompts: Option<Spanned<u64>>,
    /// Overrides `gates.min_scored`.
    #[serde(default)]
    pub min_scored: Option<Spanned<u64>>,
    /// Overrides `gates.max_unscored_fraction`.
    #[serde(default)]
    pub max_unscored_fraction: Option<Spanned<f64>>,
}

/// `gates.regression`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressionPolicy {
    /// Compare with this release instead of the most recent passing one.
    #[serde(default)]
    pub baseline_release: Option<Spanned<String>>,
    /// A prompt regressed when its score worsened by more than this (default 0.25).
    #[serde(default)]
    pub step: Option<Spanned<f64>>,
    /// Most prompts that may regress, per gated metric (matched by prompt hash).
    #[serde(default)]
    pub max_regressed_prompts: Option<Spanned<u64>>,
}

/// A budget over per-record values (`gates.budgets.latency_ms`, `.cost_per_query`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default)]
    pub max_mean: Option<Spanned<f64>>,
    #[serde(default)]
    pub max_p50: Option<Spanned<f64>>,
    #[serde(default)]
    pub max_p95: Option<Spanned<f64>>,
}

impl Budget {
    /// `(gate name, limit)` of every limit set, in a fixed order.
    pub fn limits(&self) -> Vec<(&'static str, f64)> {
        [
            ("max_mean", &self.max_mean),
            ("max_p50", &self.max_p50),
            ("max_p95", &self.max_p95),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| (name, v.value)))
        .collect()
    }

    fn validate(&self, path: &str, problems: &mut Vec<Problem>) {
        for (name, value) in [
            ("max_mean", &self.max_mean),
            ("max_p50", &self.max_p50),
            ("max_p95", &self.max_p95),
        ] {
            if let Some(v) = value
                && !(v.value.is_finite() && v.value >= 0.0)
            {
                problems.push(Problem::spanned(
                    v,
                    format!("{path}.{name}"),
                    "must be a number >= 0",
                ));
            }
        }
    }
}

/// `gates.budgets.prices`: what one query's tokens cost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub input_per_1k_tokens: Spanned<f64>,
    pub output_per_1k_tokens: Spanned<f64>,
}

/// `gates.budgets`: cost and latency limits, from the datasets' per-record metadata.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// Over each record's `latencyMs`.
    #[serde(default)]
    pub latency_ms: Option<Budget>,
    /// Over each record's cost: `inputTokens`/`outputTokens` priced with `prices`, else the
    /// record's own `cost`.
    #[serde(default)]
    pub cost_per_query: Option<Budget>,
    #[serde(default)]
    pub prices: Option<Prices>,
}

/// The `gates` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatesPolicy {
    #[serde(default)]
    pub min_scored: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_unscored_fraction: Option<Spanned<f64>>,
    #[serde(default)]
    pub pass_bar: Option<Spanned<f64>>,
    #[serde(default)]
    pub confidence: ConfidencePolicy,
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricGates>,
    #[serde(default)]
    pub regression: RegressionPolicy,
    /// Categories in which every scored prompt must meet every gated metric's bar.
    #[serde(default)]
    pub critical_categories: Vec<Spanned<String>>,
    #[serde(default)]
    pub budgets: Budgets,
    /// Worst prompts kept per metric in the verdict and report (default 5, at most 50).
    #[serde(default)]
    pub worst_prompts: Option<Spanned<usize>>,
}

/// The effective gates of one metric, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedMetric {
    pub name: String,
    pub direction: Direction,
    pub pass_bar: f64,
    /// `min_mean` or `max_mean`, whichever applies to the direction.
    pub mean_threshold: Option<f64>,
    pub min_pass_rate: Option<f64>,
    pub max_mean_drop: Option<f64>,
    pub max_regressed_prompts: Option<u64>,
    pub min_scored: u64,
    pub max_unscored_fraction: f64,
}

impl ResolvedMetric {
    /// Whether any gate applies (evidence requirements only apply to gated metrics).
    pub fn is_gated(&self) -> bool {
        self.mean_threshold.is_some()
            || self.min_pass_rate.is_some()
            || self.max_mean_drop.is_some()
            || self.max_regressed_prompts.is_some()
    }
}

fn in_unit(v: f64) -> bool {
    v.is_finite() && (0.0..=1.0).contains(&v)
}

impl GatesPolicy {
    pub fn min_scored(&self) -> u64 {
        self.min_scored
            .as_ref()
            .map_or(DEFAULT_MIN_SCORED, |v| v.value)
    }

    pub fn max_unscored_fraction(&self) -> f64 {
        self.max_unscored_fraction
            .as_ref()
            .map_or(DEFAULT_MAX_UNSCORED_FRACTION, |v| v.value)
    }

    pub fn pass_bar(&self) -> f64 {
        self.pass_bar.as_ref().map_or(DEFAULT_PASS_BAR, |v| v.value)
    }

    pub fn regression_step(&self) -> f64 {
        self.regression
            .step
            .as_ref()
            .map_or(DEFAULT_REGRESSION_STEP, |v| v.value)
    }

    pub fn worst_prompts(&self) -> usize {
        self.worst_prompts
            .as_ref()
            .map_or(DEFAULT_WORST_PROMPTS, |v| v.value)
    }

    pub fn baseline_release(&self) -> Option<&str> {
        self.regression
            .baseline_release
            .as_ref()
            .map(|v| v.value.as_str())
    }

    pub fn critical_categories(&self) -> Vec<String> {
        self.critical_categories
            .iter()
            .map(|c| c.value.clone())
            .collect()
    }

    /// The direction of `metric`: built-in, declared, or (for undeclared custom metrics that
    /// are only reported) higher-is-better.
    pub fn direction(&self, metric: &str) -> Direction {
        Direction::of_builtin(metric)
            .or_else(|| {
                self.metrics
                    .get(metric)
                    .and_then(|g| g.direction.as_ref().map(|d| d.value))
            })
            .unwrap_or(Direction::HigherIsBetter)
    }

    /// The effective settings of `metric` (any name, gated or not).
    pub fn resolve(&self, metric: &str) -> ResolvedMetric {
        let gates = self.metrics.get(metric);
        let direction = self.direction(metric);
        let get = |f: fn(&MetricGates) -> &Option<Spanned<f64>>| {
            gates.and_then(|g| f(g).as_ref().map(|v| v.value))
        };
        let mean_threshold = match direction {
            Direction::HigherIsBetter => get(|g| &g.min_mean),
            Direction::LowerIsBetter => get(|g| &g.max_mean),
        };
        let min_pass_rate = get(|g| &g.min_pass_rate);
        let max_mean_drop = get(|g| &g.max_mean_drop);
        // The section-wide regressed-prompt limit applies to metrics that have a gate of
        // their own, not to metrics listed only to declare their direction.
        let has_own_gate =
            mean_threshold.is_some() || min_pass_rate.is_some() || max_mean_drop.is_some();
        let max_regressed_prompts = gates
            .and_then(|g| g.max_regressed_prompts.as_ref().map(|v| v.value))
            .or_else(|| {
                self.regression
                    .max_regressed_prompts
                    .as_ref()
                    .map(|v| v.value)
                    .filter(|_| has_own_gate)
            });
        ResolvedMetric {
            name: metric.to_owned(),
            direction,
            pass_bar: get(|g| &g.pass_bar).unwrap_or_else(|| self.pass_bar()),
            mean_threshold,
            min_pass_rate,
            max_mean_drop,
            max_regressed_prompts,
            min_scored: gates
                .and_then(|g| g.min_scored.as_ref().map(|v| v.value))
                .unwrap_or_else(|| self.min_scored()),
            max_unscored_fraction: get(|g| &g.max_unscored_fraction)
                .unwrap_or_else(|| self.max_unscored_fraction()),
        }
    }

    /// Every metric named under `gates.metrics`, resolved.
    pub fn resolved(&self) -> Vec<ResolvedMetric> {
        self.metrics.keys().map(|m| self.resolve(m)).collect()
    }

    /// Whether the section sets any gate at all: a gated metric or a cost or latency limit
    /// (critical categories need a gated metric). Without one, check-gates can never find a
    /// release good enough, and every verdict is `inconclusive`.
    pub fn sets_any_gate(&self) -> bool {
        self.resolved().iter().any(ResolvedMetric::is_gated) || self.has_budgets()
    }

    /// Whether any cost or latency limit is set.
    pub fn has_budgets(&self) -> bool {
        let set = |b: &Option<Budget>| b.as_ref().is_some_and(|b| !b.limits().is_empty());
        set(&self.budgets.latency_ms) || set(&self.budgets.cost_per_query)
    }

    pub fn validate(&self, policy: &super::Policy, problems: &mut Vec<Problem>) {
        let unit = |v: &Option<Spanned<f64>>, path: &str, problems: &mut Vec<Problem>| {
            if let Some(v) = v
                && !in_unit(v.value)
            {
                problems.push(Problem::spanned(v, path, "must be a number from 0 to 1"));
            }
        };
        unit(
            &self.max_unscored_fraction,
            "gates.max_unscored_fraction",
            problems,
        );
        unit(&self.pass_bar, "gates.pass_bar", problems);
        if let Some(v) = &self.min_scored
            && v.value == 0
        {
            problems.push(Problem::spanned(
                v,
                "gates.min_scored",
                "must be at least 1: a gate needs at least one scored prompt",
            ));
        }
        let level = self.confidence.level;
        if !(level.is_finite() && (0.5..1.0).contains(&level)) {
            problems.push(Problem::at(
                "gates.confidence.level",
                format!(
                    "{level} is not a confidence level: use a number from 0.5 to below 1, e.g. 0.95"
                ),
            ));
        }
        if let Some(v) = &self.worst_prompts
            && v.value > 50
        {
            problems.push(Problem::spanned(
                v,
                "gates.worst_prompts",
                "must be at most 50",
            ));
        }
        if let Some(v) = &self.regression.step
            && !(v.value.is_finite() && v.value >= 0.0)
        {
            problems.push(Problem::spanned(
                v,
                "gates.regression.step",
                "must be a number >= 0",
            ));
        }
        if let Some(v) = &self.regression.baseline_release
            && v.value.trim().is_empty()
        {
            problems.push(Problem::spanned(
                v,
                "gates.regression.baseline_release",
                "must name a release, or be removed to compare with the most recent passing release",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for category in &self.critical_categories {
            if category.value.trim().is_empty() {
                problems.push(Problem::spanned(
                    category,
                    "gates.critical_categories",
                    "category names must not be empty",
                ));
            } else if !seen.insert(category.value.as_str()) {
                problems.push(Problem::spanned(
                    category,
                    "gates.critical_categories",
                    format!("{:?} is listed twice", category.value),
                ));
            }
        }
        if !self.critical_categories.is_empty() && !self.resolved().iter().any(|m| m.is_gated()) {
            problems.push(Problem::at(
                "gates.critical_categories",
                "critical categories are checked against the bars of gated metrics, but no metric under gates.metrics has a gate",
            ));
        }
        for (name, gates) in &self.metrics {
            self.validate_metric(policy, name, gates, problems);
        }
        let budgets = &self.budgets;
        if let Some(b) = &budgets.latency_ms {
            b.validate("gates.budgets.latency_ms", problems);
        }
        if let Some(b) = &budgets.cost_per_query {
            b.validate("gates.budgets.cost_per_query", problems);
        }
        if let Some(prices) = &budgets.prices {
            for (name, v) in [
                ("input_per_1k_tokens", &prices.input_per_1k_tokens),
                ("output_per_1k_tokens", &prices.output_per_1k_tokens),
            ] {
                if !(v.value.is_finite() && v.value >= 0.0) {
                    problems.push(Problem::spanned(
                        v,
                        format!("gates.budgets.prices.{name}"),
                        "must be a price >= 0",
                    ));
                }
            }
        }
    }

    fn validate_metric(
        &self,
        policy: &super::Policy,
        name: &str,
        gates: &MetricGates,
        problems: &mut Vec<Problem>,
    ) {
        let path = format!("gates.metrics.{name}");
        let builtin = Direction::of_builtin(name);
        if name.starts_with("Builtin.") && builtin.is_none() {
            problems.push(Problem::at(
                &path,
                format!(
                    "{name} is not a built-in judge metric; the built-in ones are {}",
                    super::evaluation::JUDGE_METRICS.join(", ")
                ),
            ));
            return;
        }
        if !policy.evaluation.metric_names().iter().any(|m| m == name) {
            let add_to = if builtin.is_some() {
                "evaluation.metrics"
            } else {
                "evaluation.custom_metrics (with its instructions and rating scale)"
            };
            problems.push(Problem::at(
                &path,
                format!(
                    "{name} is gated but not evaluated: add it to {add_to} or remove its gates"
                ),
            ));
        }
        let direction = match (builtin, &gates.direction) {
            (Some(fixed), Some(declared)) if fixed != declared.value => {
                problems.push(Problem::spanned(
                    declared,
                    format!("{path}.direction"),
                    format!(
                        "{name} is a built-in metric for which {}; remove direction",
                        fixed.label()
                    ),
                ));
                fixed
            }
            (Some(fixed), _) => fixed,
            (None, Some(declared)) => declared.value,
            (None, None) => {
                problems.push(Problem::at(
                    &path,
                    "custom metrics must declare their direction: add `direction: higher_is_better` or `direction: lower_is_better`",
                ));
                Direction::HigherIsBetter
            }
        };
        // Built-in judge scores are normalised to [0, 1]; custom scales may differ.
        let check_value = |v: &Option<Spanned<f64>>, key: &str, problems: &mut Vec<Problem>| {
            if let Some(v) = v {
                let ok = if builtin.is_some() {
                    in_unit(v.value)
                } else {
                    v.value.is_finite()
                };
                if !ok {
                    problems.push(Problem::spanned(
                        v,
                        format!("{path}.{key}"),
                        if builtin.is_some() {
                            "must be a number from 0 to 1 (judge scores are normalised to 0-1)"
                        } else {
                            "must be a finite number"
                        },
                    ));
                }
            }
        };
        check_value(&gates.min_mean, "min_mean", problems);
        check_value(&gates.max_mean, "max_mean", problems);
        check_value(&gates.pass_bar, "pass_bar", problems);
        match direction {
            Direction::HigherIsBetter => {
                if let Some(v) = &gates.max_mean {
                    problems.push(Problem::spanned(
                        v,
                        format!("{path}.max_mean"),
                        format!("higher is better for {name}: use min_mean for its lowest acceptable mean"),
                    ));
                }
            }
            Direction::LowerIsBetter => {
                if let Some(v) = &gates.min_mean {
                    problems.push(Problem::spanned(
                        v,
                        format!("{path}.min_mean"),
                        format!("lower is better for {name}: use max_mean for its highest acceptable mean"),
                    ));
                }
            }
        }
        for (key, v) in [
            ("min_pass_rate", &gates.min_pass_rate),
            ("max_unscored_fraction", &gates.max_unscored_fraction),
        ] {
            if let Some(v) = v
                && !in_unit(v.value)
            {
                problems.push(Problem::spanned(
                    v,
                    format!("{path}.{key}"),
                    "must be a number from 0 to 1",
                ));
            }
        }
        if let Some(v) = &gates.max_mean_drop
            && !(v.value.is_finite() && v.value >= 0.0)
        {
            problems.push(Problem::spanned(
                v,
                format!("{path}.max_mean_drop"),
                "must be a number >= 0 (how much worse the mean may get than the baseline's)",
            ));
        }
        if let Some(v) = &gates.min_scored
            && v.value == 0
        {
            problems.push(Problem::spanned(
                v,
                format!("{path}.min_scored"),
                "must be at least 1",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::Policy;

    use super::*;

    const HEAD: &str = "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness, Builtin.Harmfulness]\n  custom_metrics:\n    - name: brand_voice\n      instructions: \"Does {{prediction}} follow our style guide?\"\n      rating_scale: [{ definition: On brand, value: 1 }, { definition: Off brand, value: 0 }]\n";

    fn parse(gates: &str) -> Result<Policy, crate::policy::PolicyError> {
        Policy::parse("p.yaml", &format!("{HEAD}{gates}"))
    }

    #[test]
    fn a_full_section_parses_and_resolves() {
        let policy = parse(
            "gates:
  min_scored: 30
  max_unscored_fraction: 0.2
  confidence: { level: 0.9, mode: interval }
  metrics:
    Builtin.Correctness: { min_mean: 0.8, min_pass_rate: 0.9, pass_bar: 0.75, max_mean_drop: 0.05 }
    Builtin.Harmfulness: { max_mean: 0.05, min_scored: 5 }
    brand_voice: { direction: lower_is_better, max_mean: 2.5, max_regressed_prompts: 1 }
  regression: { baseline_release: v41, step: 0.5, max_regressed_prompts: 3 }
  critical_categories: [Safety, Billing]
  budgets:
    latency_ms: { max_p50: 800, max_p95: 2500 }
    cost_per_query: { max_mean: 0.002 }
    prices: { input_per_1k_tokens: 0.0008, output_per_1k_tokens: 0.0032 }
  worst_prompts: 3
",
        )
        .unwrap();
        let g = &policy.gates;
        assert_eq!(g.confidence.mode, ConfidenceMode::Interval);
        assert_eq!(g.baseline_release(), Some("v41"));
        assert_eq!(g.critical_categories(), ["Safety", "Billing"]);
        assert_eq!(g.worst_prompts(), 3);
        assert!(g.has_budgets());
        let c = g.resolve("Builtin.Correctness");
        assert_eq!(c.direction, Direction::HigherIsBetter);
        assert_eq!(c.mean_threshold, Some(0.8));
        assert_eq!(c.pass_bar, 0.75);
        assert_eq!(
            c.max_regressed_prompts,
            Some(3),
            "inherits the section default"
        );
        assert_eq!((c.min_scored, c.max_unscored_fraction), (30, 0.2));
        let h = g.resolve("Builtin.Harmfulness");
        assert_eq!(h.direction, Direction::LowerIsBetter);
        assert_eq!((h.mean_threshold, h.min_scored), (Some(0.05), 5));
        let b = g.resolve("brand_voice");
        assert_eq!(b.direction, Direction::LowerIsBetter);
        assert_eq!(b.max_regressed_prompts, Some(1));
        // A metric that is only reported is not gated and gets no regression gate.
        let other = g.resolve("Builtin.Coherence");
        assert!(!other.is_gated());
        assert_eq!(other.pass_bar, DEFAULT_PASS_BAR);
    }

    #[test]
    fn any_gate_means_a_gated_metric_or_a_budget() {
        let sets = |gates: &str| parse(gates).unwrap().gates.sets_any_gate();
        assert!(!sets(""));
        assert!(
            !sets("gates:\n  metrics:\n    brand_voice: { direction: higher_is_better }\n"),
            "declaring a direction is not a gate"
        );
        assert!(!sets(
            "gates:\n  regression: { max_regressed_prompts: 1 }\n  budgets:\n    prices: { input_per_1k_tokens: 1, output_per_1k_tokens: 1 }\n"
        ));
        assert!(sets(
            "gates:\n  metrics:\n    Builtin.Harmfulness: { max_mean: 0.1 }\n"
        ));
        assert!(sets(
            "gates:\n  budgets:\n    latency_ms: { max_p95: 2000 }\n"
        ));
    }

    #[test]
    fn defaults_without_a_section() {
        let policy = parse("").unwrap();
        let g = &policy.gates;
        assert_eq!(g.min_scored(), DEFAULT_MIN_SCORED);
        assert_eq!(g.confidence.mode, ConfidenceMode::Point);
        assert_eq!(g.confidence.level, 0.95);
        assert!(g.metrics.is_empty());
        assert!(!g.has_budgets());
    }

    #[test]
    fn semantic_mistakes_are_located_and_explained() {
        for (gates, line, expected) in [
            (
                "gates:\n  metrics:\n    Builtin.Harmfulness: { min_mean: 0.1 }\n",
                Some(11),
                "lower is better for Builtin.Harmfulness: use max_mean",
            ),
            (
                "gates:\n  metrics:\n    Builtin.Correctness:\n      max_mean: 0.9\n",
                Some(12),
                "use min_mean",
            ),
            (
                "gates:\n  metrics:\n    Builtin.Correctness: { min_mean: 1.5 }\n",
                Some(11),
                "from 0 to 1",
            ),
            (
                "gates:\n  metrics:\n    brand_voice: { min_mean: 0.5 }\n",
                None,
                "custom metrics must declare their direction",
            ),
            (
                "gates:\n  metrics:\n    Builtin.Correctnes: { min_mean: 0.5 }\n",
                None,
                "not a built-in judge metric",
            ),
            (
                "gates:\n  metrics:\n    Builtin.Refusal: { max_mean: 0.5 }\n",
                None,
                "gated but not evaluated: add it to evaluation.metrics",
            ),
            (
                "gates:\n  metrics:\n    tone: { direction: higher_is_better, min_mean: 0.5 }\n",
                None,
                "tone is gated but not evaluated: add it to evaluation.custom_metrics",
            ),
            (
                "gates:\n  metrics:\n    Builtin.Harmfulness: { direction: higher_is_better, max_mean: 0.1 }\n",
                Some(11),
                "lower is better; remove direction",
            ),
            ("gates:\n  min_scored: 0\n", Some(10), "at least 1"),
            (
                "gates:\n  confidence: { level: 95 }\n",
                None,
                "not a confidence level",
            ),
            (
                "gates:\n  critical_categories: [a, a]\n  metrics:\n    Builtin.Correctness: { min_mean: 0.5 }\n",
                Some(10),
                "listed twice",
            ),
            (
                "gates:\n  critical_categories: [a]\n",
                None,
                "no metric under gates.metrics has a gate",
            ),
            (
                "gates:\n  budgets:\n    latency_ms: { max_p95: -1 }\n",
                Some(11),
                "must be a number >= 0",
            ),
        ] {
            let err = parse(gates).unwrap_err();
            let problem = err
                .problems
                .iter()
                .find(|p| p.message.contains(expected))
                .unwrap_or_else(|| panic!("{gates}: expected {expected:?} in {err}"));
            if line.is_some() {
                assert_eq!(problem.line, line, "{gates}: {err}");
            }
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err =
            parse("gates:\n  metrics:\n    Builtin.Correctness: { min_maen: 0.5 }\n").unwrap_err();
        assert!(err.to_string().contains("min_maen"), "{err}");
        let err = parse("gates:\n  confidence: { mode: bayesian }\n").unwrap_err();
        assert!(err.to_string().contains("bayesian"), "{err}");
    }

    #[test]
    fn directions_compare_and_measure_worsening() {
        let (up, down) = (Direction::HigherIsBetter, Direction::LowerIsBetter);
        assert!(up.meets(0.75, 0.75) && !up.meets(0.5, 0.75));
        assert!(down.meets(0.0, 0.5) && !down.meets(0.75, 0.5));
        assert_eq!(up.worsening(0.9, 0.6), 0.9 - 0.6);
        assert_eq!(down.worsening(0.1, 0.4), 0.4 - 0.1);
    }
}
