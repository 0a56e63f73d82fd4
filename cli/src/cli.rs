//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Quality gates for generative-AI applications on Amazon Bedrock.
///
/// Exit codes: 0 pass/valid, 1 fail, 2 inconclusive, 3 invalid input or error.
#[derive(Debug, Parser)]
#[command(name = "evalgate", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a dataset exactly as submit-evaluation does (exit 0 valid, 3 invalid).
    Validate(ValidateArgs),
    /// Work with policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Re-gate stored Bedrock results offline, without a new judge run.
    Gate(GateArgs),
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The dataset (JSON Lines) to validate.
    pub dataset: PathBuf,
    /// Also check the application's policy, as submit-evaluation does before submitting.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// The S3 key the dataset will be uploaded under, to check its layout
    /// (datasets/<application>/<release>/<name>.jsonl).
    #[arg(long)]
    pub key: Option<String>,
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse a policy and explain what it asks for (exit 0 valid, 3 invalid).
    Check(PolicyCheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct PolicyCheckArgs {
    /// The policy file (YAML).
    pub policy: PathBuf,
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
}

#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// The application's policy (YAML).
    #[arg(long)]
    pub policy: PathBuf,
    /// Bedrock result files (`*_output.jsonl`), directories searched recursively for them, or
    /// `s3://bucket/prefix` URIs listed for them. Repeat for several.
    #[arg(long = "results", required = true, num_args = 1..)]
    pub results: Vec<String>,
    /// Metadata sidecars (`metadata/…/shard-*.jsonl`: latency, tokens, cost), files,
    /// directories or `s3://` prefixes, for the policy's cost and latency budgets.
    #[arg(long = "metadata", num_args = 1..)]
    pub metadata: Vec<String>,
    /// A previous verdict (verdict.json) to compare against; its `scores.jsonl` next to it,
    /// when present, enables the regressed-prompts gate.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Application name recorded in the verdict.
    #[arg(long, default_value = "local")]
    pub application: String,
    /// Release name recorded in the verdict.
    #[arg(long, default_value = "local")]
    pub release: String,
    /// Decision time recorded in the verdict (RFC 3339), for reproducible reports; default now.
    #[arg(long)]
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}
