//! Bad input is one clear line on stderr and exit status 1, never a panic.

mod common;

use common::{assert_one_line_error, closed_port, labctl, World};

fn run(args: &[&str]) -> std::process::Output {
    labctl().args(args).output().unwrap()
}

#[test]
fn an_unknown_scenario_is_named_with_the_known_ones() {
    for action in ["start", "stop"] {
        let out = run(&["scenario", action, "meltdown"]);
        assert_one_line_error(
            &out,
            "unknown scenario `meltdown`; known scenarios: service-down, error-burst, latency-spike, payment-outage, stock-depletion, brute-force, credential-stuffing, traffic-stop",
        );
    }
    assert_one_line_error(
        &run(&["check", "--expect", "scenario=meltdown"]),
        "unknown scenario `meltdown`",
    );
}

#[test]
fn unreachable_grafana_is_one_line() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    assert_one_line_error(
        &run(&["alerts", "--grafana-url", &url]),
        &format!("cannot reach Grafana at {url}: connection refused"),
    );
    let token = shop_testkit::faults::fault_token_file();
    assert_one_line_error(
        &run(&[
            "verify",
            "--grafana-url",
            &url,
            "--fault-token-file",
            token.to_str().unwrap(),
        ]),
        &format!("cannot reach Grafana at {url}: connection refused"),
    );
}

#[test]
fn an_unreachable_prometheus_is_one_line() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    assert_one_line_error(
        &run(&["check", "--prometheus-url", &url]),
        &format!("cannot reach Prometheus at {url}: connection refused"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_refusing_postgresql_is_one_line() {
    let world = World::start("admin").await;
    let port = closed_port();
    let url = world.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        labctl()
            .args([
                "check",
                "--prometheus-url",
                &url,
                "--database-url",
                &format!("postgres://grafana_ro:secret@127.0.0.1:{port}/shop"),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_one_line_error(
        &out,
        &format!("cannot connect to PostgreSQL at 127.0.0.1:{port}/shop as grafana_ro: connection refused"),
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("secret"));

    // A real server that refuses the database.
    let pg = shop_testkit::shared_postgres();
    let url = world.url.clone();
    let db = format!(
        "postgres://postgres@127.0.0.1:{}/no_such_database",
        pg.port()
    );
    let out = tokio::task::spawn_blocking(move || {
        labctl()
            .args(["check", "--prometheus-url", &url, "--database-url", &db])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_one_line_error(&out, "database \"no_such_database\" does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_grafana_credentials_are_one_line_for_every_grafana_command() {
    let world = World::start("right").await;
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "wrong\n").unwrap();
    let url = world.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        labctl()
            .args(["verify", "--grafana-url", &url, "--grafana-password-file"])
            .arg(&password)
            .arg("--fault-token-file")
            .arg(shop_testkit::faults::fault_token_file())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_one_line_error(&out, "Grafana at http://127.0.0.1:");
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the credentials (HTTP 401)"));
}

#[test]
fn bad_flags_and_files_are_named() {
    let missing = "/nonexistent/labctl-password";
    assert_one_line_error(
        &run(&["alerts", "--grafana-password-file", missing]),
        "cannot read --grafana-password-file /nonexistent/labctl-password",
    );
    assert_one_line_error(
        &run(&["traffic", "--api-url", "ftp://x"]),
        "--api-url must be an http(s) URL, got `ftp://x`",
    );
    assert_one_line_error(&run(&["traffic", "--rate", "0"]), "--rate must be above 0");
    assert_one_line_error(
        &run(&["scenario", "start", "brute-force", "--for", "soon"]),
        "--for: `soon` is not a duration",
    );
    assert_one_line_error(
        &run(&["check", "--expect", "firing"]),
        "--expect must be `healthy` or `scenario=NAME[,NAME...]`",
    );
    assert_one_line_error(
        &run(&["check", "--profile", "slow"]),
        "--profile: unknown profile \"slow\"",
    );
    assert_one_line_error(
        &run(&["check", "--database-url", "mysql://nope"]),
        "--database-url is not a PostgreSQL URL",
    );
    let token = shop_testkit::faults::fault_token_file();
    assert_one_line_error(
        &run(&[
            "sink",
            "--data-dir",
            "/proc/labctl-sink",
            "--token-file",
            token.to_str().unwrap(),
        ]),
        "cannot create --data-dir /proc/labctl-sink",
    );
    assert_one_line_error(
        &run(&["sink", "--token-file", missing]),
        "cannot read --token-file /nonexistent/labctl-password",
    );
    assert_one_line_error(
        &run(&[
            "scenario",
            "start",
            "error-burst",
            "--fault-token-file",
            missing,
        ]),
        "cannot read --fault-token-file",
    );
}

#[test]
fn a_scenario_against_a_stopped_service_fails_and_says_so() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let state = common::private_dir();
    let out = labctl()
        .args([
            "scenario",
            "start",
            "error-burst",
            "--for",
            "5s",
            "--frontend-url",
            &url,
        ])
        .args(["--grafana-url", &url, "--no-annotate", "--state-dir"])
        .arg(state.path())
        .arg("--fault-token-file")
        .arg(shop_testkit::faults::fault_token_file())
        .output()
        .unwrap();
    assert_one_line_error(
        &out,
        &format!("scenario error-burst could not start: cannot reach the frontend service at {url}: connection refused"),
    );
}

#[test]
fn help_does_not_print_the_database_password_from_the_environment() {
    for args in [&["--help"][..], &["check", "--help"]] {
        let output = labctl()
            .args(args)
            .env(
                "LABCTL_DATABASE_URL",
                "postgres://grafana_ro:hunter2@db.example/shop",
            )
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}");
        assert!(
            help.contains("[env: LABCTL_DATABASE_URL]"),
            "{args:?}: {help}"
        );
        assert!(!help.contains("hunter2"), "{args:?}: {help}");
    }
}
