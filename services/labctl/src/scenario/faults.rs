//! The services' fault API (`/admin/faults`): every request carries the bearer token from
//! `--fault-token-file`; the services refuse any request without it, from loopback too.

use std::{fs, path::Path};

use anyhow::{anyhow, Context};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{cli::Targets, http};

/// A shop service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Api,
    Frontend,
    Payment,
    Inventory,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Frontend => "frontend",
            Self::Payment => "payment",
            Self::Inventory => "inventory",
        }
    }

    pub fn url(self, targets: &Targets) -> String {
        http::base(match self {
            Self::Api => &targets.api_url,
            Self::Frontend => &targets.frontend_url,
            Self::Payment => &targets.payment_url,
            Self::Inventory => &targets.inventory_url,
        })
    }

    fn flag(self) -> &'static str {
        match self {
            Self::Api => "--api-url",
            Self::Frontend => "--frontend-url",
            Self::Payment => "--payment-url",
            Self::Inventory => "--inventory-url",
        }
    }

    fn what(self) -> String {
        format!("the {} service", self.name())
    }
}

/// What a user without the token is told.
pub const TOKEN_HINT: &str = "give the services' fault token with --fault-token-file FILE (or LABCTL_FAULT_TOKEN_FILE); on a host with the lab profile it is /var/lib/alertlab-secrets/fault-token (root only)";

/// Reads the token file (its first line).
pub fn read_token(path: Option<&Path>) -> anyhow::Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read --fault-token-file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        return Err(anyhow!("--fault-token-file {} is empty", path.display()));
    }
    Ok(Some(token))
}

#[derive(Debug, Clone)]
pub struct FaultApi {
    client: reqwest::Client,
    targets: Targets,
    token: Option<String>,
}

/// What clearing a fault found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleared {
    Count(u64),
    /// The service's fault API is disabled: nothing can have been set.
    Disabled,
}

impl FaultApi {
    pub fn new(client: reqwest::Client, targets: Targets, token: Option<String>) -> Self {
        Self {
            client,
            targets,
            token,
        }
    }

    fn base(&self, service: Service) -> anyhow::Result<String> {
        let url = service.url(&self.targets);
        http::check_url(service.flag(), &url)?;
        Ok(url)
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    fn refused(
        &self,
        service: Service,
        base: &str,
        status: StatusCode,
        body: &str,
    ) -> anyhow::Error {
        let message = http::error_message(body);
        match status {
            StatusCode::UNAUTHORIZED if self.token.is_none() => anyhow!(
                "the fault API of {} at {base} requires its token (HTTP 401): {TOKEN_HINT}",
                service.what(),
            ),
            StatusCode::UNAUTHORIZED => anyhow!(
                "the fault API of {} at {base} refused the token of --fault-token-file (HTTP 401): {message}",
                service.what(),
            ),
            _ => anyhow!(
                "the fault API of {} at {base} answered HTTP {}: {message}",
                service.what(),
                status.as_u16()
            ),
        }
    }

    /// Sets a fault (`POST /admin/faults`). Without a token it fails before sending: the
    /// services refuse every fault API request without one.
    pub async fn set(&self, service: Service, spec: &Value) -> anyhow::Result<Value> {
        let base = self.base(service)?;
        if self.token.is_none() {
            return Err(anyhow!(
                "setting a fault on {} needs the fault token: {TOKEN_HINT}",
                service.what()
            ));
        }
        let request = self
            .authorize(self.client.post(format!("{base}/admin/faults")))
            .json(spec);
        let response = http::send(&service.what(), &base, request).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(self.refused(service, &base, status, &body));
        }
        http::json(&service.what(), &base, "/admin/faults", response).await
    }

    /// Clears the faults of `kind` (`DELETE /admin/faults?kind=`).
    pub async fn clear(&self, service: Service, kind: &str) -> anyhow::Result<Cleared> {
        let base = self.base(service)?;
        let request = self
            .authorize(self.client.delete(format!("{base}/admin/faults")))
            .query(&[("kind", kind)]);
        let response = http::send(&service.what(), &base, request).await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status == StatusCode::FORBIDDEN && body.contains("disabled") {
            return Ok(Cleared::Disabled);
        }
        if !status.is_success() {
            return Err(self.refused(service, &base, status, &body));
        }
        let value: Value = serde_json::from_str(&body).unwrap_or_default();
        Ok(Cleared::Count(
            value.get("cleared").and_then(Value::as_u64).unwrap_or(0),
        ))
    }
}
