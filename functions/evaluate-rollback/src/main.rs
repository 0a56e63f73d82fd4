//! `evaluate-rollback`: rolls an application back to its last release that passed its gate
//! when one of its production alarms fires.
//!
//! Triggered by EventBridge `CloudWatch Alarm State Change` events (source
//! `aws.cloudwatch`). The logic lives in `evalgate::rollback`; this binary wires clients
//! from the environment (`EVALGATE_BUCKET`, `EVALGATE_EVENT_BUS`) and maps errors.
//! The function's timeout must exceed `evalgate::rollback::Options::lease` (30 s).

mod handler;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    evalgate::telemetry::init_json();
    let deps = handler::Deps::from_env(&evalgate::config::env_lookup).await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handler::handle(deps, event).await
    }))
    .await
}
