//! Rows as Rust types: `Queryable + Selectable` for reads, borrowed `Insertable`s for writes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ipnet::IpNet;
use rust_decimal::Decimal;

use crate::schema::{customer_sessions, customers, login_attempts, orders, products};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = products, check_for_backend(diesel::pg::Pg))]
pub struct Product {
    pub id: i32,
    pub name: String,
    pub description: String,
    pub price: Decimal,
    pub stock_level: i32,
    pub low_stock_threshold: i32,
    pub last_updated: DateTime<Utc>,
}

impl Product {
    /// At or below the reorder threshold.
    pub fn is_low(&self) -> bool {
        self.stock_level <= self.low_stock_threshold
    }

    /// Out of stock or at most a quarter of the threshold left.
    pub fn is_critical(&self) -> bool {
        self.stock_level.saturating_mul(4) <= self.low_stock_threshold
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = customers, check_for_backend(diesel::pg::Pg))]
pub struct Customer {
    pub id: i32,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// The lifecycle of an order: stock is reserved while `Pending`, kept when `Completed`,
/// released when `Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Completed,
    Failed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// Also `QueryableByName`, for order statements the API writes in SQL.
#[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = orders, check_for_backend(diesel::pg::Pg))]
pub struct Order {
    pub id: i64,
    pub product_id: i32,
    pub customer_id: Option<i32>,
    pub quantity: i32,
    pub total_amount: Decimal,
    pub order_status: String,
    pub payment_method: String,
    pub payment_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub order_time: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The id clients see (random); `id` stays internal.
    pub public_id: uuid::Uuid,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = orders)]
pub struct NewOrder<'a> {
    pub product_id: i32,
    pub customer_id: Option<i32>,
    pub quantity: i32,
    pub total_amount: Decimal,
    pub order_status: &'a str,
    pub payment_method: &'a str,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = login_attempts)]
pub struct NewLoginAttempt<'a> {
    pub email: &'a str,
    pub ip_address: IpNet,
    pub success: bool,
    /// The account the email belongs to, when it belongs to one.
    pub customer_id: Option<i32>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = customer_sessions)]
pub struct NewCustomerSession<'a> {
    pub customer_id: i32,
    /// SHA-256 of the session token; the token itself is never stored.
    pub token_hash: &'a [u8],
    pub expires_at: DateTime<Utc>,
}
