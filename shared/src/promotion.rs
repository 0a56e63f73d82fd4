//! Promotion: pointing the release pointer at a release that passed its gate.
//!
//! Only a [`PassedVerdict`] can be promoted, and a `PassedVerdict` can only be made from a
//! verdict whose outcome is [`Outcome::Pass`]: promoting a failed, inconclusive or errored
//! release does not type-check. Rollback targets are `PassedVerdict`s too.
//!
//! [`promote`] moves the pointer, publishes `Release Promoted` and records a
//! [`PromotionRecord`], in that order, so that a crash at any point is finished by a retry
//! (the pointer is found at the release, the record is still missing) and a release is never
//! recorded as promoted before it is live. A release that already has a promotion record is
//! never promoted again: after a rollback, re-running check-gates must not undo it.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::events::{Event, EventPublisher, PublishError, ReleasePromoted};
use crate::ledger::{Ledger, LedgerError, PromotionRecord, SCHEMA, VerdictSummary};
use crate::release::{
    MoveKind, MoveOutcome, PointerError, PointerMove, PointerSpec, ReleasePointer,
};
use crate::store::ObjectStore;
use crate::verdict::Outcome;

/// A release whose gate verdict is `pass`. Constructible only from such a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedVerdict {
    application: String,
    release: String,
    decided_at: DateTime<Utc>,
}

/// A verdict that is not a pass was offered for promotion.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "release {release:?} of {application} is not promotable: its verdict is {outcome}, and only a release that passed its gate is ever promoted or rolled back to"
)]
pub struct NotPassed {
    pub application: String,
    pub release: String,
    pub outcome: Outcome,
}

impl PassedVerdict {
    /// `Ok` only for [`Outcome::Pass`].
    pub fn new(verdict: &VerdictSummary) -> Result<PassedVerdict, NotPassed> {
        match verdict.outcome {
            Outcome::Pass => Ok(PassedVerdict {
                application: verdict.application.clone(),
                release: verdict.release.clone(),
                decided_at: verdict.decided_at,
            }),
            outcome => Err(NotPassed {
                application: verdict.application.clone(),
                release: verdict.release.clone(),
                outcome,
            }),
        }
    }

    pub fn application(&self) -> &str {
        &self.application
    }

    pub fn release(&self) -> &str {
        &self.release
    }

    pub fn decided_at(&self) -> DateTime<Utc> {
        self.decided_at
    }
}

impl TryFrom<&VerdictSummary> for PassedVerdict {
    type Error = NotPassed;
    fn try_from(verdict: &VerdictSummary) -> Result<Self, NotPassed> {
        PassedVerdict::new(verdict)
    }
}

/// What [`promote`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Promotion {
    /// The pointer now names the release (it may already have: a retry after a crash).
    Promoted {
        previous: Option<String>,
        detail: String,
    },
    /// The release has a promotion record already; nothing was done.
    AlreadyPromoted,
    /// Promotion was declined for a reason people should see (logged by the caller).
    Declined { reason: String },
}

/// Promotion failed; retrying may succeed.
#[derive(Debug, Error)]
pub enum PromotionError {
    #[error(transparent)]
    Pointer(#[from] PointerError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(
        "release pointer {pointer} changed while promoting {release} (now {now}); retry to re-evaluate"
    )]
    Conflict {
        pointer: String,
        release: String,
        now: String,
    },
}

/// Who/what promotes, recorded in the ledger, e.g. `evalgate check-gates (request <id>)`.
#[derive(Debug, Clone)]
pub struct Promoter<'a> {
    pub promoted_by: &'a str,
    /// `s3://…/verdicts/<app>/<rel>/verdict.json`
    pub verdict_uri: &'a str,
    pub now: DateTime<Utc>,
}

/// Points `pointer` at `verdict`'s release, publishes `Release Promoted` and records the
/// promotion. See the module documentation for the order and why.
///
/// Declines (without error) when the pointer already names a release whose own passing
/// verdict is newer: verdicts can complete out of order, and promoting the older one would
/// silently roll production back.
pub async fn promote<S, P, E>(
    ledger: &Ledger<'_, S>,
    pointer: &P,
    publisher: &E,
    verdict: &PassedVerdict,
    promoter: &Promoter<'_>,
) -> Result<Promotion, PromotionError>
where
    S: ObjectStore,
    P: ReleasePointer,
    E: EventPublisher,
{
    let application = verdict.application();
    let release = verdict.release();
    if ledger.promotion(application, release).await?.is_some() {
        return Ok(Promotion::AlreadyPromoted);
    }
    let current = pointer.read().await?;
    let previous = current.release.clone();
    let detail = if previous.as_deref() == Some(release) {
        // Already live: a retry after a crash between the move and the record, or a human
        // got there first. Record it.
        current.detail.clone()
    } else {
        if let Some(current_release) = &previous {
            let verdicts = ledger.verdicts(application).await?;
            let newer = verdicts.iter().find(|v| {
                &v.release == current_release
                    && v.outcome == Outcome::Pass
                    && v.decided_at > verdict.decided_at()
            });
            if let Some(newer) = newer {
                return Ok(Promotion::Declined {
                    reason: format!(
                        "{} already names {current_release}, which passed its gate later ({}) than {release} ({}); promoting {release} would roll production back",
                        pointer.describe(),
                        newer.decided_at.to_rfc3339(),
                        verdict.decided_at().to_rfc3339()
                    ),
                });
            }
        }
        let change = PointerMove {
            release: release.to_owned(),
            expected_revision: current.revision.clone(),
            kind: MoveKind::Promotion,
            why: format!(
                "evalgate promotion of {application}: {} -> {release}; it passed its gate ({})",
                previous.as_deref().unwrap_or("(none)"),
                promoter.verdict_uri
            ),
            label: None,
            at: promoter.now,
        };
        match pointer.set(&change).await? {
            MoveOutcome::Moved { detail, .. } => detail,
            MoveOutcome::Conflict { current } => {
                return Err(PromotionError::Conflict {
                    pointer: pointer.describe(),
                    release: release.to_owned(),
                    now: current.release.unwrap_or_else(|| "(none)".into()),
                });
            }
        }
    };
    publisher
        .publish(&Event::ReleasePromoted(ReleasePromoted {
            event_key: format!("promotion/{application}/{release}"),
            application: application.to_owned(),
            release: release.to_owned(),
            previous: previous.clone(),
            pointer: pointer.describe(),
            verdict_uri: promoter.verdict_uri.to_owned(),
        }))
        .await?;
    let record = PromotionRecord {
        schema: SCHEMA,
        application: application.to_owned(),
        release: release.to_owned(),
        previous: previous.clone(),
        pointer: pointer.describe(),
        promoted_at: promoter.now,
        promoted_by: promoter.promoted_by.to_owned(),
        verdict_uri: promoter.verdict_uri.to_owned(),
        verdict_outcome: Outcome::Pass,
    };
    // AlreadyExists: a concurrent promotion of the same release recorded it first; the
    // pointer names the release either way.
    ledger.record_promotion(&record).await?;
    tracing::info!(application, release, previous = ?previous, pointer = %pointer.describe(), %detail, "release promoted");
    Ok(Promotion::Promoted { previous, detail })
}

/// A boxed, sendable future (what [`OnPass`] returns).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Promotion as check-gates calls it right after recording a `pass` verdict
/// (`release.promote: on_pass`). Object-safe, so the gatekeeper holds a `&dyn OnPass` and
/// needs no pointer type parameter.
pub trait OnPass: Send + Sync {
    fn promote_passed<'a>(
        &'a self,
        pointer: &'a PointerSpec,
        verdict: &'a PassedVerdict,
        verdict_uri: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Promotion, PromotionError>>;
}

/// [`OnPass`] over the bucket's ledger, an event publisher and a way to open the pointer a
/// policy names (`|spec| Pointer::new(spec, &clients)` in production).
pub struct PointerPromotion<'a, S, E, F> {
    pub store: &'a S,
    pub publisher: &'a E,
    pub open: F,
    /// Recorded as `promoted_by`, e.g. `evalgate check-gates (request <id>)`.
    pub promoted_by: String,
}

impl<S, E, F, P> OnPass for PointerPromotion<'_, S, E, F>
where
    S: ObjectStore,
    E: EventPublisher,
    F: Fn(&PointerSpec) -> P + Send + Sync,
    P: ReleasePointer,
{
    fn promote_passed<'a>(
        &'a self,
        pointer: &'a PointerSpec,
        verdict: &'a PassedVerdict,
        verdict_uri: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Promotion, PromotionError>> {
        Box::pin(async move {
            let pointer = (self.open)(pointer);
            promote(
                &Ledger::new(self.store),
                &pointer,
                self.publisher,
                verdict,
                &Promoter {
                    promoted_by: &self.promoted_by,
                    verdict_uri,
                    now,
                },
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::RecordingPublisher;
    use crate::release::MemoryPointer;
    use crate::store::memory::MemoryStore;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0)
            .single()
            .unwrap()
    }

    fn verdict(release: &str, outcome: Outcome, minute: u32) -> VerdictSummary {
        VerdictSummary {
            application: "bot".into(),
            release: release.into(),
            outcome,
            decided_at: at(minute),
        }
    }

    async fn seed(store: &MemoryStore, v: &VerdictSummary) {
        store
            .put(
                &crate::layout::verdict_key(&v.application, &v.release),
                serde_json::to_vec(v).unwrap(),
                "application/json",
            )
            .await
            .unwrap();
    }

    fn promoter(minute: u32) -> Promoter<'static> {
        Promoter {
            promoted_by: "test",
            verdict_uri: "s3://b/verdicts/bot/v2/verdict.json",
            now: at(minute),
        }
    }

    #[test]
    fn only_a_pass_is_promotable() {
        assert!(PassedVerdict::new(&verdict("v1", Outcome::Pass, 0)).is_ok());
        for outcome in [Outcome::Fail, Outcome::Inconclusive, Outcome::Error] {
            let err = PassedVerdict::new(&verdict("v1", outcome, 0)).unwrap_err();
            assert_eq!(err.outcome, outcome);
            assert!(err.to_string().contains("not promotable"), "{err}");
        }
    }

    #[tokio::test]
    async fn promotes_records_and_announces() {
        let store = MemoryStore::new("b");
        let ledger = Ledger::new(&store);
        let pointer = MemoryPointer::at(Some("v1"), Some(at(0)));
        let publisher = RecordingPublisher::default();
        let v2 = PassedVerdict::new(&verdict("v2", Outcome::Pass, 5)).unwrap();

        let out = promote(&ledger, &pointer, &publisher, &v2, &promoter(6))
            .await
            .unwrap();
        assert_eq!(
            out,
            Promotion::Promoted {
                previous: Some("v1".into()),
                detail: "version 2".into()
            }
        );
        assert_eq!(pointer.current().release.as_deref(), Some("v2"));
        assert_eq!(pointer.moves()[0].kind, MoveKind::Promotion);
        let record = ledger.promotion("bot", "v2").await.unwrap().unwrap();
        assert_eq!(record.previous.as_deref(), Some("v1"));
        assert_eq!(record.promoted_at, at(6));
        assert_eq!(record.verdict_outcome, Outcome::Pass);
        let events = publisher.taken();
        assert!(
            matches!(&events[..], [Event::ReleasePromoted(e)] if e.release == "v2" && e.event_key == "promotion/bot/v2")
        );

        // Never twice, even after the pointer moved away (e.g. a rollback).
        pointer.move_by_hand("v1", at(7));
        let again = promote(&ledger, &pointer, &publisher, &v2, &promoter(8))
            .await
            .unwrap();
        assert_eq!(again, Promotion::AlreadyPromoted);
        assert_eq!(pointer.current().release.as_deref(), Some("v1"));
        assert!(publisher.taken().is_empty());
    }

    #[tokio::test]
    async fn a_crash_after_the_move_is_finished_by_a_retry() {
        let store = MemoryStore::new("b");
        let ledger = Ledger::new(&store);
        // The pointer already names v2 but nothing was recorded.
        let pointer = MemoryPointer::at(Some("v2"), Some(at(6)));
        let publisher = RecordingPublisher::default();
        let v2 = PassedVerdict::new(&verdict("v2", Outcome::Pass, 5)).unwrap();
        let out = promote(&ledger, &pointer, &publisher, &v2, &promoter(7))
            .await
            .unwrap();
        assert!(matches!(out, Promotion::Promoted { previous: Some(ref p), .. } if p == "v2"));
        assert!(pointer.moves().is_empty(), "no second move");
        assert!(ledger.promotion("bot", "v2").await.unwrap().is_some());
        assert_eq!(publisher.taken().len(), 1);
    }

    #[tokio::test]
    async fn an_older_pass_does_not_replace_a_newer_one() {
        let store = MemoryStore::new("b");
        seed(&store, &verdict("v3", Outcome::Pass, 10)).await;
        let ledger = Ledger::new(&store);
        let pointer = MemoryPointer::at(Some("v3"), Some(at(11)));
        let publisher = RecordingPublisher::default();
        let v2 = PassedVerdict::new(&verdict("v2", Outcome::Pass, 5)).unwrap();
        let out = promote(&ledger, &pointer, &publisher, &v2, &promoter(12))
            .await
            .unwrap();
        assert!(
            matches!(out, Promotion::Declined { ref reason } if reason.contains("roll production back")),
            "{out:?}"
        );
        assert_eq!(pointer.current().release.as_deref(), Some("v3"));
        assert!(ledger.promotion("bot", "v2").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_concurrent_move_is_a_retryable_conflict_and_records_nothing() {
        struct Racing(MemoryPointer);
        impl ReleasePointer for Racing {
            fn describe(&self) -> String {
                self.0.describe()
            }
            async fn read(&self) -> Result<crate::release::PointerState, PointerError> {
                let state = self.0.read().await;
                // Someone moves the pointer right after we looked.
                self.0.move_by_hand("v9", at(30));
                state
            }
            async fn set(&self, change: &PointerMove) -> Result<MoveOutcome, PointerError> {
                self.0.set(change).await
            }
        }
        let store = MemoryStore::new("b");
        let ledger = Ledger::new(&store);
        let pointer = Racing(MemoryPointer::at(Some("v1"), None));
        let publisher = RecordingPublisher::default();
        let v2 = PassedVerdict::new(&verdict("v2", Outcome::Pass, 5)).unwrap();
        let err = promote(&ledger, &pointer, &publisher, &v2, &promoter(6))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PromotionError::Conflict { ref now, .. } if now == "v9"),
            "{err}"
        );
        assert!(ledger.promotion("bot", "v2").await.unwrap().is_none());
        assert!(publisher.taken().is_empty());
    }
}
