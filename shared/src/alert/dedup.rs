//! De-duplication of alerts: a re-delivered event is published once.
//!
//! ```text
//! ledger/alerts/<event id>.json                      AlertRecord: published (the final word)
//! ledger/alert-claims/<event id>/<generation>.json   AlertClaim: "sending" leases, one per attempt
//! ledger/alert-facts/<fingerprint>.json              AlertRecord: the same fact re-emitted under a new id
//! ```
//!
//! The protocol, with S3 conditional writes (`If-None-Match: *`) as the only arbiter:
//!
//! 1. If `ledger/alerts/<id>.json` exists, the alert was published: do nothing.
//! 2. Claim the attempt: create claim generation 1 (or the next one) with a conditional
//!    write. Exactly one delivery can create a given generation. The claim says `sending`
//!    and expires shortly after the claimant's invocation deadline — after which Lambda has
//!    stopped it, so it can no longer publish.
//! 3. A delivery that finds a live claim waits briefly for it to resolve, then fails (so
//!    Lambda retries later). One that finds a released or expired claim tries the next
//!    generation.
//! 4. The claimant publishes. On success it writes `ledger/alerts/<id>.json`; on failure it
//!    marks its claim `released` (or, if even that fails, lets it expire) and fails the
//!    invocation, so the retry publishes: a failed publish never suppresses its retry.
//!
//! The one window left is inherent to any publish-then-record scheme: if SNS accepts the
//! message and the function dies before writing the record, the retry publishes again
//! (at-least-once, never zero).

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::layout::{fingerprint, safe_segment};
use crate::ledger::{AlertRecord, LedgerError, SCHEMA, alert_key};
use crate::store::{ObjectStore, PutOutcome};

const JSON: &str = "application/json";

/// Prefix of the per-attempt claims.
pub const CLAIMS_PREFIX: &str = "ledger/alert-claims/";
/// Prefix of the records of facts already alerted.
pub const FACTS_PREFIX: &str = "ledger/alert-facts/";
/// The same fact (kind, `eventKey` and identical detail) re-emitted under a new event id
/// within this window is not alerted again. Lambda keeps retrying an event for at most six
/// hours, which bounds how late an emitter's own retry can arrive.
pub const FACT_WINDOW_HOURS: i64 = 6;
/// Claims an event can go through before send-alert gives up on it (each failed attempt
/// uses one; Lambda and EventBridge retry far fewer times than this).
pub const MAX_GENERATIONS: u32 = 200;

/// `ledger/alert-claims/<event id>/<generation>.json`
pub fn claim_key(event_id: &str, generation: u32) -> String {
    format!(
        "{CLAIMS_PREFIX}{}/{generation:04}.json",
        safe_segment(event_id)
    )
}

/// `ledger/alert-facts/<fingerprint>.json`
pub fn fact_key(fact: &str) -> String {
    format!("{FACTS_PREFIX}{fact}.json")
}

/// The identity of a fact: kind, `eventKey` and the detail, canonically serialised (object
/// keys sorted), so the same detail re-emitted hashes the same.
pub fn fact_fingerprint(detail_type: &str, event_key: &str, detail: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(detail, &mut canonical);
    fingerprint(&[detail_type, event_key, &canonical])
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(*key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// State of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimState {
    /// The claimant is publishing (until `expires_at`).
    Sending,
    /// The claimant failed to publish and gave the event up for the next attempt.
    Released,
}

/// One delivery's lease on publishing an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertClaim {
    pub schema: u32,
    pub event_id: String,
    pub detail_type: String,
    pub generation: u32,
    pub state: ClaimState,
    pub claimed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Why a released claim failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AlertClaim {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.state == ClaimState::Sending && self.expires_at > now
    }
}

/// What a claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This delivery owns the attempt: publish, then [`Dedup::record_sent`] or
    /// [`Dedup::release`].
    Acquired(AlertClaim),
    /// Already published.
    Sent(AlertRecord),
    /// Another delivery is publishing right now.
    Busy(AlertClaim),
}

/// The claim protocol over one bucket.
#[derive(Debug, Clone, Copy)]
pub struct Dedup<'a, S: ObjectStore> {
    store: &'a S,
}

impl<'a, S: ObjectStore> Dedup<'a, S> {
    pub fn new(store: &'a S) -> Self {
        Dedup { store }
    }

    async fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, LedgerError> {
        let bytes = match self.store.get(key).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| LedgerError::Corrupt {
                bucket: self.store.bucket().to_owned(),
                key: key.to_owned(),
                source,
            })
    }

    /// The record of an event already published.
    pub async fn sent(&self, event_id: &str) -> Result<Option<AlertRecord>, LedgerError> {
        self.read(&alert_key(event_id)).await
    }

    /// Claims the next attempt at publishing `event_id` (see the module docs).
    pub async fn claim(
        &self,
        event_id: &str,
        detail_type: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<ClaimOutcome, LedgerError> {
        if let Some(record) = self.sent(event_id).await? {
            return Ok(ClaimOutcome::Sent(record));
        }
        for generation in 1..=MAX_GENERATIONS {
            let claim = AlertClaim {
                schema: SCHEMA,
                event_id: event_id.to_owned(),
                detail_type: detail_type.to_owned(),
                generation,
                state: ClaimState::Sending,
                claimed_at: now,
                expires_at,
                error: None,
            };
            let key = claim_key(event_id, generation);
            match self
                .store
                .put_if_absent(&key, to_json(&claim), JSON)
                .await?
            {
                PutOutcome::Created => {
                    // A claimant whose lease expired may still have finished in between.
                    if let Some(record) = self.sent(event_id).await? {
                        self.release(&claim, "already published by an earlier attempt")
                            .await?;
                        return Ok(ClaimOutcome::Sent(record));
                    }
                    return Ok(ClaimOutcome::Acquired(claim));
                }
                PutOutcome::AlreadyExists => match self.read::<AlertClaim>(&key).await {
                    Ok(Some(existing)) if existing.is_live(now) => {
                        return Ok(ClaimOutcome::Busy(existing));
                    }
                    // Released, expired, or gone: this generation is over; try the next.
                    Ok(_) => {}
                    Err(LedgerError::Corrupt { key, .. }) => {
                        tracing::warn!(%key, "unreadable alert claim; treating it as expired");
                    }
                    Err(e) => return Err(e),
                },
            }
        }
        Err(LedgerError::Store(crate::store::StoreError::Service {
            operation: "PutObject",
            bucket: self.store.bucket().to_owned(),
            key: claim_key(event_id, MAX_GENERATIONS),
            message: format!(
                "event {event_id} has been attempted {MAX_GENERATIONS} times without being published; see the function's logs for why"
            ),
        }))
    }

    /// Gives an attempt up after a failed publish, so the next delivery can publish at once.
    pub async fn release(&self, claim: &AlertClaim, error: &str) -> Result<(), LedgerError> {
        let released = AlertClaim {
            state: ClaimState::Released,
            error: Some(crate::alert::text::one_line(error, 1000)),
            ..claim.clone()
        };
        self.store
            .put(
                &claim_key(&claim.event_id, claim.generation),
                to_json(&released),
                JSON,
            )
            .await?;
        Ok(())
    }

    /// Records a published event (created once).
    pub async fn record_sent(&self, record: &AlertRecord) -> Result<PutOutcome, LedgerError> {
        Ok(self
            .store
            .put_if_absent(&alert_key(&record.event_id), to_json(record), JSON)
            .await?)
    }

    /// The record of a fact alerted within [`FACT_WINDOW_HOURS`] of `now`.
    pub async fn fact_sent(
        &self,
        fact: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AlertRecord>, LedgerError> {
        Ok(self
            .read::<AlertRecord>(&fact_key(fact))
            .await?
            .filter(|r| now - r.sent_at < Duration::hours(FACT_WINDOW_HOURS)))
    }

    /// Records an alerted fact (replacing an older record of the same fact).
    pub async fn record_fact(&self, fact: &str, record: &AlertRecord) -> Result<(), LedgerError> {
        Ok(self
            .store
            .put(&fact_key(fact), to_json(record), JSON)
            .await?)
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

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, second)
            .single()
            .unwrap()
    }

    fn record(id: &str) -> AlertRecord {
        AlertRecord {
            schema: SCHEMA,
            event_id: id.into(),
            detail_type: "Gate Verdict".into(),
            event_key: Some("verdict/app/v1".into()),
            message_id: Some("m-1".into()),
            sent_at: at(5),
        }
    }

    #[tokio::test]
    async fn first_delivery_acquires_and_a_concurrent_one_is_busy() {
        let store = MemoryStore::new("b");
        let dedup = Dedup::new(&store);
        let ClaimOutcome::Acquired(claim) = dedup
            .claim("e-1", "Gate Verdict", at(0), at(30))
            .await
            .unwrap()
        else {
            panic!("first claim must be acquired")
        };
        assert_eq!(claim.generation, 1);
        let busy = dedup
            .claim("e-1", "Gate Verdict", at(1), at(31))
            .await
            .unwrap();
        assert!(matches!(busy, ClaimOutcome::Busy(c) if c.generation == 1));
    }

    #[tokio::test]
    async fn a_sent_record_ends_every_later_claim() {
        let store = MemoryStore::new("b");
        let dedup = Dedup::new(&store);
        let ClaimOutcome::Acquired(_) = dedup
            .claim("e-1", "Gate Verdict", at(0), at(30))
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            dedup.record_sent(&record("e-1")).await.unwrap(),
            PutOutcome::Created
        );
        let again = dedup
            .claim("e-1", "Gate Verdict", at(2), at(32))
            .await
            .unwrap();
        assert_eq!(again, ClaimOutcome::Sent(record("e-1")));
        assert!(store.keys().contains(&"ledger/alerts/e-1.json".to_owned()));
    }

    #[tokio::test]
    async fn a_released_claim_lets_the_retry_publish() {
        let store = MemoryStore::new("b");
        let dedup = Dedup::new(&store);
        let ClaimOutcome::Acquired(claim) = dedup
            .claim("e-1", "Gate Verdict", at(0), at(30))
            .await
            .unwrap()
        else {
            panic!()
        };
        dedup.release(&claim, "SNS said no").await.unwrap();
        let retry = dedup
            .claim("e-1", "Gate Verdict", at(1), at(31))
            .await
            .unwrap();
        assert!(matches!(retry, ClaimOutcome::Acquired(c) if c.generation == 2));
        assert!(
            dedup.sent("e-1").await.unwrap().is_none(),
            "no record suppresses the retry"
        );
    }

    #[tokio::test]
    async fn an_expired_claim_is_taken_over_once() {
        let store = MemoryStore::new("b");
        let dedup = Dedup::new(&store);
        let ClaimOutcome::Acquired(_) = dedup
            .claim("e-1", "Gate Verdict", at(0), at(10))
            .await
            .unwrap()
        else {
            panic!()
        };
        // The claimant died; after its lease, two deliveries race for the next generation.
        let a = dedup
            .claim("e-1", "Gate Verdict", at(11), at(40))
            .await
            .unwrap();
        let b = dedup
            .claim("e-1", "Gate Verdict", at(11), at(40))
            .await
            .unwrap();
        assert!(matches!(a, ClaimOutcome::Acquired(c) if c.generation == 2));
        assert!(matches!(b, ClaimOutcome::Busy(c) if c.generation == 2));
    }

    #[tokio::test]
    async fn facts_are_remembered_within_the_window() {
        let store = MemoryStore::new("b");
        let dedup = Dedup::new(&store);
        let fact = fact_fingerprint(
            "Gate Verdict",
            "verdict/app/v1",
            &serde_json::json!({"b": 1, "a": [1, {"y": 2, "x": 1}]}),
        );
        let same = fact_fingerprint(
            "Gate Verdict",
            "verdict/app/v1",
            &serde_json::json!({"a": [1, {"x": 1, "y": 2}], "b": 1}),
        );
        assert_eq!(fact, same, "key order does not matter");
        let other = fact_fingerprint(
            "Gate Verdict",
            "verdict/app/v1",
            &serde_json::json!({"a": [1], "b": 2}),
        );
        assert_ne!(fact, other);
        dedup.record_fact(&fact, &record("e-1")).await.unwrap();
        assert!(dedup.fact_sent(&fact, at(30)).await.unwrap().is_some());
        let later = at(5) + Duration::hours(FACT_WINDOW_HOURS);
        assert!(dedup.fact_sent(&fact, later).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn corrupt_sent_records_are_errors_naming_the_key() {
        let store = MemoryStore::new("b");
        store
            .put(&alert_key("e-1"), b"{".to_vec(), JSON)
            .await
            .unwrap();
        let err = Dedup::new(&store)
            .claim("e-1", "Gate Verdict", at(0), at(9))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ledger/alerts/e-1.json"), "{err}");
    }
}
