//! The ledger: evalgate's own records, small JSON objects in the evaluation bucket.
//!
//! ```text
//! ledger/jobs/<app>/<rel>/<jobName>.json       JobRecord: one per submitted shard (created once)
//! ledger/deferred/<app>/<rel>/<jobName>.json   DeferredShard: waiting for Bedrock quota
//! ledger/open/<app>/<rel>.json                 OpenRelease: submitted, not yet gated
//! ledger/promotions/<app>/<rel>.json           PromotionRecord: the pointer was moved to <rel>
//! ledger/rollbacks/<app>/<alarm event>.json    RollbackRecord: keyed by the alarm event id
//! ledger/alerts/<event id>.json                AlertRecord: send-alert's de-duplication
//! ledger/alert-claims/<event id>/<gen>.json    send-alert's per-attempt claims (`alert::dedup`)
//! ledger/alert-facts/<fingerprint>.json        facts already alerted under another event id
//! ledger/rejections/<app>/<rel>/<upload>.json  RejectionRecord: one per rejected upload
//! ledger/outbox/<event key>.json               submit-evaluation's unpublished events
//! ```
//!
//! Records that must exist at most once are created with a conditional write
//! ([`ObjectStore::put_if_absent`]), so two concurrent deliveries of the same event cannot
//! both create them. All records are snake_case JSON with a `schema` version.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bedrock::JobSpec;
use crate::events::{AlarmRef, DatasetRef};
use crate::layout::safe_segment;
use crate::store::{ObjectStore, PutOutcome, StoreError};
use crate::verdict::Outcome;

/// Current record schema version.
pub const SCHEMA: u32 = 1;

const JSON: &str = "application/json";

/// A ledger operation failed.
#[derive(Debug, Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("ledger record s3://{bucket}/{key} is unreadable: {source}")]
    Corrupt {
        bucket: String,
        key: String,
        source: serde_json::Error,
    },
}

/// One submitted shard: what was sent to Bedrock and where its results will be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub schema: u32,
    pub application: String,
    pub release: String,
    pub dataset: DatasetRef,
    pub dataset_id: String,
    /// 1-based shard number.
    pub shard: u32,
    pub shard_count: u32,
    pub prompts: u32,
    pub shard_uri: String,
    #[serde(default)]
    pub metadata_uri: Option<String>,
    pub output_uri: String,
    pub job_name: String,
    pub job_arn: String,
    pub client_request_token: String,
    pub policy_hash: String,
    pub submitted_at: DateTime<Utc>,
}

/// A shard waiting for Bedrock's concurrent-job quota. It carries the whole request, so the
/// scheduled drain resubmits exactly what would have been submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeferredShard {
    pub schema: u32,
    pub application: String,
    pub release: String,
    pub dataset: DatasetRef,
    pub dataset_id: String,
    pub shard: u32,
    pub shard_count: u32,
    pub prompts: u32,
    #[serde(default)]
    pub metadata_uri: Option<String>,
    pub policy_hash: String,
    pub spec: JobSpec,
    pub deferred_at: DateTime<Utc>,
    #[serde(default)]
    pub reason: String,
}

/// A rejected upload. Created once per upload (its key hashes bucket, key, version/ETag and
/// the S3 event's sequencer), so re-deliveries of the same event report it only once while
/// a fresh upload of the same file is reported again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectionRecord {
    pub schema: u32,
    /// `None` when the key does not follow the dataset convention.
    #[serde(default)]
    pub application: Option<String>,
    #[serde(default)]
    pub release: Option<String>,
    pub dataset: DatasetRef,
    pub upload_id: String,
    /// `key`, `policy`, `dataset` or `bedrock`: where the problem was found.
    pub stage: String,
    pub error_count: u64,
    pub report_uri: String,
    pub rejected_at: DateTime<Utc>,
}

/// A release with submissions that have not been gated yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRelease {
    pub schema: u32,
    pub application: String,
    pub release: String,
    pub opened_at: DateTime<Utc>,
}

/// The release pointer was moved to a release that passed its gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionRecord {
    pub schema: u32,
    pub application: String,
    pub release: String,
    #[serde(default)]
    pub previous: Option<String>,
    /// Human-readable pointer, e.g. `ssm:/support-bot/release`.
    pub pointer: String,
    pub promoted_at: DateTime<Utc>,
    /// Who moved it, e.g. `evalgate check-gates (request <id>)`.
    pub promoted_by: String,
    pub verdict_uri: String,
    /// Always `pass`: promotion of anything else is refused before this record exists.
    pub verdict_outcome: Outcome,
}

/// A rollback decision taken for one alarm event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub schema: u32,
    pub application: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    pub pointer: String,
    pub alarm: AlarmRef,
    pub decided_at: DateTime<Utc>,
    /// True when the pointer was moved; false for skips and dry runs.
    pub executed: bool,
    #[serde(default)]
    pub dry_run: bool,
    pub reason: String,
    /// When the decision was fully carried out (pointer moved or not, event published).
    /// `None` while the invocation that created the record is still acting, or if it
    /// crashed: a re-delivery of the same alarm event then finishes the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// send-alert's record of an event it has published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub schema: u32,
    pub event_id: String,
    pub detail_type: String,
    #[serde(default)]
    pub event_key: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    pub sent_at: DateTime<Utc>,
}

/// The fields of a verdict record that other parts of evalgate rely on (the verdict JSON
/// carries much more; unknown fields are ignored here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictSummary {
    pub application: String,
    pub release: String,
    pub outcome: Outcome,
    pub decided_at: DateTime<Utc>,
}

fn release_path(application: &str, release: &str) -> String {
    format!("{}/{}", safe_segment(application), safe_segment(release))
}

/// `ledger/jobs/<app>/<rel>/<jobName>.json`
pub fn job_key(application: &str, release: &str, job_name: &str) -> String {
    format!(
        "ledger/jobs/{}/{job_name}.json",
        release_path(application, release)
    )
}

/// `ledger/jobs/<app>/<rel>/`
pub fn jobs_prefix(application: &str, release: &str) -> String {
    format!("ledger/jobs/{}/", release_path(application, release))
}

/// `ledger/deferred/<app>/<rel>/<jobName>.json`
pub fn deferred_key(application: &str, release: &str, job_name: &str) -> String {
    format!(
        "ledger/deferred/{}/{job_name}.json",
        release_path(application, release)
    )
}

/// `ledger/deferred/` (every application) or one release's part of it.
pub fn deferred_prefix(release: Option<(&str, &str)>) -> String {
    match release {
        Some((application, release)) => {
            format!("ledger/deferred/{}/", release_path(application, release))
        }
        None => "ledger/deferred/".to_owned(),
    }
}

/// `ledger/rejections/<app>/<rel>/<upload id>.json`, or
/// `ledger/rejections/_invalid-keys/<upload id>.json` for keys outside the convention.
pub fn rejection_record_key(release: Option<(&str, &str)>, upload_id: &str) -> String {
    match release {
        Some((application, release)) => format!(
            "ledger/rejections/{}/{}.json",
            release_path(application, release),
            safe_segment(upload_id)
        ),
        None => format!(
            "ledger/rejections/_invalid-keys/{}.json",
            safe_segment(upload_id)
        ),
    }
}

/// `ledger/open/<app>/<rel>.json`
pub fn open_key(application: &str, release: &str) -> String {
    format!("ledger/open/{}.json", release_path(application, release))
}

/// `ledger/promotions/<app>/<rel>.json`
pub fn promotion_key(application: &str, release: &str) -> String {
    format!(
        "ledger/promotions/{}.json",
        release_path(application, release)
    )
}

/// `ledger/rollbacks/<app>/<event id>.json`
pub fn rollback_key(application: &str, alarm_event_id: &str) -> String {
    format!(
        "ledger/rollbacks/{}/{}.json",
        safe_segment(application),
        safe_segment(alarm_event_id)
    )
}

/// `ledger/alerts/<event id>.json`
pub fn alert_key(event_id: &str) -> String {
    format!("ledger/alerts/{}.json", safe_segment(event_id))
}

/// Typed access to the ledger in one bucket.
#[derive(Debug, Clone, Copy)]
pub struct Ledger<'a, S: ObjectStore> {
    store: &'a S,
}

impl<'a, S: ObjectStore> Ledger<'a, S> {
    pub fn new(store: &'a S) -> Self {
        Ledger { store }
    }

    pub fn store(&self) -> &'a S {
        self.store
    }

    async fn read<T: DeserializeOwned>(&self, key: &str) -> Result<T, LedgerError> {
        let bytes = self.store.get(key).await?;
        serde_json::from_slice(&bytes).map_err(|source| LedgerError::Corrupt {
            bucket: self.store.bucket().to_owned(),
            key: key.to_owned(),
            source,
        })
    }

    async fn read_optional<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, LedgerError> {
        match self.read(key).await {
            Ok(v) => Ok(Some(v)),
            Err(LedgerError::Store(e)) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read_all<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>, LedgerError> {
        let mut out = Vec::new();
        for object in self.store.list(prefix).await? {
            if object.key.ends_with(".json") {
                // A record deleted between list and get is simply gone.
                if let Some(record) = self.read_optional(&object.key).await? {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    async fn create<T: Serialize>(&self, key: &str, record: &T) -> Result<PutOutcome, LedgerError> {
        Ok(self.store.put_if_absent(key, to_json(record), JSON).await?)
    }

    /// Records a submitted job; `AlreadyExists` means another delivery recorded it first.
    pub async fn record_job(&self, record: &JobRecord) -> Result<PutOutcome, LedgerError> {
        self.create(
            &job_key(&record.application, &record.release, &record.job_name),
            record,
        )
        .await
    }

    pub async fn job(
        &self,
        application: &str,
        release: &str,
        job_name: &str,
    ) -> Result<Option<JobRecord>, LedgerError> {
        self.read_optional(&job_key(application, release, job_name))
            .await
    }

    /// Every job recorded for a release.
    pub async fn jobs(
        &self,
        application: &str,
        release: &str,
    ) -> Result<Vec<JobRecord>, LedgerError> {
        self.read_all(&jobs_prefix(application, release)).await
    }

    /// Removes a job record (its job was stopped because its upload was rejected as a whole).
    pub async fn remove_job(&self, record: &JobRecord) -> Result<(), LedgerError> {
        Ok(self
            .store
            .delete(&job_key(
                &record.application,
                &record.release,
                &record.job_name,
            ))
            .await?)
    }

    /// Records a rejected upload; `AlreadyExists` means this upload was already reported.
    pub async fn record_rejection(
        &self,
        record: &RejectionRecord,
    ) -> Result<PutOutcome, LedgerError> {
        let release = record.application.as_deref().zip(record.release.as_deref());
        self.create(&rejection_record_key(release, &record.upload_id), record)
            .await
    }

    /// Records a deferred shard; `AlreadyExists` if it was already waiting.
    pub async fn defer(&self, shard: &DeferredShard) -> Result<PutOutcome, LedgerError> {
        self.create(
            &deferred_key(&shard.application, &shard.release, &shard.spec.job_name),
            shard,
        )
        .await
    }

    /// Deferred shards, oldest first (all applications, or one release).
    pub async fn deferred(
        &self,
        release: Option<(&str, &str)>,
    ) -> Result<Vec<DeferredShard>, LedgerError> {
        let mut shards: Vec<DeferredShard> = self.read_all(&deferred_prefix(release)).await?;
        shards.sort_by(|a, b| {
            (a.deferred_at, &a.spec.job_name).cmp(&(b.deferred_at, &b.spec.job_name))
        });
        Ok(shards)
    }

    /// Removes a deferred shard once it has been submitted.
    pub async fn remove_deferred(&self, shard: &DeferredShard) -> Result<(), LedgerError> {
        Ok(self
            .store
            .delete(&deferred_key(
                &shard.application,
                &shard.release,
                &shard.spec.job_name,
            ))
            .await?)
    }

    /// Marks a release as awaiting its verdict (idempotent).
    pub async fn open_release(
        &self,
        application: &str,
        release: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let record = OpenRelease {
            schema: SCHEMA,
            application: application.to_owned(),
            release: release.to_owned(),
            opened_at: now,
        };
        self.create(&open_key(application, release), &record)
            .await?;
        Ok(())
    }

    /// Releases awaiting a verdict.
    pub async fn open_releases(&self) -> Result<Vec<OpenRelease>, LedgerError> {
        let mut open: Vec<OpenRelease> = self.read_all("ledger/open/").await?;
        open.sort_by(|a, b| {
            (a.opened_at, &a.application, &a.release).cmp(&(
                b.opened_at,
                &b.application,
                &b.release,
            ))
        });
        Ok(open)
    }

    /// Marks a release as gated.
    pub async fn close_release(&self, application: &str, release: &str) -> Result<(), LedgerError> {
        Ok(self.store.delete(&open_key(application, release)).await?)
    }

    /// Records a promotion; `AlreadyExists` if this release was already promoted.
    pub async fn record_promotion(
        &self,
        record: &PromotionRecord,
    ) -> Result<PutOutcome, LedgerError> {
        self.create(&promotion_key(&record.application, &record.release), record)
            .await
    }

    /// The promotion record of one release, if it was promoted.
    pub async fn promotion(
        &self,
        application: &str,
        release: &str,
    ) -> Result<Option<PromotionRecord>, LedgerError> {
        self.read_optional(&promotion_key(application, release))
            .await
    }

    /// Every promotion of an application, oldest first.
    pub async fn promotions(&self, application: &str) -> Result<Vec<PromotionRecord>, LedgerError> {
        let prefix = format!("ledger/promotions/{}/", safe_segment(application));
        let mut records: Vec<PromotionRecord> = self.read_all(&prefix).await?;
        records.sort_by(|a, b| (a.promoted_at, &a.release).cmp(&(b.promoted_at, &b.release)));
        Ok(records)
    }

    /// Records a rollback decision for an alarm event; `AlreadyExists` means this event was
    /// already handled (a re-delivery): do nothing twice.
    pub async fn record_rollback(
        &self,
        record: &RollbackRecord,
    ) -> Result<PutOutcome, LedgerError> {
        self.create(
            &rollback_key(&record.application, &record.alarm.event_id),
            record,
        )
        .await
    }

    /// The rollback decision taken for one alarm event, if any.
    pub async fn rollback(
        &self,
        application: &str,
        alarm_event_id: &str,
    ) -> Result<Option<RollbackRecord>, LedgerError> {
        self.read_optional(&rollback_key(application, alarm_event_id))
            .await
    }

    /// Replaces a rollback record created by [`Self::record_rollback`] with its final state
    /// (executed or not, `completed_at` set). Only the invocation carrying out the decision
    /// calls this.
    pub async fn update_rollback(&self, record: &RollbackRecord) -> Result<(), LedgerError> {
        Ok(self
            .store
            .put(
                &rollback_key(&record.application, &record.alarm.event_id),
                to_json(record),
                JSON,
            )
            .await?)
    }

    /// Every rollback decision of an application, oldest first.
    pub async fn rollbacks(&self, application: &str) -> Result<Vec<RollbackRecord>, LedgerError> {
        let prefix = format!("ledger/rollbacks/{}/", safe_segment(application));
        let mut records: Vec<RollbackRecord> = self.read_all(&prefix).await?;
        records.sort_by_key(|r| r.decided_at);
        Ok(records)
    }

    /// The verdict summary of every gated release of an application, oldest first.
    pub async fn verdicts(&self, application: &str) -> Result<Vec<VerdictSummary>, LedgerError> {
        let mut summaries = Vec::new();
        for object in self
            .store
            .list(&crate::layout::verdicts_prefix(application))
            .await?
        {
            if object.key.ends_with("/verdict.json")
                && let Some(summary) = self.read_optional::<VerdictSummary>(&object.key).await?
            {
                summaries.push(summary);
            }
        }
        summaries.sort_by(|a, b| (a.decided_at, &a.release).cmp(&(b.decided_at, &b.release)));
        Ok(summaries)
    }
}

/// Records are plain structs; serialisation cannot fail.
fn to_json<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0)
            .single()
            .unwrap()
    }

    fn spec(name: &str) -> JobSpec {
        JobSpec {
            job_name: name.into(),
            client_request_token: "t".into(),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            description: None,
            tags: vec![],
            task_type: "General".into(),
            dataset_name: "d".into(),
            dataset_uri: "s3://b/shards/x".into(),
            metric_names: vec!["Builtin.Correctness".into()],
            evaluator_model: "amazon.nova-pro-v1:0".into(),
            custom_metrics: vec![],
            inference_source_identifier: "m".into(),
            output_uri: "s3://b/evaluations/x/".into(),
            kms_key_id: None,
        }
    }

    fn deferred(name: &str, minute: u32) -> DeferredShard {
        DeferredShard {
            schema: SCHEMA,
            application: "app".into(),
            release: "v 1".into(),
            dataset: DatasetRef {
                bucket: "b".into(),
                key: "datasets/app/v 1/d.jsonl".into(),
                etag: None,
                version_id: None,
            },
            dataset_id: "d-1".into(),
            shard: 1,
            shard_count: 1,
            prompts: 3,
            metadata_uri: None,
            policy_hash: "h".into(),
            spec: spec(name),
            deferred_at: at(minute),
            reason: "quota".into(),
        }
    }

    #[tokio::test]
    async fn deferred_shards_come_back_oldest_first_and_once() {
        let store = MemoryStore::new("b");
        let ledger = Ledger::new(&store);
        assert_eq!(
            ledger.defer(&deferred("eg-b", 5)).await.unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            ledger.defer(&deferred("eg-a", 9)).await.unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            ledger.defer(&deferred("eg-c", 1)).await.unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            ledger.defer(&deferred("eg-c", 1)).await.unwrap(),
            PutOutcome::AlreadyExists
        );
        let names: Vec<_> = ledger
            .deferred(None)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.spec.job_name)
            .collect();
        assert_eq!(names, ["eg-c", "eg-b", "eg-a"]);
        ledger.remove_deferred(&deferred("eg-b", 5)).await.unwrap();
        assert_eq!(
            ledger.deferred(Some(("app", "v 1"))).await.unwrap().len(),
            2
        );
    }

    #[tokio::test]
    async fn open_releases_round_trip_with_real_names() {
        let store = MemoryStore::new("b");
        let ledger = Ledger::new(&store);
        ledger.open_release("app", "v 1+2", at(1)).await.unwrap();
        ledger.open_release("app", "v 1+2", at(2)).await.unwrap();
        let open = ledger.open_releases().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].release, "v 1+2");
        assert_eq!(open[0].opened_at, at(1), "the first open wins");
        ledger.close_release("app", "v 1+2").await.unwrap();
        assert!(ledger.open_releases().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn verdict_summaries_are_read_from_verdict_records() {
        let store = MemoryStore::new("b");
        for (release, outcome, minute) in [("v2", "fail", 2), ("v1", "pass", 1)] {
            let body = serde_json::json!({
                "application": "app", "release": release, "outcome": outcome,
                "decided_at": at(minute), "metrics": {}
            });
            store
                .put(
                    &crate::layout::verdict_key("app", release),
                    body.to_string().into_bytes(),
                    JSON,
                )
                .await
                .unwrap();
        }
        let verdicts = Ledger::new(&store).verdicts("app").await.unwrap();
        let order: Vec<_> = verdicts
            .iter()
            .map(|v| (v.release.as_str(), v.outcome))
            .collect();
        assert_eq!(order, [("v1", Outcome::Pass), ("v2", Outcome::Fail)]);
    }

    #[tokio::test]
    async fn corrupt_records_are_reported_with_their_key() {
        let store = MemoryStore::new("b");
        store
            .put(&open_key("app", "v1"), b"{not json".to_vec(), JSON)
            .await
            .unwrap();
        let err = Ledger::new(&store).open_releases().await.unwrap_err();
        assert!(err.to_string().contains("ledger/open/app/v1.json"), "{err}");
    }
}
