//! The example GitHub Actions workflow (`docs/examples/github-actions.yml`) names S3 keys and
//! CLI flags by hand; these tests keep them equal to what evalgate really writes and accepts,
//! so a change to the bucket layout or the CLI cannot leave the documented workflow behind.

use std::path::PathBuf;
use std::process::Command;

use evalgate::layout::{self, DatasetKey};
use evalgate::verdict::Outcome;
use serde_json::Value;

const APP: &str = "support-bot";
const REL: &str = "pr-12-0123456789ab";
const BUCKET: &str = "evalgate-bucket";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The workflow's YAML and every `run:` script of its jobs, with the shell variables the keys
/// are built from replaced by sample values.
fn workflow() -> (Value, String) {
    let path = repo().join("docs/examples/github-actions.yml");
    let text = std::fs::read_to_string(&path).expect("read the example workflow");
    let yaml: Value = serde_saphyr::from_str(&text).expect("the example workflow is valid YAML");
    let mut scripts = String::new();
    for job in yaml["jobs"].as_object().expect("jobs").values() {
        for step in job["steps"].as_array().expect("steps") {
            if let Some(run) = step["run"].as_str() {
                scripts.push_str(run);
                scripts.push('\n');
            }
        }
    }
    let scripts = scripts
        .replace("$APPLICATION", APP)
        .replace("$RELEASE", REL)
        .replace("$BUCKET", BUCKET);
    (yaml, scripts)
}

#[test]
fn the_workflow_uses_the_buckets_real_keys() {
    let (yaml, scripts) = workflow();
    assert_eq!(
        yaml["env"]["APPLICATION"], APP,
        "the tests' sample app is the workflow's"
    );
    let uri = |key: &str| format!("s3://{BUCKET}/{key}");

    let dataset = format!("datasets/{APP}/{REL}/pr.jsonl");
    assert!(scripts.contains(&uri(&dataset)), "uploads to {dataset}");
    let parsed = DatasetKey::parse(&dataset).expect("the uploaded key is a dataset key");
    for key in [
        layout::verdict_key(APP, REL),
        layout::report_key(APP, REL),
        layout::rejection_key(Some(&parsed), &dataset),
    ] {
        assert!(
            scripts.contains(&uri(&key)),
            "the workflow should read s3://{BUCKET}/{key}; its scripts:\n{scripts}"
        );
    }
    let policy = format!("{}{APP}.yaml", layout::POLICIES_PREFIX);
    assert!(
        scripts.contains(&uri(&policy)),
        "uploads the policy to {policy}"
    );
    // `jq -r .outcome` compared with the serialised pass outcome.
    assert_eq!(
        serde_json::to_value(Outcome::Pass).expect("outcome"),
        "pass"
    );
    assert!(scripts.contains(r#"[ "$outcome" = pass ]"#));
}

#[test]
fn the_workflows_evalgate_commands_exist_with_those_flags() {
    let (_, scripts) = workflow();
    // Continuation lines joined, so a command's flags stay with it.
    let scripts = scripts.replace("\\\n", " ");
    let commands: Vec<Vec<&str>> = scripts
        .lines()
        .filter_map(|line| line.trim().strip_prefix("evalgate "))
        .map(|rest| rest.split_whitespace().collect())
        .collect();
    assert!(
        commands.len() >= 2,
        "validate and policy check: {commands:?}"
    );
    let bin = evalgate_tests::runtime::bin_dir().join("evalgate");
    for words in commands {
        // The subcommand is every word before the first argument or flag.
        let sub: Vec<&str> = words
            .iter()
            .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
            .copied()
            .collect();
        let out = Command::new(&bin)
            .args(&sub)
            .arg("--help")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "run {}: {e} (cargo build --workspace --bins)",
                    bin.display()
                )
            });
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "evalgate {sub:?} --help failed: {help}"
        );
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(flag),
                "evalgate {sub:?} has no {flag}:\n{help}"
            );
        }
    }
}
