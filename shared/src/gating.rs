//! check-gates' orchestration: for each release awaiting a verdict, find whether its
//! evaluation jobs have finished, aggregate Bedrock's judgements, decide, and record the
//! verdict exactly once.
//!
//! Per open release (oldest first):
//!
//! 1. A verdict already exists → a re-opened release or an interrupted run (see
//!    [`RECOVERY_GRACE`]); nothing is decided twice.
//! 2. Shards still waiting for Bedrock quota, or shards not recorded yet → wait.
//! 3. The counted jobs: per dataset key, the latest upload's jobs (earlier uploads of a
//!    re-uploaded dataset are listed as superseded).
//! 4. `GetEvaluationJob` for each (bounded concurrency); any job still running → wait.
//!    Failed or Stopped → an `error` verdict carrying Bedrock's failure messages.
//! 5. The policy as it is now; missing or invalid → `error` (fail closed).
//! 6. Every `*_output.jsonl` of every completed job, streamed into one [`Aggregator`];
//!    metadata sidecars into [`UsageAggregator`]; unreadable results → `error`.
//! 7. The baseline: the pinned release, or the most recent passing one.
//! 8. [`gate::decide`], then record: `scores.jsonl`, `verdict.json` (conditional write: the
//!    commit point), `report.md`, EMF lines, the `Gate Verdict` event, then close the release.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use thiserror::Error;

use crate::aggregate::{
    AggregateConfig, Aggregator, MetricSetup, PromptScores, Usage, UsageAggregator,
};
use crate::bedrock::{BedrockError, EvaluationJobs, JobState, JobStatus};
use crate::events::{Event, EventPublisher, PublishError};
use crate::gate::{self, Baseline, Inputs, Locations, Subject};
use crate::layout;
use crate::ledger::{JobRecord, Ledger, LedgerError, OpenRelease, VerdictSummary};
use crate::policy::release::Promote;
use crate::policy::{self, Policy};
use crate::promotion::{OnPass, PassedVerdict, Promotion, PromotionError};
use crate::results::{LineReader, ReadError, read_results};
use crate::store::{ObjectStore, PutOutcome, StoreError};
use crate::verdict::{BaselineInfo, JobOutcome, Outcome, Verdict};

/// `GetEvaluationJob` calls in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How long a verdict may exist while its release is still open before a later run
/// finishes the recording (report, event, close). Longer than any invocation can last
/// (Lambda's limit is 15 minutes), so a run that is still recording is never doubled.
pub const RECOVERY_GRACE: Duration = Duration::minutes(20);

/// How long a release may wait for shards that were never recorded (and are not deferred)
/// before it gets an `error` verdict: submit-evaluation stopped part-way.
pub const INCOMPLETE_AFTER: Duration = Duration::hours(6);

/// Something went wrong that a later run may not meet: the release stays open.
#[derive(Debug, Error)]
pub enum GatingError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("GetEvaluationJob for {job_arn}: {source}")]
    Bedrock {
        job_arn: String,
        source: BedrockError,
    },
    #[error(transparent)]
    Read(ReadError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Promoting a passed release failed in a way a retry may fix (the pointer changed
    /// concurrently, a throttled call): the release stays open and a later run retries.
    #[error("promoting the passed release failed: {0}")]
    Promotion(#[from] PromotionError),
}

/// What happened to one open release in a run.
#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseOutcome {
    /// Not decidable yet.
    Waiting(String),
    /// A verdict was recorded by this run.
    Decided(Outcome),
    /// Another invocation recorded the verdict first; this run did nothing.
    AlreadyRecorded,
    /// An interrupted recording was finished (report, event, close).
    Recovered(Outcome),
    /// The release was re-opened by a submission after its verdict: closed again, nothing
    /// re-decided (a verdict is final).
    ClosedAfterVerdict,
}

/// One release's line in a run summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseResult {
    pub application: String,
    pub release: String,
    pub result: Result<ReleaseOutcome, String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub releases: Vec<ReleaseResult>,
    /// Open releases left for the next run because the invocation's time was running out.
    pub deferred_for_time: usize,
}

impl RunSummary {
    pub fn failures(&self) -> usize {
        self.releases.iter().filter(|r| r.result.is_err()).count()
    }
}

/// Which open releases a run looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every open release (the schedule).
    All,
    /// Releases whose `(safe_segment(app), safe_segment(release))` is listed (results
    /// landed for them).
    Segments(Vec<(String, String)>),
}

impl Scope {
    fn includes(&self, open: &OpenRelease) -> bool {
        match self {
            Scope::All => true,
            Scope::Segments(segments) => {
                let app = layout::safe_segment(&open.application);
                let rel = layout::safe_segment(&open.release);
                segments.iter().any(|(a, r)| *a == app && *r == rel)
            }
        }
    }
}

/// The `(application, release)` segments of a Bedrock results key
/// (`evaluations/<app>/<rel>/<dataset-id>/<jobName>/<jobId>/…_output.jsonl`).
pub fn release_of_output_key(key: &str) -> Option<(String, String)> {
    if !key.ends_with("_output.jsonl") {
        return None;
    }
    let mut parts = key.strip_prefix("evaluations/")?.split('/');
    let app = parts.next().filter(|s| !s.is_empty())?;
    let rel = parts.next().filter(|s| !s.is_empty())?;
    Some((app.to_owned(), rel.to_owned()))
}

/// The jobs a verdict counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Per dataset key, the latest upload's jobs, by dataset key and shard.
    pub counted: Vec<JobRecord>,
    /// Jobs of earlier uploads of a re-uploaded dataset key.
    pub superseded: Vec<JobRecord>,
    /// Shards of counted uploads with no job recorded: `(dataset key, shard, shard count)`.
    pub missing: Vec<(String, u32, u32)>,
}

/// Chooses the counted jobs: for each dataset key, the upload (dataset id) submitted last.
/// A re-upload replaces the dataset; evaluating both would count its prompts twice.
pub fn select_jobs(mut records: Vec<JobRecord>) -> Selection {
    records.sort_by(|a, b| {
        (&a.dataset.key, &a.dataset_id, a.shard, &a.job_name).cmp(&(
            &b.dataset.key,
            &b.dataset_id,
            b.shard,
            &b.job_name,
        ))
    });
    let mut latest: std::collections::BTreeMap<&str, (DateTime<Utc>, &str)> = Default::default();
    for r in &records {
        let entry = latest
            .entry(r.dataset.key.as_str())
            .or_insert((r.submitted_at, r.dataset_id.as_str()));
        if (r.submitted_at, r.dataset_id.as_str()) > *entry {
            *entry = (r.submitted_at, r.dataset_id.as_str());
        }
    }
    let latest: std::collections::BTreeMap<String, String> = latest
        .into_iter()
        .map(|(k, (_, id))| (k.to_owned(), id.to_owned()))
        .collect();
    let (mut counted, superseded): (Vec<JobRecord>, Vec<JobRecord>) = records
        .into_iter()
        .partition(|r| latest.get(&r.dataset.key) == Some(&r.dataset_id));
    counted.dedup_by(|a, b| a.dataset.key == b.dataset.key && a.shard == b.shard);
    let mut missing = Vec::new();
    for key in latest.keys() {
        let shards: Vec<&JobRecord> = counted.iter().filter(|r| &r.dataset.key == key).collect();
        let count = shards.iter().map(|r| r.shard_count).max().unwrap_or(0);
        for shard in 1..=count {
            if !shards.iter().any(|r| r.shard == shard) {
                missing.push((key.clone(), shard, count));
            }
        }
    }
    Selection {
        counted,
        superseded,
        missing,
    }
}

fn status_text(status: &JobStatus) -> String {
    match status {
        JobStatus::InProgress => "InProgress".into(),
        JobStatus::Completed => "Completed".into(),
        JobStatus::Failed => "Failed".into(),
        JobStatus::Stopping => "Stopping".into(),
        JobStatus::Stopped => "Stopped".into(),
        JobStatus::Deleting => "Deleting".into(),
        JobStatus::Unknown(s) => s.clone(),
    }
}

fn job_outcome(record: &JobRecord, status: &str, failure_messages: Vec<String>) -> JobOutcome {
    JobOutcome {
        job_arn: record.job_arn.clone(),
        job_name: record.job_name.clone(),
        dataset_key: record.dataset.key.clone(),
        dataset_id: record.dataset_id.clone(),
        shard: record.shard,
        shard_count: record.shard_count,
        prompts: record.prompts,
        status: status.to_owned(),
        failure_messages,
        results: 0,
        output_files: 0,
        policy_hash: record.policy_hash.clone(),
    }
}

fn describe(record: &JobRecord) -> String {
    format!(
        "job {} ({}, shard {} of {})",
        record.job_name, record.dataset.key, record.shard, record.shard_count
    )
}

/// Where a sink for EMF lines writes (stdout in Lambda).
pub type EmfSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// The policy as read at gate time.
enum PolicyRead {
    Ok { policy: Box<Policy>, hash: String },
    Unusable(String),
}

/// What a decision was made from, and what to write besides the verdict.
struct Decision {
    verdict: Verdict,
    scores: Option<PromptScores>,
    namespace: String,
    include_prompt_text: bool,
}

/// How a policy asks results to be aggregated: every evaluated and gated metric is reported
/// (even if no result names it) with its direction and pass bar. check-gates and the CLI's
/// `evalgate gate` both use this, so they aggregate identically.
pub fn aggregate_config(
    policy: &Policy,
    include_prompt_text: bool,
    collect_prompt_scores: bool,
) -> AggregateConfig {
    let gates = &policy.gates;
    let mut setups: Vec<MetricSetup> = Vec::new();
    for name in policy
        .evaluation
        .metric_names()
        .iter()
        .chain(gates.metrics.keys())
    {
        if !setups.iter().any(|s| &s.name == name) {
            let r = gates.resolve(name);
            setups.push(MetricSetup {
                name: r.name,
                direction: r.direction,
                pass_bar: r.pass_bar,
            });
        }
    }
    AggregateConfig {
        metrics: setups,
        default_pass_bar: gates.pass_bar(),
        critical_categories: gates.critical_categories(),
        worst_prompts: gates.worst_prompts(),
        keep_prompt_text: include_prompt_text,
        collect_prompt_scores,
    }
}

/// The gate's orchestration over the bucket, Bedrock and EventBridge.
pub struct Gatekeeper<'a, S, J, P> {
    pub store: &'a S,
    pub jobs: &'a J,
    pub events: &'a P,
    pub emf: EmfSink<'a>,
    /// `GetEvaluationJob` calls in flight at once.
    pub concurrency: usize,
    /// Promotes a release that passed when its policy says `release.promote: on_pass`
    /// (`None`: never promote).
    pub promotion: Option<&'a dyn OnPass>,
}

impl<'a, S: ObjectStore, J: EvaluationJobs, P: EventPublisher> Gatekeeper<'a, S, J, P> {
    pub fn new(store: &'a S, jobs: &'a J, events: &'a P, emf: EmfSink<'a>) -> Self {
        Gatekeeper {
            store,
            jobs,
            events,
            emf,
            concurrency: DEFAULT_CONCURRENCY,
            promotion: None,
        }
    }

    fn ledger(&self) -> Ledger<'a, S> {
        Ledger::new(self.store)
    }

    fn uri(&self, key: &str) -> String {
        layout::s3_uri(self.store.bucket(), key)
    }

    fn locations(&self, application: &str, release: &str) -> Locations {
        Locations {
            policy_uri: self.uri(&layout::policy_key(application)),
            verdict_uri: self.uri(&layout::verdict_key(application, release)),
            report_uri: self.uri(&layout::report_key(application, release)),
            scores_uri: self.uri(&layout::scores_key(application, release)),
        }
    }

    /// Looks at every open release in `scope`, oldest first, until `deadline`.
    /// Failures of one release are recorded in the summary and do not stop the others.
    pub async fn run(
        &self,
        scope: &Scope,
        now: DateTime<Utc>,
        deadline: Option<Instant>,
    ) -> Result<RunSummary, GatingError> {
        let open = self.ledger().open_releases().await?;
        let mut summary = RunSummary::default();
        let candidates: Vec<&OpenRelease> = open.iter().filter(|o| scope.includes(o)).collect();
        for (i, release) in candidates.iter().enumerate() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                summary.deferred_for_time = candidates.len() - i;
                tracing::warn!(
                    left = summary.deferred_for_time,
                    "time is running out: the remaining open releases wait for the next run"
                );
                break;
            }
            let result = self.gate_release(release, now).await;
            match &result {
                Ok(outcome) => tracing::info!(
                    application = %release.application,
                    release = %release.release,
                    result = ?outcome,
                    "release checked"
                ),
                Err(error) => tracing::error!(
                    application = %release.application,
                    release = %release.release,
                    %error,
                    "release could not be checked; the next run retries"
                ),
            }
            summary.releases.push(ReleaseResult {
                application: release.application.clone(),
                release: release.release.clone(),
                result: result.map_err(|e| e.to_string()),
            });
        }
        Ok(summary)
    }

    /// Checks one open release and records its verdict when it can be decided.
    pub async fn gate_release(
        &self,
        open: &OpenRelease,
        now: DateTime<Utc>,
    ) -> Result<ReleaseOutcome, GatingError> {
        let (app, rel) = (open.application.as_str(), open.release.as_str());
        let ledger = self.ledger();
        let verdict_key = layout::verdict_key(app, rel);
        if self.store.head(&verdict_key).await?.is_some() {
            return self.already_decided(open, now).await;
        }

        let deferred = ledger.deferred(Some((app, rel))).await?;
        if !deferred.is_empty() {
            return Ok(ReleaseOutcome::Waiting(format!(
                "{} shard(s) wait for Bedrock's job quota",
                deferred.len()
            )));
        }
        let selection = select_jobs(ledger.jobs(app, rel).await?);
        let superseded: Vec<String> = selection
            .superseded
            .iter()
            .map(|r| r.job_arn.clone())
            .collect();
        let locations = self.locations(app, rel);
        let subject = Subject {
            application: app,
            release: rel,
            decided_at: now,
            locations: &locations,
        };
        if selection.counted.is_empty() || !selection.missing.is_empty() {
            let since = selection
                .counted
                .iter()
                .map(|r| r.submitted_at)
                .max()
                .unwrap_or(open.opened_at)
                .max(open.opened_at);
            let what = if selection.counted.is_empty() {
                "no evaluation job is recorded for the release".to_owned()
            } else {
                let listed: Vec<String> = selection
                    .missing
                    .iter()
                    .take(5)
                    .map(|(key, shard, count)| format!("{key} shard {shard} of {count}"))
                    .collect();
                format!(
                    "{} shard(s) were never submitted ({}{})",
                    selection.missing.len(),
                    listed.join(", "),
                    if selection.missing.len() > 5 {
                        ", …"
                    } else {
                        ""
                    }
                )
            };
            if now - since < INCOMPLETE_AFTER {
                return Ok(ReleaseOutcome::Waiting(what));
            }
            let jobs = selection
                .counted
                .iter()
                .map(|r| job_outcome(r, "Unknown", Vec::new()))
                .collect();
            let verdict = gate::error_verdict(
                &subject,
                vec![format!(
                    "{what} {} hours after the last submission: submit-evaluation stopped part-way. Upload the datasets again under a new release name",
                    INCOMPLETE_AFTER.num_hours()
                )],
                None,
                jobs,
                superseded,
            );
            return self.record_error(verdict).await;
        }

        // Bedrock's view of each counted job, a few calls at a time.
        let states: Vec<Result<JobState, BedrockError>> =
            futures_util::stream::iter(selection.counted.iter())
                .map(|r| self.jobs.get_job(&r.job_arn))
                .buffered(self.concurrency.max(1))
                .collect()
                .await;
        let mut outcomes = Vec::new();
        let mut failures = Vec::new();
        let mut running = 0;
        for (record, state) in selection.counted.iter().zip(states) {
            match state {
                Ok(state) => {
                    if !state.status.is_terminal() {
                        running += 1;
                    }
                    if matches!(state.status, JobStatus::Failed | JobStatus::Stopped) {
                        let messages = if state.failure_messages.is_empty() {
                            "Bedrock gave no failure message".to_owned()
                        } else {
                            state.failure_messages.join("; ")
                        };
                        failures.push(format!(
                            "{} {}: {messages}",
                            describe(record),
                            status_text(&state.status).to_lowercase()
                        ));
                    }
                    outcomes.push(job_outcome(
                        record,
                        &status_text(&state.status),
                        state.failure_messages,
                    ));
                }
                Err(BedrockError::NotFound(message)) => {
                    failures.push(format!(
                        "{}: Bedrock no longer knows the job ({message}); it may have been deleted",
                        describe(record)
                    ));
                    outcomes.push(job_outcome(record, "NotFound", vec![message]));
                }
                Err(source) => {
                    return Err(GatingError::Bedrock {
                        job_arn: record.job_arn.clone(),
                        source,
                    });
                }
            }
        }
        if running > 0 {
            return Ok(ReleaseOutcome::Waiting(format!(
                "{running} of {} job(s) still running",
                selection.counted.len()
            )));
        }
        if !failures.is_empty() {
            let verdict = gate::error_verdict(&subject, failures, None, outcomes, superseded);
            return self.record_error(verdict).await;
        }

        let (policy, policy_hash) = match self.read_policy(app).await? {
            PolicyRead::Ok { policy, hash } => (policy, hash),
            PolicyRead::Unusable(reason) => {
                let verdict =
                    gate::error_verdict(&subject, vec![reason], None, outcomes, superseded);
                return self.record_error(verdict).await;
            }
        };
        let decision = self
            .decide(
                &subject,
                &policy,
                &policy_hash,
                &selection.counted,
                outcomes,
                superseded,
            )
            .await?;
        self.record(decision).await
    }

    async fn decide(
        &self,
        subject: &Subject<'_>,
        policy: &Policy,
        policy_hash: &str,
        counted: &[JobRecord],
        mut outcomes: Vec<JobOutcome>,
        superseded: Vec<String>,
    ) -> Result<Decision, GatingError> {
        let (app, rel) = (subject.application, subject.release);
        let gates = &policy.gates;
        let include_prompt_text = policy.alerts.include_prompt_text;
        let error =
            |reasons: Vec<String>, outcomes: Vec<JobOutcome>, superseded: Vec<String>| Decision {
                verdict: gate::error_verdict(
                    subject,
                    reasons,
                    Some(policy_hash.to_owned()),
                    outcomes,
                    superseded,
                ),
                scores: None,
                namespace: policy.metrics_namespace.clone(),
                include_prompt_text,
            };

        let mut aggregator = Aggregator::new(aggregate_config(policy, include_prompt_text, true));

        for (i, record) in counted.iter().enumerate() {
            let prefix = match job_output_prefix(record, self.store.bucket()) {
                Ok(prefix) => prefix,
                Err(reason) => return Ok(error(vec![reason], outcomes, superseded)),
            };
            let files: Vec<String> = self
                .store
                .list(&prefix)
                .await?
                .into_iter()
                .map(|o| o.key)
                .filter(|k| k.ends_with("_output.jsonl"))
                .collect();
            if files.is_empty() {
                let reason = format!(
                    "{} completed but no *_output.jsonl result was found under {}",
                    describe(record),
                    self.uri(&prefix)
                );
                return Ok(error(vec![reason], outcomes, superseded));
            }
            let mut lines = 0;
            for key in &files {
                let uri = self.uri(key);
                let (_, reader) = self.store.open(key).await?;
                let read = read_results(reader, &uri, |r| {
                    aggregator.add(r).map_err(|e| e.to_string())
                })
                .await;
                match read {
                    Ok(n) => lines += n,
                    Err(e) if e.is_content() => {
                        let reason = format!("{}: results are unreadable: {e}", describe(record));
                        return Ok(error(vec![reason], outcomes, superseded));
                    }
                    Err(e) => return Err(GatingError::Read(e)),
                }
            }
            if let Some(outcome) = outcomes.get_mut(i) {
                outcome.results = lines;
                outcome.output_files = files.len() as u32;
            }
            let submitted = u64::from(record.prompts);
            if lines > submitted {
                let reason = format!(
                    "{}: Bedrock returned {lines} results for {submitted} submitted prompts; the results cannot be trusted",
                    describe(record)
                );
                return Ok(error(vec![reason], outcomes, superseded));
            }
            aggregator.add_missing(submitted - lines);
        }
        let mut aggregates = aggregator.finish();
        if aggregates.prompts == 0 {
            let reason = "the completed jobs returned no result at all".to_owned();
            return Ok(error(vec![reason], outcomes, superseded));
        }

        let mut notes = Vec::new();
        let usage = match self.read_usage(counted, gates).await? {
            Ok(usage) => usage,
            Err(problem) if gates.has_budgets() => {
                return Ok(error(vec![problem], outcomes, superseded));
            }
            Err(problem) => {
                notes.push(format!("cost and latency are not reported: {problem}"));
                None
            }
        };

        let baseline = self.baseline(app, rel, policy).await?;
        let baseline_ref = match &baseline {
            BaselineData::None => Baseline::None,
            BaselineData::Unavailable(why) => Baseline::Unavailable(why),
            BaselineData::Found {
                info,
                verdict,
                scores,
            } => Baseline::Found {
                info,
                verdict,
                scores: scores.as_ref().map_err(String::as_str),
            },
        };
        let verdict = gate::decide(
            &Inputs {
                application: app,
                release: rel,
                decided_at: subject.decided_at,
                policy,
                policy_hash,
                aggregates: &aggregates,
                usage: usage.as_ref(),
                baseline: baseline_ref,
                locations: subject.locations,
            },
            outcomes,
            superseded,
            notes,
        );
        Ok(Decision {
            verdict,
            scores: aggregates.prompt_scores.take(),
            namespace: policy.metrics_namespace.clone(),
            include_prompt_text,
        })
    }

    async fn read_policy(&self, application: &str) -> Result<PolicyRead, GatingError> {
        let key = layout::policy_key(application);
        let uri = self.uri(&key);
        let bytes = match self.store.get(&key).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => {
                return Ok(PolicyRead::Unusable(format!(
                    "the application's policy {uri} does not exist, so no gate can be applied; upload it (docs/policy.md)"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Ok(PolicyRead::Unusable(format!(
                "the application's policy {uri} is not UTF-8 text"
            )));
        };
        Ok(match Policy::parse(&uri, &text) {
            Ok(policy) => PolicyRead::Ok {
                policy: Box::new(policy),
                hash: policy::policy_hash(&text),
            },
            Err(e) => PolicyRead::Unusable(e.to_string()),
        })
    }

    /// Cost and latency from the counted jobs' metadata sidecars; `Ok(Err(problem))` when
    /// one cannot be used.
    async fn read_usage(
        &self,
        counted: &[JobRecord],
        gates: &crate::policy::GatesPolicy,
    ) -> Result<Result<Option<Usage>, String>, GatingError> {
        let prices = gates
            .budgets
            .prices
            .as_ref()
            .map(|p| (p.input_per_1k_tokens.value, p.output_per_1k_tokens.value));
        let mut usage = UsageAggregator::new(prices);
        let mut any = false;
        for record in counted {
            let Some(uri) = &record.metadata_uri else {
                continue;
            };
            let key = match layout::parse_s3_uri(uri) {
                Some((bucket, key)) if bucket == self.store.bucket() => key.to_owned(),
                _ => {
                    return Ok(Err(format!(
                        "{}: metadata sidecar {uri} is not in the evaluation bucket",
                        describe(record)
                    )));
                }
            };
            let reader = match self.store.open(&key).await {
                Ok((_, reader)) => reader,
                Err(e) if e.is_not_found() => {
                    return Ok(Err(format!(
                        "{}: metadata sidecar {uri} does not exist",
                        describe(record)
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            any = true;
            let mut lines = LineReader::new(reader, uri.clone());
            loop {
                let (number, bytes) = match lines.next_line().await {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(e) if e.is_content() => return Ok(Err(e.to_string())),
                    Err(e) => return Err(GatingError::Read(e)),
                };
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Err(message) = usage.add_line(bytes) {
                    return Ok(Err(lines.content_error(number, message).to_string()));
                }
            }
        }
        Ok(Ok(any.then(|| usage.finish())))
    }

    async fn baseline(
        &self,
        application: &str,
        release: &str,
        policy: &Policy,
    ) -> Result<BaselineData, GatingError> {
        let gates = &policy.gates;
        let (chosen, selection) = match gates.baseline_release() {
            Some(pinned) => {
                let Some(summary) = self.read_summary(application, pinned).await? else {
                    return Ok(BaselineData::Unavailable(format!(
                        "the pinned baseline release {pinned:?} (gates.regression.baseline_release) has no verdict"
                    )));
                };
                if summary.outcome != Outcome::Pass {
                    return Ok(BaselineData::Unavailable(format!(
                        "the pinned baseline release {pinned:?} did not pass its gate (its verdict is {})",
                        summary.outcome
                    )));
                }
                (pinned.to_owned(), "pinned")
            }
            None => {
                let verdicts = self.ledger().verdicts(application).await?;
                let Some(last) = verdicts
                    .iter()
                    .rev()
                    .find(|v| v.outcome == Outcome::Pass && v.release != release)
                else {
                    return Ok(BaselineData::None);
                };
                (last.release.clone(), "latest_pass")
            }
        };
        let key = layout::verdict_key(application, &chosen);
        let verdict_uri = self.uri(&key);
        let verdict: Verdict = match serde_json::from_slice(&self.store.get(&key).await?) {
            Ok(v) => v,
            Err(e) => {
                return Ok(BaselineData::Unavailable(format!(
                    "the baseline verdict {verdict_uri} is unreadable: {e}"
                )));
            }
        };
        let wants_scores = gates
            .resolved()
            .iter()
            .any(|m| m.max_regressed_prompts.is_some());
        let scores = if wants_scores {
            let key = layout::scores_key(application, &chosen);
            let uri = self.uri(&key);
            match self.store.open(&key).await {
                Ok((_, reader)) => match PromptScores::read_jsonl(reader, &uri).await {
                    Ok(scores) => Ok(scores),
                    Err(e) if e.is_content() => Err(format!("baseline scores are unreadable: {e}")),
                    Err(e) => return Err(GatingError::Read(e)),
                },
                Err(e) if e.is_not_found() => Err(format!(
                    "baseline {chosen} has no per-prompt scores ({uri})"
                )),
                Err(e) => return Err(e.into()),
            }
        } else {
            Err("not needed".to_owned())
        };
        Ok(BaselineData::Found {
            info: BaselineInfo {
                release: chosen,
                selection: selection.to_owned(),
                decided_at: verdict.decided_at,
                verdict_uri,
                prompt_scores: scores.is_ok(),
            },
            verdict: Box::new(verdict),
            scores,
        })
    }

    async fn read_summary(
        &self,
        application: &str,
        release: &str,
    ) -> Result<Option<VerdictSummary>, GatingError> {
        let key = layout::verdict_key(application, release);
        match self.store.get(&key).await {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the verdict once, then announces it. Only the invocation whose conditional
    /// write created `verdict.json` goes on to the report, metrics, event and close.
    async fn record(&self, decision: Decision) -> Result<ReleaseOutcome, GatingError> {
        let v = &decision.verdict;
        let (app, rel) = (v.application.as_str(), v.release.as_str());
        if let Some(scores) = &decision.scores {
            // Deterministic for a given set of results, so a leftover from an interrupted
            // run is the same object.
            self.store
                .put_if_absent(
                    &layout::scores_key(app, rel),
                    scores.to_jsonl(),
                    "application/x-ndjson",
                )
                .await?;
        }
        let body = serde_json::to_vec_pretty(v).unwrap_or_default();
        match self
            .store
            .put_if_absent(&layout::verdict_key(app, rel), body, "application/json")
            .await?
        {
            PutOutcome::AlreadyExists => {
                tracing::info!(
                    application = app,
                    release = rel,
                    "another invocation recorded this release's verdict first"
                );
                return Ok(ReleaseOutcome::AlreadyRecorded);
            }
            PutOutcome::Created => {}
        }
        tracing::info!(
            application = app,
            release = rel,
            outcome = %v.outcome,
            prompts = v.prompts,
            reasons = v.reasons.len(),
            "verdict recorded"
        );
        self.write_report(v).await?;
        // At most once: printed only by the run that created the verdict.
        for line in crate::emf::lines(v, &decision.namespace) {
            (self.emf)(&line);
        }
        self.announce(v, decision.include_prompt_text).await?;
        Ok(ReleaseOutcome::Decided(v.outcome))
    }

    /// Records an `error` verdict decided before the policy was needed; the policy (when
    /// usable) still names the metrics namespace.
    async fn record_error(&self, verdict: Verdict) -> Result<ReleaseOutcome, GatingError> {
        let namespace = match self.read_policy(&verdict.application).await? {
            PolicyRead::Ok { policy, .. } => policy.metrics_namespace,
            PolicyRead::Unusable(_) => policy::DEFAULT_METRICS_NAMESPACE.to_owned(),
        };
        self.record(Decision {
            verdict,
            scores: None,
            namespace,
            include_prompt_text: false,
        })
        .await
    }

    async fn write_report(&self, v: &Verdict) -> Result<(), GatingError> {
        self.store
            .put_if_absent(
                &layout::report_key(&v.application, &v.release),
                crate::report::render(v).into_bytes(),
                "text/markdown; charset=utf-8",
            )
            .await?;
        Ok(())
    }

    /// Publishes the `Gate Verdict` event, runs what follows a recorded verdict, and closes
    /// the release. Shared by the deciding run and the recovery of an interrupted one.
    async fn announce(&self, v: &Verdict, include_prompt_text: bool) -> Result<(), GatingError> {
        self.events
            .publish(&Event::GateVerdict(v.to_event(include_prompt_text)))
            .await?;
        self.after_verdict_recorded(v).await?;
        self.ledger()
            .close_release(&v.application, &v.release)
            .await?;
        Ok(())
    }

    /// The one place that follows a durably recorded and announced verdict. A `pass` makes
    /// the release eligible as a regression baseline and a rollback target (both read the
    /// verdicts), and is promoted when the policy says `release.promote: on_pass`.
    async fn after_verdict_recorded(&self, v: &Verdict) -> Result<(), GatingError> {
        if v.outcome == Outcome::Pass {
            tracing::info!(
                application = %v.application,
                release = %v.release,
                "release passed its gate: eligible as baseline and rollback target"
            );
            if let Some(promotion) = self.promotion {
                self.promote(promotion, v).await?;
            }
        }
        Ok(())
    }

    /// Points the release pointer at a release that just passed (`promote: on_pass`).
    /// Runs before the release is closed, so a retryable failure keeps it open and the
    /// recovery of an interrupted recording promotes it later; promotion itself is
    /// idempotent. A pointer that does not exist (or cannot be accessed) will not fix itself
    /// by retrying: it is logged as an error and the verdict stands unpromoted.
    async fn promote(&self, promotion: &dyn OnPass, v: &Verdict) -> Result<(), GatingError> {
        let (app, rel) = (v.application.as_str(), v.release.as_str());
        let policy = match self.read_policy(app).await? {
            PolicyRead::Ok { policy, .. } => policy,
            PolicyRead::Unusable(reason) => {
                tracing::warn!(application = app, release = rel, %reason, "the policy cannot be read now, so the release is not promoted");
                return Ok(());
            }
        };
        let Some(release) = policy
            .release
            .as_ref()
            .filter(|r| r.promote == Promote::OnPass)
        else {
            return Ok(());
        };
        let summary = VerdictSummary {
            application: v.application.clone(),
            release: v.release.clone(),
            outcome: v.outcome,
            decided_at: v.decided_at,
        };
        // Only a pass reaches here; `PassedVerdict` checks it again by construction.
        let Ok(passed) = PassedVerdict::new(&summary) else {
            return Ok(());
        };
        let verdict_uri = self.uri(&layout::verdict_key(app, rel));
        match promotion
            .promote_passed(&release.pointer_spec(), &passed, &verdict_uri, Utc::now())
            .await
        {
            Ok(Promotion::Promoted { previous, detail }) => {
                tracing::info!(application = app, release = rel, previous = ?previous, %detail, "promoted");
            }
            Ok(Promotion::AlreadyPromoted) => {
                tracing::info!(application = app, release = rel, "already promoted");
            }
            Ok(Promotion::Declined { reason }) => {
                tracing::warn!(application = app, release = rel, %reason, "promotion declined");
            }
            Err(PromotionError::Pointer(error)) if error.is_permanent() => {
                tracing::error!(application = app, release = rel, %error, "the release passed but cannot be promoted; fix release.pointer (or the function's permissions) and move the pointer by hand");
            }
            Err(error) => return Err(error.into()),
        }
        Ok(())
    }

    /// A verdict exists while the release is still open.
    async fn already_decided(
        &self,
        open: &OpenRelease,
        now: DateTime<Utc>,
    ) -> Result<ReleaseOutcome, GatingError> {
        let (app, rel) = (open.application.as_str(), open.release.as_str());
        let key = layout::verdict_key(app, rel);
        let bytes = self.store.get(&key).await?;
        let verdict: Verdict = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                // Not ours to repair: keep the release open and say so every run.
                return Ok(ReleaseOutcome::Waiting(format!(
                    "{} exists but is unreadable ({e}); inspect it",
                    self.uri(&key)
                )));
            }
        };
        if open.opened_at > verdict.decided_at {
            tracing::warn!(
                application = app,
                release = rel,
                decided_at = %verdict.decided_at,
                "a dataset was submitted for a release that already has its verdict; it is not gated. Upload it under a new release name"
            );
            self.ledger().close_release(app, rel).await?;
            return Ok(ReleaseOutcome::ClosedAfterVerdict);
        }
        if now - verdict.decided_at < RECOVERY_GRACE {
            return Ok(ReleaseOutcome::Waiting(
                "the verdict is being recorded by another invocation".to_owned(),
            ));
        }
        tracing::warn!(
            application = app,
            release = rel,
            "finishing an interrupted verdict recording (report, event, close)"
        );
        let include_prompt_text = match self.read_policy(app).await? {
            PolicyRead::Ok { policy, .. } => policy.alerts.include_prompt_text,
            PolicyRead::Unusable(_) => false,
        };
        self.write_report(&verdict).await?;
        self.announce(&verdict, include_prompt_text).await?;
        Ok(ReleaseOutcome::Recovered(verdict.outcome))
    }
}

enum BaselineData {
    None,
    Unavailable(String),
    Found {
        info: BaselineInfo,
        verdict: Box<Verdict>,
        scores: Result<PromptScores, String>,
    },
}

/// `<output prefix><jobName>/<jobId>/`, the prefix Bedrock writes a job's results under.
fn job_output_prefix(record: &JobRecord, bucket: &str) -> Result<String, String> {
    let (out_bucket, prefix) = layout::parse_s3_uri(&record.output_uri).ok_or_else(|| {
        format!(
            "{}: the recorded output location {:?} is not an s3:// URI",
            describe(record),
            record.output_uri
        )
    })?;
    if out_bucket != bucket {
        return Err(format!(
            "{}: results are in bucket {out_bucket}, not in the evaluation bucket {bucket}",
            describe(record)
        ));
    }
    let job_id = record
        .job_arn
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            format!(
                "{}: job ARN {} has no job id",
                describe(record),
                record.job_arn
            )
        })?;
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    };
    Ok(format!("{prefix}{}/{job_id}/", record.job_name))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use chrono::TimeZone;

    use super::*;
    use crate::events::{DatasetRef, RecordingPublisher};
    use crate::ledger::SCHEMA;
    use crate::store::memory::MemoryStore;

    /// Bedrock's answers, by job ARN (a fake for logic tests; e2e tests use bedrock-local).
    #[derive(Default)]
    struct FakeJobs {
        states: Mutex<HashMap<String, Result<JobState, BedrockError>>>,
    }

    impl FakeJobs {
        fn set(&self, arn: &str, status: JobStatus, messages: &[&str]) {
            self.states.lock().unwrap().insert(
                arn.to_owned(),
                Ok(JobState {
                    job_arn: arn.to_owned(),
                    job_name: "j".into(),
                    status,
                    failure_messages: messages.iter().map(|m| (*m).to_owned()).collect(),
                    output_uri: None,
                    created_at: None,
                }),
            );
        }
        fn fail(&self, arn: &str, error: BedrockError) {
            self.states
                .lock()
                .unwrap()
                .insert(arn.to_owned(), Err(error));
        }
    }

    impl EvaluationJobs for FakeJobs {
        async fn create_job(&self, _: &crate::bedrock::JobSpec) -> Result<String, BedrockError> {
            Err(BedrockError::Other("not used".into()))
        }
        async fn get_job(&self, arn: &str) -> Result<JobState, BedrockError> {
            self.states
                .lock()
                .unwrap()
                .get(arn)
                .cloned()
                .unwrap_or_else(|| Err(BedrockError::NotFound(arn.to_owned())))
        }
    }

    const BUCKET: &str = "eval-bucket";
    const POLICY: &str = "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\ngates:\n  min_scored: 3\n  regression: { max_regressed_prompts: 0 }\n  metrics:\n    Builtin.Correctness: { min_mean: 0.7, max_mean_drop: 0.2 }\n";

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .single()
            .unwrap()
            + Duration::minutes(minute)
    }

    struct World {
        store: MemoryStore,
        jobs: FakeJobs,
        events: RecordingPublisher,
        emf: Mutex<Vec<String>>,
    }

    impl World {
        fn new() -> Self {
            World {
                store: MemoryStore::new(BUCKET),
                jobs: FakeJobs::default(),
                events: RecordingPublisher::default(),
                emf: Mutex::new(Vec::new()),
            }
        }

        async fn put(&self, key: &str, body: &str) {
            self.store
                .put(key, body.as_bytes().to_vec(), "x")
                .await
                .unwrap();
        }

        /// Records shard `shard` of `count` of dataset `name` (upload `etag`) for `rel`, with
        /// its results already written when `scores` is given.
        async fn shard(
            &self,
            (rel, name, etag): (&str, &str, &str),
            shard: u32,
            count: u32,
            submitted: i64,
            scores: Option<&[(&str, Option<f64>)]>,
        ) -> String {
            let dataset_id = layout::dataset_id(name, etag);
            let job_name = layout::job_name("app", rel, &[BUCKET, name, etag], shard as usize - 1);
            let job_arn = format!(
                "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/{}",
                &layout::fingerprint(&[&job_name])[..12]
            );
            let output = layout::output_prefix("app", rel, &dataset_id);
            let prompts = scores.map_or(3, |s| s.len() as u32);
            let record = JobRecord {
                schema: SCHEMA,
                application: "app".into(),
                release: rel.into(),
                dataset: DatasetRef {
                    bucket: BUCKET.into(),
                    key: format!("datasets/app/{rel}/{name}.jsonl"),
                    etag: Some(etag.into()),
                    version_id: None,
                },
                dataset_id: dataset_id.clone(),
                shard,
                shard_count: count,
                prompts,
                shard_uri: layout::s3_uri(
                    BUCKET,
                    &layout::shard_key("app", rel, &dataset_id, shard as usize - 1),
                ),
                metadata_uri: None,
                output_uri: layout::s3_uri(BUCKET, &output),
                job_name: job_name.clone(),
                job_arn: job_arn.clone(),
                client_request_token: "t".into(),
                policy_hash: policy::policy_hash(POLICY),
                submitted_at: at(submitted),
            };
            let ledger = Ledger::new(&self.store);
            ledger.record_job(&record).await.unwrap();
            ledger
                .open_release("app", rel, at(submitted))
                .await
                .unwrap();
            self.jobs.set(&job_arn, JobStatus::InProgress, &[]);
            if let Some(scores) = scores {
                let lines: String = scores
                    .iter()
                    .map(|(prompt, score)| {
                        let result = score.map_or("null".to_owned(), |s| s.to_string());
                        format!("{{\"automatedEvaluationResult\":{{\"scores\":[{{\"metricName\":\"Builtin.Correctness\",\"result\":{result},\"evaluatorDetails\":[{{\"explanation\":\"e\"}}]}}]}},\"inputRecord\":{{\"prompt\":\"{prompt}\"}}}}\n")
                    })
                    .collect();
                let id = job_arn.rsplit('/').next().unwrap();
                self.put(&format!("{output}{job_name}/{id}/models/app/taskTypes/General/datasets/{name}/abc_output.jsonl"), &lines).await;
                self.jobs.set(&job_arn, JobStatus::Completed, &[]);
            }
            job_arn
        }

        fn gatekeeper<'a>(
            &'a self,
            emf: EmfSink<'a>,
        ) -> Gatekeeper<'a, MemoryStore, FakeJobs, RecordingPublisher> {
            Gatekeeper::new(&self.store, &self.jobs, &self.events, emf)
        }

        async fn run(&self, minute: i64) -> RunSummary {
            let emf = |line: &str| self.emf.lock().unwrap().push(line.to_owned());
            let gk = Gatekeeper::new(&self.store, &self.jobs, &self.events, &emf);
            gk.run(&Scope::All, at(minute), None).await.unwrap()
        }

        async fn verdict(&self, rel: &str) -> Verdict {
            serde_json::from_slice(
                &self
                    .store
                    .get(&layout::verdict_key("app", rel))
                    .await
                    .unwrap(),
            )
            .unwrap()
        }

        fn verdict_events(&self) -> Vec<crate::events::GateVerdict> {
            self.events
                .taken()
                .into_iter()
                .filter_map(|e| match e {
                    Event::GateVerdict(v) => Some(v),
                    _ => None,
                })
                .collect()
        }
    }

    fn results(prefix: &str, scores: &[f64]) -> Vec<(String, Option<f64>)> {
        scores
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("{prefix} {i}"), Some(*s)))
            .collect()
    }

    fn as_refs(rows: &[(String, Option<f64>)]) -> Vec<(&str, Option<f64>)> {
        rows.iter().map(|(p, s)| (p.as_str(), *s)).collect()
    }

    fn outcome(summary: &RunSummary, rel: &str) -> ReleaseOutcome {
        summary
            .releases
            .iter()
            .find(|r| r.release == rel)
            .unwrap_or_else(|| panic!("{rel} not in {summary:?}"))
            .result
            .clone()
            .unwrap()
    }

    #[test]
    fn output_keys_name_their_release() {
        assert_eq!(
            release_of_output_key(
                "evaluations/app/v1/smoke-1a2b3c4d/eg-app-v1-x-001/abcdefghijkl/models/m/taskTypes/General/datasets/smoke/u_output.jsonl"
            ),
            Some(("app".into(), "v1".into()))
        );
        assert_eq!(
            release_of_output_key(
                "evaluations/app/v1/x/amazon-bedrock-evaluations-permission-check"
            ),
            None
        );
        assert_eq!(
            release_of_output_key("datasets/app/v1/a_output.jsonl"),
            None
        );
    }

    #[tokio::test]
    async fn waits_for_every_shard_then_records_one_verdict_once() {
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        let rows = results("p", &[1.0, 0.75, 1.0]);
        w.shard(("v1", "smoke", "e1"), 1, 3, 0, Some(&as_refs(&rows)))
            .await;
        // Shard 2 is running, shard 3 not recorded yet.
        let second = w.shard(("v1", "smoke", "e1"), 2, 3, 0, None).await;
        let s = w.run(1).await;
        assert_eq!(
            outcome(&s, "v1"),
            ReleaseOutcome::Waiting(
                "1 shard(s) were never submitted (datasets/app/v1/smoke.jsonl shard 3 of 3)".into()
            )
        );
        let rows3 = results("q", &[1.0, 1.0, 0.75]);
        w.shard(("v1", "smoke", "e1"), 3, 3, 1, Some(&as_refs(&rows3)))
            .await;
        let s = w.run(2).await;
        assert_eq!(
            outcome(&s, "v1"),
            ReleaseOutcome::Waiting("1 of 3 job(s) still running".into())
        );
        assert!(
            w.store
                .head(&layout::verdict_key("app", "v1"))
                .await
                .unwrap()
                .is_none()
        );
        // Shard 2 finishes.
        let rows2 = results("r", &[0.75, 1.0, 1.0]);
        let id = second.rsplit('/').next().unwrap().to_owned();
        let job_name = layout::job_name("app", "v1", &[BUCKET, "smoke", "e1"], 1);
        let lines: String = rows2.iter().map(|(p, s)| format!("{{\"automatedEvaluationResult\":{{\"scores\":[{{\"metricName\":\"Builtin.Correctness\",\"result\":{}}}]}},\"inputRecord\":{{\"prompt\":\"{p}\"}}}}\n", s.unwrap())).collect();
        w.put(
            &format!(
                "{}{job_name}/{id}/x_output.jsonl",
                layout::output_prefix("app", "v1", &layout::dataset_id("smoke", "e1"))
            ),
            &lines,
        )
        .await;
        w.jobs.set(&second, JobStatus::Completed, &[]);
        let s = w.run(3).await;
        assert_eq!(outcome(&s, "v1"), ReleaseOutcome::Decided(Outcome::Pass));
        let v = w.verdict("v1").await;
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        assert_eq!((v.prompts, v.jobs.len()), (9, 3));
        assert_eq!(v.metrics["Builtin.Correctness"].scored, 9);
        assert!(
            w.store
                .head(&layout::report_key("app", "v1"))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            w.store
                .head(&layout::scores_key("app", "v1"))
                .await
                .unwrap()
                .is_some()
        );
        let events = w.verdict_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_key, "verdict/app/v1");
        let emf_count = w.emf.lock().unwrap().len();
        assert_eq!(emf_count, 2, "one metric line and one verdict line");
        assert!(
            Ledger::new(&w.store)
                .open_releases()
                .await
                .unwrap()
                .is_empty()
        );
        // The schedule runs again: nothing is written or emitted.
        let keys = w.store.keys();
        let s = w.run(10).await;
        assert!(s.releases.is_empty());
        assert_eq!(w.store.keys(), keys);
        assert!(w.verdict_events().is_empty());
        assert_eq!(w.emf.lock().unwrap().len(), emf_count);
    }

    #[tokio::test]
    async fn a_pass_is_promoted_when_the_policy_says_on_pass_and_nothing_else_is() {
        use crate::promotion::PointerPromotion;
        use crate::release::{MemoryPointer, PointerSpec};

        let promote_policy = |mode: &str| {
            format!(
                "{POLICY}release:\n  pointer:\n    ssm_parameter: /app/release\n  promote: {mode}\n"
            )
        };
        async fn run(w: &World, pointer: &MemoryPointer, minute: i64) -> RunSummary {
            let promotion = PointerPromotion {
                store: &w.store,
                publisher: &w.events,
                open: |spec: &PointerSpec| {
                    assert_eq!(
                        spec,
                        &PointerSpec::SsmParameter {
                            name: "/app/release".into()
                        }
                    );
                    pointer
                },
                promoted_by: "test".into(),
            };
            let emf = |_: &str| {};
            let mut gk = Gatekeeper::new(&w.store, &w.jobs, &w.events, &emf);
            gk.promotion = Some(&promotion);
            gk.run(&Scope::All, at(minute), None).await.unwrap()
        }
        let pointer = MemoryPointer::at(Some("v0"), Some(at(0)));

        // A pass with `promote: on_pass`: promoted, recorded, announced.
        let w = World::new();
        w.put("policies/app.yaml", &promote_policy("on_pass")).await;
        let good = results("p", &[1.0, 0.9, 1.0]);
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&good)))
            .await;
        let s = run(&w, &pointer, 1).await;
        assert_eq!(outcome(&s, "v1"), ReleaseOutcome::Decided(Outcome::Pass));
        assert_eq!(pointer.current().release.as_deref(), Some("v1"));
        let record = Ledger::new(&w.store)
            .promotion("app", "v1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            record.verdict_uri,
            format!("s3://{BUCKET}/verdicts/app/v1/verdict.json")
        );
        let kinds: Vec<&str> = w.events.taken().iter().map(|e| e.detail_type()).collect();
        assert_eq!(kinds, vec!["Gate Verdict", "Release Promoted"]);

        // A failing release is never promoted.
        let bad = results("q", &[0.1, 0.2, 0.1]);
        w.shard(("v2", "smoke", "e2"), 1, 1, 2, Some(&as_refs(&bad)))
            .await;
        let s = run(&w, &pointer, 3).await;
        assert_eq!(outcome(&s, "v2"), ReleaseOutcome::Decided(Outcome::Fail));
        assert_eq!(pointer.current().release.as_deref(), Some("v1"));
        assert!(
            Ledger::new(&w.store)
                .promotion("app", "v2")
                .await
                .unwrap()
                .is_none()
        );

        // `promote: manual` (the default): a pass is recorded, the pointer is not moved.
        let w = World::new();
        w.put("policies/app.yaml", &promote_policy("manual")).await;
        w.shard(("v3", "smoke", "e3"), 1, 1, 0, Some(&as_refs(&good)))
            .await;
        let s = run(&w, &pointer, 1).await;
        assert_eq!(outcome(&s, "v3"), ReleaseOutcome::Decided(Outcome::Pass));
        assert_eq!(pointer.current().release.as_deref(), Some("v1"));
        assert_eq!(pointer.moves().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_job_is_an_error_with_bedrocks_messages() {
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        let rows = results("p", &[1.0, 1.0, 1.0]);
        w.shard(("v1", "smoke", "e1"), 1, 2, 0, Some(&as_refs(&rows)))
            .await;
        let failed = w.shard(("v1", "smoke", "e1"), 2, 2, 0, None).await;
        w.jobs.set(
            &failed,
            JobStatus::Failed,
            &["The dataset file was not found"],
        );
        let s = w.run(1).await;
        assert_eq!(outcome(&s, "v1"), ReleaseOutcome::Decided(Outcome::Error));
        let v = w.verdict("v1").await;
        assert_eq!(v.reasons.len(), 1);
        assert!(
            v.reasons[0].contains("shard 2 of 2) failed: The dataset file was not found"),
            "{:?}",
            v.reasons
        );
        assert!(v.metrics.is_empty());
        assert_eq!(
            v.jobs[1].failure_messages,
            ["The dataset file was not found"]
        );
        assert_eq!(w.verdict_events()[0].outcome, Outcome::Error);
    }

    #[tokio::test]
    async fn unusable_policies_and_results_are_errors() {
        // No policy.
        let w = World::new();
        let rows = results("p", &[1.0, 1.0, 1.0]);
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        w.run(1).await;
        let v = w.verdict("v1").await;
        assert_eq!(v.outcome, Outcome::Error);
        assert!(
            v.reasons[0].contains("policies/app.yaml does not exist"),
            "{:?}",
            v.reasons
        );
        // An invalid policy.
        let w = World::new();
        w.put("policies/app.yaml", "version: 1\nevaluation: {}\n")
            .await;
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        w.run(1).await;
        let v = w.verdict("v1").await;
        assert_eq!(v.outcome, Outcome::Error);
        assert!(v.reasons[0].contains("is invalid"), "{:?}", v.reasons);
        // An unreadable results line.
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        let key = w
            .store
            .keys()
            .into_iter()
            .find(|k| k.ends_with("_output.jsonl"))
            .unwrap();
        let mut body = w.store.get(&key).await.unwrap();
        body.extend_from_slice(b"{truncated\n");
        w.store.put(&key, body, "x").await.unwrap();
        w.run(1).await;
        let v = w.verdict("v1").await;
        assert_eq!(v.outcome, Outcome::Error);
        assert!(
            v.reasons[0].contains("_output.jsonl line 4: not a Bedrock evaluation result"),
            "{:?}",
            v.reasons
        );
    }

    #[tokio::test]
    async fn transient_bedrock_errors_leave_the_release_open() {
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        let arn = w.shard(("v1", "smoke", "e1"), 1, 1, 0, None).await;
        w.jobs
            .fail(&arn, BedrockError::Transient("throttled".into()));
        let s = w.run(1).await;
        assert_eq!(s.failures(), 1);
        assert!(
            s.releases[0]
                .result
                .as_ref()
                .unwrap_err()
                .contains("throttled")
        );
        assert_eq!(
            Ledger::new(&w.store).open_releases().await.unwrap().len(),
            1
        );
        assert!(w.verdict_events().is_empty());
    }

    #[tokio::test]
    async fn regression_compares_with_the_previous_passing_release() {
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        let v1 = results("p", &[1.0, 1.0, 1.0, 1.0]);
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&v1)))
            .await;
        w.run(1).await;
        assert_eq!(w.verdict("v1").await.outcome, Outcome::Pass);
        // v2: one prompt drops from 1 to 0.5 (more than the 0.25 step), mean drop 0.125.
        let v2 = results("p", &[1.0, 0.5, 1.0, 1.0]);
        w.shard(("v2", "smoke", "e2"), 1, 1, 2, Some(&as_refs(&v2)))
            .await;
        w.run(3).await;
        let v = w.verdict("v2").await;
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        assert_eq!(v.baseline.as_ref().map(|b| b.release.as_str()), Some("v1"));
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("1 of 4 prompts shared with baseline v1 regressed")),
            "{:?}",
            v.reasons
        );
        // v3 is compared with v1 again (v2 failed), not with v2.
        w.shard(("v3", "smoke", "e3"), 1, 1, 4, Some(&as_refs(&v1)))
            .await;
        w.run(5).await;
        let v = w.verdict("v3").await;
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        assert_eq!(v.baseline.as_ref().map(|b| b.release.as_str()), Some("v1"));
    }

    #[tokio::test]
    async fn a_reupload_counts_only_the_latest_upload() {
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        let bad = results("p", &[0.0, 0.0, 0.0]);
        let good = results("p", &[1.0, 1.0, 1.0]);
        let old = w
            .shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&bad)))
            .await;
        w.shard(("v1", "smoke", "e2"), 1, 1, 1, Some(&as_refs(&good)))
            .await;
        w.run(2).await;
        let v = w.verdict("v1").await;
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        assert_eq!(v.prompts, 3);
        assert_eq!(v.superseded_jobs, [old]);
    }

    #[tokio::test]
    async fn deferred_shards_and_missing_shards_wait_then_time_out() {
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        let rows = results("p", &[1.0, 1.0, 1.0]);
        w.shard(("v1", "smoke", "e1"), 1, 2, 0, Some(&as_refs(&rows)))
            .await;
        let s = w.run(60).await;
        assert!(matches!(outcome(&s, "v1"), ReleaseOutcome::Waiting(_)));
        let s = w.run(7 * 60).await;
        assert_eq!(outcome(&s, "v1"), ReleaseOutcome::Decided(Outcome::Error));
        let v = w.verdict("v1").await;
        assert!(v.reasons[0].contains("shard 2 of 2"), "{:?}", v.reasons);
    }

    #[tokio::test]
    async fn a_lost_race_does_nothing_and_an_interrupted_recording_is_finished() {
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        let rows = results("p", &[1.0, 1.0, 1.0]);
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        // Another invocation wrote the verdict and died before announcing it.
        let sink = |line: &str| w.emf.lock().unwrap().push(line.to_owned());
        let gk = w.gatekeeper(&sink);
        let open = Ledger::new(&w.store)
            .open_releases()
            .await
            .unwrap()
            .remove(0);
        let other = World::new();
        other.put("policies/app.yaml", POLICY).await;
        other
            .shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        other.run(1).await;
        let written = other
            .store
            .get(&layout::verdict_key("app", "v1"))
            .await
            .unwrap();
        w.store
            .put(&layout::verdict_key("app", "v1"), written, "x")
            .await
            .unwrap();
        // Within the grace period: leave it to the invocation that may still be working.
        assert!(matches!(
            gk.gate_release(&open, at(5)).await.unwrap(),
            ReleaseOutcome::Waiting(_)
        ));
        assert!(w.verdict_events().is_empty());
        // After it: finish the recording once.
        assert_eq!(
            gk.gate_release(&open, at(30)).await.unwrap(),
            ReleaseOutcome::Recovered(Outcome::Pass)
        );
        assert_eq!(w.verdict_events().len(), 1);
        assert!(
            w.store
                .head(&layout::report_key("app", "v1"))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            Ledger::new(&w.store)
                .open_releases()
                .await
                .unwrap()
                .is_empty()
        );
        assert!(w.run(31).await.releases.is_empty());
        assert!(w.verdict_events().is_empty());
        // A concurrent invocation that loses the conditional write emits nothing.
        let decision = Decision {
            verdict: w.verdict("v1").await,
            scores: None,
            namespace: "n".into(),
            include_prompt_text: false,
        };
        assert_eq!(
            gk.record(decision).await.unwrap(),
            ReleaseOutcome::AlreadyRecorded
        );
        assert!(w.verdict_events().is_empty());
    }

    #[tokio::test]
    async fn a_release_reopened_after_its_verdict_is_closed_without_a_second_verdict() {
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        let rows = results("p", &[1.0, 1.0, 1.0]);
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        w.run(1).await;
        let first = w
            .store
            .get(&layout::verdict_key("app", "v1"))
            .await
            .unwrap();
        w.verdict_events();
        // A late dataset for the same release.
        w.shard(("v1", "late", "e9"), 1, 1, 2, Some(&as_refs(&rows)))
            .await;
        let s = w.run(3).await;
        assert_eq!(outcome(&s, "v1"), ReleaseOutcome::ClosedAfterVerdict);
        assert_eq!(
            w.store
                .get(&layout::verdict_key("app", "v1"))
                .await
                .unwrap(),
            first
        );
        assert!(w.verdict_events().is_empty());
    }

    #[tokio::test]
    async fn scopes_select_releases_by_segment() {
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        let rows = results("p", &[1.0, 1.0, 1.0]);
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        w.shard(("v 2", "smoke", "e2"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        let sink = |line: &str| w.emf.lock().unwrap().push(line.to_owned());
        let gk = w.gatekeeper(&sink);
        let scope = Scope::Segments(vec![("app".into(), layout::safe_segment("v 2"))]);
        let s = gk.run(&scope, at(1), None).await.unwrap();
        assert_eq!(s.releases.len(), 1);
        assert_eq!(s.releases[0].release, "v 2");
        // A deadline already passed defers everything.
        let s = gk
            .run(&Scope::All, at(1), Some(Instant::now()))
            .await
            .unwrap();
        assert_eq!((s.releases.len(), s.deferred_for_time), (0, 1));
    }

    #[tokio::test]
    async fn prompt_text_reaches_the_event_only_when_the_policy_allows_it() {
        for allowed in [false, true] {
            let w = World::new();
            let alerts = format!("alerts:\n  include_prompt_text: {allowed}\n");
            w.put("policies/app.yaml", &format!("{POLICY}{alerts}"))
                .await;
            let rows = results("secret prompt", &[0.0, 0.25, 0.0]);
            w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
                .await;
            w.run(1).await;
            let event = w.verdict_events().remove(0);
            assert_eq!(event.outcome, Outcome::Fail);
            assert_eq!(event.worst_prompts.len(), 3);
            let worst = &event.worst_prompts[0];
            assert_eq!(worst.score, Some(0.0));
            assert_eq!(worst.explanation, "e");
            assert_eq!(worst.prompt.is_some(), allowed, "{worst:?}");
            let stored = String::from_utf8(
                w.store
                    .get(&layout::verdict_key("app", "v1"))
                    .await
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(stored.contains("secret prompt"), allowed);
        }
    }

    /// Gives every recorded job of `rel` a metadata sidecar with these latencies.
    async fn with_metadata(w: &World, rel: &str, latencies: &[f64]) {
        let ledger = Ledger::new(&w.store);
        for mut record in ledger.jobs("app", rel).await.unwrap() {
            let key = format!("metadata/app/{rel}/{}/shard-0001.jsonl", record.dataset_id);
            let lines: String = latencies
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    format!("{{\"line\":{},\"prompt_hash\":\"h\",\"metadata\":{{\"latencyMs\":{l},\"inputTokens\":1000,\"outputTokens\":100}}}}\n", i + 1)
                })
                .collect();
            w.put(&key, &lines).await;
            record.metadata_uri = Some(layout::s3_uri(BUCKET, &key));
            let job_key = crate::ledger::job_key("app", rel, &record.job_name);
            w.put(&job_key, &serde_json::to_string(&record).unwrap())
                .await;
        }
    }

    #[tokio::test]
    async fn budgets_are_checked_from_the_metadata_sidecars() {
        let budgets = "  budgets:\n    latency_ms: { max_p95: 1000 }\n    cost_per_query: { max_mean: 0.01 }\n    prices: { input_per_1k_tokens: 0.003, output_per_1k_tokens: 0.015 }\n";
        let w = World::new();
        w.put("policies/app.yaml", &format!("{POLICY}{budgets}"))
            .await;
        let rows = results("p", &[1.0, 1.0, 1.0]);
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        with_metadata(&w, "v1", &[200.0, 300.0, 4000.0]).await;
        w.run(1).await;
        let v = w.verdict("v1").await;
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        let usage = v.usage.as_ref().unwrap();
        let latency = usage.latency_ms.as_ref().unwrap();
        assert!((latency.p95 - 4000.0).abs() <= 40.0, "{latency:?}");
        // 1000 × 0.003/1k + 100 × 0.015/1k = 0.0045 per query: within its budget.
        let cost = usage.cost_per_query.as_ref().unwrap();
        assert!((cost.mean - 0.0045).abs() < 1e-12, "{cost:?}");
        assert_eq!(v.reasons.len(), 1, "{:?}", v.reasons);
        assert!(v.reasons[0].starts_with("latency p95 "), "{:?}", v.reasons);
        assert!(
            v.reasons[0].ends_with("exceeds the budget 1000 ms (gates.budgets.latency_ms.max_p95)"),
            "{:?}",
            v.reasons
        );

        // A budget with a missing sidecar: the evaluation cannot be judged.
        let w = World::new();
        w.put("policies/app.yaml", &format!("{POLICY}{budgets}"))
            .await;
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        with_metadata(&w, "v1", &[200.0]).await;
        let sidecar = w
            .store
            .keys()
            .into_iter()
            .find(|k| k.starts_with("metadata/"))
            .unwrap();
        w.store.delete(&sidecar).await.unwrap();
        w.run(1).await;
        let v = w.verdict("v1").await;
        assert_eq!(v.outcome, Outcome::Error);
        assert!(
            v.reasons[0].contains("metadata sidecar") && v.reasons[0].contains("does not exist"),
            "{:?}",
            v.reasons
        );

        // Without budgets, the same missing sidecar only costs the cost/latency report.
        let w = World::new();
        w.put("policies/app.yaml", POLICY).await;
        w.shard(("v1", "smoke", "e1"), 1, 1, 0, Some(&as_refs(&rows)))
            .await;
        with_metadata(&w, "v1", &[200.0]).await;
        let sidecar = w
            .store
            .keys()
            .into_iter()
            .find(|k| k.starts_with("metadata/"))
            .unwrap();
        w.store.delete(&sidecar).await.unwrap();
        w.run(1).await;
        let v = w.verdict("v1").await;
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        assert!(v.usage.is_none());
        assert!(
            v.notes
                .iter()
                .any(|n| n.starts_with("cost and latency are not reported")),
            "{:?}",
            v.notes
        );
    }

    #[test]
    fn select_jobs_reports_missing_shards() {
        let record = |key: &str, id: &str, shard: u32, count: u32, minute: i64| JobRecord {
            schema: SCHEMA,
            application: "app".into(),
            release: "v1".into(),
            dataset: DatasetRef {
                bucket: BUCKET.into(),
                key: key.into(),
                etag: None,
                version_id: None,
            },
            dataset_id: id.into(),
            shard,
            shard_count: count,
            prompts: 1,
            shard_uri: String::new(),
            metadata_uri: None,
            output_uri: String::new(),
            job_name: format!("{id}-{shard}"),
            job_arn: format!("arn/{id}-{shard}"),
            client_request_token: String::new(),
            policy_hash: String::new(),
            submitted_at: at(minute),
        };
        let s = select_jobs(vec![
            record("a", "a-new", 2, 3, 5),
            record("a", "a-old", 1, 1, 0),
            record("a", "a-new", 1, 3, 5),
            record("b", "b-1", 1, 1, 0),
        ]);
        let counted: Vec<&str> = s.counted.iter().map(|r| r.job_name.as_str()).collect();
        assert_eq!(counted, ["a-new-1", "a-new-2", "b-1-1"]);
        assert_eq!(s.superseded.len(), 1);
        assert_eq!(s.missing, [("a".to_owned(), 3, 3)]);
    }
}
