use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Duration, Utc};
use evalgate::alert::deliver::{Incoming, Timing, deliver};
use evalgate::config::{self, ConfigError};
use evalgate::notify::{Notifier, SnsNotifier};
use evalgate::store::ObjectStore;
use evalgate::store::s3::S3Store;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// What every invocation borrows: built once per cold start.
pub struct Deps<S = S3Store, N = SnsNotifier> {
    pub store: S,
    pub notifier: N,
    /// The function's region, for console links.
    pub region: String,
}

impl Deps {
    /// Reads the configuration and builds the clients; a missing or malformed variable fails
    /// the cold start with its name.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let lookup = config::env_lookup;
        let topic_arn = config::required(
            &lookup,
            config::TOPIC_ARN,
            "the ARN of the SNS topic alerts are published to",
        )?;
        check_topic_arn(&topic_arn)?;
        let bucket = config::required(
            &lookup,
            config::BUCKET,
            "the evaluation bucket (policies and the alert ledger)",
        )?;
        let region = config::optional(&lookup, "AWS_REGION").unwrap_or_default();
        let sdk = evalgate::aws::load_config().await;
        Ok(Deps {
            store: S3Store::new(evalgate::aws::s3_client(&sdk), bucket),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), topic_arn),
            region,
        })
    }
}

/// `arn:<partition>:sns:<region>:<account>:<name>`
fn check_topic_arn(arn: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            name: config::TOPIC_ARN,
            value: arn.to_owned(),
            hint: "expected an SNS topic ARN, arn:aws:sns:<region>:<account>:<topic>",
        })
    }
}

/// Publishes the alert for one evalgate event. Errors fail the invocation so that Lambda
/// retries it (and finally sends it to the function's dead-letter destination).
pub async fn handle<S: ObjectStore, N: Notifier>(
    deps: &Deps<S, N>,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<Value, Error> {
    let (event, ctx) = event.into_parts();
    let deadline = i64::try_from(ctx.deadline)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .filter(|d| *d > Utc::now())
        .unwrap_or_else(|| Utc::now() + Duration::seconds(60));
    let incoming = Incoming {
        id: event.id,
        source: event.source,
        detail_type: event.detail_type,
        time: event.time,
        region: event.region,
        detail: event.detail,
    };
    match deliver(
        &deps.store,
        &deps.notifier,
        &deps.region,
        &incoming,
        Timing::until(deadline),
    )
    .await
    {
        Ok(delivered) => Ok(delivered.to_json()),
        Err(e) => {
            tracing::error!(
                event_id = ?incoming.id, kind = %incoming.detail_type, error = %e,
                "alert not delivered; failing the invocation so that it is retried"
            );
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evalgate::notify::RecordingNotifier;
    use evalgate::store::memory::MemoryStore;
    use lambda_runtime::Context;
    use serde_json::json;

    fn deps() -> Deps<MemoryStore, RecordingNotifier> {
        Deps {
            store: MemoryStore::new("b"),
            notifier: RecordingNotifier::default(),
            region: "us-east-1".into(),
        }
    }

    fn event(source: &str, detail_type: &str) -> LambdaEvent<EventBridgeEvent<Value>> {
        let raw = json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": detail_type,
            "source": source, "account": "123456789012", "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1", "resources": [], "detail": {"application": "demo", "eventKey": "k/1"}
        });
        LambdaEvent::new(serde_json::from_value(raw).unwrap(), Context::default())
    }

    #[tokio::test]
    async fn alerts_on_evalgate_events_even_unknown_ones() {
        let deps = deps();
        let out = handle(&deps, event("evalgate", "Something New"))
            .await
            .unwrap();
        assert_eq!(out["status"], "sent");
        assert_eq!(out["severity"], "warning");
        let published = deps.notifier.published();
        assert_eq!(published.len(), 1);
        assert_eq!(
            published[0].subject,
            "[WARNING] evalgate demo: Something New"
        );
        let again = handle(&deps, event("evalgate", "Something New"))
            .await
            .unwrap();
        assert_eq!(again["status"], "duplicate");
    }

    #[tokio::test]
    async fn rejects_other_sources() {
        let err = handle(&deps(), event("aws.s3", "Object Created"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("aws.s3"));
    }

    #[tokio::test]
    async fn a_publish_failure_fails_the_invocation() {
        let deps = deps();
        deps.notifier.fail(Some("AuthorizationError: not allowed"));
        let err = handle(&deps, event("evalgate", "Gate Verdict"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("AuthorizationError"), "{err}");
    }

    #[test]
    fn topic_arns_are_checked_at_cold_start() {
        assert!(check_topic_arn("arn:aws:sns:us-east-1:123456789012:evalgate-alerts").is_ok());
        let err = check_topic_arn("evalgate-alerts").unwrap_err();
        assert!(err.to_string().contains("EVALGATE_TOPIC_ARN"), "{err}");
    }
}
