//! The frontend service: renders the shop's pages (home, product, cart) from the API, keeps
//! each visitor's cart in an in-memory session, checks carts out by placing API orders, counts
//! page views, and fails on purpose through the fault API (error rate, added latency).
//!
//! Its logs are what the lab's "frontend errors" alert counts, so the levels are exact: only a
//! failure of the API (unreachable, timed out, 5xx) is an error (`page_error`); a declined
//! payment, short stock or any other refusal by the API is a warning or less.

mod api_client;
mod cart;
mod cart_api;
mod checkout;
mod context;
mod metrics;
mod pages;
mod render;
mod security_headers;
mod sessions;
mod settings;
mod startup;

pub use security_headers::CONTENT_SECURITY_POLICY;
pub use sessions::{COOKIE_NAME, MAX_SESSIONS};
pub use settings::Settings;
pub use startup::Application;

/// The service's name in logs, metrics and health.
pub const SERVICE: &str = "frontend";
/// Default port (the seed's).
pub const DEFAULT_PORT: u16 = 8081;
