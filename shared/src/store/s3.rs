//! [`ObjectStore`] on Amazon S3 (or any S3-compatible endpoint).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use tokio::io::BufReader;

use super::{ByteReader, ObjectInfo, ObjectStore, PutOutcome, StoreError};

/// One bucket on S3.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
        }
    }

    /// The underlying client (for the rare call the trait does not cover).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    fn error<E>(
        &self,
        operation: &'static str,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = status_of(&err);
        let code = err.code().unwrap_or_default().to_owned();
        let message = match err.message() {
            Some(m) => format!("{code}: {m}"),
            None if !code.is_empty() => code.clone(),
            None => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        };
        match (status, code.as_str()) {
            (Some(404), _) | (_, "NoSuchKey" | "NotFound") => StoreError::NotFound {
                bucket: self.bucket.clone(),
                key: key.to_owned(),
            },
            (Some(403), _) | (_, "AccessDenied") => StoreError::AccessDenied {
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                message,
            },
            _ => StoreError::Service {
                operation,
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                message,
            },
        }
    }
}

/// The HTTP status of a service error's response (`None` for transport errors).
fn status_of<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    match err {
        SdkError::ServiceError(e) => Some(e.raw().status().as_u16()),
        _ => None,
    }
}

fn to_utc(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
}

impl ObjectStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("GetObject", key, e))?;
        let bytes = out.body.collect().await.map_err(|e| StoreError::Read {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            source: std::io::Error::other(e),
        })?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn open(&self, key: &str) -> Result<(ObjectInfo, ByteReader), StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("GetObject", key, e))?;
        let info = ObjectInfo {
            key: key.to_owned(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: out.e_tag().map(str::to_owned),
            version_id: out.version_id().map(str::to_owned),
            last_modified: to_utc(out.last_modified()),
        };
        // 64 KiB reads: few syscalls, and memory stays flat whatever the object size.
        let reader = BufReader::with_capacity(64 * 1024, out.body.into_async_read());
        Ok((info, Box::pin(reader)))
    }

    async fn open_pinned(
        &self,
        key: &str,
        etag: Option<&str>,
        version_id: Option<&str>,
    ) -> Result<Option<(ObjectInfo, ByteReader)>, StoreError> {
        // "null" is how S3 names the version of an object written while versioning was off.
        let version_id = version_id.filter(|v| !v.is_empty() && *v != "null");
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .set_if_match(etag.map(|e| format!("\"{}\"", e.trim_matches('"'))))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(err) => {
                let gone = matches!(status_of(&err), Some(404 | 412))
                    || matches!(
                        err.code(),
                        Some("NoSuchKey" | "NoSuchVersion" | "PreconditionFailed")
                    );
                if gone {
                    return Ok(None);
                }
                return Err(self.error("GetObject", key, err));
            }
        };
        let info = ObjectInfo {
            key: key.to_owned(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: out.e_tag().map(str::to_owned),
            version_id: out.version_id().map(str::to_owned),
            last_modified: to_utc(out.last_modified()),
        };
        // Belt and braces for S3-compatible stores that ignore If-Match.
        if let (Some(want), Some(got)) = (etag, info.etag.as_deref())
            && !super::same_etag(want, got)
        {
            return Ok(None);
        }
        let reader = BufReader::with_capacity(64 * 1024, out.body.into_async_read());
        Ok(Some((info, Box::pin(reader))))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                key: key.to_owned(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                etag: out.e_tag().map(str::to_owned),
                version_id: out.version_id().map(str::to_owned),
                last_modified: to_utc(out.last_modified()),
            })),
            Err(e) => match self.error("HeadObject", key, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("PutObject", key, e))?;
        Ok(())
    }

    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<PutOutcome, StoreError> {
        // 409 ConditionalRequestConflict means another conditional write to the key is in
        // flight: retry briefly, after which S3 answers 412 (exists) or lets us create it.
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .if_none_match("*")
                .body(ByteStream::from(body.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(PutOutcome::Created),
                Err(err) => err,
            };
            match (status_of(&err), err.code()) {
                (Some(412), _) | (_, Some("PreconditionFailed")) => {
                    return Ok(PutOutcome::AlreadyExists);
                }
                (Some(409), _) | (_, Some("ConditionalRequestConflict")) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                _ => return Err(self.error("PutObject", key, err)),
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut objects = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("ListObjectsV2", prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                objects.push(ObjectInfo {
                    key: key.to_owned(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    etag: object.e_tag().map(str::to_owned),
                    version_id: None,
                    last_modified: to_utc(object.last_modified()),
                });
            }
        }
        Ok(objects)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("DeleteObject", key, e))?;
        Ok(())
    }
}
