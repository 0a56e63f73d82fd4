//! `evalgate gate`: re-gate stored Bedrock results offline, with the aggregation and the
//! decision check-gates uses (`gating::aggregate_config`, `gate::decide`), so a policy change
//! can be tried on last week's results without paying for a new judge run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::Utc;
use evalgate::aggregate::{Aggregator, PromptScores, UsageAggregator};
use evalgate::gate::{self, Baseline, Inputs, Locations};
use evalgate::gating::aggregate_config;
use evalgate::layout::parse_s3_uri;
use evalgate::policy::{Policy, policy_hash};
use evalgate::results::{LineReader, ResultRecord, read_results, read_results_parallel};
use evalgate::store::s3::S3Store;
use evalgate::store::{ByteReader, ObjectStore};
use evalgate::verdict::{BaselineInfo, GateStatus, Outcome, Verdict, fmt_num, fmt_pct};
use tokio::io::BufReader;

use super::{CliError, Exit, emit, read_error};
use crate::cli::{Format, GateArgs};
use crate::progress::Progress;

/// One results (or metadata) object to read.
enum Source {
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl Source {
    fn uri(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }
}

/// Builds S3 clients on first use only: local re-gating never touches AWS configuration.
#[derive(Default)]
struct S3 {
    client: Option<aws_sdk_s3::Client>,
}

impl S3 {
    async fn store(&mut self, bucket: &str) -> S3Store {
        let client = match &self.client {
            Some(client) => client.clone(),
            None => {
                let client = evalgate::aws::s3_client(&evalgate::aws::load_config().await);
                self.client = Some(client.clone());
                client
            }
        };
        S3Store::new(client, bucket)
    }
}

/// Expands `--results`/`--metadata` arguments into the objects to read, in a stable order.
async fn sources(args: &[String], suffix: &str, s3: &mut S3) -> Result<Vec<Source>, CliError> {
    let mut out = Vec::new();
    for arg in args {
        if let Some((bucket, prefix)) = parse_s3_uri(arg) {
            if prefix.ends_with(suffix) {
                out.push(Source::S3 {
                    bucket: bucket.to_owned(),
                    key: prefix.to_owned(),
                });
                continue;
            }
            let store = s3.store(bucket).await;
            if crate::progress::enabled() {
                eprint!("\rlisting {arg} ...");
            }
            let mut keys: Vec<String> = store
                .list(prefix)
                .await?
                .into_iter()
                .map(|o| o.key)
                .filter(|k| k.ends_with(suffix))
                .collect();
            if crate::progress::enabled() {
                eprint!("\r\x1b[2K");
            }
            if keys.is_empty() {
                return Err(CliError::Input(format!("no *{suffix} object under {arg}")));
            }
            keys.sort();
            out.extend(keys.into_iter().map(|key| Source::S3 {
                bucket: bucket.to_owned(),
                key,
            }));
            continue;
        }
        let path = PathBuf::from(arg);
        let meta = std::fs::metadata(&path).map_err(read_error(&path))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(&path, suffix, &mut found)?;
            if found.is_empty() {
                return Err(CliError::Input(format!(
                    "no *{suffix} file under {}",
                    path.display()
                )));
            }
            found.sort();
            out.extend(found.into_iter().map(Source::File));
        } else {
            out.push(Source::File(path));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, suffix: &str, found: &mut Vec<PathBuf>) -> Result<(), CliError> {
    for entry in std::fs::read_dir(dir).map_err(read_error(dir))? {
        let entry = entry.map_err(read_error(dir))?;
        let path = entry.path();
        if path.is_dir() {
            walk(&path, suffix, found)?;
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
    Ok(())
}

async fn open(source: &Source, s3: &mut S3) -> Result<ByteReader, CliError> {
    match source {
        Source::File(path) => {
            let (reader, size) = evalgate::local::open(path).map_err(read_error(path))?;
            Ok(Box::pin(Progress::new(
                reader,
                format!("reading {}", path.display()),
                size,
            )))
        }
        Source::S3 { bucket, key } => {
            let (info, reader) = s3.store(bucket).await.open(key).await?;
            Ok(Box::pin(Progress::new(
                reader,
                format!("reading {}", source.uri()),
                Some(info.size),
            )))
        }
    }
}

/// A baseline verdict given on the command line, with its `scores.jsonl` when it sits beside it.
struct LoadedBaseline {
    info: BaselineInfo,
    verdict: Verdict,
    scores: Result<PromptScores, String>,
}

async fn load_baseline(path: &Path) -> Result<LoadedBaseline, CliError> {
    let bytes = std::fs::read(path).map_err(read_error(path))?;
    let verdict: Verdict = serde_json::from_slice(&bytes).map_err(|e| {
        CliError::Input(format!(
            "{} is not a verdict.json written by evalgate: {e}",
            path.display()
        ))
    })?;
    let scores_path = path.with_file_name("scores.jsonl");
    let scores = match tokio::fs::File::open(&scores_path).await {
        Ok(file) => {
            PromptScores::read_jsonl(BufReader::new(file), &scores_path.display().to_string())
                .await
                .map_err(|e| e.to_string())
        }
        Err(_) => Err(format!(
            "no scores.jsonl beside {}, so prompts cannot be matched",
            path.display()
        )),
    };
    let info = BaselineInfo {
        release: verdict.release.clone(),
        selection: "given".to_owned(),
        decided_at: verdict.decided_at,
        verdict_uri: path.display().to_string(),
        prompt_scores: scores.is_ok(),
    };
    Ok(LoadedBaseline {
        info,
        verdict,
        scores,
    })
}

pub async fn run(args: GateArgs) -> Result<Exit, CliError> {
    let policy_path = &args.policy;
    let text = std::fs::read_to_string(policy_path).map_err(read_error(policy_path))?;
    let policy_name = policy_path.display().to_string();
    let policy = match Policy::parse(&policy_name, &text) {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Exit::Invalid);
        }
    };
    let hash = policy_hash(&text);
    let baseline = match &args.baseline {
        Some(path) => Some(load_baseline(path).await?),
        None => None,
    };
    let mut s3 = S3::default();

    // Per-prompt scores cost memory proportional to the prompts; collect them only when a
    // baseline's scores make the regressed-prompts gate possible.
    let collect = baseline.as_ref().is_some_and(|b| b.scores.is_ok());
    let include_prompt_text = policy.alerts.include_prompt_text;
    let mut aggregator = Aggregator::new(aggregate_config(&policy, include_prompt_text, collect));
    for source in sources(&args.results, "_output.jsonl", &mut s3).await? {
        let uri = source.uri();
        let add = |record: &ResultRecord<'_>| aggregator.add(record).map_err(|e| e.to_string());
        let read = match &source {
            // Local files are parsed on every core; S3 objects stream as check-gates reads them.
            Source::File(path) => {
                let (file, size) = evalgate::local::open_file(path).map_err(read_error(path))?;
                let reader = Progress::new(file, format!("reading {}", path.display()), size);
                read_results_parallel(&reader, &uri, collect, add)
            }
            Source::S3 { .. } => read_results(open(&source, &mut s3).await?, &uri, add).await,
        };
        read.map_err(|e| CliError::Input(e.to_string()))?;
    }
    let aggregates = aggregator.finish();
    if aggregates.prompts == 0 {
        return Err(CliError::Input(
            "the results hold no records: nothing to gate".into(),
        ));
    }

    let usage = if args.metadata.is_empty() {
        None
    } else {
        let prices = policy
            .gates
            .budgets
            .prices
            .as_ref()
            .map(|p| (p.input_per_1k_tokens.value, p.output_per_1k_tokens.value));
        let mut usage = UsageAggregator::new(prices);
        for source in sources(&args.metadata, ".jsonl", &mut s3).await? {
            let uri = source.uri();
            let mut lines = LineReader::new(open(&source, &mut s3).await?, uri);
            while let Some((number, bytes)) = lines
                .next_line()
                .await
                .map_err(|e| CliError::Input(e.to_string()))?
            {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Err(message) = usage.add_line(bytes) {
                    return Err(CliError::Input(
                        lines.content_error(number, message).to_string(),
                    ));
                }
            }
        }
        Some(usage.finish())
    };

    // Nothing is stored: the verdict is what this command prints.
    let locations = Locations {
        policy_uri: policy_name,
        verdict_uri: String::new(),
        report_uri: String::new(),
        scores_uri: String::new(),
    };
    let baseline_ref = match &baseline {
        None => Baseline::None,
        Some(b) => Baseline::Found {
            info: &b.info,
            verdict: &b.verdict,
            scores: b.scores.as_ref().map_err(String::as_str),
        },
    };
    let verdict = gate::decide(
        &Inputs {
            application: &args.application,
            release: &args.release,
            decided_at: args.decided_at.unwrap_or_else(Utc::now),
            policy: &policy,
            policy_hash: &hash,
            aggregates: &aggregates,
            usage: usage.as_ref(),
            baseline: baseline_ref,
            locations: &locations,
        },
        Vec::new(),
        Vec::new(),
        vec!["re-gated offline by `evalgate gate` from stored results".to_owned()],
    );

    let rendered = match args.format {
        Format::Json => serde_json::to_string_pretty(&verdict).unwrap_or_default(),
        Format::Markdown => evalgate::report::render(&verdict),
        Format::Text => render_text(&verdict),
    };
    emit(args.out.as_deref(), &rendered)?;
    Ok(match verdict.outcome {
        Outcome::Pass => Exit::Ok,
        Outcome::Fail => Exit::Fail,
        Outcome::Inconclusive => Exit::Inconclusive,
        Outcome::Error => Exit::Invalid,
    })
}

fn status_word(status: GateStatus) -> &'static str {
    match status {
        GateStatus::Pass => "pass",
        GateStatus::Fail => "FAIL",
        GateStatus::Inconclusive => "inconclusive",
        GateStatus::NotGated => "-",
    }
}

/// A terminal-friendly summary: outcome, reasons, one row per metric (failing first).
pub fn render_text(v: &Verdict) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} {} ({} prompts)",
        v.outcome.as_str().to_uppercase(),
        v.application,
        v.release,
        v.prompts
    );
    for reason in &v.reasons {
        let _ = writeln!(out, "  - {reason}");
    }
    let width = v.metrics.keys().map(String::len).max().unwrap_or(6).max(6);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:>7}  {:>9}  {:>7}  {:>8}  {:>9}  gates",
        "metric", "mean", "pass rate", "scored", "unscored", "vs base"
    );
    for (name, m) in v.metrics_by_status() {
        let gates: Vec<String> = m
            .gates
            .iter()
            .map(|g| {
                format!(
                    "{} {} {}",
                    g.gate,
                    g.threshold_text(),
                    status_word(g.status)
                )
            })
            .collect();
        let delta = m
            .baseline
            .as_ref()
            .and_then(|b| b.delta)
            .map_or_else(|| "-".to_owned(), |d| format!("{d:+.3}"));
        let _ = writeln!(
            out,
            "{name:<width$}  {:>7}  {:>9}  {:>7}  {:>8}  {:>9}  {}",
            m.mean.map_or_else(|| "-".to_owned(), fmt_num),
            m.pass_rate.map_or_else(|| "-".to_owned(), fmt_pct),
            m.scored,
            m.unscored,
            delta,
            if gates.is_empty() {
                status_word(m.status).to_owned()
            } else {
                gates.join("; ")
            }
        );
    }
    for note in &v.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
