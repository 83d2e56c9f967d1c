//! Looking at the database in tests.

use diesel::{connection::SimpleConnection, prelude::*, sql_query, sql_types::BigInt};

/// The value of `sql`, a query returning one `bigint` column named `n`.
///
/// # Panics
/// When the database cannot be reached or the query fails.
pub fn count(database_url: &str, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = PgConnection::establish(database_url).unwrap();
    sql_query(sql)
        .get_result::<Count>(&mut conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// Runs statements.
///
/// # Panics
/// When the database cannot be reached or a statement fails.
pub fn execute(database_url: &str, sql: &str) {
    PgConnection::establish(database_url)
        .unwrap()
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A product's stock level.
pub fn stock(database_url: &str, product_id: i32) -> i64 {
    count(
        database_url,
        &format!("SELECT stock_level::bigint AS n FROM products WHERE id = {product_id}"),
    )
}
