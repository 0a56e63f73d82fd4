//! The `release` section: the application's release pointer and promotion.
//!
//! ```yaml
//! release:
//!   pointer:
//!     ssm_parameter: /support-bot/release     # the parameter's value is the release id
//!   # or:
//!   # pointer:
//!   #   lambda_alias:
//!   #     function: support-bot               # name or ARN (no qualifier)
//!   #     alias: live
//!   #     release_id: description             # `release=<id>` in the version's Description (default)
//!   #                                         # or `version`: the release id is the version number
//!   promote: on_pass                          # default `manual`: evalgate never moves the pointer on a pass
//! ```
//!
//! `docs/policy-release-rollback.md` documents the section; `docs/rollback.md` how a release
//! id maps to a Lambda version.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Problem;
use crate::release::{PointerSpec, ReleaseIdSource};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasePolicy {
    /// Where the application reads which release is live.
    pub pointer: Spanned<PointerPolicy>,
    /// What evalgate does when a release passes its gate.
    #[serde(default)]
    pub promote: Promote,
}

/// Promotion mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Promote {
    /// evalgate records verdicts; people (or their pipeline) move the pointer.
    #[default]
    Manual,
    /// When check-gates records a `pass`, evalgate points the pointer at that release.
    OnPass,
}

/// Exactly one kind of pointer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointerPolicy {
    /// An SSM parameter (name, not ARN) whose value is the live release id.
    #[serde(default)]
    pub ssm_parameter: Option<Spanned<String>>,
    /// A Lambda alias whose version is the live release.
    #[serde(default)]
    pub lambda_alias: Option<LambdaAliasPolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaAliasPolicy {
    pub function: Spanned<String>,
    pub alias: Spanned<String>,
    #[serde(default)]
    pub release_id: ReleaseIdSource,
}

impl ReleasePolicy {
    pub fn validate(&self, problems: &mut Vec<Problem>) {
        let pointer = &self.pointer.value;
        match (&pointer.ssm_parameter, &pointer.lambda_alias) {
            (Some(_), Some(_)) | (None, None) => problems.push(Problem::spanned(
                &self.pointer,
                "release.pointer",
                "name exactly one pointer: `ssm_parameter: /<app>/release` or `lambda_alias: {function: <name>, alias: <alias>}`",
            )),
            (Some(name), None) => {
                if let Err(message) = check_ssm_parameter_name(&name.value) {
                    problems.push(Problem::spanned(
                        name,
                        "release.pointer.ssm_parameter",
                        message,
                    ));
                }
            }
            (None, Some(alias)) => {
                if let Err(message) = check_function(&alias.function.value) {
                    problems.push(Problem::spanned(
                        &alias.function,
                        "release.pointer.lambda_alias.function",
                        message,
                    ));
                }
                if let Err(message) = check_alias_name(&alias.alias.value) {
                    problems.push(Problem::spanned(
                        &alias.alias,
                        "release.pointer.lambda_alias.alias",
                        message,
                    ));
                }
            }
        }
    }

    /// The pointer as a plain value (only meaningful for a validated policy).
    pub fn pointer_spec(&self) -> PointerSpec {
        let pointer = &self.pointer.value;
        match (&pointer.ssm_parameter, &pointer.lambda_alias) {
            (_, Some(alias)) => PointerSpec::LambdaAlias {
                function: alias.function.value.clone(),
                alias: alias.alias.value.clone(),
                release_id: alias.release_id,
            },
            (Some(name), None) => PointerSpec::SsmParameter {
                name: name.value.clone(),
            },
            // `validate` rejects this; an empty name fails loudly at the first SSM call.
            (None, None) => PointerSpec::SsmParameter {
                name: String::new(),
            },
        }
    }
}

/// SSM parameter names: `a-zA-Z0-9_.-/`, no `aws`/`ssm` prefix, at most 2048 characters.
fn check_ssm_parameter_name(name: &str) -> Result<(), String> {
    if name.starts_with("arn:") {
        return Err(
            "use the parameter's name (e.g. /support-bot/release), not its ARN: PutParameter only accepts names".into(),
        );
    }
    if name.is_empty() || name.len() > 2048 {
        return Err("must be 1-2048 characters".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Err(format!(
            "{bad:?} is not allowed in an SSM parameter name (allowed: a-z A-Z 0-9 _ . - /)"
        ));
    }
    let first = name
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Err("SSM reserves names beginning with \"aws\" or \"ssm\"".into());
    }
    Ok(())
}

/// A function name (1-64 of `a-zA-Z0-9-_`) or an unqualified function ARN.
fn check_function(function: &str) -> Result<(), String> {
    let name = match function.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.split(':').collect();
            // partition:lambda:region:account:function:name
            if parts.len() != 6 || parts[1] != "lambda" || parts[4] != "function" {
                return Err(
                    "expected a function name or an unqualified ARN arn:aws:lambda:<region>:<account>:function:<name> (the alias goes in `alias`)".into(),
                );
            }
            parts[5]
        }
        None => function,
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err("a Lambda function name is 1-64 characters of a-z A-Z 0-9 - _".into());
    }
    Ok(())
}

/// Lambda alias names: 1-128 of `a-zA-Z0-9-_`, not all digits (that would be a version).
fn check_alias_name(alias: &str) -> Result<(), String> {
    if alias.is_empty()
        || alias.len() > 128
        || !alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err("an alias name is 1-128 characters of a-z A-Z 0-9 - _".into());
    }
    if alias.chars().all(|c| c.is_ascii_digit()) {
        return Err("an all-digit name is a version number, not an alias".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    const HEAD: &str = "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n";

    fn parse(release: &str) -> Result<Policy, crate::policy::PolicyError> {
        Policy::parse("p.yaml", &format!("{HEAD}{release}"))
    }

    #[test]
    fn ssm_parameter_pointer_with_promotion() {
        let policy = parse(
            "release:\n  pointer:\n    ssm_parameter: /support-bot/release\n  promote: on_pass\n",
        )
        .unwrap();
        let release = policy.release.unwrap();
        assert_eq!(release.promote, Promote::OnPass);
        assert_eq!(
            release.pointer_spec(),
            PointerSpec::SsmParameter {
                name: "/support-bot/release".into()
            }
        );
    }

    #[test]
    fn lambda_alias_pointer_defaults() {
        let policy = parse(
            "release:\n  pointer:\n    lambda_alias:\n      function: support-bot\n      alias: live\n",
        )
        .unwrap();
        let release = policy.release.unwrap();
        assert_eq!(
            release.promote,
            Promote::Manual,
            "promotion is off by default"
        );
        assert_eq!(
            release.pointer_spec(),
            PointerSpec::LambdaAlias {
                function: "support-bot".into(),
                alias: "live".into(),
                release_id: ReleaseIdSource::Description,
            }
        );
        let policy = parse(
            "release:\n  pointer:\n    lambda_alias:\n      function: arn:aws:lambda:us-east-1:123456789012:function:bot\n      alias: live\n      release_id: version\n",
        )
        .unwrap();
        assert!(matches!(
            policy.release.unwrap().pointer_spec(),
            PointerSpec::LambdaAlias {
                release_id: ReleaseIdSource::Version,
                ..
            }
        ));
    }

    #[test]
    fn exactly_one_pointer() {
        let err = parse("release:\n  pointer: {}\n").unwrap_err();
        assert!(err.to_string().contains("exactly one pointer"), "{err}");
        assert_eq!(err.problems[0].line, Some(6), "{err}");
        let err = parse(
            "release:\n  pointer:\n    ssm_parameter: /a/b\n    lambda_alias: {function: f, alias: live}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("exactly one pointer"), "{err}");
    }

    #[test]
    fn bad_names_point_at_their_line() {
        let err = parse("release:\n  pointer:\n    ssm_parameter: /my release\n").unwrap_err();
        assert_eq!(err.problems[0].line, Some(7), "{err}");
        assert!(
            err.to_string().contains("release.pointer.ssm_parameter"),
            "{err}"
        );
        let err =
            parse("release:\n  pointer:\n    ssm_parameter: arn:aws:ssm:us-east-1:1:parameter/x\n")
                .unwrap_err();
        assert!(err.to_string().contains("not its ARN"), "{err}");
        let err = parse("release:\n  pointer:\n    ssm_parameter: /aws/x\n").unwrap_err();
        assert!(err.to_string().contains("reserves"), "{err}");
        let err = parse(
            "release:\n  pointer:\n    lambda_alias:\n      function: bot:live\n      alias: \"42\"\n",
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.to_string().contains("lambda_alias.function"), "{err}");
        assert!(err.to_string().contains("version number"), "{err}");
    }

    #[test]
    fn unknown_promote_mode_is_rejected() {
        let err = parse("release:\n  pointer:\n    ssm_parameter: /a/b\n  promote: always\n")
            .unwrap_err();
        assert!(err.problems[0].line.is_some(), "{err}");
    }
}
