//! The CreateEvaluationJob request, as far as bedrock-local understands it, after validation.
//!
//! Only the shapes bedrock-local runs are typed in full (automated model evaluation with
//! `precomputedInferenceSource`); the others are recognised so they can be rejected clearly.

use serde_json::{Value, json};

/// Judge metrics of a model evaluation job (LLM-as-a-judge), without the `Builtin.` prefix.
pub const JUDGE_METRICS: [&str; 11] = [
    "Correctness",
    "Completeness",
    "Faithfulness",
    "Helpfulness",
    "Coherence",
    "Relevance",
    "FollowingInstructions",
    "ProfessionalStyleAndTone",
    "Harmfulness",
    "Stereotyping",
    "Refusal",
];

/// Programmatic metrics: computed by Bedrock on responses it generates itself.
pub const PROGRAMMATIC_METRICS: [&str; 3] = ["Accuracy", "Robustness", "Toxicity"];

/// Metrics that exist only for knowledge-base (RAG) evaluation jobs.
pub const RAG_ONLY_METRICS: [&str; 5] = [
    "ContextRelevance",
    "ContextCoverage",
    "LogicalCoherence",
    "CitationPrecision",
    "CitationCoverage",
];

/// A validated CreateEvaluationJob request.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateJobRequest {
    pub job_name: String,
    pub job_description: Option<String>,
    pub client_request_token: Option<String>,
    pub role_arn: String,
    pub customer_encryption_key_id: Option<String>,
    pub job_tags: Vec<(String, String)>,
    /// As given; `None` means the default, `ModelEvaluation`.
    pub application_type: Option<String>,
    pub evaluation_config: EvaluationConfig,
    pub inference_config: InferenceConfig,
    pub output_s3_uri: String,
}

/// The `evaluationConfig` union.
#[derive(Debug, Clone, PartialEq)]
pub enum EvaluationConfig {
    Automated(AutomatedConfig),
    /// Human-based jobs: recognised, not supported.
    Human,
}

/// `evaluationConfig.automated`.
#[derive(Debug, Clone, PartialEq)]
pub struct AutomatedConfig {
    pub dataset_metric_configs: Vec<DatasetMetricConfig>,
    /// `evaluatorModelConfig.bedrockEvaluatorModels[0].modelIdentifier`.
    pub evaluator_model: Option<String>,
    pub custom_metric_config: Option<CustomMetricConfig>,
}

/// One `datasetMetricConfigs[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetMetricConfig {
    pub task_type: String,
    pub dataset_name: String,
    /// `dataset.datasetLocation.s3Uri`; absent for built-in datasets.
    pub s3_uri: Option<String>,
    pub metric_names: Vec<String>,
}

/// `customMetricConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomMetricConfig {
    pub metrics: Vec<CustomMetric>,
    /// `evaluatorModelConfig.bedrockEvaluatorModels[0].modelIdentifier`.
    pub evaluator_model: String,
}

/// `customMetricDefinition`.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomMetric {
    pub name: String,
    pub instructions: String,
    pub rating_scale: Option<Vec<RatingScaleItem>>,
}

/// One rating of a custom metric's scale.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingScaleItem {
    pub definition: String,
    pub value: RatingValue,
}

/// The `value` union of a rating.
#[derive(Debug, Clone, PartialEq)]
pub enum RatingValue {
    Float(f64),
    String(String),
}

/// The `inferenceConfig` union.
#[derive(Debug, Clone, PartialEq)]
pub enum InferenceConfig {
    Models(Vec<ModelConfig>),
    /// Knowledge-base evaluation: recognised, not supported.
    RagConfigs,
}

/// One `inferenceConfig.models[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// `precomputedInferenceSource.inferenceSourceIdentifier`: responses are in the dataset.
    Precomputed(String),
    /// `bedrockModel.modelIdentifier`: Bedrock would run the model (not supported).
    Bedrock(String),
}

impl CreateJobRequest {
    /// The automated configuration, when that is what the request holds.
    pub fn automated(&self) -> Option<&AutomatedConfig> {
        match &self.evaluation_config {
            EvaluationConfig::Automated(a) => Some(a),
            EvaluationConfig::Human => None,
        }
    }

    /// The application type the job reports.
    pub fn application_type(&self) -> &str {
        self.application_type
            .as_deref()
            .unwrap_or("ModelEvaluation")
    }

    /// The precomputed inference source identifier of the (single) model.
    pub fn inference_source_identifier(&self) -> Option<&str> {
        match &self.inference_config {
            InferenceConfig::Models(models) => models.iter().find_map(|m| match m {
                ModelConfig::Precomputed(id) => Some(id.as_str()),
                ModelConfig::Bedrock(_) => None,
            }),
            InferenceConfig::RagConfigs => None,
        }
    }

    /// `evaluationConfig` as GetEvaluationJob returns it.
    pub fn evaluation_config_json(&self) -> Value {
        match &self.evaluation_config {
            EvaluationConfig::Automated(a) => json!({ "automated": a.to_json() }),
            EvaluationConfig::Human => json!({ "human": {} }),
        }
    }

    /// `inferenceConfig` as GetEvaluationJob returns it.
    pub fn inference_config_json(&self) -> Value {
        match &self.inference_config {
            InferenceConfig::Models(models) => {
                let models: Vec<Value> = models
                    .iter()
                    .map(|m| match m {
                        ModelConfig::Precomputed(id) => {
                            json!({ "precomputedInferenceSource": { "inferenceSourceIdentifier": id } })
                        }
                        ModelConfig::Bedrock(id) => {
                            json!({ "bedrockModel": { "modelIdentifier": id } })
                        }
                    })
                    .collect();
                json!({ "models": models })
            }
            InferenceConfig::RagConfigs => json!({ "ragConfigs": [] }),
        }
    }
}

impl AutomatedConfig {
    /// The wire form of this configuration.
    pub fn to_json(&self) -> Value {
        let mut automated = serde_json::Map::new();
        let configs: Vec<Value> = self
            .dataset_metric_configs
            .iter()
            .map(|c| {
                let mut dataset = json!({ "name": c.dataset_name });
                if let (Some(uri), Some(obj)) = (&c.s3_uri, dataset.as_object_mut()) {
                    obj.insert("datasetLocation".into(), json!({ "s3Uri": uri }));
                }
                json!({ "taskType": c.task_type, "dataset": dataset, "metricNames": c.metric_names })
            })
            .collect();
        automated.insert("datasetMetricConfigs".into(), Value::Array(configs));
        if let Some(model) = &self.evaluator_model {
            automated.insert(
                "evaluatorModelConfig".into(),
                json!({ "bedrockEvaluatorModels": [{ "modelIdentifier": model }] }),
            );
        }
        if let Some(custom) = &self.custom_metric_config {
            let metrics: Vec<Value> = custom
                .metrics
                .iter()
                .map(|m| json!({ "customMetricDefinition": m.to_json() }))
                .collect();
            automated.insert(
                "customMetricConfig".into(),
                json!({
                    "customMetrics": metrics,
                    "evaluatorModelConfig": {
                        "bedrockEvaluatorModels": [{ "modelIdentifier": custom.evaluator_model }]
                    }
                }),
            );
        }
        Value::Object(automated)
    }

    /// The custom metric named `name`, if defined.
    pub fn custom_metric(&self, name: &str) -> Option<&CustomMetric> {
        self.custom_metric_config
            .as_ref()
            .and_then(|c| c.metrics.iter().find(|m| m.name == name))
    }
}

impl CustomMetric {
    /// The wire form of `customMetricDefinition`.
    pub fn to_json(&self) -> Value {
        let mut definition = json!({ "name": self.name, "instructions": self.instructions });
        if let (Some(scale), Some(obj)) = (&self.rating_scale, definition.as_object_mut()) {
            let items: Vec<Value> = scale
                .iter()
                .map(|item| {
                    let value = match &item.value {
                        RatingValue::Float(f) => json!({ "floatValue": f }),
                        RatingValue::String(s) => json!({ "stringValue": s }),
                    };
                    json!({ "definition": item.definition, "value": value })
                })
                .collect();
            obj.insert("ratingScale".into(), Value::Array(items));
        }
        definition
    }
}

/// Splits `s3://bucket/key` into bucket and key (the key may be empty).
pub fn split_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    match rest.split_once('/') {
        Some((bucket, key)) => Some((bucket, key)),
        None => Some((rest, "")),
    }
}

#[cfg(test)]
mod tests {
    use super::split_s3_uri;

    #[test]
    fn s3_uris_split_into_bucket_and_key() {
        assert_eq!(split_s3_uri("s3://b/k/x.jsonl"), Some(("b", "k/x.jsonl")));
        assert_eq!(split_s3_uri("s3://b"), Some(("b", "")));
        assert_eq!(split_s3_uri("s3://b/"), Some(("b", "")));
        assert_eq!(split_s3_uri("https://b/k"), None);
    }
}
