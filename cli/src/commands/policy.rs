//! `evalgate policy check`: parse a policy and explain what it asks for, section by section,
//! with the defaults applied (the same resolution the functions use).

use std::fmt::Write as _;

use evalgate::policy::Policy;
use evalgate::policy::alerts::AlertKind;
use evalgate::policy::gates::{ConfidenceMode, Direction, GatesPolicy, ResolvedMetric};
use evalgate::policy::release::Promote;
use evalgate::policy::rollback::format_duration;
use evalgate::release::{PointerSpec, ReleaseIdSource};
use serde_json::{Value, json};

use super::{CliError, Exit, read_error};
use crate::cli::{PolicyCheckArgs, TextOrJson};

pub fn check(args: PolicyCheckArgs) -> Result<Exit, CliError> {
    let path = &args.policy;
    let text = std::fs::read_to_string(path).map_err(read_error(path))?;
    let name = path.display().to_string();
    match (Policy::parse(&name, &text), args.format) {
        (Ok(policy), TextOrJson::Text) => {
            print!("{}", explain(&name, &policy));
            Ok(Exit::Ok)
        }
        (Ok(policy), TextOrJson::Json) => {
            let doc = json!({
                "policy": name,
                "valid": true,
                "hash": evalgate::policy::policy_hash(&text),
                "explanation": explain(&name, &policy).lines().collect::<Vec<_>>(),
                "effective": effective(&policy),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            Ok(Exit::Ok)
        }
        (Err(e), TextOrJson::Text) => {
            println!("{e}");
            Ok(Exit::Invalid)
        }
        (Err(e), TextOrJson::Json) => {
            let problems: Vec<_> = e
                .problems
                .iter()
                .map(|p| json!({"line": p.line, "column": p.column, "path": p.path, "message": p.message}))
                .collect();
            let doc = json!({"policy": name, "valid": false, "problems": problems});
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            Ok(Exit::Invalid)
        }
    }
}

/// What the policy asks evalgate to do, in plain words: one block per section.
pub fn explain(name: &str, policy: &Policy) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "valid: {name}");
    explain_evaluation(&mut out, policy);
    let _ = writeln!(
        out,
        "metrics namespace: {} (check-gates publishes each verdict's metrics there)",
        policy.metrics_namespace
    );
    explain_gates(&mut out, policy);
    explain_release(&mut out, policy);
    explain_rollback(&mut out, policy);
    explain_alerts(&mut out, policy);
    out
}

fn explain_evaluation(out: &mut String, policy: &Policy) {
    let e = &policy.evaluation;
    let _ = writeln!(
        out,
        "evaluation (submit-evaluation starts one Bedrock judge job per {} prompts of each dataset):",
        evalgate::dataset::MAX_PROMPTS_PER_SHARD
    );
    let _ = writeln!(out, "  judge model: {}", e.evaluator_model);
    if !e.metrics.is_empty() {
        let _ = writeln!(out, "  built-in metrics: {}", e.metrics.join(", "));
    }
    for metric in &e.custom_metrics {
        let scale = match metric.rating_scale.len() {
            0 => "no rating scale".to_owned(),
            n => format!("{n} rating(s) in its scale"),
        };
        let _ = writeln!(out, "  custom metric {}: {scale}", metric.name);
    }
    if let Some(key) = &e.kms_key_id {
        let _ = writeln!(out, "  Bedrock encrypts the jobs with KMS key {key}");
    }
    if !e.tags.is_empty() {
        let tags: Vec<String> = e.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "  job tags: {}", tags.join(", "));
    }
}

/// Every metric the gate looks at: the evaluated ones, then any only named under gates.
fn gate_metrics(policy: &Policy) -> Vec<ResolvedMetric> {
    let mut names = policy.evaluation.metric_names();
    for name in policy.gates.metrics.keys() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names.iter().map(|m| policy.gates.resolve(m)).collect()
}

fn explain_gates(out: &mut String, policy: &Policy) {
    let g = &policy.gates;
    let _ = writeln!(
        out,
        "gates (check-gates decides each release's verdict with these, read when it decides):"
    );
    let metrics = gate_metrics(policy);
    for m in metrics.iter().filter(|m| m.is_gated()) {
        explain_metric(out, g, m);
    }
    let reported: Vec<&str> = metrics
        .iter()
        .filter(|m| !m.is_gated())
        .map(|m| m.name.as_str())
        .collect();
    if !reported.is_empty() {
        let _ = writeln!(out, "  reported, not gated: {}", reported.join(", "));
    }
    if !g.sets_any_gate() {
        let _ = writeln!(
            out,
            "  no gate is set: every release will be inconclusive (nothing shows it is good enough); add thresholds under gates.metrics or budgets under gates.budgets"
        );
        return;
    }
    let level = num(g.confidence.level * 100.0);
    let _ = match g.confidence.mode {
        ConfidenceMode::Point => writeln!(
            out,
            "  comparison: point estimates (mean, pass rate) against thresholds; {level}% intervals are reported beside them"
        ),
        ConfidenceMode::Interval => writeln!(
            out,
            "  comparison: {level}% intervals: a gate passes only if its whole interval clears the threshold, fails only if it lies entirely on the wrong side, else is inconclusive"
        ),
    };
    if metrics
        .iter()
        .any(|m| m.max_mean_drop.is_some() || m.max_regressed_prompts.is_some())
    {
        let _ = match g.baseline_release() {
            Some(release) => writeln!(
                out,
                "  baseline: release {release} (pinned by gates.regression.baseline_release)"
            ),
            None => writeln!(
                out,
                "  baseline: the application's most recent release whose verdict is pass (until one passes, regression gates do not apply)"
            ),
        };
    }
    let categories = g.critical_categories();
    if !categories.is_empty() {
        let _ = writeln!(
            out,
            "  critical categories: {}: every scored prompt of these categories must meet the bar of every gated metric",
            categories.join(", ")
        );
    }
    let budgets = &g.budgets;
    if let Some(b) = &budgets.latency_ms
        && !b.limits().is_empty()
    {
        let _ = writeln!(
            out,
            "  latency budget: {} (from the records' latencyMs)",
            limits(b.limits(), " ms")
        );
    }
    if let Some(b) = &budgets.cost_per_query
        && !b.limits().is_empty()
    {
        let source = match &budgets.prices {
            Some(p) => format!(
                "tokens priced at {} per 1,000 input and {} per 1,000 output, else the records' cost",
                num(p.input_per_1k_tokens.value),
                num(p.output_per_1k_tokens.value)
            ),
            None => "from the records' cost".to_owned(),
        };
        let _ = writeln!(
            out,
            "  cost budget per query: {} ({source})",
            limits(b.limits(), "")
        );
    }
    let _ = writeln!(
        out,
        "  worst prompts kept per metric: {}",
        g.worst_prompts()
    );
}

fn explain_metric(out: &mut String, g: &GatesPolicy, m: &ResolvedMetric) {
    let declared = if Direction::of_builtin(&m.name).is_some() {
        ""
    } else {
        " (declared)"
    };
    let _ = writeln!(out, "  {}: {}{declared}", m.name, m.direction.label());
    let cmp = m.direction.comparison();
    if let Some(threshold) = m.mean_threshold {
        let _ = writeln!(out, "    mean {cmp} {}", num(threshold));
    }
    if let Some(rate) = m.min_pass_rate {
        let _ = writeln!(
            out,
            "    pass rate >= {}% (a prompt passes with a score {cmp} {})",
            num(rate * 100.0),
            num(m.pass_bar)
        );
    }
    let worse = match m.direction {
        Direction::HigherIsBetter => "below",
        Direction::LowerIsBetter => "above",
    };
    if let Some(drop) = m.max_mean_drop {
        let _ = writeln!(out, "    mean at most {} {worse} the baseline's", num(drop));
    }
    if let Some(n) = m.max_regressed_prompts {
        let _ = writeln!(
            out,
            "    at most {n} prompt(s) scoring worse than in the baseline by more than {}",
            num(g.regression_step())
        );
    }
    let _ = writeln!(
        out,
        "    evidence: at least {} scored prompts, at most {}% unscored (else inconclusive)",
        m.min_scored,
        num(m.max_unscored_fraction * 100.0)
    );
}

fn explain_release(out: &mut String, policy: &Policy) {
    let Some(release) = &policy.release else {
        let _ = writeln!(
            out,
            "release: not set: evalgate records verdicts and never moves a release pointer (no promotion, no rollback)"
        );
        return;
    };
    let _ = writeln!(out, "release:");
    let _ = match release.pointer_spec() {
        PointerSpec::SsmParameter { name } => writeln!(
            out,
            "  pointer: SSM parameter {name} (its value is the live release id)"
        ),
        PointerSpec::LambdaAlias {
            function,
            alias,
            release_id,
        } => writeln!(
            out,
            "  pointer: Lambda alias {alias} of function {function} ({})",
            match release_id {
                ReleaseIdSource::Description =>
                    "a version's release id is the release=<id> token in its description",
                ReleaseIdSource::Version => "a version's release id is its version number",
            }
        ),
    };
    let _ = match release.promote {
        Promote::OnPass => writeln!(
            out,
            "  promotion: on pass: check-gates points the pointer at each release whose verdict is pass"
        ),
        Promote::Manual => writeln!(
            out,
            "  promotion: manual: evalgate records verdicts; you or your pipeline move the pointer"
        ),
    };
}

fn explain_rollback(out: &mut String, policy: &Policy) {
    let Some(rollback) = &policy.rollback else {
        let _ = writeln!(
            out,
            "rollback: not set: no alarm rolls this application back"
        );
        return;
    };
    let rules = rollback.rules();
    let _ = writeln!(
        out,
        "rollback (evaluate-rollback, when a CloudWatch alarm goes into ALARM):"
    );
    let _ = writeln!(
        out,
        "  alarms: {} (* matches any run of characters, ? one character)",
        rules.alarms.join(", ")
    );
    let mut tolerance = Vec::new();
    if let Some(n) = rules.min_periods {
        tolerance.push(format!("at least {n} breaching datapoint(s)"));
    }
    if let Some(d) = rules.min_duration {
        tolerance.push(format!("at least {} of breach", format_duration(d)));
    }
    let _ = if tolerance.is_empty() {
        writeln!(
            out,
            "  noise tolerance: none: any transition into ALARM counts"
        )
    } else {
        writeln!(
            out,
            "  noise tolerance: the breach the alarm reports must span {}",
            tolerance.join(" and ")
        )
    };
    let _ = writeln!(
        out,
        "  cooldown: after a rollback, this application's alarms are ignored for {}",
        format_duration(rules.cooldown)
    );
    let _ = writeln!(
        out,
        "  stale alarms: an ALARM state that began more than {} ago is not acted on (announced as Rollback Skipped)",
        format_duration(rules.max_alarm_age)
    );
    let _ = if rules.dry_run {
        writeln!(
            out,
            "  dry run: decides and announces Rollback Skipped (dryRun: true); never moves the pointer"
        )
    } else {
        writeln!(
            out,
            "  action: points the pointer back at the most recent earlier release whose verdict is pass"
        )
    };
}

fn explain_alerts(out: &mut String, policy: &Policy) {
    let a = &policy.alerts;
    let _ = writeln!(
        out,
        "alerts (send-alert publishes one SNS message per evalgate event):"
    );
    let dropped: Vec<&str> = AlertKind::ALL
        .iter()
        .filter(|k| !a.sends(**k))
        .map(|k| k.key())
        .collect();
    let _ = if dropped.is_empty() {
        writeln!(
            out,
            "  minimum severity: {}: every alert is sent",
            a.min_severity
        )
    } else {
        writeln!(
            out,
            "  minimum severity: {}: not sent: {}",
            a.min_severity,
            dropped.join(", ")
        )
    };
    let _ = writeln!(
        out,
        "  prompt text in alerts: {}",
        if a.include_prompt_text {
            "allowed (shortened, next to the judge's explanation of the worst prompts)"
        } else {
            "never (prompts are identified by hash)"
        }
    );
    let severities: Vec<String> = AlertKind::ALL
        .iter()
        .map(|k| match a.severity.get(*k) {
            Some(s) if s != k.default_severity() => {
                format!("{} {s} (default {})", k.key(), k.default_severity())
            }
            _ => format!("{} {}", k.key(), a.severity.severity(*k)),
        })
        .collect();
    let _ = writeln!(out, "  severities: {}", severities.join(", "));
}

/// The settings with defaults applied, for `--format json`.
fn effective(policy: &Policy) -> Value {
    let e = &policy.evaluation;
    let g = &policy.gates;
    let metrics: serde_json::Map<String, Value> = gate_metrics(policy)
        .into_iter()
        .map(|m| {
            let (min_mean, max_mean) = match m.direction {
                Direction::HigherIsBetter => (m.mean_threshold, None),
                Direction::LowerIsBetter => (None, m.mean_threshold),
            };
            let value = json!({
                "gated": m.is_gated(),
                "direction": m.direction,
                "min_mean": min_mean,
                "max_mean": max_mean,
                "min_pass_rate": m.min_pass_rate,
                "pass_bar": m.pass_bar,
                "max_mean_drop": m.max_mean_drop,
                "max_regressed_prompts": m.max_regressed_prompts,
                "min_scored": m.min_scored,
                "max_unscored_fraction": m.max_unscored_fraction,
            });
            (m.name, value)
        })
        .collect();
    let budget = |b: &Option<evalgate::policy::gates::Budget>| {
        b.as_ref().map(|b| {
            b.limits()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), json!(v)))
                .collect::<serde_json::Map<_, _>>()
        })
    };
    let release = policy.release.as_ref().map(|r| {
        json!({
            "pointer": r.pointer_spec().describe(),
            "promote": match r.promote { Promote::Manual => "manual", Promote::OnPass => "on_pass" },
        })
    });
    let rollback = policy.rollback.as_ref().map(|r| {
        let rules = r.rules();
        json!({
            "alarms": rules.alarms,
            "min_periods": rules.min_periods,
            "min_duration_seconds": rules.min_duration.map(|d| d.as_secs()),
            "cooldown_seconds": rules.cooldown.as_secs(),
            "max_alarm_age_seconds": rules.max_alarm_age.as_secs(),
            "dry_run": rules.dry_run,
        })
    });
    let a = &policy.alerts;
    let severity: serde_json::Map<String, Value> = AlertKind::ALL
        .iter()
        .map(|k| (k.key().to_owned(), json!(a.severity.severity(*k))))
        .collect();
    json!({
        "evaluation": {
            "evaluator_model": e.evaluator_model,
            "metrics": e.metric_names(),
            "kms_key_id": e.kms_key_id,
            "tags": e.tags,
        },
        "metrics_namespace": policy.metrics_namespace,
        "gates": {
            "sets_any_gate": g.sets_any_gate(),
            "confidence": {"level": g.confidence.level, "mode": g.confidence.mode},
            "metrics": metrics,
            "regression": {"baseline_release": g.baseline_release(), "step": g.regression_step()},
            "critical_categories": g.critical_categories(),
            "budgets": {
                "latency_ms": budget(&g.budgets.latency_ms),
                "cost_per_query": budget(&g.budgets.cost_per_query),
            },
            "worst_prompts": g.worst_prompts(),
        },
        "release": release,
        "rollback": rollback,
        "alerts": {
            "min_severity": a.min_severity,
            "include_prompt_text": a.include_prompt_text,
            "severity": severity,
            "not_sent": AlertKind::ALL.iter().filter(|k| !a.sends(**k)).map(|k| k.key()).collect::<Vec<_>>(),
        },
    })
}

/// `limit` pairs as `p50 <= 800 ms, p95 <= 2500 ms`.
fn limits(limits: Vec<(&str, f64)>, unit: &str) -> String {
    limits
        .into_iter()
        .map(|(gate, v)| {
            let what = gate.strip_prefix("max_").unwrap_or(gate);
            format!("{what} <= {}{unit}", num(v))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number as a person writes it: `0.8`, `90`, `0.0008` (no float noise such as
/// `90.00000000000001`).
fn num(v: f64) -> String {
    let text = format!("{v:.9}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn numbers_are_written_without_float_noise() {
        assert_eq!(num(0.9 * 100.0), "90");
        assert_eq!(num(0.07 * 100.0), "7");
        assert_eq!(num(0.0008), "0.0008");
        assert_eq!(num(2500.0), "2500");
        assert_eq!(num(0.0), "0");
    }
}
