//! The S3 stand-in bedrock-local reads datasets from and writes results to.

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::{
    Builder,
    tls::{Provider, rustls_provider::CryptoMode},
};

/// Datasets larger than this are rejected rather than read into memory.
pub const MAX_DATASET_BYTES: usize = 200 * 1024 * 1024;

/// An S3 operation that failed, with the service's error code when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct S3Error {
    /// e.g. `NoSuchKey`, `NoSuchBucket`, `AccessDenied`.
    pub code: Option<String>,
    pub message: String,
}

impl S3Error {
    /// True for a missing bucket or object.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("NoSuchKey" | "NoSuchBucket" | "NotFound")
        )
    }
}

fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: SdkError<E, R>,
) -> S3Error {
    let code = err.code().map(str::to_owned);
    let message = match (&code, err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.clone(),
        _ => {
            // Connection errors and the like: the full chain says what happened.
            let mut text = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    };
    S3Error { code, message }
}

/// A thin S3 client.
#[derive(Debug, Clone)]
pub struct S3 {
    client: aws_sdk_s3::Client,
}

impl S3 {
    /// A client for `endpoint` (path-style) or, without one, AWS's S3 in `region`.
    /// Credentials: the standard environment variables when set, else dummy ones (stand-ins
    /// accept anything).
    pub fn new(endpoint: Option<&str>, region: &str) -> Self {
        let credentials = match (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => Credentials::new(
                id,
                secret,
                std::env::var("AWS_SESSION_TOKEN").ok(),
                None,
                "environment",
            ),
            _ => Credentials::new(
                "bedrock-local",
                "bedrock-local",
                None,
                None,
                "bedrock-local",
            ),
        };
        let http = match endpoint {
            Some(url) if url.starts_with("http://") => Builder::new().build_http(),
            _ => Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        };
        let mut builder = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(credentials)
            .http_client(http)
            .force_path_style(true);
        if let Some(url) = endpoint {
            builder = builder.endpoint_url(url);
        }
        S3 {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
        }
    }

    /// The object's bytes.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, S3Error> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(describe)?;
        if out
            .content_length()
            .is_some_and(|n| usize::try_from(n).is_ok_and(|n| n > MAX_DATASET_BYTES))
        {
            return Err(S3Error {
                code: Some("EntityTooLarge".into()),
                message: format!(
                    "the object is larger than bedrock-local's limit of {MAX_DATASET_BYTES} bytes"
                ),
            });
        }
        let bytes = out.body.collect().await.map_err(|e| S3Error {
            code: None,
            message: format!("reading the object failed: {e}"),
        })?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// Writes an object.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), S3Error> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(describe)?;
        Ok(())
    }
}
