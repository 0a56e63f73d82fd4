//! `evalgate-demo`: the README's first command runs this (through `scripts/demo`). It walks
//! evalgate's whole loop on this machine and narrates each step; see `evalgate_tests::demo`.
//! Exit status 0 when every step happened as narrated, 1 otherwise.

use std::process::ExitCode;
use std::time::Instant;

use evalgate_tests::demo::{self, DemoOptions};

#[tokio::main]
async fn main() -> ExitCode {
    let started = Instant::now();
    println!(
        "evalgate demo: the whole loop against local stand-ins (moto and bedrock-local), no AWS account needed.\n"
    );
    let say = |text: &str| println!("{text}");
    match demo::run(&DemoOptions::default(), &say).await {
        Ok(report) => {
            println!(
                "\nDemo complete in {:.0} s: v1 pass → promoted; v2 fail → not promoted; v3 pass → promoted; alarm → rolled back to {}; {} alert(s) delivered. The processes it started are stopped.",
                started.elapsed().as_secs_f64(),
                report.rollback.pointer_after,
                report.alerts.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\ndemo FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
