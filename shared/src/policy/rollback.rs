//! The `rollback` section: which alarms roll a release back, and how cautiously.
//!
//! Not written yet: it arrives with issue #6. Until then the section accepts no keys, so a
//! policy that sets any is rejected rather than silently ignored.

use serde::Deserialize;

use super::Problem;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackPolicy {}

impl RollbackPolicy {
    pub fn validate(&self, _policy: &super::Policy, _problems: &mut Vec<Problem>) {}
}
