//! Unique, valid resource names so that tests can run in parallel against one stand-in.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique across processes and calls: `<prefix>-<pid>-<time>-<n>`, lowercase,
/// at most 63 characters (valid for S3 buckets, SNS topics and SQS queues).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut name = format!(
        "{}-{}-{:x}-{n}",
        prefix.to_lowercase(),
        std::process::id(),
        nanos
    );
    name.truncate(63);
    name
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_bucket_safe() {
        let a = super::unique("Evalgate-Test");
        let b = super::unique("Evalgate-Test");
        assert_ne!(a, b);
        assert!(a.len() <= 63);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
    }
}
