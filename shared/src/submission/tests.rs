//! Unit tests of the orchestration over in-memory fakes (the end-to-end tests in
//! `tests/tests/submit_evaluation.rs` run the real binary against moto and bedrock-local).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::bedrock::JobState;
use crate::events::RecordingPublisher;
use crate::metadata::MetadataLine;
use crate::store::memory::MemoryStore;

const BUCKET: &str = "eval-bucket";
const ROLE: &str = "arn:aws:iam::123456789012:role/evalgate-bedrock";
const POLICY: &str = "version: 1
evaluation:
  evaluator_model: us.amazon.nova-pro-v1:0
  metrics: [Builtin.Correctness, Builtin.Helpfulness]
  custom_metrics:
    - name: brand_voice
      instructions: Rate {{prediction}} against our style guide.
  tags:
    team: support
";

struct FakeJob {
    spec: JobSpec,
    arn: String,
    running: bool,
}

/// Bedrock's evaluation-job API in memory: idempotent on the token, a concurrent-job quota,
/// and job names it refuses with a ValidationException.
#[derive(Default)]
struct FakeJobs {
    max_running: usize,
    refuse: Vec<String>,
    jobs: Mutex<Vec<FakeJob>>,
    stopped: Mutex<Vec<String>>,
}

impl FakeJobs {
    fn with_quota(max_running: usize) -> Self {
        FakeJobs {
            max_running,
            ..FakeJobs::default()
        }
    }

    fn specs(&self) -> Vec<JobSpec> {
        self.jobs
            .lock()
            .unwrap()
            .iter()
            .map(|j| j.spec.clone())
            .collect()
    }

    fn complete_all(&self) {
        for job in self.jobs.lock().unwrap().iter_mut() {
            job.running = false;
        }
    }
}

impl EvaluationJobs for FakeJobs {
    async fn create_job(&self, spec: &JobSpec) -> Result<String, BedrockError> {
        let mut jobs = self.jobs.lock().unwrap();
        if let Some(job) = jobs
            .iter()
            .find(|j| j.spec.client_request_token == spec.client_request_token)
        {
            return Ok(job.arn.clone());
        }
        if self.refuse.contains(&spec.job_name) {
            return Err(BedrockError::Validation(
                "The evaluator model is not available in this Region.".into(),
            ));
        }
        if jobs.iter().filter(|j| j.running).count() >= self.max_running.max(1) {
            return Err(BedrockError::QuotaExceeded(
                "too many concurrent jobs".into(),
            ));
        }
        let arn = format!(
            "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/{:012}",
            jobs.len() + 1
        );
        jobs.push(FakeJob {
            spec: spec.clone(),
            arn: arn.clone(),
            running: true,
        });
        Ok(arn)
    }

    async fn get_job(&self, job_arn: &str) -> Result<JobState, BedrockError> {
        Err(BedrockError::NotFound(job_arn.to_owned()))
    }

    async fn stop_job(&self, job_arn: &str) -> Result<(), BedrockError> {
        for job in self.jobs.lock().unwrap().iter_mut() {
            if job.arn == job_arn {
                job.running = false;
            }
        }
        self.stopped.lock().unwrap().push(job_arn.to_owned());
        Ok(())
    }
}

/// Records events, or fails every publish while `down` is set.
#[derive(Default)]
struct FlakyPublisher {
    down: AtomicBool,
    inner: RecordingPublisher,
}

impl EventPublisher for FlakyPublisher {
    async fn publish(&self, event: &Event) -> Result<(), PublishError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PublishError {
                detail_type: event.detail_type().into(),
                event_key: event.event_key().into(),
                message: "EventBridge is unavailable".into(),
            });
        }
        self.inner.publish(event).await
    }
}

fn settings() -> Settings {
    Settings {
        bucket: BUCKET.into(),
        role_arn: ROLE.into(),
    }
}

fn record(i: usize) -> String {
    format!(
        r#"{{"prompt":"What is {i} + {i}?","referenceResponse":"{}","category":"math","modelResponses":[{{"response":"It is {}.","modelIdentifier":"support-bot-v42"}}],"latencyMs":{i},"cost":0.001}}"#,
        i * 2,
        i * 2
    )
}

fn dataset(n: usize) -> String {
    (0..n).map(|i| record(i) + "\n").collect()
}

async fn bucket_with(datasets: &[(&str, String)]) -> MemoryStore {
    let store = MemoryStore::new(BUCKET);
    store
        .put(
            "policies/support-bot.yaml",
            POLICY.as_bytes().to_vec(),
            "text/yaml",
        )
        .await
        .unwrap();
    for (key, body) in datasets {
        store
            .put(key, body.clone().into_bytes(), "application/jsonl")
            .await
            .unwrap();
    }
    store
}

fn created(key: &str) -> ObjectCreated {
    ObjectCreated {
        bucket: BUCKET.into(),
        key: EventKey::Decoded(key.into()),
        etag: None,
        version_id: None,
        sequencer: Some("0064D3901D00059242".into()),
    }
}

async fn etag_of(store: &MemoryStore, key: &str) -> String {
    store
        .head(key)
        .await
        .unwrap()
        .unwrap()
        .etag
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::detail_type).collect()
}

async fn report(store: &MemoryStore, uri: &str) -> RejectionReport {
    let key = uri.strip_prefix(&format!("s3://{BUCKET}/")).unwrap();
    serde_json::from_slice(&store.get(key).await.unwrap()).unwrap()
}

#[tokio::test]
async fn a_valid_dataset_becomes_one_job_with_derived_names_tags_and_uris() {
    let key = "datasets/support-bot/v42/smoke.jsonl";
    let store = bucket_with(&[(key, dataset(3))]).await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(20),
        RecordingPublisher::default(),
        settings(),
    );
    let submitter = Submitter::new(&store, &jobs, &events, &settings);

    let outcome = submitter.submit_object(&created(key)).await.unwrap();
    let ObjectOutcome::Submitted {
        submitted,
        deferred,
        shards,
        dataset_id,
        ..
    } = &outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!((*shards, submitted.len(), deferred.len()), (1, 1, 0));

    let etag = etag_of(&store, key).await;
    let source = [BUCKET, key, etag.as_str()];
    assert_eq!(dataset_id, &layout::dataset_id("smoke", &etag));
    let specs = jobs.specs();
    let spec = &specs[0];
    assert_eq!(
        spec.job_name,
        layout::job_name("support-bot", "v42", &source, 0)
    );
    assert_eq!(
        spec.client_request_token,
        layout::client_request_token(&source, 0)
    );
    assert_eq!(spec.role_arn, ROLE);
    assert_eq!(spec.task_type, "General");
    assert_eq!(spec.evaluator_model, "us.amazon.nova-pro-v1:0");
    assert_eq!(
        spec.metric_names,
        ["Builtin.Correctness", "Builtin.Helpfulness", "brand_voice"]
    );
    assert_eq!(spec.custom_metrics[0].name, "brand_voice");
    assert_eq!(spec.inference_source_identifier, "support-bot-v42");
    assert_eq!(
        spec.dataset_uri,
        s3_uri(
            BUCKET,
            &layout::shard_key("support-bot", "v42", dataset_id, 0)
        )
    );
    assert_eq!(
        spec.output_uri,
        s3_uri(
            BUCKET,
            &layout::output_prefix("support-bot", "v42", dataset_id)
        )
    );
    for (k, v) in [
        ("team", "support"),
        ("evalgate:application", "support-bot"),
        ("evalgate:release", "v42"),
        ("evalgate:dataset", "smoke"),
        ("evalgate:shard", "1/1"),
    ] {
        assert!(
            spec.tags.contains(&(k.into(), v.into())),
            "{k}: {:?}",
            spec.tags
        );
    }
    assert!(preflight(spec).is_empty(), "{:?}", preflight(spec));

    // The shard holds only Bedrock's keys; the sidecar holds the rest, line by line.
    let shard = store
        .get(&layout::shard_key("support-bot", "v42", dataset_id, 0))
        .await
        .unwrap();
    for line in String::from_utf8(shard).unwrap().lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["category", "modelResponses", "prompt", "referenceResponse"]
        );
    }
    let sidecar = store
        .get(&layout::metadata_key("support-bot", "v42", dataset_id, 0))
        .await
        .unwrap();
    let meta: Vec<MetadataLine> = String::from_utf8(sidecar)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(meta.len(), 3);
    assert_eq!(meta[2].line, 3);
    assert_eq!(meta[2].metadata["latencyMs"], 2);
    assert_eq!(meta[2].prompt_hash, layout::prompt_hash("What is 2 + 2?"));

    let ledger = Ledger::new(&store);
    let records = ledger.jobs("support-bot", "v42").await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].job_arn, submitted[0].job_arn.clone().unwrap());
    assert_eq!(records[0].prompts, 3);
    assert_eq!(records[0].policy_hash, policy_hash(POLICY));
    assert_eq!(records[0].dataset.etag.as_deref(), Some(etag.as_str()));
    assert_eq!(ledger.open_releases().await.unwrap().len(), 1);
    let events = events.taken();
    assert_eq!(kinds(&events), ["Evaluation Submitted"]);
    let Event::EvaluationSubmitted(e) = &events[0] else {
        unreachable!()
    };
    assert_eq!((e.shard, e.shard_count, e.prompts), (1, 1, 3));
    assert_eq!(e.dataset.key, key);
}

#[tokio::test]
async fn the_public_sample_is_accepted() {
    let key = "datasets/support-bot/v1/aws-sample.jsonl";
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/aws-samples-byoi-judge.jsonl"
    ))
    .unwrap();
    let store = bucket_with(&[(key, sample)]).await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(20),
        RecordingPublisher::default(),
        settings(),
    );
    let outcome = Submitter::new(&store, &jobs, &events, &settings)
        .submit_object(&created(key))
        .await
        .unwrap();
    assert!(
        matches!(outcome, ObjectOutcome::Submitted { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        jobs.specs()[0].inference_source_identifier,
        "third-party-model"
    );
}

#[tokio::test]
async fn twenty_five_hundred_prompts_make_three_shards_jobs_and_records() {
    let key = "datasets/support-bot/v42/big.jsonl";
    let store = bucket_with(&[(key, dataset(2500))]).await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(20),
        RecordingPublisher::default(),
        settings(),
    );
    Submitter::new(&store, &jobs, &events, &settings)
        .submit_object(&created(key))
        .await
        .unwrap();
    let specs = jobs.specs();
    assert_eq!(specs.len(), 3);
    let mut records = Ledger::new(&store)
        .jobs("support-bot", "v42")
        .await
        .unwrap();
    records.sort_by_key(|r| r.shard);
    let prompts: Vec<u32> = records.iter().map(|r| r.prompts).collect();
    assert_eq!(prompts, [1000, 1000, 500]);
    assert!(records.iter().all(|r| r.shard_count == 3));
    assert_eq!(kinds(&events.taken()), ["Evaluation Submitted"; 3]);
    let names: std::collections::HashSet<_> = specs.iter().map(|s| &s.job_name).collect();
    assert_eq!(names.len(), 3);
}

#[tokio::test]
async fn redeliveries_sequential_and_concurrent_change_nothing() {
    let key = "datasets/support-bot/v42/smoke.jsonl";
    let store = bucket_with(&[(key, dataset(1500))]).await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(20),
        RecordingPublisher::default(),
        settings(),
    );
    let submitter = Submitter::new(&store, &jobs, &events, &settings);
    let mut event = created(key);
    event.etag = Some(etag_of(&store, key).await);
    let (a, b, c) = tokio::join!(
        submitter.submit_object(&event),
        submitter.submit_object(&event),
        submitter.submit_object(&event)
    );
    for outcome in [a, b, c] {
        assert!(matches!(
            outcome.unwrap(),
            ObjectOutcome::Submitted { shards: 2, .. }
        ));
    }
    for _ in 0..2 {
        let outcome = submitter.submit_object(&event).await.unwrap();
        let ObjectOutcome::Submitted {
            submitted,
            already_handled,
            ..
        } = outcome
        else {
            panic!()
        };
        assert!(submitted.is_empty());
        assert_eq!(already_handled, 2);
    }
    assert_eq!(jobs.specs().len(), 2);
    assert_eq!(
        Ledger::new(&store)
            .jobs("support-bot", "v42")
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(kinds(&events.taken()), ["Evaluation Submitted"; 2]);
}

#[tokio::test]
async fn a_malformed_dataset_is_rejected_whole_with_a_report_and_one_event() {
    let key = "datasets/support-bot/v42/bad.jsonl";
    let body = format!(
        "{}\n{}\n{{\"prompt\":\"SECRET PROMPT\",\"modelResponses\":[]}}\n",
        record(1),
        record(2)
    );
    let store = bucket_with(&[(key, body)]).await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(20),
        RecordingPublisher::default(),
        settings(),
    );
    let submitter = Submitter::new(&store, &jobs, &events, &settings);
    let outcome = submitter.submit_object(&created(key)).await.unwrap();
    let ObjectOutcome::Rejected {
        stage,
        error_count,
        report_uri,
        ..
    } = &outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!((*stage, *error_count), (Stage::Dataset, 1));
    assert_eq!(
        report_uri,
        &format!("s3://{BUCKET}/rejections/support-bot/v42/bad.json")
    );
    let report = report(&store, report_uri).await;
    assert_eq!(report.errors[0].line, Some(3));
    assert!(
        report.errors[0]
            .reason
            .contains("\"modelResponses\" is empty")
    );
    assert!(!report.errors[0].fix.is_empty());
    assert!(report.what_to_do.contains("Nothing was submitted"));
    assert!(
        report.summary.contains("first at line 3"),
        "{}",
        report.summary
    );
    let text = String::from_utf8(
        store
            .get("rejections/support-bot/v42/bad.json")
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!text.contains("SECRET PROMPT"));
    assert!(jobs.specs().is_empty());
    assert!(store.keys().iter().all(|k| !k.starts_with("shards/")));

    // A re-delivery writes the same report but emits nothing; a new upload is new news.
    submitter.submit_object(&created(key)).await.unwrap();
    assert_eq!(kinds(&events.taken()), ["Dataset Rejected"]);
    let mut again = created(key);
    again.sequencer = Some("0064D3901D000592FF".into());
    submitter.submit_object(&again).await.unwrap();
    let events = events.taken();
    assert_eq!(kinds(&events), ["Dataset Rejected"]);
    let Event::DatasetRejected(e) = &events[0] else {
        unreachable!()
    };
    assert_eq!(e.errors[0].line, Some(3));
    assert_eq!(e.application.as_deref(), Some("support-bot"));
}

#[tokio::test]
async fn policy_problems_are_reported_with_dataset_problems() {
    let key = "datasets/other-app/v1/a.jsonl";
    let store = bucket_with(&[(key, format!("{}\nnot json\n", record(1)))]).await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(20),
        RecordingPublisher::default(),
        settings(),
    );
    let submitter = Submitter::new(&store, &jobs, &events, &settings);
    let ObjectOutcome::Rejected {
        stage,
        error_count,
        report_uri,
        ..
    } = submitter.submit_object(&created(key)).await.unwrap()
    else {
        panic!()
    };
    assert_eq!((stage, error_count), (Stage::Policy, 2));
    let r = report(&store, &report_uri).await;
    assert_eq!(r.errors[0].source, ProblemSource::Policy);
    assert!(
        r.errors[0]
            .reason
            .contains("no policy for application \"other-app\"")
    );
    assert!(
        r.errors[0]
            .fix
            .contains("s3://eval-bucket/policies/other-app.yaml")
    );
    assert_eq!(
        (r.errors[1].source, r.errors[1].line),
        (ProblemSource::Dataset, Some(2))
    );

    store
        .put(
            "policies/other-app.yaml",
            b"version: 1\nevaluation:\n  evaluator_model: claude\n  metricz: []\n".to_vec(),
            "text/yaml",
        )
        .await
        .unwrap();
    let mut event = created(key);
    event.sequencer = Some("2".into());
    let ObjectOutcome::Rejected { report_uri, .. } = submitter.submit_object(&event).await.unwrap()
    else {
        panic!()
    };
    let r = report(&store, &report_uri).await;
    assert_eq!(r.errors[0].line, Some(4), "{:?}", r.errors);
    assert!(r.errors[0].reason.contains("metricz"), "{:?}", r.errors[0]);
    assert!(
        r.errors[0]
            .fix
            .contains("line 4 of policies/other-app.yaml")
    );
    assert!(jobs.specs().is_empty());
}

#[tokio::test]
async fn keys_outside_the_convention_are_rejected_and_own_objects_ignored() {
    let store = bucket_with(&[]).await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(20),
        RecordingPublisher::default(),
        settings(),
    );
    let submitter = Submitter::new(&store, &jobs, &events, &settings);
    let outcome = submitter
        .submit_object(&created("datasets/support-bot/smoke.jsonl"))
        .await
        .unwrap();
    let ObjectOutcome::Rejected {
        stage: Stage::Key,
        report_uri,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert!(report_uri.contains("/rejections/_invalid-keys/"));
    let r = report(&store, &report_uri).await;
    assert!(
        r.errors[0]
            .fix
            .contains("datasets/<application>/<release>/<name>.jsonl")
    );
    assert_eq!(kinds(&events.taken()), ["Dataset Rejected"]);

    for key in [
        "rejections/_invalid-keys/x.json",
        "ledger/jobs/a/b/c.json",
        "datasets/support-bot/",
    ] {
        let outcome = submitter.submit_object(&created(key)).await.unwrap();
        assert!(
            matches!(outcome, ObjectOutcome::Skipped { .. }),
            "{key}: {outcome:?}"
        );
    }
    let mut elsewhere = created("datasets/support-bot/v1/a.jsonl");
    elsewhere.bucket = "someone-else".into();
    assert!(matches!(
        submitter.submit_object(&elsewhere).await.unwrap(),
        ObjectOutcome::Skipped { .. }
    ));
    let mut bad_escape = created("x");
    bad_escape.key = EventKey::Notification("datasets/a/v1/bad%zz.jsonl".into());
    assert!(matches!(
        submitter.submit_object(&bad_escape).await.unwrap(),
        ObjectOutcome::Rejected {
            stage: Stage::Key,
            ..
        }
    ));
    assert!(events.taken().len() == 1 && jobs.specs().is_empty());
}

#[tokio::test]
async fn encoded_keys_with_spaces_plus_equals_and_unicode_work() {
    let key = "datasets/support-bot/v1 beta+2/smoke test=1 ü.jsonl";
    let store = bucket_with(&[(key, dataset(2))]).await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(20),
        RecordingPublisher::default(),
        settings(),
    );
    let submitter = Submitter::new(&store, &jobs, &events, &settings);
    let mut event = created("");
    event.key = EventKey::Notification(
        "datasets/support-bot/v1+beta%2B2/smoke+test%3D1+%C3%BC.jsonl".into(),
    );
    let outcome = submitter.submit_object(&event).await.unwrap();
    assert!(
        matches!(outcome, ObjectOutcome::Submitted { .. }),
        "{outcome:?}"
    );
    let spec = &jobs.specs()[0];
    assert!(preflight(spec).is_empty(), "{:?}", preflight(spec));
    assert!(
        spec.tags
            .contains(&("evalgate:release".into(), "v1 beta+2".into()))
    );
    assert!(
        spec.tags
            .contains(&("evalgate:dataset".into(), "smoke test=1 _".into()))
    );
    let records = Ledger::new(&store)
        .jobs("support-bot", "v1 beta+2")
        .await
        .unwrap();
    assert_eq!(records[0].dataset.key, key);
    // EventBridge keys: the raw key exists, so it is used as is.
    let mut eb = created("");
    eb.key = EventKey::EventBridge(key.into());
    eb.sequencer = Some("9".into());
    assert!(matches!(
        submitter.submit_object(&eb).await.unwrap(),
        ObjectOutcome::Submitted {
            already_handled: 1,
            ..
        }
    ));
    // ... and when it arrives URL-encoded, the decoded key that exists is used.
    for encoded in [
        "datasets/support-bot/v1+beta%2B2/smoke+test%3D1+%C3%BC.jsonl",
        "datasets/support-bot/v1%20beta+2/smoke%20test%3D1%20%C3%BC.jsonl",
    ] {
        eb.key = EventKey::EventBridge(encoded.into());
        let outcome = submitter.submit_object(&eb).await.unwrap();
        assert!(
            matches!(&outcome, ObjectOutcome::Submitted { key: k, already_handled: 1, .. } if k == key),
            "{encoded}: {outcome:?}"
        );
    }
    eb.key = EventKey::EventBridge("datasets/support-bot/v1/gone.jsonl".into());
    assert!(matches!(
        submitter.submit_object(&eb).await.unwrap(),
        ObjectOutcome::Skipped { .. }
    ));
}

#[tokio::test]
async fn quota_defers_shards_and_the_drain_submits_them_oldest_first() {
    let keys = [
        "datasets/support-bot/v1/a.jsonl",
        "datasets/support-bot/v1/b.jsonl",
        "datasets/support-bot/v2/c.jsonl",
    ];
    let store = bucket_with(&[
        (keys[0], dataset(2)),
        (keys[1], dataset(3)),
        (keys[2], dataset(4)),
    ])
    .await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(1),
        RecordingPublisher::default(),
        settings(),
    );
    let submitter = Submitter::new(&store, &jobs, &events, &settings);
    let mut outcomes = Vec::new();
    for key in keys {
        outcomes.push(submitter.submit_object(&created(key)).await.unwrap());
        // Distinct deferral times, as with real uploads.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let counts: Vec<(usize, usize)> = outcomes
        .iter()
        .map(|o| match o {
            ObjectOutcome::Submitted {
                submitted,
                deferred,
                ..
            } => (submitted.len(), deferred.len()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(counts, [(1, 0), (0, 1), (0, 1)]);
    assert_eq!(
        kinds(&events.taken()),
        [
            "Evaluation Submitted",
            "Evaluation Deferred",
            "Evaluation Deferred"
        ]
    );
    let ledger = Ledger::new(&store);
    let waiting = ledger.deferred(None).await.unwrap();
    assert!(
        waiting[1].reason.contains("queued behind"),
        "{}",
        waiting[1].reason
    );

    // Quota still full: nothing moves.
    let drained = submitter.drain_deferred().await.unwrap();
    assert!(drained.submitted.is_empty());
    assert_eq!(drained.waiting, 2);

    jobs.complete_all();
    let drained = submitter.drain_deferred().await.unwrap();
    assert_eq!(drained.submitted.len(), 1);
    assert_eq!(drained.waiting, 1);
    assert!(
        jobs.specs()[1].dataset_uri.contains("/b-"),
        "oldest first: {}",
        jobs.specs()[1].dataset_uri
    );

    jobs.complete_all();
    let drained = submitter.drain_deferred().await.unwrap();
    assert_eq!((drained.submitted.len(), drained.waiting), (1, 0));
    assert!(
        submitter
            .drain_deferred()
            .await
            .unwrap()
            .submitted
            .is_empty()
    );

    assert_eq!(jobs.specs().len(), 3);
    assert_eq!(kinds(&events.taken()), ["Evaluation Submitted"; 2]);
    assert_eq!(ledger.jobs("support-bot", "v1").await.unwrap().len(), 2);
    assert_eq!(ledger.jobs("support-bot", "v2").await.unwrap().len(), 1);
    assert_eq!(ledger.open_releases().await.unwrap().len(), 2);
    // A re-delivery of a drained upload changes nothing.
    let outcome = submitter.submit_object(&created(keys[2])).await.unwrap();
    assert!(
        matches!(
            outcome,
            ObjectOutcome::Submitted {
                already_handled: 1,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(jobs.specs().len(), 3);
}

#[tokio::test]
async fn bedrock_refusing_a_later_shard_stops_the_earlier_ones() {
    let key = "datasets/support-bot/v42/two.jsonl";
    let store = bucket_with(&[(key, dataset(5))]).await;
    let etag = etag_of(&store, key).await;
    let refused = layout::job_name("support-bot", "v42", &[BUCKET, key, &etag], 1);
    let jobs = FakeJobs {
        max_running: 20,
        refuse: vec![refused],
        ..FakeJobs::default()
    };
    let (events, settings) = (RecordingPublisher::default(), settings());
    let submitter = Submitter::new(&store, &jobs, &events, &settings).with_limits(Limits {
        max_prompts_per_shard: 3,
        ..Limits::default()
    });
    let outcome = submitter.submit_object(&created(key)).await.unwrap();
    let ObjectOutcome::Rejected {
        stage: Stage::Bedrock,
        report_uri,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    let r = report(&store, &report_uri).await;
    assert!(r.errors[0].reason.contains("shard 2"), "{:?}", r.errors);
    assert!(r.errors[0].reason.contains("not available in this Region"));
    assert_eq!(r.stopped_jobs.len(), 1);
    assert_eq!(*jobs.stopped.lock().unwrap(), r.stopped_jobs);
    assert!(
        Ledger::new(&store)
            .jobs("support-bot", "v42")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        kinds(&events.taken()),
        ["Evaluation Submitted", "Dataset Rejected"]
    );
}

#[tokio::test]
async fn a_replaced_object_is_skipped_as_stale() {
    let key = "datasets/support-bot/v42/smoke.jsonl";
    let store = bucket_with(&[(key, dataset(2))]).await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(20),
        RecordingPublisher::default(),
        settings(),
    );
    let mut event = created(key);
    event.etag = Some("0123456789abcdef0123456789abcdef".into());
    let outcome = Submitter::new(&store, &jobs, &events, &settings)
        .submit_object(&event)
        .await
        .unwrap();
    assert!(
        matches!(outcome, ObjectOutcome::Skipped { .. }),
        "{outcome:?}"
    );
    assert!(jobs.specs().is_empty() && events.taken().is_empty());
}

#[tokio::test]
async fn events_that_cannot_be_published_are_parked_and_flushed_later() {
    let key = "datasets/support-bot/v42/smoke.jsonl";
    let store = bucket_with(&[(key, dataset(2))]).await;
    let (jobs, events, settings) = (
        FakeJobs::with_quota(20),
        FlakyPublisher::default(),
        settings(),
    );
    let submitter = Submitter::new(&store, &jobs, &events, &settings);
    events.down.store(true, Ordering::SeqCst);
    let err = submitter.submit_object(&created(key)).await.unwrap_err();
    assert!(matches!(err, SubmitError::Publish(_)), "{err}");
    assert_eq!(store.list(OUTBOX_PREFIX).await.unwrap().len(), 1);
    // The retry finds the job recorded: nothing new, and the event still parked.
    events.down.store(false, Ordering::SeqCst);
    assert_eq!(submitter.flush_outbox().await.unwrap(), 1);
    submitter.submit_object(&created(key)).await.unwrap();
    assert_eq!(kinds(&events.inner.taken()), ["Evaluation Submitted"]);
    assert!(store.list(OUTBOX_PREFIX).await.unwrap().is_empty());
    assert_eq!(jobs.specs().len(), 1);
}

#[test]
fn preflight_reports_what_bedrock_would_refuse() {
    let mut spec = JobSpec {
        job_name: "eg-app-v1-0123456789-001".into(),
        client_request_token: "a".repeat(64),
        role_arn: ROLE.into(),
        description: Some("evalgate app v1 smoke shard 1/1".into()),
        tags: vec![("evalgate:release".into(), "v 1+2".into())],
        task_type: "General".into(),
        dataset_name: "smoke".into(),
        dataset_uri: "s3://eval-bucket/shards/app/v1/smoke/shard-0001.jsonl".into(),
        metric_names: vec!["Builtin.Correctness".into()],
        evaluator_model: "us.amazon.nova-pro-v1:0".into(),
        custom_metrics: vec![],
        inference_source_identifier: "my-app-v1".into(),
        output_uri: "s3://eval-bucket/evaluations/app/v1/smoke/".into(),
        kms_key_id: None,
    };
    assert!(preflight(&spec).is_empty(), "{:?}", preflight(&spec));
    spec.job_name = "Eg_App".into();
    spec.client_request_token = "-x".into();
    spec.role_arn = "role".into();
    spec.tags.push(("team".into(), "josé".into()));
    spec.dataset_name = "smoke test".into();
    spec.dataset_uri = "s3://eval-bucket/shards/a b.jsonl".into();
    spec.metric_names = vec![];
    spec.inference_source_identifier = "my app".into();
    spec.kms_key_id = Some("key".into());
    let problems = preflight(&spec);
    for fragment in [
        "job name",
        "token",
        "role",
        "tag value",
        "dataset name",
        "dataset location",
        "0 metrics",
        "modelIdentifier",
        "KMS",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(fragment)),
            "{fragment}: {problems:?}"
        );
    }
}

#[test]
fn names_and_tags_are_made_safe() {
    assert_eq!(tag_value("v1 beta+2"), "v1 beta+2");
    assert_eq!(tag_value("café,x"), "caf__x");
    let long = "ü".repeat(300);
    let name = bedrock_dataset_name(&long);
    assert!(name.len() <= 63 && matches(&DATASET_NAME, &name), "{name}");
    assert_eq!(bedrock_dataset_name("smoke"), "smoke");
    assert!(matches(
        &DATASET_NAME,
        &bedrock_dataset_name(&"a".repeat(64))
    ));
    assert_eq!(percent_decode("a%20b+c").as_deref(), Some("a b+c"));
    assert_eq!(percent_decode("bad%2"), None);
    assert_eq!(
        version_tag(Some("\"abc\""), Some("null")).as_deref(),
        Some("abc")
    );
    assert_eq!(version_tag(Some("abc"), Some("v1")).as_deref(), Some("v1"));
}
