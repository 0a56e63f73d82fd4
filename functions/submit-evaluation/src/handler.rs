//! Reads the triggering event and hands it to `evalgate::submission`.
//!
//! | event | action |
//! |---|---|
//! | S3 notification `Records[]` (`ObjectCreated:*`) | submit each dataset object |
//! | EventBridge `Object Created` (source `aws.s3`) | submit the dataset object |
//! | EventBridge `Scheduled Event` | submit deferred shards, oldest first |
//! | `s3:TestEvent`, `ObjectRemoved:*`, `Object Deleted` | acknowledged, nothing to do |
//!
//! Anything else is an error: a misconfigured trigger should be visible, not ignored.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use evalgate::bedrock::EvaluationJobs;
use evalgate::events::EventPublisher;
use evalgate::store::ObjectStore;
use evalgate::submission::{EventKey, ObjectCreated, Settings, Submitter};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{Value, json};

/// The clients and settings built once in `main`.
pub struct App<S, J, P> {
    pub store: S,
    pub jobs: J,
    pub events: P,
    pub settings: Settings,
}

/// What an event asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Trigger {
    Objects(Vec<ObjectCreated>),
    Schedule,
    /// Acknowledged without work (the reason is returned and logged).
    Nothing(String),
}

/// The `detail` of an EventBridge S3 event.
#[derive(Debug, Deserialize)]
struct S3Detail {
    bucket: S3DetailBucket,
    object: S3DetailObject,
}

#[derive(Debug, Deserialize)]
struct S3DetailBucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct S3DetailObject {
    key: String,
    #[serde(default)]
    etag: Option<String>,
    #[serde(rename = "version-id", default)]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

fn unsupported(what: impl std::fmt::Display) -> Error {
    format!("unsupported event: {what}. submit-evaluation accepts S3 ObjectCreated notifications, EventBridge \"Object Created\" events from aws.s3 and EventBridge \"Scheduled Event\"s").into()
}

/// Classifies an event.
pub fn parse_trigger(event: Value) -> Result<Trigger, Error> {
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Trigger::Nothing("S3 test event".into()));
    }
    if event.get("Records").is_some() {
        let s3: S3Event = serde_json::from_value(event)
            .map_err(|e| unsupported(format_args!("malformed S3 notification ({e})")))?;
        let mut objects = Vec::new();
        for record in s3.records {
            let name = record.event_name.unwrap_or_default();
            if !name.starts_with("ObjectCreated:") {
                tracing::info!(event_name = %name, "not an object creation; ignored");
                continue;
            }
            let (Some(bucket), Some(key)) = (record.s3.bucket.name, record.s3.object.key) else {
                return Err(unsupported(
                    "an S3 record without bucket name or object key",
                ));
            };
            objects.push(ObjectCreated {
                bucket,
                key: EventKey::Notification(key),
                etag: record.s3.object.e_tag,
                version_id: record.s3.object.version_id,
                sequencer: record.s3.object.sequencer,
            });
        }
        if objects.is_empty() {
            return Ok(Trigger::Nothing("no object was created".into()));
        }
        return Ok(Trigger::Objects(objects));
    }
    if event.get("detail-type").is_some() {
        let event: EventBridgeEvent<Value> = serde_json::from_value(event)
            .map_err(|e| unsupported(format_args!("malformed EventBridge event ({e})")))?;
        return match (event.source.as_str(), event.detail_type.as_str()) {
            (_, "Scheduled Event") => Ok(Trigger::Schedule),
            ("aws.s3", "Object Created") => {
                let detail: S3Detail = serde_json::from_value(event.detail).map_err(|e| {
                    unsupported(format_args!("malformed \"Object Created\" detail ({e})"))
                })?;
                Ok(Trigger::Objects(vec![ObjectCreated {
                    bucket: detail.bucket.name,
                    key: EventKey::EventBridge(detail.object.key),
                    etag: detail.object.etag,
                    version_id: detail.object.version_id,
                    sequencer: detail.object.sequencer,
                }]))
            }
            ("aws.s3", other) => Ok(Trigger::Nothing(format!("S3 {other:?} event"))),
            (source, detail_type) => Err(unsupported(format_args!(
                "EventBridge {detail_type:?} from {source:?}"
            ))),
        };
    }
    Err(unsupported(
        "neither an S3 notification nor an EventBridge event",
    ))
}

/// Handles one invocation.
pub async fn handle<S, J, P>(app: &App<S, J, P>, event: LambdaEvent<Value>) -> Result<Value, Error>
where
    S: ObjectStore,
    J: EvaluationJobs,
    P: EventPublisher,
{
    let (event, context) = event.into_parts();
    let trigger = parse_trigger(event)?;
    let submitter = Submitter::new(&app.store, &app.jobs, &app.events, &app.settings);
    // Events parked by an earlier invocation go out first; if EventBridge is still down
    // they stay parked and the work below proceeds.
    let flushed = match submitter.flush_outbox().await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "parked events could not be published yet");
            0
        }
    };
    match trigger {
        Trigger::Nothing(reason) => {
            tracing::info!(reason = %reason, "nothing to do");
            Ok(json!({ "kind": "ignored", "reason": reason, "eventsFlushed": flushed }))
        }
        Trigger::Schedule => {
            let outcome = submitter.drain_deferred().await?;
            tracing::info!(
                request_id = %context.request_id,
                submitted = outcome.submitted.len(),
                waiting = outcome.waiting,
                rejected = outcome.rejected.len(),
                "deferred shards drained"
            );
            Ok(json!({ "kind": "schedule", "drain": outcome }))
        }
        Trigger::Objects(objects) => {
            let mut outcomes = Vec::new();
            let mut failure = None;
            for object in &objects {
                match submitter.submit_object(object).await {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(e) => {
                        tracing::error!(request_id = %context.request_id, error = %e, "submission failed; the invocation fails so Lambda retries it");
                        failure.get_or_insert(e);
                    }
                }
            }
            // Every object was attempted; a retry redoes only what is missing.
            if let Some(e) = failure {
                return Err(e.into());
            }
            Ok(json!({ "kind": "objects", "outcomes": outcomes, "eventsFlushed": flushed }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evalgate::bedrock::{BedrockError, JobSpec, JobState};
    use evalgate::events::RecordingPublisher;
    use evalgate::store::memory::MemoryStore;
    use lambda_runtime::Context;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Jobs(Mutex<Vec<JobSpec>>);

    impl EvaluationJobs for Jobs {
        async fn create_job(&self, spec: &JobSpec) -> Result<String, BedrockError> {
            let mut jobs = self.0.lock().unwrap();
            jobs.push(spec.clone());
            Ok(format!(
                "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/{:012}",
                jobs.len()
            ))
        }
        async fn get_job(&self, arn: &str) -> Result<JobState, BedrockError> {
            Err(BedrockError::NotFound(arn.into()))
        }
    }

    fn s3_notification(key: &str, event_name: &str) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-22T10:00:00.000Z", "eventName": event_name,
            "userIdentity": {"principalId": "AWS:X"}, "requestParameters": {"sourceIPAddress": "1.2.3.4"},
            "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "datasets",
                "bucket": {"name": "eval-bucket", "arn": "arn:aws:s3:::eval-bucket"},
                "object": {"key": key, "size": 10, "eTag": "0123", "sequencer": "0A1B"}}}]})
    }

    #[test]
    fn reads_s3_notifications_eventbridge_and_schedules() {
        let Trigger::Objects(objects) = parse_trigger(s3_notification(
            "datasets/a/v1/my+file%3D1.jsonl",
            "ObjectCreated:Put",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            objects[0].key,
            EventKey::Notification("datasets/a/v1/my+file%3D1.jsonl".into())
        );
        assert_eq!(objects[0].etag.as_deref(), Some("0123"));
        assert_eq!(objects[0].sequencer.as_deref(), Some("0A1B"));

        let eventbridge = json!({"version": "0", "id": "e1", "detail-type": "Object Created",
            "source": "aws.s3", "account": "123456789012", "time": "2026-11-22T10:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:s3:::eval-bucket"],
            "detail": {"version": "0", "bucket": {"name": "eval-bucket"},
                "object": {"key": "datasets/a/v1/x.jsonl", "size": 5, "etag": "abc",
                    "version-id": "v1", "sequencer": "01"},
                "request-id": "r", "requester": "123456789012", "reason": "PutObject"}});
        let Trigger::Objects(objects) = parse_trigger(eventbridge).unwrap() else {
            panic!()
        };
        assert_eq!(
            objects[0].key,
            EventKey::EventBridge("datasets/a/v1/x.jsonl".into())
        );
        assert_eq!(objects[0].version_id.as_deref(), Some("v1"));

        let schedule = json!({"version": "0", "id": "s1", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-22T10:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"],
            "detail": {}});
        assert_eq!(parse_trigger(schedule).unwrap(), Trigger::Schedule);
    }

    #[test]
    fn acknowledges_what_needs_no_work_and_refuses_the_unknown() {
        for event in [
            json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}),
            s3_notification("datasets/a/v1/x.jsonl", "ObjectRemoved:Delete"),
            json!({"detail-type": "Object Deleted", "source": "aws.s3", "detail": {}}),
        ] {
            assert!(matches!(parse_trigger(event), Ok(Trigger::Nothing(_))));
        }
        for event in [
            json!({"hello": "world"}),
            json!({"detail-type": "Gate Verdict", "source": "evalgate", "detail": {}}),
            json!({"Records": "nope"}),
        ] {
            let err = parse_trigger(event).unwrap_err().to_string();
            assert!(err.contains("unsupported event"), "{err}");
        }
    }

    #[tokio::test]
    async fn an_s3_event_becomes_a_job_and_a_schedule_drains() {
        let store = MemoryStore::new("eval-bucket");
        store
            .put(
                "policies/a.yaml",
                b"version: 1\nevaluation:\n  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n".to_vec(),
                "text/yaml",
            )
            .await
            .unwrap();
        store
            .put(
                "datasets/a/v1/my file=1.jsonl",
                br#"{"prompt":"p","modelResponses":[{"response":"r","modelIdentifier":"m"}]}"#
                    .to_vec(),
                "application/jsonl",
            )
            .await
            .unwrap();
        let app = App {
            store,
            jobs: Jobs::default(),
            events: RecordingPublisher::default(),
            settings: Settings {
                bucket: "eval-bucket".into(),
                role_arn: "arn:aws:iam::123456789012:role/r".into(),
            },
        };
        let mut event = s3_notification("datasets/a/v1/my+file%3D1.jsonl", "ObjectCreated:Put");
        event["Records"][0]["s3"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("eTag");
        let out = handle(&app, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        assert_eq!(out["outcomes"][0]["outcome"], "submitted", "{out}");
        assert_eq!(out["outcomes"][0]["submitted"].as_array().unwrap().len(), 1);
        assert_eq!(app.jobs.0.lock().unwrap().len(), 1);
        let out = handle(
            &app,
            LambdaEvent::new(
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
                Context::default(),
            ),
        )
        .await
        .unwrap();
        assert_eq!(out["drain"]["waiting"], 0, "{out}");
    }
}
