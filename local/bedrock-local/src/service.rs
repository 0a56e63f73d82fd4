//! The operations and the job runner.
//!
//! CreateEvaluationJob reads every dataset from S3 and validates it before it answers (a
//! missing or invalid dataset is a ValidationException, not a job that fails later), and writes
//! the permission-check object `<output>/<jobName>/<jobId>/amazon-bedrock-evaluations-permission-check`
//! (empty; proves the output location is writable, as Bedrock checks access when a job is
//! created). After `--job-seconds` the runner reads the datasets again, judges every record
//! and writes, per dataset,
//! `<output>/<jobName>/<jobId>/models/<inferenceSourceIdentifier>/taskTypes/<taskType>/datasets/<datasetName>/<uuid>_output.jsonl`
//! and, per custom metric, its definition as
//! `<output>/<jobName>/<jobId>/custom_metrics/<metricName>.json`. A dataset that is gone or
//! invalid by then fails the job with `failureMessages` saying why.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tracing::{info, warn};

use crate::cli::Config;
use crate::dataset::{self, Record};
use crate::error::ApiError;
use crate::judge::{self, Input};
use crate::model::{AutomatedConfig, CreateJobRequest, DatasetMetricConfig, split_s3_uri};
use crate::patterns::Patterns;
use crate::random::{Faults, Stream};
use crate::s3::{S3, S3Error};
use crate::store::{self, Created, Status, Store};
use crate::validate;

/// Name of the object written under the job's output prefix when the job is created.
pub const PERMISSION_CHECK_OBJECT: &str = "amazon-bedrock-evaluations-permission-check";

/// The emulated service: configuration, state and clients.
#[derive(Debug)]
pub struct Service {
    pub config: Config,
    pub patterns: Patterns,
    pub store: Mutex<Store>,
    pub s3: S3,
    /// Job ids, output file names and request ids (not seeded by `--seed`, so that fault
    /// injection stays a function of the request order alone).
    pub ids: Stream,
    pub faults: Faults,
}

impl Service {
    /// A service for `config`.
    pub fn new(config: Config) -> Result<Self, regex_lite::Error> {
        let patterns = Patterns::compile()?;
        let s3 = S3::new(config.s3_endpoint.as_deref(), &config.region);
        let time_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32);
        let faults = Faults::new(config.fault_rate, config.fault_kinds.clone(), config.seed);
        Ok(Service {
            config,
            patterns,
            store: Mutex::new(Store::default()),
            s3,
            ids: Stream::new(time_seed),
            faults,
        })
    }

    /// The store; a poisoned lock is recovered (the data stays consistent: every update is a
    /// single assignment).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn arn(&self, id: &str) -> String {
        format!(
            "arn:aws:bedrock:{}:{}:evaluation-job/{id}",
            self.config.region, self.config.account_id
        )
    }

    /// The job id an identifier names, or `None` when it is an ARN of another account or
    /// Region (which this service cannot hold).
    fn own_job_id<'a>(&self, identifier: &'a str, path: &str) -> Result<Option<&'a str>, ApiError> {
        let id = validate::job_id_from_identifier(identifier, path, &self.patterns)?;
        Ok((identifier == self.arn(id)).then_some(id))
    }

    /// CreateEvaluationJob: the job's ARN.
    pub async fn create(self: &Arc<Self>, body: &Value) -> Result<String, ApiError> {
        let request = validate::parse_create_request(body, &self.patterns)?;
        if let Some(token) = &request.client_request_token
            && let Some(arn) = self.store().arn_for_token(token)
        {
            info!(job_arn = %arn, "repeated clientRequestToken: returning the existing job");
            return Ok(arn);
        }
        validate::check_semantics(&request)?;
        let id = self.new_job_id();
        let arn = self.arn(&id);
        // Fail fast on a name conflict or the quota before touching S3 (checked again,
        // atomically, when the job is inserted).
        if let Some(arn) = self.store().admit(
            &request,
            self.config.max_concurrent_jobs,
            &self.config.region,
        )? {
            return Ok(arn);
        }
        let Some(automated) = request.automated() else {
            return Err(ApiError::Validation(
                "Only automated evaluation jobs are supported by bedrock-local yet.".into(),
            ));
        };
        let source = request.inference_source_identifier().unwrap_or_default();
        for (i, config) in automated.dataset_metric_configs.iter().enumerate() {
            load_dataset(&self.s3, config, i, source, &request.role_arn)
                .await
                .map_err(|e| e.into_api_error())?;
        }
        let (bucket, prefix) = output_prefix(&request);
        let check_key = format!(
            "{prefix}{}/{id}/{PERMISSION_CHECK_OBJECT}",
            request.job_name
        );
        self.s3
            .put(&bucket, &check_key, Vec::new(), "application/octet-stream")
            .await
            .map_err(|e| output_error(&request, &e))?;

        let created = self.store().create(
            id.clone(),
            arn,
            request,
            store::now(),
            self.config.max_concurrent_jobs,
            &self.config.region,
        )?;
        match created {
            Created::Existing(arn) => Ok(arn),
            Created::New(arn) => {
                info!(job_arn = %arn, "evaluation job created");
                let service = Arc::clone(self);
                tokio::spawn(async move { service.run_job(id).await });
                Ok(arn)
            }
        }
    }

    fn new_job_id(&self) -> String {
        loop {
            let id = self.ids.id(12);
            if !self.store().contains(&id) {
                return id;
            }
        }
    }

    /// GetEvaluationJob.
    pub fn get(&self, identifier: &str) -> Result<Value, ApiError> {
        let id = self.own_job_id(identifier, "jobIdentifier")?;
        let store = self.store();
        id.and_then(|id| store.get(id))
            .map(store::describe)
            .ok_or_else(|| store::not_found(identifier))
    }

    /// ListEvaluationJobs.
    pub fn list(&self, pairs: &[(String, String)]) -> Result<Value, ApiError> {
        let query = validate::parse_list_query(pairs, &self.patterns)?;
        let (summaries, next) = self.store().list(&query)?;
        let mut body = json!({ "jobSummaries": summaries });
        if let (Some(next), Some(obj)) = (next, body.as_object_mut()) {
            obj.insert("nextToken".into(), Value::String(next));
        }
        Ok(body)
    }

    /// StopEvaluationJob.
    pub fn stop(self: &Arc<Self>, identifier: &str) -> Result<(), ApiError> {
        let id = self
            .own_job_id(identifier, "jobIdentifier")?
            .ok_or_else(|| store::not_found(identifier))?;
        self.store().stop(id, identifier, store::now())?;
        info!(job_arn = identifier, "evaluation job stopping");
        let service = Arc::clone(self);
        let id = id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(service.config.transition_duration).await;
            service
                .store()
                .transition(&id, Status::Stopping, Status::Stopped, store::now());
            info!(job_id = %id, "evaluation job stopped");
        });
        Ok(())
    }

    /// BatchDeleteEvaluationJob.
    pub fn batch_delete(self: &Arc<Self>, body: &Value) -> Result<Value, ApiError> {
        let identifiers = validate::parse_batch_delete(body, &self.patterns)?;
        let mut resolved = Vec::new();
        for (i, identifier) in identifiers.iter().enumerate() {
            let path = format!("jobIdentifiers.{}.member", i + 1);
            let id = self.own_job_id(identifier, &path)?.map(str::to_owned);
            resolved.push((identifier.clone(), id));
        }
        let (items, errors, deleting) = self.store().batch_delete(&resolved, store::now());
        for id in deleting {
            let service = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(service.config.transition_duration).await;
                service.store().remove_deleted(&id);
                info!(job_id = %id, "evaluation job deleted");
            });
        }
        Ok(json!({ "errors": errors, "evaluationJobs": items }))
    }

    /// Waits `--job-seconds`, then evaluates and finishes the job (unless it was stopped or
    /// deleted meanwhile).
    async fn run_job(self: Arc<Self>, id: String) {
        tokio::time::sleep(self.config.job_duration).await;
        let request = {
            let store = self.store();
            match store.get(&id) {
                Some(job) if job.status == Status::InProgress => job.request.clone(),
                _ => return,
            }
        };
        let outcome = self.execute(&id, &request).await;
        if let Err(messages) = &outcome {
            warn!(job_id = %id, ?messages, "evaluation job failed");
        }
        let status = self.store().finish(&id, outcome, store::now());
        info!(job_id = %id, status = ?status.map(Status::as_str), "evaluation job finished");
    }

    async fn execute(&self, id: &str, request: &CreateJobRequest) -> Result<(), Vec<String>> {
        let Some(automated) = request.automated() else {
            return Err(vec!["Only automated evaluation jobs can run.".into()]);
        };
        let source = request.inference_source_identifier().unwrap_or_default();
        let mut loaded = Vec::new();
        let mut failures = Vec::new();
        for (i, config) in automated.dataset_metric_configs.iter().enumerate() {
            match load_dataset(&self.s3, config, i, source, &request.role_arn).await {
                Ok(records) => loaded.push((config.clone(), records)),
                Err(e) => failures.push(e.at_run_time()),
            }
        }
        if !failures.is_empty() {
            return Err(failures);
        }
        let (bucket, prefix) = output_prefix(request);
        let job_prefix = format!("{prefix}{}/{id}", request.job_name);
        if let Some(custom) = &automated.custom_metric_config {
            for metric in &custom.metrics {
                let key = format!("{job_prefix}/custom_metrics/{}.json", metric.name);
                let body = json!({ "customMetricDefinition": metric.to_json() }).to_string();
                if let Err(e) = self
                    .s3
                    .put(&bucket, &key, body.into_bytes(), "application/json")
                    .await
                {
                    return Err(vec![output_error(request, &e).message().to_owned()]);
                }
            }
        }
        for (config, records) in loaded {
            let automated = automated.clone();
            let cfg = config.clone();
            let body =
                tokio::task::spawn_blocking(move || output_lines(&automated, &cfg, &records))
                    .await
                    .map_err(|e| vec![format!("Internal error while judging the dataset: {e}")])?;
            let key = format!(
                "{job_prefix}/models/{source}/taskTypes/{}/datasets/{}/{}_output.jsonl",
                config.task_type,
                config.dataset_name,
                self.ids.uuid()
            );
            if let Err(e) = self
                .s3
                .put(&bucket, &key, body.into_bytes(), "application/jsonl")
                .await
            {
                return Err(vec![output_error(request, &e).message().to_owned()]);
            }
            info!(job_id = %id, key = %key, "results written");
        }
        Ok(())
    }
}

/// The output bucket and the key prefix (empty or ending with `/`).
fn output_prefix(request: &CreateJobRequest) -> (String, String) {
    let (bucket, key) = split_s3_uri(&request.output_s3_uri).unwrap_or_default();
    let key = key.trim_end_matches('/');
    let prefix = if key.is_empty() {
        String::new()
    } else {
        format!("{key}/")
    };
    (bucket.to_owned(), prefix)
}

fn output_error(request: &CreateJobRequest, e: &S3Error) -> ApiError {
    ApiError::Validation(format!(
        "The output location {} is not writable by the service role {}: {}. Check that the bucket exists and the role may s3:PutObject there.",
        request.output_s3_uri, request.role_arn, e.message
    ))
}

/// Why a dataset could not be used.
#[derive(Debug)]
enum DatasetProblem {
    /// The dataset cannot be used (missing, unreadable or invalid).
    Invalid(String),
    /// S3 itself could not be reached.
    Unreachable(String),
}

impl DatasetProblem {
    fn into_api_error(self) -> ApiError {
        match self {
            DatasetProblem::Invalid(m) => ApiError::Validation(m),
            DatasetProblem::Unreachable(m) => ApiError::InternalServer(m),
        }
    }

    fn at_run_time(self) -> String {
        match self {
            DatasetProblem::Invalid(m) | DatasetProblem::Unreachable(m) => m,
        }
    }
}

async fn load_dataset(
    s3: &S3,
    config: &DatasetMetricConfig,
    index: usize,
    source: &str,
    role_arn: &str,
) -> Result<Vec<Record>, DatasetProblem> {
    let n = index + 1;
    let uri = config.s3_uri.as_deref().unwrap_or_default();
    let (bucket, key) = split_s3_uri(uri).unwrap_or_default();
    if key.is_empty() || key.ends_with('/') {
        return Err(DatasetProblem::Invalid(format!(
            "The dataset location {uri} (datasetMetricConfigs.{n}, dataset '{}') must be the S3 URI of a JSON Lines object, not a bucket or a prefix.",
            config.dataset_name
        )));
    }
    let bytes = match s3.get(bucket, key).await {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => {
            return Err(DatasetProblem::Invalid(format!(
                "The dataset {uri} (datasetMetricConfigs.{n}, dataset '{}') does not exist ({}). Upload the dataset before creating the job, and check the bucket and key.",
                config.dataset_name, e.message
            )));
        }
        Err(e) if e.code.is_some() => {
            return Err(DatasetProblem::Invalid(format!(
                "The dataset {uri} (datasetMetricConfigs.{n}, dataset '{}') could not be read with the service role {role_arn}: {}.",
                config.dataset_name, e.message
            )));
        }
        Err(e) => {
            return Err(DatasetProblem::Unreachable(format!(
                "bedrock-local could not reach S3 to read the dataset {uri}: {}",
                e.message
            )));
        }
    };
    dataset::parse(&bytes, source).map_err(|e| {
        DatasetProblem::Invalid(format!(
            "The dataset {uri} (datasetMetricConfigs.{n}, dataset '{}') is not a valid model evaluation dataset: {e}.",
            config.dataset_name
        ))
    })
}

/// The `_output.jsonl` body for one dataset: one line per record, in dataset order.
pub fn output_lines(
    automated: &AutomatedConfig,
    config: &DatasetMetricConfig,
    records: &[Record],
) -> String {
    let mut out = String::new();
    for record in records {
        let input = Input {
            prompt: &record.prompt,
            response: &record.response,
            reference: record.reference_response.as_deref(),
        };
        let scores: Vec<Value> = config
            .metric_names
            .iter()
            .map(|name| {
                let custom = automated.custom_metric(name);
                let evaluator = match custom {
                    Some(_) => automated
                        .custom_metric_config
                        .as_ref()
                        .map(|c| c.evaluator_model.as_str()),
                    None => automated.evaluator_model.as_deref(),
                }
                .unwrap_or_default();
                let verdict = judge::judge(name, custom, input);
                json!({
                    "metricName": name,
                    "result": verdict.result.to_json(),
                    "evaluatorDetails": [{
                        "modelIdentifier": evaluator,
                        "explanation": verdict.explanation,
                    }],
                })
            })
            .collect();
        let result = json!({ "scores": scores });
        // `inputRecord` is the dataset line exactly as given (key order included), so it is
        // spliced in as raw JSON; it parsed as a JSON object when the dataset was validated.
        out.push_str("{\"automatedEvaluationResult\":");
        out.push_str(&result.to_string());
        out.push_str(",\"inputRecord\":");
        out.push_str(&record.raw);
        out.push_str(",\"modelResponses\":");
        out.push_str(&record.model_responses.to_string());
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CustomMetric, CustomMetricConfig, RatingScaleItem, RatingValue};

    #[test]
    fn output_lines_follow_the_documented_schema() {
        let automated = AutomatedConfig {
            dataset_metric_configs: vec![],
            evaluator_model: Some("amazon.nova-pro-v1:0".into()),
            custom_metric_config: Some(CustomMetricConfig {
                metrics: vec![CustomMetric {
                    name: "brand_voice".into(),
                    instructions: "i".into(),
                    rating_scale: Some(vec![RatingScaleItem {
                        definition: "Good".into(),
                        value: RatingValue::Float(1.0),
                    }]),
                }],
                evaluator_model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
            }),
        };
        let config = DatasetMetricConfig {
            task_type: "General".into(),
            dataset_name: "d".into(),
            s3_uri: Some("s3://b/k".into()),
            metric_names: vec!["Builtin.Correctness".into(), "brand_voice".into()],
        };
        let raw = r#"{"prompt":"Capital of France?","referenceResponse":"Paris","modelResponses":[{"response":"Paris [[judge:Correctness=0.5]]","modelIdentifier":"app"}]}"#;
        let records = dataset::parse(raw.as_bytes(), "app").unwrap();
        let body = output_lines(&automated, &config, &records);
        assert!(body.ends_with('\n'));
        let line: Value = serde_json::from_str(body.trim_end()).unwrap();
        assert_eq!(
            line["automatedEvaluationResult"]["scores"],
            json!([
                {"metricName": "Builtin.Correctness", "result": 0.5, "evaluatorDetails": [{
                    "modelIdentifier": "amazon.nova-pro-v1:0",
                    "explanation": line["automatedEvaluationResult"]["scores"][0]["evaluatorDetails"][0]["explanation"]
                }]},
                {"metricName": "brand_voice", "result": 1.0, "evaluatorDetails": [{
                    "modelIdentifier": "anthropic.claude-3-haiku-20240307-v1:0",
                    "explanation": line["automatedEvaluationResult"]["scores"][1]["evaluatorDetails"][0]["explanation"]
                }]}
            ])
        );
        assert_eq!(
            line["inputRecord"],
            serde_json::from_str::<Value>(raw).unwrap()
        );
        assert!(
            body.contains(&format!(",\"inputRecord\":{raw},")),
            "key order kept"
        );
        assert_eq!(line["modelResponses"][0]["modelIdentifier"], "app");
    }
}
