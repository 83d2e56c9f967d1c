//! The shop's PostgreSQL database: schema, models, embedded migrations, the connection pool and
//! [`Database::run`], the one way services run a (blocking) diesel query from async code.

pub mod migrate;
pub mod models;
pub mod pool;
pub mod schema;

pub use migrate::{run_migrations, MigrationError, MIGRATIONS};
pub use pool::{Database, DbError, PoolSettings};

pub type DbConnection = diesel::PgConnection;
