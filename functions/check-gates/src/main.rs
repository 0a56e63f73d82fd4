//! `check-gates`: finds finished Bedrock evaluation jobs and records gate verdicts.
//!
//! Foundation stage (issue #2): this binary only logs the shape of the event it receives
//! and acknowledges it. It does no work yet; the behaviour arrives with issue #5.

mod handler;

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    evalgate::telemetry::init_json();
    run(service_fn(handler::handle)).await
}
