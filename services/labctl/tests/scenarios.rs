//! Scenario processes: detached runs, a second start refused, `stop` signalling the running
//! process (which reverts), `stop` and `stop-all` reverting directly, and `list`.

mod common;

use std::process::Output;

use common::{labctl, World};

async fn run(world: &World, state: &std::path::Path, args: &[&str]) -> Output {
    run_with(world.targets(), state, args).await
}

async fn run_with(targets: Vec<String>, state: &std::path::Path, args: &[&str]) -> Output {
    let mut all = targets;
    all.extend(args.iter().map(|s| s.to_string()));
    // The scenario options follow `scenario`.
    all.extend(["--state-dir".to_string(), state.display().to_string()]);
    all.extend([
        "--stop-command".to_string(),
        "true".into(),
        "--start-command".into(),
        "true".into(),
    ]);
    tokio::task::spawn_blocking(move || labctl().args(&all).output().unwrap())
        .await
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_scenario_runs_in_the_background_until_stopped() {
    let world = World::start("admin").await;
    let state = common::private_dir();
    let started = run(
        &world,
        state.path(),
        &[
            "scenario",
            "start",
            "error-burst",
            "--for",
            "5m",
            "--detach",
        ],
    )
    .await;
    assert!(started.status.success(), "{}", text(&started));
    let out = text(&started);
    assert!(
        out.contains("error-burst: running in the background (pid "),
        "{out}"
    );
    assert!(state.path().join("error-burst.json").exists());
    {
        let s = world.state.lock().unwrap();
        assert!(
            s.requests.iter().any(|r| r == "POST /admin/faults"),
            "{:?}",
            s.requests
        );
        assert_eq!(s.annotations.len(), 1);
    }

    let again = run(
        &world,
        state.path(),
        &["scenario", "start", "error-burst", "--for", "1m"],
    )
    .await;
    common::assert_one_line_error(&again, "scenario error-burst is already running (pid ");

    let stopped = run(&world, state.path(), &["scenario", "stop", "error-burst"]).await;
    assert!(stopped.status.success(), "{}", text(&stopped));
    assert!(
        text(&stopped).contains("stopped the labctl process running it"),
        "{}",
        text(&stopped)
    );
    assert!(!state.path().join("error-burst.json").exists());
    let log = std::fs::read_to_string(state.path().join("error-burst.log")).unwrap();
    assert!(log.contains("ended (it was stopped); reverted: cleared 1 error_rate fault(s) on the frontend service"), "{log}");
    let s = world.state.lock().unwrap();
    assert!(s.requests.iter().any(|r| r == "DELETE /admin/faults"));
    assert_eq!(s.annotations.len(), 2);
    assert!(s.annotations[1]["text"]
        .as_str()
        .unwrap()
        .contains("it was stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_fault_token_a_fault_scenario_is_refused_before_anything_is_done() {
    let world = World::start("admin").await;
    let state = common::private_dir();
    let targets = world.targets_without_token();
    let started = run_with(
        targets.clone(),
        state.path(),
        &["scenario", "start", "payment-outage", "--for", "1m"],
    )
    .await;
    common::assert_one_line_error(
        &started,
        "payment-outage set faults through the services' fault API, which requires its token: give the services' fault token with --fault-token-file FILE",
    );
    {
        let s = world.state.lock().unwrap();
        assert!(s.requests.is_empty(), "{:?}", s.requests);
    }
    // Reverting asks the services, which answer 401 without the token: labctl says why.
    let stopped = run_with(
        targets,
        state.path(),
        &["scenario", "stop", "latency-spike"],
    )
    .await;
    common::assert_one_line_error(
        &stopped,
        "requires its token (HTTP 401): give the services' fault token with --fault-token-file",
    );
}

/// The attack on the old fallback state directory: another user prepares the directory, or a
/// link where labctl (often root) writes, and labctl overwrote the link's target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_or_a_shared_directory_planted_for_the_state_is_refused_not_followed() {
    use std::os::unix::fs::{symlink, PermissionsExt};

    let world = World::start("admin").await;
    let parent = tempfile::tempdir().unwrap();
    let victim = parent.path().join("root-only");
    std::fs::write(&victim, "secret\n").unwrap();

    let state = parent.path().join("labctl-0");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    symlink(&victim, state.join("error-burst.log")).unwrap();
    let start = [
        "scenario",
        "start",
        "error-burst",
        "--for",
        "1m",
        "--detach",
    ];
    let out = run(&world, &state, &start).await;
    common::assert_one_line_error(&out, "error-burst.log (a symbolic link there is refused)");

    std::fs::remove_file(state.join("error-burst.log")).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = run(&world, &state, &start).await;
    common::assert_one_line_error(&out, "lets group or others in (it must be 0700)");

    let linked = parent.path().join("labctl-link");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    symlink(&state, &linked).unwrap();
    let out = run(&world, &linked, &start).await;
    common::assert_one_line_error(&out, "it is a symbolic link");

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "secret\n");
    assert!(
        !world
            .state
            .lock()
            .unwrap()
            .requests
            .iter()
            .any(|r| r == "POST /admin/faults"),
        "nothing was started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_without_a_process_reverts_directly_and_stop_all_reverts_everything() {
    let world = World::start("admin").await;
    let state = common::private_dir();
    let stopped = run(&world, state.path(), &["scenario", "stop", "latency-spike"]).await;
    assert!(stopped.status.success(), "{}", text(&stopped));
    assert_eq!(
        String::from_utf8_lossy(&stopped.stdout).trim(),
        "latency-spike: no latency fault was active on the api service"
    );

    world.state.lock().unwrap().requests.clear();
    let all = run(&world, state.path(), &["scenario", "stop-all"]).await;
    assert!(all.status.success(), "{}", text(&all));
    let stdout = String::from_utf8_lossy(&all.stdout);
    assert_eq!(stdout.lines().count(), 8, "{stdout}");
    assert!(stdout.contains("service-down: ran `true`"), "{stdout}");
    assert!(stdout.contains("stock-depletion: no restock_paused fault was active on the inventory service; product 7 is at 120, above its threshold 12"), "{stdout}");
    assert!(stdout.contains("traffic-stop: traffic resumed"), "{stdout}");
    assert!(
        stdout.contains("brute-force: no brute-force loop runs in this process"),
        "{stdout}"
    );
    assert!(
        stdout.contains("credential-stuffing: no credential-stuffing loop runs in this process"),
        "{stdout}"
    );
    let s = world.state.lock().unwrap();
    assert_eq!(
        s.requests
            .iter()
            .filter(|r| *r == "DELETE /admin/faults")
            .count(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_depletion_sets_the_product_to_zero_and_restores_it() {
    let world = World::start("admin").await;
    let state = common::private_dir();
    // The world's operator (fault) token, which `run` passes.
    let out = run(
        &world,
        state.path(),
        &["scenario", "start", "stock-depletion", "--for", "1s"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("restocked product 7 from 0 to 120"),
        "{}",
        text(&out)
    );
    let s = world.state.lock().unwrap();
    let order: Vec<&String> = s
        .requests
        .iter()
        .filter(|r| r.contains("/admin/faults") || r.starts_with("PUT /stock"))
        .collect();
    assert_eq!(
        order,
        [
            "POST /admin/faults",
            "PUT /stock/7",
            "DELETE /admin/faults",
            "PUT /stock/7"
        ],
        "the pause comes before the depletion"
    );
    // Both stock changes carry the operator token.
    assert_eq!(s.stock_authorizations, vec![Some(world.fault_bearer()); 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_stuffing_fails_logins_on_one_account_from_many_addresses() {
    let world = World::start("admin").await;
    let state = common::private_dir();
    let out = run(
        &world,
        state.path(),
        &[
            "scenario",
            "start",
            "credential-stuffing",
            "--for",
            "3s",
            "--stuffing-rate",
            "10",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("rejected with 401"), "{}", text(&out));
    let s = world.state.lock().unwrap();
    let addresses: std::collections::HashSet<&str> =
        s.logins.iter().map(|(ip, _)| ip.as_str()).collect();
    assert!(s.logins.len() >= 20, "{:?}", s.logins);
    assert_eq!(addresses.len(), s.logins.len(), "one attempt per address");
    assert!(addresses.iter().all(|ip| ip.starts_with("192.0.2.")));
    assert!(s.logins.iter().all(|(_, ok)| !ok));
}

#[test]
fn list_names_every_scenario_with_its_rules() {
    let out = labctl().args(["scenario", "list"]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (scenario, rule) in [
        ("service-down", "service-down"),
        ("error-burst", "high-error-rate, frontend-errors-in-logs"),
        (
            "payment-outage",
            "payment-failure-rate, payment-errors-in-logs, failed-orders",
        ),
        ("traffic-stop", "order-drought"),
    ] {
        let line = stdout.lines().find(|l| l.starts_with(scenario)).unwrap();
        assert!(line.contains(rule), "{line}");
    }
}
