//! Who is calling: a customer with a session from `POST /login` (`Authorization: Bearer
//! <session_token>`), or nobody in particular. Tokens are 256 random bits shown to the
//! customer once; the database keeps only their SHA-256, so reading it logs nobody in.

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::Request;
use rand::RngCore;
use sha2::{Digest, Sha256};
use shop_db::{Database, DbError};
use shop_telemetry::bearer::presented_bearer;

use crate::store;

/// Hex digits of a session token.
const TOKEN_HEX_LENGTH: usize = 64;

/// A new session's token (for the customer) and its hash (for the database).
pub struct NewToken {
    pub token: String,
    pub hash: [u8; 32],
}

impl NewToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        // ThreadRng is a CSPRNG seeded from the operating system.
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let hash = token_hash(&token);
        Self { token, hash }
    }
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The caller of an order operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Customer(i32),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A bearer token that is no (longer a) session: the client meant to be someone, so it
    /// is told rather than served anonymously.
    #[error("the session is invalid or has expired")]
    InvalidSession,
    #[error(transparent)]
    Database(#[from] DbError),
}

#[derive(Clone)]
pub struct Sessions {
    db: Database,
    ttl: Duration,
}

impl Sessions {
    pub fn new(db: Database, ttl: Duration) -> Self {
        Self { db, ttl }
    }

    /// When a session opened now expires.
    pub fn expiry(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(1))
    }

    /// The caller of `req`: anonymous without an `Authorization` header, the session's
    /// customer with a valid one, an error with any other.
    pub async fn caller(&self, req: &Request) -> Result<Caller, AuthError> {
        if req.headers().get("authorization").is_none() {
            return Ok(Caller::Anonymous);
        }
        let token = presented_bearer(req).ok_or(AuthError::InvalidSession)?;
        if token.len() != TOKEN_HEX_LENGTH || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::InvalidSession);
        }
        let hash = token_hash(&token.to_ascii_lowercase());
        let customer = self
            .db
            .run(move |conn| store::sessions::customer_of(conn, &hash, Utc::now()))
            .await?;
        customer
            .map(Caller::Customer)
            .ok_or(AuthError::InvalidSession)
    }
}

/// Every ten minutes, deletes expired sessions (the table stays the size of the live ones).
pub async fn purge_expired_sessions(db: Database) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match db
            .run(|conn| store::sessions::purge_expired(conn, Utc::now()))
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                log::debug!(event = "sessions_purged", count = n; "deleted {n} expired session(s)")
            }
            Err(err) if err.is_unavailable() => {}
            Err(err) => {
                let cause = crate::api::error_chain(&err);
                log::error!(event = "database_error", action = "purging expired sessions", cause = cause.as_str(); "purging expired sessions failed: {cause}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_only_their_hash_is_kept() {
        let a = NewToken::generate();
        let b = NewToken::generate();
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), TOKEN_HEX_LENGTH);
        assert!(a.token.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.hash, token_hash(&a.token));
        assert_ne!(a.hash, b.hash);
    }
}
