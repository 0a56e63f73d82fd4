//! evaluate-rollback end to end: the real binary under the Lambda Runtime API harness, the
//! real SDK against moto (S3 ledger, SSM parameters, Lambda aliases, EventBridge → SQS).
//!
//! Verdicts are seeded as `verdicts/<app>/<rel>/verdict.json` (the documented contract that
//! check-gates writes); promotion goes through `evalgate::promotion::promote` with the real
//! pointer adapters, exactly as check-gates calls it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use evalgate::events::EventBridgePublisher;
use evalgate::ledger::{Ledger, RollbackRecord, VerdictSummary};
use evalgate::promotion::{PassedVerdict, Promoter, Promotion, promote};
use evalgate::release::{Pointer, PointerClients, PointerSpec, ReleaseIdSource};
use evalgate::store::ObjectStore;
use evalgate::store::s3::S3Store;
use evalgate::verdict::Outcome;
use evalgate_tests::names::unique;
use evalgate_tests::runtime::FunctionProcess;
use evalgate_tests::stack::moto;
use serde_json::{Value, json};

const ALARM_PERIOD_SECS: u32 = 60;

/// One test's resources on moto: a bucket, an EventBridge bus whose evalgate events land in
/// an SQS queue, and the clients to inspect everything.
struct World {
    bucket: String,
    bus: String,
    queue_url: String,
    s3: aws_sdk_s3::Client,
    ssm: aws_sdk_ssm::Client,
    lambda: aws_sdk_lambda::Client,
    eventbridge: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
}

impl World {
    async fn new(prefix: &str) -> World {
        let moto = moto();
        let config = moto.sdk_config();
        let world = World {
            bucket: unique(prefix),
            bus: unique(&format!("{prefix}-bus")),
            queue_url: String::new(),
            s3: moto.s3(),
            ssm: aws_sdk_ssm::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            eventbridge: aws_sdk_eventbridge::Client::new(&config),
            sqs: moto.sqs(),
        };
        world
            .s3
            .create_bucket()
            .bucket(&world.bucket)
            .send()
            .await
            .unwrap();
        let queue_url = world
            .sqs
            .create_queue()
            .queue_name(unique(&format!("{prefix}-events")))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let queue_arn = world
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()
            .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .unwrap()
            .clone();
        world
            .eventbridge
            .create_event_bus()
            .name(&world.bus)
            .send()
            .await
            .unwrap();
        let rule = unique("evalgate-events");
        world
            .eventbridge
            .put_rule()
            .name(&rule)
            .event_bus_name(&world.bus)
            .event_pattern(r#"{"source":["evalgate"]}"#)
            .send()
            .await
            .unwrap();
        world
            .eventbridge
            .put_targets()
            .rule(&rule)
            .event_bus_name(&world.bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        World { queue_url, ..world }
    }

    fn function_env(&self) -> Vec<(String, String)> {
        let mut env = moto().function_env();
        env.push(("EVALGATE_BUCKET".into(), self.bucket.clone()));
        env.push(("EVALGATE_EVENT_BUS".into(), self.bus.clone()));
        env
    }

    async fn function(&self) -> FunctionProcess {
        FunctionProcess::start_named("evaluate-rollback", &self.function_env())
            .await
            .unwrap()
    }

    fn store(&self) -> S3Store {
        S3Store::new(self.s3.clone(), &self.bucket)
    }

    async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }

    async fn policy(&self, app: &str, pointer: &str, rollback: &str) {
        let text = format!(
            "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\nrelease:\n  pointer:\n{pointer}  promote: on_pass\nrollback:\n{rollback}"
        );
        self.put(&format!("policies/{app}.yaml"), text.into_bytes())
            .await;
    }

    /// Seeds the verdict check-gates would have written (the fields the contract names).
    async fn verdict(&self, app: &str, release: &str, outcome: Outcome, decided_at: DateTime<Utc>) {
        let body = json!({
            "application": app,
            "release": release,
            "outcome": outcome,
            "decided_at": decided_at.to_rfc3339(),
            "reasons": ["seeded by the test"],
        });
        self.put(
            &evalgate::layout::verdict_key(app, release),
            body.to_string().into_bytes(),
        )
        .await;
    }

    /// Promotes a release the way check-gates does on a pass.
    async fn promote(&self, app: &str, release: &str, spec: &PointerSpec) -> Promotion {
        let store = self.store();
        let ledger = Ledger::new(&store);
        let verdicts: Vec<VerdictSummary> = ledger.verdicts(app).await.unwrap();
        let verdict = verdicts.iter().find(|v| v.release == release).unwrap();
        let passed = PassedVerdict::new(verdict).unwrap();
        let pointer = Pointer::new(
            spec,
            &PointerClients {
                ssm: self.ssm.clone(),
                lambda: self.lambda.clone(),
            },
        );
        let publisher = EventBridgePublisher::new(self.eventbridge.clone(), &self.bus);
        let verdict_uri =
            evalgate::layout::s3_uri(&self.bucket, &evalgate::layout::verdict_key(app, release));
        promote(
            &ledger,
            &pointer,
            &publisher,
            &passed,
            &Promoter {
                promoted_by: "evaluate_rollback e2e test",
                verdict_uri: &verdict_uri,
                now: Utc::now(),
            },
        )
        .await
        .unwrap()
    }

    async fn rollbacks(&self, app: &str) -> Vec<RollbackRecord> {
        let store = self.store();
        Ledger::new(&store).rollbacks(app).await.unwrap()
    }

    /// evalgate events received so far: waits until `expected` arrived (or 10 s), then a
    /// further second for any extra ones, so tests can assert exact counts.
    async fn events(&self, expected: usize) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let wait = if out.len() >= expected { 1 } else { 2 };
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait)
                .send()
                .await
                .unwrap();
            let messages = received.messages();
            for m in messages {
                let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                out.push((
                    body["detail-type"].as_str().unwrap_or_default().to_owned(),
                    body["detail"].clone(),
                ));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            if (out.len() >= expected && messages.is_empty())
                || std::time::Instant::now() > deadline
            {
                return out;
            }
        }
    }

    async fn ssm_parameter(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    }

    async fn ssm_value(&self, name: &str) -> (String, i64) {
        let out = self.ssm.get_parameter().name(name).send().await.unwrap();
        let p = out.parameter().unwrap();
        (p.value().unwrap().to_owned(), p.version())
    }

    async fn ssm_history(&self, name: &str) -> Vec<aws_sdk_ssm::types::ParameterHistory> {
        let mut out = Vec::new();
        let mut pages = self
            .ssm
            .get_parameter_history()
            .name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            out.extend(page.unwrap().parameters().iter().cloned());
        }
        out
    }
}

fn ssm_pointer(name: &str) -> (String, PointerSpec) {
    (
        format!("    ssm_parameter: {name}\n"),
        PointerSpec::SsmParameter { name: name.into() },
    )
}

fn cloudwatch_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A `CloudWatch Alarm State Change` as EventBridge delivers it. `breaching` datapoints of
/// one minute each (value 9 against a threshold of 5) are in the reason data.
fn alarm_event(
    id: &str,
    name: &str,
    (previous, state): (&str, &str),
    since: DateTime<Utc>,
    breaching: usize,
) -> Value {
    let datapoints: Vec<Value> = (0..breaching)
        .map(|i| {
            json!({
                "timestamp": cloudwatch_time(since - chrono::Duration::minutes(i as i64 + 1)),
                "sampleCount": 10.0,
                "value": 9.0
            })
        })
        .collect();
    let reason_data = json!({
        "version": "1.0",
        "queryDate": cloudwatch_time(since),
        "statistic": "Average",
        "period": ALARM_PERIOD_SECS,
        "recentDatapoints": vec![9.0; breaching],
        "threshold": 5.0,
        "evaluatedDatapoints": datapoints,
    });
    json!({
        "version": "0",
        "id": id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")],
        "detail": {
            "alarmName": name,
            "configuration": {
                "description": "error rate of the assistant",
                "metrics": [{
                    "id": "m1",
                    "metricStat": {
                        "metric": {"namespace": "GenAI/Evaluation", "name": "ErrorRate",
                                   "dimensions": {"Application": "bot"}},
                        "period": ALARM_PERIOD_SECS, "stat": "Average"},
                    "returnData": true
                }]
            },
            "previousState": {
                "value": previous,
                "reason": "Threshold Crossed: datapoints were not greater than the threshold (5.0)",
                "timestamp": cloudwatch_time(since - chrono::Duration::hours(2)),
            },
            "state": {
                "value": state,
                "reason": format!("Threshold Crossed: {breaching} out of the last {breaching} datapoints were greater than the threshold (5.0)"),
                "reasonData": reason_data.to_string(),
                "timestamp": cloudwatch_time(since),
            }
        }
    })
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

#[tokio::test]
async fn ssm_pass_promoted_alarm_rolls_back_to_the_previous_pass_skipping_a_failed_release() {
    let world = World::new("rb-ssm").await;
    let app = "bot";
    let param = format!("/{}/release", unique("bot"));
    let (pointer_yaml, spec) = ssm_pointer(&param);
    world
        .policy(
            app,
            &pointer_yaml,
            "  alarms: [bot-errors-*]\n  min_duration: 3m\n",
        )
        .await;
    let t0 = Utc::now() - minutes(60);
    world.verdict(app, "v1", Outcome::Pass, t0).await;
    world
        .verdict(app, "v2", Outcome::Fail, t0 + minutes(10))
        .await;
    world
        .verdict(app, "v3", Outcome::Pass, t0 + minutes(20))
        .await;
    world.ssm_parameter(&param, "v0").await;

    // v1 passed → promoted; v2 failed (never promoted); v3 passed → promoted.
    assert!(matches!(
        world.promote(app, "v1", &spec).await,
        Promotion::Promoted { .. }
    ));
    let promoted = world.promote(app, "v3", &spec).await;
    assert!(
        matches!(&promoted, Promotion::Promoted { previous: Some(p), .. } if p == "v1"),
        "{promoted:?}"
    );
    assert_eq!(world.ssm_value(&param).await, ("v3".to_owned(), 3));
    let store = world.store();
    let record = Ledger::new(&store)
        .promotion(app, "v3")
        .await
        .unwrap()
        .expect("promotion record");
    assert_eq!(record.previous.as_deref(), Some("v1"));
    assert_eq!(record.verdict_outcome, Outcome::Pass);
    assert_eq!(record.promoted_by, "evaluate_rollback e2e test");
    assert!(
        record.verdict_uri.ends_with("verdicts/bot/v3/verdict.json"),
        "{}",
        record.verdict_uri
    );
    assert_eq!(
        Ledger::new(&store).promotions(app).await.unwrap().len(),
        2,
        "v1 and v3, never the failed v2"
    );
    let history = world.ssm_history(&param).await;
    let promoted_version = history.iter().find(|h| h.version() == 3).unwrap();
    assert!(
        promoted_version
            .description()
            .unwrap()
            .starts_with("evalgate promotion of bot: v1 -> v3"),
        "{:?}",
        promoted_version.description()
    );
    let events = world.events(2).await;
    assert_eq!(
        events
            .iter()
            .map(|(t, d)| (t.as_str(), d["release"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![("Release Promoted", "v1"), ("Release Promoted", "v3")]
    );

    // Production alarm: in ALARM for 4 one-minute periods, after v3 went live.
    let function = world.function().await;
    let since = Utc::now();
    let event_id = unique("alarm-event");
    let out = function
        .invoke(&alarm_event(
            &event_id,
            "bot-errors-5xx",
            ("OK", "ALARM"),
            since,
            4,
        ))
        .await
        .unwrap();
    assert_eq!(out["results"][0]["outcome"], "rolled_back", "{out}");
    assert_eq!(out["results"][0]["from"], "v3");
    assert_eq!(
        out["results"][0]["to"], "v1",
        "v2 failed its gate: skipped as a target"
    );

    // The pointer: a new parameter version with v1, labelled and described.
    assert_eq!(world.ssm_value(&param).await, ("v1".to_owned(), 4));
    let history = world.ssm_history(&param).await;
    let latest = history.iter().find(|h| h.version() == 4).unwrap();
    let label = latest.labels().first().unwrap();
    assert!(label.starts_with("rollback-from-v3-to-v1-"), "{label}");
    assert!(
        latest.description().unwrap().contains(&format!(
            "evalgate rollback of bot: v3 -> v1 (alarm bot-errors-5xx, event {event_id})"
        )),
        "{:?}",
        latest.description()
    );

    // The ledger, keyed by the alarm event id.
    let records = world.rollbacks(app).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.alarm.event_id, event_id);
    assert!(record.executed && !record.dry_run && record.completed_at.is_some());
    assert_eq!(
        (record.from.as_deref(), record.to.as_deref()),
        (Some("v3"), Some("v1"))
    );
    assert_eq!(record.pointer, format!("ssm:{param}"));
    let key = evalgate::ledger::rollback_key(app, &event_id);
    assert!(world.store().head(&key).await.unwrap().is_some(), "{key}");

    // The event.
    let events = world.events(1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (detail_type, detail) = &events[0];
    assert_eq!(detail_type, "Rollback Executed");
    assert_eq!(detail["application"], "bot");
    assert_eq!(detail["from"], "v3");
    assert_eq!(detail["to"], "v1");
    assert_eq!(detail["pointer"], format!("ssm:{param}"));
    assert_eq!(detail["eventKey"], format!("rollback/bot/{event_id}"));
    assert_eq!(detail["alarm"]["name"], "bot-errors-5xx");
    assert_eq!(detail["alarm"]["state"], "ALARM");
    assert_eq!(detail["alarm"]["previousState"], "OK");
    assert_eq!(detail["alarm"]["eventId"], event_id.as_str());
    assert_eq!(
        detail["alarm"]["metrics"],
        json!(["GenAI/Evaluation ErrorRate Application=bot"])
    );
    assert!(
        detail["alarm"]["arn"]
            .as_str()
            .unwrap()
            .ends_with(":alarm:bot-errors-5xx"),
        "{detail}"
    );
    let reason = detail["reason"].as_str().unwrap();
    assert!(reason.contains("4 breaching datapoints of 1m"), "{reason}");
    assert!(
        reason.contains("labelled rollback-from-v3-to-v1-"),
        "{reason}"
    );
}

#[tokio::test]
async fn lambda_alias_rollback_points_at_the_passing_version_and_stops_the_canary() {
    let world = World::new("rb-lambda").await;
    let app = "bot";
    let function_name = unique("bot-fn");
    let versions = publish_versions(&world, &function_name, &["v1", "v2", "v3"]).await;
    world
        .lambda
        .create_alias()
        .function_name(&function_name)
        .name("live")
        .function_version(&versions[0])
        .send()
        .await
        .unwrap();
    let spec = PointerSpec::LambdaAlias {
        function: function_name.clone(),
        alias: "live".into(),
        release_id: ReleaseIdSource::Description,
    };
    world
        .policy(
            app,
            &format!("    lambda_alias:\n      function: {function_name}\n      alias: live\n"),
            "  alarms: [bot-quality]\n",
        )
        .await;
    let t0 = Utc::now() - minutes(60);
    world.verdict(app, "v1", Outcome::Pass, t0).await;
    world
        .verdict(app, "v2", Outcome::Inconclusive, t0 + minutes(10))
        .await;
    world
        .verdict(app, "v3", Outcome::Pass, t0 + minutes(20))
        .await;

    let promoted = world.promote(app, "v3", &spec).await;
    assert!(
        matches!(&promoted, Promotion::Promoted { previous: Some(p), .. } if p == "v1"),
        "{promoted:?}"
    );
    let alias = world
        .lambda
        .get_alias()
        .function_name(&function_name)
        .name("live")
        .send()
        .await
        .unwrap();
    assert_eq!(alias.function_version(), Some(versions[2].as_str()));
    assert!(
        alias
            .description()
            .unwrap()
            .starts_with("evalgate promotion at=")
    );
    // A canary of the (inconclusive) v2 is sent 10% of the traffic by someone else.
    world
        .lambda
        .update_alias()
        .function_name(&function_name)
        .name("live")
        .routing_config(
            aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                .additional_version_weights(&versions[1], 0.1)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let function = world.function().await;
    let event_id = unique("alarm-event");
    let out = function
        .invoke(&alarm_event(
            &event_id,
            "bot-quality",
            ("OK", "ALARM"),
            Utc::now(),
            1,
        ))
        .await
        .unwrap();
    assert_eq!(out["results"][0]["outcome"], "rolled_back", "{out}");
    assert_eq!(out["results"][0]["to"], "v1");

    let alias = world
        .lambda
        .get_alias()
        .function_name(&function_name)
        .name("live")
        .send()
        .await
        .unwrap();
    assert_eq!(
        alias.function_version(),
        Some(versions[0].as_str()),
        "v1's version"
    );
    let weights = alias
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .map(|w| w.len())
        .unwrap_or(0);
    assert_eq!(
        weights, 0,
        "weighted routing removed: the canary is stopped"
    );
    let stamp = alias.description().unwrap();
    assert!(
        stamp.starts_with("evalgate rollback at=") && stamp.ends_with(" release=v1"),
        "{stamp}"
    );

    let records = world.rollbacks(app).await;
    assert_eq!(records.len(), 1);
    assert!(records[0].executed);
    assert_eq!(records[0].pointer, format!("lambda:{function_name}:live"));

    let events = world.events(2).await;
    let kinds: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, vec!["Release Promoted", "Rollback Executed"]);
    assert_eq!(events[1].1["from"], "v3");
    assert_eq!(events[1].1["to"], "v1");
    assert_eq!(
        events[1].1["pointer"],
        format!("lambda:{function_name}:live")
    );
}

#[tokio::test]
async fn alarms_that_must_not_act_are_ignored() {
    let world = World::new("rb-ignored").await;
    let app = "bot";
    let param = format!("/{}/release", unique("bot"));
    let (pointer_yaml, spec) = ssm_pointer(&param);
    world
        .policy(
            app,
            &pointer_yaml,
            "  alarms: [bot-errors]\n  min_duration: 5m\n  cooldown: 30m\n",
        )
        .await;
    let t0 = Utc::now() - minutes(60);
    world.verdict(app, "v1", Outcome::Pass, t0).await;
    world
        .verdict(app, "v2", Outcome::Pass, t0 + minutes(10))
        .await;
    world
        .verdict(app, "v3", Outcome::Pass, t0 + minutes(20))
        .await;
    world.ssm_parameter(&param, "v2").await;
    world.promote(app, "v3", &spec).await;
    let _promoted = world.events(1).await;
    let (_, version_after_promotion) = world.ssm_value(&param).await;
    let function = world.function().await;
    let now = Utc::now();

    let ignored = [
        (
            "an alarm no policy lists",
            alarm_event(
                &unique("e"),
                "someone-elses-alarm",
                ("OK", "ALARM"),
                now,
                10,
            ),
            None,
        ),
        (
            "ALARM -> OK",
            alarm_event(&unique("e"), "bot-errors", ("ALARM", "OK"), now, 10),
            Some("not a transition into ALARM"),
        ),
        (
            "began before the promotion",
            alarm_event(
                &unique("e"),
                "bot-errors",
                ("OK", "ALARM"),
                now - minutes(10),
                10,
            ),
            Some("before v3 went live"),
        ),
        (
            "shorter than min_duration",
            alarm_event(&unique("e"), "bot-errors", ("OK", "ALARM"), now, 3),
            Some("the breach is shorter than required"),
        ),
    ];
    for (case, event, reason) in &ignored {
        let out = function.invoke(event).await.unwrap();
        match reason {
            None => assert_eq!(out["results"], json!([]), "{case}: {out}"),
            Some(reason) => {
                assert_eq!(out["results"][0]["outcome"], "ignored", "{case}: {out}");
                let text = out["results"][0]["reason"].as_str().unwrap();
                assert!(text.contains(reason), "{case}: {text}");
            }
        }
    }
    assert_eq!(
        world.ssm_value(&param).await,
        ("v3".to_owned(), version_after_promotion)
    );
    assert!(world.rollbacks(app).await.is_empty());
    assert!(
        world.events(0).await.is_empty(),
        "ignored alarms announce nothing"
    );
    // The unlisted alarm is logged at debug only (the function logs at info): nothing.
    assert!(
        !function
            .logs()
            .iter()
            .any(|l| l.contains("someone-elses-alarm")),
        "unlisted alarms are not logged at info"
    );

    // A real one acts; the next one inside the cooldown is ignored.
    let out = function
        .invoke(&alarm_event(
            &unique("e"),
            "bot-errors",
            ("OK", "ALARM"),
            Utc::now(),
            6,
        ))
        .await
        .unwrap();
    assert_eq!(out["results"][0]["outcome"], "rolled_back", "{out}");
    assert_eq!(out["results"][0]["to"], "v2");
    let out = function
        .invoke(&alarm_event(
            &unique("e"),
            "bot-errors",
            ("OK", "ALARM"),
            Utc::now(),
            6,
        ))
        .await
        .unwrap();
    assert_eq!(out["results"][0]["outcome"], "ignored", "{out}");
    assert!(
        out["results"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("cooldown"),
        "{out}"
    );
    assert_eq!(
        world.ssm_value(&param).await,
        ("v2".to_owned(), version_after_promotion + 1)
    );
    assert_eq!(world.rollbacks(app).await.len(), 1);
    let events = world.events(1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "Rollback Executed");
}

#[tokio::test]
async fn the_same_alarm_event_three_times_and_concurrently_rolls_back_once() {
    let world = World::new("rb-dup").await;
    let param_a = format!("/{}/release", unique("a"));
    let param_b = format!("/{}/release", unique("b"));
    let t0 = Utc::now() - minutes(60);
    for (app, param) in [("seq", &param_a), ("conc", &param_b)] {
        let (pointer_yaml, spec) = ssm_pointer(param);
        world
            .policy(app, &pointer_yaml, &format!("  alarms: [{app}-errors]\n"))
            .await;
        world.verdict(app, "v1", Outcome::Pass, t0).await;
        world
            .verdict(app, "v2", Outcome::Pass, t0 + minutes(10))
            .await;
        world.ssm_parameter(param, "v1").await;
        world.promote(app, "v2", &spec).await;
    }
    let _promotions = world.events(2).await;

    // Three deliveries, one after the other.
    let function = world.function().await;
    let event = alarm_event(&unique("e"), "seq-errors", ("OK", "ALARM"), Utc::now(), 1);
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let out = function.invoke(&event).await.unwrap();
        outcomes.push(out["results"][0]["outcome"].as_str().unwrap().to_owned());
    }
    assert_eq!(outcomes, vec!["rolled_back", "duplicate", "duplicate"]);

    // Three deliveries at once, to three function instances.
    let instances = [
        world.function().await,
        world.function().await,
        world.function().await,
    ];
    let event = alarm_event(&unique("e"), "conc-errors", ("OK", "ALARM"), Utc::now(), 1);
    let (x, y, z) = tokio::join!(
        instances[0].invoke(&event),
        instances[1].invoke(&event),
        instances[2].invoke(&event)
    );
    let mut outcomes: Vec<String> = [x, y, z]
        .into_iter()
        .map(|r| {
            r.unwrap()["results"][0]["outcome"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    outcomes.sort();
    assert_eq!(outcomes, vec!["duplicate", "duplicate", "rolled_back"]);

    for (app, param) in [("seq", &param_a), ("conc", &param_b)] {
        // v1 created, v2 promoted, one rollback: exactly three versions.
        assert_eq!(world.ssm_value(param).await, ("v1".to_owned(), 3), "{app}");
        assert_eq!(world.ssm_history(param).await.len(), 3, "{app}");
        assert_eq!(world.rollbacks(app).await.len(), 1, "{app}");
    }
    let events = world.events(2).await;
    let executed: Vec<&str> = events
        .iter()
        .filter(|(t, _)| t == "Rollback Executed")
        .map(|(_, d)| d["application"].as_str().unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(executed.len(), 2, "{events:?}");
}

#[tokio::test]
async fn no_passing_release_skips_and_dry_run_reports_both_leave_the_pointer() {
    let world = World::new("rb-skip").await;
    let param_none = format!("/{}/release", unique("none"));
    let param_dry = format!("/{}/release", unique("dry"));
    let t0 = Utc::now() - minutes(60);

    // "none": v1 failed, v2 passed and is live: nothing to return to.
    let (pointer_yaml, spec) = ssm_pointer(&param_none);
    world
        .policy("none", &pointer_yaml, "  alarms: [none-errors]\n")
        .await;
    world.verdict("none", "v1", Outcome::Fail, t0).await;
    world
        .verdict("none", "v2", Outcome::Pass, t0 + minutes(10))
        .await;
    world.ssm_parameter(&param_none, "v1").await;
    world.promote("none", "v2", &spec).await;

    // "dry": v1 and v2 passed, v2 is live; the policy only reports.
    let (pointer_yaml, spec) = ssm_pointer(&param_dry);
    world
        .policy(
            "dry",
            &pointer_yaml,
            "  alarms: [dry-errors]\n  dry_run: true\n",
        )
        .await;
    world.verdict("dry", "v1", Outcome::Pass, t0).await;
    world
        .verdict("dry", "v2", Outcome::Pass, t0 + minutes(10))
        .await;
    world.ssm_parameter(&param_dry, "v1").await;
    world.promote("dry", "v2", &spec).await;
    let _promotions = world.events(2).await;

    let function = world.function().await;
    let out = function
        .invoke(&alarm_event(
            &unique("e"),
            "none-errors",
            ("OK", "ALARM"),
            Utc::now(),
            1,
        ))
        .await
        .unwrap();
    assert_eq!(out["results"][0]["outcome"], "skipped", "{out}");
    let out = function
        .invoke(&alarm_event(
            &unique("e"),
            "dry-errors",
            ("OK", "ALARM"),
            Utc::now(),
            1,
        ))
        .await
        .unwrap();
    assert_eq!(out["results"][0]["outcome"], "skipped", "{out}");
    assert_eq!(out["results"][0]["dry_run"], true, "{out}");

    assert_eq!(world.ssm_value(&param_none).await, ("v2".to_owned(), 2));
    assert_eq!(world.ssm_value(&param_dry).await, ("v2".to_owned(), 2));

    let mut events = world.events(2).await;
    events.sort_by_key(|(_, d)| d["application"].as_str().unwrap_or_default().to_owned());
    assert_eq!(events.len(), 2, "{events:?}");
    let (kind, dry) = &events[0];
    assert_eq!(kind, "Rollback Skipped");
    assert_eq!(dry["application"], "dry");
    assert_eq!(dry["dryRun"], true);
    assert_eq!(dry["current"], "v2");
    assert_eq!(dry["wouldRollBackTo"], "v1");
    assert!(
        dry["reason"]
            .as_str()
            .unwrap()
            .starts_with("dry run: would roll back from v2 to v1")
    );
    let (kind, none) = &events[1];
    assert_eq!(kind, "Rollback Skipped");
    assert_eq!(none["application"], "none");
    assert_eq!(none["dryRun"], false);
    assert_eq!(none["current"], "v2");
    assert!(none.get("wouldRollBackTo").is_none(), "{none}");
    assert!(
        none["reason"]
            .as_str()
            .unwrap()
            .contains("no release before v2 passed its gate")
    );

    let dry_records = world.rollbacks("dry").await;
    assert!(dry_records[0].dry_run && !dry_records[0].executed);
    let none_records = world.rollbacks("none").await;
    assert!(!none_records[0].executed && none_records[0].to.is_none());
}

#[tokio::test]
async fn an_alarm_listed_by_two_applications_acts_for_both() {
    let world = World::new("rb-shared").await;
    let t0 = Utc::now() - minutes(60);
    let mut params = Vec::new();
    for app in ["chat", "search"] {
        let param = format!("/{}/release", unique(app));
        let (pointer_yaml, spec) = ssm_pointer(&param);
        world
            .policy(app, &pointer_yaml, "  alarms: [shared-gateway-*]\n")
            .await;
        world.verdict(app, "v1", Outcome::Pass, t0).await;
        world
            .verdict(app, "v2", Outcome::Pass, t0 + minutes(10))
            .await;
        world.ssm_parameter(&param, "v1").await;
        world.promote(app, "v2", &spec).await;
        params.push(param);
    }
    let function = world.function().await;
    let out = function
        .invoke(&alarm_event(
            &unique("e"),
            "shared-gateway-5xx",
            ("OK", "ALARM"),
            Utc::now(),
            1,
        ))
        .await
        .unwrap();
    let apps: Vec<&str> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["outcome"], "rolled_back", "{out}");
            r["application"].as_str().unwrap()
        })
        .collect();
    assert_eq!(apps, vec!["chat", "search"]);
    for param in &params {
        assert_eq!(world.ssm_value(param).await.0, "v1");
    }
}

#[tokio::test]
async fn a_malformed_event_is_a_precise_error_and_a_missing_pointer_is_skipped() {
    let world = World::new("rb-errors").await;
    let function = world.function().await;
    let err = function
        .invoke(&json!({"detail-type": "Scheduled Event", "source": "aws.events", "id": "x", "detail": {}}))
        .await
        .unwrap_err();
    let message = &err.function_error().unwrap().error_message;
    assert!(message.contains("Check the EventBridge rule"), "{message}");

    let (pointer_yaml, _) = ssm_pointer("/does-not-exist/release");
    world
        .policy("ghost", &pointer_yaml, "  alarms: [ghost-errors]\n")
        .await;
    let out = function
        .invoke(&alarm_event(
            &unique("e"),
            "ghost-errors",
            ("OK", "ALARM"),
            Utc::now(),
            1,
        ))
        .await
        .unwrap();
    assert_eq!(out["results"][0]["outcome"], "skipped", "{out}");
    let reason = out["results"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("ssm:/does-not-exist/release does not exist"),
        "{reason}"
    );
    let events = world.events(1).await;
    assert_eq!(events[0].0, "Rollback Skipped");
}

/// Publishes one version per release (Description `release=<id>`), returns their numbers.
async fn publish_versions(world: &World, function_name: &str, releases: &[&str]) -> Vec<String> {
    let role = lambda_role().await;
    world
        .lambda
        .create_function()
        .function_name(function_name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(
                    b"placeholder: moto never runs it".to_vec(),
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut versions = Vec::new();
    for (i, release) in releases.iter().enumerate() {
        if i > 0 {
            // Lambda (and moto) only publish a new version when something changed.
            world
                .lambda
                .update_function_configuration()
                .function_name(function_name)
                .description(format!("build of {release}"))
                .send()
                .await
                .unwrap();
        }
        let out = world
            .lambda
            .publish_version()
            .function_name(function_name)
            .description(format!("release={release}"))
            .send()
            .await
            .unwrap();
        versions.push(out.version().unwrap().to_owned());
    }
    versions
}

/// moto's CreateFunction requires the execution role to exist in its IAM. The role is made
/// with one IAM Query API call (moto does not check signatures) rather than pulling the whole
/// IAM SDK into the test crate for one request.
async fn lambda_role() -> String {
    let name = "evalgate-test-lambda-role";
    let url = moto().url.clone();
    let addr = url.trim_start_matches("http://").to_owned();
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D"
    );
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=evalgate-test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    // Created now, or by an earlier test against the same moto: both are fine.
    assert!(
        response.contains("<Arn>") || response.contains("EntityAlreadyExists"),
        "{response}"
    );
    format!("arn:aws:iam::123456789012:role/{name}")
}
