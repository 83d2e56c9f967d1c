//! The connection pool and [`Database::run`], which runs a blocking diesel closure on tokio's
//! blocking pool (acquiring the connection there too, since `pool.get()` blocks).
//!
//! The pool is built lazily, so a service starts and serves `/healthz` and `/metrics` while
//! PostgreSQL is down. A connection that fails is pinged; if the ping fails too it is dropped
//! instead of going back to the pool, so the service recovers by itself once PostgreSQL returns
//! (diesel alone only drops connections whose transaction state is broken).

use std::time::Duration;

use diesel::{
    connection::SimpleConnection,
    r2d2::{self, ManageConnection, R2D2Connection},
    Connection, PgConnection,
};

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: u32,
    /// How long a request waits for a connection before it is answered 503.
    pub connection_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 10,
            connection_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had: PostgreSQL is down, unreachable, or the pool is exhausted.
    #[error("database unavailable")]
    Unavailable(#[source] r2d2::PoolError),
    /// A query failed. The connection-level kinds mean PostgreSQL went away mid-request.
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    /// The blocking task was cancelled or panicked.
    #[error("database task did not complete")]
    Task(#[from] tokio::task::JoinError),
}

impl DbError {
    /// True when the failure is PostgreSQL being unreachable, not a bad query: callers answer
    /// 503 so clients retry, and alerting tells outages from bugs.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Self::Unavailable(_) => true,
            Self::Query(Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            )) => true,
            Self::Query(Error::BrokenTransactionManager) => true,
            // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now
            Self::Query(Error::DatabaseError(_, info)) => {
                info.message().contains("terminating connection")
                    || info.message().contains("server closed the connection")
                    || info.message().contains("the database system is")
            }
            _ => false,
        }
    }
}

/// A pooled PostgreSQL connection plus whether it is known to be dead.
pub struct PooledPg {
    connection: PgConnection,
    broken: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Connect(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Ping(#[from] diesel::result::Error),
}

struct PgManager {
    url: String,
}

impl ManageConnection for PgManager {
    type Connection = PooledPg;
    type Error = ManagerError;

    fn connect(&self) -> Result<PooledPg, ManagerError> {
        Ok(PooledPg {
            connection: PgConnection::establish(&self.url)?,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut PooledPg) -> Result<(), ManagerError> {
        Ok(conn.connection.batch_execute("SELECT 1")?)
    }

    fn has_broken(&self, conn: &mut PooledPg) -> bool {
        conn.broken || conn.connection.is_broken()
    }
}

/// Errors from r2d2's background connection attempts are expected while PostgreSQL is down;
/// requests report the outage themselves, so the pool stays quiet.
#[derive(Debug)]
struct QuietErrorHandler;

impl r2d2::HandleError<ManagerError> for QuietErrorHandler {
    fn handle_error(&self, error: ManagerError) {
        log::debug!("database pool could not open a connection: {error}");
    }
}

/// The shop's database: a lazily connecting pool.
#[derive(Clone)]
pub struct Database {
    pool: r2d2::Pool<PgManager>,
}

impl Database {
    /// Builds the pool without connecting; never fails because PostgreSQL is down.
    pub fn connect_lazy(url: &str, settings: &PoolSettings) -> Self {
        let pool = r2d2::Pool::builder()
            .max_size(settings.max_size)
            .min_idle(Some(1))
            .connection_timeout(settings.connection_timeout)
            // A ping per checkout would double the round trips; broken connections are
            // detected after a failed query instead (see `run`).
            .test_on_check_out(false)
            .error_handler(Box::new(QuietErrorHandler))
            .build_unchecked(PgManager {
                url: url.to_owned(),
            });
        Self { pool }
    }

    /// Runs `query` with a pooled connection on the blocking pool.
    ///
    /// `query` must return every database failure as its `Err`, and refusals (no such row, not
    /// enough stock) as values inside `Ok`: only after an `Err` is the connection pinged, and
    /// dropped if PostgreSQL went away, so an `Ok(Err(..))` would put a dead connection back.
    pub async fn run<T, F>(&self, query: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut PgConnection) -> diesel::QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut pooled = pool.get().map_err(DbError::Unavailable)?;
            let result = query(&mut pooled.connection);
            if result.is_err() && pooled.connection.batch_execute("SELECT 1").is_err() {
                pooled.broken = true;
            }
            result.map_err(DbError::from)
        })
        .await?
    }

    /// A service's database: checks that the migrations have run (see
    /// [`crate::migrate::ensure_schema_current`]), then builds the lazy pool.
    pub async fn open(url: &str, settings: &PoolSettings) -> Result<Self, crate::MigrationError> {
        crate::migrate::ensure_schema_current(url).await?;
        Ok(Self::connect_lazy(url, settings))
    }

    /// Whether PostgreSQL answers right now (for `/healthz`).
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| conn.batch_execute("SELECT 1")).await
    }

    /// The `/healthz` probe of this database.
    pub fn health_probe(&self) -> shop_telemetry::app::HealthProbe {
        let db = self.clone();
        shop_telemetry::app::health_probe(move || {
            let db = db.clone();
            async move { db.ping().await.is_ok() }
        })
    }
}
