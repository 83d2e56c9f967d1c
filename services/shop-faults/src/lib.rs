//! Run-time failure injection.
//!
//! A service holds one [`Faults`] registry listing the fault kinds it supports. Faults are set
//! through `POST /admin/faults` with a duration and revert by themselves when it runs out
//! (expiry is checked on every read, so no background task is needed). [`FaultInjection`]
//! applies the generic kinds (error rate, added latency) to a service's business routes; the
//! services read the specific kinds (`decline_rate`, `restock_paused`) themselves.
//!
//! The admin API answers only when fault injection is enabled, and then only to requests that
//! present the bearer token from `--fault-token-file` and that no browser or proxy made
//! ([`FaultAccess`]).

mod access;
mod api;
mod middleware;
mod registry;

pub use access::{FaultAccess, Refusal};
pub use api::FaultsApi;
pub use middleware::FaultInjection;
pub use registry::{ActiveFault, FaultError, FaultKind, FaultSpec, Faults};
