//! `evalgate-bench`: the tools `bench/run` drives.
//!
//! ```text
//! evalgate-bench generate outputs 1000000 bench/data/outputs-1m_output.jsonl
//! evalgate-bench generate dataset 1000000 bench/data/dataset-1m.jsonl
//! evalgate-bench validate bench/data/dataset-1m.jsonl
//! evalgate-bench shard bench/data/dataset-1m.jsonl [--out DIR]
//! evalgate-bench cold-start --bin-dir target/release --python .local/venv-bench/bin/python
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use evalgate::local::LocalFile;
use evalgate_bench::generate::{self, Kind};
use evalgate_bench::shard::{bench_limits, validate_and_shard};
use evalgate_tests::runtime::FunctionProcess;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "evalgate-bench",
    about = "evalgate's benchmark tools (see bench/run)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    /// Bedrock result lines (`*_output.jsonl`).
    Outputs,
    /// Dataset lines.
    Dataset,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a deterministic, realistic file of `records` lines (atomically: a temporary
    /// file renamed into place).
    Generate {
        kind: KindArg,
        records: u64,
        out: PathBuf,
        #[arg(long, default_value_t = generate::DEFAULT_SEED)]
        seed: u64,
    },
    /// Validate a dataset as `evalgate validate` does (`evalgate::dataset::validate_parallel`,
    /// same JSON document), with the 250,000-prompt upload limit lifted (see
    /// `evalgate_bench::shard::bench_limits`); every other limit is evalgate's.
    Validate { dataset: PathBuf },
    /// Validate a dataset then split it into shards (submit-evaluation's two passes) and
    /// print a JSON summary. The 250,000-prompt upload limit is lifted (see
    /// `evalgate_bench::shard::bench_limits`); every other limit is evalgate's.
    Shard {
        dataset: PathBuf,
        /// Write `shard-NNNN.jsonl` and `metadata-NNNN.jsonl` here (otherwise shards are
        /// only counted).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Each function binary's cold start under the Lambda Runtime API harness (spawn to
    /// first `next`), beside a Python handler that imports boto3 and creates the same
    /// clients. Prints JSON: every run's milliseconds per function.
    ColdStart {
        /// Where the release function binaries are.
        #[arg(long)]
        bin_dir: PathBuf,
        /// The Python interpreter with boto3 (a virtualenv's `bin/python`).
        #[arg(long)]
        python: PathBuf,
        /// The Python handler (bench/reference/handler.py).
        #[arg(long)]
        handler: PathBuf,
        /// Python runtime entry: `plain` runs the handler's own Runtime API loop,
        /// `awslambdaric` runs it under AWS's runtime interface client.
        #[arg(long, value_enum, default_value_t = PythonRuntime::Plain)]
        runtime: PythonRuntime,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Scratch directory for the Python launchers.
        #[arg(long)]
        scratch: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PythonRuntime {
    Plain,
    Awslambdaric,
}

/// The functions and the AWS clients each creates at init (its `main`).
const FUNCTIONS: &[(&str, &str)] = &[
    ("submit-evaluation", "s3,bedrock,events"),
    ("check-gates", "s3,bedrock,events,ssm,lambda"),
    ("evaluate-rollback", "s3,ssm,lambda,events"),
    ("send-alert", "sns,s3"),
];

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate {
            kind,
            records,
            out,
            seed,
        } => generate_file(kind, records, &out, seed),
        Command::Validate { dataset } => validate(&dataset),
        Command::Shard { dataset, out } => shard(&dataset, out.as_deref()),
        Command::ColdStart {
            bin_dir,
            python,
            handler,
            runtime,
            runs,
            scratch,
        } => cold_start(&bin_dir, &python, &handler, runtime, runs, &scratch),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evalgate-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate_file(kind: KindArg, records: u64, out: &Path, seed: u64) -> Result<(), String> {
    let kind = match kind {
        KindArg::Outputs => Kind::Outputs,
        KindArg::Dataset => Kind::Dataset,
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let partial = out.with_extension("partial");
    let started = Instant::now();
    let file =
        std::fs::File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    let bytes = generate::write_all(kind, seed, records, file)
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    std::fs::rename(&partial, out).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!(
        "wrote {} ({records} records, {:.1} MB) in {:.1} s",
        out.display(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Opens a local file as the CLI does ([`evalgate::local`]).
fn open(path: &Path) -> Result<LocalFile, String> {
    evalgate::local::open(path)
        .map(|(reader, _)| reader)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn validate(dataset: &Path) -> Result<(), String> {
    let file = std::fs::File::open(dataset).map_err(|e| format!("{}: {e}", dataset.display()))?;
    let validation = evalgate::dataset::validate_parallel(&file, &bench_limits())
        .map_err(|e| format!("{}: {e}", dataset.display()))?;
    let doc = json!({
        "dataset": dataset.display().to_string(),
        "valid": validation.is_valid(),
        "validation": validation,
    });
    println!("{doc}");
    if !validation.is_valid() {
        return Err(format!(
            "{} problem(s) in {}",
            validation.problem_count,
            dataset.display()
        ));
    }
    Ok(())
}

fn shard(dataset: &Path, out: Option<&Path>) -> Result<(), String> {
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let started = Instant::now();
    let summary = runtime()?.block_on(async {
        let first = open(dataset)?;
        let second = open(dataset)?;
        validate_and_shard(first, second, &bench_limits(), |shard| match out {
            None => Ok(()),
            Some(dir) => {
                let n = shard.index + 1;
                std::fs::write(dir.join(format!("shard-{n:04}.jsonl")), &shard.body)?;
                std::fs::write(dir.join(format!("metadata-{n:04}.jsonl")), &shard.metadata)
            }
        })
        .await
    })?;
    let mut doc = summary.to_json();
    doc["seconds"] = json!(started.elapsed().as_secs_f64());
    println!("{doc}");
    if summary.problems > 0 {
        return Err(format!(
            "{} problem(s) in {}: not sharded",
            summary.problems,
            dataset.display()
        ));
    }
    Ok(())
}

/// Writes an executable launcher for the Python handler: the handler's own text behind a
/// shebang naming `python`, so the harness spawns the interpreter directly (no shell).
fn python_launcher(
    python: &Path,
    handler: &Path,
    runtime: PythonRuntime,
    scratch: &Path,
) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let python = std::path::absolute(python).map_err(|e| e.to_string())?;
    let handler = std::path::absolute(handler).map_err(|e| e.to_string())?;
    let path = scratch.join("python-handler");
    let text = match runtime {
        PythonRuntime::Plain => {
            let body = std::fs::read_to_string(&handler)
                .map_err(|e| format!("{}: {e}", handler.display()))?;
            let body = body.strip_prefix("#!").map_or(body.as_str(), |rest| {
                rest.split_once('\n').map_or("", |r| r.1)
            });
            format!("#!{}\n{body}", python.display())
        }
        // awslambdaric imports `handler` from LAMBDA_TASK_ROOT-style module search: run it
        // as Lambda's Python bootstrap does, `python -m awslambdaric handler.handle`.
        PythonRuntime::Awslambdaric => {
            let dir = handler.parent().unwrap_or(Path::new("."));
            format!(
                "#!{}\nimport sys\nsys.path.insert(0, {:?})\nsys.argv = ['awslambdaric', 'handler.handle']\nimport runpy\nrunpy.run_module('awslambdaric', run_name='__main__')\n",
                python.display(),
                dir.display().to_string()
            )
        }
    };
    let mut file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Environment for every function: the configuration each `main` requires, dummy
/// credentials, and endpoints on a closed local port so nothing could reach AWS.
fn function_env(clients: &str) -> Vec<(String, String)> {
    [
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_SESSION_TOKEN", "bench"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("EVALGATE_BUCKET", "evalgate-bench"),
        ("EVALGATE_EVENT_BUS", "default"),
        (
            "EVALGATE_BEDROCK_ROLE_ARN",
            "arn:aws:iam::123456789012:role/evalgate-bedrock",
        ),
        (
            "EVALGATE_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:evalgate-alerts",
        ),
        ("EVALGATE_BENCH_CLIENTS", clients),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Spawns `binary`, waits for its first `next`, and stops it.
async fn one_cold_start(binary: &Path, name: &str, clients: &str) -> Result<Duration, String> {
    let process = FunctionProcess::start(binary, name, &function_env(clients))
        .await
        .map_err(|e| e.to_string())?;
    let init = process
        .init_duration()
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    if let Some(error) = process.init_error() {
        return Err(format!("{name} failed its init: {error:?}"));
    }
    drop(process);
    // Let the killed process go before the next spawn.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(init)
}

fn cold_start(
    bin_dir: &Path,
    python: &Path,
    handler: &Path,
    runtime: PythonRuntime,
    runs: usize,
    scratch: &Path,
) -> Result<(), String> {
    let launcher = python_launcher(python, handler, runtime, scratch)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut results = serde_json::Map::new();
    rt.block_on(async {
        for (name, clients) in FUNCTIONS {
            let binary = bin_dir.join(name);
            let python_name = format!("python:{name}");
            // One unmeasured start of each warms the page cache (and Python's bytecode cache).
            one_cold_start(&binary, name, clients).await?;
            one_cold_start(&launcher, &python_name, clients).await?;
            let (mut rust, mut py) = (Vec::new(), Vec::new());
            // Alternate, so that load from other processes falls on both alike.
            for _ in 0..runs {
                rust.push(one_cold_start(&binary, name, clients).await?.as_secs_f64() * 1e3);
                py.push(
                    one_cold_start(&launcher, &python_name, clients)
                        .await?
                        .as_secs_f64()
                        * 1e3,
                );
            }
            results.insert((*name).to_owned(), json!(rust));
            results.insert(python_name, json!(py));
        }
        Ok::<(), String>(())
    })?;
    println!("{}", serde_json::Value::Object(results));
    Ok(())
}
