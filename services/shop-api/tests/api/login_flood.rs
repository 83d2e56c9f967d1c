//! A login flood against the real `shop-api` binary with one password check at a time and no
//! queue (`--login-hashers 1 --login-queue 0`): the logins beyond the gate are refused with a
//! 429, `Retry-After` and a JSON error, and each still counts as a failed attempt — a
//! `login_attempts` row with success=false and a `login_failed` log line with reason
//! `overloaded` — so the brute-force rule sees the whole flood.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::helpers::{closed_port, migrated_database, spawn_payment, Answer, PAYMENT_TOKEN};

const BINARY: &str = env!("CARGO_BIN_EXE_shop-api");

/// The address the lab's proxy saw, as `X-Forwarded-For` (`--trusted-proxies 1`, as the lab runs).
const ATTACKER: &str = "198.51.100.77";
/// Logins sent at once: many more than the one the gate lets in.
const BURST: usize = 24;

/// The running binary, killed if the test fails before it stops it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The brute-force rule's query, as Grafana runs it (grafana/alert-rules.json).
fn brute_force_rule_sql() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../grafana/alert-rules.json");
    let rules: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    fn raw_sqls<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(sql)) = map.get("rawSql") {
                    found.push(sql);
                }
                map.values().for_each(|v| raw_sqls(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| raw_sqls(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    raw_sqls(&rules, &mut found);
    let per_ip: Vec<_> = found
        .into_iter()
        .filter(|sql| sql.contains("login_attempts") && sql.contains("GROUP BY host(ip_address)"))
        .collect();
    assert_eq!(per_ip.len(), 1, "one brute-force-per-IP rule: {per_ip:?}");
    per_ip[0].to_owned()
}

#[tokio::test]
async fn refused_logins_are_429s_with_retry_after_and_count_as_failed_attempts() {
    let payment = spawn_payment(0.0).await;
    let database_url = migrated_database();
    let logs = std::env::temp_dir().join(format!("shop-api-login-flood-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let port = closed_port();
    let mut api = Running(
        Command::new(BINARY)
            .args(["--database-url", &database_url])
            .arg("--log-dir")
            .arg(&logs)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--payment-url", &format!("http://{payment}")])
            .arg("--payment-token-file")
            .arg(&PAYMENT_TOKEN.path)
            .args([
                "--login-hashers",
                "1",
                "--login-queue",
                "0",
                "--trusted-proxies",
                "1",
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "shop-api did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A burst of wrong passwords for one account, each on a connection of its own.
    let tasks: Vec<_> = (0..BURST)
        .map(|n| {
            let request = reqwest::Client::new()
                .post(format!("{base}/login"))
                .header("x-forwarded-for", ATTACKER)
                .json(&json!({"email": "alice@example.com", "password": format!("guess-{n}")}));
            tokio::spawn(async move { Answer::read(request.send().await.unwrap()).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }

    let checked = answers.iter().filter(|a| a.status == 401).count();
    let refused: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(checked >= 1, "the first login is checked");
    assert!(
        !refused.is_empty(),
        "{BURST} logins at once through one hasher and no queue: some are refused"
    );
    assert_eq!(
        checked + refused.len(),
        BURST,
        "every login is a 401 or a 429: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for answer in &refused {
        let error = answer.body["error"].as_str().unwrap_or_default();
        assert!(error.contains("too many logins"), "{}", answer.body);
        let seconds: u64 = answer
            .retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .expect("whole seconds");
        assert!((1..=60).contains(&seconds), "{seconds}");
        assert!(answer.body.get("session_token").is_none());
    }

    // Every login, refused or checked, is a failed attempt from the attacker's address and
    // against the account.
    let failed_from_attacker = shop_testkit::sql::count(
        &database_url,
        &format!("SELECT count(*) AS n FROM login_attempts WHERE NOT success AND host(ip_address) = '{ATTACKER}'"),
    );
    assert_eq!(failed_from_attacker, BURST as i64);
    let failed_on_account = shop_testkit::sql::count(
        &database_url,
        "SELECT count(*) AS n FROM login_attempts a JOIN customers c ON c.id = a.customer_id \
         WHERE c.email = 'alice@example.com' AND NOT a.success",
    );
    assert_eq!(failed_on_account, BURST as i64);
    // So the brute-force rule counts all of them for the attacker.
    let rule = brute_force_rule_sql();
    assert_eq!(
        shop_testkit::sql::count(
            &database_url,
            &format!(
                "SELECT count(*) AS n FROM ({rule}) AS firing \
                 WHERE ip = '{ATTACKER}' AND failed_logins = {BURST}"
            ),
        ),
        1,
        "the brute-force rule sees every login of the flood"
    );

    let exit = shop_testkit::process::terminate(&mut api.0);
    assert!(exit.success(), "{exit}");
    let text = std::fs::read_to_string(logs.join("api.log")).unwrap();
    let failed: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("every line is JSON"))
        .filter(|l| l["event"] == "login_failed")
        .collect();
    let with_reason = |reason: &str| failed.iter().filter(|l| l["reason"] == reason).count();
    assert_eq!(with_reason("overloaded"), refused.len(), "{text}");
    assert_eq!(with_reason("invalid_credentials"), checked, "{text}");
    assert!(failed
        .iter()
        .all(|l| l["ip"] == ATTACKER && l["email"] == "alice@example.com" && l["level"] == "warn"));
    let _ = std::fs::remove_dir_all(&logs);
}
