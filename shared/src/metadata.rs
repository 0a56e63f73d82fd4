//! Per-record metadata kept aside from what Bedrock sees.
//!
//! Datasets may carry optional keys per record (`latencyMs`, `inputTokens`, `outputTokens`,
//! `cost`, `userId`, `feedback`, …). They are never sent to Bedrock: submit-evaluation writes
//! them, one [`MetadataLine`] per record, to a sidecar beside each shard
//! (`layout::metadata_key`), and check-gates reads them for cost and latency budgets.

use serde::{Deserialize, Serialize};

/// One line of a metadata sidecar (JSON Lines, one per dataset record of the shard, in order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataLine {
    /// 1-based line number of the record in the uploaded dataset.
    pub line: u64,
    /// `layout::prompt_hash` of the record's prompt.
    pub prompt_hash: String,
    /// The record's keys other than the Bedrock ones, as uploaded.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}
