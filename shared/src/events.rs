//! evalgate's own EventBridge events (source `evalgate`): the contract between the
//! functions that emit them and `send-alert` (and any other subscriber, e.g. CI/CD).
//!
//! Every detail is camelCase JSON and carries an `eventKey`: a stable, logical identity
//! (`verdict/<app>/<release>`, `rollback/<app>/<alarm event id>`, …) that stays the same if
//! an emitter has to emit the same fact twice, so subscribers can de-duplicate on it as well
//! as on EventBridge's event id. Fields may be added over time; subscribers ignore unknown
//! ones and new fields are optional.

use std::future::Future;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::verdict::{GateStatus, Outcome};

/// The EventBridge `source` of every evalgate event.
pub const SOURCE: &str = "evalgate";

/// Where a dataset came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetRef {
    pub bucket: String,
    /// The decoded object key.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// `Evaluation Submitted`: one shard's Bedrock job was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationSubmitted {
    pub event_key: String,
    pub application: String,
    pub release: String,
    pub dataset: DatasetRef,
    /// 1-based shard number.
    pub shard: u32,
    pub shard_count: u32,
    pub prompts: u32,
    pub job_name: String,
    pub job_arn: String,
}

/// `Evaluation Deferred`: a shard could not be submitted yet (Bedrock's concurrent-job
/// quota); it is recorded and submitted later, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationDeferred {
    pub event_key: String,
    pub application: String,
    pub release: String,
    pub dataset: DatasetRef,
    pub shard: u32,
    pub shard_count: u32,
    pub job_name: String,
    pub reason: String,
}

/// One problem found in a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineProblem {
    /// 1-based line number; `None` for problems of the whole file or its key/policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub message: String,
}

/// `Dataset Rejected`: nothing was submitted for this upload; the report says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetRejected {
    pub event_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    pub dataset: DatasetRef,
    /// One sentence: what is wrong and what to do.
    pub reason: String,
    pub error_count: u64,
    /// The first problems (the report has them all).
    pub errors: Vec<LineProblem>,
    pub report_uri: String,
}

/// One metric's line in a verdict summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSummary {
    pub metric: String,
    /// The gated value (usually the mean); `None` when nothing was scored.
    #[serde(default)]
    pub value: Option<f64>,
    /// The bar it was held to, with its comparison, e.g. `">= 0.80"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_value: Option<f64>,
    /// `value - baseline_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    pub status: GateStatus,
    #[serde(default)]
    pub scored: u64,
    #[serde(default)]
    pub unscored: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_rate: Option<f64>,
}

/// A low-scoring prompt, identified by hash; text only when the policy allows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptNote {
    pub metric: String,
    pub prompt_hash: String,
    #[serde(default)]
    pub score: Option<f64>,
    /// The judge's explanation (shortened).
    pub explanation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Only when the application's policy allows prompt text in alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// `Gate Verdict`: a release's evaluation was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateVerdict {
    pub event_key: String,
    pub application: String,
    pub release: String,
    pub outcome: Outcome,
    /// Every reason for the outcome, most important first.
    pub reasons: Vec<String>,
    /// Per-metric summary, failing metrics first.
    pub metrics: Vec<MetricSummary>,
    #[serde(default)]
    pub worst_prompts: Vec<PromptNote>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_release: Option<String>,
    pub verdict_uri: String,
    pub report_uri: String,
    #[serde(default)]
    pub job_arns: Vec<String>,
}

/// `Release Promoted`: the release pointer now names a release that passed its gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleasePromoted {
    pub event_key: String,
    pub application: String,
    pub release: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Human-readable pointer, e.g. `ssm:/support-bot/release` or `lambda:fn:live`.
    pub pointer: String,
    pub verdict_uri: String,
}

/// The alarm behind a rollback decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the alarm entered its current state (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Metric names/expressions the alarm watches.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// The EventBridge id of the alarm state-change event.
    pub event_id: String,
}

/// `Rollback Executed`: the release pointer was moved back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackExecuted {
    pub event_key: String,
    pub application: String,
    pub from: String,
    pub to: String,
    pub pointer: String,
    pub alarm: AlarmRef,
    pub reason: String,
}

/// `Rollback Skipped`: an alarm asked for a rollback that evalgate did not perform
/// (no passing release to return to, dry run, …). Always worth a human's attention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackSkipped {
    pub event_key: String,
    pub application: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// The release a rollback would have targeted, if one exists (dry runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_roll_back_to: Option<String>,
    pub alarm: AlarmRef,
    pub reason: String,
    #[serde(default)]
    pub dry_run: bool,
}

/// Every event evalgate emits.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    EvaluationSubmitted(EvaluationSubmitted),
    EvaluationDeferred(EvaluationDeferred),
    DatasetRejected(DatasetRejected),
    GateVerdict(GateVerdict),
    ReleasePromoted(ReleasePromoted),
    RollbackExecuted(RollbackExecuted),
    RollbackSkipped(RollbackSkipped),
}

/// An event's detail could not be read.
#[derive(Debug, Error)]
pub enum EventError {
    #[error("unknown evalgate detail-type {0:?}")]
    UnknownKind(String),
    #[error("malformed {detail_type:?} detail: {source}")]
    Malformed {
        detail_type: String,
        source: serde_json::Error,
    },
}

impl Event {
    pub const EVALUATION_SUBMITTED: &'static str = "Evaluation Submitted";
    pub const EVALUATION_DEFERRED: &'static str = "Evaluation Deferred";
    pub const DATASET_REJECTED: &'static str = "Dataset Rejected";
    pub const GATE_VERDICT: &'static str = "Gate Verdict";
    pub const RELEASE_PROMOTED: &'static str = "Release Promoted";
    pub const ROLLBACK_EXECUTED: &'static str = "Rollback Executed";
    pub const ROLLBACK_SKIPPED: &'static str = "Rollback Skipped";

    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            Event::EvaluationSubmitted(_) => Self::EVALUATION_SUBMITTED,
            Event::EvaluationDeferred(_) => Self::EVALUATION_DEFERRED,
            Event::DatasetRejected(_) => Self::DATASET_REJECTED,
            Event::GateVerdict(_) => Self::GATE_VERDICT,
            Event::ReleasePromoted(_) => Self::RELEASE_PROMOTED,
            Event::RollbackExecuted(_) => Self::ROLLBACK_EXECUTED,
            Event::RollbackSkipped(_) => Self::ROLLBACK_SKIPPED,
        }
    }

    /// The logical identity of the fact this event reports.
    pub fn event_key(&self) -> &str {
        match self {
            Event::EvaluationSubmitted(d) => &d.event_key,
            Event::EvaluationDeferred(d) => &d.event_key,
            Event::DatasetRejected(d) => &d.event_key,
            Event::GateVerdict(d) => &d.event_key,
            Event::ReleasePromoted(d) => &d.event_key,
            Event::RollbackExecuted(d) => &d.event_key,
            Event::RollbackSkipped(d) => &d.event_key,
        }
    }

    /// The application the event is about, when known.
    pub fn application(&self) -> Option<&str> {
        match self {
            Event::EvaluationSubmitted(d) => Some(&d.application),
            Event::EvaluationDeferred(d) => Some(&d.application),
            Event::DatasetRejected(d) => d.application.as_deref(),
            Event::GateVerdict(d) => Some(&d.application),
            Event::ReleasePromoted(d) => Some(&d.application),
            Event::RollbackExecuted(d) => Some(&d.application),
            Event::RollbackSkipped(d) => Some(&d.application),
        }
    }

    /// The detail as JSON.
    pub fn detail(&self) -> serde_json::Value {
        let value = match self {
            Event::EvaluationSubmitted(d) => serde_json::to_value(d),
            Event::EvaluationDeferred(d) => serde_json::to_value(d),
            Event::DatasetRejected(d) => serde_json::to_value(d),
            Event::GateVerdict(d) => serde_json::to_value(d),
            Event::ReleasePromoted(d) => serde_json::to_value(d),
            Event::RollbackExecuted(d) => serde_json::to_value(d),
            Event::RollbackSkipped(d) => serde_json::to_value(d),
        };
        // Plain structs of strings and numbers always serialise.
        value.unwrap_or(serde_json::Value::Null)
    }

    /// Reads an event back from its `detail-type` and `detail`.
    pub fn parse(detail_type: &str, detail: serde_json::Value) -> Result<Event, EventError> {
        fn read<T: serde::de::DeserializeOwned>(
            detail_type: &str,
            detail: serde_json::Value,
        ) -> Result<T, EventError> {
            serde_json::from_value(detail).map_err(|source| EventError::Malformed {
                detail_type: detail_type.to_owned(),
                source,
            })
        }
        Ok(match detail_type {
            Self::EVALUATION_SUBMITTED => Event::EvaluationSubmitted(read(detail_type, detail)?),
            Self::EVALUATION_DEFERRED => Event::EvaluationDeferred(read(detail_type, detail)?),
            Self::DATASET_REJECTED => Event::DatasetRejected(read(detail_type, detail)?),
            Self::GATE_VERDICT => Event::GateVerdict(read(detail_type, detail)?),
            Self::RELEASE_PROMOTED => Event::ReleasePromoted(read(detail_type, detail)?),
            Self::ROLLBACK_EXECUTED => Event::RollbackExecuted(read(detail_type, detail)?),
            Self::ROLLBACK_SKIPPED => Event::RollbackSkipped(read(detail_type, detail)?),
            other => return Err(EventError::UnknownKind(other.to_owned())),
        })
    }
}

/// Publishing an event failed.
#[derive(Debug, Error)]
#[error("publishing {detail_type:?} ({event_key}) to EventBridge failed: {message}")]
pub struct PublishError {
    pub detail_type: String,
    pub event_key: String,
    pub message: String,
}

/// Where events go.
pub trait EventPublisher: Send + Sync {
    fn publish(&self, event: &Event) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// [`EventPublisher`] on an EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgePublisher {
    /// `bus_name` is a name or ARN; `default` is the account's default bus.
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        EventBridgePublisher {
            client,
            bus_name: bus_name.into(),
        }
    }
}

impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, event: &Event) -> Result<(), PublishError> {
        let fail = |message: String| PublishError {
            detail_type: event.detail_type().to_owned(),
            event_key: event.event_key().to_owned(),
            message,
        };
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(event.detail_type())
            .detail(event.detail().to_string())
            .event_bus_name(&self.bus_name)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                fail(aws_smithy_types::error::display::DisplayErrorContext(&e).to_string())
            })?;
        // PutEvents reports per-entry failures in a 200 response: check them.
        if out.failed_entry_count() > 0 {
            let detail = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message().or(e.error_code()))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(fail(detail));
        }
        Ok(())
    }
}

/// An [`EventPublisher`] that keeps events in memory, for unit tests.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Default)]
pub struct RecordingPublisher {
    pub events: std::sync::Mutex<Vec<Event>>,
}

#[cfg(any(test, feature = "test-util"))]
impl RecordingPublisher {
    pub fn taken(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(any(test, feature = "test-util"))]
impl EventPublisher for RecordingPublisher {
    async fn publish(&self, event: &Event) -> Result<(), PublishError> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm() -> AlarmRef {
        AlarmRef {
            name: "support-bot-errors".into(),
            arn: None,
            state: "ALARM".into(),
            previous_state: Some("OK".into()),
            reason: Some("Threshold Crossed".into()),
            since: Some("2026-11-22T10:00:00Z".into()),
            metrics: vec!["Errors".into()],
            event_id: "e-1".into(),
        }
    }

    #[test]
    fn every_kind_round_trips_through_its_detail() {
        let events = vec![
            Event::RollbackSkipped(RollbackSkipped {
                event_key: "rollback/app/e-1".into(),
                application: "app".into(),
                current: Some("v3".into()),
                would_roll_back_to: None,
                alarm: alarm(),
                reason: "no earlier release passed its gate".into(),
                dry_run: false,
            }),
            Event::GateVerdict(GateVerdict {
                event_key: "verdict/app/v3".into(),
                application: "app".into(),
                release: "v3".into(),
                outcome: Outcome::Fail,
                reasons: vec!["Builtin.Correctness mean 0.61 < 0.80".into()],
                metrics: vec![MetricSummary {
                    metric: "Builtin.Correctness".into(),
                    value: Some(0.61),
                    threshold: Some(">= 0.80".into()),
                    baseline_value: None,
                    delta: None,
                    status: GateStatus::Fail,
                    scored: 30,
                    unscored: 0,
                    pass_rate: None,
                }],
                worst_prompts: vec![],
                baseline_release: None,
                verdict_uri: "s3://b/verdicts/app/v3/verdict.json".into(),
                report_uri: "s3://b/verdicts/app/v3/report.md".into(),
                job_arns: vec![],
            }),
        ];
        for event in events {
            let detail = event.detail();
            assert_eq!(detail["eventKey"], event.event_key());
            let back = Event::parse(event.detail_type(), detail).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn unknown_and_malformed_details_are_errors() {
        assert!(matches!(
            Event::parse("Something Else", serde_json::json!({})),
            Err(EventError::UnknownKind(_))
        ));
        let err = Event::parse("Gate Verdict", serde_json::json!({"application": 1})).unwrap_err();
        assert!(err.to_string().contains("Gate Verdict"));
    }
}
