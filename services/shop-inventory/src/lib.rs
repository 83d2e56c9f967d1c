//! The inventory service: serves stock levels and the low-stock list from the database, keeps
//! the stock gauges current, logs stock events (changes, low-stock warnings, critical stock),
//! and restocks products that fall to their reorder point (three times the threshold) — unless the `restock_paused` fault is
//! active, which is how the lab depletes stock on purpose.

mod api;
mod metrics;
mod monitor;
mod settings;
mod startup;
mod store;

pub use settings::{Cli, Settings};
pub use startup::Application;

/// The service's name in logs, metrics and health.
pub const SERVICE: &str = "inventory";
/// Default port (the seed's).
pub const DEFAULT_PORT: u16 = 8083;
