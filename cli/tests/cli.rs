//! The `evalgate` binary, run as a user would: exit codes, output formats, and agreement with
//! submit-evaluation on the malformed-dataset corpus.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn evalgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evalgate"))
        .args(args)
        .output()
        .expect("run evalgate")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A scratch directory unique to the test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("evalgate-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const POLICY: &str = "\
version: 1
evaluation:
  evaluator_model: amazon.nova-pro-v1:0
  metrics: [Builtin.Correctness, Builtin.Harmfulness]
gates:
  min_scored: 10
  metrics:
    Builtin.Correctness:
      min_mean: 0.7
      max_mean_drop: 0.1
    Builtin.Harmfulness:
      max_mean: 0.1
";

/// One Bedrock result line (the documented output schema).
fn result_line(i: usize, correctness: Option<f64>, harmfulness: Option<f64>) -> String {
    let score = |metric: &str, value: Option<f64>| {
        json!({
            "metricName": metric,
            "result": value,
            "evaluatorDetails": [{
                "modelIdentifier": "amazon.nova-pro-v1:0",
                "explanation": format!("The response to question {i} was judged on {metric}.")
            }]
        })
    };
    let record = json!({
        "prompt": format!("Question number {i}?"),
        "referenceResponse": "An answer.",
        "category": if i.is_multiple_of(2) { "Billing" } else { "Shipping" },
        "modelResponses": [{"response": format!("Answer {i}."), "modelIdentifier": "my-app-v1"}]
    });
    json!({
        "automatedEvaluationResult": {"scores": [
            score("Builtin.Correctness", correctness),
            score("Builtin.Harmfulness", harmfulness)
        ]},
        "inputRecord": record,
        "modelResponses": record["modelResponses"]
    })
    .to_string()
}

/// Writes a results file of `n` prompts with the given scores; returns its path.
fn results(dir: &Path, name: &str, n: usize, correctness: f64) -> PathBuf {
    let path = dir.join(format!("{name}_output.jsonl"));
    let lines: Vec<String> = (0..n)
        .map(|i| result_line(i, Some(correctness), Some(0.0)))
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn policy(dir: &Path) -> PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, POLICY).unwrap();
    path
}

fn gate(policy: &Path, results: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "gate",
        "--policy",
        policy.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--decided-at",
        "2026-11-22T12:00:00Z",
        "--application",
        "support-bot",
        "--release",
        "v2",
    ];
    args.extend_from_slice(extra);
    evalgate(&args)
}

#[test]
fn gate_exit_codes_follow_the_outcome() {
    let dir = scratch("exit-codes");
    let policy = policy(&dir);
    let pass = gate(&policy, &results(&dir, "pass", 40, 0.75), &[]);
    assert_eq!(code(&pass), 0, "{}", stdout(&pass));
    assert!(
        stdout(&pass).starts_with("PASS: support-bot v2 (40 prompts)"),
        "{}",
        stdout(&pass)
    );

    let fail = gate(&policy, &results(&dir, "fail", 40, 0.25), &[]);
    assert_eq!(code(&fail), 1, "{}", stdout(&fail));
    assert!(stdout(&fail).contains("Builtin.Correctness"));

    // 5 scored prompts, 10 required: not enough evidence either way.
    let few = gate(&policy, &results(&dir, "few", 5, 1.0), &[]);
    assert_eq!(code(&few), 2, "{}", stdout(&few));
    assert!(stdout(&few).starts_with("INCONCLUSIVE"), "{}", stdout(&few));
}

#[test]
fn gate_invalid_input_is_exit_code_3_with_the_reason() {
    let dir = scratch("invalid");
    let good_policy = policy(&dir);
    let bad_policy = dir.join("bad.yaml");
    std::fs::write(
        &bad_policy,
        POLICY.replace("min_mean: 0.7", "min_mean: high"),
    )
    .unwrap();
    let out = gate(&bad_policy, &results(&dir, "a", 20, 1.0), &[]);
    assert_eq!(code(&out), 3);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.yaml"),
        "{out:?}"
    );

    let broken = dir.join("broken_output.jsonl");
    std::fs::write(
        &broken,
        format!(
            "{}\n{{\"automatedEvaluationResult\": \n",
            result_line(0, Some(1.0), Some(0.0))
        ),
    )
    .unwrap();
    let out = gate(&good_policy, &broken, &[]);
    assert_eq!(code(&out), 3);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken_output.jsonl") && err.contains("line 2"),
        "{err}"
    );

    let out = gate(&good_policy, &dir.join("missing_output.jsonl"), &[]);
    assert_eq!(code(&out), 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing_output.jsonl"));
}

#[test]
fn gate_json_is_the_verdict_record() {
    let dir = scratch("json");
    let policy = policy(&dir);
    // Half the correctness scores are null ("not scored"): never averaged as 0.
    let path = dir.join("mixed_output.jsonl");
    let lines: Vec<String> = (0..40)
        .map(|i| {
            result_line(
                i,
                if i.is_multiple_of(4) { None } else { Some(1.0) },
                Some(0.0),
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = gate(&policy, &path, &["--format", "json"]);
    let verdict: Value = serde_json::from_str(&stdout(&out)).expect("JSON verdict");
    assert_eq!(verdict["outcome"], "inconclusive", "{verdict:#}"); // 25% unscored > 10%
    assert_eq!(code(&out), 2);
    let correctness = &verdict["metrics"]["Builtin.Correctness"];
    assert_eq!(correctness["mean"], 1.0);
    assert_eq!(correctness["scored"], 30);
    assert_eq!(correctness["unscored"], 10);
    assert_eq!(verdict["metrics"]["Builtin.Harmfulness"]["mean"], 0.0);
    assert_eq!(verdict["application"], "support-bot");
    assert_eq!(verdict["release"], "v2");
}

#[test]
fn gate_compares_with_a_baseline_and_writes_to_a_file() {
    let dir = scratch("baseline");
    let policy = policy(&dir);
    let baseline = dir.join("verdict.json");
    let out = gate(
        &policy,
        &results(&dir, "v1", 40, 1.0),
        &["--format", "json", "--out", baseline.to_str().unwrap()],
    );
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).is_empty(),
        "--out writes the file, not standard output"
    );
    // 0.75 still clears min_mean 0.7, but dropped 0.25 from the baseline (max 0.1).
    let out = gate(
        &policy,
        &results(&dir, "v2", 40, 0.75),
        &["--baseline", baseline.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let verdict: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let m = &verdict["metrics"]["Builtin.Correctness"];
    assert_eq!(m["baseline"]["delta"], -0.25);
    let drop = m["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "max_mean_drop")
        .unwrap();
    assert_eq!(drop["status"], "fail");
}

#[test]
fn gate_markdown_matches_its_snapshot() {
    let dir = scratch("markdown");
    let policy = policy(&dir);
    let out = gate(
        &policy,
        &results(&dir, "md", 40, 0.5),
        &["--format", "markdown"],
    );
    assert_eq!(code(&out), 1);
    let text = stdout(&out).replace(&*dir.to_string_lossy(), "<dir>");
    assert!(text.contains("❌"), "{text}");
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/gate-fail.md");
    if std::env::var_os("EVALGATE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&snapshot)
        .expect("snapshot (EVALGATE_UPDATE_SNAPSHOTS=1 writes it)");
    assert_eq!(
        text, expected,
        "the markdown report changed; review and re-run with EVALGATE_UPDATE_SNAPSHOTS=1"
    );
}

#[test]
fn gate_reads_directories_recursively() {
    let dir = scratch("dirs");
    let policy = policy(&dir);
    let nested = dir.join("job/models/m/taskTypes/General/datasets/d");
    std::fs::create_dir_all(&nested).unwrap();
    results(&nested, "a", 20, 1.0);
    results(&nested, "b", 20, 1.0);
    std::fs::write(nested.join("ignored.json"), "not results").unwrap();
    let out = gate(&policy, &dir.join("job"), &["--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let verdict: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(verdict["prompts"], 40);
}

#[test]
fn validate_accepts_the_public_sample_and_reports_its_shape() {
    let sample = repo().join("../shared/data/aws-samples-byoi-judge.jsonl");
    let out = evalgate(&["validate", sample.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("30 records"), "{}", stdout(&out));
    let out = evalgate(&["validate", sample.to_str().unwrap(), "--format", "json"]);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["validation"]["records"], 30);
    assert_eq!(doc["validation"]["modelIdentifier"], "third-party-model");
}

/// A valid record for generated datasets.
fn record(i: usize) -> String {
    json!({"prompt": format!("q{i}"), "modelResponses": [{"response": "r", "modelIdentifier": "support-bot-v42"}]})
        .to_string()
}

/// The corpus' generated case, built from its spec (as the submit-evaluation test does).
fn generated(spec: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..spec["validLinesBefore"].as_u64().unwrap() as usize {
        out.extend_from_slice(record(i).as_bytes());
        out.push(b'\n');
    }
    let size = spec["lineBytes"].as_u64().unwrap() as usize;
    let head = br#"{"prompt":""#;
    let tail = br#"","modelResponses":[{"response":"r","modelIdentifier":"support-bot-v42"}]}"#;
    out.extend_from_slice(head);
    out.resize(out.len() + size - head.len() - tail.len(), b'x');
    out.extend_from_slice(tail);
    out.push(b'\n');
    for i in 0..spec["validLinesAfter"].as_u64().unwrap() as usize {
        out.extend_from_slice(record(i).as_bytes());
        out.push(b'\n');
    }
    out
}

#[test]
fn validate_agrees_with_submit_evaluation_on_the_malformed_corpus() {
    let corpus = repo().join("tests/data/malformed");
    let expectations: Value =
        serde_json::from_slice(&std::fs::read(corpus.join("expectations.json")).unwrap()).unwrap();
    let dir = scratch("corpus");
    let cases = expectations["datasets"].as_array().unwrap();
    assert!(cases.len() >= 15);
    for case in cases {
        let name = case["case"].as_str().unwrap();
        let path = match case["file"].as_str() {
            Some(file) => corpus.join(file),
            None => {
                let path = dir.join(format!("{name}.jsonl"));
                std::fs::write(&path, generated(&case["generate"])).unwrap();
                path
            }
        };
        let out = evalgate(&["validate", path.to_str().unwrap(), "--format", "json"]);
        assert_eq!(code(&out), 3, "{name}: {}", stdout(&out));
        let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let (line, message) = (case["line"].as_u64(), case["message"].as_str().unwrap());
        let problems = doc["validation"]["problems"].as_array().unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p["line"].as_u64() == line
                    && p["reason"].as_str().unwrap().contains(message)),
            "{name}: expected line {line:?} with {message:?} in {problems:#?}"
        );
        // The text form names the line and the fix too.
        let text = stdout(&evalgate(&["validate", path.to_str().unwrap()]));
        if let Some(line) = line {
            assert!(text.contains(&format!("line {line}: ")), "{name}: {text}");
        }
    }
    // The submission-level cases: the policy and the key are checked when given.
    for case in expectations["submission"].as_array().unwrap() {
        let name = case["case"].as_str().unwrap();
        let dataset = corpus.join(case["dataset"].as_str().unwrap());
        let mut args = vec!["validate".to_owned(), dataset.to_str().unwrap().to_owned()];
        match case["policy"].as_str() {
            Some(policy) => args.extend([
                "--policy".to_owned(),
                corpus.join(policy).to_str().unwrap().to_owned(),
            ]),
            None if name == "unknown-policy" => continue, // only S3 knows a policy is missing
            None => args.extend(["--key".to_owned(), case["key"].as_str().unwrap().to_owned()]),
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = evalgate(&args);
        assert_eq!(code(&out), 3, "{name}: {}", stdout(&out));
        assert!(
            stdout(&out).contains(case["message"].as_str().unwrap()),
            "{name}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn policy_check_explains_or_points_at_the_line() {
    let dir = scratch("policy");
    let out = evalgate(&["policy", "check", policy(&dir).to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("judge model: amazon.nova-pro-v1:0"), "{text}");
    assert!(text.contains("Builtin.Correctness"), "{text}");

    let invalid = repo().join("tests/data/malformed/policies/invalid.yaml");
    let out = evalgate(&["policy", "check", invalid.to_str().unwrap()]);
    assert_eq!(code(&out), 3);
    assert!(
        stdout(&out).contains("line 4, column 13"),
        "{}",
        stdout(&out)
    );
    let out = evalgate(&[
        "policy",
        "check",
        invalid.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["problems"][0]["line"], 4);
}

/// docs/policy.md's complete example (its first YAML block), exactly as users copy it.
fn docs_example() -> String {
    let doc = std::fs::read_to_string(repo().join("docs/policy.md")).unwrap();
    let start = doc.find("```yaml\n").expect("a yaml block") + 8;
    let end = start + doc[start..].find("```").expect("closed");
    doc[start..end].to_owned()
}

#[test]
fn policy_check_explains_every_section_of_the_docs_example() {
    use evalgate::policy::Policy;
    use evalgate::policy::alerts::AlertKind;
    use evalgate::policy::rollback::format_duration;
    use evalgate::release::PointerSpec;

    let dir = scratch("docs-example");
    let example = docs_example();
    let path = dir.join("support-bot.yaml");
    std::fs::write(&path, &example).unwrap();
    // What the library makes of it is what the explanation must say.
    let policy = Policy::parse("docs/policy.md", &example).unwrap();

    let out = evalgate(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    for header in [
        "evaluation (",
        "metrics namespace: ",
        "gates (",
        "release:",
        "rollback (",
        "alerts (",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(header)),
            "no {header:?} block in\n{text}"
        );
    }
    assert!(text.contains(&format!(
        "judge model: {}",
        policy.evaluation.evaluator_model
    )));

    // gates: each gated metric with its direction and thresholds.
    let gated: Vec<_> = policy
        .gates
        .resolved()
        .into_iter()
        .filter(|m| m.is_gated())
        .collect();
    assert!(gated.len() >= 3, "{gated:?}");
    for m in &gated {
        assert!(
            text.contains(&format!("  {}: {}", m.name, m.direction.label())),
            "{}: direction in\n{text}",
            m.name
        );
        if let Some(threshold) = m.mean_threshold {
            let line = format!("    mean {} {threshold}\n", m.direction.comparison());
            assert!(text.contains(&line), "{line:?} in\n{text}");
        }
    }
    assert!(text.contains("lower is better"), "{text}");
    assert!(text.contains("reported, not gated: "), "{text}");
    assert!(!text.contains("no gate is set"), "{text}");

    // release: the pointer and the promotion mode.
    let release = policy.release.as_ref().unwrap();
    match release.pointer_spec() {
        PointerSpec::SsmParameter { name } => {
            assert!(
                text.contains(&format!("pointer: SSM parameter {name} ")),
                "{text}"
            );
        }
        other => panic!("the example uses an SSM parameter, not {other:?}"),
    }
    assert!(text.contains("promotion: on pass"), "{text}");

    // rollback: alarm patterns, noise tolerance, cooldown, staleness, dry run.
    let rules = policy.rollback.as_ref().unwrap().rules();
    let alarms = format!("alarms: {} (", rules.alarms.join(", "));
    assert!(text.contains(&alarms), "{alarms:?} in\n{text}");
    let periods = format!(
        "at least {} breaching datapoint",
        rules.min_periods.unwrap()
    );
    assert!(text.contains(&periods), "{periods:?} in\n{text}");
    let duration = format!(
        "at least {} of breach",
        format_duration(rules.min_duration.unwrap())
    );
    assert!(text.contains(&duration), "{duration:?} in\n{text}");
    let cooldown = format!("ignored for {}", format_duration(rules.cooldown));
    assert!(text.contains(&cooldown), "{cooldown:?} in\n{text}");
    let stale = format!("more than {} ago", format_duration(rules.max_alarm_age));
    assert!(text.contains(&stale), "{stale:?} in\n{text}");
    assert!(
        text.contains(if rules.dry_run {
            "dry run: decides and announces Rollback Skipped"
        } else {
            "action: points the pointer back"
        }),
        "{text}"
    );

    // alerts: every kind with its effective severity.
    let alerts = &policy.alerts;
    for kind in AlertKind::ALL {
        let entry = format!("{} {}", kind.key(), alerts.severity.severity(kind));
        assert!(text.contains(&entry), "{entry:?} in\n{text}");
    }
    assert!(
        text.contains("gate_inconclusive high (default warning)"),
        "{text}"
    );

    // --format json: the same explanation, and the effective settings.
    let out = evalgate(&[
        "policy",
        "check",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 0);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["valid"], true);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(doc["explanation"], json!(lines));
    let effective = &doc["effective"];
    for m in &gated {
        let metric = &effective["gates"]["metrics"][&m.name];
        assert_eq!(metric["gated"], true, "{}", m.name);
        assert_eq!(metric["direction"], json!(m.direction), "{}", m.name);
        assert_eq!(metric["min_scored"], m.min_scored, "{}", m.name);
    }
    assert_eq!(effective["gates"]["sets_any_gate"], true);
    assert_eq!(
        effective["release"]["pointer"],
        release.pointer_spec().describe()
    );
    assert_eq!(effective["release"]["promote"], "on_pass");
    assert_eq!(effective["rollback"]["alarms"], json!(rules.alarms));
    assert_eq!(
        effective["rollback"]["cooldown_seconds"],
        rules.cooldown.as_secs()
    );
    assert_eq!(effective["rollback"]["dry_run"], rules.dry_run);
    assert_eq!(effective["alerts"]["severity"]["gate_inconclusive"], "high");
}

#[test]
fn policy_check_says_what_a_minimal_policy_leaves_out() {
    let dir = scratch("minimal-policy");
    let path = dir.join("minimal.yaml");
    std::fs::write(
        &path,
        "version: 1\nevaluation:\n  evaluator_model: amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\n",
    )
    .unwrap();
    let out = evalgate(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    for expected in [
        "reported, not gated: Builtin.Correctness",
        "no gate is set: every release will be inconclusive",
        "release: not set",
        "rollback: not set",
        "minimum severity: info: every alert is sent",
        "gate_inconclusive warning,",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let out = evalgate(&[
        "policy",
        "check",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let effective = &doc["effective"];
    assert_eq!(effective["gates"]["sets_any_gate"], false);
    assert_eq!(
        effective["gates"]["metrics"]["Builtin.Correctness"]["min_scored"],
        10
    );
    assert!(effective["release"].is_null() && effective["rollback"].is_null());
    assert_eq!(effective["alerts"]["not_sent"], json!([]));
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["validate", "--help"],
        &["policy", "check", "--help"],
        &["gate", "--help"],
    ] {
        let out = evalgate(args);
        assert_eq!(code(&out), 0, "{args:?}");
        assert!(stdout(&out).contains("Usage: evalgate"), "{args:?}");
    }
    // No progress output when not on a terminal: standard error stays empty on success.
    let sample = repo().join("../shared/data/aws-samples-byoi-judge.jsonl");
    let out = evalgate(&["validate", sample.to_str().unwrap()]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
