//! The README's demo scenario, end to end, with assertions on what happened (not on the
//! narration): v1 passes and is promoted, v2 fails and is not, v3 passes and is promoted, an
//! alarm rolls the application back to v1, and the alerts reach the topic's subscriber.

use evalgate_tests::demo::{self, DemoOptions};

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_scenario_happens_as_narrated() {
    let options = DemoOptions {
        job_seconds: 1.0,
        ..DemoOptions::default()
    };
    let report = demo::run(&options, &|_| {}).await.unwrap();

    let outcomes: Vec<(&str, &str, &str)> = report
        .releases
        .iter()
        .map(|r| {
            (
                r.release.as_str(),
                r.outcome.as_str(),
                r.pointer_after.as_str(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("v1", "pass", "v1"),
            ("v2", "fail", "v1"),
            ("v3", "pass", "v3")
        ]
    );
    let v2 = &report.releases[1];
    assert!(
        v2.reasons.iter().any(|r| r.contains("Builtin.Correctness")),
        "{:?}",
        v2.reasons
    );
    assert!(v2.report.contains("❌"), "{}", v2.report);
    assert!(report.releases.iter().all(|r| r.job_arns.len() == 1));

    assert_eq!(report.rollback.pointer_before, "v3");
    assert_eq!(
        report.rollback.pointer_after, "v1",
        "{}",
        report.rollback.response
    );
    assert!(
        report
            .rollback
            .labels
            .iter()
            .any(|l| l.starts_with("rollback-from-v3-to-v1")),
        "{:?}",
        report.rollback.labels
    );

    for kind in [
        "Evaluation Submitted",
        "Gate Verdict",
        "Release Promoted",
        "Rollback Executed",
    ] {
        assert!(
            report.events.iter().any(|e| e == kind),
            "{kind} not in {:?}",
            report.events
        );
    }
    let verdict_alerts: Vec<_> = report
        .alerts
        .iter()
        .filter(|a| a.kind == "Gate Verdict")
        .collect();
    assert_eq!(verdict_alerts.len(), 3, "{:?}", report.alerts);
    let failed = verdict_alerts
        .iter()
        .find(|a| a.subject.contains("v2"))
        .unwrap();
    assert_eq!(failed.severity, "high");
    let rollback = report
        .alerts
        .iter()
        .find(|a| a.kind == "Rollback Executed")
        .unwrap();
    assert_eq!(rollback.severity, "critical");
    assert!(
        rollback.subject.contains("demo-bot"),
        "{}",
        rollback.subject
    );
    // Every alert is sent once: no duplicates of the same subject and kind.
    let mut seen = std::collections::HashSet::new();
    assert!(
        report
            .alerts
            .iter()
            .all(|a| seen.insert((a.kind.clone(), a.subject.clone()))),
        "{:?}",
        report.alerts
    );
}
