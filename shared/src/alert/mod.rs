//! Alerts: what send-alert publishes to SNS for each evalgate event.
//!
//! Everything here except [`deliver`] and [`dedup`] is pure: [`render`] turns an event (typed,
//! or as received when this version cannot read it) and the application's `alerts` settings
//! into an [`Alert`]: severity, an SNS-safe subject, a plain-text body for email, a JSON
//! document for machine subscribers, the SNS message attributes subscribers filter on, and
//! the exact `MessageStructure=json` message that is published.
//!
//! An alert always fits SNS's 256 KiB publish limit (message plus attributes): when the full
//! rendering is too large, lists are cut (failing metrics stay first) and texts shortened,
//! step by step, and the alert says so. Rendering never fails.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::events::Event;
use crate::policy::AlertsPolicy;
use crate::policy::alerts::{AlertKind, SeverityOverrides};
use crate::verdict::Outcome;

pub mod dedup;
pub mod deliver;
mod format;
pub mod text;

/// SNS's publish limit for a standard topic: message body plus message attributes.
pub const SNS_MAX_PUBLISH_BYTES: usize = 262_144;

/// What [`render`] aims for: the limit minus room for any accounting difference (SNS counts
/// attribute names, types and values; we count those and the subject).
pub const PUBLISH_BUDGET: usize = SNS_MAX_PUBLISH_BYTES - 4_096;

/// How loud an alert is. Ordered: `Info < Warning < High < Critical`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Things going as planned (a release passed, a job was submitted).
    #[default]
    Info,
    /// Needs a look soon (a dataset was rejected, a verdict was inconclusive).
    Warning,
    /// A release is blocked or an evaluation broke.
    High,
    /// Production changed, or should have and did not (rollbacks).
    Critical,
}

impl Severity {
    /// The attribute value: `info`, `warning`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The subject tag: `INFO`, `WARNING`, `HIGH`, `CRITICAL`.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// 1 (info) to 4 (critical), for numeric filter policies (`severity_level >= 2`).
    pub fn level(self) -> u8 {
        match self {
            Severity::Info => 1,
            Severity::Warning => 2,
            Severity::High => 3,
            Severity::Critical => 4,
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's detail as send-alert received it.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// A kind this version knows, read into its type.
    Known(&'a Event),
    /// An evalgate detail-type this version does not know, or a known one whose detail could
    /// not be read (`problem` says why). Still alerted, with its fields as received.
    Unreadable {
        detail: &'a Value,
        problem: Option<&'a str>,
    },
}

/// One EventBridge event to alert on.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// EventBridge's event id (the de-duplication key).
    pub event_id: &'a str,
    pub detail_type: &'a str,
    pub time: Option<DateTime<Utc>>,
    /// For console links when an ARN does not name its own region.
    pub region: &'a str,
    pub body: Body<'a>,
}

impl Source<'_> {
    /// The application the event is about, when it names one.
    pub fn application(&self) -> Option<&str> {
        match self.body {
            Body::Known(event) => event.application(),
            Body::Unreadable { detail, .. } => detail.get("application").and_then(Value::as_str),
        }
    }

    /// The detail's logical identity (`eventKey`), when it has one.
    pub fn event_key(&self) -> Option<&str> {
        match self.body {
            Body::Known(event) => Some(event.event_key()),
            Body::Unreadable { detail, .. } => detail.get("eventKey").and_then(Value::as_str),
        }
    }
}

/// The built-in severity of an event (see `docs/alerts.md`).
pub fn default_severity(source: &Source<'_>) -> Severity {
    severity(source, &SeverityOverrides::default())
}

/// The severity of an event under an application's overrides.
pub fn severity(source: &Source<'_>, overrides: &SeverityOverrides) -> Severity {
    match source.body {
        Body::Known(event) => overrides.severity(match event {
            Event::GateVerdict(v) => match v.outcome {
                Outcome::Pass => AlertKind::GatePass,
                Outcome::Fail => AlertKind::GateFail,
                Outcome::Inconclusive => AlertKind::GateInconclusive,
                Outcome::Error => AlertKind::GateError,
            },
            Event::DatasetRejected(_) => AlertKind::DatasetRejected,
            Event::EvaluationSubmitted(_) => AlertKind::EvaluationSubmitted,
            Event::EvaluationDeferred(_) => AlertKind::EvaluationDeferred,
            Event::ReleasePromoted(_) => AlertKind::ReleasePromoted,
            Event::RollbackExecuted(_) => AlertKind::RollbackExecuted,
            Event::RollbackSkipped(_) => AlertKind::RollbackSkipped,
        }),
        Body::Unreadable { .. } => unreadable_severity(source.detail_type, overrides),
    }
}

/// Severity of an event this version could not read. For a known kind whose detail is
/// malformed we cannot tell the outcome, so it is the worst that kind can be (at least
/// `warning`: a malformed event is itself worth a look); unknown kinds get `other`
/// (default `warning`).
fn unreadable_severity(detail_type: &str, o: &SeverityOverrides) -> Severity {
    let kinds: &[AlertKind] = match detail_type {
        Event::GATE_VERDICT => &[
            AlertKind::GatePass,
            AlertKind::GateFail,
            AlertKind::GateInconclusive,
            AlertKind::GateError,
        ],
        Event::ROLLBACK_EXECUTED => &[AlertKind::RollbackExecuted],
        Event::ROLLBACK_SKIPPED => &[AlertKind::RollbackSkipped],
        Event::DATASET_REJECTED => &[AlertKind::DatasetRejected],
        Event::EVALUATION_SUBMITTED => &[AlertKind::EvaluationSubmitted],
        Event::EVALUATION_DEFERRED => &[AlertKind::EvaluationDeferred],
        Event::RELEASE_PROMOTED => &[AlertKind::ReleasePromoted],
        _ => return o.severity(AlertKind::Other),
    };
    kinds
        .iter()
        .map(|k| o.severity(*k))
        .max()
        .unwrap_or(Severity::Warning)
        .max(Severity::Warning)
}

/// One SNS message attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribute {
    pub name: &'static str,
    /// `String` or `Number`.
    pub data_type: &'static str,
    pub value: String,
}

/// A rendered alert, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub severity: Severity,
    /// The EventBridge detail-type.
    pub kind: String,
    pub application: Option<String>,
    pub release: Option<String>,
    /// Printable ASCII, at most [`text::MAX_SUBJECT`] characters.
    pub subject: String,
    /// The plain-text body (the `email` variant).
    pub text: String,
    /// The JSON document for machine subscribers (the `default` variant).
    pub document: Value,
    /// `severity`, `severity_level`, `application`, `kind` and, for verdicts, `outcome`.
    pub attributes: Vec<Attribute>,
    /// The `MessageStructure=json` message: `default`, `email` and `sms` variants.
    pub message: String,
    /// Bytes SNS counts against its limit (message, subject and attributes).
    pub size: usize,
    /// True when content was left out or cut to fit the size limit.
    pub shortened: bool,
}

/// How much of each list and text an alert carries. Renderings go down this ladder until
/// one fits the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Rows of the metrics table.
    pub metrics: usize,
    /// Items of other lists (reasons, problems, job ARNs).
    pub list: usize,
    /// Worst prompts quoted.
    pub prompts: usize,
    /// Characters of free texts (explanations, reasons, problems, prompt text).
    pub text: usize,
    /// Characters of any other string (names, URIs).
    pub field: usize,
    /// Fields listed for events this version cannot read.
    pub fields: usize,
}

const LADDER: [Limits; 5] = [
    Limits {
        metrics: 500,
        list: 20,
        prompts: 10,
        text: 600,
        field: 2048,
        fields: 60,
    },
    Limits {
        metrics: 200,
        list: 10,
        prompts: 5,
        text: 300,
        field: 512,
        fields: 30,
    },
    Limits {
        metrics: 50,
        list: 5,
        prompts: 3,
        text: 200,
        field: 256,
        fields: 15,
    },
    Limits {
        metrics: 15,
        list: 3,
        prompts: 1,
        text: 120,
        field: 128,
        fields: 8,
    },
    Limits {
        metrics: 5,
        list: 1,
        prompts: 0,
        text: 80,
        field: 96,
        fields: 4,
    },
];

/// What the renderer needs besides the event.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub alerts: &'a AlertsPolicy,
    /// Set when the application's policy could not be used: says what happened (it is
    /// printed in the alert; the defaults were applied).
    pub policy_note: Option<&'a str>,
    /// Where the policy lives (`s3://…`), for the footer.
    pub policy_uri: Option<&'a str>,
}

/// Renders an event as an alert that fits SNS's limit.
pub fn render(source: &Source<'_>, settings: &Settings<'_>) -> Alert {
    let severity = severity(source, &settings.alerts.severity);
    for (step, limits) in LADDER.iter().enumerate() {
        let draft = format::draft(source, settings, severity, limits);
        let alert = assemble(source, settings, severity, draft, step > 0);
        if alert.size <= PUBLISH_BUDGET {
            return alert;
        }
    }
    // Absurd inputs (megabyte names): the smallest rendering, with every string clamped.
    let mut draft = format::draft(source, settings, severity, &format::MINIMAL);
    draft.detail = Value::Null;
    let alert = assemble(source, settings, severity, draft, true);
    if alert.size <= PUBLISH_BUDGET {
        return alert;
    }
    last_resort(source, severity)
}

/// The rendering of an event, before assembly into the published form.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub subject: String,
    /// One sentence: what happened.
    pub headline: String,
    pub application: Option<String>,
    pub release: Option<String>,
    pub outcome: Option<&'static str>,
    /// The body's sections after the header lines.
    pub body: String,
    pub links: BTreeMap<&'static str, String>,
    /// The detail as carried in the JSON document (limited like the text).
    pub detail: Value,
    /// Items left out, per list (`metrics`, `reasons`, …).
    pub omitted: BTreeMap<&'static str, usize>,
}

fn attributes(
    severity: Severity,
    kind: &str,
    application: Option<&str>,
    outcome: Option<&str>,
) -> Vec<Attribute> {
    // Attribute values must not be empty; long ones are cut (they count against the limit).
    let application = application
        .map(|a| text::one_line(a, 256))
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "(unknown)".to_owned());
    let kind = Some(text::one_line(kind, 128))
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "(unknown)".to_owned());
    let mut out = vec![
        Attribute {
            name: "severity",
            data_type: "String",
            value: severity.as_str().to_owned(),
        },
        Attribute {
            name: "severity_level",
            data_type: "Number",
            value: severity.level().to_string(),
        },
        Attribute {
            name: "application",
            data_type: "String",
            value: application,
        },
        Attribute {
            name: "kind",
            data_type: "String",
            value: kind,
        },
    ];
    if let Some(outcome) = outcome {
        out.push(Attribute {
            name: "outcome",
            data_type: "String",
            value: outcome.to_owned(),
        });
    }
    out
}

fn publish_size(message: &str, subject: &str, attributes: &[Attribute]) -> usize {
    message.len()
        + subject.len()
        + attributes
            .iter()
            .map(|a| a.name.len() + a.data_type.len() + a.value.len())
            .sum::<usize>()
}

fn assemble(
    source: &Source<'_>,
    settings: &Settings<'_>,
    severity: Severity,
    draft: Draft,
    shortened: bool,
) -> Alert {
    let mut text = String::new();
    text.push_str(&draft.headline);
    text.push_str("\n\n");
    push_field(&mut text, "Severity", severity.label());
    if let Some(app) = &draft.application {
        push_field(&mut text, "Application", app);
    }
    if let Some(release) = &draft.release {
        push_field(&mut text, "Release", release);
    }
    text.push_str(&draft.body);
    let omitted: usize = draft.omitted.values().sum();
    if shortened || omitted > 0 {
        text.push('\n');
        if shortened {
            text.push_str(
                "This alert was shortened to fit the SNS message size limit; the report has everything.\n",
            );
        } else {
            text.push_str("Lists above are cut to their first items; the report has everything.\n");
        }
    }
    if let Some(note) = settings.policy_note {
        text.push('\n');
        text.push_str("Note: ");
        text.push_str(note);
        text.push('\n');
    }
    text.push_str("\n--\n");
    text.push_str(&format!(
        "evalgate {} event {}",
        text::one_line(source.detail_type, 128),
        text::one_line(source.event_id, 128)
    ));
    if let Some(time) = source.time {
        text.push_str(&format!(" at {}", time.format("%Y-%m-%dT%H:%M:%SZ")));
    }
    text.push('\n');
    if let Some(key) = source.event_key() {
        text.push_str(&format!("Event key: {}\n", text::one_line(key, 512)));
    }
    if settings.policy_note.is_none()
        && let Some(uri) = settings.policy_uri
    {
        text.push_str(&format!(
            "Alert settings: {} (min_severity {})\n",
            text::one_line(uri, 1100),
            settings.alerts.min_severity
        ));
    }

    let mut document = json!({
        "version": 1,
        "source": crate::events::SOURCE,
        "eventId": source.event_id,
        "kind": source.detail_type,
        "severity": severity.as_str(),
        "severityLevel": severity.level(),
        "subject": draft.subject,
        "headline": draft.headline,
        "text": text,
        "links": draft.links,
        "shortened": shortened,
        "detail": draft.detail,
    });
    if let Value::Object(map) = &mut document {
        let mut set = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                map.insert(k.to_owned(), v);
            }
        };
        set("eventKey", source.event_key().map(|k| json!(k)));
        set(
            "time",
            source
                .time
                .map(|t| json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())),
        );
        set("application", draft.application.as_ref().map(|a| json!(a)));
        set("release", draft.release.as_ref().map(|r| json!(r)));
        set("outcome", draft.outcome.map(|o| json!(o)));
        set("policyNote", settings.policy_note.map(|n| json!(n)));
        if !draft.omitted.is_empty() {
            set("omitted", Some(json!(draft.omitted)));
        }
    }

    let attributes = attributes(
        severity,
        source.detail_type,
        draft.application.as_deref(),
        draft.outcome,
    );
    let message = json!({
        "default": document.to_string(),
        "email": text,
        "sms": draft.subject,
    })
    .to_string();
    let size = publish_size(&message, &draft.subject, &attributes);
    Alert {
        severity,
        kind: source.detail_type.to_owned(),
        application: draft.application,
        release: draft.release,
        subject: draft.subject,
        text,
        document,
        attributes,
        message,
        size,
        shortened,
    }
}

/// A fixed-size alert for inputs nothing else fits (never expected in practice).
fn last_resort(source: &Source<'_>, severity: Severity) -> Alert {
    let kind = text::one_line(source.detail_type, 64);
    let id = text::one_line(source.event_id, 128);
    let subject = text::subject(&[
        text::Part::Fixed(&format!("[{}] evalgate ", severity.label())),
        text::Part::Name(&kind),
    ]);
    let text = format!(
        "evalgate emitted a {kind} event (id {id}) too large to describe here.\n\nSeverity:    {}\n\nLook it up in the evaluation bucket's reports and ledger.\n",
        severity.label()
    );
    let document = json!({
        "version": 1, "source": crate::events::SOURCE, "eventId": id, "kind": kind,
        "severity": severity.as_str(), "severityLevel": severity.level(), "subject": subject,
        "headline": text.lines().next().unwrap_or_default(), "text": text, "links": {},
        "shortened": true, "detail": null,
    });
    let attributes = attributes(severity, &kind, None, None);
    let message =
        json!({"default": document.to_string(), "email": text, "sms": subject}).to_string();
    let size = publish_size(&message, &subject, &attributes);
    Alert {
        severity,
        kind,
        application: None,
        release: None,
        subject,
        text,
        document,
        attributes,
        message,
        size,
        shortened: true,
    }
}

/// `Label:` padded so values line up, then the value.
pub(crate) fn push_field(out: &mut String, label: &str, value: &str) {
    let label = format!("{label}:");
    out.push_str(&format!("{label:<13}{value}\n"));
}

#[cfg(test)]
mod tests;
