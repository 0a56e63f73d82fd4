//! The `release` section: the application's release pointer and promotion.
//!
//! Not written yet: it arrives with issue #6. Until then the section accepts no keys, so a
//! policy that sets any is rejected rather than silently ignored.

use serde::Deserialize;

use super::Problem;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasePolicy {}

impl ReleasePolicy {
    pub fn validate(&self, _problems: &mut Vec<Problem>) {}
}
