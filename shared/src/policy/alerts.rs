//! The `alerts` section: severities and what alerts may contain.
//!
//! Only `include_prompt_text` exists so far (check-gates and send-alert both honour it);
//! severities arrive with issue #7. Unknown keys are rejected rather than ignored.

use serde::Deserialize;

use super::Problem;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsPolicy {
    /// Whether alerts and events may quote prompt text (shortened). Off by default: prompts
    /// can hold customer data, and alerts go to email and chat.
    #[serde(default)]
    pub include_prompt_text: bool,
}

impl AlertsPolicy {
    pub fn validate(&self, _problems: &mut Vec<Problem>) {}
}
