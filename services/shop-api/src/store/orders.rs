//! The order lifecycle in the database. Every step is one transaction that moves stock and
//! order status together, so no order is ever half-written:
//!
//! 1. [`reserve`]: take the stock (only if enough is left) and record the order `pending`;
//! 2. [`complete`]: the payment was authorized, the order becomes `completed`;
//! 3. or [`fail`]: the payment was declined or unavailable, the order becomes `failed` and
//!    its stock is put back;
//! 4. [`release_abandoned`]: orders left `pending` (the API stopped mid-order, or PostgreSQL
//!    went away before step 2 or 3) are failed and their stock put back.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use shop_db::{
    models::{NewOrder, Order, OrderStatus},
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

pub fn reserve(conn: &mut PgConnection, new: &NewReservation<'_>) -> Result<Order, ReserveError> {
    conn.transaction(|conn| {
        // The conditional decrement is the stock check: concurrent orders serialise on the
        // row and stock can never go below zero.
        let price: Option<Decimal> = diesel::update(
            products::table
                .filter(products::id.eq(new.product_id))
                .filter(products::stock_level.ge(new.quantity)),
        )
        .set((
            products::stock_level.eq(products::stock_level - new.quantity),
            products::last_updated.eq(Utc::now()),
        ))
        .returning(products::price)
        .get_result(conn)
        .optional()?;
        let Some(price) = price else {
            let available: Option<i32> = products::table
                .find(new.product_id)
                .select(products::stock_level)
                .first(conn)
                .optional()?;
            return Err(match available {
                None => ReserveError::UnknownProduct,
                Some(available) => ReserveError::InsufficientStock { available },
            });
        };
        let total_amount = (price * Decimal::from(new.quantity)).round_dp(2);
        let order = diesel::insert_into(orders::table)
            .values(NewOrder {
                product_id: new.product_id,
                customer_id: new.customer_id,
                quantity: new.quantity,
                total_amount,
                order_status: OrderStatus::Pending.as_str(),
                payment_method: new.payment_method,
            })
            .returning(Order::as_returning())
            .get_result(conn)?;
        Ok(order)
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
