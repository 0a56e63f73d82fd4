//! Logging for the function binaries and the CLI.
//!
//! Functions log one JSON object per line (CloudWatch Logs Insights can query the
//! fields). Nothing here ever logs prompt or response text: callers log identifiers,
//! counts and line numbers only.

use tracing_subscriber::EnvFilter;

/// Installs the JSON `tracing` subscriber used by every function binary.
///
/// The level comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), then
/// `RUST_LOG`, then `info`. Calling it twice is harmless: the second call is ignored.
pub fn init_json() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_lowercase();
    // The SDK's own crates are chatty at debug; keep them at warn unless asked for by name.
    let filter = EnvFilter::try_new(format!(
        "{level},aws_smithy_runtime=warn,aws_config=warn,hyper=warn"
    ))
    .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .flatten_event(true)
        .try_init();
}
