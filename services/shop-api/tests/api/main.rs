//! The API service against a real PostgreSQL and a real payment service.

mod binary;
mod drills;
mod faults;
mod helpers;
mod login;
mod login_flood;
mod metrics;
mod orders;
mod products;
mod rate_limits;
mod resilience;
