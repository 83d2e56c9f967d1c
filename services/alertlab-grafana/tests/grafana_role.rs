//! Grafana's read-only PostgreSQL role, made by `grafana/grafana-ro.sh` with
//! `grafana/grafana-ro.sql` exactly as the NixOS unit `alertlab-grafana-ro` makes it, on a real
//! PostgreSQL that logs every statement and asks every role but the superuser for its password:
//! the password never reaches the server's log, the role logs in with it, runs every SQL alert
//! rule and dashboard panel query, and is refused every column that identifies or authenticates
//! a person and every write. Each test uses its own role and database.

use std::{
    fs,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
};

use alertlab_grafana::{query, repo_root, GrafanaFiles, Language};
use diesel::{connection::SimpleConnection, prelude::*, sql_query};
use shop_testkit::TestPostgres;

/// A password with what breaks naive quoting: quotes, a dollar, a backslash, spaces.
const PASSWORD: &str = "s3cret 'quoted' \"pw\" $HOME \\ end";

/// The server of this file: every statement logged, passwords (SCRAM) for every role but
/// `postgres` over TCP.
fn server() -> &'static TestPostgres {
    static SERVER: OnceLock<TestPostgres> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = TestPostgres::start().unwrap_or_else(|e| panic!("{e}"));
        let mut conn = PgConnection::establish(&server.url("postgres")).unwrap();
        #[derive(QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            hba_file: String,
        }
        let hba = sql_query("SELECT setting AS hba_file FROM pg_settings WHERE name = 'hba_file'")
            .get_result::<Setting>(&mut conn)
            .unwrap()
            .hba_file;
        let rules = fs::read_to_string(&hba).unwrap();
        fs::write(
            &hba,
            format!(
                "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n{rules}"
            ),
        )
        .unwrap();
        // One statement per call: ALTER SYSTEM refuses to run in a transaction block.
        conn.batch_execute("ALTER SYSTEM SET log_statement = 'all'")
            .unwrap();
        conn.batch_execute("SELECT pg_reload_conf()").unwrap();
        server
    })
}

fn migrated_database() -> String {
    server().create_migrated_database("shop_template", |url| {
        shop_db::run_migrations(url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// Runs `grafana/grafana-ro.sh` for `role` on the database at `url` (the superuser's), with the
/// password in a file; returns the script's status and stderr.
fn run_role_script(url: &str, role: &str, password_file_text: &str) -> (bool, String) {
    let dir = tempfile_dir(role);
    let password_file = dir.join("password");
    fs::write(&password_file, password_file_text).unwrap();
    let database = url.rsplit('/').next().unwrap();
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("grafana/grafana-ro.sh"))
        .args(["--host", "127.0.0.1", "--port"])
        .arg(server().port().to_string())
        .args(["--username", "postgres", "--dbname", database])
        .env("GRAFANA_RO_ROLE", role)
        .env("GRAFANA_RO_PASSWORD_FILE", &password_file)
        .env("PSQL", server().psql())
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; the child leaves the terminal of `cargo test`, so
    // psql's \password reads standard input as it does in the unit, not the developer's tty.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let output = command.output().expect("bash runs grafana-ro.sh");
    let _ = fs::remove_dir_all(&dir);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("grafana-role-{}-{name}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Percent-encodes a URL component.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A connection as `role` with `password` to the database of `url`.
fn connect_as(url: &str, role: &str, password: &str) -> ConnectionResult<PgConnection> {
    let database = url.rsplit('/').next().unwrap();
    PgConnection::establish(&format!(
        "postgres://{role}:{}@127.0.0.1:{}/{database}",
        encode(password),
        server().port()
    ))
}

/// A role of the lab made by the script on a fresh database; returns the database URL.
fn database_with_role(role: &str) -> String {
    let url = migrated_database();
    let (ok, stderr) = run_role_script(&url, role, &format!("{PASSWORD}\n"));
    assert!(ok, "grafana-ro.sh failed:\n{stderr}");
    url
}

#[test]
fn the_password_is_in_no_logged_statement_and_logs_the_role_in() {
    let role = "grafana_ro_login";
    let url = database_with_role(role);
    connect_as(&url, role, PASSWORD).expect("the role logs in with the file's password");
    let refused = connect_as(&url, role, "s3cret").map(drop).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("password authentication failed"),
        "{refused}"
    );
    let log = fs::read_to_string(server().log_file()).unwrap();
    // The server logged the script's statements (so the search below can find them) ...
    assert!(
        log.contains(&format!("ALTER USER {role} PASSWORD 'SCRAM-SHA-256$")),
        "the server log does not show the role's password being set:\n{log}"
    );
    // ... and the password in none of them, not even in part.
    for secret in [PASSWORD, "s3cret", "quoted"] {
        assert!(
            !log.contains(secret),
            "the server log contains {secret:?}:\n{log}"
        );
    }
}

#[test]
fn an_empty_password_file_is_refused() {
    let url = migrated_database();
    let (ok, stderr) = run_role_script(&url, "grafana_ro_empty", "\n");
    assert!(!ok, "an empty password was accepted");
    assert!(
        stderr.contains("the first line (the password) is empty"),
        "{stderr}"
    );
}

/// Every SQL query of the rules and dashboards, ready to run: alert SQL as it is, panel SQL
/// with Grafana's macros expanded for the last six hours.
fn every_sql_query() -> Vec<(String, String)> {
    let files = GrafanaFiles::load(&repo_root()).unwrap();
    let queries: Vec<_> = files
        .queries()
        .into_iter()
        .filter(|q| q.language == Language::Sql)
        .map(|q| {
            let sql = if q.alerting {
                q.text.clone()
            } else {
                query::expand_postgres_macros(
                    &q.text,
                    "2000-01-01T00:00:00Z",
                    "2100-01-01T00:00:00Z",
                )
                .unwrap()
            };
            (format!("{}: {}: {}", q.file, q.subject, q.field), sql)
        })
        .collect();
    assert!(
        queries.len() >= 9,
        "the rules and dashboards have SQL: {queries:?}"
    );
    queries
}

#[test]
fn the_role_runs_every_sql_rule_and_panel_query() {
    let role = "grafana_ro_queries";
    let url = database_with_role(role);
    let mut owner = PgConnection::establish(&url).unwrap();
    owner
        .batch_execute(
            "INSERT INTO orders (product_id, quantity, total_amount, order_status, payment_method, failure_reason)
             VALUES (1, 1, 149.00, 'completed', 'card', NULL), (2, 2, 239.00, 'failed', 'card', 'declined');
             INSERT INTO login_attempts (email, ip_address, success)
             VALUES ('alice@example.com', '198.51.100.7', false), ('bob@example.com', '198.51.100.8', true);",
        )
        .unwrap();
    let mut conn = connect_as(&url, role, PASSWORD).unwrap();
    let mut failures = Vec::new();
    for (place, sql) in every_sql_query() {
        if let Err(e) = conn.batch_execute(&sql) {
            failures.push(format!("{place}: {e}\n  {sql}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{role} cannot run these queries:\n{}",
        failures.join("\n")
    );
}

/// Statements the role must be refused, with what the refusal protects.
const REFUSED: &[(&str, &str)] = &[
    ("SELECT password_hash FROM customers", "password hashes"),
    ("SELECT email, name FROM customers", "who the customers are"),
    ("SELECT count(*) FROM customers", "the customers table at all"),
    ("SELECT email FROM login_attempts", "who tried to log in"),
    ("SELECT * FROM login_attempts", "every column of the logins"),
    ("SELECT customer_id FROM orders", "who ordered"),
    ("SELECT payment_reference FROM orders", "payment references"),
    ("SELECT * FROM order_stats_hourly", "what no rule or panel reads"),
    ("INSERT INTO orders (product_id, quantity, total_amount, order_status, payment_method) VALUES (1, 1, 1, 'completed', 'card')", "writes"),
    ("UPDATE products SET stock_level = 0", "writes"),
    ("DELETE FROM login_attempts", "writes"),
    ("TRUNCATE orders", "writes"),
    ("SELECT id FROM orders FOR UPDATE", "row locks"),
    ("BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "table locks that stop the shop"),
    ("CREATE TABLE intruder (id int)", "new tables"),
    ("CREATE TEMPORARY TABLE intruder (id int)", "temporary tables (disk)"),
    ("ALTER ROLE CURRENT_USER CONNECTION LIMIT -1", "its connection limit"),
];

#[test]
fn the_role_is_refused_what_identifies_a_person_and_every_write() {
    let role = "grafana_ro_refused";
    let url = database_with_role(role);
    let mut allowed = Vec::new();
    for (statement, what) in REFUSED {
        // A new session per statement: a failed one aborts its transaction.
        let mut conn = connect_as(&url, role, PASSWORD).unwrap();
        match conn.batch_execute(statement) {
            Ok(()) => allowed.push(format!("{statement} ({what}): allowed")),
            Err(e) if e.to_string().contains("permission denied") => {}
            Err(e) => allowed.push(format!(
                "{statement} ({what}): failed, but not for lack of privilege: {e}"
            )),
        }
    }
    assert!(
        allowed.is_empty(),
        "{role} must be refused:\n{}",
        allowed.join("\n")
    );
}

#[test]
fn a_second_run_takes_back_what_earlier_grants_gave() {
    let role = "grafana_ro_upgrade";
    let url = database_with_role(role);
    let mut owner = PgConnection::establish(&url).unwrap();
    // What the lab granted before, and a stray column grant.
    owner
        .batch_execute(&format!(
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role};
             GRANT SELECT (email) ON login_attempts TO {role};"
        ))
        .unwrap();
    assert!(
        connect_as(&url, role, PASSWORD)
            .unwrap()
            .batch_execute("SELECT password_hash FROM customers")
            .is_ok(),
        "the old grants let the role read password hashes"
    );
    let (ok, stderr) = run_role_script(&url, role, PASSWORD);
    assert!(ok, "the second run failed:\n{stderr}");
    owner
        .batch_execute("CREATE TABLE created_later (secret text)")
        .unwrap();
    for statement in [
        "SELECT password_hash FROM customers",
        "SELECT email FROM login_attempts",
        "SELECT * FROM created_later",
    ] {
        let error = connect_as(&url, role, PASSWORD)
            .unwrap()
            .batch_execute(statement)
            .expect_err(statement);
        assert!(
            error.to_string().contains("permission denied"),
            "{statement}: {error}"
        );
    }
    connect_as(&url, role, PASSWORD)
        .unwrap()
        .batch_execute("SELECT count(*) FROM orders WHERE order_status = 'failed'")
        .expect("the role still reads what the rules read");
}
