//! Harnesses for evalgate's end-to-end tests.
//!
//! * [`stack`] finds or starts the local AWS stand-ins (moto's server) on 127.0.0.1 and hands
//!   out SDK clients pointed at them.
//! * [`bedrock`] starts bedrock-local, the Bedrock model-evaluation emulator, per test.
//! * [`runtime`] is a loopback implementation of the Lambda Runtime API: it starts a real,
//!   built function binary, feeds it events and collects what it answers.
//! * [`events`] taps evalgate's EventBridge events into a queue a test reads.
//! * [`names`] makes resource names unique per test so tests run in parallel.
//!
//! The test files under `tests/tests/` use these; so does the cold-start benchmark.

pub mod bedrock;
pub mod demo;
pub mod events;
pub mod names;
pub mod runtime;
pub mod stack;

/// The repository root (the workspace directory).
pub fn repo_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}
