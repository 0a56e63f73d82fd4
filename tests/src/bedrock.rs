//! bedrock-local, the Bedrock model-evaluation emulator, for end-to-end tests.
//!
//! [`BedrockLocal::start`] spawns the built `bedrock-local` binary (see
//! [`crate::runtime::bin_dir`]) on a free port, pointed at [`crate::stack::moto`]'s S3, and
//! reads its port from the one line it prints. Each test gets its own instance (so quotas,
//! injected faults and job lists do not leak between tests); it starts in milliseconds and
//! is killed when the value is dropped or the test process ends.
//!
//! ```no_run
//! # async fn example() {
//! use evalgate_tests::bedrock::{BedrockLocal, Options};
//! let bedrock = BedrockLocal::start(Options { job_seconds: 0.2, ..Options::default() })
//!     .await
//!     .unwrap();
//! let jobs = bedrock.client().list_evaluation_jobs().send().await.unwrap();
//! // A function binary under the Runtime API harness reaches it through:
//! let env = bedrock.function_env();
//! # }
//! ```
//!
//! The judge's scores are documented (and steerable with `[[judge:<Metric>=<value>]]` in a
//! response) in bedrock-local's crate docs, `local/bedrock-local/src/judge.rs`.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::stack::{self, REGION};

/// How bedrock-local is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds a job stays InProgress (`--job-seconds`).
    pub job_seconds: f64,
    /// Seconds a job stays Stopping or Deleting (`--transition-seconds`).
    pub transition_seconds: f64,
    /// `--max-concurrent-jobs`.
    pub max_concurrent_jobs: usize,
    /// Share of requests answered with an injected error (`--fault-rate`).
    pub fault_rate: f64,
    /// `--fault-kinds`, e.g. `"throttling"`; `None` keeps the default (throttling and internal).
    pub fault_kinds: Option<String>,
    /// `--seed`.
    pub seed: u64,
    /// S3 endpoint; `None` means moto's ([`stack::moto`]).
    pub s3_endpoint: Option<String>,
    /// Anything else to pass.
    pub extra_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            job_seconds: 0.2,
            transition_seconds: 0.1,
            max_concurrent_jobs: 20,
            fault_rate: 0.0,
            fault_kinds: None,
            seed: 0,
            s3_endpoint: None,
            extra_args: Vec::new(),
        }
    }
}

/// Starting bedrock-local failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "bedrock-local binary {0} not found: build it first with `cargo build --workspace --bins` (scripts/test does this)"
    )]
    MissingBinary(std::path::PathBuf),
    #[error("cannot start {path}: {source}")]
    Spawn {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("bedrock-local did not print its listening line within {0:?}; its output:\n{1}")]
    NoListeningLine(Duration, String),
}

/// A running bedrock-local.
pub struct BedrockLocal {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// Time from spawning the process to its listening line.
    pub startup: Duration,
    logs: Arc<Mutex<Vec<String>>>,
    // Killed on drop (`kill_on_drop`); also tied to the test process (PR_SET_PDEATHSIG).
    _child: tokio::process::Child,
}

impl std::fmt::Debug for BedrockLocal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BedrockLocal")
            .field("url", &self.url)
            .finish()
    }
}

const LISTENING: &str = "bedrock-local listening on ";

impl BedrockLocal {
    /// Spawns bedrock-local with `options` and waits for it to listen.
    pub async fn start(options: Options) -> Result<Self, StartError> {
        let binary = crate::runtime::bin_dir().join("bedrock-local");
        if !binary.is_file() {
            return Err(StartError::MissingBinary(binary));
        }
        let s3_endpoint = options
            .s3_endpoint
            .clone()
            .unwrap_or_else(|| stack::moto().url.clone());
        let mut args = vec![
            "--listen".to_string(),
            "127.0.0.1:0".into(),
            "--s3-endpoint".into(),
            s3_endpoint,
            "--region".into(),
            REGION.into(),
            "--account-id".into(),
            stack::ACCOUNT_ID.into(),
            "--job-seconds".into(),
            options.job_seconds.to_string(),
            "--transition-seconds".into(),
            options.transition_seconds.to_string(),
            "--max-concurrent-jobs".into(),
            options.max_concurrent_jobs.to_string(),
            "--fault-rate".into(),
            options.fault_rate.to_string(),
            "--seed".into(),
            options.seed.to_string(),
        ];
        if let Some(kinds) = &options.fault_kinds {
            args.push("--fault-kinds".into());
            args.push(kinds.clone());
        }
        args.extend(options.extra_args.iter().cloned());

        let mut command = tokio::process::Command::new(&binary);
        command
            .args(&args)
            // Only what it needs: no real AWS credentials leak in (it falls back to dummy ones).
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env(
                "RUST_LOG",
                std::env::var("BEDROCK_LOCAL_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        stack::tie_to_this_process(command.as_std_mut());
        let spawned = Instant::now();
        let mut child = command.spawn().map_err(|source| StartError::Spawn {
            path: binary.clone(),
            source,
        })?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            drain(stderr, logs.clone());
        }
        let timeout = Duration::from_secs(10);
        let Some(stdout) = child.stdout.take() else {
            return Err(StartError::NoListeningLine(timeout, String::new()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(timeout, lines.next_line()).await;
        let startup = spawned.elapsed();
        let url = match first {
            Ok(Ok(Some(line))) if line.starts_with(LISTENING) => {
                line[LISTENING.len()..].trim().to_string()
            }
            other => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut output = format!("first stdout line: {other:?}\n");
                output.push_str(&lock(&logs).join("\n"));
                return Err(StartError::NoListeningLine(timeout, output));
            }
        };
        // Keep reading stdout so that the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(BedrockLocal {
            url,
            startup,
            logs,
            _child: child,
        })
    }

    /// SDK configuration pointed at this instance (region us-east-1, dummy credentials).
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    stack::credentials(),
                ),
            )
            .http_client(evalgate::aws::https_client())
            .build()
    }

    /// The real Bedrock SDK client, pointed at this instance.
    pub fn client(&self) -> aws_sdk_bedrock::Client {
        aws_sdk_bedrock::Client::new(&self.sdk_config())
    }

    /// Environment for a function binary: moto's ([`stack::Moto::function_env`]) plus
    /// `AWS_ENDPOINT_URL_BEDROCK` pointing at this instance.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let mut env = stack::moto().function_env();
        env.push(("AWS_ENDPOINT_URL_BEDROCK".into(), self.url.clone()));
        env
    }

    /// Everything it logged so far (stderr), line by line.
    pub fn logs(&self) -> Vec<String> {
        lock(&self.logs).clone()
    }
}

fn lock(logs: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    logs.lock().unwrap_or_else(|e| e.into_inner())
}

fn drain<R: AsyncRead + Unpin + Send + 'static>(stream: R, logs: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let echo = std::env::var_os("EVALGATE_TEST_ECHO_LOGS").is_some();
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if echo {
                eprintln!("[bedrock-local] {line}");
            }
            lock(&logs).push(line);
        }
    });
}
