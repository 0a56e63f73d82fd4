use chrono::Utc;
use evalgate::config::{self, ConfigError};
use evalgate::events::EventBridgePublisher;
use evalgate::ledger::Ledger;
use evalgate::release::{Pointer, PointerClients};
use evalgate::rollback::alarm::AlarmChange;
use evalgate::rollback::routing::PolicyIndex;
use evalgate::rollback::{self, Context, Options, RollbackOutcome};
use evalgate::store::s3::S3Store;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};

/// Clients and caches built once per sandbox.
pub struct Deps {
    pub store: S3Store,
    pub pointers: PointerClients,
    pub publisher: EventBridgePublisher,
    pub policies: PolicyIndex,
    pub options: Options,
}

impl Deps {
    pub async fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Deps, ConfigError> {
        let bucket = config::required(
            lookup,
            config::BUCKET,
            "the evaluation bucket (policies, verdicts, ledger)",
        )?;
        let bus = config::optional(lookup, config::EVENT_BUS)
            .unwrap_or_else(|| config::DEFAULT_EVENT_BUS.to_owned());
        let sdk = evalgate::aws::load_config().await;
        Ok(Deps {
            store: S3Store::new(evalgate::aws::s3_client(&sdk), bucket),
            pointers: PointerClients::new(&sdk),
            publisher: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), bus),
            policies: PolicyIndex::new(),
            options: Options::default(),
        })
    }
}

/// Handles one alarm state change for every application whose `rollback.alarms` name the
/// alarm. Fails (so EventBridge/Lambda retry) only when an application's rollback could not
/// be carried out; retries are safe, the ledger makes every decision happen once.
pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, _ctx) = event.into_parts();
    let alarm = AlarmChange::from_event(&payload)?;
    let routing = deps.policies.route(&deps.store, &alarm.name).await?;
    for (application, error) in &routing.invalid {
        tracing::error!(application, %error, "policy is invalid: this application's alarms cannot be recognised until it is fixed");
    }
    if routing.matched.is_empty() {
        tracing::debug!(alarm = %alarm.name, event_id = %alarm.event_id, "alarm belongs to no application's rollback.alarms; ignored");
        return Ok(json!({
            "alarm": alarm.name,
            "eventId": alarm.event_id,
            "results": [],
        }));
    }

    let mut results: Vec<RollbackOutcome> = Vec::new();
    let mut failures = Vec::new();
    for (application, policy) in &routing.matched {
        // `route` only returns policies with a rollback section; validation guarantees a
        // release pointer with it.
        let (Some(release), Some(rollback_policy)) = (&policy.release, &policy.rollback) else {
            continue;
        };
        let rules = rollback_policy.rules();
        let pointer = Pointer::new(&release.pointer_spec(), &deps.pointers);
        let now = Utc::now;
        let ctx = Context {
            application,
            rules: &rules,
            ledger: Ledger::new(&deps.store),
            pointer: &pointer,
            publisher: &deps.publisher,
            options: deps.options,
            now: &now,
        };
        match rollback::evaluate(&ctx, &alarm).await {
            Ok(outcome) => results.push(outcome),
            Err(error) => {
                tracing::error!(application, alarm = %alarm.name, event_id = %alarm.event_id, %error, "rollback evaluation failed; the event will be retried");
                failures.push(format!("{application}: {error}"));
            }
        }
    }
    if !failures.is_empty() {
        return Err(format!(
            "alarm {} (event {}): {}",
            alarm.name,
            alarm.event_id,
            failures.join("; ")
        )
        .into());
    }
    Ok(json!({
        "alarm": alarm.name,
        "eventId": alarm.event_id,
        "results": results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[tokio::test]
    async fn missing_bucket_is_a_named_init_error() {
        let env: HashMap<&str, &str> = HashMap::new();
        let lookup = |k: &str| env.get(k).map(|v| (*v).to_owned());
        let err = Deps::from_env(&lookup).await.err().unwrap();
        assert!(err.to_string().contains("EVALGATE_BUCKET"), "{err}");
    }
}
