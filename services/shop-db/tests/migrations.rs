use diesel::{connection::SimpleConnection, prelude::*, sql_query, sql_types::BigInt};
use shop_db::{run_migrations, schema::products};
use shop_testkit::shared_postgres;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    sql_query(sql).get_result::<Count>(conn).unwrap().n
}

#[test]
fn migrations_apply_once_and_a_second_run_is_a_no_op() {
    let url = shared_postgres().create_database();
    let applied = run_migrations(&url).unwrap();
    assert_eq!(applied.len(), 5, "{applied:?}");
    assert!(run_migrations(&url).unwrap().is_empty());
}

#[test]
fn the_seed_has_a_realistic_catalog_and_customers() {
    let url = shared_postgres().create_database();
    run_migrations(&url).unwrap();
    let mut conn = PgConnection::establish(&url).unwrap();
    assert!(count(&mut conn, "SELECT count(*) AS n FROM products") >= 20);
    assert!(count(&mut conn, "SELECT count(*) AS n FROM customers") >= 5);
    // Healthy state: nothing is low yet.
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM low_stock_products"),
        0
    );
    let names: Vec<String> = products::table
        .select(products::name)
        .load(&mut conn)
        .unwrap();
    assert!(names.iter().all(|n| !n.is_empty()));
}

#[test]
fn the_views_follow_the_tables() {
    let url = shared_postgres().create_database();
    run_migrations(&url).unwrap();
    let mut conn = PgConnection::establish(&url).unwrap();
    conn.batch_execute(
        "UPDATE products SET stock_level = low_stock_threshold WHERE id = 1;
         INSERT INTO orders (product_id, quantity, total_amount, order_status, payment_method)
         VALUES (1, 2, 10.00, 'completed', 'card'), (1, 1, 5.00, 'failed', 'card');",
    )
    .unwrap();
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM low_stock_products"),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT sum(orders)::bigint AS n FROM order_stats_hourly"
        ),
        2
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT items::bigint AS n FROM order_stats_hourly WHERE order_status = 'completed'"
        ),
        2
    );
}

#[test]
fn the_schema_refuses_negative_stock_and_unknown_statuses() {
    let url = shared_postgres().create_database();
    run_migrations(&url).unwrap();
    let mut conn = PgConnection::establish(&url).unwrap();
    assert!(conn
        .batch_execute("UPDATE products SET stock_level = -1 WHERE id = 1")
        .is_err());
    assert!(conn
        .batch_execute(
            "INSERT INTO orders (product_id, quantity, total_amount, order_status, payment_method)
             VALUES (1, 1, 1.00, 'shipped', 'card')"
        )
        .is_err());
}

#[test]
fn orders_get_random_public_ids_and_sessions_take_only_token_hashes() {
    let url = shared_postgres().create_database();
    run_migrations(&url).unwrap();
    let mut conn = PgConnection::establish(&url).unwrap();
    conn.batch_execute(
        "INSERT INTO orders (product_id, quantity, total_amount, order_status, payment_method)
         SELECT 1, 1, 1.00, 'completed', 'card' FROM generate_series(1, 50);",
    )
    .unwrap();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(DISTINCT public_id) AS n FROM orders WHERE public_id::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'"
        ),
        50,
        "version 4 UUIDs, one per order"
    );
    // A token hash is a SHA-256 (32 bytes); anything else, a token in clear say, is refused.
    conn.batch_execute(
        "INSERT INTO customer_sessions (customer_id, token_hash, expires_at)
         VALUES (1, sha256('token'), now() + interval '1 hour')",
    )
    .unwrap();
    assert!(conn
        .batch_execute(
            "INSERT INTO customer_sessions (customer_id, token_hash, expires_at)
             VALUES (1, 'a-token-in-clear'::bytea, now() + interval '1 hour')"
        )
        .is_err());
}

#[test]
fn attempts_recorded_before_the_account_column_are_given_their_account() {
    use diesel_migrations::MigrationHarness;
    let url = shared_postgres().create_database();
    let mut conn = PgConnection::establish(&url).unwrap();
    // The schema and the seed, as a lab that ran before this migration has them.
    for _ in 0..2 {
        conn.run_next_migration(shop_db::MIGRATIONS).unwrap();
    }
    conn.batch_execute(
        "INSERT INTO login_attempts (email, ip_address, success)
         VALUES ('alice@example.com', '192.0.2.1', false), ('nobody@example.net', '192.0.2.2', false);",
    )
    .unwrap();
    run_migrations(&url).unwrap();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM login_attempts a JOIN customers c ON c.id = a.customer_id \
             WHERE c.email = 'alice@example.com' AND a.email = c.email"
        ),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM login_attempts WHERE customer_id IS NULL AND email = 'nobody@example.net'"
        ),
        1
    );
}
