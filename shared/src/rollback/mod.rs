//! Alarm-driven rollback: from a CloudWatch alarm state change to a moved release pointer.
//!
//! * [`alarm`] reads the alarm event;
//! * [`decision`] is the pure decision (every rule, table-tested);
//! * this module finds the applications an alarm belongs to and carries a decision out,
//!   exactly once per alarm event and application.
//!
//! ## Exactly once, safely
//!
//! For each (application, alarm event id) the ledger holds one [`RollbackRecord`], created
//! with a conditional write **before** anything is done:
//!
//! 1. a record already exists → this is a re-delivery: if it is complete, do nothing; if
//!    not, the invocation that created it may still be working, so wait for it (up to
//!    [`Options::lease`] after the decision), then finish the job ourselves;
//! 2. otherwise decide; an *ignore* records nothing (re-deciding it is harmless), unless a
//!    record appeared meanwhile: a concurrent delivery acted, and this one is a duplicate;
//! 3. create the record (`completed_at` unset). Losing that race is case 1;
//! 4. act: move the pointer **only if it still names the release the decision was made
//!    about** (compare-and-set on the pointer revision). If it already names the target (a
//!    crash after the move), there is nothing to do; if it names anything else, someone
//!    moved it since, and a stale decision must not undo that: the rollback is abandoned
//!    and announced as skipped;
//! 5. publish `Rollback Executed` / `Rollback Skipped` (stable `eventKey`
//!    `rollback/<app>/<alarm event id>`);
//! 6. complete the record (`executed`, `completed_at`).
//!
//! A crash anywhere leaves an incomplete record that the next delivery finishes; steps 4-6
//! are idempotent. The one window left: if an invocation stalls for longer than the lease
//! between reading the pointer and writing it, a re-delivery may finish the job too, and
//! the event can be published twice with the same `eventKey` (consumers de-duplicate on it).

pub mod alarm;
pub mod decision;
pub mod routing;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use thiserror::Error;

use crate::events::{Event, EventPublisher, PublishError, RollbackExecuted, RollbackSkipped};
use crate::ledger::{Ledger, LedgerError, RollbackRecord, SCHEMA};
use crate::policy::rollback::RollbackRules;
use crate::release::{MoveKind, MoveOutcome, PointerError, PointerMove, ReleasePointer, ssm_label};
use crate::store::{ObjectStore, PutOutcome};
use alarm::AlarmChange;
use decision::{Decision, DecisionInput, PointerView};

/// Carrying out a rollback failed; the invocation should fail so the event is retried.
#[derive(Debug, Error)]
pub enum RollbackError {
    #[error(transparent)]
    Pointer(#[from] PointerError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Timing of the exactly-once protocol.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How long after a decision its creator is presumed to still be acting on it. The
    /// function's timeout must be longer.
    pub lease: Duration,
    /// How often a re-delivery looks at the record while waiting.
    pub poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(250),
        }
    }
}

/// What happened for one application (also the handler's response).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RollbackOutcome {
    Ignored {
        application: String,
        reason: String,
    },
    Skipped {
        application: String,
        current: Option<String>,
        would_roll_back_to: Option<String>,
        reason: String,
        dry_run: bool,
    },
    RolledBack {
        application: String,
        from: String,
        to: String,
        pointer: String,
        detail: String,
    },
    /// A re-delivery of an event that was already handled.
    Duplicate {
        application: String,
        executed: bool,
    },
}

/// What one application's rollback needs.
pub struct Context<'a, S: ObjectStore, P: ReleasePointer, E: EventPublisher> {
    pub application: &'a str,
    pub rules: &'a RollbackRules,
    pub ledger: Ledger<'a, S>,
    pub pointer: &'a P,
    pub publisher: &'a E,
    pub options: Options,
    /// The clock (a parameter so tests control it).
    pub now: &'a (dyn Fn() -> DateTime<Utc> + Send + Sync),
}

/// Handles one alarm event for one application. See the module documentation.
pub async fn evaluate<S, P, E>(
    ctx: &Context<'_, S, P, E>,
    alarm: &AlarmChange,
) -> Result<RollbackOutcome, RollbackError>
where
    S: ObjectStore,
    P: ReleasePointer,
    E: EventPublisher,
{
    let application = ctx.application;
    if let Some(record) = ctx.ledger.rollback(application, &alarm.event_id).await? {
        return resume(ctx, record).await;
    }

    // A pointer that does not exist is a configuration problem to report (skip), not to
    // retry; anything else (throttling, network) fails the invocation so it is retried.
    let read = match ctx.pointer.read().await {
        Ok(state) => Ok(state),
        Err(e) if e.is_permanent() => Err(e.to_string()),
        Err(e) => return Err(e.into()),
    };
    let pointer = match &read {
        Ok(state) => PointerView::Known(state),
        Err(why) => PointerView::Unavailable(why),
    };
    let verdicts = ctx.ledger.verdicts(application).await?;
    let promotions = ctx.ledger.promotions(application).await?;
    let rollbacks = ctx.ledger.rollbacks(application).await?;
    let decision = decision::decide(&DecisionInput {
        application,
        rules: ctx.rules,
        alarm,
        pointer,
        verdicts: &verdicts,
        promotions: &promotions,
        rollbacks: &rollbacks,
        now: (ctx.now)(),
    });

    let (record, expected_revision) = match decision {
        Decision::Ignore(ignored) => {
            // A concurrent delivery of this event may have rolled back while we read: then
            // we saw the moved pointer (and ignored the alarm as older than the release it
            // now names). Its record was created before the move, so it is visible now.
            if let Some(record) = ctx.ledger.rollback(application, &alarm.event_id).await? {
                return resume(ctx, record).await;
            }
            let reason = ignored.to_string();
            tracing::info!(application, alarm = %alarm.name, event_id = %alarm.event_id, %reason, "alarm ignored");
            return Ok(RollbackOutcome::Ignored {
                application: application.to_owned(),
                reason,
            });
        }
        Decision::Skip(skipped) => (
            RollbackRecord {
                schema: SCHEMA,
                application: application.to_owned(),
                from: skipped.current,
                to: None,
                pointer: ctx.pointer.describe(),
                alarm: alarm.to_ref(),
                decided_at: (ctx.now)(),
                executed: false,
                dry_run: false,
                reason: skipped.reason,
                completed_at: None,
            },
            None,
        ),
        Decision::RollBack(planned) => (
            RollbackRecord {
                schema: SCHEMA,
                application: application.to_owned(),
                from: Some(planned.from),
                to: Some(planned.to.release().to_owned()),
                pointer: ctx.pointer.describe(),
                alarm: alarm.to_ref(),
                decided_at: (ctx.now)(),
                executed: false,
                dry_run: planned.dry_run,
                reason: planned.reason,
                completed_at: None,
            },
            Some(planned.revision),
        ),
    };
    match ctx.ledger.record_rollback(&record).await? {
        PutOutcome::Created => complete(ctx, record, expected_revision).await,
        PutOutcome::AlreadyExists => {
            // A concurrent delivery of the same event decided first.
            match ctx.ledger.rollback(application, &alarm.event_id).await? {
                Some(existing) => resume(ctx, existing).await,
                None => complete(ctx, record, expected_revision).await,
            }
        }
    }
}

/// A record exists for this event: finished → duplicate; unfinished → wait for its creator,
/// then take over.
async fn resume<S, P, E>(
    ctx: &Context<'_, S, P, E>,
    mut record: RollbackRecord,
) -> Result<RollbackOutcome, RollbackError>
where
    S: ObjectStore,
    P: ReleasePointer,
    E: EventPublisher,
{
    let lease_end = chrono::Duration::from_std(ctx.options.lease)
        .map(|lease| record.decided_at + lease)
        .unwrap_or(record.decided_at);
    loop {
        if record.completed_at.is_some() {
            tracing::info!(application = ctx.application, event_id = %record.alarm.event_id, executed = record.executed, "alarm event already handled; nothing to do");
            return Ok(RollbackOutcome::Duplicate {
                application: ctx.application.to_owned(),
                executed: record.executed,
            });
        }
        if (ctx.now)() >= lease_end {
            break;
        }
        tokio::time::sleep(ctx.options.poll).await;
        match ctx
            .ledger
            .rollback(ctx.application, &record.alarm.event_id)
            .await?
        {
            Some(latest) => record = latest,
            None => break,
        }
    }
    tracing::warn!(application = ctx.application, event_id = %record.alarm.event_id, decided_at = %record.decided_at, "the invocation that decided this alarm event did not finish; finishing it");
    complete(ctx, record, None).await
}

/// Steps 4-6: act (compare-and-set), announce, complete the record.
async fn complete<S, P, E>(
    ctx: &Context<'_, S, P, E>,
    mut record: RollbackRecord,
    expected_revision: Option<String>,
) -> Result<RollbackOutcome, RollbackError>
where
    S: ObjectStore,
    P: ReleasePointer,
    E: EventPublisher,
{
    let application = ctx.application;
    let event_key = format!("rollback/{application}/{}", record.alarm.event_id);
    let mut moved_detail = None;
    if let (Some(from), Some(to), false) = (&record.from, &record.to, record.dry_run) {
        let current = ctx.pointer.read().await?;
        let revision = expected_revision.unwrap_or_else(|| current.revision.clone());
        if current.release.as_deref() == Some(to.as_str()) {
            // Moved already (a crash after the move, or a person did the same).
            moved_detail = Some(format!("{} already named {to}", current.detail));
        } else if current.release.as_deref() == Some(from.as_str()) {
            let change = PointerMove {
                release: to.clone(),
                expected_revision: revision,
                kind: MoveKind::Rollback,
                why: format!(
                    "evalgate rollback of {application}: {from} -> {to} (alarm {}, event {})",
                    record.alarm.name, record.alarm.event_id
                ),
                label: Some(ssm_label(from, to, &record.alarm.event_id)),
                at: (ctx.now)(),
            };
            match ctx.pointer.set(&change).await {
                Ok(MoveOutcome::Moved { detail, .. }) => moved_detail = Some(detail),
                Ok(MoveOutcome::Conflict { current }) => {
                    record.reason = format!(
                        "{}. Not acted on: the pointer changed while evalgate was deciding (it now names {}); a human or another process moved it",
                        record.reason,
                        current.release.as_deref().unwrap_or("no release")
                    );
                }
                Err(e) if e.is_permanent() => {
                    record.reason = format!("{}. Not acted on: {e}", record.reason);
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            record.reason = format!(
                "{}. Not acted on: the pointer now names {} instead of {from}; someone moved it since the decision, and evalgate does not undo that",
                record.reason,
                current.release.as_deref().unwrap_or("no release")
            );
        }
    }

    let pointer = ctx.pointer.describe();
    let outcome = match (&record.from, &record.to, &moved_detail) {
        (Some(from), Some(to), Some(detail)) => {
            record.executed = true;
            ctx.publisher
                .publish(&Event::RollbackExecuted(RollbackExecuted {
                    event_key,
                    application: application.to_owned(),
                    from: from.clone(),
                    to: to.clone(),
                    pointer: pointer.clone(),
                    alarm: record.alarm.clone(),
                    reason: format!("{} ({detail})", record.reason),
                }))
                .await?;
            tracing::warn!(application, %from, %to, %pointer, %detail, alarm = %record.alarm.name, event_id = %record.alarm.event_id, "rolled back");
            RollbackOutcome::RolledBack {
                application: application.to_owned(),
                from: from.clone(),
                to: to.clone(),
                pointer,
                detail: detail.clone(),
            }
        }
        _ => {
            record.executed = false;
            let would = record.to.clone();
            let reason = if record.dry_run {
                format!(
                    "dry run: would roll back from {} to {}: {}",
                    record.from.as_deref().unwrap_or("?"),
                    would.as_deref().unwrap_or("?"),
                    record.reason
                )
            } else {
                record.reason.clone()
            };
            ctx.publisher
                .publish(&Event::RollbackSkipped(RollbackSkipped {
                    event_key,
                    application: application.to_owned(),
                    current: record.from.clone(),
                    would_roll_back_to: would.clone(),
                    alarm: record.alarm.clone(),
                    reason: reason.clone(),
                    dry_run: record.dry_run,
                }))
                .await?;
            tracing::warn!(application, current = ?record.from, would_roll_back_to = ?would, dry_run = record.dry_run, alarm = %record.alarm.name, event_id = %record.alarm.event_id, %reason, "rollback skipped");
            RollbackOutcome::Skipped {
                application: application.to_owned(),
                current: record.from.clone(),
                would_roll_back_to: would,
                reason,
                dry_run: record.dry_run,
            }
        }
    };
    record.completed_at = Some((ctx.now)());
    ctx.ledger.update_rollback(&record).await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests;
