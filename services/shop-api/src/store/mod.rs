//! Plain synchronous diesel queries; handlers run them through `Database::run`.

pub mod customers;
pub mod orders;
pub mod products;
pub mod sessions;
