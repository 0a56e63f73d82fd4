//! `evalgate`: validate datasets, check policies and re-gate stored Bedrock results offline,
//! with the same library code the Lambda functions run.
//!
//! Exit codes: 0 pass / valid, 1 fail, 2 inconclusive, 3 invalid input or error.

mod cli;
mod commands;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("evalgate: cannot start: {e}");
            return ExitCode::from(commands::Exit::Invalid as u8);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            eprintln!("evalgate: {e}");
            ExitCode::from(commands::Exit::Invalid as u8)
        }
    }
}
