//! The exactly-once protocol over in-memory fakes (the decision rules have their own table
//! in `decision.rs`; the real SSM/Lambda/S3/EventBridge path is tested end to end).

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::alarm::{AlarmChange, AlarmState};
use super::*;
use crate::events::RecordingPublisher;
use crate::ledger::VerdictSummary;
use crate::release::MemoryPointer;
use crate::store::memory::MemoryStore;
use crate::verdict::Outcome;

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
        .single()
        .unwrap()
        + chrono::Duration::minutes(minute)
}

struct World {
    store: MemoryStore,
    pointer: MemoryPointer,
    publisher: RecordingPublisher,
    rules: RollbackRules,
    now: Mutex<DateTime<Utc>>,
}

impl World {
    /// v1 pass, v2 fail, v3 pass; the pointer names v3 since minute 30.
    async fn new() -> World {
        let store = MemoryStore::new("b");
        for (release, outcome, minute) in [
            ("v1", Outcome::Pass, 0),
            ("v2", Outcome::Fail, 10),
            ("v3", Outcome::Pass, 20),
        ] {
            let v = VerdictSummary {
                application: "bot".into(),
                release: release.into(),
                outcome,
                decided_at: t(minute),
            };
            store
                .put(
                    &crate::layout::verdict_key("bot", release),
                    serde_json::to_vec(&v).unwrap(),
                    "application/json",
                )
                .await
                .unwrap();
        }
        World {
            store,
            pointer: MemoryPointer::at(Some("v3"), Some(t(30))),
            publisher: RecordingPublisher::default(),
            rules: RollbackRules {
                alarms: vec!["bot-*".into()],
                ..RollbackRules::default()
            },
            now: Mutex::new(t(41)),
        }
    }

    fn set_now(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap() = now;
    }

    async fn evaluate(
        &self,
        alarm: &AlarmChange,
        lease: Duration,
    ) -> Result<RollbackOutcome, RollbackError> {
        let now = || *self.now.lock().unwrap();
        let ctx = Context {
            application: "bot",
            rules: &self.rules,
            ledger: Ledger::new(&self.store),
            pointer: &self.pointer,
            publisher: &self.publisher,
            options: Options {
                lease,
                poll: Duration::from_millis(5),
            },
            now: &now,
        };
        evaluate(&ctx, alarm).await
    }

    async fn records(&self) -> Vec<RollbackRecord> {
        Ledger::new(&self.store).rollbacks("bot").await.unwrap()
    }
}

fn alarm(event_id: &str, since: i64) -> AlarmChange {
    AlarmChange {
        event_id: event_id.into(),
        event_time: Some(t(since)),
        name: "bot-errors".into(),
        arn: None,
        state: AlarmState {
            value: "ALARM".into(),
            reason: Some("Threshold Crossed".into()),
            timestamp: Some(t(since)),
        },
        previous: Some(AlarmState {
            value: "OK".into(),
            reason: None,
            timestamp: None,
        }),
        evidence: None,
        metrics: vec!["GenAI/Evaluation ErrorRate".into()],
    }
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn rolls_back_once_records_and_announces() {
    let world = World::new().await;
    let out = world.evaluate(&alarm("e-1", 40), LEASE).await.unwrap();
    assert!(
        matches!(&out, RollbackOutcome::RolledBack { from, to, .. } if from == "v3" && to == "v1"),
        "{out:?}"
    );
    assert_eq!(world.pointer.current().release.as_deref(), Some("v1"));
    let moves = world.pointer.moves();
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0].kind, MoveKind::Rollback);
    assert!(
        moves[0]
            .label
            .as_deref()
            .unwrap()
            .starts_with("rollback-from-v3-to-v1-")
    );
    assert_eq!(
        moves[0].expected_revision, "1",
        "conditional on the decided revision"
    );

    let records = world.records().await;
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert!(r.executed && !r.dry_run && r.completed_at.is_some());
    assert_eq!(
        (r.from.as_deref(), r.to.as_deref()),
        (Some("v3"), Some("v1"))
    );
    assert_eq!(r.alarm.event_id, "e-1");

    let events = world.publisher.taken();
    assert_eq!(events.len(), 1);
    let Event::RollbackExecuted(e) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(e.event_key, "rollback/bot/e-1");
    assert_eq!(e.alarm.metrics, vec!["GenAI/Evaluation ErrorRate"]);
    assert!(
        e.reason
            .contains("v1 is the most recent earlier release that passed"),
        "{}",
        e.reason
    );

    // Re-delivered twice: nothing more happens.
    for _ in 0..2 {
        let again = world.evaluate(&alarm("e-1", 40), LEASE).await.unwrap();
        assert_eq!(
            again,
            RollbackOutcome::Duplicate {
                application: "bot".into(),
                executed: true
            }
        );
    }
    assert_eq!(world.pointer.moves().len(), 1);
    assert!(world.publisher.taken().is_empty());
}

#[tokio::test]
async fn concurrent_deliveries_roll_back_once() {
    let world = World::new().await;
    let a = alarm("e-1", 40);
    let (x, y, z) = tokio::join!(
        world.evaluate(&a, LEASE),
        world.evaluate(&a, LEASE),
        world.evaluate(&a, LEASE)
    );
    let outcomes = [x.unwrap(), y.unwrap(), z.unwrap()];
    let rolled = outcomes
        .iter()
        .filter(|o| matches!(o, RollbackOutcome::RolledBack { .. }))
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|o| matches!(o, RollbackOutcome::Duplicate { executed: true, .. }))
        .count();
    assert_eq!((rolled, duplicates), (1, 2), "{outcomes:?}");
    assert_eq!(world.pointer.moves().len(), 1);
    assert_eq!(world.publisher.taken().len(), 1);
    assert_eq!(world.records().await.len(), 1);
}

#[tokio::test]
async fn a_failed_move_is_finished_by_the_retry() {
    let world = World::new().await;
    *world.pointer.fail_next_set.lock().unwrap() = Some("ThrottlingException".into());
    let err = world.evaluate(&alarm("e-1", 40), LEASE).await.unwrap_err();
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
    let records = world.records().await;
    assert!(
        records[0].completed_at.is_none(),
        "left incomplete for the retry"
    );
    assert!(world.publisher.taken().is_empty());

    // Lambda retries a minute later: past the lease, the retry finishes the job.
    world.set_now(t(42));
    let out = world.evaluate(&alarm("e-1", 40), LEASE).await.unwrap();
    assert!(matches!(out, RollbackOutcome::RolledBack { .. }), "{out:?}");
    assert_eq!(world.pointer.current().release.as_deref(), Some("v1"));
    assert_eq!(world.publisher.taken().len(), 1);
    assert!(world.records().await[0].executed);
}

#[tokio::test]
async fn a_crash_after_the_move_does_not_move_twice() {
    let world = World::new().await;
    // The creator recorded and moved, then died before announcing.
    let record = RollbackRecord {
        schema: SCHEMA,
        application: "bot".into(),
        from: Some("v3".into()),
        to: Some("v1".into()),
        pointer: "memory:pointer".into(),
        alarm: alarm("e-1", 40).to_ref(),
        decided_at: t(41),
        executed: false,
        dry_run: false,
        reason: "alarm".into(),
        completed_at: None,
    };
    Ledger::new(&world.store)
        .record_rollback(&record)
        .await
        .unwrap();
    world.pointer.move_by_hand("v1", t(41));

    world.set_now(t(43));
    let out = world.evaluate(&alarm("e-1", 40), LEASE).await.unwrap();
    assert!(
        matches!(&out, RollbackOutcome::RolledBack { detail, .. } if detail.contains("already named v1")),
        "{out:?}"
    );
    assert!(world.pointer.moves().is_empty(), "no second move");
    assert_eq!(world.publisher.taken().len(), 1);
}

#[tokio::test]
async fn a_redelivery_waits_for_the_creator_within_the_lease() {
    let world = World::new().await;
    let record = RollbackRecord {
        schema: SCHEMA,
        application: "bot".into(),
        from: Some("v3".into()),
        to: Some("v1".into()),
        pointer: "memory:pointer".into(),
        alarm: alarm("e-1", 40).to_ref(),
        decided_at: t(41),
        executed: false,
        dry_run: false,
        reason: "alarm".into(),
        completed_at: None,
    };
    let ledger = Ledger::new(&world.store);
    ledger.record_rollback(&record).await.unwrap();
    // The creator finishes while the re-delivery waits.
    let finish = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut done = record.clone();
        done.executed = true;
        done.completed_at = Some(t(41));
        ledger.update_rollback(&done).await.unwrap();
    };
    let redelivered = alarm("e-1", 40);
    let (out, ()) = tokio::join!(world.evaluate(&redelivered, LEASE), finish);
    assert_eq!(
        out.unwrap(),
        RollbackOutcome::Duplicate {
            application: "bot".into(),
            executed: true
        }
    );
    assert!(world.pointer.moves().is_empty());
}

#[tokio::test]
async fn a_pointer_moved_since_the_decision_is_left_alone() {
    let world = World::new().await;
    // The decision was recorded, then a person shipped a fix before the retry came.
    let record = RollbackRecord {
        schema: SCHEMA,
        application: "bot".into(),
        from: Some("v3".into()),
        to: Some("v1".into()),
        pointer: "memory:pointer".into(),
        alarm: alarm("e-1", 40).to_ref(),
        decided_at: t(41),
        executed: false,
        dry_run: false,
        reason: "alarm".into(),
        completed_at: None,
    };
    Ledger::new(&world.store)
        .record_rollback(&record)
        .await
        .unwrap();
    world.pointer.move_by_hand("v4-fix", t(50));
    world.set_now(t(51));
    let out = world.evaluate(&alarm("e-1", 40), LEASE).await.unwrap();
    assert!(
        matches!(&out, RollbackOutcome::Skipped { reason, .. } if reason.contains("now names v4-fix")),
        "{out:?}"
    );
    assert_eq!(world.pointer.current().release.as_deref(), Some("v4-fix"));
    let events = world.publisher.taken();
    assert!(matches!(&events[..], [Event::RollbackSkipped(s)] if !s.dry_run));
    let records = world.records().await;
    assert!(!records[0].executed && records[0].completed_at.is_some());
}

#[tokio::test]
async fn dry_run_reports_and_leaves_the_pointer() {
    let mut world = World::new().await;
    world.rules.dry_run = true;
    let out = world.evaluate(&alarm("e-1", 40), LEASE).await.unwrap();
    assert!(
        matches!(&out, RollbackOutcome::Skipped { dry_run: true, would_roll_back_to: Some(to), .. } if to == "v1"),
        "{out:?}"
    );
    assert!(world.pointer.moves().is_empty());
    let events = world.publisher.taken();
    let [Event::RollbackSkipped(s)] = &events[..] else {
        panic!("{events:?}")
    };
    assert!(
        s.dry_run
            && s.reason
                .starts_with("dry run: would roll back from v3 to v1"),
        "{}",
        s.reason
    );
    let records = world.records().await;
    assert!(records[0].dry_run && !records[0].executed);
}

#[tokio::test]
async fn no_passing_release_is_skipped_and_announced() {
    let world = World::new().await;
    world
        .store
        .delete(&crate::layout::verdict_key("bot", "v1"))
        .await
        .unwrap();
    let out = world.evaluate(&alarm("e-1", 40), LEASE).await.unwrap();
    assert!(
        matches!(out, RollbackOutcome::Skipped { dry_run: false, .. }),
        "{out:?}"
    );
    assert_eq!(world.pointer.current().release.as_deref(), Some("v3"));
    let events = world.publisher.taken();
    assert!(
        matches!(&events[..], [Event::RollbackSkipped(s)] if s.would_roll_back_to.is_none() && s.current.as_deref() == Some("v3")),
        "{events:?}"
    );
    // Announced once, even when re-delivered.
    world.evaluate(&alarm("e-1", 40), LEASE).await.unwrap();
    assert!(world.publisher.taken().is_empty());
}

#[tokio::test]
async fn ignored_alarms_record_nothing() {
    let world = World::new().await;
    let mut ok = alarm("e-1", 40);
    ok.state.value = "OK".into();
    ok.previous.as_mut().unwrap().value = "ALARM".into();
    let out = world.evaluate(&ok, LEASE).await.unwrap();
    assert!(matches!(out, RollbackOutcome::Ignored { .. }), "{out:?}");
    let out = world.evaluate(&alarm("e-2", 25), LEASE).await.unwrap();
    assert!(
        matches!(&out, RollbackOutcome::Ignored { reason, .. } if reason.contains("before v3 went live")),
        "{out:?}"
    );
    assert!(world.records().await.is_empty());
    assert!(world.publisher.taken().is_empty());
    assert!(world.pointer.moves().is_empty());
}

#[tokio::test]
async fn a_second_alarm_inside_the_cooldown_is_ignored() {
    let world = World::new().await;
    world.evaluate(&alarm("e-1", 40), LEASE).await.unwrap();
    world.set_now(t(50));
    let out = world.evaluate(&alarm("e-2", 49), LEASE).await.unwrap();
    assert!(
        matches!(&out, RollbackOutcome::Ignored { reason, .. } if reason.contains("cooldown")),
        "{out:?}"
    );
    assert_eq!(world.pointer.moves().len(), 1);
}

#[tokio::test]
async fn a_delivery_that_sees_a_concurrent_rollback_reports_a_duplicate() {
    // Delivery A creates its record, then moves the pointer, between delivery B's ledger
    // check and B's pointer read: B sees v1 live since after the alarm and would ignore the
    // alarm. B must report the duplicate instead.
    struct Racing<'a> {
        store: &'a MemoryStore,
        inner: MemoryPointer,
    }
    impl ReleasePointer for Racing<'_> {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        async fn read(&self) -> Result<crate::release::PointerState, PointerError> {
            let record = RollbackRecord {
                schema: SCHEMA,
                application: "bot".into(),
                from: Some("v3".into()),
                to: Some("v1".into()),
                pointer: "memory:pointer".into(),
                alarm: alarm("e-1", 40).to_ref(),
                decided_at: t(41),
                executed: true,
                dry_run: false,
                reason: "alarm".into(),
                completed_at: Some(t(41)),
            };
            Ledger::new(self.store)
                .record_rollback(&record)
                .await
                .unwrap();
            self.inner
                .move_by_hand("v1", t(41) + chrono::Duration::seconds(5));
            self.inner.read().await
        }
        async fn set(&self, change: &PointerMove) -> Result<MoveOutcome, PointerError> {
            self.inner.set(change).await
        }
    }
    let world = World::new().await;
    let pointer = Racing {
        store: &world.store,
        inner: MemoryPointer::at(Some("v3"), Some(t(30))),
    };
    let now = || t(42);
    let ctx = Context {
        application: "bot",
        rules: &world.rules,
        ledger: Ledger::new(&world.store),
        pointer: &pointer,
        publisher: &world.publisher,
        options: Options::default(),
        now: &now,
    };
    let out = evaluate(&ctx, &alarm("e-1", 40)).await.unwrap();
    assert_eq!(
        out,
        RollbackOutcome::Duplicate {
            application: "bot".into(),
            executed: true
        }
    );
    assert!(world.publisher.taken().is_empty());
}
