//! Customer sessions: only the SHA-256 of a token is stored, with its expiry.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use shop_db::{models::NewCustomerSession, schema::customer_sessions};

/// Sessions kept per customer; logging in again beyond this ends the oldest, so repeated
/// logins cannot grow the table without bound.
pub const MAX_SESSIONS_PER_CUSTOMER: i64 = 20;

pub fn create(conn: &mut PgConnection, session: &NewCustomerSession<'_>) -> QueryResult<()> {
    diesel::insert_into(customer_sessions::table)
        .values(session)
        .execute(conn)?;
    // The newest sessions have the highest ids.
    let stale: Vec<i64> = customer_sessions::table
        .filter(customer_sessions::customer_id.eq(session.customer_id))
        .order(customer_sessions::id.desc())
        .offset(MAX_SESSIONS_PER_CUSTOMER)
        .select(customer_sessions::id)
        .load(conn)?;
    if !stale.is_empty() {
        diesel::delete(customer_sessions::table.filter(customer_sessions::id.eq_any(stale)))
            .execute(conn)?;
    }
    Ok(())
}

/// The customer of an unexpired session.
pub fn customer_of(
    conn: &mut PgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<Option<i32>> {
    customer_sessions::table
        .filter(customer_sessions::token_hash.eq(token_hash))
        .filter(customer_sessions::expires_at.gt(now))
        .select(customer_sessions::customer_id)
        .first(conn)
        .optional()
}

/// Deletes expired sessions; returns how many.
pub fn purge_expired(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(customer_sessions::table.filter(customer_sessions::expires_at.le(now)))
        .execute(conn)
}
