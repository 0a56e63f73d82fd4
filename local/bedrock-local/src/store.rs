//! The evaluation jobs of the emulated account and Region, and their state machine.
//!
//! ```text
//! InProgress ──(job time passes, outputs written)──▶ Completed
//!     │      └─(dataset unreadable or invalid)───▶ Failed
//!     └─ StopEvaluationJob ─▶ Stopping ─(transition)─▶ Stopped
//! Completed | Failed | Stopped ─ BatchDeleteEvaluationJob ─▶ Deleting ─(transition)─▶ gone
//! ```
//!
//! Plain data and functions (no I/O, time passed in) so the rules are unit-tested directly.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::model::CreateJobRequest;
use crate::validate::ListQuery;

/// `EvaluationJobStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    Failed,
    Stopping,
    Stopped,
    Deleting,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "InProgress",
            Status::Completed => "Completed",
            Status::Failed => "Failed",
            Status::Stopping => "Stopping",
            Status::Stopped => "Stopped",
            Status::Deleting => "Deleting",
        }
    }

    /// Completed, Failed or Stopped: the statuses BatchDeleteEvaluationJob accepts.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Stopped)
    }

    /// InProgress or Stopping: the job still counts against the concurrency quota.
    pub fn is_running(self) -> bool {
        matches!(self, Status::InProgress | Status::Stopping)
    }
}

/// One evaluation job.
#[derive(Debug, Clone)]
pub struct Job {
    /// The 12-character id, the ARN's last segment.
    pub id: String,
    pub arn: String,
    /// Creation order, for sorting and pagination.
    pub seq: u64,
    pub request: CreateJobRequest,
    pub status: Status,
    pub creation_time: DateTime<Utc>,
    pub last_modified_time: DateTime<Utc>,
    pub failure_messages: Vec<String>,
}

/// ListEvaluationJobs' page size when `maxResults` is not given (bedrock-local's choice; the
/// service does not document its default).
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Formats a timestamp as the service does in JSON bodies (RFC 3339, milliseconds, `Z`), which
/// the Rust SDK reads with `DateTimeWithOffset` and botocore with its ISO 8601 parser.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Now, at the millisecond precision the API reports, so that a `creationTime` a client read
/// back compares equal to the stored one in ListEvaluationJobs' filters.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// All jobs plus the idempotency-token index.
#[derive(Debug, Default)]
pub struct Store {
    jobs: HashMap<String, Job>,
    by_token: HashMap<String, String>,
    next_seq: u64,
}

/// The outcome of [`Store::create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new job with this ARN.
    New(String),
    /// The token was seen before: the earlier job's ARN, nothing created.
    Existing(String),
}

impl Store {
    /// The job that `token` created earlier, if any.
    pub fn arn_for_token(&self, token: &str) -> Option<String> {
        let id = self.by_token.get(token)?;
        self.jobs.get(id).map(|j| j.arn.clone())
    }

    /// True when `id` is taken.
    pub fn contains(&self, id: &str) -> bool {
        self.jobs.contains_key(id)
    }

    /// The insertion rules, without inserting: idempotency first (a known token returns its
    /// job, whatever else the request says, like the service: "Amazon Bedrock ignores the
    /// request, but does not return an error"), then the unique name, then the concurrency
    /// quota. `Ok(Some(arn))` is the earlier job of the same token.
    pub fn admit(
        &self,
        request: &CreateJobRequest,
        max_concurrent_jobs: usize,
        region: &str,
    ) -> Result<Option<String>, ApiError> {
        if let Some(token) = &request.client_request_token
            && let Some(existing) = self.arn_for_token(token)
        {
            return Ok(Some(existing));
        }
        if let Some(other) = self
            .jobs
            .values()
            .find(|j| j.request.job_name == request.job_name)
        {
            return Err(ApiError::Conflict(format!(
                "An evaluation job named '{}' already exists in this account and Region ({}). Evaluation job names must be unique: choose another jobName, or reuse the same clientRequestToken to retry the request that created it.",
                request.job_name, other.arn
            )));
        }
        let running = self.jobs.values().filter(|j| j.status.is_running()).count();
        if running >= max_concurrent_jobs {
            return Err(ApiError::ServiceQuotaExceeded(format!(
                "You have reached the quota of {max_concurrent_jobs} concurrent automated model evaluation jobs in {region} ({running} jobs are InProgress or Stopping). Wait for a job to finish, stop one, or request a quota increase (Service Quotas code L-557C8C47)."
            )));
        }
        Ok(None)
    }

    /// Creates a job atomically under the rules of [`Store::admit`].
    pub fn create(
        &mut self,
        id: String,
        arn: String,
        request: CreateJobRequest,
        now: DateTime<Utc>,
        max_concurrent_jobs: usize,
        region: &str,
    ) -> Result<Created, ApiError> {
        if let Some(existing) = self.admit(&request, max_concurrent_jobs, region)? {
            return Ok(Created::Existing(existing));
        }
        self.next_seq += 1;
        if let Some(token) = &request.client_request_token {
            self.by_token.insert(token.clone(), id.clone());
        }
        let job = Job {
            id: id.clone(),
            arn: arn.clone(),
            seq: self.next_seq,
            request,
            status: Status::InProgress,
            creation_time: now,
            last_modified_time: now,
            failure_messages: Vec::new(),
        };
        self.jobs.insert(id, job);
        Ok(Created::New(arn))
    }

    /// The job `id`.
    pub fn get(&self, id: &str) -> Option<&Job> {
        self.jobs.get(id)
    }

    /// Finishes a job the runner worked on: only a job still InProgress changes.
    pub fn finish(
        &mut self,
        id: &str,
        outcome: Result<(), Vec<String>>,
        now: DateTime<Utc>,
    ) -> Option<Status> {
        let job = self.jobs.get_mut(id)?;
        if job.status != Status::InProgress {
            return Some(job.status);
        }
        match outcome {
            Ok(()) => job.status = Status::Completed,
            Err(messages) => {
                job.status = Status::Failed;
                job.failure_messages = messages.into_iter().take(20).collect();
            }
        }
        job.last_modified_time = now;
        Some(job.status)
    }

    /// StopEvaluationJob: InProgress becomes Stopping; Stopping stays (idempotent); anything
    /// else cannot be stopped.
    pub fn stop(&mut self, id: &str, arn: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
        let job = self.jobs.get_mut(id).ok_or_else(|| not_found(arn))?;
        match job.status {
            Status::InProgress => {
                job.status = Status::Stopping;
                job.last_modified_time = now;
                Ok(())
            }
            Status::Stopping => Ok(()),
            other => Err(ApiError::Conflict(format!(
                "The evaluation job {arn} is {} and cannot be stopped; only InProgress jobs can be stopped.",
                other.as_str()
            ))),
        }
    }

    /// Moves a job from `from` to `to` (used for Stopping → Stopped).
    pub fn transition(&mut self, id: &str, from: Status, to: Status, now: DateTime<Utc>) {
        if let Some(job) = self.jobs.get_mut(id)
            && job.status == from
        {
            job.status = to;
            job.last_modified_time = now;
        }
    }

    /// Removes a job that is Deleting.
    pub fn remove_deleted(&mut self, id: &str) {
        if self
            .jobs
            .get(id)
            .is_some_and(|j| j.status == Status::Deleting)
            && let Some(job) = self.jobs.remove(id)
            && let Some(token) = &job.request.client_request_token
        {
            self.by_token.remove(token);
        }
    }

    /// BatchDeleteEvaluationJob: terminal jobs become Deleting; the others are reported in
    /// `errors[]` with an HTTP status code (bedrock-local's choice of codes: `404` unknown job,
    /// `409` job not in Completed, Failed or Stopped; the service documents only that `code` is
    /// an HTTP status code).
    pub fn batch_delete(
        &mut self,
        identifiers: &[(String, Option<String>)],
        now: DateTime<Utc>,
    ) -> (Vec<Value>, Vec<Value>, Vec<String>) {
        let mut items = Vec::new();
        let mut errors = Vec::new();
        let mut deleting = Vec::new();
        for (arn, id) in identifiers {
            let Some(job) = id.as_deref().and_then(|id| self.jobs.get_mut(id)) else {
                errors.push(json!({
                    "jobIdentifier": arn,
                    "code": "404",
                    "message": format!("The evaluation job {arn} was not found."),
                }));
                continue;
            };
            if job.status.is_terminal() {
                job.status = Status::Deleting;
                job.last_modified_time = now;
                deleting.push(job.id.clone());
                items.push(json!({ "jobIdentifier": arn, "jobStatus": "Deleting" }));
            } else if job.status == Status::Deleting {
                items.push(json!({ "jobIdentifier": arn, "jobStatus": "Deleting" }));
            } else {
                errors.push(json!({
                    "jobIdentifier": arn,
                    "code": "409",
                    "message": format!(
                        "The evaluation job {arn} is {}; only Completed, Failed or Stopped jobs can be deleted. Stop it first.",
                        job.status.as_str()
                    ),
                }));
            }
        }
        (items, errors, deleting)
    }

    /// ListEvaluationJobs: filters, sorts by creation time and pages. The `nextToken` is the
    /// position after the last job returned (stable when jobs are created or deleted between
    /// pages).
    pub fn list(&self, q: &ListQuery) -> Result<(Vec<Value>, Option<String>), ApiError> {
        let after_seq = match &q.next_token {
            Some(token) => Some(parse_token(token)?),
            None => None,
        };
        let mut jobs: Vec<&Job> = self
            .jobs
            .values()
            .filter(|j| {
                q.status_equals
                    .as_deref()
                    .is_none_or(|s| j.status.as_str() == s)
                    && q.application_type_equals
                        .as_deref()
                        .is_none_or(|a| j.request.application_type() == a)
                    && q.name_contains
                        .as_deref()
                        .is_none_or(|n| j.request.job_name.contains(n))
                    && q.creation_time_after.is_none_or(|t| j.creation_time > t)
                    && q.creation_time_before.is_none_or(|t| j.creation_time < t)
            })
            .collect();
        jobs.sort_by_key(|j| j.seq);
        if !q.ascending {
            jobs.reverse();
        }
        let start = match after_seq {
            None => 0,
            Some(seq) => jobs
                .iter()
                .position(|j| {
                    if q.ascending {
                        j.seq > seq
                    } else {
                        j.seq < seq
                    }
                })
                .unwrap_or(jobs.len()),
        };
        let size = q.max_results.unwrap_or(DEFAULT_PAGE_SIZE);
        let page: Vec<&Job> = jobs.iter().skip(start).take(size).copied().collect();
        let next = if start + page.len() < jobs.len() {
            page.last().map(|j| format!("bl1-{}", j.seq))
        } else {
            None
        };
        Ok((page.iter().map(|j| summary(j)).collect(), next))
    }
}

fn parse_token(token: &str) -> Result<u64, ApiError> {
    token
        .strip_prefix("bl1-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            ApiError::Validation(
                "The nextToken is not valid: pass the nextToken of the previous ListEvaluationJobs response unchanged.".into(),
            )
        })
}

/// ResourceNotFoundException for `arn`.
pub fn not_found(arn: &str) -> ApiError {
    ApiError::ResourceNotFound(format!(
        "The evaluation job {arn} was not found. Check the ARN, the Region and the account."
    ))
}

/// An `EvaluationSummary`.
pub fn summary(job: &Job) -> Value {
    let req = &job.request;
    let mut s = json!({
        "jobArn": job.arn,
        "jobName": req.job_name,
        "status": job.status.as_str(),
        "creationTime": format_time(&job.creation_time),
        "jobType": "Automated",
        "applicationType": req.application_type(),
    });
    if let Some(obj) = s.as_object_mut() {
        if let Some(a) = req.automated() {
            let task_types: Vec<&str> = a
                .dataset_metric_configs
                .iter()
                .map(|c| c.task_type.as_str())
                .collect();
            obj.insert("evaluationTaskTypes".into(), json!(task_types));
            if let Some(m) = &a.evaluator_model {
                obj.insert("evaluatorModelIdentifiers".into(), json!([m]));
            }
            if let Some(c) = &a.custom_metric_config {
                obj.insert(
                    "customMetricsEvaluatorModelIdentifiers".into(),
                    json!([c.evaluator_model]),
                );
            }
        }
        if let Some(id) = req.inference_source_identifier() {
            obj.insert(
                "inferenceConfigSummary".into(),
                json!({ "modelConfigSummary": { "precomputedInferenceSourceIdentifiers": [id] } }),
            );
        }
    }
    s
}

/// The GetEvaluationJob response.
pub fn describe(job: &Job) -> Value {
    let req = &job.request;
    let mut d = json!({
        "jobName": req.job_name,
        "status": job.status.as_str(),
        "jobArn": job.arn,
        "roleArn": req.role_arn,
        "jobType": "Automated",
        "applicationType": req.application_type(),
        "evaluationConfig": req.evaluation_config_json(),
        "inferenceConfig": req.inference_config_json(),
        "outputDataConfig": { "s3Uri": req.output_s3_uri },
        "creationTime": format_time(&job.creation_time),
        "lastModifiedTime": format_time(&job.last_modified_time),
    });
    if let Some(obj) = d.as_object_mut() {
        if let Some(desc) = &req.job_description {
            obj.insert("jobDescription".into(), json!(desc));
        }
        if let Some(key) = &req.customer_encryption_key_id {
            obj.insert("customerEncryptionKeyId".into(), json!(key));
        }
        if !job.failure_messages.is_empty() {
            obj.insert("failureMessages".into(), json!(job.failure_messages));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AutomatedConfig, DatasetMetricConfig, EvaluationConfig, InferenceConfig, ModelConfig,
    };

    fn request(name: &str, token: Option<&str>) -> CreateJobRequest {
        CreateJobRequest {
            job_name: name.into(),
            job_description: None,
            client_request_token: token.map(str::to_owned),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            customer_encryption_key_id: None,
            job_tags: vec![],
            application_type: None,
            evaluation_config: EvaluationConfig::Automated(AutomatedConfig {
                dataset_metric_configs: vec![DatasetMetricConfig {
                    task_type: "General".into(),
                    dataset_name: "d".into(),
                    s3_uri: Some("s3://b/k.jsonl".into()),
                    metric_names: vec!["Builtin.Correctness".into()],
                }],
                evaluator_model: Some("amazon.nova-pro-v1:0".into()),
                custom_metric_config: None,
            }),
            inference_config: InferenceConfig::Models(vec![ModelConfig::Precomputed("app".into())]),
            output_s3_uri: "s3://b/out/".into(),
        }
    }

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn create(
        store: &mut Store,
        n: u32,
        name: &str,
        token: Option<&str>,
        quota: usize,
    ) -> Result<Created, ApiError> {
        let id = format!("{n:012}");
        store.create(
            id.clone(),
            format!("arn:{id}"),
            request(name, token),
            t(i64::from(n)),
            quota,
            "us-east-1",
        )
    }

    #[test]
    fn idempotency_conflict_and_quota() {
        let mut s = Store::default();
        assert_eq!(
            create(&mut s, 1, "a", Some("t1"), 2),
            Ok(Created::New("arn:000000000001".into()))
        );
        // Same token, different everything else: the first job, nothing new.
        assert_eq!(
            create(&mut s, 2, "other", Some("t1"), 2),
            Ok(Created::Existing("arn:000000000001".into()))
        );
        assert!(!s.contains("000000000002"));
        // Same name, another token.
        let err = create(&mut s, 3, "a", Some("t2"), 2).unwrap_err();
        assert!(
            matches!(err, ApiError::Conflict(ref m) if m.contains("'a' already exists")),
            "{err:?}"
        );
        assert_eq!(
            create(&mut s, 4, "b", None, 2),
            Ok(Created::New("arn:000000000004".into()))
        );
        let err = create(&mut s, 5, "c", Some("t5"), 2).unwrap_err();
        assert!(
            matches!(err, ApiError::ServiceQuotaExceeded(ref m) if m.contains("quota of 2")),
            "{err:?}"
        );
        // A finished job frees a slot; an idempotent retry is answered even at the quota.
        s.finish("000000000001", Ok(()), t(10));
        assert_eq!(
            create(&mut s, 6, "c", Some("t6"), 2),
            Ok(Created::New("arn:000000000006".into()))
        );
        assert_eq!(
            create(&mut s, 7, "zzz", Some("t6"), 2),
            Ok(Created::Existing("arn:000000000006".into()))
        );
    }

    #[test]
    fn stop_and_delete_follow_the_state_machine() {
        let mut s = Store::default();
        create(&mut s, 1, "a", None, 10).unwrap();
        create(&mut s, 2, "b", None, 10).unwrap();
        s.stop("000000000001", "arn:1", t(5)).unwrap();
        assert_eq!(s.get("000000000001").unwrap().status, Status::Stopping);
        s.stop("000000000001", "arn:1", t(5)).unwrap(); // idempotent
        // The runner finishing a stopped job changes nothing.
        assert_eq!(
            s.finish("000000000001", Ok(()), t(6)),
            Some(Status::Stopping)
        );
        s.transition("000000000001", Status::Stopping, Status::Stopped, t(7));
        let err = s.stop("000000000001", "arn:1", t(8)).unwrap_err();
        assert!(matches!(err, ApiError::Conflict(ref m) if m.contains("is Stopped")));
        assert!(matches!(
            s.stop("nope", "arn:x", t(8)),
            Err(ApiError::ResourceNotFound(_))
        ));

        let ids = vec![
            ("arn:1".to_string(), Some("000000000001".to_string())),
            ("arn:2".to_string(), Some("000000000002".to_string())),
            ("arn:9".to_string(), Some("000000000009".to_string())),
        ];
        let (items, errors, deleting) = s.batch_delete(&ids, t(9));
        assert_eq!(
            items,
            vec![json!({"jobIdentifier": "arn:1", "jobStatus": "Deleting"})]
        );
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0]["code"], "409");
        assert_eq!(errors[1]["code"], "404");
        assert_eq!(deleting, vec!["000000000001".to_string()]);
        s.remove_deleted("000000000001");
        assert!(s.get("000000000001").is_none());
    }

    #[test]
    fn failures_keep_at_most_twenty_messages() {
        let mut s = Store::default();
        create(&mut s, 1, "a", None, 10).unwrap();
        let messages: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
        assert_eq!(
            s.finish("000000000001", Err(messages), t(1)),
            Some(Status::Failed)
        );
        assert_eq!(s.get("000000000001").unwrap().failure_messages.len(), 20);
        assert_eq!(
            describe(s.get("000000000001").unwrap())["failureMessages"][0],
            "m0"
        );
    }

    #[test]
    fn list_filters_sorts_and_pages() {
        let mut s = Store::default();
        for n in 1..=5 {
            create(&mut s, n, &format!("job-{n}"), None, 10).unwrap();
        }
        s.finish("000000000002", Ok(()), t(20));
        let names = |page: &[Value]| -> Vec<String> {
            page.iter()
                .map(|j| j["jobName"].as_str().unwrap().to_string())
                .collect()
        };
        let (page, next) = s
            .list(&ListQuery {
                max_results: Some(2),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(names(&page), ["job-5", "job-4"]);
        // A job deleted between pages does not shift the next page.
        s.jobs.remove("000000000005");
        let (page, next) = s
            .list(&ListQuery {
                max_results: Some(2),
                next_token: next,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(names(&page), ["job-3", "job-2"]);
        let (page, next) = s
            .list(&ListQuery {
                max_results: Some(2),
                next_token: next,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(names(&page), ["job-1"]);
        assert_eq!(next, None);

        let (page, _) = s
            .list(&ListQuery {
                ascending: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(names(&page), ["job-1", "job-2", "job-3", "job-4"]);
        let (page, _) = s
            .list(&ListQuery {
                status_equals: Some("Completed".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(names(&page), ["job-2"]);
        let (page, _) = s
            .list(&ListQuery {
                name_contains: Some("b-3".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(names(&page), ["job-3"]);
        let (page, _) = s
            .list(&ListQuery {
                creation_time_after: Some(t(1)),
                creation_time_before: Some(t(4)),
                ascending: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(names(&page), ["job-2", "job-3"]);
        assert!(matches!(
            s.list(&ListQuery {
                next_token: Some("garbage".into()),
                ..Default::default()
            }),
            Err(ApiError::Validation(_))
        ));
        assert_eq!(page[0]["evaluationTaskTypes"], json!(["General"]));
        assert_eq!(page[0]["creationTime"], "2023-11-14T22:13:22.000Z");
    }
}
