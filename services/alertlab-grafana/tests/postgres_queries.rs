//! The SQL of the rules and panels on a real PostgreSQL with the lab's schema and a realistic
//! order history: what they return for the cases that went wrong, and how the hourly stats
//! panel reads the orders table (`EXPLAIN ANALYZE`).

use alertlab_grafana::{query, repo_root, GrafanaFiles};
use diesel::{
    connection::SimpleConnection,
    prelude::*,
    sql_query,
    sql_types::{BigInt, Double, Text},
};
use serde_json::Value;
use shop_testkit::shared_postgres;

fn migrated_database() -> PgConnection {
    let url = shared_postgres().create_migrated_database("shop_template", |url| {
        shop_db::run_migrations(url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut conn = PgConnection::establish(&url).unwrap();
    // Hours are cut in the session's time zone; these tests reason in UTC.
    conn.batch_execute("SET TIME ZONE 'UTC'").unwrap();
    conn
}

fn files() -> GrafanaFiles {
    GrafanaFiles::load(&repo_root()).unwrap()
}

/// The SQL of the rule `uid`'s query A.
fn rule_sql(uid: &str) -> String {
    let files = files();
    let rule = files.rules.rules().find(|r| r.uid == uid).unwrap();
    rule.step("A").unwrap().raw_sql().unwrap().to_string()
}

/// The SQL of the panel titled `title` of dashboard `uid`.
fn panel_sql(uid: &str, title: &str) -> String {
    let files = files();
    let (_, dashboard) = files.dashboards.iter().find(|(_, d)| d.uid == uid).unwrap();
    let panel = dashboard
        .all_panels()
        .into_iter()
        .map(|(_, p)| p)
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title:?} in {uid}"));
    panel["targets"][0]["rawSql"].as_str().unwrap().to_string()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct IpCount {
    #[diesel(sql_type = Text)]
    ip: String,
    #[diesel(sql_type = Double)]
    failed_logins: f64,
}

#[test]
fn brute_force_counts_per_address_as_it_labels() {
    let mut conn = migrated_database();
    // One client address stored with two netmasks (inet keeps them apart), four failures each,
    // and a quiet address with two.
    conn.batch_execute(
        "INSERT INTO login_attempts (email, ip_address, success, attempt_time)
         SELECT 'x@example.com', ip::inet, false, now() - interval '30 seconds'
         FROM (VALUES ('203.0.113.9/32'), ('203.0.113.9/24'), ('198.51.100.1/32')) AS v (ip),
              generate_series(1, 4) AS n
         WHERE ip <> '198.51.100.1/32' OR n <= 2",
    )
    .unwrap();
    let rows: Vec<IpCount> = sql_query(rule_sql("alertlab-brute-force-login"))
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        rows,
        vec![IpCount {
            ip: "203.0.113.9".into(),
            failed_logins: 8.0
        }],
        "one instance per address shown, counting all its failures"
    );
}

/// Orders every 2 s for the seven days up to the current hour (the traffic generator's rate),
/// one in fifty failed.
const ORDER_HISTORY: &str = "
    INSERT INTO orders (product_id, quantity, total_amount, order_status, payment_method, order_time, updated_at)
    SELECT 1 + n % 24, 1 + n % 3, 19.90 * (1 + n % 3),
           CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'completed' END,
           'card', t, t
    FROM generate_series(0, 7 * 86400 / 2 - 1) AS n,
         LATERAL (SELECT date_trunc('hour', now()) - interval '7 days' + n * interval '2 seconds' AS t) AS at";

#[derive(QueryableByName)]
struct Range {
    #[diesel(sql_type = Text)]
    hour: String,
    #[diesel(sql_type = Text)]
    from: String,
    #[diesel(sql_type = Text)]
    to: String,
}

/// A dashboard range inside one past hour, from hh:31 to hh:59:59 (what now-30m shows at
/// hh:01 of the next hour, and half of every hour shows with ranges starting after hh:00), as
/// Grafana writes it into the macros (RFC 3339, UTC).
fn range_from_31(conn: &mut PgConnection) -> Range {
    sql_query(
        "SELECT to_char(h, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS hour,
                to_char(h + interval '31 minutes', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS from,
                to_char(h + interval '59 minutes 59 seconds', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS to
         FROM (SELECT date_trunc('hour', now()) - interval '3 hours' AS h) AS x",
    )
    .get_result(conn)
    .unwrap()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct HourRow {
    #[diesel(sql_type = Text)]
    hour: String,
    #[diesel(sql_type = Text)]
    order_status: String,
    #[diesel(sql_type = BigInt)]
    orders: i64,
}

#[test]
fn hourly_order_stats_show_the_hour_a_range_from_31_overlaps() {
    let mut conn = migrated_database();
    conn.batch_execute(ORDER_HISTORY).unwrap();
    let range = range_from_31(&mut conn);
    let sql = query::expand_postgres_macros(
        &panel_sql("alertlab-business", "Hourly order stats (PostgreSQL)"),
        &range.from,
        &range.to,
    )
    .unwrap();
    let rows: Vec<HourRow> = sql_query(format!(
        "SELECT to_char(hour, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS hour, order_status, orders
         FROM ({sql}) AS panel ORDER BY 2"
    ))
    .load(&mut conn)
    .unwrap();
    // The whole hour up to the range's end: every order of the hour, since the range ends at
    // its last second.
    let expected = |status: &str, orders: i64| HourRow {
        hour: range.hour.clone(),
        order_status: status.into(),
        orders,
    };
    assert_eq!(
        rows,
        vec![expected("completed", 1764), expected("failed", 36)],
        "the range {} .. {} overlaps the hour {}",
        range.from,
        range.to,
        range.hour
    );
}

/// Every node of an EXPLAIN (FORMAT JSON) plan.
fn plan_nodes<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(node);
    for child in node["Plans"].as_array().into_iter().flatten() {
        plan_nodes(child, out);
    }
}

#[test]
fn hourly_order_stats_read_only_the_hours_in_range() {
    let mut conn = migrated_database();
    conn.batch_execute(ORDER_HISTORY).unwrap();
    conn.batch_execute("ANALYZE orders").unwrap();
    let range = range_from_31(&mut conn);
    let sql = query::expand_postgres_macros(
        &panel_sql("alertlab-business", "Hourly order stats (PostgreSQL)"),
        &range.from,
        &range.to,
    )
    .unwrap();
    let explained: ExplainJson = sql_query(format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}"))
        .get_result(&mut conn)
        .unwrap();
    let plan: Value = serde_json::from_str(&explained.plan).unwrap();
    let root = &plan[0]["Plan"];
    let mut nodes = Vec::new();
    plan_nodes(root, &mut nodes);
    let text: String = sql_query(format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}"))
        .load::<ExplainText>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|l| l.line + "\n")
        .collect();
    eprintln!(
        "Hourly order stats over {} .. {} with 7 days of orders:\n{text}",
        range.from, range.to
    );
    let orders_scans: Vec<&&Value> = nodes
        .iter()
        .filter(|n| n["Relation Name"] == "orders")
        .collect();
    assert!(!orders_scans.is_empty(), "the plan reads orders:\n{text}");
    for scan in &orders_scans {
        assert_ne!(
            scan["Node Type"], "Seq Scan",
            "the panel scans the whole orders table:\n{text}"
        );
    }
    assert!(
        nodes
            .iter()
            .any(|n| n["Index Name"] == "orders_order_time_idx"),
        "the panel does not use the index on order_time:\n{text}"
    );
    // It reads the orders of the hour the range starts in up to its end: 1,800 of 302,400.
    let read: i64 = orders_scans
        .iter()
        .filter_map(|n| n["Actual Rows"].as_i64())
        .sum();
    assert_eq!(read, 1800, "rows read from orders:\n{text}");
}

#[derive(QueryableByName)]
struct ExplainJson {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

#[derive(QueryableByName)]
struct ExplainText {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}
