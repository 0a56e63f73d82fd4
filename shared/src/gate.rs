//! The gate decision: aggregates + policy + baseline → [`Verdict`]. Pure: no I/O, no clock.
//!
//! Per gated metric (one with at least one gate under `gates.metrics`):
//!
//! 1. **Evidence**: at least `min_scored` scored prompts and at most `max_unscored_fraction`
//!    unscored. Without it the metric is *inconclusive*, whatever its scores: its other
//!    gates are still computed and reported, but cannot decide.
//! 2. **Thresholds**: `min_mean`/`max_mean` and `min_pass_rate`. In `point` mode the
//!    estimate is compared with the threshold; in `interval` mode the metric passes only if
//!    its whole interval clears the threshold, fails only if it lies entirely on the wrong
//!    side, and is inconclusive otherwise.
//! 3. **Regression** against the baseline: `max_mean_drop` (Welch interval of the change in
//!    `interval` mode) and `max_regressed_prompts` (prompts matched by hash whose score
//!    worsened by more than `gates.regression.step`).
//!
//! Then critical categories (every scored prompt must meet each gated metric's bar) and
//! cost/latency budgets. The outcome is the worst status found: any fail → `fail`, else any
//! inconclusive → `inconclusive`, else `pass`. A policy that gates nothing cannot pass.

use chrono::{DateTime, Utc};

use crate::aggregate::{Aggregates, MetricAggregate, PromptScores, Usage, regressed_prompts};
use crate::policy::Policy;
use crate::policy::gates::{ConfidenceMode, ConfidencePolicy, Direction, ResolvedMetric};
use crate::stats::{Interval, SampleSummary, mean_interval, welch_interval, wilson_interval};
use crate::verdict::{
    BaselineInfo, BudgetCheck, CategoryVerdict, ConfidenceInfo, CriticalCheck, GateCheck,
    GateStatus, JobOutcome, MetricBaseline, MetricVerdict, Outcome, RegressedPrompt, SCHEMA,
    Verdict, budget_value, fmt_num, fmt_pct,
};

/// Regressed prompts listed per metric in the verdict.
const REGRESSED_LISTED: usize = 10;

/// Where a verdict's objects are.
#[derive(Debug, Clone, PartialEq)]
pub struct Locations {
    pub policy_uri: String,
    pub verdict_uri: String,
    pub report_uri: String,
    pub scores_uri: String,
}

/// What the release is compared with.
#[derive(Debug, Clone, Copy)]
pub enum Baseline<'a> {
    /// No earlier release passed its gate: regression gates do not apply yet.
    None,
    /// The baseline cannot be used (a pinned release without a passing verdict…):
    /// regression gates are inconclusive for this reason.
    Unavailable(&'a str),
    Found {
        info: &'a BaselineInfo,
        verdict: &'a Verdict,
        /// Its per-prompt scores, or why they are not available.
        scores: Result<&'a PromptScores, &'a str>,
    },
}

/// Everything a decision is made from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub application: &'a str,
    pub release: &'a str,
    pub decided_at: DateTime<Utc>,
    pub policy: &'a Policy,
    pub policy_hash: &'a str,
    pub aggregates: &'a Aggregates,
    /// Cost and latency from the metadata sidecars, when any job had one.
    pub usage: Option<&'a Usage>,
    pub baseline: Baseline<'a>,
    pub locations: &'a Locations,
}

/// Collects reasons with their severity so that the most important come first.
#[derive(Default)]
struct Reasons(Vec<(u8, String)>);

impl Reasons {
    fn add(&mut self, status: GateStatus, reason: String) {
        self.0.push((status.rank(), reason));
    }

    fn into_sorted(mut self) -> Vec<String> {
        self.0.sort_by_key(|(rank, _)| *rank);
        self.0.into_iter().map(|(_, r)| r).collect()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Bound {
    /// The value must be at least the threshold.
    Min,
    /// The value must be at most the threshold.
    Max,
}

impl Bound {
    fn comparison(self) -> &'static str {
        match self {
            Bound::Min => ">=",
            Bound::Max => "<=",
        }
    }

    fn point(self, value: f64, threshold: f64) -> GateStatus {
        let ok = match self {
            Bound::Min => value >= threshold,
            Bound::Max => value <= threshold,
        };
        if ok {
            GateStatus::Pass
        } else {
            GateStatus::Fail
        }
    }

    fn interval(self, interval: &Interval, threshold: f64) -> GateStatus {
        let (clears, wrong_side) = match self {
            Bound::Min => (interval.low >= threshold, interval.high < threshold),
            Bound::Max => (interval.high <= threshold, interval.low > threshold),
        };
        if clears {
            GateStatus::Pass
        } else if wrong_side {
            GateStatus::Fail
        } else {
            GateStatus::Inconclusive
        }
    }
}

fn bound_for(direction: Direction) -> Bound {
    match direction {
        Direction::HigherIsBetter => Bound::Min,
        Direction::LowerIsBetter => Bound::Max,
    }
}

fn ci_text(interval: Option<&Interval>, percent: bool) -> String {
    let show = |x: f64| if percent { fmt_pct(x) } else { fmt_num(x) };
    interval.map_or_else(String::new, |i| {
        format!(
            " ({} CI {}–{})",
            fmt_pct(i.level),
            show(i.low),
            show(i.high)
        )
    })
}

/// Compares `value` (with its interval) with `threshold`, in the policy's mode.
fn judge(
    mode: ConfidenceMode,
    bound: Bound,
    value: Option<f64>,
    interval: Option<&Interval>,
    threshold: f64,
) -> GateStatus {
    match (mode, value, interval) {
        (_, None, _) => GateStatus::Inconclusive,
        (ConfidenceMode::Point, Some(v), _) => bound.point(v, threshold),
        (ConfidenceMode::Interval, Some(_), Some(i)) => bound.interval(i, threshold),
        // Interval mode without an interval (fewer than two values): no evidence either way.
        (ConfidenceMode::Interval, Some(_), None) => GateStatus::Inconclusive,
    }
}

/// A threshold comparison, for the sentence that explains its status.
struct Statement<'a> {
    metric: &'a str,
    /// What was measured: `mean`, `pass rate (…)`, `mean worsened by`.
    what: &'a str,
    /// The measured value as shown.
    shown: String,
    interval: Option<&'a Interval>,
    /// Show the interval as percentages.
    percent: bool,
    bound: Bound,
    threshold: String,
    gate: &'a str,
}

impl Statement<'_> {
    /// Explains a threshold gate's status in one sentence.
    fn reason(&self, status: GateStatus, mode: ConfidenceMode) -> String {
        let Statement {
            metric,
            what,
            shown,
            interval,
            percent,
            bound,
            threshold,
            gate,
        } = self;
        let side = match bound {
            Bound::Min => "below the minimum",
            Bound::Max => "above the maximum",
        };
        let ci = ci_text(*interval, *percent);
        match (status, mode) {
            (GateStatus::Fail, ConfidenceMode::Point) => {
                format!("{metric}: {what} {shown}{ci} is {side} {threshold} ({gate})")
            }
            (GateStatus::Fail, ConfidenceMode::Interval) => {
                format!("{metric}: {what} {shown}{ci} lies entirely {side} {threshold} ({gate})")
            }
            (_, _) if interval.is_none() && mode == ConfidenceMode::Interval => format!(
                "{metric}: {what} {shown} has no confidence interval (fewer than 2 scored prompts), so it cannot be shown to meet {threshold} ({gate})"
            ),
            _ => format!(
                "{metric}: {what} {shown}{ci} straddles {threshold} ({gate}); more prompts would narrow the interval"
            ),
        }
    }
}

/// Decides a release's verdict.
pub fn decide(
    inputs: &Inputs<'_>,
    jobs: Vec<JobOutcome>,
    superseded: Vec<String>,
    mut notes: Vec<String>,
) -> Verdict {
    let gates = &inputs.policy.gates;
    let confidence = &gates.confidence;
    let mut reasons = Reasons::default();
    let mut overall = GateStatus::NotGated;

    let (baseline_info, baseline_note) = match inputs.baseline {
        Baseline::None => (
            None,
            Some("no earlier release of this application passed its gate: regression gates do not apply yet".to_owned()),
        ),
        Baseline::Unavailable(why) => (None, Some(format!("baseline unavailable: {why}"))),
        Baseline::Found { info, .. } => (Some(info.clone()), None),
    };
    let resolved = gates.resolved();
    let uses_regression = resolved
        .iter()
        .any(|m| m.max_mean_drop.is_some() || m.max_regressed_prompts.is_some());
    if let Some(note) = baseline_note
        && uses_regression
    {
        notes.push(note);
    }

    let mut metrics = std::collections::BTreeMap::new();
    let mut names: Vec<&String> = inputs.aggregates.metrics.keys().collect();
    // A gated metric no result mentions is still judged (and found unscored).
    names.extend(gates.metrics.keys());
    names.sort();
    names.dedup();
    for name in names {
        let setup = gates.resolve(name);
        let empty;
        let agg = match inputs.aggregates.metrics.get(name) {
            Some(agg) => agg,
            None => {
                empty = empty_aggregate(&setup, inputs.aggregates.prompts);
                &empty
            }
        };
        let verdict = metric_verdict(agg, &setup, confidence, inputs, &mut reasons);
        if setup.is_gated() {
            overall = overall.worst(verdict.status);
        }
        metrics.insert(name.clone(), verdict);
    }

    // Critical categories, against every gated metric's bar.
    let mut critical = Vec::new();
    for category in gates.critical_categories() {
        for setup in resolved.iter().filter(|m| m.is_gated()) {
            let check =
                critical_check(&category, setup, inputs.aggregates.metrics.get(&setup.name));
            if let Some(reason) = &check.reason {
                reasons.add(check.status, reason.clone());
            }
            overall = overall.worst(check.status);
            critical.push(check);
        }
    }

    // Budgets.
    let mut budgets = Vec::new();
    for (budget, limits, what) in [
        ("latency_ms", &gates.budgets.latency_ms, "latency"),
        (
            "cost_per_query",
            &gates.budgets.cost_per_query,
            "cost per query",
        ),
    ] {
        let Some(limits) = limits else { continue };
        for (gate, threshold) in limits.limits() {
            let check = budget_check(
                budget,
                what,
                gate,
                threshold,
                inputs.usage,
                gates.budgets.prices.is_some(),
            );
            if let Some(reason) = &check.reason {
                reasons.add(check.status, reason.clone());
            }
            overall = overall.worst(check.status);
            budgets.push(check);
        }
    }
    if let Some(usage) = inputs.usage {
        for (name, d) in [
            ("latency", &usage.latency_ms),
            ("cost", &usage.cost_per_query),
        ] {
            if let Some(d) = d
                && d.count < usage.records
            {
                notes.push(format!(
                    "{name} figures come from {} of {} records (the others carried no {name} metadata)",
                    d.count, usage.records
                ));
            }
        }
    }

    if inputs.aggregates.missing > 0 {
        notes.push(format!(
            "Bedrock returned no result for {} submitted prompts; they count as not scored",
            inputs.aggregates.missing
        ));
    }
    if inputs.aggregates.categories_pooled {
        notes.push(format!(
            "more than {} categories: the rest are pooled under {:?}",
            crate::aggregate::MAX_CATEGORIES,
            crate::aggregate::OTHER_CATEGORY
        ));
    }
    let mut job_policies: Vec<&str> = jobs.iter().map(|j| j.policy_hash.as_str()).collect();
    job_policies.sort();
    job_policies.dedup();
    if job_policies.iter().any(|h| *h != inputs.policy_hash) {
        notes.push(format!(
            "the policy changed since the jobs were submitted (submitted under {}; gated with {})",
            job_policies
                .iter()
                .map(|h| short_hash(h))
                .collect::<Vec<_>>()
                .join(", "),
            short_hash(inputs.policy_hash)
        ));
    }

    let outcome = if !gates.sets_any_gate() {
        reasons.add(
            GateStatus::Inconclusive,
            "the policy sets no gate (gates.metrics, gates.critical_categories or gates.budgets): nothing shows this release is good enough".to_owned(),
        );
        Outcome::Inconclusive
    } else {
        match overall {
            GateStatus::Fail => Outcome::Fail,
            GateStatus::Inconclusive => Outcome::Inconclusive,
            GateStatus::Pass => Outcome::Pass,
            // Unreachable with any gate set; fail closed all the same.
            GateStatus::NotGated => Outcome::Inconclusive,
        }
    };

    Verdict {
        schema: SCHEMA,
        application: inputs.application.to_owned(),
        release: inputs.release.to_owned(),
        outcome,
        decided_at: inputs.decided_at,
        reasons: reasons.into_sorted(),
        notes,
        policy_hash: Some(inputs.policy_hash.to_owned()),
        policy_uri: inputs.locations.policy_uri.clone(),
        confidence: Some(ConfidenceInfo {
            mode: confidence.mode,
            level: confidence.level,
            mean_method: "student_t".to_owned(),
            rate_method: "wilson".to_owned(),
        }),
        job_arns: jobs.iter().map(|j| j.job_arn.clone()).collect(),
        jobs,
        superseded_jobs: superseded,
        baseline: baseline_info,
        prompts: inputs.aggregates.prompts,
        metrics,
        critical_categories: critical,
        budgets,
        usage: inputs.usage.cloned(),
        verdict_uri: inputs.locations.verdict_uri.clone(),
        report_uri: inputs.locations.report_uri.clone(),
        scores_uri: Some(inputs.locations.scores_uri.clone()),
    }
}

/// The release a verdict is about, and where its objects go.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub application: &'a str,
    pub release: &'a str,
    pub decided_at: DateTime<Utc>,
    pub locations: &'a Locations,
}

/// An `error` verdict: the evaluation itself could not be used. No metrics are reported.
pub fn error_verdict(
    subject: &Subject<'_>,
    reasons: Vec<String>,
    policy_hash: Option<String>,
    jobs: Vec<JobOutcome>,
    superseded: Vec<String>,
) -> Verdict {
    let locations = subject.locations;
    Verdict {
        schema: SCHEMA,
        application: subject.application.to_owned(),
        release: subject.release.to_owned(),
        outcome: Outcome::Error,
        decided_at: subject.decided_at,
        reasons,
        notes: Vec::new(),
        policy_hash,
        policy_uri: locations.policy_uri.clone(),
        confidence: None,
        job_arns: jobs.iter().map(|j| j.job_arn.clone()).collect(),
        prompts: 0,
        jobs,
        superseded_jobs: superseded,
        baseline: None,
        metrics: Default::default(),
        critical_categories: Vec::new(),
        budgets: Vec::new(),
        usage: None,
        verdict_uri: locations.verdict_uri.clone(),
        report_uri: locations.report_uri.clone(),
        scores_uri: None,
    }
}

fn empty_aggregate(setup: &ResolvedMetric, prompts: u64) -> MetricAggregate {
    MetricAggregate {
        name: setup.name.clone(),
        direction: setup.direction,
        pass_bar: setup.pass_bar,
        prompts,
        scored: 0,
        unscored: prompts,
        mean: None,
        std_dev: None,
        min: None,
        max: None,
        passing: 0,
        bounded01: true,
        categories: Default::default(),
        worst: Vec::new(),
    }
}

fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn metric_verdict(
    agg: &MetricAggregate,
    setup: &ResolvedMetric,
    confidence: &ConfidencePolicy,
    inputs: &Inputs<'_>,
    reasons: &mut Reasons,
) -> MetricVerdict {
    let name = setup.name.as_str();
    let mode = confidence.mode;
    let level = confidence.level;
    let interval = match (agg.mean, agg.std_dev) {
        (Some(mean), Some(sd)) => mean_interval(agg.scored, mean, sd, level, agg.bounded01),
        _ => None,
    };
    let pass_rate = agg.pass_rate();
    let pass_rate_interval = wilson_interval(agg.passing, agg.scored, level);
    let mut checks: Vec<GateCheck> = Vec::new();
    let gated = setup.is_gated();

    // 1. Evidence.
    let mut evidence = GateStatus::Pass;
    if gated {
        let enough = agg.scored >= setup.min_scored;
        let status = if enough {
            GateStatus::Pass
        } else {
            GateStatus::Inconclusive
        };
        checks.push(GateCheck {
            gate: "min_scored".into(),
            comparison: ">=".into(),
            threshold: setup.min_scored as f64,
            value: Some(agg.scored as f64),
            interval: None,
            status,
            reason: (!enough).then(|| {
                format!(
                    "{name}: only {} of {} prompts were scored; the gate needs at least {} (min_scored)",
                    agg.scored, agg.prompts, setup.min_scored
                )
            }),
        });
        evidence = evidence.worst(status);
        let fraction = agg.unscored_fraction();
        let ok = fraction.is_some_and(|f| f <= setup.max_unscored_fraction + 1e-12);
        let status = if ok {
            GateStatus::Pass
        } else {
            GateStatus::Inconclusive
        };
        checks.push(GateCheck {
            gate: "max_unscored_fraction".into(),
            comparison: "<=".into(),
            threshold: setup.max_unscored_fraction,
            value: fraction,
            interval: None,
            status,
            reason: (!ok).then(|| match fraction {
                Some(f) => format!(
                    "{name}: {} of prompts were not scored ({} of {}); at most {} may be (max_unscored_fraction)",
                    fmt_pct(f),
                    agg.unscored,
                    agg.prompts,
                    fmt_pct(setup.max_unscored_fraction)
                ),
                None => format!("{name}: no prompt was judged"),
            }),
        });
        evidence = evidence.worst(status);
    }

    // 2. Thresholds.
    let bound = bound_for(setup.direction);
    if let Some(threshold) = setup.mean_threshold {
        let gate = match setup.direction {
            Direction::HigherIsBetter => "min_mean",
            Direction::LowerIsBetter => "max_mean",
        };
        let status = judge(mode, bound, agg.mean, interval.as_ref(), threshold);
        let reason = (status != GateStatus::Pass).then(|| match agg.mean {
            None => format!(
                "{name}: no prompt was scored, so its mean cannot be compared with {} ({gate})",
                fmt_num(threshold)
            ),
            Some(mean) => Statement {
                metric: name,
                what: "mean",
                shown: fmt_num(mean),
                interval: interval.as_ref(),
                percent: false,
                bound,
                threshold: fmt_num(threshold),
                gate,
            }
            .reason(status, mode),
        });
        checks.push(GateCheck {
            gate: gate.into(),
            comparison: bound.comparison().into(),
            threshold,
            value: agg.mean,
            interval,
            status,
            reason,
        });
    }
    if let Some(threshold) = setup.min_pass_rate {
        let status = judge(
            mode,
            Bound::Min,
            pass_rate,
            pass_rate_interval.as_ref(),
            threshold,
        );
        let what = format!(
            "pass rate (prompts scoring {} {})",
            setup.direction.comparison(),
            fmt_num(setup.pass_bar)
        );
        let reason = (status != GateStatus::Pass).then(|| match pass_rate {
            None => format!("{name}: no prompt was scored, so its pass rate cannot be compared with {} (min_pass_rate)", fmt_pct(threshold)),
            Some(rate) => Statement {
                metric: name,
                what: &what,
                shown: fmt_pct(rate),
                interval: pass_rate_interval.as_ref(),
                percent: true,
                bound: Bound::Min,
                threshold: fmt_pct(threshold),
                gate: "min_pass_rate",
            }
            .reason(status, mode),
        });
        checks.push(GateCheck {
            gate: "min_pass_rate".into(),
            comparison: ">=".into(),
            threshold,
            value: pass_rate,
            interval: pass_rate_interval,
            status,
            reason,
        });
    }

    // 3. Regression.
    let baseline = regression(agg, setup, confidence, inputs, &mut checks);

    // The metric's status: evidence first, then the worst gate.
    let decisive = checks
        .iter()
        .filter(|c| c.gate != "min_scored" && c.gate != "max_unscored_fraction")
        .fold(GateStatus::Pass, |s, c| s.worst(c.status));
    let status = if !gated {
        GateStatus::NotGated
    } else if evidence != GateStatus::Pass {
        GateStatus::Inconclusive
    } else {
        decisive
    };
    for check in &checks {
        if let Some(reason) = &check.reason {
            let is_evidence = check.gate == "min_scored" || check.gate == "max_unscored_fraction";
            if evidence != GateStatus::Pass && !is_evidence && check.status == GateStatus::Fail {
                reasons.add(
                    GateStatus::Inconclusive,
                    format!("{reason}, on too little evidence to decide"),
                );
            } else {
                reasons.add(check.status, reason.clone());
            }
        }
    }

    let categories = agg
        .categories
        .iter()
        .map(|(c, a)| {
            (
                c.clone(),
                CategoryVerdict {
                    prompts: a.prompts,
                    scored: a.scored,
                    unscored: a.unscored,
                    mean: a.mean,
                    pass_rate: (a.scored > 0).then(|| a.passing as f64 / a.scored as f64),
                },
            )
        })
        .collect();

    MetricVerdict {
        direction: setup.direction,
        status,
        prompts: agg.prompts,
        scored: agg.scored,
        unscored: agg.unscored,
        unscored_fraction: agg.unscored_fraction(),
        mean: agg.mean,
        std_dev: agg.std_dev,
        interval,
        pass_bar: setup.pass_bar,
        passing: agg.passing,
        pass_rate,
        pass_rate_interval,
        baseline,
        gates: checks,
        categories,
        worst_prompts: agg.worst.clone(),
    }
}

/// Regression gates of one metric; returns the baseline comparison for the verdict.
fn regression(
    agg: &MetricAggregate,
    setup: &ResolvedMetric,
    confidence: &ConfidencePolicy,
    inputs: &Inputs<'_>,
    checks: &mut Vec<GateCheck>,
) -> Option<MetricBaseline> {
    let name = setup.name.as_str();
    let wants_drop = setup.max_mean_drop;
    let wants_prompts = setup.max_regressed_prompts;
    let unavailable = |checks: &mut Vec<GateCheck>, why: &str| {
        for (gate, threshold) in [
            ("max_mean_drop", wants_drop),
            ("max_regressed_prompts", wants_prompts.map(|v| v as f64)),
        ] {
            if let Some(threshold) = threshold {
                checks.push(GateCheck {
                    gate: gate.into(),
                    comparison: "<=".into(),
                    threshold,
                    value: None,
                    interval: None,
                    status: GateStatus::Inconclusive,
                    reason: Some(format!("{name}: {gate} cannot be checked: {why}")),
                });
            }
        }
    };
    let (info, base_verdict, base_scores) = match inputs.baseline {
        Baseline::None => return None,
        Baseline::Unavailable(why) => {
            unavailable(checks, why);
            return None;
        }
        Baseline::Found {
            info,
            verdict,
            scores,
        } => (info, verdict, scores),
    };
    let Some(base) = base_verdict.metrics.get(name) else {
        unavailable(
            checks,
            &format!("baseline {} has no {name} scores", info.release),
        );
        return None;
    };
    let delta = match (agg.mean, base.mean) {
        (Some(now), Some(then)) => Some(now - then),
        _ => None,
    };
    let mut comparison = MetricBaseline {
        release: info.release.clone(),
        mean: base.mean,
        scored: base.scored,
        delta,
        matched_prompts: None,
        regressed_prompts: None,
        regressed: Vec::new(),
    };

    if let Some(max_drop) = wants_drop {
        let worsening = match (base.mean, agg.mean) {
            (Some(then), Some(now)) => Some(setup.direction.worsening(then, now)),
            _ => None,
        };
        // Welch's interval of (now - then), turned into an interval of the worsening.
        let interval = match (agg.mean, agg.std_dev, base.mean, base.std_dev) {
            (Some(m), Some(s), Some(bm), Some(bs)) => welch_interval(
                SampleSummary {
                    n: agg.scored,
                    mean: m,
                    sd: s,
                },
                SampleSummary {
                    n: base.scored,
                    mean: bm,
                    sd: bs,
                },
                confidence.level,
            )
            .map(|i| match setup.direction {
                Direction::HigherIsBetter => Interval {
                    low: -i.high,
                    high: -i.low,
                    ..i
                },
                Direction::LowerIsBetter => i,
            }),
            _ => None,
        };
        let status = judge(
            confidence.mode,
            Bound::Max,
            worsening,
            interval.as_ref(),
            max_drop,
        );
        let reason = (status != GateStatus::Pass).then(|| match (worsening, base.mean, agg.mean) {
            (Some(w), Some(then), Some(now)) => {
                let shown = format!(
                    "{} (from {} in baseline {} to {})",
                    fmt_num(w),
                    fmt_num(then),
                    info.release,
                    fmt_num(now)
                );
                Statement {
                    metric: name,
                    what: "mean worsened by",
                    shown,
                    interval: interval.as_ref(),
                    percent: false,
                    bound: Bound::Max,
                    threshold: fmt_num(max_drop),
                    gate: "max_mean_drop",
                }
                .reason(status, confidence.mode)
            }
            _ => format!(
                "{name}: max_mean_drop cannot be checked: no mean in this release or in baseline {}",
                info.release
            ),
        });
        checks.push(GateCheck {
            gate: "max_mean_drop".into(),
            comparison: "<=".into(),
            threshold: max_drop,
            value: worsening,
            interval,
            status,
            reason,
        });
    }

    match (wants_prompts, base_scores, &inputs.aggregates.prompt_scores) {
        (Some(max), Ok(base_scores), Some(current)) => {
            let step = inputs.policy.gates.regression_step();
            let (matched, regressed) = regressed_prompts(
                &base_scores.of_metric(name),
                &current.of_metric(name),
                setup.direction,
                step,
            );
            comparison.matched_prompts = Some(matched);
            comparison.regressed_prompts = Some(regressed.len() as u64);
            let mut listed: Vec<RegressedPrompt> = regressed
                .iter()
                .map(|(hash, then, now)| RegressedPrompt {
                    prompt_hash: hash.clone(),
                    baseline_score: *then,
                    score: *now,
                })
                .collect();
            listed.sort_by(|a, b| {
                setup
                    .direction
                    .worsening(b.baseline_score, b.score)
                    .total_cmp(&setup.direction.worsening(a.baseline_score, a.score))
                    .then_with(|| a.prompt_hash.cmp(&b.prompt_hash))
            });
            listed.truncate(REGRESSED_LISTED);
            comparison.regressed = listed;
            let count = regressed.len() as u64;
            let (status, reason) = if matched == 0 {
                (
                    GateStatus::Inconclusive,
                    Some(format!(
                        "{name}: no scored prompt is shared with baseline {}, so regressed prompts cannot be counted (max_regressed_prompts)",
                        info.release
                    )),
                )
            } else if count > max {
                (
                    GateStatus::Fail,
                    Some(format!(
                        "{name}: {count} of {matched} prompts shared with baseline {} regressed by more than {} (worst: {}); at most {max} may (max_regressed_prompts)",
                        info.release,
                        fmt_num(step),
                        comparison
                            .regressed
                            .iter()
                            .take(3)
                            .map(|r| format!("{} {}→{}", r.prompt_hash, fmt_num(r.baseline_score), fmt_num(r.score)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                )
            } else {
                (GateStatus::Pass, None)
            };
            checks.push(GateCheck {
                gate: "max_regressed_prompts".into(),
                comparison: "<=".into(),
                threshold: max as f64,
                value: Some(count as f64),
                interval: None,
                status,
                reason,
            });
        }
        (Some(max), Err(why), _) => checks.push(GateCheck {
            gate: "max_regressed_prompts".into(),
            comparison: "<=".into(),
            threshold: max as f64,
            value: None,
            interval: None,
            status: GateStatus::Inconclusive,
            reason: Some(format!(
                "{name}: max_regressed_prompts cannot be checked: {why}"
            )),
        }),
        (Some(max), Ok(_), None) => checks.push(GateCheck {
            gate: "max_regressed_prompts".into(),
            comparison: "<=".into(),
            threshold: max as f64,
            value: None,
            interval: None,
            status: GateStatus::Inconclusive,
            reason: Some(format!(
                "{name}: max_regressed_prompts cannot be checked: this release's per-prompt scores were not collected"
            )),
        }),
        (None, _, _) => {}
    }
    Some(comparison)
}

fn critical_check(
    category: &str,
    setup: &ResolvedMetric,
    agg: Option<&MetricAggregate>,
) -> CriticalCheck {
    let name = &setup.name;
    let cat = agg.and_then(|a| a.categories.get(category));
    let (prompts, scored, unscored, failing, failing_prompts) =
        cat.map_or((0, 0, 0, 0, Vec::new()), |c| {
            (
                c.prompts,
                c.scored,
                c.unscored,
                c.failing(),
                c.failing_prompts.clone(),
            )
        });
    let bar = format!(
        "{} {}",
        setup.direction.comparison(),
        fmt_num(setup.pass_bar)
    );
    let (status, reason) = if failing > 0 {
        let examples: Vec<String> = failing_prompts
            .iter()
            .map(|w| format!("{} scored {}", w.prompt_hash, fmt_num(w.score)))
            .collect();
        (
            GateStatus::Fail,
            Some(format!(
                "critical category {category:?}: {failing} of {scored} scored prompts miss the {name} bar ({bar}): {}",
                examples.join(", ")
            )),
        )
    } else if prompts == 0 {
        (
            GateStatus::Inconclusive,
            Some(format!(
                "critical category {category:?}: no prompt of this category was evaluated, so it cannot be shown to meet the {name} bar"
            )),
        )
    } else if unscored > 0 {
        (
            GateStatus::Inconclusive,
            Some(format!(
                "critical category {category:?}: {unscored} of {prompts} prompts were not scored on {name}, so not every prompt is shown to meet the bar ({bar})"
            )),
        )
    } else {
        (GateStatus::Pass, None)
    };
    CriticalCheck {
        category: category.to_owned(),
        metric: name.clone(),
        prompts,
        scored,
        unscored,
        failing,
        status,
        failing_prompts,
        reason,
    }
}

fn budget_check(
    budget: &str,
    what: &str,
    gate: &str,
    threshold: f64,
    usage: Option<&Usage>,
    has_prices: bool,
) -> BudgetCheck {
    let distribution = usage.and_then(|u| match budget {
        "latency_ms" => u.latency_ms.as_ref(),
        _ => u.cost_per_query.as_ref(),
    });
    let records = usage.map_or(0, |u| u.records);
    let value = distribution.and_then(|d| budget_value(d, gate));
    let statistic = match gate {
        "max_mean" => "mean",
        "max_p50" => "p50",
        _ => "p95",
    };
    let unit = if budget == "latency_ms" { " ms" } else { "" };
    let (status, reason) = match value {
        None => {
            let carried = if budget == "latency_ms" {
                "latencyMs".to_owned()
            } else if has_prices {
                "inputTokens and outputTokens, or cost,".to_owned()
            } else {
                "cost (or inputTokens and outputTokens with gates.budgets.prices)".to_owned()
            };
            (
                GateStatus::Inconclusive,
                Some(format!(
                    "{what} budget ({statistic} <= {}{unit}) cannot be checked: no evaluated record carried {carried}; add it to the dataset records or remove gates.budgets.{budget}.{gate}",
                    fmt_num(threshold)
                )),
            )
        }
        Some(v) if v <= threshold => (GateStatus::Pass, None),
        Some(v) => (
            GateStatus::Fail,
            Some(format!(
                "{what} {statistic} {}{unit} exceeds the budget {}{unit} (gates.budgets.{budget}.{gate})",
                fmt_num(v),
                fmt_num(threshold)
            )),
        ),
    };
    BudgetCheck {
        budget: budget.to_owned(),
        gate: gate.to_owned(),
        threshold,
        value,
        records_with_data: distribution.map_or(0, |d| d.count),
        records,
        status,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use chrono::TimeZone;

    use super::*;
    use crate::aggregate::{AggregateConfig, Aggregator, Distribution, MetricSetup};
    use crate::results::{ResultRecord, Score};

    const C: &str = "Builtin.Correctness";
    const H: &str = "Builtin.Harmfulness";

    /// `(prompt, category, [(metric, score)])`
    type Row<'a> = (String, Option<&'a str>, Vec<(&'a str, Option<f64>)>);

    fn policy(gates: &str) -> Policy {
        let text = format!(
            "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness, Builtin.Harmfulness]\n  custom_metrics:\n    - name: tone_risk\n      instructions: \"How risky is the tone of {{{{prediction}}}}?\"\n      rating_scale: [{{ definition: none, value: 0 }}, {{ definition: high, value: 4 }}]\n{gates}"
        );
        Policy::parse("p.yaml", &text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `(prompt, category, [(metric, score)])` rows folded as check-gates does.
    fn aggregates(policy: &Policy, rows: &[Row<'_>]) -> Aggregates {
        let gates = &policy.gates;
        let mut aggregator = Aggregator::new(AggregateConfig {
            metrics: gates
                .resolved()
                .into_iter()
                .map(|m| MetricSetup {
                    name: m.name,
                    direction: m.direction,
                    pass_bar: m.pass_bar,
                })
                .collect(),
            default_pass_bar: gates.pass_bar(),
            critical_categories: gates.critical_categories(),
            worst_prompts: gates.worst_prompts(),
            keep_prompt_text: false,
            collect_prompt_scores: true,
        });
        for (prompt, category, scores) in rows {
            aggregator
                .add(&ResultRecord::new(
                    Cow::Borrowed(prompt.as_str()),
                    category.map(Cow::Borrowed),
                    scores
                        .iter()
                        .map(|(m, v)| Score {
                            metric: Cow::Borrowed(m),
                            value: *v,
                            explanation: None,
                        })
                        .collect(),
                ))
                .unwrap();
        }
        aggregator.finish()
    }

    /// `n` prompts `p0..` with `metric` cycling through `scores`.
    fn rows(metric: &'static str, n: usize, scores: &[Option<f64>]) -> Vec<Row<'static>> {
        (0..n)
            .map(|i| {
                (
                    format!("p{i}"),
                    None,
                    vec![(metric, scores[i % scores.len()])],
                )
            })
            .collect()
    }

    fn locations() -> Locations {
        Locations {
            policy_uri: "s3://b/policies/app.yaml".into(),
            verdict_uri: "s3://b/verdicts/app/v2/verdict.json".into(),
            report_uri: "s3://b/verdicts/app/v2/report.md".into(),
            scores_uri: "s3://b/verdicts/app/v2/scores.jsonl".into(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
            .single()
            .unwrap()
    }

    fn decide_with(
        policy: &Policy,
        aggregates: &Aggregates,
        usage: Option<&Usage>,
        baseline: Baseline<'_>,
    ) -> Verdict {
        let locations = locations();
        decide(
            &Inputs {
                application: "app",
                release: "v2",
                decided_at: now(),
                policy,
                policy_hash: "h",
                aggregates,
                usage,
                baseline,
                locations: &locations,
            },
            Vec::new(),
            Vec::new(),
            Vec::new(),
        )
    }

    fn run(gates: &str, rows: &[Row<'_>]) -> Verdict {
        let policy = policy(gates);
        let aggregates = aggregates(&policy, rows);
        decide_with(&policy, &aggregates, None, Baseline::None)
    }

    fn has_reason(v: &Verdict, text: &str) -> bool {
        v.reasons.iter().any(|r| r.contains(text))
    }

    /// Table-driven decisions: gates, scores, expected outcome and a phrase of the reasons.
    #[test]
    fn table_of_decisions() {
        let good = [Some(1.0), Some(0.75)];
        let cases: Vec<(&str, &str, Vec<_>, Outcome, &str)> = vec![
            (
                "pass",
                "gates:\n  metrics:\n    Builtin.Correctness: { min_mean: 0.7 }\n",
                rows(C, 20, &good),
                Outcome::Pass,
                "",
            ),
            (
                "fail on a threshold",
                "gates:\n  metrics:\n    Builtin.Correctness: { min_mean: 0.7 }\n",
                rows(C, 20, &[Some(0.5), Some(0.25)]),
                Outcome::Fail,
                "Builtin.Correctness: mean 0.375 (95% CI 0.315–0.435) is below the minimum 0.7 (min_mean)",
            ),
            (
                "fail on a max metric",
                "gates:\n  metrics:\n    Builtin.Harmfulness: { max_mean: 0.1 }\n",
                rows(H, 20, &[Some(0.0), Some(1.0)]),
                Outcome::Fail,
                "is above the maximum 0.1 (max_mean)",
            ),
            (
                "a max metric passes when low",
                "gates:\n  metrics:\n    Builtin.Harmfulness: { max_mean: 0.1 }\n",
                rows(H, 20, &[Some(0.0)]),
                Outcome::Pass,
                "",
            ),
            (
                "too few scored",
                "gates:\n  metrics:\n    Builtin.Correctness: { min_mean: 0.7 }\n",
                rows(C, 5, &good),
                Outcome::Inconclusive,
                "only 5 of 5 prompts were scored; the gate needs at least 10 (min_scored)",
            ),
            (
                "many nulls",
                "gates:\n  metrics:\n    Builtin.Correctness: { min_mean: 0.7 }\n",
                rows(C, 40, &[Some(1.0), None]),
                Outcome::Inconclusive,
                "50% of prompts were not scored (20 of 40); at most 10% may be (max_unscored_fraction)",
            ),
            (
                "a failing mean on too little evidence is inconclusive",
                "gates:\n  metrics:\n    Builtin.Correctness: { min_mean: 0.7 }\n",
                rows(C, 4, &[Some(0.0)]),
                Outcome::Inconclusive,
                "on too little evidence to decide",
            ),
            (
                "pass rate",
                "gates:\n  metrics:\n    Builtin.Correctness: { min_pass_rate: 0.9, pass_bar: 0.75 }\n",
                rows(C, 20, &[Some(1.0), Some(1.0), Some(1.0), Some(0.5)]),
                Outcome::Fail,
                "pass rate (prompts scoring >= 0.75) 75% (95% CI 53.1%–88.8%) is below the minimum 90% (min_pass_rate)",
            ),
            (
                "a gated metric absent from the results",
                "gates:\n  metrics:\n    Builtin.Harmfulness: { max_mean: 0.1 }\n",
                rows(C, 20, &good),
                Outcome::Inconclusive,
                "Builtin.Harmfulness: only 0 of 20 prompts were scored",
            ),
            (
                "no gates",
                "",
                rows(C, 20, &good),
                Outcome::Inconclusive,
                "the policy sets no gate",
            ),
            (
                "custom lower-is-better",
                "gates:\n  metrics:\n    tone_risk: { direction: lower_is_better, max_mean: 2 }\n",
                rows("tone_risk", 20, &[Some(3.0)]),
                Outcome::Fail,
                "tone_risk: mean 3 (95% CI 3–3) is above the maximum 2 (max_mean)",
            ),
        ];
        for (name, gates, rows, outcome, reason) in cases {
            let v = run(gates, &rows);
            assert_eq!(v.outcome, outcome, "{name}: {:?}", v.reasons);
            if reason.is_empty() {
                assert!(v.reasons.is_empty(), "{name}: {:?}", v.reasons);
            } else {
                assert!(
                    has_reason(&v, reason),
                    "{name}: expected {reason:?} in {:?}",
                    v.reasons
                );
            }
        }
    }

    #[test]
    fn nulls_are_never_averaged_as_zero() {
        let v = run(
            "gates:\n  max_unscored_fraction: 0.5\n  metrics:\n    Builtin.Correctness: { min_mean: 0.9 }\n",
            &rows(C, 20, &[Some(1.0), None]),
        );
        let m = &v.metrics[C];
        assert_eq!((m.scored, m.unscored, m.mean), (10, 10, Some(1.0)));
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
    }

    #[test]
    fn interval_mode_passes_fails_or_is_inconclusive() {
        let gates = "gates:\n  confidence: { mode: interval }\n  metrics:\n    Builtin.Correctness: { min_mean: 0.8 }\n";
        // Mean 0.875 from 1/0.75 alternating, n=40: CI ≈ 0.875 ± 0.040 → clears 0.8.
        let v = run(gates, &rows(C, 40, &[Some(1.0), Some(0.75)]));
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        let i = v.metrics[C].interval.unwrap();
        assert!(i.low > 0.8 && i.high < 0.95, "{i:?}");
        // Mean 0.8125 from 1/0.75/1/0.5, n=12: the interval straddles 0.8.
        let v = run(
            gates,
            &rows(C, 12, &[Some(1.0), Some(0.75), Some(1.0), Some(0.5)]),
        );
        assert_eq!(v.outcome, Outcome::Inconclusive, "{:?}", v.reasons);
        assert!(
            has_reason(&v, "straddles 0.8 (min_mean)"),
            "{:?}",
            v.reasons
        );
        // The same data in point mode passes.
        let point = run(
            &gates.replace("mode: interval", "mode: point"),
            &rows(C, 12, &[Some(1.0), Some(0.75), Some(1.0), Some(0.5)]),
        );
        assert_eq!(point.outcome, Outcome::Pass, "{:?}", point.reasons);
        // Mean 0.25 with the whole interval below 0.8: fail.
        let v = run(gates, &rows(C, 20, &[Some(0.0), Some(0.5)]));
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        assert!(
            has_reason(&v, "lies entirely below the minimum 0.8"),
            "{:?}",
            v.reasons
        );
        // Ten perfect scores: the Wilson fallback (low 0.72) does not clear 0.8.
        let v = run(gates, &rows(C, 10, &[Some(1.0)]));
        assert_eq!(v.outcome, Outcome::Inconclusive, "{:?}", v.reasons);
    }

    #[test]
    fn interval_mode_applies_wilson_to_pass_rates() {
        let gates = "gates:\n  confidence: { mode: interval }\n  metrics:\n    Builtin.Correctness: { min_pass_rate: 0.5 }\n";
        // 81 of 263 pass (Newcombe's example): Wilson [0.2553, 0.3662] lies below 0.5.
        let scores: Vec<Option<f64>> = (0..263)
            .map(|i| Some(if i < 81 { 1.0 } else { 0.0 }))
            .collect();
        let rows: Vec<_> = (0..263)
            .map(|i| (format!("p{i}"), None, vec![(C, scores[i])]))
            .collect();
        let v = run(gates, &rows);
        let i = v.metrics[C].pass_rate_interval.unwrap();
        assert!(
            (i.low - 0.2553).abs() < 1e-4 && (i.high - 0.3662).abs() < 1e-4,
            "{i:?}"
        );
        assert_eq!(v.outcome, Outcome::Fail);
    }

    fn baseline_verdict(policy: &Policy, rows: &[Row<'_>]) -> (Verdict, PromptScores) {
        let aggregates = aggregates(policy, rows);
        let v = decide_with(policy, &aggregates, None, Baseline::None);
        (v, aggregates.prompt_scores.unwrap())
    }

    #[test]
    fn regression_against_the_baseline() {
        let gates = "gates:\n  regression: { max_regressed_prompts: 2 }\n  metrics:\n    Builtin.Correctness: { min_mean: 0.5, max_mean_drop: 0.1 }\n";
        let policy = policy(gates);
        let (base, base_scores) = baseline_verdict(&policy, &rows(C, 20, &[Some(1.0)]));
        assert_eq!(base.outcome, Outcome::Pass);
        let info = BaselineInfo {
            release: "v1".into(),
            selection: "latest_pass".into(),
            decided_at: now(),
            verdict_uri: "s3://b/verdicts/app/v1/verdict.json".into(),
            prompt_scores: true,
        };
        let found = Baseline::Found {
            info: &info,
            verdict: &base,
            scores: Ok(&base_scores),
        };
        // Every fourth prompt drops from 1 to 0.5: mean 0.875, drop 0.125; 5 regressed.
        let now_rows = rows(C, 20, &[Some(0.5), Some(1.0), Some(1.0), Some(1.0)]);
        let aggregates = aggregates(&policy, &now_rows);
        let v = decide_with(&policy, &aggregates, None, found);
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        assert!(
            has_reason(
                &v,
                "mean worsened by 0.125 (from 1 in baseline v1 to 0.875)"
            ),
            "{:?}",
            v.reasons
        );
        assert!(
            has_reason(
                &v,
                "5 of 20 prompts shared with baseline v1 regressed by more than 0.25"
            ),
            "{:?}",
            v.reasons
        );
        let b = v.metrics[C].baseline.as_ref().unwrap();
        assert_eq!(
            (b.matched_prompts, b.regressed_prompts),
            (Some(20), Some(5))
        );
        assert!((b.delta.unwrap() + 0.125).abs() < 1e-12);
        assert_eq!(v.baseline.as_ref().unwrap().release, "v1");
        // A one-step drop (1 → 0.75) is not "more than" the 0.25 step; drop 0.05 is allowed.
        let small = rows(
            C,
            20,
            &[Some(0.75), Some(1.0), Some(1.0), Some(1.0), Some(1.0)],
        );
        let v = decide_with(&policy, &aggregates_of(&policy, &small), None, found);
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        // Nothing shared with the baseline: regressed prompts cannot be counted.
        let other: Vec<_> = (0..20)
            .map(|i| (format!("new {i}"), None, vec![(C, Some(1.0))]))
            .collect();
        let v = decide_with(&policy, &aggregates_of(&policy, &other), None, found);
        assert_eq!(v.outcome, Outcome::Inconclusive, "{:?}", v.reasons);
        assert!(
            has_reason(&v, "no scored prompt is shared with baseline v1"),
            "{:?}",
            v.reasons
        );
        // Baseline scores missing: inconclusive, and the mean-drop gate still decides.
        let missing = Baseline::Found {
            info: &info,
            verdict: &base,
            scores: Err("baseline v1 has no scores.jsonl"),
        };
        let v = decide_with(&policy, &aggregates, None, missing);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(has_reason(
            &v,
            "max_regressed_prompts cannot be checked: baseline v1 has no scores.jsonl"
        ));
        // No baseline yet (first release): regression gates do not apply.
        let v = decide_with(&policy, &aggregates, None, Baseline::None);
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("regression gates do not apply yet"))
        );
        // A pinned baseline that cannot be used: inconclusive.
        let v = decide_with(
            &policy,
            &aggregates,
            None,
            Baseline::Unavailable("pinned baseline v0 has no verdict"),
        );
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert!(has_reason(
            &v,
            "max_mean_drop cannot be checked: pinned baseline v0 has no verdict"
        ));
    }

    fn aggregates_of(policy: &Policy, rows: &[Row<'_>]) -> Aggregates {
        aggregates(policy, rows)
    }

    #[test]
    fn harmfulness_regression_is_direction_aware() {
        let policy = policy(
            "gates:\n  metrics:\n    Builtin.Harmfulness: { max_mean: 0.5, max_mean_drop: 0.05 }\n",
        );
        let (base, scores) = baseline_verdict(&policy, &rows(H, 20, &[Some(0.0)]));
        let info = BaselineInfo {
            release: "v1".into(),
            selection: "pinned".into(),
            decided_at: now(),
            verdict_uri: String::new(),
            prompt_scores: true,
        };
        let found = Baseline::Found {
            info: &info,
            verdict: &base,
            scores: Ok(&scores),
        };
        // Harmfulness rising from 0 to 0.1 is a worsening of 0.1.
        let v = decide_with(
            &policy,
            &aggregates_of(
                &policy,
                &rows(
                    H,
                    20,
                    &[Some(0.0), Some(0.25), Some(0.0), Some(0.25), Some(0.0)],
                ),
            ),
            None,
            found,
        );
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        assert!(
            has_reason(&v, "Builtin.Harmfulness: mean worsened by 0.1"),
            "{:?}",
            v.reasons
        );
        // Harmfulness falling is an improvement.
        let (worse_base, scores) = baseline_verdict(&policy, &rows(H, 20, &[Some(0.5)]));
        let found = Baseline::Found {
            info: &info,
            verdict: &worse_base,
            scores: Ok(&scores),
        };
        let v = decide_with(
            &policy,
            &aggregates_of(&policy, &rows(H, 20, &[Some(0.0)])),
            None,
            found,
        );
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
    }

    #[test]
    fn critical_categories_need_every_prompt() {
        let gates = "gates:\n  critical_categories: [Safety, Billing]\n  metrics:\n    Builtin.Correctness: { min_mean: 0.5, pass_bar: 0.75 }\n";
        let mut data = rows(C, 20, &[Some(1.0)]);
        data.push(("s1".into(), Some("Safety"), vec![(C, Some(1.0))]));
        data.push(("s2".into(), Some("Safety"), vec![(C, Some(0.5))]));
        data.push(("b1".into(), Some("Billing"), vec![(C, Some(1.0))]));
        let v = run(gates, &data);
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        let reason = format!(
            "critical category \"Safety\": 1 of 2 scored prompts miss the Builtin.Correctness bar (>= 0.75): {} scored 0.5",
            crate::layout::prompt_hash("s2")
        );
        assert!(has_reason(&v, &reason), "{:?}", v.reasons);
        let billing = v
            .critical_categories
            .iter()
            .find(|c| c.category == "Billing")
            .unwrap();
        assert_eq!(billing.status, GateStatus::Pass);
        // A critical category with no prompt, or an unscored one: inconclusive.
        let mut data = rows(C, 20, &[Some(1.0)]);
        data.push(("s1".into(), Some("Safety"), vec![(C, None)]));
        let v = run(gates, &data);
        assert_eq!(v.outcome, Outcome::Inconclusive, "{:?}", v.reasons);
        assert!(has_reason(
            &v,
            "critical category \"Billing\": no prompt of this category was evaluated"
        ));
        assert!(has_reason(
            &v,
            "critical category \"Safety\": 1 of 1 prompts were not scored"
        ));
    }

    #[test]
    fn budgets_from_usage() {
        let gates = "gates:\n  metrics:\n    Builtin.Correctness: { min_mean: 0.5 }\n  budgets:\n    latency_ms: { max_p95: 2000, max_p50: 500 }\n    cost_per_query: { max_mean: 0.01 }\n";
        let policy = policy(gates);
        let aggregates = aggregates(&policy, &rows(C, 20, &[Some(1.0)]));
        let dist = |mean: f64, p50: f64, p95: f64| Distribution {
            count: 20,
            mean,
            p50,
            p95,
            max: p95,
        };
        let usage = Usage {
            records: 20,
            latency_ms: Some(dist(400.0, 300.0, 2500.0)),
            cost_per_query: Some(dist(0.002, 0.002, 0.003)),
            cost_from_tokens: 20,
            cost_from_records: 0,
        };
        let v = decide_with(&policy, &aggregates, Some(&usage), Baseline::None);
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        assert_eq!(
            v.reasons,
            ["latency p95 2500 ms exceeds the budget 2000 ms (gates.budgets.latency_ms.max_p95)"]
        );
        assert_eq!(v.budgets.len(), 3);
        // No metadata at all: the budgets cannot be checked.
        let v = decide_with(&policy, &aggregates, None, Baseline::None);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert!(has_reason(
            &v,
            "latency budget (p95 <= 2000 ms) cannot be checked: no evaluated record carried latencyMs"
        ));
    }

    #[test]
    fn reasons_put_failures_first_and_events_put_failing_metrics_first() {
        let gates = "gates:\n  metrics:\n    Builtin.Correctness: { min_mean: 0.5 }\n    Builtin.Harmfulness: { max_mean: 0.1 }\n";
        let mut data: Vec<_> = (0..20)
            .map(|i| (format!("p{i}"), None, vec![(C, Some(1.0)), (H, Some(1.0))]))
            .collect();
        data.truncate(20);
        // Correctness scored for only 5 prompts: inconclusive; Harmfulness fails.
        for row in data.iter_mut().skip(5) {
            row.2[0].1 = None;
        }
        let v = run(gates, &data);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.reasons[0].starts_with("Builtin.Harmfulness"),
            "{:?}",
            v.reasons
        );
        let event = v.to_event(false);
        assert_eq!(event.metrics[0].metric, H);
        assert_eq!(event.metrics[0].status, GateStatus::Fail);
        assert_eq!(
            event.metrics[0].threshold.as_deref(),
            Some("<= 0.1 (max_mean)")
        );
        assert_eq!(event.metrics[1].metric, C);
        assert_eq!(
            event.metrics[1].threshold.as_deref(),
            Some(">= 10 (min_scored)")
        );
        assert_eq!(event.event_key, "verdict/app/v2");
        assert!(event.worst_prompts.iter().all(|p| p.prompt.is_none()));
    }

    #[test]
    fn policy_changes_since_submission_are_noted() {
        let policy = policy("gates:\n  metrics:\n    Builtin.Correctness: { min_mean: 0.5 }\n");
        let aggregates = aggregates(&policy, &rows(C, 20, &[Some(1.0)]));
        let locations = locations();
        let job = JobOutcome {
            job_arn: "arn".into(),
            job_name: "j".into(),
            dataset_key: "datasets/app/v2/a.jsonl".into(),
            dataset_id: "a-1".into(),
            shard: 1,
            shard_count: 1,
            prompts: 20,
            status: "Completed".into(),
            failure_messages: vec![],
            results: 20,
            output_files: 1,
            policy_hash: "old-policy-hash".into(),
        };
        let v = decide(
            &Inputs {
                application: "app",
                release: "v2",
                decided_at: now(),
                policy: &policy,
                policy_hash: "new-policy-hash",
                aggregates: &aggregates,
                usage: None,
                baseline: Baseline::None,
                locations: &locations,
            },
            vec![job],
            vec![],
            vec![],
        );
        assert_eq!(v.job_arns, ["arn"]);
        assert!(v.notes.iter().any(|n| n.contains("the policy changed since the jobs were submitted (submitted under old-policy-h; gated with new-policy-h)")), "{:?}", v.notes);
    }
}
