//! Snapshot-style tests of every kind of alert: the whole subject and text body are compared,
//! so any change to what people read is a deliberate, reviewed change.

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::events::*;
use crate::verdict::GateStatus;

pub(crate) fn time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
        .single()
        .unwrap()
}

pub(crate) fn alarm() -> AlarmRef {
    AlarmRef {
        name: "support-bot-5xx".into(),
        arn: Some("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:support-bot-5xx".into()),
        state: "ALARM".into(),
        previous_state: Some("OK".into()),
        reason: Some("Threshold Crossed: 3 datapoints [12.0, 9.0, 11.0] were greater than the threshold (5.0).".into()),
        since: Some("2026-11-22T11:58:00Z".into()),
        metrics: vec!["5XXError".into()],
        event_id: "alarm-event-1".into(),
    }
}

pub(crate) fn metric(name: &str, value: f64, status: GateStatus) -> MetricSummary {
    MetricSummary {
        metric: name.into(),
        value: Some(value),
        threshold: Some(">= 0.80".into()),
        baseline_value: Some(0.84),
        delta: Some(value - 0.84),
        status,
        scored: 30,
        unscored: 0,
        pass_rate: None,
    }
}

pub(crate) fn verdict(outcome: Outcome) -> GateVerdict {
    GateVerdict {
        event_key: "verdict/support-bot/v3".into(),
        application: "support-bot".into(),
        release: "v3".into(),
        outcome,
        reasons: vec!["Builtin.Correctness mean 0.610 is below the bar >= 0.80".into()],
        metrics: vec![
            metric("Builtin.Helpfulness", 0.91, GateStatus::Pass),
            metric("Builtin.Correctness", 0.61, GateStatus::Fail),
        ],
        worst_prompts: vec![PromptNote {
            metric: "Builtin.Correctness".into(),
            prompt_hash: "3f2a9c1e7b12aa55".into(),
            score: Some(0.1),
            explanation: "The response says refunds take 60 days;\nthe reference says 30.".into(),
            category: Some("billing".into()),
            prompt: Some("How long do refunds take?".into()),
        }],
        baseline_release: Some("v2".into()),
        verdict_uri: "s3://evalgate-data/verdicts/support-bot/v3/verdict.json".into(),
        report_uri: "s3://evalgate-data/verdicts/support-bot/v3/report.md".into(),
        job_arns: vec!["arn:aws:bedrock:eu-west-1:123456789012:evaluation-job/abc123".into()],
    }
}

fn dataset() -> DatasetRef {
    DatasetRef {
        bucket: "evalgate-data".into(),
        key: "datasets/support-bot/v3/smoke.jsonl".into(),
        etag: Some("\"9b2cf535f27731c9\"".into()),
        version_id: None,
    }
}

pub(crate) fn every_kind() -> Vec<Event> {
    vec![
        Event::GateVerdict(verdict(Outcome::Fail)),
        Event::DatasetRejected(DatasetRejected {
            event_key: "rejected/support-bot/v3/smoke".into(),
            application: Some("support-bot".into()),
            release: Some("v3".into()),
            dataset: dataset(),
            reason: "3 lines are not valid records; fix them and upload the file again.".into(),
            error_count: 3,
            errors: vec![
                LineProblem {
                    line: Some(4),
                    message: "missing \"prompt\"".into(),
                },
                LineProblem {
                    line: Some(9),
                    message: "modelResponses must hold exactly one response".into(),
                },
            ],
            report_uri: "s3://evalgate-data/rejections/support-bot/v3/smoke.json".into(),
        }),
        Event::EvaluationDeferred(EvaluationDeferred {
            event_key: "deferred/eg-support-bot-v3-1".into(),
            application: "support-bot".into(),
            release: "v3".into(),
            dataset: dataset(),
            shard: 2,
            shard_count: 3,
            job_name: "eg-support-bot-v3-0a1b2c3d4e-2".into(),
            reason: "Bedrock's concurrent evaluation job quota is reached".into(),
        }),
        Event::EvaluationSubmitted(EvaluationSubmitted {
            event_key: "submitted/eg-support-bot-v3-1".into(),
            application: "support-bot".into(),
            release: "v3".into(),
            dataset: dataset(),
            shard: 1,
            shard_count: 3,
            prompts: 400,
            job_name: "eg-support-bot-v3-0a1b2c3d4e-1".into(),
            job_arn: "arn:aws:bedrock:eu-west-1:123456789012:evaluation-job/abc123".into(),
        }),
        Event::ReleasePromoted(ReleasePromoted {
            event_key: "promoted/support-bot/v3".into(),
            application: "support-bot".into(),
            release: "v3".into(),
            previous: Some("v2".into()),
            pointer: "ssm:/support-bot/release".into(),
            verdict_uri: "s3://evalgate-data/verdicts/support-bot/v3/verdict.json".into(),
        }),
        Event::RollbackExecuted(RollbackExecuted {
            event_key: "rollback/support-bot/alarm-event-1".into(),
            application: "support-bot".into(),
            from: "v3".into(),
            to: "v2".into(),
            pointer: "ssm:/support-bot/release".into(),
            alarm: alarm(),
            reason:
                "alarm support-bot-5xx is allow-listed and fired 4 minutes after v3 was promoted"
                    .into(),
        }),
        Event::RollbackSkipped(RollbackSkipped {
            event_key: "rollback/support-bot/alarm-event-1".into(),
            application: "support-bot".into(),
            current: Some("v3".into()),
            would_roll_back_to: None,
            alarm: alarm(),
            reason: "no earlier release passed its gate".into(),
            dry_run: false,
        }),
    ]
}

pub(crate) fn source<'a>(body: Body<'a>, detail_type: &'a str) -> Source<'a> {
    Source {
        event_id: "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        detail_type,
        time: Some(time()),
        region: "eu-west-1",
        body,
    }
}

fn settings(alerts: &AlertsPolicy) -> Settings<'_> {
    Settings {
        alerts,
        policy_note: None,
        policy_uri: Some("s3://evalgate-data/policies/support-bot.yaml"),
    }
}

/// Compares `actual` with `src/alert/snapshots/<name>.txt`; `EVALGATE_UPDATE_SNAPSHOTS=1`
/// rewrites the file instead (review the diff before committing it).
fn snapshot(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/alert/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("EVALGATE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with EVALGATE_UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "alert {name} differs from {} at line {}:\n--- expected\n{}\n+++ actual\n{}\n\n(whole actual text:)\n{actual}",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// What a person sees: subject, attributes, body.
fn shown(alert: &Alert) -> String {
    let attributes: Vec<String> = alert
        .attributes
        .iter()
        .map(|a| format!("{}={}", a.name, a.value))
        .collect();
    format!(
        "Subject: {}\nAttributes: {}\n\n{}",
        alert.subject,
        attributes.join(" "),
        alert.text
    )
}

fn slug(kind: &str) -> String {
    kind.to_lowercase().replace(' ', "-")
}

#[test]
fn every_kind_reads_as_its_snapshot() {
    let alerts = AlertsPolicy::default();
    for event in every_kind() {
        let alert = render(
            &source(Body::Known(&event), event.detail_type()),
            &settings(&alerts),
        );
        snapshot(&slug(event.detail_type()), &shown(&alert));
    }
}

#[test]
fn other_gate_outcomes_read_as_their_snapshots() {
    let alerts = AlertsPolicy::default();
    for outcome in [Outcome::Pass, Outcome::Inconclusive, Outcome::Error] {
        let mut v = verdict(outcome);
        if outcome != Outcome::Fail {
            v.metrics[1].status = if outcome == Outcome::Inconclusive {
                GateStatus::Inconclusive
            } else {
                GateStatus::Pass
            };
            v.reasons = vec![format!("{outcome}: see the report")];
            v.worst_prompts.clear();
        }
        let event = Event::GateVerdict(v);
        let alert = render(
            &source(Body::Known(&event), event.detail_type()),
            &settings(&alerts),
        );
        snapshot(&format!("gate-verdict-{outcome}"), &shown(&alert));
    }
}

#[test]
fn dry_run_rollback_reads_as_its_snapshot() {
    let alerts = AlertsPolicy::default();
    let event = Event::RollbackSkipped(RollbackSkipped {
        event_key: "rollback/support-bot/alarm-event-1".into(),
        application: "support-bot".into(),
        current: Some("v3".into()),
        would_roll_back_to: Some("v2".into()),
        alarm: alarm(),
        reason: "the application's rollback policy is in dry-run mode".into(),
        dry_run: true,
    });
    let alert = render(
        &source(Body::Known(&event), event.detail_type()),
        &settings(&alerts),
    );
    snapshot("rollback-skipped-dry-run", &shown(&alert));
}

#[test]
fn unknown_and_malformed_events_still_alert_with_their_fields() {
    let alerts = AlertsPolicy::default();
    let detail = json!({
        "eventKey": "budget/support-bot/2026-11", "application": "support-bot",
        "spentUsd": 412.5, "limitUsd": 400, "prompt": "must not appear",
        "reportUri": "s3://evalgate-data/budgets/support-bot/2026-11.json"
    });
    let alert = render(
        &source(
            Body::Unreadable {
                detail: &detail,
                problem: None,
            },
            "Budget Exceeded",
        ),
        &settings(&alerts),
    );
    assert_eq!(alert.severity, Severity::Warning);
    assert!(
        !alert.message.contains("must not appear"),
        "prompt-like fields are dropped"
    );
    snapshot("unknown-kind", &shown(&alert));

    let detail = json!({"application": "support-bot", "release": "v3", "outcome": "fail"});
    let problem = Event::parse(Event::GATE_VERDICT, detail.clone())
        .unwrap_err()
        .to_string();
    let alert = render(
        &source(
            Body::Unreadable {
                detail: &detail,
                problem: Some(&problem),
            },
            Event::GATE_VERDICT,
        ),
        &settings(&alerts),
    );
    assert_eq!(alert.severity, Severity::High, "the worst a verdict can be");
    snapshot("malformed-gate-verdict", &shown(&alert));
}

#[test]
fn default_severities_follow_kind_and_outcome() {
    let expected = [
        ("Gate Verdict", Severity::High),
        ("Dataset Rejected", Severity::Warning),
        ("Evaluation Deferred", Severity::Info),
        ("Evaluation Submitted", Severity::Info),
        ("Release Promoted", Severity::Info),
        ("Rollback Executed", Severity::Critical),
        ("Rollback Skipped", Severity::Critical),
    ];
    for (event, (kind, severity)) in every_kind().iter().zip(expected) {
        assert_eq!(event.detail_type(), kind);
        assert_eq!(
            default_severity(&source(Body::Known(event), kind)),
            severity,
            "{kind}"
        );
    }
    for (outcome, severity) in [
        (Outcome::Pass, Severity::Info),
        (Outcome::Fail, Severity::High),
        (Outcome::Inconclusive, Severity::Warning),
        (Outcome::Error, Severity::High),
    ] {
        let event = Event::GateVerdict(verdict(outcome));
        assert_eq!(
            default_severity(&source(Body::Known(&event), "Gate Verdict")),
            severity
        );
    }
    let detail = json!({});
    for (kind, severity) in [
        ("Something New", Severity::Warning),
        ("Rollback Executed", Severity::Critical),
        ("Release Promoted", Severity::Warning),
    ] {
        let s = source(
            Body::Unreadable {
                detail: &detail,
                problem: Some("bad"),
            },
            kind,
        );
        assert_eq!(default_severity(&s), severity, "{kind}");
    }
}

#[test]
fn overrides_change_severity_subject_and_attributes() {
    let alerts = AlertsPolicy {
        severity: SeverityOverrides {
            gate_fail: Some(Severity::Critical),
            other: Some(Severity::Info),
            ..Default::default()
        },
        ..Default::default()
    };
    let event = Event::GateVerdict(verdict(Outcome::Fail));
    let alert = render(
        &source(Body::Known(&event), "Gate Verdict"),
        &settings(&alerts),
    );
    assert_eq!(alert.severity, Severity::Critical);
    assert!(
        alert.subject.starts_with("[CRITICAL] "),
        "{}",
        alert.subject
    );
    assert!(alert.attributes.contains(&Attribute {
        name: "severity",
        data_type: "String",
        value: "critical".into()
    }));
    assert!(alert.attributes.contains(&Attribute {
        name: "severity_level",
        data_type: "Number",
        value: "4".into()
    }));
    let detail = json!({});
    let s = source(
        Body::Unreadable {
            detail: &detail,
            problem: None,
        },
        "Something New",
    );
    assert_eq!(severity(&s, &alerts.severity), Severity::Info);
}

#[test]
fn prompt_text_appears_only_when_the_policy_allows_it() {
    let event = Event::GateVerdict(verdict(Outcome::Fail));
    let src = source(Body::Known(&event), "Gate Verdict");
    let hidden = render(&src, &settings(&AlertsPolicy::default()));
    assert!(
        !hidden.message.contains("How long do refunds take"),
        "{}",
        hidden.message
    );
    assert!(
        hidden
            .text
            .contains("Judge: The response says refunds take 60 days; the reference says 30.")
    );
    let allowed = AlertsPolicy {
        include_prompt_text: true,
        ..Default::default()
    };
    let shown = render(&src, &settings(&allowed));
    assert!(
        shown
            .text
            .contains("     Prompt: How long do refunds take?\n"),
        "{}",
        shown.text
    );
    assert_eq!(
        shown.document["detail"]["worstPrompts"][0]["prompt"],
        "How long do refunds take?"
    );
}

#[test]
fn the_message_has_default_email_and_sms_variants() {
    let event = Event::RollbackExecuted(match &every_kind()[5] {
        Event::RollbackExecuted(r) => r.clone(),
        _ => unreachable!(),
    });
    let alert = render(
        &source(Body::Known(&event), event.detail_type()),
        &settings(&AlertsPolicy::default()),
    );
    let message: serde_json::Value = serde_json::from_str(&alert.message).unwrap();
    assert_eq!(message["email"], alert.text.as_str());
    assert_eq!(message["sms"], alert.subject.as_str());
    let document: serde_json::Value =
        serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
    assert_eq!(document, alert.document);
    assert_eq!(document["severity"], "critical");
    assert_eq!(document["kind"], "Rollback Executed");
    assert_eq!(document["application"], "support-bot");
    assert_eq!(document["eventId"], "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    assert_eq!(document["detail"]["from"], "v3");
    assert_eq!(document["detail"]["to"], "v2");
    assert_eq!(
        document["links"]["alarmConsole"],
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/support-bot-5xx"
    );
    assert_eq!(
        alert.size,
        alert.message.len()
            + alert.subject.len()
            + alert
                .attributes
                .iter()
                .map(|a| a.name.len() + a.data_type.len() + a.value.len())
                .sum::<usize>()
    );
}

/// A verdict far beyond what fits: 200 metrics with long names, 200 reasons, 200 worst
/// prompts with 20 KB explanations.
pub(crate) fn huge_verdict() -> GateVerdict {
    let mut v = verdict(Outcome::Fail);
    v.metrics = (0..200)
        .map(|i| {
            // Failing metrics are spread through the list: the alert must still put them first.
            let status = if i % 40 == 7 {
                GateStatus::Fail
            } else {
                GateStatus::Pass
            };
            let mut m = metric(
                &format!("Custom.Metric{i:03}-{}", "n".repeat(300)),
                0.5,
                status,
            );
            m.threshold = Some(format!(">= 0.{}", "9".repeat(200)));
            m
        })
        .collect();
    v.reasons = (0..200)
        .map(|i| format!("reason {i}: {}", "r".repeat(5_000)))
        .collect();
    v.worst_prompts = (0..200)
        .map(|i| PromptNote {
            metric: format!("Custom.Metric{i:03}"),
            prompt_hash: format!("{i:064x}"),
            score: Some(0.0),
            explanation: "e".repeat(20_000),
            category: None,
            prompt: Some("p".repeat(20_000)),
        })
        .collect();
    v.job_arns = (0..500)
        .map(|i| format!("arn:aws:bedrock:eu-west-1:123456789012:evaluation-job/{i:012}"))
        .collect();
    v
}

#[test]
fn huge_verdicts_fit_and_still_name_the_failing_metrics_first() {
    let event = Event::GateVerdict(huge_verdict());
    let raw = event.detail().to_string().len();
    assert!(
        raw > 4 * SNS_MAX_PUBLISH_BYTES,
        "the input really is too large: {raw}"
    );
    let allowed = AlertsPolicy {
        include_prompt_text: true,
        ..Default::default()
    };
    let alert = render(
        &source(Body::Known(&event), "Gate Verdict"),
        &settings(&allowed),
    );
    assert!(alert.size <= PUBLISH_BUDGET, "{}", alert.size);
    assert!(alert.message.len() < SNS_MAX_PUBLISH_BYTES);
    assert!(
        alert
            .subject
            .ends_with("quality gate FAILED (5 of 200 metrics failing)"),
        "{}",
        alert.subject
    );
    // The table's first rows are the five failing metrics, in the emitter's order.
    let rows: Vec<&str> = alert
        .text
        .lines()
        .skip_while(|l| !l.starts_with("Metrics ("))
        .skip(2)
        .take(6)
        .collect();
    for (row, i) in rows.iter().zip([7, 47, 87, 127, 167]) {
        assert!(row.starts_with("  FAIL    Custom.Metric"), "{row}");
        assert!(row.contains(&format!("Custom.Metric{i:03}-")), "{row}");
    }
    assert!(rows[5].starts_with("  pass"), "{}", rows[5]);
    let detail_metrics = alert.document["detail"]["metrics"].as_array().unwrap();
    assert_eq!(detail_metrics[0]["status"], "fail");
    assert_eq!(detail_metrics[4]["status"], "fail");
    assert_eq!(detail_metrics[5]["status"], "pass");
    // It says what it left out.
    assert!(alert.document["omitted"]["worstPrompts"].as_u64().unwrap() > 0);
    assert!(alert.text.contains("more reasons"));
    assert!(
        alert
            .text
            .contains("Metrics (5 failing of 200; failing first):")
    );
    assert!(
        alert
            .text
            .contains("Report:      s3://evalgate-data/verdicts/support-bot/v3/report.md")
    );
}

#[test]
fn absurd_events_still_fit() {
    let big = "x".repeat(3 * SNS_MAX_PUBLISH_BYTES);
    let mut fields = serde_json::Map::new();
    for i in 0..5_000 {
        fields.insert(format!("field{i}"), json!(big[..100].to_owned()));
    }
    fields.insert("application".into(), json!(big));
    fields.insert("release".into(), json!("客服".repeat(100_000)));
    let detail = serde_json::Value::Object(fields);
    let alert = render(
        &source(
            Body::Unreadable {
                detail: &detail,
                problem: None,
            },
            "Something New",
        ),
        &settings(&AlertsPolicy::default()),
    );
    assert!(alert.size <= PUBLISH_BUDGET, "{}", alert.size);
    assert!(alert.document["omitted"]["fields"].as_u64().unwrap() > 4_000);
    assert!(alert.subject.len() <= text::MAX_SUBJECT);
    assert!(
        alert.subject.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{}",
        alert.subject
    );
}

#[test]
fn unicode_names_make_ascii_subjects_and_keep_the_body_exact() {
    let mut v = verdict(Outcome::Pass);
    v.application = "support-bot".into();
    v.release = "v3 — «été» 客服\nbuild".into();
    let event = Event::GateVerdict(v);
    let alert = render(
        &source(Body::Known(&event), "Gate Verdict"),
        &settings(&AlertsPolicy::default()),
    );
    assert_eq!(
        alert.subject,
        "[INFO] evalgate support-bot v3 ? ??t?? ?? build: quality gate passed"
    );
    assert!(
        alert.text.contains("Release:     v3 — «été» 客服 build\n"),
        "{}",
        alert.text
    );
}

#[test]
fn a_policy_note_is_printed_and_carried() {
    let event = Event::GateVerdict(verdict(Outcome::Fail));
    let alert = render(
        &source(Body::Known(&event), "Gate Verdict"),
        &Settings {
            alerts: &AlertsPolicy::default(),
            policy_note: Some(
                "the policy s3://b/policies/support-bot.yaml is invalid (1 problem(s), the first: line 3: x), so the default alert settings apply.",
            ),
            policy_uri: Some("s3://b/policies/support-bot.yaml"),
        },
    );
    assert!(
        alert
            .text
            .contains("\nNote: the policy s3://b/policies/support-bot.yaml is invalid"),
        "{}",
        alert.text
    );
    assert!(!alert.text.contains("Alert settings:"));
    assert!(
        alert.document["policyNote"]
            .as_str()
            .unwrap()
            .contains("invalid")
    );
}

#[test]
fn overflowing_verdicts_step_down_the_ladder_and_say_so() {
    let mut v = huge_verdict();
    // 2,000 metrics: even their names alone overflow the first rendering.
    v.metrics = (0..2_000)
        .map(|i| {
            let status = if i == 1_999 {
                GateStatus::Fail
            } else {
                GateStatus::NotGated
            };
            metric(
                &format!("Custom.Metric{i:04}-{}", "n".repeat(300)),
                0.5,
                status,
            )
        })
        .collect();
    let event = Event::GateVerdict(v);
    let alert = render(
        &source(Body::Known(&event), "Gate Verdict"),
        &settings(&AlertsPolicy::default()),
    );
    assert!(alert.size <= PUBLISH_BUDGET, "{}", alert.size);
    assert!(alert.shortened);
    assert_eq!(alert.document["shortened"], true);
    assert!(alert.text.contains(
        "This alert was shortened to fit the SNS message size limit; the report has everything."
    ));
    let first_row = alert
        .text
        .lines()
        .skip_while(|l| !l.starts_with("Metrics ("))
        .nth(2)
        .unwrap();
    assert!(
        first_row.starts_with("  FAIL ") && first_row.contains(" Custom.Metric1999-"),
        "{first_row}"
    );
    assert!(
        alert
            .text
            .contains("more metrics (0 of them failing) in the report"),
        "{}",
        alert.text
    );
    assert!(alert.document["omitted"]["metrics"].as_u64().unwrap() >= 1_500);
}
