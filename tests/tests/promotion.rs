//! The whole loop through the real binaries: releases are judged by bedrock-local, gated by
//! check-gates (which promotes a `pass` onto the SSM release pointer, `promote: on_pass`),
//! then a production alarm makes evaluate-rollback return to the last release that passed.
//!
//! Jobs are created and recorded the way submit-evaluation does (shard in S3, job in
//! bedrock-local, `JobRecord` + open release in the ledger); scores are steered with
//! bedrock-local's `[[judge:<Metric>=<value>]]` directive.

use std::time::{Duration, Instant};

use chrono::Utc;
use evalgate::bedrock::{BedrockEvaluationJobs, EvaluationJobs, JUDGE_TASK_TYPE, JobSpec};
use evalgate::events::DatasetRef;
use evalgate::layout;
use evalgate::ledger::{JobRecord, Ledger, SCHEMA};
use evalgate::store::ObjectStore;
use evalgate::store::s3::S3Store;
use evalgate::verdict::Outcome;
use evalgate_tests::bedrock::{BedrockLocal, Options};
use evalgate_tests::names::unique;
use evalgate_tests::runtime::FunctionProcess;
use evalgate_tests::stack::moto;
use serde_json::{Value, json};

const APP: &str = "support-bot";
const MODEL: &str = "support-bot-model";
const EVALUATOR: &str = "amazon.nova-pro-v1:0";

struct Loop {
    bucket: String,
    store: S3Store,
    ssm: aws_sdk_ssm::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    param: String,
    _bedrock: BedrockLocal,
    jobs: BedrockEvaluationJobs,
    check_gates: FunctionProcess,
    evaluate_rollback: FunctionProcess,
}

impl Loop {
    async fn start() -> Loop {
        let moto = moto();
        let config = moto.sdk_config();
        let s3 = moto.s3();
        let bucket = unique("loop");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let eventbridge = aws_sdk_eventbridge::Client::new(&config);
        let sqs = moto.sqs();
        let bus = unique("loop-bus");
        eventbridge
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .unwrap();
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("loop-events"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        let rule = unique("loop-rule");
        eventbridge
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(r#"{"source":["evalgate"]}"#)
            .send()
            .await
            .unwrap();
        eventbridge
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();

        let bedrock = BedrockLocal::start(Options::default()).await.unwrap();
        let mut env = bedrock.function_env();
        env.push(("EVALGATE_BUCKET".into(), bucket.clone()));
        env.push(("EVALGATE_EVENT_BUS".into(), bus));
        let check_gates = FunctionProcess::start_named("check-gates", &env)
            .await
            .unwrap();
        let evaluate_rollback = FunctionProcess::start_named("evaluate-rollback", &env)
            .await
            .unwrap();
        Loop {
            store: S3Store::new(s3, bucket.clone()),
            bucket,
            ssm: aws_sdk_ssm::Client::new(&config),
            sqs,
            queue_url,
            param: format!("/{}/release", unique("support-bot")),
            jobs: BedrockEvaluationJobs::new(bedrock.client()),
            _bedrock: bedrock,
            check_gates,
            evaluate_rollback,
        }
    }

    /// Uploads one shard of `correctness` scores for `release`, creates its job in
    /// bedrock-local, records it as submit-evaluation does and waits for it to finish.
    async fn submit(&self, release: &str, correctness: f64) {
        let body: String = (0..12)
            .map(|i| {
                json!({
                    "prompt": format!("{release} question {i}: how do I reset my password?"),
                    "referenceResponse": "Open Settings and choose Reset password.",
                    "modelResponses": [{
                        "response": format!("Open Settings. [[judge:Correctness={correctness}]]"),
                        "modelIdentifier": MODEL
                    }]
                })
                .to_string()
                    + "\n"
            })
            .collect();
        let name = "golden";
        let etag = format!("\"{release}-etag\"");
        let dataset_key = format!("datasets/{APP}/{release}/{name}.jsonl");
        let dataset_id = layout::dataset_id(name, &etag);
        let source = [self.bucket.as_str(), dataset_key.as_str(), etag.as_str()];
        let shard_key = layout::shard_key(APP, release, &dataset_id, 0);
        self.store
            .put(&shard_key, body.into_bytes(), "application/jsonl")
            .await
            .unwrap();
        let output_uri = layout::s3_uri(
            &self.bucket,
            &layout::output_prefix(APP, release, &dataset_id),
        );
        let spec = JobSpec {
            job_name: layout::job_name(APP, release, &source, 0),
            client_request_token: layout::client_request_token(&source, 0),
            role_arn: "arn:aws:iam::123456789012:role/evalgate-bedrock-evaluation".into(),
            description: None,
            tags: vec![],
            task_type: JUDGE_TASK_TYPE.into(),
            dataset_name: name.into(),
            dataset_uri: layout::s3_uri(&self.bucket, &shard_key),
            metric_names: vec!["Builtin.Correctness".into()],
            evaluator_model: EVALUATOR.into(),
            custom_metrics: vec![],
            inference_source_identifier: MODEL.into(),
            output_uri: output_uri.clone(),
            kms_key_id: None,
        };
        let job_arn = self.jobs.create_job(&spec).await.unwrap();
        let policy = self.store.get(&layout::policy_key(APP)).await.unwrap();
        let record = JobRecord {
            schema: SCHEMA,
            application: APP.into(),
            release: release.into(),
            dataset: DatasetRef {
                bucket: self.bucket.clone(),
                key: dataset_key,
                etag: Some(etag),
                version_id: None,
            },
            dataset_id,
            shard: 1,
            shard_count: 1,
            prompts: 12,
            shard_uri: spec.dataset_uri.clone(),
            metadata_uri: None,
            output_uri,
            job_name: spec.job_name.clone(),
            job_arn: job_arn.clone(),
            client_request_token: spec.client_request_token.clone(),
            policy_hash: evalgate::policy::policy_hash(&String::from_utf8(policy).unwrap()),
            submitted_at: Utc::now(),
        };
        let ledger = Ledger::new(&self.store);
        ledger.record_job(&record).await.unwrap();
        ledger
            .open_release(APP, release, record.submitted_at)
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .jobs
            .get_job(&job_arn)
            .await
            .unwrap()
            .status
            .is_terminal()
        {
            assert!(
                Instant::now() < deadline,
                "job for {release} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One scheduled run of check-gates.
    async fn check_gates(&self) -> Value {
        let schedule = json!({
            "version": "0", "id": unique("schedule"), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012",
            "time": "2026-11-22T12:00:00Z", "region": "us-east-1", "resources": [], "detail": {}
        });
        self.check_gates
            .invoke(&schedule)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "check-gates failed: {e}\n{}",
                    self.check_gates.logs().join("\n")
                )
            })
    }

    async fn pointer(&self) -> (String, i64) {
        let out = self
            .ssm
            .get_parameter()
            .name(&self.param)
            .send()
            .await
            .unwrap();
        let p = out.parameter().unwrap();
        (p.value().unwrap().to_owned(), p.version())
    }

    async fn events(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            if received.messages().is_empty() {
                return out;
            }
            for m in received.messages() {
                let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                out.push((
                    body["detail-type"].as_str().unwrap().to_owned(),
                    body["detail"].clone(),
                ));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

fn alarm(id: &str, name: &str) -> Value {
    let now = Utc::now();
    let at = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    json!({
        "version": "0", "id": id, "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": "123456789012",
        "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")],
        "detail": {
            "alarmName": name,
            "configuration": {"metrics": [{"id": "m1", "returnData": true, "metricStat": {
                "metric": {"namespace": "AWS/Lambda", "name": "Errors", "dimensions": {"FunctionName": "support-bot"}},
                "period": 60, "stat": "Sum"}}]},
            "previousState": {"value": "OK", "reason": "ok", "timestamp": at(now - chrono::Duration::hours(1))},
            "state": {
                "value": "ALARM",
                "reason": "Threshold Crossed: 3 out of the last 3 datapoints were greater than the threshold (5.0)",
                "reasonData": json!({"version": "1.0", "period": 60, "threshold": 5.0,
                    "evaluatedDatapoints": [
                        {"timestamp": at(now - chrono::Duration::minutes(1)), "value": 12.0},
                        {"timestamp": at(now - chrono::Duration::minutes(2)), "value": 9.0},
                        {"timestamp": at(now - chrono::Duration::minutes(3)), "value": 7.0}]}).to_string(),
                "timestamp": at(now)
            }
        }
    })
}

#[tokio::test]
async fn pass_is_promoted_then_an_alarm_rolls_back_to_the_previous_pass() {
    let l = Loop::start().await;
    let policy = format!(
        "version: 1\nevaluation:\n  evaluator_model: {EVALUATOR}\n  metrics: [Builtin.Correctness]\ngates:\n  metrics:\n    Builtin.Correctness: {{ min_mean: 0.8 }}\nrelease:\n  pointer:\n    ssm_parameter: {}\n  promote: on_pass\nrollback:\n  alarms: [support-bot-errors]\n  min_periods: 3\n",
        l.param
    );
    l.store
        .put(
            &layout::policy_key(APP),
            policy.into_bytes(),
            "application/yaml",
        )
        .await
        .unwrap();
    l.ssm
        .put_parameter()
        .name(&l.param)
        .value("v0")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();

    // v1 passes → promoted by check-gates.
    l.submit("v1", 1.0).await;
    l.check_gates().await;
    assert_eq!(l.pointer().await, ("v1".to_owned(), 2));
    let events = l.events().await;
    let kinds: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["Gate Verdict", "Release Promoted"],
        "{events:?}"
    );
    assert_eq!(events[1].1["previous"], "v0");
    let record = Ledger::new(&l.store)
        .promotion(APP, "v1")
        .await
        .unwrap()
        .expect("promotion record");
    assert!(
        record
            .promoted_by
            .starts_with("evalgate check-gates (request "),
        "{}",
        record.promoted_by
    );
    assert_eq!(record.verdict_outcome, Outcome::Pass);

    // v2 fails its gate → not promoted.
    l.submit("v2", 0.2).await;
    l.check_gates().await;
    let verdicts = Ledger::new(&l.store).verdicts(APP).await.unwrap();
    assert_eq!(verdicts.last().unwrap().outcome, Outcome::Fail);
    assert_eq!(l.pointer().await, ("v1".to_owned(), 2));
    let kinds: Vec<String> = l.events().await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(kinds, vec!["Gate Verdict"]);

    // v3 passes → promoted.
    l.submit("v3", 1.0).await;
    l.check_gates().await;
    assert_eq!(l.pointer().await, ("v3".to_owned(), 3));
    let kinds: Vec<String> = l.events().await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(kinds, vec!["Gate Verdict", "Release Promoted"]);

    // Production alarm → back to v1, the last release before v3 that passed (v2 failed).
    let event_id = unique("alarm");
    let out = l
        .evaluate_rollback
        .invoke(&alarm(&event_id, "support-bot-errors"))
        .await
        .unwrap();
    assert_eq!(out["results"][0]["outcome"], "rolled_back", "{out}");
    assert_eq!(l.pointer().await, ("v1".to_owned(), 4));
    let history = l
        .ssm
        .get_parameter_history()
        .name(&l.param)
        .send()
        .await
        .unwrap();
    let rolled = history
        .parameters()
        .iter()
        .find(|h| h.version() == 4)
        .unwrap();
    assert!(
        rolled.labels()[0].starts_with("rollback-from-v3-to-v1-"),
        "{:?}",
        rolled.labels()
    );
    let rollbacks = Ledger::new(&l.store).rollbacks(APP).await.unwrap();
    assert_eq!(rollbacks.len(), 1);
    assert!(rollbacks[0].executed);
    assert_eq!(rollbacks[0].alarm.event_id, event_id);
    let events = l.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "Rollback Executed");
    assert_eq!(
        (events[0].1["from"].as_str(), events[0].1["to"].as_str()),
        (Some("v3"), Some("v1"))
    );
    assert_eq!(
        events[0].1["alarm"]["metrics"],
        json!(["AWS/Lambda Errors FunctionName=support-bot"])
    );

    // check-gates runs again on its schedule: v3 is never promoted a second time.
    let again = l.check_gates().await;
    assert_eq!(again["checked"], 0, "{again}");
    assert_eq!(l.pointer().await, ("v1".to_owned(), 4));
    assert!(l.events().await.is_empty());
}
