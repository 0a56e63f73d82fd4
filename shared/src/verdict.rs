//! Verdicts: the outcome of a release's gate.
//!
//! Fail closed: anything not proven good is not [`Outcome::Pass`].

use serde::{Deserialize, Serialize};

/// A release's gate outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every gate was met with enough evidence.
    Pass,
    /// At least one gate was broken.
    Fail,
    /// Not enough evidence to decide (too few scored prompts, too many unscored ones, an
    /// interval straddling a bar).
    Inconclusive,
    /// The evaluation itself failed (a job failed or was stopped, results missing or unreadable).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Error => "error",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one gate (or of a metric across its gates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Pass,
    Fail,
    Inconclusive,
    /// The metric is reported but no gate applies to it.
    NotGated,
}
