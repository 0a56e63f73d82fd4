//! evalgate's EventBridge events as a test (or the demo) sees them: a custom bus on moto with a
//! rule for `source: evalgate` whose target is an SQS queue (moto delivers the EventBridge
//! envelope as the message body), and a bounded way to read a queue dry.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use thiserror::Error;

use crate::names::unique;
use crate::stack::Moto;

/// A call to the stand-ins failed, or a queue held something other than JSON.
#[derive(Debug, Error)]
pub enum TapError {
    #[error("AWS stand-in call failed: {0}")]
    Aws(String),
    #[error("a message on {queue} is not JSON: {error}")]
    NotJson { queue: String, error: String },
}

fn aws<E: std::fmt::Display>(e: E) -> TapError {
    TapError::Aws(e.to_string())
}

/// A bus whose every evalgate event lands on a queue.
pub struct EventTap {
    /// The bus to give functions as `EVALGATE_EVENT_BUS`.
    pub bus: String,
    pub queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl EventTap {
    /// Creates a bus, a queue and the rule between them, named uniquely after `prefix`.
    pub async fn create(moto: &Moto, prefix: &str) -> Result<EventTap, TapError> {
        let eventbridge = aws_sdk_eventbridge::Client::new(&moto.sdk_config());
        let sqs = moto.sqs();
        let bus = unique(&format!("{prefix}-bus"));
        eventbridge
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .map_err(aws)?;
        let queue_url = sqs
            .create_queue()
            .queue_name(unique(&format!("{prefix}-events")))
            .send()
            .await
            .map_err(aws)?
            .queue_url
            .ok_or_else(|| TapError::Aws("CreateQueue returned no URL".into()))?;
        let rule = unique(&format!("{prefix}-rule"));
        eventbridge
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(json!({"source": ["evalgate"]}).to_string())
            .send()
            .await
            .map_err(aws)?;
        eventbridge
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn(&sqs, &queue_url).await?)
                    .build()
                    .map_err(aws)?,
            )
            .send()
            .await
            .map_err(aws)?;
        Ok(EventTap {
            bus,
            queue_url,
            sqs,
        })
    }

    /// The EventBridge envelopes received (and removed from the queue): see [`receive_json`].
    pub async fn receive(&self, at_least: usize, within: Duration) -> Result<Vec<Value>, TapError> {
        receive_json(&self.sqs, &self.queue_url, at_least, within).await
    }

    /// Like [`Self::receive`], as `(detail-type, detail)` pairs.
    pub async fn receive_details(
        &self,
        at_least: usize,
        within: Duration,
    ) -> Result<Vec<(String, Value)>, TapError> {
        Ok(self
            .receive(at_least, within)
            .await?
            .into_iter()
            .map(|mut event| {
                let kind = event["detail-type"].as_str().unwrap_or_default().to_owned();
                (kind, event["detail"].take())
            })
            .collect())
    }
}

/// Reads a queue's messages as JSON, deleting each: waits until at least `at_least` arrived
/// (at most `within`), then until the queue stays empty for a second, so callers can assert
/// exact counts.
pub async fn receive_json(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    at_least: usize,
    within: Duration,
) -> Result<Vec<Value>, TapError> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(aws)?;
        let messages = received.messages();
        for message in messages {
            let body = message.body().unwrap_or_default();
            out.push(serde_json::from_str(body).map_err(|e| TapError::NotJson {
                queue: queue_url.to_owned(),
                error: e.to_string(),
            })?);
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(aws)?;
            }
        }
        if (out.len() >= at_least && messages.is_empty()) || Instant::now() > deadline {
            return Ok(out);
        }
    }
}

/// A queue's ARN (what EventBridge targets and SNS subscriptions name).
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, TapError> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws)?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| TapError::Aws(format!("queue {url} has no ARN")))
}
