//! Test support shared by the workspace's tests.
//!
//! [`TestPostgres`] starts a private PostgreSQL server from the binaries on this machine
//! (`initdb`, `pg_ctl`, `postgres` on `PATH`, else `pg_config --bindir`, else Debian's
//! `/usr/lib/postgresql/<version>/bin`), so `cargo test` needs no running server and behaves the
//! same in a Nix build sandbox. Each test gets its own database, cloned from a template that is
//! prepared (migrated) once per server. [`http`] and [`sql`] hold the small assertions the
//! services' tests share, [`faults`] the fault API's fixed test token, [`secrets`] fresh
//! random token files for the services' other secrets.

pub mod faults;
pub mod http;
mod postgres;
pub mod process;
pub mod secrets;
pub mod sql;

pub use postgres::{shared_postgres, TestPostgres};
