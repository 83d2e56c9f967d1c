//! Request metrics with bounded cardinality: the `endpoint` label is the route template the
//! request matched (`/products/:id`), never the raw path, and every unmatched path shares one
//! value.
//!
//! The templates come from the service's OpenAPI document rather than from poem's router,
//! which renames path parameters (`/products/:param0`).

use std::{sync::Arc, time::Instant};

use poem::{http::StatusCode, Endpoint, IntoResponse, Middleware, Request, Response, Result};
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

/// The route templates of a service, e.g. `/products/{id}` (OpenAPI) or `/products/:id`.
#[derive(Debug, Clone, Default)]
pub struct RouteTemplates {
    templates: Vec<Template>,
}

#[derive(Debug, Clone)]
struct Template {
    label: String,
    /// `None` for a parameter segment.
    segments: Vec<Option<String>>,
}

impl RouteTemplates {
    pub fn new<S: AsRef<str>>(templates: impl IntoIterator<Item = S>) -> Self {
        let mut templates: Vec<Template> = templates
            .into_iter()
            .map(|t| {
                let segments: Vec<Option<String>> = t
                    .as_ref()
                    .split('/')
                    .skip(1)
                    .map(|seg| {
                        let param =
                            (seg.starts_with('{') && seg.ends_with('}')) || seg.starts_with(':');
                        (!param).then(|| seg.to_owned())
                    })
                    .collect();
                let label = t
                    .as_ref()
                    .split('/')
                    .map(
                        |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(name) => format!(":{name}"),
                            None => seg.to_owned(),
                        },
                    )
                    .collect::<Vec<_>>()
                    .join("/");
                Template { label, segments }
            })
            .collect();
        // Static segments win over parameters (`/stock/low` before `/stock/:id`).
        templates
            .sort_by_key(|t| std::cmp::Reverse(t.segments.iter().filter(|s| s.is_some()).count()));
        Self { templates }
    }

    /// The template `path` matches, or [`UNMATCHED_ENDPOINT`].
    pub fn label(&self, path: &str) -> &str {
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        self.templates
            .iter()
            .find(|t| {
                t.segments.len() == segments.len()
                    && t.segments
                        .iter()
                        .zip(&segments)
                        .all(|(want, got)| want.as_deref().is_none_or(|w| w == *got))
            })
            .map_or(UNMATCHED_ENDPOINT, |t| t.label.as_str())
    }
}

/// `http_requests_total{method,endpoint,status}` and
/// `http_request_duration_seconds{method,endpoint}`, registered in one application's registry.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    routes: Arc<RouteTemplates>,
}

impl HttpMetrics {
    pub fn register(
        registry: &Registry,
        routes: RouteTemplates,
    ) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route template and status.",
            ),
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
        Ok(Self {
            requests,
            duration,
            routes: Arc::new(routes),
        })
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
        let endpoint = self.metrics.routes.label(req.uri().path()).to_owned();
        let started = Instant::now();
        let result = self.inner.call(req).await;
        let seconds = started.elapsed().as_secs_f64();
        let (status, result) = match result {
            Ok(output) => {
                let response = output.into_response();
                (response.status(), Ok(response))
            }
            Err(err) => (err.status(), Err(err)),
        };
        self.metrics.observe(&method, &endpoint, status, seconds);
        result
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_templates_and_static_segments_win() {
        let routes = RouteTemplates::new([
            "/products",
            "/products/{id}",
            "/stock/{product_id}",
            "/stock/low",
            "/metrics",
        ]);
        assert_eq!(routes.label("/products"), "/products");
        assert_eq!(routes.label("/products/42"), "/products/:id");
        assert_eq!(routes.label("/products/abc"), "/products/:id");
        assert_eq!(routes.label("/stock/low"), "/stock/low");
        assert_eq!(routes.label("/stock/7"), "/stock/:product_id");
        assert_eq!(routes.label("/products/1/extra"), UNMATCHED_ENDPOINT);
        assert_eq!(routes.label("/"), UNMATCHED_ENDPOINT);
        assert_eq!(routes.label("/wp-admin.php"), UNMATCHED_ENDPOINT);
    }
}
