//! Request validation, written from the Bedrock API model and its documentation.
//!
//! Two passes, like the service:
//!
//! 1. **Model constraints** (required members, lengths, patterns, enums, list sizes, unions with
//!    exactly one member). All violations are collected and reported together in the format of
//!    AWS's request validation layer:
//!    `2 validation errors detected: Value 'Bad_Name' at 'jobName' failed to satisfy constraint:
//!    Member must satisfy regular expression pattern: [a-z0-9](-*[a-z0-9]){0,62}; Value null at
//!    'roleArn' failed to satisfy constraint: Member must not be null`.
//!    Paths use the service's notation (`datasetMetricConfigs.1.member.dataset.name`, 1-based).
//!    Values of members the model marks `sensitive` are not echoed (`Value at '...'`).
//! 2. **Documented semantics** ([`check_semantics`]): one precise message for the first rule
//!    broken (evaluator model required for judge metrics, custom metrics listed in
//!    `metricNames`, one model per automated job, ...). Features bedrock-local does not run yet
//!    (RAG, human, Bedrock-run inference) are rejected here with "... is not supported by
//!    bedrock-local yet".

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::model::{
    AutomatedConfig, CreateJobRequest, CustomMetric, CustomMetricConfig, DatasetMetricConfig,
    EvaluationConfig, InferenceConfig, JUDGE_METRICS, ModelConfig, PROGRAMMATIC_METRICS,
    RAG_ONLY_METRICS, RatingScaleItem, RatingValue,
};
use crate::patterns::{Pattern, Patterns};

/// The task types of the API model's enum. The service also accepts `General`, which AWS's own
/// judge examples send (see [`TASK_TYPES_ACCEPTED`]).
pub const TASK_TYPE_ENUM: [&str; 5] = [
    "Summarization",
    "Classification",
    "QuestionAndAnswer",
    "Generation",
    "Custom",
];
/// What `taskType` accepts: the model's enum plus `General` (messages list only the enum, as
/// the service's do).
pub const TASK_TYPES_ACCEPTED: [&str; 6] = [
    "Summarization",
    "Classification",
    "QuestionAndAnswer",
    "Generation",
    "Custom",
    "General",
];
/// `ApplicationType`.
pub const APPLICATION_TYPES: [&str; 2] = ["ModelEvaluation", "RagEvaluation"];
/// `EvaluationJobStatus`.
pub const JOB_STATUSES: [&str; 6] = [
    "InProgress",
    "Completed",
    "Failed",
    "Stopping",
    "Stopped",
    "Deleting",
];

/// Collected model-constraint violations.
#[derive(Debug, Default)]
pub struct Violations {
    items: Vec<String>,
}

impl Violations {
    fn null(&mut self, path: &str) {
        self.items.push(format!(
            "Value null at '{path}' failed to satisfy constraint: Member must not be null"
        ));
    }

    /// `shown` is the value as the service prints it, `None` for sensitive members.
    fn push(&mut self, shown: Option<&str>, path: &str, constraint: &str) {
        let value = match shown {
            Some(v) => format!("Value '{v}' at '{path}'"),
            None => format!("Value at '{path}'"),
        };
        self.items.push(format!(
            "{value} failed to satisfy constraint: Member {constraint}"
        ));
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The ValidationException for what was found, if anything.
    pub fn into_error(self) -> Option<ApiError> {
        match self.items.len() {
            0 => None,
            1 => Some(ApiError::Validation(format!(
                "1 validation error detected: {}",
                self.items.join("; ")
            ))),
            n => Some(ApiError::Validation(format!(
                "{n} validation errors detected: {}",
                self.items.join("; ")
            ))),
        }
    }

    fn string<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        path: &str,
        spec: &Str<'_>,
    ) -> Option<&'a str> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                if spec.required {
                    self.null(path);
                }
                None
            }
            Some(Value::String(s)) => {
                self.check_str(s, path, spec);
                Some(s.as_str())
            }
            Some(other) => {
                self.push(
                    (!spec.sensitive).then_some(other.to_string().as_str()),
                    path,
                    "must be a string",
                );
                None
            }
        }
    }

    fn check_str(&mut self, s: &str, path: &str, spec: &Str<'_>) {
        let shown = (!spec.sensitive).then_some(s);
        // Lengths are counted in characters (the service counts UTF-16 units; the same for
        // everything these fields accept).
        let len = s.chars().count();
        if len > spec.max {
            self.push(
                shown,
                path,
                &format!("must have length less than or equal to {}", spec.max),
            );
        } else if len < spec.min {
            self.push(
                shown,
                path,
                &format!("must have length greater than or equal to {}", spec.min),
            );
        } else if let Some(pattern) = spec.pattern
            && !pattern.matches(s)
        {
            self.push(
                shown,
                path,
                &format!(
                    "must satisfy regular expression pattern: {}",
                    pattern.source()
                ),
            );
        } else if let Some((accepted, shown_set)) = spec.enumeration
            && !accepted.contains(&s)
        {
            self.push(
                shown,
                path,
                &format!("must satisfy enum value set: [{}]", shown_set.join(", ")),
            );
        }
    }

    fn list<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        path: &str,
        min: usize,
        max: usize,
        required: bool,
    ) -> Option<&'a [Value]> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.null(path);
                }
                None
            }
            Some(Value::Array(items)) => {
                let shown = render_list(items);
                if items.len() > max {
                    self.push(
                        shown.as_deref(),
                        path,
                        &format!("must have length less than or equal to {max}"),
                    );
                } else if items.len() < min {
                    self.push(
                        shown.as_deref(),
                        path,
                        &format!("must have length greater than or equal to {min}"),
                    );
                }
                Some(items.as_slice())
            }
            Some(_) => {
                self.push(None, path, "must be a list");
                None
            }
        }
    }

    fn object<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        path: &str,
        required: bool,
    ) -> Option<&'a Map<String, Value>> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.null(path);
                }
                None
            }
            Some(value) => self.as_object(value, path),
        }
    }

    fn as_object<'a>(&mut self, value: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            _ => {
                self.push(None, path, "must be a structure");
                None
            }
        }
    }

    /// A union: exactly one of `members` must be set (members set to `null` count as unset,
    /// as in the SDKs' own union deserialisers).
    fn union<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        path: &str,
        members: &[&str],
        required: bool,
    ) -> Option<(&'a str, &'a Value)> {
        let map = self.object(obj, key, path, required)?;
        self.union_of(map, path, members)
    }

    fn union_of<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        path: &str,
        members: &[&str],
    ) -> Option<(&'a str, &'a Value)> {
        let set: Vec<(&'a str, &'a Value)> = map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let unknown: Vec<&str> = set
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !members.contains(k))
            .collect();
        if set.len() != 1 || !unknown.is_empty() {
            let found: Vec<&str> = set.iter().map(|(k, _)| *k).collect();
            let found = if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            };
            self.push(
                None,
                path,
                &format!(
                    "must have exactly one of the following members set: [{}] (found: {found})",
                    members.join(", ")
                ),
            );
            return None;
        }
        set.into_iter().next()
    }
}

/// String constraints of one member.
#[derive(Clone, Copy)]
struct Str<'p> {
    min: usize,
    max: usize,
    pattern: Option<&'p Pattern>,
    /// (accepted values, values shown in the message)
    enumeration: Option<(&'p [&'p str], &'p [&'p str])>,
    required: bool,
    sensitive: bool,
}

impl<'p> Str<'p> {
    fn new(min: usize, max: usize) -> Self {
        Str {
            min,
            max,
            pattern: None,
            enumeration: None,
            required: false,
            sensitive: false,
        }
    }
    fn pattern(mut self, p: &'p Pattern) -> Self {
        self.pattern = Some(p);
        self
    }
    fn one_of(mut self, accepted: &'p [&'p str], shown: &'p [&'p str]) -> Self {
        self.enumeration = Some((accepted, shown));
        self
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
}

/// How the service prints a list of strings in a message (`[a, b]`); other lists are not
/// printed.
fn render_list(items: &[Value]) -> Option<String> {
    let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
    strings.map(|s| format!("[{}]", s.join(", ")))
}

fn member(path: &str, index: usize) -> String {
    format!("{path}.{}.member", index + 1)
}

/// Parses and model-validates a CreateEvaluationJob body.
pub fn parse_create_request(body: &Value, p: &Patterns) -> Result<CreateJobRequest, ApiError> {
    let Some(root) = body.as_object() else {
        return Err(ApiError::Validation(
            "The request body must be a JSON object (CreateEvaluationJobRequest).".into(),
        ));
    };
    let mut v = Violations::default();

    let job_name = v.string(
        root,
        "jobName",
        "jobName",
        &Str::new(1, 63).pattern(&p.job_name).required(),
    );
    let job_description = v.string(
        root,
        "jobDescription",
        "jobDescription",
        &Str::new(1, 200).pattern(&p.description).sensitive(),
    );
    let token = v.string(
        root,
        "clientRequestToken",
        "clientRequestToken",
        &Str::new(1, 256).pattern(&p.idempotency_token),
    );
    let role_arn = v.string(
        root,
        "roleArn",
        "roleArn",
        &Str::new(0, 2048).pattern(&p.role_arn).required(),
    );
    let kms = v.string(
        root,
        "customerEncryptionKeyId",
        "customerEncryptionKeyId",
        &Str::new(1, 2048).pattern(&p.kms_key_id),
    );
    let mut tags = Vec::new();
    if let Some(items) = v.list(root, "jobTags", "jobTags", 0, 200, false) {
        for (i, item) in items.iter().enumerate() {
            let path = member("jobTags", i);
            let Some(tag) = v.as_object(item, &path) else {
                continue;
            };
            let key = v.string(
                tag,
                "key",
                &format!("{path}.key"),
                &Str::new(1, 128).pattern(&p.tag).required(),
            );
            let value = v.string(
                tag,
                "value",
                &format!("{path}.value"),
                &Str::new(0, 256).pattern(&p.tag).required(),
            );
            if let (Some(k), Some(val)) = (key, value) {
                tags.push((k.to_owned(), val.to_owned()));
            }
        }
    }
    let application_type = v.string(
        root,
        "applicationType",
        "applicationType",
        &Str::new(0, usize::MAX).one_of(&APPLICATION_TYPES, &APPLICATION_TYPES),
    );
    let evaluation_config = parse_evaluation_config(&mut v, root, p);
    let inference_config = parse_inference_config(&mut v, root, p);
    let output_s3_uri = v
        .object(root, "outputDataConfig", "outputDataConfig", true)
        .and_then(|out| {
            v.string(
                out,
                "s3Uri",
                "outputDataConfig.s3Uri",
                &Str::new(1, 1024).pattern(&p.s3_uri).required(),
            )
        });

    if let Some(error) = v.into_error() {
        return Err(error);
    }
    match (
        job_name,
        role_arn,
        evaluation_config,
        inference_config,
        output_s3_uri,
    ) {
        (
            Some(job_name),
            Some(role_arn),
            Some(evaluation_config),
            Some(inference_config),
            Some(output_s3_uri),
        ) => Ok(CreateJobRequest {
            job_name: job_name.to_owned(),
            job_description: job_description.map(str::to_owned),
            client_request_token: token.map(str::to_owned),
            role_arn: role_arn.to_owned(),
            customer_encryption_key_id: kms.map(str::to_owned),
            job_tags: tags,
            application_type: application_type.map(str::to_owned),
            evaluation_config,
            inference_config,
            output_s3_uri: output_s3_uri.to_owned(),
        }),
        // Unreachable when every required member was reported above; kept as an answer
        // rather than a panic.
        _ => Err(ApiError::Validation(
            "The request is missing a required member.".into(),
        )),
    }
}

fn parse_evaluation_config(
    v: &mut Violations,
    root: &Map<String, Value>,
    p: &Patterns,
) -> Option<EvaluationConfig> {
    let (kind, value) = v.union(
        root,
        "evaluationConfig",
        "evaluationConfig",
        &["automated", "human"],
        true,
    )?;
    if kind == "human" {
        return Some(EvaluationConfig::Human);
    }
    let path = "evaluationConfig.automated";
    let automated = v.as_object(value, path)?;
    let configs =
        parse_dataset_metric_configs(v, automated, &format!("{path}.datasetMetricConfigs"), p);
    let evaluator_model = parse_evaluator_models(
        v,
        automated,
        "evaluatorModelConfig",
        &format!("{path}.evaluatorModelConfig"),
        p,
        false,
    );
    let custom = v
        .object(
            automated,
            "customMetricConfig",
            &format!("{path}.customMetricConfig"),
            false,
        )
        .map(|c| parse_custom_metric_config(v, c, &format!("{path}.customMetricConfig"), p));
    let custom = match custom {
        Some(None) => return None,
        Some(Some(c)) => Some(c),
        None => None,
    };
    Some(EvaluationConfig::Automated(AutomatedConfig {
        dataset_metric_configs: configs?,
        evaluator_model,
        custom_metric_config: custom,
    }))
}

fn parse_dataset_metric_configs(
    v: &mut Violations,
    automated: &Map<String, Value>,
    path: &str,
    p: &Patterns,
) -> Option<Vec<DatasetMetricConfig>> {
    let items = v.list(automated, "datasetMetricConfigs", path, 1, 5, true)?;
    let mut configs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = member(path, i);
        let Some(config) = v.as_object(item, &path) else {
            continue;
        };
        let task_type = v.string(
            config,
            "taskType",
            &format!("{path}.taskType"),
            &Str::new(1, 63)
                .pattern(&p.task_type)
                .one_of(&TASK_TYPES_ACCEPTED, &TASK_TYPE_ENUM)
                .required(),
        );
        let dataset_path = format!("{path}.dataset");
        let dataset = v.object(config, "dataset", &dataset_path, true);
        let (name, s3_uri) = match dataset {
            Some(dataset) => {
                let name = v.string(
                    dataset,
                    "name",
                    &format!("{dataset_path}.name"),
                    &Str::new(1, 63).pattern(&p.name).required().sensitive(),
                );
                let location_path = format!("{dataset_path}.datasetLocation");
                let s3_uri = v
                    .union(
                        dataset,
                        "datasetLocation",
                        &location_path,
                        &["s3Uri"],
                        false,
                    )
                    .and_then(|(_, value)| match value {
                        Value::String(s) => {
                            v.check_str(
                                s,
                                &format!("{location_path}.s3Uri"),
                                &Str::new(1, 1024).pattern(&p.s3_uri),
                            );
                            Some(s.as_str())
                        }
                        other => {
                            v.push(
                                Some(&other.to_string()),
                                &format!("{location_path}.s3Uri"),
                                "must be a string",
                            );
                            None
                        }
                    });
                (name, s3_uri)
            }
            None => (None, None),
        };
        let metrics_path = format!("{path}.metricNames");
        let mut metric_names = Vec::new();
        if let Some(names) = v.list(config, "metricNames", &metrics_path, 1, 25, true) {
            for (j, name) in names.iter().enumerate() {
                let name_path = member(&metrics_path, j);
                match name {
                    Value::String(s) => {
                        v.check_str(s, &name_path, &Str::new(1, 63).pattern(&p.name).sensitive());
                        metric_names.push(s.clone());
                    }
                    Value::Null => v.null(&name_path),
                    _ => v.push(None, &name_path, "must be a string"),
                }
            }
        }
        if let (Some(task_type), Some(name)) = (task_type, name) {
            configs.push(DatasetMetricConfig {
                task_type: task_type.to_owned(),
                dataset_name: name.to_owned(),
                s3_uri: s3_uri.map(str::to_owned),
                metric_names,
            });
        }
    }
    Some(configs)
}

/// `evaluatorModelConfig` (a union with one member) or `CustomMetricEvaluatorModelConfig`
/// (a structure): both hold `bedrockEvaluatorModels`, a list of exactly one model.
fn parse_evaluator_models(
    v: &mut Violations,
    parent: &Map<String, Value>,
    key: &str,
    path: &str,
    p: &Patterns,
    required_structure: bool,
) -> Option<String> {
    let models = if required_structure {
        let config = v.object(parent, key, path, true)?;
        v.list(
            config,
            "bedrockEvaluatorModels",
            &format!("{path}.bedrockEvaluatorModels"),
            1,
            1,
            true,
        )?
    } else {
        let (_, value) = v.union(parent, key, path, &["bedrockEvaluatorModels"], false)?;
        let list_path = format!("{path}.bedrockEvaluatorModels");
        let Value::Array(items) = value else {
            v.push(None, &list_path, "must be a list");
            return None;
        };
        if items.len() > 1 {
            v.push(None, &list_path, "must have length less than or equal to 1");
        } else if items.is_empty() {
            v.push(
                None,
                &list_path,
                "must have length greater than or equal to 1",
            );
        }
        items.as_slice()
    };
    let mut first = None;
    for (i, item) in models.iter().enumerate() {
        let item_path = member(&format!("{path}.bedrockEvaluatorModels"), i);
        let Some(model) = v.as_object(item, &item_path) else {
            continue;
        };
        let id = v.string(
            model,
            "modelIdentifier",
            &format!("{item_path}.modelIdentifier"),
            &Str::new(1, 2048).pattern(&p.evaluator_model).required(),
        );
        if first.is_none() {
            first = id.map(str::to_owned);
        }
    }
    first
}

fn parse_custom_metric_config(
    v: &mut Violations,
    config: &Map<String, Value>,
    path: &str,
    p: &Patterns,
) -> Option<CustomMetricConfig> {
    let metrics_path = format!("{path}.customMetrics");
    let items = v.list(config, "customMetrics", &metrics_path, 1, 10, true);
    let mut metrics = Vec::new();
    for (i, item) in items.unwrap_or_default().iter().enumerate() {
        let item_path = member(&metrics_path, i);
        let Some(source) = v.as_object(item, &item_path) else {
            continue;
        };
        let Some((_, definition)) = v.union_of(source, &item_path, &["customMetricDefinition"])
        else {
            continue;
        };
        let def_path = format!("{item_path}.customMetricDefinition");
        let Some(definition) = v.as_object(definition, &def_path) else {
            continue;
        };
        // The whole CustomMetricDefinition is sensitive: no values in messages.
        let name = v.string(
            definition,
            "name",
            &format!("{def_path}.name"),
            &Str::new(1, 63).pattern(&p.name).required().sensitive(),
        );
        let instructions = v.string(
            definition,
            "instructions",
            &format!("{def_path}.instructions"),
            &Str::new(1, 5000).required().sensitive(),
        );
        let scale_path = format!("{def_path}.ratingScale");
        let mut scale = None;
        if let Some(ratings) = v.list(definition, "ratingScale", &scale_path, 1, 10, false) {
            let mut parsed = Vec::new();
            for (j, rating) in ratings.iter().enumerate() {
                let rating_path = member(&scale_path, j);
                let Some(rating) = v.as_object(rating, &rating_path) else {
                    continue;
                };
                let definition = v.string(
                    rating,
                    "definition",
                    &format!("{rating_path}.definition"),
                    &Str::new(1, 100).required().sensitive(),
                );
                let value_path = format!("{rating_path}.value");
                let value = v
                    .union(
                        rating,
                        "value",
                        &value_path,
                        &["stringValue", "floatValue"],
                        true,
                    )
                    .and_then(|(kind, value)| parse_rating_value(v, kind, value, &value_path));
                if let (Some(d), Some(value)) = (definition, value) {
                    parsed.push(RatingScaleItem {
                        definition: d.to_owned(),
                        value,
                    });
                }
            }
            scale = Some(parsed);
        }
        if let (Some(name), Some(instructions)) = (name, instructions) {
            metrics.push(CustomMetric {
                name: name.to_owned(),
                instructions: instructions.to_owned(),
                rating_scale: scale,
            });
        }
    }
    let evaluator = parse_evaluator_models(
        v,
        config,
        "evaluatorModelConfig",
        &format!("{path}.evaluatorModelConfig"),
        p,
        true,
    );
    Some(CustomMetricConfig {
        metrics,
        evaluator_model: evaluator?,
    })
}

fn parse_rating_value(
    v: &mut Violations,
    kind: &str,
    value: &Value,
    path: &str,
) -> Option<RatingValue> {
    let path = format!("{path}.{kind}");
    match (kind, value) {
        ("stringValue", Value::String(s)) => {
            v.check_str(s, &path, &Str::new(1, 100).sensitive());
            Some(RatingValue::String(s.clone()))
        }
        ("floatValue", Value::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => Some(RatingValue::Float(f)),
            _ => {
                v.push(None, &path, "must be a finite number");
                None
            }
        },
        ("floatValue", _) => {
            v.push(None, &path, "must be a finite number");
            None
        }
        _ => {
            v.push(None, &path, "must be a string");
            None
        }
    }
}

fn parse_inference_config(
    v: &mut Violations,
    root: &Map<String, Value>,
    p: &Patterns,
) -> Option<InferenceConfig> {
    let (kind, value) = v.union(
        root,
        "inferenceConfig",
        "inferenceConfig",
        &["models", "ragConfigs"],
        true,
    )?;
    if kind == "ragConfigs" {
        return Some(InferenceConfig::RagConfigs);
    }
    let path = "inferenceConfig.models";
    let Value::Array(items) = value else {
        v.push(None, path, "must be a list");
        return None;
    };
    if items.len() > 2 {
        v.push(None, path, "must have length less than or equal to 2");
    } else if items.is_empty() {
        v.push(None, path, "must have length greater than or equal to 1");
    }
    let mut models = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = member(path, i);
        let Some(config) = v.as_object(item, &item_path) else {
            continue;
        };
        let Some((kind, model)) = v.union_of(
            config,
            &item_path,
            &["bedrockModel", "precomputedInferenceSource"],
        ) else {
            continue;
        };
        let model_path = format!("{item_path}.{kind}");
        let Some(model) = v.as_object(model, &model_path) else {
            continue;
        };
        if kind == "bedrockModel" {
            let id = v.string(
                model,
                "modelIdentifier",
                &format!("{model_path}.modelIdentifier"),
                &Str::new(1, 2048).pattern(&p.bedrock_model).required(),
            );
            v.string(
                model,
                "inferenceParams",
                &format!("{model_path}.inferenceParams"),
                &Str::new(1, 1023).sensitive(),
            );
            if let Some(id) = id {
                models.push(ModelConfig::Bedrock(id.to_owned()));
            }
        } else {
            let id = v.string(
                model,
                "inferenceSourceIdentifier",
                &format!("{model_path}.inferenceSourceIdentifier"),
                &Str::new(1, 256).pattern(&p.precomputed_source).required(),
            );
            if let Some(id) = id {
                models.push(ModelConfig::Precomputed(id.to_owned()));
            }
        }
    }
    Some(InferenceConfig::Models(models))
}

/// The documented rules beyond the model's constraints, checked on a model-valid request.
pub fn check_semantics(req: &CreateJobRequest) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::Validation(m));
    if req.application_type() == "RagEvaluation" {
        return invalid(
            "applicationType RagEvaluation (knowledge-base evaluation) is not supported by bedrock-local yet; use ModelEvaluation.".into(),
        );
    }
    let automated = match &req.evaluation_config {
        EvaluationConfig::Automated(a) => a,
        EvaluationConfig::Human => {
            return invalid(
                "evaluationConfig.human (model evaluation jobs that use human workers) is not supported by bedrock-local yet; use evaluationConfig.automated.".into(),
            );
        }
    };
    let models = match &req.inference_config {
        InferenceConfig::Models(models) => models,
        InferenceConfig::RagConfigs => {
            return invalid(
                "inferenceConfig.ragConfigs (knowledge-base evaluation, including precomputedRagSourceConfig) is not supported by bedrock-local yet; use inferenceConfig.models with a precomputedInferenceSource.".into(),
            );
        }
    };
    if models.len() != 1 {
        return invalid(format!(
            "An automated model evaluation job evaluates exactly one model, but inferenceConfig.models has {} entries.",
            models.len()
        ));
    }
    if let Some(ModelConfig::Bedrock(id)) = models.first() {
        return invalid(format!(
            "inferenceConfig.models.1.member.bedrockModel ('{id}': Bedrock runs the inference) is not supported by bedrock-local yet; provide your own responses with precomputedInferenceSource."
        ));
    }

    let mut dataset_names = HashSet::new();
    for (i, config) in automated.dataset_metric_configs.iter().enumerate() {
        let n = i + 1;
        if config.s3_uri.is_none() {
            return invalid(format!(
                "evaluationConfig.automated.datasetMetricConfigs.{n}.member.dataset.datasetLocation is required: a job with precomputedInferenceSource reads prompts and responses from your own dataset in S3 (built-in prompt datasets need Bedrock-run inference, which is not supported by bedrock-local yet)."
            ));
        }
        if !dataset_names.insert(config.dataset_name.as_str()) {
            return invalid(format!(
                "Dataset name '{}' is used by more than one entry of evaluationConfig.automated.datasetMetricConfigs; dataset names must be unique within a job.",
                config.dataset_name
            ));
        }
    }

    let custom_names: Vec<&str> = automated
        .custom_metric_config
        .as_ref()
        .map(|c| c.metrics.iter().map(|m| m.name.as_str()).collect())
        .unwrap_or_default();
    let mut seen = HashSet::new();
    for name in &custom_names {
        if !seen.insert(*name) {
            return invalid(format!(
                "Custom metric '{name}' is defined more than once in evaluationConfig.automated.customMetricConfig.customMetrics."
            ));
        }
        if name.starts_with("Builtin.") {
            return invalid(format!(
                "Custom metric name '{name}' uses the reserved prefix 'Builtin.'; choose another name."
            ));
        }
    }

    let mut judge_metrics_used = Vec::new();
    for (i, config) in automated.dataset_metric_configs.iter().enumerate() {
        let n = i + 1;
        let mut in_this_config = HashSet::new();
        for name in &config.metric_names {
            if !in_this_config.insert(name.as_str()) {
                return invalid(format!(
                    "Metric '{name}' is listed more than once in evaluationConfig.automated.datasetMetricConfigs.{n}.member.metricNames."
                ));
            }
            match name.strip_prefix("Builtin.") {
                Some(builtin) if JUDGE_METRICS.contains(&builtin) => {
                    if !judge_metrics_used.contains(name) {
                        judge_metrics_used.push(name.clone());
                    }
                }
                Some(builtin) if PROGRAMMATIC_METRICS.contains(&builtin) => {
                    return invalid(format!(
                        "Metric '{name}' is a programmatic metric computed on responses Bedrock generates itself; it cannot be used with precomputedInferenceSource. Use the judge metrics ({}) instead.",
                        judge_metric_list()
                    ));
                }
                Some(builtin) if RAG_ONLY_METRICS.contains(&builtin) => {
                    return invalid(format!(
                        "Metric '{name}' is a knowledge-base (RAG) evaluation metric and is not valid for applicationType ModelEvaluation. Valid judge metrics: {}.",
                        judge_metric_list()
                    ));
                }
                Some(_) => {
                    return invalid(format!(
                        "Metric '{name}' in evaluationConfig.automated.datasetMetricConfigs.{n}.member.metricNames is not a built-in metric. Valid judge metrics: {}.",
                        judge_metric_list()
                    ));
                }
                None if custom_names.contains(&name.as_str()) => {}
                None => {
                    return invalid(format!(
                        "Metric '{name}' in evaluationConfig.automated.datasetMetricConfigs.{n}.member.metricNames is neither a built-in metric (Builtin.*) nor a custom metric defined in evaluationConfig.automated.customMetricConfig.customMetrics."
                    ));
                }
            }
        }
    }
    for name in &custom_names {
        let listed = automated
            .dataset_metric_configs
            .iter()
            .any(|c| c.metric_names.iter().any(|m| m == name));
        if !listed {
            return invalid(format!(
                "Custom metric '{name}' is defined in evaluationConfig.automated.customMetricConfig.customMetrics but is not listed in any datasetMetricConfigs[].metricNames; add '{name}' to metricNames."
            ));
        }
    }
    if !judge_metrics_used.is_empty() && automated.evaluator_model.is_none() {
        return invalid(format!(
            "evaluationConfig.automated.evaluatorModelConfig is required: the metrics {} are computed by an evaluator (judge) model. Add evaluatorModelConfig.bedrockEvaluatorModels with one modelIdentifier, e.g. amazon.nova-pro-v1:0.",
            judge_metrics_used.join(", ")
        ));
    }
    if let Some(custom) = &automated.custom_metric_config {
        for metric in &custom.metrics {
            if let Some(scale) = &metric.rating_scale {
                let floats = scale
                    .iter()
                    .filter(|r| matches!(r.value, RatingValue::Float(_)))
                    .count();
                if floats != 0 && floats != scale.len() {
                    return invalid(format!(
                        "The rating scale of custom metric '{}' mixes floatValue and stringValue ratings; all values of one rating scale must be floatValue or all must be stringValue.",
                        metric.name
                    ));
                }
            }
        }
    }
    Ok(())
}

fn judge_metric_list() -> String {
    JUDGE_METRICS
        .iter()
        .map(|m| format!("Builtin.{m}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Validates a `jobIdentifier` (path label or batch entry) and returns the job id (the 12
/// characters after `evaluation-job/`).
pub fn job_id_from_identifier<'a>(
    identifier: &'a str,
    path: &str,
    p: &Patterns,
) -> Result<&'a str, ApiError> {
    let mut v = Violations::default();
    v.check_str(
        identifier,
        path,
        &Str::new(0, 1011).pattern(&p.job_identifier).sensitive(),
    );
    if let Some(error) = v.into_error() {
        return Err(error);
    }
    identifier
        .rsplit_once('/')
        .map(|(_, id)| id)
        .ok_or_else(|| ApiError::Validation(format!("Invalid job identifier at '{path}'.")))
}

/// Validates a BatchDeleteEvaluationJob body and returns its identifiers.
pub fn parse_batch_delete(body: &Value, p: &Patterns) -> Result<Vec<String>, ApiError> {
    let Some(root) = body.as_object() else {
        return Err(ApiError::Validation(
            "The request body must be a JSON object (BatchDeleteEvaluationJobRequest).".into(),
        ));
    };
    let mut v = Violations::default();
    let mut ids = Vec::new();
    if let Some(items) = v.list(root, "jobIdentifiers", "jobIdentifiers", 1, 25, true) {
        for (i, item) in items.iter().enumerate() {
            let path = member("jobIdentifiers", i);
            match item {
                Value::String(s) => {
                    v.check_str(
                        s,
                        &path,
                        &Str::new(0, 1011).pattern(&p.job_identifier).sensitive(),
                    );
                    ids.push(s.clone());
                }
                Value::Null => v.null(&path),
                _ => v.push(None, &path, "must be a string"),
            }
        }
    }
    match v.into_error() {
        Some(error) => Err(error),
        None => Ok(ids),
    }
}

/// ListEvaluationJobs' query, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    pub creation_time_after: Option<chrono::DateTime<chrono::Utc>>,
    pub creation_time_before: Option<chrono::DateTime<chrono::Utc>>,
    pub status_equals: Option<String>,
    pub application_type_equals: Option<String>,
    pub name_contains: Option<String>,
    pub max_results: Option<usize>,
    pub next_token: Option<String>,
    pub ascending: bool,
}

/// Parses ListEvaluationJobs' query string pairs (already percent-decoded).
pub fn parse_list_query(pairs: &[(String, String)], p: &Patterns) -> Result<ListQuery, ApiError> {
    let mut v = Violations::default();
    let mut q = ListQuery::default();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    for key in ["creationTimeAfter", "creationTimeBefore"] {
        if let Some(raw) = get(key) {
            match parse_timestamp(raw) {
                Some(t) if key == "creationTimeAfter" => q.creation_time_after = Some(t),
                Some(t) => q.creation_time_before = Some(t),
                None => v.push(
                    Some(raw),
                    key,
                    "must be a timestamp in ISO 8601 date-time format (e.g. 2024-05-01T12:00:00Z) or epoch seconds",
                ),
            }
        }
    }
    if let Some(s) = get("statusEquals") {
        v.check_str(
            s,
            "statusEquals",
            &Str::new(0, usize::MAX).one_of(&JOB_STATUSES, &JOB_STATUSES),
        );
        q.status_equals = Some(s.to_owned());
    }
    if let Some(s) = get("applicationTypeEquals") {
        v.check_str(
            s,
            "applicationTypeEquals",
            &Str::new(0, usize::MAX).one_of(&APPLICATION_TYPES, &APPLICATION_TYPES),
        );
        q.application_type_equals = Some(s.to_owned());
    }
    if let Some(s) = get("nameContains") {
        v.check_str(s, "nameContains", &Str::new(1, 63).pattern(&p.job_name));
        q.name_contains = Some(s.to_owned());
    }
    if let Some(s) = get("maxResults") {
        match s.parse::<i64>() {
            Ok(n) if n > 1000 => v.push(
                Some(s),
                "maxResults",
                "must have value less than or equal to 1000",
            ),
            Ok(n) if n < 1 => v.push(
                Some(s),
                "maxResults",
                "must have value greater than or equal to 1",
            ),
            Ok(n) => q.max_results = usize::try_from(n).ok(),
            Err(_) => v.push(Some(s), "maxResults", "must be an integer"),
        }
    }
    if let Some(s) = get("nextToken") {
        v.check_str(
            s,
            "nextToken",
            &Str::new(1, 2048).pattern(&p.pagination_token),
        );
        q.next_token = Some(s.to_owned());
    }
    if let Some(s) = get("sortBy") {
        v.check_str(
            s,
            "sortBy",
            &Str::new(0, usize::MAX).one_of(&["CreationTime"], &["CreationTime"]),
        );
    }
    if let Some(s) = get("sortOrder") {
        v.check_str(
            s,
            "sortOrder",
            &Str::new(0, usize::MAX)
                .one_of(&["Ascending", "Descending"], &["Ascending", "Descending"]),
        );
        q.ascending = s == "Ascending";
    }
    match v.into_error() {
        Some(error) => Err(error),
        None => Ok(q),
    }
}

/// An ISO 8601 / RFC 3339 date-time (what the Rust SDK and botocore send), or epoch seconds.
pub fn parse_timestamp(raw: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    let seconds: f64 = raw.parse().ok()?;
    if !seconds.is_finite() {
        return None;
    }
    let millis = (seconds * 1000.0).round() as i64;
    chrono::DateTime::from_timestamp_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patterns() -> Patterns {
        Patterns::compile().unwrap()
    }

    fn valid_body() -> Value {
        json!({
            "jobName": "evalgate-app-v1",
            "clientRequestToken": "token-1",
            "roleArn": "arn:aws:iam::123456789012:role/evalgate-bedrock",
            "applicationType": "ModelEvaluation",
            "evaluationConfig": {"automated": {
                "datasetMetricConfigs": [{
                    "taskType": "General",
                    "dataset": {"name": "app-v1", "datasetLocation": {"s3Uri": "s3://bucket/datasets/app/v1.jsonl"}},
                    "metricNames": ["Builtin.Correctness", "Builtin.Harmfulness", "brand_voice"]
                }],
                "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": "amazon.nova-pro-v1:0"}]},
                "customMetricConfig": {
                    "customMetrics": [{"customMetricDefinition": {
                        "name": "brand_voice",
                        "instructions": "Rate the brand voice. {{prompt}} {{prediction}}",
                        "ratingScale": [
                            {"definition": "Poor", "value": {"floatValue": 0}},
                            {"definition": "Good", "value": {"floatValue": 1}}
                        ]
                    }}],
                    "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": "amazon.nova-pro-v1:0"}]}
                }
            }},
            "inferenceConfig": {"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": "my-app-v1"}}]},
            "outputDataConfig": {"s3Uri": "s3://bucket/results/"}
        })
    }

    fn with(mut body: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = body.pointer_mut(parent).unwrap();
        match target {
            Value::Object(map) => {
                if value.is_null() {
                    map.remove(key);
                } else {
                    map.insert(key.to_owned(), value);
                }
            }
            Value::Array(items) => {
                let index: usize = key.parse().unwrap();
                items[index] = value;
            }
            _ => panic!("bad pointer {pointer}"),
        }
        body
    }

    fn message(body: &Value) -> String {
        let p = patterns();
        match parse_create_request(body, &p).and_then(|r| check_semantics(&r).map(|_| r)) {
            Ok(_) => String::new(),
            Err(ApiError::Validation(m)) => m,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_valid_request_parses_into_the_typed_model() {
        let p = patterns();
        let req = parse_create_request(&valid_body(), &p).unwrap();
        check_semantics(&req).unwrap();
        assert_eq!(req.job_name, "evalgate-app-v1");
        assert_eq!(req.inference_source_identifier(), Some("my-app-v1"));
        let automated = req.automated().unwrap();
        assert_eq!(automated.dataset_metric_configs[0].task_type, "General");
        assert_eq!(
            automated.evaluator_model.as_deref(),
            Some("amazon.nova-pro-v1:0")
        );
        assert_eq!(
            automated
                .custom_metric("brand_voice")
                .unwrap()
                .rating_scale
                .as_ref()
                .unwrap()[1]
                .value,
            RatingValue::Float(1.0)
        );
        // GetEvaluationJob echoes the configuration in wire form.
        let echoed = req.evaluation_config_json();
        assert_eq!(
            echoed.pointer("/automated/datasetMetricConfigs/0/dataset/datasetLocation/s3Uri"),
            Some(&json!("s3://bucket/datasets/app/v1.jsonl"))
        );
        assert_eq!(
            echoed.pointer(
                "/automated/customMetricConfig/customMetrics/0/customMetricDefinition/name"
            ),
            Some(&json!("brand_voice"))
        );
    }

    #[test]
    fn model_constraints_are_reported_like_the_service() {
        let table: Vec<(Value, &str)> = vec![
            (
                with(valid_body(), "/jobName", json!("Bad_Name")),
                "1 validation error detected: Value 'Bad_Name' at 'jobName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z0-9](-*[a-z0-9]){0,62}",
            ),
            (
                with(valid_body(), "/jobName", json!("a".repeat(64))),
                "at 'jobName' failed to satisfy constraint: Member must have length less than or equal to 63",
            ),
            (
                with(valid_body(), "/roleArn", Value::Null),
                "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null",
            ),
            (
                with(valid_body(), "/clientRequestToken", json!("bad_token")),
                "Value 'bad_token' at 'clientRequestToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?",
            ),
            (
                with(
                    valid_body(),
                    "/evaluationConfig/automated/datasetMetricConfigs/0/dataset/datasetLocation/s3Uri",
                    json!("s3://bucket/datasets/app v1.jsonl"),
                ),
                "Value 's3://bucket/datasets/app v1.jsonl' at 'evaluationConfig.automated.datasetMetricConfigs.1.member.dataset.datasetLocation.s3Uri' failed to satisfy constraint: Member must satisfy regular expression pattern: s3://",
            ),
            (
                with(
                    valid_body(),
                    "/outputDataConfig/s3Uri",
                    json!("s3://bucket/release=1/"),
                ),
                "Value 's3://bucket/release=1/' at 'outputDataConfig.s3Uri' failed to satisfy constraint: Member must satisfy regular expression pattern",
            ),
            (
                with(
                    valid_body(),
                    "/evaluationConfig/automated/datasetMetricConfigs/0/taskType",
                    json!("Chat"),
                ),
                "Value 'Chat' at 'evaluationConfig.automated.datasetMetricConfigs.1.member.taskType' failed to satisfy constraint: Member must satisfy enum value set: [Summarization, Classification, QuestionAndAnswer, Generation, Custom]",
            ),
            (
                with(valid_body(), "/applicationType", json!("Other")),
                "Value 'Other' at 'applicationType' failed to satisfy constraint: Member must satisfy enum value set: [ModelEvaluation, RagEvaluation]",
            ),
            (
                // A sensitive member: the value is not echoed.
                with(
                    valid_body(),
                    "/evaluationConfig/automated/datasetMetricConfigs/0/dataset/name",
                    json!("bad name"),
                ),
                "Value at 'evaluationConfig.automated.datasetMetricConfigs.1.member.dataset.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+",
            ),
            (
                with(
                    valid_body(),
                    "/evaluationConfig/automated/datasetMetricConfigs/0/metricNames",
                    json!([]),
                ),
                "Value '[]' at 'evaluationConfig.automated.datasetMetricConfigs.1.member.metricNames' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ),
            (
                with(
                    valid_body(),
                    "/evaluationConfig",
                    json!({"automated": {}, "human": {}}),
                ),
                "Value at 'evaluationConfig' failed to satisfy constraint: Member must have exactly one of the following members set: [automated, human]",
            ),
            (
                with(valid_body(), "/inferenceConfig", json!({})),
                "Value at 'inferenceConfig' failed to satisfy constraint: Member must have exactly one of the following members set: [models, ragConfigs] (found: none)",
            ),
            (
                with(
                    valid_body(),
                    "/evaluationConfig/automated/evaluatorModelConfig/bedrockEvaluatorModels/0/modelIdentifier",
                    json!("nova pro"),
                ),
                "Value 'nova pro' at 'evaluationConfig.automated.evaluatorModelConfig.bedrockEvaluatorModels.1.member.modelIdentifier' failed to satisfy constraint: Member must satisfy regular expression pattern",
            ),
            (
                with(
                    valid_body(),
                    "/evaluationConfig/automated/customMetricConfig/evaluatorModelConfig",
                    Value::Null,
                ),
                "Value null at 'evaluationConfig.automated.customMetricConfig.evaluatorModelConfig' failed to satisfy constraint: Member must not be null",
            ),
            (
                with(
                    valid_body(),
                    "/inferenceConfig/models/0/precomputedInferenceSource/inferenceSourceIdentifier",
                    json!("my app"),
                ),
                "Value 'my app' at 'inferenceConfig.models.1.member.precomputedInferenceSource.inferenceSourceIdentifier' failed to satisfy constraint",
            ),
        ];
        for (body, expected) in table {
            let got = message(&body);
            assert!(
                got.contains(expected),
                "expected {expected:?}\n     got {got:?}"
            );
        }
    }

    #[test]
    fn several_violations_are_counted_and_joined() {
        let body = with(
            with(valid_body(), "/jobName", json!("Bad_Name")),
            "/roleArn",
            Value::Null,
        );
        let got = message(&body);
        assert!(
            got.starts_with("2 validation errors detected: Value 'Bad_Name' at 'jobName'"),
            "{got}"
        );
        assert!(got.contains("; Value null at 'roleArn'"), "{got}");
    }

    #[test]
    fn documented_rules_are_enforced() {
        let automated = "/evaluationConfig/automated";
        let table: Vec<(Value, &str)> = vec![
            (
                with(
                    valid_body(),
                    &format!("{automated}/evaluatorModelConfig"),
                    Value::Null,
                ),
                "evaluationConfig.automated.evaluatorModelConfig is required: the metrics Builtin.Correctness, Builtin.Harmfulness are computed by an evaluator (judge) model",
            ),
            (
                with(
                    valid_body(),
                    &format!("{automated}/datasetMetricConfigs/0/metricNames"),
                    json!(["Builtin.Correctness"]),
                ),
                "Custom metric 'brand_voice' is defined in evaluationConfig.automated.customMetricConfig.customMetrics but is not listed in any datasetMetricConfigs[].metricNames",
            ),
            (
                with(
                    valid_body(),
                    &format!("{automated}/datasetMetricConfigs/0/metricNames"),
                    json!(["Builtin.Correctness", "brand_voice", "tone"]),
                ),
                "Metric 'tone' in evaluationConfig.automated.datasetMetricConfigs.1.member.metricNames is neither a built-in metric",
            ),
            (
                with(
                    valid_body(),
                    &format!("{automated}/datasetMetricConfigs/0/metricNames"),
                    json!(["Builtin.Accuracy", "brand_voice"]),
                ),
                "Metric 'Builtin.Accuracy' is a programmatic metric",
            ),
            (
                with(
                    valid_body(),
                    &format!("{automated}/datasetMetricConfigs/0/metricNames"),
                    json!(["Builtin.Correctnes", "brand_voice"]),
                ),
                "Metric 'Builtin.Correctnes' in evaluationConfig.automated.datasetMetricConfigs.1.member.metricNames is not a built-in metric",
            ),
            (
                with(
                    valid_body(),
                    &format!("{automated}/datasetMetricConfigs/0/metricNames"),
                    json!(["Builtin.ContextRelevance", "brand_voice"]),
                ),
                "knowledge-base (RAG) evaluation metric",
            ),
            (
                with(
                    valid_body(),
                    &format!(
                        "{automated}/customMetricConfig/customMetrics/0/customMetricDefinition/ratingScale/1/value"
                    ),
                    json!({"stringValue": "Good"}),
                ),
                "The rating scale of custom metric 'brand_voice' mixes floatValue and stringValue ratings",
            ),
            (
                with(
                    valid_body(),
                    "/inferenceConfig/models",
                    json!([
                        {"precomputedInferenceSource": {"inferenceSourceIdentifier": "a"}},
                        {"precomputedInferenceSource": {"inferenceSourceIdentifier": "b"}}
                    ]),
                ),
                "An automated model evaluation job evaluates exactly one model, but inferenceConfig.models has 2 entries.",
            ),
            (
                with(
                    valid_body(),
                    "/inferenceConfig/models/0",
                    json!({"bedrockModel": {"modelIdentifier": "amazon.nova-lite-v1:0"}}),
                ),
                "bedrockModel ('amazon.nova-lite-v1:0': Bedrock runs the inference) is not supported by bedrock-local yet",
            ),
            (
                with(valid_body(), "/applicationType", json!("RagEvaluation")),
                "applicationType RagEvaluation (knowledge-base evaluation) is not supported by bedrock-local yet",
            ),
            (
                with(
                    valid_body(),
                    "/inferenceConfig",
                    json!({"ragConfigs": [{"precomputedRagSourceConfig": {"retrieveSourceConfig": {"ragSourceIdentifier": "kb"}}}]}),
                ),
                "inferenceConfig.ragConfigs (knowledge-base evaluation, including precomputedRagSourceConfig) is not supported by bedrock-local yet",
            ),
            (
                with(
                    valid_body(),
                    "/evaluationConfig",
                    json!({"human": {"datasetMetricConfigs": []}}),
                ),
                "evaluationConfig.human (model evaluation jobs that use human workers) is not supported by bedrock-local yet",
            ),
            (
                with(
                    valid_body(),
                    &format!("{automated}/datasetMetricConfigs/0/dataset/datasetLocation"),
                    Value::Null,
                ),
                "dataset.datasetLocation is required",
            ),
        ];
        for (body, expected) in table {
            let got = message(&body);
            assert!(
                got.contains(expected),
                "expected {expected:?}\n     got {got:?}"
            );
        }
    }

    #[test]
    fn custom_metrics_alone_need_no_top_level_evaluator() {
        let body = with(
            with(
                valid_body(),
                "/evaluationConfig/automated/datasetMetricConfigs/0/metricNames",
                json!(["brand_voice"]),
            ),
            "/evaluationConfig/automated/evaluatorModelConfig",
            Value::Null,
        );
        assert_eq!(message(&body), "");
    }

    #[test]
    fn job_identifiers_must_be_evaluation_job_arns() {
        let p = patterns();
        assert_eq!(
            job_id_from_identifier(
                "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcdef012345",
                "jobIdentifier",
                &p
            ),
            Ok("abcdef012345")
        );
        let err = job_id_from_identifier("my-job", "jobIdentifier", &p).unwrap_err();
        assert_eq!(
            err.message(),
            "1 validation error detected: Value at 'jobIdentifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:evaluation-job/[a-z0-9]{12})"
        );
    }

    #[test]
    fn list_queries_are_validated() {
        let p = patterns();
        let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let q = parse_list_query(
            &pairs(&[
                ("statusEquals", "Completed"),
                ("maxResults", "10"),
                ("sortOrder", "Ascending"),
                ("creationTimeAfter", "2024-05-01T12:00:00Z"),
                ("creationTimeBefore", "1714567200.5"),
            ]),
            &p,
        )
        .unwrap();
        assert_eq!(q.status_equals.as_deref(), Some("Completed"));
        assert_eq!(q.max_results, Some(10));
        assert!(q.ascending);
        assert_eq!(q.creation_time_after.unwrap().timestamp(), 1_714_564_800);
        assert_eq!(
            q.creation_time_before.unwrap().timestamp_millis(),
            1_714_567_200_500
        );
        for (pairs, expected) in [
            (
                pairs(&[("statusEquals", "Done")]),
                "Value 'Done' at 'statusEquals' failed to satisfy constraint: Member must satisfy enum value set: [InProgress, Completed, Failed, Stopping, Stopped, Deleting]",
            ),
            (
                pairs(&[("maxResults", "0")]),
                "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1",
            ),
            (
                pairs(&[("maxResults", "1001")]),
                "Member must have value less than or equal to 1000",
            ),
            (
                pairs(&[("nameContains", "Bad_Name")]),
                "Value 'Bad_Name' at 'nameContains' failed to satisfy constraint",
            ),
            (
                pairs(&[("creationTimeAfter", "yesterday")]),
                "Value 'yesterday' at 'creationTimeAfter'",
            ),
        ] {
            let got = parse_list_query(&pairs, &p).unwrap_err();
            assert!(got.message().contains(expected), "{}", got.message());
        }
    }

    #[test]
    fn batch_delete_takes_one_to_twenty_five_arns() {
        let p = patterns();
        let arn = "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcdef012345";
        assert_eq!(
            parse_batch_delete(&json!({"jobIdentifiers": [arn]}), &p).unwrap(),
            vec![arn.to_string()]
        );
        let err = parse_batch_delete(&json!({"jobIdentifiers": []}), &p).unwrap_err();
        assert!(
            err.message()
                .contains("Member must have length greater than or equal to 1")
        );
        let many: Vec<&str> = std::iter::repeat_n(arn, 26).collect();
        let err = parse_batch_delete(&json!({"jobIdentifiers": many}), &p).unwrap_err();
        assert!(
            err.message()
                .contains("Member must have length less than or equal to 25")
        );
        let err = parse_batch_delete(&json!({"jobIdentifiers": ["x"]}), &p).unwrap_err();
        assert!(
            err.message().contains("at 'jobIdentifiers.1.member'"),
            "{}",
            err.message()
        );
    }
}
