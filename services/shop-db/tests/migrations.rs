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
    assert_eq!(applied.len(), 2, "{applied:?}");
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
