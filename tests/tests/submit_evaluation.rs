//! submit-evaluation end to end: the built `submit-evaluation` binary under the Lambda
//! Runtime API harness, its SDK clients talking over HTTP to moto (S3, EventBridge → SQS)
//! and to bedrock-local (Bedrock's evaluation-job API, which reads the shards from moto's
//! S3 and writes results back).
//!
//! Events the function emits are observed on a per-test EventBridge bus with a rule
//! `{"source": ["evalgate"]}` targeting an SQS queue. Requests the function sends to Bedrock
//! are observed through a recording TCP proxy in front of bedrock-local, so tests assert
//! the exact wire request (token and tags are not visible through GetEvaluationJob).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_bedrock::types::EvaluationJobStatus;
use evalgate::ledger::{JobRecord, Ledger};
use evalgate::store::s3::S3Store;
use evalgate::submission::RejectionReport;
use evalgate_tests::bedrock::{BedrockLocal, Options};
use evalgate_tests::events::EventTap;
use evalgate_tests::names::unique;
use evalgate_tests::runtime::FunctionProcess;
use evalgate_tests::stack::{ACCOUNT_ID, REGION, moto};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROLE: &str = "arn:aws:iam::123456789012:role/evalgate-bedrock";
const APP: &str = "support-bot";
const MODEL: &str = "support-bot-v42";
const POLICY: &str = "version: 1
evaluation:
  evaluator_model: us.amazon.nova-pro-v1:0
  metrics: [Builtin.Correctness, Builtin.Helpfulness]
  custom_metrics:
    - name: brand_voice
      instructions: Does {{prediction}} answer {{prompt}} in Acme's voice?
      rating_scale:
        - { definition: On brand, value: 1 }
        - { definition: Off brand, value: 0 }
  tags:
    team: support
";

fn data_dir() -> std::path::PathBuf {
    evalgate_tests::repo_root().join("tests/data")
}

/// One test's world: a bucket, a bus with a queue behind it, bedrock-local behind a
/// recording proxy, and the function binary.
struct World {
    bucket: String,
    s3: aws_sdk_s3::Client,
    bedrock: BedrockLocal,
    proxy: Proxy,
    events: Events,
    env: Vec<(String, String)>,
    function: FunctionProcess,
}

impl World {
    async fn start(options: Options) -> World {
        let s3 = moto().s3();
        let bucket = unique("sub");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let bedrock = BedrockLocal::start(options).await.unwrap();
        let proxy = Proxy::start(&bedrock.url).await;
        let events = Events::start().await;
        let mut env: Vec<(String, String)> = bedrock
            .function_env()
            .into_iter()
            .filter(|(k, _)| k != "AWS_ENDPOINT_URL_BEDROCK")
            .collect();
        env.push(("AWS_ENDPOINT_URL_BEDROCK".into(), proxy.url.clone()));
        env.push(("EVALGATE_BUCKET".into(), bucket.clone()));
        env.push(("EVALGATE_BEDROCK_ROLE_ARN".into(), ROLE.into()));
        env.push(("EVALGATE_EVENT_BUS".into(), events.tap.bus.clone()));
        let function = FunctionProcess::start_named("submit-evaluation", &env)
            .await
            .unwrap();
        let world = World {
            bucket,
            s3,
            bedrock,
            proxy,
            events,
            env,
            function,
        };
        world.put(&format!("policies/{APP}.yaml"), POLICY).await;
        world
    }

    /// Another sandbox of the same function (for concurrent deliveries).
    async fn another_function(&self) -> FunctionProcess {
        FunctionProcess::start_named("submit-evaluation", &self.env)
            .await
            .unwrap()
    }

    /// Uploads an object; returns its ETag without quotes.
    async fn put(&self, key: &str, body: impl Into<Vec<u8>>) -> String {
        let out = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into().into())
            .send()
            .await
            .unwrap();
        out.e_tag().unwrap().trim_matches('"').to_owned()
    }

    async fn get(&self, key: &str) -> Vec<u8> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        out.body.collect().await.unwrap().into_bytes().to_vec()
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.unwrap().contents() {
                keys.push(object.key().unwrap().to_owned());
            }
        }
        keys
    }

    fn store(&self) -> S3Store {
        S3Store::new(self.s3.clone(), self.bucket.clone())
    }

    async fn job_records(&self, release: &str) -> Vec<JobRecord> {
        let store = self.store();
        let mut records = Ledger::new(&store).jobs(APP, release).await.unwrap();
        records.sort_by_key(|r| r.shard);
        records
    }

    /// An S3 event notification for `key`, encoded as S3 encodes it.
    fn s3_event(&self, key: &str, etag: &str, sequencer: &str) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
            "eventTime": "2026-11-22T10:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "0", "x-amz-id-2": "0"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "datasets",
                "bucket": {"name": self.bucket, "ownerIdentity": {"principalId": "A"},
                    "arn": format!("arn:aws:s3:::{}", self.bucket)},
                "object": {"key": s3_encode(key), "size": 1, "eTag": etag, "sequencer": sequencer}}}]})
    }

    /// An EventBridge `Object Created` event for `key` (EventBridge-enabled bucket).
    fn eventbridge_event(&self, key: &str, etag: &str) -> Value {
        json!({"version": "0", "id": unique("ev"), "detail-type": "Object Created",
            "source": "aws.s3", "account": ACCOUNT_ID, "time": "2026-11-22T10:00:00Z",
            "region": REGION, "resources": [format!("arn:aws:s3:::{}", self.bucket)],
            "detail": {"version": "0", "bucket": {"name": self.bucket},
                "object": {"key": key, "size": 1, "etag": etag, "sequencer": "0A"},
                "request-id": "R", "requester": ACCOUNT_ID, "reason": "PutObject"}})
    }

    async fn upload_and_submit(&self, key: &str, body: impl Into<Vec<u8>>) -> Value {
        let etag = self.put(key, body).await;
        self.function
            .invoke(&self.s3_event(key, &etag, "01"))
            .await
            .unwrap()
    }

    async fn jobs(&self) -> Vec<aws_sdk_bedrock::types::EvaluationSummary> {
        let out = self
            .bedrock
            .client()
            .list_evaluation_jobs()
            .max_results(100)
            .send()
            .await
            .unwrap();
        out.job_summaries().to_vec()
    }

    async fn wait_until_not_running(&self, arn: &str) -> EvaluationJobStatus {
        let client = self.bedrock.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = client
                .get_evaluation_job()
                .job_identifier(arn)
                .send()
                .await
                .unwrap();
            let status = job.status().clone();
            if !matches!(
                status,
                EvaluationJobStatus::InProgress | EvaluationJobStatus::Stopping
            ) {
                return status;
            }
            assert!(Instant::now() < deadline, "{arn} still {status:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn assert_no_panics(&self, function: &FunctionProcess) {
        let logs = function.logs();
        assert!(
            !logs.iter().any(|l| l.contains("panicked")),
            "the function panicked:\n{}",
            logs.join("\n")
        );
        assert!(function.exit_status().is_none(), "the function exited");
    }
}

fn schedule_event() -> Value {
    json!({"version": "0", "id": unique("sched"), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": ACCOUNT_ID, "time": "2026-11-22T10:05:00Z",
        "region": REGION,
        "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/evalgate-drain")],
        "detail": {}})
}

/// URL-encodes a key the way S3 event notifications do (`+` for space).
fn s3_encode(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn record(i: usize, model: &str) -> String {
    json!({
        "prompt": format!("Customer {i}: how do I reset my password?"),
        "referenceResponse": "Use the 'Forgot password' link on the sign-in page.",
        "category": if i.is_multiple_of(2) { "account" } else { "billing" },
        "modelResponses": [{"response": format!("Click 'Forgot password' (ticket {i})."), "modelIdentifier": model}],
        "latencyMs": 800 + i,
        "inputTokens": 400,
        "outputTokens": 50,
        "cost": 0.0012,
        "userId": format!("u-{i}")
    })
    .to_string()
}

fn dataset(n: usize) -> String {
    (0..n).map(|i| record(i, MODEL) + "\n").collect()
}

fn outcome(response: &Value) -> &Value {
    &response["outcomes"][0]
}

/// Events on a per-test bus, delivered to an SQS queue by a rule on `source: evalgate`;
/// every event received so far is kept.
struct Events {
    tap: EventTap,
    seen: Mutex<Vec<Value>>,
}

impl Events {
    async fn start() -> Events {
        Events {
            tap: EventTap::create(moto(), "submit").await.unwrap(),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Every event received so far, after waiting until at least `at_least` arrived in all
    /// and then a quiet second (bounded: 20 s).
    async fn all(&self, at_least: usize) -> Vec<Value> {
        let missing = at_least.saturating_sub(self.seen.lock().unwrap().len());
        let new = self
            .tap
            .receive(missing, Duration::from_secs(20))
            .await
            .unwrap();
        let mut seen = self.seen.lock().unwrap();
        seen.extend(new);
        seen.clone()
    }

    async fn of_type(&self, at_least: usize, detail_type: &str) -> Vec<Value> {
        self.all(at_least)
            .await
            .into_iter()
            .filter(|e| e["detail-type"] == detail_type)
            .collect()
    }
}

/// A TCP proxy in front of bedrock-local that keeps what the function sent, so tests can
/// read the CreateEvaluationJob requests as they went over the wire.
/// The bytes each connection sent, per connection.
type Recorded = Arc<Mutex<Vec<Arc<Mutex<Vec<u8>>>>>>;

struct Proxy {
    url: String,
    connections: Recorded,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections: Recorded = Arc::default();
        let registry = connections.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let recorded = Arc::new(Mutex::new(Vec::new()));
                registry.lock().unwrap().push(recorded.clone());
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_read.read(&mut buf).await {
                        if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        recorded.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        Proxy { url, connections }
    }

    /// The JSON bodies of every `POST /evaluation-jobs` (CreateEvaluationJob) sent so far.
    fn create_requests(&self) -> Vec<Value> {
        let mut bodies = Vec::new();
        for connection in self.connections.lock().unwrap().iter() {
            let bytes = connection.lock().unwrap().clone();
            let mut rest = &bytes[..];
            while let Some(end) = find(rest, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&rest[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                let body_start = end + 4;
                let Some(body) = rest.get(body_start..body_start + length) else {
                    break;
                };
                if head.starts_with("POST /evaluation-jobs ") {
                    bodies.push(serde_json::from_slice(body).unwrap());
                }
                rest = &rest[body_start + length..];
            }
        }
        bodies
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn tag(request: &Value, key: &str) -> Option<String> {
    request["jobTags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .and_then(|t| t["value"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn a_valid_dataset_becomes_one_job_with_the_expected_name_token_tags_metrics_and_uris() {
    let w = World::start(Options {
        job_seconds: 0.3,
        ..Options::default()
    })
    .await;
    // The public AWS sample: 30 prompts, one modelIdentifier.
    let sample = std::fs::read(
        evalgate_tests::repo_root().join("../shared/data/aws-samples-byoi-judge.jsonl"),
    )
    .unwrap();
    let key = "datasets/support-bot/v42/aws-sample.jsonl";
    let etag = w.put(key, sample).await;
    let response = w
        .function
        .invoke(&w.s3_event(key, &etag, "01"))
        .await
        .unwrap();
    let out = outcome(&response);
    assert_eq!(out["outcome"], "submitted", "{response}");
    assert_eq!(out["shards"], 1);
    let arn = out["submitted"][0]["jobArn"].as_str().unwrap().to_owned();

    let source = [w.bucket.as_str(), key, etag.as_str()];
    let dataset_id = evalgate::layout::dataset_id("aws-sample", &etag);
    let job_name = evalgate::layout::job_name(APP, "v42", &source, 0);
    let token = evalgate::layout::client_request_token(&source, 0);
    let shard_uri = format!(
        "s3://{}/{}",
        w.bucket,
        evalgate::layout::shard_key(APP, "v42", &dataset_id, 0)
    );
    let output_uri = format!(
        "s3://{}/{}",
        w.bucket,
        evalgate::layout::output_prefix(APP, "v42", &dataset_id)
    );

    // What went over the wire.
    let requests = w.proxy.create_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request["jobName"], job_name.as_str());
    assert_eq!(request["clientRequestToken"], token.as_str());
    assert_eq!(request["roleArn"], ROLE);
    assert_eq!(request["applicationType"], "ModelEvaluation");
    assert_eq!(tag(request, "evalgate:application").as_deref(), Some(APP));
    assert_eq!(tag(request, "evalgate:release").as_deref(), Some("v42"));
    assert_eq!(
        tag(request, "evalgate:dataset").as_deref(),
        Some("aws-sample")
    );
    assert_eq!(tag(request, "evalgate:shard").as_deref(), Some("1/1"));
    assert_eq!(tag(request, "team").as_deref(), Some("support"));
    let config = &request["evaluationConfig"]["automated"];
    let metrics = &config["datasetMetricConfigs"][0];
    assert_eq!(metrics["taskType"], "General");
    assert_eq!(
        metrics["metricNames"],
        json!(["Builtin.Correctness", "Builtin.Helpfulness", "brand_voice"])
    );
    assert_eq!(
        metrics["dataset"]["datasetLocation"]["s3Uri"],
        shard_uri.as_str()
    );
    assert_eq!(
        config["evaluatorModelConfig"]["bedrockEvaluatorModels"][0]["modelIdentifier"],
        "us.amazon.nova-pro-v1:0"
    );
    assert_eq!(
        config["customMetricConfig"]["customMetrics"][0]["customMetricDefinition"]["name"],
        "brand_voice"
    );
    assert_eq!(
        request["inferenceConfig"]["models"][0]["precomputedInferenceSource"]["inferenceSourceIdentifier"],
        "third-party-model"
    );
    assert_eq!(request["outputDataConfig"]["s3Uri"], output_uri.as_str());

    // What Bedrock knows, and that the token is the one it deduplicates on.
    let job = w
        .bedrock
        .client()
        .get_evaluation_job()
        .job_identifier(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(job.job_name(), job_name);
    assert_eq!(job.output_data_config().unwrap().s3_uri(), output_uri);
    assert_eq!(w.jobs().await.len(), 1);

    // The shard holds only the documented keys; the sidecar the rest.
    let shard = w
        .get(&evalgate::layout::shard_key(APP, "v42", &dataset_id, 0))
        .await;
    let lines: Vec<Value> = String::from_utf8(shard)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    for line in &lines {
        for k in line.as_object().unwrap().keys() {
            assert!(
                ["prompt", "referenceResponse", "category", "modelResponses"].contains(&k.as_str()),
                "{k}"
            );
        }
    }
    assert!(
        !w.keys(&evalgate::layout::metadata_prefix(APP, "v42", &dataset_id))
            .await
            .is_empty()
    );

    // Ledger, open release, event.
    let records = w.job_records("v42").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].job_arn, arn);
    assert_eq!(records[0].client_request_token, token);
    assert_eq!(records[0].prompts, 30);
    let store = w.store();
    let open = Ledger::new(&store).open_releases().await.unwrap();
    assert_eq!((open.len(), open[0].release.as_str()), (1, "v42"));
    let submitted = w.events.of_type(1, "Evaluation Submitted").await;
    assert_eq!(submitted.len(), 1);
    let detail = &submitted[0]["detail"];
    assert_eq!(submitted[0]["source"], "evalgate");
    assert_eq!(detail["application"], APP);
    assert_eq!(detail["release"], "v42");
    assert_eq!(detail["dataset"]["key"], key);
    assert_eq!(detail["shard"], 1);
    assert_eq!(detail["jobArn"], arn.as_str());

    // Bedrock could read the shard: the job completes and writes results under the output prefix.
    assert_eq!(
        w.wait_until_not_running(&arn).await,
        EvaluationJobStatus::Completed
    );
    let results = w
        .keys(&evalgate::layout::output_prefix(APP, "v42", &dataset_id))
        .await;
    assert!(
        results.iter().any(|k| k.ends_with("_output.jsonl")),
        "{results:?}"
    );
    // The function never logs prompt or response text.
    let logs = w.function.logs().join("\n");
    assert!(
        !logs.contains("pencils") && !logs.contains("discount"),
        "{logs}"
    );
    w.assert_no_panics(&w.function);
}

#[tokio::test]
async fn twenty_five_hundred_prompts_become_three_shards_jobs_and_ledger_entries() {
    let w = World::start(Options {
        job_seconds: 0.3,
        ..Options::default()
    })
    .await;
    let key = "datasets/support-bot/v43/large.jsonl";
    let response = w.upload_and_submit(key, dataset(2500)).await;
    assert_eq!(outcome(&response)["shards"], 3, "{response}");
    assert_eq!(w.jobs().await.len(), 3);
    let records = w.job_records("v43").await;
    let prompts: Vec<u32> = records.iter().map(|r| r.prompts).collect();
    assert_eq!(prompts, [1000, 1000, 500]);
    assert!(records.iter().all(|r| r.shard_count == 3));
    let names: std::collections::HashSet<_> = records.iter().map(|r| &r.job_name).collect();
    assert_eq!(names.len(), 3);
    assert_eq!(w.events.of_type(3, "Evaluation Submitted").await.len(), 3);
    for record in &records {
        assert_eq!(
            w.wait_until_not_running(&record.job_arn).await,
            EvaluationJobStatus::Completed
        );
    }
}

#[tokio::test]
async fn the_same_event_five_times_including_concurrently_changes_nothing() {
    let w = World::start(Options {
        job_seconds: 5.0,
        ..Options::default()
    })
    .await;
    let key = "datasets/support-bot/v44/smoke.jsonl";
    let etag = w.put(key, dataset(1200)).await;
    let event = w.s3_event(key, &etag, "01");
    // Three sandboxes at once (as Lambda may run a re-delivered event), then two more in turn.
    let (a, b) = (w.another_function().await, w.another_function().await);
    let (r1, r2, r3) = tokio::join!(
        w.function.invoke(&event),
        a.invoke(&event),
        b.invoke(&event)
    );
    let mut arns = std::collections::BTreeSet::new();
    for response in [r1, r2, r3] {
        let response = response.unwrap();
        assert_eq!(outcome(&response)["outcome"], "submitted", "{response}");
    }
    for _ in 0..2 {
        let response = w.function.invoke(&event).await.unwrap();
        let out = outcome(&response);
        assert_eq!(out["alreadyHandled"], 2, "{response}");
        assert_eq!(out["submitted"].as_array().unwrap().len(), 0);
    }
    let jobs = w.jobs().await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for job in &jobs {
        arns.insert(job.job_arn().to_owned());
    }
    let records = w.job_records("v44").await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| arns.contains(&r.job_arn)));
    let events = w.events.all(2).await;
    let submitted: Vec<_> = events
        .iter()
        .filter(|e| e["detail-type"] == "Evaluation Submitted")
        .collect();
    assert_eq!(submitted.len(), 2, "{events:?}");
    assert_eq!(events.len(), 2, "no other events: {events:?}");
    for f in [&w.function, &a, &b] {
        w.assert_no_panics(f);
    }
}

#[tokio::test]
async fn malformed_datasets_policies_and_keys_are_rejected_with_the_line_and_fix() {
    let w = World::start(Options::default()).await;
    let dir = data_dir().join("malformed");
    let expectations: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expectations.json")).unwrap()).unwrap();
    // (case, key, body, expected line, message fragment)
    type Case = (String, String, Vec<u8>, Option<u64>, String);
    let mut cases: Vec<Case> = Vec::new();
    for case in expectations["datasets"].as_array().unwrap() {
        let name = case["case"].as_str().unwrap().to_owned();
        let body = match case["file"].as_str() {
            Some(file) => std::fs::read(dir.join(file)).unwrap(),
            None => ten_mb_line(&case["generate"]),
        };
        let key = format!("datasets/{APP}/malformed/{name}.jsonl");
        cases.push((
            name,
            key,
            body,
            case["line"].as_u64(),
            case["message"].as_str().unwrap().to_owned(),
        ));
    }
    assert!(cases.len() >= 15, "{}", cases.len());
    for case in expectations["submission"].as_array().unwrap() {
        if let Some(policy) = case["policy"].as_str() {
            let app = case["key"].as_str().unwrap().split('/').nth(1).unwrap();
            w.put(
                &format!("policies/{app}.yaml"),
                std::fs::read(dir.join(policy)).unwrap(),
            )
            .await;
        }
        cases.push((
            case["case"].as_str().unwrap().to_owned(),
            case["key"].as_str().unwrap().to_owned(),
            std::fs::read(dir.join(case["dataset"].as_str().unwrap())).unwrap(),
            case["line"].as_u64(),
            case["message"].as_str().unwrap().to_owned(),
        ));
    }
    for (name, key, body, line, message) in &cases {
        let response = w.upload_and_submit(key, body.clone()).await;
        let out = outcome(&response);
        assert_eq!(out["outcome"], "rejected", "{name}: {response}");
        let uri = out["reportUri"].as_str().unwrap();
        let report_key = uri.strip_prefix(&format!("s3://{}/", w.bucket)).unwrap();
        let report: RejectionReport = serde_json::from_slice(&w.get(report_key).await).unwrap();
        let hit = report
            .errors
            .iter()
            .find(|e| e.line == *line && e.reason.contains(message.as_str()));
        let Some(hit) = hit else {
            panic!(
                "{name}: no error at line {line:?} containing {message:?}: {:#?}",
                report.errors
            );
        };
        assert!(hit.fix.len() > 10, "{name}: {hit:?}");
        assert!(!report.what_to_do.is_empty());
        assert_eq!(report.dataset.key, *key);
        assert!(report.error_count >= 1);
    }
    assert!(w.jobs().await.is_empty(), "no job for any malformed input");
    assert!(w.proxy.create_requests().is_empty());
    assert!(w.keys("shards/").await.is_empty());
    let rejected = w.events.of_type(cases.len(), "Dataset Rejected").await;
    assert_eq!(rejected.len(), cases.len());
    w.assert_no_panics(&w.function);
}

/// The corpus' generated case: a record whose line is 10 MiB.
fn ten_mb_line(spec: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..spec["validLinesBefore"].as_u64().unwrap() as usize {
        out.extend_from_slice(record(i, MODEL).as_bytes());
        out.push(b'\n');
    }
    let size = spec["lineBytes"].as_u64().unwrap() as usize;
    let head = br#"{"prompt":""#;
    let tail = br#"","modelResponses":[{"response":"r","modelIdentifier":"support-bot-v42"}]}"#;
    out.extend_from_slice(head);
    out.resize(out.len() + size - head.len() - tail.len(), b'x');
    out.extend_from_slice(tail);
    out.push(b'\n');
    for i in 0..spec["validLinesAfter"].as_u64().unwrap() as usize {
        out.extend_from_slice(record(i, MODEL).as_bytes());
        out.push(b'\n');
    }
    out
}

#[tokio::test]
async fn with_a_quota_of_one_two_of_three_datasets_wait_and_the_schedule_submits_them() {
    // Jobs run long enough for the first scheduled run to find the quota still used.
    let w = World::start(Options {
        job_seconds: 6.0,
        max_concurrent_jobs: 1,
        ..Options::default()
    })
    .await;
    let keys = [
        "datasets/support-bot/v50/first.jsonl",
        "datasets/support-bot/v50/second.jsonl",
        "datasets/support-bot/v51/third.jsonl",
    ];
    let mut counts = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let response = w.upload_and_submit(key, dataset(5 + i)).await;
        let out = outcome(&response);
        counts.push((
            out["submitted"].as_array().unwrap().len(),
            out["deferred"].as_array().unwrap().len(),
        ));
    }
    assert_eq!(counts, [(1, 0), (0, 1), (0, 1)]);
    let store = w.store();
    let ledger = Ledger::new(&store);
    assert_eq!(ledger.deferred(None).await.unwrap().len(), 2);

    // While the first job runs, the schedule submits nothing and loses nothing.
    let first = &w.jobs().await[0];
    assert_eq!(
        first.status(),
        &EvaluationJobStatus::InProgress,
        "the machine is too slow for this test's timing"
    );
    let response = w.function.invoke(&schedule_event()).await.unwrap();
    assert_eq!(response["drain"]["submitted"], json!([]), "{response}");
    assert_eq!(response["drain"]["waiting"], 2);

    let mut order = Vec::new();
    for expected_waiting in [1, 0] {
        let running = w.jobs().await;
        for job in &running {
            w.wait_until_not_running(job.job_arn()).await;
        }
        let response = w.function.invoke(&schedule_event()).await.unwrap();
        let drain = &response["drain"];
        assert_eq!(
            drain["submitted"].as_array().unwrap().len(),
            1,
            "{response}"
        );
        assert_eq!(drain["waiting"], expected_waiting);
        order.push(
            drain["submitted"][0]["jobName"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Oldest first, none lost, none twice.
    let second = w.job_records("v50").await;
    let third = w.job_records("v51").await;
    assert_eq!(second.len(), 2);
    assert_eq!(third.len(), 1);
    assert_eq!(order[1], third[0].job_name);
    assert!(
        second
            .iter()
            .any(|r| r.job_name == order[0] && r.dataset.key == keys[1])
    );
    assert_eq!(w.jobs().await.len(), 3);
    assert!(ledger.deferred(None).await.unwrap().is_empty());
    let response = w.function.invoke(&schedule_event()).await.unwrap();
    assert_eq!(response["drain"]["submitted"], json!([]));
    let events = w.events.all(5).await;
    let count = |t: &str| events.iter().filter(|e| e["detail-type"] == t).count();
    assert_eq!(count("Evaluation Submitted"), 3, "{events:?}");
    assert_eq!(count("Evaluation Deferred"), 2, "{events:?}");
    assert_eq!(events.len(), 5);
}

#[tokio::test]
async fn keys_with_spaces_plus_equals_and_unicode_work_end_to_end() {
    let w = World::start(Options {
        job_seconds: 0.3,
        ..Options::default()
    })
    .await;
    let key = "datasets/support-bot/v2 beta+rc=1/smoke test + more=ünïcødé ✓.jsonl";
    let response = w.upload_and_submit(key, dataset(4)).await;
    assert_eq!(outcome(&response)["outcome"], "submitted", "{response}");
    // The same kind of key through an EventBridge "Object Created" event.
    let other = "datasets/support-bot/v2 beta+rc=1/second file=2 é.jsonl";
    let etag = w.put(other, dataset(3)).await;
    let response = w
        .function
        .invoke(&w.eventbridge_event(other, &etag))
        .await
        .unwrap();
    assert_eq!(outcome(&response)["outcome"], "submitted", "{response}");

    let records = w.job_records("v2 beta+rc=1").await;
    assert_eq!(records.len(), 2);
    let mut keys: Vec<_> = records.iter().map(|r| r.dataset.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, [other, key]);
    for record in &records {
        assert!(
            evalgate::layout::is_bedrock_safe_uri(&record.shard_uri),
            "{}",
            record.shard_uri
        );
        assert_eq!(
            w.wait_until_not_running(&record.job_arn).await,
            EvaluationJobStatus::Completed,
            "Bedrock read {}",
            record.shard_uri
        );
    }
    let requests = w.proxy.create_requests();
    assert!(
        requests
            .iter()
            .any(|r| tag(r, "evalgate:release").as_deref() == Some("v2 beta+rc=1"))
    );
}

#[tokio::test]
async fn throttling_fails_the_invocation_and_the_retry_submits_exactly_once() {
    let w = World::start(Options {
        fault_rate: 1.0,
        fault_kinds: Some("throttling".into()),
        ..Options::default()
    })
    .await;
    let key = "datasets/support-bot/v60/smoke.jsonl";
    let etag = w.put(key, dataset(3)).await;
    let event = w.s3_event(key, &etag, "01");
    let err = w.function.invoke(&event).await.unwrap_err();
    let message = err.function_error().unwrap().error_message.clone();
    assert!(
        message.contains("throttling") || message.contains("Throttling"),
        "{message}"
    );
    assert!(w.job_records("v60").await.is_empty());
    // Shards were written before the failure; the retry reuses them.
    assert_eq!(w.keys("shards/").await.len(), 1);

    // Lambda retries the event; by then Bedrock answers (a healthy endpoint).
    let healthy = BedrockLocal::start(Options::default()).await.unwrap();
    let mut env: Vec<(String, String)> = w
        .env
        .iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL_BEDROCK")
        .cloned()
        .collect();
    env.push(("AWS_ENDPOINT_URL_BEDROCK".into(), healthy.url.clone()));
    let retry = FunctionProcess::start_named("submit-evaluation", &env)
        .await
        .unwrap();
    for _ in 0..2 {
        let response = retry.invoke(&event).await.unwrap();
        assert_eq!(outcome(&response)["outcome"], "submitted", "{response}");
    }
    let jobs = healthy
        .client()
        .list_evaluation_jobs()
        .send()
        .await
        .unwrap();
    assert_eq!(jobs.job_summaries().len(), 1);
    assert_eq!(w.job_records("v60").await.len(), 1);
    assert_eq!(w.events.of_type(1, "Evaluation Submitted").await.len(), 1);
}

#[tokio::test]
async fn bedrock_refusing_a_deferred_shard_rejects_the_upload_and_stops_its_running_job() {
    let w = World::start(Options {
        job_seconds: 60.0,
        max_concurrent_jobs: 2,
        ..Options::default()
    })
    .await;
    let key = "datasets/support-bot/v70/three-shards.jsonl";
    let response = w.upload_and_submit(key, dataset(2100)).await;
    let out = outcome(&response);
    assert_eq!(out["submitted"].as_array().unwrap().len(), 2, "{response}");
    assert_eq!(out["deferred"].as_array().unwrap().len(), 1);
    let records = w.job_records("v70").await;
    // Shard 3's file disappears (say, a lifecycle rule), and an operator stops job 2.
    let dataset_id = &records[0].dataset_id;
    let shard3 = evalgate::layout::shard_key(APP, "v70", dataset_id, 2);
    w.s3.delete_object()
        .bucket(&w.bucket)
        .key(&shard3)
        .send()
        .await
        .unwrap();
    w.bedrock
        .client()
        .stop_evaluation_job()
        .job_identifier(&records[1].job_arn)
        .send()
        .await
        .unwrap();
    w.wait_until_not_running(&records[1].job_arn).await;

    let response = w.function.invoke(&schedule_event()).await.unwrap();
    assert_eq!(response["drain"]["rejected"], json!([key]), "{response}");
    assert_eq!(response["drain"]["waiting"], 0);
    // Shard 1's job was stopped: no half of the upload keeps running or stays recorded.
    assert_eq!(
        w.wait_until_not_running(&records[0].job_arn).await,
        EvaluationJobStatus::Stopped
    );
    assert!(w.job_records("v70").await.is_empty());
    let report: RejectionReport =
        serde_json::from_slice(&w.get("rejections/support-bot/v70/three-shards.json").await)
            .unwrap();
    assert_eq!(report.stage, evalgate::submission::Stage::Bedrock);
    assert!(
        report.errors[0].reason.contains("shard 3"),
        "{:?}",
        report.errors
    );
    assert!(
        report.stopped_jobs.contains(&records[0].job_arn),
        "{report:?}"
    );
    let rejected = w.events.of_type(1, "Dataset Rejected").await;
    assert_eq!(rejected.len(), 1);
}

/// Peak resident memory (VmHWM, KiB) of this process's running child named
/// `submit-evaluation` (Linux `/proc`), read while it is alive.
fn function_peak_rss_kib() -> Option<u64> {
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid = tail.split_whitespace().nth(1);
        if ppid != Some(me.as_str()) || !head.contains("(submit-evaluati") {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).ok()?;
        return status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
    }
    None
}

/// Benchmark (not part of the suite; run with `--ignored --nocapture`): the function's
/// peak memory on a 100,000-prompt dataset stays bounded by one shard, not the dataset.
/// Prints the figures; asserts that 100x the prompts costs at most one more shard of memory.
#[tokio::test]
#[ignore = "benchmark: cargo test -p evalgate-tests --test submit_evaluation bench_ -- --ignored --nocapture"]
async fn bench_memory_on_a_100k_prompt_dataset() {
    let w = World::start(Options {
        job_seconds: 3600.0,
        max_concurrent_jobs: 200,
        ..Options::default()
    })
    .await;
    let mut figures = Vec::new();
    for (prompts, release) in [(1_000usize, "bench-1k"), (100_000, "bench-100k")] {
        let mut function = w.another_function().await;
        function.timeout = Duration::from_secs(900);
        let body = dataset(prompts);
        let bytes = body.len();
        let key = format!("datasets/{APP}/{release}/load.jsonl");
        let etag = w.put(&key, body).await;
        let started = Instant::now();
        let response = function
            .invoke(&w.s3_event(&key, &etag, "01"))
            .await
            .unwrap();
        let elapsed = started.elapsed();
        let out = outcome(&response);
        assert_eq!(out["outcome"], "submitted", "{response}");
        let peak = function_peak_rss_kib().expect("the function's /proc entry");
        figures.push((
            prompts,
            bytes,
            out["shards"].as_u64().unwrap(),
            peak,
            elapsed,
        ));
        drop(function);
    }
    for (prompts, bytes, shards, peak, elapsed) in &figures {
        println!(
            "submit-evaluation: {prompts} prompts, {:.1} MiB dataset, {shards} shards/jobs: peak RSS {:.1} MiB, {:.1} s (debug build, moto + bedrock-local on 127.0.0.1)",
            *bytes as f64 / 1048576.0,
            *peak as f64 / 1024.0,
            elapsed.as_secs_f64()
        );
    }
    // A hundred times the prompts may cost at most one more shard in memory.
    let (_, _, _, small_peak, _) = figures[0];
    let (_, big_bytes, _, big_peak, _) = figures[1];
    let shard_kib = evalgate::dataset::MAX_SHARD_BYTES as u64 / 1024;
    assert!(
        big_peak <= small_peak + shard_kib && big_peak * 1024 < big_bytes as u64,
        "peak RSS {big_peak} KiB on {big_bytes} bytes vs {small_peak} KiB on 1,000 prompts"
    );
}
