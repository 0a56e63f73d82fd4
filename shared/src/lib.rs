//! # evalgate
//!
//! The library behind evalgate's four Lambda functions and its CLI: quality gates and
//! automated rollback for generative-AI applications on Amazon Bedrock.
//!
//! The crate is split the way the functions use it:
//!
//! * plain domain logic over plain types (pure, unit-tested, no I/O);
//! * small traits for the AWS services it talks to, with SDK-backed adapters;
//! * [`config`] (environment) and [`aws`] (SDK client construction) shared by every binary;
//! * [`telemetry`] for JSON logs.
//!
//! Handlers in `functions/*` stay thin: parse the event, call into this crate, map errors.

pub mod aggregate;
pub mod alert;
pub mod aws;
pub mod bedrock;
pub mod config;
pub mod dataset;
pub mod emf;
pub mod events;
pub mod gate;
pub mod gating;
mod json_scan;
pub mod layout;
pub mod ledger;
pub mod local;
pub mod metadata;
pub mod notify;
pub mod policy;
pub mod promotion;
pub mod release;
pub mod report;
pub mod results;
pub mod rollback;
pub mod stats;
pub mod store;
pub mod submission;
pub mod telemetry;
pub mod verdict;
