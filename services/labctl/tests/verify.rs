//! `labctl verify` end to end against a fake lab whose rules follow the scenarios: every
//! phase, the table, the JSON report, and a missing notification failing by rule name.

mod common;

use std::process::Output;

use common::{labctl, World};
use serde_json::Value;

async fn verify(world: &World, extra: &[&str]) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let flag = world.down_flag();
    let mut args = world.targets();
    args.extend(
        [
            "verify",
            "--profile",
            "fast",
            "--margin",
            "5s",
            "--notify-timeout",
            "5s",
            "--poll",
            "200ms",
        ]
        .map(String::from),
    );
    args.push("--stop-command".into());
    args.push(format!("touch {}", flag.display()));
    args.push("--start-command".into());
    args.push(format!("rm -f {}", flag.display()));
    args.push("--state-dir".into());
    args.push(dir.path().display().to_string());
    args.push("--report".into());
    args.push(report.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    let output = tokio::task::spawn_blocking(move || labctl().args(&args).output().unwrap())
        .await
        .unwrap();
    let report = std::fs::read_to_string(&report)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    (output, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_when_every_rule_fires_notifies_and_resolves() {
    let world = World::start("admin").await;
    let (out, report) = verify(&world, &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    eprintln!("{stderr}\n{stdout}");
    assert!(
        stdout.contains("verify: passed: 13 rule(s) fired, notified and resolved"),
        "{stdout}"
    );
    assert!(stderr.contains("baseline reached"), "{stderr}");
    assert!(
        stderr.contains("alertlab-brute-force-login: FIRING"),
        "{stderr}"
    );
    assert_eq!(report["passed"], true);
    let rules = report["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 13);
    for r in rules {
        assert!(r["problems"].as_array().unwrap().is_empty(), "{r}");
        assert!(
            r["firing_at"].is_string() && r["normal_at"].is_string(),
            "{r}"
        );
        assert!(
            r["webhook_resolved_at"].is_string() && r["email_resolved_at"].is_string(),
            "{r}"
        );
        assert!(r["time_to_firing_s"].as_f64().unwrap() >= 0.0, "{r}");
        assert!(r["time_to_normal_s"].as_f64().unwrap() >= 0.0, "{r}");
        assert_eq!(r["passed"], true, "{r}");
        let expected_phase = match r["scenario"].as_str().unwrap() {
            "service-down" | "traffic-stop" | "credential-stuffing" => 2,
            _ => 1,
        };
        assert_eq!(r["phase"], expected_phase, "{r}");
    }
    // Everything was put back.
    assert!(!world.down_flag().exists());
    let s = world.state.lock().unwrap();
    assert!(s.requests.iter().any(|r| r == "DELETE /admin/faults"));
    assert!(s.requests.iter().any(|r| r == "POST /resume"));
    // Both ends of every scenario are annotated.
    assert_eq!(s.annotations.len(), 16, "{:?}", s.annotations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_email_fails_verify_naming_the_rule() {
    let world = World::start("admin").await;
    world
        .state
        .lock()
        .unwrap()
        .drop_email_for
        .push("Brute-force login".into());
    let (out, report) = verify(&world, &["--phases", "1"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let last = stderr.lines().last().unwrap();
    assert_eq!(
        last,
        "labctl: verify failed: 1 rule(s) missed: alertlab-brute-force-login (no firing email reached Mailpit within 5s; no resolved email reached Mailpit within 5s)"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("alertlab-brute-force-login"))
        .unwrap();
    assert!(line.contains("MISSED: no firing email"), "{line}");
    // Phase 2 did not run: its rules are skipped, not failed.
    let drought = stdout
        .lines()
        .find(|l| l.starts_with("alertlab-order-drought"))
        .unwrap();
    assert!(drought.ends_with("skipped"), "{drought}");
    assert_eq!(report["passed"], false);
    assert_eq!(report["failures"].as_array().unwrap().len(), 1);
}
