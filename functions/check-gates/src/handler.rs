use std::io::Write;
use std::time::{Duration, Instant};

use evalgate::bedrock::BedrockEvaluationJobs;
use evalgate::events::EventBridgePublisher;
use evalgate::gating::{Gatekeeper, ReleaseOutcome, RunSummary, Scope, release_of_output_key};
use evalgate::layout::decode_event_key;
use evalgate::promotion::PointerPromotion;
use evalgate::release::{Pointer, PointerClients, PointerSpec};
use evalgate::store::{ObjectStore, s3::S3Store};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};

/// The clients, built once per sandbox.
pub struct Clients {
    pub store: S3Store,
    pub jobs: BedrockEvaluationJobs,
    pub events: EventBridgePublisher,
    /// SSM and Lambda clients for release pointers (`release.promote: on_pass`).
    pub pointers: PointerClients,
}

/// Time kept back at the end of an invocation to finish the release in hand and answer.
const SAFETY_MARGIN: Duration = Duration::from_secs(30);

/// What an incoming event asks for.
#[derive(Debug, PartialEq)]
pub enum Request {
    Check(Scope),
    /// An S3 event on objects that are not results (nothing to do).
    Ignore(String),
}

/// Reads the event: a schedule checks every open release; results landing in S3 check
/// the releases they belong to.
pub fn request_of(event: &Value, bucket: &str) -> Result<Request, String> {
    let mut keys: Vec<(String, String)> = Vec::new();
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        // Classic S3 notification (possibly several records).
        for record in records {
            let s3 = &record["s3"];
            keys.push((
                s3["bucket"]["name"].as_str().unwrap_or_default().to_owned(),
                s3["object"]["key"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    } else {
        match event.get("detail-type").and_then(Value::as_str) {
            Some("Scheduled Event") => return Ok(Request::Check(Scope::All)),
            Some("Object Created") => {
                let detail = &event["detail"];
                keys.push((
                    detail["bucket"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    detail["object"]["key"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
            }
            other => {
                return Err(format!(
                    "check-gates cannot handle this event (detail-type {other:?}): it expects an EventBridge Scheduled Event, or an S3 ObjectCreated notification for evaluations/…_output.jsonl"
                ));
            }
        }
    }
    let mut segments = Vec::new();
    let mut ignored = Vec::new();
    for (event_bucket, raw_key) in keys {
        let key = decode_event_key(&raw_key).unwrap_or(raw_key);
        match release_of_output_key(&key) {
            Some(release) if event_bucket == bucket => {
                if !segments.contains(&release) {
                    segments.push(release);
                }
            }
            Some(_) => ignored.push(format!("{key} is in bucket {event_bucket}, not {bucket}")),
            None => ignored.push(format!("{key} is not an evaluation result")),
        }
    }
    if segments.is_empty() {
        Ok(Request::Ignore(ignored.join("; ")))
    } else {
        Ok(Request::Check(Scope::Segments(segments)))
    }
}

/// The run's summary as the function's response (identifiers and outcomes only).
pub fn summary_json(summary: &RunSummary) -> Value {
    let releases: Vec<Value> = summary
        .releases
        .iter()
        .map(|r| {
            let (state, detail) = match &r.result {
                Ok(ReleaseOutcome::Decided(o)) => ("decided", json!(o.as_str())),
                Ok(ReleaseOutcome::Recovered(o)) => ("recovered", json!(o.as_str())),
                Ok(ReleaseOutcome::Waiting(why)) => ("waiting", json!(why)),
                Ok(ReleaseOutcome::AlreadyRecorded) => ("already_recorded", Value::Null),
                Ok(ReleaseOutcome::ClosedAfterVerdict) => ("closed_after_verdict", Value::Null),
                Err(e) => ("failed", json!(e)),
            };
            json!({"application": r.application, "release": r.release, "state": state, "detail": detail})
        })
        .collect();
    json!({
        "checked": summary.releases.len(),
        "failures": summary.failures(),
        "deferredForTime": summary.deferred_for_time,
        "releases": releases,
    })
}

/// EMF lines go to stdout as they are: CloudWatch Logs extracts the metrics.
fn print_emf(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub async fn handle(clients: &Clients, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (event, ctx) = event.into_parts();
    let scope = match request_of(&event, clients.store.bucket())? {
        Request::Check(scope) => scope,
        Request::Ignore(why) => {
            tracing::info!(why, "event ignored");
            return Ok(json!({"ignored": why}));
        }
    };
    // Stop starting new releases when the invocation is about to time out.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let remaining = Duration::from_millis(ctx.deadline.saturating_sub(now_ms));
    let deadline = (ctx.deadline > 0)
        .then(|| Instant::now() + remaining.saturating_sub(SAFETY_MARGIN.min(remaining / 4)));
    let promotion = PointerPromotion {
        store: &clients.store,
        publisher: &clients.events,
        open: |spec: &PointerSpec| Pointer::new(spec, &clients.pointers),
        promoted_by: format!("evalgate check-gates (request {})", ctx.request_id),
    };
    let mut gatekeeper =
        Gatekeeper::new(&clients.store, &clients.jobs, &clients.events, &print_emf);
    gatekeeper.promotion = Some(&promotion);
    let summary = gatekeeper.run(&scope, chrono::Utc::now(), deadline).await?;
    let response = summary_json(&summary);
    tracing::info!(
        checked = summary.releases.len(),
        failures = summary.failures(),
        deferred_for_time = summary.deferred_for_time,
        "check-gates run finished"
    );
    if summary.failures() > 0 {
        // Surfaces in the function's Errors metric; the next scheduled run retries.
        return Err(format!(
            "{} of {} release(s) could not be checked (see the log); they stay open and the next run retries: {response}",
            summary.failures(),
            summary.releases.len()
        )
        .into());
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "evaluations/app/v1/smoke-1a2b3c4d/eg-app-v1-x-001/abcdefghijkl/models/m/taskTypes/General/datasets/smoke/u_output.jsonl";

    #[test]
    fn schedules_check_everything() {
        let event = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert_eq!(request_of(&event, "b").unwrap(), Request::Check(Scope::All));
    }

    #[test]
    fn results_check_their_release() {
        let classic = json!({"Records": [
            {"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}, "object": {"key": KEY}}},
            {"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}, "object": {"key": KEY}}},
        ]});
        let expected = Request::Check(Scope::Segments(vec![("app".into(), "v1".into())]));
        assert_eq!(request_of(&classic, "b").unwrap(), expected);
        let bridge = json!({"detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": KEY}}});
        assert_eq!(request_of(&bridge, "b").unwrap(), expected);
    }

    #[test]
    fn other_objects_are_ignored_and_other_events_rejected() {
        let other = json!({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "evaluations/app/v1/x/permission-check"}}}]});
        assert!(matches!(
            request_of(&other, "b").unwrap(),
            Request::Ignore(_)
        ));
        let elsewhere =
            json!({"Records": [{"s3": {"bucket": {"name": "other"}, "object": {"key": KEY}}}]});
        assert!(
            matches!(request_of(&elsewhere, "b").unwrap(), Request::Ignore(w) if w.contains("not b"))
        );
        let err = request_of(&json!({"detail-type": "Gate Verdict"}), "b").unwrap_err();
        assert!(
            err.contains("expects an EventBridge Scheduled Event"),
            "{err}"
        );
    }
}
