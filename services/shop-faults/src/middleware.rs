use poem::{http::StatusCode, Endpoint, IntoResponse, Middleware, Request, Response, Result};
use rand::Rng;
use shop_telemetry::errors::json_error;

use crate::Faults;

/// Operational routes keep answering whatever faults are set, so the lab can still observe
/// the service and lift the fault.
fn is_exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/metrics" | "/openapi.json") || path.starts_with("/admin/")
}

/// Applies the generic faults (added latency, error rate) to the routes it wraps: a service's
/// business routes, never `/metrics`, `/healthz` or the admin API.
#[derive(Clone)]
pub struct FaultInjection {
    faults: Faults,
}

impl FaultInjection {
    pub fn new(faults: Faults) -> Self {
        Self { faults }
    }
}

impl<E: Endpoint> Middleware<E> for FaultInjection {
    type Output = FaultInjectionEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        FaultInjectionEndpoint {
            inner,
            faults: self.faults.clone(),
        }
    }
}

pub struct FaultInjectionEndpoint<E> {
    inner: E,
    faults: Faults,
}

impl<E: Endpoint> Endpoint for FaultInjectionEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        if is_exempt(req.uri().path()) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let latency = self.faults.added_latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let error_rate = self.faults.error_rate();
        if error_rate > 0.0 && rand::rng().random_bool(error_rate.min(1.0)) {
            log::error!(
                event = "injected_fault", kind = "error_rate", method:% = req.method(),
                path = req.uri().path();
                "injected fault: failing {} {}", req.method(), req.uri().path()
            );
            return Ok(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected fault: this service is failing on purpose (error_rate)",
            ));
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}
