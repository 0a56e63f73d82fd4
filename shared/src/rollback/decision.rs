//! The rollback decision: a pure function of the alarm, the pointer, the ledger and the
//! clock. `docs/rollback.md` explains every rule; they apply in this order:
//!
//! 1. only a transition **into** `ALARM` acts (ignore);
//! 2. the pointer must exist and name a release (skip);
//! 3. evalgate must know when the current release went live (skip: it cannot tell whether
//!    the alarm is about it);
//! 4. an alarm whose `ALARM` state began before the current release went live is not about
//!    it: it neither rolls it back nor blocks it (ignore);
//! 5. within `cooldown` of the last rollback, alarms are ignored (ignore);
//! 6. an `ALARM` state older than `max_alarm_age` is stale: the alarm may have recovered
//!    (skip);
//! 7. noise tolerance: the breach the alarm reports must cover `min_periods` breaching
//!    datapoints and `min_duration` (datapoints × period); missing datapoints do not count
//!    as breaching (ignore);
//! 8. the target is the most recent release before the current one with a `pass` verdict,
//!    never one evalgate already rolled back from; none → skip. `dry_run` reports the
//!    decision without acting.
//!
//! "Ignore" is logged only; "skip" is recorded and announced (`Rollback Skipped`, critical).

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};

use super::alarm::{AlarmChange, Evidence};
use crate::ledger::{PromotionRecord, RollbackRecord, VerdictSummary};
use crate::policy::rollback::{RollbackRules, format_duration};
use crate::promotion::PassedVerdict;
use crate::release::PointerState;
use crate::verdict::Outcome;

/// The pointer as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub enum PointerView<'a> {
    Known(&'a PointerState),
    /// It could not be read for a reason retrying will not fix (it does not exist, …).
    Unavailable(&'a str),
}

/// Everything the decision looks at.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    pub application: &'a str,
    pub rules: &'a RollbackRules,
    pub alarm: &'a AlarmChange,
    pub pointer: PointerView<'a>,
    /// Every verdict of the application.
    pub verdicts: &'a [VerdictSummary],
    pub promotions: &'a [PromotionRecord],
    pub rollbacks: &'a [RollbackRecord],
    pub now: DateTime<Utc>,
}

/// Why an alarm was ignored (logged, not announced).
#[derive(Debug, Clone, PartialEq)]
pub enum Ignored {
    NotEnteringAlarm {
        state: String,
        previous: Option<String>,
    },
    BeganBeforeRelease {
        release: String,
        since: DateTime<Utc>,
        went_live_at: DateTime<Utc>,
    },
    Cooldown {
        last_rollback: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    TooShort {
        required: String,
        reported: String,
    },
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::NotEnteringAlarm { state, previous } => write!(
                f,
                "not a transition into ALARM ({} -> {state})",
                previous.as_deref().unwrap_or("?")
            ),
            Ignored::BeganBeforeRelease {
                release,
                since,
                went_live_at,
            } => write!(
                f,
                "the alarm has been in ALARM since {}, before {release} went live at {}: it is not about {release}",
                since.to_rfc3339(),
                went_live_at.to_rfc3339()
            ),
            Ignored::Cooldown {
                last_rollback,
                until,
            } => write!(
                f,
                "inside the cooldown after the rollback at {} (until {})",
                last_rollback.to_rfc3339(),
                until.to_rfc3339()
            ),
            Ignored::TooShort { required, reported } => write!(
                f,
                "the breach is shorter than required: the policy asks for {required}, the alarm reports {reported} (missing data is not counted as a failure)"
            ),
        }
    }
}

/// A rollback evalgate will not perform, to be recorded and announced.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub current: Option<String>,
    pub would_roll_back_to: Option<String>,
    pub reason: String,
}

/// A rollback to perform (or, with `dry_run`, to report).
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub from: String,
    pub to: PassedVerdict,
    /// The pointer revision the decision was made on (moves are conditional on it).
    pub revision: String,
    pub dry_run: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Ignore(Ignored),
    Skip(Skipped),
    RollBack(Planned),
}

/// When the current release went live: what the pointer records, else the latest evalgate
/// record that put it there (a promotion, or an executed rollback to it).
pub fn went_live_at(
    pointer: &PointerState,
    promotions: &[PromotionRecord],
    rollbacks: &[RollbackRecord],
) -> Option<DateTime<Utc>> {
    if pointer.went_live_at.is_some() {
        return pointer.went_live_at;
    }
    let release = pointer.release.as_deref()?;
    let promoted = promotions
        .iter()
        .filter(|p| p.release == release)
        .map(|p| p.promoted_at);
    let rolled_back_to = rollbacks
        .iter()
        .filter(|r| r.executed && r.to.as_deref() == Some(release))
        .map(|r| r.decided_at);
    promoted.chain(rolled_back_to).max()
}

/// The most recent release before `current` whose verdict is `pass`, excluding releases
/// evalgate has rolled back from. "Before" is by verdict time (`decided_at`): releases are
/// gated in the order they are built. When `current` has no verdict (moved there by hand),
/// every other passing release is a candidate.
pub fn rollback_target(
    current: &str,
    verdicts: &[VerdictSummary],
    rollbacks: &[RollbackRecord],
) -> Option<PassedVerdict> {
    let current_decided = verdicts
        .iter()
        .filter(|v| v.release == current)
        .map(|v| v.decided_at)
        .max();
    let rolled_back_from: HashSet<&str> = rollbacks
        .iter()
        .filter(|r| r.executed)
        .filter_map(|r| r.from.as_deref())
        .collect();
    verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Pass)
        .filter(|v| v.release != current)
        .filter(|v| !rolled_back_from.contains(v.release.as_str()))
        .filter(|v| current_decided.is_none_or(|c| v.decided_at < c))
        .max_by(|a, b| (a.decided_at, &a.release).cmp(&(b.decided_at, &b.release)))
        // Outcome::Pass was filtered above; `new` checks it again by construction.
        .and_then(|v| PassedVerdict::new(v).ok())
}

/// The last rollback that was executed, or is being executed, for the cooldown.
fn last_rollback(rollbacks: &[RollbackRecord]) -> Option<DateTime<Utc>> {
    rollbacks
        .iter()
        .filter(|r| !r.dry_run && r.to.is_some() && (r.executed || r.completed_at.is_none()))
        .map(|r| r.decided_at)
        .max()
}

fn describe_evidence(evidence: &Evidence) -> String {
    let mut text = format!(
        "{} breaching datapoint{}",
        evidence.breaching,
        if evidence.breaching == 1 { "" } else { "s" }
    );
    if let Some(period) = evidence.period {
        text.push_str(&format!(" of {}", format_duration(period)));
    }
    if evidence.missing > 0 {
        text.push_str(&format!(" ({} missing)", evidence.missing));
    }
    text
}

fn noise_check(rules: &RollbackRules, alarm: &AlarmChange) -> Option<Ignored> {
    if rules.min_periods.is_none() && rules.min_duration.is_none() {
        return None;
    }
    let mut required = Vec::new();
    if let Some(n) = rules.min_periods {
        required.push(format!(
            "{n} breaching datapoint{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    if let Some(d) = rules.min_duration {
        required.push(format!("{} in breach", format_duration(d)));
    }
    let required = required.join(" and ");
    let Some(evidence) = &alarm.evidence else {
        return Some(Ignored::TooShort {
            required,
            reported: "no datapoints (composite alarm or no reason data)".into(),
        });
    };
    let periods_ok = rules.min_periods.is_none_or(|n| evidence.breaching >= n);
    let duration_ok = match (rules.min_duration, evidence.breach_duration()) {
        (None, _) => true,
        (Some(required), Some(reported)) => reported >= required,
        (Some(_), None) => false,
    };
    if periods_ok && duration_ok {
        None
    } else {
        Some(Ignored::TooShort {
            required,
            reported: describe_evidence(evidence),
        })
    }
}

/// Decides what to do about one alarm event for one application.
pub fn decide(input: &DecisionInput<'_>) -> Decision {
    let alarm = input.alarm;
    let rules = input.rules;

    // 1. Only transitions into ALARM act.
    if !alarm.enters_alarm() {
        return Decision::Ignore(Ignored::NotEnteringAlarm {
            state: alarm.state.value.clone(),
            previous: alarm.previous.as_ref().map(|p| p.value.clone()),
        });
    }

    // 2. A pointer that names a release.
    let pointer = match input.pointer {
        PointerView::Known(state) => state,
        PointerView::Unavailable(why) => {
            return Decision::Skip(Skipped {
                current: None,
                would_roll_back_to: None,
                reason: format!("the release pointer cannot be read: {why}"),
            });
        }
    };
    let Some(current) = pointer.release.as_deref() else {
        return Decision::Skip(Skipped {
            current: None,
            would_roll_back_to: None,
            reason: format!(
                "the release pointer names no release ({}); there is nothing evalgate can safely roll back",
                pointer.detail
            ),
        });
    };
    let skip = |reason: String| {
        Decision::Skip(Skipped {
            current: Some(current.to_owned()),
            would_roll_back_to: None,
            reason,
        })
    };

    // 3./4. Is the alarm about the current release?
    let Some(since) = alarm.since() else {
        return skip(
            "the alarm event carries no state timestamp, so evalgate cannot tell whether the alarm began before the current release went live".into(),
        );
    };
    let Some(live) = went_live_at(pointer, input.promotions, input.rollbacks) else {
        return skip(format!(
            "evalgate cannot tell when {current} went live: the pointer does not record it and evalgate did not promote it; roll back by hand if the alarm is about {current}"
        ));
    };
    if since < live {
        return Decision::Ignore(Ignored::BeganBeforeRelease {
            release: current.to_owned(),
            since,
            went_live_at: live,
        });
    }

    // 5. Cooldown after any rollback.
    if let Some(last) = last_rollback(input.rollbacks)
        && let Ok(cooldown) = chrono::Duration::from_std(rules.cooldown)
        && input.now < last + cooldown
    {
        return Decision::Ignore(Ignored::Cooldown {
            last_rollback: last,
            until: last + cooldown,
        });
    }

    // 6. Stale events (retried deliveries): the alarm may have recovered since.
    if let Ok(max_age) = chrono::Duration::from_std(rules.max_alarm_age)
        && input.now - since > max_age
    {
        return skip(format!(
            "the alarm entered ALARM at {}, more than max_alarm_age ({}) ago; it may have recovered since, so evalgate does not act on it. Check the alarm and roll back by hand if it is still in ALARM",
            since.to_rfc3339(),
            format_duration(rules.max_alarm_age)
        ));
    }

    // 7. Noise tolerance.
    if let Some(ignored) = noise_check(rules, alarm) {
        return Decision::Ignore(ignored);
    }

    // 8. The target.
    let Some(target) = rollback_target(current, input.verdicts, input.rollbacks) else {
        return skip(format!(
            "no release before {current} passed its gate (evalgate never rolls back to a failed, inconclusive, errored or ungated release, nor to one it already rolled back from)"
        ));
    };
    let evidence = alarm
        .evidence
        .as_ref()
        .map(|e| format!(" ({})", describe_evidence(e)))
        .unwrap_or_default();
    let reason = format!(
        "alarm {} entered ALARM at {}{evidence}, after {current} went live at {}; {} is the most recent earlier release that passed its gate (verdict {})",
        alarm.name,
        since.to_rfc3339(),
        live.to_rfc3339(),
        target.release(),
        target.decided_at().to_rfc3339()
    );
    Decision::RollBack(Planned {
        from: current.to_owned(),
        to: target,
        revision: pointer.revision.clone(),
        dry_run: rules.dry_run,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::AlarmRef;
    use crate::ledger::SCHEMA;
    use crate::rollback::alarm::{AlarmState, Comparison};
    use chrono::TimeZone;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn t(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .single()
            .unwrap()
            + chrono::Duration::minutes(minute)
    }

    fn verdict(release: &str, outcome: Outcome, minute: i64) -> VerdictSummary {
        VerdictSummary {
            application: "bot".into(),
            release: release.into(),
            outcome,
            decided_at: t(minute),
        }
    }

    fn promotion(release: &str, minute: i64) -> PromotionRecord {
        PromotionRecord {
            schema: SCHEMA,
            application: "bot".into(),
            release: release.into(),
            previous: None,
            pointer: "ssm:/bot/release".into(),
            promoted_at: t(minute),
            promoted_by: "test".into(),
            verdict_uri: "s3://b/v".into(),
            verdict_outcome: Outcome::Pass,
        }
    }

    fn rollback(
        from: &str,
        to: &str,
        minute: i64,
        executed: bool,
        dry_run: bool,
    ) -> RollbackRecord {
        RollbackRecord {
            schema: SCHEMA,
            application: "bot".into(),
            from: Some(from.into()),
            to: Some(to.into()),
            pointer: "ssm:/bot/release".into(),
            alarm: AlarmRef {
                name: "bot-errors".into(),
                arn: None,
                state: "ALARM".into(),
                previous_state: None,
                reason: None,
                since: None,
                metrics: vec![],
                event_id: format!("e-{minute}"),
            },
            decided_at: t(minute),
            executed,
            dry_run,
            reason: String::new(),
            completed_at: Some(t(minute)),
        }
    }

    fn pointer(release: Option<&str>, live: Option<i64>) -> PointerState {
        PointerState {
            release: release.map(str::to_owned),
            revision: "7".into(),
            went_live_at: live.map(t),
            detail: "version 7".into(),
            routing: BTreeMap::new(),
        }
    }

    fn alarm(since: i64, evidence: Option<(u32, u32, u64)>) -> AlarmChange {
        AlarmChange {
            event_id: "event-1".into(),
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
            evidence: evidence.map(|(breaching, missing, period)| Evidence {
                breaching,
                missing,
                period: Some(Duration::from_secs(period)),
                comparison: Comparison::Greater,
                threshold: Some(5.0),
                values: vec![],
            }),
            metrics: vec![],
        }
    }

    /// The baseline: v1 passed and was promoted, v2 failed, v3 passed and was promoted at
    /// minute 30; the pointer names v3; an alarm enters ALARM at minute 40; now is 41.
    struct Case {
        rules: RollbackRules,
        alarm: AlarmChange,
        pointer: Result<PointerState, String>,
        verdicts: Vec<VerdictSummary>,
        promotions: Vec<PromotionRecord>,
        rollbacks: Vec<RollbackRecord>,
        now: DateTime<Utc>,
    }

    impl Case {
        fn new() -> Case {
            Case {
                rules: RollbackRules {
                    alarms: vec!["bot-*".into()],
                    ..RollbackRules::default()
                },
                alarm: alarm(40, Some((3, 0, 60))),
                pointer: Ok(pointer(Some("v3"), Some(30))),
                verdicts: vec![
                    verdict("v1", Outcome::Pass, 0),
                    verdict("v2", Outcome::Fail, 10),
                    verdict("v3", Outcome::Pass, 20),
                ],
                promotions: vec![promotion("v1", 1), promotion("v3", 30)],
                rollbacks: vec![],
                now: t(41),
            }
        }

        fn decide(&self) -> Decision {
            let pointer = match &self.pointer {
                Ok(state) => PointerView::Known(state),
                Err(why) => PointerView::Unavailable(why),
            };
            decide(&DecisionInput {
                application: "bot",
                rules: &self.rules,
                alarm: &self.alarm,
                pointer,
                verdicts: &self.verdicts,
                promotions: &self.promotions,
                rollbacks: &self.rollbacks,
                now: self.now,
            })
        }
    }

    fn rolls_back_to(decision: &Decision) -> Option<(&str, &str, bool)> {
        match decision {
            Decision::RollBack(p) => Some((p.from.as_str(), p.to.release(), p.dry_run)),
            _ => None,
        }
    }

    fn skip_reason(decision: &Decision) -> Option<&str> {
        match decision {
            Decision::Skip(s) => Some(s.reason.as_str()),
            _ => None,
        }
    }

    #[test]
    fn table() {
        type Setup = fn(&mut Case);
        type Check = fn(&Decision) -> bool;
        let cases: Vec<(&str, Setup, Check)> = vec![
            (
                "rolls back past a failed release to the previous pass",
                |_| {},
                |d| rolls_back_to(d) == Some(("v3", "v1", false)),
            ),
            (
                "the target is the most recent pass before the current release",
                |c| c.verdicts.push(verdict("v2b", Outcome::Pass, 15)),
                |d| rolls_back_to(d) == Some(("v3", "v2b", false)),
            ),
            (
                "inconclusive and errored releases are never targets",
                |c| {
                    c.verdicts.push(verdict("v2c", Outcome::Inconclusive, 16));
                    c.verdicts.push(verdict("v2d", Outcome::Error, 17));
                },
                |d| rolls_back_to(d) == Some(("v3", "v1", false)),
            ),
            (
                "releases gated after the current one are not targets",
                |c| c.verdicts.push(verdict("v4", Outcome::Pass, 35)),
                |d| rolls_back_to(d) == Some(("v3", "v1", false)),
            ),
            (
                "a release evalgate rolled back from is never a target",
                |c| {
                    c.verdicts.push(verdict("v2b", Outcome::Pass, 15));
                    c.rollbacks.push(rollback("v2b", "v1", -100, true, false));
                },
                |d| rolls_back_to(d) == Some(("v3", "v1", false)),
            ),
            (
                "a dry run rolled back from nothing: its 'from' stays a candidate",
                |c| {
                    c.verdicts.push(verdict("v2b", Outcome::Pass, 15));
                    c.rollbacks.push(rollback("v2b", "v1", -100, false, true));
                },
                |d| rolls_back_to(d) == Some(("v3", "v2b", false)),
            ),
            (
                "no earlier passing release: skip",
                |c| c.verdicts.retain(|v| v.release != "v1"),
                |d| skip_reason(d).is_some_and(|r| r.contains("no release before v3 passed")),
            ),
            (
                "an unknown current release falls back to the latest pass",
                |c| {
                    c.pointer = Ok(pointer(Some("hotfix"), Some(30)));
                },
                |d| rolls_back_to(d) == Some(("hotfix", "v3", false)),
            ),
            (
                "ALARM -> OK is ignored",
                |c| {
                    c.alarm.state.value = "OK".into();
                    c.alarm.previous.as_mut().unwrap().value = "ALARM".into();
                },
                |d| matches!(d, Decision::Ignore(Ignored::NotEnteringAlarm { .. })),
            ),
            (
                "INSUFFICIENT_DATA is not ALARM",
                |c| c.alarm.state.value = "INSUFFICIENT_DATA".into(),
                |d| matches!(d, Decision::Ignore(Ignored::NotEnteringAlarm { .. })),
            ),
            (
                "an alarm that began before the promotion is ignored",
                |c| c.alarm = alarm(25, Some((3, 0, 60))),
                |d| matches!(d, Decision::Ignore(Ignored::BeganBeforeRelease { .. })),
            ),
            (
                "without a pointer timestamp, the promotion record dates the release",
                |c| {
                    c.pointer = Ok(pointer(Some("v3"), None));
                    c.alarm = alarm(25, Some((3, 0, 60)));
                },
                |d| matches!(d, Decision::Ignore(Ignored::BeganBeforeRelease { went_live_at, .. }) if *went_live_at == t(30)),
            ),
            (
                "an executed rollback to the current release dates it too",
                |c| {
                    c.pointer = Ok(pointer(Some("v3"), None));
                    c.promotions.clear();
                    c.verdicts.push(verdict("v4", Outcome::Pass, 32));
                    c.rollbacks.push(rollback("v4", "v3", 35, true, false));
                    c.now = t(100);
                    c.alarm = alarm(99, None);
                },
                |d| rolls_back_to(d) == Some(("v3", "v1", false)),
            ),
            (
                "unknown go-live time: skip rather than guess",
                |c| {
                    c.pointer = Ok(pointer(Some("v3"), None));
                    c.promotions.clear();
                },
                |d| skip_reason(d).is_some_and(|r| r.contains("cannot tell when v3 went live")),
            ),
            (
                "inside the cooldown after a rollback: ignored",
                |c| c.rollbacks.push(rollback("v9", "v8", 20, true, false)),
                |d| matches!(d, Decision::Ignore(Ignored::Cooldown { .. })),
            ),
            (
                "a rollback still being carried out starts the cooldown too",
                |c| {
                    let mut r = rollback("v9", "v8", 20, false, false);
                    r.completed_at = None;
                    c.rollbacks.push(r);
                },
                |d| matches!(d, Decision::Ignore(Ignored::Cooldown { .. })),
            ),
            (
                "after the cooldown: acts",
                |c| c.rollbacks.push(rollback("v9", "v8", -60, true, false)),
                |d| rolls_back_to(d) == Some(("v3", "v1", false)),
            ),
            (
                "dry runs and skips start no cooldown",
                |c| {
                    c.rollbacks.push(rollback("v3", "v1", 35, false, true));
                    let mut skip = rollback("v3", "v1", 36, false, false);
                    skip.to = None;
                    c.rollbacks.push(skip);
                },
                |d| rolls_back_to(d) == Some(("v3", "v1", false)),
            ),
            (
                "a stale ALARM state is skipped",
                |c| c.now = t(40 + 61),
                |d| skip_reason(d).is_some_and(|r| r.contains("max_alarm_age")),
            ),
            (
                "shorter than min_duration: ignored",
                |c| c.rules.min_duration = Some(Duration::from_secs(300)),
                |d| matches!(d, Decision::Ignore(Ignored::TooShort { reported, .. }) if reported.contains("3 breaching datapoints of 1m")),
            ),
            (
                "long enough for min_duration: acts",
                |c| {
                    c.rules.min_duration = Some(Duration::from_secs(180));
                },
                |d| rolls_back_to(d).is_some(),
            ),
            (
                "fewer breaching datapoints than min_periods: ignored",
                |c| c.rules.min_periods = Some(4),
                |d| matches!(d, Decision::Ignore(Ignored::TooShort { .. })),
            ),
            (
                "missing datapoints do not count as breaching",
                |c| {
                    c.rules.min_periods = Some(3);
                    c.alarm = alarm(40, Some((2, 3, 60)));
                },
                |d| matches!(d, Decision::Ignore(Ignored::TooShort { reported, .. }) if reported.contains("3 missing")),
            ),
            (
                "no datapoints at all with a noise rule: ignored, not a failure",
                |c| {
                    c.rules.min_periods = Some(1);
                    c.alarm = alarm(40, None);
                },
                |d| matches!(d, Decision::Ignore(Ignored::TooShort { .. })),
            ),
            (
                "no datapoints and no noise rule: the alarm's judgement stands",
                |c| c.alarm = alarm(40, None),
                |d| rolls_back_to(d).is_some(),
            ),
            (
                "dry_run plans without acting",
                |c| c.rules.dry_run = true,
                |d| rolls_back_to(d) == Some(("v3", "v1", true)),
            ),
            (
                "a missing pointer is a skip that says why",
                |c| c.pointer = Err("ssm:/bot/release does not exist".into()),
                |d| skip_reason(d).is_some_and(|r| r.contains("does not exist")),
            ),
            (
                "an empty pointer is a skip",
                |c| c.pointer = Ok(pointer(None, Some(30))),
                |d| skip_reason(d).is_some_and(|r| r.contains("names no release")),
            ),
            (
                "no state timestamp and no event time: skip",
                |c| {
                    c.alarm.state.timestamp = None;
                    c.alarm.event_time = None;
                },
                |d| skip_reason(d).is_some(),
            ),
        ];
        let mut failures = Vec::new();
        for (name, setup, check) in cases {
            let mut case = Case::new();
            setup(&mut case);
            let decision = case.decide();
            if !check(&decision) {
                failures.push(format!("{name}: got {decision:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn the_planned_rollback_explains_itself() {
        let decision = Case::new().decide();
        let Decision::RollBack(planned) = decision else {
            panic!("{decision:?}")
        };
        assert_eq!(planned.revision, "7");
        assert!(
            planned.reason.contains("alarm bot-errors entered ALARM"),
            "{}",
            planned.reason
        );
        assert!(
            planned.reason.contains("3 breaching datapoints of 1m"),
            "{}",
            planned.reason
        );
        assert!(
            planned
                .reason
                .contains("v1 is the most recent earlier release that passed"),
            "{}",
            planned.reason
        );
    }

    #[test]
    fn ignore_reasons_read_well() {
        let text = Ignored::TooShort {
            required: "5m in breach".into(),
            reported: "3 breaching datapoints of 1m".into(),
        }
        .to_string();
        assert!(text.contains("asks for 5m in breach"), "{text}");
        assert!(text.contains("missing data is not counted"), "{text}");
    }
}
