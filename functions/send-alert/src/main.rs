//! `send-alert`: turns evalgate's own EventBridge events into SNS alerts.
//!
//! Foundation stage (issue #2): this binary only validates that the event is an evalgate
//! EventBridge event, logs its kind and acknowledges it. It publishes nothing yet; the
//! alerting behaviour arrives with issue #7.

mod handler;

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    evalgate::telemetry::init_json();
    run(service_fn(handler::handle)).await
}
