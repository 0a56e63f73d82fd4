//! `bedrock-local`: see the library docs (`cargo doc -p bedrock-local --open`) and `--help`.

use std::io::Write;
use std::process::ExitCode;

use bedrock_local::Server;
use bedrock_local::cli::{self, Command, USAGE};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("bedrock-local {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bedrock-local: {e}");
            return ExitCode::from(2);
        }
    };
    // Logs go to stderr: stdout carries exactly one line, the listening address.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let server = match Server::bind(config.clone()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("bedrock-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = match server.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("bedrock-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "bedrock-local listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        eprintln!("bedrock-local: cannot write the listening line to stdout");
        return ExitCode::FAILURE;
    }
    tracing::info!(
        %addr,
        s3_endpoint = config.s3_endpoint.as_deref().unwrap_or("AWS"),
        region = %config.region,
        job_seconds = config.job_duration.as_secs_f64(),
        max_concurrent_jobs = config.max_concurrent_jobs,
        fault_rate = config.fault_rate,
        "bedrock-local ready"
    );
    match server.serve(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bedrock-local: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM (how `scripts/local-stack stop` and the test harness end it).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
