//! submit-evaluation's logic: from a dataset landing in S3 to Bedrock judge jobs.
//!
//! For each `Object Created` on `datasets/<application>/<release>/<name>.jsonl`
//! ([`Submitter::submit_object`]):
//!
//! 1. decode and parse the key; load and validate `policies/<application>.yaml`;
//! 2. pass 1: stream the object (pinned to the event's ETag or version) through
//!    [`dataset::validate_with`]; plan the shards;
//! 3. all or nothing: any problem in the key, the policy or any line → a rejection report
//!    under `rejections/…`, one `Dataset Rejected` event, no job. Every job request is also
//!    checked against Bedrock's own constraints first ([`preflight`]);
//! 4. pass 2: re-read the same object version and write the shards (Bedrock keys only) and
//!    the metadata sidecars;
//! 5. one `CreateEvaluationJob` per shard, with a job name and idempotency token derived
//!    from bucket, key, version/ETag and shard number; each job is recorded in the ledger
//!    with a conditional write, and only the delivery that created the record emits
//!    `Evaluation Submitted` — so re-deliveries, even concurrent ones, change nothing.
//!
//! Quota: `ServiceQuotaExceededException` defers the shard (a ledger record carrying the
//! whole request; `Evaluation Deferred`); so do the upload's later shards, and every shard
//! of a new upload while older ones are waiting (first in, first out, across
//! applications). The scheduled invocation ([`Submitter::drain_deferred`]) submits deferred
//! shards oldest first and stops at the first quota refusal.
//!
//! A `ValidationException` (or a missing resource) from Bedrock rejects the upload: jobs
//! already created for it are stopped and their records removed, deferred shards are
//! dropped, and the rejection report carries Bedrock's message. Throttling, 5xx and
//! access errors fail the invocation so Lambda retries it.
//!
//! Events that cannot be published are parked in an outbox (`ledger/outbox/…`) and
//! published at the start of the next invocation, so none is lost when EventBridge fails
//! after a record was created.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex_lite::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bedrock::{BedrockError, EvaluationJobs, JUDGE_TASK_TYPE, JobSpec};
use crate::dataset::{self, DatasetProblem, Limits, Sharder, Validation};
use crate::events::{
    DatasetRef, DatasetRejected, EvaluationDeferred, EvaluationSubmitted, Event, EventPublisher,
    LineProblem, PublishError,
};
use crate::layout::{self, DatasetKey, KeyError, fingerprint, s3_uri, safe_segment};
use crate::ledger::{self, DeferredShard, JobRecord, Ledger, LedgerError, RejectionRecord, SCHEMA};
use crate::policy::evaluation::{
    EVALGATE_TAG_PREFIX, is_valid_evaluator_model, is_valid_kms_key_id, is_valid_metric_name,
    is_valid_tag_text,
};
use crate::policy::{Policy, policy_hash};
use crate::store::{ObjectStore, PutOutcome, StoreError};

/// Prefixes of objects evalgate writes itself: events for them are ignored, never rejected
/// (a notification configured on the whole bucket must not loop on our own reports).
const OWN_PREFIXES: &[&str] = &[
    "shards/",
    "metadata/",
    "evaluations/",
    "rejections/",
    "verdicts/",
    "ledger/",
    layout::POLICIES_PREFIX,
];

/// Where unpublished events wait (see the module docs).
pub const OUTBOX_PREFIX: &str = "ledger/outbox/";

/// Problems of a rejection shown in its event (the report lists up to 100).
const EVENT_PROBLEMS: usize = 10;

/// What the function needs besides its clients.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The evaluation bucket: events for other buckets are ignored.
    pub bucket: String,
    /// The service role Bedrock assumes for the jobs.
    pub role_arn: String,
}

/// How an object key arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKey {
    /// S3 event notifications: URL-encoded, `+` for space.
    Notification(String),
    /// EventBridge `Object Created`: used as given when such an object exists, else
    /// percent-decoded (sources disagree on whether these keys are encoded).
    EventBridge(String),
    /// Already decoded (tests, manual invocations).
    Decoded(String),
}

impl EventKey {
    fn raw(&self) -> &str {
        match self {
            EventKey::Notification(k) | EventKey::EventBridge(k) | EventKey::Decoded(k) => k,
        }
    }
}

/// An object the trigger reported as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    pub key: EventKey,
    /// As in the event (no quotes); pins the object version read.
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// S3's per-write sequencer: tells a re-delivery from a new upload of the same bytes.
    pub sequencer: Option<String>,
}

/// One job of an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRef {
    pub shard: u32,
    pub job_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_arn: Option<String>,
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum ObjectOutcome {
    /// Every shard is submitted or deferred (some possibly by an earlier delivery).
    #[serde(rename_all = "camelCase")]
    Submitted {
        key: String,
        application: String,
        release: String,
        dataset_id: String,
        shards: u32,
        /// Jobs this delivery created.
        submitted: Vec<JobRef>,
        /// Shards this delivery deferred.
        deferred: Vec<JobRef>,
        /// Shards an earlier delivery had already submitted or deferred.
        already_handled: u32,
    },
    /// Nothing was submitted; the report says why.
    #[serde(rename_all = "camelCase")]
    Rejected {
        key: String,
        stage: Stage,
        error_count: u64,
        report_uri: String,
    },
    /// Nothing to do (another bucket, evalgate's own object, a replaced or deleted object…).
    #[serde(rename_all = "camelCase")]
    Skipped { key: String, reason: String },
}

/// Where a rejection's problems were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Key,
    Policy,
    Dataset,
    Bedrock,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Key => "key",
            Stage::Policy => "policy",
            Stage::Dataset => "dataset",
            Stage::Bedrock => "bedrock",
        }
    }
}

/// Which file a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemSource {
    Key,
    Policy,
    Dataset,
    Bedrock,
}

/// One problem in a rejection report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportProblem {
    pub source: ProblemSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    pub reason: String,
    pub fix: String,
}

/// The rejection report written to `rejections/<app>/<release>/<name>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectionReport {
    pub schema: u32,
    pub dataset: DatasetRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub stage: Stage,
    /// One sentence: what is wrong.
    pub summary: String,
    /// What to do about it.
    pub what_to_do: String,
    /// Every problem found (listed or not).
    pub error_count: u64,
    /// The first problems, in order (policy, then dataset lines).
    pub errors: Vec<ReportProblem>,
    /// Problems found but not listed.
    pub more_errors: u64,
    /// Jobs created for this upload before Bedrock refused a later shard, now stopped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped_jobs: Vec<String>,
    pub rejected_at: DateTime<Utc>,
}

/// Summary of a scheduled drain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainOutcome {
    pub submitted: Vec<JobRef>,
    /// Deferred shards still waiting.
    pub waiting: u32,
    /// Uploads rejected because Bedrock refused one of their deferred shards.
    pub rejected: Vec<String>,
    /// Parked events published.
    pub events_flushed: u32,
}

/// A failure that should fail the invocation (Lambda retries it; everything is idempotent).
#[derive(Debug, Error)]
pub enum SubmitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Bedrock(#[from] BedrockError),
    #[error("{0}; the event is parked in the outbox and will be published by the next invocation")]
    Publish(#[from] PublishError),
    #[error("reading s3://{bucket}/{key} failed: {source}")]
    Read {
        bucket: String,
        key: String,
        source: std::io::Error,
    },
    #[error("s3://{bucket}/{key} {message}; retrying")]
    Changed {
        bucket: String,
        key: String,
        message: String,
    },
}

/// The upload being handled.
struct Upload {
    key: DatasetKey,
    dataset: DatasetRef,
    /// Version id, else ETag (unquoted): what identifies this upload's bytes.
    version_tag: String,
    dataset_id: String,
    upload_id: String,
}

impl Upload {
    /// The outcome of a delivery that found every one of the `shards` already handled.
    fn already_submitted(self, key: String, shards: u32) -> ObjectOutcome {
        ObjectOutcome::Submitted {
            key,
            application: self.key.application,
            release: self.key.release,
            dataset_id: self.dataset_id,
            shards,
            submitted: vec![],
            deferred: vec![],
            already_handled: shards,
        }
    }

    fn source(&self) -> [&str; 3] {
        [&self.dataset.bucket, &self.dataset.key, &self.version_tag]
    }

    fn job_name(&self, index: usize) -> String {
        layout::job_name(
            &self.key.application,
            &self.key.release,
            &self.source(),
            index,
        )
    }
}

/// Parked event: enough to publish it again.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParkedEvent {
    detail_type: String,
    detail: serde_json::Value,
}

/// submit-evaluation's logic over its three ports.
pub struct Submitter<'a, S, J, P> {
    store: &'a S,
    jobs: &'a J,
    events: &'a P,
    settings: &'a Settings,
    limits: Limits,
}

fn version_tag(etag: Option<&str>, version_id: Option<&str>) -> Option<String> {
    version_id
        .filter(|v| !v.is_empty() && *v != "null")
        .or(etag)
        .map(|v| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// Percent-decoding without `+` → space (plain URL encoding).
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl<'a, S: ObjectStore, J: EvaluationJobs, P: EventPublisher> Submitter<'a, S, J, P> {
    pub fn new(store: &'a S, jobs: &'a J, events: &'a P, settings: &'a Settings) -> Self {
        Submitter {
            store,
            jobs,
            events,
            settings,
            limits: Limits::default(),
        }
    }

    /// Other limits (tests use small shards).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    fn ledger(&self) -> Ledger<'a, S> {
        Ledger::new(self.store)
    }

    fn bucket(&self) -> &str {
        self.store.bucket()
    }

    /// Handles one created object.
    pub async fn submit_object(
        &self,
        object: &ObjectCreated,
    ) -> Result<ObjectOutcome, SubmitError> {
        let raw = object.key.raw().to_owned();
        if object.bucket != self.settings.bucket {
            tracing::warn!(bucket = %object.bucket, key = %raw, "event for another bucket ignored");
            return Ok(skipped(
                &raw,
                format!(
                    "bucket {} is not the evaluation bucket {}",
                    object.bucket, self.settings.bucket
                ),
            ));
        }
        let key = match self.resolve_key(object).await? {
            Ok(Some(key)) => key,
            Ok(None) => {
                return Ok(skipped(
                    &raw,
                    "the object no longer exists (deleted or replaced); a newer upload has its own event",
                ));
            }
            Err(error) => return self.reject_key(object, &raw, &error).await,
        };
        if key.ends_with('/') {
            return Ok(skipped(&key, "a folder marker, not a dataset"));
        }
        if !key.starts_with(layout::DATASETS_PREFIX)
            && OWN_PREFIXES.iter().any(|p| key.starts_with(p))
        {
            tracing::debug!(key = %key, "evalgate's own object ignored");
            return Ok(skipped(&key, "an object evalgate manages, not a dataset"));
        }
        let dataset_key = match DatasetKey::parse(&key) {
            Ok(k) => k,
            Err(error) => return self.reject_key(object, &key, &error).await,
        };

        // Fast path for re-deliveries: every shard already submitted or deferred.
        if let Some(tag) = version_tag(object.etag.as_deref(), object.version_id.as_deref()) {
            let upload = self.upload(
                &dataset_key,
                &key,
                object,
                object.etag.clone(),
                object.version_id.clone(),
                tag,
            );
            if let Some(handled) = self.already_handled(&upload, None).await? {
                tracing::info!(key = %key, dataset_id = %upload.dataset_id, shards = handled, "already submitted; nothing to do");
                return Ok(upload.already_submitted(key, handled));
            }
        }

        let policy_uri = s3_uri(self.bucket(), &layout::policy_key(&dataset_key.application));
        let policy = self.load_policy(&dataset_key.application).await?;

        // Pass 1: validate, pinned to the version the event names.
        let Some((info, reader)) = self
            .store
            .open_pinned(&key, object.etag.as_deref(), object.version_id.as_deref())
            .await?
        else {
            return Ok(skipped(
                &key,
                "the object was replaced or deleted after this event; the newer upload has its own event",
            ));
        };
        let validation = dataset::validate_with(reader, &self.limits)
            .await
            .map_err(|source| SubmitError::Read {
                bucket: self.bucket().to_owned(),
                key: key.clone(),
                source,
            })?;
        let Some(tag) = version_tag(info.etag.as_deref(), info.version_id.as_deref()) else {
            return Err(SubmitError::Changed {
                bucket: self.bucket().to_owned(),
                key,
                message: "has neither an ETag nor a version id".into(),
            });
        };
        let upload = self.upload(
            &dataset_key,
            &key,
            object,
            info.etag.clone(),
            info.version_id.clone(),
            tag,
        );
        tracing::info!(
            key = %key,
            dataset_id = %upload.dataset_id,
            lines = validation.lines,
            records = validation.records,
            problems = validation.problem_count,
            shards = validation.shards.len(),
            "dataset validated"
        );

        let (policy, policy_text) = match policy {
            Ok(loaded) if validation.is_valid() => loaded,
            Ok(_) => {
                let problems = dataset_report_problems(&validation);
                return self
                    .reject(
                        &upload,
                        Stage::Dataset,
                        Some(policy_uri),
                        problems,
                        validation.problem_count,
                        vec![],
                    )
                    .await;
            }
            Err(mut problems) => {
                let policy_count = problems.len() as u64;
                problems.extend(dataset_report_problems(&validation));
                return self
                    .reject(
                        &upload,
                        Stage::Policy,
                        Some(policy_uri),
                        problems,
                        policy_count + validation.problem_count,
                        vec![],
                    )
                    .await;
            }
        };

        let specs = self.job_specs(&upload, &policy, &validation);
        let preflight_problems: Vec<ReportProblem> = specs
            .iter()
            .enumerate()
            .flat_map(|(i, spec)| {
                preflight(spec).into_iter().map(move |p| ReportProblem {
                    source: ProblemSource::Bedrock,
                    line: None,
                    column: None,
                    reason: format!("shard {}: {p}", i + 1),
                    fix: "Bedrock would refuse this job; fix the names involved (see docs/datasets.md) and upload again".into(),
                })
            })
            .collect();
        if !preflight_problems.is_empty() {
            let count = preflight_problems.len() as u64;
            return self
                .reject(
                    &upload,
                    Stage::Bedrock,
                    Some(policy_uri),
                    preflight_problems,
                    count,
                    vec![],
                )
                .await;
        }
        if let Some(handled) = self.already_handled(&upload, Some(specs.len())).await? {
            return Ok(upload.already_submitted(key, handled));
        }

        // Pass 2: the shards and sidecars, from the same object version.
        self.write_shards(&upload, &info.etag, &info.version_id, &validation)
            .await?;

        self.submit_shards(&upload, &validation, specs, &policy_text)
            .await
    }

    fn upload(
        &self,
        key: &DatasetKey,
        object_key: &str,
        object: &ObjectCreated,
        etag: Option<String>,
        version_id: Option<String>,
        tag: String,
    ) -> Upload {
        let etag = etag.map(|e| e.trim_matches('"').to_owned());
        let version_id = version_id.filter(|v| v != "null");
        let upload_id = fingerprint(&[
            self.bucket(),
            object_key,
            &tag,
            object.sequencer.as_deref().unwrap_or(""),
        ])[..16]
            .to_owned();
        Upload {
            dataset_id: layout::dataset_id(&key.name, &tag),
            key: key.clone(),
            dataset: DatasetRef {
                bucket: self.bucket().to_owned(),
                key: object_key.to_owned(),
                etag,
                version_id,
            },
            version_tag: tag,
            upload_id,
        }
    }

    /// The decoded key; `Ok(None)` when no object exists under any reading of it.
    async fn resolve_key(
        &self,
        object: &ObjectCreated,
    ) -> Result<Result<Option<String>, KeyError>, SubmitError> {
        match &object.key {
            EventKey::Decoded(key) => Ok(Ok(Some(key.clone()))),
            EventKey::Notification(raw) => Ok(layout::decode_event_key(raw).map(Some)),
            EventKey::EventBridge(raw) => {
                let mut candidates = vec![raw.clone()];
                if let Some(decoded) = percent_decode(raw) {
                    candidates.push(decoded);
                }
                if let Ok(decoded) = layout::decode_event_key(raw) {
                    candidates.push(decoded);
                }
                candidates.dedup();
                if candidates.len() == 1 {
                    return Ok(Ok(Some(raw.clone())));
                }
                for candidate in candidates {
                    if self.store.head(&candidate).await?.is_some() {
                        return Ok(Ok(Some(candidate)));
                    }
                }
                Ok(Ok(None))
            }
        }
    }

    /// `Some(shard count)` when every shard of the upload has a job or deferred record.
    async fn already_handled(
        &self,
        upload: &Upload,
        shards: Option<usize>,
    ) -> Result<Option<u32>, SubmitError> {
        let ledger = self.ledger();
        let (app, rel) = (&upload.key.application, &upload.key.release);
        let count = match shards {
            Some(n) => n,
            None => {
                let first = upload.job_name(0);
                if let Some(record) = ledger.job(app, rel, &first).await? {
                    record.shard_count as usize
                } else if let Some(deferred) = self.deferred_record(app, rel, &first).await? {
                    deferred.shard_count as usize
                } else {
                    return Ok(None);
                }
            }
        };
        for index in 0..count {
            let name = upload.job_name(index);
            if ledger.job(app, rel, &name).await?.is_none()
                && self.deferred_record(app, rel, &name).await?.is_none()
            {
                return Ok(None);
            }
        }
        Ok(Some(count as u32))
    }

    async fn deferred_record(
        &self,
        app: &str,
        rel: &str,
        job_name: &str,
    ) -> Result<Option<DeferredShard>, SubmitError> {
        let key = ledger::deferred_key(app, rel, job_name);
        match self.store.get(&key).await {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The parsed policy and its text, or the problems to report.
    async fn load_policy(
        &self,
        application: &str,
    ) -> Result<Result<(Policy, String), Vec<ReportProblem>>, SubmitError> {
        let key = layout::policy_key(application);
        let uri = s3_uri(self.bucket(), &key);
        let bytes = match self.store.get(&key).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => {
                return Ok(Err(vec![ReportProblem {
                    source: ProblemSource::Policy,
                    line: None,
                    column: None,
                    reason: format!("there is no policy for application {application:?} at {uri}"),
                    fix: format!(
                        "Upload the application's policy to {uri} (docs/policy.md has a complete example), then upload the dataset again"
                    ),
                }]));
            }
            Err(e) => return Err(e.into()),
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Ok(Err(vec![ReportProblem {
                source: ProblemSource::Policy,
                line: None,
                column: None,
                reason: format!("the policy {uri} is not UTF-8 text"),
                fix: "Save the policy as UTF-8 YAML and upload it again".into(),
            }]));
        };
        match Policy::parse(&uri, &text) {
            Ok(policy) => Ok(Ok((policy, text))),
            Err(e) => Ok(Err(e
                .problems
                .iter()
                .map(|p| ReportProblem {
                    source: ProblemSource::Policy,
                    line: p.line,
                    column: p.column,
                    reason: if p.path.is_empty() {
                        p.message.clone()
                    } else {
                        format!("{}: {}", p.path, p.message)
                    },
                    fix: match p.line {
                        Some(line) => format!("Fix line {line} of policies/{application}.yaml in your repository and upload it (docs/policy.md documents every key), then upload the dataset again"),
                        None => format!("Fix policies/{application}.yaml in your repository and upload it (docs/policy.md documents every key), then upload the dataset again"),
                    },
                })
                .collect())),
        }
    }

    fn job_specs(&self, upload: &Upload, policy: &Policy, validation: &Validation) -> Vec<JobSpec> {
        let (app, rel) = (&upload.key.application, &upload.key.release);
        let count = validation.shards.len();
        let evaluation = &policy.evaluation;
        (0..count)
            .map(|index| {
                let mut tags: Vec<(String, String)> = evaluation
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                tags.push((format!("{EVALGATE_TAG_PREFIX}application"), tag_value(app)));
                tags.push((format!("{EVALGATE_TAG_PREFIX}release"), tag_value(rel)));
                tags.push((
                    format!("{EVALGATE_TAG_PREFIX}dataset"),
                    tag_value(&upload.key.name),
                ));
                tags.push((
                    format!("{EVALGATE_TAG_PREFIX}shard"),
                    format!("{}/{count}", index + 1),
                ));
                JobSpec {
                    job_name: upload.job_name(index),
                    client_request_token: layout::client_request_token(&upload.source(), index),
                    role_arn: self.settings.role_arn.clone(),
                    description: Some(truncate(
                        &format!(
                            "evalgate {app} {rel} {} shard {}/{count}",
                            upload.key.name,
                            index + 1
                        ),
                        200,
                    )),
                    tags,
                    task_type: JUDGE_TASK_TYPE.to_owned(),
                    dataset_name: bedrock_dataset_name(&upload.key.name),
                    dataset_uri: s3_uri(
                        self.bucket(),
                        &layout::shard_key(app, rel, &upload.dataset_id, index),
                    ),
                    metric_names: evaluation.metric_names(),
                    evaluator_model: evaluation.evaluator_model.clone(),
                    custom_metrics: evaluation.custom_metric_specs(),
                    inference_source_identifier: validation
                        .model_identifier
                        .clone()
                        .unwrap_or_default(),
                    output_uri: s3_uri(
                        self.bucket(),
                        &layout::output_prefix(app, rel, &upload.dataset_id),
                    ),
                    kms_key_id: evaluation.kms_key_id.clone(),
                }
            })
            .collect()
    }

    async fn write_shards(
        &self,
        upload: &Upload,
        etag: &Option<String>,
        version_id: &Option<String>,
        validation: &Validation,
    ) -> Result<(), SubmitError> {
        let (app, rel) = (&upload.key.application, &upload.key.release);
        let count = validation.shards.len();
        // A re-delivery after a crash between writing and submitting: shards are there.
        let existing = |objects: Vec<crate::store::ObjectInfo>| {
            objects.iter().filter(|o| o.key.ends_with(".jsonl")).count()
        };
        let shards = existing(
            self.store
                .list(&layout::shard_prefix(app, rel, &upload.dataset_id))
                .await?,
        );
        let sidecars = existing(
            self.store
                .list(&layout::metadata_prefix(app, rel, &upload.dataset_id))
                .await?,
        );
        if shards == count && sidecars == count {
            return Ok(());
        }
        let changed = |message: String| SubmitError::Changed {
            bucket: self.bucket().to_owned(),
            key: upload.dataset.key.clone(),
            message,
        };
        let Some((_, reader)) = self
            .store
            .open_pinned(&upload.dataset.key, etag.as_deref(), version_id.as_deref())
            .await?
        else {
            return Err(changed(
                "was replaced between validation and sharding".into(),
            ));
        };
        let mut sharder = Sharder::new(reader, &self.limits, validation.shards.clone());
        loop {
            let shard = match sharder.next_shard().await {
                Ok(Some(shard)) => shard,
                Ok(None) => break,
                Err(dataset::ShardError::Io(source)) => {
                    return Err(SubmitError::Read {
                        bucket: self.bucket().to_owned(),
                        key: upload.dataset.key.clone(),
                        source,
                    });
                }
                Err(e @ dataset::ShardError::Changed(_)) => return Err(changed(e.to_string())),
            };
            self.store
                .put(
                    &layout::shard_key(app, rel, &upload.dataset_id, shard.index),
                    shard.body,
                    "application/jsonl",
                )
                .await?;
            self.store
                .put(
                    &layout::metadata_key(app, rel, &upload.dataset_id, shard.index),
                    shard.metadata,
                    "application/jsonl",
                )
                .await?;
            tracing::info!(dataset_id = %upload.dataset_id, shard = shard.index + 1, records = shard.records, first_line = shard.first_line, last_line = shard.last_line, "shard written");
        }
        Ok(())
    }

    async fn submit_shards(
        &self,
        upload: &Upload,
        validation: &Validation,
        specs: Vec<JobSpec>,
        policy_text: &str,
    ) -> Result<ObjectOutcome, SubmitError> {
        let ledger = self.ledger();
        let (app, rel) = (upload.key.application.clone(), upload.key.release.clone());
        let count = specs.len() as u32;
        let policy_hash = policy_hash(policy_text);
        let now = Utc::now();
        // First in, first out: while any shard waits for quota, new ones queue behind it.
        let mut queue_reason = self.waiting_shards().await?.then(|| {
            "older deferred shards are waiting for Bedrock's concurrent-job quota; this one is queued behind them".to_owned()
        });
        let mut submitted = Vec::new();
        let mut deferred = Vec::new();
        let mut already = 0;
        let mut parked = None;
        for (index, spec) in specs.into_iter().enumerate() {
            let plan = &validation.shards[index];
            let shard = index as u32 + 1;
            let metadata_uri = Some(s3_uri(
                self.bucket(),
                &layout::metadata_key(&app, &rel, &upload.dataset_id, index),
            ));
            if ledger.job(&app, &rel, &spec.job_name).await?.is_some()
                || self
                    .deferred_record(&app, &rel, &spec.job_name)
                    .await?
                    .is_some()
            {
                already += 1;
                continue;
            }
            if queue_reason.is_none() {
                match self.jobs.create_job(&spec).await {
                    Ok(job_arn) => {
                        let record = JobRecord {
                            schema: SCHEMA,
                            application: app.clone(),
                            release: rel.clone(),
                            dataset: upload.dataset.clone(),
                            dataset_id: upload.dataset_id.clone(),
                            shard,
                            shard_count: count,
                            prompts: plan.records as u32,
                            shard_uri: spec.dataset_uri.clone(),
                            metadata_uri,
                            output_uri: spec.output_uri.clone(),
                            job_name: spec.job_name.clone(),
                            job_arn: job_arn.clone(),
                            client_request_token: spec.client_request_token.clone(),
                            policy_hash: policy_hash.clone(),
                            submitted_at: Utc::now(),
                        };
                        if let Err(e) = self.record_submission(&record).await {
                            parked = Some(e);
                        }
                        tracing::info!(application = %app, release = %rel, dataset_id = %upload.dataset_id, shard, job_name = %spec.job_name, job_arn = %job_arn, prompts = plan.records, "evaluation job created");
                        submitted.push(JobRef {
                            shard,
                            job_name: spec.job_name,
                            job_arn: Some(job_arn),
                        });
                        continue;
                    }
                    Err(BedrockError::QuotaExceeded(message)) => {
                        tracing::warn!(dataset_id = %upload.dataset_id, shard, "Bedrock quota exhausted; deferring");
                        queue_reason = Some(format!(
                            "Bedrock's concurrent evaluation-job quota is exhausted: {message}"
                        ));
                    }
                    Err(BedrockError::Validation(message) | BedrockError::NotFound(message)) => {
                        return self.abort_upload(upload, shard, &message, &submitted).await;
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            let reason = queue_reason.clone().unwrap_or_default();
            let record = DeferredShard {
                schema: SCHEMA,
                application: app.clone(),
                release: rel.clone(),
                dataset: upload.dataset.clone(),
                dataset_id: upload.dataset_id.clone(),
                shard,
                shard_count: count,
                prompts: plan.records as u32,
                metadata_uri,
                policy_hash: policy_hash.clone(),
                spec,
                deferred_at: now,
                reason: reason.clone(),
            };
            if ledger.defer(&record).await? == PutOutcome::Created {
                let event = Event::EvaluationDeferred(EvaluationDeferred {
                    event_key: format!("deferred/{app}/{rel}/{}", record.spec.job_name),
                    application: app.clone(),
                    release: rel.clone(),
                    dataset: upload.dataset.clone(),
                    shard,
                    shard_count: count,
                    job_name: record.spec.job_name.clone(),
                    reason,
                });
                if let Err(e) = self.publish_or_park(&event).await {
                    parked = Some(e);
                }
                deferred.push(JobRef {
                    shard,
                    job_name: record.spec.job_name,
                    job_arn: None,
                });
            } else {
                already += 1;
            }
        }
        if !submitted.is_empty()
            || ledger
                .jobs(&app, &rel)
                .await?
                .iter()
                .any(|j| j.dataset_id == upload.dataset_id)
        {
            ledger.open_release(&app, &rel, now).await?;
        }
        if let Some(e) = parked {
            return Err(e);
        }
        Ok(ObjectOutcome::Submitted {
            key: upload.dataset.key.clone(),
            application: app,
            release: rel,
            dataset_id: upload.dataset_id.clone(),
            shards: count,
            submitted,
            deferred,
            already_handled: already,
        })
    }

    /// Whether any shard is waiting in the deferred queue.
    async fn waiting_shards(&self) -> Result<bool, SubmitError> {
        Ok(self
            .store
            .list(&ledger::deferred_prefix(None))
            .await?
            .iter()
            .any(|o| o.key.ends_with(".json")))
    }

    /// Records a created job; the delivery that creates the record emits the event.
    async fn record_submission(&self, record: &JobRecord) -> Result<(), SubmitError> {
        if self.ledger().record_job(record).await? == PutOutcome::AlreadyExists {
            return Ok(());
        }
        let event = Event::EvaluationSubmitted(EvaluationSubmitted {
            event_key: format!(
                "submitted/{}/{}/{}",
                record.application, record.release, record.job_name
            ),
            application: record.application.clone(),
            release: record.release.clone(),
            dataset: record.dataset.clone(),
            shard: record.shard,
            shard_count: record.shard_count,
            prompts: record.prompts,
            job_name: record.job_name.clone(),
            job_arn: record.job_arn.clone(),
        });
        self.publish_or_park(&event).await
    }

    /// Publishes, or parks the event in the outbox and reports the failure.
    async fn publish_or_park(&self, event: &Event) -> Result<(), SubmitError> {
        match self.events.publish(event).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(detail_type = event.detail_type(), event_key = event.event_key(), error = %e, "publishing failed; parking the event");
                let parked = ParkedEvent {
                    detail_type: event.detail_type().to_owned(),
                    detail: event.detail(),
                };
                let body = serde_json::to_vec(&parked).unwrap_or_default();
                self.store
                    .put(&outbox_key(event.event_key()), body, "application/json")
                    .await?;
                Err(e.into())
            }
        }
    }

    /// Publishes parked events (oldest key first); returns how many were published.
    pub async fn flush_outbox(&self) -> Result<u32, SubmitError> {
        let mut published = 0;
        for object in self.store.list(OUTBOX_PREFIX).await? {
            let bytes = match self.store.get(&object.key).await {
                Ok(bytes) => bytes,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            let event = serde_json::from_slice::<ParkedEvent>(&bytes)
                .ok()
                .and_then(|p| Event::parse(&p.detail_type, p.detail).ok());
            let Some(event) = event else {
                tracing::error!(key = %object.key, "unreadable parked event removed");
                self.store.delete(&object.key).await?;
                continue;
            };
            self.events.publish(&event).await?;
            self.store.delete(&object.key).await?;
            published += 1;
        }
        Ok(published)
    }

    /// Stops the upload's jobs, drops its records and deferred shards, and rejects it with
    /// Bedrock's message.
    async fn abort_upload(
        &self,
        upload: &Upload,
        shard: u32,
        message: &str,
        created_now: &[JobRef],
    ) -> Result<ObjectOutcome, SubmitError> {
        let ledger = self.ledger();
        let (app, rel) = (&upload.key.application, &upload.key.release);
        let mut arns: Vec<String> = created_now
            .iter()
            .filter_map(|j| j.job_arn.clone())
            .collect();
        let records: Vec<JobRecord> = ledger
            .jobs(app, rel)
            .await?
            .into_iter()
            .filter(|j| j.dataset_id == upload.dataset_id)
            .collect();
        for record in &records {
            if !arns.contains(&record.job_arn) {
                arns.push(record.job_arn.clone());
            }
        }
        let mut problems = vec![ReportProblem {
            source: ProblemSource::Bedrock,
            line: None,
            column: None,
            reason: format!("Bedrock rejected the evaluation job for shard {shard}: {message}"),
            fix: "Check the policy's evaluation section (evaluator model available in this region, metric names, custom metrics) and the service role; then upload the dataset again".into(),
        }];
        let mut stopped = Vec::new();
        for arn in &arns {
            match self.jobs.stop_job(arn).await {
                Ok(()) | Err(BedrockError::Conflict(_) | BedrockError::NotFound(_)) => {
                    stopped.push(arn.clone())
                }
                Err(e) => {
                    tracing::error!(job_arn = %arn, error = %e, "could not stop a job of a rejected upload");
                    problems.push(ReportProblem {
                        source: ProblemSource::Bedrock,
                        line: None,
                        column: None,
                        reason: format!("job {arn} of this upload could not be stopped: {e}"),
                        fix:
                            "Stop it in the Bedrock console or with aws bedrock stop-evaluation-job"
                                .into(),
                    });
                }
            }
        }
        for record in &records {
            ledger.remove_job(record).await?;
        }
        for waiting in ledger.deferred(Some((app, rel))).await? {
            if waiting.dataset_id == upload.dataset_id {
                ledger.remove_deferred(&waiting).await?;
            }
        }
        let count = problems.len() as u64;
        self.reject(
            upload,
            Stage::Bedrock,
            Some(s3_uri(self.bucket(), &layout::policy_key(app))),
            problems,
            count,
            stopped,
        )
        .await
    }

    async fn reject_key(
        &self,
        object: &ObjectCreated,
        key: &str,
        error: &KeyError,
    ) -> Result<ObjectOutcome, SubmitError> {
        let tag =
            version_tag(object.etag.as_deref(), object.version_id.as_deref()).unwrap_or_default();
        let upload_id = fingerprint(&[
            self.bucket(),
            key,
            &tag,
            object.sequencer.as_deref().unwrap_or(""),
        ])[..16]
            .to_owned();
        let dataset = DatasetRef {
            bucket: self.bucket().to_owned(),
            key: key.to_owned(),
            etag: object.etag.clone(),
            version_id: object.version_id.clone(),
        };
        let problems = vec![ReportProblem {
            source: ProblemSource::Key,
            line: None,
            column: None,
            reason: format!("{key:?} is not a dataset key: {}", error.problem),
            fix: "Upload datasets as datasets/<application>/<release>/<name>.jsonl, e.g. datasets/support-bot/v42/smoke.jsonl".into(),
        }];
        self.write_rejection(
            None,
            dataset,
            upload_id,
            Stage::Key,
            None,
            problems,
            1,
            vec![],
        )
        .await
    }

    async fn reject(
        &self,
        upload: &Upload,
        stage: Stage,
        policy: Option<String>,
        problems: Vec<ReportProblem>,
        error_count: u64,
        stopped: Vec<String>,
    ) -> Result<ObjectOutcome, SubmitError> {
        self.write_rejection(
            Some(&upload.key),
            upload.dataset.clone(),
            upload.upload_id.clone(),
            stage,
            policy,
            problems,
            error_count,
            stopped,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_rejection(
        &self,
        key: Option<&DatasetKey>,
        dataset: DatasetRef,
        upload_id: String,
        stage: Stage,
        policy: Option<String>,
        mut problems: Vec<ReportProblem>,
        error_count: u64,
        stopped_jobs: Vec<String>,
    ) -> Result<ObjectOutcome, SubmitError> {
        problems.truncate(dataset::MAX_LISTED_PROBLEMS);
        let summary = summary(stage, &problems, error_count, &stopped_jobs);
        let report = RejectionReport {
            schema: SCHEMA,
            dataset: dataset.clone(),
            application: key.map(|k| k.application.clone()),
            release: key.map(|k| k.release.clone()),
            policy,
            stage,
            what_to_do: what_to_do(stage, &dataset),
            summary: summary.clone(),
            error_count,
            more_errors: error_count.saturating_sub(problems.len() as u64),
            errors: problems,
            stopped_jobs,
            rejected_at: Utc::now(),
        };
        let report_key = layout::rejection_key(key, &dataset.key);
        let report_uri = s3_uri(self.bucket(), &report_key);
        let body = serde_json::to_vec_pretty(&report).unwrap_or_default();
        self.store
            .put(&report_key, body, "application/json")
            .await?;
        tracing::warn!(
            key = %dataset.key,
            stage = stage.as_str(),
            errors = error_count,
            first_line = report.errors.iter().find_map(|e| e.line),
            report = %report_uri,
            "dataset rejected"
        );
        let record = RejectionRecord {
            schema: SCHEMA,
            application: report.application.clone(),
            release: report.release.clone(),
            dataset: dataset.clone(),
            upload_id: upload_id.clone(),
            stage: stage.as_str().to_owned(),
            error_count,
            report_uri: report_uri.clone(),
            rejected_at: report.rejected_at,
        };
        if self.ledger().record_rejection(&record).await? == PutOutcome::Created {
            let scope = match key {
                Some(k) => format!("{}/{}", k.application, k.release),
                None => "_invalid-keys".to_owned(),
            };
            let event = Event::DatasetRejected(DatasetRejected {
                event_key: format!("rejected/{scope}/{upload_id}"),
                application: report.application.clone(),
                release: report.release.clone(),
                dataset: dataset.clone(),
                reason: summary,
                error_count,
                errors: report
                    .errors
                    .iter()
                    .take(EVENT_PROBLEMS)
                    .map(|p| LineProblem {
                        line: p.line,
                        message: format!("{}: {}. {}", p.source_name(), p.reason, p.fix),
                    })
                    .collect(),
                report_uri: report_uri.clone(),
            });
            self.publish_or_park(&event).await?;
        }
        Ok(ObjectOutcome::Rejected {
            key: dataset.key,
            stage,
            error_count,
            report_uri,
        })
    }

    /// Submits deferred shards, oldest first, until Bedrock's quota refuses one.
    pub async fn drain_deferred(&self) -> Result<DrainOutcome, SubmitError> {
        let mut outcome = DrainOutcome {
            events_flushed: self.flush_outbox().await?,
            ..DrainOutcome::default()
        };
        let ledger = self.ledger();
        let waiting = ledger.deferred(None).await?;
        let mut remaining = waiting.len() as u32;
        let mut aborted: Vec<String> = Vec::new();
        let mut parked = None;
        for shard in waiting {
            if aborted.contains(&shard.dataset_id) {
                remaining -= 1;
                continue;
            }
            let (app, rel) = (shard.application.clone(), shard.release.clone());
            if ledger
                .job(&app, &rel, &shard.spec.job_name)
                .await?
                .is_some()
            {
                // Submitted by a concurrent delivery: only the queue entry is left.
                ledger.remove_deferred(&shard).await?;
                remaining -= 1;
                continue;
            }
            match self.jobs.create_job(&shard.spec).await {
                Ok(job_arn) => {
                    let record = JobRecord {
                        schema: SCHEMA,
                        application: app.clone(),
                        release: rel.clone(),
                        dataset: shard.dataset.clone(),
                        dataset_id: shard.dataset_id.clone(),
                        shard: shard.shard,
                        shard_count: shard.shard_count,
                        prompts: shard.prompts,
                        shard_uri: shard.spec.dataset_uri.clone(),
                        metadata_uri: shard.metadata_uri.clone(),
                        output_uri: shard.spec.output_uri.clone(),
                        job_name: shard.spec.job_name.clone(),
                        job_arn: job_arn.clone(),
                        client_request_token: shard.spec.client_request_token.clone(),
                        policy_hash: shard.policy_hash.clone(),
                        submitted_at: Utc::now(),
                    };
                    if let Err(e) = self.record_submission(&record).await {
                        parked = Some(e);
                    }
                    ledger.remove_deferred(&shard).await?;
                    ledger.open_release(&app, &rel, Utc::now()).await?;
                    remaining -= 1;
                    tracing::info!(application = %app, release = %rel, dataset_id = %shard.dataset_id, shard = shard.shard, job_name = %shard.spec.job_name, job_arn = %job_arn, "deferred shard submitted");
                    outcome.submitted.push(JobRef {
                        shard: shard.shard,
                        job_name: shard.spec.job_name,
                        job_arn: Some(job_arn),
                    });
                }
                Err(BedrockError::QuotaExceeded(_)) => {
                    tracing::info!(
                        waiting = remaining,
                        "Bedrock quota still exhausted; deferred shards keep waiting"
                    );
                    break;
                }
                Err(BedrockError::Validation(message) | BedrockError::NotFound(message)) => {
                    let Ok(key) = DatasetKey::parse(&shard.dataset.key) else {
                        // Cannot happen: only parsed keys are deferred. Drop the entry loudly.
                        tracing::error!(key = %shard.dataset.key, "deferred shard with an unparsable key removed");
                        ledger.remove_deferred(&shard).await?;
                        remaining -= 1;
                        continue;
                    };
                    let upload = Upload {
                        version_tag: String::new(),
                        upload_id: fingerprint(&[
                            &shard.dataset.bucket,
                            &shard.dataset.key,
                            &shard.dataset_id,
                        ])[..16]
                            .to_owned(),
                        dataset_id: shard.dataset_id.clone(),
                        key,
                        dataset: shard.dataset.clone(),
                    };
                    self.abort_upload(&upload, shard.shard, &message, &[])
                        .await?;
                    aborted.push(shard.dataset_id.clone());
                    outcome.rejected.push(shard.dataset.key.clone());
                    remaining -= 1;
                }
                Err(other) => return Err(other.into()),
            }
        }
        outcome.waiting = ledger.deferred(None).await?.len() as u32;
        if let Some(e) = parked {
            return Err(e);
        }
        Ok(outcome)
    }
}

impl ReportProblem {
    fn source_name(&self) -> &'static str {
        match self.source {
            ProblemSource::Key => "key",
            ProblemSource::Policy => "policy",
            ProblemSource::Dataset => "dataset",
            ProblemSource::Bedrock => "bedrock",
        }
    }
}

fn skipped(key: &str, reason: impl Into<String>) -> ObjectOutcome {
    let reason = reason.into();
    tracing::info!(key = %key, reason = %reason, "skipped");
    ObjectOutcome::Skipped {
        key: key.to_owned(),
        reason,
    }
}

fn dataset_report_problems(validation: &Validation) -> Vec<ReportProblem> {
    validation
        .problems
        .iter()
        .map(|p: &DatasetProblem| ReportProblem {
            source: ProblemSource::Dataset,
            line: p.line,
            column: None,
            reason: p.reason.clone(),
            fix: p.fix.clone(),
        })
        .collect()
}

fn summary(stage: Stage, problems: &[ReportProblem], count: u64, stopped: &[String]) -> String {
    let plural = |n: u64| if n == 1 { "problem" } else { "problems" };
    let first = problems.first();
    let at = first
        .and_then(|p| p.line)
        .map(|l| format!(" (first at line {l})"))
        .unwrap_or_default();
    match stage {
        Stage::Key => first.map_or_else(
            || "the key is not a dataset key".to_owned(),
            |p| p.reason.clone(),
        ),
        Stage::Policy => {
            let policy = problems
                .iter()
                .filter(|p| p.source == ProblemSource::Policy)
                .count() as u64;
            let data = count.saturating_sub(policy);
            let mut s = match first {
                Some(p) if p.line.is_none() && policy == 1 => p.reason.clone(),
                _ => format!("the policy has {policy} {}{at}", plural(policy)),
            };
            if data > 0 {
                s.push_str(&format!(" and the dataset has {data} {}", plural(data)));
            }
            s.push_str("; nothing was submitted");
            s
        }
        Stage::Dataset => format!(
            "the dataset has {count} {}{at}; nothing was submitted",
            plural(count)
        ),
        Stage::Bedrock => {
            let mut s = first.map_or_else(
                || "Bedrock rejected the evaluation job".to_owned(),
                |p| p.reason.clone(),
            );
            if !stopped.is_empty() {
                s.push_str(&format!(
                    "; {} job(s) already created for this upload were stopped",
                    stopped.len()
                ));
            }
            s
        }
    }
}

fn what_to_do(stage: Stage, dataset: &DatasetRef) -> String {
    let again = format!(
        "then upload the dataset again (s3://{}/{})",
        dataset.bucket, dataset.key
    );
    match stage {
        Stage::Key => "Move the file to datasets/<application>/<release>/<name>.jsonl (e.g. datasets/support-bot/v42/smoke.jsonl). Nothing was submitted.".to_owned(),
        Stage::Policy => format!("Fix the policy problems listed (docs/policy.md documents every key) and upload the policy; fix any dataset lines listed; {again}. Nothing was submitted."),
        Stage::Dataset => format!("Fix every line listed (docs/datasets.md explains each rule), {again}. Nothing was submitted: evalgate submits a dataset only when every line is valid."),
        Stage::Bedrock => format!("Fix what Bedrock reported, {again}. Nothing is running for this upload."),
    }
}

fn outbox_key(event_key: &str) -> String {
    format!("{OUTBOX_PREFIX}{}.json", safe_segment(event_key))
}

/// A value Bedrock accepts as a tag value: disallowed characters become `_`, at most 256.
pub fn tag_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if is_valid_tag_text(c.encode_utf8(&mut [0; 4])) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect();
    cleaned
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A Bedrock dataset name (`[0-9a-zA-Z-_.]+`, at most 63) for a dataset file name.
pub fn bedrock_dataset_name(name: &str) -> String {
    let segment = safe_segment(name);
    if segment.len() <= 63 {
        return segment;
    }
    // safe_segment is ASCII, so byte slicing is on character boundaries.
    format!("{}-{}", &segment[..54], &fingerprint(&[name])[..8])
}

fn pattern(re: &str) -> Option<Regex> {
    Regex::new(re).ok()
}

static JOB_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"^[a-z0-9](-*[a-z0-9]){0,62}$"));
static TOKEN: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?$"));
static ROLE_ARN: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"^arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+$"));
static DATASET_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"^[0-9a-zA-Z\-_.]{1,63}$"));

fn matches(re: &LazyLock<Option<Regex>>, text: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(text))
}

/// Whether `arn` is a valid `roleArn` for CreateEvaluationJob.
pub fn is_valid_role_arn(arn: &str) -> bool {
    arn.len() <= 2048 && matches(&ROLE_ARN, arn)
}

/// Everything in `spec` that Bedrock's CreateEvaluationJob would refuse (its API model's
/// patterns, lengths and counts), as messages; empty when the request is valid.
pub fn preflight(spec: &JobSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, message: String| {
        if !ok {
            problems.push(message);
        }
    };
    check(
        spec.job_name.len() <= 63 && matches(&JOB_NAME, &spec.job_name),
        format!(
            "job name {:?} does not match [a-z0-9](-*[a-z0-9]){{0,62}}",
            spec.job_name
        ),
    );
    check(
        matches(&TOKEN, &spec.client_request_token),
        "the client request token is not 1-256 letters, digits and inner hyphens".into(),
    );
    check(
        is_valid_role_arn(&spec.role_arn),
        format!("role {:?} is not an IAM role ARN", spec.role_arn),
    );
    if let Some(description) = &spec.description {
        let len = description.chars().count();
        check(
            (1..=200).contains(&len) && !description.contains(['\n', '\r']),
            "the job description must be 1-200 characters on one line".into(),
        );
    }
    check(
        spec.tags.len() <= 200,
        format!("{} tags; Bedrock accepts at most 200", spec.tags.len()),
    );
    for (key, value) in &spec.tags {
        check(
            (1..=128).contains(&key.chars().count()) && is_valid_tag_text(key),
            format!("tag key {key:?} is not valid"),
        );
        check(
            value.chars().count() <= 256 && is_valid_tag_text(value),
            format!("tag value of {key:?} is not valid"),
        );
    }
    check(
        matches(&DATASET_NAME, &spec.dataset_name),
        format!(
            "dataset name {:?} is not 1-63 of [0-9a-zA-Z-_.]",
            spec.dataset_name
        ),
    );
    for (what, uri) in [("dataset", &spec.dataset_uri), ("output", &spec.output_uri)] {
        check(
            layout::is_bedrock_safe_uri(uri),
            format!(
                "the {what} location {uri} has characters Bedrock refuses in S3 URIs (allowed: letters, digits and -!_*'().)"
            ),
        );
    }
    check(
        (1..=25).contains(&spec.metric_names.len()),
        format!("{} metrics; Bedrock accepts 1-25", spec.metric_names.len()),
    );
    for name in &spec.metric_names {
        check(
            is_valid_metric_name(name),
            format!("metric name {name:?} is not valid"),
        );
    }
    check(
        is_valid_evaluator_model(&spec.evaluator_model),
        format!(
            "evaluator model {:?} is not a model or inference-profile identifier",
            spec.evaluator_model
        ),
    );
    check(
        spec.custom_metrics.len() <= 10,
        format!(
            "{} custom metrics; Bedrock accepts at most 10",
            spec.custom_metrics.len()
        ),
    );
    for metric in &spec.custom_metrics {
        check(
            spec.metric_names.contains(&metric.name),
            format!(
                "custom metric {:?} is not listed in the metric names",
                metric.name
            ),
        );
        check(
            (1..=5000).contains(&metric.instructions.chars().count()),
            format!(
                "custom metric {:?}: instructions must be 1-5000 characters",
                metric.name
            ),
        );
        check(
            metric.rating_scale.len() <= 10,
            format!("custom metric {:?}: at most 10 ratings", metric.name),
        );
    }
    check(
        dataset::is_valid_model_identifier(&spec.inference_source_identifier),
        format!(
            "modelIdentifier {:?} is not valid for Bedrock ([a-zA-Z0-9][a-zA-Z0-9._-]{{0,255}})",
            spec.inference_source_identifier
        ),
    );
    if let Some(key) = &spec.kms_key_id {
        check(
            is_valid_kms_key_id(key),
            format!("KMS key {key:?} is not a key id, ARN or alias"),
        );
    }
    problems
}

#[cfg(test)]
mod tests;
