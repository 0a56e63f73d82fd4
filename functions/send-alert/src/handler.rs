use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};

/// Acknowledges an evalgate event; rejects events from any other source.
pub async fn handle(event: LambdaEvent<EventBridgeEvent<Value>>) -> Result<Value, Error> {
    let (event, _ctx) = event.into_parts();
    if event.source != "evalgate" {
        return Err(format!(
            "send-alert only handles events with source \"evalgate\", got {:?}: check the EventBridge rule's pattern",
            event.source
        )
        .into());
    }
    tracing::info!(detail_type = %event.detail_type, id = ?event.id, "acknowledged event");
    Ok(json!({ "acknowledged": true, "detailType": event.detail_type }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    fn event(source: &str) -> LambdaEvent<EventBridgeEvent<Value>> {
        let raw = json!({
            "version": "0", "id": "1", "detail-type": "Gate Verdict", "source": source,
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
            "resources": [], "detail": {}
        });
        LambdaEvent::new(serde_json::from_value(raw).unwrap(), Context::default())
    }

    #[tokio::test]
    async fn acknowledges_evalgate_events() {
        let out = handle(event("evalgate")).await.unwrap();
        assert_eq!(out["detailType"], "Gate Verdict");
    }

    #[tokio::test]
    async fn rejects_other_sources() {
        let err = handle(event("aws.s3")).await.unwrap_err();
        assert!(err.to_string().contains("aws.s3"));
    }
}
