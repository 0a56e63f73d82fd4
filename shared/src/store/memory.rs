//! An in-memory [`ObjectStore`] for unit tests of logic that reads and writes records.
//! End-to-end tests use S3 (moto) instead; this fake only stands in for pure-logic tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{ByteReader, ObjectInfo, ObjectStore, PutOutcome, StoreError};

/// A bucket held in a `BTreeMap`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    bucket: String,
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    pub fn new(bucket: &str) -> Self {
        MemoryStore {
            bucket: bucket.to_owned(),
            objects: Mutex::new(BTreeMap::new()),
        }
    }

    /// All keys, in order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A poisoned lock only means another test thread panicked; the map is still usable.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn info(key: &str, body: &[u8]) -> ObjectInfo {
        ObjectInfo {
            key: key.to_owned(),
            size: body.len() as u64,
            etag: Some(format!(
                "\"{}\"",
                &crate::layout::fingerprint(&[&String::from_utf8_lossy(body)])[..32]
            )),
            version_id: None,
            last_modified: None,
        }
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
        }
    }
}

impl ObjectStore for MemoryStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.lock()
            .get(key)
            .cloned()
            .ok_or_else(|| self.not_found(key))
    }

    async fn open(&self, key: &str) -> Result<(ObjectInfo, ByteReader), StoreError> {
        let body = self.get(key).await?;
        let info = Self::info(key, &body);
        Ok((info, Box::pin(std::io::Cursor::new(body))))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self.lock().get(key).map(|b| Self::info(key, b)))
    }

    async fn put(&self, key: &str, body: Vec<u8>, _content_type: &str) -> Result<(), StoreError> {
        self.lock().insert(key.to_owned(), body);
        Ok(())
    }

    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
        _content_type: &str,
    ) -> Result<PutOutcome, StoreError> {
        let mut objects = self.lock();
        if objects.contains_key(key) {
            return Ok(PutOutcome::AlreadyExists);
        }
        objects.insert(key.to_owned(), body);
        Ok(PutOutcome::Created)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        Ok(self
            .lock()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| Self::info(k, v))
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    #[tokio::test]
    async fn behaves_like_a_bucket() {
        let store = MemoryStore::new("b");
        assert_eq!(
            store
                .put_if_absent("a/1", b"x".to_vec(), "text/plain")
                .await
                .unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store
                .put_if_absent("a/1", b"y".to_vec(), "text/plain")
                .await
                .unwrap(),
            PutOutcome::AlreadyExists
        );
        assert_eq!(store.get("a/1").await.unwrap(), b"x");
        store
            .put("a/2", b"line1\nline2\n".to_vec(), "text/plain")
            .await
            .unwrap();
        store.put("b/1", b"z".to_vec(), "text/plain").await.unwrap();
        let keys: Vec<_> = store
            .list("a/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["a/1", "a/2"]);
        let (_, reader) = store.open("a/2").await.unwrap();
        let mut lines = reader.lines();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("line1"));
        store.delete("a/1").await.unwrap();
        assert!(store.get("a/1").await.unwrap_err().is_not_found());
        assert!(store.head("a/1").await.unwrap().is_none());
    }
}
