//! The `gates` section: what a release must achieve to pass.
//!
//! Not written yet: it arrives with issue #5. Until then the section accepts no keys, so a
//! policy that sets any is rejected rather than silently ignored.

use serde::Deserialize;

use super::Problem;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatesPolicy {}

impl GatesPolicy {
    pub fn validate(&self, _policy: &super::Policy, _problems: &mut Vec<Problem>) {}
}
