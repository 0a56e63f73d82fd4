//! `send-alert`: turns evalgate's own EventBridge events into SNS alerts.
//!
//! Triggered by an EventBridge rule on source `evalgate`; publishes one alert per event to
//! `EVALGATE_TOPIC_ARN` (severity, subject, text and JSON variants, filterable attributes),
//! de-duplicated by event id in the ledger of `EVALGATE_BUCKET`. The logic lives in
//! `evalgate::alert`; this binary reads its configuration and builds its clients once.

mod handler;

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    evalgate::telemetry::init_json();
    let deps = handler::Deps::from_env().await?;
    run(service_fn(|event| handler::handle(&deps, event))).await
}
