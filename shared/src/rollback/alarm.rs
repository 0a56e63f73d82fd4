//! The CloudWatch `Alarm State Change` event, read leniently.
//!
//! EventBridge delivers (source `aws.cloudwatch`, detail-type `CloudWatch Alarm State Change`):
//!
//! ```json
//! {"id": "c4c1…", "time": "2019-10-02T17:04:40Z", "resources": ["arn:…:alarm:ServerCpuTooHigh"],
//!  "detail": {"alarmName": "ServerCpuTooHigh",
//!    "state": {"value": "ALARM", "reason": "Threshold Crossed: 1 out of the last 1 datapoints …",
//!              "reasonData": "{\"version\":\"1.0\",\"period\":300,\"threshold\":50.0,\"recentDatapoints\":[99.5],
//!                              \"evaluatedDatapoints\":[{\"timestamp\":\"…\",\"value\":99.5}]}",
//!              "timestamp": "2019-10-02T17:04:40.989+0000"},
//!    "previousState": {"value": "OK", …},
//!    "configuration": {"metrics": [{"id": "…", "metricStat": {"metric": {"namespace": "AWS/EC2",
//!                      "name": "CPUUtilization", "dimensions": {…}}, "period": 300, "stat": "Average"}}]}}}
//! ```
//!
//! `aws_lambda_events`' typed alarm structs require fields real events omit (a `threshold`
//! in anomaly-band reason data, a `metricStat` in metric-math alarms) and fail the whole
//! event when they are missing. Here every part of the detail except the alarm name is
//! optional: missing data is not a failure, it is just less evidence.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::events::AlarmRef;

/// The EventBridge `source` of alarm events.
pub const SOURCE: &str = "aws.cloudwatch";
/// The EventBridge `detail-type` of alarm state changes.
pub const DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// The alarm event cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AlarmEventError {
    #[error(
        "evaluate-rollback handles {DETAIL_TYPE:?} events from {SOURCE:?}; got {detail_type:?} from {event_source:?}. Check the EventBridge rule that targets this function"
    )]
    NotAnAlarmStateChange {
        event_source: String,
        detail_type: String,
    },
    #[error(
        "the alarm event has no id; EventBridge always sets one, so this event did not come from EventBridge"
    )]
    MissingId,
    #[error("the alarm event's detail is not a CloudWatch alarm state change: {0}")]
    Malformed(String),
}

/// An alarm's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmState {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub value: String,
    pub reason: Option<String>,
    /// When the alarm entered this state.
    pub timestamp: Option<DateTime<Utc>>,
}

/// Which side of the threshold breaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    /// Anomaly detection: outside the band.
    OutsideBand,
    /// Not stated: every datapoint with a value counts (the alarm itself judged them).
    Unknown,
}

/// What the alarm's reason data says about the breach.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Datapoints with a value on the alarm side of the threshold.
    pub breaching: u32,
    /// Evaluated datapoints without a value (missing data: neither breaching nor a failure).
    pub missing: u32,
    /// The metric period, when known.
    pub period: Option<Duration>,
    pub comparison: Comparison,
    pub threshold: Option<f64>,
    /// Breaching values, most recent first (at most 5, for messages).
    pub values: Vec<f64>,
}

impl Evidence {
    /// How long the reported breach lasted: breaching datapoints × period.
    pub fn breach_duration(&self) -> Option<Duration> {
        self.period.map(|p| p * self.breaching)
    }
}

/// One alarm state change, as evalgate uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmChange {
    /// The EventBridge event id: re-deliveries of the same event carry the same id.
    pub event_id: String,
    pub event_time: Option<DateTime<Utc>>,
    pub name: String,
    pub arn: Option<String>,
    pub state: AlarmState,
    pub previous: Option<AlarmState>,
    /// From the new state's reason data; `None` when it has no datapoints (composite
    /// alarms, or reason data missing).
    pub evidence: Option<Evidence>,
    /// What the alarm watches, e.g. `AWS/Lambda Errors FunctionName=bot`.
    pub metrics: Vec<String>,
}

impl AlarmChange {
    /// Whether this change is a transition into `ALARM`.
    pub fn enters_alarm(&self) -> bool {
        self.state.value == "ALARM" && self.previous.as_ref().is_none_or(|p| p.value != "ALARM")
    }

    /// When the alarm's current state began: the state timestamp, else the event time.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.state.timestamp.or(self.event_time)
    }

    /// The alarm as events and records carry it.
    pub fn to_ref(&self) -> AlarmRef {
        AlarmRef {
            name: self.name.clone(),
            arn: self.arn.clone(),
            state: self.state.value.clone(),
            previous_state: self.previous.as_ref().map(|p| p.value.clone()),
            reason: self.state.reason.clone(),
            since: self
                .since()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            metrics: self.metrics.clone(),
            event_id: self.event_id.clone(),
        }
    }

    /// Reads an EventBridge alarm event (the whole envelope).
    pub fn from_event(event: &Value) -> Result<AlarmChange, AlarmEventError> {
        let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default();
        if text("source") != SOURCE || text("detail-type") != DETAIL_TYPE {
            return Err(AlarmEventError::NotAnAlarmStateChange {
                event_source: text("source").to_owned(),
                detail_type: text("detail-type").to_owned(),
            });
        }
        let event_id = text("id");
        if event_id.is_empty() {
            return Err(AlarmEventError::MissingId);
        }
        let detail = event.get("detail").cloned().unwrap_or(Value::Null);
        let detail: RawDetail = serde_json::from_value(detail)
            .map_err(|e| AlarmEventError::Malformed(e.to_string()))?;
        if detail.alarm_name.trim().is_empty() {
            return Err(AlarmEventError::Malformed("alarmName is empty".into()));
        }
        let Some(state) = detail.state else {
            return Err(AlarmEventError::Malformed("the detail has no state".into()));
        };
        let evidence = evidence(&state, detail.configuration.as_ref());
        let arn = event
            .get("resources")
            .and_then(Value::as_array)
            .and_then(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .find(|a| a.contains(":alarm:"))
            })
            .map(str::to_owned);
        Ok(AlarmChange {
            event_id: event_id.to_owned(),
            event_time: event
                .get("time")
                .and_then(Value::as_str)
                .and_then(parse_time),
            name: detail.alarm_name,
            arn,
            state: state.to_state(),
            previous: detail.previous_state.map(|p| p.to_state()),
            evidence,
            metrics: detail
                .configuration
                .as_ref()
                .map(metrics_of)
                .unwrap_or_default(),
        })
    }
}

/// CloudWatch writes `2019-10-02T17:04:40.989+0000`; EventBridge writes RFC 3339.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDetail {
    alarm_name: String,
    #[serde(default)]
    state: Option<RawState>,
    #[serde(default)]
    previous_state: Option<RawState>,
    #[serde(default)]
    configuration: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawState {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    /// A JSON document in a string (sometimes an object).
    #[serde(default)]
    reason_data: Option<Value>,
    #[serde(default)]
    timestamp: Option<String>,
}

impl RawState {
    fn to_state(&self) -> AlarmState {
        AlarmState {
            value: self.value.clone().unwrap_or_default(),
            reason: self.reason.clone(),
            timestamp: self.timestamp.as_deref().and_then(parse_time),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawReasonData {
    #[serde(default)]
    period: Option<f64>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    recent_datapoints: Vec<Option<f64>>,
    #[serde(default)]
    recent_lower_thresholds: Vec<Option<f64>>,
    #[serde(default)]
    recent_upper_thresholds: Vec<Option<f64>>,
    #[serde(default)]
    evaluated_datapoints: Vec<RawDatapoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDatapoint {
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    threshold: Option<f64>,
}

fn comparison_of(reason: &str, band: bool) -> Comparison {
    if band {
        return Comparison::OutsideBand;
    }
    // CloudWatch: "… [99.5 (02/10/19 16:59:00)] was greater than the threshold (50.0) …"
    let reason = reason.to_ascii_lowercase();
    if reason.contains("greater than or equal to") {
        Comparison::GreaterOrEqual
    } else if reason.contains("greater than") {
        Comparison::Greater
    } else if reason.contains("less than or equal to") {
        Comparison::LessOrEqual
    } else if reason.contains("less than") {
        Comparison::Less
    } else {
        Comparison::Unknown
    }
}

fn breaches(comparison: Comparison, value: f64, threshold: Option<f64>) -> bool {
    match (comparison, threshold) {
        (Comparison::Greater, Some(t)) => value > t,
        (Comparison::GreaterOrEqual, Some(t)) => value >= t,
        (Comparison::Less, Some(t)) => value < t,
        (Comparison::LessOrEqual, Some(t)) => value <= t,
        // Unknown side or threshold: the alarm evaluated this datapoint into ALARM.
        _ => true,
    }
}

fn evidence(state: &RawState, configuration: Option<&Value>) -> Option<Evidence> {
    let data: RawReasonData = match state.reason_data.as_ref()? {
        Value::String(text) => serde_json::from_str(text).ok()?,
        object @ Value::Object(_) => serde_json::from_value(object.clone()).ok()?,
        _ => return None,
    };
    let band = !data.recent_lower_thresholds.is_empty() || !data.recent_upper_thresholds.is_empty();
    let comparison = comparison_of(state.reason.as_deref().unwrap_or_default(), band);
    let period = data
        .period
        .filter(|p| p.is_finite() && *p > 0.0)
        .or_else(|| configuration.and_then(config_period))
        .map(Duration::from_secs_f64);

    let mut breaching_values = Vec::new();
    let mut missing = 0u32;
    if band {
        for (i, value) in data.recent_datapoints.iter().enumerate() {
            let Some(value) = value else {
                missing += 1;
                continue;
            };
            let lower = data.recent_lower_thresholds.get(i).copied().flatten();
            let upper = data.recent_upper_thresholds.get(i).copied().flatten();
            let outside = lower.is_some_and(|l| *value < l) || upper.is_some_and(|u| *value > u);
            if outside || (lower.is_none() && upper.is_none()) {
                breaching_values.push(*value);
            }
        }
    } else if !data.evaluated_datapoints.is_empty() {
        for dp in &data.evaluated_datapoints {
            match dp.value {
                None => missing += 1,
                Some(v) if breaches(comparison, v, dp.threshold.or(data.threshold)) => {
                    breaching_values.push(v)
                }
                Some(_) => {}
            }
        }
    } else {
        for value in &data.recent_datapoints {
            match value {
                None => missing += 1,
                Some(v) if breaches(comparison, *v, data.threshold) => breaching_values.push(*v),
                Some(_) => {}
            }
        }
    }
    if breaching_values.is_empty() && missing == 0 {
        // No datapoints at all: nothing to go on (not "zero breaching datapoints").
        return None;
    }
    Some(Evidence {
        breaching: u32::try_from(breaching_values.len()).unwrap_or(u32::MAX),
        missing,
        period,
        comparison,
        threshold: data.threshold,
        values: breaching_values.into_iter().take(5).collect(),
    })
}

fn config_period(configuration: &Value) -> Option<f64> {
    configuration
        .get("metrics")?
        .as_array()?
        .iter()
        .filter_map(|m| m.pointer("/metricStat/period")?.as_f64())
        .find(|p| *p > 0.0)
}

/// `namespace name dim=value,…` per metric, or the expression for metric math; the alarm
/// rule for composite alarms.
fn metrics_of(configuration: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(metrics) = configuration.get("metrics").and_then(Value::as_array) {
        for m in metrics {
            if let Some(metric) = m.pointer("/metricStat/metric") {
                let field = |k: &str| metric.get(k).and_then(Value::as_str).unwrap_or_default();
                let mut text = format!("{} {}", field("namespace"), field("name"))
                    .trim()
                    .to_owned();
                if let Some(dims) = metric.get("dimensions").and_then(Value::as_object) {
                    let dims: Vec<String> = dims
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    if !dims.is_empty() {
                        text.push(' ');
                        text.push_str(&dims.join(","));
                    }
                }
                out.push(text);
            } else if let Some(expression) = m.get("expression").and_then(Value::as_str) {
                out.push(expression.to_owned());
            }
        }
    }
    if out.is_empty()
        && let Some(rule) = configuration.get("alarmRule").and_then(Value::as_str)
    {
        out.push(rule.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The single-metric example from the CloudWatch documentation.
    fn documented_event() -> Value {
        json!({
            "version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
            "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "account": "123456789012", "time": "2019-10-02T17:04:40Z", "region": "us-east-1",
            "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"],
            "detail": {
                "alarmName": "ServerCpuTooHigh",
                "configuration": {
                    "description": "Goes into alarm when server CPU utilization is too high!",
                    "metrics": [{
                        "id": "30b6c6b2-a864-43a2-4877-c09a1afc3b87",
                        "metricStat": {
                            "metric": {"dimensions": {"InstanceId": "i-12345678901234567"},
                                       "name": "CPUUtilization", "namespace": "AWS/EC2"},
                            "period": 300, "stat": "Average"},
                        "returnData": true}]
                },
                "previousState": {
                    "reason": "Threshold Crossed: 1 out of the last 1 datapoints [0.0666851903306472 (01/10/19 13:46:00)] was not greater than the threshold (50.0) (minimum 1 datapoint for ALARM -> OK transition).",
                    "reasonData": "{\"version\":\"1.0\",\"queryDate\":\"2019-10-01T13:56:40.985+0000\",\"startDate\":\"2019-10-01T13:46:00.000+0000\",\"statistic\":\"Average\",\"period\":300,\"recentDatapoints\":[0.0666851903306472],\"threshold\":50.0}",
                    "timestamp": "2019-10-01T13:56:40.987+0000", "value": "OK"
                },
                "state": {
                    "reason": "Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434 (02/10/19 16:59:00)] was greater than the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition).",
                    "reasonData": "{\"version\":\"1.0\",\"queryDate\":\"2019-10-02T17:04:40.985+0000\",\"startDate\":\"2019-10-02T16:59:00.000+0000\",\"statistic\":\"Average\",\"period\":300,\"recentDatapoints\":[99.50160229693434],\"threshold\":50.0}",
                    "timestamp": "2019-10-02T17:04:40.989+0000", "value": "ALARM"
                }
            }
        })
    }

    #[test]
    fn reads_the_documented_event() {
        let alarm = AlarmChange::from_event(&documented_event()).unwrap();
        assert_eq!(alarm.name, "ServerCpuTooHigh");
        assert_eq!(alarm.event_id, "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92");
        assert!(alarm.enters_alarm());
        assert_eq!(
            alarm.since(),
            Some(parse_time("2019-10-02T17:04:40.989Z").unwrap())
        );
        assert_eq!(
            alarm.metrics,
            vec!["AWS/EC2 CPUUtilization InstanceId=i-12345678901234567"]
        );
        let evidence = alarm.evidence.clone().unwrap();
        assert_eq!(evidence.breaching, 1);
        assert_eq!(evidence.comparison, Comparison::Greater);
        assert_eq!(evidence.breach_duration(), Some(Duration::from_secs(300)));
        let alarm_ref = alarm.to_ref();
        assert_eq!(alarm_ref.previous_state.as_deref(), Some("OK"));
        assert_eq!(alarm_ref.since.as_deref(), Some("2019-10-02T17:04:40.989Z"));
        assert!(alarm_ref.arn.unwrap().ends_with(":alarm:ServerCpuTooHigh"));
    }

    #[test]
    fn counts_breaching_evaluated_datapoints_and_not_missing_ones() {
        let mut event = documented_event();
        event["detail"]["state"]["reason"] = json!(
            "Threshold Crossed: 3 out of the last 5 datapoints [..] were greater than or equal to the threshold (5.0)"
        );
        event["detail"]["state"]["reasonData"] = json!(
            "{\"version\":\"1.0\",\"period\":60,\"threshold\":5.0,\"evaluatedDatapoints\":[{\"timestamp\":\"2026-11-22T10:04:00.000+0000\",\"sampleCount\":3.0,\"value\":7.0},{\"timestamp\":\"2026-11-22T10:03:00.000+0000\"},{\"timestamp\":\"2026-11-22T10:02:00.000+0000\",\"value\":5.0},{\"timestamp\":\"2026-11-22T10:01:00.000+0000\",\"value\":1.0},{\"timestamp\":\"2026-11-22T10:00:00.000+0000\",\"value\":9.0}]}"
        );
        let evidence = AlarmChange::from_event(&event).unwrap().evidence.unwrap();
        assert_eq!(evidence.comparison, Comparison::GreaterOrEqual);
        assert_eq!((evidence.breaching, evidence.missing), (3, 1));
        assert_eq!(evidence.values, vec![7.0, 5.0, 9.0]);
        assert_eq!(evidence.breach_duration(), Some(Duration::from_secs(180)));
    }

    #[test]
    fn lower_bound_alarms_and_anomaly_bands() {
        let mut event = documented_event();
        event["detail"]["state"]["reason"] = json!("… were less than the threshold (0.8) …");
        event["detail"]["state"]["reasonData"] =
            json!({"period": 300, "threshold": 0.8, "recentDatapoints": [0.5, 0.9, 0.7]});
        let evidence = AlarmChange::from_event(&event).unwrap().evidence.unwrap();
        assert_eq!(evidence.comparison, Comparison::Less);
        assert_eq!(evidence.breaching, 2);

        event["detail"]["state"]["reasonData"] = json!(
            "{\"period\":60,\"recentDatapoints\":[0.0,0.2],\"recentLowerThresholds\":[0.02,0.02],\"recentUpperThresholds\":[0.3,0.3]}"
        );
        let evidence = AlarmChange::from_event(&event).unwrap().evidence.unwrap();
        assert_eq!(evidence.comparison, Comparison::OutsideBand);
        assert_eq!(evidence.breaching, 1);
    }

    #[test]
    fn missing_reason_data_and_composite_alarms_carry_no_evidence() {
        let mut event = documented_event();
        event["detail"]["state"]
            .as_object_mut()
            .unwrap()
            .remove("reasonData");
        let alarm = AlarmChange::from_event(&event).unwrap();
        assert_eq!(alarm.evidence, None);

        event["detail"]["state"]["reasonData"] = json!(
            "{\"triggeringAlarms\":[{\"arn\":\"arn:aws:cloudwatch:us-east-1:1:alarm:x\",\"state\":{\"value\":\"ALARM\",\"timestamp\":\"2022-07-22T15:57:45.394+0000\"}}]}"
        );
        event["detail"]["configuration"] =
            json!({"alarmRule": "ALARM(a) OR ALARM(b)", "actionsSuppressor": "m"});
        let alarm = AlarmChange::from_event(&event).unwrap();
        assert_eq!(alarm.evidence, None);
        assert_eq!(alarm.metrics, vec!["ALARM(a) OR ALARM(b)"]);

        event["detail"]["state"]["reasonData"] = json!("not json");
        assert_eq!(AlarmChange::from_event(&event).unwrap().evidence, None);
    }

    #[test]
    fn metric_math_lists_expressions_and_metrics() {
        let mut event = documented_event();
        event["detail"]["configuration"] = json!({"metrics": [
            {"expression": "SUM(METRICS())", "id": "e1", "label": "Total", "returnData": true},
            {"id": "m1", "metricStat": {"metric": {"name": "NetworkIn", "namespace": "AWS/EC2", "dimensions": {}}, "period": 300, "stat": "Maximum"}, "returnData": false}
        ]});
        let alarm = AlarmChange::from_event(&event).unwrap();
        assert_eq!(alarm.metrics, vec!["SUM(METRICS())", "AWS/EC2 NetworkIn"]);
    }

    #[test]
    fn transitions() {
        let mut event = documented_event();
        assert!(AlarmChange::from_event(&event).unwrap().enters_alarm());
        event["detail"]["state"]["value"] = json!("OK");
        event["detail"]["previousState"]["value"] = json!("ALARM");
        assert!(!AlarmChange::from_event(&event).unwrap().enters_alarm());
        event["detail"]["state"]["value"] = json!("ALARM");
        assert!(
            !AlarmChange::from_event(&event).unwrap().enters_alarm(),
            "ALARM -> ALARM is not a transition into ALARM"
        );
        event["detail"]["previousState"]["value"] = json!("INSUFFICIENT_DATA");
        assert!(AlarmChange::from_event(&event).unwrap().enters_alarm());
    }

    #[test]
    fn wrong_or_broken_events_are_precise_errors() {
        let mut event = documented_event();
        event["source"] = json!("evalgate");
        let err = AlarmChange::from_event(&event).unwrap_err();
        assert!(err.to_string().contains("EventBridge rule"), "{err}");

        let mut event = documented_event();
        event["id"] = json!("");
        assert_eq!(
            AlarmChange::from_event(&event).unwrap_err(),
            AlarmEventError::MissingId
        );

        let mut event = documented_event();
        event["detail"] = json!({"state": {"value": "ALARM"}});
        let err = AlarmChange::from_event(&event).unwrap_err();
        assert!(err.to_string().contains("alarmName"), "{err}");

        let mut event = documented_event();
        event["detail"].as_object_mut().unwrap().remove("state");
        assert!(AlarmChange::from_event(&event).is_err());
    }

    #[test]
    fn time_formats() {
        let a = parse_time("2019-10-02T17:04:40.989+0000").unwrap();
        let b = parse_time("2019-10-02T17:04:40.989Z").unwrap();
        assert_eq!(a, b);
        assert!(parse_time("yesterday").is_none());
    }
}
