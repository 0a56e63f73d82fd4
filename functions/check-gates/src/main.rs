//! `check-gates`: finds finished Bedrock evaluation jobs, decides each release's gate and
//! records the verdict.
//!
//! Bedrock emits no completion event for evaluation jobs, so this runs on an EventBridge
//! schedule; S3 `ObjectCreated` on `*_output.jsonl` results (classic notification or
//! EventBridge `Object Created`) triggers it early for the release concerned. The logic is
//! `evalgate::gating`; this binary builds the clients once and hands events to it.

mod handler;

use evalgate::bedrock::BedrockEvaluationJobs;
use evalgate::config::{self, env_lookup};
use evalgate::events::EventBridgePublisher;
use evalgate::release::PointerClients;
use evalgate::store::s3::S3Store;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    evalgate::telemetry::init_json();
    let bucket = config::required(
        &env_lookup,
        config::BUCKET,
        "the evaluation bucket holding the ledger, results and verdicts",
    )?;
    let bus = config::optional(&env_lookup, config::EVENT_BUS)
        .unwrap_or_else(|| config::DEFAULT_EVENT_BUS.to_owned());
    let sdk = evalgate::aws::load_config().await;
    let clients = handler::Clients {
        store: S3Store::new(evalgate::aws::s3_client(&sdk), bucket),
        jobs: BedrockEvaluationJobs::new(aws_sdk_bedrock::Client::new(&sdk)),
        events: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), bus),
        pointers: PointerClients::new(&sdk),
    };
    let clients = &clients;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handler::handle(clients, event).await
        },
    ))
    .await
}
