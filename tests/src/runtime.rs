//! A loopback implementation of the Lambda Runtime API, for running real function binaries.
//!
//! [`FunctionProcess::start`] binds a server on 127.0.0.1, starts the built binary with
//! `AWS_LAMBDA_RUNTIME_API` pointing at it (plus the variables Lambda sets), and then
//! plays the Lambda service's part of the documented protocol:
//!
//! | route | meaning |
//! |---|---|
//! | `GET /2018-06-01/runtime/invocation/next` | long-poll: the next event, with its headers |
//! | `POST /2018-06-01/runtime/invocation/{id}/response` | the handler's result |
//! | `POST /2018-06-01/runtime/invocation/{id}/error` | the handler's error |
//! | `POST /2018-06-01/runtime/init/error` | the function failed before its first `next` |
//!
//! [`FunctionProcess::invoke`] sends one event and waits for the response or the error;
//! [`FunctionProcess::init_duration`] is the time from process spawn to the first `next`
//! (the cold-start figure the benchmarks report).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc, oneshot, watch};

/// The error document a runtime posts to `/error` or `/init/error`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct FunctionError {
    #[serde(rename = "errorType", default)]
    pub error_type: String,
    #[serde(rename = "errorMessage", default)]
    pub error_message: String,
}

/// Why an invocation produced no response.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the function returned an error: {0:?}")]
    Function(FunctionError),
    #[error("the function process exited ({status}); last log lines:\n{log_tail}")]
    Exited { status: String, log_tail: String },
    #[error("no answer within {0:?}; last log lines:\n{1}")]
    Timeout(Duration, String),
    #[error("the function answered with a body that is not JSON: {0}")]
    NotJson(String),
}

impl InvokeError {
    /// The function's own error, when that is what happened.
    pub fn function_error(&self) -> Option<&FunctionError> {
        match self {
            InvokeError::Function(e) => Some(e),
            _ => None,
        }
    }
}

/// Starting the function process failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "function binary {0} not found: build it first with `cargo build --workspace --bins` (scripts/test does this)"
    )]
    MissingBinary(PathBuf),
    #[error("cannot start {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot bind the runtime API server: {0}")]
    Bind(std::io::Error),
}

enum Outcome {
    Response(Bytes),
    Error(FunctionError),
}

struct Pending {
    id: String,
    body: Bytes,
    deadline_ms: u128,
}

struct Shared {
    function_name: String,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    inflight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_next: Mutex<Option<Instant>>,
    first_next_seen: Notify,
    init_error: Mutex<Option<FunctionError>>,
    logs: Mutex<Vec<String>>,
}

/// A function binary running against this process's Runtime API server.
pub struct FunctionProcess {
    shared: Arc<Shared>,
    sender: mpsc::UnboundedSender<Pending>,
    exit: watch::Receiver<Option<String>>,
    spawned_at: Instant,
    next_id: std::sync::atomic::AtomicU64,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    /// The Runtime API address the function was given.
    pub runtime_api: SocketAddr,
    /// How long [`invoke`](Self::invoke) waits for an answer.
    pub timeout: Duration,
}

/// Where the workspace's built binaries are: `EVALGATE_BIN_DIR`, or the profile directory
/// this test executable was built into (`target/<profile>/deps/..`).
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("EVALGATE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

impl FunctionProcess {
    /// Starts the workspace binary `name` (see [`bin_dir`]) with `env`.
    pub async fn start_named(name: &str, env: &[(String, String)]) -> Result<Self, StartError> {
        Self::start(&bin_dir().join(name), name, env).await
    }

    /// Starts `binary` as function `function_name` with `env` on top of the variables Lambda
    /// sets. The rest of the parent's environment is cleared (no real AWS credentials leak in).
    pub async fn start(
        binary: &Path,
        function_name: &str,
        env: &[(String, String)],
    ) -> Result<Self, StartError> {
        if !binary.is_file() {
            return Err(StartError::MissingBinary(binary.to_path_buf()));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(StartError::Bind)?;
        let runtime_api = listener.local_addr().map_err(StartError::Bind)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_name: function_name.to_owned(),
            queue: tokio::sync::Mutex::new(receiver),
            inflight: Mutex::new(HashMap::new()),
            first_next: Mutex::new(None),
            first_next_seen: Notify::new(),
            init_error: Mutex::new(None),
            logs: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let mut command = tokio::process::Command::new(binary);
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env(
                "LAMBDA_TASK_ROOT",
                binary.parent().unwrap_or(Path::new("/")),
            )
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child = command.spawn().map_err(|source| StartError::Spawn {
            path: binary.to_path_buf(),
            source,
        })?;
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let shared = shared.clone();
            tokio::spawn(async move {
                let echo = std::env::var_os("EVALGATE_TEST_ECHO_LOGS").is_some();
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if echo {
                        eprintln!("[{}] {line}", shared.function_name);
                    }
                    shared.logs.lock().expect("logs lock").push(line);
                }
            });
        }
        let (exit_tx, exit) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill_rx => { let _ = child.kill().await; child.wait().await }
            };
            let text = status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            let _ = exit_tx.send(Some(text));
        });
        Ok(FunctionProcess {
            shared,
            sender,
            exit,
            spawned_at,
            next_id: std::sync::atomic::AtomicU64::new(1),
            kill: Mutex::new(Some(kill)),
            runtime_api,
            timeout: Duration::from_secs(60),
        })
    }

    /// Delivers `event` and waits for the function's answer.
    pub async fn invoke(&self, event: &Value) -> Result<Value, InvokeError> {
        let raw = self.invoke_raw(Bytes::from(event.to_string())).await?;
        serde_json::from_slice(&raw)
            .map_err(|_| InvokeError::NotJson(String::from_utf8_lossy(&raw).into_owned()))
    }

    /// Delivers a raw payload (which need not be JSON) and waits for the answer.
    pub async fn invoke_raw(&self, body: Bytes) -> Result<Bytes, InvokeError> {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id());
        let (tx, rx) = oneshot::channel();
        self.shared
            .inflight
            .lock()
            .expect("inflight lock")
            .insert(id.clone(), tx);
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            + self.timeout.as_millis();
        let _ = self.sender.send(Pending {
            id,
            body,
            deadline_ms,
        });
        let mut exit = self.exit.clone();
        tokio::select! {
            outcome = rx => match outcome {
                Ok(Outcome::Response(body)) => Ok(body),
                Ok(Outcome::Error(e)) => Err(InvokeError::Function(e)),
                Err(_) => Err(self.exited()),
            },
            _ = exit.wait_for(Option::is_some) => Err(self.exited()),
            _ = tokio::time::sleep(self.timeout) => Err(InvokeError::Timeout(self.timeout, self.log_tail())),
        }
    }

    /// Time from spawning the process to its first `GET .../invocation/next`.
    pub async fn init_duration(&self) -> Result<Duration, InvokeError> {
        let mut exit = self.exit.clone();
        loop {
            let notified = self.shared.first_next_seen.notified();
            if let Some(at) = *self.shared.first_next.lock().expect("first_next lock") {
                return Ok(at.duration_since(self.spawned_at));
            }
            tokio::select! {
                _ = notified => {}
                _ = exit.wait_for(Option::is_some) => return Err(self.exited()),
                _ = tokio::time::sleep(self.timeout) => return Err(InvokeError::Timeout(self.timeout, self.log_tail())),
            }
        }
    }

    /// What the function posted to `/init/error`, if anything.
    pub fn init_error(&self) -> Option<FunctionError> {
        self.shared
            .init_error
            .lock()
            .expect("init_error lock")
            .clone()
    }

    /// Everything the function wrote to stdout and stderr so far, line by line.
    pub fn logs(&self) -> Vec<String> {
        self.shared.logs.lock().expect("logs lock").clone()
    }

    /// The exit status once the process has exited.
    pub fn exit_status(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Waits until the process exits (for example after an init error), up to the timeout.
    pub async fn wait_for_exit(&self) -> Option<String> {
        let mut exit = self.exit.clone();
        tokio::time::timeout(self.timeout, exit.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|r| r.ok().and_then(|s| s.clone()))
    }

    fn exited(&self) -> InvokeError {
        InvokeError::Exited {
            status: self.exit_status().unwrap_or_else(|| "unknown".into()),
            log_tail: self.log_tail(),
        }
    }

    fn log_tail(&self) -> String {
        let logs = self.logs();
        logs[logs.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.lock().ok().and_then(|mut k| k.take()) {
            let _ = kill.send(());
        }
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    {
        let mut first = shared.first_next.lock().expect("first_next lock");
        if first.is_none() {
            *first = Some(Instant::now());
            shared.first_next_seen.notify_waiters();
        }
    }
    let pending = shared.queue.lock().await.recv().await;
    let Some(pending) = pending else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let arn = format!(
        "arn:aws:lambda:{}:{}:function:{}",
        crate::stack::REGION,
        crate::stack::ACCOUNT_ID,
        shared.function_name
    );
    for (name, value) in [
        ("lambda-runtime-aws-request-id", pending.id.clone()),
        (
            "lambda-runtime-deadline-ms",
            pending.deadline_ms.to_string(),
        ),
        ("lambda-runtime-invoked-function-arn", arn),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    (StatusCode::OK, headers, pending.body).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    complete(&shared, &id, Outcome::Response(body))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    complete(&shared, &id, Outcome::Error(parse_error(&body)))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    *shared.init_error.lock().expect("init_error lock") = Some(parse_error(&body));
    StatusCode::ACCEPTED
}

fn parse_error(body: &[u8]) -> FunctionError {
    serde_json::from_slice(body).unwrap_or_else(|_| FunctionError {
        error_type: "Unparseable".into(),
        error_message: String::from_utf8_lossy(body).into_owned(),
    })
}

fn complete(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.inflight.lock().expect("inflight lock").remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        // The real API answers 400 for an unknown or already-answered request id.
        None => StatusCode::BAD_REQUEST,
    }
}
