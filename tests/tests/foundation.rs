//! The foundation: the real SDK against moto over HTTP, and the Lambda Runtime API harness
//! running a real function binary.

use evalgate_tests::names::unique;
use evalgate_tests::runtime::{FunctionProcess, InvokeError};
use evalgate_tests::stack::moto;
use serde_json::json;

#[tokio::test]
async fn s3_put_and_get_through_the_sdk() {
    let s3 = moto().s3();
    let bucket = unique("foundation");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("datasets/app/v1/data set.jsonl")
        .body(b"{\"prompt\":\"hi\"}\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("datasets/app/v1/data set.jsonl")
        .send()
        .await
        .unwrap();
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"{\"prompt\":\"hi\"}\n");
}

#[tokio::test]
async fn sns_publish_reaches_an_sqs_subscription() {
    let (sns, sqs) = (moto().sns(), moto().sqs());
    let topic = sns
        .create_topic()
        .name(unique("topic"))
        .send()
        .await
        .unwrap();
    let topic_arn = topic.topic_arn().unwrap();
    let queue = sqs
        .create_queue()
        .queue_name(unique("queue"))
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attrs
        .attributes()
        .unwrap()
        .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .unwrap();
    sns.subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    sns.publish()
        .topic_arn(topic_arn)
        .subject("evalgate foundation")
        .message("hello from the foundation test")
        .send()
        .await
        .unwrap();
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let bodies: Vec<_> = received
        .messages()
        .iter()
        .filter_map(|m| m.body())
        .collect();
    assert_eq!(bodies, vec!["hello from the foundation test"]);
}

fn evalgate_event(source: &str) -> serde_json::Value {
    json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Gate Verdict", "source": source, "account": "123456789012",
        "time": "2026-11-22T12:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"application": "demo"}
    })
}

/// send-alert's environment: moto, plus the topic and bucket it needs (it refuses to start
/// without them).
async fn send_alert_env() -> Vec<(String, String)> {
    let bucket = unique("foundation");
    moto()
        .s3()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let topic = moto()
        .sns()
        .create_topic()
        .name(unique("foundation"))
        .send()
        .await
        .unwrap();
    let mut env = moto().function_env();
    env.push(("EVALGATE_BUCKET".into(), bucket));
    env.push((
        "EVALGATE_TOPIC_ARN".into(),
        topic.topic_arn().unwrap().to_owned(),
    ));
    env
}

#[tokio::test]
async fn harness_runs_a_function_binary_and_collects_its_response() {
    let function = FunctionProcess::start_named("send-alert", &send_alert_env().await)
        .await
        .unwrap();
    let init = function.init_duration().await.unwrap();
    assert!(init.as_nanos() > 0);
    let out = function.invoke(&evalgate_event("evalgate")).await.unwrap();
    assert_eq!(out["status"], "sent", "{out}");
    assert_eq!(out["eventId"], "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    // The same process serves the next invocation (a warm start).
    let again = function.invoke(&evalgate_event("evalgate")).await.unwrap();
    assert_eq!(again["status"], "duplicate", "{again}");
    // Function logs are JSON lines.
    let logs = function.logs();
    let line = logs
        .iter()
        .find(|l| l.contains("alert sent"))
        .expect("log line");
    let parsed: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(parsed["level"], "INFO");
}

#[tokio::test]
async fn harness_reports_a_handler_error_posted_to_error() {
    let function = FunctionProcess::start_named("send-alert", &send_alert_env().await)
        .await
        .unwrap();
    let err = function
        .invoke(&evalgate_event("aws.s3"))
        .await
        .unwrap_err();
    let posted = err.function_error().expect("an error posted to /error");
    assert!(posted.error_message.contains("\"aws.s3\""), "{posted:?}");
    // A payload that is not an EventBridge event fails deserialisation, also on /error.
    let err = function
        .invoke(&json!({"not": "an event"}))
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::Function(_)), "{err}");
    // And the function keeps serving afterwards.
    assert!(function.invoke(&evalgate_event("evalgate")).await.is_ok());
}

#[tokio::test]
async fn missing_binary_is_a_clear_error() {
    let err = FunctionProcess::start_named("no-such-function", &[])
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("cargo build --workspace --bins"),
        "{err}"
    );
}
