//! Logging for the function binaries and the CLI.
//!
//! Functions log one JSON object per line (CloudWatch Logs Insights can query the
//! fields). Nothing here ever logs prompt or response text: callers log identifiers,
//! counts and line numbers only.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// The SDK's own crates are chatty at debug; they stay at warn unless named in the level.
const QUIET: &str = "aws_smithy_runtime=warn,aws_config=warn,hyper=warn";

/// The filter for a level setting: a level (`debug`) and/or `target=level` directives
/// (`info,evalgate=debug`), as in `RUST_LOG` without span or field filters. Lambda's
/// `FATAL`, which `tracing` lacks, means `error`. A setting that does not parse falls back
/// to `info`.
///
/// `Targets` rather than `EnvFilter`: the same syntax for what evalgate needs, without the
/// regular-expression engine `EnvFilter` links into every binary.
pub fn filter(level: &str) -> Targets {
    let level = level.to_lowercase();
    let level = if level == "fatal" { "error" } else { &level };
    // Later directives replace earlier ones for the same target: the setting wins.
    format!("{QUIET},{level}").parse().unwrap_or_else(|_| {
        format!("{QUIET},info")
            .parse()
            .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO))
    })
}

/// Installs the JSON `tracing` subscriber used by every function binary.
///
/// The level comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), then
/// `RUST_LOG`, then `info`. Calling it twice is harmless: the second call is ignored.
pub fn init_json() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let _ = tracing_subscriber::registry()
        .with(filter(&level))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_target(false)
                .with_current_span(false)
                .flatten_event(true),
        )
        .try_init();
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn levels_and_directives_are_understood() {
        let f = filter("DEBUG");
        assert!(f.would_enable("evalgate::gating", &Level::DEBUG));
        assert!(!f.would_enable("evalgate::gating", &Level::TRACE));
        assert!(!f.would_enable("aws_smithy_runtime::client", &Level::INFO));
        assert!(f.would_enable("aws_smithy_runtime::client", &Level::WARN));

        let f = filter("warn,evalgate=trace");
        assert!(f.would_enable("evalgate::store", &Level::TRACE));
        assert!(!f.would_enable("check_gates", &Level::INFO));

        // Naming an SDK crate overrides the quiet default.
        let f = filter("info,aws_smithy_runtime=debug");
        assert!(f.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(!f.would_enable("aws_config", &Level::INFO));

        // Lambda's FATAL is not a tracing level: the closest one applies.
        let f = filter("FATAL");
        assert!(f.would_enable("evalgate", &Level::ERROR));
        assert!(!f.would_enable("evalgate", &Level::WARN));

        // Nonsense falls back to info.
        let f = filter("evalgate=loud");
        assert!(f.would_enable("evalgate", &Level::INFO));
        assert!(!f.would_enable("evalgate", &Level::DEBUG));
    }
}
