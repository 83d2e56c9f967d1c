//! The order lifecycle in the database. Every step is one transaction that moves stock and
//! order status together, so no order is ever half-written:
//!
//! 1. [`reserve`]: take the stock (only if enough is left) and record the order `pending`, in
//!    one statement;
//! 2. [`complete`]: the payment was authorized, the order becomes `completed`;
//! 3. or [`fail`]: the payment was declined or unavailable, the order becomes `failed` and
//!    its stock is put back;
//! 4. [`release_abandoned`]: orders left `pending` (the API stopped mid-order, or PostgreSQL
//!    went away before step 2 or 3) are failed and their stock put back.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Integer, Nullable, Text},
};
use shop_db::{
    models::{Order, OrderStatus},
    schema::{orders, products},
};

#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    #[error("unknown product")]
    UnknownProduct,
    #[error("only {available} left in stock")]
    InsufficientStock { available: i32 },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

pub struct NewReservation<'a> {
    pub product_id: i32,
    pub quantity: i32,
    pub customer_id: Option<i32>,
    pub payment_method: &'a str,
}

/// The reservation in one statement, so one round trip: the conditional decrement is the
/// stock check (concurrent orders serialise on the product's row and stock never goes below
/// zero), and the order is inserted only if the decrement happened — both or neither, as a
/// single statement is its own transaction.
///
/// diesel sends raw SQL (like its `UPDATE`s) unprepared, so PostgreSQL plans it on every
/// execution. That costs CPU but keeps the plan right: a prepared statement's generic plan,
/// made while `products` and `orders` are small, is a sequential scan that slows down as
/// frequent updates leave dead rows behind (measured by bench/run; see bench/README.md).
const RESERVE_SQL: &str = "\
WITH reserved AS (
    UPDATE products SET stock_level = stock_level - $2, last_updated = now()
    WHERE id = $1 AND stock_level >= $2
    RETURNING id, price
)
INSERT INTO orders (product_id, customer_id, quantity, total_amount, order_status, payment_method)
SELECT id, $3, $2, round(price * $2, 2), $4, $5 FROM reserved
RETURNING id, product_id, customer_id, quantity, total_amount, order_status, payment_method,
          payment_reference, failure_reason, order_time, updated_at";

pub fn reserve(conn: &mut PgConnection, new: &NewReservation<'_>) -> Result<Order, ReserveError> {
    let order: Option<Order> = diesel::sql_query(RESERVE_SQL)
        .bind::<Integer, _>(new.product_id)
        .bind::<Integer, _>(new.quantity)
        .bind::<Nullable<Integer>, _>(new.customer_id)
        .bind::<Text, _>(OrderStatus::Pending.as_str())
        .bind::<Text, _>(new.payment_method)
        .get_result(conn)
        .optional()?;
    if let Some(order) = order {
        return Ok(order);
    }
    let available: Option<i32> = products::table
        .find(new.product_id)
        .select(products::stock_level)
        .first(conn)
        .optional()?;
    Err(match available {
        None => ReserveError::UnknownProduct,
        Some(available) => ReserveError::InsufficientStock { available },
    })
}

/// Marks a pending order paid. `None` when it is no longer pending (released meanwhile).
pub fn complete(
    conn: &mut PgConnection,
    order_id: i64,
    payment_reference: &str,
) -> QueryResult<Option<Order>> {
    diesel::update(
        orders::table
            .filter(orders::id.eq(order_id))
            .filter(orders::order_status.eq(OrderStatus::Pending.as_str())),
    )
    .set((
        orders::order_status.eq(OrderStatus::Completed.as_str()),
        orders::payment_reference.eq(payment_reference),
        orders::updated_at.eq(Utc::now()),
    ))
    .returning(Order::as_returning())
    .get_result(conn)
    .optional()
}

/// Fails a pending order and puts its stock back. `None` when it is no longer pending.
pub fn fail(conn: &mut PgConnection, order_id: i64, reason: &str) -> QueryResult<Option<Order>> {
    conn.transaction(|conn| {
        let order: Option<Order> = diesel::update(
            orders::table
                .filter(orders::id.eq(order_id))
                .filter(orders::order_status.eq(OrderStatus::Pending.as_str())),
        )
        .set((
            orders::order_status.eq(OrderStatus::Failed.as_str()),
            orders::failure_reason.eq(reason),
            orders::updated_at.eq(Utc::now()),
        ))
        .returning(Order::as_returning())
        .get_result(conn)
        .optional()?;
        if let Some(order) = &order {
            restock(conn, order.product_id, order.quantity)?;
        }
        Ok(order)
    })
}

/// Fails orders pending since before `cutoff` and puts their stock back; returns them.
pub fn release_abandoned(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
) -> QueryResult<Vec<Order>> {
    conn.transaction(|conn| {
        let released: Vec<Order> = diesel::update(
            orders::table
                .filter(orders::order_status.eq(OrderStatus::Pending.as_str()))
                .filter(orders::order_time.lt(cutoff)),
        )
        .set((
            orders::order_status.eq(OrderStatus::Failed.as_str()),
            orders::failure_reason.eq("abandoned"),
            orders::updated_at.eq(Utc::now()),
        ))
        .returning(Order::as_returning())
        .get_results(conn)?;
        for order in &released {
            restock(conn, order.product_id, order.quantity)?;
        }
        Ok(released)
    })
}

pub fn get(conn: &mut PgConnection, order_id: i64) -> QueryResult<Option<Order>> {
    orders::table
        .find(order_id)
        .select(Order::as_select())
        .first(conn)
        .optional()
}

fn restock(conn: &mut PgConnection, product_id: i32, quantity: i32) -> QueryResult<()> {
    diesel::update(products::table.find(product_id))
        .set((
            products::stock_level.eq(products::stock_level + quantity),
            products::last_updated.eq(Utc::now()),
        ))
        .execute(conn)
        .map(|_| ())
}
