//! send-alert end to end: the real binary under the Lambda Runtime API harness, publishing
//! through the real SDK to an SNS topic on moto, observed through SQS subscriptions (raw and
//! enveloped, with and without filter policies), with its ledger and the policies in S3.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, QueueAttributeName};
use evalgate::events::*;
use evalgate::verdict::{GateStatus, Outcome};
use evalgate_tests::names::unique;
use evalgate_tests::runtime::FunctionProcess;
use evalgate_tests::stack::moto;
use serde_json::{Value, json};

const POLICY: &str = "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n";

/// One test's resources: a bucket, a topic and its subscribed queues.
struct Stack {
    bucket: String,
    topic_arn: String,
    /// Raw delivery, no filter: every alert's `default` variant with SQS message attributes.
    all: String,
    /// Standard (enveloped) delivery, no filter: what a non-raw subscriber sees.
    envelope: String,
    /// Raw delivery, filter policy `severity` in [high, critical].
    urgent: String,
}

async fn queue(name: &str) -> (String, String) {
    let sqs = moto().sqs();
    let url = sqs
        .create_queue()
        .queue_name(unique(name))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
    (url, arn)
}

async fn subscribe(topic_arn: &str, name: &str, raw: bool, filter: Option<Value>) -> String {
    let (url, arn) = queue(name).await;
    let mut request = moto()
        .sns()
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", if raw { "true" } else { "false" });
    if let Some(filter) = filter {
        request = request.attributes("FilterPolicy", filter.to_string());
    }
    request.send().await.unwrap();
    url
}

async fn stack() -> Stack {
    let bucket = unique("alerts");
    moto()
        .s3()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let topic_arn = moto()
        .sns()
        .create_topic()
        .name(unique("alerts"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let all = subscribe(&topic_arn, "all", true, None).await;
    let envelope = subscribe(&topic_arn, "envelope", false, None).await;
    let urgent = subscribe(
        &topic_arn,
        "urgent",
        true,
        Some(json!({"severity": ["high", "critical"]})),
    )
    .await;
    Stack {
        bucket,
        topic_arn,
        all,
        envelope,
        urgent,
    }
}

impl Stack {
    fn env(&self) -> Vec<(String, String)> {
        let mut env = moto().function_env();
        env.push(("EVALGATE_TOPIC_ARN".into(), self.topic_arn.clone()));
        env.push(("EVALGATE_BUCKET".into(), self.bucket.clone()));
        env
    }

    async fn function(&self) -> FunctionProcess {
        FunctionProcess::start_named("send-alert", &self.env())
            .await
            .unwrap()
    }

    async fn put_policy(&self, application: &str, text: &str) {
        moto()
            .s3()
            .put_object()
            .bucket(&self.bucket)
            .key(format!("policies/{application}.yaml"))
            .body(text.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
}

/// Receives until `count` messages arrived (deleting them), or fails after 20 s.
async fn receive(url: &str, count: usize) -> Vec<Message> {
    let sqs = moto().sqs();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} messages arrived",
            out.len()
        );
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        for message in got.messages() {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            out.push(message.clone());
        }
    }
    out
}

/// Asserts that nothing more arrives within a second.
async fn assert_empty(url: &str) {
    let got = moto()
        .sqs()
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let bodies: Vec<_> = got.messages().iter().filter_map(|m| m.body()).collect();
    assert!(bodies.is_empty(), "unexpected messages: {bodies:?}");
}

fn document(message: &Message) -> Value {
    serde_json::from_str(message.body().unwrap()).unwrap()
}

fn attribute(message: &Message, name: &str) -> String {
    let attrs = message.message_attributes().unwrap();
    attrs[name].string_value().unwrap().to_owned()
}

fn eventbridge(id: &str, detail_type: &str, detail: Value) -> Value {
    json!({
        "version": "0", "id": id, "detail-type": detail_type, "source": "evalgate",
        "account": "123456789012", "time": "2026-11-22T12:00:00Z", "region": "us-east-1",
        "resources": [], "detail": detail
    })
}

fn event(id: &str, event: &Event) -> Value {
    eventbridge(id, event.detail_type(), event.detail())
}

// --- fixtures ---------------------------------------------------------------------------

fn dataset(bucket: &str) -> DatasetRef {
    DatasetRef {
        bucket: bucket.into(),
        key: "datasets/support-bot/v3/smoke.jsonl".into(),
        etag: Some("\"9b2cf535\"".into()),
        version_id: None,
    }
}

fn alarm() -> AlarmRef {
    AlarmRef {
        name: "support-bot-5xx".into(),
        arn: None,
        state: "ALARM".into(),
        previous_state: Some("OK".into()),
        reason: Some("Threshold Crossed: 3 datapoints were greater than 5.0".into()),
        since: Some("2026-11-22T11:58:00Z".into()),
        metrics: vec!["5XXError".into()],
        event_id: "alarm-1".into(),
    }
}

fn metric(name: &str, value: f64, status: GateStatus) -> MetricSummary {
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

fn verdict(bucket: &str, application: &str, release: &str, outcome: Outcome) -> GateVerdict {
    GateVerdict {
        event_key: format!("verdict/{application}/{release}"),
        application: application.into(),
        release: release.into(),
        outcome,
        reasons: vec!["Builtin.Correctness mean 0.610 is below the bar >= 0.80".into()],
        metrics: vec![
            metric("Builtin.Helpfulness", 0.91, GateStatus::Pass),
            metric(
                "Builtin.Correctness",
                0.61,
                if outcome == Outcome::Pass {
                    GateStatus::Pass
                } else {
                    GateStatus::Fail
                },
            ),
        ],
        worst_prompts: vec![PromptNote {
            metric: "Builtin.Correctness".into(),
            prompt_hash: "3f2a9c1e7b12aa55".into(),
            score: Some(0.1),
            explanation: "The response says refunds take 60 days; the reference says 30.".into(),
            category: None,
            prompt: Some("How long do refunds take?".into()),
        }],
        baseline_release: Some("v2".into()),
        verdict_uri: format!("s3://{bucket}/verdicts/{application}/{release}/verdict.json"),
        report_uri: format!("s3://{bucket}/verdicts/{application}/{release}/report.md"),
        job_arns: vec!["arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abc123".into()],
    }
}

fn rejected(bucket: &str) -> DatasetRejected {
    DatasetRejected {
        event_key: "rejected/support-bot/v3/smoke".into(),
        application: Some("support-bot".into()),
        release: Some("v3".into()),
        dataset: dataset(bucket),
        reason: "2 lines are not valid records; fix them and upload the file again.".into(),
        error_count: 2,
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
        report_uri: format!("s3://{bucket}/rejections/support-bot/v3/smoke.json"),
    }
}

fn rollback_executed() -> RollbackExecuted {
    RollbackExecuted {
        event_key: "rollback/support-bot/alarm-1".into(),
        application: "support-bot".into(),
        from: "v3".into(),
        to: "v2".into(),
        pointer: "ssm:/support-bot/release".into(),
        alarm: alarm(),
        reason: "allow-listed alarm fired after v3 was promoted".into(),
    }
}

/// Every kind, with what its alert must say: (event, subject, severity, lines of the body).
fn every_kind(bucket: &str) -> Vec<(Value, &'static str, &'static str, Vec<String>)> {
    let report = format!("s3://{bucket}/verdicts/support-bot/v3/report.md");
    let console = format!(
        "https://us-east-1.console.aws.amazon.com/s3/object/{bucket}?region=us-east-1&bucketType=general&prefix=verdicts%2Fsupport-bot%2Fv3%2Freport.md"
    );
    vec![
        (
            event("e-verdict", &Event::GateVerdict(verdict(bucket, "support-bot", "v3", Outcome::Fail))),
            "[HIGH] evalgate support-bot v3: quality gate FAILED (1 of 2 metrics failing)",
            "high",
            vec![
                "Release v3 of support-bot FAILED its quality gate.".into(),
                "Outcome:     fail".into(),
                "  - Builtin.Correctness mean 0.610 is below the bar >= 0.80".into(),
                "  Status  Metric               Value  Threshold  Baseline  Change  Scored".into(),
                "  FAIL    Builtin.Correctness  0.610  >= 0.80       0.840  -0.230   30/30".into(),
                "  pass    Builtin.Helpfulness  0.910  >= 0.80       0.840  +0.070   30/30".into(),
                "     Judge: The response says refunds take 60 days; the reference says 30.".into(),
                format!("Report:      {report}"),
                format!("             {console}"),
                "  Bedrock console: https://us-east-1.console.aws.amazon.com/bedrock/home?region=us-east-1#/model-evaluation".into(),
            ],
        ),
        (
            event("e-rejected", &Event::DatasetRejected(rejected(bucket))),
            "[WARNING] evalgate support-bot v3: dataset smoke.jsonl rejected (2 problems)",
            "warning",
            vec![
                "A dataset for support-bot release v3 was rejected: nothing was submitted for evaluation.".into(),
                "Reason:      2 lines are not valid records; fix them and upload the file again.".into(),
                "  line 4: missing \"prompt\"".into(),
                format!("Report:      s3://{bucket}/rejections/support-bot/v3/smoke.json"),
            ],
        ),
        (
            event(
                "e-deferred",
                &Event::EvaluationDeferred(EvaluationDeferred {
                    event_key: "deferred/eg-1".into(),
                    application: "support-bot".into(),
                    release: "v3".into(),
                    dataset: dataset(bucket),
                    shard: 2,
                    shard_count: 3,
                    job_name: "eg-support-bot-v3-0a1b2c3d4e-2".into(),
                    reason: "Bedrock's concurrent evaluation job quota is reached".into(),
                }),
            ),
            "[INFO] evalgate support-bot v3: evaluation shard 2/3 deferred",
            "info",
            vec![
                "Reason:      Bedrock's concurrent evaluation job quota is reached".into(),
                "Job name:    eg-support-bot-v3-0a1b2c3d4e-2".into(),
            ],
        ),
        (
            event(
                "e-submitted",
                &Event::EvaluationSubmitted(EvaluationSubmitted {
                    event_key: "submitted/eg-1".into(),
                    application: "support-bot".into(),
                    release: "v3".into(),
                    dataset: dataset(bucket),
                    shard: 1,
                    shard_count: 3,
                    prompts: 400,
                    job_name: "eg-support-bot-v3-0a1b2c3d4e-1".into(),
                    job_arn: "arn:aws:bedrock:us-west-2:123456789012:evaluation-job/abc".into(),
                }),
            ),
            "[INFO] evalgate support-bot v3: evaluation shard 1/3 submitted",
            "info",
            vec![
                "The evaluation of support-bot release v3 (shard 1 of 3, 400 prompts) was submitted to Amazon Bedrock.".into(),
                "Console:     https://us-west-2.console.aws.amazon.com/bedrock/home?region=us-west-2#/model-evaluation".into(),
            ],
        ),
        (
            event(
                "e-promoted",
                &Event::ReleasePromoted(ReleasePromoted {
                    event_key: "promoted/support-bot/v3".into(),
                    application: "support-bot".into(),
                    release: "v3".into(),
                    previous: Some("v2".into()),
                    pointer: "ssm:/support-bot/release".into(),
                    verdict_uri: format!("s3://{bucket}/verdicts/support-bot/v3/verdict.json"),
                }),
            ),
            "[INFO] evalgate support-bot: v3 promoted (was v2)",
            "info",
            vec!["support-bot now runs release v3 (previously v2): it passed its quality gate.".into()],
        ),
        (
            event("e-rollback", &Event::RollbackExecuted(rollback_executed())),
            "[CRITICAL] evalgate support-bot: ROLLED BACK v3 -> v2",
            "critical",
            vec![
                "From:        v3".into(),
                "To:          v2".into(),
                "Reason:      allow-listed alarm fired after v3 was promoted".into(),
                "Alarm:       support-bot-5xx".into(),
                "  Console:   https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/support-bot-5xx".into(),
            ],
        ),
        (
            event(
                "e-skipped",
                &Event::RollbackSkipped(RollbackSkipped {
                    event_key: "rollback/support-bot/alarm-2".into(),
                    application: "support-bot".into(),
                    current: Some("v3".into()),
                    would_roll_back_to: None,
                    alarm: alarm(),
                    reason: "no earlier release passed its gate".into(),
                    dry_run: false,
                }),
            ),
            "[CRITICAL] evalgate support-bot: rollback NOT done, v3 still live",
            "critical",
            vec![
                "Alarm support-bot-5xx asked to roll support-bot back, but evalgate did NOT roll back: no earlier release passed its gate.".into(),
                "Production still runs v3 while the alarm fires: decide whether to roll back by hand.".into(),
            ],
        ),
        (
            eventbridge(
                "e-unknown",
                "Budget Exceeded",
                json!({"eventKey": "budget/support-bot", "application": "support-bot", "spentUsd": 412.5}),
            ),
            "[WARNING] evalgate support-bot: Budget Exceeded",
            "warning",
            vec!["  spentUsd: 412.5".into()],
        ),
        (
            eventbridge(
                "e-malformed",
                "Rollback Executed",
                json!({"application": "support-bot", "from": "v3"}),
            ),
            "[CRITICAL] evalgate support-bot: Rollback Executed (unreadable)",
            "critical",
            vec!["Problem:     malformed \"Rollback Executed\" detail: missing field `eventKey`".into()],
        ),
    ]
}

#[tokio::test]
async fn every_kind_arrives_with_its_subject_body_and_attributes() {
    let stack = stack().await;
    let function = stack.function().await;
    let kinds = every_kind(&stack.bucket);
    for (event, _, severity, _) in &kinds {
        let out = function.invoke(event).await.unwrap();
        assert_eq!(out["status"], "sent", "{out}");
        assert_eq!(out["severity"], *severity, "{out}");
    }
    let raw = receive(&stack.all, kinds.len()).await;
    let enveloped = receive(&stack.envelope, kinds.len()).await;
    assert_empty(&stack.all).await;
    for (event, subject, severity, lines) in &kinds {
        let id = event["id"].as_str().unwrap();
        let kind = event["detail-type"].as_str().unwrap();
        // Raw subscribers get the JSON variant as the body and the attributes as SQS ones.
        let message = raw
            .iter()
            .find(|m| document(m)["eventId"] == id)
            .unwrap_or_else(|| panic!("no alert for {id}"));
        let doc = document(message);
        assert_eq!(attribute(message, "severity"), *severity, "{id}");
        assert_eq!(attribute(message, "application"), "support-bot", "{id}");
        assert_eq!(attribute(message, "kind"), kind, "{id}");
        assert_eq!(doc["subject"], *subject, "{id}");
        assert_eq!(doc["kind"], kind);
        assert_eq!(doc["severity"], *severity);
        let text = doc["text"].as_str().unwrap();
        for line in lines {
            assert!(
                text.lines().any(|l| l == line),
                "{id}: missing line {line:?} in\n{text}"
            );
        }
        assert!(
            text.contains(&format!(
                "evalgate {kind} event {id} at 2026-11-22T12:00:00Z"
            )),
            "{text}"
        );
        // No prompt text without the policy's consent (there is no policy at all here).
        assert!(!text.contains("How long do refunds take"), "{text}");
        assert!(!message.body().unwrap().contains("How long do refunds take"));
        assert!(text.contains("Note: there is no policy at s3://"), "{text}");

        // Enveloped subscribers see the subject and the attributes in the SNS envelope.
        let envelope = enveloped
            .iter()
            .map(|m| serde_json::from_str::<Value>(m.body().unwrap()).unwrap())
            .find(|e| e["Message"].as_str().is_some_and(|m| m.contains(id)))
            .unwrap_or_else(|| panic!("no enveloped alert for {id}"));
        assert_eq!(envelope["Subject"], *subject);
        assert_eq!(
            envelope["Message"].as_str().unwrap(),
            message.body().unwrap()
        );
        assert_eq!(
            envelope["MessageAttributes"]["severity"]["Value"],
            *severity
        );
        assert_eq!(envelope["MessageAttributes"]["kind"]["Value"], kind);
        assert_eq!(
            envelope["MessageAttributes"]["application"]["Value"],
            "support-bot"
        );
    }
    // Verdicts also carry their outcome.
    let verdict = raw
        .iter()
        .find(|m| document(m)["eventId"] == "e-verdict")
        .unwrap();
    assert_eq!(attribute(verdict, "outcome"), "fail");
    assert_eq!(attribute(verdict, "severity_level"), "3");
}

#[tokio::test]
async fn a_severity_filter_policy_receives_only_what_it_asked_for() {
    let stack = stack().await;
    let at_least_warning = subscribe(
        &stack.topic_arn,
        "warning-up",
        true,
        Some(json!({"severity_level": [{"numeric": [">=", 2]}]})),
    )
    .await;
    let function = stack.function().await;
    let events = [
        event(
            "f-pass",
            &Event::GateVerdict(verdict(&stack.bucket, "support-bot", "v4", Outcome::Pass)),
        ),
        event(
            "f-rejected",
            &Event::DatasetRejected(rejected(&stack.bucket)),
        ),
        event(
            "f-fail",
            &Event::GateVerdict(verdict(&stack.bucket, "support-bot", "v3", Outcome::Fail)),
        ),
        event("f-rollback", &Event::RollbackExecuted(rollback_executed())),
    ];
    for e in &events {
        assert_eq!(function.invoke(e).await.unwrap()["status"], "sent");
    }
    let mut urgent: Vec<String> = receive(&stack.urgent, 2)
        .await
        .iter()
        .map(|m| document(m)["eventId"].as_str().unwrap().to_owned())
        .collect();
    urgent.sort();
    assert_eq!(urgent, ["f-fail", "f-rollback"]);
    assert_empty(&stack.urgent).await;
    let mut warning_up: Vec<String> = receive(&at_least_warning, 3)
        .await
        .iter()
        .map(|m| document(m)["eventId"].as_str().unwrap().to_owned())
        .collect();
    warning_up.sort();
    assert_eq!(warning_up, ["f-fail", "f-rejected", "f-rollback"]);
    assert_empty(&at_least_warning).await;
    assert_eq!(receive(&stack.all, 4).await.len(), 4);
}

#[tokio::test]
async fn a_verdict_with_200_metrics_fits_and_names_the_failing_metrics_first() {
    let stack = stack().await;
    stack
        .put_policy(
            "support-bot",
            &format!("{POLICY}alerts:\n  include_prompt_text: true\n"),
        )
        .await;
    let mut v = verdict(&stack.bucket, "support-bot", "v9", Outcome::Fail);
    let failing = [13, 77, 150, 199];
    v.metrics = (0..200)
        .map(|i| {
            let status = if failing.contains(&i) {
                GateStatus::Fail
            } else {
                GateStatus::Pass
            };
            metric(
                &format!("Custom.Metric{i:03}-{}", "n".repeat(200)),
                0.5,
                status,
            )
        })
        .collect();
    v.reasons = (0..100)
        .map(|i| format!("reason {i}: {}", "r".repeat(3_000)))
        .collect();
    v.worst_prompts = (0..100)
        .map(|i| PromptNote {
            metric: format!("Custom.Metric{i:03}"),
            prompt_hash: format!("{i:064x}"),
            score: Some(0.0),
            explanation: format!("explanation {i}: {}", "e".repeat(10_000)),
            category: None,
            prompt: Some("p".repeat(10_000)),
        })
        .collect();
    let e = event("big-1", &Event::GateVerdict(v));
    assert!(
        e.to_string().len() > 1_000_000,
        "the event itself is far over the limit"
    );
    let function = stack.function().await;
    let out = function.invoke(&e).await.unwrap();
    assert_eq!(out["status"], "sent", "{out}");
    assert!(out["bytes"].as_u64().unwrap() < 256 * 1024, "{out}");

    let message = &receive(&stack.all, 1).await[0];
    let envelope: Value =
        serde_json::from_str(receive(&stack.envelope, 1).await[0].body().unwrap()).unwrap();
    assert!(envelope["Message"].as_str().unwrap().len() < 256 * 1024);
    assert_eq!(
        envelope["Subject"],
        "[HIGH] evalgate support-bot v9: quality gate FAILED (4 of 200 metrics failing)"
    );
    let doc = document(message);
    let text = doc["text"].as_str().unwrap();
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Metrics ("))
        .skip(2)
        .take(5)
        .collect();
    for (row, i) in rows.iter().zip(failing) {
        assert!(row.starts_with("  FAIL "), "{row}");
        assert!(row.contains(&format!("Custom.Metric{i:03}-")), "{row}");
    }
    assert!(rows[4].starts_with("  pass "), "{}", rows[4]);
    assert!(
        text.contains("Metrics (4 failing of 200; failing first):"),
        "{text}"
    );
    let metrics = doc["detail"]["metrics"].as_array().unwrap();
    assert_eq!(metrics[0]["status"], "fail");
    assert_eq!(metrics[3]["status"], "fail");
    assert_eq!(metrics[4]["status"], "pass");
    // Explanations and prompt text (allowed here) are shortened, and the cuts are stated.
    let judge = text
        .lines()
        .find(|l| l.starts_with("     Judge: explanation 0: "))
        .unwrap();
    assert!(
        judge.chars().count() < 1_000 && judge.ends_with('…'),
        "{judge}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("     Prompt: ppp")),
        "{text}"
    );
    assert!(text.contains("more reasons (see the report)"), "{text}");
    assert!(doc["omitted"]["worstPrompts"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn the_same_event_twice_sends_one_message() {
    let stack = stack().await;
    let e = event("dup-1", &Event::RollbackExecuted(rollback_executed()));
    let function = stack.function().await;
    assert_eq!(function.invoke(&e).await.unwrap()["status"], "sent");
    let again = function.invoke(&e).await.unwrap();
    assert_eq!(again["status"], "duplicate", "{again}");
    assert_eq!(receive(&stack.all, 1).await.len(), 1);

    // Two concurrent deliveries of another event, to two function instances: one message.
    let mut skipped = RollbackSkipped {
        event_key: "rollback/support-bot/alarm-9".into(),
        application: "support-bot".into(),
        current: Some("v3".into()),
        would_roll_back_to: None,
        alarm: alarm(),
        reason: "no earlier release passed its gate".into(),
        dry_run: false,
    };
    skipped.alarm.event_id = "alarm-9".into();
    let e = event("dup-2", &Event::RollbackSkipped(skipped));
    let other = stack.function().await;
    let (a, b) = tokio::join!(function.invoke(&e), other.invoke(&e));
    let mut statuses = vec![
        a.unwrap()["status"].as_str().unwrap().to_owned(),
        b.unwrap()["status"].as_str().unwrap().to_owned(),
    ];
    statuses.sort();
    assert_eq!(statuses, ["duplicate", "sent"]);
    assert_eq!(receive(&stack.all, 1).await.len(), 1);
    assert_empty(&stack.all).await;
    // The ledger has the record, keyed by the event id.
    let record = moto()
        .s3()
        .get_object()
        .bucket(&stack.bucket)
        .key("ledger/alerts/dup-2.json")
        .send()
        .await
        .unwrap();
    let record: Value =
        serde_json::from_slice(&record.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(record["detail_type"], "Rollback Skipped");
    assert!(record["message_id"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn the_policy_sets_severities_the_minimum_and_prompt_text() {
    let stack = stack().await;
    stack
        .put_policy(
            "support-bot",
            &format!(
                "{POLICY}alerts:\n  min_severity: warning\n  include_prompt_text: true\n  severity:\n    gate_inconclusive: critical\n"
            ),
        )
        .await;
    let function = stack.function().await;
    let pass = event(
        "p-pass",
        &Event::GateVerdict(verdict(&stack.bucket, "support-bot", "v5", Outcome::Pass)),
    );
    let out = function.invoke(&pass).await.unwrap();
    assert_eq!(out["status"], "suppressed", "{out}");
    assert_eq!(out["minSeverity"], "warning");
    let inconclusive = event(
        "p-inconclusive",
        &Event::GateVerdict(verdict(
            &stack.bucket,
            "support-bot",
            "v6",
            Outcome::Inconclusive,
        )),
    );
    assert_eq!(
        function.invoke(&inconclusive).await.unwrap()["severity"],
        "critical"
    );
    let message = &receive(&stack.all, 1).await[0];
    assert_eq!(attribute(message, "severity"), "critical");
    let doc = document(message);
    let text = doc["text"].as_str().unwrap();
    assert!(
        text.contains("     Prompt: How long do refunds take?\n"),
        "{text}"
    );
    assert!(!text.contains("Note:"), "{text}");
    assert!(text.contains("(min_severity warning)"), "{text}");
    assert_empty(&stack.all).await;
    // The urgent subscription saw the overridden severity too.
    assert_eq!(receive(&stack.urgent, 1).await.len(), 1);
}

#[tokio::test]
async fn an_invalid_policy_does_not_stop_the_rejection_it_caused() {
    let stack = stack().await;
    stack
        .put_policy(
            "support-bot",
            &format!("{POLICY}alerts:\n  min_severity: critical\n  loud: true\n"),
        )
        .await;
    let function = stack.function().await;
    let out = function
        .invoke(&event(
            "r-1",
            &Event::DatasetRejected(rejected(&stack.bucket)),
        ))
        .await
        .unwrap();
    assert_eq!(out["status"], "sent", "{out}");
    let doc = document(&receive(&stack.all, 1).await[0]);
    let text = doc["text"].as_str().unwrap();
    let note = format!(
        "Note: the policy s3://{}/policies/support-bot.yaml is invalid",
        stack.bucket
    );
    assert!(text.contains(&note), "{text}");
    assert!(
        text.contains("so the default alert settings apply"),
        "{text}"
    );
    assert!(
        doc["policyNote"].as_str().unwrap().contains("loud"),
        "{doc}"
    );
}

#[tokio::test]
async fn a_publish_failure_fails_the_invocation_and_the_retry_sends() {
    let stack = stack().await;
    let e = event("fail-1", &Event::RollbackExecuted(rollback_executed()));
    // Same bucket, a topic that does not exist.
    let mut env = stack.env();
    for (k, v) in &mut env {
        if k == "EVALGATE_TOPIC_ARN" {
            *v = format!("{}-missing", stack.topic_arn);
        }
    }
    let broken = FunctionProcess::start_named("send-alert", &env)
        .await
        .unwrap();
    let err = broken.invoke(&e).await.unwrap_err();
    let posted = err.function_error().expect("an error posted to /error");
    assert!(posted.error_message.contains("-missing"), "{posted:?}");
    assert!(
        posted
            .error_message
            .contains("publishing the \"Rollback Executed\" alert"),
        "{posted:?}"
    );
    // The retry (a working deployment) is not suppressed by the failed attempt.
    let function = stack.function().await;
    assert_eq!(function.invoke(&e).await.unwrap()["status"], "sent");
    assert_eq!(receive(&stack.all, 1).await.len(), 1);
    assert_eq!(function.invoke(&e).await.unwrap()["status"], "duplicate");
    // Other sources are refused, as before.
    let mut s3 = e.clone();
    s3["source"] = json!("aws.s3");
    let err = function.invoke(&s3).await.unwrap_err();
    assert!(
        err.function_error()
            .unwrap()
            .error_message
            .contains("\"aws.s3\"")
    );
}

#[tokio::test]
async fn a_missing_topic_variable_fails_the_cold_start_naming_it() {
    let stack = stack().await;
    let env: Vec<_> = stack
        .env()
        .into_iter()
        .filter(|(k, _)| k != "EVALGATE_TOPIC_ARN")
        .collect();
    let function = FunctionProcess::start_named("send-alert", &env)
        .await
        .unwrap();
    let err = function
        .invoke(&event("x", &Event::RollbackExecuted(rollback_executed())))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("EVALGATE_TOPIC_ARN"), "{err}");
}
