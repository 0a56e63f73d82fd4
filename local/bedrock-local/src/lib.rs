//! # bedrock-local
//!
//! A local emulator of the Amazon Bedrock **model-evaluation control plane**, for evalgate's
//! end-to-end tests and demo. It serves, over the REST-JSON protocol the AWS SDKs speak:
//! CreateEvaluationJob, GetEvaluationJob, ListEvaluationJobs, StopEvaluationJob and
//! BatchDeleteEvaluationJob (see [`http`] for routes), plus `GET /ping`.
//!
//! It is written from the Bedrock API model and documentation only and shares no code with the
//! `evalgate` library it helps to test.
//!
//! ## What it does
//!
//! * **Validation** ([`validate`]): every required member, length, pattern, enum and union of
//!   the API model, reported like the service (`1 validation error detected: Value 'Bad_Name'
//!   at 'jobName' failed to satisfy constraint: Member must satisfy regular expression pattern:
//!   [a-z0-9](-*[a-z0-9]){0,62}`), then the documented rules (evaluator model for judge
//!   metrics, custom metrics listed in `metricNames`, one model, ...). `taskType` `General` is
//!   accepted, as the service does for judge jobs.
//! * **Datasets** ([`dataset`]): CreateEvaluationJob reads each dataset from S3 and validates it
//!   (exists, JSON Lines, one response per prompt, the job's model identifier on every record,
//!   at most 1000 prompts).
//! * **Semantics** ([`store`]): the same `clientRequestToken` returns the same `jobArn` and
//!   creates nothing, even if the rest of the request differs (the service documents: "If this
//!   token matches a previous request, Amazon Bedrock ignores the request, but does not return
//!   an error"); the same `jobName` with another token is a ConflictException; more than
//!   `--max-concurrent-jobs` jobs InProgress or Stopping is a ServiceQuotaExceededException.
//!   ARNs are `arn:aws:bedrock:<region>:<account>:evaluation-job/<12 of [a-z0-9]>`.
//! * **Lifecycle** ([`service`]): InProgress for `--job-seconds`, then Completed with results
//!   in S3 in the documented layout, or Failed with `failureMessages` when the dataset became
//!   unreadable or invalid; Stop → Stopping → Stopped; BatchDelete (Completed, Failed, Stopped
//!   only) → Deleting → gone; both transitions take `--transition-seconds`.
//! * **Judge** ([`judge`]): deterministic, documented scores per metric, with a steering
//!   directive `[[judge:<Metric>=<value>]]` for tests.
//! * **Faults** ([`random::Faults`]): `--fault-rate` injects ThrottlingException (429) and
//!   InternalServerException (500), deterministic for `--seed` and the request order.
//!
//! ## Not supported yet
//!
//! RAG evaluation (`RagEvaluation`, `ragConfigs`, `precomputedRagSourceConfig`,
//! `conversationTurns` datasets), human evaluation jobs and Bedrock-run inference
//! (`bedrockModel`, built-in datasets, programmatic metrics): each is rejected with a
//! ValidationException saying "... is not supported by bedrock-local yet".
//!
//! ## Wire-format facts (checked against aws-sdk-bedrock 1.166's generated code)
//!
//! * Errors: the SDK takes the type from `x-amzn-errortype` (anything after a `:` dropped),
//!   else from the body's `code` or `__type`; the message from `message`/`Message`. It keys on
//!   the type, never on the status, so ConflictException and ServiceQuotaExceededException with
//!   status 400 map to their typed errors. Statuses follow the model: Validation, Conflict,
//!   ServiceQuotaExceeded 400; Throttling 429; InternalServer 500; AccessDenied 403;
//!   ResourceNotFound 404.
//! * Timestamps in bodies are read as `DateTimeWithOffset`: bedrock-local writes RFC 3339 with
//!   milliseconds and `Z`. Query timestamps (`creationTimeAfter/Before`) are sent as RFC 3339
//!   (`Format::DateTime`), percent-encoded; epoch seconds are accepted too.
//! * `{jobIdentifier}` is percent-encoded with `:` and `/` escaped (non-greedy label).
//! * Union members set to `null` count as unset, as in the SDK's deserialisers.

pub mod cli;
pub mod dataset;
pub mod error;
pub mod http;
pub mod judge;
pub mod model;
pub mod patterns;
pub mod random;
pub mod s3;
pub mod service;
pub mod store;
pub mod validate;

use std::future::Future;
use std::sync::Arc;

pub use cli::Config;
pub use error::ApiError;
pub use service::Service;

/// Starting the emulator failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("an API model pattern does not compile: {0}")]
    Pattern(#[from] regex_lite::Error),
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
}

/// A bound, not yet serving, emulator.
pub struct Server {
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
}

impl Server {
    /// Binds `config.listen` and prepares the service.
    pub async fn bind(config: Config) -> Result<Self, StartError> {
        let addr = config.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let service = Arc::new(Service::new(config)?);
        Ok(Server { listener, service })
    }

    /// The address actually bound (the port when `--listen` asked for port 0).
    pub fn local_addr(&self) -> Result<std::net::SocketAddr, StartError> {
        let addr = self.service.config.listen;
        self.listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })
    }

    /// Serves until `shutdown` completes.
    pub async fn serve<F>(self, shutdown: F) -> Result<(), StartError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        axum::serve(self.listener, http::router(self.service))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(StartError::Serve)
    }
}
