//! The `/healthz` body every service answers with.

use poem_openapi::{Enum, Object};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Everything the service depends on answers.
    Ok,
    /// The service runs but a dependency (the database) does not answer.
    Degraded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum DependencyStatus {
    Ok,
    Unavailable,
}

#[derive(Debug, Clone, Object)]
pub struct Health {
    pub status: HealthStatus,
    pub service: String,
    pub version: String,
    /// Absent for services without a database.
    pub database: Option<DependencyStatus>,
}

impl Health {
    pub fn new(service: &str, database: Option<DependencyStatus>) -> Self {
        let status = match database {
            Some(DependencyStatus::Unavailable) => HealthStatus::Degraded,
            _ => HealthStatus::Ok,
        };
        Self {
            status,
            service: service.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            database,
        }
    }
}
