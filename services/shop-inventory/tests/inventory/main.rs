//! The inventory service against a real PostgreSQL.

mod binary;
mod helpers;
mod stock;
