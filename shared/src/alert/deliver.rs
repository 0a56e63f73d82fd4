//! send-alert's work for one EventBridge event: read the application's alert settings,
//! decide the severity, de-duplicate, render, publish, record.
//!
//! Failure semantics (see also [`super::dedup`]):
//!
//! * a missing, unreadable or invalid policy never stops an alert: the defaults apply and the
//!   alert says why;
//! * below the application's `min_severity` nothing is sent and nothing is recorded;
//! * a publish failure fails the invocation (Lambda retries it) and releases the claim, so
//!   the retry publishes;
//! * once SNS has accepted the message, failing to write the record is logged but does not
//!   fail the invocation: a retry would send the alert twice.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use thiserror::Error;

use super::dedup::{ClaimOutcome, Dedup, fact_fingerprint};
use super::{Body, Settings, Severity, Source, render, severity};
use crate::events::{Event, EventError, SOURCE};
use crate::layout::{fingerprint, is_valid_application, policy_key, s3_uri};
use crate::ledger::{AlertRecord, LedgerError, SCHEMA};
use crate::notify::{Notifier, NotifyError};
use crate::policy::{AlertsPolicy, Policy};
use crate::store::ObjectStore;

/// An EventBridge event as send-alert receives it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub id: Option<String>,
    pub source: String,
    pub detail_type: String,
    pub time: Option<DateTime<Utc>>,
    pub region: Option<String>,
    pub detail: Value,
}

/// How long to wait for another delivery's live claim before failing for a retry.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The invocation's deadline: claims expire shortly after it.
    pub deadline: DateTime<Utc>,
    pub busy_wait: StdDuration,
    pub poll: StdDuration,
}

impl Timing {
    /// Waits up to 10 s (never past 5 s before the deadline) for a concurrent delivery,
    /// polling every 250 ms.
    pub fn until(deadline: DateTime<Utc>) -> Self {
        Timing {
            deadline,
            busy_wait: StdDuration::from_secs(10),
            poll: StdDuration::from_millis(250),
        }
    }
}

/// What happened to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Sent {
        event_id: String,
        message_id: String,
        severity: Severity,
        subject: String,
        size: usize,
        shortened: bool,
    },
    /// Published before (the same event id, or the same fact under another id).
    Duplicate {
        event_id: String,
        first_event_id: String,
        message_id: Option<String>,
    },
    /// Below the application's `min_severity`.
    Suppressed {
        event_id: String,
        severity: Severity,
        min_severity: Severity,
    },
}

impl Delivered {
    /// The handler's JSON response.
    pub fn to_json(&self) -> Value {
        match self {
            Delivered::Sent {
                event_id,
                message_id,
                severity,
                subject,
                size,
                shortened,
            } => serde_json::json!({
                "status": "sent", "eventId": event_id, "messageId": message_id,
                "severity": severity, "subject": subject, "bytes": size, "shortened": shortened,
            }),
            Delivered::Duplicate {
                event_id,
                first_event_id,
                message_id,
            } => serde_json::json!({
                "status": "duplicate", "eventId": event_id, "firstEventId": first_event_id,
                "messageId": message_id,
            }),
            Delivered::Suppressed {
                event_id,
                severity,
                min_severity,
            } => serde_json::json!({
                "status": "suppressed", "eventId": event_id, "severity": severity,
                "minSeverity": min_severity,
            }),
        }
    }
}

/// Why an event was not delivered (the invocation fails; Lambda retries it).
#[derive(Debug, Error)]
pub enum DeliverError {
    #[error(
        "send-alert only handles events with source \"evalgate\", got {0:?}: check the EventBridge rule's pattern"
    )]
    NotEvalgate(String),
    #[error("the alert ledger is unusable: {0}")]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(
        "event {event_id} is being published by another invocation (claim {generation} until {until}); failing so that Lambda retries it"
    )]
    InProgress {
        event_id: String,
        generation: u32,
        until: DateTime<Utc>,
    },
}

/// The application's alert settings, and a note when they could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSettings {
    pub alerts: AlertsPolicy,
    pub note: Option<String>,
    pub policy_uri: Option<String>,
}

/// Reads `policies/<application>.yaml`; any problem falls back to the defaults with a note.
pub async fn load_settings<S: ObjectStore>(store: &S, application: Option<&str>) -> LoadedSettings {
    let defaults = |note: String, uri: Option<String>| LoadedSettings {
        alerts: AlertsPolicy::default(),
        note: Some(note),
        policy_uri: uri,
    };
    let Some(application) = application else {
        return defaults(
            "the event names no application, so the default alert settings apply.".into(),
            None,
        );
    };
    if !is_valid_application(application) {
        return defaults(
            format!(
                "{:?} is not a valid application name, so no policy was read and the default alert settings apply.",
                super::text::one_line(application, 80)
            ),
            None,
        );
    }
    let key = policy_key(application);
    let uri = s3_uri(store.bucket(), &key);
    let bytes = match store.get(&key).await {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => {
            return defaults(
                format!("there is no policy at {uri}, so the default alert settings apply."),
                Some(uri),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, %uri, "cannot read the policy; default alert settings apply");
            return defaults(
                format!(
                    "the policy {uri} could not be read ({e}), so the default alert settings apply."
                ),
                Some(uri),
            );
        }
    };
    let parsed = std::str::from_utf8(&bytes)
        .map_err(|_| "it is not UTF-8 text".to_owned())
        .and_then(|text| {
            Policy::parse(&uri, text).map_err(|e| {
                let first = e
                    .problems
                    .first()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                format!(
                    "{} problem(s), the first: {}",
                    e.problems.len(),
                    super::text::one_line(&first, 300)
                )
            })
        });
    match parsed {
        Ok(policy) => LoadedSettings {
            alerts: policy.alerts,
            note: None,
            policy_uri: Some(uri),
        },
        Err(why) => defaults(
            format!(
                "the policy {uri} is invalid ({why}), so the default alert settings apply. Fix it and upload it again."
            ),
            Some(uri),
        ),
    }
}

/// Handles one event end to end.
pub async fn deliver<S: ObjectStore, N: Notifier>(
    store: &S,
    notifier: &N,
    default_region: &str,
    event: &Incoming,
    timing: Timing,
) -> Result<Delivered, DeliverError> {
    if event.source != SOURCE {
        return Err(DeliverError::NotEvalgate(event.source.clone()));
    }
    // EventBridge always sets an id; a hand-made event without one gets a stable substitute
    // so that its re-deliveries are still recognised.
    let event_id = match event.id.as_deref().filter(|id| !id.trim().is_empty()) {
        Some(id) => id.to_owned(),
        None => format!(
            "noid-{}",
            &fingerprint(&[
                &event.detail_type,
                &event.time.map(|t| t.to_rfc3339()).unwrap_or_default(),
                &event.detail.to_string(),
            ])[..32]
        ),
    };
    let parsed = Event::parse(&event.detail_type, event.detail.clone());
    let problem = match &parsed {
        Ok(_) | Err(EventError::UnknownKind(_)) => None,
        Err(e @ EventError::Malformed { .. }) => Some(e.to_string()),
    };
    let body = match &parsed {
        Ok(known) => Body::Known(known),
        Err(_) => Body::Unreadable {
            detail: &event.detail,
            problem: problem.as_deref(),
        },
    };
    // Console links use the function's region (where the bucket and jobs are), else the
    // event's.
    let region = match (default_region, event.region.as_deref()) {
        ("", Some(region)) => region,
        (region, _) => region,
    };
    let source = Source {
        event_id: &event_id,
        detail_type: &event.detail_type,
        time: event.time,
        region,
        body,
    };

    let settings = load_settings(store, source.application()).await;
    let severity = severity(&source, &settings.alerts.severity);
    if severity < settings.alerts.min_severity {
        tracing::info!(
            event_id = %event_id, kind = %event.detail_type, %severity,
            min_severity = %settings.alerts.min_severity, "below the application's min_severity; not sent"
        );
        return Ok(Delivered::Suppressed {
            event_id,
            severity,
            min_severity: settings.alerts.min_severity,
        });
    }

    let dedup = Dedup::new(store);
    let fact = source
        .event_key()
        .map(|key| fact_fingerprint(&event.detail_type, key, &event.detail));
    if let Some(fact) = &fact
        && let Some(first) = dedup.fact_sent(fact, Utc::now()).await?
        && first.event_id != event_id
    {
        tracing::info!(event_id = %event_id, first_event_id = %first.event_id, "the same fact was alerted under another event id; not sent again");
        return Ok(Delivered::Duplicate {
            event_id,
            first_event_id: first.event_id,
            message_id: first.message_id,
        });
    }

    // Never wait into the last seconds of this invocation: fail in time for a clean retry.
    let room = (timing.deadline - Utc::now() - Duration::seconds(5))
        .to_std()
        .unwrap_or_default();
    let busy_wait = timing.busy_wait.min(room);
    let started = std::time::Instant::now();
    let claim = loop {
        let now = Utc::now();
        let expires_at =
            timing.deadline.max(now).min(now + Duration::minutes(16)) + Duration::seconds(30);
        match dedup
            .claim(&event_id, &event.detail_type, now, expires_at)
            .await?
        {
            ClaimOutcome::Acquired(claim) => break claim,
            ClaimOutcome::Sent(record) => {
                tracing::info!(event_id = %event_id, message_id = ?record.message_id, "already published; not sent again");
                return Ok(Delivered::Duplicate {
                    event_id,
                    first_event_id: record.event_id,
                    message_id: record.message_id,
                });
            }
            ClaimOutcome::Busy(other) => {
                if started.elapsed() + timing.poll > busy_wait {
                    return Err(DeliverError::InProgress {
                        event_id,
                        generation: other.generation,
                        until: other.expires_at,
                    });
                }
                tokio::time::sleep(timing.poll).await;
            }
        }
    };

    let alert = render(
        &source,
        &Settings {
            alerts: &settings.alerts,
            policy_note: settings.note.as_deref(),
            policy_uri: settings.policy_uri.as_deref(),
        },
    );
    let message_id = match notifier.publish(&alert).await {
        Ok(id) => id,
        Err(err) => {
            if let Err(release) = dedup.release(&claim, &err.to_string()).await {
                // The claim then simply expires after this invocation's deadline.
                tracing::warn!(event_id = %event_id, error = %release, "could not release the alert claim");
            }
            return Err(err.into());
        }
    };
    let record = AlertRecord {
        schema: SCHEMA,
        event_id: event_id.clone(),
        detail_type: event.detail_type.clone(),
        event_key: source.event_key().map(str::to_owned),
        message_id: Some(message_id.clone()),
        sent_at: Utc::now(),
    };
    if let Err(e) = dedup.record_sent(&record).await {
        tracing::error!(event_id = %event_id, error = %e, "published, but the alert record could not be written; a re-delivery may publish again");
    }
    if let Some(fact) = &fact
        && let Err(e) = dedup.record_fact(fact, &record).await
    {
        tracing::warn!(event_id = %event_id, error = %e, "could not record the alerted fact");
    }
    tracing::info!(
        event_id = %event_id, kind = %event.detail_type, %severity,
        application = ?alert.application, message_id = %message_id, bytes = alert.size,
        shortened = alert.shortened, "alert sent"
    );
    Ok(Delivered::Sent {
        event_id,
        message_id,
        severity,
        subject: alert.subject,
        size: alert.size,
        shortened: alert.shortened,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::tests::{every_kind, time};
    use crate::notify::RecordingNotifier;
    use crate::store::memory::MemoryStore;
    use crate::verdict::Outcome;

    const POLICY: &str = "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n";

    fn incoming(id: &str, event: &Event) -> Incoming {
        Incoming {
            id: Some(id.into()),
            source: "evalgate".into(),
            detail_type: event.detail_type().into(),
            time: Some(time()),
            region: Some("us-east-1".into()),
            detail: event.detail(),
        }
    }

    fn timing() -> Timing {
        Timing {
            deadline: Utc::now() + Duration::seconds(60),
            busy_wait: StdDuration::from_millis(50),
            poll: StdDuration::from_millis(10),
        }
    }

    fn verdict() -> Event {
        every_kind().remove(0)
    }

    async fn put_policy(store: &MemoryStore, text: &str) {
        store
            .put(
                "policies/support-bot.yaml",
                text.as_bytes().to_vec(),
                "text/yaml",
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn sends_once_and_records_it() {
        let (store, notifier) = (MemoryStore::new("b"), RecordingNotifier::default());
        let event = incoming("e-1", &verdict());
        let first = deliver(&store, &notifier, "eu-west-1", &event, timing())
            .await
            .unwrap();
        assert!(
            matches!(&first, Delivered::Sent { message_id, severity: Severity::High, .. } if message_id == "message-1"),
            "{first:?}"
        );
        let again = deliver(&store, &notifier, "eu-west-1", &event, timing())
            .await
            .unwrap();
        assert_eq!(
            again,
            Delivered::Duplicate {
                event_id: "e-1".into(),
                first_event_id: "e-1".into(),
                message_id: Some("message-1".into())
            }
        );
        assert_eq!(notifier.published().len(), 1);
        let record = Dedup::new(&store).sent("e-1").await.unwrap().unwrap();
        assert_eq!(record.event_key.as_deref(), Some("verdict/support-bot/v3"));
        // Console links use the function's region.
        assert!(
            notifier.published()[0]
                .text
                .contains("https://eu-west-1.console.aws.amazon.com/s3/")
        );
    }

    #[tokio::test]
    async fn a_failed_publish_fails_and_does_not_suppress_the_retry() {
        let (store, notifier) = (MemoryStore::new("b"), RecordingNotifier::default());
        let event = incoming("e-1", &verdict());
        notifier.fail(Some("Throttling: Rate exceeded"));
        let err = deliver(&store, &notifier, "us-east-1", &event, timing())
            .await
            .unwrap_err();
        assert!(matches!(err, DeliverError::Notify(_)), "{err}");
        assert!(err.to_string().contains("Rate exceeded"), "{err}");
        assert!(Dedup::new(&store).sent("e-1").await.unwrap().is_none());
        notifier.fail(None);
        let retry = deliver(&store, &notifier, "us-east-1", &event, timing())
            .await
            .unwrap();
        assert!(matches!(retry, Delivered::Sent { .. }), "{retry:?}");
        assert_eq!(notifier.published().len(), 1);
    }

    #[tokio::test]
    async fn a_concurrent_delivery_waits_then_fails_for_a_retry() {
        let (store, notifier) = (MemoryStore::new("b"), RecordingNotifier::default());
        let event = incoming("e-1", &verdict());
        // Another invocation holds a live claim.
        let ClaimOutcome::Acquired(_) = Dedup::new(&store)
            .claim(
                "e-1",
                "Gate Verdict",
                Utc::now(),
                Utc::now() + Duration::seconds(60),
            )
            .await
            .unwrap()
        else {
            panic!()
        };
        let err = deliver(&store, &notifier, "us-east-1", &event, timing())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliverError::InProgress { generation: 1, .. }),
            "{err}"
        );
        assert!(notifier.published().is_empty());
    }

    #[tokio::test]
    async fn below_min_severity_nothing_is_sent_or_recorded() {
        let (store, notifier) = (MemoryStore::new("b"), RecordingNotifier::default());
        put_policy(
            &store,
            &format!("{POLICY}alerts:\n  min_severity: critical\n"),
        )
        .await;
        let event = incoming("e-1", &verdict());
        let out = deliver(&store, &notifier, "us-east-1", &event, timing())
            .await
            .unwrap();
        assert_eq!(
            out,
            Delivered::Suppressed {
                event_id: "e-1".into(),
                severity: Severity::High,
                min_severity: Severity::Critical
            }
        );
        assert!(notifier.published().is_empty());
        assert!(
            store.keys().iter().all(|k| !k.starts_with("ledger/")),
            "{:?}",
            store.keys()
        );
    }

    #[tokio::test]
    async fn an_invalid_policy_falls_back_to_defaults_and_says_so() {
        let (store, notifier) = (MemoryStore::new("b"), RecordingNotifier::default());
        put_policy(
            &store,
            &format!("{POLICY}alerts:\n  min_severity: critical\n  loud: yes\n"),
        )
        .await;
        let rejected = every_kind().remove(1);
        let out = deliver(
            &store,
            &notifier,
            "us-east-1",
            &incoming("e-1", &rejected),
            timing(),
        )
        .await
        .unwrap();
        assert!(
            matches!(
                out,
                Delivered::Sent {
                    severity: Severity::Warning,
                    ..
                }
            ),
            "{out:?}"
        );
        let text = &notifier.published()[0].text;
        assert!(text.contains("Note: the policy s3://b/policies/support-bot.yaml is invalid (1 problem(s), the first: line 7"), "{text}");
        assert!(text.contains("loud"), "{text}");
        assert!(
            text.contains("so the default alert settings apply"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_missing_policy_is_noted_and_a_valid_one_is_honoured() {
        let (store, notifier) = (MemoryStore::new("b"), RecordingNotifier::default());
        deliver(
            &store,
            &notifier,
            "us-east-1",
            &incoming("e-1", &verdict()),
            timing(),
        )
        .await
        .unwrap();
        assert!(
            notifier.published()[0]
                .text
                .contains("Note: there is no policy at s3://b/policies/support-bot.yaml")
        );
        put_policy(
            &store,
            &format!("{POLICY}alerts:\n  severity:\n    gate_fail: critical\n"),
        )
        .await;
        let Event::GateVerdict(mut regated) = verdict() else {
            panic!()
        };
        regated.reasons.push("re-gated with the new policy".into());
        let regated = Event::GateVerdict(regated);
        assert_sent(
            deliver(
                &store,
                &notifier,
                "us-east-1",
                &incoming("e-2", &regated),
                timing(),
            )
            .await,
        );
        let second = &notifier.published()[1];
        assert_eq!(second.severity, Severity::Critical);
        assert!(!second.text.contains("Note:"), "{}", second.text);
    }

    fn assert_sent(result: Result<Delivered, DeliverError>) {
        assert!(matches!(result, Ok(Delivered::Sent { .. })), "{result:?}");
    }

    #[tokio::test]
    async fn the_same_fact_under_a_new_event_id_is_not_sent_twice() {
        let (store, notifier) = (MemoryStore::new("b"), RecordingNotifier::default());
        let event = verdict();
        assert_sent(
            deliver(
                &store,
                &notifier,
                "us-east-1",
                &incoming("e-1", &event),
                timing(),
            )
            .await,
        );
        let again = deliver(
            &store,
            &notifier,
            "us-east-1",
            &incoming("e-2", &event),
            timing(),
        )
        .await
        .unwrap();
        assert!(
            matches!(&again, Delivered::Duplicate { first_event_id, .. } if first_event_id == "e-1"),
            "{again:?}"
        );
        // A different fact under the same key (the verdict changed) is news.
        let Event::GateVerdict(mut changed) = event else {
            panic!()
        };
        changed.outcome = Outcome::Pass;
        assert_sent(
            deliver(
                &store,
                &notifier,
                "us-east-1",
                &incoming("e-3", &Event::GateVerdict(changed)),
                timing(),
            )
            .await,
        );
        assert_eq!(notifier.published().len(), 2);
    }

    #[tokio::test]
    async fn events_without_an_id_are_still_deduplicated() {
        let (store, notifier) = (MemoryStore::new("b"), RecordingNotifier::default());
        let mut event = incoming("x", &every_kind().remove(5));
        event.id = None;
        let first = deliver(&store, &notifier, "us-east-1", &event, timing())
            .await
            .unwrap();
        let Delivered::Sent { event_id, .. } = first else {
            panic!("{first:?}")
        };
        assert!(event_id.starts_with("noid-"), "{event_id}");
        let again = deliver(&store, &notifier, "us-east-1", &event, timing())
            .await
            .unwrap();
        assert!(matches!(again, Delivered::Duplicate { .. }), "{again:?}");
    }

    #[tokio::test]
    async fn other_sources_are_refused() {
        let (store, notifier) = (MemoryStore::new("b"), RecordingNotifier::default());
        let mut event = incoming("e-1", &verdict());
        event.source = "aws.s3".into();
        let err = deliver(&store, &notifier, "us-east-1", &event, timing())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("\"aws.s3\""), "{err}");
    }
}
