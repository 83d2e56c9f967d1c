//! Embedded migrations, run once before the services start (`shop-api migrate`, a systemd
//! oneshot in the NixOS module). Running them again is a no-op; two migrators racing are
//! serialised by an advisory lock.

use diesel::{connection::SimpleConnection, Connection, PgConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Arbitrary constant naming the shop's migration lock.
const MIGRATION_LOCK_KEY: i64 = 0x0a1e_47ab;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot connect to the database")]
    Connect(#[from] diesel::ConnectionError),
    #[error("cannot take the migration lock")]
    Lock(#[source] diesel::result::Error),
    #[error("a migration failed: {0}")]
    Migration(String),
    #[error("the database schema is not up to date ({} pending migration(s): {}); run `shop-api migrate` first", .0.len(), .0.join(", "))]
    Pending(Vec<String>),
}

/// Applies pending migrations; returns the versions it applied (empty when up to date).
pub fn run_migrations(database_url: &str) -> Result<Vec<String>, MigrationError> {
    let mut conn = PgConnection::establish(database_url)?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .map_err(MigrationError::Lock)?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|err| MigrationError::Migration(err.to_string()));
    // The lock also goes away with the connection; unlocking early is only politeness.
    let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
    result
}

/// Names of migrations not yet applied; services refuse to start against an old schema.
pub fn pending_migrations(conn: &mut PgConnection) -> Result<Vec<String>, MigrationError> {
    conn.pending_migrations(MIGRATIONS)
        .map(|pending| pending.iter().map(|m| m.name().to_string()).collect())
        .map_err(|err| MigrationError::Migration(err.to_string()))
}

/// Checks at a service's startup that the migrations have run. A service refuses to serve an
/// old schema, but starts while PostgreSQL is unreachable (it may come up later; meanwhile
/// `/healthz` says degraded): then this logs a warning and returns `Ok`.
pub async fn ensure_schema_current(database_url: &str) -> Result<(), MigrationError> {
    let url = database_url.to_owned();
    let pending = tokio::task::spawn_blocking(move || {
        PgConnection::establish(&url)
            .ok()
            .map(|mut conn| pending_migrations(&mut conn))
    })
    .await
    .map_err(|err| MigrationError::Migration(err.to_string()))?;
    match pending {
        None => {
            log::warn!(event = "database_unavailable", action = "checking the schema"; "the database is not reachable at startup; serving degraded until it is");
            Ok(())
        }
        Some(Ok(pending)) if pending.is_empty() => Ok(()),
        Some(Ok(pending)) => Err(MigrationError::Pending(pending)),
        Some(Err(err)) => Err(err),
    }
}
