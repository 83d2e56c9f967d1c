//! The frontend against a real API, payment service and PostgreSQL.

mod binary;
mod checkout;
mod failures;
mod helpers;
mod metrics;
mod pages;
mod sessions;
