//! Where alerts go: the small [`Notifier`] trait and its Amazon SNS adapter.

use std::future::Future;

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
use thiserror::Error;

use crate::alert::Alert;

/// Publishing an alert failed. Every such failure fails the invocation, so Lambda retries it
/// (and, once retries are exhausted, hands the event to the dead-letter destination).
#[derive(Debug, Error)]
#[error("publishing the {kind:?} alert to {topic_arn} failed: {message}")]
pub struct NotifyError {
    pub kind: String,
    pub topic_arn: String,
    /// What SNS said, and what to check.
    pub message: String,
}

/// Where alerts are published.
pub trait Notifier: Send + Sync {
    /// Publishes an alert; returns the message id.
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<String, NotifyError>> + Send;
}

/// [`Notifier`] on an SNS topic, with `MessageStructure=json`.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsNotifier {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

/// A hint for the errors an operator can fix.
fn hint(code: &str) -> &'static str {
    match code {
        "NotFound" => {
            " Check EVALGATE_TOPIC_ARN: the topic does not exist in this account and region."
        }
        "AuthorizationError" => {
            " Check the function's IAM policy (sns:Publish on the topic) and the topic's access policy."
        }
        c if c.starts_with("KMS") => {
            " The topic is encrypted: the function needs kms:GenerateDataKey and kms:Decrypt on its key, and the key policy must allow it."
        }
        _ => "",
    }
}

impl Notifier for SnsNotifier {
    async fn publish(&self, alert: &Alert) -> Result<String, NotifyError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&alert.subject)
            .message_structure("json")
            .message(&alert.message);
        for attribute in &alert.attributes {
            let value = MessageAttributeValue::builder()
                .data_type(attribute.data_type)
                .string_value(&attribute.value)
                .build()
                .map_err(|e| NotifyError {
                    kind: alert.kind.clone(),
                    topic_arn: self.topic_arn.clone(),
                    message: e.to_string(),
                })?;
            request = request.message_attributes(attribute.name, value);
        }
        let out = request.send().await.map_err(|err| {
            let code = err.code().unwrap_or_default().to_owned();
            let message = match (&err, err.message()) {
                (SdkError::ServiceError(_), Some(m)) => format!("{code}: {m}.{}", hint(&code)),
                _ => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
            };
            NotifyError {
                kind: alert.kind.clone(),
                topic_arn: self.topic_arn.clone(),
                message,
            }
        })?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

/// A [`Notifier`] that keeps alerts in memory (and can be told to fail), for unit tests.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    pub alerts: std::sync::Mutex<Vec<Alert>>,
    /// While set, every publish fails with this message.
    pub fail_with: std::sync::Mutex<Option<String>>,
}

#[cfg(any(test, feature = "test-util"))]
impl RecordingNotifier {
    pub fn published(&self) -> Vec<Alert> {
        self.alerts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn fail(&self, message: Option<&str>) {
        *self.fail_with.lock().unwrap_or_else(|e| e.into_inner()) = message.map(str::to_owned);
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Notifier for RecordingNotifier {
    async fn publish(&self, alert: &Alert) -> Result<String, NotifyError> {
        if let Some(message) = self
            .fail_with
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(NotifyError {
                kind: alert.kind.clone(),
                topic_arn: "arn:aws:sns:us-east-1:123456789012:recording".into(),
                message,
            });
        }
        let mut alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        alerts.push(alert.clone());
        Ok(format!("message-{}", alerts.len()))
    }
}
