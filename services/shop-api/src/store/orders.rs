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
    pg::Pg,
    prelude::*,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::{BigInt, Integer, Nullable, Text, Untyped},
};
use shop_db::{
    models::{Order, OrderStatus},
    schema::{orders, products},
};

/// What a reservation came to. Refusals are values and database failures the `Err` of the
/// `QueryResult`, so `Database::run` sees every failed query (and drops a dead connection).
#[derive(Debug)]
pub enum Reservation {
    Reserved(Order),
    UnknownProduct,
    InsufficientStock { available: i32 },
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
pub fn reserve(conn: &mut PgConnection, new: &NewReservation<'_>) -> QueryResult<Reservation> {
    let order: Option<Order> = ReserveStatement(new).get_result(conn).optional()?;
    if let Some(order) = order {
        return Ok(Reservation::Reserved(order));
    }
    let available: Option<i32> = products::table
        .find(new.product_id)
        .select(products::stock_level)
        .first(conn)
        .optional()?;
    Ok(match available {
        None => Reservation::UnknownProduct,
        Some(available) => Reservation::InsufficientStock { available },
    })
}

/// Marks a pending order paid. `None` when it is no longer pending (released meanwhile).
pub fn complete(
    conn: &mut PgConnection,
    order_id: i64,
    payment_reference: &str,
) -> QueryResult<Option<Order>> {
    CompleteStatement {
        order_id,
        payment_reference,
    }
    .get_result(conn)
    .optional()
}

// The two statements of every order are prepared once per connection, like diesel's
// `SELECT`s: diesel never prepares its `UPDATE`s or `sql_query`, and parsing and planning them
// on every order was over half of PostgreSQL's CPU time per order (bench/README.md). Each is a
// type with a static query id, which is what diesel's statement cache keys on. Values are bound
// as parameters, so PostgreSQL's generic plan does not depend on them.

const ORDER_COLUMNS: &str = "id, product_id, customer_id, quantity, total_amount, order_status, \
    payment_method, payment_reference, failure_reason, order_time, updated_at, public_id";

/// [`reserve`]'s statement (bench/pgbench/order.sql runs the same).
struct ReserveStatement<'a>(&'a NewReservation<'a>);

impl QueryId for ReserveStatement<'_> {
    type QueryId = ReserveStatement<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for ReserveStatement<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<PgConnection> for ReserveStatement<'_> {}

impl QueryFragment<Pg> for ReserveStatement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let new = self.0;
        out.push_sql("WITH reserved AS (UPDATE products SET stock_level = stock_level - ");
        out.push_bind_param::<Integer, _>(&new.quantity)?;
        out.push_sql(", last_updated = now() WHERE id = ");
        out.push_bind_param::<Integer, _>(&new.product_id)?;
        out.push_sql(" AND stock_level >= ");
        out.push_bind_param::<Integer, _>(&new.quantity)?;
        out.push_sql(
            " RETURNING id, price) INSERT INTO orders \
             (product_id, customer_id, quantity, total_amount, order_status, payment_method) \
             SELECT id, ",
        );
        out.push_bind_param::<Nullable<Integer>, _>(&new.customer_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&new.quantity)?;
        out.push_sql(", round(price * ");
        out.push_bind_param::<Integer, _>(&new.quantity)?;
        out.push_sql(", 2), ");
        out.push_bind_param::<Text, _>(OrderStatus::Pending.as_str())?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&new.payment_method)?;
        out.push_sql(" FROM reserved RETURNING ");
        out.push_sql(ORDER_COLUMNS);
        Ok(())
    }
}

/// [`complete`]'s statement.
struct CompleteStatement<'a> {
    order_id: i64,
    payment_reference: &'a str,
}

impl QueryId for CompleteStatement<'_> {
    type QueryId = CompleteStatement<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for CompleteStatement<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<PgConnection> for CompleteStatement<'_> {}

impl QueryFragment<Pg> for CompleteStatement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE orders SET order_status = ");
        out.push_bind_param::<Text, _>(OrderStatus::Completed.as_str())?;
        out.push_sql(", payment_reference = ");
        out.push_bind_param::<Text, _>(&self.payment_reference)?;
        out.push_sql(", updated_at = now() WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.order_id)?;
        out.push_sql(" AND order_status = ");
        out.push_bind_param::<Text, _>(OrderStatus::Pending.as_str())?;
        out.push_sql(" RETURNING ");
        out.push_sql(ORDER_COLUMNS);
        Ok(())
    }
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

/// An order by the id clients know it by.
pub fn by_public_id(conn: &mut PgConnection, public_id: uuid::Uuid) -> QueryResult<Option<Order>> {
    orders::table
        .filter(orders::public_id.eq(public_id))
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
