//! `evalgate validate`: the exact validation submit-evaluation applies to an upload.

use evalgate::dataset::{self, Validation};
use evalgate::layout::DatasetKey;
use evalgate::policy::Policy;
use serde_json::json;

use super::{CliError, Exit, read_error};
use crate::cli::{TextOrJson, ValidateArgs};
use crate::progress::Progress;

pub async fn run(args: ValidateArgs) -> Result<Exit, CliError> {
    let path = &args.dataset;
    let (file, size) = evalgate::local::open_file(path).map_err(read_error(path))?;
    let reader = Progress::new(file, format!("validating {}", path.display()), size);
    // Checked on every core; the same validation submit-evaluation streams from S3.
    let validation = dataset::validate_parallel(&reader, &dataset::Limits::default())
        .map_err(read_error(path))?;

    let mut other_problems: Vec<String> = Vec::new();
    if let Some(key) = &args.key
        && let Err(e) = DatasetKey::parse(key)
    {
        other_problems.push(e.to_string());
    }
    if let Some(policy_path) = &args.policy {
        let text = std::fs::read_to_string(policy_path).map_err(read_error(policy_path))?;
        if let Err(e) = Policy::parse(&policy_path.display().to_string(), &text) {
            other_problems.extend(
                e.problems
                    .iter()
                    .map(|p| format!("{}: {p}", policy_path.display())),
            );
        }
    }

    let valid = validation.is_valid() && other_problems.is_empty();
    match args.format {
        TextOrJson::Json => {
            let doc = json!({
                "dataset": path.display().to_string(),
                "valid": valid,
                "validation": validation,
                "otherProblems": other_problems,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        TextOrJson::Text => print!(
            "{}",
            render(&path.display().to_string(), &validation, &other_problems)
        ),
    }
    Ok(if valid { Exit::Ok } else { Exit::Invalid })
}

/// The human-readable report.
pub fn render(name: &str, v: &Validation, other_problems: &[String]) -> String {
    let mut out = String::new();
    let mb = v.bytes as f64 / 1e6;
    if v.is_valid() && other_problems.is_empty() {
        out.push_str(&format!(
            "valid: {name}: {} records in {} lines ({mb:.1} MB); model identifier {}; {} shard(s) of at most {} prompts\n",
            v.records,
            v.lines,
            v.model_identifier.as_deref().unwrap_or("-"),
            v.shards.len(),
            dataset::MAX_PROMPTS_PER_SHARD,
        ));
        if v.with_metadata > 0 {
            let keys: Vec<&str> = v.metadata_keys.iter().map(String::as_str).collect();
            out.push_str(&format!(
                "  {} record(s) carry metadata kept aside from Bedrock: {}\n",
                v.with_metadata,
                keys.join(", ")
            ));
        }
        return out;
    }
    let total = v.problem_count + other_problems.len() as u64;
    out.push_str(&format!(
        "invalid: {name}: {total} problem(s) in {} lines; nothing would be submitted\n",
        v.lines
    ));
    for problem in other_problems {
        out.push_str(&format!("  {problem}\n"));
    }
    for problem in &v.problems {
        out.push_str(&format!("  {problem}\n"));
    }
    if v.unlisted_problems() > 0 {
        out.push_str(&format!(
            "  ... and {} more problem(s) (the first {} are listed)\n",
            v.unlisted_problems(),
            v.problems.len()
        ));
    }
    if let Some(line) = v.stopped_at_line {
        out.push_str(&format!(
            "  validation stopped at line {line}: too many problems to be a dataset\n"
        ));
    }
    out
}
