//! Grafana's API as labctl reads it, on bodies in the shapes of the reference (§4): the rules
//! endpoint, Alertmanager alerts, annotations, health; the webhook and Mailpit bodies; and
//! `labctl alerts` / annotations against a fake Grafana.

mod common;

use common::{fixture, labctl, World};
use labctl::{
    alerts::{render, AlertsReport},
    grafana::{
        annotation_body, find_rule, parse_subject, webhook_alerts, AmAlert, AnnotationCreated,
        InstanceState, MailpitList, NotifiedAlert, RuleState, RulesResponse,
    },
};
use serde_json::{json, Value};

fn mixed() -> Vec<labctl::grafana::RuleSnapshot> {
    serde_json::from_str::<RulesResponse>(&fixture("rules-mixed.json"))
        .unwrap()
        .snapshots()
        .unwrap()
}

#[test]
fn the_rules_endpoint_is_normalised_per_rule_and_instance() {
    let rules = mixed();
    assert_eq!(rules.len(), 6);

    let down = find_rule(&rules, "alertlab-service-down", "Service down").unwrap();
    assert_eq!(down.state, RuleState::Firing);
    assert!(down.is_firing() && !down.is_normal());
    assert_eq!(down.interval_s, Some(10.0));
    assert_eq!(down.for_s, Some(10.0));
    assert_eq!(down.group, "alertlab-prometheus");
    assert!(down.last_evaluation.is_some());
    assert_eq!(down.instances.len(), 2);
    assert_eq!(down.active_instances().len(), 1);
    assert_eq!(down.health_problem(), None);

    let latency = find_rule(&rules, "alertlab-high-latency", "High latency").unwrap();
    assert!(latency.is_pending() && !latency.is_firing());

    let errors = find_rule(&rules, "alertlab-high-error-rate", "High error rate").unwrap();
    assert!(errors.is_normal(), "Normal (MissingSeries) is normal");
    assert_eq!(errors.instances[0].state, InstanceState::Normal);
    assert_eq!(errors.instances[0].reason.as_deref(), Some("MissingSeries"));

    let low = find_rule(&rules, "alertlab-low-stock", "Low stock").unwrap();
    assert_eq!(low.last_evaluation, None, "never evaluated: the zero time");
    // Rule-level lastEvaluation is absent here: the group's counts.
    let failed = find_rule(&rules, "alertlab-failed-orders", "Failed orders").unwrap();
    assert!(failed.last_evaluation.is_some());
    assert_eq!(
        failed.health_problem().as_deref(),
        Some("health error: failed to execute query A: pq: permission denied for table orders")
    );
    assert!(
        failed.is_normal(),
        "an Error instance does not make the rule fire"
    );

    // A rule without uid (older Grafana) is found by its title.
    let drought = find_rule(&rules, "alertlab-order-drought", "Order drought").unwrap();
    assert_eq!(drought.uid, None);
    assert_eq!(drought.health_problem().as_deref(), Some("health nodata"));
}

#[test]
fn an_error_answer_of_the_rules_endpoint_is_an_error() {
    let response: RulesResponse = serde_json::from_str(&fixture("rules-error.json")).unwrap();
    assert_eq!(
        response.snapshots().unwrap_err().to_string(),
        "the rules endpoint answered status `error`: failed to read rules: database is locked"
    );
}

#[test]
fn alertmanager_alerts_give_receivers_and_datasource_problems() {
    let alerts: Vec<AmAlert> = serde_json::from_str(&fixture("alertmanager-alerts.json")).unwrap();
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts[0].alertname(), "Service down");
    assert!(alerts[0].is_active());
    assert_eq!(
        alerts[0]
            .receivers
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["alertlab-webhook", "alertlab-email"]
    );
    assert_eq!(alerts[0].datasource_problem(), None);
    assert_eq!(
        alerts[1].datasource_problem(),
        Some(("DatasourceError", "Failed orders"))
    );
    assert!(!alerts[2].is_active(), "a silenced alert is suppressed");
}

#[test]
fn the_alerts_table_shows_state_health_instances_and_alertmanager() {
    let report = AlertsReport {
        rules: mixed(),
        alertmanager: serde_json::from_str(&fixture("alertmanager-alerts.json")).unwrap(),
    };
    let text = render(&report);
    let line = |uid: &str| {
        text.lines()
            .find(|l| l.starts_with(uid))
            .unwrap_or_else(|| panic!("no line for {uid} in\n{text}"))
            .to_owned()
    };
    let down = line("alertlab-service-down");
    assert!(down.contains("firing"), "{down}");
    assert!(down.contains("1 Alerting: service=inventory"), "{down}");
    assert!(line("alertlab-high-latency").contains("1 Pending: service=api"));
    assert!(line("alertlab-failed-orders").contains("error (failed to execute query A"));
    assert!(
        text.contains(
            "6 rule(s): 1 firing, 1 pending, 2 unhealthy; Alertmanager: 2 active alert(s)"
        ),
        "{text}"
    );
    assert!(text.contains("DatasourceError for rule Failed orders"));
}

#[test]
fn annotations_are_posted_with_time_tags_and_text() {
    let at = chrono::DateTime::from_timestamp(1_777_000_000, 0).unwrap();
    let body = annotation_body(
        &["alertlab".into(), "scenario:brute-force".into()],
        "scenario brute-force started",
        at,
    );
    assert_eq!(
        body,
        json!({"time": 1_777_000_000_000i64, "tags": ["alertlab", "scenario:brute-force"], "text": "scenario brute-force started"})
    );
    let created: AnnotationCreated =
        serde_json::from_str(&fixture("annotation-created.json")).unwrap();
    assert_eq!(created.id, 42);
}

#[test]
fn webhook_payloads_and_mailpit_messages_name_rule_and_status() {
    let payload: Value = serde_json::from_str(&fixture("webhook-firing.json")).unwrap();
    assert_eq!(
        webhook_alerts(&payload),
        vec![
            NotifiedAlert {
                alertname: "High latency".into(),
                status: "firing".into()
            },
            NotifiedAlert {
                alertname: "High latency".into(),
                status: "resolved".into()
            },
        ]
    );
    let list: MailpitList = serde_json::from_str(&fixture("mailpit-messages.json")).unwrap();
    assert_eq!(list.total, 3);
    let subjects: Vec<Option<(String, String)>> = list
        .messages
        .iter()
        .map(|m| parse_subject(&m.subject))
        .collect();
    assert_eq!(subjects[0], Some(("firing".into(), "High latency".into())));
    assert_eq!(
        subjects[1],
        Some(("resolved".into(), "Service down".into()))
    );
    assert_eq!(subjects[2], None);
    assert!(list.messages[0].created.is_some());
    assert_eq!(list.messages[0].to[0].address, "oncall@alertlab.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labctl_alerts_reads_a_grafana_and_refuses_wrong_credentials() {
    let world = World::start("s3cret").await;
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let url = world.url.clone();
    let ok = tokio::task::spawn_blocking({
        let (url, password) = (url.clone(), password.clone());
        move || {
            labctl()
                .args(["alerts", "--grafana-url", &url, "--grafana-password-file"])
                .arg(&password)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("alertlab-service-down"), "{stdout}");
    assert!(stdout.contains("13 rule(s): 0 firing"), "{stdout}");

    let json = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            labctl()
                .args(["alerts", "--json", "--grafana-url", &url])
                .env("LABCTL_GRAFANA_PASSWORD", "s3cret")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["rules"].as_array().unwrap().len(), 13);

    let wrong = tokio::task::spawn_blocking(move || {
        labctl()
            .args(["alerts", "--grafana-url", &url])
            .env("LABCTL_GRAFANA_PASSWORD", "nope")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    common::assert_one_line_error(
        &wrong,
        "refused the credentials (HTTP 401): invalid username or password",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_annotates_its_start_and_end() {
    let world = World::start("admin").await;
    let mut args = world.targets();
    args.extend(["scenario", "start", "brute-force", "--for", "2s"].map(String::from));
    let state = common::private_dir();
    args.extend(["--state-dir".into(), state.path().display().to_string()]);
    let out = tokio::task::spawn_blocking(move || labctl().args(&args).output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = world.state.lock().unwrap();
    assert_eq!(s.annotations.len(), 2, "{:?}", s.annotations);
    for a in &s.annotations {
        assert_eq!(a["tags"], json!(["alertlab", "scenario:brute-force"]));
        assert!(a["time"].as_i64().unwrap() > 1_700_000_000_000);
    }
    assert!(s.annotations[0]["text"]
        .as_str()
        .unwrap()
        .contains("started for 2s"));
    assert!(s.annotations[1]["text"]
        .as_str()
        .unwrap()
        .contains("ended (its duration ran out)"));
    let attempts = s
        .logins
        .iter()
        .filter(|(ip, ok)| ip == "203.0.113.66" && !ok)
        .count();
    assert!(
        (6..=14).contains(&attempts),
        "{attempts} brute-force attempts in 2 s at 5/s"
    );
}
