//! The subcommands. Each returns the process exit code; errors are exit code 3.

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, PolicyCommand};

mod gate;
mod policy;
mod validate;

/// Process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Valid, or the gate passed.
    Ok = 0,
    /// The gate failed.
    Fail = 1,
    /// Not enough evidence to decide.
    Inconclusive = 2,
    /// Invalid input, or an error (the message says which).
    Invalid = 3,
}

/// Something went wrong before a result could be produced.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Store(#[from] evalgate::store::StoreError),
}

pub fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a report to `out`, or to standard output.
pub fn emit(out: Option<&Path>, text: &str) -> Result<(), CliError> {
    match out {
        Some(path) => std::fs::write(path, text).map_err(|source| CliError::Write {
            path: path.to_path_buf(),
            source,
        }),
        None => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            Ok(())
        }
    }
}

pub async fn run(cli: Cli) -> Result<Exit, CliError> {
    match cli.command {
        Command::Validate(args) => validate::run(args).await,
        Command::Policy(PolicyCommand::Check(args)) => policy::check(args),
        Command::Gate(args) => gate::run(args).await,
    }
}
