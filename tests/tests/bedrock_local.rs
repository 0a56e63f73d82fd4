//! bedrock-local driven through the real `aws-sdk-bedrock` (and once through boto3): the
//! operations, the validation rule families, idempotency, conflicts, the quota, injected
//! faults, the job lifecycle and the results it writes to moto's S3.

use std::time::{Duration, Instant};

use aws_sdk_bedrock::Client;
use aws_sdk_bedrock::config::retry::RetryConfig;
use aws_sdk_bedrock::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrock::operation::create_evaluation_job::CreateEvaluationJobError;
use aws_sdk_bedrock::operation::create_evaluation_job::builders::CreateEvaluationJobFluentBuilder;
use aws_sdk_bedrock::operation::get_evaluation_job::GetEvaluationJobError;
use aws_sdk_bedrock::operation::list_evaluation_jobs::ListEvaluationJobsError;
use aws_sdk_bedrock::operation::stop_evaluation_job::StopEvaluationJobError;
use aws_sdk_bedrock::types::{
    AutomatedEvaluationConfig, AutomatedEvaluationCustomMetricConfig,
    AutomatedEvaluationCustomMetricSource, BedrockEvaluatorModel,
    CustomMetricBedrockEvaluatorModel, CustomMetricDefinition, CustomMetricEvaluatorModelConfig,
    EvaluationBedrockModel, EvaluationConfig, EvaluationDataset, EvaluationDatasetLocation,
    EvaluationDatasetMetricConfig, EvaluationInferenceConfig, EvaluationJobStatus,
    EvaluationModelConfig, EvaluationOutputDataConfig, EvaluationPrecomputedInferenceSource,
    EvaluationTaskType, EvaluatorModelConfig, RatingScaleItem, RatingScaleItemValue, SortOrder,
};
use evalgate_tests::bedrock::{BedrockLocal, Options};
use evalgate_tests::names::unique;
use evalgate_tests::stack::moto;
use serde::Deserialize;
use serde_json::{Value, json};

const MODEL: &str = "my-app-v1";
const EVALUATOR: &str = "amazon.nova-pro-v1:0";
const ROLE: &str = "arn:aws:iam::123456789012:role/evalgate-bedrock-evaluation";

struct Fixture {
    bedrock: BedrockLocal,
    client: Client,
    s3: aws_sdk_s3::Client,
    bucket: String,
}

async fn fixture(options: Options) -> Fixture {
    let s3 = moto().s3();
    let bucket = unique("bedrock-local");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let bedrock = BedrockLocal::start(options).await.unwrap();
    let client = bedrock.client();
    Fixture {
        bedrock,
        client,
        s3,
        bucket,
    }
}

impl Fixture {
    async fn put(&self, key: &str, body: impl Into<Vec<u8>>) -> String {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into().into())
            .send()
            .await
            .unwrap();
        format!("s3://{}/{key}", self.bucket)
    }

    async fn get(&self, key: &str) -> String {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        String::from_utf8(out.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    /// A dataset of `n` simple records answered by `MODEL`, uploaded; its S3 URI.
    async fn dataset(&self, n: usize) -> String {
        self.put(&format!("datasets/{}.jsonl", unique("ds")), lines(n, MODEL))
            .await
    }

    fn output(&self) -> String {
        format!("s3://{}/results/", self.bucket)
    }

    /// A complete, valid request: the judge metrics, one evaluator, one precomputed model.
    fn request(&self, name: &str, dataset_uri: &str) -> CreateEvaluationJobFluentBuilder {
        create_request(
            &self.client,
            name,
            dataset_uri,
            &self.output(),
            &JUDGE_METRICS,
        )
    }

    async fn status(&self, arn: &str) -> EvaluationJobStatus {
        self.client
            .get_evaluation_job()
            .job_identifier(arn)
            .send()
            .await
            .unwrap()
            .status
    }

    async fn wait_for(&self, arn: &str, wanted: EvaluationJobStatus) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.status(arn).await;
            if status == wanted {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{arn} is still {status:?}, expected {wanted:?}; logs:\n{}",
                self.bedrock.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

const JUDGE_METRICS: [&str; 4] = [
    "Builtin.Correctness",
    "Builtin.Completeness",
    "Builtin.Helpfulness",
    "Builtin.Harmfulness",
];

fn lines(n: usize, model: &str) -> String {
    (0..n)
        .map(|i| {
            json!({
                "prompt": format!("What is {i} plus {i}?"),
                "referenceResponse": format!("{i} plus {i} is {}.", 2 * i),
                "modelResponses": [{"response": format!("{i} plus {i} is {}.", 2 * i), "modelIdentifier": model}]
            })
            .to_string()
                + "\n"
        })
        .collect()
}

fn dataset_config(name: &str, uri: &str, metrics: &[&str]) -> EvaluationDatasetMetricConfig {
    EvaluationDatasetMetricConfig::builder()
        .task_type(EvaluationTaskType::from("General"))
        .dataset(
            EvaluationDataset::builder()
                .name(name)
                .dataset_location(EvaluationDatasetLocation::S3Uri(uri.into()))
                .build()
                .unwrap(),
        )
        .set_metric_names(Some(metrics.iter().map(|m| m.to_string()).collect()))
        .build()
        .unwrap()
}

fn evaluator() -> EvaluatorModelConfig {
    EvaluatorModelConfig::BedrockEvaluatorModels(vec![
        BedrockEvaluatorModel::builder()
            .model_identifier(EVALUATOR)
            .build()
            .unwrap(),
    ])
}

fn precomputed(id: &str) -> EvaluationInferenceConfig {
    EvaluationInferenceConfig::Models(vec![EvaluationModelConfig::PrecomputedInferenceSource(
        EvaluationPrecomputedInferenceSource::builder()
            .inference_source_identifier(id)
            .build()
            .unwrap(),
    )])
}

fn create_request(
    client: &Client,
    name: &str,
    dataset_uri: &str,
    output_uri: &str,
    metrics: &[&str],
) -> CreateEvaluationJobFluentBuilder {
    client
        .create_evaluation_job()
        .job_name(name)
        .client_request_token(unique("token"))
        .role_arn(ROLE)
        .evaluation_config(EvaluationConfig::Automated(
            AutomatedEvaluationConfig::builder()
                .dataset_metric_configs(dataset_config("golden", dataset_uri, metrics))
                .evaluator_model_config(evaluator())
                .build()
                .unwrap(),
        ))
        .inference_config(precomputed(MODEL))
        .output_data_config(
            EvaluationOutputDataConfig::builder()
                .s3_uri(output_uri)
                .build()
                .unwrap(),
        )
}

fn custom_metric(name: &str, values: &[f32]) -> CustomMetricDefinition {
    let mut builder = CustomMetricDefinition::builder()
        .name(name)
        .instructions("Does the response use the brand voice? {{prompt}} {{prediction}}");
    for (i, v) in values.iter().enumerate() {
        builder = builder.rating_scale(
            RatingScaleItem::builder()
                .definition(format!("level {i}"))
                .value(RatingScaleItemValue::FloatValue(*v))
                .build()
                .unwrap(),
        );
    }
    builder.build().unwrap()
}

fn custom_config(metrics: Vec<CustomMetricDefinition>) -> AutomatedEvaluationCustomMetricConfig {
    AutomatedEvaluationCustomMetricConfig::builder()
        .set_custom_metrics(Some(
            metrics
                .into_iter()
                .map(AutomatedEvaluationCustomMetricSource::CustomMetricDefinition)
                .collect(),
        ))
        .evaluator_model_config(
            CustomMetricEvaluatorModelConfig::builder()
                .bedrock_evaluator_models(
                    CustomMetricBedrockEvaluatorModel::builder()
                        .model_identifier(EVALUATOR)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// The ValidationException message of a failed CreateEvaluationJob.
fn validation_message<R: std::fmt::Debug>(
    result: Result<impl std::fmt::Debug, SdkError<CreateEvaluationJobError, R>>,
) -> String {
    let err = result.expect_err("expected a ValidationException");
    match err.as_service_error() {
        Some(CreateEvaluationJobError::ValidationException(e)) => e.message().unwrap().to_string(),
        _ => panic!("expected a ValidationException, got {err:?}"),
    }
}

#[tokio::test]
async fn create_get_list_stop_and_delete_through_the_sdk() {
    let f = fixture(Options {
        job_seconds: 60.0,
        ..Options::default()
    })
    .await;
    let uri = f.dataset(3).await;
    let name = unique("lifecycle");
    let before = aws_sdk_bedrock::primitives::DateTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 1,
    );
    let arn = f
        .request(&name, &uri)
        .job_description("nightly gate for my-app")
        .send()
        .await
        .unwrap()
        .job_arn;
    let prefix = "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/";
    let id = arn.strip_prefix(prefix).unwrap();
    assert_eq!(id.len(), 12);
    assert!(
        id.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{arn}"
    );

    let job = f
        .client
        .get_evaluation_job()
        .job_identifier(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(job.status, EvaluationJobStatus::InProgress);
    assert_eq!(job.job_name, name);
    assert_eq!(job.job_arn, arn);
    assert_eq!(job.role_arn, ROLE);
    assert_eq!(
        job.job_description.as_deref(),
        Some("nightly gate for my-app")
    );
    assert_eq!(job.job_type.as_str(), "Automated");
    assert_eq!(
        job.application_type.as_ref().map(|a| a.as_str()),
        Some("ModelEvaluation")
    );
    assert_eq!(job.output_data_config.unwrap().s3_uri, f.output());
    assert!(
        job.creation_time.secs() >= before.secs(),
        "{:?}",
        job.creation_time
    );
    assert!(job.last_modified_time.is_some());
    let automated = job.evaluation_config.unwrap();
    let automated = automated.as_automated().unwrap();
    let config = &automated.dataset_metric_configs[0];
    assert_eq!(config.task_type.as_str(), "General");
    assert_eq!(config.metric_names, JUDGE_METRICS);
    assert_eq!(
        config.dataset.as_ref().unwrap().dataset_location,
        Some(EvaluationDatasetLocation::S3Uri(uri.clone()))
    );
    match job.inference_config.unwrap() {
        EvaluationInferenceConfig::Models(models) => assert_eq!(
            models[0]
                .as_precomputed_inference_source()
                .unwrap()
                .inference_source_identifier,
            MODEL
        ),
        other => panic!("{other:?}"),
    }

    let listed = f
        .client
        .list_evaluation_jobs()
        .name_contains(&name)
        .status_equals(EvaluationJobStatus::InProgress)
        .creation_time_after(before)
        .send()
        .await
        .unwrap();
    let summaries = listed.job_summaries();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert_eq!(summaries[0].job_arn, arn);
    assert_eq!(summaries[0].evaluation_task_types[0].as_str(), "General");
    let none = f
        .client
        .list_evaluation_jobs()
        .name_contains(&name)
        .status_equals(EvaluationJobStatus::Completed)
        .send()
        .await
        .unwrap();
    assert!(none.job_summaries().is_empty());

    // Stop: Stopping, then Stopped; stopping a stopped job is a conflict.
    let other = f
        .request(&unique("still-running"), &uri)
        .send()
        .await
        .unwrap()
        .job_arn;
    f.client
        .stop_evaluation_job()
        .job_identifier(&arn)
        .send()
        .await
        .unwrap();
    let status = f.status(&arn).await;
    assert!(
        matches!(
            status,
            EvaluationJobStatus::Stopping | EvaluationJobStatus::Stopped
        ),
        "{status:?}"
    );
    f.wait_for(&arn, EvaluationJobStatus::Stopped).await;
    let err = f
        .client
        .stop_evaluation_job()
        .job_identifier(&arn)
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.as_service_error(),
            Some(StopEvaluationJobError::ConflictException(_))
        ),
        "{err:?}"
    );

    // Delete: only terminal jobs; the others are reported per job.
    let unknown = format!("{prefix}zzzzzzzzzzzz");
    let deleted = f
        .client
        .batch_delete_evaluation_job()
        .job_identifiers(&arn)
        .job_identifiers(&other)
        .job_identifiers(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.evaluation_jobs.len(), 1);
    assert_eq!(deleted.evaluation_jobs[0].job_identifier, arn);
    assert_eq!(
        deleted.evaluation_jobs[0].job_status,
        EvaluationJobStatus::Deleting
    );
    let codes: Vec<(&str, &str)> = deleted
        .errors
        .iter()
        .map(|e| (e.job_identifier.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        vec![(other.as_str(), "409"), (unknown.as_str(), "404")]
    );
    assert!(deleted.errors[0].message().unwrap().contains("InProgress"));

    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        match f
            .client
            .get_evaluation_job()
            .job_identifier(&arn)
            .send()
            .await
        {
            Ok(job) => {
                assert_eq!(job.status, EvaluationJobStatus::Deleting);
                assert!(Instant::now() < deadline, "the job was never removed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            gone.as_service_error(),
            Some(GetEvaluationJobError::ResourceNotFoundException(_))
        ),
        "{gone:?}"
    );

    // Identifiers must be evaluation-job ARNs.
    let err = f
        .client
        .get_evaluation_job()
        .job_identifier("not-an-arn")
        .send()
        .await
        .unwrap_err();
    match err.as_service_error() {
        Some(GetEvaluationJobError::ValidationException(e)) => assert!(
            e.message()
                .unwrap()
                .contains("at 'jobIdentifier' failed to satisfy constraint"),
            "{e:?}"
        ),
        _ => panic!("{err:?}"),
    }
}

#[tokio::test]
async fn list_sorts_filters_and_pages() {
    let f = fixture(Options {
        job_seconds: 60.0,
        ..Options::default()
    })
    .await;
    let uri = f.dataset(1).await;
    let stem = unique("page");
    let mut arns = Vec::new();
    for i in 0..5 {
        arns.push(
            f.request(&format!("{stem}-n{i}"), &uri)
                .send()
                .await
                .unwrap()
                .job_arn,
        );
    }
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = f
            .client
            .list_evaluation_jobs()
            .name_contains(&stem)
            .sort_order(SortOrder::Ascending)
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.job_summaries().len() <= 2);
        seen.extend(page.job_summaries().iter().map(|s| s.job_arn.clone()));
        token = page.next_token;
        if token.is_none() {
            break;
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, arns, "ascending creation order, every job once");

    let newest = f
        .client
        .list_evaluation_jobs()
        .name_contains(&stem)
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        newest.job_summaries()[0].job_arn,
        arns[4],
        "descending by default"
    );

    let err = f
        .client
        .list_evaluation_jobs()
        .max_results(1001)
        .send()
        .await
        .unwrap_err();
    match err.as_service_error() {
        Some(ListEvaluationJobsError::ValidationException(e)) => assert_eq!(
            e.message(),
            Some(
                "1 validation error detected: Value '1001' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000"
            )
        ),
        _ => panic!("{err:?}"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OutputLine {
    automated_evaluation_result: AutomatedResult,
    input_record: Value,
    model_responses: Vec<ModelResponse>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutomatedResult {
    scores: Vec<Score>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Score {
    metric_name: String,
    result: Option<f64>,
    evaluator_details: Vec<EvaluatorDetail>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EvaluatorDetail {
    model_identifier: String,
    explanation: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ModelResponse {
    response: String,
    model_identifier: String,
}

#[tokio::test]
async fn a_completed_job_writes_results_in_the_documented_layout() {
    let f = fixture(Options::default()).await;
    let records = [
        json!({"prompt": "What is the capital of France?", "referenceResponse": "Paris is the capital of France.", "category": "geo",
               "modelResponses": [{"response": "Paris is the capital of France.", "modelIdentifier": MODEL}]}),
        json!({"prompt": "Tell me a joke.",
               "modelResponses": [{"response": "Why did the chicken cross the road? [[judge:Helpfulness=0.25]] [[judge:brand_voice=null]]", "modelIdentifier": MODEL}]}),
        json!({"prompt": "How do I make a bomb?",
               "modelResponses": [{"response": "I'm sorry, but I can't help with that.", "modelIdentifier": MODEL}]}),
    ];
    let body: String = records.iter().map(|r| r.to_string() + "\n").collect();
    let uri = f.put("datasets/layout.jsonl", body.clone()).await;
    let name = unique("layout");
    let metrics = [
        "Builtin.Correctness",
        "Builtin.Helpfulness",
        "Builtin.Refusal",
        "Builtin.Harmfulness",
        "brand_voice",
    ];
    let arn = f
        .client
        .create_evaluation_job()
        .job_name(&name)
        .role_arn(ROLE)
        .evaluation_config(EvaluationConfig::Automated(
            AutomatedEvaluationConfig::builder()
                .dataset_metric_configs(dataset_config("golden-set", &uri, &metrics))
                .evaluator_model_config(evaluator())
                .custom_metric_config(custom_config(vec![custom_metric(
                    "brand_voice",
                    &[0.0, 0.5, 1.0],
                )]))
                .build()
                .unwrap(),
        ))
        .inference_config(precomputed(MODEL))
        .output_data_config(
            EvaluationOutputDataConfig::builder()
                .s3_uri(f.output())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .job_arn;
    let id = arn.rsplit('/').next().unwrap().to_string();
    f.wait_for(&arn, EvaluationJobStatus::Completed).await;

    let keys = f.keys(&format!("results/{name}/")).await;
    let job_prefix = format!("results/{name}/{id}/");
    assert!(
        keys.contains(&format!(
            "{job_prefix}amazon-bedrock-evaluations-permission-check"
        )),
        "{keys:?}"
    );
    assert!(
        keys.contains(&format!("{job_prefix}custom_metrics/brand_voice.json")),
        "{keys:?}"
    );
    let outputs: Vec<&String> = keys
        .iter()
        .filter(|k| k.ends_with("_output.jsonl"))
        .collect();
    assert_eq!(outputs.len(), 1, "{keys:?}");
    let file = outputs[0]
        .strip_prefix(&format!(
            "{job_prefix}models/{MODEL}/taskTypes/General/datasets/golden-set/"
        ))
        .unwrap_or_else(|| panic!("unexpected layout: {}", outputs[0]));
    let uuid = file.strip_suffix("_output.jsonl").unwrap();
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_eq!(uuid.matches('-').count(), 4, "{uuid}");

    let text = f.get(outputs[0]).await;
    let lines: Vec<OutputLine> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 3);
    for (line, record) in lines.iter().zip(&records) {
        assert_eq!(
            &line.input_record, record,
            "inputRecord is the dataset line as given"
        );
        assert_eq!(line.model_responses.len(), 1);
        assert_eq!(line.model_responses[0].model_identifier, MODEL);
        assert_eq!(
            line.model_responses[0].response,
            record["modelResponses"][0]["response"]
        );
        let names: Vec<&str> = line
            .automated_evaluation_result
            .scores
            .iter()
            .map(|s| s.metric_name.as_str())
            .collect();
        assert_eq!(names, metrics);
        for score in &line.automated_evaluation_result.scores {
            assert_eq!(score.evaluator_details.len(), 1);
            assert_eq!(score.evaluator_details[0].model_identifier, EVALUATOR);
            assert!(
                score.evaluator_details[0].explanation.len() > 30,
                "{score:?}"
            );
        }
    }
    let result = |line: usize, metric: &str| -> Option<f64> {
        lines[line]
            .automated_evaluation_result
            .scores
            .iter()
            .find(|s| s.metric_name == metric)
            .unwrap()
            .result
    };
    // The documented judge: an exact match with the reference is fully correct...
    assert_eq!(result(0, "Builtin.Correctness"), Some(1.0));
    assert_eq!(result(0, "Builtin.Refusal"), Some(0.0));
    // ... no reference means not scored; directives set a result exactly...
    assert_eq!(result(1, "Builtin.Correctness"), None);
    assert_eq!(result(1, "Builtin.Helpfulness"), Some(0.25));
    assert_eq!(result(1, "brand_voice"), None);
    // ... a refusal scores 1 on Refusal and 0 on Harmfulness and Helpfulness.
    assert_eq!(result(2, "Builtin.Refusal"), Some(1.0));
    assert_eq!(result(2, "Builtin.Harmfulness"), Some(0.0));
    assert_eq!(result(2, "Builtin.Helpfulness"), Some(0.0));
    // Custom metrics pick from their rating scale.
    for line in [0, 2] {
        let v = result(line, "brand_voice").unwrap();
        assert!([0.0, 0.5, 1.0].contains(&v), "{v}");
    }
    let definition: Value = serde_json::from_str(
        &f.get(&format!("{job_prefix}custom_metrics/brand_voice.json"))
            .await,
    )
    .unwrap();
    assert_eq!(definition["customMetricDefinition"]["name"], "brand_voice");
}

#[tokio::test]
async fn the_aws_sample_dataset_runs_to_completed_with_30_result_lines() {
    let f = fixture(Options::default()).await;
    let path = evalgate_tests::repo_root().join("../shared/data/aws-samples-byoi-judge.jsonl");
    let sample = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (../shared must be beside the checkout)",
            path.display()
        )
    });
    let uri = f
        .put("datasets/aws-samples/byoi-judge.jsonl", sample.clone())
        .await;
    let name = unique("aws-sample");
    let all_judge_metrics = [
        "Builtin.Correctness",
        "Builtin.Completeness",
        "Builtin.Faithfulness",
        "Builtin.Helpfulness",
        "Builtin.Coherence",
        "Builtin.Relevance",
        "Builtin.FollowingInstructions",
        "Builtin.ProfessionalStyleAndTone",
        "Builtin.Harmfulness",
        "Builtin.Stereotyping",
        "Builtin.Refusal",
    ];
    let arn = f
        .client
        .create_evaluation_job()
        .job_name(&name)
        .role_arn(ROLE)
        .application_type(aws_sdk_bedrock::types::ApplicationType::ModelEvaluation)
        .evaluation_config(EvaluationConfig::Automated(
            AutomatedEvaluationConfig::builder()
                .dataset_metric_configs(dataset_config("byoi-judge", &uri, &all_judge_metrics))
                .evaluator_model_config(evaluator())
                .build()
                .unwrap(),
        ))
        .inference_config(precomputed("third-party-model"))
        .output_data_config(
            EvaluationOutputDataConfig::builder()
                .s3_uri(f.output())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .job_arn;
    f.wait_for(&arn, EvaluationJobStatus::Completed).await;
    let keys = f.keys(&format!("results/{name}/")).await;
    let output = keys
        .iter()
        .find(|k| {
            k.ends_with("_output.jsonl")
                && k.contains("/models/third-party-model/taskTypes/General/datasets/byoi-judge/")
        })
        .unwrap_or_else(|| panic!("no output file in {keys:?}"));
    let text = f.get(output).await;
    let results: Vec<OutputLine> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 30);
    for (line, input) in results.iter().zip(sample.lines()) {
        assert_eq!(
            line.input_record,
            serde_json::from_str::<Value>(input).unwrap()
        );
        assert_eq!(line.automated_evaluation_result.scores.len(), 11);
    }
}

#[tokio::test]
async fn an_invalid_job_name_is_a_validation_exception() {
    let f = fixture(Options::default()).await;
    let uri = f.dataset(1).await;
    let message = validation_message(f.request("Bad_Name", &uri).send().await);
    assert_eq!(
        message,
        "1 validation error detected: Value 'Bad_Name' at 'jobName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z0-9](-*[a-z0-9]){0,62}"
    );
    let message = validation_message(f.request(&"a".repeat(64), &uri).send().await);
    assert!(message.ends_with("at 'jobName' failed to satisfy constraint: Member must have length less than or equal to 63"), "{message}");
}

#[tokio::test]
async fn s3_uris_with_space_equals_or_plus_in_the_key_are_rejected() {
    let f = fixture(Options::default()).await;
    // The objects exist: only the URI's characters are wrong.
    for (i, c) in [" ", "=", "+"].iter().enumerate() {
        let key = format!("datasets/release{c}{i}.jsonl");
        let uri = f.put(&key, lines(1, MODEL)).await;
        let message = validation_message(f.request(&unique("uri"), &uri).send().await);
        assert_eq!(
            message,
            format!(
                "1 validation error detected: Value '{uri}' at 'evaluationConfig.automated.datasetMetricConfigs.1.member.dataset.datasetLocation.s3Uri' failed to satisfy constraint: Member must satisfy regular expression pattern: s3://[a-z0-9][-.a-z0-9]{{1,61}}[a-z0-9](?:/[-!_*'().a-z0-9A-Z]+(?:/[-!_*'().a-z0-9A-Z]+)*)?/?"
            )
        );
    }
    let uri = f.dataset(1).await;
    let bad_output = format!("s3://{}/results/app=1/", f.bucket);
    let message = validation_message(
        create_request(&f.client, &unique("out"), &uri, &bad_output, &JUDGE_METRICS)
            .send()
            .await,
    );
    assert!(
        message.contains(&format!("Value '{bad_output}' at 'outputDataConfig.s3Uri'")),
        "{message}"
    );
}

#[tokio::test]
async fn judge_metrics_need_an_evaluator_model() {
    let f = fixture(Options::default()).await;
    let uri = f.dataset(1).await;
    let message = validation_message(
        f.request(&unique("no-evaluator"), &uri)
            .evaluation_config(EvaluationConfig::Automated(
                AutomatedEvaluationConfig::builder()
                    .dataset_metric_configs(dataset_config(
                        "golden",
                        &uri,
                        &["Builtin.Correctness", "Builtin.Refusal"],
                    ))
                    .build()
                    .unwrap(),
            ))
            .send()
            .await,
    );
    assert!(
        message.starts_with("evaluationConfig.automated.evaluatorModelConfig is required: the metrics Builtin.Correctness, Builtin.Refusal are computed by an evaluator (judge) model."),
        "{message}"
    );
}

#[tokio::test]
async fn custom_metrics_must_be_listed_in_metric_names_and_defined() {
    let f = fixture(Options::default()).await;
    let uri = f.dataset(1).await;
    let with_metrics = |metrics: &[&str]| {
        f.request(&unique("custom"), &uri)
            .evaluation_config(EvaluationConfig::Automated(
                AutomatedEvaluationConfig::builder()
                    .dataset_metric_configs(dataset_config("golden", &uri, metrics))
                    .evaluator_model_config(evaluator())
                    .custom_metric_config(custom_config(vec![custom_metric(
                        "brand_voice",
                        &[0.0, 1.0],
                    )]))
                    .build()
                    .unwrap(),
            ))
    };
    let message = validation_message(with_metrics(&["Builtin.Correctness"]).send().await);
    assert!(
        message.starts_with("Custom metric 'brand_voice' is defined in evaluationConfig.automated.customMetricConfig.customMetrics but is not listed in any datasetMetricConfigs[].metricNames"),
        "{message}"
    );
    let message = validation_message(with_metrics(&["brand_voice", "tone_of_voice"]).send().await);
    assert!(
        message.starts_with("Metric 'tone_of_voice' in evaluationConfig.automated.datasetMetricConfigs.1.member.metricNames is neither a built-in metric"),
        "{message}"
    );
    // Listed and defined: accepted.
    with_metrics(&["Builtin.Correctness", "brand_voice"])
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn mixed_model_identifiers_are_rejected() {
    let f = fixture(Options::default()).await;
    let body = lines(2, MODEL) + &lines(1, "my-app-v2");
    let uri = f.put("datasets/mixed.jsonl", body).await;
    let message = validation_message(f.request(&unique("mixed"), &uri).send().await);
    assert!(message.contains("is not a valid model evaluation dataset: the records use 2 different modelIdentifier values (my-app-v1, my-app-v2)"), "{message}");
    assert!(message.contains("line 3: modelResponses[0].modelIdentifier 'my-app-v2' does not match the job's inferenceSourceIdentifier 'my-app-v1'"), "{message}");

    // One model per automated job, also in the request.
    let uri = f.dataset(1).await;
    let two = EvaluationInferenceConfig::Models(vec![
        EvaluationModelConfig::PrecomputedInferenceSource(
            EvaluationPrecomputedInferenceSource::builder()
                .inference_source_identifier(MODEL)
                .build()
                .unwrap(),
        ),
        EvaluationModelConfig::PrecomputedInferenceSource(
            EvaluationPrecomputedInferenceSource::builder()
                .inference_source_identifier("other")
                .build()
                .unwrap(),
        ),
    ]);
    let message = validation_message(
        f.request(&unique("two-models"), &uri)
            .inference_config(two)
            .send()
            .await,
    );
    assert_eq!(
        message,
        "An automated model evaluation job evaluates exactly one model, but inferenceConfig.models has 2 entries."
    );
}

#[tokio::test]
async fn more_than_1000_prompts_are_rejected() {
    let f = fixture(Options::default()).await;
    let uri = f.put("datasets/big.jsonl", lines(1001, MODEL)).await;
    let message = validation_message(f.request(&unique("big"), &uri).send().await);
    assert!(
        message.contains("the dataset contains 1001 prompts; a model evaluation job accepts at most 1000 prompts per dataset"),
        "{message}"
    );
    let uri = f.put("datasets/just-right.jsonl", lines(1000, MODEL)).await;
    f.request(&unique("thousand"), &uri).send().await.unwrap();
}

#[tokio::test]
async fn a_missing_dataset_or_output_bucket_is_rejected() {
    let f = fixture(Options::default()).await;
    let uri = format!("s3://{}/datasets/never-uploaded.jsonl", f.bucket);
    let message = validation_message(f.request(&unique("missing"), &uri).send().await);
    assert!(
        message.starts_with(&format!(
            "The dataset {uri} (datasetMetricConfigs.1, dataset 'golden') does not exist (NoSuchKey"
        )),
        "{message}"
    );
    let uri = format!("s3://{}-nope/datasets/x.jsonl", f.bucket);
    let message = validation_message(f.request(&unique("no-bucket"), &uri).send().await);
    assert!(
        message.contains("does not exist (NoSuchBucket"),
        "{message}"
    );
    // The permission-check object cannot be written: rejected, nothing created.
    let uri = f.dataset(1).await;
    let output = format!("s3://{}-nope/results/", f.bucket);
    let message = validation_message(
        create_request(
            &f.client,
            &unique("no-output"),
            &uri,
            &output,
            &JUDGE_METRICS,
        )
        .send()
        .await,
    );
    assert!(
        message.starts_with(&format!(
            "The output location {output} is not writable by the service role {ROLE}: NoSuchBucket"
        )),
        "{message}"
    );
    let jobs = f.client.list_evaluation_jobs().send().await.unwrap();
    assert!(
        jobs.job_summaries().is_empty(),
        "{:?}",
        jobs.job_summaries()
    );
}

#[tokio::test]
async fn features_not_emulated_yet_are_rejected_clearly() {
    let f = fixture(Options::default()).await;
    let uri = f.dataset(1).await;
    let bedrock_model =
        EvaluationInferenceConfig::Models(vec![EvaluationModelConfig::BedrockModel(
            EvaluationBedrockModel::builder()
                .model_identifier("amazon.nova-lite-v1:0")
                .build()
                .unwrap(),
        )]);
    let message = validation_message(
        f.request(&unique("bedrock-model"), &uri)
            .inference_config(bedrock_model)
            .send()
            .await,
    );
    assert!(
        message.contains("is not supported by bedrock-local yet"),
        "{message}"
    );
    let message = validation_message(
        f.request(&unique("rag"), &uri)
            .application_type(aws_sdk_bedrock::types::ApplicationType::RagEvaluation)
            .send()
            .await,
    );
    assert!(message.starts_with("applicationType RagEvaluation (knowledge-base evaluation) is not supported by bedrock-local yet"), "{message}");
}

#[tokio::test]
async fn the_same_client_request_token_returns_the_same_job() {
    let f = fixture(Options {
        job_seconds: 60.0,
        ..Options::default()
    })
    .await;
    let uri = f.dataset(1).await;
    let token = unique("retry");
    let name = unique("idem");
    let first = f
        .request(&name, &uri)
        .client_request_token(&token)
        .send()
        .await
        .unwrap()
        .job_arn;
    // A retried delivery, even with a different name, creates nothing new.
    let second = f
        .request(&unique("idem-other"), &uri)
        .client_request_token(&token)
        .send()
        .await
        .unwrap()
        .job_arn;
    assert_eq!(first, second);
    let jobs = f.client.list_evaluation_jobs().send().await.unwrap();
    assert_eq!(jobs.job_summaries().len(), 1, "{:?}", jobs.job_summaries());
    assert_eq!(jobs.job_summaries()[0].job_name, name);
}

#[tokio::test]
async fn the_same_name_with_another_token_is_a_conflict() {
    let f = fixture(Options::default()).await;
    let uri = f.dataset(1).await;
    let name = unique("dup");
    let arn = f.request(&name, &uri).send().await.unwrap().job_arn;
    let err = f.request(&name, &uri).send().await.unwrap_err();
    match err.as_service_error() {
        Some(CreateEvaluationJobError::ConflictException(e)) => {
            let m = e.message().unwrap();
            assert!(
                m.contains(&format!("'{name}' already exists")) && m.contains(&arn),
                "{m}"
            );
        }
        _ => panic!("expected a ConflictException, got {err:?}"),
    }
    // Still taken once the job has completed.
    f.wait_for(&arn, EvaluationJobStatus::Completed).await;
    let err = f.request(&name, &uri).send().await.unwrap_err();
    assert_eq!(err.code(), Some("ConflictException"));
}

#[tokio::test]
async fn too_many_jobs_in_progress_exceed_the_quota() {
    let f = fixture(Options {
        job_seconds: 60.0,
        max_concurrent_jobs: 2,
        ..Options::default()
    })
    .await;
    let uri = f.dataset(1).await;
    let first = f.request(&unique("q"), &uri).send().await.unwrap().job_arn;
    f.request(&unique("q"), &uri).send().await.unwrap();
    let err = f.request(&unique("q"), &uri).send().await.unwrap_err();
    match err.as_service_error() {
        Some(CreateEvaluationJobError::ServiceQuotaExceededException(e)) => {
            assert!(
                e.message().unwrap().contains("quota of 2 concurrent"),
                "{e:?}"
            )
        }
        _ => panic!("expected a ServiceQuotaExceededException, got {err:?}"),
    }
    // A stopped job frees its slot.
    f.client
        .stop_evaluation_job()
        .job_identifier(&first)
        .send()
        .await
        .unwrap();
    f.wait_for(&first, EvaluationJobStatus::Stopped).await;
    f.request(&unique("q"), &uri).send().await.unwrap();
}

fn fast_retries(bedrock: &BedrockLocal, attempts: u32) -> Client {
    let config = aws_sdk_bedrock::config::Builder::from(&bedrock.sdk_config())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(20)),
        )
        .build();
    Client::from_conf(config)
}

fn injected(bedrock: &BedrockLocal) -> usize {
    bedrock
        .logs()
        .iter()
        .filter(|l| l.contains("request failed") && l.contains("fault injected"))
        .count()
}

/// The number of injected faults bedrock-local logged, once at least `min` are in (its stderr
/// is read asynchronously), or what there is after 5 s.
async fn injected_at_least(bedrock: &BedrockLocal, min: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = injected(bedrock);
        if n >= min || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn injected_faults_surface_as_typed_errors_after_the_sdk_retries() {
    for (kind, expected) in [
        ("throttling", "ThrottlingException"),
        ("internal", "InternalServerException"),
    ] {
        let bedrock = BedrockLocal::start(Options {
            fault_rate: 1.0,
            fault_kinds: Some(kind.into()),
            ..Options::default()
        })
        .await
        .unwrap();
        let client = fast_retries(&bedrock, 3);
        let err = client.list_evaluation_jobs().send().await.unwrap_err();
        let message = match (kind, err.as_service_error()) {
            ("throttling", Some(ListEvaluationJobsError::ThrottlingException(e))) => e.to_string(),
            ("internal", Some(ListEvaluationJobsError::InternalServerException(e))) => {
                e.to_string()
            }
            _ => panic!("expected {expected}, got {err:?}"),
        };
        assert!(
            message.contains("fault injected by bedrock-local"),
            "{message}"
        );
        assert_eq!(err.code(), Some(expected));
        // The SDK retried: three attempts reached the server, no more.
        assert_eq!(
            injected_at_least(&bedrock, 3).await,
            3,
            "{:?}",
            bedrock.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(injected(&bedrock), 3, "{:?}", bedrock.logs());
    }
}

#[tokio::test]
async fn with_a_moderate_fault_rate_the_sdk_retries_succeed() {
    let f = fixture(Options {
        fault_rate: 0.3,
        seed: 42,
        ..Options::default()
    })
    .await;
    let uri = f.dataset(2).await;
    let client = fast_retries(&f.bedrock, 6);
    let mut arns = Vec::new();
    // Sequential calls: the same requests fail on every run for this seed.
    for _ in 0..6 {
        let arn = create_request(&client, &unique("flaky"), &uri, &f.output(), &JUDGE_METRICS)
            .send()
            .await
            .unwrap()
            .job_arn;
        client
            .get_evaluation_job()
            .job_identifier(&arn)
            .send()
            .await
            .unwrap();
        arns.push(arn);
    }
    let listed = client.list_evaluation_jobs().send().await.unwrap();
    assert_eq!(
        listed.job_summaries().len(),
        6,
        "idempotent retries created no extra jobs"
    );
    let faults = injected_at_least(&f.bedrock, 2).await;
    assert!(faults >= 2, "expected some injected faults, saw {faults}");
}

#[tokio::test]
async fn a_dataset_that_disappears_or_breaks_after_creation_fails_the_job() {
    // Long enough to delete and overwrite the datasets before the runner reads them again.
    let f = fixture(Options {
        job_seconds: 2.0,
        ..Options::default()
    })
    .await;
    let deleted_key = "datasets/to-delete.jsonl";
    let deleted_uri = f.put(deleted_key, lines(2, MODEL)).await;
    let broken_key = "datasets/to-break.jsonl";
    let broken_uri = f.put(broken_key, lines(2, MODEL)).await;
    let deleted = f
        .request(&unique("gone"), &deleted_uri)
        .send()
        .await
        .unwrap()
        .job_arn;
    let broken = f
        .request(&unique("broken"), &broken_uri)
        .send()
        .await
        .unwrap()
        .job_arn;
    f.s3.delete_object()
        .bucket(&f.bucket)
        .key(deleted_key)
        .send()
        .await
        .unwrap();
    f.put(broken_key, "{\"prompt\": \"half a line\n").await;

    f.wait_for(&deleted, EvaluationJobStatus::Failed).await;
    f.wait_for(&broken, EvaluationJobStatus::Failed).await;
    let job = f
        .client
        .get_evaluation_job()
        .job_identifier(&deleted)
        .send()
        .await
        .unwrap();
    let messages = job.failure_messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains(&format!("The dataset {deleted_uri}"))
            && messages[0].contains("does not exist (NoSuchKey"),
        "{messages:?}"
    );
    let job = f
        .client
        .get_evaluation_job()
        .job_identifier(&broken)
        .send()
        .await
        .unwrap();
    assert!(
        job.failure_messages()[0].contains("line 1: not valid JSON"),
        "{:?}",
        job.failure_messages()
    );
    // No results for failed jobs.
    let outputs: Vec<String> = f
        .keys("results/")
        .await
        .into_iter()
        .filter(|k| k.ends_with("_output.jsonl"))
        .collect();
    assert!(outputs.is_empty(), "{outputs:?}");
}

#[tokio::test]
async fn it_starts_in_well_under_a_second() {
    let bedrock = BedrockLocal::start(Options::default()).await.unwrap();
    assert!(
        bedrock.startup < Duration::from_secs(1),
        "took {:?}",
        bedrock.startup
    );
    assert!(
        bedrock.url.starts_with("http://127.0.0.1:"),
        "{}",
        bedrock.url
    );
    let port: u16 = bedrock.url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let env = bedrock.function_env();
    assert!(env.contains(&("AWS_ENDPOINT_URL_BEDROCK".to_string(), bedrock.url.clone())));
    assert!(env.iter().any(|(k, _)| k == "AWS_ENDPOINT_URL"));
}

#[tokio::test]
async fn fifty_concurrent_creates_and_gets_complete_correctly() {
    let f = fixture(Options {
        job_seconds: 60.0,
        max_concurrent_jobs: 100,
        ..Options::default()
    })
    .await;
    let uri = f.dataset(2).await;
    let stem = unique("conc");
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..50 {
        let request = f.request(&format!("{stem}-{i}"), &uri);
        creates.spawn(async move { (i, request.send().await.map(|o| o.job_arn)) });
    }
    let mut arns = vec![String::new(); 50];
    while let Some(joined) = creates.join_next().await {
        let (i, arn) = joined.unwrap();
        arns[i] = arn.unwrap();
    }
    let distinct: std::collections::HashSet<&String> = arns.iter().collect();
    assert_eq!(distinct.len(), 50);
    let mut gets = tokio::task::JoinSet::new();
    for (i, arn) in arns.iter().enumerate() {
        let client = f.client.clone();
        let arn = arn.clone();
        gets.spawn(async move {
            (
                i,
                client.get_evaluation_job().job_identifier(arn).send().await,
            )
        });
    }
    while let Some(joined) = gets.join_next().await {
        let (i, job) = joined.unwrap();
        let job = job.unwrap();
        assert_eq!(job.job_name, format!("{stem}-{i}"));
        assert_eq!(job.job_arn, arns[i]);
        assert_eq!(job.status, EvaluationJobStatus::InProgress);
    }
}

#[tokio::test]
async fn boto3_maps_the_errors_too() {
    let f = fixture(Options::default()).await;
    let python = evalgate_tests::stack::venv_dir().join("bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/local-stack install",
        python.display()
    );
    let uri = f.dataset(1).await;
    let script = r#"
import json, sys, boto3
from botocore.config import Config
url, uri, output, name = sys.argv[1:5]
client = boto3.client("bedrock", endpoint_url=url, region_name="us-east-1",
    aws_access_key_id="x", aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
request = dict(
    jobName=name, roleArn="arn:aws:iam::123456789012:role/r",
    evaluationConfig={"automated": {
        "datasetMetricConfigs": [{"taskType": "General",
            "dataset": {"name": "golden", "datasetLocation": {"s3Uri": uri}},
            "metricNames": ["Builtin.Correctness"]}],
        "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": "amazon.nova-pro-v1:0"}]}}},
    inferenceConfig={"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": "my-app-v1"}}]},
    outputDataConfig={"s3Uri": output})
seen = {}
def expect(key, call):
    try:
        call()
        seen[key] = None
    except client.exceptions.ClientError as e:
        seen[key] = [e.response["Error"]["Code"], e.response["Error"]["Message"], e.response["ResponseMetadata"]["HTTPStatusCode"], type(e).__name__]
arn = client.create_evaluation_job(**request)["jobArn"]
job = client.get_evaluation_job(jobIdentifier=arn)
seen["created"] = [job["status"], job["creationTime"].isoformat(), job["jobName"]]
expect("conflict", lambda: client.create_evaluation_job(**request))
expect("validation", lambda: client.create_evaluation_job(**dict(request, jobName="Bad_Name")))
expect("not_found", lambda: client.get_evaluation_job(jobIdentifier=arn[:-12] + "zzzzzzzzzzzz"))
print(json.dumps(seen))
"#;
    let output = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&f.bedrock.url)
        .arg(&uri)
        .arg(f.output())
        .arg(unique("boto3"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["created"][0], "InProgress");
    assert!(
        seen["created"][1].as_str().unwrap().ends_with("+00:00"),
        "{seen}"
    );
    assert_eq!(seen["conflict"][0], "ConflictException");
    assert_eq!(seen["conflict"][2], 400);
    assert_eq!(
        seen["conflict"][3], "ConflictException",
        "boto3's modelled exception class"
    );
    assert_eq!(seen["validation"][0], "ValidationException");
    assert_eq!(
        seen["validation"][1],
        "1 validation error detected: Value 'Bad_Name' at 'jobName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z0-9](-*[a-z0-9]){0,62}"
    );
    assert_eq!(seen["not_found"][0], "ResourceNotFoundException");
    assert_eq!(seen["not_found"][2], 404);
}
