//! Release pointers: where an application reads which release is live.
//!
//! Two kinds, behind one trait ([`ReleasePointer`]):
//!
//! * an **SSM parameter** whose value is the release id. Every move writes a new parameter
//!   version (`PutParameter`, overwrite) whose Description says who moved it and why;
//!   rollbacks also label the new version `rollback-from-<from>-to-<to>-<event hash>`, so
//!   the parameter's history shows each rollback and can be rolled forward by hand.
//! * a **Lambda alias**. Releases are published function versions: by default a version's
//!   release id is the `release=<id>` token in its Description (`aws lambda publish-version
//!   --description "release=v42"`); with `release_id: version` the release id is the version
//!   number itself. A move points the alias at the release's version, removes any weighted
//!   routing (which stops a canary), and stamps the alias Description with
//!   `evalgate <kind> at=<RFC 3339> release=<id>` so evalgate can later tell when the
//!   current release went live. Updates are conditional on the alias's `RevisionId`.
//!
//! Moves are compare-and-set: [`PointerMove::expected_revision`] is the revision the caller
//! decided on; if the pointer changed since, [`MoveOutcome::Conflict`] is returned and
//! nothing is written (SSM has no conditional put: the parameter version is re-read just
//! before the write, which narrows the window to one round trip).

use std::collections::BTreeMap;
use std::future::Future;

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How a Lambda version maps to a release id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseIdSource {
    /// The `release=<id>` token in the version's Description.
    #[default]
    Description,
    /// The version number is the release id.
    Version,
}

/// A release pointer as the policy names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointerSpec {
    SsmParameter {
        name: String,
    },
    LambdaAlias {
        function: String,
        alias: String,
        release_id: ReleaseIdSource,
    },
}

impl PointerSpec {
    /// Human-readable form used in records and events: `ssm:<name>`, `lambda:<function>:<alias>`.
    pub fn describe(&self) -> String {
        match self {
            PointerSpec::SsmParameter { name } => format!("ssm:{name}"),
            PointerSpec::LambdaAlias {
                function, alias, ..
            } => format!("lambda:{function}:{alias}"),
        }
    }
}

/// What a pointer says now.
#[derive(Debug, Clone, PartialEq)]
pub struct PointerState {
    /// The live release; `None` when the pointer names none (empty parameter, a Lambda
    /// version without a `release=` token, `$LATEST`).
    pub release: Option<String>,
    /// The revision moves are conditional on: the SSM parameter version, or the alias's
    /// RevisionId.
    pub revision: String,
    /// When the pointer was last set to [`Self::release`], when the pointer itself records
    /// it (SSM: the version's LastModifiedDate; Lambda: evalgate's stamp in the alias
    /// Description, when it names the current release).
    pub went_live_at: Option<DateTime<Utc>>,
    /// Human-readable location, e.g. `version 7` or `version 12 (+10% to version 13)`.
    pub detail: String,
    /// Weighted routing to other versions (Lambda canaries): version → weight.
    pub routing: BTreeMap<String, f64>,
}

/// Why a pointer is being moved (recorded with the change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveKind {
    Promotion,
    Rollback,
}

impl MoveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveKind::Promotion => "promotion",
            MoveKind::Rollback => "rollback",
        }
    }
}

/// A requested move.
#[derive(Debug, Clone, PartialEq)]
pub struct PointerMove {
    /// The release to point at.
    pub release: String,
    /// Only move if the pointer is still at this revision.
    pub expected_revision: String,
    pub kind: MoveKind,
    /// One line recorded with the change (parameter/version Description): who and why.
    pub why: String,
    /// SSM only: a label for the new parameter version (already valid, see [`ssm_label`]).
    pub label: Option<String>,
    pub at: DateTime<Utc>,
}

/// What a move did.
#[derive(Debug, Clone, PartialEq)]
pub enum MoveOutcome {
    /// The pointer now names the release.
    Moved {
        revision: String,
        /// e.g. `version 8, labelled rollback-from-v3-to-v2-1a2b3c4d`.
        detail: String,
    },
    /// The pointer changed since `expected_revision`; nothing was written.
    Conflict { current: PointerState },
}

/// A pointer operation failed.
#[derive(Debug, Error)]
pub enum PointerError {
    #[error(
        "release pointer {pointer} does not exist ({message}); create it, or fix release.pointer in the policy"
    )]
    NotFound { pointer: String, message: String },
    #[error("release pointer {pointer} has no version for release {release:?}: {hint}")]
    UnknownRelease {
        pointer: String,
        release: String,
        hint: String,
    },
    #[error(
        "access to release pointer {pointer} was denied ({message}); the function needs {actions}"
    )]
    AccessDenied {
        pointer: String,
        message: String,
        actions: &'static str,
    },
    #[error("{operation} on release pointer {pointer} failed: {message}")]
    Service {
        pointer: String,
        operation: &'static str,
        message: String,
    },
}

impl PointerError {
    /// The pointer (or the release's version) does not exist: a configuration problem that
    /// retrying cannot fix.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            PointerError::NotFound { .. }
                | PointerError::UnknownRelease { .. }
                | PointerError::AccessDenied { .. }
        )
    }
}

/// A release pointer.
pub trait ReleasePointer: Send + Sync {
    /// `ssm:<name>` or `lambda:<function>:<alias>`.
    fn describe(&self) -> String;

    fn read(&self) -> impl Future<Output = Result<PointerState, PointerError>> + Send;

    /// Moves the pointer if it is still at `change.expected_revision`.
    fn set(
        &self,
        change: &PointerMove,
    ) -> impl Future<Output = Result<MoveOutcome, PointerError>> + Send;
}

/// A borrowed pointer is a pointer (lets callers lend one they keep, e.g. in tests).
impl<T: ReleasePointer> ReleasePointer for &T {
    fn describe(&self) -> String {
        (**self).describe()
    }

    fn read(&self) -> impl Future<Output = Result<PointerState, PointerError>> + Send {
        (**self).read()
    }

    fn set(
        &self,
        change: &PointerMove,
    ) -> impl Future<Output = Result<MoveOutcome, PointerError>> + Send {
        (**self).set(change)
    }
}

/// SDK clients the pointer adapters use (built once in `main`).
#[derive(Debug, Clone)]
pub struct PointerClients {
    pub ssm: aws_sdk_ssm::Client,
    pub lambda: aws_sdk_lambda::Client,
}

impl PointerClients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        PointerClients {
            ssm: aws_sdk_ssm::Client::new(config),
            lambda: aws_sdk_lambda::Client::new(config),
        }
    }
}

/// Either adapter, chosen by the policy.
#[derive(Debug, Clone)]
pub enum Pointer {
    Ssm(SsmParameterPointer),
    Lambda(LambdaAliasPointer),
}

impl Pointer {
    pub fn new(spec: &PointerSpec, clients: &PointerClients) -> Pointer {
        match spec {
            PointerSpec::SsmParameter { name } => Pointer::Ssm(SsmParameterPointer {
                client: clients.ssm.clone(),
                name: name.clone(),
            }),
            PointerSpec::LambdaAlias {
                function,
                alias,
                release_id,
            } => Pointer::Lambda(LambdaAliasPointer {
                client: clients.lambda.clone(),
                function: function.clone(),
                alias: alias.clone(),
                release_id: *release_id,
            }),
        }
    }
}

impl ReleasePointer for Pointer {
    fn describe(&self) -> String {
        match self {
            Pointer::Ssm(p) => p.describe(),
            Pointer::Lambda(p) => p.describe(),
        }
    }

    async fn read(&self) -> Result<PointerState, PointerError> {
        match self {
            Pointer::Ssm(p) => p.read().await,
            Pointer::Lambda(p) => p.read().await,
        }
    }

    async fn set(&self, change: &PointerMove) -> Result<MoveOutcome, PointerError> {
        match self {
            Pointer::Ssm(p) => p.set(change).await,
            Pointer::Lambda(p) => p.set(change).await,
        }
    }
}

fn smithy_to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Truncates to at most `max` bytes on a character boundary.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn error_code<E>(err: &aws_sdk_ssm::error::SdkError<E>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned)
}

// ------------------------------------------------------------------------------------------
// SSM parameter

/// A release pointer that is an SSM parameter.
#[derive(Debug, Clone)]
pub struct SsmParameterPointer {
    client: aws_sdk_ssm::Client,
    name: String,
}

const SSM_ACTIONS: &str = "ssm:GetParameter and ssm:PutParameter and ssm:LabelParameterVersion on the parameter (and kms:Decrypt/Encrypt for a SecureString)";

impl SsmParameterPointer {
    pub fn new(client: aws_sdk_ssm::Client, name: impl Into<String>) -> Self {
        SsmParameterPointer {
            client,
            name: name.into(),
        }
    }

    fn fail<E>(&self, operation: &'static str, err: aws_sdk_ssm::error::SdkError<E>) -> PointerError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = error_code(&err);
        let message = DisplayErrorContext(&err).to_string();
        let pointer = self.describe();
        match code.as_deref() {
            Some("ParameterNotFound") => PointerError::NotFound { pointer, message },
            Some("AccessDeniedException") => PointerError::AccessDenied {
                pointer,
                message,
                actions: SSM_ACTIONS,
            },
            Some("ParameterMaxVersionLimitExceeded") => PointerError::Service {
                pointer,
                operation,
                message: format!(
                    "{message}. The parameter keeps 100 versions and its oldest one carries a label: move or delete that label (aws ssm unlabel-parameter-version) and the next retry succeeds"
                ),
            },
            _ => PointerError::Service {
                pointer,
                operation,
                message,
            },
        }
    }
}

impl SsmParameterPointer {
    /// The pointer's state and the parameter's type (kept on overwrite).
    async fn get(
        &self,
    ) -> Result<(PointerState, Option<aws_sdk_ssm::types::ParameterType>), PointerError> {
        let out = self
            .client
            .get_parameter()
            .name(&self.name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| self.fail("GetParameter", e))?;
        let Some(parameter) = out.parameter() else {
            return Err(PointerError::NotFound {
                pointer: self.describe(),
                message: "GetParameter returned no parameter".into(),
            });
        };
        let release = parameter
            .value()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let state = PointerState {
            release,
            revision: parameter.version().to_string(),
            went_live_at: parameter.last_modified_date().and_then(smithy_to_chrono),
            detail: format!("version {}", parameter.version()),
            routing: BTreeMap::new(),
        };
        Ok((state, parameter.r#type().cloned()))
    }
}

impl ReleasePointer for SsmParameterPointer {
    fn describe(&self) -> String {
        format!("ssm:{}", self.name)
    }

    async fn read(&self) -> Result<PointerState, PointerError> {
        Ok(self.get().await?.0)
    }

    async fn set(&self, change: &PointerMove) -> Result<MoveOutcome, PointerError> {
        // No conditional put in SSM: re-read right before writing.
        let (current, parameter_type) = self.get().await?;
        if current.revision != change.expected_revision {
            return Ok(MoveOutcome::Conflict { current });
        }
        let put = self
            .client
            .put_parameter()
            .name(&self.name)
            .value(&change.release)
            .overwrite(true)
            .set_type(parameter_type)
            // Always set a Description: SSM otherwise carries the previous version's over.
            .description(truncate(&change.why, 1024))
            .send()
            .await
            .map_err(|e| self.fail("PutParameter", e))?;
        let version = put.version();
        let mut detail = format!("version {version}");
        if let Some(label) = &change.label {
            let labelled = self
                .client
                .label_parameter_version()
                .name(&self.name)
                .parameter_version(version)
                .labels(label)
                .send()
                .await;
            // The move happened; a label problem must not undo or hide it. It is reported in
            // the detail (and so in the record and the event).
            match labelled {
                Ok(out) if out.invalid_labels().is_empty() => {
                    detail.push_str(&format!(", labelled {label}"));
                }
                Ok(out) => {
                    tracing::warn!(pointer = %self.describe(), version, invalid = ?out.invalid_labels(), "SSM rejected the rollback label");
                    detail.push_str(&format!(", label {label} rejected by SSM"));
                }
                Err(e) => {
                    let e = self.fail("LabelParameterVersion", e);
                    tracing::warn!(pointer = %self.describe(), version, error = %e, "labelling the new parameter version failed");
                    detail.push_str(&format!(", not labelled ({e})"));
                }
            }
        }
        Ok(MoveOutcome::Moved {
            revision: version.to_string(),
            detail,
        })
    }
}

/// A valid SSM label for a rollback: `rollback-from-<from>-to-<to>-<8 hex of the alarm
/// event id>` with characters outside `a-zA-Z0-9_.-` replaced by `_`, each release id cut
/// to 36 characters (labels are at most 100 characters). The hash keeps labels unique per
/// parameter (SSM moves a label that is attached again), so every rollback keeps its own.
pub fn ssm_label(from: &str, to: &str, event_id: &str) -> String {
    fn clean(text: &str) -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(36)
            .collect()
    }
    let hash = &crate::layout::fingerprint(&[event_id])[..8];
    format!("rollback-from-{}-to-{}-{hash}", clean(from), clean(to))
}

// ------------------------------------------------------------------------------------------
// Lambda alias

/// A release pointer that is a Lambda alias.
#[derive(Debug, Clone)]
pub struct LambdaAliasPointer {
    client: aws_sdk_lambda::Client,
    function: String,
    alias: String,
    release_id: ReleaseIdSource,
}

const LAMBDA_ACTIONS: &str = "lambda:GetAlias, lambda:UpdateAlias, lambda:GetFunctionConfiguration and lambda:ListVersionsByFunction on the function";

/// The release id a version's Description declares: the `release=<id>` token.
/// Release ids used with Lambda aliases therefore contain no whitespace.
pub fn release_in_description(description: &str) -> Option<&str> {
    description
        .split_whitespace()
        .find_map(|token| token.strip_prefix("release="))
        .filter(|id| !id.is_empty())
}

/// evalgate's stamp in an alias Description: `evalgate <kind> at=<RFC 3339> release=<id>`.
pub fn alias_stamp(kind: MoveKind, at: DateTime<Utc>, release: &str) -> String {
    truncate(
        &format!(
            "evalgate {} at={} release={release}",
            kind.as_str(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
        256,
    )
}

/// Reads [`alias_stamp`] back: (when, release).
pub fn parse_alias_stamp(description: &str) -> Option<(DateTime<Utc>, &str)> {
    let rest = description.strip_prefix("evalgate ")?;
    let (head, release) = rest.split_once(" release=")?;
    let at = head
        .split_whitespace()
        .find_map(|t| t.strip_prefix("at="))?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    Some((at, release))
}

impl LambdaAliasPointer {
    pub fn new(
        client: aws_sdk_lambda::Client,
        function: impl Into<String>,
        alias: impl Into<String>,
        release_id: ReleaseIdSource,
    ) -> Self {
        LambdaAliasPointer {
            client,
            function: function.into(),
            alias: alias.into(),
            release_id,
        }
    }

    fn fail<E>(&self, operation: &'static str, err: aws_sdk_ssm::error::SdkError<E>) -> PointerError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = error_code(&err);
        let message = DisplayErrorContext(&err).to_string();
        let pointer = self.describe();
        match code.as_deref() {
            Some("ResourceNotFoundException") => PointerError::NotFound { pointer, message },
            Some("AccessDeniedException") => PointerError::AccessDenied {
                pointer,
                message,
                actions: LAMBDA_ACTIONS,
            },
            _ => PointerError::Service {
                pointer,
                operation,
                message,
            },
        }
    }

    /// The release a published version stands for.
    async fn release_of_version(&self, version: &str) -> Result<Option<String>, PointerError> {
        if version == "$LATEST" {
            return Ok(None);
        }
        match self.release_id {
            ReleaseIdSource::Version => Ok(Some(version.to_owned())),
            ReleaseIdSource::Description => {
                let config = self
                    .client
                    .get_function_configuration()
                    .function_name(&self.function)
                    .qualifier(version)
                    .send()
                    .await
                    .map_err(|e| self.fail("GetFunctionConfiguration", e))?;
                Ok(config
                    .description()
                    .and_then(release_in_description)
                    .map(str::to_owned))
            }
        }
    }

    /// The published version that carries `release` (the highest, if several do).
    async fn version_of_release(&self, release: &str) -> Result<String, PointerError> {
        let unknown = |hint: String| PointerError::UnknownRelease {
            pointer: self.describe(),
            release: release.to_owned(),
            hint,
        };
        match self.release_id {
            ReleaseIdSource::Version => {
                if release.is_empty() || !release.chars().all(|c| c.is_ascii_digit()) {
                    return Err(unknown(
                        "with release_id: version, release ids are published version numbers"
                            .into(),
                    ));
                }
                self.client
                    .get_function_configuration()
                    .function_name(&self.function)
                    .qualifier(release)
                    .send()
                    .await
                    .map_err(|e| match self.fail("GetFunctionConfiguration", e) {
                        PointerError::NotFound { .. } => {
                            unknown(format!("version {release} is not published"))
                        }
                        other => other,
                    })?;
                Ok(release.to_owned())
            }
            ReleaseIdSource::Description => {
                let mut best: Option<u64> = None;
                let mut pages = self
                    .client
                    .list_versions_by_function()
                    .function_name(&self.function)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| self.fail("ListVersionsByFunction", e))?;
                    for v in page.versions() {
                        let number = v.version().and_then(|n| n.parse::<u64>().ok());
                        let matches =
                            v.description().and_then(release_in_description) == Some(release);
                        if let (Some(n), true) = (number, matches) {
                            best = best.max(Some(n));
                        }
                    }
                }
                best.map(|n| n.to_string()).ok_or_else(|| {
                    unknown(format!(
                        "no published version of {} has `release={release}` in its Description; publish one with `aws lambda publish-version --function-name {} --description \"release={release}\"`",
                        self.function, self.function
                    ))
                })
            }
        }
    }
}

impl ReleasePointer for LambdaAliasPointer {
    fn describe(&self) -> String {
        format!("lambda:{}:{}", self.function, self.alias)
    }

    async fn read(&self) -> Result<PointerState, PointerError> {
        let alias = self
            .client
            .get_alias()
            .function_name(&self.function)
            .name(&self.alias)
            .send()
            .await
            .map_err(|e| self.fail("GetAlias", e))?;
        let version = alias.function_version().unwrap_or("$LATEST").to_owned();
        let release = self.release_of_version(&version).await?;
        let routing: BTreeMap<String, f64> = alias
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        // The stamp only dates the current release if it names it (someone may have moved
        // the alias by hand since, leaving evalgate's old Description in place).
        let went_live_at = alias
            .description()
            .and_then(parse_alias_stamp)
            .filter(|(_, stamped)| Some(*stamped) == release.as_deref())
            .map(|(at, _)| at);
        let mut detail = format!("version {version}");
        for (v, w) in &routing {
            detail.push_str(&format!(" (+{:.0}% to version {v})", w * 100.0));
        }
        Ok(PointerState {
            release,
            revision: alias.revision_id().unwrap_or_default().to_owned(),
            went_live_at,
            detail,
            routing,
        })
    }

    async fn set(&self, change: &PointerMove) -> Result<MoveOutcome, PointerError> {
        let version = self.version_of_release(&change.release).await?;
        let update = self
            .client
            .update_alias()
            .function_name(&self.function)
            .name(&self.alias)
            .function_version(&version)
            // An empty weight map removes weighted routing: the alias serves one version.
            .routing_config(
                aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                    .set_additional_version_weights(Some(Default::default()))
                    .build(),
            )
            .description(alias_stamp(change.kind, change.at, &change.release))
            .revision_id(&change.expected_revision)
            .send()
            .await;
        match update {
            Ok(out) => Ok(MoveOutcome::Moved {
                revision: out.revision_id().unwrap_or_default().to_owned(),
                detail: format!("version {version}"),
            }),
            Err(e) if error_code(&e).as_deref() == Some("PreconditionFailedException") => {
                Ok(MoveOutcome::Conflict {
                    current: self.read().await?,
                })
            }
            Err(e) => Err(self.fail("UpdateAlias", e)),
        }
    }
}

// ------------------------------------------------------------------------------------------
// In-memory pointer for unit tests

/// A [`ReleasePointer`] in memory, for unit tests of promotion and rollback logic.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug)]
pub struct MemoryPointer {
    pub state: std::sync::Mutex<PointerState>,
    /// Every successful move, in order.
    pub moves: std::sync::Mutex<Vec<PointerMove>>,
    /// When set, `set` fails with this message (a transient service error).
    pub fail_next_set: std::sync::Mutex<Option<String>>,
}

#[cfg(any(test, feature = "test-util"))]
impl MemoryPointer {
    pub fn at(release: Option<&str>, went_live_at: Option<DateTime<Utc>>) -> Self {
        MemoryPointer {
            state: std::sync::Mutex::new(PointerState {
                release: release.map(str::to_owned),
                revision: "1".into(),
                went_live_at,
                detail: "version 1".into(),
                routing: BTreeMap::new(),
            }),
            moves: Default::default(),
            fail_next_set: Default::default(),
        }
    }

    pub fn current(&self) -> PointerState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn moves(&self) -> Vec<PointerMove> {
        self.moves.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Simulates someone else moving the pointer.
    pub fn move_by_hand(&self, release: &str, at: DateTime<Utc>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let next = state.revision.parse::<u64>().unwrap_or(0) + 1;
        *state = PointerState {
            release: Some(release.to_owned()),
            revision: next.to_string(),
            went_live_at: Some(at),
            detail: format!("version {next}"),
            routing: BTreeMap::new(),
        };
    }
}

#[cfg(any(test, feature = "test-util"))]
impl ReleasePointer for MemoryPointer {
    fn describe(&self) -> String {
        "memory:pointer".into()
    }

    async fn read(&self) -> Result<PointerState, PointerError> {
        Ok(self.current())
    }

    async fn set(&self, change: &PointerMove) -> Result<MoveOutcome, PointerError> {
        if let Some(message) = self
            .fail_next_set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(PointerError::Service {
                pointer: self.describe(),
                operation: "Set",
                message,
            });
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.revision != change.expected_revision {
            return Ok(MoveOutcome::Conflict {
                current: state.clone(),
            });
        }
        let next = state.revision.parse::<u64>().unwrap_or(0) + 1;
        *state = PointerState {
            release: Some(change.release.clone()),
            revision: next.to_string(),
            went_live_at: Some(change.at),
            detail: format!("version {next}"),
            routing: BTreeMap::new(),
        };
        self.moves
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(change.clone());
        Ok(MoveOutcome::Moved {
            revision: next.to_string(),
            detail: format!("version {next}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ssm_labels_are_valid_and_unique_per_event() {
        let label = ssm_label("v3", "v2", "event-1");
        assert!(label.starts_with("rollback-from-v3-to-v2-"), "{label}");
        assert_ne!(label, ssm_label("v3", "v2", "event-2"));
        let long = "release/with spaces+and:colons".repeat(5);
        let label = ssm_label(&long, "2026.11.22 build #7", "e");
        assert!(label.len() <= 100, "{} chars", label.len());
        assert!(
            label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
            "{label}"
        );
        // Labels may not begin with a digit, "aws" or "ssm": ours always begin "rollback-".
        assert!(label.starts_with("rollback-"));
    }

    #[test]
    fn release_ids_in_version_descriptions() {
        assert_eq!(release_in_description("release=v42"), Some("v42"));
        assert_eq!(
            release_in_description("build 17 release=2026.11.22-1 (main)"),
            Some("2026.11.22-1")
        );
        assert_eq!(release_in_description("no release here"), None);
        assert_eq!(release_in_description("release="), None);
        assert_eq!(release_in_description(""), None);
    }

    #[test]
    fn alias_stamps_round_trip() {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .single()
            .unwrap();
        let stamp = alias_stamp(MoveKind::Rollback, at, "v2");
        assert_eq!(
            stamp,
            "evalgate rollback at=2026-11-22T10:00:00.000Z release=v2"
        );
        assert_eq!(parse_alias_stamp(&stamp), Some((at, "v2")));
        assert_eq!(parse_alias_stamp("deployed by hand"), None);
        assert_eq!(
            parse_alias_stamp("evalgate promotion at=yesterday release=v1"),
            None
        );
    }

    #[test]
    fn pointer_descriptions() {
        assert_eq!(
            PointerSpec::SsmParameter {
                name: "/a/release".into()
            }
            .describe(),
            "ssm:/a/release"
        );
        assert_eq!(
            PointerSpec::LambdaAlias {
                function: "bot".into(),
                alias: "live".into(),
                release_id: ReleaseIdSource::Description
            }
            .describe(),
            "lambda:bot:live"
        );
    }
}
