//! check-gates end to end: the real binary under the Lambda Runtime API harness, moto's S3,
//! SQS and EventBridge, and bedrock-local running the evaluation jobs. Scores are steered
//! with bedrock-local's documented `[[judge:<Metric>=<value>]]` directive.
//!
//! Each test uploads shards to S3, creates their jobs through `evalgate::bedrock` against
//! bedrock-local, records them in the ledger as submit-evaluation does, waits for the jobs
//! to finish, then invokes check-gates and reads what it recorded and emitted.

use std::time::{Duration, Instant};

use evalgate::bedrock::{BedrockEvaluationJobs, EvaluationJobs, JUDGE_TASK_TYPE, JobSpec};
use evalgate::events::DatasetRef;
use evalgate::layout;
use evalgate::ledger::{JobRecord, Ledger, SCHEMA};
use evalgate::store::ObjectStore;
use evalgate::store::s3::S3Store;
use evalgate_tests::bedrock::{BedrockLocal, Options};
use evalgate_tests::events::EventTap;
use evalgate_tests::names::unique;
use evalgate_tests::runtime::FunctionProcess;
use evalgate_tests::stack::moto;
use serde_json::{Value, json};

const APP: &str = "support-bot";
const MODEL: &str = "support-bot-v1";
const ROLE: &str = "arn:aws:iam::123456789012:role/evalgate-bedrock-evaluation";
const EVALUATOR: &str = "amazon.nova-pro-v1:0";
const METRICS: [&str; 2] = ["Builtin.Correctness", "Builtin.Harmfulness"];
const C: &str = "Builtin.Correctness";
const H: &str = "Builtin.Harmfulness";

/// A policy with the given `gates` section (indented YAML under `gates:`).
fn policy(gates: &str) -> String {
    format!(
        "version: 1\nevaluation:\n  evaluator_model: {EVALUATOR}\n  metrics: [Builtin.Correctness, Builtin.Harmfulness]\ngates:\n{gates}"
    )
}

/// One dataset record: the response steers the judge's scores.
struct Prompt {
    text: String,
    category: Option<&'static str>,
    correctness: Option<f64>,
    harmfulness: Option<f64>,
}

fn prompts(prefix: &str, correctness: &[Option<f64>]) -> Vec<Prompt> {
    correctness
        .iter()
        .enumerate()
        .map(|(i, c)| Prompt {
            text: format!("{prefix} question {i}: how do I reset my password?"),
            category: None,
            correctness: *c,
            harmfulness: Some(0.0),
        })
        .collect()
}

fn directive(metric: &str, value: Option<f64>) -> String {
    match value {
        Some(v) => format!("[[judge:{metric}={v}]]"),
        None => format!("[[judge:{metric}=null]]"),
    }
}

fn shard_body(prompts: &[Prompt]) -> String {
    prompts
        .iter()
        .map(|p| {
            let response = format!(
                "Open Settings and choose Reset password. {} {}",
                directive("Correctness", p.correctness),
                directive("Harmfulness", p.harmfulness)
            );
            let mut record = json!({
                "prompt": p.text,
                "referenceResponse": "Open Settings and choose Reset password.",
                "modelResponses": [{"response": response, "modelIdentifier": MODEL}],
            });
            if let Some(c) = p.category {
                record["category"] = json!(c);
            }
            record.to_string() + "\n"
        })
        .collect()
}

struct Stack {
    bucket: String,
    store: S3Store,
    bedrock: BedrockLocal,
    jobs: BedrockEvaluationJobs,
    events: EventTap,
    function: FunctionProcess,
}

async fn stack(options: Options) -> Stack {
    let moto = moto();
    let s3 = moto.s3();
    let bucket = unique("gates");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    // Events: a bus with a rule for evalgate's events, delivered to a queue we read.
    let events = EventTap::create(moto, "gates").await.unwrap();

    let bedrock = BedrockLocal::start(options).await.unwrap();
    let mut env = bedrock.function_env();
    env.push(("EVALGATE_BUCKET".into(), bucket.clone()));
    env.push(("EVALGATE_EVENT_BUS".into(), events.bus.clone()));
    let function = FunctionProcess::start_named("check-gates", &env)
        .await
        .unwrap();
    Stack {
        store: S3Store::new(s3, bucket.clone()),
        jobs: BedrockEvaluationJobs::new(bedrock.client()),
        bedrock,
        bucket,
        events,
        function,
    }
}

fn schedule() -> Value {
    json!({
        "version": "0", "id": "d1c0f5c6-0a4e-4c2f-9a43-000000000001",
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-22T12:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/evalgate-check-gates"],
        "detail": {}
    })
}

impl Stack {
    async fn put(&self, key: &str, body: &str) {
        self.store
            .put(key, body.as_bytes().to_vec(), "application/octet-stream")
            .await
            .unwrap();
    }

    async fn get_json(&self, key: &str) -> Value {
        serde_json::from_slice(&self.store.get(key).await.unwrap()).unwrap()
    }

    /// Uploads shard `shard` of `count` of dataset `name` for `release`, creates its job in
    /// bedrock-local and records it as submit-evaluation would. Returns the job record.
    async fn submit(
        &self,
        release: &str,
        name: &str,
        shard: u32,
        count: u32,
        prompts: &[Prompt],
    ) -> JobRecord {
        let etag = format!("\"{}-etag\"", name);
        let dataset_key = format!("datasets/{APP}/{release}/{name}.jsonl");
        let dataset_id = layout::dataset_id(name, &etag);
        let index = shard as usize - 1;
        let source = [self.bucket.as_str(), dataset_key.as_str(), etag.as_str()];
        let shard_key = layout::shard_key(APP, release, &dataset_id, index);
        self.put(&shard_key, &shard_body(prompts)).await;
        let output_uri = layout::s3_uri(
            &self.bucket,
            &layout::output_prefix(APP, release, &dataset_id),
        );
        let spec = JobSpec {
            job_name: layout::job_name(APP, release, &source, index),
            client_request_token: layout::client_request_token(&source, index),
            role_arn: ROLE.into(),
            description: None,
            tags: vec![],
            task_type: JUDGE_TASK_TYPE.into(),
            dataset_name: layout::safe_segment(name),
            dataset_uri: layout::s3_uri(&self.bucket, &shard_key),
            metric_names: METRICS.iter().map(|m| (*m).to_owned()).collect(),
            evaluator_model: EVALUATOR.into(),
            custom_metrics: vec![],
            inference_source_identifier: MODEL.into(),
            output_uri: output_uri.clone(),
            kms_key_id: None,
        };
        let job_arn = self.jobs.create_job(&spec).await.unwrap();
        let policy_text = String::from_utf8(
            self.store
                .get(&layout::policy_key(APP))
                .await
                .unwrap_or_default(),
        )
        .unwrap();
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
            shard,
            shard_count: count,
            prompts: prompts.len() as u32,
            shard_uri: spec.dataset_uri.clone(),
            metadata_uri: None,
            output_uri,
            job_name: spec.job_name.clone(),
            job_arn,
            client_request_token: spec.client_request_token.clone(),
            policy_hash: evalgate::policy::policy_hash(&policy_text),
            submitted_at: chrono::Utc::now(),
        };
        let ledger = Ledger::new(&self.store);
        ledger.record_job(&record).await.unwrap();
        ledger
            .open_release(APP, release, record.submitted_at)
            .await
            .unwrap();
        record
    }

    /// Waits until bedrock-local has finished `record`'s job.
    async fn finished(&self, record: &JobRecord) -> evalgate::bedrock::JobStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = self.jobs.get_job(&record.job_arn).await.unwrap();
            if state.status.is_terminal() {
                return state.status;
            }
            assert!(
                Instant::now() < deadline,
                "job {} still {:?}; bedrock-local logs:\n{}",
                record.job_name,
                state.status,
                self.bedrock.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One scheduled run of check-gates; its response.
    async fn check(&self) -> Value {
        self.function.invoke(&schedule()).await.unwrap_or_else(|e| {
            panic!(
                "check-gates failed: {e}\nlogs:\n{}",
                self.function.logs().join("\n")
            )
        })
    }

    async fn verdict(&self, release: &str) -> Value {
        self.get_json(&layout::verdict_key(APP, release)).await
    }

    /// Every evalgate event delivered so far (EventBridge envelopes).
    async fn events(&self) -> Vec<Value> {
        self.events
            .receive(0, Duration::from_secs(20))
            .await
            .unwrap()
    }

    /// The EMF lines check-gates printed.
    fn emf(&self) -> Vec<Value> {
        self.function
            .logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect()
    }

    /// Every object under `verdicts/` and `ledger/` with its ETag.
    async fn snapshot(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for prefix in ["verdicts/", "ledger/"] {
            for o in self.store.list(prefix).await.unwrap() {
                out.push((o.key, o.etag.unwrap_or_default()));
            }
        }
        out
    }

    /// Submits one single-shard release, waits for its job, and runs check-gates.
    async fn gate(&self, release: &str, prompts: &[Prompt]) -> Value {
        let record = self.submit(release, "golden", 1, 1, prompts).await;
        assert_eq!(
            self.finished(&record).await,
            evalgate::bedrock::JobStatus::Completed
        );
        self.check().await;
        self.verdict(release).await
    }
}

fn reasons(verdict: &Value) -> Vec<String> {
    verdict["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

fn has_reason(verdict: &Value, text: &str) -> bool {
    reasons(verdict).iter().any(|r| r.contains(text))
}

fn good(n: usize) -> Vec<Option<f64>> {
    vec![Some(1.0); n]
}

#[tokio::test]
async fn a_good_release_passes_and_a_rerun_of_the_schedule_changes_nothing() {
    let s = stack(Options::default()).await;
    s.put(
        &layout::policy_key(APP),
        &policy("  metrics:\n    Builtin.Correctness: { min_mean: 0.8, min_pass_rate: 0.9, pass_bar: 0.75 }\n    Builtin.Harmfulness: { max_mean: 0.1 }\n"),
    )
    .await;
    let mut scores = good(11);
    scores.push(Some(0.75));
    let v = s.gate("v1", &prompts("v1", &scores)).await;

    assert_eq!(v["outcome"], "pass", "{:?}", reasons(&v));
    assert_eq!(v["application"], APP);
    assert_eq!(v["release"], "v1");
    assert!(
        chrono::DateTime::parse_from_rfc3339(v["decided_at"].as_str().unwrap()).is_ok(),
        "{}",
        v["decided_at"]
    );
    let c = &v["metrics"][C];
    assert_eq!(
        (c["scored"].as_u64(), c["unscored"].as_u64()),
        (Some(12), Some(0))
    );
    assert!((c["mean"].as_f64().unwrap() - (11.0 + 0.75) / 12.0).abs() < 1e-9);
    assert_eq!(c["pass_rate"], 1.0);
    assert_eq!(v["metrics"][H]["mean"], 0.0);
    assert_eq!(v["job_arns"].as_array().unwrap().len(), 1);
    assert!(v["policy_hash"].as_str().is_some_and(|h| h.len() == 64));
    // The summary other parts of evalgate read.
    let summaries = Ledger::new(&s.store).verdicts(APP).await.unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].outcome, evalgate::verdict::Outcome::Pass);

    // Report and per-prompt scores beside the verdict.
    let report =
        String::from_utf8(s.store.get(&layout::report_key(APP, "v1")).await.unwrap()).unwrap();
    assert!(report.starts_with("# ✅ PASS: support-bot v1"), "{report}");
    let scores_text =
        String::from_utf8(s.store.get(&layout::scores_key(APP, "v1")).await.unwrap()).unwrap();
    assert_eq!(scores_text.lines().count(), 12);
    assert!(scores_text.contains(&layout::prompt_hash(
        "v1 question 0: how do I reset my password?"
    )));

    // One Gate Verdict event.
    let events = s.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["source"], "evalgate");
    assert_eq!(e["detail-type"], "Gate Verdict");
    assert_eq!(e["detail"]["outcome"], "pass");
    assert_eq!(e["detail"]["eventKey"], "verdict/support-bot/v1");
    assert_eq!(
        e["detail"]["reportUri"],
        format!("s3://{}/verdicts/support-bot/v1/report.md", s.bucket)
    );
    assert_eq!(e["detail"]["metrics"].as_array().unwrap().len(), 2);

    // EMF: one line per metric and one verdict count, raw JSON on stdout.
    let emf = s.emf();
    assert_eq!(emf.len(), 3, "{emf:?}");
    let correctness = emf.iter().find(|l| l["Metric"] == C).unwrap();
    assert_eq!(
        correctness["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "GenAI/Evaluation"
    );
    assert_eq!(correctness["Application"], APP);
    assert_eq!(correctness["PassRate"], 1.0);
    assert_eq!(correctness["UnscoredFraction"], 0.0);
    let count = emf.iter().find(|l| l.get("Verdicts").is_some()).unwrap();
    assert_eq!(
        (count["Outcome"].as_str(), count["Verdicts"].as_f64()),
        (Some("pass"), Some(1.0))
    );

    // Logs carry identifiers and counts, never prompt text.
    let logs = s.function.logs();
    assert!(
        logs.iter().any(|l| l.contains("verdict recorded")),
        "{logs:?}"
    );
    assert!(
        !logs.iter().any(|l| l.contains("reset my password")),
        "{logs:?}"
    );

    // The release is closed; the next scheduled run writes and emits nothing.
    assert!(
        Ledger::new(&s.store)
            .open_releases()
            .await
            .unwrap()
            .is_empty()
    );
    let before = s.snapshot().await;
    let again = s.check().await;
    assert_eq!(again["checked"], 0, "{again}");
    assert_eq!(s.snapshot().await, before);
    assert!(s.events().await.is_empty());
    assert_eq!(s.emf().len(), 3);
}

#[tokio::test]
async fn a_mean_below_its_threshold_fails() {
    let s = stack(Options::default()).await;
    s.put(
        &layout::policy_key(APP),
        &policy("  metrics:\n    Builtin.Correctness: { min_mean: 0.8 }\n"),
    )
    .await;
    let v = s
        .gate(
            "v1",
            &prompts(
                "v1",
                &[Some(0.5), Some(0.75), Some(0.5), Some(1.0)].repeat(3),
            ),
        )
        .await;
    assert_eq!(v["outcome"], "fail");
    assert!(
        has_reason(&v, "Builtin.Correctness: mean 0.6875 (95% CI")
            && has_reason(&v, "is below the minimum 0.8 (min_mean)"),
        "{:?}",
        reasons(&v)
    );
    let event = &s.events().await[0]["detail"];
    assert_eq!(event["outcome"], "fail");
    assert_eq!(event["metrics"][0]["metric"], C, "failing metrics first");
    assert_eq!(event["metrics"][0]["status"], "fail");
    assert_eq!(event["metrics"][0]["threshold"], ">= 0.8 (min_mean)");
    // The worst prompts carry the judge's explanation, and no prompt text by default.
    let worst = event["worstPrompts"].as_array().unwrap();
    assert!(!worst.is_empty());
    assert!(
        worst
            .iter()
            .all(|w| w.get("prompt").is_none() && w["score"] == 0.5)
    );
    assert!(
        worst[0]["explanation"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
}

#[tokio::test]
async fn harmfulness_above_its_maximum_fails() {
    let s = stack(Options::default()).await;
    s.put(
        &layout::policy_key(APP),
        &policy("  metrics:\n    Builtin.Correctness: { min_mean: 0.5 }\n    Builtin.Harmfulness: { max_mean: 0.05 }\n"),
    )
    .await;
    let mut data = prompts("v1", &good(12));
    data[3].harmfulness = Some(1.0);
    data[7].harmfulness = Some(0.5);
    let v = s.gate("v1", &data).await;
    assert_eq!(v["outcome"], "fail", "{:?}", reasons(&v));
    assert!(
        has_reason(&v, "Builtin.Harmfulness: mean 0.125"),
        "{:?}",
        reasons(&v)
    );
    assert!(
        has_reason(&v, "is above the maximum 0.05 (max_mean)"),
        "{:?}",
        reasons(&v)
    );
    assert_eq!(v["metrics"][H]["status"], "fail");
    assert_eq!(v["metrics"][C]["status"], "pass");
    // For a lower-is-better metric the worst prompts are the highest scores.
    let worst = v["metrics"][H]["worst_prompts"].as_array().unwrap();
    assert_eq!(worst[0]["score"], 1.0);
    assert_eq!(worst[0]["prompt_hash"], layout::prompt_hash(&data[3].text));
}

#[tokio::test]
async fn a_regression_against_the_previous_passing_release_fails() {
    let s = stack(Options::default()).await;
    s.put(
        &layout::policy_key(APP),
        &policy("  regression: { max_regressed_prompts: 1 }\n  metrics:\n    Builtin.Correctness: { min_mean: 0.5, max_mean_drop: 0.1 }\n"),
    )
    .await;
    let v1 = s.gate("v1", &prompts("same", &good(12))).await;
    assert_eq!(v1["outcome"], "pass", "{:?}", reasons(&v1));
    // v2: the same prompts, four of them now answered badly.
    let mut scores = good(12);
    for i in [0, 3, 6, 9] {
        scores[i] = Some(0.25);
    }
    let v2 = s.gate("v2", &prompts("same", &scores)).await;
    assert_eq!(v2["outcome"], "fail", "{:?}", reasons(&v2));
    assert_eq!(v2["baseline"]["release"], "v1");
    assert_eq!(v2["baseline"]["selection"], "latest_pass");
    assert!(
        has_reason(
            &v2,
            "Builtin.Correctness: mean worsened by 0.25 (from 1 in baseline v1 to 0.75)"
        ),
        "{:?}",
        reasons(&v2)
    );
    assert!(
        has_reason(
            &v2,
            "4 of 12 prompts shared with baseline v1 regressed by more than 0.25"
        ),
        "{:?}",
        reasons(&v2)
    );
    let b = &v2["metrics"][C]["baseline"];
    assert_eq!(
        (
            b["matched_prompts"].as_u64(),
            b["regressed_prompts"].as_u64()
        ),
        (Some(12), Some(4))
    );
    let mut listed: Vec<&str> = b["regressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["prompt_hash"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut expected: Vec<String> = [0, 3, 6, 9]
        .iter()
        .map(|i| layout::prompt_hash(&format!("same question {i}: how do I reset my password?")))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    // v3 is compared with v1, the most recent *passing* release, not with v2.
    let v3 = s.gate("v3", &prompts("same", &good(12))).await;
    assert_eq!(v3["outcome"], "pass", "{:?}", reasons(&v3));
    assert_eq!(v3["baseline"]["release"], "v1");
}

#[tokio::test]
async fn too_few_scored_prompts_or_too_many_nulls_are_inconclusive() {
    let s = stack(Options::default()).await;
    s.put(
        &layout::policy_key(APP),
        &policy("  min_scored: 10\n  max_unscored_fraction: 0.2\n  metrics:\n    Builtin.Correctness: { min_mean: 0.8 }\n"),
    )
    .await;
    let few = s.gate("few", &prompts("few", &good(5))).await;
    assert_eq!(few["outcome"], "inconclusive", "{:?}", reasons(&few));
    assert!(
        has_reason(
            &few,
            "Builtin.Correctness: only 5 of 5 prompts were scored; the gate needs at least 10 (min_scored)"
        ),
        "{:?}",
        reasons(&few)
    );
    // Half the prompts not scored by the judge: their null is counted, never averaged as 0.
    let scores: Vec<Option<f64>> = (0..12)
        .map(|i| if i % 2 == 0 { Some(1.0) } else { None })
        .collect();
    let nulls = s.gate("nulls", &prompts("nulls", &scores)).await;
    assert_eq!(nulls["outcome"], "inconclusive", "{:?}", reasons(&nulls));
    assert!(
        has_reason(
            &nulls,
            "50% of prompts were not scored (6 of 12); at most 20% may be (max_unscored_fraction)"
        ),
        "{:?}",
        reasons(&nulls)
    );
    let c = &nulls["metrics"][C];
    assert_eq!(
        (c["scored"].as_u64(), c["unscored"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(c["mean"], 1.0, "a null is not a 0");
    let outcomes: Vec<String> = s
        .events()
        .await
        .iter()
        .map(|e| e["detail"]["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["inconclusive", "inconclusive"]);
}

#[tokio::test]
async fn a_failed_job_gives_an_error_verdict_with_bedrocks_message() {
    // Long enough to delete the shard before bedrock-local reads it to run the job.
    let s = stack(Options {
        job_seconds: 3.0,
        ..Options::default()
    })
    .await;
    s.put(
        &layout::policy_key(APP),
        &policy("  metrics:\n    Builtin.Correctness: { min_mean: 0.5 }\n"),
    )
    .await;
    let ok = s
        .submit("v1", "golden", 1, 2, &prompts("a", &good(6)))
        .await;
    let broken = s
        .submit("v1", "golden", 2, 2, &prompts("b", &good(6)))
        .await;
    let shard_key = layout::parse_s3_uri(&broken.shard_uri)
        .unwrap()
        .1
        .to_owned();
    s.store.delete(&shard_key).await.unwrap();
    // While the jobs run, check-gates waits.
    let waiting = s.check().await;
    assert_eq!(waiting["releases"][0]["state"], "waiting", "{waiting}");
    assert!(
        s.store
            .head(&layout::verdict_key(APP, "v1"))
            .await
            .unwrap()
            .is_none()
    );
    s.finished(&ok).await;
    assert_eq!(
        s.finished(&broken).await,
        evalgate::bedrock::JobStatus::Failed
    );
    s.check().await;
    let v = s.verdict("v1").await;
    assert_eq!(v["outcome"], "error");
    let reasons = reasons(&v);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains(&format!(
            "job {} (datasets/support-bot/v1/golden.jsonl, shard 2 of 2) failed:",
            broken.job_name
        )) && reasons[0].contains("does not exist"),
        "{reasons:?}"
    );
    assert!(v["metrics"].as_object().unwrap().is_empty());
    let events = s.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["outcome"], "error");
    let count = s
        .emf()
        .into_iter()
        .find(|l| l.get("Verdicts").is_some())
        .unwrap();
    assert_eq!(count["Outcome"], "error");
}

#[tokio::test]
async fn a_three_shard_release_gets_one_verdict_over_all_shards() {
    let s = stack(Options {
        job_seconds: 3.0,
        ..Options::default()
    })
    .await;
    s.put(
        &layout::policy_key(APP),
        &policy("  metrics:\n    Builtin.Correctness: { min_mean: 0.7 }\n"),
    )
    .await;
    let mut records = Vec::new();
    for (shard, score) in [(1, 1.0), (2, 0.75), (3, 0.5)] {
        let data = prompts(&format!("shard {shard}"), &[Some(score); 5]);
        records.push(s.submit("v1", "golden", shard, 3, &data).await);
    }
    let first = s.check().await;
    assert_eq!(first["releases"][0]["state"], "waiting", "{first}");
    for r in &records {
        s.finished(r).await;
    }
    let second = s.check().await;
    assert_eq!(second["releases"][0]["state"], "decided", "{second}");
    let v = s.verdict("v1").await;
    assert_eq!(v["outcome"], "pass", "{:?}", reasons(&v));
    assert_eq!(v["prompts"], 15);
    assert_eq!(v["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(v["metrics"][C]["scored"], 15);
    assert_eq!(v["metrics"][C]["mean"], 0.75);
    assert_eq!(s.events().await.len(), 1);
    s.check().await;
    assert!(s.events().await.is_empty());
}

#[tokio::test]
async fn results_landing_in_s3_trigger_their_release_only() {
    let s = stack(Options::default()).await;
    s.put(
        &layout::policy_key(APP),
        &policy("  min_scored: 3\n  metrics:\n    Builtin.Correctness: { min_mean: 0.5 }\n"),
    )
    .await;
    let a = s
        .submit("va", "golden", 1, 1, &prompts("a", &good(4)))
        .await;
    let b = s
        .submit("vb", "golden", 1, 1, &prompts("b", &good(4)))
        .await;
    s.finished(&a).await;
    s.finished(&b).await;
    let output = s
        .store
        .list(&layout::output_prefix(APP, "va", &a.dataset_id))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .find(|k| k.ends_with("_output.jsonl"))
        .unwrap();
    let notification = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": s.bucket, "arn": format!("arn:aws:s3:::{}", s.bucket)},
               "object": {"key": output, "size": 100}}
    }]});
    let out = s.function.invoke(&notification).await.unwrap();
    assert_eq!(out["checked"], 1, "{out}");
    assert_eq!(out["releases"][0]["release"], "va");
    assert_eq!(s.verdict("va").await["outcome"], "pass");
    assert!(
        s.store
            .head(&layout::verdict_key(APP, "vb"))
            .await
            .unwrap()
            .is_none()
    );
    // Objects that are not results are acknowledged and ignored.
    let other = json!({"Records": [{"s3": {"bucket": {"name": s.bucket}, "object": {"key": "datasets/support-bot/vb/x.jsonl"}}}]});
    let out = s.function.invoke(&other).await.unwrap();
    assert!(out["ignored"].as_str().is_some(), "{out}");
    // The schedule picks up the other release.
    s.check().await;
    assert_eq!(s.verdict("vb").await["outcome"], "pass");
}
