//! The local demo: evalgate's whole loop, on this machine, with no AWS account.
//!
//! It creates what `infra/template.yaml` would create (bucket, alert topic with a queue
//! subscribed to it, an EventBridge bus whose evalgate events land in a queue, the SSM
//! release pointer), runs the four real function binaries under the Lambda Runtime API
//! harness, and plays EventBridge and S3 notifications itself (moto cannot invoke
//! functions): uploads become S3 events for submit-evaluation, a "schedule" invokes
//! check-gates, evalgate's events are handed to send-alert, and a CloudWatch alarm event goes
//! to evaluate-rollback.
//!
//! [`run`] walks the scenario and narrates through a callback; it returns a [`DemoReport`]
//! with what happened, so the end-to-end test asserts on facts, not on the narration. Any
//! step that does not happen as narrated is an error.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::bedrock::{BedrockLocal, Options as BedrockOptions};
use crate::events::{EventTap, TapError, queue_arn, receive_json};
use crate::names::unique;
use crate::runtime::{FunctionProcess, InvokeError, StartError};
use crate::stack::{ACCOUNT_ID, REGION, moto};

/// The application the demo evaluates.
pub const APPLICATION: &str = "demo-bot";
/// The alarm that fires in production.
pub const ALARM: &str = "demo-bot-error-rate";

/// A step did not happen as narrated.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start {0}")]
    Start(#[from] StartError),
    #[error("cannot start bedrock-local: {0}")]
    Bedrock(#[from] crate::bedrock::StartError),
    #[error("{function} failed: {source}")]
    Invoke {
        function: &'static str,
        source: InvokeError,
    },
    #[error("AWS stand-in call failed: {0}")]
    Aws(String),
    #[error(transparent)]
    Tap(#[from] TapError),
    #[error("{0}")]
    Unexpected(String),
}

fn aws<E: std::fmt::Display>(e: E) -> DemoError {
    DemoError::Aws(e.to_string())
}

/// What happened to one release.
#[derive(Debug, Clone)]
pub struct ReleaseStep {
    pub release: String,
    /// `pass`, `fail`, `inconclusive` or `error`.
    pub outcome: String,
    pub reasons: Vec<String>,
    pub verdict_uri: String,
    pub report: String,
    pub job_arns: Vec<String>,
    /// The release pointer's value after the verdict.
    pub pointer_after: String,
}

/// What the alarm did.
#[derive(Debug, Clone)]
pub struct RollbackStep {
    pub response: Value,
    pub pointer_before: String,
    pub pointer_after: String,
    /// Labels on the pointer parameter's versions (the audit trail).
    pub labels: Vec<String>,
}

/// An alert as a subscriber of the topic received it.
#[derive(Debug, Clone)]
pub struct ReceivedAlert {
    pub subject: String,
    pub severity: String,
    pub kind: String,
    pub body: String,
}

/// Everything the demo did.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub bucket: String,
    pub pointer: String,
    pub releases: Vec<ReleaseStep>,
    pub rollback: RollbackStep,
    /// evalgate events, in the order they were emitted (detail-type).
    pub events: Vec<String>,
    pub alerts: Vec<ReceivedAlert>,
}

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How long bedrock-local keeps each job InProgress.
    pub job_seconds: f64,
    /// How long to wait for each verdict.
    pub verdict_timeout: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            job_seconds: 3.0,
            verdict_timeout: Duration::from_secs(120),
        }
    }
}

/// The questions every release answers: `(prompt, reference answer)`.
const QUESTIONS: &[(&str, &str)] = &[
    (
        "What is the capital of France?",
        "The capital of France is Paris.",
    ),
    (
        "What is the capital of Japan?",
        "The capital of Japan is Tokyo.",
    ),
    (
        "What is the capital of Italy?",
        "The capital of Italy is Rome.",
    ),
    (
        "What is the capital of Spain?",
        "The capital of Spain is Madrid.",
    ),
    (
        "What is the capital of Canada?",
        "The capital of Canada is Ottawa.",
    ),
    (
        "What is the capital of Kenya?",
        "The capital of Kenya is Nairobi.",
    ),
    (
        "What is the capital of Peru?",
        "The capital of Peru is Lima.",
    ),
    (
        "What is the capital of Norway?",
        "The capital of Norway is Oslo.",
    ),
    (
        "What is the capital of Egypt?",
        "The capital of Egypt is Cairo.",
    ),
    (
        "What is the capital of Chile?",
        "The capital of Chile is Santiago.",
    ),
    (
        "How many days are in a leap year?",
        "A leap year has 366 days.",
    ),
    (
        "How many minutes are in an hour?",
        "An hour has 60 minutes.",
    ),
    (
        "How many legs does a spider have?",
        "A spider has eight legs.",
    ),
    (
        "What is the boiling point of water at sea level in Celsius?",
        "Water boils at 100 degrees Celsius at sea level.",
    ),
    (
        "Which planet is closest to the Sun?",
        "Mercury is the planet closest to the Sun.",
    ),
    (
        "What gas do plants absorb from the air?",
        "Plants absorb carbon dioxide from the air.",
    ),
    (
        "What is the largest ocean on Earth?",
        "The Pacific Ocean is the largest ocean on Earth.",
    ),
    (
        "Who wrote the play Romeo and Juliet?",
        "William Shakespeare wrote Romeo and Juliet.",
    ),
    (
        "What is the chemical symbol for gold?",
        "The chemical symbol for gold is Au.",
    ),
    (
        "How many continents are there?",
        "There are seven continents.",
    ),
    (
        "What is the freezing point of water in Fahrenheit?",
        "Water freezes at 32 degrees Fahrenheit.",
    ),
    (
        "What is the square root of 81?",
        "The square root of 81 is 9.",
    ),
    (
        "Which language has the most native speakers?",
        "Mandarin Chinese has the most native speakers.",
    ),
    (
        "What is the tallest mountain on Earth?",
        "Mount Everest is the tallest mountain on Earth.",
    ),
];

/// A dataset for `release`: good releases answer with the reference; a bad one answers
/// every other question with "I am not sure." (which bedrock-local's judge scores 0 on
/// correctness and completeness, see its crate docs).
pub fn dataset(release: &str, good: bool) -> Vec<u8> {
    let model = format!(
        "demo-bot-{}",
        release.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let mut out = Vec::new();
    for (i, (prompt, reference)) in QUESTIONS.iter().enumerate() {
        let response = if good || i % 2 == 0 {
            *reference
        } else {
            "I am not sure."
        };
        let line = json!({
            "prompt": prompt,
            "referenceResponse": reference,
            "category": if i < 10 { "Geography" } else { "General knowledge" },
            "modelResponses": [{"response": response, "modelIdentifier": model}],
            "latencyMs": 400 + 10 * i,
        });
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// The application's policy, as its team would keep it in their repository.
pub fn policy(pointer: &str) -> String {
    format!(
        r#"# The demo application's policy (docs/policy.md documents every key).
version: 1
evaluation:
  evaluator_model: us.amazon.nova-pro-v1:0
  metrics: [Builtin.Correctness, Builtin.Completeness, Builtin.Harmfulness]
gates:
  min_scored: 20
  metrics:
    Builtin.Correctness:
      min_mean: 0.8
      max_mean_drop: 0.1
    Builtin.Completeness:
      min_mean: 0.7
    Builtin.Harmfulness:
      max_mean: 0.1
release:
  pointer:
    ssm_parameter: {pointer}
  promote: on_pass
rollback:
  alarms: ["demo-bot-*"]
  min_periods: 3
  cooldown: 30m
"#
    )
}

/// The running pieces.
struct World {
    bucket: String,
    pointer: String,
    tap: EventTap,
    alerts_queue: String,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    ssm: aws_sdk_ssm::Client,
    submit: FunctionProcess,
    check: FunctionProcess,
    rollback: FunctionProcess,
    alert: FunctionProcess,
    events: Vec<String>,
    _bedrock: BedrockLocal,
}

impl World {
    async fn start(options: &DemoOptions, say: &dyn Fn(&str)) -> Result<World, DemoError> {
        let moto = moto();
        let config = moto.sdk_config();
        let (s3, sqs, sns) = (moto.s3(), moto.sqs(), moto.sns());
        let ssm = aws_sdk_ssm::Client::new(&config);

        let bucket = unique("evalgate-demo");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .map_err(aws)?;

        let topic = sns
            .create_topic()
            .name(unique("evalgate-alerts"))
            .send()
            .await
            .map_err(aws)?;
        let topic_arn = topic.topic_arn().unwrap_or_default().to_owned();
        let alerts_queue = sqs
            .create_queue()
            .queue_name(unique("alerts"))
            .send()
            .await
            .map_err(aws)?;
        let alerts_queue = alerts_queue.queue_url().unwrap_or_default().to_owned();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn(&sqs, &alerts_queue).await?)
            .send()
            .await
            .map_err(aws)?;

        // The template's rule on `source: evalgate` targets send-alert; here it fills a queue
        // the demo hands to send-alert (moto cannot invoke functions).
        let tap = EventTap::create(moto, "evalgate").await?;
        let bus = tap.bus.clone();

        // The application was already live on a release that predates evalgate.
        let pointer = format!("/{}/release", unique("demo-bot"));
        ssm.put_parameter()
            .name(&pointer)
            .value("v0")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .map_err(aws)?;
        say(&format!(
            "Created what the SAM template would: bucket {bucket}, alert topic with a subscribed queue, event bus {bus}, release pointer {pointer} = v0."
        ));

        let bedrock = BedrockLocal::start(BedrockOptions {
            job_seconds: options.job_seconds,
            ..BedrockOptions::default()
        })
        .await?;
        say(&format!(
            "Started the demo's own bedrock-local (the Bedrock evaluation emulator; its jobs take {} s, not minutes) on {}.",
            options.job_seconds, bedrock.url
        ));

        let base = bedrock.function_env();
        let with = |extra: &[(&str, &str)]| {
            let mut env = base.clone();
            env.extend(
                extra
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            env
        };
        let role = format!("arn:aws:iam::{ACCOUNT_ID}:role/evalgate-bedrock-evaluation");
        let submit = FunctionProcess::start_named(
            "submit-evaluation",
            &with(&[
                ("EVALGATE_BUCKET", &bucket),
                ("EVALGATE_EVENT_BUS", &bus),
                ("EVALGATE_BEDROCK_ROLE_ARN", &role),
            ]),
        )
        .await?;
        let check = FunctionProcess::start_named(
            "check-gates",
            &with(&[("EVALGATE_BUCKET", &bucket), ("EVALGATE_EVENT_BUS", &bus)]),
        )
        .await?;
        let rollback = FunctionProcess::start_named(
            "evaluate-rollback",
            &with(&[("EVALGATE_BUCKET", &bucket), ("EVALGATE_EVENT_BUS", &bus)]),
        )
        .await?;
        let alert = FunctionProcess::start_named(
            "send-alert",
            &with(&[
                ("EVALGATE_BUCKET", &bucket),
                ("EVALGATE_TOPIC_ARN", &topic_arn),
            ]),
        )
        .await?;
        say(
            "Started the four function binaries (submit-evaluation, check-gates, evaluate-rollback, send-alert) under the Lambda Runtime API harness.",
        );

        Ok(World {
            bucket,
            pointer,
            tap,
            alerts_queue,
            s3,
            sqs,
            ssm,
            submit,
            check,
            rollback,
            alert,
            events: Vec::new(),
            _bedrock: bedrock,
        })
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<String, DemoError> {
        let out = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .map_err(aws)?;
        Ok(out.e_tag().unwrap_or_default().to_owned())
    }

    async fn get_text(&self, key: &str) -> Result<Option<String>, DemoError> {
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let bytes = out.body.collect().await.map_err(aws)?.into_bytes();
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(aws(e)),
        }
    }

    async fn pointer_value(&self) -> Result<String, DemoError> {
        let out = self
            .ssm
            .get_parameter()
            .name(&self.pointer)
            .send()
            .await
            .map_err(aws)?;
        Ok(out
            .parameter()
            .and_then(|p| p.value())
            .unwrap_or_default()
            .to_owned())
    }

    /// The S3 notification the bucket would send for an upload.
    fn s3_event(&self, key: &str, etag: &str) -> Value {
        let encoded: String = key
            .bytes()
            .map(|b| match b {
                b' ' => "+".to_owned(),
                b if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect();
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
            "eventTime": now(), "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDADEMO"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "0", "x-amz-id-2": "0"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "datasets",
                "bucket": {"name": self.bucket, "ownerIdentity": {"principalId": "A"},
                    "arn": format!("arn:aws:s3:::{}", self.bucket)},
                "object": {"key": encoded, "size": 1, "eTag": etag.trim_matches('"'),
                    "sequencer": format!("{:016X}", Utc::now().timestamp_micros())}}}]})
    }

    /// The EventBridge schedule's event.
    fn scheduled_event() -> Value {
        json!({"version": "0", "id": unique("schedule"), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": ACCOUNT_ID, "time": now(), "region": REGION,
            "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/evalgate-schedule")],
            "detail": {}})
    }

    /// Hands every evalgate event waiting on the bus to send-alert, as the template's rule
    /// would; returns their detail-types.
    async fn deliver_events(&mut self) -> Result<Vec<String>, DemoError> {
        let mut delivered = Vec::new();
        for event in self.tap.receive(0, Duration::from_secs(20)).await? {
            let kind = event["detail-type"].as_str().unwrap_or_default().to_owned();
            self.alert
                .invoke(&event)
                .await
                .map_err(|source| DemoError::Invoke {
                    function: "send-alert",
                    source,
                })?;
            self.events.push(kind.clone());
            delivered.push(kind);
        }
        Ok(delivered)
    }

    /// Every alert the topic's subscriber has received so far.
    async fn received_alerts(&self) -> Result<Vec<ReceivedAlert>, DemoError> {
        let received =
            receive_json(&self.sqs, &self.alerts_queue, 0, Duration::from_secs(20)).await?;
        // The subscription is not raw: each body is SNS's envelope.
        Ok(received
            .iter()
            .map(|envelope| {
                let attribute = |name: &str| {
                    envelope["MessageAttributes"][name]["Value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                };
                ReceivedAlert {
                    subject: envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                    severity: attribute("severity"),
                    kind: attribute("kind"),
                    body: envelope["Message"].as_str().unwrap_or_default().to_owned(),
                }
            })
            .collect())
    }

    /// Uploads a release's dataset and follows it to its verdict.
    async fn evaluate(
        &mut self,
        release: &str,
        good: bool,
        timeout: Duration,
        say: &dyn Fn(&str),
    ) -> Result<ReleaseStep, DemoError> {
        let key = format!("datasets/{APPLICATION}/{release}/smoke test.jsonl");
        let etag = self.put(&key, dataset(release, good)).await?;
        say(&format!(
            "Uploaded {} prompt-response pairs for {APPLICATION} {release} to s3://{}/{key}.",
            QUESTIONS.len(),
            self.bucket
        ));
        let submitted = self
            .submit
            .invoke(&self.s3_event(&key, &etag))
            .await
            .map_err(|source| DemoError::Invoke {
                function: "submit-evaluation",
                source,
            })?;
        let kinds = self.deliver_events().await?;
        if !kinds.iter().any(|k| k == "Evaluation Submitted") {
            return Err(DemoError::Unexpected(format!(
                "submit-evaluation did not submit {release}: {submitted}"
            )));
        }
        say(
            "submit-evaluation validated the dataset and started a Bedrock LLM-as-a-judge job on it.",
        );

        let verdict_key = format!("verdicts/{APPLICATION}/{release}/verdict.json");
        let started = Instant::now();
        let mut polls = 0;
        let verdict = loop {
            // The schedule: check-gates looks for finished jobs.
            self.check
                .invoke(&Self::scheduled_event())
                .await
                .map_err(|source| DemoError::Invoke {
                    function: "check-gates",
                    source,
                })?;
            polls += 1;
            self.deliver_events().await?;
            if let Some(text) = self.get_text(&verdict_key).await? {
                break text;
            }
            if started.elapsed() > timeout {
                return Err(DemoError::Unexpected(format!(
                    "no verdict for {release} after {} s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(800)).await;
        };
        let verdict: Value = serde_json::from_str(&verdict)
            .map_err(|e| DemoError::Unexpected(format!("verdict.json is not JSON: {e}")))?;
        let outcome = verdict["outcome"].as_str().unwrap_or_default().to_owned();
        say(&format!(
            "The job completed; check-gates (after {polls} scheduled run(s)) aggregated Bedrock's judgements and recorded the verdict: {}.",
            outcome.to_uppercase()
        ));
        let report_key = format!("verdicts/{APPLICATION}/{release}/report.md");
        let report = self.get_text(&report_key).await?.unwrap_or_default();
        // A promotion's event may arrive after the verdict's.
        self.deliver_events().await?;
        let pointer_after = self.pointer_value().await?;
        Ok(ReleaseStep {
            release: release.to_owned(),
            outcome,
            reasons: verdict["reasons"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            verdict_uri: format!("s3://{}/{verdict_key}", self.bucket),
            report,
            job_arns: verdict["job_arns"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            pointer_after,
        })
    }

    /// The `CloudWatch Alarm State Change` event for the demo's alarm going into ALARM now,
    /// after `breaching` one-minute datapoints over its threshold.
    fn alarm_event(&self, breaching: usize) -> Value {
        let since = Utc::now();
        let cw = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
        let datapoints: Vec<Value> = (0..breaching)
            .map(|i| json!({"timestamp": cw(since - chrono::Duration::minutes(i as i64 + 1)), "sampleCount": 120.0, "value": 9.5}))
            .collect();
        let reason_data = json!({
            "version": "1.0", "queryDate": cw(since), "statistic": "Average", "period": 60,
            "recentDatapoints": vec![9.5; breaching], "threshold": 5.0,
            "evaluatedDatapoints": datapoints,
        });
        json!({
            "version": "0", "id": unique("alarm-event"), "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": ACCOUNT_ID, "time": since.to_rfc3339_opts(SecondsFormat::Secs, true),
            "region": REGION, "resources": [format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{ALARM}")],
            "detail": {
                "alarmName": ALARM,
                "configuration": {
                    "description": "Share of demo-bot requests that end in an error",
                    "metrics": [{"id": "m1", "metricStat": {"metric": {"namespace": "DemoBot", "name": "ErrorRate",
                        "dimensions": {"Application": APPLICATION}}, "period": 60, "stat": "Average"}, "returnData": true}]
                },
                "previousState": {"value": "OK", "reason": "Threshold Crossed: no datapoint was greater than the threshold (5.0)",
                    "timestamp": cw(since - chrono::Duration::hours(3))},
                "state": {"value": "ALARM",
                    "reason": format!("Threshold Crossed: {breaching} out of the last {breaching} datapoints were greater than the threshold (5.0)"),
                    "reasonData": reason_data.to_string(), "timestamp": cw(since)}
            }
        })
    }

    async fn labels(&self) -> Result<Vec<String>, DemoError> {
        let history = self
            .ssm
            .get_parameter_history()
            .name(&self.pointer)
            .send()
            .await
            .map_err(aws)?;
        Ok(history
            .parameters()
            .iter()
            .flat_map(|p| p.labels().iter().cloned())
            .collect())
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn expect(condition: bool, what: impl FnOnce() -> String) -> Result<(), DemoError> {
    if condition {
        Ok(())
    } else {
        Err(DemoError::Unexpected(what()))
    }
}

/// Walks the whole loop; `say` receives the narration, one paragraph per call.
pub async fn run(options: &DemoOptions, say: &dyn Fn(&str)) -> Result<DemoReport, DemoError> {
    let mut w = World::start(options, say).await?;
    let policy_key = format!("policies/{APPLICATION}.yaml");
    w.put(&policy_key, policy(&w.pointer).into_bytes()).await?;
    say(&format!(
        "The team's CI uploaded {APPLICATION}'s policy to s3://{}/{policy_key}: judge with Amazon Nova Pro on correctness, completeness and harmfulness; pass only if correctness >= 0.8, completeness >= 0.7, harmfulness <= 0.1 and correctness did not drop by more than 0.1; promote on pass; roll back on demo-bot-* alarms.",
        w.bucket
    ));
    let mut releases = Vec::new();

    say("\n1. Release v1: answers every question with the right answer.");
    let v1 = w.evaluate("v1", true, options.verdict_timeout, say).await?;
    expect(v1.outcome == "pass", || {
        format!("v1 should pass: {:?}", v1.reasons)
    })?;
    expect(v1.pointer_after == "v1", || {
        format!(
            "v1 should be promoted; the pointer says {}",
            v1.pointer_after
        )
    })?;
    say(&format!(
        "v1 passed its gate and was promoted: {} now says v1.",
        w.pointer
    ));
    releases.push(v1);

    say("\n2. Release v2: a regression, half of its answers are \"I am not sure.\"");
    let v2 = w
        .evaluate("v2", false, options.verdict_timeout, say)
        .await?;
    expect(v2.outcome == "fail", || {
        format!("v2 should fail: {:?}", v2.reasons)
    })?;
    expect(v2.pointer_after == "v1", || {
        format!(
            "v2 must not be promoted; the pointer says {}",
            v2.pointer_after
        )
    })?;
    say(
        "v2 FAILED its gate and was not promoted (the pointer still says v1). Its report, up to the per-metric detail:\n",
    );
    say(&indent(report_summary(&v2.report)));
    releases.push(v2);

    say("\n3. Release v3: fixes the regression.");
    let v3 = w.evaluate("v3", true, options.verdict_timeout, say).await?;
    expect(v3.outcome == "pass", || {
        format!("v3 should pass: {:?}", v3.reasons)
    })?;
    expect(v3.pointer_after == "v3", || {
        format!(
            "v3 should be promoted; the pointer says {}",
            v3.pointer_after
        )
    })?;
    say(&format!(
        "v3 passed and was promoted: {} now says v3.",
        w.pointer
    ));
    releases.push(v3);

    say(&format!(
        "\nIn production, v3's error rate climbs: alarm {ALARM} goes into ALARM after 5 breaching one-minute datapoints."
    ));
    let pointer_before = w.pointer_value().await?;
    let response = w
        .rollback
        .invoke(&w.alarm_event(5))
        .await
        .map_err(|source| DemoError::Invoke {
            function: "evaluate-rollback",
            source,
        })?;
    w.deliver_events().await?;
    let pointer_after = w.pointer_value().await?;
    expect(pointer_after == "v1", || {
        format!(
            "the alarm should roll demo-bot back to v1 (v2 failed its gate); the pointer says {pointer_after}; evaluate-rollback said {response}"
        )
    })?;
    let labels = w.labels().await?;
    say(&format!(
        "evaluate-rollback rolled {APPLICATION} back from v3 to v1 — the most recent earlier release that passed its gate (v2 failed, so it is never a target). The pointer's new version is labelled {}.",
        labels.join(", ")
    ));

    let alerts = w.received_alerts().await?;
    say(&format!(
        "\nThe alert topic's subscriber received {} alert(s):",
        alerts.len()
    ));
    for alert in &alerts {
        say(&format!("  [{}] {}", alert.severity, alert.subject));
    }
    if let Some(rollback) = alerts.iter().find(|a| a.kind == "Rollback Executed") {
        say("\nThe rollback alert, as an e-mail subscriber reads it:\n");
        say(&indent(&email_variant(&rollback.body)));
    }
    expect(alerts.iter().any(|a| a.kind == "Rollback Executed"), || {
        format!("no rollback alert was received: {alerts:?}")
    })?;

    say(&format!(
        "\nWhat the bucket held (the demo's moto, and so the bucket, stops with it; on AWS this is where to look): verdicts and reports under s3://{bucket}/verdicts/{APPLICATION}/, the ledger (jobs, promotions, rollbacks, alerts) under s3://{bucket}/ledger/, Bedrock's raw results under s3://{bucket}/evaluations/.",
        bucket = w.bucket
    ));
    Ok(DemoReport {
        bucket: w.bucket.clone(),
        pointer: w.pointer.clone(),
        releases,
        rollback: RollbackStep {
            response,
            pointer_before,
            pointer_after,
            labels,
        },
        events: w.events.clone(),
        alerts,
    })
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The report's verdict, reasons and metric table: everything before the per-metric sections.
fn report_summary(report: &str) -> &str {
    report.find("\n### ").map_or(report, |end| &report[..end])
}

/// What an e-mail subscriber reads: the subject and plain text of the alert document the
/// queue received (or the message itself when it is not one).
fn email_variant(message: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(message) else {
        return message.to_owned();
    };
    if let Some(email) = v["email"].as_str() {
        return email.to_owned();
    }
    match (v["subject"].as_str(), v["text"].as_str()) {
        (Some(subject), Some(text)) => format!("Subject: {subject}\n\n{text}"),
        _ => message.to_owned(),
    }
}
