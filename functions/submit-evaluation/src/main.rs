//! `submit-evaluation`: starts Bedrock evaluation jobs for datasets uploaded to S3.
//!
//! Foundation stage (issue #2): this binary only logs the shape of the event it receives
//! and acknowledges it. It does no work yet; the behaviour arrives with issue #4.

mod handler;

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    evalgate::telemetry::init_json();
    run(service_fn(handler::handle)).await
}
