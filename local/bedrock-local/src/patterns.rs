//! The regular expressions of the Bedrock API model (botocore `bedrock/2023-04-20`), verbatim.
//!
//! The service applies a pattern to the whole value (Java `Matcher.matches()`), so each one is
//! compiled as `^(?:<pattern>)$`. regex-lite reads the model's Java-style classes the same way
//! Java does (a `-` after a range, as in `[0-9a-zA-Z-_.]`, is a literal), which the unit tests
//! pin down.

use regex_lite::Regex;

/// `EvaluationJobName`, also used by ListEvaluationJobs' `nameContains`.
pub const JOB_NAME: &str = "[a-z0-9](-*[a-z0-9]){0,62}";
/// `EvaluationJobDescription`.
pub const DESCRIPTION: &str = ".+";
/// `IdempotencyToken`.
pub const IDEMPOTENCY_TOKEN: &str = "[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?";
/// `RoleArn`.
pub const ROLE_ARN: &str = "arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+";
/// `KmsKeyId`.
pub const KMS_KEY_ID: &str = "(arn:aws(-[^:]+)?:kms:[a-zA-Z0-9-]*:[0-9]{12}:((key/[a-zA-Z0-9-]{36})|(alias/[a-zA-Z0-9-_/]+)))|([a-zA-Z0-9-]{36})|(alias/[a-zA-Z0-9-_/]+)";
/// `TagKey` and `TagValue`.
pub const TAG: &str = r"[a-zA-Z0-9\s._:/=+@-]*";
/// `EvaluationTaskType`.
pub const TASK_TYPE: &str = "[A-Za-z0-9]+";
/// `EvaluationDatasetName`, `EvaluationMetricName` and `MetricName`.
pub const NAME: &str = "[0-9a-zA-Z-_.]+";
/// `S3Uri` (dataset location and output location).
pub const S3_URI: &str =
    r"s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](?:/[-!_*'().a-z0-9A-Z]+(?:/[-!_*'().a-z0-9A-Z]+)*)?/?";
/// `EvaluatorModelIdentifier`.
pub const EVALUATOR_MODEL: &str = r"(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:((:foundation-model/[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63}))|([0-9]{12}:inference-profile/(([a-z-]{2,8}.)[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63})))))$|(^[a-z0-9-]+[.][a-z0-9-]+([.][a-z0-9-]+)*(:[a-z0-9-]+)?$)|^[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([a-z0-9-]{1,63}[.]){0,2}[a-z0-9-]{1,63}([:][a-z0-9-]{1,63}){0,2}(/[a-z0-9]{12}|)";
/// `EvaluationBedrockModelIdentifier`.
pub const BEDROCK_MODEL: &str = r"(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:((:foundation-model/[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63}))|([0-9]{12}:provisioned-model/[a-z0-9]{12})|([0-9]{12}:imported-model/[a-z0-9]{12})|([0-9]{12}:application-inference-profile/[a-z0-9]{12})|([0-9]{12}:inference-profile/(([a-z-]{2,8}.)[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63})))|([0-9]{12}:(default-prompt-router|prompt-router)/[a-zA-Z0-9-:.]+)))|(([a-z]{2,4}[.]{1})([a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63})))|([a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63}))|arn:aws(-[^:]+)?:sagemaker:[a-z0-9-]{1,20}:[0-9]{12}:endpoint/[a-z0-9-]{1,63}";
/// `EvaluationPrecomputedInferenceSourceIdentifier`.
pub const PRECOMPUTED_SOURCE: &str = "[a-zA-Z0-9]([a-zA-Z0-9._-]){0,255}";
/// `EvaluationJobIdentifier` (also the shape of `EvaluationJobArn`).
pub const JOB_IDENTIFIER: &str =
    "(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:evaluation-job/[a-z0-9]{12})";
/// `PaginationToken`.
pub const PAGINATION_TOKEN: &str = r"\S*";

/// A model pattern: its text as the model spells it (used in messages) and its full-match regex.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: &'static str,
    regex: Regex,
}

impl Pattern {
    /// Compiles `source` for full-value matching.
    pub fn new(source: &'static str) -> Result<Self, regex_lite::Error> {
        Ok(Pattern {
            source,
            regex: Regex::new(&format!("^(?:{source})$"))?,
        })
    }

    /// The pattern as the API model spells it.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// True when the whole of `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

/// Every pattern the emulator checks, compiled once at startup.
#[derive(Debug, Clone)]
pub struct Patterns {
    pub job_name: Pattern,
    pub description: Pattern,
    pub idempotency_token: Pattern,
    pub role_arn: Pattern,
    pub kms_key_id: Pattern,
    pub tag: Pattern,
    pub task_type: Pattern,
    pub name: Pattern,
    pub s3_uri: Pattern,
    pub evaluator_model: Pattern,
    pub bedrock_model: Pattern,
    pub precomputed_source: Pattern,
    pub job_identifier: Pattern,
    pub pagination_token: Pattern,
}

impl Patterns {
    /// Compiles all patterns (the unit tests prove this succeeds).
    pub fn compile() -> Result<Self, regex_lite::Error> {
        Ok(Patterns {
            job_name: Pattern::new(JOB_NAME)?,
            description: Pattern::new(DESCRIPTION)?,
            idempotency_token: Pattern::new(IDEMPOTENCY_TOKEN)?,
            role_arn: Pattern::new(ROLE_ARN)?,
            kms_key_id: Pattern::new(KMS_KEY_ID)?,
            tag: Pattern::new(TAG)?,
            task_type: Pattern::new(TASK_TYPE)?,
            name: Pattern::new(NAME)?,
            s3_uri: Pattern::new(S3_URI)?,
            evaluator_model: Pattern::new(EVALUATOR_MODEL)?,
            bedrock_model: Pattern::new(BEDROCK_MODEL)?,
            precomputed_source: Pattern::new(PRECOMPUTED_SOURCE)?,
            job_identifier: Pattern::new(JOB_IDENTIFIER)?,
            pagination_token: Pattern::new(PAGINATION_TOKEN)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Patterns;

    #[test]
    fn patterns_match_like_the_service() {
        let p = Patterns::compile().unwrap();
        let table: &[(&super::Pattern, &str, bool)] = &[
            (&p.job_name, "evalgate-app-v1", true),
            (&p.job_name, "a", true),
            (&p.job_name, "a--b", true),
            (&p.job_name, "Bad_Name", false),
            (&p.job_name, "-leading", false),
            (&p.job_name, "trailing-", false),
            (&p.job_name, &"a".repeat(64), false),
            (&p.idempotency_token, "abc-123", true),
            (&p.idempotency_token, "abc-", false),
            (&p.idempotency_token, "a_b", false),
            (&p.role_arn, "arn:aws:iam::123456789012:role/evalgate", true),
            (&p.role_arn, "arn:aws:iam::role/x", false),
            (&p.task_type, "General", true),
            (&p.task_type, "Question Answer", false),
            (&p.name, "Builtin.Correctness", true),
            (&p.name, "brand_voice-2", true),
            (&p.name, "a[b", false),
            (&p.name, "a b", false),
            (&p.s3_uri, "s3://bucket/datasets/app/v1/data.jsonl", true),
            (&p.s3_uri, "s3://bucket", true),
            (&p.s3_uri, "s3://bucket/out/", true),
            (&p.s3_uri, "s3://bucket/data set.jsonl", false),
            (&p.s3_uri, "s3://bucket/release=1/data.jsonl", false),
            (&p.s3_uri, "s3://bucket/a+b.jsonl", false),
            (&p.s3_uri, "s3://bucket/a~b.jsonl", false),
            (&p.s3_uri, "s3://bucket/a,b.jsonl", false),
            (&p.s3_uri, "s3://bucket/a@b.jsonl", false),
            (&p.s3_uri, "s3://bucket/a:b.jsonl", false),
            (&p.s3_uri, "s3://Bucket/a.jsonl", false),
            (&p.s3_uri, "s3://bucket//a.jsonl", false),
            (&p.s3_uri, "https://bucket/a.jsonl", false),
            (&p.evaluator_model, "amazon.nova-pro-v1:0", true),
            (&p.evaluator_model, "us.amazon.nova-pro-v1:0", true),
            (
                &p.evaluator_model,
                "anthropic.claude-3-5-sonnet-20240620-v1:0",
                true,
            ),
            (
                &p.evaluator_model,
                "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
                true,
            ),
            (
                &p.evaluator_model,
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
                true,
            ),
            (&p.evaluator_model, "nova pro", false),
            (&p.evaluator_model, "gpt4", false),
            (&p.precomputed_source, "my-app-v1", true),
            (&p.precomputed_source, "third-party-model", true),
            (&p.precomputed_source, "-x", false),
            (&p.precomputed_source, "my app", false),
            (
                &p.job_identifier,
                "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcdef012345",
                true,
            ),
            (
                &p.job_identifier,
                "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/ABCDEF012345",
                false,
            ),
            (&p.job_identifier, "abcdef012345", false),
            (&p.kms_key_id, "alias/my-key_1", true),
            (&p.kms_key_id, "alias/a:b", false),
            (&p.tag, "team = ml/eval@x", true),
            (&p.tag, "a*b", false),
            (&p.description, "one line", true),
            (&p.description, "two\nlines", false),
            (&p.pagination_token, "abc", true),
            (&p.pagination_token, "a b", false),
        ];
        for (pattern, value, expected) in table {
            assert_eq!(
                pattern.matches(value),
                *expected,
                "{value:?} against {}",
                pattern.source()
            );
        }
    }
}
