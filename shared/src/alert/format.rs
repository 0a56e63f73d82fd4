//! The words of each kind of alert: subject, headline, body sections and the JSON detail.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::text::{self, Part, one_line, shorten};
use super::{Body, Draft, Limits, Settings, Severity, Source, push_field};
use crate::events::{
    AlarmRef, DatasetRef, DatasetRejected, EvaluationDeferred, EvaluationSubmitted, Event,
    GateVerdict, MetricSummary, ReleasePromoted, RollbackExecuted, RollbackSkipped,
};
use crate::verdict::{GateStatus, Outcome};

/// The smallest rendering, used when nothing on the ladder fits.
pub(crate) const MINIMAL: Limits = Limits {
    metrics: 3,
    list: 1,
    prompts: 0,
    text: 60,
    field: 64,
    fields: 2,
};

/// Keys whose values may be prompt or response text in events this version cannot read.
const TEXT_KEYS: [&str; 5] = [
    "prompt",
    "response",
    "referenceResponse",
    "modelResponses",
    "responseText",
];

pub(crate) fn draft(
    source: &Source<'_>,
    settings: &Settings<'_>,
    severity: Severity,
    limits: &Limits,
) -> Draft {
    let allow_prompts = settings.alerts.include_prompt_text;
    let tag = format!("[{}] evalgate ", severity.label());
    let tag = tag.as_str();
    let mut draft = match source.body {
        Body::Known(event) => {
            let (event, omitted) = limit_event(event, limits, allow_prompts);
            let mut draft = match &event {
                Event::GateVerdict(v) => gate_verdict(v, source, tag, limits, allow_prompts),
                Event::DatasetRejected(d) => dataset_rejected(d, source, tag, limits),
                Event::EvaluationSubmitted(e) => evaluation_submitted(e, source, tag, limits),
                Event::EvaluationDeferred(e) => evaluation_deferred(e, tag, limits),
                Event::ReleasePromoted(p) => release_promoted(p, source, tag, limits),
                Event::RollbackExecuted(r) => rollback_executed(r, source, tag, limits),
                Event::RollbackSkipped(r) => rollback_skipped(r, source, tag, limits),
            };
            draft.detail = clamp(&event.detail(), limits, 0);
            draft.omitted = omitted;
            draft
        }
        Body::Unreadable { detail, problem } => {
            let detail = if allow_prompts {
                detail.clone()
            } else {
                strip_text(detail)
            };
            unreadable(source, &detail, problem, tag, limits)
        }
    };
    if let Some(app) = &draft.application {
        draft.application = Some(one_line(app, limits.field));
    }
    if let Some(release) = &draft.release {
        draft.release = Some(one_line(release, limits.field));
    }
    draft
}

// ---------------------------------------------------------------------------------------
// Limiting: the same cut event feeds the text and the JSON detail, so they agree.

fn cut<T>(items: &mut Vec<T>, max: usize, name: &'static str, omitted: &mut BTreeMap<&str, usize>) {
    if items.len() > max {
        omitted.insert(name, items.len() - max);
        items.truncate(max);
    }
}

/// Metrics that failed first, then inconclusive, passing and ungated ones; the order within
/// each group is the emitter's.
fn status_rank(status: GateStatus) -> u8 {
    match status {
        GateStatus::Fail => 0,
        GateStatus::Inconclusive => 1,
        GateStatus::Pass => 2,
        GateStatus::NotGated => 3,
    }
}

fn limit_event(
    event: &Event,
    limits: &Limits,
    allow_prompts: bool,
) -> (Event, BTreeMap<&'static str, usize>) {
    let mut omitted = BTreeMap::new();
    let mut event = event.clone();
    match &mut event {
        Event::GateVerdict(v) => {
            v.metrics.sort_by_key(|m| status_rank(m.status));
            cut(&mut v.metrics, limits.metrics, "metrics", &mut omitted);
            for m in &mut v.metrics {
                m.metric = one_line(&m.metric, limits.field.min(256));
                m.threshold = m.threshold.as_deref().map(|t| one_line(t, 64));
            }
            cut(&mut v.reasons, limits.list, "reasons", &mut omitted);
            for r in &mut v.reasons {
                *r = one_line(r, limits.text);
            }
            cut(
                &mut v.worst_prompts,
                limits.prompts,
                "worstPrompts",
                &mut omitted,
            );
            for p in &mut v.worst_prompts {
                p.explanation = one_line(&p.explanation, limits.text);
                p.prompt = if allow_prompts {
                    p.prompt.as_deref().map(|t| one_line(t, limits.text))
                } else {
                    None
                };
            }
            cut(&mut v.job_arns, limits.list, "jobArns", &mut omitted);
        }
        Event::DatasetRejected(d) => {
            d.reason = one_line(&d.reason, limits.text * 2);
            cut(&mut d.errors, limits.list, "errors", &mut omitted);
            for e in &mut d.errors {
                e.message = one_line(&e.message, limits.text);
            }
        }
        Event::EvaluationDeferred(d) => d.reason = one_line(&d.reason, limits.text),
        Event::RollbackExecuted(r) => {
            r.reason = one_line(&r.reason, limits.text);
            limit_alarm(&mut r.alarm, limits, &mut omitted);
        }
        Event::RollbackSkipped(r) => {
            r.reason = one_line(&r.reason, limits.text);
            limit_alarm(&mut r.alarm, limits, &mut omitted);
        }
        Event::EvaluationSubmitted(_) | Event::ReleasePromoted(_) => {}
    }
    (event, omitted)
}

fn limit_alarm(alarm: &mut AlarmRef, limits: &Limits, omitted: &mut BTreeMap<&str, usize>) {
    alarm.reason = alarm.reason.as_deref().map(|r| one_line(r, limits.text));
    cut(&mut alarm.metrics, limits.list, "alarmMetrics", omitted);
}

/// A JSON value with every string cut to `limits.field` characters, arrays to
/// `limits.metrics` items and nesting to 8 levels: the backstop for fields no kind-specific
/// rule covers (and for events this version cannot read).
fn clamp(value: &Value, limits: &Limits, depth: usize) -> Value {
    match value {
        Value::String(s) => Value::String(shorten(s, limits.field)),
        Value::Array(items) if depth < 8 => Value::Array(
            items
                .iter()
                .take(limits.metrics)
                .map(|v| clamp(v, limits, depth + 1))
                .collect(),
        ),
        Value::Object(map) if depth < 8 => Value::Object(
            map.iter()
                .take(limits.fields.max(16))
                .map(|(k, v)| (shorten(k, 128), clamp(v, limits, depth + 1)))
                .collect(),
        ),
        Value::Array(_) | Value::Object(_) => Value::String("…".to_owned()),
        other => other.clone(),
    }
}

/// Removes values that may be prompt or response text from a detail this version cannot
/// read (the policy did not allow prompt text).
fn strip_text(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !TEXT_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), strip_text(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_text).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Shared pieces.

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

fn signed(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:+.3}"))
}

fn status_label(status: GateStatus) -> &'static str {
    match status {
        GateStatus::Fail => "FAIL",
        GateStatus::Inconclusive => "INCONCLUSIVE",
        GateStatus::Pass => "pass",
        GateStatus::NotGated => "not gated",
    }
}

/// A plain-text table, two spaces from the margin and between columns; `right` marks the
/// numeric columns.
fn table(headers: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            l.push(' ');
            if right[i] {
                l.push_str(&" ".repeat(pad));
                l.push_str(cell);
            } else {
                l.push_str(cell);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(pad));
                }
            }
            l.push(' ');
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `s3://…` and, on the next line, its console link.
fn push_s3(out: &mut String, label: &str, uri: &str, region: &str, limits: &Limits) {
    push_field(out, label, &one_line(uri, limits.field));
    if let Some(url) = text::s3_console_url(uri, region) {
        out.push_str(&format!("{:13}{url}\n", ""));
    }
}

fn link_s3(
    links: &mut BTreeMap<&'static str, String>,
    name: &'static str,
    console: &'static str,
    uri: &str,
    region: &str,
) {
    links.insert(name, uri.to_owned());
    if let Some(url) = text::s3_console_url(uri, region) {
        links.insert(console, url);
    }
}

fn dataset_line(dataset: &DatasetRef, limits: &Limits) -> String {
    let uri = crate::layout::s3_uri(&dataset.bucket, &dataset.key);
    let mut line = one_line(&uri, limits.field);
    if let Some(version) = &dataset.version_id {
        line.push_str(&format!(" (version {})", one_line(version, 128)));
    } else if let Some(etag) = &dataset.etag {
        line.push_str(&format!(" (ETag {})", one_line(etag, 128)));
    }
    line
}

fn more(out: &mut String, omitted: usize, what: &str) {
    if omitted > 0 {
        out.push_str(&format!("  … and {omitted} more {what} (see the report)\n"));
    }
}

// ---------------------------------------------------------------------------------------
// Kinds.

fn gate_verdict(
    v: &GateVerdict,
    source: &Source<'_>,
    tag: &str,
    limits: &Limits,
    allow_prompts: bool,
) -> Draft {
    let total_failing = match source.body {
        Body::Known(Event::GateVerdict(full)) => full
            .metrics
            .iter()
            .filter(|m| m.status == GateStatus::Fail)
            .count(),
        _ => 0,
    };
    let total_metrics = match source.body {
        Body::Known(Event::GateVerdict(full)) => full.metrics.len(),
        _ => v.metrics.len(),
    };
    let (what, headline) = match v.outcome {
        Outcome::Pass => (
            "quality gate passed".to_owned(),
            format!(
                "Release {} of {} passed its quality gate.",
                v.release, v.application
            ),
        ),
        Outcome::Fail => (
            if total_failing > 0 {
                format!("quality gate FAILED ({total_failing} of {total_metrics} metrics failing)")
            } else {
                "quality gate FAILED".to_owned()
            },
            format!(
                "Release {} of {} FAILED its quality gate.",
                v.release, v.application
            ),
        ),
        Outcome::Inconclusive => (
            "quality gate inconclusive".to_owned(),
            format!(
                "The quality gate of {} release {} is inconclusive: not enough evidence to pass or fail it.",
                v.application, v.release
            ),
        ),
        Outcome::Error => (
            "evaluation ERROR, no verdict".to_owned(),
            format!(
                "The evaluation of {} release {} failed: there is no verdict.",
                v.application, v.release
            ),
        ),
    };
    let subject = text::subject(&[
        Part::Fixed(tag),
        Part::Name(&v.application),
        Part::Fixed(" "),
        Part::Name(&v.release),
        Part::Fixed(": "),
        Part::Fixed(&what),
    ]);

    let mut body = String::new();
    push_field(&mut body, "Outcome", v.outcome.as_str());
    if let Some(baseline) = &v.baseline_release {
        push_field(&mut body, "Baseline", &one_line(baseline, limits.field));
    }
    if !v.reasons.is_empty() {
        body.push_str("\nWhy:\n");
        for reason in &v.reasons {
            body.push_str(&format!("  - {reason}\n"));
        }
    }
    let omitted = |name| match source.body {
        Body::Known(Event::GateVerdict(full)) => match name {
            "metrics" => full.metrics.len().saturating_sub(v.metrics.len()),
            "reasons" => full.reasons.len().saturating_sub(v.reasons.len()),
            "worstPrompts" => full
                .worst_prompts
                .len()
                .saturating_sub(v.worst_prompts.len()),
            _ => 0,
        },
        _ => 0,
    };
    more(&mut body, omitted("reasons"), "reasons");

    if !v.metrics.is_empty() {
        body.push_str(&format!(
            "\nMetrics ({} failing of {}; failing first):\n",
            total_failing, total_metrics
        ));
        body.push_str(&metrics_table(&v.metrics));
        let left_out = omitted("metrics");
        if left_out > 0 {
            let failing_left_out = total_failing.saturating_sub(
                v.metrics
                    .iter()
                    .filter(|m| m.status == GateStatus::Fail)
                    .count(),
            );
            body.push_str(&format!(
                "  … and {left_out} more metrics ({failing_left_out} of them failing) in the report\n"
            ));
        }
    }

    if !v.worst_prompts.is_empty() {
        body.push_str("\nWorst prompts (judge explanations, shortened):\n");
        for (i, p) in v.worst_prompts.iter().enumerate() {
            let mut head = format!(
                "  {}. {}  score {}  prompt {}",
                i + 1,
                p.metric,
                number(p.score),
                p.prompt_hash.chars().take(12).collect::<String>()
            );
            if let Some(category) = &p.category {
                head.push_str(&format!("  category {}", one_line(category, 64)));
            }
            body.push_str(&head);
            body.push('\n');
            body.push_str(&format!("     Judge: {}\n", p.explanation));
            if allow_prompts && let Some(prompt) = &p.prompt {
                body.push_str(&format!("     Prompt: {prompt}\n"));
            }
        }
        more(&mut body, omitted("worstPrompts"), "low-scoring prompts");
    }

    let mut links = BTreeMap::new();
    body.push('\n');
    push_s3(&mut body, "Report", &v.report_uri, source.region, limits);
    push_s3(&mut body, "Verdict", &v.verdict_uri, source.region, limits);
    link_s3(
        &mut links,
        "report",
        "reportConsole",
        &v.report_uri,
        source.region,
    );
    link_s3(
        &mut links,
        "verdict",
        "verdictConsole",
        &v.verdict_uri,
        source.region,
    );
    jobs_section(&mut body, &mut links, &v.job_arns, source.region, limits);

    Draft {
        subject,
        headline: one_line(&headline, limits.field),
        application: Some(v.application.clone()),
        release: Some(v.release.clone()),
        outcome: Some(v.outcome.as_str()),
        body,
        links,
        ..Draft::default()
    }
}

fn metrics_table(metrics: &[MetricSummary]) -> String {
    let with_pass_rate = metrics.iter().any(|m| m.pass_rate.is_some());
    let mut headers = vec![
        "Status",
        "Metric",
        "Value",
        "Threshold",
        "Baseline",
        "Change",
        "Scored",
    ];
    let mut right = vec![false, false, true, false, true, true, true];
    if with_pass_rate {
        headers.push("Pass rate");
        right.push(true);
    }
    let rows: Vec<Vec<String>> = metrics
        .iter()
        .map(|m| {
            let mut row = vec![
                status_label(m.status).to_owned(),
                one_line(&m.metric, 48),
                number(m.value),
                m.threshold.clone().unwrap_or_else(|| "-".to_owned()),
                number(m.baseline_value),
                signed(m.delta),
                format!("{}/{}", m.scored, m.scored + m.unscored),
            ];
            if with_pass_rate {
                row.push(
                    m.pass_rate
                        .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0)),
                );
            }
            row
        })
        .collect();
    table(&headers, &rows, &right)
}

fn jobs_section(
    body: &mut String,
    links: &mut BTreeMap<&'static str, String>,
    job_arns: &[String],
    region: &str,
    limits: &Limits,
) {
    if job_arns.is_empty() {
        return;
    }
    let region = job_arns
        .iter()
        .find_map(|a| text::arn_region(a))
        .unwrap_or(region);
    body.push_str("Evaluation jobs:\n");
    for arn in job_arns {
        body.push_str(&format!("  {}\n", one_line(arn, limits.field)));
    }
    if let Some(url) = text::bedrock_evaluations_url(region) {
        body.push_str(&format!("  Bedrock console: {url}\n"));
        links.insert("bedrockConsole", url);
    }
}

fn dataset_rejected(d: &DatasetRejected, source: &Source<'_>, tag: &str, limits: &Limits) -> Draft {
    let file = d.dataset.key.rsplit('/').next().unwrap_or(&d.dataset.key);
    let problems = if d.error_count == 1 {
        "1 problem".to_owned()
    } else {
        format!("{} problems", d.error_count)
    };
    let what = format!(" rejected ({problems})");
    let (subject, headline) = match (&d.application, &d.release) {
        (Some(app), Some(release)) => (
            text::subject(&[
                Part::Fixed(tag),
                Part::Name(app),
                Part::Fixed(" "),
                Part::Name(release),
                Part::Fixed(": dataset "),
                Part::Name(file),
                Part::Fixed(&what),
            ]),
            format!(
                "A dataset for {app} release {release} was rejected: nothing was submitted for evaluation."
            ),
        ),
        (Some(app), None) => (
            text::subject(&[
                Part::Fixed(tag),
                Part::Name(app),
                Part::Fixed(": dataset "),
                Part::Name(file),
                Part::Fixed(&what),
            ]),
            format!("A dataset for {app} was rejected: nothing was submitted for evaluation."),
        ),
        _ => (
            text::subject(&[
                Part::Fixed(tag),
                Part::Fixed("dataset "),
                Part::Name(&d.dataset.key),
                Part::Fixed(&what),
            ]),
            "A dataset upload was rejected: nothing was submitted for evaluation.".to_owned(),
        ),
    };
    let mut body = String::new();
    push_field(&mut body, "Dataset", &dataset_line(&d.dataset, limits));
    push_field(&mut body, "Reason", &d.reason);
    if !d.errors.is_empty() {
        let shown = d.errors.len() as u64;
        if d.error_count > shown {
            body.push_str(&format!(
                "\nProblems ({} in total, first {shown} here):\n",
                d.error_count
            ));
        } else {
            body.push_str(&format!("\nProblems ({}):\n", d.error_count.max(shown)));
        }
        for e in &d.errors {
            match e.line {
                Some(line) => body.push_str(&format!("  line {line}: {}\n", e.message)),
                None => body.push_str(&format!("  {}\n", e.message)),
            }
        }
    }
    let mut links = BTreeMap::new();
    body.push('\n');
    push_s3(&mut body, "Report", &d.report_uri, source.region, limits);
    link_s3(
        &mut links,
        "report",
        "reportConsole",
        &d.report_uri,
        source.region,
    );
    let dataset_uri = crate::layout::s3_uri(&d.dataset.bucket, &d.dataset.key);
    link_s3(
        &mut links,
        "dataset",
        "datasetConsole",
        &dataset_uri,
        source.region,
    );
    body.push_str("\nFix what the report lists and upload the dataset again.\n");
    Draft {
        subject,
        headline: one_line(&headline, limits.field * 2),
        application: d.application.clone(),
        release: d.release.clone(),
        body,
        links,
        ..Draft::default()
    }
}

fn evaluation_submitted(
    e: &EvaluationSubmitted,
    source: &Source<'_>,
    tag: &str,
    limits: &Limits,
) -> Draft {
    let subject = text::subject(&[
        Part::Fixed(tag),
        Part::Name(&e.application),
        Part::Fixed(" "),
        Part::Name(&e.release),
        Part::Fixed(&format!(
            ": evaluation shard {}/{} submitted",
            e.shard, e.shard_count
        )),
    ]);
    let headline = format!(
        "The evaluation of {} release {} (shard {} of {}, {} prompts) was submitted to Amazon Bedrock.",
        e.application, e.release, e.shard, e.shard_count, e.prompts
    );
    let mut body = String::new();
    push_field(&mut body, "Dataset", &dataset_line(&e.dataset, limits));
    push_field(&mut body, "Job name", &one_line(&e.job_name, limits.field));
    push_field(&mut body, "Job ARN", &one_line(&e.job_arn, limits.field));
    let mut links = BTreeMap::new();
    let region = text::arn_region(&e.job_arn).unwrap_or(source.region);
    if let Some(url) = text::bedrock_evaluations_url(region) {
        push_field(&mut body, "Console", &url);
        links.insert("bedrockConsole", url);
    }
    body.push_str("\nThe verdict follows once every shard's job has finished.\n");
    Draft {
        subject,
        headline: one_line(&headline, limits.field * 2),
        application: Some(e.application.clone()),
        release: Some(e.release.clone()),
        body,
        links,
        ..Draft::default()
    }
}

fn evaluation_deferred(e: &EvaluationDeferred, tag: &str, limits: &Limits) -> Draft {
    let subject = text::subject(&[
        Part::Fixed(tag),
        Part::Name(&e.application),
        Part::Fixed(" "),
        Part::Name(&e.release),
        Part::Fixed(&format!(
            ": evaluation shard {}/{} deferred",
            e.shard, e.shard_count
        )),
    ]);
    let headline = format!(
        "The evaluation of {} release {} (shard {} of {}) was deferred; evalgate submits it automatically later.",
        e.application, e.release, e.shard, e.shard_count
    );
    let mut body = String::new();
    push_field(&mut body, "Reason", &e.reason);
    push_field(&mut body, "Dataset", &dataset_line(&e.dataset, limits));
    push_field(&mut body, "Job name", &one_line(&e.job_name, limits.field));
    body.push_str(
        "\nThe shard is recorded and submitted, oldest first, as soon as Amazon Bedrock accepts new\nevaluation jobs. Nothing to do unless this keeps happening for hours.\n",
    );
    Draft {
        subject,
        headline: one_line(&headline, limits.field * 2),
        application: Some(e.application.clone()),
        release: Some(e.release.clone()),
        body,
        ..Draft::default()
    }
}

fn release_promoted(p: &ReleasePromoted, source: &Source<'_>, tag: &str, limits: &Limits) -> Draft {
    let mut parts = vec![
        Part::Fixed(tag),
        Part::Name(&p.application),
        Part::Fixed(": "),
        Part::Name(&p.release),
        Part::Fixed(" promoted"),
    ];
    if let Some(previous) = &p.previous {
        parts.push(Part::Fixed(" (was "));
        parts.push(Part::Name(previous));
        parts.push(Part::Fixed(")"));
    }
    let subject = text::subject(&parts);
    let headline = match &p.previous {
        Some(previous) => format!(
            "{} now runs release {} (previously {}): it passed its quality gate.",
            p.application, p.release, previous
        ),
        None => format!(
            "{} now runs release {}: it passed its quality gate.",
            p.application, p.release
        ),
    };
    let mut body = String::new();
    if let Some(previous) = &p.previous {
        push_field(&mut body, "Previous", &one_line(previous, limits.field));
    }
    push_field(&mut body, "Pointer", &one_line(&p.pointer, limits.field));
    let mut links = BTreeMap::new();
    push_s3(&mut body, "Verdict", &p.verdict_uri, source.region, limits);
    link_s3(
        &mut links,
        "verdict",
        "verdictConsole",
        &p.verdict_uri,
        source.region,
    );
    Draft {
        subject,
        headline: one_line(&headline, limits.field * 2),
        application: Some(p.application.clone()),
        release: Some(p.release.clone()),
        body,
        links,
        ..Draft::default()
    }
}

fn alarm_section(
    body: &mut String,
    links: &mut BTreeMap<&'static str, String>,
    alarm: &AlarmRef,
    region: &str,
    limits: &Limits,
) {
    push_field(body, "Alarm", &one_line(&alarm.name, limits.field));
    let mut state = one_line(&alarm.state, 32);
    if let Some(previous) = &alarm.previous_state {
        state.push_str(&format!(" (was {})", one_line(previous, 32)));
    }
    if let Some(since) = &alarm.since {
        state.push_str(&format!(" since {}", one_line(since, 40)));
    }
    push_field(body, "  State", &state);
    if let Some(reason) = &alarm.reason {
        push_field(body, "  Why", reason);
    }
    if !alarm.metrics.is_empty() {
        push_field(
            body,
            "  Watches",
            &one_line(&alarm.metrics.join(", "), limits.text),
        );
    }
    let region = alarm
        .arn
        .as_deref()
        .and_then(text::arn_region)
        .unwrap_or(region);
    if let Some(url) = text::alarm_console_url(&alarm.name, region) {
        push_field(body, "  Console", &url);
        links.insert("alarmConsole", url);
    }
}

fn rollback_executed(
    r: &RollbackExecuted,
    source: &Source<'_>,
    tag: &str,
    limits: &Limits,
) -> Draft {
    let subject = text::subject(&[
        Part::Fixed(tag),
        Part::Name(&r.application),
        Part::Fixed(": ROLLED BACK "),
        Part::Name(&r.from),
        Part::Fixed(" -> "),
        Part::Name(&r.to),
    ]);
    let headline = format!(
        "{} was ROLLED BACK from release {} to {} because alarm {} fired.",
        r.application, r.from, r.to, r.alarm.name
    );
    let mut body = String::new();
    push_field(&mut body, "From", &one_line(&r.from, limits.field));
    push_field(&mut body, "To", &one_line(&r.to, limits.field));
    push_field(&mut body, "Pointer", &one_line(&r.pointer, limits.field));
    push_field(&mut body, "Reason", &r.reason);
    let mut links = BTreeMap::new();
    alarm_section(&mut body, &mut links, &r.alarm, source.region, limits);
    body.push_str(&format!(
        "\nProduction now runs {}. Find out why the alarm fired before releasing {} again.\n",
        one_line(&r.to, limits.field),
        one_line(&r.from, limits.field)
    ));
    Draft {
        subject,
        headline: one_line(&headline, limits.field * 2),
        application: Some(r.application.clone()),
        body,
        links,
        ..Draft::default()
    }
}

fn rollback_skipped(r: &RollbackSkipped, source: &Source<'_>, tag: &str, limits: &Limits) -> Draft {
    let current = r.current.as_deref().unwrap_or("the current release");
    let subject = match (&r.would_roll_back_to, r.dry_run) {
        (Some(to), true) => text::subject(&[
            Part::Fixed(tag),
            Part::Name(&r.application),
            Part::Fixed(": dry run, would roll back "),
            Part::Name(current),
            Part::Fixed(" -> "),
            Part::Name(to),
        ]),
        _ => text::subject(&[
            Part::Fixed(tag),
            Part::Name(&r.application),
            Part::Fixed(": rollback NOT done, "),
            Part::Name(current),
            Part::Fixed(" still live"),
        ]),
    };
    let headline = if r.dry_run {
        format!(
            "Dry run: alarm {} would have rolled {} back{}; nothing was changed.",
            r.alarm.name,
            r.application,
            r.would_roll_back_to
                .as_deref()
                .map(|to| format!(" from {current} to {to}"))
                .unwrap_or_default()
        )
    } else {
        format!(
            "Alarm {} asked to roll {} back, but evalgate did NOT roll back: {}{}",
            r.alarm.name,
            r.application,
            r.reason,
            if r.reason.ends_with(['.', '!', '?']) {
                ""
            } else {
                "."
            }
        )
    };
    let mut body = String::new();
    if let Some(current) = &r.current {
        push_field(&mut body, "Current", &one_line(current, limits.field));
    }
    if let Some(to) = &r.would_roll_back_to {
        push_field(&mut body, "Would go to", &one_line(to, limits.field));
    }
    push_field(&mut body, "Reason", &r.reason);
    push_field(&mut body, "Dry run", if r.dry_run { "yes" } else { "no" });
    let mut links = BTreeMap::new();
    alarm_section(&mut body, &mut links, &r.alarm, source.region, limits);
    body.push_str(&format!(
        "\nProduction still runs {} while the alarm fires: decide whether to roll back by hand.\n",
        one_line(current, limits.field)
    ));
    Draft {
        subject,
        headline: one_line(&headline, limits.field * 2),
        application: Some(r.application.clone()),
        body,
        links,
        ..Draft::default()
    }
}

fn unreadable(
    source: &Source<'_>,
    detail: &Value,
    problem: Option<&str>,
    tag: &str,
    limits: &Limits,
) -> Draft {
    let application = detail.get("application").and_then(Value::as_str);
    let release = detail.get("release").and_then(Value::as_str);
    let kind = one_line(source.detail_type, 128);
    let mut parts = vec![Part::Fixed(tag)];
    if let Some(app) = application {
        parts.push(Part::Name(app));
        if let Some(release) = release {
            parts.push(Part::Fixed(" "));
            parts.push(Part::Name(release));
        }
        parts.push(Part::Fixed(": "));
    }
    parts.push(Part::Name(&kind));
    if problem.is_some() {
        parts.push(Part::Fixed(" (unreadable)"));
    }
    let subject = text::subject(&parts);
    let headline = match problem {
        Some(_) => format!(
            "An evalgate {kind} event could not be read by this version of send-alert; its fields are shown as received."
        ),
        None => format!(
            "evalgate reported a {kind} event, a kind this version of send-alert does not know; its fields are shown as received."
        ),
    };
    let mut body = String::new();
    if let Some(problem) = problem {
        push_field(&mut body, "Problem", &one_line(problem, limits.text));
    }
    let mut omitted = BTreeMap::new();
    match detail {
        Value::Object(map) => {
            body.push_str("\nFields:\n");
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            let shown = fields.len().min(limits.fields);
            for (key, value) in &fields[..shown] {
                let rendered = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                body.push_str(&format!(
                    "  {}: {}\n",
                    one_line(key, 64),
                    one_line(&rendered, limits.text)
                ));
            }
            if fields.len() > shown {
                omitted.insert("fields", fields.len() - shown);
                body.push_str(&format!(
                    "  … and {} more fields (in the JSON variant of this alert)\n",
                    fields.len() - shown
                ));
            }
        }
        other => {
            body.push_str("\nDetail:\n");
            body.push_str(&format!(
                "  {}\n",
                one_line(&other.to_string(), limits.text)
            ));
        }
    }
    let mut links = BTreeMap::new();
    for (field, label, name, console) in [
        ("reportUri", "Report", "report", "reportConsole"),
        ("verdictUri", "Verdict", "verdict", "verdictConsole"),
    ] {
        if let Some(uri) = detail.get(field).and_then(Value::as_str) {
            body.push('\n');
            push_s3(&mut body, label, uri, source.region, limits);
            link_s3(&mut links, name, console, uri, source.region);
        }
    }
    let detail = clamp(detail, limits, 0);
    let detail = match detail {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .take(limits.fields.max(16))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    };
    Draft {
        subject,
        headline: one_line(&headline, limits.field * 2),
        application: application.map(str::to_owned),
        release: release.map(str::to_owned),
        body,
        links,
        detail,
        omitted,
        ..Draft::default()
    }
}
