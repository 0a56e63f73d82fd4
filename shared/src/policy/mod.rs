//! The application policy: `policies/<application>.yaml`, versioned by the team in its
//! repository and uploaded by its CI. One file configures everything evalgate does for the
//! application:
//!
//! * [`evaluation`] — how Bedrock judges the responses (evaluator model, metrics, custom metrics);
//! * [`gates`] — what a release must achieve to pass;
//! * [`release`] — the application's release pointer and promotion;
//! * [`rollback`] — which alarms roll a release back, and how cautiously;
//! * [`alerts`] — severities and what alerts may contain.
//!
//! Parsing is strict: unknown keys, wrong types and semantic mistakes are all errors that
//! name the file, the line and column, the key path and what to do. `docs/policy.md`
//! documents the format with a complete example.

use std::fmt;

use serde::Deserialize;

pub mod alerts;
pub mod evaluation;
pub mod gates;
pub mod release;
pub mod rollback;

pub use alerts::AlertsPolicy;
pub use evaluation::EvaluationPolicy;
pub use gates::GatesPolicy;
pub use release::ReleasePolicy;
pub use rollback::RollbackPolicy;

/// The only policy format version so far.
pub const VERSION: u32 = 1;

/// The CloudWatch namespace for evaluation metrics unless the policy names another.
pub const DEFAULT_METRICS_NAMESPACE: &str = "GenAI/Evaluation";

fn default_namespace() -> String {
    DEFAULT_METRICS_NAMESPACE.to_owned()
}

/// A parsed, validated policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Policy format version: `1`.
    pub version: u32,
    pub evaluation: EvaluationPolicy,
    #[serde(default)]
    pub gates: GatesPolicy,
    #[serde(default)]
    pub release: Option<ReleasePolicy>,
    #[serde(default)]
    pub rollback: Option<RollbackPolicy>,
    #[serde(default)]
    pub alerts: AlertsPolicy,
    /// CloudWatch namespace of the evaluation metrics (Embedded Metric Format).
    #[serde(default = "default_namespace")]
    pub metrics_namespace: String,
}

/// One thing wrong with a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line and column, when known.
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// Dotted key path, e.g. `gates.metrics.Builtin.Correctness.min_mean`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A problem at a key path, without a location.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            line: None,
            column: None,
            path: path.into(),
            message: message.into(),
        }
    }

    /// A problem at the location of a spanned value.
    pub fn spanned<T>(
        value: &serde_saphyr::Spanned<T>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let location = value.referenced;
        Problem {
            line: (location.line() > 0).then(|| location.line()),
            column: (location.column() > 0).then(|| location.column()),
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A policy that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// Where the policy came from, e.g. `s3://bucket/policies/app.yaml`.
    pub source_name: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy {} is invalid", self.source_name)?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        write!(
            f,
            "\nFix the policy in your repository and upload it again; docs/policy.md documents every key."
        )
    }
}

impl Policy {
    /// Parses and validates a policy. `source_name` names the file in messages.
    pub fn parse(source_name: &str, text: &str) -> Result<Policy, PolicyError> {
        let fail = |problems| PolicyError {
            source_name: source_name.to_owned(),
            problems,
        };
        let policy: Policy = serde_saphyr::from_str(text).map_err(|err| {
            let location = err.location();
            let message = err.without_snippet().to_string();
            let message = strip_location_suffix(&message);
            fail(vec![Problem {
                line: location.map(|l| l.line()).filter(|l| *l > 0),
                column: location.map(|l| l.column()).filter(|c| *c > 0),
                path: String::new(),
                message: message.to_owned(),
            }])
        })?;
        let problems = policy.problems();
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(fail(problems))
        }
    }

    /// Every semantic problem (types and unknown keys are caught while parsing).
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.version != VERSION {
            problems.push(Problem::at(
                "version",
                format!(
                    "unsupported policy version {}; this evalgate reads version {VERSION}",
                    self.version
                ),
            ));
        }
        if self.metrics_namespace.trim().is_empty() || self.metrics_namespace.len() > 255 {
            problems.push(Problem::at("metrics_namespace", "must be 1-255 characters"));
        }
        self.evaluation.validate(&mut problems);
        self.gates.validate(self, &mut problems);
        if let Some(release) = &self.release {
            release.validate(&mut problems);
        }
        if let Some(rollback) = &self.rollback {
            rollback.validate(self, &mut problems);
        }
        self.alerts.validate(&mut problems);
        problems
    }
}

/// The library appends its own " at line L, column C"; the problem carries the location.
fn strip_location_suffix(message: &str) -> &str {
    let trimmed = message.trim();
    match trimmed.rfind(" at line ") {
        Some(i) if trimmed[i..].contains(", column ") => &trimmed[..i],
        _ => trimmed,
    }
}

/// A stable hash of a policy's text (recorded with each job and verdict).
pub fn policy_hash(text: &str) -> String {
    crate::layout::fingerprint(&[text])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n";

    #[test]
    fn parses_a_minimal_policy() {
        let policy = Policy::parse("p.yaml", MINIMAL).unwrap();
        assert_eq!(policy.version, 1);
        assert_eq!(policy.metrics_namespace, DEFAULT_METRICS_NAMESPACE);
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_column() {
        let text = format!("{MINIMAL}gatez:\n  x: 1\n");
        let err = Policy::parse("s3://b/policies/app.yaml", &text).unwrap_err();
        let problem = &err.problems[0];
        assert_eq!(problem.line, Some(5), "{err}");
        assert!(problem.column.is_some(), "{err}");
        assert!(problem.message.contains("gatez"), "{err}");
        assert!(
            !problem.message.contains("at line"),
            "location is not repeated: {err}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with("policy s3://b/policies/app.yaml is invalid"),
            "{text}"
        );
        assert!(text.contains("line 5"), "{text}");
    }

    #[test]
    fn wrong_version_is_explained() {
        let err =
            Policy::parse("p.yaml", &MINIMAL.replace("version: 1", "version: 2")).unwrap_err();
        assert!(
            err.to_string().contains("unsupported policy version 2"),
            "{err}"
        );
    }

    #[test]
    fn yaml_syntax_errors_have_a_location() {
        let err = Policy::parse("p.yaml", "version: 1\nevaluation: [\n").unwrap_err();
        assert!(err.problems[0].line.is_some(), "{err}");
    }
}
