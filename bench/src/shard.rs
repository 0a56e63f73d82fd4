//! Validation + sharding of a dataset, as submit-evaluation does it: one streaming pass of
//! [`evalgate::dataset::validate_with`], then, when the dataset is valid, a second pass of
//! [`evalgate::dataset::Sharder`] over the same bytes, which yields each shard's Bedrock
//! lines and metadata sidecar. submit-evaluation uploads each shard to S3; here each shard
//! goes to a callback (counted, hashed or written to a directory by the caller).

use evalgate::dataset::{Limits, Shard, Sharder, validate_with};
use serde_json::{Value, json};
use tokio::io::AsyncBufRead;

/// Limits that admit the benchmark's 1,000,000-record dataset: evalgate's defaults except
/// [`evalgate::dataset::MAX_PROMPTS`] (250,000 prompts per upload), which is a product limit
/// and not a cost of the code. Every check that reads a line is still made.
pub fn bench_limits() -> Limits {
    Limits {
        max_prompts: u64::MAX,
        ..Limits::default()
    }
}

/// What the two passes produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    pub bytes: u64,
    pub records: u64,
    pub problems: u64,
    pub shards: u64,
    /// Bytes of the shards' Bedrock lines and of their metadata sidecars.
    pub shard_bytes: u64,
    pub metadata_bytes: u64,
}

impl Summary {
    pub fn to_json(&self) -> Value {
        json!({
            "lines": self.lines,
            "bytes": self.bytes,
            "records": self.records,
            "problems": self.problems,
            "shards": self.shards,
            "shardBytes": self.shard_bytes,
            "metadataBytes": self.metadata_bytes,
        })
    }
}

/// Validates `first`, then shards `second` (the same bytes, read again) into `on_shard`.
/// An invalid dataset is not sharded (its problems are counted in the summary).
pub async fn validate_and_shard<A, B, F>(
    first: A,
    second: B,
    limits: &Limits,
    mut on_shard: F,
) -> Result<Summary, String>
where
    A: AsyncBufRead + Unpin,
    B: AsyncBufRead + Unpin,
    F: FnMut(&Shard) -> std::io::Result<()>,
{
    let validation = validate_with(first, limits)
        .await
        .map_err(|e| format!("reading the dataset failed: {e}"))?;
    let mut summary = Summary {
        lines: validation.lines,
        bytes: validation.bytes,
        records: validation.records,
        problems: validation.problem_count,
        ..Summary::default()
    };
    if !validation.is_valid() {
        return Ok(summary);
    }
    let mut sharder = Sharder::new(second, limits, validation.shards);
    while let Some(shard) = sharder.next_shard().await.map_err(|e| e.to_string())? {
        summary.shards += 1;
        summary.shard_bytes += shard.body.len() as u64;
        summary.metadata_bytes += shard.metadata.len() as u64;
        on_shard(&shard).map_err(|e| format!("writing shard {}: {e}", shard.index + 1))?;
    }
    Ok(summary)
}
