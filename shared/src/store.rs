//! Object storage: the small trait evalgate's logic uses, and its S3 adapter.
//!
//! Everything evalgate keeps (shards, ledger, verdicts) lives in one bucket, so the trait is
//! per bucket. Reads of large objects are streams ([`ObjectStore::open`]) so memory stays
//! bounded whatever the object size. [`ObjectStore::put_if_absent`] is S3's conditional
//! write (`If-None-Match: *`): the primitive that makes concurrent deliveries of the same
//! event create a record exactly once.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::io::AsyncBufRead;

pub mod s3;

#[cfg(any(test, feature = "test-util"))]
pub mod memory;

/// A streaming reader over an object's bytes.
pub type ByteReader = Pin<Box<dyn AsyncBufRead + Send>>;

/// What a listing or a head request says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// The ETag as S3 returns it (with quotes).
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// Result of a conditional create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// This call created the object.
    Created,
    /// The object already existed; nothing was written.
    AlreadyExists,
}

/// A storage operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound { bucket: String, key: String },
    #[error("access to s3://{bucket}/{key} was denied: {message}. Check the function's IAM policy")]
    AccessDenied {
        bucket: String,
        key: String,
        message: String,
    },
    #[error("S3 {operation} on s3://{bucket}/{key} failed: {message}")]
    Service {
        operation: &'static str,
        bucket: String,
        key: String,
        message: String,
    },
    #[error("reading s3://{bucket}/{key} failed: {source}")]
    Read {
        bucket: String,
        key: String,
        source: std::io::Error,
    },
}

/// Whether two ETags are the same, ignoring the quotes S3 puts around them in some places
/// (headers) and not others (event notifications).
pub fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

/// One bucket's objects.
pub trait ObjectStore: Send + Sync {
    /// The bucket name (for URIs in messages and records).
    fn bucket(&self) -> &str;

    /// Reads a whole (small) object.
    fn get(&self, key: &str) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// Opens an object for streaming reads.
    fn open(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<(ObjectInfo, ByteReader), StoreError>> + Send;

    /// Opens one exact version of an object for streaming reads: the version `version_id`
    /// when given, and only if its ETag is `etag` when given (quotes optional). `None` when
    /// that version no longer exists or the object was replaced since (a newer upload).
    ///
    /// The default opens the current object and compares the ETag of the response it
    /// streams (atomic: the ETag describes exactly those bytes); stores with versions
    /// override it.
    fn open_pinned(
        &self,
        key: &str,
        etag: Option<&str>,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<(ObjectInfo, ByteReader)>, StoreError>> + Send {
        async move {
            let _ = version_id;
            let (info, reader) = match self.open(key).await {
                Ok(opened) => opened,
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            };
            let same = match (etag, info.etag.as_deref()) {
                (Some(want), Some(got)) => same_etag(want, got),
                (Some(_), None) => false,
                (None, _) => true,
            };
            Ok(same.then_some((info, reader)))
        }
    }

    /// Metadata of an object, `None` if it does not exist.
    fn head(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectInfo>, StoreError>> + Send;

    /// Writes an object, replacing any existing one.
    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes an object only if no object exists under `key`.
    fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;

    /// Every object under `prefix`, in key order (all pages).
    fn list(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<ObjectInfo>, StoreError>> + Send;

    /// Deletes an object; deleting a missing object succeeds.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}
