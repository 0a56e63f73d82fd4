//! Amazon Bedrock model evaluation: the two calls evalgate makes, behind a small trait.
//!
//! [`JobSpec`] is a plain description of one LLM-as-a-judge job on precomputed responses
//! ("bring your own inference"); [`BedrockEvaluationJobs`] turns it into a
//! `CreateEvaluationJob` request and reads `GetEvaluationJob` back into [`JobState`].
//! Errors become [`BedrockError`] variants that say what the caller should do.

use std::future::Future;

use aws_sdk_bedrock::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrock::types as bt;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The task type judge jobs use. It is outside the API model's enum but is what AWS's own
/// examples send and what the service accepts for LLM-as-a-judge jobs.
pub const JUDGE_TASK_TYPE: &str = "General";

/// A rating's value in a custom metric's scale: all floats or all strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatingValue {
    Float(f32),
    Text(String),
}

/// One rating of a custom metric's scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    pub definition: String,
    pub value: RatingValue,
}

/// A custom judge metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomMetricSpec {
    pub name: String,
    pub instructions: String,
    #[serde(default)]
    pub rating_scale: Vec<Rating>,
}

/// Everything needed to create one evaluation job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub job_name: String,
    /// Always set: the SDK would otherwise invent a random token per call, defeating
    /// deduplication of retried events.
    pub client_request_token: String,
    pub role_arn: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    pub task_type: String,
    pub dataset_name: String,
    pub dataset_uri: String,
    /// Built-in and custom metric names (custom ones must also be in `custom_metrics`).
    pub metric_names: Vec<String>,
    /// Foundation-model or inference-profile id/ARN of the judge.
    pub evaluator_model: String,
    #[serde(default)]
    pub custom_metrics: Vec<CustomMetricSpec>,
    /// Must equal every record's `modelResponses[].modelIdentifier`.
    pub inference_source_identifier: String,
    pub output_uri: String,
    #[serde(default)]
    pub kms_key_id: Option<String>,
}

/// A job's lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    InProgress,
    Completed,
    Failed,
    Stopping,
    Stopped,
    Deleting,
    /// A status this SDK version does not know; treated as not finished.
    Unknown(String),
}

impl JobStatus {
    /// Completed, Failed or Stopped: the job will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Stopped
        )
    }
}

/// What `GetEvaluationJob` says about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub job_arn: String,
    pub job_name: String,
    pub status: JobStatus,
    #[serde(default)]
    pub failure_messages: Vec<String>,
    #[serde(default)]
    pub output_uri: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// A Bedrock call failed; the variant says what to do about it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BedrockError {
    /// The request is invalid: report it, do not retry.
    #[error("Bedrock rejected the request: {0}")]
    Validation(String),
    /// Too many concurrent jobs: defer and resubmit later (the SDK does not retry this).
    #[error("Bedrock's evaluation-job quota is exhausted: {0}")]
    QuotaExceeded(String),
    /// E.g. the job name exists with another token: look the job up.
    #[error("Bedrock reported a conflict: {0}")]
    Conflict(String),
    /// Throttling or a 5xx after the SDK's own retries: fail so Lambda retries later.
    #[error("Bedrock is throttling or unavailable (after retries): {0}")]
    Transient(String),
    #[error(
        "access to Bedrock was denied: {0}. Check the function's IAM policy and iam:PassRole on the service role"
    )]
    AccessDenied(String),
    #[error("not found in Bedrock: {0}")]
    NotFound(String),
    #[error("Bedrock call failed: {0}")]
    Other(String),
}

impl BedrockError {
    fn from_sdk<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        err: SdkError<E, R>,
    ) -> Self {
        let message = err.message().map(str::to_owned).unwrap_or_else(|| {
            aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()
        });
        match err.code() {
            Some("ValidationException") => BedrockError::Validation(message),
            Some("ServiceQuotaExceededException") => BedrockError::QuotaExceeded(message),
            Some("ConflictException") => BedrockError::Conflict(message),
            Some(
                "ThrottlingException" | "InternalServerException" | "ServiceUnavailableException",
            ) => BedrockError::Transient(message),
            Some("AccessDeniedException") => BedrockError::AccessDenied(message),
            Some("ResourceNotFoundException") => BedrockError::NotFound(message),
            // Timeouts and connection failures are worth retrying too.
            _ if matches!(
                err,
                SdkError::TimeoutError(_)
                    | SdkError::DispatchFailure(_)
                    | SdkError::ResponseError(_)
            ) =>
            {
                BedrockError::Transient(message)
            }
            _ => BedrockError::Other(message),
        }
    }
}

/// The evaluation-job calls evalgate makes.
pub trait EvaluationJobs: Send + Sync {
    /// Creates the job (idempotent on `client_request_token`) and returns its ARN.
    fn create_job(
        &self,
        spec: &JobSpec,
    ) -> impl Future<Output = Result<String, BedrockError>> + Send;

    /// Reads a job's state.
    fn get_job(&self, job_arn: &str)
    -> impl Future<Output = Result<JobState, BedrockError>> + Send;

    /// Stops a job that is being created or running (StopEvaluationJob). Stopping a job
    /// that has already finished is not an error for callers that only want it not running:
    /// they should treat `Conflict` as "already stopped or finished".
    ///
    /// The default says the operation is unsupported, so existing implementations (test
    /// fakes) keep compiling; [`BedrockEvaluationJobs`] implements it.
    fn stop_job(&self, job_arn: &str) -> impl Future<Output = Result<(), BedrockError>> + Send {
        let message = format!("stopping {job_arn} is not supported by this EvaluationJobs");
        async move { Err(BedrockError::Other(message)) }
    }
}

/// [`EvaluationJobs`] on the Bedrock control-plane API.
#[derive(Debug, Clone)]
pub struct BedrockEvaluationJobs {
    client: aws_sdk_bedrock::Client,
}

impl BedrockEvaluationJobs {
    pub fn new(client: aws_sdk_bedrock::Client) -> Self {
        BedrockEvaluationJobs { client }
    }
}

fn build_err(e: aws_smithy_types::error::operation::BuildError) -> BedrockError {
    BedrockError::Validation(format!("cannot build the request: {e}"))
}

/// The SDK request pieces for a spec (pure: unit-testable without a service).
fn evaluation_config(spec: &JobSpec) -> Result<bt::EvaluationConfig, BedrockError> {
    let dataset = bt::EvaluationDataset::builder()
        .name(&spec.dataset_name)
        .dataset_location(bt::EvaluationDatasetLocation::S3Uri(
            spec.dataset_uri.clone(),
        ))
        .build()
        .map_err(build_err)?;
    let metrics = bt::EvaluationDatasetMetricConfig::builder()
        .task_type(bt::EvaluationTaskType::from(spec.task_type.as_str()))
        .dataset(dataset)
        .set_metric_names(Some(spec.metric_names.clone()))
        .build()
        .map_err(build_err)?;
    let evaluator = bt::BedrockEvaluatorModel::builder()
        .model_identifier(&spec.evaluator_model)
        .build()
        .map_err(build_err)?;
    let mut automated = bt::AutomatedEvaluationConfig::builder()
        .dataset_metric_configs(metrics)
        .evaluator_model_config(bt::EvaluatorModelConfig::BedrockEvaluatorModels(vec![
            evaluator,
        ]));
    if !spec.custom_metrics.is_empty() {
        let mut custom = bt::AutomatedEvaluationCustomMetricConfig::builder()
            .evaluator_model_config(
                bt::CustomMetricEvaluatorModelConfig::builder()
                    .bedrock_evaluator_models(
                        bt::CustomMetricBedrockEvaluatorModel::builder()
                            .model_identifier(&spec.evaluator_model)
                            .build()
                            .map_err(build_err)?,
                    )
                    .build()
                    .map_err(build_err)?,
            );
        for metric in &spec.custom_metrics {
            let mut definition = bt::CustomMetricDefinition::builder()
                .name(&metric.name)
                .instructions(&metric.instructions);
            for rating in &metric.rating_scale {
                let value = match &rating.value {
                    RatingValue::Float(v) => bt::RatingScaleItemValue::FloatValue(*v),
                    RatingValue::Text(v) => bt::RatingScaleItemValue::StringValue(v.clone()),
                };
                definition = definition.rating_scale(
                    bt::RatingScaleItem::builder()
                        .definition(&rating.definition)
                        .value(value)
                        .build()
                        .map_err(build_err)?,
                );
            }
            custom = custom.custom_metrics(
                bt::AutomatedEvaluationCustomMetricSource::CustomMetricDefinition(
                    definition.build().map_err(build_err)?,
                ),
            );
        }
        automated = automated.custom_metric_config(custom.build().map_err(build_err)?);
    }
    Ok(bt::EvaluationConfig::Automated(
        automated.build().map_err(build_err)?,
    ))
}

fn status_of(status: &bt::EvaluationJobStatus) -> JobStatus {
    match status {
        bt::EvaluationJobStatus::InProgress => JobStatus::InProgress,
        bt::EvaluationJobStatus::Completed => JobStatus::Completed,
        bt::EvaluationJobStatus::Failed => JobStatus::Failed,
        bt::EvaluationJobStatus::Stopping => JobStatus::Stopping,
        bt::EvaluationJobStatus::Stopped => JobStatus::Stopped,
        bt::EvaluationJobStatus::Deleting => JobStatus::Deleting,
        other => JobStatus::Unknown(other.as_str().to_owned()),
    }
}

impl EvaluationJobs for BedrockEvaluationJobs {
    async fn create_job(&self, spec: &JobSpec) -> Result<String, BedrockError> {
        let mut request = self
            .client
            .create_evaluation_job()
            .job_name(&spec.job_name)
            .client_request_token(&spec.client_request_token)
            .role_arn(&spec.role_arn)
            .application_type(bt::ApplicationType::ModelEvaluation)
            .evaluation_config(evaluation_config(spec)?)
            .inference_config(bt::EvaluationInferenceConfig::Models(vec![
                bt::EvaluationModelConfig::PrecomputedInferenceSource(
                    bt::EvaluationPrecomputedInferenceSource::builder()
                        .inference_source_identifier(&spec.inference_source_identifier)
                        .build()
                        .map_err(build_err)?,
                ),
            ]))
            .output_data_config(
                bt::EvaluationOutputDataConfig::builder()
                    .s3_uri(&spec.output_uri)
                    .build()
                    .map_err(build_err)?,
            )
            .set_job_description(spec.description.clone())
            .set_customer_encryption_key_id(spec.kms_key_id.clone());
        for (key, value) in &spec.tags {
            request = request.job_tags(
                bt::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(build_err)?,
            );
        }
        let out = request.send().await.map_err(BedrockError::from_sdk)?;
        Ok(out.job_arn().to_owned())
    }

    async fn get_job(&self, job_arn: &str) -> Result<JobState, BedrockError> {
        let out = self
            .client
            .get_evaluation_job()
            .job_identifier(job_arn)
            .send()
            .await
            .map_err(BedrockError::from_sdk)?;
        let created = out.creation_time();
        Ok(JobState {
            job_arn: out.job_arn().to_owned(),
            job_name: out.job_name().to_owned(),
            status: status_of(out.status()),
            failure_messages: out.failure_messages().to_vec(),
            output_uri: out.output_data_config().map(|o| o.s3_uri().to_owned()),
            created_at: DateTime::<Utc>::from_timestamp(created.secs(), created.subsec_nanos()),
        })
    }

    async fn stop_job(&self, job_arn: &str) -> Result<(), BedrockError> {
        self.client
            .stop_evaluation_job()
            .job_identifier(job_arn)
            .send()
            .await
            .map_err(BedrockError::from_sdk)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec {
            job_name: "eg-app-v1-0123456789-001".into(),
            client_request_token: "a".repeat(64),
            role_arn: "arn:aws:iam::123456789012:role/evalgate-bedrock".into(),
            description: None,
            tags: vec![],
            task_type: JUDGE_TASK_TYPE.into(),
            dataset_name: "smoke".into(),
            dataset_uri: "s3://bucket-a/shards/app/v1/smoke/shard-0001.jsonl".into(),
            metric_names: vec!["Builtin.Correctness".into(), "brand_voice".into()],
            evaluator_model: "us.amazon.nova-pro-v1:0".into(),
            custom_metrics: vec![CustomMetricSpec {
                name: "brand_voice".into(),
                instructions: "Rate {{prediction}}".into(),
                rating_scale: vec![Rating {
                    definition: "good".into(),
                    value: RatingValue::Float(1.0),
                }],
            }],
            inference_source_identifier: "my-app-v1".into(),
            output_uri: "s3://bucket-a/evaluations/app/v1/smoke/".into(),
            kms_key_id: None,
        }
    }

    #[test]
    fn builds_an_automated_judge_config() {
        let bt::EvaluationConfig::Automated(config) = evaluation_config(&spec()).unwrap() else {
            panic!("expected an automated config");
        };
        let datasets = config.dataset_metric_configs();
        assert_eq!(datasets.len(), 1);
        assert_eq!(datasets[0].task_type().as_str(), "General");
        assert_eq!(
            datasets[0].metric_names(),
            ["Builtin.Correctness", "brand_voice"]
        );
        let custom = config.custom_metric_config().expect("custom metric config");
        assert_eq!(custom.custom_metrics().len(), 1);
        assert!(config.evaluator_model_config().is_some());
    }

    #[test]
    fn terminal_states() {
        assert!(JobStatus::Completed.is_terminal());
        assert!(JobStatus::Failed.is_terminal());
        assert!(JobStatus::Stopped.is_terminal());
        assert!(!JobStatus::Stopping.is_terminal());
        assert!(!JobStatus::Unknown("New".into()).is_terminal());
    }
}
