//! CloudWatch metrics of verdicts as Embedded Metric Format (EMF) log lines.
//!
//! A Lambda function's stdout goes to CloudWatch Logs, which extracts metrics from any line
//! that is a JSON object with an `_aws.CloudWatchMetrics` directive: no PutMetricData call,
//! no extra permission, no latency. check-gates prints these lines raw (not inside a
//! `tracing` record) once per recorded verdict:
//!
//! * per metric, dimensions `Application` and `Metric`: `Mean`, `PassRate` and
//!   `UnscoredFraction` (each only when it has a value);
//! * per verdict, dimensions `Application` and `Outcome` (and `Outcome` alone, for a
//!   fleet-wide view): `Verdicts` = 1.
//!
//! `Release` rides along as a plain property (searchable in Logs Insights, not a
//! dimension: a dimension per release would create a metric per release).

use serde_json::{Map, Value, json};

use crate::verdict::Verdict;

/// One EMF document: `dimensions` are property names holding strings, `metrics` are
/// `(name, unit, value)`.
fn document(
    namespace: &str,
    timestamp_ms: i64,
    dimension_sets: Vec<Vec<&str>>,
    properties: &[(&str, &str)],
    metrics: &[(&str, &str, f64)],
) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimension_sets,
                "Metrics": metrics
                    .iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    for (key, value) in properties {
        root.insert((*key).into(), Value::String((*value).to_owned()));
    }
    for (name, _, value) in metrics {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root).to_string()
}

/// The EMF lines for a recorded verdict.
pub fn lines(verdict: &Verdict, namespace: &str) -> Vec<String> {
    let timestamp = verdict.decided_at.timestamp_millis();
    let mut out = Vec::new();
    for (name, m) in &verdict.metrics {
        let values: Vec<(&str, &str, f64)> = [
            ("Mean", m.mean),
            ("PassRate", m.pass_rate),
            ("UnscoredFraction", m.unscored_fraction),
        ]
        .into_iter()
        .filter_map(|(metric, v)| v.filter(|v| v.is_finite()).map(|v| (metric, "None", v)))
        .collect();
        if values.is_empty() {
            continue;
        }
        out.push(document(
            namespace,
            timestamp,
            vec![vec!["Application", "Metric"]],
            &[
                ("Application", &verdict.application),
                ("Metric", name),
                ("Release", &verdict.release),
            ],
            &values,
        ));
    }
    out.push(document(
        namespace,
        timestamp,
        vec![vec!["Application", "Outcome"], vec!["Outcome"]],
        &[
            ("Application", &verdict.application),
            ("Outcome", verdict.outcome.as_str()),
            ("Release", &verdict.release),
        ],
        &[("Verdicts", "Count", 1.0)],
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a line against the EMF specification's structural rules.
    pub(crate) fn assert_valid_emf(line: &str) -> Value {
        let doc: Value = serde_json::from_str(line).unwrap();
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].is_i64(), "{line}");
        for directive in aws["CloudWatchMetrics"].as_array().unwrap() {
            assert!(directive["Namespace"].is_string());
            for set in directive["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(!set.is_empty() && set.len() <= 30);
                for d in set {
                    assert!(
                        doc[d.as_str().unwrap()].is_string(),
                        "dimension {d} in {line}"
                    );
                }
            }
            let metrics = directive["Metrics"].as_array().unwrap();
            assert!(metrics.len() <= 100);
            for m in metrics {
                assert!(
                    doc[m["Name"].as_str().unwrap()].is_number(),
                    "{m} in {line}"
                );
            }
        }
        doc
    }

    #[test]
    fn lines_follow_the_specification() {
        let text = r#"{"schema":1,"application":"app","release":"v1","outcome":"fail","decided_at":"2026-11-22T12:00:00Z","reasons":[],"policy_hash":"h","policy_uri":"u","jobs":[],"job_arns":[],"prompts":10,
          "metrics":{"Builtin.Correctness":{"direction":"higher_is_better","status":"fail","prompts":10,"scored":8,"unscored":2,"unscored_fraction":0.2,"mean":0.5,"std_dev":0.1,"interval":null,"pass_bar":0.5,"passing":4,"pass_rate":0.5,"pass_rate_interval":null},
                     "brand_voice":{"direction":"higher_is_better","status":"not_gated","prompts":10,"scored":0,"unscored":10,"unscored_fraction":1.0,"mean":null,"std_dev":null,"interval":null,"pass_bar":0.5,"passing":0,"pass_rate":null,"pass_rate_interval":null}},
          "verdict_uri":"v","report_uri":"r"}"#;
        let verdict: Verdict = serde_json::from_str(text).unwrap();
        let lines = lines(&verdict, "GenAI/Evaluation");
        assert_eq!(lines.len(), 3);
        let c = assert_valid_emf(&lines[0]);
        assert_eq!(c["Metric"], "Builtin.Correctness");
        assert_eq!(
            (
                c["Mean"].as_f64(),
                c["PassRate"].as_f64(),
                c["UnscoredFraction"].as_f64()
            ),
            (Some(0.5), Some(0.5), Some(0.2))
        );
        assert_eq!(
            c["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "GenAI/Evaluation"
        );
        assert_eq!(c["_aws"]["Timestamp"], 1_795_348_800_000i64);
        // Nothing scored: only the unscored fraction is a value.
        let b = assert_valid_emf(&lines[1]);
        assert!(b.get("Mean").is_none());
        assert_eq!(b["UnscoredFraction"], 1.0);
        let v = assert_valid_emf(&lines[2]);
        assert_eq!(
            (v["Outcome"].as_str(), v["Verdicts"].as_f64()),
            (Some("fail"), Some(1.0))
        );
        assert_eq!(v["Release"], "v1");
        assert!(lines.iter().all(|l| !l.contains('\n')));
    }
}
