//! `labctl audit db-role` on a real PostgreSQL with the shop's schema: a role narrowed to
//! what the dashboards need passes; the lab's former role (SELECT on every table) fails on
//! the person data; a role that may write fails on each write, and nothing it tried stays.

use std::process::Output;

use common::labctl;

mod common;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A migrated shop database, and a login role `role` with `grants` run in it.
async fn database_with_role(role: &str, grants: &str) -> (String, String) {
    let pg = shop_testkit::shared_postgres();
    let url = pg.create_migrated_database("shop_template", |url| {
        shop_db::run_migrations(url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let db = url.rsplit('/').next().unwrap().to_owned();
    pg.admin(&format!("CREATE ROLE {role} LOGIN"));
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "GRANT CONNECT ON DATABASE \"{db}\" TO {role}; GRANT USAGE ON SCHEMA public TO {role}; {grants}"
        ))
        .await
        .unwrap();
    client
        .batch_execute(
            "INSERT INTO login_attempts (email, ip_address, success) VALUES ('alice@example.com', '198.51.100.7', false)",
        )
        .await
        .unwrap();
    let role_url = format!("postgres://{role}@127.0.0.1:{}/{db}", pg.port());
    (url, role_url)
}

async fn audit(role_url: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--database-url".to_owned(),
        role_url.to_owned(),
        "audit".into(),
        "db-role".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || labctl().args(&args).output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_with_column_grants_reads_and_is_refused_the_rest() {
    let (_, role_url) = database_with_role(
        "audit_narrow",
        "GRANT SELECT ON products, orders, low_stock_products, order_stats_hourly TO audit_narrow; \
         GRANT SELECT (id, ip_address, success, attempt_time) ON login_attempts TO audit_narrow; \
         GRANT SELECT (id, created_at) ON customers TO audit_narrow;",
    )
    .await;
    let out = audit(&role_url, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("reads: SELECT count(*) FROM login_attempts"),
        "{all}"
    );
    assert!(
        all.contains("refused: SELECT password_hash FROM customers LIMIT 1 (permission denied for table customers)"),
        "{all}"
    );
    assert!(
        all.contains("refused: INSERT INTO orders DEFAULT VALUES"),
        "{all}"
    );
    assert!(
        all.contains(
            "refused: CREATE TABLE intruder (id int) (permission denied for schema public)"
        ),
        "{all}"
    );

    // A statement that fails for another reason proves nothing about privileges.
    let out = audit(
        &role_url,
        &["--refuse", "SELECT no_such_column FROM products"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("`SELECT no_such_column FROM products` failed, but not for lack of privilege (SQLSTATE 42703)"),
        "{}",
        text(&out)
    );
    // And a read it must make but cannot is a finding.
    let out = audit(&role_url, &["--read", "SELECT email FROM login_attempts"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out)
        .contains("`SELECT email FROM login_attempts` must run but failed: permission denied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_on_every_table_is_refused_as_it_reads_person_data() {
    // The grant the lab's role had before it was narrowed.
    let (_, role_url) = database_with_role(
        "audit_wide",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO audit_wide;",
    )
    .await;
    let out = audit(&role_url, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    for allowed in [
        "SELECT password_hash FROM customers LIMIT 1",
        "SELECT email FROM customers LIMIT 1",
        "SELECT email FROM login_attempts LIMIT 1",
    ] {
        assert!(
            all.contains(&format!("FINDING: `{allowed}` was allowed (rolled back)")),
            "{all}"
        );
    }
    assert!(
        all.contains("labctl: error: audit db-role: 3 finding(s)"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_write_fails_and_its_writes_are_rolled_back() {
    let (owner_url, role_url) = database_with_role(
        "audit_writer",
        "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO audit_writer; \
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO audit_writer;",
    )
    .await;
    let stock_before = shop_testkit::sql::count(
        &owner_url,
        "SELECT sum(stock_level)::bigint AS n FROM products",
    );
    let out = audit(&role_url, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    for write in [
        "UPDATE products SET stock_level = 0",
        "DELETE FROM login_attempts",
        "TRUNCATE login_attempts",
    ] {
        assert!(
            all.contains(&format!("FINDING: `{write}` was allowed (rolled back)")),
            "{all}"
        );
    }
    // INSERT INTO orders DEFAULT VALUES breaks a NOT NULL column once it is allowed: a
    // failure for another reason, reported as such.
    assert!(
        all.contains("`INSERT INTO orders DEFAULT VALUES` failed, but not for lack of privilege (SQLSTATE 23502)"),
        "{all}"
    );
    assert_eq!(
        shop_testkit::sql::count(
            &owner_url,
            "SELECT sum(stock_level)::bigint AS n FROM products"
        ),
        stock_before
    );
    assert_eq!(
        shop_testkit::sql::count(&owner_url, "SELECT count(*) AS n FROM login_attempts"),
        1,
        "the DELETE and the TRUNCATE were rolled back"
    );
}
