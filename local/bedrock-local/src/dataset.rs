//! Prompt datasets for model evaluation with your own inference responses (JSON Lines).
//!
//! One record per line:
//! `{"prompt": "...", "referenceResponse": "...", "category": "...",
//!   "modelResponses": [{"response": "...", "modelIdentifier": "my-app-v1"}]}`
//!
//! Rules (the documented ones): `prompt` is a non-empty string; `referenceResponse` and
//! `category` are optional strings; `modelResponses` holds exactly one
//! `{response, modelIdentifier}` and that identifier equals the job's
//! `inferenceSourceIdentifier`; at most [`MAX_PROMPTS`] records per dataset; at least one.
//! Blank lines are skipped. Other keys are tolerated and carried into `inputRecord` unchanged.

use std::fmt;

use serde_json::Value;

/// Prompts per dataset (Bedrock quota L-721735BA).
pub const MAX_PROMPTS: usize = 1000;

/// How many problems a message lists before summarising the rest.
const SHOWN_PROBLEMS: usize = 5;

/// One dataset line.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The line as given (trimmed), written back verbatim as `inputRecord`.
    pub raw: String,
    pub prompt: String,
    pub reference_response: Option<String>,
    pub category: Option<String>,
    pub response: String,
    pub model_identifier: String,
    /// `modelResponses` as given.
    pub model_responses: Value,
}

/// Why a dataset is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetError {
    pub problems: Vec<String>,
}

impl fmt::Display for DatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<&str> = self
            .problems
            .iter()
            .take(SHOWN_PROBLEMS)
            .map(String::as_str)
            .collect();
        write!(f, "{}", shown.join("; "))?;
        if self.problems.len() > SHOWN_PROBLEMS {
            write!(
                f,
                " (and {} more problems)",
                self.problems.len() - SHOWN_PROBLEMS
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for DatasetError {}

/// Parses and validates a dataset for a job whose `inferenceSourceIdentifier` is
/// `expected_model`.
pub fn parse(bytes: &[u8], expected_model: &str) -> Result<Vec<Record>, DatasetError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DatasetError {
        problems: vec![format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        )],
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let mut identifiers: Vec<String> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match parse_record(line) {
            Ok(record) => {
                if !identifiers.contains(&record.model_identifier) {
                    identifiers.push(record.model_identifier.clone());
                }
                if record.model_identifier != expected_model {
                    problems.push(format!(
                        "line {}: modelResponses[0].modelIdentifier '{}' does not match the job's inferenceSourceIdentifier '{expected_model}'",
                        index + 1,
                        record.model_identifier
                    ));
                }
                records.push(record);
            }
            Err(problem) => problems.push(format!("line {}: {problem}", index + 1)),
        }
    }
    if identifiers.len() > 1 {
        problems.insert(
            0,
            format!(
                "the records use {} different modelIdentifier values ({}); a job evaluates exactly one model, so every record's modelResponses[0].modelIdentifier must equal the inferenceSourceIdentifier '{expected_model}'",
                identifiers.len(),
                identifiers.join(", ")
            ),
        );
    }
    let count = records.len() + problems.iter().filter(|p| p.starts_with("line ")).count();
    if count > MAX_PROMPTS {
        problems.insert(
            0,
            format!(
                "the dataset contains {count} prompts; a model evaluation job accepts at most {MAX_PROMPTS} prompts per dataset"
            ),
        );
    }
    if count == 0 {
        problems.push("the dataset contains no prompts (no non-blank lines)".into());
    }
    if problems.is_empty() {
        Ok(records)
    } else {
        Err(DatasetError { problems })
    }
}

fn parse_record(line: &str) -> Result<Record, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON ({e})"))?;
    let Value::Object(obj) = &value else {
        return Err("a record must be a JSON object".into());
    };
    if obj.contains_key("conversationTurns") {
        return Err(
            "\"conversationTurns\" records (knowledge-base / RAG evaluation datasets) are not supported by bedrock-local yet; a model evaluation record has \"prompt\" and \"modelResponses\""
                .into(),
        );
    }
    let prompt = match obj.get("prompt") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => return Err("\"prompt\" is empty".into()),
        Some(_) => return Err("\"prompt\" must be a string".into()),
        None => return Err("\"prompt\" is missing".into()),
    };
    let optional = |key: &str| -> Result<Option<String>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{key}\" must be a string")),
        }
    };
    let reference_response = optional("referenceResponse")?;
    let category = optional("category")?;
    let responses = match obj.get("modelResponses") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err("\"modelResponses\" must be a list".into()),
        None => {
            return Err(
                "\"modelResponses\" is missing (a job with precomputedInferenceSource needs one response per prompt)"
                    .into(),
            );
        }
    };
    if responses.len() != 1 {
        return Err(format!(
            "\"modelResponses\" must contain exactly one response, found {}",
            responses.len()
        ));
    }
    let Some(Value::Object(first)) = responses.first() else {
        return Err("modelResponses[0] must be an object".into());
    };
    let response = match first.get("response") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("modelResponses[0].response must be a string".into()),
        None => return Err("modelResponses[0].response is missing".into()),
    };
    let model_identifier = match first.get("modelIdentifier") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => {
            return Err("modelResponses[0].modelIdentifier must be a non-empty string".into());
        }
        None => return Err("modelResponses[0].modelIdentifier is missing".into()),
    };
    Ok(Record {
        raw: line.to_owned(),
        prompt,
        reference_response,
        category,
        response,
        model_identifier,
        model_responses: Value::Array(responses.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(prompt: &str, response: &str, model: &str) -> String {
        serde_json::json!({
            "prompt": prompt,
            "referenceResponse": "ref",
            "modelResponses": [{"response": response, "modelIdentifier": model}]
        })
        .to_string()
    }

    #[test]
    fn a_valid_dataset_parses_and_keeps_lines_verbatim() {
        let text = format!(
            "{}\n\n{}\n",
            line("p1", "r1", "app"),
            r#"{"prompt":"p2","category":"c","modelResponses":[{"response":"r2","modelIdentifier":"app"}],"extra":1}"#
        );
        let records = parse(text.as_bytes(), "app").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].reference_response.as_deref(), Some("ref"));
        assert_eq!(records[1].category.as_deref(), Some("c"));
        assert!(records[1].raw.ends_with(r#""extra":1}"#));
    }

    #[test]
    fn the_aws_sample_dataset_is_valid() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/aws-samples-byoi-judge.jsonl"
        );
        let Ok(bytes) = std::fs::read(path) else {
            return; // ../shared is not beside this checkout
        };
        let records = parse(&bytes, "third-party-model").unwrap();
        assert_eq!(records.len(), 30);
    }

    #[test]
    fn invalid_datasets_are_explained_line_by_line() {
        let table: Vec<(String, &str)> = vec![
            ("".into(), "the dataset contains no prompts"),
            ("not json".into(), "line 1: not valid JSON"),
            ("[1]".into(), "line 1: a record must be a JSON object"),
            (r#"{"modelResponses":[]}"#.into(), "line 1: \"prompt\" is missing"),
            (r#"{"prompt":"p"}"#.into(), "line 1: \"modelResponses\" is missing"),
            (
                r#"{"conversationTurns":[{"prompt":{"content":[{"text":"q"}]}}]}"#.into(),
                "line 1: \"conversationTurns\" records (knowledge-base / RAG evaluation datasets) are not supported by bedrock-local yet",
            ),
            (
                r#"{"prompt":"p","modelResponses":[{"response":"a","modelIdentifier":"app"},{"response":"b","modelIdentifier":"app"}]}"#.into(),
                "line 1: \"modelResponses\" must contain exactly one response, found 2",
            ),
            (
                line("p", "r", "other"),
                "line 1: modelResponses[0].modelIdentifier 'other' does not match the job's inferenceSourceIdentifier 'app'",
            ),
            (
                format!("{}\n{}", line("p", "r", "app"), line("p", "r", "app-v2")),
                "the records use 2 different modelIdentifier values (app, app-v2)",
            ),
            (
                format!("{}\n", line("p", "r", "app")).repeat(1001),
                "the dataset contains 1001 prompts; a model evaluation job accepts at most 1000 prompts per dataset",
            ),
        ];
        for (text, expected) in table {
            let err = parse(text.as_bytes(), "app").unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "expected {expected:?}\n     got {err:?}"
            );
        }
        assert!(
            parse(&[0xff, 0xfe], "app")
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
    }

    #[test]
    fn exactly_one_thousand_prompts_are_accepted() {
        let text = format!("{}\n", line("p", "r", "app")).repeat(1000);
        assert_eq!(parse(text.as_bytes(), "app").unwrap().len(), 1000);
    }

    #[test]
    fn long_problem_lists_are_summarised() {
        let text = "x\n".repeat(8);
        let err = parse(text.as_bytes(), "app").unwrap_err().to_string();
        assert!(err.ends_with("(and 3 more problems)"), "{err}");
    }
}
