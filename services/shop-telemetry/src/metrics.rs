//! Request metrics with bounded cardinality: the `endpoint` label is the route template poem
//! matched (`/products/:id`), never the raw path, and every unmatched path shares one value.

use std::time::Instant;

use poem::{
    http::StatusCode, PathPattern, Endpoint, IntoResponse, Middleware, Request, Response,
    Result,
};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The `endpoint` label of requests that matched no route.
pub const UNMATCHED_ENDPOINT: &str = "unmatched";

/// Histogram buckets in seconds: fine below 100 ms where a healthy shop lives, coarse above so
/// latency-spike alerts (hundreds of ms to seconds) can tell p95 apart.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
];

/// `http_requests_total{method,endpoint,status}` and
/// `http_request_duration_seconds{method,endpoint}`, registered in one application's registry.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route template and status."),
            &["method", "endpoint", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request duration in seconds by method and route template.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["method", "endpoint"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    fn observe(&self, method: &str, endpoint: &str, status: StatusCode, seconds: f64) {
        self.requests
            .with_label_values(&[method, endpoint, status.as_str()])
            .inc();
        self.duration
            .with_label_values(&[method, endpoint])
            .observe(seconds);
    }
}

impl<E: Endpoint> Middleware<E> for HttpMetrics {
    type Output = HttpMetricsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        HttpMetricsEndpoint {
            inner,
            metrics: self.clone(),
        }
    }
}

pub struct HttpMetricsEndpoint<E> {
    inner: E,
    metrics: HttpMetrics,
}

impl<E: Endpoint> Endpoint for HttpMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let method = req.method().as_str().to_owned();
        let started = Instant::now();
        let result = self.inner.call(req).await;
        let seconds = started.elapsed().as_secs_f64();
        // The router leaves the matched template on the response or on the error.
        let (status, endpoint, result) = match result {
            Ok(output) => {
                let response = output.into_response();
                let endpoint = route_label(response.data::<PathPattern>());
                (response.status(), endpoint, Ok(response))
            }
            Err(err) => {
                let endpoint = route_label(err.data::<PathPattern>());
                (err.status(), endpoint, Err(err))
            }
        };
        self.metrics.observe(&method, &endpoint, status, seconds);
        result
    }
}

fn route_label(pattern: Option<&PathPattern>) -> String {
    pattern
        .map(|p| p.0.to_string())
        .unwrap_or_else(|| UNMATCHED_ENDPOINT.to_owned())
}

/// `GET /metrics`: the application's registry in Prometheus' text format.
pub struct MetricsEndpoint {
    registry: Registry,
}

impl MetricsEndpoint {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

impl Endpoint for MetricsEndpoint {
    type Output = Response;

    async fn call(&self, _req: Request) -> Result<Self::Output> {
        let encoder = TextEncoder::new();
        let mut body = Vec::with_capacity(8 * 1024);
        encoder
            .encode(&self.registry.gather(), &mut body)
            .map_err(|err| poem::Error::new(err, StatusCode::INTERNAL_SERVER_ERROR))?;
        Ok(Response::builder()
            .content_type(encoder.format_type())
            .body(body))
    }
}
