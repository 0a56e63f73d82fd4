//! The `evaluation` section: how Bedrock judges the application's responses.
//!
//! Minimal until issue #4 completes it (custom metrics, KMS key, tags, model checks).

use serde::Deserialize;

use super::Problem;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationPolicy {
    /// The judge: a foundation-model or inference-profile id or ARN.
    pub evaluator_model: String,
    /// Built-in metric names, e.g. `Builtin.Correctness`.
    pub metrics: Vec<String>,
}

impl EvaluationPolicy {
    pub fn validate(&self, problems: &mut Vec<Problem>) {
        if self.metrics.is_empty() {
            problems.push(Problem::at(
                "evaluation.metrics",
                "name at least one metric",
            ));
        }
    }
}
