use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};

/// Logs which kind of event arrived (never its content) and acknowledges it.
pub async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (event, _ctx) = event.into_parts();
    let kind = event
        .get("detail-type")
        .and_then(Value::as_str)
        .or_else(|| event.get("Records").map(|_| "S3 notification"))
        .unwrap_or("unknown");
    tracing::info!(kind, "acknowledged event; no work is done at this stage");
    Ok(json!({ "acknowledged": true, "kind": kind }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    #[tokio::test]
    async fn reports_the_event_kind() {
        let out = handle(LambdaEvent::new(
            json!({"detail-type": "Scheduled Event"}),
            Context::default(),
        ))
        .await
        .unwrap();
        assert_eq!(out["kind"], "Scheduled Event");
        let out = handle(LambdaEvent::new(json!({"Records": []}), Context::default()))
            .await
            .unwrap();
        assert_eq!(out["kind"], "S3 notification");
    }
}
