//! Synchronous diesel queries; handlers and the monitor run them through `Database::run`.

use chrono::Utc;
use diesel::prelude::*;
use shop_db::{models::Product, schema::products};

pub fn all_products(conn: &mut PgConnection) -> QueryResult<Vec<Product>> {
    products::table
        .select(Product::as_select())
        .order(products::id)
        .load(conn)
}

pub fn set_stock(conn: &mut PgConnection, id: i32, level: i32) -> QueryResult<Option<Product>> {
    diesel::update(products::table.find(id))
        .set((
            products::stock_level.eq(level),
            products::last_updated.eq(Utc::now()),
        ))
        .returning(Product::as_returning())
        .get_result(conn)
        .optional()
}

/// The most units a product may hold; keeps levels far from integer overflow.
pub const MAX_STOCK: i32 = 1_000_000;

/// What a restock came to. Refusals are values and database failures the `Err` of the
/// `QueryResult`, so `Database::run` sees every failed query (and drops a dead connection).
#[derive(Debug)]
pub enum RestockOutcome {
    Restocked(Product),
    UnknownProduct,
    /// The stock level would exceed [`MAX_STOCK`].
    TooMuch,
}

pub fn add_stock(conn: &mut PgConnection, id: i32, quantity: i32) -> QueryResult<RestockOutcome> {
    let updated = diesel::update(
        products::table
            .find(id)
            .filter(products::stock_level.le(MAX_STOCK - quantity)),
    )
    .set((
        products::stock_level.eq(products::stock_level + quantity),
        products::last_updated.eq(Utc::now()),
    ))
    .returning(Product::as_returning())
    .get_result(conn)
    .optional()?;
    match updated {
        Some(product) => Ok(RestockOutcome::Restocked(product)),
        None if products::table.find(id).count().get_result::<i64>(conn)? == 0 => {
            Ok(RestockOutcome::UnknownProduct)
        }
        None => Ok(RestockOutcome::TooMuch),
    }
}

/// Refills a product to `level` if it is still at or below `reorder_point` (someone may have
/// restocked it since it was read). `None` when no refill was needed.
pub fn restock_if_at_most(
    conn: &mut PgConnection,
    id: i32,
    reorder_point: i32,
    level: i32,
) -> QueryResult<Option<Product>> {
    diesel::update(
        products::table
            .find(id)
            .filter(products::stock_level.le(reorder_point)),
    )
    .set((
        products::stock_level.eq(level),
        products::last_updated.eq(Utc::now()),
    ))
    .returning(Product::as_returning())
    .get_result(conn)
    .optional()
}
