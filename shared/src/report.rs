//! The Markdown report of a verdict (`verdicts/<app>/<release>/report.md`): what people read
//! from an alert link. It is rendered from the [`Verdict`] alone, so it can always be
//! re-rendered from the stored record.

use std::fmt::Write;

use crate::stats::Interval;
use crate::verdict::{GateStatus, MetricVerdict, Outcome, Verdict, fmt_num, fmt_pct};

/// Text safe inside a Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

/// Text safe as inline code.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), fmt_num)
}

fn opt_pct(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), fmt_pct)
}

fn interval(i: Option<&Interval>, percent: bool) -> String {
    let show = |x: f64| if percent { fmt_pct(x) } else { fmt_num(x) };
    i.map_or_else(String::new, |i| {
        format!(" [{}, {}]", show(i.low), show(i.high))
    })
}

fn status(s: GateStatus) -> &'static str {
    match s {
        GateStatus::Pass => "✅ pass",
        GateStatus::Fail => "❌ fail",
        GateStatus::Inconclusive => "⚠️ inconclusive",
        GateStatus::NotGated => "· not gated",
    }
}

fn headline(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "✅ PASS",
        Outcome::Fail => "❌ FAIL",
        Outcome::Inconclusive => "⚠️ INCONCLUSIVE",
        Outcome::Error => "🛑 ERROR",
    }
}

/// Renders the report.
pub fn render(v: &Verdict) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, v);
    out
}

fn write_report(out: &mut String, v: &Verdict) -> std::fmt::Result {
    writeln!(
        out,
        "# {}: {} {}\n",
        headline(v.outcome),
        cell(&v.application),
        cell(&v.release)
    )?;
    let mut facts = vec![
        format!("decided {}", v.decided_at.format("%Y-%m-%d %H:%M:%S UTC")),
        format!("{} prompts", v.prompts),
        format!("{} job(s)", v.jobs.len()),
    ];
    if let Some(hash) = &v.policy_hash {
        facts.push(format!("policy {}", code(hash.get(..12).unwrap_or(hash))));
    }
    if let Some(c) = &v.confidence {
        facts.push(format!(
            "{} comparisons, {} intervals",
            match c.mode {
                crate::policy::gates::ConfidenceMode::Point => "point",
                crate::policy::gates::ConfidenceMode::Interval => "interval",
            },
            fmt_pct(c.level)
        ));
    }
    match &v.baseline {
        Some(b) => facts.push(format!(
            "baseline {} ({})",
            code(&b.release),
            match b.selection.as_str() {
                "pinned" => "pinned by the policy",
                "latest_pass" => "most recent passing release",
                _ => "given on the command line",
            }
        )),
        None => facts.push("no baseline".to_owned()),
    }
    writeln!(out, "{}\n", facts.join(" · "))?;

    if v.reasons.is_empty() {
        writeln!(out, "Every gate was met.\n")?;
    } else {
        writeln!(out, "## Why\n")?;
        for reason in &v.reasons {
            writeln!(out, "- {}", reason.replace('\n', " "))?;
        }
        writeln!(out)?;
    }

    if !v.metrics.is_empty() {
        writeln!(out, "## Metrics\n")?;
        writeln!(
            out,
            "| Metric | Status | Mean [CI] | Pass rate [CI] (bar) | Scored | Unscored | vs baseline |"
        )?;
        writeln!(out, "|---|---|---|---|---:|---:|---|")?;
        for (name, m) in v.metrics_by_status() {
            writeln!(
                out,
                "| {} | {} | {}{} | {}{} ({} {}) | {} | {} | {} |",
                cell(name),
                status(m.status),
                opt(m.mean),
                interval(m.interval.as_ref(), false),
                opt_pct(m.pass_rate),
                interval(m.pass_rate_interval.as_ref(), true),
                m.direction.comparison(),
                fmt_num(m.pass_bar),
                m.scored,
                m.unscored,
                baseline_cell(m),
            )?;
        }
        writeln!(out)?;
        for (name, m) in v.metrics_by_status() {
            write_metric(out, name, m)?;
        }
    }

    if !v.critical_categories.is_empty() {
        writeln!(out, "## Critical categories\n")?;
        writeln!(
            out,
            "| Category | Metric | Status | Prompts | Scored | Below the bar |"
        )?;
        writeln!(out, "|---|---|---|---:|---:|---:|")?;
        for c in &v.critical_categories {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                cell(&c.category),
                cell(&c.metric),
                status(c.status),
                c.prompts,
                c.scored,
                c.failing
            )?;
        }
        writeln!(out)?;
    }

    if !v.budgets.is_empty() || v.usage.is_some() {
        writeln!(out, "## Cost and latency\n")?;
        if let Some(u) = &v.usage {
            // Milliseconds to the millisecond; costs keep fmt_num's precision.
            let ms = |x: f64| format!("{x:.0}");
            for (what, unit, d, num) in [
                (
                    "Latency",
                    " ms",
                    &u.latency_ms,
                    &ms as &dyn Fn(f64) -> String,
                ),
                ("Cost per query", "", &u.cost_per_query, &fmt_num),
            ] {
                if let Some(d) = d {
                    writeln!(
                        out,
                        "- {what}: mean {}{unit}, p50 {}{unit}, p95 {}{unit}, max {}{unit} ({} of {} records)",
                        num(d.mean),
                        num(d.p50),
                        num(d.p95),
                        num(d.max),
                        d.count,
                        u.records
                    )?;
                }
            }
            writeln!(out)?;
        }
        if !v.budgets.is_empty() {
            writeln!(out, "| Budget | Limit | Value | Status |")?;
            writeln!(out, "|---|---|---|---|")?;
            for b in &v.budgets {
                writeln!(
                    out,
                    "| {}.{} | <= {} | {} | {} |",
                    b.budget,
                    b.gate,
                    fmt_num(b.threshold),
                    opt(b.value),
                    status(b.status)
                )?;
            }
            writeln!(out)?;
        }
    }

    if !v.jobs.is_empty() {
        writeln!(out, "## Jobs\n")?;
        writeln!(out, "| Dataset | Shard | Status | Results | Job |")?;
        writeln!(out, "|---|---:|---|---:|---|")?;
        for j in &v.jobs {
            writeln!(
                out,
                "| {} | {}/{} | {} | {} | {} |",
                cell(&j.dataset_key),
                j.shard,
                j.shard_count,
                cell(&j.status),
                j.results,
                code(&j.job_arn)
            )?;
            for message in &j.failure_messages {
                writeln!(out, "| | | ↳ {} | | |", cell(message))?;
            }
        }
        writeln!(out)?;
        if !v.superseded_jobs.is_empty() {
            writeln!(
                out,
                "Not counted (earlier uploads of a re-uploaded dataset): {}\n",
                v.superseded_jobs
                    .iter()
                    .map(|a| code(a))
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
    }

    if !v.notes.is_empty() {
        writeln!(out, "## Notes\n")?;
        for note in &v.notes {
            writeln!(out, "- {}", note.replace('\n', " "))?;
        }
        writeln!(out)?;
    }
    // Offline re-gates (`evalgate gate`) have no stored record to point at.
    if !v.verdict_uri.is_empty() {
        writeln!(
            out,
            "---\nVerdict record: {}{}",
            code(&v.verdict_uri),
            v.scores_uri
                .as_ref()
                .filter(|s| !s.is_empty())
                .map_or_else(String::new, |s| format!(
                    " · per-prompt scores: {}",
                    code(s)
                ))
        )?;
    }
    Ok(())
}

fn baseline_cell(m: &MetricVerdict) -> String {
    let Some(b) = &m.baseline else {
        return "—".to_owned();
    };
    let mut parts = Vec::new();
    if let Some(delta) = b.delta {
        parts.push(format!(
            "{}{} (was {})",
            if delta >= 0.0 { "+" } else { "" },
            fmt_num(delta),
            opt(b.mean)
        ));
    }
    if let (Some(regressed), Some(matched)) = (b.regressed_prompts, b.matched_prompts) {
        parts.push(format!("{regressed} of {matched} prompts regressed"));
    }
    if parts.is_empty() {
        "—".to_owned()
    } else {
        cell(&parts.join("; "))
    }
}

fn write_metric(out: &mut String, name: &str, m: &MetricVerdict) -> std::fmt::Result {
    writeln!(
        out,
        "### {} — {} ({})\n",
        cell(name),
        status(m.status),
        m.direction.label()
    )?;
    if !m.gates.is_empty() {
        writeln!(out, "| Gate | Threshold | Value | Status |")?;
        writeln!(out, "|---|---|---|---|")?;
        for g in &m.gates {
            let percent = matches!(g.gate.as_str(), "min_pass_rate" | "max_unscored_fraction");
            let show = |x: f64| if percent { fmt_pct(x) } else { fmt_num(x) };
            writeln!(
                out,
                "| {} | {} {} | {}{} | {} |",
                g.gate,
                g.comparison,
                show(g.threshold),
                g.value.map_or_else(|| "—".to_owned(), show),
                interval(g.interval.as_ref(), percent),
                status(g.status)
            )?;
        }
        writeln!(out)?;
    }
    if let Some(b) = &m.baseline
        && !b.regressed.is_empty()
    {
        writeln!(out, "Regressed prompts against {}:\n", code(&b.release))?;
        writeln!(out, "| Prompt | Baseline | Now |")?;
        writeln!(out, "|---|---:|---:|")?;
        for r in &b.regressed {
            writeln!(
                out,
                "| {} | {} | {} |",
                code(&r.prompt_hash),
                fmt_num(r.baseline_score),
                fmt_num(r.score)
            )?;
        }
        writeln!(out)?;
    }
    let categories: Vec<_> = m.categories.iter().filter(|(_, c)| c.prompts > 0).collect();
    if !categories.is_empty() {
        writeln!(out, "| Category | Prompts | Scored | Mean | Pass rate |")?;
        writeln!(out, "|---|---:|---:|---:|---:|")?;
        for (name, c) in categories {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(name),
                c.prompts,
                c.scored,
                opt(c.mean),
                opt_pct(c.pass_rate)
            )?;
        }
        writeln!(out)?;
    }
    if !m.worst_prompts.is_empty() {
        writeln!(out, "Lowest-scoring prompts:\n")?;
        let with_text = m.worst_prompts.iter().any(|w| w.prompt.is_some());
        if with_text {
            writeln!(
                out,
                "| Prompt | Score | Category | Excerpt | Judge's explanation |"
            )?;
            writeln!(out, "|---|---:|---|---|---|")?;
        } else {
            writeln!(out, "| Prompt | Score | Category | Judge's explanation |")?;
            writeln!(out, "|---|---:|---|---|")?;
        }
        for w in &m.worst_prompts {
            let category = w.category.as_deref().map_or_else(String::new, cell);
            if with_text {
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    code(&w.prompt_hash),
                    fmt_num(w.score),
                    category,
                    cell(w.prompt.as_deref().unwrap_or("")),
                    cell(&w.explanation)
                )?;
            } else {
                writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    code(&w.prompt_hash),
                    fmt_num(w.score),
                    category,
                    cell(&w.explanation)
                )?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::WorstPrompt;
    use crate::policy::gates::Direction;
    use crate::verdict::{GateCheck, JobOutcome, SCHEMA};
    use chrono::TimeZone;

    fn verdict() -> Verdict {
        let metric = MetricVerdict {
            direction: Direction::HigherIsBetter,
            status: GateStatus::Fail,
            prompts: 20,
            scored: 19,
            unscored: 1,
            unscored_fraction: Some(0.05),
            mean: Some(0.61),
            std_dev: Some(0.2),
            interval: None,
            pass_bar: 0.5,
            passing: 12,
            pass_rate: Some(12.0 / 19.0),
            pass_rate_interval: None,
            baseline: None,
            gates: vec![GateCheck {
                gate: "min_mean".into(),
                comparison: ">=".into(),
                threshold: 0.8,
                value: Some(0.61),
                interval: None,
                status: GateStatus::Fail,
                reason: Some(
                    "Builtin.Correctness: mean 0.61 is below the minimum 0.8 (min_mean)".into(),
                ),
            }],
            categories: Default::default(),
            worst_prompts: vec![WorstPrompt {
                prompt_hash: "0123456789abcdef".into(),
                score: 0.0,
                category: Some("Billing | refunds".into()),
                explanation: "The answer\nignores the | refund policy.".into(),
                prompt: None,
            }],
        };
        Verdict {
            schema: SCHEMA,
            application: "support-bot".into(),
            release: "v42".into(),
            outcome: Outcome::Fail,
            decided_at: chrono::Utc
                .with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
                .single()
                .unwrap(),
            reasons: vec![
                "Builtin.Correctness: mean 0.61 is below the minimum 0.8 (min_mean)".into(),
            ],
            notes: vec!["no earlier release passed".into()],
            policy_hash: Some("abcdef0123456789".into()),
            policy_uri: "s3://b/policies/support-bot.yaml".into(),
            confidence: None,
            jobs: vec![JobOutcome {
                job_arn: "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcdefghijkl"
                    .into(),
                job_name: "eg-support-bot-v42-x-001".into(),
                dataset_key: "datasets/support-bot/v42/smoke.jsonl".into(),
                dataset_id: "smoke-1".into(),
                shard: 1,
                shard_count: 1,
                prompts: 20,
                status: "Completed".into(),
                failure_messages: vec![],
                results: 20,
                output_files: 1,
                policy_hash: "abcdef0123456789".into(),
            }],
            job_arns: vec![],
            superseded_jobs: vec![],
            baseline: None,
            prompts: 20,
            metrics: [("Builtin.Correctness".to_owned(), metric)].into(),
            critical_categories: vec![],
            budgets: vec![],
            usage: None,
            verdict_uri: "s3://b/verdicts/support-bot/v42/verdict.json".into(),
            report_uri: "s3://b/verdicts/support-bot/v42/report.md".into(),
            scores_uri: None,
        }
    }

    #[test]
    fn renders_the_outcome_reasons_metrics_and_worst_prompts() {
        let text = render(&verdict());
        assert!(text.starts_with("# ❌ FAIL: support-bot v42\n"), "{text}");
        assert!(
            text.contains(
                "## Why\n\n- Builtin.Correctness: mean 0.61 is below the minimum 0.8 (min_mean)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("| Builtin.Correctness | ❌ fail | 0.61 | 63.2% (>= 0.5) | 19 | 1 | — |"),
            "{text}"
        );
        assert!(
            text.contains("| min_mean | >= 0.8 | 0.61 | ❌ fail |"),
            "{text}"
        );
        // Table cells stay on one line with pipes escaped.
        assert!(
            text.contains("| `0123456789abcdef` | 0 | Billing \\| refunds | The answer ignores the \\| refund policy. |"),
            "{text}"
        );
        assert!(text.contains("policy `abcdef012345`"), "{text}");
        assert!(
            text.contains("## Notes\n\n- no earlier release passed"),
            "{text}"
        );
    }

    #[test]
    fn error_verdicts_show_failure_messages() {
        let mut v = verdict();
        v.outcome = Outcome::Error;
        v.metrics.clear();
        v.jobs[0].status = "Failed".into();
        v.jobs[0].failure_messages = vec!["Dataset not found".into()];
        let text = render(&v);
        assert!(text.starts_with("# 🛑 ERROR"), "{text}");
        assert!(text.contains("| | | ↳ Dataset not found | | |"), "{text}");
        assert!(!text.contains("## Metrics"), "{text}");
    }
}
