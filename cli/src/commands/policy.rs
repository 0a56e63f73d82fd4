//! `evalgate policy check`: parse a policy and explain what it asks for.

use std::fmt::Write as _;

use evalgate::policy::Policy;
use serde_json::json;

use super::{CliError, Exit, read_error};
use crate::cli::{PolicyCheckArgs, TextOrJson};

pub fn check(args: PolicyCheckArgs) -> Result<Exit, CliError> {
    let path = &args.policy;
    let text = std::fs::read_to_string(path).map_err(read_error(path))?;
    let name = path.display().to_string();
    match (Policy::parse(&name, &text), args.format) {
        (Ok(policy), TextOrJson::Text) => {
            print!("{}", explain(&name, &policy));
            Ok(Exit::Ok)
        }
        (Ok(policy), TextOrJson::Json) => {
            let doc = json!({
                "policy": name,
                "valid": true,
                "hash": evalgate::policy::policy_hash(&text),
                "explanation": explain(&name, &policy).lines().collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            Ok(Exit::Ok)
        }
        (Err(e), TextOrJson::Text) => {
            println!("{e}");
            Ok(Exit::Invalid)
        }
        (Err(e), TextOrJson::Json) => {
            let problems: Vec<_> = e
                .problems
                .iter()
                .map(|p| json!({"line": p.line, "column": p.column, "path": p.path, "message": p.message}))
                .collect();
            let doc = json!({"policy": name, "valid": false, "problems": problems});
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            Ok(Exit::Invalid)
        }
    }
}

/// What the policy asks evalgate to do, in plain words.
pub fn explain(name: &str, policy: &Policy) -> String {
    let mut out = String::new();
    let e = &policy.evaluation;
    let _ = writeln!(out, "valid: {name}");
    let _ = writeln!(out, "evaluation:");
    let _ = writeln!(out, "  judge model: {}", e.evaluator_model);
    if !e.metrics.is_empty() {
        let _ = writeln!(out, "  built-in metrics: {}", e.metrics.join(", "));
    }
    for metric in &e.custom_metrics {
        let _ = writeln!(
            out,
            "  custom metric {}: {} rating(s) in its scale",
            metric.name,
            metric.rating_scale.len()
        );
    }
    if let Some(key) = &e.kms_key_id {
        let _ = writeln!(out, "  results encrypted with KMS key {key}");
    }
    if !e.tags.is_empty() {
        let tags: Vec<String> = e.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "  job tags: {}", tags.join(", "));
    }
    let _ = writeln!(out, "metrics namespace: {}", policy.metrics_namespace);
    let a = &policy.alerts;
    let _ = writeln!(
        out,
        "alerts: minimum severity {:?}; prompt text in alerts {}",
        a.min_severity,
        if a.include_prompt_text {
            "allowed"
        } else {
            "never"
        }
    );
    out
}
