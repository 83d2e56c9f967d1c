//! The HTTP API: one OpenAPI struct per resource.

mod login;
mod orders;
mod products;

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use rust_decimal::Decimal;
use shop_db::{
    models::{Order, Product},
    DbError,
};
use shop_telemetry::ErrorBody;

pub use login::LoginApi;
pub use orders::{release_abandoned_orders, OrdersApi};
pub use products::ProductsApi;

#[derive(Debug, Clone, Object)]
pub struct ProductView {
    pub id: i32,
    pub name: String,
    pub description: String,
    /// Unit price, a decimal string with two decimals (`149.00`).
    pub price: String,
    pub stock_level: i32,
    pub low_stock_threshold: i32,
    pub in_stock: bool,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        Self {
            in_stock: p.stock_level > 0,
            id: p.id,
            name: p.name,
            description: p.description,
            price: money(p.price),
            stock_level: p.stock_level,
            low_stock_threshold: p.low_stock_threshold,
        }
    }
}

/// An order as clients see it: its random public id (the internal serial and the payment's
/// transaction id stay inside the shop).
#[derive(Debug, Clone, Object)]
pub struct OrderView {
    /// The order's id for `GET /orders/{id}`: random, so it cannot be guessed.
    pub id: uuid::Uuid,
    pub product_id: i32,
    /// The customer who placed it while logged in; absent for an anonymous order.
    pub customer_id: Option<i32>,
    pub quantity: i32,
    /// A decimal string with two decimals.
    pub total_amount: String,
    /// pending, completed or failed.
    pub status: String,
    pub payment_method: String,
    pub failure_reason: Option<String>,
    pub order_time: DateTime<Utc>,
}

impl From<Order> for OrderView {
    fn from(o: Order) -> Self {
        Self {
            id: o.public_id,
            product_id: o.product_id,
            customer_id: o.customer_id,
            quantity: o.quantity,
            total_amount: money(o.total_amount),
            status: o.order_status,
            payment_method: o.payment_method,
            failure_reason: o.failure_reason,
            order_time: o.order_time,
        }
    }
}

/// Money always shows two decimals (`149.00`), whatever scale the database returned.
fn money(amount: Decimal) -> String {
    format!("{:.2}", amount.round_dp(2))
}

/// A database failure as the client sees it, logged with its cause chain. Clients get 503
/// while PostgreSQL is unreachable (retry later) and 500 otherwise; never the SQL error.
pub(crate) enum DbFailure {
    Unavailable(ErrorBody),
    Internal(ErrorBody),
}

pub(crate) fn db_failure(err: DbError, action: &str) -> DbFailure {
    let cause = error_chain(&err);
    if err.is_unavailable() {
        log::error!(event = "database_unavailable", action = action, cause = cause.as_str(); "database unavailable while {action}: {cause}");
        DbFailure::Unavailable(ErrorBody::new(
            "the database is unavailable; try again shortly",
        ))
    } else {
        log::error!(event = "database_error", action = action, cause = cause.as_str(); "database error while {action}: {cause}");
        DbFailure::Internal(ErrorBody::new("internal error"))
    }
}

/// `outer: inner: innermost`, for logs.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Implements `From<DbFailure>` for a response enum with `Unavailable` and `Internal` variants.
macro_rules! db_failure_into {
    ($ty:ident) => {
        impl From<$crate::api::DbFailure> for $ty {
            fn from(failure: $crate::api::DbFailure) -> Self {
                match failure {
                    $crate::api::DbFailure::Unavailable(body) => {
                        Self::Unavailable(poem_openapi::payload::Json(body))
                    }
                    $crate::api::DbFailure::Internal(body) => {
                        Self::Internal(poem_openapi::payload::Json(body))
                    }
                }
            }
        }
    };
}
pub(crate) use db_failure_into;
