//! How every service's HTTP surface is put together, so the four stay alike:
//! its OpenAPI operations (plus `/healthz`), `/openapi.json` and `/metrics`, wrapped (inside
//! out) in the service's own middleware (fault injection), JSON errors, request metrics and
//! the body-size limit.

use std::{future::Future, pin::Pin, sync::Arc};

use poem::{endpoint::BoxEndpoint, EndpointExt, Middleware, Route};
use poem_openapi::{payload::Json, OpenApi, OpenApiService};
use prometheus::Registry;

use crate::{
    metrics::RouteTemplates, request_validation::RequestValidation, BodyLimit, DependencyStatus,
    Health, HttpMetrics, JsonErrors, MetricsEndpoint,
};

/// Checks a dependency for `/healthz`.
pub type HealthProbe =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = DependencyStatus> + Send>> + Send + Sync>;

/// A probe from an async check that says whether the dependency answers.
pub fn health_probe<F, Fut>(check: F) -> HealthProbe
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    Arc::new(move || {
        let answered = check();
        Box::pin(async move {
            if answered.await {
                DependencyStatus::Ok
            } else {
                DependencyStatus::Unavailable
            }
        })
    })
}

/// `GET /healthz`: 200 with `ok`, or `degraded` while the database does not answer — the
/// process is alive and serving, so supervisors must not restart it for that.
pub struct HealthApi {
    service: &'static str,
    database: Option<HealthProbe>,
}

impl HealthApi {
    pub fn new(service: &'static str, database: Option<HealthProbe>) -> Self {
        Self { service, database }
    }
}

#[OpenApi]
impl HealthApi {
    /// Liveness and dependency health.
    #[oai(path = "/healthz", method = "get")]
    async fn healthz(&self) -> Json<Health> {
        let database = match &self.database {
            Some(probe) => Some(probe().await),
            None => None,
        };
        Json(Health::new(self.service, database))
    }
}

/// How [`service_endpoint_with`] assembles the endpoint. Every service uses the defaults
/// (through [`service_endpoint`]); the other settings exist for measurements only.
#[derive(Debug, Clone, Copy)]
pub struct EndpointOptions {
    /// Count and time every request (`http_requests_total`, `http_request_duration_seconds`).
    /// Turned off only by the benchmark that measures what the metrics middleware costs.
    pub request_metrics: bool,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        Self {
            request_metrics: true,
        }
    }
}

/// The service's complete endpoint.
pub fn service_endpoint<T, M>(
    title: &str,
    api: T,
    health: HealthApi,
    registry: &Registry,
    service_middleware: M,
) -> Result<BoxEndpoint<'static>, prometheus::Error>
where
    T: OpenApi + 'static,
    M: Middleware<Route> + 'static,
    M::Output: 'static,
{
    service_endpoint_with(
        title,
        api,
        health,
        registry,
        service_middleware,
        EndpointOptions::default(),
    )
}

/// [`service_endpoint`] with explicit [`EndpointOptions`].
pub fn service_endpoint_with<T, M>(
    title: &str,
    api: T,
    health: HealthApi,
    registry: &Registry,
    service_middleware: M,
    options: EndpointOptions,
) -> Result<BoxEndpoint<'static>, prometheus::Error>
where
    T: OpenApi + 'static,
    M: Middleware<Route> + 'static,
    M::Output: 'static,
{
    let service = OpenApiService::new((api, health), title, env!("CARGO_PKG_VERSION"));
    let spec_json: serde_json::Value = serde_json::from_str(&service.spec()).unwrap_or_default();
    let metrics = HttpMetrics::register(registry, route_templates(&spec_json))?;
    let validation = RequestValidation::from_spec(&spec_json, route_templates(&spec_json));
    let spec = service.spec_endpoint();
    let routes = Route::new()
        .at("/openapi.json", spec)
        .at("/metrics", MetricsEndpoint::new(registry.clone()))
        .nest("/", service);
    Ok(routes
        .with(service_middleware)
        .with(validation)
        .with(JsonErrors)
        .with_if(options.request_metrics, metrics)
        .with(BodyLimit::default())
        .boxed())
}

/// The OpenAPI document's paths plus the two routes outside it.
fn route_templates(spec: &serde_json::Value) -> RouteTemplates {
    let paths: Vec<String> = spec
        .get("paths")
        .and_then(serde_json::Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    RouteTemplates::new(
        paths
            .iter()
            .map(String::as_str)
            .chain(["/metrics", "/openapi.json"]),
    )
}

#[cfg(test)]
mod tests {
    use poem::{Endpoint, Request};

    use super::*;

    async fn healthz_counted(options: EndpointOptions) -> bool {
        let registry = Registry::new();
        let endpoint = service_endpoint_with(
            "test",
            (),
            HealthApi::new("test", None),
            &registry,
            poem::middleware::AddData::new(()),
            options,
        )
        .unwrap();
        let response = endpoint
            .call(Request::builder().uri_str("/healthz").finish())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        registry
            .gather()
            .iter()
            .any(|family| family.name() == "http_requests_total")
    }

    #[tokio::test]
    async fn requests_are_counted_unless_request_metrics_are_off() {
        assert!(healthz_counted(EndpointOptions::default()).await);
        assert!(
            !healthz_counted(EndpointOptions {
                request_metrics: false
            })
            .await
        );
    }
}
