//! `submit-evaluation`: turns datasets uploaded to S3 into Bedrock LLM-as-a-judge jobs.
//!
//! Triggers: S3 `ObjectCreated` on `datasets/` (classic notification or the EventBridge
//! `Object Created` event), and an EventBridge schedule that submits shards deferred for
//! Bedrock's concurrent-job quota. The logic lives in `evalgate::submission`; this binary
//! reads its configuration, builds the AWS clients once and hands events to the handler.

mod handler;

use evalgate::bedrock::BedrockEvaluationJobs;
use evalgate::config::{self, ConfigError};
use evalgate::events::EventBridgePublisher;
use evalgate::store::s3::S3Store;
use evalgate::submission::{Settings, is_valid_role_arn};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    evalgate::telemetry::init_json();
    let env = config::env_lookup;
    let bucket = config::required(&env, config::BUCKET, "the evaluation bucket")?;
    let role_arn = config::required(
        &env,
        config::BEDROCK_ROLE_ARN,
        "the IAM role Bedrock assumes to run evaluation jobs",
    )?;
    if !is_valid_role_arn(&role_arn) {
        return Err(ConfigError::Invalid {
            name: config::BEDROCK_ROLE_ARN,
            value: role_arn,
            hint: "expected an IAM role ARN, arn:aws:iam::<account>:role/<name>",
        }
        .into());
    }
    let bus = config::optional(&env, config::EVENT_BUS)
        .unwrap_or_else(|| config::DEFAULT_EVENT_BUS.to_owned());

    let sdk = evalgate::aws::load_config().await;
    let app = handler::App {
        store: S3Store::new(evalgate::aws::s3_client(&sdk), bucket.clone()),
        jobs: BedrockEvaluationJobs::new(aws_sdk_bedrock::Client::new(&sdk)),
        events: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), bus),
        settings: Settings { bucket, role_arn },
    };
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler::handle(app, event).await
    }))
    .await
}
