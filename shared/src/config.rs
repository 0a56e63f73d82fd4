//! Configuration from the environment.
//!
//! Every value a function needs is read once, in `main`, into a plain struct and then
//! borrowed by the handler. A missing or malformed variable is an init error that names
//! the variable, so a misconfigured deployment fails at cold start, not mid-invocation.

use thiserror::Error;

/// The evaluation bucket (datasets, policies, shards, results, ledger, verdicts). All functions.
pub const BUCKET: &str = "EVALGATE_BUCKET";
/// The EventBridge bus evalgate's events go to (name or ARN; default `default`).
pub const EVENT_BUS: &str = "EVALGATE_EVENT_BUS";
/// The IAM role Bedrock assumes to run evaluation jobs (submit-evaluation).
pub const BEDROCK_ROLE_ARN: &str = "EVALGATE_BEDROCK_ROLE_ARN";
/// The SNS topic alerts are published to (send-alert).
pub const TOPIC_ARN: &str = "EVALGATE_TOPIC_ARN";

/// The default EventBridge bus.
pub const DEFAULT_EVENT_BUS: &str = "default";

/// A required environment variable is missing or unusable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {name} is not set: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("environment variable {name} has an invalid value {value:?}: {hint}")]
    Invalid {
        name: &'static str,
        value: String,
        hint: &'static str,
    },
}

/// Reads a required variable through `lookup` (the environment in production, a map in tests).
pub fn required(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    match lookup(name) {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing { name, hint }),
    }
}

/// Reads an optional variable; empty counts as unset.
pub fn optional(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.trim().is_empty())
}

/// The process environment as a lookup function.
pub fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup<'a>(map: &'a HashMap<&str, &str>) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| map.get(k).map(|v| (*v).to_owned())
    }

    #[test]
    fn required_reports_the_variable_name() {
        let map = HashMap::from([("BLANK", "  ")]);
        let err = required(&lookup(&map), "EVALGATE_BUCKET", "the evaluation bucket").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable EVALGATE_BUCKET is not set: the evaluation bucket"
        );
        assert!(
            required(&lookup(&map), "BLANK", "x").is_err(),
            "blank counts as unset"
        );
    }

    #[test]
    fn optional_treats_empty_as_unset() {
        let map = HashMap::from([("A", ""), ("B", "x")]);
        assert_eq!(optional(&lookup(&map), "A"), None);
        assert_eq!(optional(&lookup(&map), "B").as_deref(), Some("x"));
    }
}
