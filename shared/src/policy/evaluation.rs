//! The `evaluation` section: how Bedrock judges the application's responses.
//!
//! ```yaml
//! evaluation:
//!   evaluator_model: us.amazon.nova-pro-v1:0      # the judge (model or inference-profile id/ARN)
//!   metrics: [Builtin.Correctness, Builtin.Helpfulness]
//!   custom_metrics:                               # optional, up to 10
//!     - name: brand_voice
//!       instructions: "Does {{prediction}} follow our style guide? ..."
//!       rating_scale:
//!         - { definition: On brand, value: 1 }
//!         - { definition: Off brand, value: 0 }
//!   kms_key_id: alias/evalgate                    # optional
//!   tags: { team: support }                       # optional
//! ```
//!
//! Every constraint Bedrock's `CreateEvaluationJob` enforces on these values (patterns,
//! lengths, counts, metric names) is checked here, so a policy that parses is one Bedrock
//! accepts: teams learn about a typo from the policy check, with its line, not from a job
//! that fails later. `docs/policy.md` documents the section.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex_lite::Regex;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::Problem;
use super::gates::{BUILTIN_METRICS, Direction};
use crate::bedrock::{CustomMetricSpec, Rating, RatingValue};

/// Built-in LLM-as-a-judge metrics for model evaluation (Bedrock's names), in the order of
/// [`BUILTIN_METRICS`], the one table of built-in metrics and their directions.
pub const JUDGE_METRICS: &[&str] = &judge_metric_names();

/// Built-in metrics for which a higher score is worse (lower is better in
/// [`BUILTIN_METRICS`]).
pub const HIGHER_IS_WORSE: &[&str] = &higher_is_worse_names();

/// Whether a higher score of `metric` is worse (harm-style metrics).
pub fn higher_is_worse(metric: &str) -> bool {
    Direction::of_builtin(metric) == Some(Direction::LowerIsBetter)
}

// Both lists are derived at compile time so that a metric added to `BUILTIN_METRICS` is
// accepted, gated and oriented consistently.
const fn judge_metric_names() -> [&'static str; BUILTIN_METRICS.len()] {
    let mut names = [""; BUILTIN_METRICS.len()];
    let mut i = 0;
    while i < BUILTIN_METRICS.len() {
        names[i] = BUILTIN_METRICS[i].0;
        i += 1;
    }
    names
}

const HIGHER_IS_WORSE_COUNT: usize = {
    let mut count = 0;
    let mut i = 0;
    while i < BUILTIN_METRICS.len() {
        if matches!(BUILTIN_METRICS[i].1, Direction::LowerIsBetter) {
            count += 1;
        }
        i += 1;
    }
    count
};

const fn higher_is_worse_names() -> [&'static str; HIGHER_IS_WORSE_COUNT] {
    let mut names = [""; HIGHER_IS_WORSE_COUNT];
    let (mut i, mut n) = (0, 0);
    while i < BUILTIN_METRICS.len() {
        if matches!(BUILTIN_METRICS[i].1, Direction::LowerIsBetter) {
            names[n] = BUILTIN_METRICS[i].0;
            n += 1;
        }
        i += 1;
    }
    names
}

/// Metrics of other Bedrock evaluation kinds, which judge jobs on your own responses reject.
const RAG_ONLY_METRICS: &[&str] = &[
    "Builtin.ContextRelevance",
    "Builtin.ContextCoverage",
    "Builtin.LogicalCoherence",
    "Builtin.CitationPrecision",
    "Builtin.CitationCoverage",
];
const PROGRAMMATIC_METRICS: &[&str] =
    &["Builtin.Accuracy", "Builtin.Robustness", "Builtin.Toxicity"];

/// Variables a custom metric's instructions may use (model evaluation).
pub const CUSTOM_METRIC_VARIABLES: &[&str] = &["prompt", "prediction", "ground_truth"];

/// Bedrock limits (from the CreateEvaluationJob API model).
pub const MAX_METRICS: usize = 25;
pub const MAX_CUSTOM_METRICS: usize = 10;
pub const MAX_INSTRUCTIONS_CHARS: usize = 5000;
pub const MAX_RATING_SCALE: usize = 10;
pub const MAX_JOB_TAGS: usize = 200;
/// Tags evalgate adds to every job (`evalgate:application`, `:release`, `:dataset`, `:shard`).
pub const RESERVED_TAGS: usize = 4;
/// Prefix of the tags evalgate sets itself.
pub const EVALGATE_TAG_PREFIX: &str = "evalgate:";

fn pattern(re: &str) -> Option<Regex> {
    // Patterns are constants checked by unit tests; a broken one would reject every value.
    Regex::new(re).ok()
}

fn full_match(re: &LazyLock<Option<Regex>>, text: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(text))
}

/// `EvaluatorModelIdentifier`, anchored.
static EVALUATOR_MODEL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    pattern(
        r"^(?:(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:((:foundation-model/[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63}))|([0-9]{12}:inference-profile/(([a-z-]{2,8}.)[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63})))))|([a-z0-9-]+[.][a-z0-9-]+([.][a-z0-9-]+)*(:[a-z0-9-]+)?)|([a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([a-z0-9-]{1,63}[.]){0,2}[a-z0-9-]{1,63}([:][a-z0-9-]{1,63}){0,2}(/[a-z0-9]{12}|)))$",
    )
});

/// `KmsKeyId`, anchored.
static KMS_KEY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    pattern(
        r"^(?:(arn:aws(-[^:]+)?:kms:[a-zA-Z0-9-]*:[0-9]{12}:((key/[a-zA-Z0-9-]{36})|(alias/[a-zA-Z0-9-_/]+)))|([a-zA-Z0-9-]{36})|(alias/[a-zA-Z0-9-_/]+))$",
    )
});

/// `EvaluationMetricName` / `MetricName`.
static METRIC_NAME: LazyLock<Option<Regex>> = LazyLock::new(|| pattern(r"^[0-9a-zA-Z\-_.]{1,63}$"));

/// `TagKey` / `TagValue` characters (Java's `\s` is ASCII whitespace, as in regex-lite).
static TAG_TEXT: LazyLock<Option<Regex>> = LazyLock::new(|| pattern(r"^[a-zA-Z0-9\s._:/=+@-]*$"));

/// Whether `id` is a valid `evaluatorModelIdentifier` (foundation model or inference profile).
pub fn is_valid_evaluator_model(id: &str) -> bool {
    id.len() <= 2048 && full_match(&EVALUATOR_MODEL, id)
}

/// Whether `id` is a valid `customerEncryptionKeyId`.
pub fn is_valid_kms_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 2048 && full_match(&KMS_KEY, id)
}

/// Whether `name` is a valid metric name (built-in or custom).
pub fn is_valid_metric_name(name: &str) -> bool {
    full_match(&METRIC_NAME, name)
}

/// Whether `text` uses only characters Bedrock accepts in a tag key or value.
pub fn is_valid_tag_text(text: &str) -> bool {
    full_match(&TAG_TEXT, text)
}

/// A custom metric's rating value: all numbers or all text within one scale.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ScaleValue {
    Number(f64),
    Text(String),
}

/// One rating of a custom metric's scale.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingPolicy {
    /// What this rating means, shown to the judge (1-100 characters).
    pub definition: String,
    /// The score: a number, or a label (1-100 characters).
    pub value: ScaleValue,
}

/// A custom judge metric.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomMetric {
    pub name: String,
    pub instructions: String,
    pub rating_scale: Vec<RatingPolicy>,
    location: Location,
    name_location: Location,
    instructions_location: Location,
    rating_scale_location: Option<Location>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomMetric {
    name: Spanned<String>,
    instructions: Spanned<String>,
    #[serde(default)]
    rating_scale: Option<Spanned<Vec<RatingPolicy>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvaluationPolicy {
    evaluator_model: Spanned<String>,
    #[serde(default)]
    metrics: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    custom_metrics: Option<Spanned<Vec<Spanned<RawCustomMetric>>>>,
    #[serde(default)]
    kms_key_id: Option<Spanned<String>>,
    #[serde(default)]
    tags: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

/// Where each value was written, for problems that point at a line.
#[derive(Debug, Clone, Default, PartialEq)]
struct Locations {
    evaluator_model: Option<Location>,
    metrics: Option<Location>,
    metric: Vec<Location>,
    custom_metrics: Option<Location>,
    kms_key_id: Option<Location>,
    tags: Option<Location>,
    tag: BTreeMap<String, Location>,
}

/// The `evaluation` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "RawEvaluationPolicy")]
pub struct EvaluationPolicy {
    /// The judge: a foundation-model or inference-profile id or ARN.
    pub evaluator_model: String,
    /// Built-in metric names, e.g. `Builtin.Correctness` (custom metrics are added to the job
    /// automatically; listing one here too is allowed).
    pub metrics: Vec<String>,
    /// Custom judge metrics (up to 10).
    pub custom_metrics: Vec<CustomMetric>,
    /// KMS key (id, ARN or alias) Bedrock encrypts the job with.
    pub kms_key_id: Option<String>,
    /// Extra tags for every evaluation job.
    pub tags: BTreeMap<String, String>,
    locations: Locations,
}

impl From<RawEvaluationPolicy> for EvaluationPolicy {
    fn from(raw: RawEvaluationPolicy) -> Self {
        let mut locations = Locations {
            evaluator_model: Some(raw.evaluator_model.referenced),
            ..Locations::default()
        };
        let mut metrics = Vec::new();
        if let Some(list) = raw.metrics {
            locations.metrics = Some(list.referenced);
            for metric in list.value {
                locations.metric.push(metric.referenced);
                metrics.push(metric.value);
            }
        }
        let mut custom_metrics = Vec::new();
        if let Some(list) = raw.custom_metrics {
            locations.custom_metrics = Some(list.referenced);
            for metric in list.value {
                let location = metric.referenced;
                let metric = metric.value;
                custom_metrics.push(CustomMetric {
                    name: metric.name.value,
                    instructions: metric.instructions.value,
                    rating_scale_location: metric.rating_scale.as_ref().map(|s| s.referenced),
                    rating_scale: metric.rating_scale.map(|s| s.value).unwrap_or_default(),
                    location,
                    name_location: metric.name.referenced,
                    instructions_location: metric.instructions.referenced,
                });
            }
        }
        let kms_key_id = raw.kms_key_id.map(|k| {
            locations.kms_key_id = Some(k.referenced);
            k.value
        });
        let mut tags = BTreeMap::new();
        if let Some(map) = raw.tags {
            locations.tags = Some(map.referenced);
            for (key, value) in map.value {
                locations.tag.insert(key.clone(), value.referenced);
                tags.insert(key, value.value);
            }
        }
        EvaluationPolicy {
            evaluator_model: raw.evaluator_model.value,
            metrics,
            custom_metrics,
            kms_key_id,
            tags,
            locations,
        }
    }
}

fn problem(
    location: Option<Location>,
    path: impl Into<String>,
    message: impl Into<String>,
) -> Problem {
    let location = location.filter(|l| l.line() > 0);
    Problem {
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()).filter(|c| *c > 0),
        path: path.into(),
        message: message.into(),
    }
}

impl EvaluationPolicy {
    /// Every metric name sent to Bedrock: the built-in ones, then the custom ones (a custom
    /// metric must also be listed in the job's metric names), without duplicates.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for name in self
            .metrics
            .iter()
            .chain(self.custom_metrics.iter().map(|m| &m.name))
        {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// The custom metrics as Bedrock job definitions.
    pub fn custom_metric_specs(&self) -> Vec<CustomMetricSpec> {
        self.custom_metrics
            .iter()
            .map(|m| CustomMetricSpec {
                name: m.name.clone(),
                instructions: m.instructions.clone(),
                rating_scale: m
                    .rating_scale
                    .iter()
                    .map(|r| Rating {
                        definition: r.definition.clone(),
                        value: match &r.value {
                            // Bedrock's floatValue is a 32-bit float.
                            ScaleValue::Number(v) => RatingValue::Float(*v as f32),
                            ScaleValue::Text(v) => RatingValue::Text(v.clone()),
                        },
                    })
                    .collect(),
            })
            .collect()
    }

    pub fn validate(&self, problems: &mut Vec<Problem>) {
        let loc = &self.locations;
        if !is_valid_evaluator_model(&self.evaluator_model) {
            problems.push(problem(
                loc.evaluator_model,
                "evaluation.evaluator_model",
                format!(
                    "{:?} is not a Bedrock foundation-model or inference-profile identifier; use an id such as us.amazon.nova-pro-v1:0 or anthropic.claude-3-5-sonnet-20240620-v1:0, or its ARN",
                    self.evaluator_model
                ),
            ));
        }
        if self.metrics.is_empty() && self.custom_metrics.is_empty() {
            problems.push(problem(
                loc.metrics.or(loc.evaluator_model),
                "evaluation.metrics",
                format!(
                    "name at least one metric, e.g. metrics: [Builtin.Correctness]; built-in judge metrics are {}",
                    JUDGE_METRICS.join(", ")
                ),
            ));
        }
        let custom_names: Vec<&str> = self
            .custom_metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        let mut seen: Vec<&str> = Vec::new();
        for (i, name) in self.metrics.iter().enumerate() {
            let at = loc.metric.get(i).copied().or(loc.metrics);
            let path = format!("evaluation.metrics[{i}]");
            if seen.contains(&name.as_str()) {
                problems.push(problem(
                    at,
                    &path,
                    format!("{name:?} is listed twice; list each metric once"),
                ));
                continue;
            }
            seen.push(name);
            if JUDGE_METRICS.contains(&name.as_str()) || custom_names.contains(&name.as_str()) {
                continue;
            }
            problems.push(problem(at, &path, unknown_metric_message(name)));
        }
        if self.metric_names().len() > MAX_METRICS {
            problems.push(problem(
                loc.metrics,
                "evaluation.metrics",
                format!(
                    "{} metrics in total (built-in and custom); Bedrock accepts at most {MAX_METRICS} per job",
                    self.metric_names().len()
                ),
            ));
        }
        self.validate_custom_metrics(problems);
        if let Some(key) = &self.kms_key_id
            && !is_valid_kms_key_id(key)
        {
            problems.push(problem(
                loc.kms_key_id,
                "evaluation.kms_key_id",
                format!(
                    "{key:?} is not a KMS key id, key ARN or alias; use e.g. alias/evalgate, a 36-character key id, or arn:aws:kms:<region>:<account>:key/<key id>"
                ),
            ));
        }
        self.validate_tags(problems);
    }

    fn validate_custom_metrics(&self, problems: &mut Vec<Problem>) {
        let loc = &self.locations;
        if self.custom_metrics.len() > MAX_CUSTOM_METRICS {
            problems.push(problem(
                loc.custom_metrics,
                "evaluation.custom_metrics",
                format!(
                    "{} custom metrics; Bedrock accepts at most {MAX_CUSTOM_METRICS} per job",
                    self.custom_metrics.len()
                ),
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, metric) in self.custom_metrics.iter().enumerate() {
            let path = format!("evaluation.custom_metrics[{i}]");
            let name = metric.name.as_str();
            if !is_valid_metric_name(name) {
                problems.push(problem(
                    Some(metric.name_location),
                    format!("{path}.name"),
                    format!("{name:?} is not a valid metric name: use 1-63 letters, digits, '-', '_' or '.'"),
                ));
            } else if name.starts_with("Builtin.") {
                problems.push(problem(
                    Some(metric.name_location),
                    format!("{path}.name"),
                    format!("{name:?}: names starting with Builtin. are Bedrock's; name your metric without that prefix, e.g. brand_voice"),
                ));
            }
            if seen.contains(&name) {
                problems.push(problem(
                    Some(metric.name_location),
                    format!("{path}.name"),
                    format!("custom metric {name:?} is defined twice; give each a distinct name"),
                ));
            }
            seen.push(name);
            self.validate_instructions(metric, &path, problems);
            self.validate_rating_scale(metric, &path, problems);
        }
    }

    fn validate_instructions(
        &self,
        metric: &CustomMetric,
        path: &str,
        problems: &mut Vec<Problem>,
    ) {
        let at = Some(metric.instructions_location);
        let path = format!("{path}.instructions");
        let chars = metric.instructions.chars().count();
        if metric.instructions.trim().is_empty() {
            problems.push(problem(at, &path, "is empty; tell the judge what to rate and how, and include {{prediction}} where the response goes"));
            return;
        }
        if chars > MAX_INSTRUCTIONS_CHARS {
            problems.push(problem(
                at,
                &path,
                format!("is {chars} characters; Bedrock accepts at most {MAX_INSTRUCTIONS_CHARS}"),
            ));
        }
        let variables = template_variables(&metric.instructions);
        for variable in &variables {
            if !CUSTOM_METRIC_VARIABLES.contains(&variable.as_str()) {
                let hint = if CUSTOM_METRIC_VARIABLES.contains(&variable.trim()) {
                    format!(" (write {{{{{}}}}} without spaces)", variable.trim())
                } else {
                    String::new()
                };
                problems.push(problem(
                    at,
                    &path,
                    format!(
                        "uses the unknown variable {{{{{variable}}}}}{hint}; the variables are {{{{prompt}}}}, {{{{prediction}}}} (the response) and {{{{ground_truth}}}} (the referenceResponse)"
                    ),
                ));
            }
        }
        if !variables.iter().any(|v| v == "prediction") {
            problems.push(problem(
                at,
                &path,
                "does not contain {{prediction}}: without it the judge never sees the response it rates; add it where the response should appear",
            ));
        }
    }

    fn validate_rating_scale(
        &self,
        metric: &CustomMetric,
        path: &str,
        problems: &mut Vec<Problem>,
    ) {
        let Some(at) = metric.rating_scale_location else {
            return;
        };
        let path = format!("{path}.rating_scale");
        let scale = &metric.rating_scale;
        if scale.is_empty() || scale.len() > MAX_RATING_SCALE {
            problems.push(problem(
                Some(at),
                &path,
                format!(
                    "has {} ratings; give 1-{MAX_RATING_SCALE}, or remove rating_scale",
                    scale.len()
                ),
            ));
        }
        let numbers = scale
            .iter()
            .filter(|r| matches!(r.value, ScaleValue::Number(_)))
            .count();
        if numbers != 0 && numbers != scale.len() {
            problems.push(problem(
                Some(at),
                &path,
                "mixes numbers and text; all values of one scale must be numbers, or all text",
            ));
        }
        let mut seen: Vec<String> = Vec::new();
        for (i, rating) in scale.iter().enumerate() {
            let item = format!("{path}[{i}]");
            let len = rating.definition.chars().count();
            if rating.definition.trim().is_empty() || len > 100 {
                problems.push(problem(
                    Some(at),
                    format!("{item}.definition"),
                    format!("must be 1-100 characters, is {len}"),
                ));
            }
            let key = match &rating.value {
                ScaleValue::Number(v) if !v.is_finite() => {
                    problems.push(problem(
                        Some(at),
                        format!("{item}.value"),
                        "must be a finite number",
                    ));
                    continue;
                }
                ScaleValue::Number(v) => format!("{v}"),
                ScaleValue::Text(t) => {
                    let len = t.chars().count();
                    if t.trim().is_empty() || len > 100 {
                        problems.push(problem(
                            Some(at),
                            format!("{item}.value"),
                            format!("text values must be 1-100 characters, is {len}"),
                        ));
                    }
                    t.clone()
                }
            };
            if seen.contains(&key) {
                problems.push(problem(
                    Some(at),
                    format!("{item}.value"),
                    format!(
                        "value {key} appears twice in the scale; give each rating a distinct value"
                    ),
                ));
            }
            seen.push(key);
        }
    }

    fn validate_tags(&self, problems: &mut Vec<Problem>) {
        let loc = &self.locations;
        if self.tags.len() > MAX_JOB_TAGS - RESERVED_TAGS {
            problems.push(problem(
                loc.tags,
                "evaluation.tags",
                format!(
                    "{} tags; at most {} (Bedrock's {MAX_JOB_TAGS} minus the {RESERVED_TAGS} evalgate sets)",
                    self.tags.len(),
                    MAX_JOB_TAGS - RESERVED_TAGS
                ),
            ));
        }
        for (key, value) in &self.tags {
            let at = loc.tag.get(key).copied().or(loc.tags);
            let path = format!("evaluation.tags.{key}");
            if key.is_empty() || key.chars().count() > 128 || !is_valid_tag_text(key) {
                problems.push(problem(
                    at,
                    &path,
                    "tag keys must be 1-128 characters of letters, digits, spaces and . _ : / = + @ -",
                ));
            }
            let lower = key.to_ascii_lowercase();
            if lower.starts_with("aws:") || lower.starts_with(EVALGATE_TAG_PREFIX) {
                problems.push(problem(
                    at,
                    &path,
                    "tag keys starting with aws: or evalgate: are reserved (evalgate sets evalgate:application, evalgate:release, evalgate:dataset and evalgate:shard itself); choose another key",
                ));
            }
            if value.chars().count() > 256 || !is_valid_tag_text(value) {
                problems.push(problem(
                    at,
                    &path,
                    "tag values must be 0-256 characters of letters, digits, spaces and . _ : / = + @ -",
                ));
            }
        }
    }
}

/// A helpful message for a metric name that is not a built-in judge metric.
fn unknown_metric_message(name: &str) -> String {
    if RAG_ONLY_METRICS.contains(&name) {
        return format!(
            "{name} is a knowledge-base (RAG) evaluation metric; evalgate runs judge jobs on your application's responses, which accept {}",
            JUDGE_METRICS.join(", ")
        );
    }
    if PROGRAMMATIC_METRICS.contains(&name) {
        return format!(
            "{name} is a programmatic metric (no judge); evalgate runs LLM-as-a-judge jobs, which accept {}",
            JUDGE_METRICS.join(", ")
        );
    }
    // Compare without case, separators or the Builtin. prefix, allowing two typos.
    let fold = |s: &str| {
        let s = s.to_ascii_lowercase().replace(['_', '-', ' '], "");
        s.strip_prefix("builtin.").map(str::to_owned).unwrap_or(s)
    };
    let folded = fold(name);
    let suggestion = JUDGE_METRICS
        .iter()
        .map(|known| (edit_distance(&fold(known), &folded), known))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, known)| known);
    match suggestion {
        Some(known) => format!("{name:?} is not a Bedrock metric name; did you mean {known}?"),
        None => format!(
            "{name:?} is neither a built-in judge metric nor a custom metric defined under evaluation.custom_metrics; built-in judge metrics are {}",
            JUDGE_METRICS.join(", ")
        ),
    }
}

/// Levenshtein distance (names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

/// The `{{name}}` variables in a template, in order of appearance.
fn template_variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = &after[..end];
        if !out.iter().any(|v| v == name) {
            out.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn parse(evaluation: &str) -> Result<Policy, crate::policy::PolicyError> {
        Policy::parse("p.yaml", &format!("version: 1\nevaluation:\n{evaluation}"))
    }

    fn problems(evaluation: &str) -> Vec<Problem> {
        parse(evaluation)
            .err()
            .map(|e| e.problems)
            .unwrap_or_default()
    }

    const FULL: &str = r#"  evaluator_model: us.amazon.nova-pro-v1:0
  metrics: [Builtin.Correctness, Builtin.Harmfulness]
  custom_metrics:
    - name: brand_voice
      instructions: "Rate {{prediction}} for the prompt {{prompt}} against our style guide."
      rating_scale:
        - { definition: On brand, value: 1 }
        - { definition: Off brand, value: 0 }
    - name: tone-label
      instructions: "Label the tone of {{prediction}}."
      rating_scale:
        - { definition: Friendly, value: friendly }
        - { definition: Curt, value: curt }
  kms_key_id: alias/evalgate
  tags:
    team: support
    cost-center: "42"
"#;

    #[test]
    fn parses_a_complete_section() {
        let policy = parse(FULL).unwrap();
        let e = &policy.evaluation;
        assert_eq!(e.evaluator_model, "us.amazon.nova-pro-v1:0");
        assert_eq!(
            e.metric_names(),
            [
                "Builtin.Correctness",
                "Builtin.Harmfulness",
                "brand_voice",
                "tone-label"
            ]
        );
        let specs = e.custom_metric_specs();
        assert_eq!(specs[0].rating_scale[0].value, RatingValue::Float(1.0));
        assert_eq!(
            specs[1].rating_scale[1].value,
            RatingValue::Text("curt".into())
        );
        assert_eq!(e.kms_key_id.as_deref(), Some("alias/evalgate"));
        assert_eq!(e.tags["cost-center"], "42");
        assert!(higher_is_worse("Builtin.Harmfulness"));
        assert!(!higher_is_worse("Builtin.Correctness"));
    }

    /// The lists derived from `gates::BUILTIN_METRICS` are the ones this module used to spell
    /// out (same names, same order: messages list them).
    #[test]
    fn metric_lists_derive_from_the_direction_table() {
        assert_eq!(
            JUDGE_METRICS,
            [
                "Builtin.Correctness",
                "Builtin.Completeness",
                "Builtin.Faithfulness",
                "Builtin.Helpfulness",
                "Builtin.Coherence",
                "Builtin.Relevance",
                "Builtin.FollowingInstructions",
                "Builtin.ProfessionalStyleAndTone",
                "Builtin.Harmfulness",
                "Builtin.Stereotyping",
                "Builtin.Refusal",
            ]
        );
        assert_eq!(
            HIGHER_IS_WORSE,
            [
                "Builtin.Harmfulness",
                "Builtin.Stereotyping",
                "Builtin.Refusal"
            ]
        );
        for name in JUDGE_METRICS {
            assert_eq!(
                higher_is_worse(name),
                HIGHER_IS_WORSE.contains(name),
                "{name}"
            );
        }
        assert!(!higher_is_worse("brand_voice"));
    }

    /// docs/policy.md's complete example (its first YAML block) is valid and sets every
    /// section; the CLI's tests run `evalgate policy check` on the same block.
    #[test]
    fn the_docs_example_is_valid() {
        let doc = include_str!("../../../docs/policy.md");
        let start = doc.find("```yaml\n").expect("a yaml block") + 8;
        let end = start + doc[start..].find("```").expect("closed");
        let text = &doc[start..end];
        let policy = match Policy::parse("docs/policy.md", text) {
            Ok(policy) => policy,
            Err(e) => panic!("{e}"),
        };
        for key in [
            "version",
            "evaluation",
            "metrics_namespace",
            "gates",
            "release",
            "rollback",
            "alerts",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{key}:"))),
                "the example sets {key}"
            );
        }
        let e = &policy.evaluation;
        assert!(!e.metrics.is_empty() && !e.custom_metrics.is_empty());
        assert!(e.custom_metrics.iter().all(|m| !m.rating_scale.is_empty()));
        assert!(e.kms_key_id.is_some() && !e.tags.is_empty());

        let g = &policy.gates;
        assert!(g.sets_any_gate(), "the example can pass");
        let gated = g.resolved().iter().filter(|m| m.is_gated()).count();
        assert_eq!(gated, g.metrics.len(), "every metric under gates is gated");
        assert!(
            g.metrics.keys().any(|m| higher_is_worse(m)),
            "a lower-is-better metric"
        );
        assert!(
            g.metrics
                .values()
                .any(|m| m.direction.is_some() && m.min_mean.is_some()),
            "a custom metric with its direction"
        );
        assert!(g.min_scored.is_some() && g.max_unscored_fraction.is_some());
        assert!(g.pass_bar.is_some() && g.regression.step.is_some());
        assert!(g.regression.max_regressed_prompts.is_some());
        assert!(!g.critical_categories.is_empty() && g.has_budgets());
        assert!(g.budgets.prices.is_some() && g.worst_prompts.is_some());

        let release = policy.release.as_ref().expect("a release section");
        assert_eq!(release.promote, crate::policy::release::Promote::OnPass);
        let rollback = policy.rollback.as_ref().expect("a rollback section");
        let rules = rollback.rules();
        assert!(rules.min_periods.is_some() && rules.min_duration.is_some());
        assert!(rollback.cooldown.is_some() && rollback.max_alarm_age.is_some());
        // The stack's default prefixes (docs/deploy.md): the example works as deployed.
        assert!(
            rules
                .alarms
                .iter()
                .all(|a| a.starts_with("evalgate-rollback-")),
            "{:?}",
            rules.alarms
        );
        assert!(
            release
                .pointer_spec()
                .describe()
                .starts_with("ssm:/evalgate/"),
            "{}",
            release.pointer_spec().describe()
        );
        assert_ne!(policy.alerts, crate::policy::AlertsPolicy::default());
        for kind in crate::policy::alerts::AlertKind::ALL {
            assert!(
                policy.alerts.severity.get(kind).is_some(),
                "the example lists alerts.severity.{}",
                kind.key()
            );
        }
    }

    #[test]
    fn listing_a_custom_metric_in_metrics_is_allowed_once() {
        let text = FULL.replace(
            "metrics: [Builtin.Correctness, Builtin.Harmfulness]",
            "metrics: [Builtin.Correctness, brand_voice]",
        );
        let policy = parse(&text).unwrap();
        assert_eq!(
            policy.evaluation.metric_names(),
            ["Builtin.Correctness", "brand_voice", "tone-label"]
        );
    }

    #[test]
    fn evaluator_ids_follow_the_api_pattern() {
        for ok in [
            "us.amazon.nova-pro-v1:0",
            "amazon.nova-pro-v1:0",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "meta.llama3-1-70b-instruct-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        ] {
            assert!(is_valid_evaluator_model(ok), "{ok}");
        }
        for bad in [
            "claude",
            "Anthropic.Claude",
            "",
            "us.amazon.nova pro",
            "gpt-4o",
        ] {
            assert!(!is_valid_evaluator_model(bad), "{bad}");
        }
    }

    #[test]
    fn kms_and_tag_patterns() {
        assert!(is_valid_kms_key_id("alias/evalgate"));
        assert!(is_valid_kms_key_id("1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(is_valid_kms_key_id(
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ));
        assert!(!is_valid_kms_key_id("my key"));
        assert!(is_valid_tag_text("v1.2 beta+rc=1@x:y/z"));
        assert!(!is_valid_tag_text("café"));
        assert!(!is_valid_tag_text("a,b"));
        assert!(is_valid_metric_name("Builtin.Correctness"));
        assert!(!is_valid_metric_name("brand voice"));
    }

    /// Each broken section yields a problem at the right path and line, saying what to do.
    #[test]
    fn problems_name_the_path_line_and_fix() {
        let cases: &[(&str, &str, &str, u64)] = &[
            (
                "  evaluator_model: claude\n  metrics: [Builtin.Correctness]\n",
                "evaluation.evaluator_model",
                "us.amazon.nova-pro-v1:0",
                3,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  metrics: []\n",
                "evaluation.metrics",
                "at least one metric",
                4,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  metrics:\n    - Builtin.Correctness\n    - Builtin.Helpfullnes\n",
                "evaluation.metrics[1]",
                "did you mean Builtin.Helpfulness",
                6,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Builtin.Vibes]\n",
                "evaluation.metrics[0]",
                "neither a built-in",
                4,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Correctness]\n",
                "evaluation.metrics[0]",
                "did you mean Builtin.Correctness",
                4,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Builtin.ContextRelevance]\n",
                "evaluation.metrics[0]",
                "knowledge-base (RAG)",
                4,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Builtin.Accuracy]\n",
                "evaluation.metrics[0]",
                "programmatic",
                4,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness, Builtin.Correctness]\n",
                "evaluation.metrics[1]",
                "listed twice",
                4,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  custom_metrics:\n    - name: tone\n      instructions: Rate the tone.\n",
                "evaluation.custom_metrics[0].instructions",
                "{{prediction}}",
                6,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  custom_metrics:\n    - name: tone\n      instructions: Rate {{ prediction }} and {{answer}}.\n",
                "evaluation.custom_metrics[0].instructions",
                "without spaces",
                6,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  custom_metrics:\n    - name: Builtin.Tone\n      instructions: Rate {{prediction}}.\n",
                "evaluation.custom_metrics[0].name",
                "without that prefix",
                5,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  custom_metrics:\n    - name: my tone\n      instructions: Rate {{prediction}}.\n",
                "evaluation.custom_metrics[0].name",
                "not a valid metric name",
                5,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  custom_metrics:\n    - name: tone\n      instructions: Rate {{prediction}}.\n      rating_scale:\n        - { definition: good, value: 1 }\n        - { definition: bad, value: poor }\n",
                "evaluation.custom_metrics[0].rating_scale",
                "mixes numbers and text",
                8,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  custom_metrics:\n    - name: tone\n      instructions: Rate {{prediction}}.\n      rating_scale: []\n",
                "evaluation.custom_metrics[0].rating_scale",
                "has 0 ratings",
                7,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n  kms_key_id: my key\n",
                "evaluation.kms_key_id",
                "alias/evalgate",
                5,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n  tags:\n    evalgate:team: x\n",
                "evaluation.tags.evalgate:team",
                "reserved",
                6,
            ),
            (
                "  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n  tags:\n    owner: josé\n",
                "evaluation.tags.owner",
                "tag values",
                6,
            ),
        ];
        for (section, path, fragment, line) in cases {
            let found = problems(section);
            let hit = found.iter().find(|p| p.path == *path);
            let Some(hit) = hit else {
                panic!("no problem at {path} for\n{section}\nfound: {found:?}");
            };
            assert!(hit.message.contains(fragment), "{path}: {}", hit.message);
            assert_eq!(hit.line, Some(*line), "{path}: {hit}");
        }
    }

    /// The example in docs/policy.md ("How policies are checked").
    #[test]
    fn a_misspelled_metric_is_located_as_documented() {
        let found = problems(
            "  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctnes]\n",
        );
        let p = &found[0];
        assert_eq!((p.line, p.column), (Some(4), Some(13)), "{p}");
        assert_eq!(p.path, "evaluation.metrics[0]");
        assert!(
            p.message.contains("did you mean Builtin.Correctness?"),
            "{p}"
        );
    }

    #[test]
    fn unknown_keys_in_the_section_are_located() {
        let err = parse("  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n  judge: x\n").unwrap_err();
        assert_eq!(err.problems[0].line, Some(5), "{err}");
        assert!(err.problems[0].message.contains("judge"), "{err}");
        let err = parse("  evaluator_model: amazon.nova-pro-v1:0\n  custom_metrics:\n    - name: t\n      instruction: Rate {{prediction}}\n").unwrap_err();
        assert!(err.to_string().contains("instruction"), "{err}");
    }

    #[test]
    fn too_many_custom_metrics_or_tags() {
        let mut section =
            String::from("  evaluator_model: amazon.nova-pro-v1:0\n  custom_metrics:\n");
        for i in 0..11 {
            section.push_str(&format!(
                "    - name: m{i}\n      instructions: Rate {{{{prediction}}}}.\n"
            ));
        }
        let found = problems(&section);
        assert!(
            found.iter().any(|p| p.message.contains("at most 10")),
            "{found:?}"
        );
    }

    #[test]
    fn template_variables_are_found_once_in_order() {
        assert_eq!(
            template_variables("{{prompt}} then {{prediction}} and {{prompt}} {{ x"),
            ["prompt", "prediction"]
        );
    }
}
